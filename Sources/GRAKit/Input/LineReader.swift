#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file descriptor with large `read(2)` calls, as NDJSON lines (`next`) or as the
/// elements of one JSON array document (`nextElement`), never holding more than one line or
/// element (plus one read) in memory.
///
/// Each line or element is handed out as a view into the reader's buffer, valid until the
/// next call. Lines and elements longer than `maxLineBytes` are skipped to their end and
/// reported as `.tooLong`, so a caller can stop or go on. Line numbers count from 1; a final
/// line without a newline counts as a line.
///
/// The buffer is compacted and grown by `fill()`, which moves the unconsumed bytes to the
/// front: every position kept across a `fill()` is therefore kept relative to `start`.
public final class LineReader {
    /// One step of reading: a line, an array element, or one that was over the size cap.
    public enum Item {
        case line(number: Int, bytes: UnsafeBufferPointer<UInt8>)
        /// An element of a JSON array: its 0-based index and the line it starts on.
        case element(index: Int, line: Int, bytes: UnsafeBufferPointer<UInt8>)
        /// A line (element nil) or array element over `maxLineBytes`, skipped.
        case tooLong(number: Int, bytes: Int, element: Int?)
    }

    public static let defaultMaxLineBytes = 64 << 20

    public static let defaultReadSize = 1 << 20

    public let fd: Int32
    public let maxLineBytes: Int
    /// The most bytes asked of one `read(2)` (tests set it small to move chunk boundaries).
    public let readSize: Int
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
    /// Bytes read from `fd` and handed out (or skipped) so far: where reading stands, for progress.
    public var consumed: Int { bufferOffset + start }

    /// `nextElement`'s place in the array document.
    private enum ArrayState { case beforeOpen, afterOpen, beforeElement, afterElement, closed }
    private var arrayState = ArrayState.beforeOpen
    private var elementCount = 0
    /// The line `buffer[start]` is on, for array documents.
    private var arrayLine = 1

    public init(
        fd: Int32, maxLineBytes: Int = LineReader.defaultMaxLineBytes, readSize: Int = LineReader.defaultReadSize
    ) {
        precondition(readSize > 0)
        self.fd = fd
        self.maxLineBytes = maxLineBytes
        self.readSize = readSize
        capacity = max(readSize * 2, 1 << 12)
        buffer = LineReader.resize(nil, to: capacity)
    }

    deinit { free(buffer) }

    /// The buffer lives in malloc's memory so that growing it is a `realloc`: a big buffer is
    /// moved by remapping its pages, not copied into a second one (which held both, 3x the
    /// line, at the moment a 64 MiB line grew the buffer).
    private static func resize(_ old: UnsafeMutablePointer<UInt8>?, to bytes: Int) -> UnsafeMutablePointer<UInt8> {
        guard let p = realloc(old, bytes) else { fatalError("out of memory: a \(bytes)-byte input buffer") }
        return p.assumingMemoryBound(to: UInt8.self)
    }

