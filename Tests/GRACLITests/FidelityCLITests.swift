import Foundation
import GRAKit
import Testing

/// The fidelity test set (issue 18, item 4): a scripted committee with known biases over 50
/// samples, through the built gra-review and gra-adjudicate, against a test server. Reviewers:
/// `fair-a`, `fair-b` and `fair-c` score each sample's true quality, `high` always 2 points
/// above it, and `nojson` answers in prose. On the flawed samples `fair-a` and `fair-b` praise
/// the response (9) while `fair-c` scores it 3. The area chair `judge` rejects the flawed
/// samples and accepts the others. The expected decisions come from the paper's rule written
/// out here again, not from gra; gra-report's calibration must name `high` and `nojson`.
@Suite("Fidelity: a committee with known biases")
struct FidelityCLITests {
    static let reviewers = ["high", "fair-a", "fair-b", "fair-c", "nojson"]
    static let count = 50

    static func id(_ i: Int) -> String { String(format: "f%02d", i) }
    static func isFlawed(_ i: Int) -> Bool { i % 7 == 3 }
    /// The instruction's and the response's true quality.
    static func truth(_ i: Int) -> (instruction: Int, response: Int) {
        (5 + i % 5, isFlawed(i) ? 3 : 5 + (i * 3) % 5)
    }

    /// What a reviewer gives sample `i` in `round` (nil: no JSON at all).
    static func score(_ model: String, _ i: Int, round: Int) -> Int? {
        let t = round == 1 ? truth(i).instruction : truth(i).response
        switch model {
        case "nojson": return nil
        case "high": return min(10, t + 2)
        case "fair-a", "fair-b": return round == 2 && isFlawed(i) ? 9 : t
        default: return t
        }
    }

    enum Outcome: Equatable { case accept, reject, dispute, error }

    /// The rule (man gra(7), THE DECISION RULE), written again: per round the mean and the
    /// population variance; agreement below 7 rejects (round 1 then skips round 2); otherwise a
    /// variance above 2 disputes; otherwise accept.
    static func expected(_ i: Int, committee: [String]) -> Outcome {
        if committee.contains("nojson") { return .error }
        func stats(_ round: Int) -> (mean: Double, variance: Double) {
            let s = committee.map { Double(score($0, i, round: round)!) }
            let mean = s.reduce(0, +) / Double(s.count)
            return (mean, s.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(s.count))
        }
        let r1 = stats(1)
        if r1.mean < 7 && r1.variance <= 2 { return .reject }
        let r2 = stats(2)
        if r2.mean < 7 && r2.variance <= 2 { return .reject }
        return r1.variance > 2 || r2.variance > 2 ? .dispute : .accept
    }

