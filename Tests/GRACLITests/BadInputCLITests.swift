import Foundation
import Testing

/// A corpus of bad input through every stage, through the built binaries (issue 16): malformed
/// JSON, invalid UTF-8, a NUL byte, a line that is an array or a bare string, a 100 MB line, a
/// bad element of a JSON array, and fields of the wrong type. Each bad line sits between two
/// good records. What is checked is the documented contract (man/gra.7, CONVENTIONS): without
/// --skip-bad-input the stage stops with 65 and a message naming the line, after writing the
/// record before it whole; with it, the stage writes both good records and keeps the bad line,
/// byte for byte, in its errors or rejects file; a field of the wrong type is named.
@Suite("Bad input through every stage", .serialized)
struct BadInputCLITests {
    static let prelude = MapCLITests.prelude

    /// Replies for every role, so that good records go through each stage.
    static let script = #"""
        {"rules":[
        {"contains":"extract the knowledge","reply_json":{"keywords":["k"],"summary":"S."}},
        {"contains":"Write ONE new example","reply_json":{"instruction":"New","input":"","response":"Old"}},
        {"contains":"judge only the INSTRUCTION","reply_json":{"score":8,"comment":"c"}},
        {"contains":"judge the RESPONSE","reply_json":{"score":8,"comment":"c"}}
        ]}
        """#

    static let pool = "--model m1@$URL --model m2@$URL --model m3@$URL --model m4@$URL --no-cache"

    /// The stages, the file a skipped line goes to when no flag names one, and the flags that
    /// name the stage's side files.
    static let stages: [(name: String, command: String, sideFile: String, sideFlags: String)] = [
        ("gra-format", "gra-format --to gra", "gra-format.rejects.ndjson", "--rejects rejects.ndjson"),
        ("gra-dedup", "gra-dedup", "gra-dedup.errors.ndjson", "--errors errors.ndjson --rejects rejects.ndjson"),
        ("gra-map", "gra-map --prompt p.txt --into x \(pool)", "gra-map.errors.ndjson", "--errors errors.ndjson"),
        ("gra-generate", "gra-generate \(pool)", "gra-generate.errors.ndjson", "--errors errors.ndjson"),
        ("gra-review", "gra-review \(pool)", "gra-review.errors.ndjson", "--errors errors.ndjson"),
        (
            "gra-adjudicate", "gra-adjudicate \(pool)", "gra-adjudicate.errors.ndjson",
            "--errors errors.ndjson --rejects rejects.ndjson"
        )
    ]

    /// A scratch directory with gra-map's prompt (p.txt) and the server's script.
    static func scratch() throws -> URL {
        let dir = ToolRunner.scratch()
        try Data("Say {{instruction}}".utf8).write(to: dir.appendingPathComponent("p.txt"))
        try Data(script.utf8).write(to: dir.appendingPathComponent("script.json"))
        return dir
    }

    /// A good record; for gra-adjudicate one the reviewers accepted (it passes through).
    static func good(_ id: String, stage: String) -> String {
        let review = stage == "gra-adjudicate" ? #","gra":{"review":{"decision":"accept","reason":"r"}}"# : ""
        return #"{"id":"\#(id)","instruction":"Task \#(id)","output":"Answer \#(id)"\#(review)}"#
    }

    /// The bad lines: name, the line's bytes, and the message every stage gives after "line 2: ".
    static let badLines: [(name: String, bytes: [UInt8], message: String)] = [
        (
            "malformed", Array(#"{"id":"b","instruction":"x""#.utf8),
            "invalid JSON: unexpected end of input in object, expected ',' or '}' at byte 28"
        ),
        (
            "invalid-utf8", Array(#"{"id":"b","instruction":""#.utf8) + [0xFF] + Array(#""}"#.utf8),
            "invalid JSON: invalid UTF-8 (byte 0xFF) at byte 26"
        ),
        (
            "nul", Array(#"{"id":"b","instruction":"a"#.utf8) + [0x00] + Array(#"b"}"#.utf8),
            "invalid JSON: NUL byte inside a string (must be escaped) at byte 27"
        ),
        (
            "array", Array(#"[{"id":"b","instruction":"x"}]"#.utf8),
            "expected a JSON object (one record per line), found an array"
        ),
        ("string", Array(#""just text""#.utf8), "expected a JSON object (one record per line), found a string")
    ]

    /// The 100 MB line: longer than the default --max-line-bytes (64 MiB).
    static let longLineBytes = 100_000_000 + #"{"id":"b","instruction":""}"#.utf8.count
    static let longLineMessage = "line is \(longLineBytes) bytes, over the 67108864-byte limit (--max-line-bytes)"

    func ids(_ data: Data, stage: String) throws -> [String] {
        try jsonLines(data).map { o in
            // gra-generate writes new samples; they name their seed.
            if stage == "gra-generate" {
                return ((o["gra"] as? [String: Any])?["origin"] as? [String: Any])?["seed"] as? String ?? "?"
            }
            return o["id"] as? String ?? "?"
        }
    }

    /// Every bad line, with and without --skip-bad-input, through one stage.
    @Test(arguments: stages.map(\.name))
    func badLinesStopOrAreKeptWhole(_ stage: String) throws {
        let (_, command, sideFile, _) = Self.stages.first { $0.name == stage }!
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = Array((Self.good("a", stage: stage) + "\n").utf8)
        let c = Array((Self.good("c", stage: stage) + "\n").utf8)
        var cases: [(name: String, place: String, message: String, line: [UInt8]?)] = []
        for bad in Self.badLines {
            try Data(a + bad.bytes + [0x0A] + c).write(to: dir.appendingPathComponent("in.\(bad.name)"))
            cases.append((bad.name, "line 2", bad.message, bad.bytes))
        }
        // A JSON array whose second element is not a record.
        let element = Array(Self.good("a", stage: stage).utf8)
        try Data([0x5B] + element + Array(",\n42,\n".utf8) + Array(Self.good("c", stage: stage).utf8) + [0x5D, 0x0A])
            .write(to: dir.appendingPathComponent("in.element"))
        cases.append(
            ("element", "line 2 (array element 2)", "expected a JSON object (one record per line), found a number", nil)
        )
        cases.append(("long", "line 2", Self.longLineMessage, nil))

        let names = cases.map(\.name).joined(separator: " ")
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models m1,m2,m3,m4
                { head -n 1 in.malformed
                  printf '{"id":"b","instruction":"'; head -c 100000000 /dev/zero | tr '\\000' x; printf '"}\\n'
                  tail -n 1 in.malformed; } > in.long
                for c in \(names); do
                    \(command) < in.$c > out.$c.stop 2> err.$c.stop; echo $? > status.$c.stop
                    rm -f \(sideFile)
                    \(command) --skip-bad-input < in.$c > out.$c.skip 2> err.$c.skip; echo $? > status.$c.skip
                    mv \(sideFile) side.$c 2>/dev/null
                done
                rm -f in.long
                """, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        func file(_ name: String) -> Data { (try? Data(contentsOf: dir.appendingPathComponent(name))) ?? Data() }
        func text(_ name: String) -> String { String(decoding: file(name), as: UTF8.self) }

