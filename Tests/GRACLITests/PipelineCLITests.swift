import Foundation
import GRAKit
import Testing

@Suite("bin/gra-pipeline")
struct PipelineScriptTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A rule: the generator, given the seed whose instruction starts with `seed`, writes
    /// `instruction`.
    static func gen(_ seed: String, _ instruction: String) -> String {
        #"""
        {"contains":["Write ONE new example","\u0023## Seed\nInstruction: \#
        \#(seed)"],"reply_json":{"instruction":"\#(instruction)","input":"","response":"New answer"}}
        """#
    }
    /// A rule: every knowledge extraction answers the same.
    static let extract = #"{"contains":"extract the knowledge","reply_json":{"keywords":["k"],"summary":"S."}}"#

    @Test func roundsChainAndEveryStageIsSaved() throws {
        let dir = ToolRunner.scratch()
        let r2 = GRAStagesCLITests.round2
        let gen = Self.gen
        let rules = [
            Self.extract,
            #"{"contains":["Write ONE new example","\u0023## Seed\nInstruction: Seed one"],"reply":"no JSON here"}"#,
            gen("Seed two", "BAD sample"), gen("Seed zero", "Alpha task about sorting lists quickly"),
            gen("Seed three", "Beta task about parsing dates in logs"),
            // Round 2: Alpha begets Gamma; Beta begets a copy of Alpha (dropped by gra-dedup as a
            // duplicate of round 1) ... and Gamma's text is also in the --against set.
            gen("Alpha task", "Gamma task about merging two heaps"),
            gen("Beta task", "Alpha task about sorting lists quickly"),
            GRAStagesCLITests.score(["BAD sample", r2], "2"),
            GRAStagesCLITests.score([GRAStagesCLITests.round1], "8"), GRAStagesCLITests.score([r2], "9")
        ]
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let seeds = ["zero", "one", "two", "three"].map {
            #"{"instruction":"Seed \#($0)","output":"Answer","domain":"general","source":"mine"}"#
        }
        try Data(("[" + seeds.joined(separator: ",") + "]").utf8).write(to: dir.appendingPathComponent("seeds.json"))
        try Data(#"{"id":"bench-7","instruction":"Gamma task about merging two heaps","output":"x"}"#.utf8).write(
            to: dir.appendingPathComponent("test-split.ndjson"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models \(GRAStagesCLITests.modelList(5))
                '\(Self.repo.path)/bin/gra-pipeline' --run run --rounds 2 --to alpaca,sharegpt --against \
                test-split.ndjson seeds.json -- \(GRAStagesCLITests.pool(5)) -q
                echo "status $?"
                n=$(requests)
                '\(Self.repo.path)/bin/gra-pipeline' --run run --rounds 2 --against test-split.ndjson seeds.json -- \
                \(GRAStagesCLITests.pool(5)) -q 2>/dev/null
                echo "rerun $? $(( $(requests) - n ))"
                """, in: dir)
        #expect(r.stdoutLines == ["status 75", "rerun 75 0"], "\(r.stderr)")
        let run = dir.appendingPathComponent("run")
        func lines(_ path: String) throws -> [[String: Any]] {
            try jsonLines(Data(contentsOf: run.appendingPathComponent(path)))
        }
        func ids(_ path: String) throws -> [String] { try lines(path).compactMap { $0["id"] as? String } }
        // Seeds without an id get a content hash.
        let seedIDs = ["zero", "one", "two", "three"].map {
            SampleFields.contentID(instruction: "Seed \($0)", input: "", response: "Answer")
        }
        let alpha = seedIDs[0] + ".g0", beta = seedIDs[3] + ".g0"
        #expect(try ids("round-1/generated.ndjson") == [seedIDs[0], seedIDs[2], seedIDs[3]].map { $0 + ".g0" })
        #expect(try ids("round-1/reviewed.ndjson") == ids("round-1/generated.ndjson"))
        #expect(try ids("round-1/accepted.ndjson") == [alpha, beta])
        #expect(try ids("round-1/kept.ndjson") == [alpha, beta])
        #expect(try ids("round-1/rejects.ndjson") == [seedIDs[2] + ".g0"])
        #expect(try ids("round-1/errors-generate.ndjson") == [seedIDs[1]])
        #expect(try ids("round-2/generated.ndjson") == [alpha + ".g0", beta + ".g0"])
        #expect(try ids("round-2/accepted.ndjson") == [alpha + ".g0", beta + ".g0"])
        // gra-dedup: Gamma is in the test split, Beta's child copies round 1's Alpha (both
        // reference sets, given with --against).
        #expect(try ids("round-2/kept.ndjson").isEmpty)
        let dropped = try lines("round-2/dedup.rejects.ndjson")
        #expect(dropped.map { $0["id"] as? String } == [alpha + ".g0", beta + ".g0"])
        #expect(dropped.map { $0["method"] as? String } == ["against", "against"])
        #expect(dropped.map { $0["duplicate_of"] as? String } == ["bench-7", alpha])
        #expect(
            try lines("round-1/kept.ndjson").allSatisfy {
                (($0["gra"] as? [String: Any])?["origin"] as? [String: Any])?["round"] as? Int == 1
                    && $0["source"] as? String == "mine"
            })
        #expect(try ids("dataset.ndjson") == [alpha, beta])
        let alpaca =
            try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("train.alpaca.json")))
            as? [[String: Any]]
        #expect(
            alpaca?.count == 2
                && alpaca?.allSatisfy { $0["gra"] == nil && $0["output"] as? String == "New answer" } == true)
        #expect(try lines("train.sharegpt.jsonl").count == 2)
        // The cost: each LLM stage's --stats kept per round; stats.json sums them for the last
        // invocation, the rerun, which the cache answered whole.
        let generate = try lines("round-1/stats-generate.json").first ?? [:]
        #expect(generate["stage"] as? String == "gra-generate" && generate["records"] as? Int == 4)
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("round-2/stats-review.json").path))
        let cost = try lines("stats.json").first ?? [:]
        #expect(cost["samples"] as? Int == 2 && cost["rounds"] as? Int == 2, "\(cost)")
        #expect(cost["requests"] as? Int == 0 && (cost["cache_hits"] as? Int ?? 0) > 10, "\(cost)")
        #expect(cost["prompt_tokens"] as? Int == 0 && cost["tokens_per_sample"] as? Double == 0, "\(cost)")
    }

    /// A two-round run the server answers by content: ten seeds "Seed i …" (ids s0…s9, domain
    /// general), their samples "Task i …" in round 1 and "Next i …" in round 2 (texts that share
    /// no word), every review 8; each rule waits `delayMs`. `first` rules go before the others.
    static func writeTenSeedRun(in dir: URL, delayMs: Int, first: [String] = []) throws {
        let words = FilterContractTests.words
        let delay = delayMs > 0 ? #""delay_ms":\#(delayMs),"# : ""
        var rules = first
        rules.append(#"{"contains":"extract the knowledge",\#(delay)"reply_json":{"keywords":["k"],"summary":"S."}}"#)
        for i in 0..<10 {
            for (from, to) in [
                ("Seed \(i) ", "Task \(i) \(words(i, 12))"), ("Task \(i) ", "Next \(i) \(words(i + 50, 12))")
            ] {
                rules.append(
                    #"""
                    {"contains":["Write ONE new example","\u0023## Seed\nInstruction: \#(from)"],\#(delay)\#
                    "reply_json":{"instruction":"\#(to)","input":"","response":"Answer \#(words(i + 100, 6))"}}
                    """#)
            }
        }
        rules.append(#"{"contains":"judge",\#(delay)"reply_json":{"score":8,"comment":"fine"}}"#)
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let seeds = (0..<10).map {
            #"{"id":"s\#($0)","instruction":"Seed \#($0) \#(words($0 + 200, 8))","output":"A","domain":"general"}"#
        }
        try Data((seeds.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("seeds.ndjson"))
    }

    /// kill -9 of the whole pipeline (its process group: the script and every stage, as a
    /// crash or the OOM killer does) at three moments, then the same command again: the files
    /// left under their own names are complete (the same bytes as an uninterrupted run's), the
    /// rerun ends with the same dataset, and it sends only what was not answered before the
    /// kill (at most the requests in flight then, 3 stages x 4, are sent twice).
    @Test func killedAtAnyMomentThenTheSameCommandFinishesTheSameDataset() throws {
        let dir = ToolRunner.scratch()
        try Self.writeTenSeedRun(in: dir, delayMs: 60)
        let pipeline = "'\(Self.repo.path)/bin/gra-pipeline' --rounds 2 seeds.ndjson"
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models m1,m2,m3,m4
                M="--model m1@$URL --model m2@$URL --model m3@$URL --model m4@$URL --max-in-flight 4 -q"
                \(pipeline) --run whole -- $M 2>/dev/null; echo "whole $? $(requests)"
                for wait in 0.3 1.0 1.8; do
                    n0=$(requests)
                    setsid \(pipeline) --run "killed-$wait" -- $M 2>/dev/null & pid=$!
                    sleep $wait; kill -9 -$pid; wait $pid 2>/dev/null; sleep 0.2
                    n1=$(requests)
                    cp -r "killed-$wait" "snapshot-$wait"
                    \(pipeline) --run "killed-$wait" -- $M 2>/dev/null; echo "rerun-$wait $? $((n1 - n0)) \
                $(( $(requests) - n1 ))"
                done
                """, in: dir)
        let lines = r.stdoutLines
        #expect(lines.count == 4 && lines.first?.hasPrefix("whole 0 ") == true, "\(r.stderr)")
        let total = Int(lines.first?.split(separator: " ").last ?? "") ?? -1
        #expect(total > 100)
        let whole = dir.appendingPathComponent("whole")
        let outputs = [
            "seeds.ndjson", "round-1/generated.ndjson", "round-1/reviewed.ndjson", "round-1/accepted.ndjson",
            "round-1/kept.ndjson", "round-2/generated.ndjson", "round-2/reviewed.ndjson", "round-2/accepted.ndjson",
            "round-2/kept.ndjson", "dataset.ndjson", "train.alpaca.json", "train.sharegpt.jsonl"
        ]
        let dataset = try Data(contentsOf: whole.appendingPathComponent("dataset.ndjson"))
        #expect(try jsonLines(dataset).count == 20)
        // An uninterrupted run's cost: every request it sent, and the tokens per sample.
        let cost = try jsonLines(Data(contentsOf: whole.appendingPathComponent("stats.json"))).first ?? [:]
        #expect(cost["requests"] as? Int == total && cost["samples"] as? Int == 20, "\(cost)")
        let tokens = (cost["prompt_tokens"] as? Int ?? 0) + (cost["completion_tokens"] as? Int ?? 0)
        #expect(tokens > 0 && abs((cost["tokens_per_sample"] as? Double ?? 0) - Double(tokens) / 20) < 0.1, "\(cost)")
        var killedEarly = 0
        for line in lines.dropFirst() {
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 4, let before = Int(f[2]), let after = Int(f[3]) else {
                Issue.record("unexpected line \(line)")
                continue
            }
            let wait = String(f[0].dropFirst("rerun-".count))
            #expect(f[1] == "0", "\(line)")
            let run = dir.appendingPathComponent("killed-\(wait)")
            // Every request was sent at least once, and no more than the ones in flight at the
            // kill were sent twice.
            #expect(before + after >= total && before + after <= total + 12, "\(line), whole run \(total)")
            if before < total { killedEarly += 1 }
            for name in outputs {
                #expect(
                    try Data(contentsOf: run.appendingPathComponent(name))
                        == Data(contentsOf: whole.appendingPathComponent(name)), "\(wait): \(name)")
            }
            // Right after the kill: what is there under its own name is complete.
            let snapshot = dir.appendingPathComponent("snapshot-\(wait)")
            let left = outputs.filter {
                FileManager.default.fileExists(atPath: snapshot.appendingPathComponent($0).path)
            }
            for name in left {
                #expect(
                    try Data(contentsOf: snapshot.appendingPathComponent(name))
                        == Data(contentsOf: whole.appendingPathComponent(name)),
                    "\(wait): \(name) was left half-written")
            }
            if wait == "0.3" { #expect(!left.contains("round-1/generated.ndjson"), "\(left)") }
        }
        // The kills came before the end of the run (else this tested nothing).
        #expect(killedEarly == 3)
    }

    static let hasParallel = FileManager.default.isExecutableFile(atPath: "/usr/bin/parallel")

    /// --shards 4 with GNU parallel: each round's seeds in four contiguous parts, the three
    /// stages on each at once, then one gra-dedup over the joined round. The dataset is the
    /// unsharded run's (the same cache and --seed; gra.origin.shots may differ, since each part
    /// draws its few-shot examples from its own seeds), and every shard's files are kept.
    @Test(.enabled(if: hasParallel, "GNU parallel is not installed (bin/test installs it)"))
    func shardsWithGNUParallelGiveTheSameDataset() throws {
        let dir = ToolRunner.scratch()
        let words = FilterContractTests.words
        // Seed 3's sample is rejected in round 1; seed 8's child copies seed 2's (dropped by
        // gra-dedup across shards).
        try Self.writeTenSeedRun(
            in: dir, delayMs: 0,
            first: [
                #"""
                {"contains":["Write ONE new example","\u0023## Seed\nInstruction: Task 8 "],\#
                "reply_json":{"instruction":"Next 2 \#(words(52, 12))","input":"",\#
                "response":"Answer \#(words(102, 6))"}}
                """#,
                GRAStagesCLITests.score(["Task 3 ", GRAStagesCLITests.round1], "2")
            ])
        let pipeline = "'\(Self.repo.path)/bin/gra-pipeline' --rounds 2 seeds.ndjson"
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models m1,m2,m3,m4
                M="--model m1@$URL --model m2@$URL --model m3@$URL --model m4@$URL --cache cache -q"
                \(pipeline) --run one -- $M 2>/dev/null; echo "one $?"
                \(pipeline) --run four --shards 4 -- $M 2> four.err; echo "four $?"
                # The Slurm job array of examples/slurm, run as Slurm would run its tasks.
                printf '{"models":[{"name":"m1","base_url":"%s"},{"name":"m2","base_url":"%s"},\
                {"name":"m3","base_url":"%s"},{"name":"m4","base_url":"%s"}]}' $URL $URL $URL $URL > pool.json
                mkdir -p node-tmp
                for i in 0 1 2; do
                    SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_JOB_ID=77 POOL=pool.json \
                    TMPDIR=$PWD/node-tmp '\(Self.repo.path)/examples/slurm/gra-array.sh' seeds.ndjson slurm \
                    2> slurm-$i.err
                    echo "task $i $?"
                done
                '\(Self.repo.path)/examples/slurm/gra-join.sh' seeds.ndjson slurm 2> join.err; echo "join $?"
                """, in: dir)
        #expect(
            r.stdoutLines == ["one 0", "four 0", "task 0 0", "task 1 0", "task 2 0", "join 0"],
            "\(r.stdoutText) \(r.stderr)")
        // The array's dataset: round 1's kept samples, grouped by shard instead of in input order.
        let slurm = try jsonLines(Data(contentsOf: dir.appendingPathComponent("slurm/dataset.ndjson")))
        let kept = try jsonLines(Data(contentsOf: dir.appendingPathComponent("one/round-1/kept.ndjson")))
        #expect(
            Set(slurm.compactMap { $0["id"] as? String }) == Set(kept.compactMap { $0["id"] as? String })
                && slurm.count == 9, "\(slurm.count)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("slurm/train.sharegpt.jsonl").path))
        // A record without what depends on the part it was in: its few-shot examples (and so the
        // prompt's version), and, in a rejects or errors line, the line number it had there.
        func comparable(_ o: [String: Any]) -> [String: Any] {
            var o = o
            o["where"] = nil
            if let inner = o["record"] as? [String: Any] { o["record"] = comparable(inner) }
            if var gra = o["gra"] as? [String: Any], var origin = gra["origin"] as? [String: Any] {
                origin["shots"] = nil
                origin["prompt_version"] = nil
                gra["origin"] = origin
                o["gra"] = gra
            }
            return o
        }
        func records(_ run: String, _ name: String) throws -> [String] {
            try jsonLines(Data(contentsOf: dir.appendingPathComponent("\(run)/\(name)"))).map { o -> String in
                let data = try JSONSerialization.data(withJSONObject: comparable(o), options: [.sortedKeys])
                return String(decoding: data, as: UTF8.self)
            }
        }
        let one = try records("one", "dataset.ndjson"), four = try records("four", "dataset.ndjson")
        #expect(one.count == 17 && four == one, "one \(one.count), four \(four.count)")
        for name in [
            "round-1/generated.ndjson", "round-1/rejects.ndjson", "round-2/kept.ndjson",
            "round-2/dedup.rejects.ndjson"
        ] {
            #expect(try records("four", name) == records("one", name), "\(name)")
        }
        // Every shard's files are kept, and its seeds are a contiguous part of the round's.
        let parts = try (0..<4).map { k in
            try jsonLines(Data(contentsOf: dir.appendingPathComponent("four/round-1/shard-\(k)/seeds.ndjson")))
                .compactMap { $0["id"] as? String }
        }
        #expect(parts.flatMap { $0 } == (0..<10).map { "s\($0)" } && parts.allSatisfy { !$0.isEmpty }, "\(parts)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("four/round-2/shard-3").path))
        #expect(
            try String(contentsOf: dir.appendingPathComponent("four.err"), encoding: .utf8).contains(
                "4 shards with GNU parallel"))
    }
}

