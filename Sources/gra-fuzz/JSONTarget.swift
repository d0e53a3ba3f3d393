// The `json` target: JSONParser against a simple reference parser, the pull reader against
// JSONParser, and parse -> JSONWriter -> parse round trips.

import GRAKit

/// Checks, for any bytes:
///  - JSONParser.parse succeeds exactly when the reference parser (byte at a time, RFC 8259,
///    strict UTF-8, no lone surrogates, at most `JSONParser.maxDepth` nested containers) does,
///    and then gives the same value (strings and numbers compared byte for byte, not by
///    Unicode canonical equivalence as `==` on String does); a failure's offset is in the input;
///  - the pull reader agrees: `read { skipValue() }` accepts the same inputs, and
///    `read { readValue() }` gives the same value;
///  - JSONWriter's output of the value has no raw control byte (it is one NDJSON line), parses
///    back to the same value, and writing that again gives the same bytes.
func checkJSON(_ data: UnsafeBufferPointer<UInt8>) throws(CheckFailure) {
    let parsed = JSONParser.parseResult(data)
    let reference = ReferenceJSON.parse(data)

    switch (parsed, reference) {
    case (.success(let v), .success(let r)):
        try require(
            strictlyEqual(v, r),
            "parse and the reference differ:\n  parse:     \(preview(v))\n  reference: \(preview(r))")
    case (.success(let v), .failure(let why)):
        try require(false, "parse accepted what the reference rejects (\(why)); parse gave \(preview(v))")
    case (.failure(let e), .success):
        try require(false, "parse rejected valid JSON: \(e)")
    case (.failure(let e), .failure):
        try require(
            e.offset >= 0 && e.offset <= data.count,
            "error offset \(e.offset) outside the input of \(data.count) bytes: \(e)")
    }

    // The pull reader validates what it skips "as strictly as parse would".
    let skipped = Result { () throws(JSONParseError) in
        try JSONParser.read(data) { (p: inout JSONParser) throws(JSONParseError) in try p.skipValue() }
    }
    switch (parsed, skipped) {
    case (.success, .failure(let e)): try require(false, "read { skipValue } rejected what parse accepts: \(e)")
    case (.failure(let e), .success): try require(false, "read { skipValue } accepted what parse rejects (\(e))")
    default: break
    }

    guard case .success(let value) = parsed else { return }

    let pulled = Result { () throws(JSONParseError) in
        try JSONParser.read(data) { (p: inout JSONParser) throws(JSONParseError) in try p.readValue() }
    }
    switch pulled {
    case .success(let v2):
        try require(
            strictlyEqual(value, v2), "read { readValue } differs from parse: \(preview(v2)) vs \(preview(value))")
    case .failure(let e):
        try require(false, "read { readValue } rejected what parse accepts: \(e)")
    }

    // Round trip through the writer.
    let first = ByteBuffer(capacity: 64)
    JSONWriter.write(value, to: first)
    let written = first.array
    if let i = written.firstIndex(where: { $0 < 0x20 }) {
        try require(
            false,
            "JSONWriter wrote the raw control byte 0x\(String(written[i], radix: 16)) at \(i): \(escaped(written))")
    }
    let again: JSONValue
    switch JSONParser.parseResult(first.bytes) {
    case .success(let v): again = v
    case .failure(let e): throw CheckFailure(message: "JSONWriter's output does not parse (\(e)): \(escaped(written))")
    }
    try require(
        strictlyEqual(value, again), "parse(write(v)) != v:\n  v:     \(preview(value))\n  again: \(preview(again))")
    try require(value == again, "JSONValue == disagrees with the byte-wise comparison")
    let second = ByteBuffer(capacity: 64)
    JSONWriter.write(again, to: second)
    try require(
        second.array == written,
        "write(parse(write(v))) != write(v):\n  \(escaped(written))\n  \(escaped(second.array))")
    try require(JSONWriter.string(value).utf8.elementsEqual(written), "JSONWriter.string differs from write")
}

