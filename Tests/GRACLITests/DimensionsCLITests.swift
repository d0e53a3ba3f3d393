import Foundation
import Testing

/// gra-review --dimensions (issue 18, item 2) through the built binaries: scores per dimension
/// stored per review and schema-checked, the decision still from the overall scores, both
/// languages, and gra-report's weakest dimension per domain.
@Suite("gra-review --dimensions")
struct DimensionsCLITests {
    static let names = ["correctness", "clarity", "completeness", "relevance", "coherence", "ethicality"]

    /// The dimensions model `m` gives sample `i` in `round`.
    static func dims(_ m: Int, _ i: Int, round: Int) -> [Int] {
        names.indices.map { d in 1 + (m * 3 + i * 5 + d * 7 + round) % 10 }
    }

    @Test func dimensionsAreStoredAndTheDecisionUsesTheOverallScore() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let models = ["m1", "m2", "m3"]
        var rules: [String] = []
        let domains = ["math", "code"]
        for i in 0..<6 {
            for (m, model) in models.enumerated() {
                for (round, marker) in [(1, "you judge only the INSTRUCTION"), (2, "you judge the RESPONSE")] {
                    let d = Self.dims(m, i, round: round)
                    let body = zip(Self.names, d).map { #""\#($0)":\#($1)"# }.joined(separator: ",")
                    // The overall score contradicts the dimensions on purpose: 9 while they are low.
                    rules.append(
                        #"{"model":"\#(model)","contains":["<s\#(i)>","\#(marker)"],"reply_json":"#
                            + #"{"dimensions":{\#(body)},"score":9,"comment":"fine"}}"#)
                }
            }
        }
        // Sample 6: m1 leaves out a dimension, every time: schema-checked, re-asked, then an error.
        rules.append(
            #"{"model":"m1","contains":"<s6>","reply_json":{"dimensions":{"correctness":5},"score":8,"comment":"x"}}"#)
        rules.append(
            #"{"contains":"<s6>","reply_json":{"dimensions":{"correctness":5,"clarity":5,"completeness":5,"#
                + #""relevance":5,"coherence":5,"ethicality":5},"score":8,"comment":"x"}}"#)
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        var input = ""
        for i in 0...6 {
            input +=
                #"{"id":"s\#(i)","domain":"\#(domains[i % 2])","instruction":"Task <s\#(i)>.","response":"Done."}"#
                + "\n"
        }
        try Data(input.utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        let pool = models.map { "--model \($0)@$URL" }.joined(separator: " ")
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models \(models.joined(separator: ","))
                gra-review --dimensions \(pool) --cache cache --quiet --errors errors.ndjson < in.ndjson > out.ndjson
                echo "review $?"
                cp log.ndjson review-log.ndjson
                gra-review --dimensions --prompts zh \(pool) --no-cache --quiet --errors zh.errors.ndjson \
                < in.ndjson > zh.ndjson
                echo "zh $?"
                gra-review \(pool) --no-cache --quiet --errors plain.errors.ndjson < in.ndjson > plain.ndjson
                echo "plain $?"
                mkdir -p run/round-1 && cp in.ndjson run/seeds.ndjson && cp out.ndjson run/round-1/reviewed.ndjson
                gra-report --quiet run; echo "report $?"
                """, in: dir)
        #expect(r.stdoutLines == ["review 75", "zh 75", "plain 75", "report 0"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == (0..<6).map { "s\($0)" })
        var sums: [Int: [String: [String: (Double, Int)]]] = [:]
        for (i, o) in out.enumerated() {
            let review = (o["gra"] as! [String: Any])["review"] as! [String: Any]
            // Every overall score is 9: accepted, however low the dimensions.
            #expect(review["decision"] as? String == "accept")
            for v in review["reviews"] as! [[String: Any]] {
                let m = models.firstIndex(of: v["model"] as! String)!
                let round = v["round"] as! Int
                let d = try #require(v["dimensions"] as? [String: Int])
                #expect(Self.names.map { d[$0] } == Self.dims(m, i, round: round), "s\(i) \(v)")
                for (name, x) in d {
                    let s = sums[round, default: [:]][o["domain"] as! String, default: [:]][name] ?? (0, 0)
                    sums[round, default: [:]][o["domain"] as! String, default: [:]][name] = (s.0 + Double(x), s.1 + 1)
                }
            }
        }
        let errors = try String(contentsOf: dir.appendingPathComponent("errors.ndjson"), encoding: .utf8)
        #expect(
            errors.contains(#""id":"s6""#) && errors.contains("unparseable reply from m1 after 3 tries"), "\(errors)")
        // The rubric prompts, in both languages; without the flag, today's prompts.
        func prompts(_ file: String) throws -> [String] {
            try jsonLines(Data(contentsOf: dir.appendingPathComponent(file))).compactMap {
                (($0["body"] as? [String: Any])?["messages"] as? [[String: Any]])?.last?["content"] as? String
            }
        }
        let english = try prompts("review-log.ndjson")
        #expect(!english.isEmpty && english.allSatisfy { $0.contains("### Dimensions (each an integer from 1 to 10)") })
        let all = try prompts("log.ndjson")
        #expect(all.contains { $0.contains("### 维度（每项为 1 到 10 的整数）") })
        // Without the flag: today's prompt (whose schema has no dimensions, so these scripted replies
        // do not parse there: plain exits 75).
        #expect(
            all.contains {
                $0.contains("In this round you judge only the INSTRUCTION") && !$0.contains("Dimensions")
                    && $0.contains(#"{"score": <integer 1-10>, "comment""#)
            })
        let plain = try jsonLines(Data(contentsOf: dir.appendingPathComponent("plain.ndjson")))
        #expect(plain.allSatisfy { (($0["gra"] as! [String: Any])["review"] as! [String: Any])["reviews"] != nil })
        #expect(
            !plain.contains {
                ((($0["gra"] as! [String: Any])["review"] as! [String: Any])["reviews"] as! [[String: Any]])
                    .contains { $0["dimensions"] != nil }
            })

        // gra-report: each domain's mean per dimension and the weakest.
        let summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("run/report.json"))) as! [String: Any]
        let reported = try #require(summary["dimensions"] as? [String: [String: [String: Any]]])
        for (round, byDomain) in sums {
            for (domain, dims) in byDomain {
                let row = try #require(reported["round_\(round)"]?[domain])
                var weakest = ("", Double.infinity)
                for name in Self.names {
                    let (sum, n) = dims[name]!
                    let mean = sum / Double(n)
                    #expect(abs((row[name] as? Double ?? .nan) - mean) <= 5e-5, "\(round) \(domain) \(name)")
                    if mean < weakest.1 { weakest = (name, mean) }
                }
                #expect(row["weakest"] as? String == weakest.0, "round \(round) \(domain)")
            }
        }
        let html = try String(contentsOf: dir.appendingPathComponent("run/report.html"), encoding: .utf8)
        #expect(html.contains(#"<h2 id="dimensions">Review dimensions</h2>"#))
    }
}
