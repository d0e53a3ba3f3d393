/// The record shapes gra reads and writes.
public enum RecordFormat: String, CaseIterable, Sendable {
    /// gra's own record: `instruction`, `input`, `response` (+ `id`, `domain`, `keywords`, `summary`, `gra`).
    case gra
    /// Alpaca / LLaMA-Factory "alpaca": `instruction`, `input`, `output` (+ `system`, `history`).
    case alpaca
    /// ShareGPT / LLaMA-Factory "sharegpt": `conversations` of `{from, value}` (human, gpt, system).
    case sharegpt
    /// OpenAI chat: `messages` of `{role, content}` (system, user, assistant).
    case openai

    /// Accepts the canonical names and `messages` as another name for `openai`.
    public init?(name: String) {
        if name == "messages" { self = .openai; return }
        self.init(rawValue: name)
    }

    /// Guesses the format of one record from its fields; nil when no format fits.
    public static func detect(_ record: JSONObject) -> RecordFormat? {
        var instruction = false, response = false, output = false, conversations = false
        for f in record.fields {
            switch f.key {
            case "messages": return .openai
            case "conversations": conversations = true
            case "instruction": instruction = true
            case "response": response = true
            case "output": output = true
            default: break
            }
        }
        if conversations { return .sharegpt }
        if instruction {
            if response { return .gra }
            if output { return .alpaca }
        }
        return nil
    }
}

/// One single- or multi-turn training sample, in a form every `RecordFormat` can express.
///
/// `history` holds earlier (user, assistant) turns, as LLaMA-Factory's Alpaca `history` does.
public struct Sample: Equatable, Sendable {
    public struct Turn: Equatable, Sendable {
        public var user: String
        public var assistant: String
        public init(user: String, assistant: String) {
            self.user = user
            self.assistant = assistant
        }
    }

    public var system: String?
    public var history: [Turn]
    public var instruction: String
    public var input: String
    public var response: String

    public init(system: String? = nil, history: [Turn] = [], instruction: String, input: String = "", response: String) {
        self.system = system
        self.history = history
        self.instruction = instruction
        self.input = input
        self.response = response
    }

    /// The user's message: the instruction, then the input on the next line when there is one
    /// (the join LLaMA-Factory uses for Alpaca data).
    public var userMessage: String {
        input.isEmpty ? instruction : instruction + "\n" + input
    }

    /// Applies `TextNormalizer` to every text; reports a truncated-looking response.
    public mutating func unifyText() -> (unclosedFenceInResponse: Bool, changed: Bool) {
        var changed = false
        func fix(_ s: inout String) {
            let r = TextNormalizer.unify(s)
            if r.text != s {
                s = r.text
                changed = true
            }
        }
        if var sys = system {
            fix(&sys)
            system = sys.isEmpty ? nil : sys
        }
        for i in history.indices {
            fix(&history[i].user)
            fix(&history[i].assistant)
        }
        fix(&instruction)
        fix(&input)
        let r = TextNormalizer.unify(response)
        if r.text != response {
            response = r.text
            changed = true
        }
        return (r.hasUnclosedFence, changed)
    }
}

/// Why a record could not become a sample: a reason for the rejects file.
public struct FormatRejection: Error, Equatable, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// Converts records between `RecordFormat`s through `Sample`.
///
/// Fields a format does not use ("extras": `id`, `domain`, user fields, `gra`) are carried
/// over unchanged and in order.
public enum FormatConverter {
    // MARK: Decoding

    /// Splits `record` (in `format`) into its sample and the fields the format does not own.
    public static func decode(_ record: JSONObject, as format: RecordFormat) throws(FormatRejection) -> (Sample, JSONObject) {
        switch format {
        case .gra: return try decodeInstructionStyle(record, responseKey: "response", fallbackKey: "output")
        case .alpaca: return try decodeInstructionStyle(record, responseKey: "output", fallbackKey: "response")
        case .sharegpt: return try decodeShareGPT(record)
        case .openai: return try decodeOpenAI(record)
        }
    }

