/// What `gra-generate` does, as plain values.
public struct GenerateOptions: Sendable {
    public var pool: ModelPool
    public var prompts: PromptSet
    /// Seed of the role assignment and of the few-shot draws.
    public var seed = 0
    /// New samples per seed.
    public var perSeed = 1
    /// Other seeds of the same domain shown as examples.
    public var shots = 2
    /// Seeds of a domain that are shown the same draw of examples, so that their prompts share
    /// one prefix the server's prefix cache can reuse (1: a fresh draw for every seed).
    public var shotReuse = 16
    /// Domain for seeds that have none (instead of classifying them).
    public var domain: String?
    /// The domains a seed may be classified into.
    public var domains = ["math", "code", "reasoning", "general"]
    /// Generator models per domain (from the config); domains not listed use the whole pool.
    public var generatorsByDomain: [String: [String]] = [:]
    /// Also write the seeds (marked as such).
    public var keepSeeds = false
    /// The GRA round, recorded in `gra.origin`.
    public var round: Int?
    /// Seeds kept per domain for few-shot draws (a reservoir sample of what has been read).
    public var reservoirSize = 64
    public var requests = RoleRequestMaker()
    public var io = StageIOOptions()

    public init(pool: ModelPool, prompts: PromptSet) {
        self.pool = pool
        self.prompts = prompts
    }
}

/// GRA's authors: for each seed, its domain (given or classified), the knowledge it is about
/// (given or extracted), k same-domain examples, then `perSeed` new samples, each from a
/// generator drawn reproducibly from the pool and parsed strictly as {instruction, input,
/// response}.
///
/// Few-shot examples are drawn from a bounded reservoir of the seeds read before this one, in
/// input order: a seed's shots depend only on the seeds before it, the `--seed`, the reservoir
/// size and `shotReuse`, never on which reply came back first. One draw serves `shotReuse`
/// consecutive seeds of a domain (sooner redrawn while it holds fewer than `shots`), so their
/// prompts share the static part and the examples as one prefix.
public final class GenerateStage: @unchecked Sendable {
    public let options: GenerateOptions
    private let engine: StageEngine

    /// One seed's work in progress.
    final class Work: @unchecked Sendable {
        let task: StageTask
        let fields: SampleFields
        var domain: String?
        var keywords: [String]?
        var summary: String?
        var extracted = false
        var shots: [Shot]?
        var failed = false
        var started = false
        init(task: StageTask, fields: SampleFields) {
            self.task = task
            self.fields = fields
        }
    }

    struct Shot {
        var id: String
        var context: JSONObject
    }

    private var work: [Int: Work] = [:]
    /// Domains resolved per sequence number (nil: the seed failed before it had one).
    private var resolved: [Int: String?] = [:]
    /// The first sequence number whose domain is not resolved yet.
    private var frontier = 0
    private var reservoirs: [String: (seen: Int, shots: [Shot])] = [:]
    /// Per domain, the examples drawn last, how many seeds were shown them, and the draw's number.
    private var draws: [String: (shots: [Shot], uses: Int, number: Int)] = [:]
    public private(set) var classified = 0
    public private(set) var extracted = 0

    public init(options: GenerateOptions, client: LLMClient, output: OutputSink, diagnostics: Diagnostics) {
        self.options = options
        engine = StageEngine(
            name: "gra-generate", io: options.io, client: client, output: output, diagnostics: diagnostics)
        engine.extraStats = { [unowned self] in ["classified": .integer(classified), "extracted": .integer(extracted)] }
    }

    public func run() throws(GRAError) -> StageSummary {
        try engine.run { task in start(task) }
    }

