import Foundation
import GRAKit
import Testing

/// gra-review --neighbours (issue 18, item 1, MinHash): round 2 shows each sample its nearest
/// samples already in the dataset and asks for a novelty score, stored per review; through the
/// built binaries and bin/gra-pipeline --neighbours.
@Suite("gra-review --neighbours")
struct NeighboursCLITests {
    static let round2 = "judge the RESPONSE"
    static let nearest = "Nearest samples already in the dataset"
    static let dimensions =
        #""dimensions":{"correctness":7,"clarity":7,"completeness":7,"relevance":7,"coherence":7,"ethicality":7}"#

    /// The neighbour file: topics that share few words with each other.
    static let known = [
        ("n1", "Sort a list of integers in Python using the built-in sorted function"),
        ("n2", "Compute the area of a circle with radius five centimetres"),
        ("n3", "Translate the greeting hello into French and Spanish"),
        ("n4", "Explain why the sky looks blue on a clear afternoon"),
        ("n5", "Write a haiku about autumn leaves falling down"),
        ("s1", "This is the sample s1 itself, which must never be its own neighbour")
    ]
    /// The samples: near copies of one or two neighbours, and their expected nearest two.
    static let samples = [
        ("s1", "Sort a list of integers in Python with the sorted function", ["n1", "n2"]),
        ("s2", "Compute the area of a circle with radius five metres and translate it into French", ["n2", "n3"]),
        ("s3", "Write a haiku about autumn leaves falling and explain why the sky is blue", ["n5", "n4"])
    ]

    /// gra-dedup's words: lower-cased, split at spaces.
    static func words(_ s: String) -> Set<String> { Set(s.lowercased().split(separator: " ").map(String.init)) }

    static func jaccard(_ a: String, _ b: String) -> Double {
        let x = words(a), y = words(b)
        return Double(x.intersection(y).count) / Double(x.union(y).count)
    }