    static func script() -> String {
        var rules: [String] = []
        let round1 = "you judge only the INSTRUCTION"
        let round2 = "you judge the RESPONSE"
        for i in 0..<count {
            let marker = "[[\(id(i))]]"
            for model in reviewers where model != "nojson" {
                for (round, text) in [(1, round1), (2, round2)] {
                    let s = score(model, i, round: round)!
                    rules.append(
                        #"{"model":"\#(model)","contains":["\#(marker)","\#(text)"],"#
                            + #""reply_json":{"score":\#(s),"#
                            + #""comment":"\#(model) gives \#(s)"}}"#)
                }
            }
            let ruling = isFlawed(i) ? #""decision":"reject","score":2"# : #""decision":"accept","score":8"#
            rules.append(
                #"{"model":"judge","contains":"\#(marker)","reply_json":{\#(ruling),"rationale":"checked"}}"#)
        }
        rules.append(#"{"model":"nojson","reply":"A fine sample, I would say an eight or so."}"#)
        return #"{"rules":[\#(rules.joined(separator: ",\n"))]}"#
    }

    @Test func decisionsDisputesAndRulingsFollowTheRule() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(Self.script().utf8).write(to: dir.appendingPathComponent("script.json"))
        var samples = ""
        for i in 0..<Self.count {
            let m = "[[\(Self.id(i))]]"
            samples +=
                #"{"id":"\#(Self.id(i))","instruction":"Task \#(m): explain item \#(i).","#
                + #""response":"Answer \#(m)."}"#
                + "\n"
        }
        try Data(samples.utf8).write(to: dir.appendingPathComponent("samples.ndjson"))
        let models = Self.reviewers + ["judge"]
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models \(models.joined(separator: ","))
                cat > pool.json <<EOF
                {"models": [\(models.map { #"{"name":"\#($0)","base_urls":["$URL"]}"# }.joined(separator: ","))],
                 "roles": {"reviewers": ["\(Self.reviewers.joined(separator: "\",\""))"], "adjudicators": ["judge"]}}
                EOF
                mkdir -p run/round-1
                cp samples.ndjson run/seeds.ndjson
                cp samples.ndjson run/round-1/generated.ndjson
                gra-review --config pool.json --reviewers 3 --seed 0 --cache cache --quiet \
                --stats run/round-1/stats-review.json --errors run/round-1/errors-review.ndjson \
                < samples.ndjson > run/round-1/reviewed.ndjson
                echo "review $?"
                gra-adjudicate --config pool.json --cache cache --quiet --rejects run/round-1/rejects.ndjson \
                --errors run/round-1/errors-adjudicate.ndjson < run/round-1/reviewed.ndjson \
                > run/round-1/accepted.ndjson
                echo "adjudicate $?"
                cp run/round-1/accepted.ndjson run/round-1/kept.ndjson
                cp run/round-1/accepted.ndjson run/dataset.ndjson
                gra-report --quiet run; echo "report $?"
                """, in: dir)
        #expect(r.stdoutLines == ["review 75", "adjudicate 0", "report 0"], "\(r.stderr)")

        let round = dir.appendingPathComponent("run/round-1")
        func records(_ name: String) throws -> [[String: Any]] {
            let url = round.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return [] }
            return try jsonLines(Data(contentsOf: url))
        }
        let reviewed = try records("reviewed.ndjson")
        let errors = try records("errors-review.ndjson")
        let accepted = Set(try records("accepted.ndjson").compactMap { $0["id"] as? String })
        let rejects = try records("rejects.ndjson")
        let rejected = Set(rejects.compactMap { $0["id"] as? String })
        let failed = Set(errors.compactMap { $0["id"] as? String })
        var byReviewers: [String: String] = [:]
        var adjudicatorRejects: Set<String> = []
        for o in rejects where (o["reason"] as? String ?? "").hasPrefix("rejected by the adjudicator") {
            adjudicatorRejects.insert(o["id"] as! String)
        }
        for o in reviewed {
            let review = (o["gra"] as! [String: Any])["review"] as! [String: Any]
            byReviewers[o["id"] as! String] = review["decision"] as? String
        }

        var tally: [Outcome: Int] = [:]
        var praisedFlawedDisputes = 0
        for i in 0..<Self.count {
            let id = Self.id(i)
            let roles = RoleAssignment.assign(
                pool: models, recordID: id, seed: 0, reviewers: 3, author: "", reviewerPool: Self.reviewers,
                adjudicatorPool: ["judge"])
            let want = Self.expected(i, committee: roles.reviewers)
            tally[want, default: 0] += 1
            switch want {
            case .error:
                #expect(failed.contains(id) && byReviewers[id] == nil, "\(id)")
            case .accept:
                #expect(byReviewers[id] == "accept" && accepted.contains(id), "\(id) \(roles.reviewers)")
            case .reject:
                #expect(byReviewers[id] == "reject" && rejected.contains(id), "\(id) \(roles.reviewers)")
                #expect(!adjudicatorRejects.contains(id))
            case .dispute:
                #expect(byReviewers[id] == "dispute", "\(id) \(roles.reviewers)")
                // The area chair: rejects the flawed samples, accepts the rest.
                if Self.isFlawed(i) {
                    #expect(adjudicatorRejects.contains(id), "\(id)")
                    if roles.reviewers.contains("fair-a") && roles.reviewers.contains("fair-b") {
                        praisedFlawedDisputes += 1
                    }
                } else {
                    #expect(accepted.contains(id), "\(id)")
                }
            }
        }
        // Every kind of outcome occurred, and every record is in exactly one place.
        #expect(Outcome.allCases.allSatisfy { (tally[$0] ?? 0) > 0 }, "\(tally)")
        #expect(praisedFlawedDisputes > 0)
        #expect(reviewed.count + errors.count == Self.count)
        #expect(accepted.count + rejected.count == reviewed.count)
        for e in errors {
            #expect((e["reason"] as? String ?? "").contains("unparseable reply from nojson after 3 tries"), "\(e)")
        }
        // Scores as scripted: every stored review is what its model was told to give.
        for o in reviewed {
            let i = Int((o["id"] as! String).dropFirst())!
            let reviews = ((o["gra"] as! [String: Any])["review"] as! [String: Any])["reviews"] as! [[String: Any]]
            for v in reviews {
                #expect(v["score"] as? Int == Self.score(v["model"] as! String, i, round: v["round"] as! Int))
            }
        }

        // gra-report's calibration names the biased reviewer and the one that cannot answer.
        let summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("run/report.json"))) as! [String: Any]
        let calibration = summary["calibration"] as! [String: [String: Any]]
        let offsets = calibration.compactMapValues { $0["mean_offset"] as? Double }
        #expect(offsets.max { $0.value < $1.value }?.key == "high", "\(offsets)")
        #expect((offsets["high"] ?? 0) > 0.5, "\(offsets)")
        #expect(calibration["nojson"]?["unparsed_rate"] as? Double == 1, "\(calibration["nojson"] ?? [:])")
        let html = try String(contentsOf: dir.appendingPathComponent("run/report.html"), encoding: .utf8)
        // The row of `high` has its offset cell (the third) marked; the row of `nojson` its unparsed one.
        let rows = html.components(separatedBy: "<tr>")
        let high = rows.first { $0.hasPrefix(#"<td class="l">high</td>"#) } ?? ""
        #expect(high.components(separatedBy: "<td")[3].hasPrefix(#" class="worst">+"#), "\(high)")
        let nojson = rows.first { $0.hasPrefix(#"<td class="l">nojson</td>"#) } ?? ""
        #expect(nojson.contains(#"<td class="worst">100.0% ("#), "\(nojson)")
    }
}

extension FidelityCLITests.Outcome: CaseIterable {}
