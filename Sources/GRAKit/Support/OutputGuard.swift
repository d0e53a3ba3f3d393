#if canImport(Glibc)
import Glibc
#endif

/// Refuses a run whose outputs would overwrite one of its inputs or each other
/// (`gra-adjudicate --rejects in.ndjson in.ndjson` emptied its input once), before anything
/// is opened for writing.
///
/// Two paths are the same file when they name the same device and inode, or, for an output
/// that does not exist yet, resolve to the same path. Only regular files are compared:
/// `/dev/null`, pipes and terminals may serve several outputs. Standard output counts as an
/// output when it is a regular file (`> out.ndjson`, `>> in.ndjson`), standard input as an
/// input for "-".
public enum OutputGuard {
    /// One output: how messages name it ("--rejects", "standard output") and its path (nil for
    /// standard output, which is checked through descriptor 1).
    public struct Output {
        public var name: String
        public var path: String?
        public init(_ name: String, _ path: String?) {
            self.name = name
            self.path = path
        }
    }

    /// Throws `GRAError.noInput` (exit 66) for an input that cannot be read (so a missing
    /// second file is found before the first is processed), and `GRAError.usage` (exit 64)
    /// naming a clash.
    public static func check(inputs: [String], outputs: [Output], stdoutIsOutput: Bool = true) throws(GRAError) {
        for path in inputs where path != "-" {
            var st = stat()
            if stat(path, &st) != 0 || access(path, R_OK) != 0 {
                throw GRAError.noInput("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw GRAError.noInput("\(path) is a directory, not an input file") }
        }
        var ins: [(name: String, id: FileID)] = []
        for path in (inputs.isEmpty ? ["-"] : inputs) {
            if let id = path == "-" ? FileID(fd: 0) : FileID(path: path) {
                ins.append((path == "-" ? "standard input" : path, id))
            }
        }
        var outs: [(name: String, id: FileID)] = []
        if stdoutIsOutput, let id = FileID(fd: 1) { outs.append(("standard output", id)) }
        for o in outputs {
            guard let path = o.path, let id = FileID(path: path) ?? FileID(notYetCreated: path) else { continue }
            outs.append(("\(o.name) \(path)", id))
        }
        for (k, out) in outs.enumerated() {
            if let clash = ins.first(where: { $0.id == out.id }) {
                throw GRAError.usage("\(out.name) is the input \(clash.name): refusing to overwrite it")
            }
            if let clash = outs[..<k].first(where: { $0.id == out.id }) {
                throw GRAError.usage("\(out.name) is the same file as \(clash.name): give each output its own file")
            }
        }
    }

    /// A regular file's identity: device and inode, or the resolved path of one not yet made.
    struct FileID: Equatable {
        var device: UInt64 = 0
        var inode: UInt64 = 0
        var resolved: String?

        init?(fd: Int32) {
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
        }

        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
        }

        /// A file that does not exist: the real path of its folder and its name.
        init?(notYetCreated path: String) {
            var st = stat()
            guard stat(path, &st) != 0 else { return nil }
            let slash = path.lastIndex(of: "/")
            let folder = slash.map { String(path[..<$0]) } ?? "."
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            guard let real = realpath(folder.isEmpty ? "/" : folder, nil) else { return nil }
            defer { free(real) }
            resolved = String(cString: real) + "/" + name
        }
    }
}
