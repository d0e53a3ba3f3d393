import ArgumentParser
import Foundation
import GRAKit

/// Sampling flags sent to the server as they are.
public struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Sampling temperature.", valueName: "t"))
    public var temperature: Double?

    @Option(name: .long, help: ArgumentHelp("Nucleus sampling top_p.", valueName: "p"))
    public var topP: Double?

    @Option(name: .long, help: ArgumentHelp("Most tokens in a reply.", valueName: "n"))
    public var maxTokens: Int?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A stop sequence (repeatable).", valueName: "text"))
    public var stop: [String] = []

    public init() {}

    /// The parameters for the request body (`seed` is the server's sampling seed, if any).
    public func parameters(seed: Int?) -> JSONObject {
        var parameters = JSONObject()
        if let temperature { parameters.append("temperature", .number(String(temperature))) }
        if let topP { parameters.append("top_p", .number(String(topP))) }
        if let maxTokens { parameters.append("max_tokens", .integer(maxTokens)) }
        if let seed { parameters.append("seed", .integer(seed)) }
        if !stop.isEmpty { parameters.append("stop", .array(stop.map { .string($0) })) }
        return parameters
    }
}

/// Flags the GRA role stages (generate, review, adjudicate) share: prompts, the role seed,
/// reply parsing, where failures go, and stats.
public struct RoleStageOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Prompt files: a directory whose NAME.txt files replace the built-in ones, or 'en' (default) / 'zh' for a built-in set.", valueName: "dir"))
    public var prompts: String?

    @Option(name: .long, help: ArgumentHelp("Seed of the role assignment (and of few-shot draws): the same seed gives the same roles and, from the cache, the same output.", valueName: "n"))
    public var seed: Int = 0

    @Option(name: .long, help: ArgumentHelp("Sampling seed sent to the server with every request.", valueName: "n"))
    public var samplingSeed: Int?

    @Flag(name: .long, help: "Do not send JSON schemas as response_format (for servers that reject it); replies are still parsed and checked strictly.")
    public var noResponseFormat = false

    @Option(name: .long, help: ArgumentHelp("Times a reply that is not the JSON asked for (or is out of range) is re-asked before it becomes an error.", valueName: "n"))
    public var parseRetries: Int = 2

    @Option(name: .long, help: ArgumentHelp("Write records that failed (request failed after retries, reply never parsed, field missing) here, as NDJSON with the reason.", valueName: "file"))
    public var errors: String?

    @Flag(name: .long, help: "Write records as they finish instead of in input order.")
    public var unordered = false

    @Option(name: .long, help: ArgumentHelp("Write a JSON summary (counts; per model: requests, cache hits, retries, tokens, latency p50/p95) here.", valueName: "file"))
    public var stats: String?

    public init() {}

    public func validate() throws {
        guard parseRetries >= 0 else { throw ValidationError("--parse-retries must be 0 or more") }
    }

    public func promptSet() throws(GRAError) -> PromptSet { try PromptSet(prompts) }

    public func requestMaker(_ sampling: SamplingOptions) -> RoleRequestMaker {
        var maker = RoleRequestMaker()
        maker.parameters = sampling.parameters(seed: samplingSeed)
        maker.sendResponseFormat = !noResponseFormat
        maker.parseRetries = parseRetries
        return maker
    }

    public func io(_ input: InputOptions) -> StageIOOptions {
        var io = input.ioOptions
        io.errorsPath = errors
        io.unordered = unordered
        io.statsPath = stats
        return io
    }
}

/// Everything an LLM stage needs before it reads a record: the pool (or the one model a bare
/// OPENAI_BASE_URL serves), a client, and a check that each model is served.
public struct StageSetup {
    public let pool: ModelPool
    public let client: LLMClient

    public init(_ options: ClientOptions, diagnostics: Diagnostics, environment: [String: String]) throws(GRAError) {
        var pool = try options.pool(environment: environment)
        let llm = try options.makeClient(environment: environment, diagnostics: diagnostics)
        if pool.models.isEmpty, let base = environment["OPENAI_BASE_URL"], !base.isEmpty {
            // Only a server given: use the model it serves (llama.cpp and Ollama serve one).
            let url = try ModelPool.normalizeBaseURL(base)
            guard case .success(let ids) = llm.listModels(baseURL: url), let first = ids.first else {
                llm.http.shutdown()
                throw GRAError.usage("no model configured and \(url) lists none: use --model NAME@BASE_URL or GRA_MODELS")
            }
            diagnostics.info("using model '\(first)', the first one \(url) serves (set GRA_MODELS or --model to choose)")
            try pool.add(spec: first + "@" + url, defaultBaseURL: nil)
        }
        guard !pool.models.isEmpty else {
            llm.http.shutdown()
            throw GRAError.usage("no model configured: use --model NAME@BASE_URL, --config FILE, or GRA_MODELS with OPENAI_BASE_URL")
        }
        llm.onRetry = { message in diagnostics.info(message) }
        llm.onWarning = { message in diagnostics.warn(message) }
        self.pool = pool
        self.client = llm
    }

    /// Asks each replica which models it serves; warns (never fails: a rerun may be served
    /// entirely from the cache) when it is unreachable or does not list the model.
    public func checkModels(_ models: [ModelEndpoint], _ diagnostics: Diagnostics) {
        var listed: [String: Result<[String], RequestFailure>] = [:]
        for model in models {
            for base in model.baseURLs {
                let key = base + "\u{1F}" + model.apiKeyVariable
                let firstAsk = listed[key] == nil
                if firstAsk { listed[key] = client.listModels(baseURL: base, apiKeyVariable: model.apiKeyVariable) }
                switch listed[key]! {
                case .failure(let f):
                    if firstAsk { diagnostics.warn("cannot list models at \(base): \(f.message)") }
                case .success(let ids):
                    if !ids.isEmpty && !ids.contains(model.name) {
                        diagnostics.warn("\(base) does not list model '\(model.name)' (it lists: \(ids.prefix(8).joined(separator: ", ")))")
                    }
                }
            }
        }
    }
}
