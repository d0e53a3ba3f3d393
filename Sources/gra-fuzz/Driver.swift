// The target registry, the check-failure type, and the two drivers (libFuzzer, replay).

import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed check: the input shows a bug (or the harness has one).
struct CheckFailure: Error {
    var message: String
}

/// Writes `text` to standard error (unbuffered, as libFuzzer's own messages are).
func writeStderr(_ text: String) {
    var t = text
    t.withUTF8 { buf in
        var off = 0
        while off < buf.count {
            let n = write(2, buf.baseAddress! + off, buf.count - off)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            off += n
        }
    }
}

/// Throws a `CheckFailure` with `message` unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(CheckFailure) {
    if !condition { throw CheckFailure(message: message()) }
}

/// A named fuzz target: a check run on one input, which throws `CheckFailure` when it finds a
/// bug (crashes and sanitizer reports are findings too).
struct FuzzTarget: Sendable {
    typealias Check = @Sendable (UnsafeBufferPointer<UInt8>) throws(CheckFailure) -> Void
    let name: String
    /// False for a placeholder that checks nothing yet (bench/fuzz skips it).
    let ready: Bool
    let summary: String
    let check: Check
}

let fuzzTargets: [FuzzTarget] = [
    FuzzTarget(
        name: "json", ready: true,
        summary: "JSONParser accepts exactly RFC 8259 JSON; parse -> JSONWriter -> parse is the identity",
        check: checkJSON),
    FuzzTarget(
        name: "lines", ready: true,
        summary: "LineReader over a pipe fed in pieces (or a file) hands out the '\\n'-split lines",
        check: checkLines),
    FuzzTarget(
        name: "array", ready: true,
        summary: "LineReader.nextElement over a pipe fed in pieces (or a file) hands out a JSON array's elements",
        check: checkArray)
]

// MARK: - libFuzzer

#if GRA_FUZZ
@_extern(c, "LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var activeTarget: FuzzTarget?

/// Runs libFuzzer on `target` with our command line, minus the target name when it was the
/// first argument.
func runLibFuzzer(_ target: FuzzTarget, dropFirstArgument: Bool) -> CInt {
    activeTarget = target
    var list: [UnsafeMutablePointer<CChar>?] = []
    for (i, a) in CommandLine.arguments.enumerated() where !(dropFirstArgument && i == 1) {
        list.append(strdup(a))
    }
    list.append(nil)
    var argc = CInt(list.count - 1)
    let storage = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: list.count)
    storage.initialize(from: list, count: list.count)  // libFuzzer keeps pointers into argv: never freed
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = storage
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzTestOneInput)
}

/// libFuzzer's entry point. Also what libFuzzer's own `main` would call, should it be the one
/// linked: then GRA_FUZZ_TARGET names the target.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if activeTarget == nil {
        guard let name = getenv("GRA_FUZZ_TARGET").map({ String(cString: $0) }),
            let t = fuzzTargets.first(where: { $0.name == name })
        else {
            writeStderr("gra-fuzz: set GRA_FUZZ_TARGET to one of: \(fuzzTargets.map(\.name).joined(separator: " "))\n")
            exit(64)
        }
        activeTarget = t
    }
    let target = activeTarget!
    do throws(CheckFailure) {
        try target.check(UnsafeBufferPointer(start: data, count: size))
    } catch {
        writeStderr("gra-fuzz: \(target.name): check failed: \(error.message)\n")
        abort()  // libFuzzer reports the deadly signal and writes the input as crash-*
    }
    return 0
}
#endif

// MARK: - Replay

/// Runs `target` once on each file (each regular file of a directory); returns the exit status:
/// 0 all passed, 1 a check failed, 66 an input could not be read.
func replay(_ target: FuzzTarget, paths: [String]) -> Int32 {
    var failed = 0
    var unreadable = 0
    var passed = 0
    for path in paths.flatMap(expandDirectory) {
        guard let bytes = readFileBytes(path) else {
            writeStderr("gra-fuzz: cannot read \(path): \(String(cString: strerror(errno)))\n")
            unreadable += 1
            continue
        }
        do throws(CheckFailure) {
            try bytes.withUnsafeBufferPointer { buf throws(CheckFailure) in try target.check(buf) }
            passed += 1
        } catch {
            failed += 1
            print("\(path): FAILED: \(error.message)")
        }
    }
    print(
        """
        gra-fuzz \(target.name): \(passed) passed, \(failed) \
        failed\(unreadable > 0 ? ", \(unreadable) unreadable" : "")
        """
    )
    if failed > 0 { return 1 }
    return unreadable > 0 ? 66 : 0
}

/// `path` itself, or the regular files directly in it (sorted) when it is a directory.
private func expandDirectory(_ path: String) -> [String] {
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) else { return [path] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        if name.hasPrefix(".") { continue }
        let full = path.hasSuffix("/") ? path + name : path + "/" + name
        var fst = stat()
        if stat(full, &fst) == 0, (fst.st_mode & S_IFMT) == S_IFREG { names.append(full) }
    }
    return names.sorted()
}
