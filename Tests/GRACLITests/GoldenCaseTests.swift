import Foundation
import Testing

/// The golden cases in Tests/Cases/TOOL/CASE/ (see Tests/Cases/README.md): each runs
/// `TOOL $(cat args) < stdin.ndjson` in a scratch folder and compares stdout byte for byte, the exit
/// status exactly, stderr after `GoldenCase.normalize`, and the files under `files/` byte for byte.
/// With GRA_GOLDEN_UPDATE=1 in the environment the test writes what the run gave instead of comparing.
@Suite("Golden cases")
struct GoldenCaseTests {
    static let root = DocsTests.repo.appendingPathComponent("Tests/Cases")

    /// "TOOL/CASE" for every case folder (a folder holding an `args` file), sorted.
    static let cases: [String] = {
        let fm = FileManager.default
        var found: [String] = []
        for tool in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] {
            let toolDir = root.appendingPathComponent(tool)
            for name in (try? fm.contentsOfDirectory(atPath: toolDir.path)) ?? []
            where fm.fileExists(atPath: toolDir.appendingPathComponent(name).appendingPathComponent("args").path) {
                found.append("\(tool)/\(name)")
            }
        }
        return found.sorted()
    }()

    static let update = ProcessInfo.processInfo.environment["GRA_GOLDEN_UPDATE"] == "1"

    /// The files of a case folder that describe the run rather than being copied into the scratch folder.
    static let reserved: Set<String> = ["args", "stdin.ndjson", "stdout.ndjson", "stderr", "status", "files"]

    @Test func casesAreFound() {
        #expect(Self.cases.count >= 20, "found \(Self.cases) under \(Self.root.path)")
    }

    @Test(arguments: cases)
    func run(_ name: String) throws {
        let fm = FileManager.default
        let dir = Self.root.appendingPathComponent(name)
        let tool = String(name.split(separator: "/")[0])
        let args = try String(contentsOf: dir.appendingPathComponent("args"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let stdin = (try? Data(contentsOf: dir.appendingPathComponent("stdin.ndjson"))) ?? Data()

        let scratch = ToolRunner.scratch()
        defer { try? fm.removeItem(at: scratch) }
        for file in try fm.contentsOfDirectory(atPath: dir.path) where !Self.reserved.contains(file) {
            try fm.copyItem(at: dir.appendingPathComponent(file), to: scratch.appendingPathComponent(file))
        }
        // No model, server or cache from the caller's environment: the cases run the same everywhere.
        let script = "unset GRA_MODELS OPENAI_BASE_URL OPENAI_API_KEY; \(tool) \(args)"
        let r = try ToolRunner.sh(
            script, stdin: stdin, in: scratch,
            env: ["XDG_CACHE_HOME": scratch.appendingPathComponent(".cache").path])
        let stderr = GoldenCase.normalize(r.stderr, scratch: scratch.path)

        let expectedFiles = dir.appendingPathComponent("files")
        let outputs = (try? fm.contentsOfDirectory(atPath: expectedFiles.path))?.sorted() ?? []
        if Self.update {
            try r.stdout.write(to: dir.appendingPathComponent("stdout.ndjson"))
            try Data(stderr.utf8).write(to: dir.appendingPathComponent("stderr"))
            try Data("\(r.status)\n".utf8).write(to: dir.appendingPathComponent("status"))
            for file in outputs {
                let made = (try? Data(contentsOf: scratch.appendingPathComponent(file))) ?? Data()
                try made.write(to: expectedFiles.appendingPathComponent(file))
            }
            return
        }
        let status = try String(contentsOf: dir.appendingPathComponent("status"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int32(status) == r.status, "\(name): exit status; stderr: \(r.stderr)")
        let stdout = try Data(contentsOf: dir.appendingPathComponent("stdout.ndjson"))
        #expect(r.stdout == stdout, "\(name): stdout differs; it was:\n\(r.stdoutText)")
        let expected = try String(contentsOf: dir.appendingPathComponent("stderr"), encoding: .utf8)
        #expect(stderr == expected, "\(name): stderr differs")
        for file in outputs {
            let made = try? Data(contentsOf: scratch.appendingPathComponent(file))
            #expect(made != nil, "\(name): the run made no \(file)")
            let want = try Data(contentsOf: expectedFiles.appendingPathComponent(file))
            #expect(
                made == nil || made == want,
                "\(name): \(file) differs; it was:\n\(String(decoding: made ?? Data(), as: UTF8.self))")
        }
    }

    /// The normalization must change what it is meant to, and nothing else.
    @Test func normalizationIsMinimal() {
        let raw = "gra-x: /tmp/s1/in.ndjson: 2 in 0.01 s (130 records/s), 2367 rec/s, 0 tok/s\nline 3: 2 s\n"
        let want = "gra-x: $DIR/in.ndjson: 2 in <time> (<rate> records/s), <rate> rec/s, <rate> tok/s\nline 3: 2 s\n"
        #expect(GoldenCase.normalize(raw, scratch: "/tmp/s1") == want)
    }
}

enum GoldenCase {
    /// stderr as compared: the scratch folder's path becomes `$DIR`; a duration (digits with a decimal
    /// point and a unit `s` or `ms`) becomes `<time>`, and a rate (a number before ` rec/s`,
    /// ` records/s`, ` requests/s` or ` tok/s`) becomes `<rate>`. Nothing else changes: counts, line
    /// numbers and messages must match exactly.
    static func normalize(_ text: String, scratch: String) -> String {
        var s = text.replacingOccurrences(of: scratch, with: "$DIR")
        s = s.replacing(/\b[0-9]+\.[0-9]+ m?s\b/, with: "<time>")
        s = s.replacing(/\b[0-9]+(\.[0-9]+)?(?= (rec|records|requests|tok)\/s)/, with: "<rate>")
        return s
    }
}
