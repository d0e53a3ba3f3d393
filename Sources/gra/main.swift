import GRAKit

// gra — git-style front door: `gra STAGE ARGS...` runs `gra-STAGE ARGS...` from PATH (or from
// this binary's directory), so a user's own `gra-myfilter` slots into the same family.
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
let ownDirectory: String = {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return "" }
    let path = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
}()

/// Every `gra-*` executable on PATH (and next to this binary), by stage name; with
/// `executable` false, the `gra-*` files found that cannot be run instead.
func stages(executable: Bool = true) -> [String: String] {
    var found: [String: String] = [:]
    let path = (getenv("PATH").map { String(cString: $0) } ?? "").split(separator: ":").map(String.init)
    for dir in [ownDirectory] + path where !dir.isEmpty {
        guard let d = opendir(dir) else { continue }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            var st = stat()
            let full = dir + "/" + name
            guard name.hasPrefix("gra-"), name.count > 4, !name.contains("."), stat(full, &st) == 0,
                (st.st_mode & S_IFMT) == S_IFREG, (access(full, X_OK) == 0) == executable
            else { continue }
            let stage = String(name.dropFirst(4))
            if found[stage] == nil { found[stage] = dir + "/" + name }
        }
    }
    return found
}

func usage() -> String {
    let list = stages().keys.sorted().map { "  \($0)" }.joined(separator: "\n")
    return """
        usage: gra STAGE [ARGS...]    runs gra-STAGE (from PATH or next to gra) with ARGS
               gra --list             the stages found, one per line
               gra --version

        Stages found:
        \(list.isEmpty ? "  (none)" : list)

        See `gra STAGE --help`, man gra(7) and man gra-STAGE(1).

        """
}

guard arguments.count >= 2 else {
    FileHandle.standardError(usage())
    exit(64)
}
let stage = arguments[1]
if stage == "-h" || stage == "--help" || stage == "help" {
    print(usage(), terminator: "")
    exit(0)
}
if stage == "--version" {
    print(GRAVersion.string)
    exit(0)
}
if stage == "--list" {
    for name in stages().keys.sorted() { print(name) }
    exit(0)
}
if stage.hasPrefix("-") {
    FileHandle.standardError("gra: unknown option '\(stage)'\n\n" + usage())
    exit(64)
}
if stages()[stage] == nil, let file = stages(executable: false)[stage] {
    FileHandle.standardError("gra: \(file) exists but is not executable (chmod +x it to use it as a stage)\n")
    exit(126)
}
guard let executable = stages()[stage] else {
    FileHandle.standardError("gra: '\(stage)' is not a gra stage: no gra-\(stage) on PATH\n\n" + usage())
    exit(64)
}
var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments.dropFirst(2)).map { strdup($0) } + [nil]
execv(executable, &argv)
FileHandle.standardError("gra: cannot run \(executable): \(String(cString: strerror(errno)))\n")
exit(69)

enum FileHandle {
    static func standardError(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
