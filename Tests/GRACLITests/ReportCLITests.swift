import Foundation
import Testing

/// gra-report on the demo run (the bundled seeds through bin/gra-pipeline against the demo
/// server's scripted models, as bin/gra-demo runs it): every number of its summary checked
/// against the run's own files, read here with Foundation.
@Suite("gra-report on the demo run", .serialized)
struct ReportCLITests {
    static let repo = PipelineScriptTests.repo

    /// Shell lines that start the demo server and run bin/gra-pipeline on the bundled seeds
    /// into ./run, as bin/gra-demo does, then print "pipeline STATUS". `serverArguments`
    /// follows the server's model list (",emb" adds a model to it).
    static func demoRun(serverArguments: String = "", pipelineArguments: String = "") -> String {
        let models = ["demo-llama-3.1-8b", "demo-qwen-2.5-7b", "demo-mistral-7b", "demo-gemma-2-9b", "demo-glm-4-9b"]
        return MapCLITests.prelude + """
            start_server --script '\(repo.path)/examples/demo/server-script.json' \
            --models \(models.joined(separator: ","))\(serverArguments)
            '\(repo.path)/bin/gra-pipeline' --run run --ifd demo-llama-3.1-8b \(pipelineArguments) \
            '\(repo.path)/examples/seeds.alpaca.json' \
            -- \(models.map { "--model \($0)@$URL" }.joined(separator: " ")) --cache run/cache --quiet \
            2> pipeline.err
            echo "pipeline $?"

            """
    }

