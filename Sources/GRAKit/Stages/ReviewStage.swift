/// What `gra-review` does, as plain values.
public struct ReviewOptions: Sendable {
    public var pool: ModelPool
    public var prompts: PromptSet
    /// Reviewers per record (K).
    public var reviewers = 3
    /// Seed of the role assignment.
    public var seed = 0
    public var thresholds = ReviewRule.Thresholds()
    /// The config's roles (fixed reviewer and adjudicator lists).
    public var roles = RoleConfig()
    public var requests = RoleRequestMaker()
    /// Re-decide from the stored scores with `thresholds`; no model is asked.
    public var rescore = false
    /// Rubric mode: each reviewer also scores the six `RoleSchemas.dimensions` (stored per
    /// review; the decision still uses the overall scores). Its own prompts, so its own cache keys.
    public var dimensions = false
    /// `--neighbours`: round 2 shows each sample's nearest samples already in the dataset and
    /// asks for a novelty score too. Nil: today's round 2, prompts and cache keys unchanged.
    public var neighbours: NeighbourIndex?
    /// Neighbours shown per sample (k).
    public var neighbourCount = 3
    /// With `neighbours` by embeddings: the model that embeds each sample.
    public var neighbourModel: ModelEndpoint?
    /// A neighbour's response is cut to this many characters in the prompt.
    public static let neighbourResponseLimit = 600
    public var io = StageIOOptions()

    public init(pool: ModelPool, prompts: PromptSet) {
        self.pool = pool
        self.prompts = prompts
    }
}

/// GRA's reviewers: K models score the instruction (round 1), then the response (round 2);
/// each round's mean and variance decide accept / reject / dispute (`ReviewRule`). Every record
/// is written, annotated with `gra.review`; nothing is filtered here.
public final class ReviewStage: @unchecked Sendable {
    public let options: ReviewOptions
    private let engine: StageEngine
    private var relaxedSaid: Set<String> = []
    public private(set) var decisions: [ReviewRule.Decision: Int] = [:]

    /// `client`: nil with `rescore` (no model is asked).
    public init(options: ReviewOptions, client: LLMClient?, output: OutputSink, diagnostics: Diagnostics) {
        self.options = options
        engine = StageEngine(
            name: "gra-review", io: options.io, client: client, output: output, diagnostics: diagnostics)
        engine.extraStats = { [unowned self] in
            var o = JSONObject()
            for d in [ReviewRule.Decision.accept, .reject, .dispute] {
                o.append(d.rawValue, .integer(decisions[d] ?? 0))
            }
            return ["decisions": .object(o)]
        }
    }

    public func run() throws(GRAError) -> StageSummary {
        let summary = try engine.run { task in
            if options.rescore { rescore(task) } else { review(task) }
        }
        if summary.read > 0 {
            engine.diagnostics.info(
                """
                decisions: \(decisions[.accept] ?? 0) accept, \(decisions[.reject] ?? 0) reject, \
                \(decisions[.dispute] ?? 0) dispute
                """
            )
        }
        return summary
    }

    /// One reviewer's answer for one round.
    struct Review {
        var model: String
        var round: Int
        var score: JSONValue
        var comment: JSONValue
        var dimensions: JSONValue?
        var novelty: JSONValue?
    }

    private func review(_ task: StageTask) {
        let fields: SampleFields
        switch SampleFields.read(task.record, needResponse: true) {
        case .failure(let f): return task.fail(f)
        case .success(let v): fields = v
        }
        // The author never reviews its own sample; a seed has no author.
        let author = task.record.graSection("origin")?["generator"]?.stringValue
        let roles = RoleAssignment.assign(
            pool: options.pool.models.map(\.name), recordID: fields.id, seed: options.seed,
            reviewers: options.reviewers, author: author ?? "",
            reviewerPool: options.roles.reviewers, adjudicatorPool: options.roles.adjudicators)
        for rule in roles.relaxed where relaxedSaid.insert(rule).inserted {
            engine.diagnostics.warn("role rule relaxed: \(rule)")
        }
        var context = fields.context
        if let domain = task.record["domain"] { context.append("domain", domain) }
        // The sample's nearest neighbours, for round 2 (none found: today's round 2); by
        // embeddings, the sample's own vector first.
        let base = context
        guard let index = options.neighbours else {
            return rounds(task, fields, roles, author: author, context: base, near: [])
        }
        let k = options.neighbourCount
        if options.neighbourModel != nil && !index.usesEmbeddings && !index.entries.isEmpty {
            return task.fail(
                TaskFailure(reason: "dry run: the neighbours' embeddings are not all in the cache, and none is sent"))
        }
        guard index.usesEmbeddings, let model = options.neighbourModel else {
            let near = index.nearest(instruction: fields.instruction, input: fields.input, id: fields.id, k: k)
            return rounds(task, fields, roles, author: author, context: context, near: near)
        }
        task.embed(DedupText.semanticText([fields.instruction, fields.input]), model: model) {
            [self] result in
            switch result {
            case .failure(let f): task.fail(f)
            case .success(let v):
                let near = index.nearest(vector: v, id: fields.id, k: k)
                rounds(task, fields, roles, author: author, context: base, near: near)
            }
        }
    }

