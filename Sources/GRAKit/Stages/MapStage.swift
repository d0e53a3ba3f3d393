/// What `gra-map` does, as plain values (the CLI fills this from its flags).
public struct MapOptions: Sendable {
    public var template: PromptTemplate
    public var systemTemplate: PromptTemplate?
    /// Dotted path of the field the reply goes into, e.g. `gra.map.translation`.
    public var into: [String]
    /// When set, the reply must be JSON conforming to this schema (sent as `response_format`).
    public var schema: JSONSchema?
    /// Send the schema as `response_format` (some servers reject it).
    public var sendResponseFormat = true
    public var model: ModelEndpoint
    public var parameters = JSONObject()
    /// Re-asks of a reply that is not the JSON asked for, before it becomes an error.
    public var parseRetries = 2
    public var io = StageIOOptions()

    public init(template: PromptTemplate, into: [String], model: ModelEndpoint) {
        self.template = template
        self.into = into
        self.model = model
    }
}

/// The generic LLM stage: per record, render the prompt, ask the model, put the reply (text,
/// or validated JSON) into a field. Runs on a `StageEngine` (order, errors file, progress).
public final class MapStage: @unchecked Sendable {
    public let options: MapOptions
    private let engine: StageEngine
    /// Hash of the templates and schema: part of every cache key, so editing them re-asks.
    private let promptVersion: String
    /// Reads a reply: its text, or its JSON checked against the schema. The same for every
    /// record, so made once.
    private let parse: @Sendable (ChatReply) -> Result<JSONValue, ReplyProblem>

    public init(options: MapOptions, client: LLMClient, output: OutputSink, diagnostics: Diagnostics) {
        var version = options.template.version
        if let s = options.systemTemplate { version += "+" + s.version }
        if let schema = options.schema {
            version += "+" + String(SHA256.hex(JSONWriter.string(schema.schema)).prefix(16))
        }
        promptVersion = version
        self.options = options
        let schema = options.schema
        parse = { reply in
            guard let schema else {
                guard let text = reply.content else { return .failure("the model sent no content") }
                return .success(.string(text))
            }
            return ReplyJSON.extract(reply.content ?? "", schema: schema)
        }
        engine = StageEngine(name: "gra-map", io: options.io, client: client, output: output, diagnostics: diagnostics)
        engine.checkFirstRecord = { record in
            var missing: [String] = []
            _ = options.template.render(.object(record), missing: &missing)
            _ = options.systemTemplate?.render(.object(record), missing: &missing)
            guard !missing.isEmpty else { return nil }
            let names = Array(Set(missing)).sorted().map { "'\($0)'" }.joined(separator: ", ")
            let fields = record.fields.prefix(12).map(\.key).joined(separator: ", ")
            return
                """
                the prompt uses \(names), which the first record lacks (its fields: \(fields)); nothing was sent. \
                Fix the template, or wrap a field only some records have in {{#name}}…{{/name}}
                """
        }
    }

    public func run() throws(GRAError) -> StageSummary {
        try engine.run { task in start(task) }
    }

    /// Renders the prompt for the record and asks; a rendering problem fails the record.
    private func start(_ task: StageTask) {
        var missing: [String] = []
        let root = JSONValue.object(task.record)
        // Template files end with a newline; the message should not.
        let user = options.template.render(root, missing: &missing).trimmingWhitespace()
        let system = options.systemTemplate?.render(root, missing: &missing).trimmingWhitespace()
        if !missing.isEmpty {
            let names = Array(Set(missing)).sorted().map { "'\($0)'" }.joined(separator: ", ")
            return task.fail(
                TaskFailure(reason: "the prompt uses \(names), missing from the record", model: options.model.name))
        }
        // Fields listed directly: a dictionary literal allocates its elements twice.
        var messages: [JSONValue] = []
        messages.reserveCapacity(system == nil ? 1 : 2)
        if let system {
            messages.append(
                .object(JSONObject([JSONField("role", .string("system")), JSONField("content", .string(system))])))
        }
        messages.append(.object(JSONObject([JSONField("role", .string("user")), JSONField("content", .string(user))])))
        var responseFormat: JSONValue?
        if let schema = options.schema, options.sendResponseFormat {
            responseFormat = ChatRequest.jsonSchemaFormat(name: "gra_map", schema: schema)
        }
        let request = ChatRequest(
            model: options.model, messages: messages, parameters: options.parameters,
            responseFormat: responseFormat, promptVersion: promptVersion)
        let into = options.into
        task.ask(
            request, parseRetries: options.schema == nil ? 0 : options.parseRetries, parse: parse,
            done: { result in
                switch result {
                case .failure(let f):
                    task.fail(f)
                case .success(let answer):
                    var record = task.record
                    do {
                        try MapStage.set(answer.value, at: into[...], in: &record)
                        task.finish(TaskOutcome(outputs: [record]))
                    } catch {
                        task.fail(TaskFailure(reason: "\(error)", attempts: answer.reply.attempts))
                    }
                }
            })
    }

    /// Sets `value` at a dotted path, creating objects on the way.
    public static func set(_ value: JSONValue, at path: ArraySlice<String>, in object: inout JSONObject)
        throws(GRAError)
    {
        guard let key = path.first else { return }
        if path.count == 1 {
            object[key] = value
            return
        }
        var inner: JSONObject
        switch object[key] {
        case nil, .null?: inner = JSONObject()
        case .object(let o)?: inner = o
        case let other?:
            throw GRAError.badInput("cannot write into '\(key)': it holds \(other.kindDescription), not an object")
        }
        try set(value, at: path.dropFirst(), in: &inner)
        object[key] = .object(inner)
    }
}
