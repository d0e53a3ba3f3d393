import Foundation

/// What `gra-ifd` does, as plain values.
public struct IFDOptions: Sendable {
    public var model: ModelEndpoint
    /// The text before the response in the conditional prompt, rendered with the sample's
    /// fields (id, instruction, input, response); the response follows it directly.
    public var context: PromptTemplate
    public var io = StageIOOptions()

    public init(model: ModelEndpoint, context: PromptTemplate = IFDStage.defaultContext) {
        self.model = model
        self.context = context
    }
}

/// Instruction-Following Difficulty of one sample (Li et al., "From Quantity to Quality",
/// NAACL 2024): the perplexity of the response given the instruction over the perplexity of the
/// response alone. Near 1 (or above) the instruction hardly helps the model produce the
/// response: a hard sample; near 0 the response follows easily from the instruction.
public struct IFDScore: Sendable, Equatable {
    /// exp of the mean negative log-likelihood of the response's tokens after the instruction.
    public var perplexityGivenInstruction: Double
    /// exp of the mean negative log-likelihood of the response's tokens on their own.
    public var perplexityAlone: Double
    /// Response tokens scored after the instruction, and on their own.
    public var tokensGivenInstruction: Int
    public var tokensAlone: Int

    public var value: Double { perplexityGivenInstruction / perplexityAlone }

    /// The score from the two scored prompts: `conditional` is the context followed by the
    /// response, which starts at Unicode scalar `responseStart`; `alone` is the response by
    /// itself. Nil (with the reason) when either has no scored response token.
    public static func compute(conditional: PromptLogprobs, responseStart: Int, alone: PromptLogprobs)
        -> Result<IFDScore, ReplyProblem>
    {
        let given = conditional.tokens(from: responseStart)
        let own = alone.tokens(from: 0)
        guard given.count > 0 else { return .failure("no response token with a log-probability after the instruction") }
        guard own.count > 0 else {
            return .failure("no response token with a log-probability on its own (a one-token response has none)")
        }
        return .success(
            IFDScore(
                perplexityGivenInstruction: exp(-given.sum / Double(given.count)),
                perplexityAlone: exp(-own.sum / Double(own.count)),
                tokensGivenInstruction: given.count, tokensAlone: own.count))
    }

    /// `gra.ifd` of a record: score, both perplexities, token counts and the model.
    public func section(model: String) -> JSONObject {
        var o = JSONObject()
        o.append("score", roundedNumber(value))
        o.append("ppl_given_instruction", roundedNumber(perplexityGivenInstruction))
        o.append("ppl_response", roundedNumber(perplexityAlone))
        o.append("response_tokens", .integer(tokensGivenInstruction))
        o.append("model", .string(model))
        return o
    }
}

/// The IFD stage: per sample, has the model score two prompts through `/completions` with
/// prompt log-probabilities — the context (instruction and input) followed by the response, and
/// the response alone — and writes the record with `gra.ifd`. Runs on a `StageEngine`.
public final class IFDStage: @unchecked Sendable {
    /// The default context: the instruction, then the input when there is one, then a blank line.
    public static let defaultContext = try! PromptTemplate("{{instruction}}\n\n{{#input}}{{input}}\n\n{{/input}}")

    /// A prompt every server that gives prompt log-probabilities scores.
    static let probePrompt = "The quick brown fox jumps over the lazy dog."

    public let options: IFDOptions
    private let engine: StageEngine

    public init(options: IFDOptions, client: LLMClient, output: OutputSink, diagnostics: Diagnostics) {
        self.options = options
        engine = StageEngine(name: "gra-ifd", io: options.io, client: client, output: output, diagnostics: diagnostics)
    }

    public func run() throws(GRAError) -> StageSummary {
        if !options.io.dryRun { try probe() }
        return try engine.run { task in score(task) }
    }

    /// Asks for one prompt's log-probabilities before the run, so a server that cannot give them
    /// stops it at once, named, rather than failing every record.
    private func probe() throws(GRAError) {
        let model = options.model
        let client = engine.client!
        let result = ResultBox<Result<(value: PromptLogprobs, fromCache: Bool), RequestFailure>>.wait { done in
            client.promptLogprobs(model: model, prompt: IFDStage.probePrompt, completion: done)
        }
        guard case .failure(let f) = result else { return }
        let advice = """
            gra-ifd needs the prompt's log-probabilities from /v1/completions with echo: true and logprobs, \
            as vLLM gives them (llama.cpp, Ollama and SGLang do not)
            """
        if f.status == 401 || f.status == 403 { throw GRAError.noPermission(f.message) }
        // A server that answered but not as asked gets the advice; one that was not reached, not.
        let more = f.status == nil ? "" : ". " + advice
        throw GRAError.unavailable("cannot score prompts with \(model.name): \(f.message)\(more)")
    }

    /// Per-record state: the two scored prompts as they come.
    private final class Pair: @unchecked Sendable {
        var conditional: PromptLogprobs?
        var alone: PromptLogprobs?
        var failed = false
    }

    private func score(_ task: StageTask) {
        let fields: SampleFields
        switch SampleFields.read(task.record, needResponse: true) {
        case .failure(let f): return task.fail(f)
        case .success(let v): fields = v
        }
        var missing: [String] = []
        let context = options.context.render(.object(fields.context), missing: &missing)
        if !missing.isEmpty {
            let names = Array(Set(missing)).sorted().map { "'\($0)'" }.joined(separator: ", ")
            return task.fail(
                TaskFailure(
                    reason: "the context template uses \(names): a sample has id, instruction, input and response only"
                ))
        }
        let response = fields.response ?? ""
        let start = context.unicodeScalars.count
        let model = options.model
        let pair = Pair()
        // Both replies come on the stage's thread, one at a time (StageTask): no lock.
        let finish: @Sendable (Result<PromptLogprobs, TaskFailure>, Bool) -> Void = { result, isConditional in
            guard !pair.failed else { return }
            switch result {
            case .failure(let f):
                pair.failed = true
                task.fail(f)
            case .success(let v):
                if isConditional { pair.conditional = v } else { pair.alone = v }
                guard let c = pair.conditional, let a = pair.alone else { return }
                switch IFDScore.compute(conditional: c, responseStart: start, alone: a) {
                case .failure(let why):
                    task.fail(TaskFailure(reason: "cannot score: \(why)", model: model.name))
                case .success(let ifd):
                    var record = task.record
                    record.ensureID(fields)
                    record.setGRASection("ifd", ifd.section(model: model.name))
                    task.finish(TaskOutcome(outputs: [record]))
                }
            }
        }
        task.scorePrompt(context + response, model: model) { finish($0, true) }
        task.scorePrompt(response, model: model) { finish($0, false) }
    }
}
