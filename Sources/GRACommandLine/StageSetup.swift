import ArgumentParser
import Foundation
import GRAKit

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
                    if f.status == 401 || f.status == 403 {
                        throw GRAError.noPermission("\(f.message) — \(llm.keySource("OPENAI_API_KEY"))")
                    }
                }
                throw GRAError.usage(
                    "no model configured and \(url) lists none: use --model NAME@BASE_URL or GRA_MODELS")
            }
            diagnostics.info(
                "using model '\(first)', the first one \(url) serves (set GRA_MODELS or --model to choose)")
            try pool.add(spec: first + "@" + url, defaultBaseURL: nil)
        }
        guard !pool.models.isEmpty else {
            llm.http.shutdown()
            throw GRAError.usage(
                "no model configured: use --model NAME@BASE_URL, --config FILE, or GRA_MODELS with OPENAI_BASE_URL")
        }
        self.pool = pool
        self.client = llm
    }

    /// Ends the client: requests in flight are abandoned and its loop threads joined. Safe to
    /// call more than once (the stage engine also shuts the client down when its run ends).
    public func shutdown() { client.http.shutdown() }

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
        func note(
            _ list: inout [(base: String, message: String, models: [String])], _ base: String, _ message: String,
            _ model: String
        ) {
            if let i = list.firstIndex(where: { $0.base == base && $0.message == message }) {
                list[i].models.append(model)
            } else {
                list.append((base, message, [model]))
            }
        }
        for model in models {
            for base in model.baseURLs {
                let key = base + "\u{1F}" + model.apiKeyVariable
                let firstAsk = listed[key] == nil
                if firstAsk { listed[key] = client.listModels(baseURL: base, apiKeyVariable: model.apiKeyVariable) }
                switch listed[key]! {
                case .failure(let f) where f.connectFailed:
                    if client.health.probeFailed(base, model: model, message: f.message) {
                        note(&unreachable, base, f.message, model.name)
                    }
                case .failure(let f) where f.status == 401 || f.status == 403:
                    let message = "\(f.message) — \(client.keySource(model.apiKeyVariable))"
                    client.health.denied(model, message: "model '\(model.name)': \(message)", report: false)
                    note(&refused, base, message, model.name)
                case .failure(let f):
                    if firstAsk { diagnostics.warn("cannot list models at \(base): \(f.message)") }
                case .success(let ids):
                    if !ids.isEmpty && !ids.contains(model.name) {
                        diagnostics.warn(
                            """
                            \(base) does not list model '\(model.name)' (it lists: \
                            \(ids.prefix(8).joined(separator: ", ")))
                            """
                        )
                    }
                }
            }
        }
        func names(_ models: [String]) -> String {
            models.count == 1 ? "model '\(models[0])'" : "models " + models.map { "'\($0)'" }.joined(separator: ", ")
        }
        for u in unreachable {
            diagnostics.error(
                """
                cannot reach \(names(u.models)): \(u.message); only cached replies can be used, records that need \
                \(u.models.count == 1 ? "it" : "them") go to the errors file
                """
            )
        }
        for r in refused {
            diagnostics.error(
                """
                \(names(r.models)): \(r.message); no requests are sent with it, records that need \
                \(r.models.count == 1 ? "it" : "them") go to the errors file
                """
            )
        }
    }
}