    /// The two rounds, with the neighbours `near` shown in round 2 when there are some.
    private func rounds(
        _ task: StageTask, _ fields: SampleFields, _ roles: RoleAssignment, author: String?, context: JSONObject,
        near: [(entry: Int, similarity: Double)]
    ) {
        var context = context
        if let index = options.neighbours, !near.isEmpty {
            context.append(
                "neighbours",
                .array(
                    near.enumerated().map { i, n in
                        let e = index.entries[n.entry]
                        let limit = ReviewOptions.neighbourResponseLimit
                        let response = e.response.count > limit ? String(e.response.prefix(limit)) + "…" : e.response
                        return .object([
                            "n": .integer(i + 1), "instruction": .string(e.instruction), "input": .string(e.input),
                            "response": .string(response)
                        ])
                    }))
        }
        let dims = options.dimensions
        let round1: (PromptSet.Name, JSONSchema) =
            dims
            ? (.reviewInstructionDimensions, RoleSchemas.reviewWithDimensions)
            : (.reviewInstruction, RoleSchemas.review)
        let round2: (PromptSet.Name, JSONSchema) =
            switch (dims, !near.isEmpty) {
            case (false, false): (.reviewResponse, RoleSchemas.review)
            case (true, false): (.reviewResponseDimensions, RoleSchemas.reviewWithDimensions)
            case (false, true): (.reviewResponseNeighbours, RoleSchemas.reviewWithNovelty)
            case (true, true): (.reviewResponseDimensionsNeighbours, RoleSchemas.reviewWithDimensionsAndNovelty)
            }
        let shown: [JSONValue] = near.map { n in
            .object([
                "id": .string(options.neighbours!.entries[n.entry].id), "similarity": roundedNumber(n.similarity)
            ])
        }
        askRound(1, round1.0, round1.1, context, roles.reviewers, task) { [self] first in
            let stats1 = ReviewRule.RoundStatistics(scores: first.map { $0.score.doubleValue! })
            if ReviewRule.rejectsInstruction(stats1, options.thresholds) {
                return finish(task, fields, roles, author: author, reviews: first, neighbours: [])
            }
            askRound(2, round2.0, round2.1, context, roles.reviewers, task) { [self] second in
                finish(task, fields, roles, author: author, reviews: first + second, neighbours: shown)
            }
        }
    }

    /// Asks every reviewer about one round; `done` gets their reviews in reviewer order.
    private func askRound(
        _ round: Int, _ prompt: PromptSet.Name, _ schema: JSONSchema, _ context: JSONObject, _ reviewers: [String],
        _ task: StageTask, done: @escaping ([Review]) -> Void
    ) {
        var requests: [ChatRequest] = []
        var seen: [String: Int] = [:]
        for name in reviewers {
            guard let model = options.pool.model(named: name) else {
                return task.fail(TaskFailure(reason: "reviewer '\(name)' is not in the pool"))
            }
            // A model that reviews twice (small pool) answers as two samples, not one cached reply.
            let index = seen[name, default: 0]
            seen[name] = index + 1
            switch options.requests.request(
                options.prompts[prompt], context: context, schema: schema,
                schemaName: "gra_review", model: model, sampleIndex: index)
            {
            case .failure(let f): return task.fail(f)
            case .success(let r): requests.append(r)
            }
        }
        let group = ResultGather<(value: JSONValue, reply: ChatReply)>(count: requests.count) { results in
            var reviews: [Review] = []
            for (name, result) in zip(reviewers, results) {
                switch result {
                case .failure(var f):
                    f.extra["round"] = .integer(round)
                    return task.fail(f)
                case .success(let a):
                    let o = a.value.objectValue!
                    reviews.append(
                        Review(
                            model: name, round: round, score: o["score"]!, comment: o["comment"]!,
                            dimensions: o["dimensions"], novelty: o["novelty"]))
                }
            }
            done(reviews)
        }
        let parse = RoleRequestMaker.parser(schema)
        for (i, r) in requests.enumerated() {
            task.ask(r, parseRetries: options.requests.parseRetries, parse: parse) { group.receive(i, $0) }
        }
    }

