/// What `gra-adjudicate` does, as plain values.
public struct AdjudicateOptions: Sendable {
    public var pool: ModelPool
    public var prompts: PromptSet
    /// Seed of the role assignment, for records whose review names no adjudicator in the pool.
    public var seed = 0
    /// The config's roles (a fixed adjudicator list).
    public var roles = RoleConfig()
    public var requests = RoleRequestMaker()
    public var io = StageIOOptions()

    public init(pool: ModelPool, prompts: PromptSet) {
        self.pool = pool
        self.prompts = prompts
    }
}

/// GRA's area chair: a `dispute` goes to an adjudicator model (neither author nor reviewer)
/// with the sample and every review, and its ruling decides. Accepted records go to stdout
/// (those the reviewers accepted pass through untouched); rejected ones go to the rejects
/// file with the reason.
public final class AdjudicateStage: @unchecked Sendable {
    public let options: AdjudicateOptions
    private let engine: StageEngine
    private var relaxedSaid: Set<String> = []

    /// The end-of-run counts.
    public struct Counts: Sendable {
        public var acceptedByReviewers = 0
        public var acceptedByAdjudicator = 0
        public var rejectedByReviewers = 0
        public var rejectedByAdjudicator = 0
    }
    public private(set) var counts = Counts()

    public init(options: AdjudicateOptions, client: LLMClient, output: OutputSink, diagnostics: Diagnostics) {
        self.options = options
        engine = StageEngine(
            name: "gra-adjudicate", io: options.io, client: client, output: output, diagnostics: diagnostics)
        engine.extraStats = { [unowned self] in
            [
                "accepted_by_reviewers": .integer(counts.acceptedByReviewers),
                "accepted_by_adjudicator": .integer(counts.acceptedByAdjudicator),
                "rejected_by_reviewers": .integer(counts.rejectedByReviewers),
                "rejected_by_adjudicator": .integer(counts.rejectedByAdjudicator)
            ]
        }
    }

    public func run() throws(GRAError) -> StageSummary {
        let summary = try engine.run { task in adjudicate(task) }
        let c = counts
        // Always said (unless --quiet): the run's bottom line.
        let accepted = c.acceptedByReviewers + c.acceptedByAdjudicator
        engine.diagnostics.info(
            """
            \(accepted) accepted (\(c.acceptedByAdjudicator) by the adjudicator), \
            \(c.rejectedByReviewers) rejected by reviewers, \(c.rejectedByAdjudicator) rejected by the adjudicator, \
            \(summary.failed) errors
            """
        )
        return summary
    }

    private func adjudicate(_ task: StageTask) {
        guard let review = task.record.graSection("review") else {
            let reason: String
            if let gra = task.record["gra"], gra.objectValue == nil {
                reason = "field 'gra' must be an object, not \(gra.kindDescription)"
            } else if let value = task.record["gra"]?.objectValue?["review"] {
                reason = "field 'gra.review' must be an object, not \(value.kindDescription)"
            } else {
                reason = "no gra.review: run gra-review first"
            }
            return task.fail(TaskFailure(reason: reason))
        }
        let decision = review["decision"]?.stringValue
        switch decision {
        case "accept":
            counts.acceptedByReviewers += 1
            return task.finish(TaskOutcome(outputs: [task.record]))
        case "reject":
            counts.rejectedByReviewers += 1
            let why = review["reason"]?.stringValue ?? "no reason given"
            return task.finish(TaskOutcome(rejects: [(task.record, "rejected by reviewers: \(why)")]))
        case "dispute":
            break
        default:
            return task.fail(
                TaskFailure(
                    reason:
                        """
                        gra.review.decision must be accept, reject or dispute, not \
                        \(decision.map { "'\($0)'" } ?? "missing")
                        """
                ))
        }
        let fields: SampleFields
        switch SampleFields.read(task.record, needResponse: true) {
        case .failure(let f): return task.fail(f)
        case .success(let v): fields = v
        }
        let model: ModelEndpoint
        switch chooseAdjudicator(review, id: fields.id) {
        case .failure(let f): return task.fail(f)
        case .success(let m): model = m
        }
        var context = fields.context
        var reviews: [JSONValue] = []
        for v in review["reviews"]?.arrayValue ?? [] {
            guard var o = v.objectValue else { continue }
            let round = o["round"]?.doubleValue ?? 0
            o["round_name"] = .string(round == 1 ? "instruction" : "response")
            if o["comment"] == nil { o["comment"] = .string("") }
            reviews.append(.object(o))
        }
        context.append("reviews", .array(reviews))
        for r in review["rounds"]?.arrayValue ?? [] {
            if let o = r.objectValue, let n = o["round"]?.doubleValue { context.append("round\(Int(n))", .object(o)) }
        }
        let request: ChatRequest
        switch options.requests.request(
            options.prompts[.adjudicate], context: context, schema: RoleSchemas.adjudication,
            schemaName: "gra_adjudication", model: model)
        {
        case .failure(let f): return task.fail(f)
        case .success(let r): request = r
        }
        task.ask(
            request, parseRetries: options.requests.parseRetries,
            parse: RoleRequestMaker.parser(RoleSchemas.adjudication)
        ) { [self] result in
            switch result {
            case .failure(let f): task.fail(f)
            case .success(let answer):
                let o = answer.value.objectValue!
                let ruling = o["decision"]!.stringValue!
                var record = task.record
                record.setGRASection(
                    "adjudication",
                    [
                        "model": .string(model.name), "decision": .string(ruling),
                        "score": o["score"]!, "rationale": o["rationale"]!
                    ])
                if ruling == "accept" {
                    counts.acceptedByAdjudicator += 1
                    task.finish(TaskOutcome(outputs: [record]))
                } else {
                    counts.rejectedByAdjudicator += 1
                    task.finish(
                        TaskOutcome(rejects: [
                            (
                                record,
                                "rejected by the adjudicator (\(model.name)): \(o["rationale"]!.stringValue ?? "")"
                            )
                        ]))
                }
            }
        }
    }

    /// The adjudicator the review named, when it is in the pool; otherwise one drawn by the
    /// same rules (neither author nor reviewer, unless the pool is too small).
    private func chooseAdjudicator(_ review: JSONObject, id: String) -> Result<ModelEndpoint, TaskFailure> {
        let roles = review["roles"]?.objectValue
        if let name = roles?["adjudicator"]?.stringValue, options.roles.adjudicators?.contains(name) ?? true,
            let m = options.pool.model(named: name)
        {
            return .success(m)
        }
        guard !options.pool.models.isEmpty else { return .failure(TaskFailure(reason: "the model pool is empty")) }
        let author = roles?["author"]?.stringValue ?? ""
        let reviewers = (roles?["reviewers"]?.arrayValue ?? []).compactMap(\.stringValue)
        let names = options.roles.adjudicators ?? options.pool.models.map(\.name)
        let (name, rule) = RoleAssignment.chooseAdjudicator(
            RoleAssignment.order(names, recordID: id, seed: options.seed),
            author: author, reviewers: reviewers)
        if let rule, relaxedSaid.insert(rule).inserted {
            engine.diagnostics.warn("role rule relaxed: \(rule) (pool of \(names.count))")
        }
        return .success(options.pool.model(named: name)!)
    }
}
