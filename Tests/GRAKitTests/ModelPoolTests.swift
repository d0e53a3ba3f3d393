import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("Model pool and retry policy")
struct PoolTests {
    /// A refused key's message says which variable it came from, and never shows the key.
    @Test func keySourceNamesTheVariableNeverTheKey() {
        let client = LLMClient(
            http: HTTPClient(maxInFlight: 1), cache: nil, environment: ["SET": "sk-secret-1234", "EMPTY": ""])
        defer { client.http.shutdown() }
        #expect(client.keySource("SET") == "the key comes from $SET")
        #expect(client.keySource("EMPTY") == "the key comes from $EMPTY, which is empty")
        #expect(client.keySource("MISSING") == "the key comes from $MISSING, which is not set")
    }

    @Test func specsConfigAndEnvironment() throws {
        var pool = ModelPool()
        try pool.add(spec: "qwen@http://GPU1:8000/", defaultBaseURL: nil)
        try pool.add(spec: "qwen@http://gpu2:8000/v1", defaultBaseURL: nil)
        try pool.add(spec: "llama", defaultBaseURL: "http://127.0.0.1:11434/v1")
        #expect(pool.models.map(\.name) == ["qwen", "llama"])
        #expect(pool.models[0].baseURLs == ["http://gpu1:8000/v1", "http://gpu2:8000/v1"])
        #expect(throws: GRAError.self) { try pool.add(spec: "nobase", defaultBaseURL: nil) }

        try pool.load(
            configText: #"{"models":[{"name":"ds","base_url":"https://api.example.com/v1","api_key_env":"DS_KEY"}]}"#,
            source: "gra.json")
        #expect(pool.model(named: "ds")?.apiKeyVariable == "DS_KEY")
        #expect(throws: GRAError.self) {
            try pool.load(
                configText: #"{"models":[{"name":"x","base_url":"http://h/v1","api_key":"sk-secret"}]}"#,
                source: "gra.json")
        }
        let env = try ModelPool.resolve(
            modelSpecs: [], configPath: nil,
            environment: ["OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "GRA_MODELS": "a, b@http://h:1"])
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
        b.parameters = ["seed": .integer(1), "temperature": .number("0.7")]  // order does not matter
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
