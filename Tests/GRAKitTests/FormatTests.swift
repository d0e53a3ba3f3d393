import Testing
import GRAKit

@Suite("Record formats")
struct FormatTests {
    let sample = Sample(system: "Be brief.", history: [.init(user: "hi", assistant: "hello")],
                        instruction: "Add", input: "2 and 3", response: "5")

    @Test(arguments: RecordFormat.allCases)
    func encodeThenDecodeKeepsTheSample(_ format: RecordFormat) throws {
        let extras: JSONObject = ["id": .string("r1"), "source": .string("x"), "gra": .object(["k": .integer(1)])]
        let record = FormatConverter.encode(sample, extras: extras, as: format, stripMeta: false).record
        #expect(RecordFormat.detect(record) == format)
        let (back, backExtras) = try FormatConverter.decode(record, as: format)
        // Chat formats join instruction and input into one user message.
        var expected = sample
        if format == .sharegpt || format == .openai {
            expected.instruction = "Add\n2 and 3"
            expected.input = ""
        }
        #expect(back == expected)
        #expect(Set(backExtras.keys) == ["id", "source", "gra"])
        #expect(backExtras["gra"] == .object(["k": .integer(1)]))
    }

    @Test func graOutputPutsCanonicalFieldsFirstAndMetaLast() {
        let extras: JSONObject = ["gra": .object([:]), "zeta": .bool(true), "summary": .string("s"), "id": .string("i"), "domain": .string("math")]
        let r = FormatConverter.encode(Sample(instruction: "q", response: "a"), extras: extras, as: .gra, stripMeta: false).record
        #expect(r.keys == ["id", "domain", "instruction", "input", "response", "summary", "zeta", "gra"])
        let stripped = FormatConverter.encode(Sample(instruction: "q", response: "a"), extras: extras, as: .alpaca, stripMeta: true).record
        #expect(stripped.keys == ["instruction", "input", "output", "zeta", "summary", "id", "domain"])
    }

    @Test(arguments: [
        (#"{"conversations":[{"from":"human","value":"q"}]}"#, "does not end with an assistant reply"),
        (#"{"conversations":[{"from":"gpt","value":"a"},{"from":"human","value":"q"}]}"#, "should be a user turn"),
        (#"{"conversations":[{"from":"human","value":"q"},{"from":"observation","value":"a"}]}"#, "unsupported role 'observation'"),
        (#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]},{"role":"assistant","content":"a"}]}"#, "only text converts"),
        (#"{"messages":[{"role":"user","content":null},{"role":"assistant","content":"a"}]}"#, "has no content"),
        (#"{"instruction":5,"output":"a"}"#, "'instruction' must be a string, not a number"),
        (#"{"instruction":"q","output":"a","history":[["only one"]]}"#, "history[0]"),
    ])
    func unconvertibleRecordsSayWhy(_ text: String, _ reason: String) throws {
        let record = try #require(try JSONParser.parse(text).objectValue)
        let format = RecordFormat.detect(record) ?? .alpaca
        do {
            _ = try FormatConverter.decode(record, as: format)
            Issue.record("converted \(text)")
        } catch {
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }

    @Test func openAIContentPartsAndDeveloperRole() throws {
        let record = try #require(try JSONParser.parse(#"{"messages":[{"role":"developer","content":"sys"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":"r"}]}"#).objectValue)
        let (s, _) = try FormatConverter.decode(record, as: .openai)
        #expect(s == Sample(system: "sys", instruction: "ab", response: "r"))
        // LLaMA-Factory's newer parts carry their text under "value".
        let v1 = try #require(try JSONParser.parse(#"{"messages":[{"role":"user","content":[{"type":"text","value":"hi"}],"loss_weight":0.0},{"role":"assistant","content":[{"type":"text","value":"Hello"}],"loss_weight":1.0}]}"#).objectValue)
        #expect(try FormatConverter.decode(v1, as: .openai).0 == Sample(instruction: "hi", response: "Hello"))
    }

    /// The codealpaca case: `output` and `response` both present. The detected format's own
    /// field wins; the other value is kept under gra.format.displaced, or dropped when it is
    /// the same value or with --strip-meta; never a key written twice.
    @Test func clashingFieldIsDisplacedNotDuplicated() throws {
        let both = try #require(try JSONParser.parse(#"{"instruction":"q","output":"old","response":"new","gra":{"review":{}}}"#).objectValue)
        let format = try #require(RecordFormat.detect(both))
        #expect(format == .gra)
        let (sample, extras) = try FormatConverter.decode(both, as: format)
        #expect(sample.response == "new")
        let e = FormatConverter.encode(sample, extras: extras, as: .alpaca, stripMeta: false)
        #expect(JSONWriter.string(.object(e.record)) == #"{"instruction":"q","input":"","output":"new","gra":{"review":{},"format":{"displaced":{"output":"old"}}}}"#)
        #expect(e.displaced == ["output"] && e.dropped.isEmpty)
        let stripped = FormatConverter.encode(sample, extras: extras, as: .alpaca, stripMeta: true)
        #expect(JSONWriter.string(.object(stripped.record)) == #"{"instruction":"q","input":"","output":"new"}"#)
        #expect(stripped.dropped == ["output"] && stripped.displaced.isEmpty)
        // The same value twice loses nothing: dropped, no metadata made for it.
        let same = try #require(try JSONParser.parse(#"{"instruction":"q","output":"a","response":"a"}"#).objectValue)
        let (s2, x2) = try FormatConverter.decode(same, as: .gra)
        let e2 = FormatConverter.encode(s2, extras: x2, as: .alpaca, stripMeta: false)
        #expect(JSONWriter.string(.object(e2.record)) == #"{"instruction":"q","input":"","output":"a"}"#)
        #expect(e2.dropped == ["output"])
    }

    /// Whatever extra fields a record carries (every name any format writes among them),
    /// no conversion writes a key twice.
    @Test func noConversionWritesAKeyTwice() throws {
        let names = ["id", "domain", "instruction", "input", "output", "response", "system", "history", "keywords", "summary",
                     "conversations", "messages", "gra", "tools", "source"]
        var state: UInt64 = 42
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        func hasRepeat(_ v: JSONValue) -> Bool {
            switch v {
            case .object(let o): return Set(o.keys).count != o.count || o.fields.contains { hasRepeat($0.value) }
            case .array(let a): return a.contains(where: hasRepeat)
            default: return false
            }
        }
        for _ in 0..<2000 {
            var extras = JSONObject()
            for _ in 0..<next(6) { extras.append(names[next(names.count)], next(2) == 0 ? .string("v\(next(3))") : .object(["x": .integer(1)])) }
            let sample = Sample(system: next(2) == 0 ? "s" : nil, history: next(2) == 0 ? [.init(user: "u", assistant: "a")] : [],
                                instruction: "q", input: next(2) == 0 ? "i" : "", response: "r")
            for format in RecordFormat.allCases {
                for strip in [false, true] {
                    let e = FormatConverter.encode(sample, extras: extras, as: format, stripMeta: strip)
                    #expect(!hasRepeat(.object(e.record)), "\(JSONWriter.string(.object(e.record)))")
                }
            }
        }
    }
}
