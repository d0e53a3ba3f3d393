import Foundation
import GRAKit
import Testing

/// One flag vocabulary (issue 13, items 8 and 10): contradictions and out-of-range values are
/// usage errors (64) with a message, negative numbers parse as values, the server's seed is
/// --sampling-seed everywhere, and --strip-meta writes only what the training format defines.
@Suite("Flags mean the same everywhere")
struct FlagVocabularyTests {
    @Test(arguments: [
        ("gra-map --prompt p --into x --cache c --no-cache", "--cache and --no-cache contradict each other"),
        ("gra-review --rescore --reviewers 5", "--rescore asks no reviewer"),
        ("gra-format --errors e.ndjson", "--errors only applies with --complete-summaries"),
        ("gra-format --keep id", "--keep only applies with --strip-meta"),
        ("gra-review --max-variance -1", "--max-variance must be ≥ 0"),
        ("gra-generate --per-seed -2", "--per-seed must be positive"),
        ("gra-map --prompt p --into x --max-connect-failures -1", "--max-connect-failures must be ≥ 0"),
        ("gra-map --prompt p --into x --seed 3", "the server's sampling seed is --sampling-seed")
    ])
    func contradictionsAndRangesAreUsageErrors(_ command: String, _ message: String) throws {
        let r = try ToolRunner.sh("\(command) < /dev/null")
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    /// --sampling-seed reaches the server as `seed`, in gra-map as in the GRA stages.
    @Test func samplingSeedIsTheServersSeed() throws {
        let dir = ToolRunner.scratch()
        try Data("Say {{instruction}}".utf8).write(to: dir.appendingPathComponent("p.txt"))
        try Data(#"{"rules":[]}"#.utf8).write(to: dir.appendingPathComponent("script.json"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json
                echo '{"id":"a","instruction":"hi"}' | gra-map --prompt p.txt --into x --model m1@$URL --no-cache \
                --sampling-seed -7 -q > /dev/null
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let chats = try jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson"))).filter {
            $0["path"] as? String == "/v1/chat/completions"
        }
        #expect((chats.first?["body"] as? [String: Any])?["seed"] as? Int == -7)
    }

    /// --strip-meta: only the fields the format defines; --keep carries named others; without
    /// it unknown fields are carried as before.
    @Test func stripMetaWritesOnlyTrainingFields() throws {
        let record =
            #"""
            {"id":"r1","source":"web","score":3,"instruction":"q","input":"","output":"a",\#
            "gra":{"origin":{"seed":"s"}}}
            """#
        let r = try ToolRunner.sh(
            """
            cat > in.ndjson
            gra-format --to alpaca --strip-meta in.ndjson
            gra-format --to alpaca --strip-meta --keep id,source in.ndjson
            gra-format --to sharegpt --strip-meta in.ndjson
            gra-format --to openai --strip-meta --keep gra in.ndjson
            gra-format --to alpaca in.ndjson
            """, stdin: record + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try jsonLines(r.stdout)
        #expect(lines.count == 5)
        guard lines.count == 5 else { return }
        #expect(Set(lines[0].keys) == ["instruction", "input", "output"])
        #expect(Set(lines[1].keys) == ["instruction", "input", "output", "id", "source"])
        #expect(Set(lines[2].keys) == ["conversations"])
        #expect(Set(lines[3].keys) == ["messages", "gra"])
        #expect(Set(lines[4].keys) == ["id", "source", "score", "instruction", "input", "output", "gra"])
    }
}