    private func start(_ task: StageTask) {
        let fields: SampleFields
        switch SampleFields.read(task.record, needResponse: true) {
        case .failure(let f):
            task.fail(f)
            return resolve(task.seq, nil)
        case .success(let v): fields = v
        }
        let w = Work(task: task, fields: fields)
        work[task.seq] = w
        let author = authorModel(for: fields.id, domain: nil)

        // Knowledge: given, or one extraction call.
        switch Knowledge.stored(in: task.record) {
        case .failure(let f):
            fail(w, f)
        case .success(let k?):
            w.keywords = k.keywords
            w.summary = k.summary
        case .success(nil):
            Knowledge.extract(fields, model: author, prompts: options.prompts, requests: options.requests, task: task) {
                [self] result in
                switch result {
                case .failure(let f):
                    fail(w, f)
                case .success(let k):
                    w.keywords = k.keywords
                    w.summary = k.summary
                    w.extracted = true
                    extracted += 1
                    generateIfReady(w)
                }
            }
        }

        // Domain: the record's, --domain, or one classification call.
        if w.failed { return resolve(task.seq, nil) }
        if let d = task.record["domain"]?.stringValue, !d.isEmpty {
            resolve(task.seq, d)
        } else if let d = options.domain {
            resolve(task.seq, d)
        } else {
            var context = fields.context
            context.append("domain_list", .string(options.domains.joined(separator: ", ")))
            let schema = RoleSchemas.domain(options.domains)
            switch options.requests.request(
                options.prompts[.classify], context: context, schema: schema,
                schemaName: "gra_domain", model: author)
            {
            case .failure(let f):
                fail(w, f)
                resolve(task.seq, nil)
            case .success(let r):
                task.ask(r, parseRetries: options.requests.parseRetries, parse: RoleRequestMaker.parser(schema)) {
                    [self] result in
                    switch result {
                    case .failure(var f):
                        f.extra["step"] = .string("domain classification")
                        fail(w, f)
                        resolve(task.seq, nil)
                    case .success(let a):
                        classified += 1
                        resolve(task.seq, a.value.objectValue!["domain"]!.stringValue!)
                    }
                }
            }
        }
    }

    private func fail(_ w: Work, _ failure: TaskFailure) {
        guard !w.failed, !w.started else { return }
        w.failed = true
        work[w.task.seq] = nil
        w.task.fail(failure)
    }

    /// Records a seed's domain and moves the frontier: each seed, in input order, draws its
    /// shots from the reservoir as the seeds before it left it, then enters the reservoir.
    private func resolve(_ seq: Int, _ domain: String?) {
        resolved[seq] = .some(domain)
        while let entry = resolved.removeValue(forKey: frontier) {
            let seqHere = frontier
            frontier += 1
            guard let domain = entry, let w = work[seqHere] else { continue }
            w.domain = domain
            w.shots = drawShots(domain, for: w.fields.id)
            admit(w, domain)
            generateIfReady(w)
        }
    }

    /// The domain's current draw, redrawn after `shotReuse` seeds or while it is short of
    /// `shots` and the reservoir has more; a seed is never shown an example with its own id.
    private func drawShots(_ domain: String, for id: String) -> [Shot] {
        guard options.shots > 0, let pool = reservoirs[domain]?.shots else { return [] }
        var draw = draws[domain] ?? ([], Int.max, 0)
        let short = draw.shots.count < min(options.shots, pool.count)
        if draw.uses >= max(1, options.shotReuse) || short {
            let number = draw.number + 1
            let shots = pool.map {
                (SHA256.hash(Array("\(options.seed)\u{1F}shot\u{1F}\(domain)\u{1F}\(number)\u{1F}\($0.id)".utf8)), $0)
            }
            .sorted { $0.0.lexicographicallyPrecedes($1.0) }
            .prefix(options.shots + 1)
            .map(\.1)
            draw = (shots, 0, number)
        }
        draw.uses += 1
        draws[domain] = draw
        // One spare example stands in for a seed that is in the draw (duplicate ids).
        return Array(draw.shots.filter { $0.id != id }.prefix(options.shots))
    }

