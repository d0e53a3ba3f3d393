import ArgumentParser
import Foundation
import GRAKit

/// Sampling flags sent to the server as they are.
public struct SamplingOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Sampling temperature.", valueName: "t"))
    public var temperature: Double?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Nucleus sampling top_p.", valueName: "p"))
    public var topP: Double?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Most tokens in a reply.", valueName: "n"))
    public var maxTokens: Int?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A stop sequence (repeatable).", valueName: "text"))
    public var stop: [String] = []

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Sampling seed sent to the server with every request (the server's 'seed'; not --seed, which draws roles).", valueName: "n"))
    public var samplingSeed: Int?

    public init() {}

    /// The parameters for the request body.
    public func parameters() -> JSONObject {
        let seed = samplingSeed
        var parameters = JSONObject()
        if let temperature { parameters.append("temperature", .number(String(temperature))) }
        if let topP { parameters.append("top_p", .number(String(topP))) }
        if let maxTokens { parameters.append("max_tokens", .integer(maxTokens)) }
        if let seed { parameters.append("seed", .integer(seed)) }
        if !stop.isEmpty { parameters.append("stop", .array(stop.map { .string($0) })) }
        return parameters
    }
}

/// Flags the GRA role stages (generate, review, adjudicate) share: the prompts and the role
/// seed.
public struct RoleStageOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Prompt files: a directory whose NAME.txt files replace the built-in ones, or 'en' (default) / 'zh' for a built-in set.", valueName: "dir"))
    public var prompts: String?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Seed of the role assignment (and of few-shot draws): the same seed gives the same roles and, from the cache, the same output.", valueName: "n"))
    public var seed: Int = 0

    public init() {}

    public func promptSet() throws(GRAError) -> PromptSet { try PromptSet(prompts) }

    /// How requests are made: sampling parameters and the reply settings.
    public func requestMaker(_ sampling: SamplingOptions, _ replies: ReplyOptions) -> RoleRequestMaker {
        var maker = RoleRequestMaker()
        maker.parameters = sampling.parameters()
        maker.sendResponseFormat = !replies.noResponseFormat
        maker.parseRetries = replies.parseRetries
        return maker
    }
}

/// How structured replies are asked for and checked: the same two flags in every tool that
/// parses replies (gra-map, gra-format --complete-summaries, the role stages), so their help
/// cannot drift apart.
public struct ReplyOptions: ParsableArguments {
    @Flag(name: .long, help: "Do not send JSON schemas as response_format (for servers that reject it); replies are still parsed and checked strictly.")
    public var noResponseFormat = false

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Times a reply that is not the JSON asked for (or is out of range) is re-asked before the record fails.", valueName: "n"))
    public var parseRetries: Int = 2

    public init() {}

    public func validate() throws {
        guard parseRetries >= 0 else { throw ValidationError("--parse-retries must be ≥ 0") }
    }
}

/// Where a record-at-a-time LLM stage's failed records and statistics go, and the output
/// order: the same flags in gra-map and every role stage.
public struct RunOutputOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Write records that failed (request failed after retries, reply never parsed, field missing) here, whole, as NDJSON with the reason. Default: ./gra-STAGE.errors.ndjson, made when the first one comes (never overwriting a file); /dev/null drops them.", valueName: "file"))
    public var errors: String?

    @Flag(name: .long, help: "Write records as they finish instead of in input order.")
    public var unordered = false

    @Option(name: .long, help: ArgumentHelp("Write a JSON summary (counts; per model: requests, cache hits, retries, tokens, latency p50/p95) here.", valueName: "file"))
    public var stats: String?

    @Flag(name: .long, help: "Send nothing: write the requests the stage would send to stdout as NDJSON ({stage, where, model, cached, cache_key, request}). Replies in the cache are used, so the requests that follow them are listed too.")
    public var dryRun = false

    public init() {}

    /// The stage's I/O options: the input settings with these.
    public func io(_ input: InputOptions) -> StageIOOptions {
        var io = input.ioOptions
        io.errorsPath = errors
        io.unordered = unordered
        io.statsPath = stats
        io.dryRun = dryRun
        return io
    }
}

/// Everything an LLM stage needs before it reads a record: the pool (or the one model a bare
/// OPENAI_BASE_URL serves), a client, and a check that each model is served.
public struct StageSetup {
    public let pool: ModelPool
    public let client: LLMClient

