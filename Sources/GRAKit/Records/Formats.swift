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

    /// Why `sample` cannot be written in this format without losing part of it; nil when it can.
    public func cannotHold(_ sample: Sample) -> String? {
        // Only tool calls can fail to fit; most samples have none (checked per record, twice).
        guard sample.hasToolCalls else { return nil }
        switch self {
        case .alpaca:
            return "tool calls have no place in alpaca (use --to sharegpt, openai or gra)"
        case .sharegpt:
            let steps = sample.steps + sample.history.flatMap(\.steps)
            if let step = steps.first(where: { $0.results.count != 1 }) {
                return "a tool step with \(step.results.count) results does not fit sharegpt's one observation turn"
            }
            return nil
        default:
            return nil
        }
    }

    /// Accepts the canonical names and `messages` as another name for `openai`.
    public init?(name: String) {
        if name == "messages" {
            self = .openai
            return
        }
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

/// A call the assistant makes to a tool: the function's name and its arguments (a JSON
/// value, usually an object); `id` as OpenAI's `tool_calls` name it, when the data had one.
public struct ToolCall: Equatable, Sendable {
    public var name: String
    public var arguments: JSONValue
    public var id: String?
    public init(name: String, arguments: JSONValue, id: String? = nil) {
        self.name = name
        self.arguments = arguments
        self.id = id
    }
}

/// One round of tool use inside an assistant turn: the calls the assistant makes at once
/// (ShareGPT's `function_call` turn, an OpenAI assistant message with `tool_calls`), then
/// what the tools returned (ShareGPT's `observation`, OpenAI's `tool` messages).
public struct ToolStep: Equatable, Sendable {
    public var calls: [ToolCall]
    public var results: [String]
    public init(calls: [ToolCall], results: [String]) {
        self.calls = calls
        self.results = results
    }
}

/// One single- or multi-turn training sample, in a form every `RecordFormat` can express
/// (Alpaca excepted for tool calls, which it has no place for).
///
/// `history` holds earlier turns, as LLaMA-Factory's Alpaca `history` does. A turn's tool use
/// comes between the user's message and the assistant's reply (`steps`; for the last turn,
/// `Sample.steps`); `tools` are the function definitions offered to the model.
public struct Sample: Equatable, Sendable {
    public struct Turn: Equatable, Sendable {
        public var user: String
        public var steps: [ToolStep]
        public var assistant: String
        public init(user: String, steps: [ToolStep] = [], assistant: String) {
            self.user = user
            self.steps = steps
            self.assistant = assistant
        }
    }

    public var system: String?
    /// Function definitions (`{name, description, parameters}` objects), when the sample has tools.
    public var tools: [JSONValue]?
    public var history: [Turn]
    public var instruction: String
    public var input: String
    /// Tool use in the last turn, before `response`.
    public var steps: [ToolStep]
    public var response: String

    public init(
        system: String? = nil, tools: [JSONValue]? = nil, history: [Turn] = [], instruction: String, input: String = "",
        steps: [ToolStep] = [], response: String
    ) {
        self.system = system
        self.tools = tools
        self.history = history
        self.instruction = instruction
        self.input = input
        self.steps = steps
        self.response = response
    }

    /// True when some turn calls a tool.
    public var hasToolCalls: Bool { !steps.isEmpty || history.contains { !$0.steps.isEmpty } }

    /// The user's message: the instruction, then the input on the next line when there is one
    /// (the join LLaMA-Factory uses for Alpaca data).
    public var userMessage: String {
        input.isEmpty ? instruction : instruction + "\n" + input
    }

    /// Every turn in order, the history first and then the last one (the user message, its
    /// tool steps and `response`), with its 0-based number: the walk the chat formats write.
    func forEachTurn(_ body: (_ number: Int, _ user: String, _ steps: [ToolStep], _ assistant: String) -> Void) {
        for (n, t) in history.enumerated() { body(n, t.user, t.steps, t.assistant) }
        body(history.count, userMessage, steps, response)
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
    public static func decode(_ record: JSONObject, as format: RecordFormat) throws(FormatRejection) -> (
        Sample, JSONObject
    ) {
        switch format {
        case .gra: return try decodeInstructionStyle(record, responseKey: "response", fallbackKey: "output")
        case .alpaca: return try decodeInstructionStyle(record, responseKey: "output", fallbackKey: "response")
        case .sharegpt: return try decodeShareGPT(record)
        case .openai: return try decodeOpenAI(record)
        }
    }

    private static func requiredString(_ record: JSONObject, _ key: String) throws(FormatRejection) -> String {
        guard let v = record[key] else { throw FormatRejection("missing field '\(key)'") }
        guard case .string(let s) = v else {
            throw FormatRejection("field '\(key)' must be a string, not \(v.kindDescription)")
        }
        return s
    }

    private static func optionalString(_ record: JSONObject, _ key: String) throws(FormatRejection) -> String? {
        guard let v = record[key], v != .null else { return nil }
        guard case .string(let s) = v else {
            throw FormatRejection("field '\(key)' must be a string, not \(v.kindDescription)")
        }
        return s
    }

    private static func decodeInstructionStyle(
        _ record: JSONObject, responseKey: String, fallbackKey: String
    ) throws(FormatRejection) -> (Sample, JSONObject) {
        // One pass: pick out the owned fields (the last of duplicates wins, as in lookups),
        // keep the rest in order.
        var instruction: JSONValue?, response: JSONValue?, fallback: JSONValue?
        var input: JSONValue?, system: JSONValue?, historyValue: JSONValue?, tools: JSONValue?, steps: JSONValue?
        var fallbackIndex = -1
        var extras = JSONObject()
        extras.fields.reserveCapacity(record.count)
        for f in record.fields {
            switch f.key {
            case "instruction": instruction = f.value
            case "input": input = f.value
            case "system": system = f.value
            case "history": historyValue = f.value
            case "tools": tools = f.value
            case "tool_steps": steps = f.value
            case responseKey: response = f.value
            case fallbackKey:
                fallback = f.value
                if fallbackIndex < 0 { fallbackIndex = extras.count }
                extras.fields.append(f)  // removed below if it is used as the response
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
            case .null?:
                if required { throw FormatRejection("field '\(key)' must be a string, not null") } else { return nil }
            case let other?: throw FormatRejection("field '\(key)' must be a string, not \(other.kindDescription)")
            }
        }
        let instructionText = try string(instruction, "instruction", required: true)!
        let responseText = try string(
            response, response == fallback && fallback != nil ? fallbackKey : responseKey, required: true)!
        let inputText = try string(input, "input", required: false) ?? ""
        let systemText = try string(system, "system", required: false)
        var history: [Sample.Turn] = []
        if let h = historyValue, h != .null {
            guard case .array(let turns) = h else {
                throw FormatRejection("field 'history' must be an array of [user, assistant] pairs")
            }
            for (i, t) in turns.enumerated() {
                if case .array(let pair) = t, pair.count == 2, case .string(let u) = pair[0],
                    case .string(let a) = pair[1]
                {
                    history.append(Sample.Turn(user: u, assistant: a))
                } else if case .object(let o) = t, case .string(let u)? = o["user"],
                    case .string(let a)? = o["assistant"]
                {
                    history.append(
                        Sample.Turn(
                            user: u, steps: try decodeSteps(o["tool_steps"], field: "history[\(i)].tool_steps"),
                            assistant: a))
                } else {
                    throw FormatRejection("history[\(i)] must be a [user, assistant] pair of strings")
                }
            }
        }
        return (
            Sample(
                system: systemText, tools: try decodeTools(tools), history: history, instruction: instructionText,
                input: inputText,
                steps: try decodeSteps(steps, field: "tool_steps"), response: responseText), extras
        )
    }

    /// gra's `tool_steps`: `[{"calls": [{"name", "arguments", "id"?}], "results": ["…"]}]`.
    static func decodeSteps(_ value: JSONValue?, field: String) throws(FormatRejection) -> [ToolStep] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else {
            throw FormatRejection("field '\(field)' must be a list of tool steps")
        }
        var steps: [ToolStep] = []
        for (k, item) in items.enumerated() {
            guard case .object(let o) = item, case .array(let callValues)? = o["calls"], !callValues.isEmpty,
                case .array(let resultValues)? = o["results"]
            else {
                throw FormatRejection("\(field)[\(k)] must hold 'calls' and 'results'")
            }
            var calls: [ToolCall] = []
            for c in callValues {
                guard case .object(let call) = c, case .string(let name)? = call["name"] else {
                    throw FormatRejection("\(field)[\(k)].calls holds a call without a 'name'")
                }
                calls.append(
                    ToolCall(name: name, arguments: call["arguments"] ?? .object([:]), id: call["id"]?.stringValue))
            }
            var results: [String] = []
            for r in resultValues {
                guard case .string(let text) = r else {
                    throw FormatRejection("\(field)[\(k)].results must be strings")
                }
                results.append(text)
            }
            steps.append(ToolStep(calls: calls, results: results))
        }
        return steps
    }

    static func encodeSteps(_ steps: [ToolStep]) -> JSONValue {
        .array(
            steps.map { step in
                .object([
                    "calls": .array(
                        step.calls.map { call in
                            var o: JSONObject = ["name": .string(call.name), "arguments": call.arguments]
                            if let id = call.id { o.append("id", .string(id)) }
                            return .object(o)
                        }), "results": .array(step.results.map { .string($0) })
                ])
            })
    }

    /// One message of a chat-shaped record, as far as a sample cares.
    enum Message {
        case text(role: String, String)
        /// An assistant message calling tools (`label` names it in messages: "function_call").
        case calls([ToolCall], label: String)
        /// Tool results (`label`: "observation", "tool").
        case results([String], label: String)

        var label: String {
            switch self {
            case .text(let role, _): return role
            case .calls(_, let label), .results(_, let label): return label
            }
        }
    }

    /// Builds a sample from messages: an optional system message first, then turns of a user
    /// message, any tool calls each followed by their results, and an assistant reply.
    private static func sample(fromMessages msgs: [Message], field: String) throws(FormatRejection) -> Sample {
        var i = 0
        var system: String?
        if case .text("system", let text)? = msgs.first {
            system = text
            i = 1
        }
        guard i < msgs.count else { throw FormatRejection("'\(field)' has no user/assistant turns") }
        var turns: [Sample.Turn] = []
        while i < msgs.count {
            guard case .text("user", let user) = msgs[i] else {
                throw FormatRejection("'\(field)'[\(i)] should be a user turn, found '\(msgs[i].label)'")
            }
            i += 1
            var steps: [ToolStep] = []
            while i < msgs.count, case .calls(let calls, _) = msgs[i] {
                i += 1
                guard i < msgs.count else {
                    throw FormatRejection("'\(field)' ends with a tool call: no tool results and no final reply")
                }
                guard case .results(let results, _) = msgs[i] else {
                    throw FormatRejection(
                        "'\(field)'[\(i)] should hold the results of the tool call before it, found '\(msgs[i].label)'")
                }
                steps.append(ToolStep(calls: calls, results: results))
                i += 1
            }
            guard i < msgs.count else { throw FormatRejection("'\(field)' does not end with an assistant reply") }
            guard case .text("assistant", let reply) = msgs[i] else {
                throw FormatRejection("'\(field)'[\(i)] should be an assistant turn, found '\(msgs[i].label)'")
            }
            i += 1
            turns.append(Sample.Turn(user: user, steps: steps, assistant: reply))
        }
        let last = turns.removeLast()
        return Sample(
            system: system, history: turns, instruction: last.user, steps: last.steps, response: last.assistant)
    }

    /// Tool definitions as LLaMA-Factory (a JSON string of a list) and OpenAI (a list of
    /// `{type: function, function: {…}}`) write them, or gra's plain list; nil when absent.
    static func decodeTools(_ value: JSONValue?) throws(FormatRejection) -> [JSONValue]? {
        var list: [JSONValue]
        switch value {
        case nil, .null?: return nil
        case .string(let text)?:
            if text.isEmpty { return nil }
            guard case .array(let items)? = try? JSONParser.parse(text) else {
                throw FormatRejection("field 'tools' must hold a JSON list of function definitions")
            }
            list = items
        case .array(let items)?: list = items
        case let other?:
            throw FormatRejection("field 'tools' must be a list of function definitions, not \(other.kindDescription)")
        }
        for (k, item) in list.enumerated() {
            guard case .object(let o) = item else { throw FormatRejection("tools[\(k)] must be an object") }
            if case .object(let f)? = o["function"], o["type"] == .string("function") { list[k] = .object(f) }
            guard case .string? = list[k].objectValue?["name"] else {
                throw FormatRejection("tools[\(k)] has no function name")
            }
        }
        return list
    }

    /// A ShareGPT `function_call` value: JSON text of `{name, arguments}` or a list of them.
    private static func decodeFunctionCall(_ text: String, at place: String) throws(FormatRejection) -> [ToolCall] {
        guard let v = try? JSONParser.parse(text) else { throw FormatRejection("\(place) is not a JSON function call") }
        let items: [JSONValue]
        if case .array(let a) = v { items = a } else { items = [v] }
        var calls: [ToolCall] = []
        for item in items {
            guard case .object(let o) = item, case .string(let name)? = o["name"] else {
                throw FormatRejection("\(place) is not a function call with a 'name'")
            }
            var arguments = o["arguments"] ?? .object([:])
            // Some data holds the arguments as JSON text, as OpenAI does.
            if case .string(let t) = arguments, let parsed = try? JSONParser.parse(t) { arguments = parsed }
            calls.append(ToolCall(name: name, arguments: arguments))
        }
        guard !calls.isEmpty else { throw FormatRejection("\(place) calls no function") }
        return calls
    }

    private static func decodeShareGPT(_ record: JSONObject) throws(FormatRejection) -> (Sample, JSONObject) {
        guard case .array(let items)? = record["conversations"] else {
            throw FormatRejection("field 'conversations' must be an array")
        }
        var messages: [Message] = []
        for (i, item) in items.enumerated() {
            guard case .object(let m) = item else { throw FormatRejection("conversations[\(i)] must be an object") }
            guard case .string(let from)? = m["from"] else {
                throw FormatRejection("conversations[\(i)] has no string 'from'")
            }
            guard case .string(let value)? = m["value"] else {
                throw FormatRejection("conversations[\(i)] has no string 'value'")
            }
            switch from {
            case "human", "user": messages.append(.text(role: "user", value))
            case "gpt", "assistant", "chatgpt", "bard", "bing": messages.append(.text(role: "assistant", value))
            case "system": messages.append(.text(role: "system", value))
            case "function_call":
                messages.append(.calls(try decodeFunctionCall(value, at: "conversations[\(i)]"), label: from))
            case "observation": messages.append(.results([value], label: from))
            default: throw FormatRejection("conversations[\(i)] has unsupported role '\(from)'")
            }
        }
        var s = try sample(fromMessages: messages, field: "conversations")
        if let sys = try optionalString(record, "system") {
            if s.system != nil { throw FormatRejection("both a 'system' field and a system turn") }
            s.system = sys
        }
        s.tools = try decodeTools(record["tools"])
        var extras = record
        for key in ["conversations", "system", "tools"] { extras.removeValue(forKey: key) }
        return (s, extras)
    }

    private static func decodeOpenAI(_ record: JSONObject) throws(FormatRejection) -> (Sample, JSONObject) {
        guard case .array(let items)? = record["messages"] else {
            throw FormatRejection("field 'messages' must be an array")
        }
        var messages: [Message] = []
        for (i, item) in items.enumerated() {
            guard case .object(let m) = item else { throw FormatRejection("messages[\(i)] must be an object") }
            guard case .string(let role)? = m["role"] else {
                throw FormatRejection("messages[\(i)] has no string 'role'")
            }
            guard ["system", "user", "assistant", "developer", "tool"].contains(role) else {
                throw FormatRejection("messages[\(i)] has unsupported role '\(role)'")
            }
            var text: String?
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
            case nil, .null?: text = nil
            case let other?:
                throw FormatRejection("messages[\(i)].content must be a string or parts, not \(other.kindDescription)")
            }
            if role == "assistant", case .array(let list)? = m["tool_calls"], !list.isEmpty {
                if let text, !text.isEmpty {
                    throw FormatRejection(
                        "messages[\(i)] has both text and tool calls; gra keeps tool calls without words beside them")
                }
                var calls: [ToolCall] = []
                for (k, c) in list.enumerated() {
                    guard case .object(let call) = c, case .object(let f)? = call["function"],
                        case .string(let name)? = f["name"]
                    else {
                        throw FormatRejection("messages[\(i)].tool_calls[\(k)] is not a function call")
                    }
                    var arguments = f["arguments"] ?? .object([:])
                    if case .string(let t) = arguments {
                        guard let parsed = try? JSONParser.parse(t) else {
                            throw FormatRejection("messages[\(i)].tool_calls[\(k)] has arguments that are not JSON")
                        }
                        arguments = parsed
                    }
                    calls.append(ToolCall(name: name, arguments: arguments, id: call["id"]?.stringValue))
                }
                messages.append(.calls(calls, label: "assistant with tool_calls"))
                continue
            }
            guard let text else { throw FormatRejection("messages[\(i)] has no content") }
            if role == "tool" {
                // Consecutive tool messages answer the calls of one step.
                if case .results(let earlier, _)? = messages.last {
                    messages[messages.count - 1] = .results(earlier + [text], label: "tool")
                } else {
                    messages.append(.results([text], label: "tool"))
                }
                continue
            }
            messages.append(.text(role: role == "developer" ? "system" : role, text))
        }
        var s = try sample(fromMessages: messages, field: "messages")
        s.tools = try decodeTools(record["tools"])
        var extras = record
        extras.removeValue(forKey: "messages")
        extras.removeValue(forKey: "tools")
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
    /// `stripMeta` makes a training file: the `gra` metadata object goes, and for a training
    /// format (not gra) every other field the format does not define goes too, except those
    /// named in `keep`. The fields the format writes itself win over extras of the same name
    /// (see `Encoded`).
    public static func encode(
        _ sample: Sample, extras: JSONObject, as format: RecordFormat, stripMeta: Bool,
        keep: Set<String> = []
    ) -> Encoded {
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
            default:
                if !stripMeta || format == .gra || keep.contains(f.key) { rest.fields.append(f) }
            }
        }
        if stripMeta && !keep.contains("gra") { meta = nil }
        precondition(format.cannotHold(sample) == nil, "check RecordFormat.cannotHold first")
        switch format {
        case .gra, .alpaca:
            if let id { out.append("id", id) }
            if let domain { out.append("domain", domain) }
            out.append("instruction", .string(sample.instruction))
            out.append("input", .string(sample.input))
            out.append(format == .gra ? "response" : "output", .string(sample.response))
            if let sys = sample.system { out.append("system", .string(sys)) }
            if !sample.history.isEmpty {
                out.append(
                    "history",
                    .array(
                        sample.history.map { t in
                            t.steps.isEmpty
                                ? .array([.string(t.user), .string(t.assistant)])
                                : .object([
                                    "user": .string(t.user), "tool_steps": encodeSteps(t.steps),
                                    "assistant": .string(t.assistant)
                                ])
                        }))
            }
            if let tools = sample.tools {
                // gra keeps JSON; LLaMA-Factory's Alpaca wants the list as JSON text.
                out.append("tools", format == .gra ? .array(tools) : .string(JSONWriter.string(.array(tools))))
            }
            if !sample.steps.isEmpty { out.append("tool_steps", encodeSteps(sample.steps)) }
            if let keywords { out.append("keywords", keywords) }
            if let summary { out.append("summary", summary) }
        case .sharegpt:
            var turns: [JSONValue] = []
            func turn(_ from: String, _ value: String) {
                turns.append(.object(["from": .string(from), "value": .string(value)]))
            }
            func steps(_ steps: [ToolStep]) {
                for step in steps {
                    let calls = step.calls.map {
                        JSONValue.object(["name": .string($0.name), "arguments": $0.arguments])
                    }
                    turn("function_call", JSONWriter.string(calls.count == 1 ? calls[0] : .array(calls)))
                    turn("observation", step.results[0])
                }
            }
            if let sys = sample.system { turn("system", sys) }
            sample.forEachTurn { _, user, toolSteps, reply in
                turn("human", user)
                steps(toolSteps)
                turn("gpt", reply)
            }
            out.append("conversations", .array(turns))
            if let tools = sample.tools { out.append("tools", .string(JSONWriter.string(.array(tools)))) }
        case .openai:
            var msgs: [JSONValue] = []
            func message(_ role: String, _ content: String) {
                msgs.append(.object(["role": .string(role), "content": .string(content)]))
            }
            func steps(_ steps: [ToolStep], turn: Int) {
                for (k, step) in steps.enumerated() {
                    // Ids the data did not have are made up stably: call_<turn>_<step>_<call>.
                    let ids = step.calls.enumerated().map { $0.element.id ?? "call_\(turn)_\(k)_\($0.offset)" }
                    msgs.append(
                        .object([
                            "role": .string("assistant"),
                            "tool_calls": .array(
                                zip(step.calls, ids).map { call, id in
                                    .object([
                                        "id": .string(id), "type": .string("function"),
                                        "function": .object([
                                            "name": .string(call.name),
                                            "arguments": .string(JSONWriter.string(call.arguments))
                                        ])
                                    ])
                                })
                        ]))
                    for (r, result) in step.results.enumerated() {
                        var m: JSONObject = ["role": .string("tool")]
                        if r < ids.count { m.append("tool_call_id", .string(ids[r])) }
                        m.append("content", .string(result))
                        msgs.append(.object(m))
                    }
                }
            }
            if let sys = sample.system { message("system", sys) }
            sample.forEachTurn { n, user, toolSteps, reply in
                message("user", user)
                steps(toolSteps, turn: n)
                message("assistant", reply)
            }
            out.append("messages", .array(msgs))
            if let tools = sample.tools {
                out.append("tools", .array(tools.map { .object(["type": .string("function"), "function": $0]) }))
            }
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
