import Testing
@testable import GRAKit
#if canImport(Glibc)
import Glibc
#endif

@Suite("SHA-256")
struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func knownDigests(_ input: String, _ hex: String) {
        #expect(SHA256.hex(input) == hex)
    }

    @Test func matchesPythonHashlibOnUnicodeAndBlockEdges() throws {
        for n in [55, 56, 63, 64, 65, 119, 120, 128] {
            let s = String(repeating: "é", count: n / 2) + String(repeating: "x", count: n % 2)
            let r = try runPython("import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", s)
            #expect(SHA256.hex(s) == r, "length \(n)")
        }
    }

    /// Long inputs fed whole, byte by byte through a non-contiguous collection, and in uneven
    /// pieces all give Python's digest.
    @Test func longInputsInPiecesMatchHashlib() throws {
        let text = (0..<700).map { "w\($0 * 7919 % 1000) " }.joined()
        let expected = try runPython("import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())", text)
        let bytes = Array(text.utf8)
        #expect(SHA256.hexString(SHA256.hash(bytes)) == expected)
        #expect(SHA256.hexString(SHA256.hash(bytes.lazy.map { $0 })) == expected)
        var s = SHA256()
        var i = 0
        for size in [1, 63, 64, 65, 3, 200, 1000] where i < bytes.count {
            s.update(bytes[i..<min(i + size, bytes.count)])
            i += size
        }
        if i < bytes.count { s.update(bytes[i...]) }
        #expect(SHA256.hexString(s.finalize()) == expected)
    }
}

/// Runs a Python one-liner as an oracle (python3 is part of the machine image).
func runPython(_ code: String, _ arg: String) throws -> String {
    let escapedCode = code.replacingOccurrences(of: "'", with: "'\\''")
    let escapedArg = arg.replacingOccurrences(of: "'", with: "'\\''")
    let pipe = popen("python3 -c '\(escapedCode)' '\(escapedArg)'", "r")!
    defer { pclose(pipe) }
    var out = ""
    var bytes: [UInt8] = []
    while true {
        let c = fgetc(pipe)
        if c == EOF { break }
        bytes.append(UInt8(c))
    }
    out = String(decoding: bytes, as: UTF8.self)
    return out.trimmingWhitespace()
}

