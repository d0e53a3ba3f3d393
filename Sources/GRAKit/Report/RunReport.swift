import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The numbers `gra-report` shows for a run directory written by `bin/gra-pipeline`: the funnel
/// per round, the rejection reasons, review scores, each reviewer model's calibration, the
/// domain mix and lengths of seeds and final data, cost and speed from the stages' `--stats`,
/// and a few records to read. `load` reads each file once, a record at a time, so a run of
/// millions of samples takes the memory of its ids, not of its records.
public struct RunReport: Sendable {
    /// One GRA round: how many records reached each step (docs: man gra-report(1), FUNNEL).
    public struct Round: Sendable, Equatable {
        public var number: Int
        public var seeds = 0
        public var generated = 0
        public var generateErrors = 0
        public var reviewAccept = 0
        public var reviewReject = 0
        public var reviewDispute = 0
        public var reviewErrors = 0
        public var accepted = 0
        public var acceptedByAdjudicator = 0
        public var rejectedByReviewers = 0
        public var rejectedByAdjudicator = 0
        public var adjudicateErrors = 0
        /// Dropped by gra-dedup, per method (exact, minhash, semantic, against).
        public var dedupDropped: [String: Int] = [:]
        public var dedupErrors = 0
        public var kept = 0
        public init(number: Int) { self.number = number }

        public var reviewed: Int { reviewAccept + reviewReject + reviewDispute }
    }

    /// How one reviewer model judged, against its committees and the final decisions.
    public struct Calibration: Sendable, Equatable {
        /// Scores it gave.
        public var reviews = 0
        /// Sum over its scores of (its score − the mean of all reviewers' scores for that
        /// record and round).
        public var offsetSum = 0.0
        /// Records with a final decision (accepted or rejected) that it scored.
        public var votes = 0
        /// … where its own vote (every score it gave ≥ the record's min_score: accept) was the
        /// final decision.
        public var agreements = 0
        /// Disputed rounds it sat in that had one reviewer farthest from the mean.
        public var disputes = 0
        /// … where that reviewer was this model.
        public var outliers = 0
        /// Review requests to this model, and replies that were not the JSON asked for (the
        /// stage's --stats: requests and unparsed_replies).
        public var requests = 0
        public var unparsed = 0
        public init() {}

        public var meanOffset: Double? { reviews > 0 ? offsetSum / Double(reviews) : nil }
        public var agreement: Double? { votes > 0 ? Double(agreements) / Double(votes) : nil }
        public var outlierRate: Double? { disputes > 0 ? Double(outliers) / Double(disputes) : nil }
        public var unparsedRate: Double? { requests > 0 ? Double(unparsed) / Double(requests) : nil }
    }

    /// A model's requests and tokens over every stage and round (from the --stats files).
    public struct Cost: Sendable, Equatable {
        public var requests = 0
        public var cacheHits = 0
        public var retries = 0
        public var failures = 0
        public var promptTokens = 0
        public var completionTokens = 0
        public init() {}
    }

    /// One model's latency in one stage of one round.
    public struct Latency: Sendable, Equatable {
        public var round: Int
        public var stage: String
        public var model: String
        public var requests: Int
        public var p50: Double?
        public var p95: Double?
    }

    /// A record to read in the sample browser, with why it is shown.
    public struct Sample: Sendable, Equatable {
        public var kind: String
        public var round: Int
        public var reason: String?
        public var record: JSONObject
    }

    /// Lower edges, in characters, of the length histograms' bins (the last is open).
    public static let lengthBins = [0, 50, 100, 200, 500, 1000, 2000, 5000]
    /// Samples shown per kind (accepted, rejected, disputed).
    public static let samplesPerKind = 3

