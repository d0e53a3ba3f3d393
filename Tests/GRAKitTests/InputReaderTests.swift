import Foundation
import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

/// The input layer under every read size: `LineReader.next` (NDJSON lines) and
/// `LineReader.nextElement` (JSON array documents), from a regular file (where `readSize`
/// sets every chunk boundary exactly) and from a pipe fed in random pieces by another thread.
/// The expected records are the ones each test generated, never what the reader says.
@Suite("Input reader: lines and array elements at every chunk boundary")
struct InputReaderTests {
    // MARK: - Generated documents

    /// A small deterministic generator (tests must repeat exactly).
    struct Rand {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
    }

    /// Text full of what a splitter must not be fooled by: quotes, backslashes, brackets,
    /// commas, newlines, multi-byte characters.
    static func nastyString(_ r: inout Rand, maxLength: Int) -> String {
        let pieces = [
            "\"", "\\", "[", "]", "{", "}", ",", "\n", "\r\n", "\t", "é", "漢", "😀", "\\\"", "\"]", "},{", "a", "b c",
            " ", "\u{1}"
        ]
        var s = ""
        for _ in 0..<r.int(0...maxLength) { s += pieces[r.int(0...(pieces.count - 1))] }
        return s
    }

    static func randomValue(_ r: inout Rand, depth: Int, maxString: Int) -> JSONValue {
        switch r.int(0...(depth > 2 ? 4 : 6)) {
        case 0: return .null
        case 1: return .bool(r.chance(50))
        case 2: return .number(String(r.int(-1000...1000)) + (r.chance(30) ? ".5e3" : ""))
        case 3, 4: return .string(nastyString(&r, maxLength: maxString))
        case 5: return .array((0..<r.int(0...4)).map { _ in randomValue(&r, depth: depth + 1, maxString: maxString) })
        default:
            var o = JSONObject()
            for k in 0..<r.int(0...4) {
                o.append(
                    "k\(k)\(nastyString(&r, maxLength: 3))", randomValue(&r, depth: depth + 1, maxString: maxString))
            }
            return .object(o)
        }
    }

    /// A record-like element: mostly objects, sometimes a scalar or a nested array (an array
    /// document may hold anything; the reader hands each element out unparsed).
    static func randomElement(_ r: inout Rand, maxString: Int) -> JSONValue {
        if r.chance(10) { return randomValue(&r, depth: 2, maxString: maxString) }
        if r.chance(5) { return .array([.array([randomValue(&r, depth: 2, maxString: maxString)]), .array([])]) }
        var o = JSONObject()
        o.append("instruction", .string(nastyString(&r, maxLength: maxString)))
        o.append("output", .string(nastyString(&r, maxLength: maxString)))
        o.append("meta", randomValue(&r, depth: 1, maxString: maxString))
        return .object(o)
    }

    /// Whitespace between tokens, in one of several layouts: none, spaces, LF, CRLF, runs of all.
    static func whitespace(_ r: inout Rand, layout: Int) -> String {
        switch layout {
        case 0: return ""
        case 1: return " "
        case 2: return "\n  "
        case 3: return "\r\n\t"
        default: return ["", " ", "\n", "\r\n", "\t\t", "\n\n  \r\n "][r.int(0...5)]
        }
    }

