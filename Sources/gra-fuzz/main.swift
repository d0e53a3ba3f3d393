// gra-fuzz: fuzz targets for GRAKit's JSON parser/writer and line reader.
//
// One source, two builds:
//
//  - The fuzz build (what bench/fuzz makes) is a libFuzzer binary:
//        swift build -c release --scratch-path .build-fuzz --product gra-fuzz \
//            -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld -Xswiftc -DGRA_FUZZ
//        .build-fuzz/release/gra-fuzz TARGET [libFuzzer flags] [CORPUS_DIR...]
//    GRA_FUZZ compiles in the call to libFuzzer's LLVMFuzzerRunDriver; the sanitizer flag
//    instruments every module (GRAKit included) and links libFuzzer; lld is needed because
//    gold fails on the result. Our own `main` wins over libFuzzer's (SwiftPM links an
//    executable's entry point with `--defsym main=...`); LLVMFuzzerTestOneInput is defined
//    too, so the link also works where libFuzzer's `main` is pulled in.
//
//  - A plain build (`swift build`, no flags) replays inputs without sanitizers:
//        gra-fuzz TARGET FILE|DIR...
//    runs TARGET's checks once per file (each file of a directory), reports each failed
//    check, and exits 1 if any failed: for replaying a crasher, or a regression test.
//
// `gra-fuzz --list` prints the targets ("name<TAB>ready|todo<TAB>summary"); bench/fuzz runs
// the ready ones. The target may also be named by GRA_FUZZ_TARGET (libFuzzer re-executes
// itself without our first argument for -merge, -minimize_crash and -fork, so the fuzz
// build exports it there).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func usage() -> Never {
    let names = fuzzTargets.map(\.name).joined(separator: "|")
    writeStderr(
        """
        usage: gra-fuzz TARGET FILE|DIR...      replay inputs (plain build)
               gra-fuzz TARGET [libFuzzer args] fuzz (build with -sanitize=fuzzer -DGRA_FUZZ)
               gra-fuzz --list
        TARGET: \(names) (or the environment variable GRA_FUZZ_TARGET)

        """)
    exit(64)
}

func lookUpTarget(_ name: String) -> FuzzTarget {
    guard let t = fuzzTargets.first(where: { $0.name == name }) else {
        writeStderr("gra-fuzz: unknown target '\(name)'\n")
        usage()
    }
    return t
}

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "--list" {
    for t in fuzzTargets { print("\(t.name)\t\(t.ready ? "ready" : "todo")\t\(t.summary)") }
    exit(0)
}
if args.first == "-h" || args.first == "--help" { usage() }

// The target: the first argument when it names one, else GRA_FUZZ_TARGET.
let target: FuzzTarget
var targetFromArgument = false
if let first = args.first, fuzzTargets.contains(where: { $0.name == first }) {
    target = lookUpTarget(first)
    args.removeFirst()
    targetFromArgument = true
} else if let name = getenv("GRA_FUZZ_TARGET").map({ String(cString: $0) }), !name.isEmpty {
    target = lookUpTarget(name)
} else {
    if let first = args.first, !first.hasPrefix("-") { writeStderr("gra-fuzz: unknown target '\(first)'\n") }
    usage()
}

// The lines target writes into pipes whose reader may stop early.
signal(SIGPIPE, SIG_IGN)

#if GRA_FUZZ
setenv("GRA_FUZZ_TARGET", target.name, 1)
exit(runLibFuzzer(target, dropFirstArgument: targetFromArgument))
#else
if args.isEmpty {
    writeStderr("gra-fuzz: no input files (this is the replay build; bench/fuzz makes the libFuzzer one)\n")
    usage()
}
exit(replay(target, paths: args))
#endif
