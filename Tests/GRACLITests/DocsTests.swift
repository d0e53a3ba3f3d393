import Foundation
import Testing

/// The man pages are kept by hand: check they still match what the tools accept.
@Suite("Documentation matches the tools")
struct DocsTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let tools = [
        "gra-format", "gra-map", "gra-generate", "gra-review", "gra-adjudicate", "gra-dedup", "gra-report", "gra-ifd"
    ]
    /// The fewest options each tool has: a check that the help and the man page were parsed.
    static func fewestOptions(_ tool: String) -> Int { tool == "gra-report" ? 4 : 10 }

    /// Each option --help shows has a `.TP` entry in the man page's OPTIONS section (its `.SS`
    /// subsections included) whose tag names the flag and whose text holds the option's help abstract
    /// (see `ManPage.plain` for how roff and the abstract are compared); and every flag an entry's tag
    /// names is one the tool knows, so a removed flag cannot linger in the man page.
    @Test(arguments: tools)
    func everyOptionIsInTheManPage(_ tool: String) throws {
        let dump = try ToolRunner.sh("\(tool) --experimental-dump-help")
        #expect(dump.status == 0, "\(dump.stderr)")
        let arguments = try DumpedArgument.all(from: dump.stdout)
        #expect(
            arguments.count >= Self.fewestOptions(tool),
            "parsed \(arguments.count) arguments from --experimental-dump-help")
        let page = try String(contentsOf: Self.repo.appendingPathComponent("man/\(tool).1"), encoding: .utf8)
        let entries = ManPage.optionEntries(page)
        #expect(
            entries.count >= Self.fewestOptions(tool), "found \(entries.count) .TP entries in OPTIONS of man/\(tool).1")
        var known = Set<String>()
        for argument in arguments { known.formUnion(argument.flags) }
        for argument in arguments where argument.shown {
            let abstract = ManPage.comparable(argument.abstract)
            for flag in argument.flags where flag.hasPrefix("--") {
                let named = entries.filter { ManPage.flags(in: $0.tag).contains(flag) }
                #expect(!named.isEmpty, "man/\(tool).1 OPTIONS has no .TP entry for \(flag)")
                guard !named.isEmpty else { continue }
                let reads = named[0].text
                #expect(
                    named.contains { ManPage.comparable($0.tag + " " + $0.text).contains(abstract) },
                    "man/\(tool).1, \(flag): the entry lacks the help text \"\(abstract)\"; it reads \"\(reads)\"")
            }
        }
        for entry in entries {
            for flag in ManPage.flags(in: entry.tag) {
                #expect(
                    known.contains(flag),
                    "man/\(tool).1 documents \(flag) (\"\(entry.tag)\"), which \(tool) does not have")
            }
        }
    }

    @Test func manPagesLintClean() throws {
        let r = try ToolRunner.sh(
            """
            command -v groff >/dev/null || exit 77; for f in '\(Self.repo.path)'/man/*.[0-9]; do groff -man -ww \
            -z \"$f\" || exit 1; done
            """
        )
        if r.status == 77 { return }  // groff not installed: nothing to lint with
        #expect(r.status == 0)
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }
}

/// One argument of ArgumentParser's `--experimental-dump-help` JSON.
struct DumpedArgument {
    var flags: [String]  // "--name" and "-n" spellings
    var abstract: String
    var shown: Bool  // false for hidden options (--help does not list them)

    static func all(from json: Data) throws -> [DumpedArgument] {
        let root = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        let command = root?["command"] as? [String: Any]
        let arguments = command?["arguments"] as? [[String: Any]] ?? []
        return arguments.compactMap { argument in
            guard argument["kind"] as? String != "positional" else { return nil }
            let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { name -> String? in
                guard let n = name["name"] as? String else { return nil }
                return (name["kind"] as? String == "long" ? "--" : "-") + n
            }
            return DumpedArgument(
                flags: names, abstract: argument["abstract"] as? String ?? "",
                shown: argument["shouldDisplay"] as? Bool ?? true)
        }
    }
}

