import Testing
import GRAKit

@Suite("JSON parser and writer")
struct JSONTests {
    /// parse → write must reproduce compact JSON exactly.
    @Test(arguments: [
        #"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
        #"{"big":123456789012345678901234567890,"neg":-98765432109876543210987654321}"#,
        #"{"u64":18446744073709551616,"i64":-9223372036854775809}"#,
        #"{"f":0.1,"g":1.7976931348623157e308,"h":5e-324,"i":-0.0,"j":1E+2,"k":1e400,"l":0.30000000000000004}"#,
        #"{"s":"\u0000\"\\\b\f\n\r\t\u001f"}"#,
        #"{"emoji":"😀👍🏽","cjk":"中文字符と日本語","accents":"héllo wörld"}"#,
        #"{"dup":1,"dup":2}"#,
        #"[]"#, #"{}"#, #"[[[[]]]]"#, #""just a string""#, #"42"#,
    ])
    func roundTrip(_ text: String) throws {
        let v = try JSONParser.parse(text)
        #expect(JSONWriter.string(v) == text)
    }

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

    @Test func lookupReturnsLastDuplicate() throws {
        let o = try #require(try JSONParser.parse(#"{"a":1,"a":2}"#).objectValue)
        #expect(o["a"] == .number("2"))
    }

    /// Each malformed input fails at the byte where it goes wrong.
    @Test(arguments: [
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
    ])
    func errors(_ text: String, _ offset: Int, _ fragment: String) {
        do {
            _ = try JSONParser.parse(text)
            Issue.record("parsed invalid JSON \(text)")
        } catch {
            #expect(error.offset + 1 == offset, "\(text): \(error)")
            #expect(error.message.contains(fragment), "\(text): \(error)")
        }
    }

    @Test(arguments: [
        ([0x22, 0xFF, 0x22], "byte 0xFF"),
        ([0x22, 0xC3, 0x22], "bad continuation"),
        ([0x22, 0xED, 0xA0, 0x80, 0x22], "bad continuation"),   // UTF-8 encoded surrogate
        ([0x22, 0xC0, 0xAF, 0x22], "byte 0xC0"),                // overlong
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "bad continuation"), // above U+10FFFF
        ([0x22, 0x61, 0x00, 0x22], "NUL byte"),
        ([0x00], "NUL byte"),
    ] as [([UInt8], String)])
    func invalidBytes(_ bytes: [UInt8], _ fragment: String) {
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("accepted invalid bytes \(bytes)")
        } catch {
            #expect(error.message.contains(fragment), "\(bytes): \(error)")
        }
    }

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
            }
        }
    }
}
