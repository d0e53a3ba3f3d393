import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a rule breaks an exchange instead of answering it properly.
enum Fault: String, CaseIterable, Sendable {
    /// Close with an RST right after reading the request; no response at all.
    case reset
    /// Send the head (full Content-Length) and half the body, then an RST.
    case resetMidBody = "reset_mid_body"
    /// Send the head (full Content-Length) and half the body, then close normally.
    case truncate
    /// A 200 application/json response whose body is not JSON.
    case malformed
    /// Never answer; keep the connection open until the client or the server gives up.
    case hang
}

/// One scripted rule: which requests it matches, how many times, and what it does to them.
struct Rule: Sendable {
    // Match keys; nil matches anything.
    var path: String?
    var model: String?
    /// Texts that must all appear in the request's messages (or inputs).
    var contains: [String]?
    /// Applies to the first `times` matching requests only; nil is unlimited.
    var times: Int?
    /// Acts on every N-th request that matches otherwise (the 1st, the N+1-th, …), by arrival:
    /// faults spread evenly over a run.
    var every: Int?

    // Actions.
    var delayMs = 0
    /// The assistant content ("reply", or "reply_json" serialized compactly).
    var reply: String?
    var reasoning: String?
    var reasoningField = "reasoning_content"
    var contentNull = false
    var finishReason: String?
    /// For embeddings: the vector every input gets, as the numbers were written.
    var embedding: [String]?
    /// For /v1/completions with logprobs: the log-probabilities of the prompt's tokens in order
    /// ("null" for none), as written; tokens past the list get the server's own.
    var tokenLogprobs: [String]?
    var status: Int?
    /// A body to send verbatim with `status`, and whether it is JSON.
    var body: [UInt8]?
    var bodyIsJSON = false
    var headers: [(name: String, value: String)] = []
    var fault: Fault?
}

/// A --script file that cannot be used, with the reason.
struct ScriptError: Error, CustomStringConvertible {
    var description: String
    /// The file could not be read at all (rather than read and found wrong).
    var unreadable = false
}

/// The --script rules, tried in order for each request; the first that matches acts.
///
/// Each rule's use count is kept under a lock, so "times" holds however requests arrive.
final class Script: @unchecked Sendable {
    let rules: [Rule]
    /// Some rule has a "contains" key, so requests' texts must be extracted.
    let needsText: Bool
    private var used: [Int]
    /// Per rule with "every": requests that matched it otherwise so far.
    private var seen: [Int]
    private let lock = Mutex()

    static let matchKeys: Set<String> = ["path", "model", "contains", "times", "every"]
    static let actionKeys: Set<String> = [
        "delay_ms", "reply", "reply_json", "reasoning", "reasoning_field", "content_null", "finish_reason",
        "embedding", "token_logprobs", "status", "body", "headers", "fault"
    ]

    init(rules: [Rule]) {
        self.rules = rules
        used = Array(repeating: 0, count: rules.count)
        seen = Array(repeating: 0, count: rules.count)
        needsText = rules.contains { $0.contains != nil }
    }

    /// No rules: every request gets the default behaviour.
    static let empty = Script(rules: [])

