import CCurl
import Foundation

/// A chat-completion request in gra's terms.
public struct ChatRequest: Sendable {
    public var model: ModelEndpoint
    /// OpenAI messages: `{"role": ..., "content": ...}` objects.
    public var messages: [JSONValue]
    /// Sampling parameters sent as they are: temperature, top_p, max_tokens, seed, stop, n.
    public var parameters: JSONObject
    /// `response_format`, e.g. `{"type":"json_schema","json_schema":{...}}`.
    public var responseFormat: JSONValue?
    /// Which of several samples of the same prompt this is (part of the cache key only).
    public var sampleIndex: Int
    /// Hash of the prompt template (part of the cache key only).
    public var promptVersion: String?
    /// How many times an unparseable reply to this same prompt was re-asked (cache key only).
    public var reask = 0

    public init(
        model: ModelEndpoint, messages: [JSONValue], parameters: JSONObject = JSONObject(),
        responseFormat: JSONValue? = nil, sampleIndex: Int = 0, promptVersion: String? = nil
    ) {
        self.model = model
        self.messages = messages
        self.parameters = parameters
        self.responseFormat = responseFormat
        self.sampleIndex = sampleIndex
        self.promptVersion = promptVersion
    }

    /// The `response_format` asking for JSON that conforms to `schema`.
    public static func jsonSchemaFormat(name: String, schema: JSONSchema) -> JSONValue {
        .object([
            "type": .string("json_schema"),
            "json_schema": .object(["name": .string(name), "schema": schema.schema, "strict": .bool(true)])
        ])
    }

