import Testing
import GRAKit

@Suite("Record formats")
struct FormatTests {
    let sample = Sample(system: "Be brief.", history: [.init(user: "hi", assistant: "hello")],
                        instruction: "Add", input: "2 and 3", response: "5")

    @Test(arguments: RecordFormat.allCases)
    func encodeThenDecodeKeepsTheSample(_ format: RecordFormat) throws {
        let extras: JSONObject = ["id": .string("r1"), "source": .string("x"), "gra": .object(["k": .integer(1)])]
        let record = FormatConverter.encode(sample, extras: extras, as: format, stripMeta: false)
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
        let r = FormatConverter.encode(Sample(instruction: "q", response: "a"), extras: extras, as: .gra, stripMeta: false)
        #expect(r.keys == ["id", "domain", "instruction", "input", "response", "summary", "zeta", "gra"])
        let stripped = FormatConverter.encode(Sample(instruction: "q", response: "a"), extras: extras, as: .alpaca, stripMeta: true)
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
    }
}