    private static func requiredString(_ record: JSONObject, _ key: String) throws(FormatRejection) -> String {
        guard let v = record[key] else { throw FormatRejection("missing field '\(key)'") }
        guard case .string(let s) = v else { throw FormatRejection("field '\(key)' must be a string, not \(v.kindDescription)") }
        return s
    }

    private static func optionalString(_ record: JSONObject, _ key: String) throws(FormatRejection) -> String? {
        guard let v = record[key], v != .null else { return nil }
        guard case .string(let s) = v else { throw FormatRejection("field '\(key)' must be a string, not \(v.kindDescription)") }
        return s
    }

    private static func decodeInstructionStyle(
        _ record: JSONObject, responseKey: String, fallbackKey: String
    ) throws(FormatRejection) -> (Sample, JSONObject) {
        // One pass: pick out the owned fields (the last of duplicates wins, as in lookups),
        // keep the rest in order.
        var instruction: JSONValue?, response: JSONValue?, fallback: JSONValue?
        var input: JSONValue?, system: JSONValue?, historyValue: JSONValue?
        var fallbackIndex = -1
        var extras = JSONObject()
        extras.fields.reserveCapacity(record.count)
        for f in record.fields {
            switch f.key {
            case "instruction": instruction = f.value
            case "input": input = f.value
            case "system": system = f.value
            case "history": historyValue = f.value
            case responseKey: response = f.value
            case fallbackKey:
                fallback = f.value
                if fallbackIndex < 0 { fallbackIndex = extras.count }
                extras.fields.append(f)   // removed below if it is used as the response
            default: extras.fields.append(f)
            }
        }
        if response == nil, let fb = fallback {
            response = fb
            extras.fields.removeAll { $0.key == fallbackKey }
        }
        func string(_ v: JSONValue?, _ key: String, required: Bool) throws(FormatRejection) -> String? {
            switch v {
            case .string(let s)?: return s
            case nil: if required { throw FormatRejection("missing field '\(key)'") } else { return nil }
            case .null?: if required { throw FormatRejection("field '\(key)' must be a string, not null") } else { return nil }
            case let other?: throw FormatRejection("field '\(key)' must be a string, not \(other.kindDescription)")
            }
        }
        let instructionText = try string(instruction, "instruction", required: true)!
        let responseText = try string(response, response == fallback && fallback != nil ? fallbackKey : responseKey, required: true)!
        let inputText = try string(input, "input", required: false) ?? ""
        let systemText = try string(system, "system", required: false)
        var history: [Sample.Turn] = []
        if let h = historyValue, h != .null {
            guard case .array(let turns) = h else { throw FormatRejection("field 'history' must be an array of [user, assistant] pairs") }
            for (i, t) in turns.enumerated() {
                guard case .array(let pair) = t, pair.count == 2,
                      case .string(let u) = pair[0], case .string(let a) = pair[1] else {
                    throw FormatRejection("history[\(i)] must be a [user, assistant] pair of strings")
                }
                history.append(Sample.Turn(user: u, assistant: a))
            }
        }
        return (Sample(system: systemText, history: history, instruction: instructionText, input: inputText, response: responseText), extras)
    }

    /// Builds a sample from (role, text) messages: an optional system message first, then
    /// strictly alternating user/assistant turns ending with the assistant.
    private static func sample(fromMessages messages: [(role: String, text: String)], field: String) throws(FormatRejection) -> Sample {
        var msgs = messages[...]
        var system: String?
        if let first = msgs.first, first.role == "system" {
            system = first.text
            msgs = msgs.dropFirst()
        }
        guard !msgs.isEmpty else { throw FormatRejection("'\(field)' has no user/assistant turns") }
        guard msgs.count % 2 == 0 else {
            throw FormatRejection("'\(field)' does not end with an assistant reply")
        }
        var turns: [Sample.Turn] = []
        var i = msgs.startIndex
        while i < msgs.endIndex {
            let u = msgs[i], a = msgs[i + 1]
            guard u.role == "user" else { throw FormatRejection("'\(field)'[\(i)] should be a user turn, found '\(u.role)'") }
            guard a.role == "assistant" else { throw FormatRejection("'\(field)'[\(i + 1)] should be an assistant turn, found '\(a.role)'") }
            turns.append(Sample.Turn(user: u.text, assistant: a.text))
            i += 2
        }
        let last = turns.removeLast()
        return Sample(system: system, history: turns, instruction: last.user, input: "", response: last.assistant)
    }