    /// Writes the JSON body sent to `/chat/completions` to `out`: model, messages, the
    /// parameters as given, then `response_format` when there is one.
    public func writeBody(to out: ByteBuffer) {
        out.append("{\"model\":")
        JSONWriter.writeString(model.name, to: out)
        out.append(",\"messages\":")
        JSONWriter.write(.array(messages), to: out)
        for f in parameters.fields {
            out.append(UInt8(ascii: ","))
            JSONWriter.writeString(f.key, to: out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.write(f.value, to: out)
        }
        if let responseFormat {
            out.append(",\"response_format\":")
            JSONWriter.write(responseFormat, to: out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// SHA-256 of the canonical request: scheme version, model name (and cache namespace),
    /// messages, sorted parameters, response format, sample index and prompt version. Never the
    /// server's URL (replicas and a server that moved share entries), the API key, timeouts or
    /// concurrency. (Scheme 1 held the base URL: its entries are not found by scheme 2.)
    public func cacheKey() -> [UInt8] {
        var o = JSONObject()
        o.append("messages", .array(messages))
        o.append("model", .string(model.name))
        if let ns = model.cacheNamespace { o.append("namespace", .string(ns)) }
        o.append("params", .object(JSONObject(parameters.fields.sorted { $0.key < $1.key })))
        if let promptVersion { o.append("prompt_version", .string(promptVersion)) }
        if reask > 0 { o.append("reask", .integer(reask)) }
        if let responseFormat { o.append("response_format", responseFormat) }
        o.append("sample", .integer(sampleIndex))
        o.append("v", .integer(2))
        let buffer = ByteBuffer(capacity: 960)
        JSONWriter.write(o, to: buffer)
        return SHA256.hash(buffer.bytes)
    }
}

/// A model's answer, read tolerantly (every server variant in docs/SERVERS.md).
public struct ChatReply: Sendable {
    /// The reply text with any leading `<think>…</think>` block moved to `reasoning`; nil when
    /// the server sent no content.
    public var content: String?
    /// `reasoning_content`, `reasoning`, or the `<think>` block, when present.
    public var reasoning: String?
    public var finishReason: String?
    public var promptTokens = 0
    public var completionTokens = 0
    public var fromCache = false
    /// HTTP attempts made (0 for a cache hit).
    public var attempts = 0
    public var seconds = 0.0
}

/// A request that failed for good: why, the HTTP status if there was one, and how many
/// attempts were made.
public struct RequestFailure: Error, Sendable, Equatable {
    public var message: String
    public var status: Int?
    public var attempts: Int
    /// True when it failed on something retrying cannot fix (400, 401, 403, 404).
    public var permanent: Bool
    /// True when no connection could be made (the server is not there).
    public var connectFailed = false
}

/// How failed requests are retried: 429, 5xx, timeouts, resets and malformed replies, with
/// exponential backoff and jitter, honouring Retry-After; never 400/401/403/404.
public struct RetryPolicy: Sendable {
    public var maxAttempts = 5
    public var baseDelay = 0.5
    public var maxDelay = 30.0
    /// A Retry-After longer than this is cut to it.
    public var maxRetryAfter = 300.0
    public init() {}

    public static let retryableStatuses: Set<Int> = [408, 409, 425, 429, 500, 502, 503, 504]

    /// libcurl results worth another try: connect failures, timeouts, resets, short bodies.
    static let retryableCurlCodes: Set<Int> = [7, 16, 18, 28, 52, 55, 56, 92]

    /// The wait before attempt `attempt + 1`.
    public func delay(afterAttempt attempt: Int, retryAfter: Double?) -> Double {
        if let r = retryAfter { return min(max(r, 0), maxRetryAfter) * Double.random(in: 1.0...1.1) }
        let exponential = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return exponential * Double.random(in: 0.5...1.0)
    }
}

/// Per-model counters for progress lines and `--stats`.
public struct ModelStats: Sendable {
    public var requests = 0
    public var cacheHits = 0
    public var retries = 0
    public var failures = 0
    /// Retries and final failures by what went wrong: the HTTP status ("429", "503", …),
    /// "timeout", "connect", "transport" (reset, cut short), "malformed" (a 200 that does not
    /// decode) or "blocked" (the model was stopped).
    public var retriesByClass: [String: Int] = [:]
    public var failuresByClass: [String: Int] = [:]
    public var promptTokens = 0
    public var completionTokens = 0
    /// A uniform sample (reservoir) of at most `maxLatencySamples` request latencies, so
    /// memory stays bounded on runs of millions of requests.
    public private(set) var latencies: [Double] = []
    public private(set) var latencyCount = 0
    public static let maxLatencySamples = 100_000

    public mutating func record(latency: Double) {
        latencyCount += 1
        if latencies.count < ModelStats.maxLatencySamples {
            latencies.append(latency)
        } else {
            let slot = Int.random(in: 0..<latencyCount)
            if slot < latencies.count { latencies[slot] = latency }
        }
    }

    public func percentile(_ p: Double) -> Double? {
        guard !latencies.isEmpty else { return nil }
        let sorted = latencies.sorted()
        return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
    }
}

/// The limits the client puts on every HTTP exchange (`--connect-timeout`, `--timeout`,
/// `--max-response-bytes`).
public struct RequestLimits: Sendable {
    public var connectTimeout = 10.0
    public var totalTimeout = 600.0
    public var maxResponseBytes = 16 << 20
    public init() {}
}

/// The OpenAI-compatible client every LLM stage uses: cache first, then HTTP through
/// `HTTPClient` with retries, replica choice (least in flight) and tolerant decoding.
///
/// Everything it does is set when it is made; the one choice left per call is where the work
/// after each reply runs (`via`: a stage hands it to its own thread).
public final class LLMClient: @unchecked Sendable {
    public let http: HTTPClient
    public let cache: ResponseCache?
    public let retry: RetryPolicy
    public let limits: RequestLimits
    private let environment: [String: String]
    private let statsLock = Mutex()
    /// Per model, in order of first use: a pool has a handful, and the same name string comes
    /// back on every request, so a scan is cheaper than hashing it three times per request.
    /// Names and counters in two arrays: scanning an array of (name, stats) pairs copied each
    /// pair, counters and all, to look at its name.
    private var statsModels: [String] = []
    private var statsValues: [ModelStats] = []
    /// Told when a retry is scheduled, for progress output: the message, and the same message
    /// without the attempt number and wait (for folding repeats).
    public let onRetry: (@Sendable (_ message: String, _ foldKey: String) -> Void)?
    /// Which models still get requests (the circuit breaker).
    public let health: ModelHealth
    /// Told of problems that do not fail a request (a cache write that failed).
    public let onWarning: (@Sendable (String) -> Void)?

    public init(
        http: HTTPClient, cache: ResponseCache?, retry: RetryPolicy = RetryPolicy(),
        limits: RequestLimits = RequestLimits(),
        health: ModelHealth = ModelHealth(), environment: [String: String],
        onRetry: (@Sendable (_ message: String, _ foldKey: String) -> Void)? = nil,
        onWarning: (@Sendable (String) -> Void)? = nil
    ) {
        self.http = http
        self.cache = cache
        self.retry = retry
        self.limits = limits
        self.health = health
        self.environment = environment
        self.onRetry = onRetry
        self.onWarning = onWarning
    }

    public var stats: [String: ModelStats] {
        statsLock.locked { Dictionary(zip(statsModels, statsValues), uniquingKeysWith: { a, _ in a }) }
    }

    func count(_ model: String, _ update: (inout ModelStats) -> Void) {
        statsLock.locked {
            for i in statsModels.indices where statsModels[i] == model {
                update(&statsValues[i])
                return
            }
            var s = ModelStats()
            update(&s)
            statsModels.append(model)
            statsValues.append(s)
        }
    }

    private func apiKey(for model: ModelEndpoint) -> String? {
        guard let k = environment[model.apiKeyVariable], !k.isEmpty else { return nil }
        return k
    }

    /// Where the key sent with `apiKeyVariable`'s requests comes from, for a refusal's message:
    /// "the key comes from $VAR" (", which is not set" / ", which is empty"). Never the key.
    public func keySource(_ apiKeyVariable: String) -> String {
        let state = environment[apiKeyVariable].map { $0.isEmpty ? ", which is empty" : "" } ?? ", which is not set"
        return "the key comes from $\(apiKeyVariable)\(state)"
    }

    /// Removes the API key from any text that might be shown (servers echo parts of it).
    private func redact(_ text: String, model: ModelEndpoint) -> String {
        guard let key = apiKey(for: model), key.count >= 4 else { return text }
        var t = text.replacingOccurrences(of: key, with: "***")
        if key.count >= 12 { t = t.replacingOccurrences(of: String(key.prefix(8)), with: "***") }
        return t
    }

    /// The replica with the fewest requests in flight, among those that do not look down.
    private func pickBaseURL(_ model: ModelEndpoint) -> String {
        if model.baseURLs.count == 1 { return model.baseURLs[0] }
        let up = model.baseURLs.filter { !health.looksDown($0) }
        return (up.isEmpty ? model.baseURLs : up).min { http.inFlight(endpoint: $0) < http.inFlight(endpoint: $1) }
            ?? model.baseURLs[0]
    }

    private let targetsLock = Mutex()
    /// A POST target: where, and the URL and header lines built for it.
    private struct Target {
        let base: String, path: String, keyVariable: String
        let url: String, headers: [String]
    }
    private var targets: [Target] = []

    /// The URL and header lines of a POST to `path` on `base`, built once per endpoint and kept
    /// (the same strings for every request, which the HTTP loop then recognises cheaply).
    private func target(base: String, path: String, model: ModelEndpoint) -> (url: String, headers: [String]) {
        targetsLock.locked { () -> (String, [String]) in
            // By index: `first(where:)` copied every entry (five strings) to test it.
            for i in targets.indices
            where targets[i].base == base && targets[i].path == path && targets[i].keyVariable == model.apiKeyVariable {
                return (targets[i].url, targets[i].headers)
            }
            var headers = ["Content-Type: application/json", "Accept: application/json"]
            if let k = apiKey(for: model) { headers.append("Authorization: Bearer \(k)") }
            let url = base + path
            targets.append(
                Target(base: base, path: path, keyVariable: model.apiKeyVariable, url: url, headers: headers))
            return (url, headers)
        }
    }

    /// The cached reply to `request`, if the cache holds one that decodes (what `chat` would
    /// answer without the network).
    public func cachedReply(_ request: ChatRequest) -> ChatReply? {
        guard let cache, let body = try? cache.lookup(request.cacheKey()) else { return nil }
        return try? LLMClient.decodeChat(body).get()
    }

    /// Sends a chat completion (or answers it from the cache, synchronously). The work after
    /// the reply, `completion` included, runs through `executor` (nil: on the event-loop
    /// thread). The handler is made when the request is sent, so nothing is allocated or
    /// copied on the event-loop thread when a reply comes.
    ///
    /// With a cache, a request asked again while the same one (same cache key) is on its way is
    /// not sent twice: the second call gets the first one's reply, as from the cache. A sampling
    /// server answers two sends differently, and the cache keeps one answer, so a rerun could
    /// not give back what both records got.
    public func chat(
        _ request: ChatRequest, via executor: HTTPClient.Executor? = nil,
        completion: @escaping @Sendable (Result<ChatReply, RequestFailure>) -> Void
    ) {
        let key = cache == nil ? [] : request.cacheKey()
        if let cache {
            // Joined before the cache is read: the first call leaves `waiting` only after its
            // reply is in the cache, so a later call finds one or the other.
            let joined = waitingLock.locked { () -> Bool in
                if waiting[key] != nil {
                    waiting[key]!.append(completion)
                    return true
                }
                waiting[key] = []
                return false
            }
            if joined { return }
            if let body = try? cache.lookup(key), let decoded = try? LLMClient.decodeChat(body).get() {
                var reply = decoded
                reply.fromCache = true
                count(request.model.name) { $0.cacheHits += 1 }
                completion(.success(reply))
                answerWaiting(key, .success(reply), model: request.model.name)
                return
            }
        }
        // Under glibc's 1 KiB large-chunk size: a large allocation makes malloc consolidate
        // its fast bins, on every request.
        let buffer = ByteBuffer(capacity: 960)
        request.writeBody(to: buffer)
        let model = request.model
        // What a rate limit will count (OpenAI counts max_tokens at once): about 4 bytes a token.
        let estimate = buffer.count / 4 + Int(request.parameters["max_tokens"]?.doubleValue ?? 0)
        post(
            "/chat/completions", model: model, body: buffer, key: key, tokens: estimate, via: executor,
            decode: LLMClient.decodeChat
        ) { [self] result in
            let answer = result.map { outcome in
                var reply = outcome.value
                reply.attempts = outcome.attempts
                reply.seconds = outcome.response.seconds
                count(model.name) {
                    $0.promptTokens += reply.promptTokens
                    $0.completionTokens += reply.completionTokens
                }
                if reply.promptTokens + reply.completionTokens > 0 {
                    limiter(for: model).correct(tokens: reply.promptTokens + reply.completionTokens - estimate)
                }
                return reply
            }
            completion(answer)
            if !key.isEmpty { answerWaiting(key, answer, model: model.name) }
        }
    }

    private let waitingLock = Mutex()
    /// Cache keys of requests on their way, with the calls that asked the same meanwhile.
    private var waiting: [[UInt8]: [@Sendable (Result<ChatReply, RequestFailure>) -> Void]] = [:]

    /// Ends `key`'s wait: the calls that joined it get `answer` (a reply as from the cache, or
    /// the same failure), in the context the first call's completion ran in.
    private func answerWaiting(_ key: [UInt8], _ answer: Result<ChatReply, RequestFailure>, model: String) {
        let joined = waitingLock.locked { waiting.removeValue(forKey: key) ?? [] }
        guard !joined.isEmpty else { return }
        let shared = answer.map { reply in
            var r = reply
            r.fromCache = true
            return r
        }
        if case .success = shared { count(model) { $0.cacheHits += joined.count } }
        for completion in joined { completion(shared) }
    }

    /// POSTs `body` to `path` on the least busy replica of `model`, retrying as `retry` says.
    /// On success the raw body is cached under `key` (unless it is empty) and the latency
    /// recorded. Everything after the HTTP exchange runs through `executor` (retries included).
    func post<T: Sendable>(
        _ path: String, model: ModelEndpoint, body: ByteBuffer, key: [UInt8], tokens: Int, attempt: Int = 1,
        delay: Double = 0, via executor: HTTPClient.Executor?,
        decode: @escaping @Sendable ([UInt8]) -> Result<T, ReplyProblem>,
        completion:
            @escaping @Sendable (Result<(value: T, response: HTTPResponse, attempts: Int), RequestFailure>) -> Void
    ) {
        if let block = health.block(for: model.name) {
            count(model.name) {
                $0.failures += 1
                $0.failuresByClass["blocked", default: 0] += 1
            }
            return completion(
                .failure(RequestFailure(message: block.message, status: nil, attempts: attempt - 1, permanent: true)))
        }
        let base = pickBaseURL(model)
        let (url, headers) = target(base: base, path: path, model: model)
        var r = HTTPRequest(url: url, headers: headers, taking: body, endpoint: base)
        r.connectTimeout = limits.connectTimeout
        r.totalTimeout = limits.totalTimeout
        r.maxResponseBytes = limits.maxResponseBytes
        let limiter = limiter(for: model)
        r.gate = { limiter.reserve(tokens: tokens, now: HTTPClient.now()) }
        // On the loop thread, before the next request starts: heed a spent rate limit at once.
        r.observe = { [http] response in
            if !response.rateLimit.isEmpty {
                limiter.heed(
                    response.rateLimit, inFlight: http.inFlight(endpoint: base), nextTokens: tokens,
                    now: HTTPClient.now())
            }
        }
        let request = r
        count(model.name) { $0.requests += 1 }
        let handle: @Sendable (HTTPResponse) -> Void = { [self] response in
            // Any HTTP answer ends the endpoint's streak of connection failures.
            if !response.isTransportFailure { health.reached(base) }
            switch classify(response, model: model, base: base, decode: decode) {
            case .success(let value):
                count(model.name) { $0.record(latency: response.seconds) }
                if let cache, !key.isEmpty {
                    do { try cache.store(key, response.body) } catch { onWarning?("cache write failed: \(error)") }
                }
                completion(.success((value, response, attempt)))
            case .failure(let failure):
                if response.connectFailed {
                    health.connectFailed(base, model: model, message: failure.message, now: HTTPClient.now())
                } else if response.status == 401 || response.status == 403 {
                    health.denied(model, message: "\(failure.message) — \(keySource(model.apiKeyVariable))")
                }
                if !failure.permanent && attempt < retry.maxAttempts && health.block(for: model.name) == nil {
                    let wait = retry.delay(afterAttempt: attempt, retryAfter: response.retryAfter)
                    let kind = LLMClient.failureClass(response)
                    count(model.name) {
                        $0.retries += 1
                        $0.retriesByClass[kind, default: 0] += 1
                    }
                    onRetry?(
                        """
                        \(model.name): \(failure.message); retry \(attempt + 1)/\(retry.maxAttempts) in \
                        \(String(format: "%.1f", wait)) s
                        """,
                        "\(model.name): \(failure.message); retrying")
                    // The same bytes again: the buffer is the request's, never written to.
                    post(
                        path, model: model, body: request.bodyBuffer!, key: key, tokens: tokens, attempt: attempt + 1,
                        delay: wait, via: executor, decode: decode, completion: completion)
                } else {
                    let kind = LLMClient.failureClass(response)
                    count(model.name) {
                        $0.failures += 1
                        $0.failuresByClass[kind, default: 0] += 1
                    }
                    var f = failure
                    f.attempts = attempt
                    completion(.failure(f))
                }
            }
        }
        http.send(request, delay: delay, via: executor, completion: handle)
    }

    private let limitersLock = Mutex()
    /// Per model, in order of first use (a scan, as for the counters).
    private var limiterModels: [String] = []
    private var limiterValues: [RateLimiter] = []

    /// The model's rate limiter (its `--rpm`/`--tpm`, and the pauses its server's headers ask for).
    private func limiter(for model: ModelEndpoint) -> RateLimiter {
        limitersLock.locked {
            for i in limiterModels.indices where limiterModels[i] == model.name { return limiterValues[i] }
            let l = RateLimiter(limits: model.rateLimits)
            limiterModels.append(model.name)
            limiterValues.append(l)
            return l
        }
    }

    /// What kind of failure a response is, for the counters: its HTTP status, or "timeout",
    /// "connect", "transport", "malformed".
    static func failureClass(_ r: HTTPResponse) -> String {
        if r.connectFailed { return "connect" }
        if r.isTransportFailure {
            return r.curlCode == Int(CURLE_OPERATION_TIMEDOUT.rawValue) ? "timeout" : "transport"
        }
        return r.status == 200 ? "malformed" : String(r.status)
    }

    /// Sorts an HTTP outcome into a decoded reply, a retryable failure or a permanent one.
    private func classify<T>(
        _ response: HTTPResponse, model: ModelEndpoint, base: String,
        decode: ([UInt8]) -> Result<T, ReplyProblem>
    ) -> Result<T, RequestFailure> {
        var whereText: String { model.name.isEmpty ? base : "\(base) (model \(model.name))" }
        if response.isTransportFailure {
            let permanent = response.bodyTooLarge || !RetryPolicy.retryableCurlCodes.contains(response.curlCode)
            return .failure(
                RequestFailure(
                    message: "\(whereText): \(response.transportError ?? "transfer failed")",
                    status: nil, attempts: 0, permanent: permanent, connectFailed: response.connectFailed))
        }
        if response.status == 200 {
            switch decode(response.body) {
            case .success(let v): return .success(v)
            case .failure(let why):
                // A reply that lacks what the server cannot give (prompt log-probabilities) is not
                // asked for again.
                let what = why.permanent ? "" : "malformed response: "
                return .failure(
                    RequestFailure(
                        message: "\(whereText): \(what)\(why)", status: 200, attempts: 0, permanent: why.permanent))
            }
        }
        let detail = redact(LLMClient.errorMessage(response.body), model: model)
        let permanent = !RetryPolicy.retryableStatuses.contains(response.status)
        return .failure(
            RequestFailure(
                message: "HTTP \(response.status) from \(whereText): \(detail)",
                status: response.status, attempts: 0, permanent: permanent))
    }

    // MARK: - Decoding (tolerant of every server in docs/SERVERS.md)

    /// The human-readable message of an error body in any of the shapes servers send.
    public static func errorMessage(_ body: [UInt8]) -> String {
        let raw = String(decoding: body, as: UTF8.self)
        if let v = try? JSONParser.parse(body), case .object(let o) = v {
            if case .object(let e)? = o["error"], case .string(let m)? = e["message"] { return m }
            if case .string(let m)? = o["error"] { return m }
            if case .string(let m)? = o["message"] { return m }
            if let d = o["detail"] { return d.stringValue ?? JSONWriter.string(d) }
        }
        let trimmed = raw.trimmingWhitespace()
        if trimmed.isEmpty { return "(empty body)" }
        return trimmed.count > 300 ? String(trimmed.prefix(300)) + "…" : trimmed
    }

    /// Reads a `/chat/completions` body. Only the fields gra uses are built; the rest of the
    /// document is validated and skipped. A repeated key counts by its last occurrence, as in
    /// `JSONObject`.
    public static func decodeChat(_ body: [UInt8]) -> Result<ChatReply, ReplyProblem> {
        var isObject = false
        var error: JSONValue?
        var choices: ChatChoice?  // nil: no "choices" array whose first element is an object
        var promptTokens = 0, completionTokens = 0
        do {
            try body.withUnsafeBufferPointer { (buffer) throws(JSONParseError) in
                try JSONParser.read(buffer) { (p) throws(JSONParseError) in
                    isObject = try p.readObject { (key, p) throws(JSONParseError) in
                        if key == "choices" {
                            choices = nil
                            _ = try p.readArray { (i, p) throws(JSONParseError) in
                                if i == 0 { choices = try ChatChoice.read(&p) } else { try p.skipValue() }
                            }
                        } else if key == "usage" {
                            promptTokens = 0
                            completionTokens = 0
                            _ = try p.readObject { (key, p) throws(JSONParseError) in
                                if key == "prompt_tokens" {
                                    promptTokens = tokenCount(try p.readNumber())
                                } else if key == "completion_tokens" {
                                    completionTokens = tokenCount(try p.readNumber())
                                } else {
                                    try p.skipValue()
                                }
                            }
                        } else if key == "error" {
                            error = try p.readValue()
                        } else {
                            try p.skipValue()
                        }
                    }
                }
            }
        } catch {
            return .failure("not JSON (\(error))")
        }
        guard isObject else { return .failure("not a JSON object") }
        if let error, error != .null { return .failure("error in a 200 reply: \(errorMessage(body))") }
        guard let choice = choices else { return .failure("no choices") }
        var reply = ChatReply()
        reply.finishReason = choice.finishReason
        var reasoning = choice.reasoningContent ?? choice.reasoning
        switch choice.content {
        case .string(let c)?:
            let (thought, rest) = splitThink(c)
            reply.content = rest
            reasoning = reasoning ?? thought
        case .array(let parts)?:
            reply.content = parts.compactMap { $0.objectValue?["text"]?.stringValue }.joined()
        default:
            break
        }
        reply.reasoning = reasoning
        reply.promptTokens = promptTokens
        reply.completionTokens = completionTokens
        return .success(reply)
    }

    /// A usage count as an Int (0 when absent, negative, fractional nonsense or out of range).
    private static func tokenCount(_ value: Double?) -> Int {
        guard let value, value >= 0, value < 1e15 else { return 0 }
        return Int(value)
    }

    /// What `decodeChat` keeps of `choices[0]`.
    private struct ChatChoice {
        var finishReason: String?
        var content: JSONValue?
        /// Non-empty `reasoning_content` / `reasoning` of the message.
        var reasoningContent: String?
        var reasoning: String?

        /// Reads `choices[0]`; nil when it is not an object.
        static func read(_ p: inout JSONParser) throws(JSONParseError) -> ChatChoice? {
            var choice = ChatChoice()
            let isObject = try p.readObject { (key, p) throws(JSONParseError) in
                if key == "finish_reason" {
                    choice.finishReason = try p.readString()
                } else if key == "message" {
                    choice.content = nil
                    choice.reasoningContent = nil
                    choice.reasoning = nil
                    _ = try p.readObject { (key, p) throws(JSONParseError) in
                        if key == "content" {
                            choice.content = try p.readValue()
                        } else if key == "reasoning_content" {
                            choice.reasoningContent = try p.readString().flatMap { $0.isEmpty ? nil : $0 }
                        } else if key == "reasoning" {
                            choice.reasoning = try p.readString().flatMap { $0.isEmpty ? nil : $0 }
                        } else {
                            try p.skipValue()
                        }
                    }
                } else {
                    try p.skipValue()
                }
            }
            return isObject ? choice : nil
        }
    }

    /// Splits a leading `<think>…</think>` block (or text before a lone `</think>`, as some
    /// chat templates emit) from the answer.
    public static func splitThink(_ text: String) -> (thought: String?, answer: String) {
        guard let close = text.rangeOfBytes("</think>") else { return (nil, text) }
        let before = text[..<close.lowerBound]
        var thought = Substring(before)
        if let open = before.rangeOfBytes("<think>") {
            guard before[..<open.lowerBound].allSatisfy(\.isWhitespace) else { return (nil, text) }
            thought = before[open.upperBound...]
        }
        let answer = String(text[close.upperBound...]).trimmingWhitespace()
        return (String(thought).trimmingWhitespace(), answer)
    }

    // MARK: - Embeddings

    /// Embeds `inputs` with `model`: each text's vector from the cache when it holds one (one
    /// entry per model and text, so any tool embedding the same text with the same model, in any
    /// batch, finds it), the others in batches of `batchSize` texts per request, each vector
    /// stored as it comes. `completion` gets one vector per input, in order: at once when the
    /// cache held them all, else through `executor` (nil: on the event-loop thread).
    public func embeddings(
        model: ModelEndpoint, inputs: [String], batchSize: Int = 64, via executor: HTTPClient.Executor? = nil,
        completion: @escaping @Sendable (Result<[[Float]], RequestFailure>) -> Void
    ) {
        var found = [[Float]?](repeating: nil, count: inputs.count)
        var missing: [Int] = []
        if let cache {
            for (i, text) in inputs.enumerated() {
                let key = LLMClient.embeddingCacheKey(model: model, input: text)
                if let body = try? cache.lookup(key), let v = LLMClient.storedVector(body) {
                    found[i] = v
                } else {
                    missing.append(i)
                }
            }
            let hits = inputs.count - missing.count
            if hits > 0 { count(model.name) { $0.cacheHits += hits } }
        } else {
            missing = Array(inputs.indices)
        }
        let size = max(1, batchSize)
        let batches = stride(from: 0, to: missing.count, by: size).map {
            Array(missing[$0..<min($0 + size, missing.count)])
        }
        let collector = EmbeddingCollector(found, batches: batches.count, completion: completion)
        guard !batches.isEmpty else { return collector.finish() }
        for slots in batches {
            var body = JSONObject()
            body.append("model", .string(model.name))
            body.append("input", .array(slots.map { .string(inputs[$0]) }))
            body.append("encoding_format", .string("float"))
            let buffer = ByteBuffer(capacity: 960)
            JSONWriter.write(body, to: buffer)
            let expected = slots.count
            post(
                "/embeddings", model: model, body: buffer, key: [], tokens: buffer.count / 4, via: executor,
                decode: { LLMClient.decodeEmbeddings($0, expected: expected) }
            ) { [self] result in
                if let cache, case .success(let outcome) = result {
                    let entries = zip(slots, outcome.value).map {
                        (
                            key: LLMClient.embeddingCacheKey(model: model, input: inputs[$0.0]),
                            body: LLMClient.storedBytes($0.1)
                        )
                    }
                    do { try cache.store(entries) } catch { onWarning?("cache write failed: \(error)") }
                }
                collector.set(slots, result.map(\.value))
            }
        }
    }

    /// The cached vector of `input` by `model`, if any.
    public func cachedEmbedding(model: ModelEndpoint, input: String) -> [Float]? {
        guard let cache, let body = try? cache.lookup(LLMClient.embeddingCacheKey(model: model, input: input)) else {
            return nil
        }
        return LLMClient.storedVector(body)
    }

    /// SHA-256 of one text's canonical embedding request (kind, model and its cache namespace,
    /// the text; not the URL). Scheme 3: scheme 2 keyed whole batches.
    static func embeddingCacheKey(model: ModelEndpoint, input: String) -> [UInt8] {
        var o = JSONObject()
        o.append("input", .string(input))
        o.append("kind", .string("embedding"))
        o.append("model", .string(model.name))
        if let ns = model.cacheNamespace { o.append("namespace", .string(ns)) }
        o.append("v", .integer(3))
        let buffer = ByteBuffer(capacity: 960)
        JSONWriter.write(o, to: buffer)
        return SHA256.hash(buffer.bytes)
    }

    /// A vector as the cache keeps it: little-endian float32s.
    static func storedBytes(_ v: [Float]) -> [UInt8] {
        #if _endian(little)
        return v.withUnsafeBytes { Array($0) }
        #else
        var bytes: [UInt8] = []
        bytes.reserveCapacity(v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes
        #endif
    }

    /// The vector a cache entry holds, or nil for one that is not a vector.
    static func storedVector(_ bytes: [UInt8]) -> [Float]? {
        guard !bytes.isEmpty, bytes.count % 4 == 0 else { return nil }
        #if _endian(little)
        return [Float](unsafeUninitializedCapacity: bytes.count / 4) { buffer, count in
            bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            count = bytes.count / 4
        }
        #else
        return bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
        #endif
    }

    /// Reads an `/embeddings` body: float arrays or base64 little-endian float32, each item
    /// placed by its `index`.
    public static func decodeEmbeddings(_ body: [UInt8], expected: Int) -> Result<[[Float]], ReplyProblem> {
        guard let root = try? JSONParser.parse(body), case .object(let o) = root else {
            return .failure("not a JSON object")
        }
        guard case .array(let items)? = o["data"] else { return .failure("no 'data' array") }
        var vectors = [[Float]?](repeating: nil, count: expected)
        for (position, item) in items.enumerated() {
            guard case .object(let e) = item else { return .failure("data[\(position)] is not an object") }
            let index = e["index"]?.doubleValue.map { Int($0) } ?? position
            guard index >= 0 && index < expected else {
                return .failure("data[\(position)] has index \(index) outside 0..<\(expected)")
            }
            switch e["embedding"] {
            case .array(let numbers)?:
                var v: [Float] = []
                v.reserveCapacity(numbers.count)
                for n in numbers {
                    guard let d = n.doubleValue else {
                        return .failure("data[\(position)].embedding holds \(n.kindDescription)")
                    }
                    v.append(Float(d))
                }
                vectors[index] = v
            case .string(let b64)?:
                guard let data = Data(base64Encoded: b64), data.count % 4 == 0 else {
                    return .failure("data[\(position)].embedding is not base64 float32")
                }
                vectors[index] = data.withUnsafeBytes { raw in
                    (0..<(data.count / 4)).map {
                        Float(
                            bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))
                        )
                    }
                }
            default:
                return .failure("data[\(position)] has no embedding")
            }
        }
        guard vectors.allSatisfy({ $0 != nil }) else {
            return .failure("\(vectors.filter { $0 == nil }.count) of \(expected) embeddings missing")
        }
        return .success(vectors.map { $0! })
    }

    // MARK: - Models

    /// `GET /models` on `baseURL`, synchronously: the model ids, or why not.
    public func listModels(baseURL: String, apiKeyVariable: String = "OPENAI_API_KEY") -> Result<
        [String], RequestFailure
    > {
        var headers = ["Accept: application/json"]
        if let k = environment[apiKeyVariable], !k.isEmpty { headers.append("Authorization: Bearer \(k)") }
        var r = HTTPRequest(url: baseURL + "/models", headers: headers, endpoint: baseURL)
        r.connectTimeout = limits.connectTimeout
        r.totalTimeout = min(limits.totalTimeout, 30)
        let response = ResultBox<HTTPResponse>.wait { done in http.send(r, completion: done) }
        let model = ModelEndpoint(name: "", baseURLs: [baseURL], apiKeyVariable: apiKeyVariable)
        return classify(response, model: model, base: baseURL) { body -> Result<[String], ReplyProblem> in
            guard let v = try? JSONParser.parse(body), case .object(let o) = v else {
                return .failure("not a JSON object")
            }
            var ids: [String] = []
            for key in ["data", "models"] {
                if case .array(let items)? = o[key] {
                    for item in items {
                        if let id = item.objectValue?["id"]?.stringValue ?? item.objectValue?["name"]?.stringValue
                            ?? item.objectValue?["model"]?.stringValue
                        {
                            ids.append(id)
                        }
                    }
                }
            }
            return .success(ids)
        }
    }
}

/// Why a reply could not be read (a malformed body, a reply that is not the JSON asked for).
public struct ReplyProblem: Error, Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public var description: String
    /// The server answered properly but cannot give what was asked (asking again will not help).
    public var permanent = false
    public init(_ description: String, permanent: Bool = false) {
        self.description = description
        self.permanent = permanent
    }
    public init(stringLiteral value: String) { description = value }
    public init(stringInterpolation: DefaultStringInterpolation) {
        description = String(stringInterpolation: stringInterpolation)
    }
}

/// Gathers the batches of one `embeddings` call (and the vectors the cache held) and answers
/// once, in input order.
final class EmbeddingCollector: @unchecked Sendable {
    private let lock = Mutex()
    private var vectors: [[Float]?]
    private var pending: Int
    private var failed = false
    private let completion: @Sendable (Result<[[Float]], RequestFailure>) -> Void

    init(
        _ vectors: [[Float]?], batches: Int, completion: @escaping @Sendable (Result<[[Float]], RequestFailure>) -> Void
    ) {
        self.vectors = vectors
        pending = batches
        self.completion = completion
    }

    /// Answers at once: every vector was in the cache.
    func finish() { completion(.success(vectors.map { $0 ?? [] })) }

    /// One batch's vectors, for the inputs at `slots`.
    func set(_ slots: [Int], _ result: Result<[[Float]], RequestFailure>) {
        let outcome: Result<[[Float]], RequestFailure>? = lock.locked {
            guard !failed else { return nil }
            switch result {
            case .failure(let f):
                failed = true
                return .failure(f)
            case .success(let v):
                for (slot, vector) in zip(slots, v) { vectors[slot] = vector }
                pending -= 1
                guard pending == 0 else { return nil }
                return .success(vectors.map { $0 ?? [] })
            }
        }
        if let outcome { completion(outcome) }
    }
}

/// A value handed from a completion callback to a waiting thread.
final class ResultBox<T>: @unchecked Sendable {
    var value: T?

    /// Calls `start` with a callback and waits until the callback has been called (at once, or
    /// on another thread): its value. The semaphore orders the write and the read.
    static func wait(_ start: (@escaping @Sendable (T) -> Void) -> Void) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        start { value in
            box.value = value
            done.signal()
        }
        done.wait()
        return box.value!
    }
}
