import Foundation
import GRAKit
import Testing

/// gra-generate, gra-review and gra-adjudicate through the built binaries, in real pipes,
/// against gra-testserver scripted per role and round.
@Suite("GRA stages end to end")
struct GRAStagesCLITests {
    static let prelude = MapCLITests.prelude
    static let round1 = "judge only the INSTRUCTION"
    static let round2 = "judge the RESPONSE"
    static let adjudicate = "The reviewers disagreed"

    static func pool(_ n: Int) -> String { (1...n).map { "--model m\($0)@$URL" }.joined(separator: " ") }
    static func modelList(_ n: Int) -> String { (1...n).map { "m\($0)" }.joined(separator: ",") }

    func setUp(rules: [String], records: [String]) throws -> URL {
        let dir = ToolRunner.scratch()
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        try Data((records.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        return dir
    }

    /// A rule answering `times` requests that contain all of `contains` with a review score.
    static func score(_ contains: [String], _ score: String, _ comment: String = "c", times: Int? = nil) -> String {
        let c = contains.map { "\"\($0)\"" }.joined(separator: ",")
        return
            #"""
            {"contains":[\#(c)]\#(times.map { ",\"times\":\($0)" } ?? ""),"reply_json":{"score":\#(score),\#
            "comment":"\#(comment)"}}
            """#
    }

    static func sample(_ id: String, _ marker: String, generator: String = "m1", extra: String = "") -> String {
        #"""
        {"id":"\#(id)","instruction":"Task \#(marker)","input":"","response":"Answer \#
        \#(marker)"\#(extra),"gra":{"origin":{"generator":"\#(generator)"}}}
        """#
    }

    func lines(_ dir: URL, _ name: String) throws -> [[String: Any]] {
        let url = dir.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        return try jsonLines(Data(contentsOf: url))
    }

    func chatLog(_ dir: URL) throws -> [(model: String, prompt: String)] {
        try lines(dir, "log.ndjson").filter { $0["path"] as? String == "/v1/chat/completions" }.map {
            let body = $0["body"] as? [String: Any]
            let prompt = ((body?["messages"] as? [[String: Any]])?.last?["content"] as? String) ?? ""
            return ((body?["model"] as? String) ?? "", prompt)
        }
    }

    static func review(_ o: [String: Any]) -> [String: Any] {
        ((o["gra"] as? [String: Any])?["review"] as? [String: Any]) ?? [:]
    }

    /// The labelled case of the issue: the paper's dispute (two reviewers score a bad response
    /// 9, one 5 — integers, as the schema asks: mean 7.67 passes, variance 3.56 > 2.0; the paper's
    /// own 9, 9, 5.66 is in ReviewAndRolesTests) goes to the adjudicator, who rejects
    /// it; next to a clear accept, a round-1 reject, a round-2 reject and a dispute the
    /// adjudicator accepts.
    @Test func paperCaseAndClearDecisions() throws {
        let r1 = Self.round1, r2 = Self.round2
        let rules = [
            Self.score(["MARK-badinstr", r1], "3", times: 1), Self.score(["MARK-badinstr", r1], "4", times: 1),
            Self.score(["MARK-badinstr", r1], "3"),
            Self.score(["MARK-badresp", r2], "3", times: 1), Self.score(["MARK-badresp", r2], "4", times: 1),
            Self.score(["MARK-badresp", r2], "3"),
            Self.score(["MARK-paper", r2], "9", "looks right", times: 2),
            Self.score(["MARK-paper", r2], "5", "the total is wrong"),
            Self.score(["MARK-saved", r2], "9", times: 2),
            Self.score(["MARK-saved", r2], "4", "wrongly claims an error"),
            #"""
            {"contains":["MARK-paper","\#(Self.adjudicate)"],"reply_json":{"decision":"reject","score":3,\#
            "rationale":"the total is wrong"}}
            """#,
            #"""
            {"contains":["MARK-saved","\#(Self.adjudicate)"],"reply_json":{"decision":"accept","score":9,\#
            "rationale":"the low review was mistaken"}}
            """#,
            Self.score([r1], "8"), Self.score([r2], "9", times: 1), Self.score([r2], "8")
        ]
        let records = ["good", "badinstr", "badresp", "paper", "saved"].map {
            Self.sample($0, "MARK-\($0)", extra: #","source":"user","meta":{"big":123456789012345678901234567890}"#)
        }
        let dir = try setUp(rules: rules, records: records)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models \(Self.modelList(5))
                gra-review \(Self.pool(5)) --cache cache < in.ndjson | tee reviewed.ndjson | gra-adjudicate \
                \(Self.pool(5)) --cache cache --rejects rejects.ndjson > accepted.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let reviewed = try lines(dir, "reviewed.ndjson")
        let decisions = reviewed.map { Self.review($0)["decision"] as? String }
        #expect(decisions == ["accept", "reject", "reject", "dispute", "dispute"])
        let paper = Self.review(reviewed[3])
        let rounds = paper["rounds"] as? [[String: Any]] ?? []
        #expect(rounds.count == 2)
        #expect(rounds.first?["mean"] as? Double == 8 && rounds.first?["variance"] as? Double == 0)
        #expect(rounds.last?["mean"] as? Double == 7.6667)
        #expect(rounds.last?["variance"] as? Double == 3.5556)
        #expect((paper["reason"] as? String)?.contains("round 2 variance 3.56 > 2") == true)
        #expect(
            ((paper["reviews"] as? [[String: Any]]) ?? []).compactMap { $0["score"] as? Double }.sorted() == [
                5, 8, 8, 8, 9, 9
            ])
        // Round 1 rejected: round 2 never asked (3 requests mention the record, not 6).
        let log = try chatLog(dir)
        #expect(log.filter { $0.prompt.contains("MARK-badinstr") }.count == 3)
        #expect(((Self.review(reviewed[1])["reviews"] as? [[String: Any]]) ?? []).count == 3)
        #expect(
            (Self.review(reviewed[1])["reason"] as? String)?.hasPrefix("instruction rejected in round 1: mean 3.33 < 7")
                == true)
        // Roles: the author (m1) never reviews; the adjudicator is neither; the dispute went to it.
        for o in reviewed {
            let roles = Self.review(o)["roles"] as? [String: Any] ?? [:]
            let reviewers = roles["reviewers"] as? [String] ?? []
            #expect(
                roles["author"] as? String == "m1" && reviewers.count == 3 && Set(reviewers).count == 3
                    && !reviewers.contains("m1"))
            let adjudicator = roles["adjudicator"] as? String ?? ""
            #expect(adjudicator != "m1" && !reviewers.contains(adjudicator) && !adjudicator.isEmpty)
        }
        let paperAdjudicator = ((paper["roles"] as? [String: Any])?["adjudicator"] as? String) ?? "?"
        #expect(
            log.filter { $0.prompt.contains(Self.adjudicate) && $0.prompt.contains("MARK-paper") }.map(\.model) == [
                paperAdjudicator
            ])
        // Adjudication: accepted ones on stdout, in order, untouched fields kept.
        let accepted = try lines(dir, "accepted.ndjson")
        #expect(accepted.map { $0["id"] as? String } == ["good", "saved"])
        #expect(accepted.allSatisfy { $0["source"] as? String == "user" })
        let raw = try String(contentsOf: dir.appendingPathComponent("accepted.ndjson"), encoding: .utf8)
        #expect(raw.components(separatedBy: "123456789012345678901234567890").count == 3)
        #expect(
            (((accepted[1]["gra"] as? [String: Any])?["adjudication"] as? [String: Any])?["decision"] as? String)
                == "accept")
        let rejects = try lines(dir, "rejects.ndjson")
        #expect(rejects.map { $0["id"] as? String } == ["badinstr", "badresp", "paper"])
        let reasons = rejects.map { $0["reason"] as? String ?? "" }
        #expect(reasons[0].hasPrefix("rejected by reviewers: instruction rejected in round 1"))
        #expect(reasons[1].hasPrefix("rejected by reviewers: response rejected in round 2"))
        #expect(reasons[2] == "rejected by the adjudicator (\(paperAdjudicator)): the total is wrong")
        #expect(
            r.stderr.contains(
                """
                gra-adjudicate: 2 accepted (1 by the adjudicator), 2 rejected by reviewers, 1 rejected by the \
                adjudicator, 0 errors
                """
            ))
        #expect(r.stderr.contains("gra-review: decisions: 1 accept, 2 reject, 2 dispute"))
        #expect(!r.stderr.contains("relaxed"))

        // --rescore: new thresholds, new decisions, not one request. With variance up to 4 the
        // paper's case (3.56) is accepted; "saved" (9, 9, 4: variance 5.56) stays disputed.
        let before = try chatLog(dir).count
        let again = try ToolRunner.sh(
            Self.prelude + """
                gra-review --rescore --max-variance 4 < reviewed.ndjson > loose.ndjson; echo "loose $?"
                gra-review --rescore --min-score 8.5 < reviewed.ndjson > strict.ndjson; echo "strict $?"
                gra-review --rescore --min-score 3 --errors err.ndjson < reviewed.ndjson > low.ndjson; echo "low $?"
                """, in: dir)
        #expect(again.stdoutLines == ["loose 0", "strict 0", "low 75"], "\(again.stderr)")
        #expect(try chatLog(dir).count == before)
        #expect(
            try lines(dir, "loose.ndjson").map { Self.review($0)["decision"] as? String } == [
                "accept", "reject", "reject", "accept", "dispute"
            ])
        // Round 1 means are 8 (3.33 for badinstr): all rejected with agreement in round 1.
        #expect(
            try lines(dir, "strict.ndjson").map { Self.review($0)["decision"] as? String } == [
                "reject", "reject", "reject", "reject", "reject"
            ])
        let low = try lines(dir, "err.ndjson")
        #expect(low.map { $0["id"] as? String } == ["badinstr"])
        #expect((low.first?["reason"] as? String)?.contains("round 2 was never asked") == true)
    }

    /// Role rules for pools of 1, 3, 5 and 7; the same --seed gives the same roles and the
    /// same output from the cache (no second request); another seed other roles.
    @Test(arguments: [1, 3, 5, 7]) func rolesForPoolSizes(_ n: Int) throws {
        let records = (0..<12).map { Self.sample("r\($0)", "MARK-\($0)", generator: "m1") }
        let dir = try setUp(rules: [Self.score([Self.round1], "8"), Self.score([Self.round2], "8")], records: records)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models \(Self.modelList(n))
                gra-review \(Self.pool(n)) --seed 7 --cache cache < in.ndjson > a.ndjson; echo "a $?"
                n1=$(requests)
                gra-review \(Self.pool(n)) --seed 7 --cache cache < in.ndjson > b.ndjson 2> b.err; echo "b $?"
                echo "extra $(( $(requests) - n1 ))"
                cmp a.ndjson b.ndjson && echo same
                gra-review \(Self.pool(n)) --seed 8 --cache cache < in.ndjson > c.ndjson 2>/dev/null; echo "c $?"
                """, in: dir)
        #expect(r.stdoutLines == ["a 0", "b 0", "extra 0", "same", "c 0"], "\(r.stderr)")
        let a = try lines(dir, "a.ndjson").map { Self.review($0)["roles"] as? [String: Any] ?? [:] }
        let c = try lines(dir, "c.ndjson").map { Self.review($0)["roles"] as? [String: Any] ?? [:] }
        #expect(a.count == 12)
        for roles in a {
            let reviewers = roles["reviewers"] as? [String] ?? []
            let adjudicator = roles["adjudicator"] as? String ?? ""
            #expect(reviewers.count == 3)
            switch n {
            case 1: #expect(reviewers == ["m1", "m1", "m1"] && adjudicator == "m1")
            case 3: #expect(Set(reviewers) == ["m2", "m3", "m1"] && adjudicator != "m1")
            default:
                #expect(
                    !reviewers.contains("m1") && Set(reviewers).count == 3 && adjudicator != "m1"
                        && !reviewers.contains(adjudicator))
            }
        }
        let warnings = r.stderr.components(separatedBy: "\n").filter { $0.contains("role rule relaxed") }
        if n >= 5 {
            #expect(warnings.isEmpty)
        } else {
            // Said once per rule per run, not once per record.
            #expect(!warnings.isEmpty && Set(warnings).count == warnings.count, "\(warnings)")
        }
        if n >= 5 { #expect(a.map { "\($0["reviewers"] ?? "")" } != c.map { "\($0["reviewers"] ?? "")" }) }
    }

    /// The config's roles: generators per domain, fixed reviewers and adjudicators.
    @Test func configRoleOverrides() throws {
        let rules = [
            #"{"contains":"extract the knowledge","reply_json":{"keywords":["k"],"summary":"S."}}"#,
            #"{"contains":"Write ONE new example","reply_json":{"instruction":"New","input":"","response":"Old"}}"#,
            Self.score([Self.round1], "8"), Self.score([Self.round2], "9", times: 10), Self.score([Self.round2], "2"),
            #"{"contains":"\#(Self.adjudicate)","reply_json":{"decision":"accept","score":8,"rationale":"fine"}}"#
        ]
        let seeds = (0..<8).map {
            #"{"id":"s\#($0)","domain":"\#($0 % 2 == 0 ? "math" : "code")","instruction":"Task \#($0)","output":"A"}"#
        }
        let dir = try setUp(rules: rules, records: seeds)
        let config = #"""
            {"models": [\#((1...5).map { #"{"name":"m\#($0)","base_url":"URL"}"# }.joined(separator: ","))],
             "roles": {"generators": {"math": ["m1"]}, "reviewers": ["m2", "m3", "m4"], "adjudicators": ["m5"]}}
            """#
        try Data(config.utf8).write(to: dir.appendingPathComponent("config.template"))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models \(Self.modelList(5))
                sed "s|URL|$URL|g" config.template > gra.json
                gra-generate --config gra.json --no-cache --per-seed 2 < in.ndjson | tee gen.ndjson \
                  | gra-review --config gra.json --no-cache | tee rev.ndjson \
                  | gra-adjudicate --config gra.json --no-cache > acc.ndjson
                echo "status $?"
                sed 's/"adjudicators": \\["m5"\\]/"adjudicators": ["m9"]/' gra.json > bad.json
                gra-review --config bad.json --no-cache < gen.ndjson > /dev/null 2> bad.err; echo "bad $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0", "bad 64"], "\(r.stderr)")
        let gen = try lines(dir, "gen.ndjson")
        #expect(gen.count == 16)
        let generators = gen.map {
            (($0["gra"] as? [String: Any])?["origin"] as? [String: Any])?["generator"] as? String ?? ""
        }
        #expect(zip(gen, generators).filter { $0.0["domain"] as? String == "math" }.allSatisfy { $0.1 == "m1" })
        #expect(Set(zip(gen, generators).filter { $0.0["domain"] as? String == "code" }.map(\.1)).count > 1)
        let rev = try lines(dir, "rev.ndjson")
        for o in rev {
            let roles = Self.review(o)["roles"] as? [String: Any] ?? [:]
            let reviewers = Set(roles["reviewers"] as? [String] ?? [])
            #expect(reviewers.isSubset(of: ["m2", "m3", "m4"]) && roles["adjudicator"] as? String == "m5")
        }
        #expect(try chatLog(dir).filter { $0.prompt.contains(Self.adjudicate) }.allSatisfy { $0.model == "m5" })
        #expect(
            try String(contentsOf: dir.appendingPathComponent("bad.err"), encoding: .utf8).contains(
                "roles.adjudicators names 'm9'"))
    }

    /// Seeds reviewed directly (the paper's "GRA-Refined seed"): no author, an id from the
    /// content, the schema sent as response_format unless --no-response-format.
    @Test func seedsReviewedDirectlyAndResponseFormat() throws {
        let dir = try setUp(
            rules: [Self.score([Self.round1], "8"), Self.score([Self.round2], "9")],
            records: [#"{"instruction":"Name a prime.","output":"7","tag":"alpaca"}"#])
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models \(Self.modelList(3))
                gra-review \(Self.pool(3)) --no-cache < in.ndjson > a.ndjson; echo "a $?"
                gra-review \(Self.pool(3)) --no-cache --no-response-format < in.ndjson > b.ndjson; echo "b $?"
                """, in: dir)
        #expect(r.stdoutLines == ["a 0", "b 0"], "\(r.stderr)")
        let a = try lines(dir, "a.ndjson")
        let roles = Self.review(a[0])["roles"] as? [String: Any] ?? [:]
        #expect(roles["author"] is NSNull)
        #expect(Set(roles["reviewers"] as? [String] ?? []) == ["m1", "m2", "m3"])
        #expect(a[0]["id"] as? String == SampleFields.contentID(instruction: "Name a prime.", input: "", response: "7"))
        #expect(
            a[0]["tag"] as? String == "alpaca" && a[0]["output"] as? String == "7"
                && Self.review(a[0])["decision"] as? String == "accept")
        // Three models, three reviewers and no author: the adjudicator has to be one of them.
        #expect(r.stderr.components(separatedBy: "role rule relaxed: the adjudicator is also a reviewer").count == 3)
        let bodies = try lines(dir, "log.ndjson").filter { $0["path"] as? String == "/v1/chat/completions" }.compactMap
        { $0["body"] as? [String: Any] }
        #expect(bodies.count == 12)
        let formats = bodies.map { $0["response_format"] as? [String: Any] }
        #expect(
            formats.prefix(6).allSatisfy { f in
                let schema = (f?["json_schema"] as? [String: Any])?["schema"] as? [String: Any]
                return f?["type"] as? String == "json_schema"
                    && (schema?["required"] as? [String]) == ["score", "comment"]
            })
        #expect(formats.suffix(6).allSatisfy { $0 == nil })
    }