    func lines(_ url: URL) throws -> [[String: Any]] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return try jsonLines(Data(contentsOf: url))
    }

    @Test func theDemoRunsReportMatchesItsFiles() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try ToolRunner.sh(
            Self.demoRun() + """
                gra-report run; echo "report $?"
                gra-report --output elsewhere.html --json elsewhere.json run; echo "again $?"
                gra-report .; echo "not a run $?"
                gra-report run/round-1/accepted.ndjson run/round-1/rejects.ndjson; echo "files $?"
                gra-report --json run/round-1/rejects.ndjson run/round-1/rejects.ndjson; echo "guard $?"
                """, in: dir)
        #expect(
            r.stdoutLines == ["pipeline 0", "report 0", "again 0", "not a run 66", "files 0", "guard 64"],
            "\(r.stderr)")
        #expect(r.stderr.contains("gra-report: error: .: no seeds.ndjson"), "\(r.stderr)")
        let run = dir.appendingPathComponent("run")
        let round = run.appendingPathComponent("round-1")
        let summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: run.appendingPathComponent("report.json"))) as! [String: Any]
        #expect(
            try Data(contentsOf: dir.appendingPathComponent("elsewhere.json"))
                == Data(contentsOf: run.appendingPathComponent("report.json")))

        // The funnel.
        let seeds = try lines(run.appendingPathComponent("seeds.ndjson"))
        let reviewed = try lines(round.appendingPathComponent("reviewed.ndjson"))
        let accepted = try lines(round.appendingPathComponent("accepted.ndjson"))
        let rejects = try lines(round.appendingPathComponent("rejects.ndjson"))
        let dropped = try lines(round.appendingPathComponent("dedup.rejects.ndjson"))
        let kept = try lines(round.appendingPathComponent("kept.ndjson"))
        func review(_ o: [String: Any]) -> [String: Any] { (o["gra"] as! [String: Any])["review"] as! [String: Any] }
        func decisions(_ d: String) -> Int { reviewed.filter { review($0)["decision"] as? String == d }.count }
        let funnel = (summary["rounds"] as! [[String: Any]])[0]
        let expected: [String: Int] = [
            "seeds": seeds.count,
            "generated": try lines(round.appendingPathComponent("generated.ndjson")).count,
            "reviewed": reviewed.count, "review_accept": decisions("accept"), "review_reject": decisions("reject"),
            "review_dispute": decisions("dispute"), "accepted": accepted.count,
            "accepted_by_adjudicator": accepted.filter { ($0["gra"] as! [String: Any])["adjudication"] != nil }.count,
            "rejected_by_reviewers": rejects.filter { ($0["reason"] as! String).hasPrefix("rejected by reviewers") }
                .count,
            "rejected_by_adjudicator": rejects.filter {
                ($0["reason"] as! String).hasPrefix("rejected by the adjudicator")
            }.count,
            "dedup_dropped": dropped.count, "kept": kept.count
        ]
        for (key, value) in expected { #expect(funnel[key] as? Int == value, "\(key)") }
        // The demo script has every kind: disputes, both rulings, reviewer rejects, a duplicate.
        #expect(expected.values.allSatisfy { $0 > 0 }, "\(expected)")
        #expect(summary["final"] as? Int == kept.count && summary["seeds"] as? Int == seeds.count)

        // Scores: every review counted once, in its round and score.
        var scores: [Int: [Int]] = [:]
        var offsets: [String: (sum: Double, n: Int)] = [:]
        for o in reviewed {
            let reviews = review(o)["reviews"] as! [[String: Any]]
            for round in [1, 2] {
                let these = reviews.filter { $0["round"] as? Int == round }
                guard !these.isEmpty else { continue }
                let mean = these.map { Double($0["score"] as! Int) }.reduce(0, +) / Double(these.count)
                for v in these {
                    let s = v["score"] as! Int
                    scores[round, default: Array(repeating: 0, count: 10)][s - 1] += 1
                    let m = v["model"] as! String
                    offsets[m] = ((offsets[m]?.sum ?? 0) + Double(s) - mean, (offsets[m]?.n ?? 0) + 1)
                }
            }
        }
        let reported = summary["scores"] as! [String: Any]
        #expect(reported["round_1"] as? [Int] == scores[1])
        #expect(reported["round_2"] as? [Int] == scores[2])
        let calibration = summary["calibration"] as! [String: [String: Any]]
        #expect(Set(calibration.keys) == Set(offsets.keys))
        for (model, o) in offsets {
            #expect(calibration[model]?["reviews"] as? Int == o.n)
            let offset = calibration[model]?["mean_offset"] as? Double ?? .nan
            #expect(abs(offset - o.sum / Double(o.n)) < 1e-4, "\(model)")
        }

        // Domains of the seeds and of the dataset.
        func domains(_ records: [[String: Any]]) -> [String: Int] {
            records.reduce(into: [:]) { $0[$1["domain"] as? String ?? "(none)", default: 0] += 1 }
        }
        #expect(summary["seed_domains"] as? [String: Int] == domains(seeds))
        #expect(
            summary["final_domains"] as? [String: Int]
                == domains(try lines(run.appendingPathComponent("dataset.ndjson"))))

        // Difficulty: every seed and every sample of the dataset scored by gra-ifd (beside them);
        // count, mean and median as the files hold them, and the change of the mean.
        let scored = ["seeds": "seeds", "final": "dataset"].mapValues { file in
            (try? lines(run.appendingPathComponent("\(file).ifd.ndjson")))?.compactMap {
                (($0["gra"] as? [String: Any])?["ifd"] as? [String: Any])?["score"] as? Double
            } ?? []
        }
        #expect(scored["seeds"]?.count == seeds.count && scored["final"]?.count == kept.count)
        let ifd = try #require(summary["ifd"] as? [String: Any])
        var means: [String: Double] = [:]
        for (set, xs) in scored {
            let reported = try #require(ifd[set] as? [String: Any])
            let mean = xs.reduce(0, +) / Double(xs.count)
            let sorted = xs.sorted()
            let median =
                sorted.count % 2 == 1
                ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            means[set] = mean
            #expect(reported["scored"] as? Int == xs.count)
            #expect(abs((reported["mean"] as? Double ?? .nan) - mean) <= 5e-5, "\(set)")
            #expect(abs((reported["median"] as? Double ?? .nan) - median) <= 5e-5, "\(set)")
            #expect((reported["histogram"] as? [Int])?.reduce(0, +) == xs.count)
        }
        let change = (means["final"]! / means["seeds"]! - 1) * 100
        #expect(abs((ifd["change_percent"] as? Double ?? .nan) - change) <= 5e-5)

        // The same run's accepted records and rejects given as files: one set.
        let files =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("report.json"))) as! [String: Any]
        let set = (files["rounds"] as! [[String: Any]])[0]
        #expect(set["kept"] as? Int == accepted.count && set["accepted"] as? Int == accepted.count)
        #expect(set["accepted_by_adjudicator"] as? Int == expected["accepted_by_adjudicator"])
        #expect(set["rejected_by_reviewers"] as? Int == expected["rejected_by_reviewers"])
        #expect(set["rejected_by_adjudicator"] as? Int == expected["rejected_by_adjudicator"])
        // Every record once, in stdout or the rejects file: the reviewers' decisions of them all.
        for key in ["generated", "review_accept", "review_reject", "review_dispute"] {
            #expect(set[key] as? Int == expected[key], "\(key)")
        }
        #expect(files["final_domains"] as? [String: Int] == domains(accepted))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("report.html").path))

        // The page: every section, the charts as SVG, nothing outside it.
        let html = try String(contentsOf: run.appendingPathComponent("report.html"), encoding: .utf8)
        for id in ["funnel", "reasons", "scores", "calibration", "domains", "lengths", "difficulty", "cost", "samples"]
        {
            #expect(html.contains("<h2 id=\"\(id)\""), "\(id)")
        }
        #expect(html.components(separatedBy: "<svg ").count - 1 >= 6)
        for outside in ["<script", "src=", "<link", "url("] { #expect(!html.contains(outside), "\(outside)") }
    }

    /// A reply that is not the JSON asked for is counted in --stats as the model's
    /// unparsed_replies (re-asked here, so the record still passes): the calibration's
    /// unparsed rate.
    @Test func unparsedRepliesAreCountedPerModel() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(
            #"""
            {"rules":[{"contains":"judge only the INSTRUCTION","times":2,"reply":"I would say about eight."},
            {"contains":"judge","reply_json":{"score":8,"comment":"c"}}]}
            """#.utf8
        ).write(to: dir.appendingPathComponent("script.json"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models m1,m2,m3
                echo '{"id":"a","instruction":"Do x","output":"Done"}' \
                  | gra-review --model m1@$URL --model m2@$URL --model m3@$URL --no-cache --stats s.json -q > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("s.json")))
        let models = (stats as! [String: Any])["models"] as! [String: [String: Any]]
        let unparsed = models.mapValues { $0["unparsed_replies"] as? Int ?? -1 }
        #expect(unparsed.values.reduce(0, +) == 2, "\(unparsed)")
        #expect(unparsed.values.allSatisfy { $0 >= 0 })
        // 6 reviews and 2 re-asks.
        #expect(models.values.map { $0["requests"] as? Int ?? 0 }.reduce(0, +) == 8)
    }

    /// --embed: the demo run's instructions embedded by gra-testserver's embeddings (hashed
    /// unit vectors) and projected; every sampled instruction a point in its set, the variance
    /// shares in (0, 1], and the second report asks nothing (the response cache).
    /// After `--dedup semantic` the map of the same model comes from the embeddings gra-dedup
    /// left in the cache (one entry per text): the report asks only for the texts gra-dedup never
    /// embedded, the generated samples the committee rejected.
    @Test func coverageMapReusesSemanticDedupEmbeddings() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try ToolRunner.sh(
            Self.demoRun(pipelineArguments: "--dedup exact,minhash,semantic") + """
                cp log.ndjson pipeline-log.ndjson
                gra-report --embed demo-llama-3.1-8b@$URL run; echo "report $?"
                """, in: dir)
        #expect(r.stdoutLines == ["pipeline 0", "report 0"], "\(r.stderr)")
        func embedded(_ log: [[String: Any]]) -> [String] {
            log.filter { $0["path"] as? String == "/v1/embeddings" }.flatMap {
                ($0["body"] as? [String: Any])?["input"] as? [String] ?? []
            }
        }
        let all = try lines(dir.appendingPathComponent("log.ndjson"))
        let before = try lines(dir.appendingPathComponent("pipeline-log.ndjson"))
        let byDedup = Set(embedded(before))
        let byReport = embedded(Array(all.dropFirst(before.count)))
        #expect(!byDedup.isEmpty)
        // What the map embeds: instruction and input, as gra-dedup does.
        func text(_ o: [String: Any]) -> String {
            [o["instruction"] as? String ?? "", o["input"] as? String ?? ""].map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }.filter { !$0.isEmpty }.joined(separator: "\n")
        }
        let run = dir.appendingPathComponent("run")
        var wanted = Set<String>()
        for file in ["seeds.ndjson", "round-1/generated.ndjson", "dataset.ndjson"] {
            for o in try lines(run.appendingPathComponent(file)) { wanted.insert(text(o)) }
        }
        let rejected = try lines(run.appendingPathComponent("round-1/rejects.ndjson")).count
        #expect(Set(byReport) == wanted.subtracting(byDedup), "\(byReport)")
        #expect(byReport.count == rejected && rejected > 0, "\(byReport)")
        let summary =
            try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("report.json")))
            as! [String: Any]
        let points = (summary["map"] as? [String: Any])?["points"] as? [String: [[Double]]] ?? [:]
        #expect(points.mapValues(\.count) == ["seeds": 32, "generated": 32, "final": 28])
    }

    @Test func coverageMapFromAnEmbeddingsModel() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try ToolRunner.sh(
            Self.demoRun(serverArguments: ",emb --embedding-dim 32") + """
                embeddings() { grep -c '"path":"/v1/embeddings"' log.ndjson || true; }
                gra-report --embed emb@$URL --map-points 20 run; echo "report $? $(embeddings)"
                gra-report --embed emb@$URL --map-points 20 run; echo "again $? $(embeddings)"
                gra-report --embed emb@http://127.0.0.1:9/v1 --cache fresh run; echo "down $?"
                """, in: dir, env: ["GRA_RETRY_BASE_DELAY": "0.01"])
        let lines = r.stdoutLines
        #expect(lines.count == 4 && lines[0] == "pipeline 0", "\(r.stderr)")
        let first = lines.count > 1 ? lines[1].split(separator: " ") : []
        let again = lines.count > 2 ? lines[2].split(separator: " ") : []
        #expect(first.count == 3 && first[1] == "0" && (Int(first[2]) ?? 0) > 0, "\(lines)")
        #expect(again.count == 3 && again[1] == "0" && again[2] == first[2], "\(lines): the cache answers")
        #expect(lines.last == "down 69", "\(lines)")
        let summary =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("run/report.json"))) as! [String: Any]
        let map = summary["map"] as! [String: Any]
        #expect(map["model"] as? String == "emb")
        let points = map["points"] as! [String: [[Double]]]
        // 32 seeds, 32 generated, 28 in the dataset: at most 20 of each.
        #expect(points.mapValues(\.count) == ["seeds": 20, "generated": 20, "final": 20])
        let explained = map["explained"] as! [Double]
        #expect(explained.count == 2 && explained.allSatisfy { $0 > 0 && $0 <= 1 } && explained[0] >= explained[1])
        #expect(explained[0] + explained[1] <= 1.000_001)
        let html = try String(contentsOf: dir.appendingPathComponent("run/report.html"), encoding: .utf8)
        #expect(html.components(separatedBy: "class=\"point\"").count - 1 == 60)
    }
}