        for bad in cases {
            let c = bad.name
            // Stop: 65, the line named, the record before it written whole, nothing after.
            #expect(text("status.\(c).stop") == "65\n", "\(stage) \(c): \(text("err.\(c).stop"))")
            #expect(
                text("err.\(c).stop").contains(
                    "\(stage): error: \(bad.place): \(bad.message) (--skip-bad-input skips such records)"),
                "\(stage) \(c): \(text("err.\(c).stop"))")
            #expect(try ids(file("out.\(c).stop"), stage: stage) == ["a"], "\(stage) \(c)")

            // Skip: both good records out, status 0, the line reported and kept in the side file.
            #expect(text("status.\(c).skip") == "0\n", "\(stage) \(c): \(text("err.\(c).skip"))")
            #expect(try ids(file("out.\(c).skip"), stage: stage) == ["a", "c"], "\(stage) \(c)")
            #expect(
                text("err.\(c).skip").contains("\(stage): \(bad.place): \(bad.message) (skipped)"),
                "\(stage) \(c): \(text("err.\(c).skip"))")
            let kept = try jsonLines(file("side.\(c)"))
            #expect(kept.count == 1, "\(stage) \(c): \(text("side.\(c)"))")
            guard let entry = kept.first else { continue }
            #expect(entry["stage"] as? String == stage)
            #expect(entry["where"] as? String == bad.place)
            #expect(entry["reason"] as? String == bad.message)
            // The input itself, so that nothing is lost: as text, as base64 when it is not
            // UTF-8, as a JSON value when it parsed; a line over the cap only by its length.
            switch c {
            case "invalid-utf8":
                #expect(entry["raw"] == nil)
                #expect((entry["raw_base64"] as? String).flatMap { Data(base64Encoded: $0) } == Data(bad.line!))
            case "malformed", "nul":
                #expect((entry["raw"] as? String).map { Array($0.utf8) } == bad.line, "\(stage) \(c): \(entry)")
            case "array":
                let value =
                    entry["value"]
                    ?? entry["raw"].flatMap {
                        try? JSONSerialization.jsonObject(with: Data(($0 as! String).utf8))
                    }
                #expect((value as? [[String: Any]])?.first?["id"] as? String == "b", "\(stage) \(c): \(entry)")
            case "string":
                let value = entry["value"] as? String ?? (entry["raw"] as? String)
                #expect(value == "just text" || value == #""just text""#, "\(stage) \(c): \(entry)")
            case "element":
                let value = entry["value"] ?? (entry["raw"] as? String).flatMap { Int($0) }
                #expect(value as? Int == 42, "\(stage) \(c): \(entry)")
            case "long":
                #expect(entry["raw"] == nil && entry["raw_base64"] == nil)
            default:
                Issue.record("no check for case \(c)")
            }
        }
    }

    /// A field of the wrong type: every stage that reads the field names it, and the record is
    /// in the errors or rejects file whole (gra-dedup, which reads its text fields while it
    /// reads the input, stops like for a malformed line); gra-map inserts what the template
    /// asks for (numbers as written).
    @Test(arguments: stages.map(\.name))
    func wrongFieldTypesAreNamed(_ stage: String) throws {
        let (_, command, _, sideFlags) = Self.stages.first { $0.name == stage }!
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad =
            stage == "gra-adjudicate"
            ? #"{"id":"b","instruction":"x","output":"y","gra":{"review":"accepted"}}"#
            : stage == "gra-review"
                ? #"{"id":"b","instruction":"x","output":["y"]}"# : #"{"id":"b","instruction":5,"output":"y"}"#
        let input = [Self.good("a", stage: stage), bad, Self.good("c", stage: stage)].joined(separator: "\n") + "\n"
        try Data(input.utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --models m1,m2,m3,m4
                \(command) \(sideFlags) < in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        let out = try ids(Data(contentsOf: dir.appendingPathComponent("out.ndjson")), stage: stage)
        func lines(_ name: String) throws -> [[String: Any]] {
            let url = dir.appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: url.path) ? try jsonLines(Data(contentsOf: url)) : []
        }
        let errors = try lines("errors.ndjson")
        let rejects = try lines("rejects.ndjson")
        switch stage {
        case "gra-format":
            #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
            #expect(out == ["a", "c"])
            #expect(
                rejects.first?["reason"] as? String
                    == "cannot read as alpaca: field 'instruction' must be a string, not a number")
            #expect((rejects.first?["record"] as? [String: Any])?["instruction"] as? Int == 5)
        case "gra-dedup":
            #expect(r.stdoutLines == ["status 65"], "\(r.stderr)")
            #expect(out == ["a"])
            #expect(r.stderr.contains("gra-dedup: error: line 2: field 'instruction' must be a string, not a number"))
        case "gra-map":
            #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
            #expect(out == ["a", "b", "c"])
            let replies = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson"))).map {
                $0["x"] as? String
            }
            #expect(replies[1] == "echo: Say 5")
        default:
            let reason =
                stage == "gra-adjudicate"
                ? "field 'gra.review' must be an object, not a string"
                : stage == "gra-review"
                    ? "field 'output' must be a string, not an array"
                    : "field 'instruction' must be a string, not a number"
            #expect(r.stdoutLines == ["status 75"], "\(r.stderr)")
            #expect(out == ["a", "c"])
            #expect(errors.count == 1)
            #expect(errors.first?["reason"] as? String == reason, "\(errors)")
            #expect(errors.first?["where"] as? String == "line 2")
            #expect((errors.first?["record"] as? [String: Any])?["id"] as? String == "b")
        }
    }
}