    /// Sampling flags reach the request body as they are (gra-map and the role stages share them).
    @Test func samplingFlagsAreSent() throws {
        let dir = try setUp(
            rules: [Self.score([Self.round1], "8"), Self.score([Self.round2], "8")],
            records: [Self.sample("r0", "MARK-0")])
        try Data("{{instruction}}\n".utf8).write(to: dir.appendingPathComponent("prompt.txt"))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models m1
                gra-map --model m1@$URL --no-cache --prompt prompt.txt --into x --temperature 0.2 --top-p 0.9 \
                --max-tokens 64 --sampling-seed 7 --stop '###' --stop END < in.ndjson > /dev/null; echo "map $?"
                gra-review --model m1@$URL --no-cache --reviewers 1 --temperature 0 --sampling-seed 3 --max-tokens \
                100 < in.ndjson > /dev/null 2>&1; echo "review $?"
                """, in: dir)
        #expect(r.stdoutLines == ["map 0", "review 0"], "\(r.stderr)")
        let bodies = try lines(dir, "log.ndjson").filter { $0["path"] as? String == "/v1/chat/completions" }.compactMap
        { $0["body"] as? [String: Any] }
        #expect(bodies.count == 3)
        let map = bodies[0]
        #expect(
            map["temperature"] as? Double == 0.2 && map["top_p"] as? Double == 0.9 && map["max_tokens"] as? Int == 64
                && map["seed"] as? Int == 7)
        #expect(map["stop"] as? [String] == ["###", "END"])
        for review in bodies.dropFirst() {
            #expect(
                review["temperature"] as? Double == 0 && review["seed"] as? Int == 3
                    && review["max_tokens"] as? Int == 100 && review["top_p"] == nil)
        }
    }

    /// An edited prompt (--prompts DIR) re-asks only the requests it affects: round 1 here,
    /// while round 2 comes from the cache.
    @Test func editedPromptReasksOnlyItsRound() throws {
        let dir = try setUp(
            rules: [
                Self.score(["Rate this instruction"], "8"), Self.score([Self.round1], "8"),
                Self.score([Self.round2], "8")
            ],
            records: (0..<4).map { Self.sample("r\($0)", "MARK-\($0)") })
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("prompts"), withIntermediateDirectories: true)
        try Data("Rate this instruction from 1 to 10 as JSON {score, comment}: {{instruction}}\n".utf8)
            .write(to: dir.appendingPathComponent("prompts/review-instruction.txt"))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models \(Self.modelList(5))
                gra-review \(Self.pool(5)) --cache cache < in.ndjson > a.ndjson; echo "a $?"
                n=$(requests)
                gra-review \(Self.pool(5)) --cache cache --prompts prompts < in.ndjson > b.ndjson; echo "b $?"
                echo "extra $(( $(requests) - n ))"
                """, in: dir)
        #expect(r.stdoutLines == ["a 0", "b 0", "extra 12"], "\(r.stderr)")
        let log = try chatLog(dir)
        #expect(log.suffix(12).allSatisfy { $0.prompt.hasPrefix("Rate this instruction from 1 to 10") })
    }

    /// Reviewer replies (docs/ARCHITECTURE.md, "Replies"): <think> blocks and fenced JSON are read; prose, a score
    /// of 11 and a score of "seven" are re-asked and then errors, never scores.
    @Test func replyParsing() throws {
        let r1 = Self.round1
        let rules = [
            #"""
            {"contains":["MARK-think","\#(r1)"],"reply":"<think>The task is fine, maybe a 3? \#
            No.</think>{\"score\": 8, \"comment\": \"clear\"}"}
            """#,
            #"""
            {"contains":["MARK-fenced","\#(r1)"],"reply":"Here is my review.\n```json\n{\"score\": 9, \#
            \"comment\": \"precise\"}\n```"}
            """#,
            #"{"contains":["MARK-prose","\#(r1)"],"reply":"I would rate this a solid 8 out of 10."}"#,
            #"{"contains":["MARK-eleven","\#(r1)"],"reply_json":{"score":11,"comment":"perfect"}}"#,
            #"{"contains":["MARK-seven","\#(r1)"],"reply_json":{"score":"seven","comment":"fine"}}"#,
            #"{"contains":["MARK-second","\#(r1)"],"times":1,"reply":"Score: 8"}"#,
            Self.score([r1], "8"), Self.score([Self.round2], "8")
        ]
        let markers = ["think", "fenced", "prose", "eleven", "seven", "second"]
        let dir = try setUp(rules: rules, records: markers.map { Self.sample($0, "MARK-\($0)") })
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models m1
                gra-review --model m1@$URL --reviewers 1 --parse-retries 1 --no-cache --errors err.ndjson < in.ndjson \
                > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 75"], "\(r.stderr)")
        let out = try lines(dir, "out.ndjson")
        #expect(out.map { $0["id"] as? String } == ["think", "fenced", "second"])
        let firstScores = out.map { ((Self.review($0)["reviews"] as? [[String: Any]])?.first?["score"] as? Double) }
        #expect(firstScores == [8, 9, 8])
        let errors = try lines(dir, "err.ndjson")
        #expect(errors.map { $0["id"] as? String } == ["prose", "eleven", "seven"])
        let reasons = errors.map { $0["reason"] as? String ?? "" }
        #expect(reasons[0].contains("after 2 tries") && reasons[0].contains("holds no JSON"))
        #expect(reasons[1].contains("above the maximum"))
        #expect(reasons[2].contains("should be integer"))
        #expect(
            errors.allSatisfy {
                $0["stage"] as? String == "gra-review" && $0["round"] as? Int == 1 && $0["record"] != nil
            })
        // Each failing record was asked twice in round 1 (the re-ask), and never in round 2.
        let log = try chatLog(dir)
        for m in ["prose", "eleven", "seven"] { #expect(log.filter { $0.prompt.contains("MARK-\(m)") }.count == 2) }
    }
}