    private static func decodeShareGPT(_ record: JSONObject) throws(FormatRejection) -> (Sample, JSONObject) {
        guard case .array(let items)? = record["conversations"] else {
            throw FormatRejection("field 'conversations' must be an array")
        }
        var messages: [(role: String, text: String)] = []
        for (i, item) in items.enumerated() {
            guard case .object(let m) = item else { throw FormatRejection("conversations[\(i)] must be an object") }
            guard case .string(let from)? = m["from"] else { throw FormatRejection("conversations[\(i)] has no string 'from'") }
            guard case .string(let value)? = m["value"] else { throw FormatRejection("conversations[\(i)] has no string 'value'") }
            let role: String
            switch from {
            case "human", "user": role = "user"
            case "gpt", "assistant", "chatgpt", "bard", "bing": role = "assistant"
            case "system": role = "system"
            default: throw FormatRejection("conversations[\(i)] has unsupported role '\(from)'")
            }
            messages.append((role, value))
        }
        var s = try sample(fromMessages: messages, field: "conversations")
        if let sys = try optionalString(record, "system") {
            if s.system != nil { throw FormatRejection("both a 'system' field and a system turn") }
            s.system = sys
        }
        var extras = record
        extras.removeValue(forKey: "conversations")
        extras.removeValue(forKey: "system")
        return (s, extras)
    }

    private static func decodeOpenAI(_ record: JSONObject) throws(FormatRejection) -> (Sample, JSONObject) {
        guard case .array(let items)? = record["messages"] else { throw FormatRejection("field 'messages' must be an array") }
        var messages: [(role: String, text: String)] = []
        for (i, item) in items.enumerated() {
            guard case .object(let m) = item else { throw FormatRejection("messages[\(i)] must be an object") }
            guard case .string(let role)? = m["role"] else { throw FormatRejection("messages[\(i)] has no string 'role'") }
            guard role == "system" || role == "user" || role == "assistant" || role == "developer" else {
                throw FormatRejection("messages[\(i)] has unsupported role '\(role)'")
            }
            let text: String
            switch m["content"] {
            case .string(let s)?: text = s
            case .array(let parts)?:
                var pieces: [String] = []
                for (k, part) in parts.enumerated() {
                    guard case .object(let p) = part, case .string(let type)? = p["type"] else {
                        throw FormatRejection("messages[\(i)].content[\(k)] is not a content part")
                    }
                    // OpenAI's parts hold "text"; LLaMA-Factory's newer ones "value".
                    guard type == "text", case .string(let t)? = p["text"] ?? p["value"] else {
                        throw FormatRejection("messages[\(i)].content[\(k)] is a '\(type)' part; only text converts")
                    }
                    pieces.append(t)
                }
                text = pieces.joined()
            case nil, .null?: throw FormatRejection("messages[\(i)] has no content")
            case let other?: throw FormatRejection("messages[\(i)].content must be a string or parts, not \(other.kindDescription)")
            }
            messages.append((role == "developer" ? "system" : role, text))
        }
        let s = try sample(fromMessages: messages, field: "messages")
        var extras = record
        extras.removeValue(forKey: "messages")
        return (s, extras)
    }

    // MARK: Encoding

    /// A converted record, and what became of extra fields whose key the target format
    /// writes itself (an Alpaca `output` beside a gra `response`, say): a record never holds
    /// a key twice.
    public struct Encoded: Sendable {
        public var record: JSONObject
        /// Clashing fields whose value differed from the one written: kept under
        /// `gra.format.displaced` (their key → value), or dropped with `stripMeta`.
        public var displaced: [String] = []
        /// Clashing fields dropped: the same value as the one written (nothing lost), or any
        /// value with `stripMeta`.
        public var dropped: [String] = []
    }

