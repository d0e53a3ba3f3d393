import GRAKit
import Testing

@Suite("Record formats")
struct FormatTests {
    let sample = Sample(
        system: "Be brief.", history: [.init(user: "hi", assistant: "hello")],
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
        let extras: JSONObject = [
            "gra": .object([:]), "zeta": .bool(true), "summary": .string("s"), "id": .string("i"),
            "domain": .string("math")
        ]
        let r = FormatConverter.encode(
            Sample(instruction: "q", response: "a"), extras: extras, as: .gra, stripMeta: false
        ).record
        #expect(r.keys == ["id", "domain", "instruction", "input", "response", "summary", "zeta", "gra"])
        // A training file holds the format's fields only, and what --keep names, in input order.
        let stripped = FormatConverter.encode(
            Sample(instruction: "q", response: "a"), extras: extras, as: .alpaca, stripMeta: true
        ).record
        #expect(stripped.keys == ["instruction", "input", "output"])
        let kept = FormatConverter.encode(
            Sample(instruction: "q", response: "a"), extras: extras, as: .alpaca, stripMeta: true, keep: ["id", "zeta"]
        ).record
        #expect(kept.keys == ["instruction", "input", "output", "zeta", "id"])
    }

    @Test(arguments: [
        (#"{"conversations":[{"from":"human","value":"q"}]}"#, "does not end with an assistant reply"),
        (#"{"conversations":[{"from":"gpt","value":"a"},{"from":"human","value":"q"}]}"#, "should be a user turn"),
        (
            #"{"conversations":[{"from":"human","value":"q"},{"from":"observation","value":"a"}]}"#,
            "'conversations'[1] should be an assistant turn, found 'observation'"
        ),
        (
            #"{"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"{\"name\":\"f\"}"}]}"#,
            "ends with a tool call"
        ),
        (
            #"""
            {"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"not \#
            json"},{"from":"observation","value":"r"},{"from":"gpt","value":"a"}]}
            """#,
            "is not a JSON function call"
        ),
        (#"{"conversations":[{"from":"tool","value":"q"}]}"#, "unsupported role 'tool'"),
        (
            #"""
            {"messages":[{"role":"user","content":"q"},{"role":"assistant","tool_calls":[{"type":"function",\#
            "function":{"name":"f","arguments":"{oops"}}]},{"role":"tool","content":"r"},{"role":"assistant",\#
            "content":"a"}]}
            """#,
            "arguments that are not JSON"
        ),
        (
            #"""
            {"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]},{"role":"assistant",\#
            "content":"a"}]}
            """#,
            "only text converts"
        ),
        (#"{"messages":[{"role":"user","content":null},{"role":"assistant","content":"a"}]}"#, "has no content"),
        (#"{"instruction":5,"output":"a"}"#, "'instruction' must be a string, not a number"),
        (#"{"instruction":"q","output":"a","history":[["only one"]]}"#, "history[0]")
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
        let record = try #require(
            try JSONParser.parse(
                #"""
                {"messages":[{"role":"developer","content":"sys"},{"role":"user","content":[{"type":"text",\#
                "text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":"r"}]}
                """#
            ).objectValue)
        let (s, _) = try FormatConverter.decode(record, as: .openai)
        #expect(s == Sample(system: "sys", instruction: "ab", response: "r"))
        // LLaMA-Factory's newer parts carry their text under "value".
        let v1 = try #require(
            try JSONParser.parse(
                #"""
                {"messages":[{"role":"user","content":[{"type":"text","value":"hi"}],"loss_weight":0.0},\#
                {"role":"assistant","content":[{"type":"text","value":"Hello"}],"loss_weight":1.0}]}
                """#
            ).objectValue)
        #expect(try FormatConverter.decode(v1, as: .openai).0 == Sample(instruction: "hi", response: "Hello"))
    }

    /// The codealpaca case: `output` and `response` both present. The detected format's own
    /// field wins; the other value is kept under gra.format.displaced, or dropped when it is
    /// the same value or with --strip-meta; never a key written twice.
    @Test func clashingFieldIsDisplacedNotDuplicated() throws {
        let both = try #require(
            try JSONParser.parse(#"{"instruction":"q","output":"old","response":"new","gra":{"review":{}}}"#)
                .objectValue)
        let format = try #require(RecordFormat.detect(both))
        #expect(format == .gra)
        let (sample, extras) = try FormatConverter.decode(both, as: format)
        #expect(sample.response == "new")
        let e = FormatConverter.encode(sample, extras: extras, as: .alpaca, stripMeta: false)
        #expect(
            JSONWriter.string(.object(e.record))
                == #"""
                {"instruction":"q","input":"","output":"new","gra":{"review":{},\#
                "format":{"displaced":{"output":"old"}}}}
                """#
        )
        #expect(e.displaced == ["output"] && e.dropped.isEmpty)
        let stripped = FormatConverter.encode(sample, extras: extras, as: .alpaca, stripMeta: true)
        #expect(JSONWriter.string(.object(stripped.record)) == #"{"instruction":"q","input":"","output":"new"}"#)
        // --strip-meta drops every extra before any clash: nothing displaced, nothing counted.
        #expect(stripped.dropped.isEmpty && stripped.displaced.isEmpty)
        let keptClash = FormatConverter.encode(sample, extras: extras, as: .alpaca, stripMeta: true, keep: ["output"])
        #expect(JSONWriter.string(.object(keptClash.record)) == #"{"instruction":"q","input":"","output":"new"}"#)
        #expect(keptClash.dropped == ["output"] && keptClash.displaced.isEmpty)
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
        let names = [
            "id", "domain", "instruction", "input", "output", "response", "system", "history", "keywords", "summary",
            "conversations", "messages", "gra", "tools", "source"
        ]
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
            for _ in 0..<next(6) {
                extras.append(
                    names[next(names.count)], next(2) == 0 ? .string("v\(next(3))") : .object(["x": .integer(1)]))
            }
            let sample = Sample(
                system: next(2) == 0 ? "s" : nil, history: next(2) == 0 ? [.init(user: "u", assistant: "a")] : [],
                instruction: "q", input: next(2) == 0 ? "i" : "", response: "r")
            for format in RecordFormat.allCases {
                for strip in [false, true] {
                    let e = FormatConverter.encode(sample, extras: extras, as: format, stripMeta: strip)
                    #expect(!hasRepeat(.object(e.record)), "\(JSONWriter.string(.object(e.record)))")
                }
            }
        }
    }

    /// A tool-using conversation (two turns, a step with two parallel calls) goes through
    /// ShareGPT, OpenAI messages and gra's record and comes back the same; Alpaca, which has
    /// no place for calls, and ShareGPT, which has one observation per step, say so.
    @Test func toolCallsRoundTripThroughEveryChatForm() throws {
        let tools: [JSONValue] = [
            .object(["name": .string("get_weather"), "parameters": .object(["type": .string("object")])])
        ]
        let step = ToolStep(
            calls: [ToolCall(name: "get_weather", arguments: .object(["city": .string("Paris")]))],
            results: [#"{"temp": 21}"#])
        let sample = Sample(
            system: "sys", tools: tools,
            history: [.init(user: "hi", steps: [step], assistant: "21 degrees")],
            instruction: "and Rome?",
            steps: [
                ToolStep(
                    calls: [ToolCall(name: "get_weather", arguments: .object(["city": .string("Rome")]))],
                    results: ["{\"temp\": 25}"])
            ], response: "25 degrees")
        #expect(sample.hasToolCalls)
        for format in [RecordFormat.sharegpt, .openai, .gra] {
            #expect(format.cannotHold(sample) == nil)
            let record = FormatConverter.encode(sample, extras: ["id": .string("t1")], as: format, stripMeta: false)
                .record
            #expect(RecordFormat.detect(record) == format)
            var (back, extras) = try FormatConverter.decode(record, as: format)
            // OpenAI messages name every call; the ids are made up stably when the data had none.
            if format == .openai {
                #expect(
                    back.history[0].steps[0].calls[0].id == "call_0_0_0" && back.steps[0].calls[0].id == "call_1_0_0")
                back.history[0].steps[0].calls[0].id = nil
                back.steps[0].calls[0].id = nil
            }
            #expect(back == sample, "\(format)")
            #expect(extras.keys == ["id"])
        }
        #expect(RecordFormat.alpaca.cannotHold(sample)?.contains("no place in alpaca") == true)
        var parallel = sample
        parallel.steps = [
            ToolStep(
                calls: [ToolCall(name: "a", arguments: .object([:])), ToolCall(name: "b", arguments: .object([:]))],
                results: ["1", "2"])
        ]
        #expect(RecordFormat.sharegpt.cannotHold(parallel)?.contains("2 results") == true)
        // OpenAI keeps each result beside its call's id, and reads them back as one step.
        let openai = FormatConverter.encode(parallel, extras: [:], as: .openai, stripMeta: false).record
        let back = try FormatConverter.decode(openai, as: .openai).0
        #expect(
            back.steps.count == 1 && back.steps[0].results == ["1", "2"]
                && back.steps[0].calls.map(\.name) == ["a", "b"])
    }

    /// The LLM stages judge instruction/response samples: a tool-call sample fails with a
    /// reason instead of being judged without its calls.
    @Test func stagesRefuseToolCallSamples() throws {
        let record = try #require(
            try JSONParser.parse(
                #"""
                {"instruction":"q","response":"a","tool_steps":[{"calls":[{"name":"f","arguments":{}}],\#
                "results":["r"]}]}
                """#
            ).objectValue)
        guard case .failure(let f) = SampleFields.read(record, needResponse: true) else {
            Issue.record("read a tool-call sample")
            return
        }
        #expect(f.reason.contains("tool-call sample"))
    }
}