    private func finish(
        _ task: StageTask, _ fields: SampleFields, _ roles: RoleAssignment, author: String?, reviews: [Review],
        neighbours: [JSONValue]
    ) {
        var section = JSONObject()
        var r = JSONObject()
        r.append("author", author.map { .string($0) } ?? .null)
        r.append("reviewers", .array(roles.reviewers.map { .string($0) }))
        r.append("adjudicator", .string(roles.adjudicator))
        section.append("roles", .object(r))
        section.append("seed", .integer(options.seed))
        // The neighbours round 2 showed, when it did.
        if !neighbours.isEmpty { section.append("neighbours", .array(neighbours)) }
        section.append(
            "reviews",
            .array(
                reviews.map { v in
                    var o: JSONObject = ["model": .string(v.model), "round": .integer(v.round), "score": v.score]
                    if let n = v.novelty { o.append("novelty", n) }
                    o.append("comment", v.comment)
                    if let d = v.dimensions { o.append("dimensions", d) }
                    return .object(o)
                }))
        var record = task.record
        record.ensureID(fields)
        switch decide(section, reviews.map { ($0.round, $0.score.doubleValue!) }) {
        case .failure(let f): return task.fail(f)
        case .success(let decided):
            record.setGRASection("review", decided)
            task.finish(TaskOutcome(outputs: [record]))
        }
    }

    /// Adds the per-round statistics and the decision to a review section.
    private func decide(_ section: JSONObject, _ scores: [(round: Int, score: Double)]) -> Result<
        JSONObject, TaskFailure
    > {
        let round1 = scores.filter { $0.round == 1 }.map(\.score)
        let round2 = scores.filter { $0.round == 2 }.map(\.score)
        guard !round1.isEmpty else { return .failure(TaskFailure(reason: "gra.review has no round-1 scores")) }
        let s1 = ReviewRule.RoundStatistics(scores: round1)
        let s2 = round2.isEmpty ? nil : ReviewRule.RoundStatistics(scores: round2)
        if s2 == nil && !ReviewRule.rejectsInstruction(s1, options.thresholds) {
            return .failure(
                TaskFailure(
                    reason:
                        """
                        round 2 was never asked (round 1 rejected the instruction under the earlier thresholds); \
                        rerun gra-review without --rescore to ask it
                        """
                ))
        }
        let verdict = ReviewRule.decide(round1: s1, round2: s2, thresholds: options.thresholds)
        decisions[verdict.decision, default: 0] += 1
        var out = section
        for key in ["rounds", "min_score", "max_variance", "decision", "reason"] { out[key] = nil }
        var rounds: [JSONValue] = [
            .object(["round": .integer(1), "mean": roundedNumber(s1.mean), "variance": roundedNumber(s1.variance)])
        ]
        if let s2 {
            rounds.append(
                .object(["round": .integer(2), "mean": roundedNumber(s2.mean), "variance": roundedNumber(s2.variance)]))
        }
        out.append("rounds", .array(rounds))
        out.append("min_score", roundedNumber(options.thresholds.minScore))
        out.append("max_variance", roundedNumber(options.thresholds.maxVariance))
        out.append("decision", .string(verdict.decision.rawValue))
        out.append("reason", .string(verdict.reason))
        return .success(out)
    }

    /// `--rescore`: the decision again from the stored scores, with this run's thresholds.
    private func rescore(_ task: StageTask) {
        guard let section = task.record.graSection("review") else {
            return task.fail(TaskFailure(reason: "no gra.review to rescore (run gra-review without --rescore first)"))
        }
        guard case .array(let reviews)? = section["reviews"] else {
            return task.fail(TaskFailure(reason: "gra.review.reviews is missing or not an array"))
        }
        var scores: [(round: Int, score: Double)] = []
        for (i, v) in reviews.enumerated() {
            guard let o = v.objectValue, let round = o["round"]?.doubleValue, round == 1 || round == 2,
                let score = o["score"]?.doubleValue, (1...10).contains(score)
            else {
                return task.fail(
                    TaskFailure(reason: "gra.review.reviews[\(i)] needs a round (1 or 2) and a score from 1 to 10"))
            }
            scores.append((Int(round), score))
        }
        switch decide(section, scores) {
        case .failure(let f): task.fail(f)
        case .success(let decided):
            var record = task.record
            record.setGRASection("review", decided)
            task.finish(TaskOutcome(outputs: [record]))
        }
    }
}