/// Equality that compares strings, keys and numbers as bytes.
func strictlyEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.number(let x), .number(let y)): return x.utf8.elementsEqual(y.utf8)
    case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
    case (.array(let x), .array(let y)):
        guard x.count == y.count else { return false }
        for i in x.indices where !strictlyEqual(x[i], y[i]) { return false }
        return true
    case (.object(let x), .object(let y)):
        guard x.fields.count == y.fields.count else { return false }
        for i in x.fields.indices {
            guard x.fields[i].key.utf8.elementsEqual(y.fields[i].key.utf8),
                strictlyEqual(x.fields[i].value, y.fields[i].value)
            else { return false }
        }
        return true
    default: return false
    }
}

/// The value as JSON (for messages), cut at 300 bytes.
func preview(_ v: JSONValue) -> String {
    let b = ByteBuffer(capacity: 64)
    JSONWriter.write(v, to: b)
    return escaped(b.array)
}

/// Bytes as printable ASCII with \xNN escapes, cut at `limit` bytes.
func escaped<C: Collection>(_ bytes: C, limit: Int = 300) -> String where C.Element == UInt8 {
    var s = ""
    for c in bytes.prefix(limit) {
        if c >= 0x20 && c < 0x7F && c != UInt8(ascii: "\\") {
            s.unicodeScalars.append(Unicode.Scalar(c))
        } else {
            let hex = String(c, radix: 16)
            s += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        }
    }
    if bytes.count > limit { s += "... (\(bytes.count) bytes)" }
    return s
}

// MARK: - Reference parser

/// A deliberately plain JSON parser (RFC 8259): one byte at a time, no SIMD tricks and no code
/// shared with JSONParser, strings validated by the standard library's UTF-8 decoder. Same
/// conventions as JSONParser: surrounding whitespace allowed, numbers kept as their text,
/// object fields in order, a repeated key merged into its first place with its last value,
/// at most `JSONParser.maxDepth` nested containers.
enum ReferenceJSON {
    struct Failure: Error, CustomStringConvertible {
        let at: Int
        let why: String
        var description: String { "\(why) at byte offset \(at)" }
    }

    static func parse(_ data: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, Failure> {
        var p = Parser(bytes: Array(data))
        do throws(Failure) {
            p.skipSpace()
            let v = try p.value(depth: 0)
            p.skipSpace()
            if p.i != p.bytes.count { throw Failure(at: p.i, why: "trailing data") }
            return .success(v)
        } catch {
            return .failure(error)
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func skipSpace() {
            while let c = peek(), c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws(Failure) {
            guard peek() == c else { throw Failure(at: i, why: "expected '\(Character(Unicode.Scalar(c)))'") }
            i += 1
        }

        mutating func value(depth: Int) throws(Failure) -> JSONValue {
            guard let c = peek() else { throw Failure(at: i, why: "end of input where a value was expected") }
            switch c {
            case UInt8(ascii: "{"):
                guard depth < JSONParser.maxDepth else { throw Failure(at: i, why: "too deep") }
                i += 1
                var fields: [JSONField] = []
                skipSpace()
                if peek() == UInt8(ascii: "}") {
                    i += 1
                    return .object(JSONObject(fields))
                }
                while true {
                    skipSpace()
                    guard peek() == UInt8(ascii: "\"") else { throw Failure(at: i, why: "expected a key") }
                    let key = try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"))
                    skipSpace()
                    let v = try value(depth: depth + 1)
                    fields.append(JSONField(key, v))
                    skipSpace()
                    if peek() == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    try expect(UInt8(ascii: "}"))
                    return .object(JSONObject(mergingRepeatedKeys(fields)))
                }
            case UInt8(ascii: "["):
                guard depth < JSONParser.maxDepth else { throw Failure(at: i, why: "too deep") }
                i += 1
                var items: [JSONValue] = []
                skipSpace()
                if peek() == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    if peek() == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    try expect(UInt8(ascii: "]"))
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            default:
                return .number(try number())
            }
        }

        /// A repeated key keeps its first place and its last value, as Python's `json` (and
        /// JSONParser) read it; keys are the same when their code points are (Python's `str`
        /// equality), not under Unicode canonical equivalence as Swift's `String ==` has it.
        func mergingRepeatedKeys(_ fields: [JSONField]) -> [JSONField] {
            var place: [[UInt8]: Int] = [:]
            var merged: [JSONField] = []
            for f in fields {
                let key = Array(f.key.utf8)
                if let at = place[key] {
                    merged[at].value = f.value
                } else {
                    place[key] = merged.count
                    merged.append(f)
                }
            }
            return merged
        }

        mutating func literal(_ word: String) throws(Failure) {
            for c in word.utf8 { try expect(c) }
        }

        func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }

        // number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )
        mutating func number() throws(Failure) -> String {
            let start = i
            if peek() == UInt8(ascii: "-") { i += 1 }
            guard isDigit(peek()) else { throw Failure(at: i, why: "expected a digit") }
            if peek() == UInt8(ascii: "0") {
                i += 1
            } else {
                while isDigit(peek()) { i += 1 }
            }
            if peek() == UInt8(ascii: ".") {
                i += 1
                guard isDigit(peek()) else { throw Failure(at: i, why: "expected a digit after '.'") }
                while isDigit(peek()) { i += 1 }
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                i += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i += 1 }
                guard isDigit(peek()) else { throw Failure(at: i, why: "expected an exponent digit") }
                while isDigit(peek()) { i += 1 }
            }
            // A digit right after a leading zero ("01") is left over and fails as trailing data
            // (or as a missing ',' inside a container).
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func hex4() throws(Failure) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let c = peek() else { throw Failure(at: i, why: "truncated \\u escape") }
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw Failure(at: i, why: "bad hex digit")
                }
                v = v * 16 + d
                i += 1
            }
            return v
        }

