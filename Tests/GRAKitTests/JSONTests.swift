import Testing

@testable import GRAKit

@Suite("JSON parser and writer")
struct JSONTests {
    /// parse → write must reproduce compact JSON exactly.
    @Test(arguments: JSONTests.valid)
    func roundTrip(_ text: String) throws {
        let v = try JSONParser.parse(text)
        #expect(JSONWriter.string(v) == text)
    }

    static let valid = [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
        #"{"big":123456789012345678901234567890,"neg":-98765432109876543210987654321}"#,
        #"{"u64":18446744073709551616,"i64":-9223372036854775809}"#,
        #"{"f":0.1,"g":1.7976931348623157e308,"h":5e-324,"i":-0.0,"j":1E+2,"k":1e400,"l":0.30000000000000004}"#,
        #"{"s":"\u0000\"\\\b\f\n\r\t\u001f"}"#,
        #"{"emoji":"😀👍🏽","cjk":"中文字符と日本語","accents":"héllo wörld"}"#,
        #"[]"#, #"{}"#, #"[[[[]]]]"#, #""just a string""#, #"42"#
    ]

    @Test func escapesAreDecoded() throws {
        let v = try JSONParser.parse(#""\u00e9\/\ud83d\ude00\u4e2d""#)
        #expect(v == .string("é/😀中"))
        // Written back raw (only quote, backslash and control characters are escaped).
        #expect(JSONWriter.string(v) == "\"é/😀中\"")
    }

    @Test func nulInsideStringSurvives() throws {
        let v = try JSONParser.parse(#"{"k":"a\u0000b"}"#)
        #expect(v.objectValue?["k"]?.stringValue?.unicodeScalars.map(\.value) == [0x61, 0, 0x62])
    }

    /// A repeated key keeps its first place and its last value (as Python reads it), so no
    /// object gra writes from parsed data can hold a key twice.
    @Test(arguments: [
        (#"{"dup":1,"dup":2}"#, #"{"dup":2}"#),
        (#"{"a":1,"b":2,"a":3,"c":{"x":1,"x":[{"y":1,"y":2}]}}"#, #"{"a":3,"b":2,"c":{"x":[{"y":2}]}}"#),
        (
            #"""
            {"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,\#
            "k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,"k23":23,\#
            "k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30,"k31":31,"k32":32,"k0":"last"}
            """#,
            #"""
            {"k0":"last","k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,\#
            "k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,\#
            "k23":23,"k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30,"k31":31,"k32":32}
            """#
        )
    ])
    func repeatedKeysAreMerged(_ text: String, _ expected: String) throws {
        #expect(JSONWriter.string(try JSONParser.parse(text)) == expected)
    }

    /// Keys are compared byte for byte: "é" and "e" + U+0301 are equal Swift strings but two
    /// keys to JSON and Python, and both are kept.
    @Test func canonicallyEquivalentKeysAreTwoKeys() throws {
        let text = "{\"\u{E9}\":1,\"e\u{301}\":2}"
        let v = try JSONParser.parse(text)
        #expect(v.objectValue?.count == 2)
        #expect(JSONWriter.string(v).utf8.elementsEqual(text.utf8))
    }

    @Test func lookupReturnsLastDuplicate() throws {
        let o = try #require(try JSONParser.parse(#"{"a":1,"a":2}"#).objectValue)
        #expect(o["a"] == .number("2"))
    }

    /// Each malformed input fails at the byte where it goes wrong.
    @Test(arguments: JSONTests.malformed)
    func errors(_ text: String, _ offset: Int, _ fragment: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed invalid JSON \(text)")
        } catch {
            #expect(error.offset + 1 == offset, "\(text): \(error)")
            #expect(error.message.contains(fragment), "\(text): \(error)")
        }
    }

    static let malformed: [(String, Int, String)] = [
        (#"{"a":1,}"#, 8, "expected a key"),
        (#"{"a" 1}"#, 6, "expected ':'"),
        (#"[1 2]"#, 4, "expected ',' or ']'"),
        (#"01"#, 2, "leading zero"),
        (#"1."#, 3, "digit after '.'"),
        (#"-"#, 2, "expected a digit"),
        (#"tru"#, 4, "literal 'true'"),
        (#""abc"#, 5, "unterminated string"),
        (#""\x""#, 2, "invalid escape"),
        (#""\ud800""#, 2, "lone surrogate"),
        (#""\udc00x""#, 2, "lone surrogate"),
        (#""\u12""#, 2, "\\u escape"),
        (#"{"a":1} x"#, 9, "after the JSON value"),
        ("", 1, "empty input"),
        ("\"a\tb\"", 3, "control character"),
        (#"{"a":[1,{"b":"\q"}]}"#, 15, "invalid escape"),
        (#"{"a":{"b":[1,2,]}}"#, 16, "where a value was expected"),
        (#"{"a":-01}"#, 8, "leading zero"),
        (#"{"a":nul}"#, 9, "literal 'null'")
    ]

    @Test(arguments: JSONTests.invalidUTF8)
    func invalidBytes(_ bytes: [UInt8], _ fragment: String) {
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("accepted invalid bytes \(bytes)")
        } catch {
            #expect(error.message.contains(fragment), "\(bytes): \(error)")
        }
    }

    static let invalidUTF8: [([UInt8], String)] = [
        ([0x22, 0xFF, 0x22], "byte 0xFF"),
        ([0x22, 0xC3, 0x22], "bad continuation"),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], "bad continuation"),  // UTF-8 encoded surrogate
        ([0x22, 0xC0, 0xAF, 0x22], "byte 0xC0"),  // overlong
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "bad continuation"),  // above U+10FFFF
        ([0x22, 0x61, 0x00, 0x22], "NUL byte"),
        ([0x00], "NUL byte")
    ]

    @Test func deepNestingIsRefusedNotCrashed() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }

    /// Long strings exercise the 8-bytes-at-a-time paths on both sides, with the special byte
    /// at every position relative to the word boundary.
    @Test func specialBytesAtEveryAlignment() throws {
        for pad in 0..<17 {
            for special in ["\"", "\\", "\n", "\u{1}", "é", "😀"] {
                let s = String(repeating: "x", count: pad) + special + String(repeating: "y", count: 9)
                let v = JSONValue.string(s)
                let text = JSONWriter.string(v)
                #expect(try JSONParser.parse(text) == v, "pad \(pad) special \(special.debugDescription)")
                // The writer escapes exactly the special byte, wherever it falls in a word.
                let escaped = ["\"": "\\\"", "\\": "\\\\", "\n": "\\n", "\u{1}": "\\u0001"][special] ?? special
                #expect(
                    text == "\"" + String(repeating: "x", count: pad) + escaped + String(repeating: "y", count: 9)
                        + "\"")
            }
            // A raw control character is refused at its own byte, wherever it falls in a word.
            let raw = Array(
                ("\"" + String(repeating: "x", count: pad) + "\u{1F}" + String(repeating: "y", count: 9) + "\"").utf8)
            guard case .failure(let e) = JSONPullReaderTests.parsed(raw) else {
                Issue.record("pad \(pad): a raw control character was accepted")
                continue
            }
            #expect(e.offset == pad + 1, "pad \(pad): \(e)")
        }
    }
}

/// The pull reader (`JSONParser.read`) must accept and refuse exactly what `parse` does, with
/// the same error at the same byte, whether it builds a value or skips it.
@Suite("JSON pull reader")
struct JSONPullReaderTests {
    static func outcome(_ bytes: [UInt8], _ visit: (inout JSONParser) throws(JSONParseError) -> JSONValue) -> Result<
        JSONValue, JSONParseError
    > {
        bytes.withUnsafeBufferPointer { buffer in
            do throws(JSONParseError) { return .success(try JSONParser.read(buffer, visit)) } catch {
                return .failure(error)
            }
        }
    }

    static func parsed(_ bytes: [UInt8]) -> Result<JSONValue, JSONParseError> {
        do throws(JSONParseError) { return .success(try JSONParser.parse(bytes)) } catch { return .failure(error) }
    }

    /// Builds the whole value with readObject / readArray / readValue.
    static func build(_ p: inout JSONParser) throws(JSONParseError) -> JSONValue {
        var fields: [JSONField] = []
        var items: [JSONValue] = []
        var kind = 0
        // Peek by trying an object, then an array; neither consumes anything else first.
        var probe = p
        if try probe.readObject({ (key, p) throws(JSONParseError) in fields.append(JSONField(key.string, try build(&p)))
        }) {
            p = probe
            kind = 1
        } else {
            var probe2 = p
            fields = []
            if try probe2.readArray({ (_, p) throws(JSONParseError) in items.append(try build(&p)) }) {
                p = probe2
                kind = 2
            }
        }
        switch kind {
        case 1: return .object(JSONObject(fields))
        case 2: return .array(items)
        default: return try p.readValue()
        }
    }

    static var cases: [[UInt8]] {
        (JSONTests.valid + [" [ 1 , {\"k\" : \"v\"} , \"s\\n\" ] "]).map { Array($0.utf8) }
            + JSONTests.malformed.map { Array($0.0.utf8) } + JSONTests.invalidUTF8.map(\.0)
    }

    @Test(arguments: JSONPullReaderTests.cases)
    func skippingAgreesWithParse(_ bytes: [UInt8]) {
        let skipped = Self.outcome(bytes) { (p) throws(JSONParseError) in
            try p.skipValue()
            return .null
        }
        switch (Self.parsed(bytes), skipped) {
        case (.success, .success): break
        case (.failure(let a), .failure(let b)): #expect(a == b, "\(String(decoding: bytes, as: UTF8.self))")
        case (let a, let b): Issue.record("parse \(a) but skip \(b) for \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test(arguments: JSONPullReaderTests.cases)
    func buildingAgreesWithParse(_ bytes: [UInt8]) {
        let built = Self.outcome(bytes) { (p) throws(JSONParseError) in try Self.build(&p) }
        switch (Self.parsed(bytes), built) {
        case (.success(let a), .success(let b)): #expect(a == b)
        case (.failure(let a), .failure(let b)): #expect(a == b, "\(String(decoding: bytes, as: UTF8.self))")
        case (let a, let b): Issue.record("parse \(a) but reader \(b) for \(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test func keysWithEscapesCompareByTheirText() throws {
        var seen: [String] = []
        let bytes = Array(#"{"abc":1,"abc":2,"x":3}"#.utf8)
        _ = Self.outcome(bytes) { (p) throws(JSONParseError) in
            _ = try p.readObject { (key, p) throws(JSONParseError) in
                if key == "abc" { seen.append(key.string) }
                try p.skipValue()
            }
            return .null
        }
        #expect(seen == ["abc", "abc"])
    }

    @Test func typedReadsSkipOtherKinds() throws {
        let bytes = Array(#"[7, "s", {"n": [1, 2]}, null]"#.utf8)
        var strings: [String?] = []
        var numbers: [Double?] = []
        _ = Self.outcome(bytes) { (p) throws(JSONParseError) in
            _ = try p.readArray { (i, p) throws(JSONParseError) in
                if i % 2 == 0 { numbers.append(try p.readNumber()) } else { strings.append(try p.readString()) }
            }
            return .null
        }
        #expect(numbers == [7, nil])
        #expect(strings == ["s", nil])
    }

    /// `readNumber` reads plain integers itself; every number must still equal what Double(text)
    /// (strtod) makes of it, on both sides of the 15-digit cut-off.
    @Test(arguments: [
        "0", "7", "42", "-0", "-5", "999999999999999", "123456789012345", "1234567890123456",
        "9007199254740993", "18446744073709551617", "1.5", "1e3", "2E-2", "0.1", "-12.75e+1"
    ])
    func readNumberAgreesWithStrtod(_ text: String) throws {
        let bytes = Array("[\(text)]".utf8)
        var read: Double?? = nil
        _ = Self.outcome(bytes) { (p) throws(JSONParseError) in
            _ = try p.readArray { (_, p) throws(JSONParseError) in read = try p.readNumber() }
            return .null
        }
        let expected = try #require(Double(text))
        #expect(read == .some(expected))
        #expect(read??.sign == expected.sign)
    }
}

@Suite("Text helpers")
struct TextHelperTests {
    @Test(arguments: [
        ("plain", "plain"), ("  both  ", "both"), ("line\n", "line"), ("\r\n x \t\n", "x"), ("", ""), ("   ", ""),
        ("\u{3000}wide\u{00A0}", "wide"), (" e\u{301} ", "e\u{301}"), ("a\u{301}", "a\u{301}"), (" \u{301}a", "a")
    ])
    func trimming(_ text: String, _ expected: String) {
        #expect(text.trimmingWhitespace() == expected)
        // The slow, character-by-character rule it must agree with.
        var s = Substring(text)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        #expect(String(s) == expected)
    }

    @Test func byteSearch() {
        let text = "abc</thin</think>tail"
        let r = text.rangeOfBytes("</think>")
        #expect(r.map { String(text[$0]) } == "</think>")
        #expect(r.map { String(text[..<$0.lowerBound]) } == "abc</thin")
        #expect("short".rangeOfBytes("longer needle") == nil)
        #expect("x".rangeOfBytes("") == nil)
        #expect("héllo wörld".rangeOfBytes("wö").map { String("héllo wörld"[$0.lowerBound...]) } == "wörld")
        #expect(Substring("ab</think>")[...].rangeOfBytes("</think>") != nil)
    }
}