    /// Reads more bytes after `end`; returns false at end of file. May move the unconsumed
    /// bytes (from `start`) to the front of the buffer: callers keep offsets from `start`.
    private func fill() throws(GRAError) -> Bool {
        if capacity - end < readSize {
            // Move the unconsumed part to the front, then grow if that is not enough.
            if start > 0 {
                if end > start { buffer.update(from: buffer + start, count: end - start) }
                end -= start
                bufferOffset += start
                start = 0
            }
            if capacity - end < readSize {
                // Doubling, but never past what a line at the cap needs: a longer one is
                // skipped without being kept (`next`), so more room would only be filled.
                let newCapacity = max(min(capacity * 2, maxLineBytes + 2 * readSize), end + readSize)
                buffer = LineReader.resize(buffer, to: newCapacity)
                capacity = newCapacity
            }
        }
        while true {
            let n = read(fd, buffer + end, min(readSize, capacity - end))
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

    /// The next line (without its `\n`), or nil at end of input. With `mayRead` false it
    /// never waits for input: it returns nil when no complete line is buffered yet.
    public func next(mayRead: Bool = true) throws(GRAError) -> Item? {
        var scanFrom = start
        while true {
            if scanFrom < end,
                let nl = memchr(buffer + scanFrom, 0x0A, end - scanFrom)
            {
                let nlIndex = UnsafeMutablePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - buffer
                let lineStart = start
                start = nlIndex + 1
                lineNumber += 1
                let length = nlIndex - lineStart
                if length > maxLineBytes { return .tooLong(number: lineNumber, bytes: length, element: nil) }
                lastLineOffset = bufferOffset + lineStart
                return .line(number: lineNumber, bytes: UnsafeBufferPointer(start: buffer + lineStart, count: length))
            }
            if end - start > maxLineBytes {
                // Skipping reads on to the line's end: not without leave to wait.
                if !mayRead { return nil }
                // Over the cap: discard up to the next newline without keeping it.
                lineNumber += 1
                let number = lineNumber
                let total = try skipOverlongLine()
                return .tooLong(number: number, bytes: total, element: nil)
            }
            if eof {
                guard end > start else { return nil }
                let lineStart = start
                start = end
                lineNumber += 1
                lastLineOffset = bufferOffset + lineStart
                return .line(
                    number: lineNumber, bytes: UnsafeBufferPointer(start: buffer + lineStart, count: end - lineStart))
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

    /// Reads once more without consuming anything; false at end of input.
    private func readMore() throws(GRAError) -> Bool {
        if eof { return false }
        if try !fill() { eof = true }
        return !eof
    }

    /// How an input is laid out: NDJSON, or one JSON array of records.
    public enum Layout { case ndjson, array }

    /// Looks at the start of the input: a JSON array or NDJSON. Input that is neither, but
    /// recognisably something else, stops here with a message saying what it looks like and
    /// what to do: compressed data (gzip, zstd, bzip2, xz, zip) and one JSON object printed
    /// over several lines. `label` names the input ("" for standard input).
    ///
    /// Reads only as far as it must (a pipe fed slowly is not waited on for more than the
    /// first line and the start of the second), and consumes nothing.
    public func layout(label: String) throws(GRAError) -> Layout {
        let name = label.isEmpty ? "standard input" : label
        let file = label.isEmpty ? "FILE" : label
        while end - start < 6, try readMore() {}
        let magic: [(bytes: [UInt8], kind: String, tool: String)] = [
            ([0x1F, 0x8B], "gzip", "zcat"), ([0x28, 0xB5, 0x2F, 0xFD], "zstd", "zstdcat"),
            ([0x42, 0x5A, 0x68], "bzip2", "bzcat"), ([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "xz", "xzcat"),
            ([0x50, 0x4B, 0x03, 0x04], "zip", "unzip -p")
        ]
        for m in magic
        where end - start >= m.bytes.count && (0..<m.bytes.count).allSatisfy({ buffer[start + $0] == m.bytes[$0] }) {
            throw GRAError.badInput(
                """
                \(name) looks \(m.kind)-compressed: decompress it first, e.g. \(m.tool) \(file) | \
                \(Diagnostics.toolName) …
                """
            )
        }
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }
        // Offsets from `start` (fill() may move the buffer).
        var first = 0
        while true {
            while start + first < end && isSpace(buffer[start + first]) { first += 1 }
            if start + first < end { break }
            guard try readMore() else { return .ndjson }
        }
        if buffer[start + first] == UInt8(ascii: "[") { return .array }
        guard buffer[start + first] == UInt8(ascii: "{") else { return .ndjson }
        // The first line: a record ends it with '}'. One that does not (a lone '{', or a
        // record cut short) is a pretty-printed object when the next line is indented. Looks
        // at most 64 KiB ahead, and past the first line only when that line does not settle it.
        var newline = first
        while true {
            while start + newline < end && buffer[start + newline] != 0x0A { newline += 1 }
            if start + newline < end { break }
            guard end - start < 1 << 16, try readMore() else { return .ndjson }
        }
        var lineEnd = newline
        while lineEnd > first
            && (buffer[start + lineEnd - 1] == 0x0D || buffer[start + lineEnd - 1] == 0x20
                || buffer[start + lineEnd - 1] == 0x09)
        { lineEnd -= 1 }
        let opensAlone = lineEnd == first + 1
        if !opensAlone && buffer[start + lineEnd - 1] == UInt8(ascii: "}") { return .ndjson }
        var next: UInt8?
        while !opensAlone {
            var k = newline + 1
            while start + k < end && (buffer[start + k] == 0x0A || buffer[start + k] == 0x0D) { k += 1 }
            if start + k < end {
                next = buffer[start + k]
                break
            }
            guard end - start < 1 << 16, try readMore() else { break }
        }
        let indentedNext = next == 0x20 || next == 0x09 || next == UInt8(ascii: "\"")
        if opensAlone || indentedNext {
            throw GRAError.badInput(
                """
                \(name) looks like one JSON object printed over several lines, not NDJSON (one record per line) \
                or a JSON array of records: write one record per line (e.g. jq -c . \(file)), or put the records \
                in [ … ]
                """
            )
        }
        return .ndjson
    }

    // MARK: - JSON array documents

    /// The next element of the JSON array document that makes up the rest of the input, or
    /// nil after its closing `]` (only whitespace may follow). An element is found by its
    /// brackets and strings alone, then handed out unparsed, so a malformed element can be
    /// reported (and skipped) on its own; a broken array structure (no `[`, no `,` between
    /// elements, no closing `]`, data after it) throws `GRAError.badInput`.
    /// With `mayRead` false it never waits for input: it returns nil when no complete
    /// element is buffered yet.
    public func nextElement(mayRead: Bool = true) throws(GRAError) -> Item? {
        while true {
            guard let c = try skipWhitespace(mayRead: mayRead) else {
                if !eof { return nil }  // nothing buffered, and not allowed to wait
                switch arrayState {
                case .closed: return nil
                case .beforeOpen: throw GRAError.badInput("line \(arrayLine): expected '[' to open a JSON array")
                default:
                    throw GRAError.badInput(
                        "line \(arrayLine): JSON array is not closed (input ends after element \(elementCount))")
                }
            }
            switch arrayState {
            case .beforeOpen:
                guard c == UInt8(ascii: "[") else {
                    throw GRAError.badInput("line \(arrayLine): expected '[' to open a JSON array")
                }
                start += 1
                arrayState = .afterOpen
            case .afterOpen where c == UInt8(ascii: "]"):
                start += 1
                arrayState = .closed
            case .afterOpen, .beforeElement:
                return try scanElement(mayRead: mayRead)
            case .afterElement:
                start += 1
                if c == UInt8(ascii: "]") {
                    arrayState = .closed
                } else if c == UInt8(ascii: ",") {
                    arrayState = .beforeElement
                } else {
                    throw GRAError.badInput("line \(arrayLine): expected ',' or ']' between array elements")
                }
            case .closed:
                throw GRAError.badInput("line \(arrayLine): unexpected data after the JSON array")
            }
        }
    }

    /// Consumes JSON whitespace (counting lines); the next byte, or nil at end of input (or
    /// when the buffer ran out and `mayRead` is false).
    private func skipWhitespace(mayRead: Bool) throws(GRAError) -> UInt8? {
        while true {
            while start < end {
                let c = buffer[start]
                if c == 0x0A {
                    arrayLine += 1
                } else if c != 0x20 && c != 0x0D && c != 0x09 {
                    return c
                }
                start += 1
            }
            if eof || !mayRead { return nil }
            if try !fill() { eof = true }
        }
    }

    /// Scans one element from `start`: an object or array to its closing bracket, anything
    /// else to the `,` or `]` that ends it at depth 0 outside strings (left unconsumed).
    /// Scanning state lives in locals across `fill()`, so strings, escapes and nesting may
    /// straddle any read boundary. Without `mayRead`, an element not
    /// wholly buffered is left for the next call (nil), unless it is already being dropped.
    private func scanElement(mayRead: Bool) throws(GRAError) -> Item? {
        let index = elementCount
        let line = arrayLine
        elementCount += 1
        var depth = 0
        var inString = false
        var escaped = false
        var newlines = 0
        var discarded = 0  // bytes of an overlong element dropped from the buffer
        var i = start
        while true {
            while i < end {
                let c = buffer[i]
                if inString {
                    if escaped {
                        escaped = false
                    } else if c == UInt8(ascii: "\\") {
                        escaped = true
                    } else if c == UInt8(ascii: "\"") {
                        inString = false
                    } else if c == 0x0A {
                        newlines += 1
                    }
                } else if c == UInt8(ascii: "\"") {
                    inString = true
                } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                    depth += 1
                } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                    if depth == 0 {
                        return finishElement(
                            index: index, line: line, upTo: i, discarded: discarded, newlines: newlines)
                    }
                    depth -= 1
                    // An object or array element ends with its closing bracket, so a missing
                    // comma after it is named as such.
                    if depth == 0 {
                        return finishElement(
                            index: index, line: line, upTo: i + 1, discarded: discarded, newlines: newlines)
                    }
                } else if c == UInt8(ascii: ",") && depth == 0 {
                    return finishElement(index: index, line: line, upTo: i, discarded: discarded, newlines: newlines)
                } else if c == 0x0A {
                    newlines += 1
                }
                i += 1
            }
            if discarded > 0 || i - start > maxLineBytes {
                // Over the cap: keep scanning for the element's end, but drop what is read.
                discarded += i - start
                start = i
            }
            if !mayRead && discarded == 0 && !eof {
                elementCount -= 1
                return nil
            }
            let scanned = i - start
            if !eof, try !fill() { eof = true }
            if eof {
                throw GRAError.badInput(
                    "line \(line): JSON array is not closed (input ends inside element \(index + 1))")
            }
            i = start + scanned
        }
    }

    private func finishElement(index: Int, line: Int, upTo i: Int, discarded: Int, newlines: Int) -> Item {
        let elementStart = start
        start = i
        arrayLine += newlines
        arrayState = .afterElement
        let count = discarded + (i - elementStart)
        if count > maxLineBytes { return .tooLong(number: line, bytes: count, element: index) }
        return .element(
            index: index, line: line, bytes: UnsafeBufferPointer(start: buffer + elementStart, count: i - elementStart))
    }
}