    /// The run directory, or the files read (`load(files:)`).
    public var directory: String
    /// Read from files given one by one rather than from a run directory.
    public var fromFiles = false
    public var rounds: [Round] = []
    /// Rejections and errors grouped by reason ("rejected by reviewers: response rejected in
    /// round 2", "rejected by the adjudicator (MODEL)", "duplicate (minhash)", errors by stage).
    public var reasons: [String: Int] = [:]
    /// Review round (1: the instruction, 2: the response) → counts of the scores 1...10.
    public var scores: [Int: [Int]] = [:]
    /// Model → review round → counts of the scores 1...10.
    public var scoresByModel: [String: [Int: [Int]]] = [:]
    public var calibration: [String: Calibration] = [:]
    public var seedDomains: [String: Int] = [:]
    public var finalDomains: [String: Int] = [:]
    /// "seeds instruction", "seeds response", "final instruction", "final response" → counts per
    /// `lengthBins` bin.
    public var lengths: [String: [Int]] = [:]
    public var costs: [String: Cost] = [:]
    public var latencies: [Latency] = []
    /// RUN/stats.json as bin/gra-pipeline wrote it (requests, tokens per sample, ...).
    public var pipelineStats: JSONObject?
    public var samples: [Sample] = []
    /// Instructions sampled for the embedding map, per set ("seeds", "generated", "final", or
    /// "records" for files), when `load` was asked for them.
    public var mapTexts: [String: TextSample] = [:]
    /// The embedding map, when gra-report was given a model to embed with.
    public var map: EmbeddingMap?
    public var seeds = 0
    public var final = 0
    /// A running mean.
    public struct Mean: Sendable, Equatable {
        public var sum = 0.0
        public var count = 0
        public var value: Double? { count > 0 ? sum / Double(count) : nil }
        mutating func add(_ x: Double) {
            sum += x
            count += 1
        }
    }
    /// gra-review --dimensions: review round → domain → dimension → its scores' mean.
    public var dimensions: [Int: [String: [String: Mean]]] = [:]

    /// A round's weakest dimension in a domain: the lowest mean (ties: the first in
    /// `RoleSchemas.dimensions` order, then by name).
    public func weakestDimension(round: Int, domain: String) -> (name: String, mean: Double)? {
        guard let dims = dimensions[round]?[domain] else { return nil }
        let order = RoleSchemas.dimensions
        func rank(_ name: String) -> Int { order.firstIndex(of: name) ?? order.count }
        return dims.compactMap { d in d.value.value.map { (d.key, $0) } }
            .min { ($0.1, rank($0.0), $0.0) < ($1.1, rank($1.0), $1.0) }
    }

    /// gra.ifd scores (gra-ifd) per set: "seeds", "final".
    public var ifd: [String: [Double]] = [:]
    /// Upper bounds of the IFD histogram's bins (the last bin holds the rest).
    public static let ifdBins = stride(from: 0.1, through: 1.5, by: 0.1).map { ($0 * 10).rounded() / 10 }

    /// Count, mean and median of a set's IFD scores; nil when none was scored.
    public func ifdSummary(_ set: String) -> (count: Int, mean: Double, median: Double)? {
        guard let xs = ifd[set], !xs.isEmpty else { return nil }
        let sorted = xs.sorted()
        let mid = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        return (xs.count, xs.reduce(0, +) / Double(xs.count), median)
    }

    /// How much harder the final data is than the seeds: the change of the mean IFD, in percent
    /// (the GRA paper reports +14.58 %); nil unless both sets were scored.
    public var ifdChangePercent: Double? {
        guard let s = ifdSummary("seeds"), let f = ifdSummary("final"), s.mean > 0 else { return nil }
        return (f.mean / s.mean - 1) * 100
    }

    /// A set's IFD scores per bin of `ifdBins` (and one more for the rest).
    public func ifdHistogram(_ set: String) -> [Int] {
        var counts = Array(repeating: 0, count: Self.ifdBins.count + 1)
        for x in ifd[set] ?? [] { counts[Self.ifdBins.firstIndex { x < $0 } ?? Self.ifdBins.count] += 1 }
        return counts
    }

    public init(directory: String) { self.directory = directory }

    // MARK: - Reading a run directory