    /// A JSON array document of `elements`, each written by `JSONWriter` (so its strings carry
    /// every escape) with whitespace of `layout` around; returns the document and the line each
    /// element starts on.
    static func arrayDocument(_ elements: [JSONValue], layout: Int, r: inout Rand) -> (bytes: [UInt8], lines: [Int]) {
        var doc = whitespace(&r, layout: layout) + "[" + whitespace(&r, layout: layout)
        var lines: [Int] = []
        for (i, e) in elements.enumerated() {
            if i > 0 { doc += whitespace(&r, layout: layout) + "," + whitespace(&r, layout: layout) }
            lines.append(doc.utf8.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) })
            doc += JSONWriter.string(e)
        }
        doc += whitespace(&r, layout: layout) + "]" + whitespace(&r, layout: layout)
        return (Array(doc.utf8), lines)
    }

    // MARK: - Feeding the reader

    /// A regular file holding `bytes` (read(2) then returns exactly what is asked for).
    static func file(_ bytes: [UInt8]) throws -> Int32 {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gra-input-\(UUID().uuidString)")
        try Data(bytes).write(to: url)
        let fd = open(url.path, O_RDONLY)
        unlink(url.path)
        try #require(fd >= 0)
        return fd
    }

    /// The read end of a pipe that another thread fills with `bytes` in pieces of random size
    /// (1 byte to `maxPiece`), pausing now and then so the reader finds it empty.
    static func pipe(_ bytes: [UInt8], seed: UInt64, maxPiece: Int, slow: Bool = false) -> Int32 {
        var fds: [Int32] = [0, 0]
        precondition(Glibc.pipe(&fds) == 0)
        let writeEnd = fds[1]
        let data = bytes
        Thread.detachNewThread {
            var r = Rand(state: seed)
            var at = 0
            data.withUnsafeBufferPointer { buf in
                while at < buf.count {
                    let n = min(r.int(1...maxPiece), buf.count - at)
                    var done = 0
                    while done < n {
                        let w = write(writeEnd, buf.baseAddress! + at + done, n - done)
                        if w <= 0 { break }
                        done += w
                    }
                    at += n
                    if slow && r.chance(20) { usleep(UInt32(r.int(0...300))) }
                }
            }
            close(writeEnd)
        }
        return fds[0]
    }

    /// Every element `nextElement` hands out, parsed, with its index and line; or the error.
    static func readElements(
        fd: Int32, readSize: Int, maxBytes: Int = LineReader.defaultMaxLineBytes,
        nonBlockingAfterFirst: Bool = false
    ) -> (elements: [(Int, Int, JSONValue?)], tooLong: [Int], error: GRAError?) {
        defer { close(fd) }
        let reader = LineReader(fd: fd, maxLineBytes: maxBytes, readSize: readSize)
        var out: [(Int, Int, JSONValue?)] = []
        var tooLong: [Int] = []
        do {
            if try reader.peekFirstNonWhitespace() != UInt8(ascii: "[") { return ([], [], .badInput("not an array")) }
            while true {
                // Alternate waiting and not waiting, as batches do.
                let item: LineReader.Item?
                if nonBlockingAfterFirst, let quick = try reader.nextElement(mayRead: false) {
                    item = quick
                } else {
                    item = try reader.nextElement()
                }
                guard let item else { break }
                switch item {
                case .element(let index, let line, let bytes): out.append((index, line, try? JSONParser.parse(bytes)))
                case .tooLong(_, _, let element?): tooLong.append(element)
                default: Issue.record("unexpected item \(item)")
                }
            }
        } catch {
            return (out, tooLong, error)
        }
        return (out, tooLong, nil)
    }

    static func expectElements(_ got: [(Int, Int, JSONValue?)], _ values: [JSONValue], lines: [Int], _ context: String)
    {
        #expect(got.count == values.count, "\(context): \(got.count) elements, expected \(values.count)")
        for (k, (index, line, value)) in got.enumerated() where k < values.count {
            if index != k || line != lines[k] || value != values[k] {
                Issue.record(
                    """
                    \(context): element \(k) came out as #\(index) on line \(line) = \
                    \(value.map(JSONWriter.string) ?? "unparsable"), expected line \(lines[k]) = \
                    \(JSONWriter.string(values[k]))
                    """
                )
                return
            }
        }
    }

    // MARK: - Array documents

    /// Small documents at every read size from 1 byte to the whole document: every string,
    /// escape, element and bracket straddles a boundary somewhere.
    @Test(arguments: 0..<5)
    func smallArraysAtEveryReadSize(layout: Int) throws {
        var r = Rand(state: UInt64(100 + layout))
        for _ in 0..<6 {
            let values = (0..<r.int(0...6)).map { _ in Self.randomElement(&r, maxString: 6) }
            let (doc, lines) = Self.arrayDocument(values, layout: layout, r: &r)
            for readSize in 1...(doc.count + 1) {
                let got = Self.readElements(fd: try Self.file(doc), readSize: readSize)
                #expect(got.error == nil, "layout \(layout), read size \(readSize): \(String(describing: got.error))")
                Self.expectElements(got.elements, values, lines: lines, "layout \(layout), read size \(readSize)")
            }
        }
    }

    /// Larger documents: read sizes from 1 byte to 4 MiB, from a file and from pipes fed in
    /// random pieces (waiting and non-waiting reads mixed).
    @Test func largerArraysAtRandomReadSizesFromFilesAndPipes() throws {
        var r = Rand(state: 7)
        let values = (0..<400).map { _ in Self.randomElement(&r, maxString: 400) }
        let (doc, lines) = Self.arrayDocument(values, layout: 4, r: &r)
        #expect(doc.count > 300_000)
        var sizes = [1, 2, 3, 7, 64, 4095, 4096, 4097, 65_536, 1 << 20, 4 << 20]
        for _ in 0..<6 { sizes.append(r.int(1...(doc.count))) }
        for readSize in sizes {
            let got = Self.readElements(fd: try Self.file(doc), readSize: readSize)
            #expect(got.error == nil)
            Self.expectElements(got.elements, values, lines: lines, "file, read size \(readSize)")
        }
        for (i, maxPiece) in [1, 13, 4096, 100_000].enumerated() {
            let got = Self.readElements(
                fd: Self.pipe(doc, seed: UInt64(i), maxPiece: maxPiece, slow: i == 1 || i == 2),
                readSize: r.int(1...(1 << 16)), nonBlockingAfterFirst: true)
            #expect(got.error == nil)
            Self.expectElements(got.elements, values, lines: lines, "pipe, pieces up to \(maxPiece)")
        }
    }

    /// An element over the size cap is reported with its number and skipped; the ones after
    /// it still come out right, whatever the read size.
    @Test func overlongElementIsSkippedAndTheRestSurvive() throws {
        var r = Rand(state: 11)
        var values = (0..<5).map { _ in Self.randomElement(&r, maxString: 20) }
        values[2] = .object(["output": .string(String(repeating: "x\\\"]},", count: 300))])
        let (doc, lines) = Self.arrayDocument(values, layout: 2, r: &r)
        let cap = 1000
        for readSize in [1, 5, 100, 999, 1000, 1001, 5000, 1 << 20] {
            let got = Self.readElements(fd: try Self.file(doc), readSize: readSize, maxBytes: cap)
            #expect(got.error == nil)
            #expect(got.tooLong == [2], "read size \(readSize)")
            var expected = values
            expected.remove(at: 2)
            var expectedLines = lines
            expectedLines.remove(at: 2)
            Self.expectElements(
                got.elements.map { ($0.0 > 2 ? $0.0 - 1 : $0.0, $0.1, $0.2) }, expected, lines: expectedLines,
                "read size \(readSize)")
        }
    }

    /// A broken array structure stops reading with the place it broke, at every read size,
    /// after handing out the elements before it.
    @Test(arguments: [
        (#"[{"a":1}, {"b":"x,]""#, 1, "line 1: JSON array is not closed (input ends inside element 2)"),
        (#"[{"a":1}, {"b":"x,]"}"#, 2, "line 1: JSON array is not closed (input ends after element 2)"),
        ("[{\"a\":1},\n{\"b\":2}\n", 2, "line 3: JSON array is not closed (input ends after element 2)"),
        ("[{\"a\":1}\n{\"b\":2}]", 1, "line 2: expected ',' or ']' between array elements"),
        ("[1,2]\n\n[3]", 2, "line 3: unexpected data after the JSON array"),
        ("[{\"a\":\"\\\"]\"", 0, "line 1: JSON array is not closed (input ends inside element 1)"),
        ("[{\"a\":\"\\\"]\"}", 1, "line 1: JSON array is not closed (input ends after element 1)"),
        ("[", 0, "line 1: JSON array is not closed (input ends after element 0)")
    ])
    func brokenStructureIsNamed(_ text: String, _ elementsBefore: Int, _ message: String) throws {
        let doc = Array(text.utf8)
        for readSize in 1...(doc.count + 1) {
            let got = Self.readElements(fd: try Self.file(doc), readSize: readSize)
            #expect(got.error == .badInput(message), "read size \(readSize)")
            #expect(got.elements.count == elementsBefore, "read size \(readSize)")
        }
    }

    /// Elements that are not valid JSON come out on their own (the caller reports them);
    /// the structure around them is still followed.
    @Test func malformedElementsAreHandedOutUnparsed() throws {
        let doc = Array("[{\"a\":1},{bad},\n{\"b\":2},]".utf8)
        for readSize in 1...(doc.count + 1) {
            let got = Self.readElements(fd: try Self.file(doc), readSize: readSize)
            #expect(got.error == nil)
            #expect(got.elements.map(\.0) == [0, 1, 2, 3])
            #expect(got.elements.map(\.1) == [1, 1, 2, 2])
            #expect(got.elements.map { $0.2 == nil } == [false, true, false, true])
        }
    }

    // MARK: - NDJSON lines

    static func readLines(fd: Int32, readSize: Int, maxBytes: Int) throws -> [String] {
        defer { close(fd) }
        let reader = LineReader(fd: fd, maxLineBytes: maxBytes, readSize: readSize)
        var out: [String] = []
        while let item = try reader.next() {
            switch item {
            case .line(let n, let bytes): out.append("\(n):" + String(decoding: bytes, as: UTF8.self))
            case .tooLong(let n, let b, nil): out.append("\(n):long \(b)")
            default: Issue.record("unexpected \(item)")
            }
        }
        return out
    }

    /// The reference: split on '\n'; a final piece without a newline is a line when not empty.
    static func referenceLines(_ text: [UInt8], maxBytes: Int) -> [String] {
        var pieces = text.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        if pieces.last?.isEmpty == true { pieces.removeLast() }
        return pieces.enumerated().map { i, p in
            p.count > maxBytes ? "\(i + 1):long \(p.count)" : "\(i + 1):" + String(decoding: p, as: UTF8.self)
        }
    }

    @Test func linesAtEveryReadSizeWithOverlongOnesAndCRLF() throws {
        var r = Rand(state: 3)
        for round in 0..<8 {
            var text: [UInt8] = []
            for _ in 0..<r.int(0...12) {
                text += Array(Self.nastyString(&r, maxLength: 15).replacingOccurrences(of: "\n", with: " ").utf8)
                text += r.chance(30) ? [0x0D, 0x0A] : [0x0A]
            }
            if r.chance(50) { text += Array("tail without newline".utf8) }
            let cap = 25
            let expected = Self.referenceLines(text, maxBytes: cap)
            for readSize in 1...(text.count + 1) {
                #expect(
                    try Self.readLines(fd: try Self.file(text), readSize: readSize, maxBytes: cap) == expected,
                    "round \(round), read size \(readSize)")
            }
            #expect(
                try Self.readLines(
                    fd: Self.pipe(text, seed: UInt64(round), maxPiece: 9, slow: true), readSize: 1 << 16, maxBytes: cap)
                    == expected)
        }
    }

    /// `LineBatch` (what the streaming stages read) over a slow pipe, for lines and for array
    /// elements: non-waiting reads after the first must never lose or split a record.
    @Test func batchesOverASlowPipeGiveEveryRecordOnce() throws {
        var r = Rand(state: 5)
        let values = (0..<300).map { _ in Self.randomElement(&r, maxString: 60) }
        let (doc, _) = Self.arrayDocument(values, layout: 3, r: &r)
        let ndjson = Array(values.map { JSONWriter.string($0) + "\n" }.joined().utf8)
        for (bytes, isArray) in [(doc, true), (ndjson, false)] {
            let fd = Self.pipe(bytes, seed: 9, maxPiece: 700, slow: true)
            defer { close(fd) }
            let reader = LineReader(fd: fd, readSize: 4096)
            if isArray { _ = try reader.peekFirstNonWhitespace() }
            var got: [JSONValue] = []
            while let batch = try LineBatch.read(from: reader, bytes: 2000, mayBlock: true, arrayElements: isArray) {
                for line in batch.lines {
                    switch line {
                    case .text(_, let start, let count), .element(_, _, let start, let count):
                        got.append(try JSONParser.parse(Array(batch.bytes[start..<(start + count)])))
                    case .tooLong: Issue.record("nothing here is too long")
                    }
                }
            }
            #expect(got == values, "array: \(isArray)")
        }
    }
}
