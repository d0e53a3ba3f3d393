import Foundation
import GRAKit
import Testing

@Suite("gra-format --complete-summaries")
struct CompleteSummariesTests {
    @Test func fillsMissingKnowledgeOnlyAndAccountsForFailures() throws {
        let dir = ToolRunner.scratch()
        let rules = [
            #"{"contains":["extract the knowledge","Broken one"],"reply":"I cannot do that."}"#,
            #"{"contains":"extract the knowledge","reply_json":{"keywords":["k1","k2"],"summary":"Filled."}}"#
        ]
        try Data(#"{"rules":[\#(rules.joined(separator: ","))]}"#.utf8).write(
            to: dir.appendingPathComponent("script.json"))
        let records = [
            #"{"id":"a","instruction":"Missing both","output":"x","extra":{"n":12345678901234567890}}"#,
            #"{"id":"b","instruction":"Has both","output":"y","keywords":["mine"],"summary":"Mine."}"#,
            #"{"id":"c","instruction":"Broken one","output":"z"}"#,
            #"{"id":"d","instruction":"","output":"empty instruction"}"#,
            #"{"id":"e","instruction":"Summary only","output":"w","summary":"Half."}"#
        ]
        try Data(("[" + records.joined(separator: ",\n") + "]").utf8).write(to: dir.appendingPathComponent("in.json"))
        let many = (0..<300).map { #"{"id":"m\#($0)","instruction":"Item \#($0)","output":"o"}"# }
        try Data((many.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("many.ndjson"))
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json --models m1
                gra-format --complete-summaries --model m1@$URL --no-cache --parse-retries 0 --to alpaca --array \\
                    --rejects rej.ndjson --errors err.ndjson in.json > out.json
                echo "status $?"
                echo "requests $(requests)"
                OPENAI_BASE_URL=$URL gra-format --to alpaca in.json > plain.ndjson 2>/dev/null
                echo "plain $? $(requests)"
                (gra-format --complete-summaries --model m1@$URL --no-cache --max-in-flight 4 many.ndjson; echo \
                "head-status $?" > st.txt) | head -n 1 > /dev/null
                cat st.txt
                """, in: dir)
        #expect(
            r.stdoutLines.count == 4 && r.stdoutLines[0] == "status 75" && r.stdoutLines[1] == "requests 3"
                && r.stdoutLines[2] == "plain 0 3", "\(r.stdoutLines) \(r.stderr)")
        #expect(r.stdoutLines.last == "head-status 0")
        let out =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("out.json")))
            as? [[String: Any]] ?? []
        #expect(out.map { $0["id"] as? String } == ["a", "b", "e"])
        #expect(out[0]["keywords"] as? [String] == ["k1", "k2"] && out[0]["summary"] as? String == "Filled.")
        #expect(
            try String(contentsOf: dir.appendingPathComponent("out.json"), encoding: .utf8).contains(
                "12345678901234567890"))
        #expect(out[1]["keywords"] as? [String] == ["mine"] && out[1]["summary"] as? String == "Mine.")
        #expect(out[2]["keywords"] as? [String] == ["k1", "k2"] && out[2]["summary"] as? String == "Filled.")
        let errors = try jsonLines(Data(contentsOf: dir.appendingPathComponent("err.ndjson")))
        #expect(
            errors.map { $0["id"] as? String } == ["c"] && errors.first?["step"] as? String == "knowledge extraction")
        let rejects = try jsonLines(Data(contentsOf: dir.appendingPathComponent("rej.ndjson")))
        #expect(rejects.count == 1 && (rejects.first?["reason"] as? String)?.hasPrefix("empty instruction") == true)
    }
}
