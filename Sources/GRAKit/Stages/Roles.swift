/// Who plays which part for one record: GRA's random role assignment, made reproducible.
///
/// Each record gets its own deterministic ordering of the pool, from SHA-256 of
/// (seed, record id, model name); the author comes first (unless it is given), reviewers are
/// the next distinct models that are not the author, the adjudicator the next model that is
/// neither. When the pool is too small a rule is relaxed, in this order, and `relaxed` says
/// which: reviewers may include the author, then a model may review twice, then the
/// adjudicator may be a reviewer, then the author.
public struct RoleAssignment: Sendable, Equatable {
    public var author: String
    public var reviewers: [String]
    public var adjudicator: String
    /// The rules that had to give way, in words (empty when the pool was large enough).
    public var relaxed: [String]

    /// The per-record order of `pool`: stable across runs and machines for the same seed.
    public static func order(_ pool: [String], recordID: String, seed: Int) -> [String] {
        pool.map { name -> ([UInt8], String) in (SHA256.hash(Array("\(seed)\u{1F}\(recordID)\u{1F}\(name)".utf8)), name)
        }
        .sorted { $0.0.lexicographicallyPrecedes($1.0) || ($0.0 == $1.0 && $0.1 < $1.1) }
        .map(\.1)
    }

    /// Assigns roles for one record. `author` is the record's generator when it already has
    /// one (review of generated data); nil picks one from the pool. `reviewerPool` and
    /// `adjudicatorPool` (the config's fixed lists) restrict who may play those parts.
    public static func assign(
        pool: [String], recordID: String, seed: Int, reviewers k: Int, author given: String? = nil,
        reviewerPool: [String]? = nil, adjudicatorPool: [String]? = nil
    ) -> RoleAssignment {
        precondition(!pool.isEmpty, "the pool is empty")
        let ordered = order(Array(Set(pool)).sorted(), recordID: recordID, seed: seed)
        let author = given ?? ordered[0]
        let reviewerOrder =
            reviewerPool.map { order(Array(Set($0)).sorted(), recordID: recordID, seed: seed) } ?? ordered
        let adjudicatorOrder =
            adjudicatorPool.map { order(Array(Set($0)).sorted(), recordID: recordID, seed: seed) } ?? ordered
        var relaxed: [String] = []
        var reviewers = Array(reviewerOrder.filter { $0 != author }.prefix(k))
        if reviewers.count < k {
            if reviewerOrder.contains(author) {
                reviewers.append(author)
                relaxed.append("a reviewer is also the author (\(reviewerOrder.count) possible reviewers for \(k))")
            }
            var i = 0
            let cycle = reviewers.isEmpty ? [reviewerOrder.first ?? author] : reviewers
            var repeated = false
            while reviewers.count < k {
                reviewers.append(cycle[i % cycle.count])
                i += 1
                repeated = true
            }
            if repeated {
                relaxed.append("a model reviews more than once (\(reviewerOrder.count) possible reviewers for \(k))")
            }
        }
        let (adjudicator, rule) = chooseAdjudicator(adjudicatorOrder, author: author, reviewers: reviewers)
        if let rule { relaxed.append(rule) }
        return RoleAssignment(author: author, reviewers: reviewers, adjudicator: adjudicator, relaxed: relaxed)
    }

    /// The first model of `ordered` that is neither author nor reviewer; failing that, one that
    /// is not the author, then the first: with the rule that gave way, if any.
    public static func chooseAdjudicator(_ ordered: [String], author: String, reviewers: [String]) -> (
        name: String, relaxed: String?
    ) {
        if let a = ordered.first(where: { $0 != author && !reviewers.contains($0) }) { return (a, nil) }
        if let a = ordered.first(where: { $0 != author }) { return (a, "the adjudicator is also a reviewer") }
        return (ordered.first ?? author, "the adjudicator is the author")
    }
}

/// Role overrides from the config file's `"roles"` object:
/// `{"generators": {"math": ["qwen"], "code": ["coder"]}, "reviewers": ["a", "b", "c"],
/// "adjudicators": ["big"]}` (domain → generator models, other domains use the whole pool;
/// fixed reviewer and adjudicator lists). Names must be models of the pool.
public struct RoleConfig: Sendable, Equatable {
    public var generatorsByDomain: [String: [String]] = [:]
    /// Fixed reviewer list (`"reviewers": [...]`), nil for the whole pool.
    public var reviewers: [String]?
    /// Fixed adjudicator list (`"adjudicators": [...]`), nil for the whole pool.
    public var adjudicators: [String]?

    public init() {}

    public static func load(configPath: String?, pool: ModelPool) throws(GRAError) -> RoleConfig {
        var config = RoleConfig()
        guard let path = configPath else { return config }
        guard let text = readTextFile(path) else { throw GRAError.usage("cannot read --config \(path)") }
        guard case .object(let root)? = try? JSONParser.parse(text) else {
            throw GRAError.usage("\(path): expected a JSON object")
        }
        guard let roles = root["roles"] else { return config }
        guard case .object(let r) = roles else { throw GRAError.usage("\(path): 'roles' must be an object") }
        if let g = r["generators"] {
            guard case .object(let byDomain) = g else {
                throw GRAError.usage("\(path): roles.generators must map domains to lists of model names")
            }
            for f in byDomain.fields {
                guard case .array(let names) = f.value, names.allSatisfy({ $0.stringValue != nil }) else {
                    throw GRAError.usage("\(path): roles.generators.\(f.key) must be a list of model names")
                }
                let list = names.compactMap(\.stringValue)
                for name in list where pool.model(named: name) == nil {
                    throw GRAError.usage(
                        "\(path): roles.generators.\(f.key) names '\(name)', which is not in the model pool")
                }
                config.generatorsByDomain[f.key] = list
            }
        }
        func list(_ key: String) throws(GRAError) -> [String]? {
            guard let v = r[key] else { return nil }
            guard case .array(let names) = v, !names.isEmpty, names.allSatisfy({ $0.stringValue != nil }) else {
                throw GRAError.usage("\(path): roles.\(key) must be a non-empty list of model names")
            }
            let list = names.compactMap(\.stringValue)
            for name in list where pool.model(named: name) == nil {
                throw GRAError.usage("\(path): roles.\(key) names '\(name)', which is not in the model pool")
            }
            return list
        }
        config.reviewers = try list("reviewers")
        config.adjudicators = try list("adjudicators")
        return config
    }
}
