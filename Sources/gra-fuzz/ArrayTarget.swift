// The `array` target: LineReader.nextElement (the streaming JSON array reader) against a
// reference parse of the whole document.

import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Input: two header bytes (missing ones count as 0), then the document.
///
///  - byte 0: bits 0-5 pick the reader's `readSize` from `LinesConfig.readSizes`; bit 6: some
///    calls are `nextElement(mayRead: false)`; bit 7: the reader reads a temporary file, else
///    a pipe.
///  - byte 1 (pipe only): the writer's piece sizes, as byte 3 of the `lines` target.
///
/// The check, with `ReferenceJSON` (a plain recursive parser written for this harness):
///  - when the whole document is a JSON array, the reader hands out exactly its elements, in
///    order, numbered from 0, each parsing (`JSONParser`) to the reference's element, each on
///    the line the reference puts its first byte, then nil, and no error;
///  - when the reader hands out elements that all parse and ends without error, the
///    document is such an array (no broken document passes as a good one);
///  - whatever the bytes, no crash, no sanitizer report, no endless loop.
func checkArray(_ data: UnsafeBufferPointer<UInt8>) throws(CheckFailure) {
    let mode = data.count > 0 ? data[0] : 0
    let pieceByte = data.count > 1 ? data[1] : 0
    let body = data.count > 2 ? Array(data[2...]) : []
    let mixNoRead = mode & 0x40 != 0
    let readSize = max(LinesConfig.readSizes[Int(mode & 0x3F) % LinesConfig.readSizes.count], body.count / 1024)

    let feed: Feed
    if mode & 0x80 != 0 || body.count > 256 << 10 || !PipeFeed.available {
        feed = try FileFeed(body)
    } else {
        let maxPiece = LinesConfig.pieceSizes[Int(pieceByte & 7)]
        var pieces: [Int] = []
        var left = body.count
        var rng = SplitMix(seed: UInt64(pieceByte >> 3) &* 0x9E37 &+ 1)
        while left > 0 {
            let n = min(left, min(4096, max(max(1, body.count / 64), 1 + Int(rng.next() % UInt64(maxPiece)))))
            pieces.append(n)
            left -= n
        }
        feed = try PipeFeed(body, pieces: pieces)
    }
    defer { feed.finish() }

    // What the reader gives.
    let reader = LineReader(fd: feed.readFD, readSize: readSize)
    var got: [(index: Int, line: Int, value: JSONValue?)] = []
    var failure: GRAError?
    var rng = SplitMix(seed: UInt64(mode) &+ 7)
    var calls = 0
    var problem: String?
    do throws(GRAError) {
        if try reader.peekFirstNonWhitespace() == UInt8(ascii: "[") {
            reading: while true {
                calls += 1
                if calls > 4 * body.count + 16 {
                    problem = "nextElement made no progress (\(calls) calls)"
                    break
                }
                let mayRead = !mixNoRead || rng.next() % 3 != 0
                guard let item = try reader.nextElement(mayRead: mayRead) else {
                    if !mayRead { continue }
                    break
                }
                switch item {
                case .element(let index, let line, let bytes): got.append((index, line, try? JSONParser.parse(bytes)))
                default:
                    problem = "nextElement handed out \(item) with the default size cap"
                    break reading
                }
            }
        } else {
            failure = .badInput("not an array")
        }
    } catch {
        failure = error
    }
    if let problem { throw CheckFailure(message: problem) }

    // What the whole document is.
    let reference = body.withUnsafeBufferPointer { ReferenceJSON.parse($0) }
    if case .success(.array(let items)) = reference {
        try require(failure == nil, "a valid array of \(items.count) elements, but the reader stopped: \(failure!)")
        try require(got.count == items.count, "\(got.count) elements handed out, the array has \(items.count)")
        let lines = elementLines(body, count: items.count)
        for (k, e) in got.enumerated() {
            try require(e.index == k, "element \(k) numbered \(e.index)")
            guard let v = e.value else { throw CheckFailure(message: "element \(k) does not parse alone") }
            try require(strictlyEqual(v, items[k]), "element \(k) is \(preview(v)), expected \(preview(items[k]))")
            if k < lines.count {
                try require(e.line == lines[k], "element \(k) on line \(e.line), expected \(lines[k])")
            }
        }
    } else if failure == nil, got.allSatisfy({ $0.value != nil }) {
        // Deep nesting aside (an element alone may be one level under the depth limit that the
        // whole array is over), a document the reader takes whole must be an array.
        if case .failure(let f) = reference, f.why == "too deep" { return }
        throw CheckFailure(
            message: "the reader took \(got.count) elements from a document that is not a JSON array: \(reference)")
    }
}

/// The line each top-level element of a valid array starts on: scans with its own small
/// state machine (strings and escapes, nesting), independent of LineReader's.
private func elementLines(_ body: [UInt8], count: Int) -> [Int] {
    var lines: [Int] = []
    var line = 1
    var depth = 0
    var inString = false
    var escaped = false
    var expectElement = false
    for c in body {
        if inString {
            if escaped {
                escaped = false
            } else if c == UInt8(ascii: "\\") {
                escaped = true
            } else if c == UInt8(ascii: "\"") {
                inString = false
            }
            continue
        }
        if c == 0x0A {
            line += 1
            continue
        }
        if c == 0x20 || c == 0x09 || c == 0x0D { continue }
        if expectElement && depth == 1 && c != UInt8(ascii: "]") {
            lines.append(line)
            expectElement = false
        }
        switch c {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            depth += 1
            if depth == 1 { expectElement = true }
        case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
        case UInt8(ascii: ","): if depth == 1 { expectElement = true }
        default: break
        }
    }
    return lines.count == count ? lines : []
}
