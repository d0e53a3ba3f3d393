// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gra",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "GRAKit", targets: ["GRAKit"]),
        .executable(name: "gra", targets: ["gra"]),
        .executable(name: "gra-format", targets: ["gra-format"]),
        .executable(name: "gra-map", targets: ["gra-map"]),
        .executable(name: "gra-generate", targets: ["gra-generate"]),
        .executable(name: "gra-review", targets: ["gra-review"]),
        .executable(name: "gra-adjudicate", targets: ["gra-adjudicate"]),
        .executable(name: "gra-dedup", targets: ["gra-dedup"]),
        .executable(name: "gra-report", targets: ["gra-report"]),
        .executable(name: "gra-ifd", targets: ["gra-ifd"]),
        .executable(name: "gra-testserver", targets: ["gra-testserver"]),
        .executable(name: "gra-fuzz", targets: ["gra-fuzz"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // libcurl (Debian: libcurl4-openssl-dev), with typed wrappers for its variadic calls.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // SQLite for the response cache (Debian: libsqlite3-dev).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // All of gra's logic: records, JSON, NDJSON I/O, formats, client, cache, prompts.
        // Exclusivity is checked statically; the dynamic checks cost ~10% in the JSON hot paths.
        .target(
            name: "GRAKit",
            dependencies: ["CCurl", "CSQLite"],
            resources: [.embedInCode("Resources/Prompts")],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // Flags shared by the LLM stages (model pool, concurrency, cache) and exit handling.
        .target(
            name: "GRACommandLine",
            dependencies: ["GRAKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // `gra STAGE ...` runs gra-STAGE from PATH (git-style).
        .executableTarget(name: "gra", dependencies: ["GRAKit"]),
        // Thin command-line front ends: parse arguments, call GRAKit.
        .executableTarget(
            name: "gra-format",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-map",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-generate",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-review",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-adjudicate",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-dedup",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-ifd",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "gra-report",
            dependencies: [
                "GRAKit", "GRACommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        // A fake OpenAI-compatible server on 127.0.0.1 with scripted replies and faults:
        // a test double for the tests and the offline demo, never a model.
        .executableTarget(
            name: "gra-testserver",
            dependencies: ["GRAKit", "CCurl", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fuzz targets for the JSON parser/writer and the line reader. bench/fuzz builds it as a
        // libFuzzer binary (-sanitize=fuzzer,address -DGRA_FUZZ, lld); a plain build replays
        // inputs: gra-fuzz TARGET FILE... (@_extern(c) declares libFuzzer's LLVMFuzzerRunDriver).
        .executableTarget(
            name: "gra-fuzz",
            dependencies: ["GRAKit"],
            swiftSettings: [.enableExperimentalFeature("Extern")]
        ),
        .testTarget(name: "GRAKitTests", dependencies: ["GRAKit"]),
        .testTarget(name: "GRACLITests", dependencies: ["GRAKit"])
    ]
)
