import GRAKit
import Testing

@Suite("Review decision rule")
struct ReviewRuleTests {
    let t = ReviewRule.Thresholds()

    func verdict(_ r1: [Double], _ r2: [Double]?, _ thresholds: ReviewRule.Thresholds? = nil) -> ReviewRule.Verdict {
        ReviewRule.decide(round1: .init(scores: r1), round2: r2.map { .init(scores: $0) }, thresholds: thresholds ?? t)
    }

    @Test func statisticsArePopulationMeanAndVariance() {
        let s = ReviewRule.RoundStatistics(scores: [9, 9, 5.66])
        #expect(abs(s.mean - 7.8867) < 1e-3)
        #expect(abs(s.variance - 2.4790) < 1e-3)
        #expect(ReviewRule.RoundStatistics(scores: [7, 7, 7]).variance == 0)
    }

    /// The paper's case: two reviewers wrongly score high, the mean passes, the variance
    /// (2.48) sends it to the area chair.
    @Test func papersCaseIsDisputed() {
        let v = verdict([8, 8, 8], [9, 9, 5.66])
        #expect(v.decision == .dispute)
        #expect(v.reason == "reviewers disagree: round 2 variance 2.48 > 2")
    }

    @Test func clearAcceptsAndRejects() {
        #expect(verdict([8, 9, 8], [9, 8, 8]).decision == .accept)
        let r1 = verdict([3, 4, 3], nil)
        #expect(r1.decision == .reject)
        #expect(r1.reason.contains("round 2 skipped"))
        #expect(verdict([8, 8, 9], [5, 6, 5]).decision == .reject)
        // Agreement below the bar beats a disputed other round.
        #expect(verdict([2, 9, 9], [5, 5, 6]).decision == .reject)
        #expect(verdict([2, 9, 9], [8, 8, 8]).decision == .dispute)
        // Exactly at the thresholds: mean 7 passes, variance 2 is agreement.
        #expect(verdict([7, 7, 7], [6, 6, 9]).decision == .accept)
    }

    @Test func newThresholdsChangeDecisionsFromTheSameScores() {
        #expect(verdict([8, 8, 8], [6, 6, 7]).decision == .reject)
        #expect(verdict([8, 8, 8], [6, 6, 7], .init(minScore: 6, maxVariance: 2)).decision == .accept)
        #expect(verdict([8, 8, 8], [9, 9, 5.66], .init(minScore: 7, maxVariance: 3)).decision == .accept)
    }
}

@Suite("Role assignment")
struct RoleTests {
    func models(_ n: Int) -> [String] { (1...n).map { "m\($0)" } }

    @Test(arguments: [5, 7])
    func largePoolsKeepEveryRule(_ n: Int) {
        for id in 0..<200 {
            let r = RoleAssignment.assign(pool: models(n), recordID: "rec-\(id)", seed: 42, reviewers: 3)
            #expect(!r.reviewers.contains(r.author))
            #expect(Set(r.reviewers).count == 3)
            #expect(r.adjudicator != r.author && !r.reviewers.contains(r.adjudicator))
            #expect(r.relaxed.isEmpty)
        }
    }

    @Test func poolOfThreeRelaxesAndSaysSo() {
        let r = RoleAssignment.assign(pool: models(3), recordID: "x", seed: 1, reviewers: 3)
        #expect(Set(r.reviewers) == Set(models(3)))
        #expect(r.reviewers.last == r.author)
        #expect(r.adjudicator != r.author)
        #expect(r.relaxed.count == 2)
        #expect(r.relaxed[0].contains("also the author"))
        #expect(r.relaxed[1].contains("adjudicator is also a reviewer"))
    }

    @Test func poolOfOneUsesTheOneModelForEverything() {
        let r = RoleAssignment.assign(pool: ["solo"], recordID: "x", seed: 1, reviewers: 3)
        #expect(r.author == "solo" && r.reviewers == ["solo", "solo", "solo"] && r.adjudicator == "solo")
        #expect(r.relaxed.contains { $0.contains("more than once") })
        #expect(r.relaxed.contains { $0.contains("adjudicator is the author") })
    }

    @Test func givenAuthorIsNeverAReviewer() {
        for id in 0..<50 {
            let r = RoleAssignment.assign(pool: models(5), recordID: "g\(id)", seed: 7, reviewers: 3, author: "m2")
            #expect(r.author == "m2" && !r.reviewers.contains("m2") && r.adjudicator != "m2")
        }
    }

    @Test func reproducibleAndSpreadOverThePool() {
        let a = (0..<1000).map { RoleAssignment.assign(pool: models(5), recordID: "r\($0)", seed: 3, reviewers: 3) }
        let b = (0..<1000).map {
            RoleAssignment.assign(pool: models(5).reversed(), recordID: "r\($0)", seed: 3, reviewers: 3)
        }
        #expect(a == b)  // the order the pool is given in does not matter
        let c = (0..<1000).map { RoleAssignment.assign(pool: models(5), recordID: "r\($0)", seed: 4, reviewers: 3) }
        #expect(a != c)  // another seed, other roles
        var authors: [String: Int] = [:]
        for r in a { authors[r.author, default: 0] += 1 }
        #expect(authors.count == 5)
        #expect(authors.values.allSatisfy { $0 > 140 && $0 < 260 }, "\(authors)")
    }
}
