#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An input named on the command line: a file, or standard input for "-".
public struct InputFile: Sendable {
    public let fd: Int32
    /// How messages name it: the path, or "" for standard input (messages then say "line N").
    public let label: String

    public init(_ path: String) throws(GRAError) {
        if path == "-" {
            fd = 0
            label = ""
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw GRAError.io("cannot open \(path): \(String(cString: strerror(errno)))") }
            label = path
        }
    }

    /// "line 3" for standard input, "file.jsonl:3" for a file.
    public func place(_ line: Int) -> String { InputFile.place(line, in: label) }

    /// "line 3" when `label` is empty (standard input), else "label:3".
    static func place(_ line: Int, in label: String) -> String { label.isEmpty ? "line \(line)" : "\(label):\(line)" }

    public func close() { if fd > 2 { closeDescriptor(fd) } }
}

/// Reads a file descriptor line by line with large `read(2)` calls.
///
/// Each line is handed out as a view into the reader's buffer, valid until the next call.
/// Lines longer than `maxLineBytes` are skipped to their end and reported as `.tooLong`,
/// so a caller can stop or go on. Line numbers count from 1; a final line without a
/// newline counts as a line.
public final class LineReader {
    /// One step of reading: a line, or a line that was over the size cap.
    public enum Item {
        case line(number: Int, bytes: UnsafeBufferPointer<UInt8>)
        case tooLong(number: Int, bytes: Int)
    }

    public static let defaultMaxLineBytes = 64 << 20
    public static let readSize = 1 << 20

    public let fd: Int32
    public let maxLineBytes: Int
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var eof = false
    private var lineNumber = 0
    /// How many bytes were read before `buffer[0]`.
    private var bufferOffset = 0
    /// Where the last line handed out starts, in bytes read from `fd` (add the descriptor's
    /// position when reading began for a file offset).
    public private(set) var lastLineOffset = 0

    public init(fd: Int32, maxLineBytes: Int = LineReader.defaultMaxLineBytes) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
        capacity = LineReader.readSize * 2
        buffer = .allocate(capacity: capacity)
    }

    deinit { buffer.deallocate() }

    /// Reads more bytes after `end`; returns false at end of file.
    private func fill() throws(GRAError) -> Bool {
        if capacity - end < LineReader.readSize {
            // Move the unconsumed part to the front, then grow if that is not enough.
            if start > 0 {
                if end > start { buffer.update(from: buffer + start, count: end - start) }
                end -= start
                bufferOffset += start
                start = 0
            }
            if capacity - end < LineReader.readSize {
                let newCapacity = max(capacity * 2, end + LineReader.readSize)
                let p = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
                p.update(from: buffer, count: end)
                buffer.deallocate()
                buffer = p
                capacity = newCapacity
            }
        }
        while true {
            let n = read(fd, buffer + end, capacity - end)
            if n > 0 {
                end += n
                return true
            }
            if n == 0 { return false }
            if errno == EINTR {
                if Signals.interrupted { throw GRAError.interrupted }
                continue
            }
            throw GRAError.io("cannot read input: \(String(cString: strerror(errno)))")
        }
    }

    /// True once the input has ended and every line has been handed out.
    public var isAtEnd: Bool { eof && start >= end }

    /// The next line (without its `\n`), or nil at end of input. With `mayRead` false it
    /// never waits for input: it returns nil when no complete line is buffered yet.
    public func next(mayRead: Bool = true) throws(GRAError) -> Item? {
        var scanFrom = start
        while true {
            if scanFrom < end,
               let nl = memchr(buffer + scanFrom, 0x0A, end - scanFrom) {
                let nlIndex = UnsafeMutablePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - buffer
                let lineStart = start
                start = nlIndex + 1
                lineNumber += 1
                let length = nlIndex - lineStart
                if length > maxLineBytes { return .tooLong(number: lineNumber, bytes: length) }
                lastLineOffset = bufferOffset + lineStart
                return .line(number: lineNumber, bytes: UnsafeBufferPointer(start: buffer + lineStart, count: length))
            }
            if end - start > maxLineBytes {
                // Over the cap: discard up to the next newline without keeping it.
                lineNumber += 1
                let number = lineNumber
                let total = try skipOverlongLine()
                return .tooLong(number: number, bytes: total)
            }
            if eof {
                guard end > start else { return nil }
                let lineStart = start
                start = end
                lineNumber += 1
                lastLineOffset = bufferOffset + lineStart
                return .line(number: lineNumber, bytes: UnsafeBufferPointer(start: buffer + lineStart, count: end - lineStart))
            }
            if !mayRead { return nil }
            let scanned = end - start
            if try !fill() { eof = true }
            scanFrom = start + scanned
        }
    }

    /// Drops bytes up to and including the next newline; returns how many the line had.
    private func skipOverlongLine() throws(GRAError) -> Int {
        var total = 0
        while true {
            if let nl = memchr(buffer + start, 0x0A, end - start) {
                let nlIndex = UnsafeMutablePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - buffer
                total += nlIndex - start
                start = nlIndex + 1
                return total
            }
            total += end - start
            bufferOffset += end
            start = 0
            end = 0
            if try !fill() {
                eof = true
                return total
            }
        }
    }

    /// Reads everything that is left (used for whole-document JSON arrays).
    public func readRest() throws(GRAError) -> [UInt8] {
        var out = Array(UnsafeBufferPointer(start: buffer + start, count: end - start))
        start = end
        while !eof {
            let before = end
            if try !fill() {
                eof = true
                break
            }
            out.append(contentsOf: UnsafeBufferPointer(start: buffer + before, count: end - before))
            start = end
        }
        return out
    }

    /// The first byte that is not JSON whitespace, reading as much as needed; nil when the
    /// input is only whitespace. Consumes nothing.
    public func peekFirstNonWhitespace() throws(GRAError) -> UInt8? {
        var i = start
        while true {
            while i < end {
                let c = buffer[i]
                if c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09 { return c }
                i += 1
            }
            if eof { return nil }
            let offset = i - start
            if try !fill() { eof = true }
            i = start + offset
        }
    }
}

private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
private func systemWrite(_ fd: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) -> Int { write(fd, p, n) }

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
