import Foundation
import GRAKit
import Testing

/// The contract every gra tool keeps as a Unix filter, checked with the same cases for each
/// tool, through the built binaries, in real pipes, against gra-testserver (issue 13):
/// a bad line stops with 65 naming file:line and `--skip-bad-input`; `| head -1` is a quiet
/// success; a missing input is 66; an output over an input is 64 and leaves the input alone;
/// SIGINT is 130 with complete lines; `--shard` partitions; `--version`; a JSON array reads as
/// its records; and, for the tools that ask a model, a dead endpoint is 69 within seconds, a
/// refused key is 77 naming its variable and never showing the key, and failed records land in
/// the default errors file when no `--errors` was given.
@Suite("Filter contract, tool by tool")
struct FilterContractTests {
    /// One tool as the contract cases run it.
    struct Tool: CustomStringConvertible, Sendable {
        let name: String
        /// The command and its flags, without inputs ($URL is the test server).
        let command: String
        /// Whether it asks a model (then the endpoint cases apply).
        let asksModel: Bool
        /// Server rules under which every record succeeds.
        let rules: [String]
        /// Rules put first to make every record fail with HTTP 400.
        let failRules: [String]
        /// Turns records.ndjson into in.ndjson (nil: a copy).
        let prepare: String?
        let records: [String]
        /// Writes big.ndjson: far more than a pipe's worth of distinct records (the tools that
        /// ask no model; the others get in.ndjson, as each record waits for the server anyway).
        var bulk: String? = nil
        var description: String { name }
    }

