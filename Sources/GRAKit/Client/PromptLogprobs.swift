import Foundation

/// The log-probabilities a server gave the tokens of a prompt it echoed back (`/completions`
/// with `echo: true, logprobs: 1, max_tokens: 1`): one entry per token of the prompt, with
/// where the token starts in the prompt. The token the server generated after the prompt is
/// left out.
///
/// Offsets count Unicode scalars (code points), as vLLM's `text_offset` does (Python string
/// indices), not UTF-8 bytes.
public struct PromptLogprobs: Sendable, Equatable {
    /// Log-probability of each prompt token; nil for a token the server gave none (the first).
    public var logprobs: [Double?]
    /// Where each token starts in the prompt, in Unicode scalars; non-decreasing.
    public var offsets: [Int]
    /// The prompt's length in Unicode scalars.
    public var promptLength: Int

    public init(logprobs: [Double?], offsets: [Int], promptLength: Int) {
        self.logprobs = logprobs
        self.offsets = offsets
        self.promptLength = promptLength
    }

    /// The tokens that hold any of the prompt from Unicode scalar `start` on (a token that
    /// straddles `start` counts as after it) and have a log-probability: their number and the sum
    /// of their log-probabilities.
    public func tokens(from start: Int) -> (count: Int, sum: Double) {
        var count = 0
        var sum = 0.0
        for i in offsets.indices {
            let end = i + 1 < offsets.count ? offsets[i + 1] : promptLength
            guard end > start, let lp = logprobs[i] else { continue }
            count += 1
            sum += lp
        }
        return (count, sum)
    }

    /// Reads a `/completions` reply to an echoed prompt. A body that is not a completion is a
    /// (retryable) malformed reply; a completion without the prompt's log-probabilities is a
    /// permanent problem saying what the server sent instead.
    public static func decode(_ body: [UInt8], prompt: String) -> Result<PromptLogprobs, ReplyProblem> {
        guard let root = try? JSONParser.parse(body), case .object(let o) = root else {
            return .failure("not a JSON object")
        }
        guard case .array(let choices)? = o["choices"], case .object(let choice)? = choices.first else {
            return .failure("no 'choices'")
        }
        guard case .object(let lp)? = choice["logprobs"] else {
            return .failure(ReplyProblem("the reply has no log-probabilities", permanent: true))
        }
        guard case .array(let values)? = lp["token_logprobs"], case .array(let starts)? = lp["text_offset"] else {
            let what =
                lp["content"] != nil
                ? "the reply holds the generated token's log-probabilities only ('content'), none of the prompt's"
                : "the reply's log-probabilities have no token_logprobs and text_offset"
            return .failure(ReplyProblem(what, permanent: true))
        }
        guard values.count == starts.count else {
            return .failure("token_logprobs has \(values.count) entries, text_offset \(starts.count)")
        }
        // An echo starts with the prompt; a server that ignored `echo` sent the generated text.
        guard case .string(let text)? = choice["text"], text.hasPrefix(prompt) else {
            return .failure(
                ReplyProblem("the reply does not echo the prompt: the server ignored echo: true", permanent: true))
        }
        let length = prompt.unicodeScalars.count
        var logprobs: [Double?] = []
        var offsets: [Int] = []
        for (i, (value, start)) in zip(values, starts).enumerated() {
            guard let offset = start.doubleValue.flatMap({ Int(exactly: $0) }) else {
                return .failure("text_offset[\(i)] is \(start.kindDescription), not an integer")
            }
            if offset < 0 {
                return .failure(
                    ReplyProblem(
                        "text_offset[\(i)] is \(offset): without offsets the response's tokens are not known",
                        permanent: true))
            }
            if let last = offsets.last, offset < last {
                return .failure("text_offset[\(i)] = \(offset) goes back (before \(last))")
            }
            // The token generated after the prompt.
            if offset >= length && i > 0 { break }
            switch value {
            case .null: logprobs.append(nil)
            case .number:
                guard let d = value.doubleValue, d.isFinite, d <= 0 else {
                    return .failure("token_logprobs[\(i)] is \(JSONWriter.string(value)), not a log-probability")
                }
                logprobs.append(d)
            default:
                return .failure("token_logprobs[\(i)] is \(value.kindDescription), not a number")
            }
            offsets.append(offset)
        }
        guard !offsets.isEmpty else { return .failure("no prompt tokens in the reply") }
        return .success(PromptLogprobs(logprobs: logprobs, offsets: offsets, promptLength: length))
    }
}

extension LLMClient {
    /// The body sent to `/completions` to have `prompt` scored, not continued.
    static func promptLogprobsBody(model: ModelEndpoint, prompt: String) -> ByteBuffer {
        var body = JSONObject()
        body.append("model", .string(model.name))
        body.append("prompt", .string(prompt))
        body.append("echo", .bool(true))
        body.append("logprobs", .integer(1))
        body.append("max_tokens", .integer(1))
        body.append("temperature", .integer(0))
        let buffer = ByteBuffer(capacity: 960)
        JSONWriter.write(body, to: buffer)
        return buffer
    }

    /// SHA-256 of the canonical prompt-scoring request (kind, model and its cache namespace,
    /// prompt; not the URL).
    public static func promptLogprobsCacheKey(model: ModelEndpoint, prompt: String) -> [UInt8] {
        var o = JSONObject()
        o.append("kind", .string("prompt_logprobs"))
        o.append("model", .string(model.name))
        if let ns = model.cacheNamespace { o.append("namespace", .string(ns)) }
        o.append("prompt", .string(prompt))
        o.append("v", .integer(2))
        let buffer = ByteBuffer(capacity: 960)
        JSONWriter.write(o, to: buffer)
        return SHA256.hash(buffer.bytes)
    }

    /// The prompt's log-probabilities from the cache, when it holds a reply that decodes.
    public func cachedPromptLogprobs(model: ModelEndpoint, prompt: String) -> PromptLogprobs? {
        guard let cache, let body = try? cache.lookup(LLMClient.promptLogprobsCacheKey(model: model, prompt: prompt))
        else { return nil }
        return try? PromptLogprobs.decode(body, prompt: prompt).get()
    }

    /// Has `model` score `prompt` (POST `/completions`, echoed, one token generated), from the
    /// cache when it can; `completion` runs through `executor` (nil: the event-loop thread, or
    /// at once for a cache hit) with the log-probabilities and whether they came from the cache.
    public func promptLogprobs(
        model: ModelEndpoint, prompt: String, via executor: HTTPClient.Executor? = nil,
        completion: @escaping @Sendable (Result<(value: PromptLogprobs, fromCache: Bool), RequestFailure>) -> Void
    ) {
        if let value = cachedPromptLogprobs(model: model, prompt: prompt) {
            count(model.name) { $0.cacheHits += 1 }
            return completion(.success((value, true)))
        }
        let key = cache == nil ? [] : LLMClient.promptLogprobsCacheKey(model: model, prompt: prompt)
        let buffer = LLMClient.promptLogprobsBody(model: model, prompt: prompt)
        post(
            "/completions", model: model, body: buffer, key: key, tokens: buffer.count / 4, via: executor,
            decode: { PromptLogprobs.decode($0, prompt: prompt) }
        ) { [self] result in
            if case .success(let outcome) = result {
                count(model.name) { $0.promptTokens += outcome.value.offsets.count }
            }
            completion(result.map { ($0.value, false) })
        }
    }
}