@Suite("Prompt templates")
struct TemplateTests {
    let record = try! JSONParser.parse(#"{"instruction":"Add","input":"","n":3,"big":12345678901234567890,"tags":["a","b"],"meta":{"lang":"fr","ok":true},"shots":[{"q":"1+1","a":"2"},{"q":"2+2","a":"4"}]}"#)

    func render(_ t: String) throws -> (String, [String]) {
        var missing: [String] = []
        let out = try PromptTemplate(t).render(record, missing: &missing)
        return (out, missing)
    }

    @Test func variablesAndPaths() throws {
        #expect(try render("{{instruction}} {{n}} {{big}} {{meta.lang}} {{{instruction}}} {{& meta.lang }}").0 == "Add 3 12345678901234567890 fr Add fr")
        #expect(try render("{{tags}}|{{meta}}").0 == #"["a","b"]|{"lang":"fr","ok":true}"#)
    }

    @Test func sectionsIterateAndInvertedSectionsTestEmptiness() throws {
        let t = """
            Examples:
            {{#shots}}
            Q: {{q}} A: {{a}}
            {{/shots}}
            {{#input}}Input: {{input}}{{/input}}{{^input}}(no input){{/input}}
            {{#meta}}lang={{lang}} instr={{instruction}}{{/meta}}
            """
        #expect(try render(t).0 == "Examples:\nQ: 1+1 A: 2\nQ: 2+2 A: 4\n(no input)\nlang=fr instr=Add")
        // "." is the innermost section's value; outside every section, the record itself.
        #expect(try render("{{#tags}}<{{.}}>{{/tags}}").0 == "<a><b>")
        #expect(try render("{{#meta}}{{#tags}}{{lang}}:{{.}} {{/tags}}{{/meta}}").0 == "fr:a fr:b ")
        #expect(try render("{{.}}").0.hasPrefix(#"{""#))
    }

    @Test func missingVariablesAreReportedNotSilentlyEmpty() throws {
        let (out, missing) = try render("{{instruction}} {{respnse}} {{meta.nope}}")
        #expect(out == "Add  ")
        #expect(missing == ["respnse", "meta.nope"])
        // A missing section is simply false.
        #expect(try render("{{#nothing}}x{{/nothing}}y").1.isEmpty)
    }

    @Test(arguments: [("{{#a}}x", "never closed"), ("{{/a}}", "closes no open section"), ("{{#a}}{{/b}}", "was expected"), ("{{x", "unclosed tag"), ("{{> partial}}", "not supported")])
    func badTemplatesSayWhere(_ t: String, _ fragment: String) {
        do {
            _ = try PromptTemplate(t)
            Issue.record("accepted \(t)")
        } catch {
            #expect(error.description.contains(fragment), "\(error)")
        }
    }

    @Test func versionChangesWithTheText() throws {
        #expect(try PromptTemplate("a").version != PromptTemplate("b").version)
        #expect(try PromptTemplate("a").version == PromptTemplate("a").version)
    }
}

@Suite("Reply parsing (docs/ARCHITECTURE.md, Replies)")
struct ReplyParsingTests {
    let schema = try! JSONSchema(JSONParser.parse(#"{"type":"object","properties":{"score":{"type":"integer","minimum":1,"maximum":10},"comment":{"type":"string"}},"required":["score","comment"],"additionalProperties":false}"#))

    func parse(_ reply: String) -> (JSONValue?, String?) {
        switch ReplyJSON.extract(reply) {
        case .failure(let p): return (nil, p.description)
        case .success(let v): return (v, schema.violation(v))
        }
    }

    @Test func wholeReplyThinkBlocksFencesAndLastObject() {
        #expect(parse(#"{"score": 8, "comment": "good"}"#).1 == nil)
        #expect(parse("<think>The answer is {\"score\": 2}?</think>\n{\"score\": 9, \"comment\": \"fine\"}").0?.objectValue?["score"] == .number("9"))
        #expect(parse("Here you go:\n```json\n{\"score\": 3, \"comment\": \"meh\"}\n```\nThanks").0?.objectValue?["score"] == .number("3"))
        #expect(parse("I rate it {\"score\": 4, \"comment\": \"ok\"} overall.").0?.objectValue?["score"] == .number("4"))
    }

    @Test func proseIsAFailureNeverAScore() {
        let (v, problem) = parse("I would give this a 7 out of 10.")
        #expect(v == nil)
        #expect(problem?.contains("no JSON object") == true)
    }

    @Test func outOfRangeAndWrongTypesAreViolationsNotClamped() {
        #expect(parse(#"{"score": 11, "comment": "x"}"#).1 == "$.score is 11.0, above the maximum 10.0")
        #expect(parse(#"{"score": "seven", "comment": "x"}"#).1 == "$.score should be integer, not string")
        #expect(parse(#"{"score": 7.5, "comment": "x"}"#).1 == "$.score should be integer, not number")
        #expect(parse(#"{"score": 7}"#).1 == "$ is missing 'comment'")
        #expect(parse(#"{"score": 7, "comment": "x", "extra": 1}"#).1 == "$ has an unexpected field 'extra'")
    }
}

@Suite("Decoding what servers send (docs/SERVERS.md)")
struct WireDecodingTests {
    func decode(_ text: String) -> Result<ChatReply, ReplyProblem> { LLMClient.decodeChat(Array(text.utf8)) }

    @Test func vLLMNullsAndReasoningFields() throws {
        let r = try decode(#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"because","tool_calls":[]},"finish_reason":"stop","stop_reason":null,"logprobs":null}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7},"system_fingerprint":null,"kv_transfer_params":null}"#).get()
        #expect(r.content == "hi")
        #expect(r.reasoning == "because")
        #expect(r.promptTokens == 5 && r.completionTokens == 2)
        #expect(try decode(#"{"choices":[{"message":{"content":"a","reasoning":"r"}}]}"#).get().reasoning == "r")
    }

    @Test func inlineThinkIsSplitOff() throws {
        let r = try decode(#"{"choices":[{"message":{"content":"<think>\nhmm\n</think>\n\nAnswer"}}]}"#).get()
        #expect(r.content == "Answer")
        #expect(r.reasoning == "hmm")
        #expect(LLMClient.splitThink("reasoning only</think>final").answer == "final")
        #expect(LLMClient.splitThink("text with <think> later</think> x").thought == nil)
    }

    @Test func nullContentAndContentParts() throws {
        #expect(try decode(#"{"choices":[{"message":{"role":"assistant","content":null}}]}"#).get().content == nil)
        #expect(try decode(#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#).get().content == "ab")
    }

    @Test(arguments: [
        (#"{"id":"x"}"#, "no choices"),
        (#"{"choices":[]}"#, "no choices"),
        (#"{"choices":["#, "not JSON"),
        (#"{"error":{"message":"boom"}}"#, "boom"),
    ])
    func malformedBodies(_ body: String, _ fragment: String) {
        guard case .failure(let p) = decode(body) else { Issue.record("decoded \(body)"); return }
        #expect(p.description.contains(fragment))
    }

    @Test(arguments: [
        (#"{"error":{"message":"m1","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#, "m1"),
        (#"{"object":"error","message":"m2","type":"BadRequestError","param":null,"code":400}"#, "m2"),
        (#"{"error":"m3"}"#, "m3"),
        (#"{"detail":"m4"}"#, "m4"),
        ("<html>503 loading</html>\n", "<html>503 loading</html>"),
        ("", "(empty body)"),
    ])
    func errorShapes(_ body: String, _ message: String) {
        #expect(LLMClient.errorMessage(Array(body.utf8)) == message)
    }
}

@Suite("Model pool and retry policy")
struct PoolTests {
    @Test func specsConfigAndEnvironment() throws {
        var pool = ModelPool()
        try pool.add(spec: "qwen@http://GPU1:8000/", defaultBaseURL: nil)
        try pool.add(spec: "qwen@http://gpu2:8000/v1", defaultBaseURL: nil)
        try pool.add(spec: "llama", defaultBaseURL: "http://127.0.0.1:11434/v1")
        #expect(pool.models.map(\.name) == ["qwen", "llama"])
        #expect(pool.models[0].baseURLs == ["http://gpu1:8000/v1", "http://gpu2:8000/v1"])
        #expect(throws: GRAError.self) { try pool.add(spec: "nobase", defaultBaseURL: nil) }

        try pool.load(configText: #"{"models":[{"name":"ds","base_url":"https://api.example.com/v1","api_key_env":"DS_KEY"}]}"#, source: "gra.json")
        #expect(pool.model(named: "ds")?.apiKeyVariable == "DS_KEY")
        #expect(throws: GRAError.self) {
            try pool.load(configText: #"{"models":[{"name":"x","base_url":"http://h/v1","api_key":"sk-secret"}]}"#, source: "gra.json")
        }
        let env = try ModelPool.resolve(modelSpecs: [], configPath: nil, environment: ["OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "GRA_MODELS": "a, b@http://h:1"])
        #expect(env.models.map(\.name) == ["a", "b"])
        #expect(env.models[1].baseURLs == ["http://h:1/v1"])
    }

    @Test func backoffGrowsWithJitterAndHonoursRetryAfter() {
        let p = RetryPolicy()
        for attempt in 1...6 {
            let d = p.delay(afterAttempt: attempt, retryAfter: nil)
            let full = min(p.maxDelay, p.baseDelay * Double(1 << (attempt - 1)))
            #expect(d >= full * 0.5 && d <= full)
        }
        let r = p.delay(afterAttempt: 1, retryAfter: 3)
        #expect(r >= 3 && r <= 3.3)
        #expect(p.delay(afterAttempt: 1, retryAfter: 10_000) <= p.maxRetryAfter * 1.1)
    }

    @Test func cacheKeyIgnoresServerURLButNotNamespaceSampleOrPrompt() {
        let m1 = ModelEndpoint(name: "m", baseURLs: ["http://a/v1", "http://b/v1"])
        let msg: [JSONValue] = [.object(["role": .string("user"), "content": .string("hi")])]
        let a = ChatRequest(model: m1, messages: msg, parameters: ["temperature": .number("0.7"), "seed": .integer(1)])
        var b = a
        b.parameters = ["seed": .integer(1), "temperature": .number("0.7")]   // order does not matter
        #expect(a.cacheKey() == b.cacheKey())
        var c = a
        c.sampleIndex = 1
        #expect(a.cacheKey() != c.cacheKey())
        var d = a
        d.promptVersion = "v2"
        #expect(a.cacheKey() != d.cacheKey())
        var e = a
        e.model.name = "other"
        #expect(a.cacheKey() != e.cacheKey())
        // The server moved (127.0.0.1 → localhost, another host): the same entries.
        var moved = a
        moved.model.baseURLs = ["http://localhost:8000/v1"]
        #expect(a.cacheKey() == moved.cacheKey())
        // Other weights under the same name, kept apart on purpose.
        var other = a
        other.model.cacheNamespace = "finetune-2"
        #expect(a.cacheKey() != other.cacheKey())
        var otherToo = other
        otherToo.model.baseURLs = ["http://c/v1"]
        #expect(other.cacheKey() == otherToo.cacheKey())
    }
}

@Suite("Request bodies")
struct RequestBodyTests {
    @Test func bodyIsModelMessagesParametersThenFormat() throws {
        let model = ModelEndpoint(name: "m\"1", baseURLs: ["http://h/v1"], apiKeyVariable: "OPENAI_API_KEY")
        let messages: [JSONValue] = [
            .object(["role": .string("system"), "content": .string("be brief\n")]),
            .object(["role": .string("user"), "content": .string("héllo \u{1} \"q\"")]),
        ]
        let schema = try JSONSchema(JSONParser.parse(#"{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}"#))
        let messagesText = #"[{"role":"system","content":"be brief\n"},{"role":"user","content":"héllo \u0001 \"q\""}]"#
        for (request, expected) in [
            (ChatRequest(model: model, messages: messages), #"{"model":"m\"1","messages":"# + messagesText + "}"),
            (ChatRequest(model: model, messages: messages, parameters: ["temperature": .number("0.7"), "stop": .array([.string("\n")])],
                         responseFormat: ChatRequest.jsonSchemaFormat(name: "x", schema: schema)),
             #"{"model":"m\"1","messages":"# + messagesText + #","temperature":0.7,"stop":["\n"],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},"strict":true}}}"#),
        ] {
            let written = ByteBuffer(capacity: 16)
            request.writeBody(to: written)
            #expect(String(decoding: written.bytes, as: UTF8.self) == expected)
        }
    }
}