/// `bin/gra-pipeline --refine-seeds` on the demo: the seeds through the same committee, no
/// generation. Three seeds get scripted reviews (prepended to the demo script): one rejected
/// on its instruction, one on its response, one that `demo-llama-3.1-8b` alone faults (a dispute
/// when it sits on the committee, which the area chair then rejects).
@Suite("bin/gra-pipeline --refine-seeds")
struct RefineSeedsTests {
    static let round1 = "you judge only the INSTRUCTION"
    static let round2 = "you judge the RESPONSE"
    static let badInstruction = "A bakery sells muffins for $2.75 each"
    static let badResponse = "Solve the system of equations"
    static let faulted = "Two fair six-sided dice are rolled"

    @Test func refinedSeedsDatasetAndIntegratedSet() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let demo = try String(
            contentsOf: PipelineScriptTests.repo.appendingPathComponent("examples/demo/server-script.json"),
            encoding: .utf8)
        func review(_ text: String, _ round: String, _ score: Int, model: String? = nil) -> String {
            let m = model.map { #""model":"\#($0)","# } ?? ""
            return #"{\#(m)"contains":["\#(text)","\#(round)"],"reply_json":{"score":\#(score),"comment":"scripted"}},"#
        }
        let rules =
            review(Self.badInstruction, Self.round1, 3) + review(Self.badResponse, Self.round2, 4)
            + review(Self.faulted, Self.round2, 2, model: "demo-llama-3.1-8b") + review(Self.faulted, Self.round2, 9)
            + #"{"contains":["area chair","\#(Self.faulted)"],"reply_json":{"decision":"reject","score":3,"#
            + #""rationale":"the count of outcomes is wrong"}},"#
        let script = demo.replacingOccurrences(of: #""rules": ["#, with: #""rules": ["# + rules)
        #expect(script != demo)
        try Data(script.utf8).write(to: dir.appendingPathComponent("script.json"))
        let models = ["demo-llama-3.1-8b", "demo-qwen-2.5-7b", "demo-mistral-7b", "demo-gemma-2-9b", "demo-glm-4-9b"]
        let pool = models.map { "--model \($0)@$URL" }.joined(separator: " ")
        let seeds = PipelineScriptTests.repo.appendingPathComponent("examples/seeds.alpaca.json").path
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models \(models.joined(separator: ","))
                '\(PipelineScriptTests.repo.path)/bin/gra-pipeline' --run run --refine-seeds '\(seeds)' \
                -- \(pool) --cache cache --quiet 2> pipeline.err
                echo "pipeline $?"
                '\(PipelineScriptTests.repo.path)/bin/gra-pipeline' --run plain '\(seeds)' \
                -- \(pool) --cache cache --quiet 2> plain.err
                echo "plain $?"
                cmp run/dataset.ndjson plain/dataset.ndjson && echo "same dataset"
                cat run/refined-seeds.ndjson run/dataset.ndjson | cmp - run/integrated.ndjson && echo "integrated"
                test -e plain/refined-seeds.ndjson || echo "no refined seeds without the flag"
                """, in: dir)
        #expect(
            r.stdoutLines == [
                "pipeline 0", "plain 0", "same dataset", "integrated", "no refined seeds without the flag"
            ], "\(r.stderr)")
        let run = dir.appendingPathComponent("run")
        func lines(_ path: String) throws -> [[String: Any]] {
            try jsonLines(Data(contentsOf: run.appendingPathComponent(path)))
        }
        let seedRecords = try lines("seeds.ndjson")
        func id(_ prefix: String) -> String {
            seedRecords.first { ($0["instruction"] as? String ?? "").hasPrefix(prefix) }?["id"] as? String ?? "?"
        }
        let reviewed = try lines("refine/reviewed.ndjson")
        #expect(reviewed.count == seedRecords.count)
        var decisions: [String: String] = [:]
        var committees: [String: [String]] = [:]
        for o in reviewed {
            let review = (o["gra"] as! [String: Any])["review"] as! [String: Any]
            decisions[o["id"] as! String] = review["decision"] as? String
            committees[o["id"] as! String] = (review["roles"] as! [String: Any])["reviewers"] as? [String]
            // A seed has no author.
            #expect((review["roles"] as! [String: Any])["author"] is NSNull)
        }
        #expect(decisions[id(Self.badInstruction)] == "reject")
        #expect(decisions[id(Self.badResponse)] == "reject")
        let faultedID = id(Self.faulted)
        let disputed = committees[faultedID]?.contains("demo-llama-3.1-8b") == true
        #expect(decisions[faultedID] == (disputed ? "dispute" : "accept"), "\(committees[faultedID] ?? [])")
        let rejected = Set([id(Self.badInstruction), id(Self.badResponse)] + (disputed ? [faultedID] : []))
        let refined = try lines("refined-seeds.ndjson").compactMap { $0["id"] as? String }
        #expect(refined == seedRecords.compactMap { $0["id"] as? String }.filter { !rejected.contains($0) })
        let rejects = try lines("refine/rejects.ndjson")
        #expect(Set(rejects.compactMap { $0["id"] as? String }) == rejected)
        for o in rejects where o["id"] as? String == faultedID {
            #expect((o["reason"] as? String ?? "").hasPrefix("rejected by the adjudicator"))
        }
        #expect(r.stderr.isEmpty || !r.stderr.contains("error"), "\(r.stderr)")
    }
}
