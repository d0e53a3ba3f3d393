import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The --log file: one NDJSON line per request, each written with a single write(2) on an
/// O_APPEND descriptor, so a reader polling the file sees whole lines as soon as they exist.
///
/// The Authorization header is never written; "auth" only says whether it was good.
final class RequestLog {
    private let fd: Int32
    private let path: String
    private let line = ByteBuffer(capacity: 4096)
    private let diagnostics: Diagnostics
    private var failed = false

    init(path: String, diagnostics: Diagnostics) throws(GRAError) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw GRAError.io("cannot open log \(path): \(String(cString: strerror(errno)))") }
        self.path = path
        self.diagnostics = diagnostics
    }

    deinit { close(fd) }

    /// Appends the line for one request. `body` is the parsed JSON if it was JSON.
    func record(
        seq: Int, connection: Int, method: String, path: String, model: String?, auth: Bool, rule: Int?,
        body: [UInt8], parsed: JSONValue?
    ) {
        let b = line
        b.removeAll()
        b.append("{\"seq\":")
        b.appendInt(seq)
        b.append(",\"time\":")
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        b.appendInt(Int(ts.tv_sec))
        b.append(UInt8(ascii: "."))
        let micros = Int(ts.tv_nsec) / 1000
        var scale = 100_000
        while scale > 0 {
            b.append(UInt8(0x30 + (micros / scale) % 10))
            scale /= 10
        }
        b.append(",\"connection\":")
        b.appendInt(connection)
        b.append(",\"method\":")
        JSONWriter.writeString(method, to: b)
        b.append(",\"path\":")
        JSONWriter.writeString(path, to: b)
        b.append(",\"model\":")
        if let model { JSONWriter.writeString(model, to: b) } else { b.append("null") }
        b.append(auth ? ",\"auth\":true,\"rule\":" : ",\"auth\":false,\"rule\":")
        if let rule { b.appendInt(rule) } else { b.append("null") }
        b.append(",\"body\":")
        if let parsed {
            JSONWriter.write(parsed, to: b)
        } else if body.isEmpty {
            b.append("null")
        } else {
            JSONWriter.writeString(String(decoding: body, as: UTF8.self), to: b)
        }
        b.append("}\n")
        var done = 0
        while done < b.count {
            let n = write(fd, b.base + done, b.count - done)
            if n > 0 {
                done += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if !failed {
                failed = true
                diagnostics.warn("writing the log \(self.path) failed: \(String(cString: strerror(errno)))")
            }
            return
        }
    }
}
