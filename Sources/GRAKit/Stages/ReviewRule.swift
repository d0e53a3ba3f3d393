/// The reviewers' statistics and the accept / reject / dispute rule of GRA's review stage.
///
/// Per round: the mean and the population variance of the K scores. A round whose mean is
/// below `minScore` while the reviewers agree (variance ≤ `maxVariance`) rejects the
/// sample; a round whose variance exceeds `maxVariance` is disputed and goes to the area
/// chair; otherwise the sample is accepted. An instruction rejected in round 1 never reaches
/// round 2. When one round rejects and another is disputed, the agreed rejection wins.
public enum ReviewRule {
    /// Thresholds of the decision (the paper's defaults).
    public struct Thresholds: Sendable, Equatable {
        public var minScore = 7.0
        public var maxVariance = 2.0
        public init(minScore: Double = 7.0, maxVariance: Double = 2.0) {
            self.minScore = minScore
            self.maxVariance = maxVariance
        }
    }

    /// Mean and population variance of one round's scores.
    public struct RoundStatistics: Sendable, Equatable {
        public var mean: Double
        public var variance: Double

        public init(scores: [Double]) {
            precondition(!scores.isEmpty, "a round needs at least one score")
            let n = Double(scores.count)
            mean = scores.reduce(0, +) / n
            let m = mean
            variance = scores.reduce(0) { $0 + ($1 - m) * ($1 - m) } / n
        }
    }

    public enum Decision: String, Sendable, Equatable {
        case accept, reject, dispute
    }

    /// The decision and a sentence saying why.
    public struct Verdict: Sendable, Equatable {
        public var decision: Decision
        public var reason: String
    }

    static func format(_ x: Double) -> String {
        let rounded = (x * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    /// True when round 1 alone already rejects the instruction (round 2 is then skipped).
    public static func rejectsInstruction(_ round1: RoundStatistics, _ t: Thresholds) -> Bool {
        round1.mean < t.minScore && round1.variance <= t.maxVariance
    }

    /// Decides from round 1 (instruction) and, when it was run, round 2 (response).
    public static func decide(round1: RoundStatistics, round2: RoundStatistics?, thresholds t: Thresholds) -> Verdict {
        if rejectsInstruction(round1, t) {
            return Verdict(
                decision: .reject,
                reason:
                    """
                    instruction rejected in round 1: mean \(format(round1.mean)) < \(format(t.minScore)) with \
                    variance \(format(round1.variance)) ≤ \(format(t.maxVariance)); round 2 skipped
                    """
            )
        }
        guard let round2 else {
            return Verdict(decision: .dispute, reason: "round 2 missing")
        }
        if round2.mean < t.minScore && round2.variance <= t.maxVariance {
            return Verdict(
                decision: .reject,
                reason:
                    """
                    response rejected in round 2: mean \(format(round2.mean)) < \(format(t.minScore)) with \
                    variance \(format(round2.variance)) ≤ \(format(t.maxVariance))
                    """
            )
        }
        var disputed: [String] = []
        if round1.variance > t.maxVariance { disputed.append("round 1 variance \(format(round1.variance))") }
        if round2.variance > t.maxVariance { disputed.append("round 2 variance \(format(round2.variance))") }
        if !disputed.isEmpty {
            return Verdict(
                decision: .dispute,
                reason: "reviewers disagree: \(disputed.joined(separator: ", ")) > \(format(t.maxVariance))")
        }
        return Verdict(
            decision: .accept,
            reason: "means \(format(round1.mean)) and \(format(round2.mean)) ≥ \(format(t.minScore)), reviewers agree")
    }
}
