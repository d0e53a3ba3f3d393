import Foundation
import Testing

/// gra-format as users run it: the built binary in real shell pipes.
@Suite("gra-format end to end")
struct FormatCLITests {
    /// Unknown fields with tricky JSON come out with the same values, byte for byte.
    @Test func unknownFieldsRoundTripExactly() throws {
        let tricky =
            #"""
            "big":123456789012345678901234567890,"neg":-18446744073709551617,"f":0.30000000000000004,\#
            "tiny":5e-324,"huge":1e400,"negzero":-0.0,"exp":1E+2,"s":"\u0000\"\\\b\f\n\r\t\u001f","emoji":"😀👍🏽",\#
            "cjk":"中文と日本語","nested":{"a":[1,{"b":null}],"c":true}
            """#
        let input = #"{"instruction":"q","output":"a","#.dropLast() + "," + tricky + "}\n"
        let r = try ToolRunner.sh("gra-format --to gra", stdin: String(input))
        #expect(r.status == 0, "\(r.stderr)")
        let line = r.stdoutText.trimmingCharacters(in: .newlines)
        #expect(line == #"{"instruction":"q","input":"","response":"a","# + tricky + "}")
        // And through every other format and back.
        for f in ["alpaca", "sharegpt", "openai"] {
            let back = try ToolRunner.sh("gra-format --to \(f) | gra-format --to gra", stdin: String(input))
            #expect(back.status == 0)
            #expect(back.stdoutText.trimmingCharacters(in: .newlines) == line, "via \(f)")
        }
    }

    @Test func escapedInputIsWrittenAsUTF8() throws {
        let r = try ToolRunner.sh(
            "gra-format", stdin: #"{"instruction":"caf\u00e9 \ud83d\ude00","output":"\/ok"}"# + "\n")
        #expect(r.stdoutText == #"{"instruction":"café 😀","input":"","response":"/ok"}"# + "\n")
    }

    /// Bad lines stop the run with exit 65 and a message naming the line; what came before
    /// is written whole, nothing after.
    @Test(arguments: [
        ("{\"instruction\":\"x\",\"output\":\"\u{FF}\"}", "line 3: invalid JSON: invalid UTF-8"),
        ("{\"instruction\":\"x\",\"output\":\"a\u{0}b\"}", "line 3: invalid JSON: NUL byte inside a string"),
        ("{\"instruction\":\"x\",\u{0}\"output\":\"a\"}", "line 3: invalid JSON: unexpected NUL byte"),
        (
            "{\"instruction\":\"x\" \"output\":\"a\"}",
            "line 3: invalid JSON: unexpected '\"' in object, expected ',' or '}' at byte 20"
        ),
        (
            "[{\"instruction\":\"x\",\"output\":\"a\"}]",
            "line 3: expected a JSON object (one record per line), found an array"
        ),
        ("\"just a string\"", "line 3: expected a JSON object"),
        ("{\"instruction\":\"x\",\"output\":\"a\"", "line 3: invalid JSON: unexpected end of input")
    ])
    func malformedLineStops(_ bad: String, _ message: String) throws {
        var input = Data(
            "{\"instruction\":\"q1\",\"output\":\"a1\"}\n{\"instruction\":\"q2\",\"output\":\"a2\"}\n".utf8)
        // \u{FF} above is a placeholder for the raw byte 0xFF, which no Swift string can hold.
        var badBytes = Data(bad.utf8)
        if let range = badBytes.range(of: Data("\u{FF}".utf8)) { badBytes.replaceSubrange(range, with: [0xFF]) }
        input.append(badBytes)
        input.append(Data("\n{\"instruction\":\"q4\",\"output\":\"a4\"}\n".utf8))
        let r = try ToolRunner.sh("gra-format", stdin: input)
        #expect(r.status == 65)
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(
            r.stdoutLines == [
                #"{"instruction":"q1","input":"","response":"a1"}"#,
                #"{"instruction":"q2","input":"","response":"a2"}"#
            ])
    }

    @Test func skipBadInputReportsToRejectsAndGoesOn() throws {
        var input = Data("{\"instruction\":\"q1\",\"output\":\"a1\"}\n".utf8)
        // Line 2: invalid UTF-8.
        input.append(Data(#"{"instruction":""#.utf8) + [0xFF] + Data(#"","output":"a"}"#.utf8) + [0x0A])
        input.append(Data("[1,2]\n\n{\"instruction\":\"q5\",\"output\":\"a5\"}\n{oops\n".utf8))
        let r = try ToolRunner.sh(
            "gra-format --skip-bad-input --rejects rej.ndjson; echo \"status $?\"; cat rej.ndjson", stdin: input)
        let lines = r.stdoutLines
        #expect(lines.count == 2 + 1 + 3, "\(r.stdoutText)")
        #expect(lines[0].contains(#""response":"a1""#))
        #expect(lines[1].contains(#""response":"a5""#))
        #expect(lines[2] == "status 0")
        let rejects = try jsonLines(Data(lines[3...].joined(separator: "\n").utf8))
        #expect(rejects.map { $0["where"] as? String } == ["line 2", "line 3", "line 6"])
        #expect((rejects[0]["reason"] as? String)?.contains("invalid UTF-8") == true)
        #expect((rejects[1]["reason"] as? String)?.contains("found an array") == true)
        #expect(rejects[1]["value"] as? [Int] == [1, 2])
        #expect(rejects[2]["raw"] as? String == "{oops")
        #expect(r.stderr.contains("line 6: invalid JSON"))
    }

    @Test func overlongLineIsNamedAndSkippable() throws {
        let long = "{\"instruction\":\"" + String(repeating: "x", count: 5000) + "\",\"output\":\"a\"}"
        let input =
            "{\"instruction\":\"q\",\"output\":\"a\"}\n" + long + "\n{\"instruction\":\"q3\",\"output\":\"a\"}\n"
        let stop = try ToolRunner.sh("gra-format --max-line-bytes 1000", stdin: input)
        #expect(stop.status == 65)
        #expect(stop.stderr.contains("line 2: line is 5031 bytes, over the 1000-byte limit"), "\(stop.stderr)")
        #expect(stop.stdoutLines.count == 1)
        let skip = try ToolRunner.sh("gra-format --max-line-bytes 1000 --skip-bad-input", stdin: input)
        #expect(skip.status == 0)
        #expect(skip.stdoutLines.count == 2)
        #expect(skip.stdoutLines[1].contains("q3"))
    }

    /// Every format to every format, as JSON arrays, and back: the samples survive.
    @Test(arguments: ["gra", "alpaca", "sharegpt", "openai"])
    func allFormatsConvertBothWaysWithArray(_ target: String) throws {
        let dir = ToolRunner.scratch()
        let input = """
            {"id":"a1","instruction":"Name a prime.","input":"","output":"2","source":"unit"}
            {"id":"a2","instruction":"Translate","input":"chat","response":"cat","system":"You translate \
            French.","gra":{"review":{"decision":"accept"}}}
            {"id":"a3","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"hello"},{"from":"human",\
            "value":"2+2?"},{"from":"gpt","value":"4"}]}
            {"id":"a4","messages":[{"role":"system","content":"terse"},{"role":"user","content":"sky \
            colour?"},{"role":"assistant","content":"blue"}]}

            """
        let r = try ToolRunner.sh(
            "gra-format --to \(target) --array > out.json && gra-format < out.json", stdin: input, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let array =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("out.json")))
            as? [[String: Any]]
        #expect(array?.count == 4)
        let back = try jsonLines(r.stdout)
        #expect(back.map { $0["id"] as? String } == ["a1", "a2", "a3", "a4"])
        #expect(back[0]["response"] as? String == "2")
        #expect(back[0]["source"] as? String == "unit")
        #expect(back[1]["response"] as? String == "cat")
        #expect(back[1]["system"] as? String == "You translate French.")
        #expect((back[1]["gra"] as? [String: Any])?["review"] != nil)
        // Chat formats fold the input into the user's message.
        let chat = target == "sharegpt" || target == "openai"
        #expect(back[1]["instruction"] as? String == (chat ? "Translate\nchat" : "Translate"))
        #expect(back[2]["instruction"] as? String == "2+2?")
        #expect(back[2]["response"] as? String == "4")
        #expect((back[2]["history"] as? [[String]]) == [["hi", "hello"]])
        #expect(back[3]["system"] as? String == "terse")
        // The array file itself has the target's shape.
        let first = try #require(array?.first)
        switch target {
        case "alpaca": #expect(first["output"] as? String == "2")
        case "sharegpt": #expect((first["conversations"] as? [[String: String]])?.last?["from"] == "gpt")
        case "openai": #expect((first["messages"] as? [[String: String]])?.last?["role"] == "assistant")
        default: #expect(first["response"] as? String == "2")
        }
    }

    /// --no-normalize leaves the text alone but still rejects a truncated response.
    @Test func noNormalizeStillRejectsTruncated() throws {
        let input =
            #"{"instruction":"q","response":"```py\nx = 1\n"}"# + "\n" + #"{"instruction":" q ","response":"ok "}"#
            + "\n"
        let r = try ToolRunner.sh("gra-format --no-normalize --rejects rej.ndjson && cat rej.ndjson", stdin: input)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines.count == 2)
        #expect(r.stdoutLines.first == #"{"instruction":" q ","input":"","response":"ok "}"#)
        #expect(r.stdoutLines.last?.contains("truncated: response has an unclosed code fence") == true)
    }

    @Test func stripMetaDropsGraBlockAndExtras() throws {
        let record = #"{"instruction":"q","response":"a","gra":{"x":1},"keep":2}"# + "\n"
        let r = try ToolRunner.sh("gra-format --to alpaca --strip-meta", stdin: record)
        #expect(r.stdoutText == #"{"instruction":"q","input":"","output":"a"}"# + "\n")
        let kept = try ToolRunner.sh("gra-format --to alpaca --strip-meta --keep keep", stdin: record)
        #expect(kept.stdoutText == #"{"instruction":"q","input":"","output":"a","keep":2}"# + "\n")
    }

    @Test func rejectsFileNamesReasons() throws {
        let input = """
            {"instruction":"q1","output":"fine"}
            {"instruction":"q2","output":"   \\n\\n "}
            {"instruction":"","output":"a"}
            {"instruction":"q4","output":"Here:\\n```python\\nprint(1)"}
            {"title":"not a sample"}
            {"conversations":[{"from":"human","value":"q"}]}

            """
        let r = try ToolRunner.sh("gra-format --rejects rej.ndjson && cat rej.ndjson", stdin: input)
        #expect(r.status == 0)
        let all = try jsonLines(r.stdout)
        #expect(all.count == 6)
        #expect(all[0]["response"] as? String == "fine")
        let rejects = all[1...].map { ($0["where"] as? String ?? "", $0["reason"] as? String ?? "") }
        #expect(rejects.map(\.0) == ["line 2", "line 3", "line 4", "line 5", "line 6"])
        #expect(rejects[0].1 == "empty response")
        #expect(rejects[1].1 == "empty instruction")
        #expect(rejects[2].1.hasPrefix("truncated"))
        #expect(rejects[3].1.hasPrefix("unrecognized record"))
        #expect(rejects[4].1.contains("does not end with an assistant reply"))
        // The rejected record is kept whole.
        #expect((all[2]["record"] as? [String: Any])?["instruction"] as? String == "")
        #expect(r.stderr.contains("6 records read, 1 written, 5 rejected"))
    }

    /// Without --rejects, rejected records are kept whole in ./gra-format.rejects.ndjson (never
    /// overwriting one that exists), and the summary names the file.
    @Test func withoutRejectsFileRejectionsGoToTheDefaultFile() throws {
        let dir = ToolRunner.scratch()
        try Data((#"{"instruction":"q","output":""}"# + "\n").utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        let r = try ToolRunner.sh(
            """
            gra-format < in.ndjson > out1.ndjson 2> err1.txt; echo "status $?"
            gra-format < in.ndjson > out2.ndjson 2> err2.txt; echo "status $?"
            gra-format --rejects /dev/null < in.ndjson > out3.ndjson; echo "status $?"
            ls | grep -c rejects
            """, in: dir)
        #expect(r.stdoutLines == ["status 0", "status 0", "status 0", "2"], "\(r.stdoutText) \(r.stderr)")
        let kept = try jsonLines(Data(contentsOf: dir.appendingPathComponent("gra-format.rejects.ndjson")))
        #expect(
            kept.count == 1 && kept[0]["reason"] as? String == "empty response"
                && kept[0]["where"] as? String == "line 1")
        #expect((kept[0]["record"] as? [String: Any])?["instruction"] as? String == "q")
        let said = (try? String(contentsOf: dir.appendingPathComponent("err1.txt"), encoding: .utf8)) ?? ""
        #expect(said.contains("1 rejected record(s) written to ./gra-format.rejects.ndjson"), "\(said)")
        let again = (try? String(contentsOf: dir.appendingPathComponent("err2.txt"), encoding: .utf8)) ?? ""
        #expect(again.contains("./gra-format.rejects.2.ndjson"), "\(again)")
    }

    /// Many batches are converted in parallel; the output must still follow the input order.
    @Test func orderIsPreservedAcrossParallelBatches() throws {
        let script = """
            awk 'BEGIN { for (i = 0; i < 60000; i++) printf \
            "{\\"id\\":\\"r%d\\",\\"instruction\\":\\"%s\\",\\"output\\":\\"a\\"}\\n", i, (i % 7 == 0 ? "a longer \
            instruction text to vary the line lengths" : "q") }' | gra-format -q | awk -F'"' '{ print $4 }' > ids.txt
            awk '{ if ($0 != "r" NR-1) { print "out of order at " NR ": " $0; exit 1 } } END { print NR }' ids.txt
            """
        let r = try ToolRunner.sh(script)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        #expect(r.stdoutLines == ["60000"])
    }

    @Test func readsAlpacaJSONArrayFileAndReportsElement() throws {
        let dir = ToolRunner.scratch()
        try Data(
            """
            [
              {"instruction": "q1", "input": "", "output": "a1"},
              {"instruction": "q2", "input": "", "output": "a2"},
              {"instruction": "q3", "input": "", "output": 3}
            ]
            """.utf8
        ).write(to: dir.appendingPathComponent("alpaca.json"))
        let r = try ToolRunner.sh("gra-format alpaca.json --rejects rej.ndjson && cat rej.ndjson", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdoutLines
        #expect(lines.count == 3)
        #expect(lines[2].contains(#""where":"alpaca.json:4 (array element 3)""#), "\(lines[2])")
        #expect(lines[2].contains("'output' must be a string, not a number"))
    }

    @Test func bundledSeedsConvert() throws {
        let seeds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/seeds.alpaca.json")
        let r = try ToolRunner.sh("gra-format --rejects rej.ndjson '\(seeds.path)' && test ! -s rej.ndjson")
        #expect(r.status == 0, "\(r.stderr)")
        let records = try jsonLines(r.stdout)
        #expect(records.count == 32)
        #expect(Set(records.compactMap { $0["domain"] as? String }) == ["math", "code", "reasoning", "general"])
    }

    @Test func usageErrorsExit64() throws {
        let r = try ToolRunner.sh("gra-format --to yaml")
        #expect(r.status == 64)
        #expect(r.stderr.contains("yaml"))
        let missing = try ToolRunner.sh("gra-format no-such-file.jsonl")
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("cannot read no-such-file.jsonl"))
    }
}
