import Foundation
import Testing

/// gra-dedup as users run it: the built binary in real shell pipes.
@Suite("gra-dedup end to end")
struct DedupCLITests {
    /// A 60-word instruction: long enough that one changed word keeps the 5-word-shingle
    /// Jaccard similarity near 0.9.
    static let long = (1...60).map { "w\($0 * 7919 % 1009)" }.joined(separator: " ")
    static let longOneWordChanged = long.replacingOccurrences(of: "w856 ", with: "changed ")
    static let longManyWordsChanged = (1...60).map { $0 % 4 == 0 ? "x\($0)" : "w\($0 * 7919 % 1009)" }.joined(
        separator: " ")

    func write(_ dir: URL, _ name: String, _ lines: [String]) throws {
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent(name))
    }

    func lines(_ dir: URL, _ name: String) throws -> [[String: Any]] {
        try jsonLines(Data(contentsOf: dir.appendingPathComponent(name)))
    }

    /// Records without an `id`: a duplicate's content hash id is the kept record's too, so
    /// duplicate_of names the kept record by its place, with --keep first and --keep best,
    /// from NDJSON and from an array.
    @Test(arguments: ["", "--keep best"])
    func duplicateOfNamesTheKeptRecordWhenThereAreNoIDs(_ keep: String) throws {
        let dir = ToolRunner.scratch()
        try write(
            dir, "in.ndjson",
            [
                #"{"instruction":"Other task.","response":"x"}"#,
                #"{"instruction":"Explain the water cycle.","response":"Rain."}"#,
                #"{"instruction":"explain  the WATER cycle.","response":"Rain."}"#
            ])
        try Data(
            (#"[{"instruction":"Explain the water cycle.","response":"Rain."},"# + "\n"
                + #" {"instruction":"Explain the water cycle.","response":"Rain."}]"#).utf8
        ).write(to: dir.appendingPathComponent("in.json"))
        let r = try ToolRunner.sh(
            """
            gra-dedup -q \(keep) --rejects rej.ndjson in.ndjson > /dev/null && gra-dedup -q \(keep) --rejects \
            rej2.ndjson in.json > /dev/null
            """,
            in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let rejects = try lines(dir, "rej.ndjson") + lines(dir, "rej2.ndjson")
        #expect(rejects.map { $0["duplicate_of"] as? String } == ["in.ndjson:2", "in.json:1 (array element 1)"])
        for d in rejects { #expect(d["duplicate_of"] as? String != d["id"] as? String) }
    }

    @Test func exactAndNearDuplicatesAreDroppedAndNamed() throws {
        #expect(Self.longOneWordChanged != Self.long)
        let dir = ToolRunner.scratch()
        try write(
            dir, "in.ndjson",
            [
                #"{"id":"a","instruction":"Explain the water cycle.","input":"For a child","response":"Rain."}"#,
                #"""
                {"id":"b","instruction":"  EXPLAIN the water\ncycle. ","input":"for a  \#
                child","response":"Different answer."}
                """#,
                #"{"id":"c","instruction":"\#(Self.long)","response":"r"}"#,
                #"{"id":"d","instruction":"\#(Self.longOneWordChanged)","response":"r2"}"#,
                #"{"id":"e","instruction":"\#(Self.longManyWordsChanged)","response":"r3"}"#,
                #"{"id":"f","instruction":"Explain the water cycle.","input":"For an adult","response":"Rain."}"#
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

    /// Pairs of a 150-word instruction and a copy with word substitutions, the copy right
    /// after its base (ids "pN" and "pNc"): copies with true Jaccard in [0.70, 0.80) (`under`,
    /// 3–5 substitutions) and ≥ 0.85 (`over`, 1–2), with the Jaccard of word 5-gram string sets.
    static func nearThresholdPairs(under: Int, over: Int) -> (
        lines: [String], under: [String: Double], over: [String: Double]
    ) {
        var state: UInt64 = 0x5EED
        func below(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        let syllables = ["ba", "ko", "ri", "tu", "mel", "sa", "non", "vi", "der", "pho", "lu", "gam", "zi"]
        let vocabulary = (0..<4000).map { i -> String in
            var w = ""
            var x = i + 40
            repeat {
                w += syllables[x % syllables.count]
                x /= syllables.count
            } while x > 0
            return w
        }
        func shingles(_ w: [String]) -> Set<String> {
            Set((0...(w.count - 5)).map { w[$0..<($0 + 5)].joined(separator: " ") })
        }
        var lines: [String] = [], underJ: [String: Double] = [:], overJ: [String: Double] = [:]
        while underJ.count < under || overJ.count < over {
            let base = (0..<150).map { _ in vocabulary[below(vocabulary.count)] }
            let wantUnder = underJ.count < under && (overJ.count >= over || below(3) != 0)
            var copy = base
            for _ in 0..<(wantUnder ? 3 + below(3) : 1 + below(2)) {
                copy[below(copy.count)] = vocabulary[below(vocabulary.count)]
            }
            let a = shingles(base), b = shingles(copy)
            let j = Double(a.intersection(b).count) / Double(a.union(b).count)
            if wantUnder ? !(j >= 0.70 && j < 0.80) : j < 0.85 { continue }
            let id = "p\(lines.count / 2)"
            lines.append(#"{"id":"\#(id)","instruction":"\#(base.joined(separator: " "))"}"#)
            lines.append(#"{"id":"\#(id)c","instruction":"\#(copy.joined(separator: " "))","input":""}"#)
            if wantUnder { underJ[id + "c"] = j } else { overJ[id + "c"] = j }
        }
        return (lines, underJ, overJ)
    }

    /// MinHash candidates are verified by their exact Jaccard similarity, reading kept records
    /// again from the input file (by offset) or, for a pipe, from a spool file: the same drops
    /// either way, none under the threshold, each with its exact similarity.
    @Test func verificationIsExactFromFilesAndPipes() throws {
        let dir = ToolRunner.scratch()
        let p = Self.nearThresholdPairs(under: 80, over: 30)
        try write(dir, "in.ndjson", p.lines)
        let r = try ToolRunner.sh(
            """
            gra-dedup -q --rejects rej-file.ndjson in.ndjson > out-file.ndjson
            cat in.ndjson | gra-dedup -q --rejects rej-pipe.ndjson > out-pipe.ndjson
            gra-dedup -q --rejects rej-redirect.ndjson < in.ndjson > out-redirect.ndjson
            cmp out-file.ndjson out-pipe.ndjson && cmp out-file.ndjson out-redirect.ndjson && cmp rej-pipe.ndjson \
            rej-redirect.ndjson && echo same
            """, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines == ["same"], "\(r.stdoutText) \(r.stderr)")

        let rejects = try lines(dir, "rej-file.ndjson")
        let piped = try lines(dir, "rej-pipe.ndjson")
        #expect(
            rejects.map { $0["where"] as? String }
                == piped.map { ($0["where"] as? String).map { "in.ndjson:" + $0.dropFirst(5) } })
        #expect(
            rejects.map { "\($0["id"]!) \($0["duplicate_of"]!) \($0["similarity"]!)" }
                == piped.map { "\($0["id"]!) \($0["duplicate_of"]!) \($0["similarity"]!)" })
        let droppedIDs = rejects.compactMap { $0["id"] as? String }
        #expect(
            Set(droppedIDs).isDisjoint(with: p.under.keys),
            "dropped under the threshold: \(droppedIDs.filter { p.under[$0] != nil }.map { p.under[$0]! })")
        #expect(Set(droppedIDs) == Set(p.over.keys))
        for reject in rejects {
            let id = try #require(reject["id"] as? String)
            #expect(reject["duplicate_of"] as? String == String(id.dropLast()))
            #expect(reject["method"] as? String == "minhash")
            let similarity = try #require(reject["similarity"] as? Double)
            let exact = try #require(p.over[id])
            #expect(abs(similarity - exact) <= 0.00005 + 1e-12, "\(id): reported \(similarity), exact \(exact)")
            #expect((reject["reason"] as? String)?.hasPrefix("near duplicate of \(id.dropLast()) (Jaccard 0.") == true)
        }
        #expect(
            try jsonLines(Data(contentsOf: dir.appendingPathComponent("out-file.ndjson"))).count == p.lines.count
                - p.over.count)

        // References: read again from their file, or spooled from a pipe; a JSON array (always
        // spooled) drops the same.
        let bases = p.lines.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let copies = p.lines.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        try write(dir, "ref.ndjson", bases)
        try write(dir, "copies.ndjson", copies)
        try Data(("[\n" + copies.joined(separator: ",\n") + "\n]\n").utf8).write(
            to: dir.appendingPathComponent("copies.json"))
        let against = try ToolRunner.sh(
            """
            gra-dedup -q --against ref.ndjson --rejects a-file.ndjson copies.ndjson > k-file.ndjson
            cat ref.ndjson | gra-dedup -q --against - --rejects a-pipe.ndjson copies.ndjson > k-pipe.ndjson
            gra-dedup -q --against ref.ndjson --rejects a-array.ndjson copies.json > k-array.ndjson
            cmp k-file.ndjson k-pipe.ndjson && echo same
            """, in: dir)
        #expect(against.stdoutLines == ["same"], "\(against.stdoutText) \(against.stderr)")
        func summary(_ name: String) throws -> [String] {
            try lines(dir, name).map { "\($0["id"]!) \($0["method"]!) \($0["duplicate_of"]!) \($0["similarity"]!)" }
        }
        #expect(
            try summary("a-file.ndjson")
                == summary("rej-file.ndjson").map { $0.replacingOccurrences(of: " minhash ", with: " against ") })
        #expect(try summary("a-pipe.ndjson") == summary("a-file.ndjson"))
        #expect(try summary("a-array.ndjson") == summary("a-file.ndjson"))
    }

    @Test func againstDropsContaminatedRecordsAndKeepsCleanOnes() throws {
        let dir = ToolRunner.scratch()
        // A benchmark test split as an Alpaca JSON array, one record without an id.
        try Data(
            """
            [
              {"id": "bench-1", "instruction": "\(Self.long)", "input": "", "output": "42"},
              {"instruction": "What is the capital of France?", "input": "", "output": "Paris"}
            ]
            """.utf8
        ).write(to: dir.appendingPathComponent("bench.json"))
        try write(
            dir, "in.ndjson",
            [
                #"{"id":"clean1","instruction":"Name a prime number.","response":"7"}"#,
                #"{"id":"leak-near","instruction":"\#(Self.longOneWordChanged)","response":"x"}"#,
                #"{"id":"leak-exact","instruction":"what is the CAPITAL of france?","response":"Paris."}"#,
                #"{"id":"clean2","instruction":"\#(Self.longManyWordsChanged)","response":"y"}"#
            ])
        let r = try ToolRunner.sh("gra-dedup --against bench.json --rejects rej.ndjson < in.ndjson", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try jsonLines(r.stdout).map { $0["id"] as? String } == ["clean1", "clean2"])
        let rejects = try lines(dir, "rej.ndjson")
        #expect(rejects.map { $0["id"] as? String } == ["leak-near", "leak-exact"])
        #expect(
            rejects.allSatisfy { $0["method"] as? String == "against" && $0["reference"] as? String == "bench.json" })
        #expect(rejects[0]["duplicate_of"] as? String == "bench-1")
        #expect(
            (rejects[0]["reason"] as? String)?.hasPrefix("too close to reference bench-1 in bench.json (Jaccard")
                == true)
        // A reference without an id is named by its place (its content hash would be the
        // dropped record's own when the texts are the same).
        #expect(rejects[1]["duplicate_of"] as? String == "bench.json:3 (array element 2)")
        #expect(rejects[1]["where"] as? String == "line 3")
        #expect(r.stderr.contains("against 2"), "\(r.stderr)")
        #expect(r.stderr.contains("2 reference records"))
    }

    /// A reference wins over an earlier kept record: the record is reported as contamination.
    @Test func referenceMatchWinsOverKeptRecord() throws {
        let dir = ToolRunner.scratch()
        try write(dir, "ref.ndjson", [#"{"id":"ref","instruction":"Sort a list in Python."}"#])
        try write(
            dir, "in.ndjson",
            [
                #"{"id":"one","instruction":"Sort a list in Python.","response":"sorted(x)"}"#,
                #"{"id":"two","instruction":"sort a list in python.","response":"x.sort()"}"#
            ])
        let r = try ToolRunner.sh("gra-dedup --against ref.ndjson --rejects rej.ndjson in.ndjson", in: dir)
        #expect(r.stdout.isEmpty)
        #expect(
            try lines(dir, "rej.ndjson").map { "\($0["id"]!) \($0["method"]!) \($0["duplicate_of"]!)" } == [
                "one against ref", "two against ref"
            ])
    }

    @Test func keepBestKeepsTheHigherScoredCopy() throws {
        let dir = ToolRunner.scratch()
        try write(
            dir, "in.ndjson",
            [
                #"""
                {"id":"low","instruction":"\#(Self.long)","gra":{"review":{"rounds":[{"round":1,"mean":7},\#
                {"round":2,"mean":7.5}]}}}
                """#,
                #"{"id":"other","instruction":"Unrelated task."}"#,
                #"""
                {"id":"high","instruction":"\#(Self.longOneWordChanged)","gra":{"review":{"rounds":[{"round":1,\#
                "mean":9},{"round":2,"mean":8}]}}}
                """#,
                #"""
                {"id":"ruled","instruction":"\#(Self.long.uppercased())","gra":{"review":{"rounds":[{"round":1,\#
                "mean":9},{"round":2,"mean":9}]},"adjudication":{"score":6}}}
                """#,
                #"{"id":"unscored","instruction":"unrelated TASK."}"#
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
        try write(
            dir, "in.ndjson",
            [
                #"{"id":"a","instruction":"Q","gra":{"review":{"decision":"accept"}}}"#,
                #"{"id":"b","instruction":"q ","x":[1,2]}"#,
                #"{"id":"c","instruction":"other"}"#
            ])
        let r = try ToolRunner.sh("gra-dedup --mark --rejects rej.ndjson in.ndjson && wc -c < rej.ndjson", in: dir)
        #expect(r.status == 0)
        let out = r.stdoutLines
        #expect(out.count == 4)
        #expect(out[0] == #"{"id":"a","instruction":"Q","gra":{"review":{"decision":"accept"}}}"#)
        #expect(
            out[1]
                == #"""
                {"id":"b","instruction":"q ","x":[1,2],"gra":{"dedup":{"method":"exact","duplicate_of":"a",\#
                "similarity":1}}}
                """#
        )
        #expect(out[2] == #"{"id":"c","instruction":"other"}"#)
        #expect(out[3].trimmingCharacters(in: .whitespaces) == "0")
        #expect(r.stderr.contains("1 duplicates marked (exact 1, minhash 0)"))
    }

    /// Kept records are written as the very lines read: unknown fields, big numbers, escapes.
    @Test func keptRecordsAreByteIdentical() throws {
        let tricky =
            #"""
            {"id":1e2,"instruction":"caf\u00e9 \ud83d\ude00","output":"\/ok",\#
            "big":123456789012345678901234567890,"f":0.30000000000000004,"s":"\u0000\"\\","nested":{"a":[1,\#
            {"b":null}]},"gra":{"origin":{"seed":"s"}}}
            """#
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

    /// A dropped record without an id is named by its content hash; the kept one it
    /// duplicates by its place, since its content hash would be the same for an exact copy.
    @Test func recordsWithoutIDsAreNamedByContentHash() throws {
        let dir = ToolRunner.scratch()
        try write(
            dir, "in.ndjson",
            [
                #"{"instruction":"Same task","input":"","output":"one"}"#,
                #"{"instruction":"same  TASK","output":"two"}"#
            ])
        let r = try ToolRunner.sh("gra-dedup --rejects rej.ndjson in.ndjson", in: dir)
        #expect(r.stdoutLines == [#"{"instruction":"Same task","input":"","output":"one"}"#])
        let reject = try #require(try lines(dir, "rej.ndjson").first)
        // SampleFields.contentID: "h" + 16 hex digits of SHA-256(instruction␟input␟response).
        #expect(reject["duplicate_of"] as? String == "in.ndjson:1")
        #expect(reject["id"] as? String == "h" + Self.sha256Prefix("same  TASK\u{1F}\u{1F}two"))
    }

    static func sha256Prefix(_ s: String) -> String {
        let dir = ToolRunner.scratch()
        try! Data(s.utf8).write(to: dir.appendingPathComponent("t"))
        return try! ToolRunner.sh("sha256sum t | cut -c1-16", in: dir).stdoutText.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// Many batches are prepared in parallel: output order is input order, and two runs give
    /// the same bytes (stdout and rejects).
    @Test func stableAndOrderedAcrossRunsAndBatches() throws {
        let script = """
            awk 'BEGIN { for (i = 0; i < 40000; i++) { k = (i % 5 == 4) ? int(i / 3) : i; printf \
            "{\\"id\\":\\"r%d\\",\\"instruction\\":\\"task number %d is about topic %d and needs a careful answer \
            %d\\",\\"input\\":\\"\\"}\\n", i, k, k % 97, k } }' > in.ndjson
            gra-dedup -q --rejects rej1.ndjson in.ndjson > out1.ndjson
            gra-dedup -q --rejects rej2.ndjson in.ndjson > out2.ndjson
            cmp out1.ndjson out2.ndjson && cmp rej1.ndjson rej2.ndjson && echo same
            awk -F'"' '{ n = substr($4, 2) + 0; if (NR > 1 && n <= last) { print "unordered at " NR; exit 1 } last = \
            n }' out1.ndjson && echo ordered
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
        let input =
            #"{"id":"a","instruction":"one"}"# + "\n" + #"{"id":"b","instruction":"two"}"# + "\n{broken\n"
            + #"{"id":"c","instruction":"three"}"# + "\n"
        let r = try ToolRunner.sh("gra-dedup", stdin: input)
        #expect(r.status == 65)
        #expect(r.stderr.contains("line 3: invalid JSON"), "\(r.stderr)")
        #expect(r.stdoutLines.count == 2)
        let skip = try ToolRunner.sh(
            "gra-dedup --skip-bad-input --rejects rej.ndjson; echo \"status $?\"; cat rej.ndjson", stdin: input)
        #expect(skip.stdoutLines.count == 5)
        #expect(skip.stdoutLines[3] == "status 0")
        #expect(skip.stdoutLines[4].contains(#""where":"line 3""#) && skip.stdoutLines[4].contains(#""raw":"{broken""#))
        let wrongType = try ToolRunner.sh("gra-dedup", stdin: #"{"id":"a","instruction":5}"# + "\n")
        #expect(wrongType.status == 65)
        #expect(
            wrongType.stderr.contains("line 1: field 'instruction' must be a string, not a number"),
            "\(wrongType.stderr)")
    }

    @Test(arguments: [
        ("--method fuzzy", "unknown method 'fuzzy'"),
        ("--shingle word", "expected word:K or char:K"),
        ("--threshold 1.5", "--threshold must be in (0, 1]"),
        ("--bands 20 --rows 7", "must be positive and use at most --num-perm 128"),
        ("--keep worst", "worst")
    ])
    func usageErrorsExit64(_ args: String, _ message: String) throws {
        let r = try ToolRunner.sh("gra-dedup \(args) < /dev/null")
        #expect(r.status == 64)
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func missingFilesExit66() throws {
        let r = try ToolRunner.sh("gra-dedup --against nope.json < /dev/null")
        #expect(r.status == 66)
        #expect(r.stderr.contains("cannot read nope.json"))
    }
}
