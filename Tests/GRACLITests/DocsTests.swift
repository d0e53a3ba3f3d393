import Foundation
import Testing

/// The man pages are kept by hand: check they still match what the tools accept.
@Suite("Documentation matches the tools")
struct DocsTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tools = ["gra-format", "gra-map", "gra-generate", "gra-review", "gra-adjudicate", "gra-dedup"]

    @Test(arguments: tools)
    func everyOptionIsInTheManPage(_ tool: String) throws {
        let help = try ToolRunner.sh("\(tool) --help")
        #expect(help.status == 0)
        let options = Set(help.stdoutText.matches(of: /--[a-z][a-z0-9-]+/).map { String($0.output) })
        #expect(options.count >= 5, "parsed \(options) from --help")
        let page = try String(contentsOf: Self.repo.appendingPathComponent("man/\(tool).1"), encoding: .utf8)
            .replacingOccurrences(of: "\\-", with: "-")
        for option in options where option != "--help" {
            #expect(page.contains(option), "\(option) of \(tool) is missing from man/\(tool).1")
        }
    }

    @Test func manPagesLintClean() throws {
        let r = try ToolRunner.sh("command -v groff >/dev/null || exit 77; for f in '\(Self.repo.path)'/man/*.[0-9]; do groff -man -ww -z \"$f\" || exit 1; done")
        if r.status == 77 { return }   // groff not installed: nothing to lint with
        #expect(r.status == 0)
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }
}
