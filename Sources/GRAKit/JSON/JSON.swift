#if canImport(Glibc)
import Glibc
#endif

/// A JSON value that round-trips exactly.
///
/// Numbers keep the text they were written with (so integers beyond 64 bits and
/// doubles print back unchanged), objects keep their key order and duplicate keys,
/// and strings hold any Unicode scalar, `U+0000` included.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, as the literal text that appeared in the input (already validated).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The string payload, or nil for any other kind of value.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The object payload, or nil for any other kind of value.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The array payload, or nil for any other kind of value.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// A number as `Double`, or nil when this is not a number.
    public var doubleValue: Double? {
        if case .number(let n) = self { return Double(n) }
        return nil
    }

    /// A short name of the value's kind, for error messages ("a string", "an array").
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Makes a number value from an integer.
    public static func integer(_ i: Int) -> JSONValue { .number(String(i)) }
}

/// One key/value pair of a `JSONObject`.
public struct JSONField: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// A JSON object that keeps its fields in order.
///
/// `JSONParser` never makes one with a key twice: a repeated key keeps its first place and
/// its last value, as Python's `json` reads it, so nothing gra writes from parsed data holds
/// a duplicate key (Hugging Face `datasets` refuses such files). Lookups return the last
/// field with a key. Equality is order-sensitive.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public var fields: [JSONField]

    public init() { fields = [] }
    public init(_ fields: [JSONField]) { self.fields = fields }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        fields = elements.map { JSONField($0.0, $0.1) }
    }

    public var isEmpty: Bool { fields.isEmpty }
    public var count: Int { fields.count }
    public var keys: [String] { fields.map(\.key) }

    /// The value of the last field named `key`; setting nil removes every field named `key`,
    /// setting a value replaces the last such field in place or appends a new one.
    public subscript(key: String) -> JSONValue? {
        get {
            var i = fields.count
            while i > 0 {
                i -= 1
                if fields[i].key == key { return fields[i].value }
            }
            return nil
        }
        set {
            guard let newValue else {
                fields.removeAll { $0.key == key }
                return
            }
            var i = fields.count
            while i > 0 {
                i -= 1
                if fields[i].key == key {
                    fields[i].value = newValue
                    return
                }
            }
            fields.append(JSONField(key, newValue))
        }
    }

    /// Removes every field named `key` and returns the value of the last one.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        let v = self[key]
        if v != nil { fields.removeAll { $0.key == key } }
        return v
    }

    public mutating func append(_ key: String, _ value: JSONValue) {
        fields.append(JSONField(key, value))
    }
}

/// Why a piece of JSON text could not be parsed, and where (a 0-based byte offset).
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }
    public var description: String { "\(message) at byte \(offset + 1)" }
}

/// A strict JSON (RFC 8259) parser over UTF-8 bytes.
///
/// Rejects invalid UTF-8, control characters in strings, lone surrogates, bad numbers,
/// trailing commas and trailing data, each with the byte offset where it went wrong.
public struct JSONParser {
    /// Nesting deeper than this is refused rather than risking the stack.
    public static let maxDepth = 512

    private let base: UnsafePointer<UInt8>
    private let end: Int
    private var pos = 0
    private var depth = 0
    private var scratch: [UInt8] = []

    private init(_ buffer: UnsafeBufferPointer<UInt8>) {
        // An empty buffer may have a nil base address; point at a harmless constant instead.
        base = buffer.baseAddress ?? JSONParser.emptyBase
        end = buffer.count
    }

