#if canImport(Glibc)
import Glibc
#endif

/// Where a stage's failed (or rejected) records go: the file the user named (`--errors FILE`,
/// opened when the run starts), or else a default file in the working directory,
/// `./gra-STAGE.errors.ndjson`, made when the first record comes, so nothing is lost when no
/// file was named. The default never overwrites anything: when the name is taken, the next free
/// one (`gra-STAGE.errors.2.ndjson`, …) is made (with `O_EXCL`, so two runs never share one).
///
/// `--errors /dev/null` discards on purpose. Safe to share between threads (gra-format's
/// reading and writing steps share one rejects file).
public final class SideOutput: @unchecked Sendable {
    private let lock = Mutex()
    /// "errors" or "rejects": the default file's middle name and how messages name it.
    public let kind: String
    private let tool: String
    private let namedPath: String?
    private var sink: OutputSink?
    /// The file written to, once there is one.
    public private(set) var path: String?
    /// Lines written.
    public private(set) var lines = 0

    /// `tool`: e.g. "gra-generate"; `path`: the file the user named, if any.
    public init(kind: String, tool: String, path: String?) {
        self.kind = kind
        self.tool = tool
        self.namedPath = path
    }

    /// Opens the named file (creating or truncating it), if one was named.
    public func open() throws(GRAError) {
        try lock.locked { () throws(GRAError) in
            if let namedPath, sink == nil {
                sink = try OutputSink(path: namedPath)
                path = namedPath
            }
        }
    }

    /// True when records go to a file made because none was named.
    public var isDefault: Bool { namedPath == nil && path != nil }

    public func writeLine(_ record: JSONObject) throws(GRAError) {
        try lock.locked { () throws(GRAError) in
            if sink == nil { try openDefault() }
            try sink!.writeLine(record)
            lines += 1
        }
    }

    /// Writes one line that `build` appends to the buffer (without its newline).
    public func writeLine(building build: (ByteBuffer) -> Void) throws(GRAError) {
        try lock.locked { () throws(GRAError) in
            if sink == nil { try openDefault() }
            build(sink!.buffer)
            sink!.buffer.append(0x0A)
            lines += 1
            try sink!.lineEnded()
        }
    }

    /// Writes complete lines (`count` of them) held elsewhere.
    public func write(lines bytes: UnsafeBufferPointer<UInt8>, count: Int) throws(GRAError) {
        guard count > 0 else { return }
        try lock.locked { () throws(GRAError) in
            if sink == nil { try openDefault() }
            try sink!.write(lines: bytes)
            lines += count
        }
    }

    public func flush() throws(GRAError) {
        try lock.locked { () throws(GRAError) in try sink?.flush() }
    }

    /// Flushes and closes the file (writing again reopens nothing: call once, at the end).
    public func close() {
        lock.locked {
            try? sink?.flush()
            if let sink, sink.fd > 2 { sink.close() }
            sink = nil
        }
    }

    /// The sentence the end-of-run summary adds when records went to a default file.
    public var defaultFileNote: String? {
        guard isDefault, let path else { return nil }
        return
            """
            \(lines) \(kind == "errors" ? "failed" : "rejected") record(s) written to \(path) (choose the file \
            with --\(kind) FILE; --\(kind) /dev/null drops them)
            """
    }

    private func openDefault() throws(GRAError) {
        for n in 1...10_000 {
            let candidate = n == 1 ? "./\(tool).\(kind).ndjson" : "./\(tool).\(kind).\(n).ndjson"
            let fd = Glibc.open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 {
                sink = OutputSink(fd: fd)
                path = candidate
                return
            }
            if errno != EEXIST {
                throw GRAError.io(
                    """
                    cannot create \(candidate) for the \(kind) (no --\(kind) FILE was given): \
                    \(String(cString: strerror(errno)))
                    """
                )
            }
        }
        throw GRAError.io("cannot create a default \(kind) file: ./\(tool).\(kind).*.ndjson are all taken")
    }
}