    /// 200,000 records with distinct words ("q<i>"), for `Tool.bulk`.
    static let bulk =
        #"""
        awk 'BEGIN { for (i = 0; i < 200000; i++) printf \#
        "{\"id\":\"r%d\",\"instruction\":\"q%d\",\"output\":\"a\"}\n", i, i }' > big.ndjson
        """#

    static let pool = (1...5).map { "--model m\($0)@$URL" }.joined(separator: " ")
    static let round2 = GRAStagesCLITests.round2
    static let disagreed = GRAStagesCLITests.adjudicate
    static let failAll =
        #"{"path":"/v1/chat/completions","status":400,"body":{"error":{"message":"scripted failure"}}}"#

    /// Texts that share no word, so dedup keeps them all.
    static func words(_ i: Int, _ n: Int = 12) -> String {
        var x = UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
        return (0..<n).map { _ in
            x ^= x >> 31
            x &*= 0xBF58_476D_1CE4_E5B9
            x ^= x >> 27
            return "w\(x % 1_000_000)"
        }.joined(separator: " ")
    }

    static let tools: [Tool] = {
        let plain = (0..<6).map {
            #"{"id":"r\#($0)","instruction":"\#(words($0))","input":"","output":"\#(words($0 + 100))"}"#
        }
        let samples = (0..<6).map { GRAStagesCLITests.sample("s\($0)", "MARK-\($0) \(words($0))") }
        let seeds = (0..<6).map {
            #"""
            {"id":"seed\#($0)","instruction":"\#(words($0))","response":"\#(words($0 + 50))",\#
            "keywords":["k\#($0)"],"summary":"about \#($0)"}
            """#
        }
        let score8 = #"{"reply_json":{"score":8,"comment":"fine"}}"#
        // Two reviewers score 9 and one 5 in round 2: mean 7.67, variance 3.56 > 2: a dispute.
        var disputes = [
            #"{"contains":"\#(disagreed)","reply_json":{"decision":"accept","score":9,"rationale":"fine"}}"#
        ]
        for i in 0..<6 {
            disputes.append(GRAStagesCLITests.score(["MARK-\(i) ", round2], "9", times: 2))
            disputes.append(GRAStagesCLITests.score(["MARK-\(i) ", round2], "5"))
        }
        disputes.append(score8)
        return [
            Tool(
                name: "gra-format", command: "gra-format --to sharegpt", asksModel: false, rules: [], failRules: [],
                prepare: nil, records: plain,
                bulk: bulk),
            Tool(
                name: "gra-dedup", command: "gra-dedup", asksModel: false, rules: [], failRules: [], prepare: nil,
                records: plain, bulk: bulk),
            Tool(
                name: "gra-map", command: "gra-map --prompt p.txt --into x --no-cache --model m1@$URL", asksModel: true,
                rules: [], failRules: [failAll], prepare: nil, records: plain),
            Tool(
                name: "gra-generate", command: "gra-generate --domain general --shots 0 --no-cache --model m1@$URL",
                asksModel: true,
                rules: [#"{"reply_json":{"instruction":"a new task","input":"","response":"its answer"}}"#],
                failRules: [failAll],
                prepare: nil, records: seeds),
            Tool(
                name: "gra-review", command: "gra-review --no-cache \(pool)", asksModel: true,
                rules: [score8], failRules: [failAll], prepare: nil, records: samples),
            Tool(
                name: "gra-adjudicate", command: "gra-adjudicate --no-cache \(pool)", asksModel: true,
                rules: disputes, failRules: [#"{"contains":"\#(disagreed)","status":400,"body":"scripted failure"}"#],
                prepare: "gra-review --no-cache -q \(pool) records.ndjson > in.ndjson", records: samples)
        ]
    }()
    static let modelTools = tools.filter(\.asksModel)

    /// Runs `body` in a fresh directory holding records.ndjson, in.ndjson (prepared), p.txt
    /// and a running test server ($URL); `T` is the tool's command. `serverEnv` is exported to
    /// the server only; `failing` puts the tool's failRules first.
    func run(_ tool: Tool, failing: Bool = false, serverEnv: String = "", prepareEnv: String = "", _ body: String)
        throws -> (ToolRunner.Outcome, URL)
    {
        let dir = ToolRunner.scratch()
        try Data((tool.records.joined(separator: "\n") + "\n").utf8).write(
            to: dir.appendingPathComponent("records.ndjson"))
        try Data("Say {{instruction}}".utf8).write(to: dir.appendingPathComponent("p.txt"))
        let rules = (failing ? tool.failRules : []) + tool.rules
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                \(serverEnv.isEmpty ? "" : "export \(serverEnv)")
                start_server --script script.json --models m1,m2,m3,m4,m5
                \(serverEnv.isEmpty ? "" : "unset \(serverEnv.split(separator: "=")[0])")
                \(prepareEnv) \(tool.prepare ?? "cp records.ndjson in.ndjson") || echo "prepare failed"
                T="\(tool.command)"
                \(body)
                """, in: dir, env: ["XDG_CACHE_HOME": dir.appendingPathComponent("xdg").path])
        return (r, dir)
    }

    func text(_ dir: URL, _ name: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    func lineCount(_ dir: URL, _ name: String) -> Int {
        text(dir, name).split(separator: "\n").count
    }

    @Test(arguments: tools)
    func badLineStopsWith65NamingTheLine(_ tool: Tool) throws {
        let (r, _) = try run(
            tool,
            """
            { head -1 in.ndjson; echo 'this is not json'; tail -n +2 in.ndjson; } > bad.ndjson
            $T bad.ndjson > out.ndjson; echo "status $?"
            """)
        #expect(r.stdoutLines == ["status 65"], "\(r.stdoutText) \(r.stderr)")
        #expect(r.stderr.contains("bad.ndjson:2:"), "\(r.stderr)")
        #expect(r.stderr.contains("--skip-bad-input"), "\(r.stderr)")
    }

    /// `| head -1` ends the tool quietly with status 0, even with far more than a pipe's worth
    /// of output still to come; the line head got is the tool's first. gra-format and gra-dedup
    /// print nothing at all then; the model stages still print their summary line (so -q).
    @Test(arguments: tools)
    func headOneIsAQuietSuccess(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool,
            """
            \(tool.bulk ?? "cp in.ndjson big.ndjson")
            { $T \(tool.asksModel ? "-q " : "")big.ndjson 2> err.txt; echo $? > status.txt; } | head -1 > first.ndjson
            echo "status $(cat status.txt)"
            head -1 big.ndjson | $T -q > expected.ndjson
            """)
        #expect(r.stdoutLines == ["status 0"], "\(r.stdoutText) \(r.stderr)")
        #expect(text(dir, "err.txt").isEmpty, "\(text(dir, "err.txt"))")
        #expect(lineCount(dir, "first.ndjson") == 1)
        #expect(text(dir, "first.ndjson") == text(dir, "expected.ndjson"))
    }

    @Test(arguments: tools)
    func missingInputIs66BeforeAnyOutput(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool,
            """
            $T in.ndjson no-such-file.ndjson > out.ndjson; echo "status $?"
            """)
        #expect(r.stdoutLines == ["status 66"], "\(r.stdoutText) \(r.stderr)")
        #expect(r.stderr.contains("no-such-file.ndjson"), "\(r.stderr)")
        #expect(lineCount(dir, "out.ndjson") == 0, "the first input was processed before the missing one was noticed")
    }

    @Test(arguments: tools)
    func outputOverTheInputIs64AndLeavesItAlone(_ tool: Tool) throws {
        let (r, _) = try run(
            tool,
            """
            cp in.ndjson before.ndjson
            $T in.ndjson >> in.ndjson; echo "status $?"
            cmp -s in.ndjson before.ndjson && echo "input unchanged"
            """)
        #expect(r.stdoutLines == ["status 64", "input unchanged"], "\(r.stdoutText) \(r.stderr)")
        #expect(r.stderr.contains("refusing to overwrite"), "\(r.stderr)")
    }

    /// SIGINT while the input is quiet: 130 within seconds, and what was written is whole
    /// lines, the start of what the tool writes for the whole input.
    @Test(arguments: tools)
    func interruptIs130WithCompleteLines(_ tool: Tool) throws {
        let start = Date()
        let (r, dir) = try run(
            tool,
            """
            $T -q in.ndjson > full.ndjson
            mkfifo feed
            ( cat in.ndjson; sleep 8 ) > feed &
            FEED=$!
            $T < feed > out.ndjson 2> err.txt &
            P=$!
            i=0
            while [ ! -s out.ndjson ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
            kill -INT $P
            wait $P
            echo "status $?"
            kill $FEED 2>/dev/null
            """)
        #expect(r.stdoutLines == ["status 130"], "\(r.stdoutText) \(r.stderr) \(text(dir, "err.txt"))")
        #expect(Date().timeIntervalSince(start) < 20)
        let out = text(dir, "out.ndjson")
        #expect(out.hasSuffix("\n"), "a partial line was written: \(out.suffix(80))")
        let lines = try jsonLines(Data(out.utf8))
        #expect(lines.count >= 1)
        #expect(text(dir, "full.ndjson").hasPrefix(out), "\(out)")
    }

    /// --shard i/n: the shards are disjoint, cover the whole output, keep its order and agree
    /// between runs; a tool that asks a model sends only its shard's requests; n/n is a
    /// usage error. (The spread of the hash: ShardTests.)
    @Test(arguments: tools)
    func shardsPartitionTheOutput(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool,
            """
            requests | head -1 > requests.txt
            $T in.ndjson > all.ndjson || echo "all failed"
            requests | head -1 >> requests.txt
            $T --shard 0/2 in.ndjson > s0.ndjson 2> s0.err || echo "shard 0 failed"
            requests | head -1 >> requests.txt
            $T --shard 1/2 in.ndjson > s1.ndjson || echo "shard 1 failed"
            requests | head -1 >> requests.txt
            $T --shard 1/2 in.ndjson | cmp -s - s1.ndjson || echo "shard 1 differs between runs"
            $T --shard 2/2 in.ndjson > /dev/null 2> bad.txt; echo "bad $?"
            """)
        #expect(r.stdoutLines == ["bad 64"], "\(r.stdoutText) \(r.stderr)")
        #expect(text(dir, "bad.txt").contains("--shard '2/2'"), "\(text(dir, "bad.txt"))")
        let all = text(dir, "all.ndjson").split(separator: "\n")
        let s0 = text(dir, "s0.ndjson").split(separator: "\n"), s1 = text(dir, "s1.ndjson").split(separator: "\n")
        #expect(all.count >= 6)
        #expect((s0 + s1).sorted() == all.sorted())
        #expect(Set(s0).isDisjoint(with: s1))
        #expect(!s0.isEmpty && !s1.isEmpty, "one shard got everything: \(s0.count) and \(s1.count)")
        for shard in [s0, s1] {
            #expect(shard == all.filter { shard.contains($0) }, "a shard's records are not in input order")
        }
        if !tool.asksModel {
            #expect(text(dir, "s0.err").contains("\(s1.count) left to other shards"), "\(text(dir, "s0.err"))")
        }
        if tool.asksModel {
            // Requests before (preparing the input), after the whole run, after shard 0, after
            // shard 1: each shard sent only its share, and the two shares are the whole run's.
            let counts = text(dir, "requests.txt").split(separator: "\n").compactMap { Int($0) }
            #expect(counts.count == 4, "\(text(dir, "requests.txt"))")
            if counts.count == 4 {
                let (all, first, second) = (counts[1] - counts[0], counts[2] - counts[1], counts[3] - counts[2])
                #expect(
                    first > 0 && second > 0 && first + second == all, "all \(all), shard 0 \(first), shard 1 \(second)")
            }
        }
    }

    @Test(arguments: tools)
    func versionIsThePackageVersion(_ tool: Tool) throws {
        let r = try ToolRunner.sh("\(tool.name) --version")
        #expect(r.status == 0)
        #expect(r.stdoutText == GRAVersion.string + "\n")
    }

    @Test(arguments: tools)
    func aJSONArrayReadsAsItsRecords(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool,
            """
            { echo '['; sed '$!s/$/,/; s/^/  /' in.ndjson; echo ']'; } > in.json
            $T in.ndjson > from-lines.ndjson || echo "lines failed"
            $T in.json > from-array.ndjson || echo "array failed"
            cmp -s from-lines.ndjson from-array.ndjson && echo same
            """)
        #expect(r.stdoutLines == ["same"], "\(r.stdoutText) \(r.stderr)")
        #expect(lineCount(dir, "from-array.ndjson") >= 6)
    }

    @Test(arguments: modelTools)
    func deadEndpointIs69WithinSeconds(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool,
            """
            URL=http://127.0.0.1:9/v1
            T="\(tool.command)"
            start=$(date +%s)
            $T in.ndjson > out.ndjson 2> err.txt; echo "status $?"
            echo "seconds $(( $(date +%s) - start ))"
            wc -l < in.ndjson > records.txt
            """)
        #expect(r.stdoutLines.first == "status 69", "\(r.stdoutText) \(r.stderr) \(text(dir, "err.txt"))")
        let seconds = Int(r.stdoutLines.last?.split(separator: " ").last ?? "") ?? 99
        #expect(seconds <= 5)
        let err = text(dir, "err.txt")
        #expect(err.contains("127.0.0.1:9/v1"), "\(err)")
        #expect(err.split(separator: "\n").count <= 4, "\(err)")
        #expect(lineCount(dir, "out.ndjson") == 0)
        let errors = try jsonLines(Data(contentsOf: dir.appendingPathComponent("\(tool.name).errors.ndjson")))
        let records = Int(text(dir, "records.txt").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(Set(errors.compactMap { ($0["record"] as? [String: Any])?["id"] as? String }).count == records)
    }

    @Test(arguments: modelTools)
    func refusedKeyIs77NamingTheVariableNeverTheKey(_ tool: Tool) throws {
        let key = "right-key-0123456789abcdef", wrong = "wrong-key-9876543210fedcba"
        let (r, dir) = try run(
            tool, serverEnv: "GRA_TESTSERVER_KEY=\(key)", prepareEnv: "OPENAI_API_KEY=\(key)",
            """
            OPENAI_API_KEY=\(wrong) $T in.ndjson > out.ndjson 2> err.txt; echo "status $?"
            grep -rl -e "\(wrong)" -e "\(String(wrong.prefix(12)))" . | grep -v '^./.std' || echo "key nowhere"
            """)
        #expect(r.stdoutLines == ["status 77", "key nowhere"], "\(r.stdoutText) \(r.stderr) \(text(dir, "err.txt"))")
        let err = text(dir, "err.txt")
        #expect(err.contains("$OPENAI_API_KEY"), "\(err)")
        #expect(!err.contains(wrong) && !r.stderr.contains(wrong) && !r.stdoutText.contains(wrong))
        #expect(err.split(separator: "\n").count <= 4, "\(err)")
    }

    @Test(arguments: modelTools)
    func failedRecordsGoToTheDefaultErrorsFile(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool, failing: true,
            """
            $T in.ndjson > out.ndjson 2> err.txt; echo "status $?"
            cp \(tool.name).errors.ndjson first-run.ndjson
            $T in.ndjson > out.ndjson 2> err2.txt; echo "status $?"
            cmp -s \(tool.name).errors.ndjson first-run.ndjson && echo "first file kept"
            $T --errors /dev/null in.ndjson > out.ndjson 2> err3.txt; echo "status $?"
            ls | grep -c '\\.errors\\.'
            """)
        #expect(
            r.stdoutLines == ["status 75", "status 75", "first file kept", "status 75", "2"],
            "\(r.stdoutText) \(r.stderr) \(text(dir, "err.txt"))")
        #expect(text(dir, "err.txt").contains("./\(tool.name).errors.ndjson"), "\(text(dir, "err.txt"))")
        #expect(text(dir, "err2.txt").contains("./\(tool.name).errors.2.ndjson"), "\(text(dir, "err2.txt"))")
        let inputIDs = try jsonLines(Data(contentsOf: dir.appendingPathComponent("in.ndjson"))).compactMap {
            $0["id"] as? String
        }
        for name in ["\(tool.name).errors.ndjson", "\(tool.name).errors.2.ndjson"] {
            let failed = try jsonLines(Data(contentsOf: dir.appendingPathComponent(name)))
            #expect(
                Set(failed.compactMap { ($0["record"] as? [String: Any])?["id"] as? String }) == Set(inputIDs),
                "\(name)")
        }
    }
}