    /// Builds the record for `sample` in `format`, with `extras` carried over.
    /// `stripMeta` drops the `gra` metadata object. The fields the format writes itself win
    /// over extras of the same name (see `Encoded`).
    public static func encode(_ sample: Sample, extras: JSONObject, as format: RecordFormat, stripMeta: Bool) -> Encoded {
        var out = JSONObject()
        out.fields.reserveCapacity(extras.count + 6)
        // One pass: the fields gra places itself (for the gra format) and `gra`; the rest in order.
        var meta: JSONValue?, id: JSONValue?, domain: JSONValue?, keywords: JSONValue?, summary: JSONValue?
        var rest = JSONObject()
        rest.fields.reserveCapacity(extras.count)
        let placeCanonical = format == .gra
        for f in extras.fields {
            switch f.key {
            case "gra": meta = f.value
            case "id" where placeCanonical: id = f.value
            case "domain" where placeCanonical: domain = f.value
            case "keywords" where placeCanonical: keywords = f.value
            case "summary" where placeCanonical: summary = f.value
            default: rest.fields.append(f)
            }
        }
        if stripMeta { meta = nil }
        switch format {
        case .gra, .alpaca:
            if let id { out.append("id", id) }
            if let domain { out.append("domain", domain) }
            out.append("instruction", .string(sample.instruction))
            out.append("input", .string(sample.input))
            out.append(format == .gra ? "response" : "output", .string(sample.response))
            if let sys = sample.system { out.append("system", .string(sys)) }
            if !sample.history.isEmpty {
                out.append("history", .array(sample.history.map { .array([.string($0.user), .string($0.assistant)]) }))
            }
            if let keywords { out.append("keywords", keywords) }
            if let summary { out.append("summary", summary) }
        case .sharegpt:
            var turns: [JSONValue] = []
            if let sys = sample.system { turns.append(.object(["from": .string("system"), "value": .string(sys)])) }
            for t in sample.history {
                turns.append(.object(["from": .string("human"), "value": .string(t.user)]))
                turns.append(.object(["from": .string("gpt"), "value": .string(t.assistant)]))
            }
            turns.append(.object(["from": .string("human"), "value": .string(sample.userMessage)]))
            turns.append(.object(["from": .string("gpt"), "value": .string(sample.response)]))
            out.append("conversations", .array(turns))
        case .openai:
            var msgs: [JSONValue] = []
            if let sys = sample.system { msgs.append(.object(["role": .string("system"), "content": .string(sys)])) }
            for t in sample.history {
                msgs.append(.object(["role": .string("user"), "content": .string(t.user)]))
                msgs.append(.object(["role": .string("assistant"), "content": .string(t.assistant)]))
            }
            msgs.append(.object(["role": .string("user"), "content": .string(sample.userMessage)]))
            msgs.append(.object(["role": .string("assistant"), "content": .string(sample.response)]))
            out.append("messages", .array(msgs))
        }
        var displaced = JSONObject()
        var result = Encoded(record: JSONObject())
        for f in rest.fields {
            // (Against every field so far, so that extras holding a key twice clash too.)
            if let mine = out.fields.first(where: { $0.key == f.key }) {
                if mine.value == f.value || stripMeta {
                    result.dropped.append(f.key)
                } else {
                    displaced[f.key] = f.value
                    result.displaced.append(f.key)
                }
            } else {
                out.fields.append(f)
            }
        }
        if !displaced.isEmpty {
            if case .object(var m)? = meta {
                var formatMeta = m["format"]?.objectValue ?? JSONObject()
                formatMeta["displaced"] = .object(displaced)
                m["format"] = .object(formatMeta)
                meta = .object(m)
            } else if meta == nil {
                meta = .object(["format": .object(["displaced": .object(displaced)])])
            } else {
                // A `gra` field that is not an object has no place for them.
                result.dropped += result.displaced
                result.displaced = []
            }
        }
        if let meta { out.append("gra", meta) }
        result.record = out
        return result
    }
}
