#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func closeDescriptor(_ fd: Int32) { _ = close(fd) }
func systemWrite(_ fd: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) -> Int { write(fd, p, n) }

/// Buffered output to a file descriptor that writes whole lines only.
///
/// Callers append complete lines to `buffer` and call `lineEnded()`; the sink writes when
/// the buffer passes `flushThreshold`, looping over partial writes and EINTR. A closed pipe
/// (EPIPE) surfaces as `GRAError.brokenPipe`, which the tools turn into a quiet exit 0.
public final class OutputSink {
    public let fd: Int32
    public let buffer = ByteBuffer(capacity: 1 << 20)
    public var flushThreshold = 1 << 18
    /// Bytes handed to the kernel so far.
    public private(set) var bytesWritten = 0

    public init(fd: Int32) { self.fd = fd }

    /// Opens (creating or truncating) `path` for writing.
    public convenience init(path: String) throws(GRAError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw GRAError.io("cannot open \(path) for writing: \(String(cString: strerror(errno)))") }
        self.init(fd: fd)
    }

    /// Call after appending one or more complete lines.
    @inline(__always)
    public func lineEnded() throws(GRAError) {
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Writes everything buffered.
    public func flush() throws(GRAError) {
        var done = 0
        let total = buffer.count
        while done < total {
            let n = systemWrite(fd, buffer.base + done, total - done)
            if n >= 0 {
                done += n
                continue
            }
            if errno == EINTR { continue }
            let err = errno
            buffer.removeFirst(done)
            bytesWritten += done
            if err == EPIPE { throw GRAError.brokenPipe }
            throw GRAError.io("cannot write output: \(String(cString: strerror(err)))")
        }
        bytesWritten += total
        buffer.removeAll()
    }

    /// Writes complete lines held elsewhere: small ones are buffered, large ones are written
    /// straight after what is already buffered (saving a copy).
    public func write(lines bytes: UnsafeBufferPointer<UInt8>) throws(GRAError) {
        if bytes.count < flushThreshold / 4 {
            buffer.append(bytes)
            try lineEnded()
            return
        }
        try flush()
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n >= 0 {
                done += n
                continue
            }
            if errno == EINTR { continue }
            bytesWritten += done
            if errno == EPIPE { throw GRAError.brokenPipe }
            throw GRAError.io("cannot write output: \(String(cString: strerror(errno)))")
        }
        bytesWritten += done
    }

    /// Appends `object` as one NDJSON line.
    public func writeLine(_ object: JSONObject) throws(GRAError) {
        JSONWriter.write(object, to: buffer)
        buffer.append(0x0A)
        try lineEnded()
    }

    /// Closes the descriptor unless it is stdin, stdout or stderr.
    public func close() {
        if fd > 2 { closeDescriptor(fd) }
    }
}