    nonisolated(unsafe) private static let emptyBase: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.pointee = 0
        return UnsafePointer(p)
    }()

    /// Parses exactly one JSON value (surrounding whitespace allowed) from `bytes`.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(bytes)
        p.skipWhitespace()
        guard p.pos < p.end else { throw JSONParseError(offset: p.pos, message: "empty input, expected a JSON value") }
        let v = try p.parseValue()
        p.skipWhitespace()
        if p.pos < p.end {
            throw p.unexpected("after the JSON value (one value per line)")
        }
        return v
    }

    /// Parses a JSON value from a string's UTF-8.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var copy = text
        return try copy.withUTF8 { buf in parseResult(buf) }.get()
    }

    /// Parses a JSON value from bytes.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        return try bytes.withUnsafeBufferPointer { buf in parseResult(buf) }.get()
    }

    /// `parse`, with the outcome as a `Result`.
    public static func parseResult(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JSONValue, JSONParseError> {
        do throws(JSONParseError) { return .success(try parse(bytes)) } catch { return .failure(error) }
    }

    // MARK: - Values

    @inline(__always)
    private mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { return }
        }
    }

    private func describe(_ c: UInt8) -> String {
        if c == 0 { return "NUL byte" }
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x" + String(c, radix: 16, uppercase: true)
    }

    private func unexpected(_ context: String) -> JSONParseError {
        if pos >= end { return JSONParseError(offset: pos, message: "unexpected end of input \(context)") }
        return JSONParseError(offset: pos, message: "unexpected \(describe(base[pos])) \(context)")
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard pos < end else { throw unexpected("where a value was expected") }
        switch base[pos] {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw unexpected("where a value was expected")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        let w = word.utf8Start
        for i in 0..<n {
            if pos + i >= end || base[pos + i] != w[i] {
                pos += i
                throw unexpected("in literal '\(word)'")
            }
        }
        pos += n
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > JSONParser.maxDepth {
            throw JSONParseError(offset: pos, message: "nesting deeper than \(JSONParser.maxDepth) levels")
        }
    }

    /// At an array's or object's opening bracket: goes one level in, past the bracket, and
    /// returns true when the container is empty (its `closing` bracket consumed, the level left).
    @inline(__always)
    private mutating func open(closing: UInt8) throws(JSONParseError) -> Bool {
        try enter()
        pos += 1
        skipWhitespace()
        guard pos < end && base[pos] == closing else { return false }
        pos += 1
        depth -= 1
        return true
    }

    /// After a member of an array or object: consumes ',' and returns true (another member
    /// follows), or consumes the `closing` bracket, leaves the level and returns false.
    @inline(__always)
    private mutating func another(closing: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        if pos < end {
            let c = base[pos]
            pos += 1
            if c == UInt8(ascii: ",") { return true }
            if c == closing {
                depth -= 1
                return false
            }
            pos -= 1
        }
        throw unexpected(
            closing == UInt8(ascii: "]") ? "in array, expected ',' or ']'" : "in object, expected ',' or '}'")
    }

    /// At an object key's opening quote, or else throws.
    @inline(__always)
    private mutating func expectKey() throws(JSONParseError) {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "\"") else {
            throw unexpected("in object, expected a key in double quotes")
        }
    }

    /// After an object key: past the ':' and the whitespace around it, or else throws.
    @inline(__always)
    private mutating func expectColon() throws(JSONParseError) {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: ":") else { throw unexpected("after object key, expected ':'") }
        pos += 1
        skipWhitespace()
    }

    private mutating func parseArray() throws(JSONParseError) -> JSONValue {
        var items: [JSONValue] = []
        if try open(closing: UInt8(ascii: "]")) { return .array(items) }
        repeat {
            skipWhitespace()
            items.append(try parseValue())
        } while try another(closing: UInt8(ascii: "]"))
        return .array(items)
    }

    private mutating func parseObject() throws(JSONParseError) -> JSONValue {
        var fields: [JSONField] = []
        if try open(closing: UInt8(ascii: "}")) { return .object(JSONObject(fields)) }
        fields.reserveCapacity(8)
        repeat {
            try expectKey()
            let key = try parseString()
            try expectColon()
            let value = try parseValue()
            fields.append(JSONField(key, value))
        } while try another(closing: UInt8(ascii: "}"))
        if fields.count > 1 && Self.hasRepeatedKey(fields) { Self.mergeRepeatedKeys(&fields) }
        return .object(JSONObject(fields))
    }

    /// True when two fields share a key, byte for byte (Swift's `==` also equates canonically
    /// equivalent strings, "é" and "e\u{301}", which JSON and Python keep apart). Records
    /// have a handful of fields: comparing each pair costs less than hashing them.
    static func hasRepeatedKey(_ fields: [JSONField]) -> Bool {
        if fields.count > 32 {
            var seen = Set<[UInt8]>(minimumCapacity: fields.count)
            for f in fields where !seen.insert(Array(f.key.utf8)).inserted { return true }
            return false
        }
        for i in 1..<fields.count {
            let key = fields[i].key
            for j in 0..<i where sameBytes(fields[j].key, key) { return true }
        }
        return false
    }

    @inline(__always)
    static func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Keeps one field per key (byte for byte), at the key's first place, with its last value.
    static func mergeRepeatedKeys(_ fields: inout [JSONField]) {
        var place: [[UInt8]: Int] = [:]
        var merged: [JSONField] = []
        merged.reserveCapacity(fields.count)
        for f in fields {
            let key = Array(f.key.utf8)
            if let i = place[key] {
                merged[i].value = f.value
            } else {
                place[key] = merged.count
                merged.append(f)
            }
        }
        fields = merged
    }

    // MARK: - Numbers

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = pos
        try skipNumber()
        return String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
    }

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

    // MARK: - Strings

    /// Parses a string starting at its opening quote; leaves `pos` after the closing quote.
    private mutating func parseString() throws(JSONParseError) -> String {
        pos += 1
        let start = pos
        try scanPlain()
        if base[pos] == UInt8(ascii: "\"") {
            let s = String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
            pos += 1
            return s
        }
        // An escape: decode into the scratch buffer.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: base + start, count: pos - start))
        while true {
            // base[pos] is a backslash here.
            try decodeEscape()
            let runStart = pos
            try scanPlain()
            scratch.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: pos - runStart))
            if base[pos] == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: scratch, as: UTF8.self)
            }
        }
    }

    /// Advances over bytes that need no decoding, validating UTF-8, up to a quote or a
    /// backslash (left at `pos`). Throws on control characters, bad UTF-8 or end of input.
    @inline(__always)
    private mutating func scanPlain() throws(JSONParseError) {
        var i = pos  // a local: `pos` lives in memory while visitors hold the parser inout
        while true {
            // Eight ASCII bytes at a time while none is special; then straight to the first
            // special one (the mask's lowest flag is exact, see `attentionMask`).
            while i + 8 <= end {
                let m = JSONParser.attentionMask(UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                if m != 0 {
                    i += m.trailingZeroBitCount >> 3
                    break
                }
                i += 8
            }
            guard i < end else {
                pos = i
                throw JSONParseError(offset: pos, message: "unterminated string")
            }
            let c = base[i]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") {
                pos = i
                return
            }
            if c < 0x20 {
                pos = i
                let what = c == 0 ? "NUL byte" : "control character 0x\(String(c, radix: 16, uppercase: true))"
                throw JSONParseError(offset: pos, message: "\(what) inside a string (must be escaped)")
            }
            if c < 0x80 {
                i += 1
            } else {
                pos = i
                try validateUTF8Sequence()
                i = pos
            }
        }
    }

    /// The high bit of each of the 8 bytes (little-endian) that is non-ASCII, a control
    /// character, '"' or '\\': the writer's escape mask plus the non-ASCII bytes (their UTF-8 is
    /// validated here). Exact for the lowest flagged byte, as that mask is.
    @inline(__always)
    static func attentionMask(_ w: UInt64) -> UInt64 {
        JSONWriter.escapeMask(w) | (w & 0x8080_8080_8080_8080)
    }

    /// Validates one multi-byte UTF-8 sequence at `pos` and advances past it.
    @inline(__always)
    private mutating func validateUTF8Sequence() throws(JSONParseError) {
        let c = base[pos]
        var need = 0
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: need = 1
        case 0xE0:
            need = 2
            lo = 0xA0
        case 0xE1...0xEC, 0xEE, 0xEF: need = 2
        case 0xED:
            need = 2
            hi = 0x9F
        case 0xF0:
            need = 3
            lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4:
            need = 3
            hi = 0x8F
        default:
            throw JSONParseError(
                offset: pos, message: "invalid UTF-8 (byte 0x\(String(c, radix: 16, uppercase: true)))")
        }
        guard pos + need < end else { throw JSONParseError(offset: pos, message: "invalid UTF-8 (truncated sequence)") }
        let c1 = base[pos + 1]
        if c1 < lo || c1 > hi { throw JSONParseError(offset: pos, message: "invalid UTF-8 (bad continuation byte)") }
        var i = 2
        while i <= need {
            if base[pos + i] & 0xC0 != 0x80 {
                throw JSONParseError(offset: pos, message: "invalid UTF-8 (bad continuation byte)")
            }
            i += 1
        }
        pos += need + 1
    }

    private mutating func decodeEscape() throws(JSONParseError) {
        let at = pos
        pos += 1
        guard pos < end else { throw JSONParseError(offset: at, message: "unterminated string") }
        let c = base[pos]
        pos += 1
        switch c {
        case UInt8(ascii: "\""): scratch.append(0x22)
        case UInt8(ascii: "\\"): scratch.append(0x5C)
        case UInt8(ascii: "/"): scratch.append(0x2F)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try readHex4(escapeAt: at)
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard pos + 1 < end, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u") else {
                    throw JSONParseError(
                        offset: at, message: "lone surrogate \\u\(String(scalar, radix: 16)) in string")
                }
                let lowAt = pos
                pos += 2
                let low = try readHex4(escapeAt: lowAt)
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw JSONParseError(
                        offset: at, message: "lone surrogate \\u\(String(scalar, radix: 16)) in string")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw JSONParseError(offset: at, message: "lone surrogate \\u\(String(scalar, radix: 16)) in string")
            }
            appendUTF8(scalar)
        default:
            throw JSONParseError(offset: at, message: "invalid escape '\\\(Character(Unicode.Scalar(c)))' in string")
        }
    }

    private mutating func readHex4(escapeAt: Int) throws(JSONParseError) -> UInt32 {
        guard pos + 4 <= end else { throw JSONParseError(offset: escapeAt, message: "truncated \\u escape") }
        var v: UInt32 = 0
        for i in 0..<4 {
            let c = base[pos + i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - 0x30
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - 0x61 + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - 0x41 + 10
            default: throw JSONParseError(offset: escapeAt, message: "invalid \\u escape (expected 4 hex digits)")
            }
            v = v << 4 | UInt32(d)
        }
        pos += 4
        return v
    }

    private mutating func appendUTF8(_ v: UInt32) {
        switch v {
        case 0..<0x80:
            scratch.append(UInt8(v))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | (v >> 6)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | (v >> 12)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        default:
            scratch.append(UInt8(0xF0 | (v >> 18)))
            scratch.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
}

// MARK: - Pulling a few fields out of a document

/// An object key as the pull reader sees it: the raw bytes when the key has no escapes
/// (almost always), else its decoded text. Valid only inside the visit that receives it.
public struct JSONKey {
    fileprivate let raw: UnsafeBufferPointer<UInt8>
    fileprivate let decoded: String?

    public static func == (key: JSONKey, name: StaticString) -> Bool {
        if let decoded = key.decoded { return decoded == name.description }
        let n = name.utf8CodeUnitCount
        return key.raw.count == n && memcmp(key.raw.baseAddress!, name.utf8Start, n) == 0
    }

    public var string: String { decoded ?? String(decoding: raw, as: UTF8.self) }
}

extension JSONParser {
    /// Reads one document with `visit`, which must consume exactly one value (with
    /// `readObject`, `readArray`, `readValue`, `readString` or `skipValue`); then checks that
    /// only whitespace follows. For decoders that want a few fields of a larger document: what
    /// they skip is validated as strictly as `parse` would, but never built.
    public static func read<T>(
        _ bytes: UnsafeBufferPointer<UInt8>,
        _ visit: (inout JSONParser) throws(JSONParseError) -> T
    ) throws(JSONParseError) -> T {
        var p = JSONParser(bytes)
        p.skipWhitespace()
        guard p.pos < p.end else { throw JSONParseError(offset: p.pos, message: "empty input, expected a JSON value") }
        let result = try visit(&p)
        p.skipWhitespace()
        if p.pos < p.end { throw p.unexpected("after the JSON value (one value per line)") }
        return result
    }

    /// When the next value is an object, calls `field` for each of its fields in order (it must
    /// consume the value) and returns true; otherwise skips the value and returns false.
    public mutating func readObject(_ field: (JSONKey, inout JSONParser) throws(JSONParseError) -> Void)
        throws(JSONParseError) -> Bool
    {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "{") else {
            try skipValue()
            return false
        }
        if try open(closing: UInt8(ascii: "}")) { return true }
        repeat {
            try expectKey()
            let keyStart = pos + 1
            pos += 1
            try scanPlain()
            let key: JSONKey
            if base[pos] == UInt8(ascii: "\"") {
                key = JSONKey(raw: UnsafeBufferPointer(start: base + keyStart, count: pos - keyStart), decoded: nil)
                pos += 1
            } else {
                pos = keyStart - 1
                key = JSONKey(raw: UnsafeBufferPointer(start: base, count: 0), decoded: try parseString())
            }
            try expectColon()
            let before = pos
            try field(key, &self)
            precondition(pos > before, "a JSONParser.readObject visitor must consume the field's value")
        } while try another(closing: UInt8(ascii: "}"))
        return true
    }

    /// When the next value is an array, calls `element` with each element's index (it must
    /// consume the element) and returns true; otherwise skips the value and returns false.
    public mutating func readArray(_ element: (Int, inout JSONParser) throws(JSONParseError) -> Void)
        throws(JSONParseError) -> Bool
    {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "[") else {
            try skipValue()
            return false
        }
        if try open(closing: UInt8(ascii: "]")) { return true }
        var index = 0
        repeat {
            skipWhitespace()
            let before = pos
            try element(index, &self)
            precondition(pos > before, "a JSONParser.readArray visitor must consume the element")
            index += 1
        } while try another(closing: UInt8(ascii: "]"))
        return true
    }

    /// The next value, built.
    public mutating func readValue() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        return try parseValue()
    }

    /// The next value when it is a string; otherwise skips it and returns nil.
    public mutating func readString() throws(JSONParseError) -> String? {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "\"") else {
            try skipValue()
            return nil
        }
        return try parseString()
    }

    /// The next value when it is a number; otherwise skips it and returns nil.
    public mutating func readNumber() throws(JSONParseError) -> Double? {
        skipWhitespace()
        guard pos < end, base[pos] == UInt8(ascii: "-") || isDigit(base[pos]) else {
            try skipValue()
            return nil
        }
        let start = pos
        try skipNumber()
        // Plain integers of up to 15 digits (token counts) are exact in a Double: no strtod.
        var n = 0
        var i = start
        while i < pos && isDigit(base[i]) {
            n = n &* 10 &+ Int(base[i] &- 0x30)
            i += 1
        }
        if i == pos && pos - start <= 15 { return Double(n) }
        return Double(String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self))
    }

    /// Validates the next value as `parse` would, without building it.
    public mutating func skipValue() throws(JSONParseError) {
        skipWhitespace()
        guard pos < end else { throw unexpected("where a value was expected") }
        switch base[pos] {
        case UInt8(ascii: "\""):
            pos += 1
            while true {
                try scanPlain()
                if base[pos] == UInt8(ascii: "\"") { break }
                scratch.removeAll(keepingCapacity: true)
                try decodeEscape()
            }
            pos += 1
        case UInt8(ascii: "{"):
            _ = try readObject { _, p throws(JSONParseError) in try p.skipValue() }
        case UInt8(ascii: "["):
            _ = try readArray { _, p throws(JSONParseError) in try p.skipValue() }
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber()
        default:
            _ = try parseValue()  // a literal, or the error for what cannot start a value
        }
    }

    /// `parseNumber` without building the text.
    private mutating func skipNumber() throws(JSONParseError) {
        if base[pos] == UInt8(ascii: "-") { pos += 1 }
        guard pos < end, isDigit(base[pos]) else { throw unexpected("in number, expected a digit") }
        if base[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(base[pos]) { throw JSONParseError(offset: pos, message: "leading zero in number") }
        } else {
            while pos < end && isDigit(base[pos]) { pos += 1 }
        }
        if pos < end && base[pos] == UInt8(ascii: ".") {
            pos += 1
            guard pos < end, isDigit(base[pos]) else { throw unexpected("in number, expected a digit after '.'") }
            while pos < end && isDigit(base[pos]) { pos += 1 }
        }
        if pos < end && (base[pos] | 0x20) == UInt8(ascii: "e") {
            pos += 1
            if pos < end && (base[pos] == UInt8(ascii: "+") || base[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard pos < end, isDigit(base[pos]) else { throw unexpected("in number exponent, expected a digit") }
            while pos < end && isDigit(base[pos]) { pos += 1 }
        }
    }
}
