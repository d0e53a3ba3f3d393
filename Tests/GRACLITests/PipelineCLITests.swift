import Foundation
import GRAKit
import Testing

@Suite("bin/gra-pipeline")
struct PipelineScriptTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func roundsChainAndEveryStageIsSaved() throws {
        let dir = ToolRunner.scratch()
        let r2 = GRAStagesCLITests.round2
        func gen(_ seed: String, _ instruction: String) -> String {
            #"""
            {"contains":["Write ONE new example","\u0023## Seed\nInstruction: \#
            \#(seed)"],"reply_json":{"instruction":"\#(instruction)","input":"","response":"New answer"}}
            """#
        }
        let rules = [
            #"{"contains":"extract the knowledge","reply_json":{"keywords":["k"],"summary":"S."}}"#,
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
    }
}