    /// Reads RUN/seeds.ndjson, RUN/round-N/… and RUN/dataset.ndjson (see bin/gra-pipeline), and
    /// RUN/seeds.ifd.ndjson and RUN/dataset.ifd.ndjson when gra-ifd wrote them. A file a stage did
    /// not write (no errors, say) counts as empty.
    /// `mapPoints` > 0 also samples that many instructions per set for the embedding map.
    public static func load(runDirectory dir: String, mapPoints: Int = 0) throws(GRAError) -> RunReport {
        var report = RunReport(directory: dir)
        report.mapPoints = mapPoints
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw GRAError.noInput("\(dir): not a run directory (bin/gra-pipeline --run DIR writes one)")
        }
        guard FileManager.default.fileExists(atPath: dir + "/seeds.ndjson") else {
            throw GRAError.noInput("\(dir): no seeds.ndjson: not a run directory written by bin/gra-pipeline")
        }
        try InputFile.forEachRecord(dir + "/seeds.ndjson") { (o) throws(GRAError) in
            report.seeds += 1
            report.count(o, domains: \.seedDomains, lengths: "seeds")
            report.sampleForMap(o, "seeds")
        }
        var number = 1
        var previousKept = report.seeds
        while FileManager.default.fileExists(atPath: "\(dir)/round-\(number)") {
            var round = Round(number: number)
            round.seeds = previousKept
            try report.readRound(&round, in: "\(dir)/round-\(number)")
            report.rounds.append(round)
            previousKept = round.kept
            number += 1
        }
        try InputFile.forEachRecord(dir + "/dataset.ndjson") { (o) throws(GRAError) in
            report.final += 1
            report.count(o, domains: \.finalDomains, lengths: "final")
            report.sampleForMap(o, "final")
        }
        // gra-ifd's scores, written beside the seeds and the dataset (bin/gra-pipeline --ifd).
        for (set, file) in [("seeds", "seeds"), ("final", "dataset")] {
            let path = "\(dir)/\(file).ifd.ndjson"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            var scores: [Double] = []
            try InputFile.forEachRecord(path) { (o) throws(GRAError) in
                if let x = o.graSection("ifd")?["score"]?.doubleValue, x.isFinite { scores.append(x) }
            }
            report.ifd[set] = scores
        }
        if let stats = try readJSON(dir + "/stats.json") { report.pipelineStats = stats }
        return report
    }

    // MARK: - Reading files

    /// Reads gra NDJSON files (`-`: standard input) as one set instead of a run directory:
    /// stage outputs, and the entries of errors and rejects files, each record once. The funnel
    /// counts what the records show (gra.origin: generated; gra.review.decision; gra.adjudication:
    /// accepted or rejected by the adjudicator; a rejects entry: rejected by the reviewers or
    /// dropped by gra-dedup; an errors entry: an error), the calibration takes the adjudicator's
    /// decision, else the reviewers' accept or reject, as final; domains and lengths are the
    /// records' (as "final"). There are no seeds.
    public static func load(files: [String], mapPoints: Int = 0) throws(GRAError) -> RunReport {
        var report = RunReport(directory: files.joined(separator: " "))
        report.fromFiles = true
        report.mapPoints = mapPoints
        var round = Round(number: 1)
        for path in files {
            try InputFile.forEachRecord(path == "-" ? "/dev/stdin" : path) { (o) throws(GRAError) in
                report.take(o, into: &round)
            }
        }
        report.rounds = [round]
        return report
    }

    /// One line of a file given to `load(files:)`.
    mutating func take(_ o: JSONObject, into round: inout Round) {
        if let stage = o["stage"]?.stringValue, o["reason"] != nil, o["record"] != nil || o["where"] != nil {
            // An errors entry carries attempts (or status); a rejects entry does not.
            if o["attempts"] != nil || o["status"] != nil {
                reason(o, stage: stage)
                switch stage {
                case "gra-generate": round.generateErrors += 1
                case "gra-review": round.reviewErrors += 1
                case "gra-adjudicate": round.adjudicateErrors += 1
                default: round.dedupErrors += 1
                }
                return
            }
            let why = o["reason"]?.stringValue ?? ""
            let record = o["record"]?.objectValue ?? JSONObject()
            if stage == "gra-dedup" {
                let method = o["method"]?.stringValue ?? "?"
                round.dedupDropped[method, default: 0] += 1
                reasons["duplicate (\(method))", default: 0] += 1
            } else {
                reasons[Self.group(why), default: 0] += 1
                if why.hasPrefix("rejected by the adjudicator") {
                    round.rejectedByAdjudicator += 1
                } else {
                    round.rejectedByReviewers += 1
                }
                if record.graSection("origin") != nil { round.generated += 1 }
                if let review = record.graSection("review") {
                    let adjudicated = record.graSection("adjudication")
                    countDecision(review, in: &round)
                    countReviews(review, decision: false, domain: record["domain"]?.stringValue)
                    addSample(adjudicated == nil ? "rejected" : "disputed", round: 1, reason: why, record: record)
                }
            }
            return
        }
        if o.graSection("origin") != nil { round.generated += 1 }
        if let review = o.graSection("review") {
            let reviewers = review["decision"]?.stringValue
            countDecision(review, in: &round)
            var decision: Bool? = reviewers == "accept" ? true : reviewers == "reject" ? false : nil
            if let ruling = o.graSection("adjudication")?["decision"]?.stringValue {
                decision = ruling == "accept"
                if decision == true {
                    round.accepted += 1
                    round.acceptedByAdjudicator += 1
                } else {
                    round.rejectedByAdjudicator += 1
                }
                addSample("disputed", round: 1, reason: nil, record: o)
            } else if decision == true {
                round.accepted += 1
                addSample("accepted", round: 1, reason: nil, record: o)
            }
            countReviews(review, decision: decision, domain: o["domain"]?.stringValue)
        }
        round.kept += 1
        final += 1
        count(o, domains: \.finalDomains, lengths: "final")
        sampleForMap(o, "records")
    }

    /// The reviewers' decision of one record, into the funnel.
    func countDecision(_ review: JSONObject, in round: inout Round) {
        switch review["decision"]?.stringValue {
        case "accept": round.reviewAccept += 1
        case "reject": round.reviewReject += 1
        case "dispute": round.reviewDispute += 1
        default: break
        }
    }

    private mutating func readRound(_ round: inout Round, in dir: String) throws(GRAError) {
        let n = round.number
        try InputFile.forEachRecord(dir + "/generated.ndjson") { (o) throws(GRAError) in
            round.generated += 1
            sampleForMap(o, "generated")
        }
        round.generateErrors = try countErrors(dir + "/errors-generate.ndjson", stage: "gra-generate")
        round.reviewErrors = try countErrors(dir + "/errors-review.ndjson", stage: "gra-review")
        round.adjudicateErrors = try countErrors(dir + "/errors-adjudicate.ndjson", stage: "gra-adjudicate")
        round.dedupErrors = try countErrors(dir + "/errors-dedup.ndjson", stage: "gra-dedup")

        // The final decision of each record: accepted (by the reviewers or the adjudicator) or
        // rejected; the calibration compares each reviewer's vote with it.
        var decided: [String: Bool] = [:]
        try InputFile.forEachRecord(dir + "/accepted.ndjson") { (o) throws(GRAError) in
            round.accepted += 1
            let adjudicated = o.graSection("adjudication") != nil
            if adjudicated { round.acceptedByAdjudicator += 1 }
            if let id = o["id"]?.stringValue { decided[id] = true }
            addSample(adjudicated ? "disputed" : "accepted", round: n, reason: nil, record: o)
        }
        try InputFile.forEachRecord(dir + "/rejects.ndjson") { (o) throws(GRAError) in
            let why = o["reason"]?.stringValue ?? ""
            let record = o["record"]?.objectValue ?? JSONObject()
            if why.hasPrefix("rejected by the adjudicator") {
                round.rejectedByAdjudicator += 1
                addSample("disputed", round: n, reason: why, record: record)
            } else {
                round.rejectedByReviewers += 1
                addSample("rejected", round: n, reason: why, record: record)
            }
            reasons[Self.group(why), default: 0] += 1
            if let id = (o["id"] ?? record["id"])?.stringValue { decided[id] = false }
        }
        try InputFile.forEachRecord(dir + "/reviewed.ndjson") { (o) throws(GRAError) in
            guard let review = o.graSection("review") else { return }
            countDecision(review, in: &round)
            countReviews(
                review, decision: o["id"]?.stringValue.flatMap { decided[$0] }, domain: o["domain"]?.stringValue)
        }
        try InputFile.forEachRecord(dir + "/dedup.rejects.ndjson") { (o) throws(GRAError) in
            let method = o["method"]?.stringValue ?? "?"
            round.dedupDropped[method, default: 0] += 1
            reasons["duplicate (\(method))", default: 0] += 1
        }
        try InputFile.forEachRecord(dir + "/kept.ndjson") { (_: JSONObject) throws(GRAError) in round.kept += 1 }

        for stage in ["generate", "review", "adjudicate"] {
            guard let stats = try Self.readJSON("\(dir)/stats-\(stage).json"),
                let models = stats["models"]?.objectValue
            else { continue }
            for field in models.fields {
                guard let m = field.value.objectValue else { continue }
                func int(_ key: String) -> Int { Int(m[key]?.doubleValue ?? 0) }
                var cost = costs[field.key] ?? Cost()
                cost.requests += int("requests")
                cost.cacheHits += int("cache_hits")
                cost.retries += int("retries")
                cost.failures += int("failures")
                cost.promptTokens += int("prompt_tokens")
                cost.completionTokens += int("completion_tokens")
                costs[field.key] = cost
                latencies.append(
                    Latency(
                        round: round.number, stage: "gra-" + stage, model: field.key, requests: int("requests"),
                        p50: m["latency_p50_s"]?.doubleValue, p95: m["latency_p95_s"]?.doubleValue))
                if stage == "review" {
                    calibration[field.key, default: Calibration()].requests += int("requests") + int("cache_hits")
                    calibration[field.key, default: Calibration()].unparsed += int("unparsed_replies")
                }
            }
        }
    }

    /// Scores, offsets, votes and dispute outliers of one record's reviews.
    mutating func countReviews(_ review: JSONObject, decision: Bool?, domain: String? = nil) {
        let reviews = review["reviews"]?.arrayValue ?? []
        var byRound: [Int: [(model: String, score: Double)]] = [:]
        for r in reviews {
            guard let o = r.objectValue, let model = o["model"]?.stringValue, let score = o["score"]?.doubleValue,
                let round = o["round"]?.doubleValue, score.isFinite, round.isFinite
            else { continue }
            byRound[Int(round), default: []].append((model, score))
            // gra-review --dimensions: each dimension's scores per round and domain.
            if case .object(let dims)? = o["dimensions"] {
                for d in dims.fields {
                    guard let x = d.value.doubleValue, x.isFinite else { continue }
                    dimensions[Int(round), default: [:]][domain ?? "(none)", default: [:]][d.key, default: Mean()]
                        .add(x)
                }
            }
            let bin = min(max(Int(score.rounded()), 1), 10) - 1
            scores[Int(round), default: Array(repeating: 0, count: 10)][bin] += 1
            scoresByModel[model, default: [:]][Int(round), default: Array(repeating: 0, count: 10)][bin] += 1
        }
        let minScore = review["min_score"]?.doubleValue ?? 7
        let maxVariance = review["max_variance"]?.doubleValue ?? 2
        var votes: [String: Bool] = [:]
        for (_, scored) in byRound {
            let mean = scored.map(\.score).reduce(0, +) / Double(scored.count)
            let variance = scored.map { ($0.score - mean) * ($0.score - mean) }.reduce(0, +) / Double(scored.count)
            for s in scored {
                calibration[s.model, default: Calibration()].reviews += 1
                calibration[s.model, default: Calibration()].offsetSum += s.score - mean
                votes[s.model] = (votes[s.model] ?? true) && s.score >= minScore
            }
            // A dispute's outlier: the one reviewer farthest from the mean (none when tied).
            if variance > maxVariance {
                let distances = scored.map { abs($0.score - mean) }
                let far = distances.max() ?? 0
                let farthest = scored.indices.filter { distances[$0] == far }
                if farthest.count == 1 {
                    for s in scored { calibration[s.model, default: Calibration()].disputes += 1 }
                    calibration[scored[farthest[0]].model, default: Calibration()].outliers += 1
                }
            }
        }
        if let decision {
            for (model, vote) in votes {
                calibration[model, default: Calibration()].votes += 1
                if vote == decision { calibration[model, default: Calibration()].agreements += 1 }
            }
        }
    }

    mutating func count(
        _ o: JSONObject, domains: WritableKeyPath<RunReport, [String: Int]>, lengths prefix: String
    ) {
        self[keyPath: domains][o["domain"]?.stringValue ?? "(none)", default: 0] += 1
        if let score = o.graSection("ifd")?["score"]?.doubleValue, score.isFinite {
            ifd[prefix, default: []].append(score)
        }
        let response = (o["response"] ?? o["output"])?.stringValue
        for (field, text) in [("instruction", o["instruction"]?.stringValue), ("response", response)] {
            guard let text else { continue }
            let n = text.unicodeScalars.count
            let bin = (Self.lengthBins.lastIndex { $0 <= n }) ?? 0
            lengths["\(prefix) \(field)", default: Array(repeating: 0, count: Self.lengthBins.count)][bin] += 1
        }
    }

    /// Instructions kept per set for the map (0: none).
    var mapPoints = 0

    mutating func sampleForMap(_ o: JSONObject, _ set: String) {
        guard mapPoints > 0, let instruction = o["instruction"]?.stringValue else { return }
        // What gra-dedup --method semantic embeds (with its default --fields), so its cache serves.
        let text = DedupText.semanticText([instruction, o["input"]?.stringValue ?? ""])
        guard !text.isEmpty else { return }
        mapTexts[set, default: TextSample(limit: mapPoints)].add(text)
    }

    mutating func addSample(_ kind: String, round: Int, reason: String?, record: JSONObject) {
        guard samples.filter({ $0.kind == kind }).count < Self.samplesPerKind else { return }
        samples.append(Sample(kind: kind, round: round, reason: reason, record: record))
    }

    /// A rejection reason without its numbers, so that like ones group: "rejected by
    /// reviewers: response rejected in round 2: mean 3.33 < 7 …" → "rejected by reviewers:
    /// response rejected in round 2".
    static func group(_ reason: String) -> String {
        let parts = reason.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        if reason.hasPrefix("rejected by reviewers"), parts.count >= 2 {
            return parts[0] + ":" + parts[1]
        }
        return String(parts[0])
    }

    private mutating func reason(_ o: JSONObject, stage: String) {
        let why = o["reason"]?.stringValue ?? "?"
        // The first clause names the kind of failure; the rest is this record's detail.
        let head = why.split(separator: ":", maxSplits: 1).first.map(String.init) ?? why
        reasons["\(stage) error: \(head.prefix(80))", default: 0] += 1
    }

    // MARK: - Files

    /// The entries of a stage's errors file, counted by reason.
    private mutating func countErrors(_ path: String, stage: String) throws(GRAError) -> Int {
        var n = 0
        try InputFile.forEachRecord(path) { (o) throws(GRAError) in
            n += 1
            reason(o, stage: stage)
        }
        return n
    }

    static func readJSON(_ path: String) throws(GRAError) -> JSONObject? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try JSONParser.parse([UInt8](data)).objectValue
        } catch {
            throw GRAError.badInput("\(path): \(error)")
        }
    }
}
