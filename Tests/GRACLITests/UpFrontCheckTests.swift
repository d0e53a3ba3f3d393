import Foundation
import GRAKit
import Testing

/// Mistakes that would fail every record the same way stop the run once, before any request
/// (issue 13, item 9); --dry-run shows what a rerun would still send.
@Suite("Checks before any request")
struct UpFrontCheckTests {
    @Test func templateVariableTheFirstRecordLacksStopsBeforeAsking() throws {
        let dir = try EdgeCLITests().setUp(records: 3)
        try Data("Say {{instrucion}}".utf8).write(to: dir.appendingPathComponent("typo.txt"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json
                gra-map --prompt typo.txt --into x --model m1@$URL --no-cache in.ndjson > out.ndjson; echo "status $?"
                echo "chats $(requests | head -1)"
                """, in: dir)
        #expect(r.stdoutLines == ["status 65", "chats 0"], "\(r.stdoutText) \(r.stderr)")
        #expect(
            r.stderr.contains(
                """
                in.ndjson:1: the prompt uses 'instrucion', which the first record lacks (its fields: id, \
                instruction)
                """),
            "\(r.stderr)")
        #expect(r.stderr.components(separatedBy: "instrucion").count == 2, "one message: \(r.stderr)")
    }

    @Test func invalidSchemaIs64() throws {
        let dir = try EdgeCLITests().setUp(records: 1)
        let r = try ToolRunner.sh(
            """
            echo '{"type":"object","properties":{"score":{"type":"int"}},"required":"score"}' > bad.json
            gra-map --prompt p.txt --into x --json-schema bad.json --model m1@http://127.0.0.1:9/v1 in.ndjson; echo \
            "status $?"
            """, in: dir)
        #expect(r.stdoutLines == ["status 64"], "\(r.stderr)")
        #expect(
            r.stderr.contains(
                """
                --json-schema bad.json: not a valid JSON Schema: $.properties.score.type: \"int\" is not a JSON \
                Schema type
                """
            ), "\(r.stderr)")
    }

    @Test func promptsDirWithNoneOfTheStagesPromptsIs64() throws {
        let r = try ToolRunner.sh(
            """
            mkdir p && echo 'Write {{instruction}}' > p/generate.txt
            gra-review --prompts p --model m1@http://127.0.0.1:9/v1 < /dev/null; echo "review $?"
            gra-generate --prompts p --model m1@http://127.0.0.1:9/v1 --no-cache < /dev/null; echo "generate $?"
            """)
        // gra-generate finds its prompt there (and an empty input needs no server).
        #expect(r.stdoutLines == ["review 64", "generate 0"], "\(r.stderr)")
        #expect(
            r.stderr.contains(
                """
                --prompts p holds none of the prompts gra-review uses (review-instruction.txt, \
                review-response.txt); it has generate.txt
                """
            ), "\(r.stderr)")
    }

    /// After a partial run, --dry-run shows which requests the cache answers and which a rerun
    /// would send, with the same cache keys the real run uses.
    @Test func dryRunAfterAPartialRunShowsWhatIsLeft() throws {
        let dir = try EdgeCLITests().setUp(records: 5)
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json
                head -2 in.ndjson | gra-map --prompt p.txt --into x --model m1@$URL --cache cache -q > /dev/null
                gra-map --prompt p.txt --into x --model m1@$URL --cache cache --dry-run in.ndjson > dry.ndjson; echo \
                "status $?"
                echo "chats $(requests | head -1)"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0", "chats 2"], "\(r.stdoutText) \(r.stderr)")
        let listed = try jsonLines(Data(contentsOf: dir.appendingPathComponent("dry.ndjson")))
        #expect(listed.map { $0["cached"] as? Bool } == [true, true, false, false, false])
        #expect(r.stderr.contains("5 requests listed (2 answered from the cache"), "\(r.stderr)")
    }
}