    public init(_ options: ClientOptions, diagnostics: Diagnostics, environment: [String: String]) throws(GRAError) {
        diagnostics.progress = options.progress
        var pool = try options.pool(environment: environment)
        let llm = try options.makeClient(environment: environment, diagnostics: diagnostics)
        if pool.models.isEmpty, let base = environment["OPENAI_BASE_URL"], !base.isEmpty {
            // Only a server given: use the model it serves (llama.cpp and Ollama serve one).
            let url = try ModelPool.normalizeBaseURL(base)
            let listed = llm.listModels(baseURL: url)
            guard case .success(let ids) = listed, let first = ids.first else {
                llm.http.shutdown()
                if case .failure(let f) = listed {
                    if f.connectFailed { throw GRAError.unavailable("cannot reach OPENAI_BASE_URL: \(f.message)") }
                    if f.status == 401 || f.status == 403 { throw GRAError.noPermission("\(f.message) — the key comes from $OPENAI_API_KEY") }
                }
                throw GRAError.usage("no model configured and \(url) lists none: use --model NAME@BASE_URL or GRA_MODELS")
            }
            diagnostics.info("using model '\(first)', the first one \(url) serves (set GRA_MODELS or --model to choose)")
            try pool.add(spec: first + "@" + url, defaultBaseURL: nil)
        }
        guard !pool.models.isEmpty else {
            llm.http.shutdown()
            throw GRAError.usage("no model configured: use --model NAME@BASE_URL, --config FILE, or GRA_MODELS with OPENAI_BASE_URL")
        }
        llm.onRetry = { message, key in diagnostics.info(message, fold: key) }
        llm.onWarning = { message in diagnostics.warn(message) }
        llm.health.onBlock = { _, block in diagnostics.error(block.message) }
        if let n = environment["GRA_BREAKER_SECONDS"], let seconds = Double(n) { llm.health.minimumSeconds = seconds }
        llm.health.maxConnectFailures = options.maxConnectFailures
        self.pool = pool
        self.client = llm
        self.environment = environment
    }

    private let environment: [String: String]

    /// Asks each replica which models it serves. A model none of whose replicas can be
    /// connected to, or whose key a server refuses (401/403), is blocked in the client's
    /// `health`: its requests fail at once and the stage ends with 69 or 77 (replies in the
    /// cache still answer, so a rerun served from the cache works without the server). Other
    /// failures, and a model the server does not list, only warn.
    public func checkModels(_ models: [ModelEndpoint], _ diagnostics: Diagnostics) {
        var listed: [String: Result<[String], RequestFailure>] = [:]
        // Per server (and key variable), the models it left without an endpoint: one message each.
        var unreachable: [(base: String, message: String, models: [String])] = []
        var refused: [(base: String, message: String, models: [String])] = []
        func note(_ list: inout [(base: String, message: String, models: [String])], _ base: String, _ message: String, _ model: String) {
            if let i = list.firstIndex(where: { $0.base == base && $0.message == message }) { list[i].models.append(model) } else { list.append((base, message, [model])) }
        }
        for model in models {
            for base in model.baseURLs {
                let key = base + "\u{1F}" + model.apiKeyVariable
                let firstAsk = listed[key] == nil
                if firstAsk { listed[key] = client.listModels(baseURL: base, apiKeyVariable: model.apiKeyVariable) }
                switch listed[key]! {
                case .failure(let f) where f.connectFailed:
                    if client.health.probeFailed(base, model: model, message: f.message) { note(&unreachable, base, f.message, model.name) }
                case .failure(let f) where f.status == 401 || f.status == 403:
                    let key = environment[model.apiKeyVariable].map { $0.isEmpty ? ", which is empty" : "" } ?? ", which is not set"
                    let message = "\(f.message) — the key comes from $\(model.apiKeyVariable)\(key)"
                    client.health.denied(model, message: "model '\(model.name)': \(message)", report: false)
                    note(&refused, base, message, model.name)
                case .failure(let f):
                    if firstAsk { diagnostics.warn("cannot list models at \(base): \(f.message)") }
                case .success(let ids):
                    if !ids.isEmpty && !ids.contains(model.name) {
                        diagnostics.warn("\(base) does not list model '\(model.name)' (it lists: \(ids.prefix(8).joined(separator: ", ")))")
                    }
                }
            }
        }
        func names(_ models: [String]) -> String {
            models.count == 1 ? "model '\(models[0])'" : "models " + models.map { "'\($0)'" }.joined(separator: ", ")
        }
        for u in unreachable {
            diagnostics.error("cannot reach \(names(u.models)): \(u.message); only cached replies can be used, records that need \(u.models.count == 1 ? "it" : "them") go to the errors file")
        }
        for r in refused {
            diagnostics.error("\(names(r.models)): \(r.message); no requests are sent with it, records that need \(r.models.count == 1 ? "it" : "them") go to the errors file")
        }
    }
}
