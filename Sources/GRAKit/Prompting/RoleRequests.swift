/// The JSON shapes GRA's roles answer in, as schemas: sent as `response_format` (where the
/// server accepts it) and always checked on the reply, so a score of 11 or "seven" is a parse
/// failure (re-asked, then an error), never clamped or guessed. Every object lists all its
/// fields as required and says `"additionalProperties":false`: OpenAI's strict structured
/// outputs demand both, and grammar-constrained decoding (llama.cpp) otherwise lets a model add
/// keys of its own.
public enum RoleSchemas {
    /// A reviewer's verdict on one round: an integer score from 1 to 10 and a comment. Integer, not
    /// number: grammar-constrained decoding (llama.cpp, xgrammar, outlines) enforces integer ranges but
    /// not number ranges, so with "number" a constrained model can answer `inf` or `5555445.0`.
    public static let review = schema(
        """
        {"type":"object","properties":{"score":{"type":"integer","minimum":1,"maximum":10},\
        "comment":{"type":"string"}},"required":["score","comment"],"additionalProperties":false}
        """)
    /// The review dimensions of `gra-review --dimensions`, in the order they are stored.
    public static let dimensions = ["correctness", "clarity", "completeness", "relevance", "coherence", "ethicality"]
    /// A reviewer's verdict in rubric mode: an integer from 1 to 10 per dimension, the overall
    /// score (what the decision uses) and a comment.
    public static let reviewWithDimensions = reviewSchema(dimensions: true, novelty: false)
    /// A round-2 verdict with `--neighbours`: the overall score, the sample's novelty against its
    /// neighbours (1 a near copy, 10 new), and a comment.
    public static let reviewWithNovelty = reviewSchema(dimensions: false, novelty: true)
    public static let reviewWithDimensionsAndNovelty = reviewSchema(dimensions: true, novelty: true)

    /// The review schema with the parts the flags add; every part required.
    private static func reviewSchema(dimensions withDimensions: Bool, novelty: Bool) -> JSONSchema {
        let each = #"{"type":"integer","minimum":1,"maximum":10}"#
        var properties: [String] = []
        var required: [String] = []
        if withDimensions {
            let inner = dimensions.map { #""\#($0)":\#(each)"# }.joined(separator: ",")
            let names = dimensions.map { #""\#($0)""# }.joined(separator: ",")
            properties.append(
                #""dimensions":{"type":"object","properties":{\#(inner)},"required":[\#(names)],"#
                    + #""additionalProperties":false}"#)
            required.append(#""dimensions""#)
        }
        properties.append(#""score":\#(each)"#)
        required.append(#""score""#)
        if novelty {
            properties.append(#""novelty":\#(each)"#)
            required.append(#""novelty""#)
        }
        properties.append(#""comment":{"type":"string"}"#)
        required.append(#""comment""#)
        return schema(
            #"{"type":"object","properties":{\#(properties.joined(separator: ","))},"#
                + #""required":[\#(required.joined(separator: ","))],"additionalProperties":false}"#)
    }
    /// The area chair's ruling.
    public static let adjudication = schema(
        """
        {"type":"object","properties":{"decision":{"type":"string","enum":["accept","reject"]},\
        "score":{"type":"integer","minimum":1,"maximum":10},"rationale":{"type":"string"}},"required":["decision",\
        "score","rationale"],"additionalProperties":false}
        """)
    /// A generated sample.
    public static let sample = schema(
        """
        {"type":"object","properties":{"instruction":{"type":"string","minLength":1},"input":{"type":"string"},\
        "response":{"type":"string","minLength":1}},"required":["instruction","input","response"],\
        "additionalProperties":false}
        """)
    /// The knowledge a seed is about.
    public static let knowledge = schema(
        """
        {"type":"object","properties":{"keywords":{"type":"array","items":{"type":"string","minLength":1},\
        "minItems":1,"maxItems":12},"summary":{"type":"string","minLength":1}},"required":["keywords","summary"],\
        "additionalProperties":false}
        """)
    /// A domain label, one of `domains`.
    public static func domain(_ domains: [String]) -> JSONSchema {
        let values = JSONWriter.string(.array(domains.map { .string($0) }))
        return schema(
            """
            {\"type\":\"object\",\"properties\":{\"domain\":{\"type\":\"string\",\"enum\":\(values)}},\
            \"required\":[\"domain\"],\"additionalProperties\":false}
            """
        )
    }

    private static func schema(_ text: String) -> JSONSchema {
        // The texts above are constants: a failure here is a bug in gra, caught by any test.
        try! JSONSchema(JSONParser.parse(text))
    }
}

/// Builds the chat request of one role's prompt: the messages, the JSON schema as
/// `response_format` (unless the server rejects it), and the prompt version (template and
/// schema hash) that goes into the cache key.
public struct RoleRequestMaker: Sendable {
    public var parameters = JSONObject()
    public var sendResponseFormat = true
    public var parseRetries = 2

    public init() {}

    public func request(
        _ template: PromptTemplate, context: JSONObject, schema: JSONSchema, schemaName: String,
        model: ModelEndpoint, sampleIndex: Int = 0
    ) -> Result<ChatRequest, TaskFailure> {
        switch renderPrompt(template, context) {
        case .failure(var f):
            f.model = model.name
            return .failure(f)
        case .success(let messages):
            let version = template.version + "+" + String(SHA256.hex(JSONWriter.string(schema.schema)).prefix(16))
            return .success(
                ChatRequest(
                    model: model, messages: messages, parameters: parameters,
                    responseFormat: sendResponseFormat
                        ? ChatRequest.jsonSchemaFormat(name: schemaName, schema: schema) : nil,
                    sampleIndex: sampleIndex, promptVersion: version))
        }
    }

    /// A parser for replies that must be JSON matching `schema`.
    public static func parser(_ schema: JSONSchema) -> @Sendable (ChatReply) -> Result<JSONValue, ReplyProblem> {
        { reply in ReplyJSON.extract(reply.content ?? "", schema: schema) }
    }
}

/// Gathers the results of several requests made for one record, arriving in any order, and
/// calls `done` once with all of them, in request order.
final class ResultGather<T: Sendable>: @unchecked Sendable {
    private var results: [Result<T, TaskFailure>?]
    private var remaining: Int
    private let done: ([Result<T, TaskFailure>]) -> Void

    init(count: Int, done: @escaping ([Result<T, TaskFailure>]) -> Void) {
        results = Array(repeating: nil, count: count)
        remaining = count
        self.done = done
    }

    func receive(_ index: Int, _ result: Result<T, TaskFailure>) {
        results[index] = result
        remaining -= 1
        if remaining == 0 { done(results.map { $0! }) }
    }
}