        /// A string starting at its opening quote. Runs of raw bytes are validated as UTF-8
        /// by the standard library; escapes are decoded to scalars.
        mutating func string() throws(Failure) -> String {
            i += 1
            var out = ""
            var runStart = i
            func flushRun(_ p: Parser, _ end: Int, into out: inout String) throws(Failure) {
                guard let s = String(validating: p.bytes[runStart..<end], as: UTF8.self) else {
                    throw Failure(at: runStart, why: "invalid UTF-8")
                }
                out += s
            }
            while true {
                guard let c = peek() else { throw Failure(at: i, why: "unterminated string") }
                if c == UInt8(ascii: "\"") {
                    try flushRun(self, i, into: &out)
                    i += 1
                    return out
                }
                if c < 0x20 { throw Failure(at: i, why: "raw control character in string") }
                if c != UInt8(ascii: "\\") {
                    i += 1
                    continue
                }
                try flushRun(self, i, into: &out)
                i += 1
                guard let e = peek() else { throw Failure(at: i, why: "unterminated escape") }
                i += 1
                switch e {
                case UInt8(ascii: "\""): out += "\""
                case UInt8(ascii: "\\"): out += "\\"
                case UInt8(ascii: "/"): out += "/"
                case UInt8(ascii: "b"): out += "\u{08}"
                case UInt8(ascii: "f"): out += "\u{0C}"
                case UInt8(ascii: "n"): out += "\n"
                case UInt8(ascii: "r"): out += "\r"
                case UInt8(ascii: "t"): out += "\t"
                case UInt8(ascii: "u"):
                    let at = i - 2
                    let u = try hex4()
                    var scalarValue = u
                    if u >= 0xD800 && u < 0xDC00 {
                        guard peek() == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u")
                        else {
                            throw Failure(at: at, why: "high surrogate without a low one")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else {
                            throw Failure(at: at, why: "high surrogate without a low one")
                        }
                        scalarValue = 0x10000 + (u - 0xD800) * 0x400 + (low - 0xDC00)
                    } else if u >= 0xDC00 && u < 0xE000 {
                        throw Failure(at: at, why: "lone low surrogate")
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { throw Failure(at: at, why: "not a scalar") }
                    out.unicodeScalars.append(scalar)
                default:
                    throw Failure(at: i - 1, why: "bad escape")
                }
                runStart = i
            }
        }
    }
}