    /// Reads and checks a script file.
    static func load(path: String) throws(ScriptError) -> Script {
        let bytes: [UInt8]
        guard let read = readFileBytes(path) else {
            throw ScriptError(description: "\(path): \(String(cString: strerror(errno)))", unreadable: true)
        }
        bytes = read
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw ScriptError(description: "\(path): invalid JSON: \(error.description)")
        }
        do { return try Script(json: value) } catch { throw ScriptError(description: "\(path): \(error.description)") }
    }

    /// Builds the rules from a script's JSON: `{"rules":[...]}`. Keys starting with "_" are comments.
    convenience init(json: JSONValue) throws(ScriptError) {
        guard let top = json.objectValue else {
            throw ScriptError(description: "expected a JSON object {\"rules\":[...]}, found \(json.kindDescription)")
        }
        for key in top.keys where key != "rules" && !key.hasPrefix("_") {
            throw ScriptError(description: "unknown top-level key '\(key)' (expected \"rules\")")
        }
        guard let list = top["rules"]?.arrayValue else {
            throw ScriptError(description: "\"rules\" must be an array of rule objects")
        }
        var rules: [Rule] = []
        for (i, item) in list.enumerated() {
            do { rules.append(try Script.rule(item)) } catch {
                throw ScriptError(description: "rule \(i): \(error.description)")
            }
        }
        self.init(rules: rules)
    }

    /// The first rule that matches and still has uses left, counting the use.
    func select(path: String, model: String?, text: String) -> (index: Int, rule: Rule)? {
        lock.locked {
            for (i, rule) in rules.enumerated() {
                if let p = rule.path, p != path { continue }
                if let m = rule.model, m != model { continue }
                if let c = rule.contains, !c.allSatisfy({ $0.isEmpty || text.contains($0) }) { continue }
                if let t = rule.times, used[i] >= t { continue }
                if let n = rule.every {
                    seen[i] += 1
                    if (seen[i] - 1) % n != 0 { continue }
                }
                used[i] += 1
                return (i, rule)
            }
            return nil
        }
    }

    /// The models the rules name, first appearance first.
    var modelNames: [String] {
        var seen = Set<String>()
        return rules.compactMap(\.model).filter { seen.insert($0).inserted }
    }

    // MARK: - Parsing one rule

    private static func rule(_ value: JSONValue) throws(ScriptError) -> Rule {
        guard let o = value.objectValue else {
            throw ScriptError(description: "expected an object, found \(value.kindDescription)")
        }
        for key in o.keys where !matchKeys.contains(key) && !actionKeys.contains(key) && !key.hasPrefix("_") {
            let known = (matchKeys.sorted() + actionKeys.sorted()).joined(separator: ", ")
            throw ScriptError(description: "unknown key '\(key)' (known: \(known))")
        }
        var r = Rule()
        r.path = try string(o, "path")
        r.model = try string(o, "model")
        switch o["contains"] {
        case .array(let items)?:
            guard items.allSatisfy({ $0.stringValue != nil }) else {
                throw ScriptError(description: "\"contains\" must be a string or an array of strings")
            }
            r.contains = items.compactMap(\.stringValue)
        case .some:
            r.contains = try string(o, "contains").map { [$0] }
        case nil:
            break
        }
        r.times = try integer(o, "times", 0...Int(Int32.max))
        r.every = try integer(o, "every", 1...Int(Int32.max))
        r.delayMs = try integer(o, "delay_ms", 0...3_600_000) ?? 0
        r.reply = try string(o, "reply")
        if let json = o["reply_json"] {
            if r.reply != nil { throw ScriptError(description: "give \"reply\" or \"reply_json\", not both") }
            r.reply = JSONWriter.string(json)
        }
        r.reasoning = try string(o, "reasoning")
        if let field = try string(o, "reasoning_field") {
            guard field == "reasoning_content" || field == "reasoning" else {
                throw ScriptError(description: "\"reasoning_field\" must be \"reasoning_content\" or \"reasoning\"")
            }
            r.reasoningField = field
        }
        if let v = o["content_null"] {
            guard case .bool(let b) = v else {
                throw ScriptError(description: "\"content_null\" must be true or false")
            }
            r.contentNull = b
        }
        r.finishReason = try string(o, "finish_reason")
        if let v = o["embedding"] {
            guard let items = v.arrayValue, !items.isEmpty else {
                throw ScriptError(description: "\"embedding\" must be a non-empty array of numbers")
            }
            var numbers: [String] = []
            for item in items {
                guard case .number(let n) = item else {
                    throw ScriptError(description: "\"embedding\" must be a non-empty array of numbers")
                }
                numbers.append(n)
            }
            r.embedding = numbers
        }
        if let v = o["token_logprobs"] {
            let problem = ScriptError(description: "\"token_logprobs\" must be an array of numbers <= 0 and nulls")
            guard let items = v.arrayValue else { throw problem }
            var numbers: [String] = []
            for item in items {
                switch item {
                case .null: numbers.append("null")
                case .number(let n) where (item.doubleValue ?? 1) <= 0: numbers.append(n)
                default: throw problem
                }
            }
            r.tokenLogprobs = numbers
        }
        r.status = try integer(o, "status", 200...599)
        if let body = o["body"] {
            guard r.status != nil else { throw ScriptError(description: "\"body\" needs a \"status\"") }
            if case .string(let s) = body {
                r.body = Array(s.utf8)
                r.bodyIsJSON = (try? JSONParser.parse(s)) != nil
            } else {
                r.body = Array(JSONWriter.string(body).utf8)
                r.bodyIsJSON = true
            }
        }
        if let h = o["headers"] {
            guard let fields = h.objectValue?.fields else {
                throw ScriptError(description: "\"headers\" must be an object of header names to values")
            }
            for f in fields {
                guard !f.key.isEmpty, f.key.utf8.allSatisfy(HTTPParser.isTokenChar) else {
                    throw ScriptError(description: "bad header name '\(f.key)'")
                }
                let value: String
                switch f.value {
                case .string(let s): value = s
                case .number(let n): value = n
                default: throw ScriptError(description: "header '\(f.key)' must be a string or a number")
                }
                guard !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                    throw ScriptError(description: "header '\(f.key)' has a line break in its value")
                }
                r.headers.append((f.key, value))
            }
        }
        if let f = try string(o, "fault") {
            guard let fault = Fault(rawValue: f) else {
                let known = Fault.allCases.map(\.rawValue).joined(separator: ", ")
                throw ScriptError(description: "unknown fault '\(f)' (known: \(known))")
            }
            r.fault = fault
        }
        return r
    }

    private static func string(_ o: JSONObject, _ key: String) throws(ScriptError) -> String? {
        guard let v = o[key] else { return nil }
        guard let s = v.stringValue else {
            throw ScriptError(description: "\"\(key)\" must be a string, found \(v.kindDescription)")
        }
        return s
    }

    private static func integer(_ o: JSONObject, _ key: String, _ range: ClosedRange<Int>) throws(ScriptError) -> Int? {
        guard let v = o[key] else { return nil }
        guard case .number(let text) = v, let n = Int(text), range.contains(n) else {
            throw ScriptError(description: "\"\(key)\" must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }
}
