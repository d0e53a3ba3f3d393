/// The knowledge a sample is about — `keywords` and a one-sentence `summary` — read from the
/// record or extracted by one model call (the `extract` prompt). Shared by gra-generate (which
/// steers new samples with it) and gra-format `--complete-summaries` (which fills it in so
/// accepted output can seed the next round).
public struct Knowledge: Sendable, Equatable {
    public var keywords: [String]
    public var summary: String

    /// What the record already holds: the knowledge, nothing (either field missing, null or
    /// empty), or a failure when a field has the wrong type.
    public static func stored(in record: JSONObject) -> Result<Knowledge?, TaskFailure> {
        var keywords: [String]?
        switch record["keywords"] {
        case nil, .null?: break
        case .array(let items)?:
            guard items.allSatisfy({ $0.stringValue != nil }) else {
                return .failure(TaskFailure(reason: "field 'keywords' must be an array of strings"))
            }
            keywords = items.compactMap(\.stringValue)
        case let other?:
            return .failure(
                TaskFailure(reason: "field 'keywords' must be an array of strings, not \(other.kindDescription)"))
        }
        var summary: String?
        switch record["summary"] {
        case nil, .null?: break
        case .string(let s)?: summary = s
        case let other?:
            return .failure(TaskFailure(reason: "field 'summary' must be a string, not \(other.kindDescription)"))
        }
        guard let keywords, !keywords.isEmpty, let summary, !summary.isEmpty else { return .success(nil) }
        return .success(Knowledge(keywords: keywords, summary: summary))
    }

    /// Asks `model` for the knowledge of `fields` through `task`; `done` gets it or the failure
    /// (marked with `step: knowledge extraction`).
    public static func extract(
        _ fields: SampleFields, model: ModelEndpoint, prompts: PromptSet, requests: RoleRequestMaker,
        task: StageTask, done: @escaping @Sendable (Result<Knowledge, TaskFailure>) -> Void
    ) {
        switch requests.request(
            prompts[.extract], context: fields.context, schema: RoleSchemas.knowledge,
            schemaName: "gra_knowledge", model: model)
        {
        case .failure(let f):
            done(.failure(f))
        case .success(let r):
            task.ask(r, parseRetries: requests.parseRetries, parse: RoleRequestMaker.parser(RoleSchemas.knowledge)) {
                result in
                switch result {
                case .failure(var f):
                    f.extra["step"] = .string("knowledge extraction")
                    done(.failure(f))
                case .success(let a):
                    let o = a.value.objectValue!
                    done(
                        .success(
                            Knowledge(
                                keywords: o["keywords"]!.arrayValue!.compactMap(\.stringValue),
                                summary: o["summary"]!.stringValue!)))
                }
            }
        }
    }

    /// Writes the knowledge into the record's `keywords` and `summary` fields.
    public func store(in record: inout JSONObject) {
        record["keywords"] = .array(keywords.map { .string($0) })
        record["summary"] = .string(summary)
    }
}
