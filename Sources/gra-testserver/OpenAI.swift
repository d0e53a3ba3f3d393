import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the server should do with one request: wait, then send `response` (or break the
/// exchange as `fault` says).
struct Plan {
    var delayMs = 0
    var fault: Fault?
    var response: HTTPResponse
}

/// The fake OpenAI API: turns each request into a `Plan`.
///
/// Order: the API key (401 before any rule), then the script's first matching rule, then the
/// endpoint (404 for unknown paths and, with --models, unknown models), with the rule's
/// overrides. Every request is logged before it is answered. Runs on the event-loop thread.
final class Responder {
    /// Settings from the command line and environment.
    struct Config {
        /// Requests must carry `Authorization: Bearer <apiKey>` when set.
        var apiKey: String?
        /// The only models chat and embeddings accept, when set.
        var models: [String]?
        var embeddingDim = 16
    }

    let config: Config
    let script: Script
    let log: RequestLog?
    /// Requests seen so far; also the sequence number of the last one.
    private(set) var requestCount = 0
    /// The models /v1/models lists.
    let listedModels: [String]
    private let body = ByteBuffer(capacity: 1 << 14)
    private var vector: [Double] = []

    init(config: Config, script: Script, log: RequestLog?) {
        self.config = config
        self.script = script
        self.log = log
        if let m = config.models, !m.isEmpty {
            listedModels = m
        } else if !script.modelNames.isEmpty {
            listedModels = script.modelNames
        } else {
            listedModels = ["test-model"]
        }
    }

    // MARK: - Dispatch

    /// Decides the answer to a complete request, logging it first.
    func plan(for request: HTTPRequest) -> Plan {
        requestCount += 1
        let seq = requestCount
        let parsed: JSONValue? = request.body.isEmpty ? nil : try? JSONParser.parse(request.body)
        let object = parsed?.objectValue
        let model = object?["model"]?.stringValue
        let token = Responder.bearerToken(request.authorization)
        let authorized = config.apiKey == nil || token == config.apiKey
        let authFlag = token != nil && authorized

        if !authorized && request.path != "/health" {
            log?.record(
                seq: seq, connection: request.connection, method: request.method, path: request.path, model: model,
                auth: false,
                rule: nil, body: request.body, parsed: parsed)
            return Plan(
                response: Responder.error(
                    401, message: "Incorrect API key provided.", type: "invalid_request_error",
                    code: .string("invalid_api_key")))
        }

        let text = script.needsText ? Responder.matchText(object, raw: request.body) : ""
        let match = script.select(path: request.path, model: model, text: text)
        log?.record(
            seq: seq, connection: request.connection, method: request.method, path: request.path, model: model,
            auth: authFlag,
            rule: match?.index, body: request.body, parsed: parsed)
        let rule = match?.rule

        var response: HTTPResponse
        if let rule, let status = rule.status, rule.body != nil || status >= 400 {
            if let b = rule.body {
                response = HTTPResponse(
                    status: status, contentType: rule.bodyIsJSON ? "application/json" : "text/plain; charset=utf-8",
                    body: b)
            } else {
                response = Responder.scriptedError(status)
            }
        } else {
            response = route(request, parsed: parsed, model: model, seq: seq, rule: rule)
            if let status = rule?.status, response.status == 200 { response.status = status }
        }
        guard let rule else { return Plan(response: response) }
        if rule.fault == .malformed {
            response = HTTPResponse(status: rule.status ?? 200, body: Array(#"{"id": "x", "choices": ["#.utf8))
        }
        for h in rule.headers {
            switch h.name.lowercased() {
            case "content-type": response.contentType = h.value
            case "content-length", "transfer-encoding": continue  // framing stays the server's
            case "connection": if h.value.lowercased().contains("close") { response.close = true }
            default: response.headers.append(h)
            }
        }
        return Plan(delayMs: rule.delayMs, fault: rule.fault, response: response)
    }

    /// Logs a request refused before its body was read (411, 413) and returns the error response.
    func refuse(_ head: RequestHead, connection: Int, status: Int, message: String) -> HTTPResponse {
        requestCount += 1
        let token = Responder.bearerToken(head.authorization)
        let auth = token != nil && (config.apiKey == nil || token == config.apiKey)
        log?.record(
            seq: requestCount, connection: connection, method: head.method, path: head.path, model: nil, auth: auth,
            rule: nil, body: [], parsed: nil)
        var r = Responder.error(status, message: message, type: "invalid_request_error", code: .null)
        r.close = true
        return r
    }

    private func route(_ request: HTTPRequest, parsed: JSONValue?, model: String?, seq: Int, rule: Rule?)
        -> HTTPResponse
    {
        switch (request.method, request.path) {
        case ("GET", "/health"):
            return HTTPResponse(status: 200, contentType: "text/plain; charset=utf-8", body: Array("ok".utf8))
        case ("GET", "/v1/models"):
            return models()
        case ("POST", "/v1/chat/completions"):
            return chat(parsed, model: model, seq: seq, rule: rule)
        case ("POST", "/v1/embeddings"):
            return embeddings(parsed, model: model, rule: rule)
        case ("POST", "/v1/completions"):
            return completions(parsed, model: model, seq: seq, rule: rule)
        default:
            return Responder.error(
                404, message: "Unknown request URL: \(request.method) \(request.path). Please check the URL for typos.",
                type: "invalid_request_error", code: .string("unknown_url"))
        }
    }

    // MARK: - Endpoints

    private func models() -> HTTPResponse {
        let b = body
        b.removeAll()
        b.append("{\"object\":\"list\",\"data\":[")
        for (i, m) in listedModels.enumerated() {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.append("{\"id\":")
            JSONWriter.writeString(m, to: b)
            b.append(",\"object\":\"model\",\"created\":0,\"owned_by\":\"gra-testserver\"}")
        }
        b.append("]}")
        return HTTPResponse(status: 200, body: b.array)
    }

    private func chat(_ parsed: JSONValue?, model: String?, seq: Int, rule: Rule?) -> HTTPResponse {
        guard let o = parsed?.objectValue else { return Responder.badJSON(parsed) }
        if let r = checkModel(model) { return r }
        guard let messages = o["messages"]?.arrayValue else {
            return Responder.error(
                400, message: "'messages' is a required property", type: "invalid_request_error",
                param: "messages", code: .null)
        }
        var n = 1
        if let v = o["n"], v != .null {
            guard case .number(let text) = v, let k = Int(text), (1...128).contains(k) else {
                return Responder.error(
                    400, message: "'n' must be an integer from 1 to 128", type: "invalid_request_error",
                    param: "n", code: .null)
            }
            n = k
        }
        var promptTokens = 0
        var lastUser = ""
        for m in messages {
            guard let mo = m.objectValue else { continue }
            let t = Responder.text(of: mo["content"])
            promptTokens += Responder.wordCount(t)
            if mo["role"]?.stringValue == "user" { lastUser = t }
        }
        let echo = "echo: " + lastUser

        let b = startBody(id: "chatcmpl-", seq: seq, object: "chat.completion", model: model)
        b.append(",\"choices\":[")
        var completionTokens = 0
        for i in 0..<n {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.append("{\"index\":")
            b.appendInt(i)
            b.append(",\"message\":{\"role\":\"assistant\",\"content\":")
            if rule?.contentNull == true {
                b.append("null")
            } else {
                let content = rule?.reply ?? (i == 0 ? echo : echo + " #\(i)")
                JSONWriter.writeString(content, to: b)
                completionTokens += Responder.wordCount(content)
            }
            if let reasoning = rule?.reasoning {
                b.append(UInt8(ascii: ","))
                JSONWriter.writeString(rule!.reasoningField, to: b)
                b.append(UInt8(ascii: ":"))
                JSONWriter.writeString(reasoning, to: b)
                completionTokens += Responder.wordCount(reasoning)
            }
            b.append("},\"finish_reason\":")
            JSONWriter.writeString(rule?.finishReason ?? "stop", to: b)
            b.append(UInt8(ascii: "}"))
        }
        b.append("],\"usage\":{\"prompt_tokens\":")
        b.appendInt(promptTokens)
        b.append(",\"completion_tokens\":")
        b.appendInt(completionTokens)
        b.append(",\"total_tokens\":")
        b.appendInt(promptTokens + completionTokens)
        b.append("}}")
        return HTTPResponse(status: 200, body: b.array)
    }

    /// The legacy completions endpoint as vLLM answers it: one choice whose text is the rule's
    /// reply (default "."), after the prompt with `echo`; with `logprobs` (a number), the
    /// `tokens`, `token_logprobs`, `top_logprobs` and `text_offset` of the echoed prompt's tokens
    /// (the first has null) and of the reply, offsets in Unicode scalars. Tokens are runs of
    /// whitespace and of other characters; the rule's `token_logprobs` set the prompt's, else a
    /// stand-in language model does (`Responder.logprob`).
    private func completions(_ parsed: JSONValue?, model: String?, seq: Int, rule: Rule?) -> HTTPResponse {
        guard let o = parsed?.objectValue else { return Responder.badJSON(parsed) }
        if let r = checkModel(model) { return r }
        guard case .string(let prompt)? = o["prompt"] else {
            return Responder.error(
                400, message: "'prompt' must be a string", type: "invalid_request_error", param: "prompt", code: .null)
        }
        let echo = o["echo"] == .bool(true)
        var wantLogprobs = false
        if let v = o["logprobs"], v != .null {
            guard case .number(let text) = v, let k = Int(text), (0...20).contains(k) else {
                return Responder.error(
                    400, message: "'logprobs' must be an integer from 0 to 20", type: "invalid_request_error",
                    param: "logprobs", code: .null)
            }
            wantLogprobs = true
        }
        let generated = rule?.reply ?? "."
        let promptTokens = Responder.tokens(prompt)
        let b = startBody(id: "cmpl-", seq: seq, object: "text_completion", model: model)
        b.append(",\"choices\":[{\"index\":0,\"text\":")
        JSONWriter.writeString(echo ? prompt + generated : generated, to: b)
        b.append(",\"logprobs\":")
        if wantLogprobs {
            var tokens: [(text: String, offset: Int, logprob: String)] = []
            if echo {
                var seen = Set<String>()
                for (i, t) in promptTokens.enumerated() {
                    let scripted = rule?.tokenLogprobs.flatMap { i < $0.count ? $0[i] : nil }
                    let own = i == 0 ? "null" : Responder.logprob(of: t.text, after: seen)
                    tokens.append((t.text, t.offset, scripted ?? own))
                    seen.insert(t.text.lowercased())
                }
            }
            tokens.append((generated, echo ? prompt.unicodeScalars.count : 0, "-1.0"))
            b.append("{\"tokens\":[")
            for (i, t) in tokens.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(t.text, to: b)
            }
            b.append("],\"token_logprobs\":[")
            for (i, t) in tokens.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                b.append(t.logprob)
            }
            b.append("],\"top_logprobs\":[")
            for (i, t) in tokens.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                if t.logprob == "null" {
                    b.append("null")
                } else {
                    b.append(UInt8(ascii: "{"))
                    JSONWriter.writeString(t.text, to: b)
                    b.append(UInt8(ascii: ":"))
                    b.append(t.logprob)
                    b.append(UInt8(ascii: "}"))
                }
            }
            b.append("],\"text_offset\":[")
            for (i, t) in tokens.enumerated() {
                if i > 0 { b.append(UInt8(ascii: ",")) }
                b.appendInt(t.offset)
            }
            b.append("]}")
        } else {
            b.append("null")
        }
        b.append(",\"finish_reason\":")
        JSONWriter.writeString(rule?.finishReason ?? "length", to: b)
        b.append("}],\"usage\":{\"prompt_tokens\":")
        b.appendInt(promptTokens.count)
        b.append(",\"completion_tokens\":1,\"total_tokens\":")
        b.appendInt(promptTokens.count + 1)
        b.append("}}")
        return HTTPResponse(status: 200, body: b.array)
    }

    /// The reply buffer, emptied, with a completion's opening fields written: id (prefix and
    /// sequence number), object, created and model.
    private func startBody(id prefix: String, seq: Int, object: String, model: String?) -> ByteBuffer {
        let b = body
        b.removeAll()
        b.append("{\"id\":\"")
        b.append(prefix)
        b.appendInt(seq)
        b.append("\",\"object\":")
        JSONWriter.writeString(object, to: b)
        b.append(",\"created\":")
        b.appendInt(time(nil))
        b.append(",\"model\":")
        JSONWriter.writeString(model ?? listedModels[0], to: b)
        return b
    }

    /// The stand-in language model of /v1/completions: a whitespace token -0.1; a word seen
    /// before in the prompt (case aside) -0.5; any other word between -5 and -2, from its hash.
    static func logprob(of token: String, after seen: Set<String>) -> String {
        if token.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { return "-0.1" }
        if seen.contains(token.lowercased()) { return "-0.5" }
        let h = StableHash.fnv1a(token) % 300
        return "-" + String(2 + Double(h) / 100)
    }

    /// The server's stand-in tokens: maximal runs of whitespace and of other characters, with
    /// where each starts in Unicode scalars.
    static func tokens(_ text: String) -> [(text: String, offset: Int)] {
        var result: [(text: String, offset: Int)] = []
        var current = String.UnicodeScalarView()
        var start = 0
        var position = 0
        var currentIsSpace = false
        for u in text.unicodeScalars {
            let space = u.properties.isWhitespace
            if !current.isEmpty && space != currentIsSpace {
                result.append((String(current), start))
                current = String.UnicodeScalarView()
                start = position
            }
            currentIsSpace = space
            current.append(u)
            position += 1
        }
        if !current.isEmpty { result.append((String(current), start)) }
        return result
    }

    private func embeddings(_ parsed: JSONValue?, model: String?, rule: Rule?) -> HTTPResponse {
        guard let o = parsed?.objectValue else { return Responder.badJSON(parsed) }
        if let r = checkModel(model) { return r }
        var inputs: [String] = []
        switch o["input"] {
        case .string(let s)?:
            inputs = [s]
        case .array(let items)? where !items.isEmpty:
            for item in items {
                guard let s = item.stringValue else { return Responder.badInput() }
                inputs.append(s)
            }
        default:
            return Responder.badInput()
        }
        var dim = config.embeddingDim
        if let v = o["dimensions"], v != .null {
            guard case .number(let text) = v, let d = Int(text), (1...65536).contains(d) else {
                return Responder.error(
                    400, message: "'dimensions' must be an integer from 1 to 65536",
                    type: "invalid_request_error", param: "dimensions", code: .null)
            }
            dim = d
        }
        let b = body
        b.removeAll()
        b.append("{\"object\":\"list\",\"data\":[")
        var tokens = 0
        for (i, text) in inputs.enumerated() {
            if i > 0 { b.append(UInt8(ascii: ",")) }
            b.append("{\"object\":\"embedding\",\"index\":")
            b.appendInt(i)
            b.append(",\"embedding\":[")
            if let fixed = rule?.embedding {
                for (j, n) in fixed.enumerated() {
                    if j > 0 { b.append(UInt8(ascii: ",")) }
                    b.append(n)
                }
            } else {
                writeVector(of: text, dim: dim, to: b)
            }
            b.append("]}")
            tokens += Responder.wordCount(text)
        }
        b.append("],\"model\":")
        JSONWriter.writeString(model ?? listedModels[0], to: b)
        b.append(",\"usage\":{\"prompt_tokens\":")
        b.appendInt(tokens)
        b.append(",\"total_tokens\":")
        b.appendInt(tokens)
        b.append("}}")
        return HTTPResponse(status: 200, body: b.array)
    }

    /// A deterministic unit vector for `text`: component j comes from the FNV-1a hash of the
    /// text's UTF-8 mixed with j (splitmix64), mapped to [-1, 1]; then L2-normalized.
    private func writeVector(of text: String, dim: Int, to b: ByteBuffer) {
        let h = StableHash.fnv1a(text)
        if vector.count < dim { vector = Array(repeating: 0, count: dim) }
        var sum = 0.0
        for j in 0..<dim {
            let x = StableHash.mix(h &+ (UInt64(j) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            let d = Double(x >> 11) * (2.0 / 9_007_199_254_740_992.0) - 1.0
            vector[j] = d
            sum += d * d
        }
        let scale = sum > 0 ? 1.0 / sum.squareRoot() : 0
        for j in 0..<dim {
            if j > 0 { b.append(UInt8(ascii: ",")) }
            let v = sum > 0 ? vector[j] * scale : (j == 0 ? 1.0 : 0.0)
            b.append(Float(v).description)
        }
    }

    /// The vLLM-style 404 for a model not in --models, or nil when the model is fine.
    private func checkModel(_ model: String?) -> HTTPResponse? {
        guard let allowed = config.models, let model, !allowed.contains(model) else { return nil }
        return Responder.error(
            404, message: "The model `\(model)` does not exist.", type: "NotFoundError", code: .integer(404))
    }

    // MARK: - Helpers

    /// An OpenAI-style error response: `{"error":{"message":…,"type":…,"param":…,"code":…}}`.
    static func error(_ status: Int, message: String, type: String, param: String? = nil, code: JSONValue)
        -> HTTPResponse
    {
        let e: JSONObject = [
            "message": .string(message),
            "type": .string(type),
            "param": param.map(JSONValue.string) ?? .null,
            "code": code
        ]
        let b = ByteBuffer(capacity: 256)
        let top: JSONObject = ["error": .object(e)]
        JSONWriter.write(top, to: b)
        return HTTPResponse(status: status, body: b.array)
    }

    /// The body a rule's bare "status" gets: an OpenAI-style error fitting the code.
    static func scriptedError(_ status: Int) -> HTTPResponse {
        let what = "gra-testserver: scripted HTTP \(status) (\(HTTPResponse.reason(status)))"
        switch status {
        case 401:
            return error(
                401, message: "Incorrect API key provided.", type: "invalid_request_error",
                code: .string("invalid_api_key"))
        case 429:
            return error(
                429, message: "Rate limit reached. \(what)", type: "requests", code: .string("rate_limit_exceeded"))
        case 500...:
            return error(
                status, message: "The server had an error while processing your request. \(what)", type: "server_error",
                code: .null)
        default: return error(status, message: what, type: "invalid_request_error", code: .null)
        }
    }

    private static func badJSON(_ parsed: JSONValue?) -> HTTPResponse {
        let message =
            parsed == nil
            ? """
            We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP \
            library correctly. The OpenAI API expects a JSON payload.)
            """
            : "The request body must be a JSON object."
        return error(400, message: message, type: "invalid_request_error", code: .null)
    }

    private static func badInput() -> HTTPResponse {
        error(
            400, message: "'input' must be a string or a non-empty array of strings", type: "invalid_request_error",
            param: "input", code: .null)
    }

    /// The token of an `Authorization: Bearer <token>` header.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(inSet: [" ", "\t"])
        return token.isEmpty ? nil : token
    }

    /// A message's text: a string, or the "text" of each part of a list, joined with newlines.
    static func text(of content: JSONValue?) -> String {
        switch content {
        case .string(let s)?: return s
        case .array(let parts)?:
            return parts.compactMap { $0.objectValue?["text"]?.stringValue }.joined(separator: "\n")
        default: return ""
        }
    }

    /// What "contains" looks in: message contents, else embedding inputs (or a legacy prompt),
    /// joined with newlines; for other bodies the raw text.
    static func matchText(_ object: JSONObject?, raw: [UInt8]) -> String {
        if let messages = object?["messages"]?.arrayValue {
            return messages.map { text(of: $0.objectValue?["content"]) }.joined(separator: "\n")
        }
        for key in ["input", "prompt"] {
            switch object?[key] {
            case .string(let s)?: return s
            case .array(let items)?: return items.compactMap(\.stringValue).joined(separator: "\n")
            default: continue
            }
        }
        return String(decoding: raw, as: UTF8.self)
    }

    /// Whitespace-separated words: the server's stand-in for tokens.
    static func wordCount(_ s: String) -> Int {
        var n = 0
        var inWord = false
        for c in s.utf8 {
            if c == 0x20 || (c >= 0x09 && c <= 0x0D) {
                inWord = false
            } else if !inWord {
                inWord = true
                n += 1
            }
        }
        return n
    }
}

extension Substring {
    /// This text without the given leading and trailing characters.
    func trimmingCharacters(inSet set: Set<Character>) -> String {
        var s = self[...]
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
