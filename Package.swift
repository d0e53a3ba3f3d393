// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gra",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "GRAKit", targets: ["GRAKit"]),
        .executable(name: "gra-format", targets: ["gra-format"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // All of gra's logic: records, JSON, NDJSON I/O, formats, text normalization.
        // Exclusivity is checked statically; the dynamic checks cost ~10% in the JSON hot paths.
        .target(name: "GRAKit", swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // Thin command-line front ends: parse arguments, call GRAKit.
        .executableTarget(
            name: "gra-format",
            dependencies: ["GRAKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "GRAKitTests", dependencies: ["GRAKit"]),
        .testTarget(name: "GRACLITests", dependencies: ["GRAKit"]),
    ]
)
