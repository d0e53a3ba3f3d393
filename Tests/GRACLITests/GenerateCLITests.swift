import Foundation
import GRAKit
import Testing

@Suite("gra-generate end to end")
struct GenerateCLITests {
    static let prelude = MapCLITests.prelude

    /// A scratch directory with the server script and the input records (as the GRA stage tests make it).
    func setUp(rules: [String], records: [String]) throws -> URL {
        try GRAStagesCLITests().setUp(rules: rules, records: records)
    }

    func lines(_ dir: URL, _ name: String) throws -> [[String: Any]] {
        try jsonLines(Data(contentsOf: dir.appendingPathComponent(name)))
    }

    static func origin(_ o: [String: Any]) -> [String: Any] {
        ((o["gra"] as? [String: Any])?["origin"] as? [String: Any]) ?? [:]
    }

    static let rules = [
        // s0's classification is slow: later seeds must still draw their shots as if it came first.
        #"""
        {"contains":["Classify the instruction-tuning example","SEED-0 "],"delay_ms":300,\#
        "reply_json":{"domain":"math"}}
        """#,
        #"{"contains":["Classify the instruction-tuning example","SEED-7 "],"reply_json":{"domain":"poetry"}}"#,
        #"{"contains":"Classify the instruction-tuning example","reply":"```json\n{\"domain\": \"math\"}\n```"}"#,
        #"""
        {"contains":["extract the knowledge","SEED-2 \#
        "],"delay_ms":200,"reply_json":{"keywords":["late"],"summary":"Slow."}}
        """#,
        #"{"contains":"extract the knowledge","reply_json":{"keywords":["fractions","ratios"],"summary":"Ratios."}}"#,
        #"""
        {"contains":["Write ONE new example","(variant 2)","\u0023## Seed\nInstruction: Task SEED-5 \#
        "],"reply":"Sure! Here is a new task about ratios."}
        """#,
        #"""
        {"contains":"Write ONE new example","reply_json":{"instruction":"New task","input":"","response":"New \#
        answer"}}
        """#
    ]

    /// Ten seeds: s0 and s7 have no domain (classified; s7's label is outside the set), s4 has
    /// its keywords and summary already, all carry a user field.
    static let seeds: [String] = (0..<10).map { i in
        let domain = (i == 0 || i == 7) ? "" : #""domain":"math","#
        let knowledge = i == 4 ? #""keywords":["given"],"summary":"Given.","# : ""
        return
            #"""
            {"id":"s\#(i)",\#(domain)\#(knowledge)"instruction":"Task SEED-\#(i) here","output":"Answer \#
            \#(i)","source":"user-\#(i)"}
            """#
    }

    @Test func samplesOriginsShotsFailuresAndRerun() throws {
        let dir = try setUp(rules: Self.rules, records: Self.seeds)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models m1,m2,m3
                M="--model m1@$URL --model m2@$URL --model m3@$URL --per-seed 2 --parse-retries 1"
                gra-generate $M --no-cache --max-in-flight 1 --errors err1.ndjson < in.ndjson > one.ndjson; echo "one \
                $?"
                gra-generate $M --cache cache --max-in-flight 32 --keep-seeds --round 3 --errors err.ndjson < \
                in.ndjson > many.ndjson; echo "many $?"
                n=$(requests)
                gra-generate $M --cache cache --max-in-flight 32 --keep-seeds --round 3 --errors err2.ndjson < \
                in.ndjson > again.ndjson; echo "again $?"
                echo "extra $(( $(requests) - n ))"
                cmp many.ndjson again.ndjson && echo same
                n=$(requests)
                gra-generate --model m1@$URL --model m2@$URL --model m3@$URL --per-seed 3 --parse-retries 1 --cache \
                cache < in.ndjson > three.ndjson 2>/dev/null
                echo "three $? $(( $(requests) - n ))"
                """, in: dir)
        // Raising --per-seed asks only the new samples (one per seed that got a domain).
        #expect(r.stdoutLines == ["one 75", "many 75", "again 75", "extra 0", "same", "three 75 9"], "\(r.stderr)")
        let one = try lines(dir, "one.ndjson")
        let many = try lines(dir, "many.ndjson")
        // Samples: 2 per seed, ids <seed>.g<i>, in input order; s7 failed classification; s5's
        // second sample never parsed.
        let expectedIDs = (0..<10).filter { $0 != 7 }.flatMap { i in i == 5 ? ["s5.g0"] : ["s\(i).g0", "s\(i).g1"] }
        #expect(one.map { $0["id"] as? String } == expectedIDs)
        #expect(many.filter { Self.origin($0)["is_seed"] == nil }.map { $0["id"] as? String } == expectedIDs)
        #expect(
            many.filter { Self.origin($0)["is_seed"] as? Bool == true }.map { $0["id"] as? String }
                == (0..<10).filter { $0 != 7 }.map { "s\($0)" })
        for o in one {
            let origin = Self.origin(o)
            let seed = origin["seed"] as? String ?? "?"
            #expect(
                o["instruction"] as? String == "New task" && o["response"] as? String == "New answer"
                    && o["domain"] as? String == "math")
            #expect(o["source"] as? String == "user-" + seed.dropFirst())
            #expect(["m1", "m2", "m3"].contains(origin["generator"] as? String ?? ""))
            #expect(
                origin["keywords"] as? [String]
                    == (seed == "s4" ? ["given"] : seed == "s2" ? ["late"] : ["fractions", "ratios"]))
            // Shots: other seeds of the same domain read before this one, at most 2.
            let shots = origin["shots"] as? [String] ?? []
            let index = Int(seed.dropFirst())!
            #expect(shots.count == min(2, (0..<index).filter { $0 != 7 }.count))
            #expect(shots.allSatisfy { Int($0.dropFirst())! < index && $0 != "s7" })
        }
        // The draws depend on input order and --seed only, not on which reply came first.
        #expect(
            one.map { "\(Self.origin($0)["shots"] ?? "")" }
                == many.filter { Self.origin($0)["is_seed"] == nil }.map { "\(Self.origin($0)["shots"] ?? "")" })
        #expect(many.allSatisfy { Self.origin($0)["round"] as? Int == 3 })
        let s0 = many.first { $0["id"] as? String == "s0" }
        #expect(
            s0?["domain"] as? String == "math" && s0?["keywords"] as? [String] == ["fractions", "ratios"]
                && s0?["summary"] as? String == "Ratios.")
        // Errors: the seed whose label is not a domain, and the one sample that never parsed.
        let errors = try lines(dir, "err.ndjson")
        #expect(errors.map { $0["id"] as? String } == ["s5", "s7"])
        #expect(
            errors[0]["sample_id"] as? String == "s5.g1"
                && (errors[0]["reason"] as? String)?.contains("holds no JSON") == true)
        #expect(
            errors[1]["step"] as? String == "domain classification"
                && (errors[1]["reason"] as? String)?.contains("should be one of") == true)
    }

    /// --shot-reuse: consecutive seeds of a domain are shown one draw of examples, so their
    /// prompts are the same text up to the seed (what a server's prefix cache reuses); the
    /// seed comes last. Early seeds redraw while the reservoir is smaller than --shots.
    @Test func seedsOfADomainShareOneDrawAndOnePromptPrefix() throws {
        let seeds = (0..<12).map {
            #"""
            {"id":"s\#($0)","domain":"math","keywords":["k"],"summary":"S.","instruction":"Task SEED-\#($0) \#
            here","output":"Answer \#($0)"}
            """#
        }
        let dir = try setUp(
            rules: [#"{"reply_json":{"instruction":"New task","input":"","response":"New answer"}}"#], records: seeds)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models m1
                gra-generate --model m1@$URL --no-cache --shot-reuse 4 < in.ndjson > out.ndjson; echo "status $?"
                gra-generate --model m1@$URL --no-cache --shot-reuse 1 < in.ndjson > each.ndjson; echo "each $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0", "each 0"], "\(r.stderr)")
        let shots = try lines(dir, "out.ndjson").map { Set(Self.origin($0)["shots"] as? [String] ?? []) }
        #expect(shots.count == 12)
        // s0 has none, s1 the one seed before it; from s2 on, draws of 2 serve 4 seeds each.
        #expect(shots[0].isEmpty && shots[1] == ["s0"] && shots[2] == ["s0", "s1"])
        #expect(Set(shots[2...5]).count == 1 && Set(shots[6...9]).count == 1 && Set(shots[10...11]).count == 1)
        for (i, s) in shots.enumerated() { #expect(s.allSatisfy { Int($0.dropFirst())! < i }) }
        // The prompts of one draw are the same text up to the seed's own section.
        let marker = "### Seed\nInstruction: Task SEED-"
        func seedNumber(_ prompt: String) -> Int {
            Int(prompt.components(separatedBy: marker).last!.prefix(while: \.isNumber)) ?? -1
        }
        let prompts = try chatLog(dir).map(\.prompt).prefix(12).sorted { seedNumber($0) < seedNumber($1) }
        #expect(prompts.count == 12 && prompts.allSatisfy { $0.contains(marker) })
        let heads = prompts.map { String($0[..<($0.range(of: "### Seed\n")?.lowerBound ?? $0.endIndex)]) }
        #expect(Set(heads[2...5]).count == 1 && Set(heads[6...9]).count == 1)
        #expect(heads[5] != heads[6] || shots[5] == shots[6])
        // With --shot-reuse 1 every seed draws anew: the prefixes from s2 on are not all one.
        let each = try lines(dir, "each.ndjson").map { Set(Self.origin($0)["shots"] as? [String] ?? []) }
        #expect(Set(each[2...11]).count > 3)
    }

    func chatLog(_ dir: URL) throws -> [(model: String, prompt: String)] {
        try GRAStagesCLITests().chatLog(dir)
    }
}
