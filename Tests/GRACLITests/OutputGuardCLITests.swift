import Foundation
import Testing

/// No tool overwrites its own input, or one output with another: any output path (standard
/// output redirected to a file, --rejects, --errors, --stats) that is an input file, or
/// another output, stops the run with exit 64 before anything is opened for writing, and the
/// input is left as it was.
@Suite("Outputs never clobber inputs")
struct OutputGuardCLITests {
    /// A model on a port nothing listens on: the start-up probe fails fast, and the check
    /// comes before any request.
    static let model = "--model m1@http://127.0.0.1:9/v1 --no-cache"

    @Test(arguments: [
        ("gra-adjudicate \(model) --rejects in.ndjson in.ndjson", "--rejects in.ndjson is the input in.ndjson"),
        ("gra-adjudicate \(model) --errors ./in.ndjson in.ndjson", "--errors ./in.ndjson is the input in.ndjson"),
        ("gra-review \(model) --stats in.ndjson in.ndjson", "--stats in.ndjson is the input in.ndjson"),
        (
            "gra-adjudicate \(model) --errors out.ndjson --rejects ../d/out.ndjson in.ndjson",
            "--rejects ../d/out.ndjson is the same file as --errors out.ndjson"
        ),
        ("gra-generate \(model) --errors in.ndjson in.ndjson", "--errors in.ndjson is the input in.ndjson"),
        (
            "gra-map --prompt p.txt --into x \(model) --errors in.ndjson < in.ndjson",
            "--errors in.ndjson is the input standard input"
        ),
        ("gra-format --rejects in.ndjson in.ndjson", "--rejects in.ndjson is the input in.ndjson"),
        ("gra-format in.ndjson >> in.ndjson", "standard output is the input in.ndjson"),
        ("gra-format < in.ndjson >> in.ndjson", "standard output is the input standard input"),
        ("gra-dedup --rejects in.ndjson in.ndjson", "--rejects in.ndjson is the input in.ndjson"),
        (
            "gra-dedup --against in.ndjson --rejects in.ndjson other.ndjson",
            "--rejects in.ndjson is the input in.ndjson"
        ),
        (
            "gra-format --complete-summaries \(model) --errors in.ndjson in.ndjson",
            "--errors in.ndjson is the input in.ndjson"
        )
    ])
    func outputOverAnInputExits64(_ command: String, _ message: String) throws {
        let dir = ToolRunner.scratch().appendingPathComponent("d")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let records =
            #"{"id":"r1","instruction":"q","response":"a"}"# + "\n" + #"{"id":"r2","instruction":"q2","response":"a2"}"#
            + "\n"
        try Data(records.utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        try Data(records.utf8).write(to: dir.appendingPathComponent("other.ndjson"))
        try Data("{{instruction}}".utf8).write(to: dir.appendingPathComponent("p.txt"))
        let r = try ToolRunner.sh("\(command); echo \"status $?\"", in: dir)
        #expect(r.stdoutLines.last == "status 64", "\(r.stdoutText) \(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("in.ndjson"), encoding: .utf8) == records)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out.ndjson").path))
    }

    /// A stage that stops right after the start-up /models probe (here on a refused output
    /// path) must not crash at exit: the probe's reply round used to call into the released
    /// stage engine through an unowned reference (SIGABRT, exit 134, in 1 of 5 runs here).
    @Test func noCrashAtExitRightAfterTheProbe() throws {
        let dir = ToolRunner.scratch()
        try Data(#"{"instruction":"q"}"#.utf8 + [0x0A]).write(to: dir.appendingPathComponent("in.ndjson"))
        try Data("{{instruction}}".utf8).write(to: dir.appendingPathComponent("p.txt"))
        let r = try ToolRunner.sh(
            """
            i=0
            while [ $i -lt 40 ]; do
                gra-map --prompt p.txt --into x \(Self.model) --errors in.ndjson < in.ndjson 2> err.txt
                echo "status $?"
                grep -h "Fatal" err.txt || true
                i=$((i+1))
            done
            """, in: dir)
        #expect(r.stdoutLines == Array(repeating: "status 64", count: 40), "\(r.stdoutText)")
    }

    /// /dev/null, and distinct files, are fine as several outputs.
    @Test func devNullServesSeveralOutputs() throws {
        let dir = ToolRunner.scratch()
        try Data(#"{"instruction":"q","output":"a"}"#.utf8 + [0x0A]).write(to: dir.appendingPathComponent("in.json"))
        let r = try ToolRunner.sh(
            """
            gra-dedup -q --rejects /dev/null --errors /dev/null in.json > out.ndjson && gra-format -q --rejects \
            r.ndjson out.ndjson
            """,
            in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines.count == 1)
    }
}
