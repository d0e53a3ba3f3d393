import Foundation
import Testing

/// gra-dedup as users run it: the built binary in real shell pipes.
@Suite("gra-dedup end to end")
struct DedupCLITests {
    /// A 60-word instruction: long enough that one changed word keeps the 5-word-shingle
    /// Jaccard similarity near 0.9.
    static let long = (1...60).map { "w\($0 * 7919 % 1009)" }.joined(separator: " ")
    static let longOneWordChanged = long.replacingOccurrences(of: "w856 ", with: "changed ")
    static let longManyWordsChanged = (1...60).map { $0 % 4 == 0 ? "x\($0)" : "w\($0 * 7919 % 1009)" }.joined(separator: " ")

    func write(_ dir: URL, _ name: String, _ lines: [String]) throws {
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent(name))
    }

    func lines(_ dir: URL, _ name: String) throws -> [[String: Any]] {
        try jsonLines(Data(contentsOf: dir.appendingPathComponent(name)))
    }

    @Test func exactAndNearDuplicatesAreDroppedAndNamed() throws {
        #expect(Self.longOneWordChanged != Self.long)
        let dir = ToolRunner.scratch()
        try write(dir, "in.ndjson", [
            #"{"id":"a","instruction":"Explain the water cycle.","input":"For a child","response":"Rain."}"#,
            #"{"id":"b","instruction":"  EXPLAIN the water\ncycle. ","input":"for a  child","response":"Different answer."}"#,
            #"{"id":"c","instruction":"\#(Self.long)","response":"r"}"#,
            #"{"id":"d","instruction":"\#(Self.longOneWordChanged)","response":"r2"}"#,
            #"{"id":"e","instruction":"\#(Self.longManyWordsChanged)","response":"r3"}"#,
            #"{"id":"f","instruction":"Explain the water cycle.","input":"For an adult","response":"Rain."}"#,
        ])
        let r = try ToolRunner.sh("gra-dedup --rejects rej.ndjson in.ndjson", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonLines(r.stdout).map { $0["id"] as? String } == ["a", "c", "e", "f"])
        let rejects = try lines(dir, "rej.ndjson")
        #expect(rejects.count == 2)
        #expect(rejects[0]["stage"] as? String == "gra-dedup")
        #expect(rejects[0]["where"] as? String == "in.ndjson:2")
        #expect(rejects[0]["id"] as? String == "b")
        #expect(rejects[0]["method"] as? String == "exact")
        #expect(rejects[0]["duplicate_of"] as? String == "a")
        #expect(rejects[0]["similarity"] as? Double == 1)
        #expect(rejects[0]["reason"] as? String == "exact duplicate of a")
        #expect((rejects[0]["record"] as? [String: Any])?["response"] as? String == "Different answer.")
        #expect(rejects[1]["id"] as? String == "d")
        #expect(rejects[1]["method"] as? String == "minhash")
        #expect(rejects[1]["duplicate_of"] as? String == "c")
        let similarity = try #require(rejects[1]["similarity"] as? Double)
        #expect(similarity >= 0.8 && similarity < 1, "\(similarity)")
        #expect(r.stderr.contains("6 records read, 4 kept, 2 duplicates dropped (exact 1, minhash 1)"), "\(r.stderr)")

        // Exact only: the near copy stays; a stricter threshold keeps it too.
        let exact = try ToolRunner.sh("gra-dedup -q --method exact in.ndjson", in: dir)
        #expect(try jsonLines(exact.stdout).map { $0["id"] as? String } == ["a", "c", "d", "e", "f"])
        let strict = try ToolRunner.sh("gra-dedup -q --threshold 0.99 in.ndjson", in: dir)
        #expect(try jsonLines(strict.stdout).map { $0["id"] as? String } == ["a", "c", "d", "e", "f"])
        // Comparing the responses as well makes b differ from a (d's one-word response keeps
        // it near c).
        let all = try ToolRunner.sh("gra-dedup -q --fields instruction,input,output in.ndjson", in: dir)
        #expect(try jsonLines(all.stdout).map { $0["id"] as? String } == ["a", "b", "c", "e", "f"])
    }

    @Test func againstDropsContaminatedRecordsAndKeepsCleanOnes() throws {
        let dir = ToolRunner.scratch()
        // A benchmark test split as an Alpaca JSON array, one record without an id.
        try Data("""
            [
              {"id": "bench-1", "instruction": "\(Self.long)", "input": "", "output": "42"},
              {"instruction": "What is the capital of France?", "input": "", "output": "Paris"}
            ]
            """.utf8).write(to: dir.appendingPathComponent("bench.json"))
        try write(dir, "in.ndjson", [
            #"{"id":"clean1","instruction":"Name a prime number.","response":"7"}"#,
            #"{"id":"leak-near","instruction":"\#(Self.longOneWordChanged)","response":"x"}"#,
            #"{"id":"leak-exact","instruction":"what is the CAPITAL of france?","response":"Paris."}"#,
            #"{"id":"clean2","instruction":"\#(Self.longManyWordsChanged)","response":"y"}"#,
        ])
        let r = try ToolRunner.sh("gra-dedup --against bench.json --rejects rej.ndjson < in.ndjson", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonLines(r.stdout).map { $0["id"] as? String } == ["clean1", "clean2"])
        let rejects = try lines(dir, "rej.ndjson")
        #expect(rejects.map { $0["id"] as? String } == ["leak-near", "leak-exact"])
        #expect(rejects.allSatisfy { $0["method"] as? String == "against" && $0["reference"] as? String == "bench.json" })
        #expect(rejects[0]["duplicate_of"] as? String == "bench-1")
        #expect((rejects[0]["reason"] as? String)?.hasPrefix("too close to reference bench-1 in bench.json (MinHash Jaccard") == true)
        // The reference without an id is named by its content hash id, as the stages name it.
        let hashID = try #require(rejects[1]["duplicate_of"] as? String)
        #expect(hashID.count == 17 && hashID.hasPrefix("h"), "\(hashID)")
        #expect(rejects[1]["where"] as? String == "line 3")
        #expect(r.stderr.contains("against 2"), "\(r.stderr)")
        #expect(r.stderr.contains("2 reference records"))
    }

    /// A reference wins over an earlier kept record: the record is reported as contamination.
    @Test func referenceMatchWinsOverKeptRecord() throws {
        let dir = ToolRunner.scratch()
        try write(dir, "ref.ndjson", [#"{"id":"ref","instruction":"Sort a list in Python."}"#])
        try write(dir, "in.ndjson", [
            #"{"id":"one","instruction":"Sort a list in Python.","response":"sorted(x)"}"#,
            #"{"id":"two","instruction":"sort a list in python.","response":"x.sort()"}"#,
        ])
        let r = try ToolRunner.sh("gra-dedup --against ref.ndjson --rejects rej.ndjson in.ndjson", in: dir)
        #expect(r.stdout.isEmpty)
        #expect(try lines(dir, "rej.ndjson").map { "\($0["id"]!) \($0["method"]!) \($0["duplicate_of"]!)" } == ["one against ref", "two against ref"])
    }

    @Test func keepBestKeepsTheHigherScoredCopy() throws {
        let dir = ToolRunner.scratch()
        try write(dir, "in.ndjson", [
            #"{"id":"low","instruction":"\#(Self.long)","gra":{"review":{"rounds":[{"round":1,"mean":7},{"round":2,"mean":7.5}]}}}"#,
            #"{"id":"other","instruction":"Unrelated task."}"#,
            #"{"id":"high","instruction":"\#(Self.longOneWordChanged)","gra":{"review":{"rounds":[{"round":1,"mean":9},{"round":2,"mean":8}]}}}"#,
            #"{"id":"ruled","instruction":"\#(Self.long.uppercased())","gra":{"review":{"rounds":[{"round":1,"mean":9},{"round":2,"mean":9}]},"adjudication":{"score":6}}}"#,
            #"{"id":"unscored","instruction":"unrelated TASK."}"#,
        ])
        let r = try ToolRunner.sh("gra-dedup --keep best --rejects rej.ndjson in.ndjson", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        // Output in input order: the best of each cluster, where it stood.
        #expect(try jsonLines(r.stdout).map { $0["id"] as? String } == ["other", "high"])
        let rejects = try lines(dir, "rej.ndjson")
        #expect(rejects.map { $0["id"] as? String } == ["low", "ruled", "unscored"])
        #expect(rejects.map { $0["duplicate_of"] as? String } == ["high", "high", "other"])
        #expect(rejects.map { $0["method"] as? String } == ["minhash", "minhash", "exact"])
        #expect(rejects[0]["where"] as? String == "in.ndjson:1")
        // Keep first, for contrast.
        let first = try ToolRunner.sh("gra-dedup -q in.ndjson", in: dir)
        #expect(try jsonLines(first.stdout).map { $0["id"] as? String } == ["low", "other"])
    }

    @Test func markWritesDuplicatesAnnotated() throws {
        let dir = ToolRunner.scratch()
        try write(dir, "in.ndjson", [
            #"{"id":"a","instruction":"Q","gra":{"review":{"decision":"accept"}}}"#,
            #"{"id":"b","instruction":"q ","x":[1,2]}"#,
            #"{"id":"c","instruction":"other"}"#,
        ])
        let r = try ToolRunner.sh("gra-dedup --mark --rejects rej.ndjson in.ndjson && wc -c < rej.ndjson", in: dir)
        #expect(r.status == 0)
        let out = r.stdoutLines
        #expect(out.count == 4)
        #expect(out[0] == #"{"id":"a","instruction":"Q","gra":{"review":{"decision":"accept"}}}"#)
        #expect(out[1] == #"{"id":"b","instruction":"q ","x":[1,2],"gra":{"dedup":{"method":"exact","duplicate_of":"a","similarity":1}}}"#)
        #expect(out[2] == #"{"id":"c","instruction":"other"}"#)
        #expect(out[3].trimmingCharacters(in: .whitespaces) == "0")
        #expect(r.stderr.contains("1 duplicates marked (exact 1, minhash 0)"))
    }

    /// Kept records are written as the very lines read: unknown fields, big numbers, escapes.
    @Test func keptRecordsAreByteIdentical() throws {
        let tricky = #"{"id":1e2,"instruction":"caf\u00e9 \ud83d\ude00","output":"\/ok","big":123456789012345678901234567890,"f":0.30000000000000004,"s":"\u0000\"\\","nested":{"a":[1,{"b":null}]},"gra":{"origin":{"seed":"s"}}}"#
        let input = tricky + "\n" + #"{"instruction":"café 😀","id":"dup"}"# + "\n"
        let r = try ToolRunner.sh("gra-dedup --rejects rej.ndjson && cat rej.ndjson", stdin: input)
        #expect(r.status == 0)
        let lines = r.stdoutLines
        #expect(lines.count == 2)
        #expect(lines[0] == tricky)
        let reject = try #require(try jsonLines(Data(lines[1].utf8)).first)
        #expect(reject["duplicate_of"] as? String == "1e2")
        #expect(reject["id"] as? String == "dup")
    }

    @Test func recordsWithoutIDsAreNamedByContentHash() throws {
        let dir = ToolRunner.scratch()
        try write(dir, "in.ndjson", [
            #"{"instruction":"Same task","input":"","output":"one"}"#,
            #"{"instruction":"same  TASK","output":"two"}"#,
        ])
        let r = try ToolRunner.sh("gra-dedup --rejects rej.ndjson in.ndjson", in: dir)
        #expect(r.stdoutLines == [#"{"instruction":"Same task","input":"","output":"one"}"#])
        let reject = try #require(try lines(dir, "rej.ndjson").first)
        // SampleFields.contentID: "h" + 16 hex digits of SHA-256(instruction␟input␟response).
        #expect(reject["duplicate_of"] as? String == "h" + Self.sha256Prefix("Same task\u{1F}\u{1F}one"))
        #expect(reject["id"] as? String == "h" + Self.sha256Prefix("same  TASK\u{1F}\u{1F}two"))
    }

    static func sha256Prefix(_ s: String) -> String {
        let dir = ToolRunner.scratch()
        try! Data(s.utf8).write(to: dir.appendingPathComponent("t"))
        return try! ToolRunner.sh("sha256sum t | cut -c1-16", in: dir).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Many batches are prepared in parallel: output order is input order, and two runs give
    /// the same bytes (stdout and rejects).
    @Test func stableAndOrderedAcrossRunsAndBatches() throws {
        let script = """
            awk 'BEGIN { for (i = 0; i < 40000; i++) { k = (i % 5 == 4) ? int(i / 3) : i; printf "{\\"id\\":\\"r%d\\",\\"instruction\\":\\"task number %d is about topic %d and needs a careful answer %d\\",\\"input\\":\\"\\"}\\n", i, k, k % 97, k } }' > in.ndjson
            gra-dedup -q --rejects rej1.ndjson in.ndjson > out1.ndjson
            gra-dedup -q --rejects rej2.ndjson in.ndjson > out2.ndjson
            cmp out1.ndjson out2.ndjson && cmp rej1.ndjson rej2.ndjson && echo same
            awk -F'"' '{ n = substr($4, 2) + 0; if (NR > 1 && n <= last) { print "unordered at " NR; exit 1 } last = n }' out1.ndjson && echo ordered
            wc -l < out1.ndjson; wc -l < rej1.ndjson
            awk -F'"' '{ print $8 }' in.ndjson | sort -u | wc -l
            """
        let r = try ToolRunner.sh(script)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdoutLines.map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.prefix(2) == ["same", "ordered"], "\(r.stdoutText)")
        let kept = Int(lines[2]) ?? 0, dropped = Int(lines[3]) ?? 0
        #expect(kept + dropped == 40000)
        let distinct = Int(lines[4]) ?? -1
        #expect(kept == distinct, "every fifth record repeats an earlier text: \(lines)")
    }

    @Test func malformedInputStopsWith65AfterEarlierRecords() throws {
        let input = #"{"id":"a","instruction":"one"}"# + "\n" + #"{"id":"b","instruction":"two"}"# + "\n{broken\n" + #"{"id":"c","instruction":"three"}"# + "\n"
        let r = try ToolRunner.sh("gra-dedup", stdin: input)
        #expect(r.status == 65)
        #expect(r.stderr.contains("line 3: invalid JSON"), "\(r.stderr)")
        #expect(r.stdoutLines.count == 2)
        let skip = try ToolRunner.sh("gra-dedup --skip-bad-input --rejects rej.ndjson; echo \"status $?\"; cat rej.ndjson", stdin: input)
        #expect(skip.stdoutLines.count == 5)
        #expect(skip.stdoutLines[3] == "status 0")
        #expect(skip.stdoutLines[4].contains(#""where":"line 3""#) && skip.stdoutLines[4].contains(#""raw":"{broken""#))
        let wrongType = try ToolRunner.sh("gra-dedup", stdin: #"{"id":"a","instruction":5}"# + "\n")
        #expect(wrongType.status == 65)
        #expect(wrongType.stderr.contains("line 1: field 'instruction' must be a string, not a number"), "\(wrongType.stderr)")
    }

    @Test func headClosesPipeQuietly() throws {
        let script = """
            awk 'BEGIN { for (i = 0; i < 200000; i++) printf "{\\"id\\":\\"r%d\\",\\"instruction\\":\\"q%d\\"}\\n", i, i }' > big.ndjson
            bash -c 'gra-dedup < big.ndjson | head -1; echo "status ${PIPESTATUS[0]}"'
            """
        let r = try ToolRunner.sh(script)
        #expect(r.stdoutLines == [#"{"id":"r0","instruction":"q0"}"#, "status 0"])
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }

    @Test func interruptFlushesAndExits130() throws {
        let script = """
            mkfifo in.fifo
            gra-dedup < in.fifo > out.ndjson 2> err.txt &
            pid=$!
            exec 3> in.fifo
            printf '{"id":"a","instruction":"q"}\\n' >&3
            sleep 1
            kill -INT $pid
            wait $pid
            echo "status $?"
            cat out.ndjson
            """
        let r = try ToolRunner.sh(script)
        #expect(r.stdoutLines == ["status 130", #"{"id":"a","instruction":"q"}"#], "\(r.stderr)")
    }

    @Test func shardsSplitTheInput() throws {
        let script = """
            awk 'BEGIN { for (i = 0; i < 3000; i++) printf "{\\"id\\":\\"r%d\\",\\"instruction\\":\\"q%d\\"}\\n", i, i }' > all.ndjson
            for i in 0 1 2; do gra-dedup -q --shard $i/3 < all.ndjson > s$i.ndjson; done
            cat s0.ndjson s1.ndjson s2.ndjson | sort > joined.txt; sort all.ndjson > sorted.txt
            cmp joined.txt sorted.txt && echo covered
            gra-dedup --shard 1/3 < all.ndjson 2>&1 >/dev/null | grep -c 'left to other shards'
            """
        let r = try ToolRunner.sh(script)
        #expect(r.stdoutLines == ["covered", "1"], "\(r.stdoutText) \(r.stderr)")
    }

    @Test(arguments: [
        ("--method fuzzy", "unknown method 'fuzzy'"),
        ("--shingle word", "expected word:K or char:K"),
        ("--threshold 1.5", "--threshold must be in (0, 1]"),
        ("--bands 20 --rows 7", "must be positive and use at most --num-perm 128"),
        ("--keep worst", "worst"),
    ])
    func usageErrorsExit64(_ args: String, _ message: String) throws {
        let r = try ToolRunner.sh("gra-dedup \(args) < /dev/null")
        #expect(r.status == 64)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func missingFilesExit74() throws {
        let r = try ToolRunner.sh("gra-dedup --against nope.json < /dev/null")
        #expect(r.status == 74)
        #expect(r.stderr.contains("cannot open nope.json"))
    }
}