    @Test func nearestNeighboursShownNoveltyStoredAndSchemaChecked() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rules = [
            // m1 leaves out the novelty for s3: re-asked, then an error.
            #"{"model":"m1","contains":["<s3>","\#(Self.nearest)"],"reply_json":{"score":9,"comment":"no novelty"}}"#,
            #"{"contains":["<s1>","\#(Self.nearest)"],"reply_json":{"score":8,"novelty":2,"comment":"a copy"}}"#,
            #"{"contains":["\#(Self.nearest)"],"reply_json":{"score":9,"novelty":6,"comment":"new enough"}}"#,
            GRAStagesCLITests.score([Self.round2], "9"), GRAStagesCLITests.score([GRAStagesCLITests.round1], "8")
        ]
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let neighbours = Self.known.map {
            #"{"id":"\#($0.0)","instruction":"\#($0.1)","input":"","response":"Answer to \#($0.0)."}"#
        }
        try Data((neighbours.joined(separator: "\n") + "\n").utf8).write(
            to: dir.appendingPathComponent("known.ndjson"))
        let samples = Self.samples.map {
            #"{"id":"\#($0.0)","instruction":"\#($0.1) <\#($0.0)>","response":"Done."}"#
        }
        try Data((samples.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models \(GRAStagesCLITests.modelList(3))
                gra-review --neighbours known.ndjson --neighbour-count 2 \(GRAStagesCLITests.pool(3)) --no-cache \
                --quiet --errors errors.ndjson < in.ndjson > out.ndjson
                echo "review $?"
                cp log.ndjson neighbours-log.ndjson
                gra-review \(GRAStagesCLITests.pool(3)) --no-cache --quiet < in.ndjson > plain.ndjson
                echo "plain $?"
                gra-review --neighbours missing.ndjson \(GRAStagesCLITests.pool(3)) < in.ndjson; echo "missing $?"
                """, in: dir)
        #expect(r.stdoutLines == ["review 75", "plain 0", "missing 66"], "\(r.stderr)")
        #expect(r.stderr.contains("cannot read --neighbours missing.ndjson"))

        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == ["s1", "s2"])
        let texts = Dictionary(uniqueKeysWithValues: Self.known.map { ($0.0, $0.1) })
        for o in out {
            let id = o["id"] as! String
            let sample = Self.samples.first { $0.0 == id }!
            let review = (o["gra"] as! [String: Any])["review"] as! [String: Any]
            let shown = try #require(review["neighbours"] as? [[String: Any]])
            // The nearest two by Jaccard similarity of their words, never the sample itself.
            #expect(shown.map { $0["id"] as? String } == sample.2, "\(id): \(shown)")
            for n in shown {
                let exact = Self.jaccard(sample.1 + " <\(id)>", texts[n["id"] as! String]!)
                #expect(abs((n["similarity"] as? Double ?? -1) - exact) < 0.15, "\(id) \(n) exact \(exact)")
            }
            // Novelty in every round-2 review, none in round 1.
            for v in review["reviews"] as! [[String: Any]] {
                if v["round"] as? Int == 2 {
                    #expect(v["novelty"] as? Int == (id == "s1" ? 2 : 6), "\(v)")
                } else {
                    #expect(v["novelty"] == nil)
                }
            }
        }
        let errors = try String(contentsOf: dir.appendingPathComponent("errors.ndjson"), encoding: .utf8)
        #expect(errors.contains(#""id":"s3""#) && errors.contains("unparseable reply from m1 after 3 tries"))

        // The prompts: round 2 lists the neighbours' instructions, nearest first; round 1 and the
        // run without --neighbours are today's prompts.
        func prompts(_ file: String) throws -> [String] {
            try jsonLines(Data(contentsOf: dir.appendingPathComponent(file))).compactMap {
                (($0["body"] as? [String: Any])?["messages"] as? [[String: Any]])?.last?["content"] as? String
            }
        }
        let withNeighbours = try prompts("neighbours-log.ndjson")
        let s2 = withNeighbours.filter { $0.contains("<s2>") && $0.contains(Self.round2) }
        #expect(!s2.isEmpty)
        for p in s2 {
            let a = p.range(of: "Instruction: " + texts["n2"]!)
            let b = p.range(of: "Instruction: " + texts["n3"]!)
            #expect(a != nil && b != nil && a!.lowerBound < b!.lowerBound, "\(p)")
            #expect(p.contains(#""novelty": <integer 1-10>"#))
        }
        #expect(!withNeighbours.contains { $0.contains(GRAStagesCLITests.round1) && $0.contains(Self.nearest) })
        let all = try prompts("log.ndjson")
        let plain = all.dropFirst(withNeighbours.count)
        #expect(!plain.isEmpty && !plain.contains { $0.contains(Self.nearest) || $0.contains("novelty") })
        let plainOut = try jsonLines(Data(contentsOf: dir.appendingPathComponent("plain.ndjson")))
        #expect(
            plainOut.allSatisfy { (($0["gra"] as! [String: Any])["review"] as! [String: Any])["neighbours"] == nil })
    }

    /// --neighbour-model: nearest by the cosine of the server's embeddings (asked for here too,
    /// with curl, to check against), each neighbour embedded once; the rerun asks for nothing.
    @Test func nearestByEmbeddings() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rules = [
            #"{"contains":["\#(Self.nearest)"],"reply_json":{"score":9,"novelty":4,"comment":"ok"}}"#,
            GRAStagesCLITests.score([Self.round2], "9"), GRAStagesCLITests.score([GRAStagesCLITests.round1], "8")
        ]
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let known = Self.known.filter { $0.0 != "s1" }
        try Data(
            (known.map { #"{"id":"\#($0.0)","instruction":"\#($0.1)","response":"R."}"# }
                .joined(separator: "\n") + "\n")
                .utf8
        ).write(to: dir.appendingPathComponent("known.ndjson"))
        let sample = "Tell me something about the weather today"
        try Data(#"{"id":"q","instruction":"\#(sample)","response":"Sunny."}"#.utf8 + [0x0A]).write(
            to: dir.appendingPathComponent("in.ndjson"))
        let texts = known.map(\.1) + [sample]
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models m1,m2,m3,emb --embedding-dim 8
                embeddings() { grep -c '"path":"/v1/embeddings"' log.ndjson || true; }
                gra-review --neighbours known.ndjson --neighbour-model emb@$URL --neighbour-count 2 \
                \(GRAStagesCLITests.pool(3)) --cache cache --quiet < in.ndjson > out.ndjson
                echo "review $? $(embeddings)"
                gra-review --neighbours known.ndjson --neighbour-model emb@$URL --neighbour-count 2 \
                \(GRAStagesCLITests.pool(3)) --cache cache --quiet < in.ndjson > again.ndjson
                echo "again $? $(embeddings)"
                cmp out.ndjson again.ndjson && echo same
                for t in \(texts.map { "'\($0)'" }.joined(separator: " ")); do
                    curl -sS "$URL/embeddings" -d "{\\"model\\":\\"emb\\",\\"input\\":\\"$t\\"}"; echo
                done > vectors.ndjson
                """, in: dir)
        // The neighbours in one batch, then the sample: two requests; none the second time.
        #expect(r.stdoutLines == ["review 0 2", "again 0 2", "same"], "\(r.stderr)")
        let vectors = try jsonLines(Data(contentsOf: dir.appendingPathComponent("vectors.ndjson"))).map {
            (($0["data"] as! [[String: Any]])[0]["embedding"] as! [Double])
        }
        func cosine(_ a: [Double], _ b: [Double]) -> Double {
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
            return dot / (a.reduce(0) { $0 + $1 * $1 }.squareRoot() * b.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        let q = vectors.last!
        let ranked = known.indices.sorted { cosine(vectors[$0], q) > cosine(vectors[$1], q) }
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        let review = (out[0]["gra"] as! [String: Any])["review"] as! [String: Any]
        let shown = review["neighbours"] as! [[String: Any]]
        #expect(shown.map { $0["id"] as? String } == ranked.prefix(2).map { known[$0].0 }, "\(shown)")
        for (n, i) in zip(shown, ranked) {
            #expect(abs((n["similarity"] as? Double ?? 9) - cosine(vectors[i], q)) < 1e-3, "\(n)")
        }
    }

    /// bin/gra-pipeline --neighbours --dimensions: round 1 compares with the seeds, round 2 also
    /// with round 1's kept samples; every review has its dimensions.
    @Test func pipelinePassesSeedsAndEarlierRounds() throws {
        let dir = ToolRunner.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let gen = PipelineScriptTests.gen
        let rules = [
            PipelineScriptTests.extract,
            gen("Seed zero", "Alpha task about sorting lists"), gen("Seed one", "Beta task about parsing dates"),
            gen("Alpha task", "Gamma task about sorting lists again"),
            gen("Beta task", "Delta task about parsing time zones"),
            #"{"contains":["\#(Self.nearest)"],"reply_json":{\#(Self.dimensions),"#
                + #""score":9,"novelty":5,"comment":"ok"}}"#,
            #"{"contains":["\#(GRAStagesCLITests.round1)"],"reply_json":{\#(Self.dimensions),"score":8,"comment":"c"}}"#
        ]
        try Data(#"{"rules":[\#(rules.joined(separator: ",\n"))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let seeds = [("zero", "sorting lists of numbers"), ("one", "parsing dates from logs")].map {
            #"{"id":"\#($0.0)","instruction":"Seed \#($0.0) about \#($0.1)","output":"Answer"}"#
        }
        try Data((seeds.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("seeds.ndjson"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models \(GRAStagesCLITests.modelList(5))
                '\(PipelineScriptTests.repo.path)/bin/gra-pipeline' --run run --rounds 2 --neighbours --dimensions \
                --dedup none \
                seeds.ndjson -- \(GRAStagesCLITests.pool(5)) -q
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let run = dir.appendingPathComponent("run")
        func shown(_ path: String) throws -> [String: [String]] {
            var result: [String: [String]] = [:]
            for o in try jsonLines(Data(contentsOf: run.appendingPathComponent(path))) {
                let review = (o["gra"] as! [String: Any])["review"] as! [String: Any]
                result[o["id"] as! String] = (review["neighbours"] as? [[String: Any]] ?? []).compactMap {
                    $0["id"] as? String
                }
                for v in review["reviews"] as! [[String: Any]] {
                    #expect((v["dimensions"] as? [String: Int])?.count == 6, "\(v)")
                    if v["round"] as? Int == 2 { #expect(v["novelty"] as? Int == 5) }
                }
            }
            return result
        }
        let round1 = try shown("round-1/reviewed.ndjson")
        #expect(round1.count == 2 && round1.values.allSatisfy { Set($0) == ["zero", "one"] }, "\(round1)")
        let kept1 = try jsonLines(Data(contentsOf: run.appendingPathComponent("round-1/kept.ndjson"))).compactMap {
            $0["id"] as? String
        }
        let round2 = try shown("round-2/reviewed.ndjson")
        #expect(round2.count == 2, "\(round2)")
        // Three shown, out of the two seeds and round 1's two kept samples; the nearest of each
        // round-2 sample is its parent (same topic words).
        for (id, ids) in round2 {
            #expect(ids.count == 3 && Set(ids).isSubset(of: Set(["zero", "one"] + kept1)), "\(id): \(ids)")
            #expect(ids.first == String(id.dropLast(3)), "\(id): \(ids)")
        }
    }
}