/// Just enough roff to read a man page's OPTIONS entries as plain text.
enum ManPage {
    struct Entry {
        var tag: String  // the line after .TP, as plain text
        var text: String  // the paragraph under it, as plain text, whitespace collapsed
    }

    /// The `.TP` entries from `.SH OPTIONS` to the next `.SH` (`.SS` headings and `.PP` end an entry).
    static func optionEntries(_ page: String) -> [Entry] {
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let heading = lines.firstIndex { $0 == ".SH OPTIONS" || $0 == ".SH \"OPTIONS\"" }
        guard let start = heading else { return [] }
        var entries: [Entry] = []
        var open = false
        for line in lines[(start + 1)...] {
            if line.hasPrefix(".SH") { break }
            if line.hasPrefix(".TP") {
                entries.append(Entry(tag: "", text: ""))
                open = true
                continue
            }
            if line.hasPrefix(".SS") || line.hasPrefix(".PP") || line.hasPrefix(".LP") {
                open = false
                continue
            }
            guard open, let text = plain(line) else { continue }
            if entries[entries.count - 1].tag.isEmpty {
                entries[entries.count - 1].tag = text
            } else {
                entries[entries.count - 1].text += " " + text
            }
        }
        return entries.map {
            Entry(tag: $0.tag, text: $0.text.split(whereSeparator: \.isWhitespace).joined(separator: " "))
        }
    }

    /// A roff line as plain text: the font macros (.B .I .BR .RB .BI .IB .IR .RI) give their arguments
    /// (quotes removed; joined by spaces for .B and .I, run together for the alternating ones), other
    /// requests give nil; then font escapes (\fB, \fR, \f(CW, ...) go, \- is -, \e is \\, \& is nothing,
    /// \(em, \(en, \(<=, \(mu and \[uXXXX] are their characters.
    static func plain(_ line: String) -> String? {
        var text = line
        if let m = line.wholeMatch(of: /\.(B|I|BR|RB|BI|IB|IR|RI)(?: (.*))?/) {
            let words = arguments(String(m.output.2 ?? ""))
            text = words.joined(separator: m.output.1 == "B" || m.output.1 == "I" ? " " : "")
        } else if line.hasPrefix(".") || line.hasPrefix("'") {
            return nil
        }
        text = text.replacing(/\\f(\[[^\]]*\]|\(..|.)/, with: "")
        text = text.replacing(/\\\[u([0-9A-F]{4})\]/) { m in
            String(Character(Unicode.Scalar(UInt32(m.output.1, radix: 16)!)!))
        }
        for (escape, character) in [
            ("\\-", "-"), ("\\e", "\\"), ("\\&", ""), ("\\%", ""), ("\\(em", "\u{2014}"),
            ("\\(en", "\u{2013}"), ("\\(<=", "\u{2264}"), ("\\(mu", "\u{00D7}")
        ] {
            text = text.replacingOccurrences(of: escape, with: character)
        }
        return text
    }

    /// A macro's arguments: words, or "quoted strings" (which may hold spaces).
    static func arguments(_ s: String) -> [String] {
        var words: [String] = []
        var rest = Substring(s)
        while let first = rest.first {
            if first == " " {
                rest = rest.dropFirst()
                continue
            }
            if first == "\"" {
                let body = rest.dropFirst()
                let end = body.firstIndex(of: "\"") ?? body.endIndex
                words.append(String(body[..<end]))
                rest = end == body.endIndex ? "" : body[body.index(after: end)...]
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                words.append(String(rest[..<end]))
                rest = rest[end...]
            }
        }
        return words
    }

    /// The flags an entry's tag names ("--top-p p" names --top-p; "-q, --quiet" names -q and --quiet).
    static func flags(in tag: String) -> Set<String> {
        Set(tag.matches(of: /(?:^|[^A-Za-z0-9-])(--?[A-Za-z][A-Za-z0-9-]*)/).map { String($0.output.1) })
    }

    /// Text as compared: whitespace collapsed, 'quoted' words unquoted (--help quotes what the man page
    /// sets in bold), a final period dropped. The comparison itself is case-sensitive.
    static func comparable(_ s: String) -> String {
        var text = s.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        text = text.replacing(/'([^' ]+)'/) { String($0.output.1) }
        while text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