    /// Reservoir sampling (deterministic: the slot comes from a hash of the seed and the count).
    private func admit(_ w: Work, _ domain: String) {
        let shot = Shot(id: w.fields.id, context: w.fields.context)
        var r = reservoirs[domain] ?? (0, [])
        r.seen += 1
        if r.shots.count < options.reservoirSize {
            r.shots.append(shot)
        } else {
            let h = SHA256.hash(Array("\(options.seed)\u{1F}reservoir\u{1F}\(domain)\u{1F}\(r.seen)".utf8))
            let slot = h.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } % UInt64(r.seen)
            if slot < UInt64(options.reservoirSize) { r.shots[Int(slot)] = shot }
        }
        reservoirs[domain] = r
    }

    /// The generator of a sample: drawn from the domain's generators (config) or the pool.
    private func authorModel(for id: String, domain: String?) -> ModelEndpoint {
        var names = options.pool.models.map(\.name)
        if let domain, let only = options.generatorsByDomain[domain], !only.isEmpty {
            names = only.filter { options.pool.model(named: $0) != nil }
            if names.isEmpty { names = options.pool.models.map(\.name) }
        }
        let name = RoleAssignment.order(names, recordID: id, seed: options.seed)[0]
        return options.pool.model(named: name)!
    }

    private func generateIfReady(_ w: Work) {
        guard !w.failed, !w.started, let domain = w.domain, let shots = w.shots, let keywords = w.keywords,
            let summary = w.summary
        else { return }
        w.started = true
        work[w.task.seq] = nil
        let n = max(1, options.perSeed)
        let task = w.task
        let keepSeeds = options.keepSeeds
        let seed = keepSeeds ? seedRecord(w, domain: domain) : nil
        let samples = ResultGather<JSONObject>(count: n) { results in
            var outcome = TaskOutcome(outputs: seed.map { [$0] } ?? [])
            for r in results {
                switch r {
                case .success(let record): outcome.outputs.append(record)
                case .failure(let f): outcome.failures.append(f)
                }
            }
            task.finish(outcome)
        }
        for i in 0..<n {
            let sampleID = "\(w.fields.id).g\(i)"
            let model = authorModel(for: sampleID, domain: domain)
            var context = JSONObject()
            context.append("seed", .object(w.fields.context))
            context.append("domain", .string(domain))
            context.append("keywords", .string(keywords.joined(separator: ", ")))
            context.append("summary", .string(summary))
            context.append("shots", .array(shots.map { .object($0.context) }))
            context.append("has_shots", .bool(!shots.isEmpty))
            context.append("variant", .integer(i + 1))
            context.append("variants", .integer(n))
            let request: ChatRequest
            switch options.requests.request(
                options.prompts[.generate], context: context, schema: RoleSchemas.sample,
                schemaName: "gra_sample", model: model, sampleIndex: i)
            {
            case .failure(var f):
                f.extra["sample_id"] = .string(sampleID)
                samples.receive(i, .failure(f))
                continue
            case .success(let r): request = r
            }
            task.ask(
                request, parseRetries: options.requests.parseRetries, parse: RoleRequestMaker.parser(RoleSchemas.sample)
            ) { [self] result in
                switch result {
                case .failure(var f):
                    f.extra["sample_id"] = .string(sampleID)
                    samples.receive(i, .failure(f))
                case .success(let a):
                    samples.receive(
                        i,
                        .success(
                            sampleRecord(
                                w, id: sampleID, index: i, sample: a.value.objectValue!, model: model.name,
                                domain: domain, keywords: keywords, summary: summary, shots: shots,
                                promptVersion: request.promptVersion ?? "")))
                }
            }
        }
    }

    /// Fields a generated sample takes from the sample, not from its seed.
    private static let ownedFields: Set<String> = [
        "id", "domain", "instruction", "input", "response", "output", "keywords", "summary", "gra", "conversations",
        "messages", "history", "system"
    ]

    private func sampleRecord(
        _ w: Work, id: String, index: Int, sample: JSONObject, model: String, domain: String,
        keywords: [String], summary: String, shots: [Shot], promptVersion: String
    ) -> JSONObject {
        var r = JSONObject()
        r.append("id", .string(id))
        r.append("domain", .string(domain))
        r.append("instruction", sample["instruction"]!)
        r.append("input", sample["input"] ?? .string(""))
        r.append("response", sample["response"]!)
        // The seed's own fields (a user's "source", …) carry over to what it begets.
        for f in w.task.record.fields where !GenerateStage.ownedFields.contains(f.key) { r.append(f.key, f.value) }
        var origin = JSONObject()
        origin.append("seed", .string(w.fields.id))
        origin.append("sample", .integer(index))
        origin.append("generator", .string(model))
        origin.append("domain", .string(domain))
        if let round = options.round { origin.append("round", .integer(round)) }
        origin.append("shots", .array(shots.map { .string($0.id) }))
        origin.append("keywords", .array(keywords.map { .string($0) }))
        origin.append("summary", .string(summary))
        origin.append("prompt_version", .string(promptVersion))
        r.setGRASection("origin", origin)
        return r
    }

    /// The seed as passed through by `--keep-seeds`: its id, domain and knowledge filled in.
    private func seedRecord(_ w: Work, domain: String) -> JSONObject {
        var r = w.task.record
        r.ensureID(w.fields)
        if r["domain"]?.stringValue == nil { r["domain"] = .string(domain) }
        if w.extracted {
            r["keywords"] = .array((w.keywords ?? []).map { .string($0) })
            r["summary"] = .string(w.summary ?? "")
        }
        var origin = r.graSection("origin") ?? JSONObject()
        origin["is_seed"] = .bool(true)
        if let round = options.round, origin["round"] == nil { origin["round"] = .integer(round) }
        r.setGRASection("origin", origin)
        return r
    }
}