extension FilterContractTests {
    /// --dry-run lists the requests as NDJSON and sends nothing, not even the start-up probe.
    @Test(arguments: modelTools)
    func dryRunListsRequestsAndSendsNothing(_ tool: Tool) throws {
        let (r, dir) = try run(
            tool,
            """
            before=$(wc -l < log.ndjson)
            $T --dry-run in.ndjson > dry.ndjson 2> err.txt; echo "status $?"
            echo "sent $(( $(wc -l < log.ndjson) - before ))"
            """)
        #expect(r.stdoutLines == ["status 0", "sent 0"], "\(r.stdoutText) \(r.stderr) \(text(dir, "err.txt"))")
        let listed = try jsonLines(Data(contentsOf: dir.appendingPathComponent("dry.ndjson")))
        #expect(listed.count >= 6, "\(listed.count) requests listed")
        for line in listed {
            #expect(line["stage"] as? String == tool.name)
            #expect((line["where"] as? String)?.hasPrefix("in.ndjson:") == true)
            #expect(line["cached"] as? Bool == false)
            #expect((line["cache_key"] as? String)?.count == 64)
            let request = line["request"] as? [String: Any]
            #expect(request?["model"] as? String == line["model"] as? String)
            #expect((request?["messages"] as? [[String: Any]])?.isEmpty == false)
        }
        #expect(text(dir, "err.txt").contains("nothing was sent"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(tool.name).errors.ndjson").path))
    }
}
