import Foundation
import GRAKit
import Testing

/// gra-dedup --method semantic against gra-testserver serving fixed vectors (one rule per
/// record, matched by a marker in its text), checked against brute force computed here.
@Suite("gra-dedup semantic end to end")
struct DedupSemanticCLITests {
    struct Case {
        var records: [String] = []
        var vectors: [[Double]] = []
    }

    /// 120 records in 30 clusters of 8-dimensional vectors; members lie at chosen cosines
    /// from their cluster's centre, none within 0.01 of the 0.9 threshold (so half-precision
    /// storage cannot flip a decision).
    static func makeCase() -> Case {
        var state: UInt64 = 42
        func next() -> Double { Double(StableHash.next(&state) >> 11) / 9_007_199_254_740_992.0 }
        func unit(_ v: [Double]) -> [Double] {
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / n }
        }
        var c = Case()
        var centres: [[Double]] = []
        for i in 0..<120 {
            let v: [Double]
            if i % 4 == 0 {
                let centre = unit((0..<8).map { _ in next() * 2 - 1 })
                centres.append(centre)
                v = centre
            } else {
                let centre = centres[Int(next() * Double(centres.count))]
                // A direction orthogonal to the centre, mixed in at angle θ: cosine = cos θ.
                var o = (0..<8).map { _ in next() * 2 - 1 }
                let along = zip(o, centre).reduce(0) { $0 + $1.0 * $1.1 }
                o = unit(zip(o, centre).map { $0 - along * $1 })
                let targets = [0.99, 0.97, 0.95, 0.93, 0.92, 0.88, 0.85, 0.8, 0.6]
                let cosine = targets[Int(next() * Double(targets.count))]
                let sine = (1 - cosine * cosine).squareRoot()
                v = zip(centre, o).map { cosine * $0 + sine * $1 }
            }
            c.vectors.append(v)
            c.records.append(#"{"id":"s\#(i)","instruction":"<m\#(i)> topic text","keep":{"n":\#(i)}}"#)
        }
        return c
    }

    static func cosine(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// Keep-first by brute force: each record against every kept one.
    static func bruteForce(_ c: Case, threshold: Double) -> [Int: Int] {
        var kept: [Int] = []
        var dropped: [Int: Int] = [:]
        for j in c.vectors.indices {
            var best: (entry: Int, cosine: Double)?
            for k in kept {
                let x = cosine(c.vectors[k], c.vectors[j])
                if x >= threshold, best == nil || x > best!.cosine { best = (k, x) }
            }
            if let best { dropped[j] = best.entry } else { kept.append(j) }
        }
        return dropped
    }

    @Test func semanticDuplicatesMatchBruteForce() throws {
        let c = Self.makeCase()
        let dir = ToolRunner.scratch()
        let rules = c.vectors.enumerated().map { i, v in
            #"{"contains":"<m\#(i)>","embedding":[\#(v.map { String(format: "%.6f", $0) }.joined(separator: ","))]}"#
        }
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        try Data((c.records.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json
                gra-dedup --method semantic --model emb@$URL --embedding-batch-size 1 --cache cache --rejects \
                rej.ndjson in.ndjson > out.ndjson
                echo "status $?"
                gra-dedup --method semantic --model emb@$URL --embedding-batch-size 7 --cache cache --rejects \
                rej2.ndjson in.ndjson > out2.ndjson
                echo "status $?"
                cmp out.ndjson out2.ndjson && cmp rej.ndjson rej2.ndjson && echo same
                grep -c '"path":"/v1/embeddings"' log.ndjson
                """, in: dir)
        #expect(r.stdoutLines.prefix(3) == ["status 0", "status 0", "same"], "\(r.stdoutText) \(r.stderr)")
        // 120 requests the first time, none the second: the cache holds each text's vector, whatever
        // the batches (7 texts a request now).
        #expect(r.stdoutLines.last == "120")
        let expected = Self.bruteForce(c, threshold: 0.9)
        #expect(expected.count > 30 && expected.count < 90, "\(expected.count)")
        let rejects = try jsonLines(Data(contentsOf: dir.appendingPathComponent("rej.ndjson")))
        var got: [Int: Int] = [:]
        for j in rejects {
            #expect(j["method"] as? String == "semantic")
            let id = Int((j["id"] as! String).dropFirst())!
            let of = Int((j["duplicate_of"] as! String).dropFirst())!
            got[id] = of
            let similarity = try #require(j["similarity"] as? Double)
            #expect(abs(similarity - Self.cosine(c.vectors[id], c.vectors[of])) < 0.001)
        }
        let recall = Double(Set(got.keys).intersection(expected.keys).count) / Double(expected.count)
        #expect(recall >= 0.95, "recall \(recall)")
        #expect(got == expected, "dropped (id: duplicate_of) differ from brute force")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.count + rejects.count == 120)
        #expect(out.allSatisfy { ($0["keep"] as? [String: Any])?["n"] != nil })
    }

    @Test func failedEmbeddingsGoToErrorsWithExit75() throws {
        let dir = ToolRunner.scratch()
        try Data(#"{"rules":[{"contains":"bad","status":500},{"contains":"x"}]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json
                printf '%s\\n' '{"id":"a","instruction":"fine x"}' '{"id":"b","instruction":"bad x"}' > in.ndjson
                gra-dedup --method exact,semantic --model emb@$URL --embedding-batch-size 1 --max-attempts 2 \
                --no-cache --errors err.ndjson in.ndjson
                echo "status $?"
                cat err.ndjson
                """, in: dir, env: ["GRA_RETRY_BASE_DELAY": "0.01"])
        let lines = r.stdoutLines
        // One batch holds both records: when any request of a batch fails, all its records fail.
        #expect(lines.contains("status 75"), "\(r.stdoutText) \(r.stderr)")
        let errors = lines.filter { $0.hasPrefix("{\"stage\"") }
        #expect(!errors.isEmpty)
        #expect(errors.allSatisfy { $0.contains(#""reason":"no embedding: "#) && $0.contains(#""status":500"#) })
        #expect(r.stderr.contains(", 2 failed"))
    }
}
