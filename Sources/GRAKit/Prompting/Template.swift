/// A prompt template in the Mustache subset gra uses, rendered against a JSON record.
///
/// Tags: `{{name}}`, `{{a.b}}`, `{{.}}` (values; `{{{x}}}` and `{{&x}}` are the same, as
/// nothing is HTML-escaped in a prompt), `{{#name}}…{{/name}}` sections (repeated for each
/// element of an array, entered once for an object or any other truthy value), `{{^name}}…{{/name}}`
/// inverted sections (rendered when the value is missing, null, false, "" or []), and
/// `{{! comments}}`. Section and comment tags alone on their line take the line with them.
/// Strings render as they are, numbers as written, arrays and objects as compact JSON.
/// A variable tag whose value is missing is reported, so a typo in a field name never turns
/// into an empty prompt silently.
///
/// Written for gra rather than taken from a Mustache library: it works on `JSONValue`
/// directly (no conversion per record) and renders in a few microseconds.
public struct PromptTemplate: Sendable {
    indirect enum Node: Sendable {
        case text(String)
        case variable([String])
        case section([String], inverted: Bool, [Node])
    }

    /// A template that does not parse: what is wrong and on which line.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    let nodes: [Node]
    /// The template text, for the prompt version.
    public let source: String

    public init(_ source: String) throws(ParseError) {
        self.source = source
        var parser = TemplateParser(Array(source.utf8))
        nodes = try parser.parseAll()
    }

    /// SHA-256 of the template text: part of every cache key, so an edited prompt re-asks.
    public var version: String { String(SHA256.hex(source).prefix(16)) }

    /// Renders against `record`; `missing` collects variable paths that had no value.
    public func render(_ record: JSONValue, missing: inout [String]) -> String {
        var out = ""
        var scope = Scope(record: record)
        PromptTemplate.render(nodes, &scope, &out, &missing)
        return out
    }

    /// What names resolve against: the sections entered, innermost last, then the record.
    /// (The record is kept apart so that a template without sections needs no array.)
    private struct Scope {
        let record: JSONValue
        var sections: [JSONValue] = []
        init(record: JSONValue) { self.record = record }
    }

    private static func lookup(_ path: [String], _ scope: Scope) -> JSONValue? {
        if path.count == 1 && path[0] == "." { return scope.sections.last ?? scope.record }
        var i = scope.sections.count
        while i >= 0 {
            i -= 1
            guard case .object(let o) = i >= 0 ? scope.sections[i] : scope.record, var v = o[path[0]] else { continue }
            for key in path.dropFirst() {
                guard case .object(let inner) = v, let next = inner[key] else { return nil }
                v = next
            }
            return v
        }
        return nil
    }

    private static func isTruthy(_ v: JSONValue?) -> Bool {
        switch v {
        case nil, .null?, .bool(false)?: return false
        case .string(let s)?: return !s.isEmpty
        case .array(let a)?: return !a.isEmpty
        default: return true
        }
    }

    private static func render(_ nodes: [Node], _ scope: inout Scope, _ out: inout String, _ missing: inout [String]) {
        for node in nodes {
            switch node {
            case .text(let t): out += t
            case .variable(let path):
                switch lookup(path, scope) {
                case nil: missing.append(path.joined(separator: "."))
                case .string(let s)?: out += s
                case .number(let n)?: out += n
                case .null?: break
                case let v?: out += JSONWriter.string(v)
                }
            case .section(let path, let inverted, let children):
                let v = lookup(path, scope)
                if inverted {
                    if !isTruthy(v) { render(children, &scope, &out, &missing) }
                } else if isTruthy(v), let v {
                    if case .array(let items) = v {
                        for item in items {
                            scope.sections.append(item)
                            render(children, &scope, &out, &missing)
                            scope.sections.removeLast()
                        }
                    } else {
                        scope.sections.append(v)
                        render(children, &scope, &out, &missing)
                        scope.sections.removeLast()
                    }
                }
            }
        }
    }
}

/// Turns template bytes into nodes, handling standalone lines.
private struct TemplateParser {
    let s: [UInt8]
    var i = 0
    var line = 1

    init(_ s: [UInt8]) { self.s = s }

    mutating func parseAll() throws(PromptTemplate.ParseError) -> [PromptTemplate.Node] {
        let (nodes, closing) = try parse(until: nil)
        if let closing {
            throw PromptTemplate.ParseError(line: line, message: "'{{/\(closing)}}' closes no open section")
        }
        return nodes
    }

    private func startsWith(_ t: String, at k: Int) -> Bool {
        let b = Array(t.utf8)
        guard k + b.count <= s.count else { return false }
        return Array(s[k..<(k + b.count)]) == b
    }

    /// Parses until the closing tag of `section` (returned) or the end.
    mutating func parse(until section: String?) throws(PromptTemplate.ParseError) -> ([PromptTemplate.Node], String?) {
        var nodes: [PromptTemplate.Node] = []
        var text: [UInt8] = []
        func flush() {
            if !text.isEmpty { nodes.append(.text(String(decoding: text, as: UTF8.self))) }
            text.removeAll()
        }
        while i < s.count {
            guard startsWith("{{", at: i) else {
                if s[i] == 0x0A { line += 1 }
                text.append(s[i])
                i += 1
                continue
            }
            let tagLine = line
            let tagStart = i
            let triple = startsWith("{{{", at: i)
            let close = triple ? "}}}" : "}}"
            var j = i + (triple ? 3 : 2)
            while j < s.count && !startsWith(close, at: j) { j += 1 }
            guard j < s.count else { throw PromptTemplate.ParseError(line: tagLine, message: "unclosed tag '{{'") }
            var inner = String(decoding: s[(i + (triple ? 3 : 2))..<j], as: UTF8.self).trimmingWhitespace()
            let tagEnd = j + close.utf8.count
            let sigil = triple ? "&" : (inner.first.map(String.init) ?? "")
            if !triple && ["#", "^", "/", "!", "&", ">", "=", "{"].contains(sigil) {
                inner = String(inner.dropFirst()).trimmingWhitespace()
            }
            let isBlock = ["#", "^", "/", "!"].contains(sigil) && !triple
            // A block tag alone on its line removes the line (indentation and newline).
            if isBlock, let (lineStart, lineEnd) = standaloneBounds(tagStart: tagStart, tagEnd: tagEnd) {
                // Drop the indentation already collected as text.
                text.removeLast(tagStart - lineStart)
                i = lineEnd
                if lineEnd > 0 && s[lineEnd - 1] == 0x0A { line += 1 }
            } else {
                i = tagEnd
            }
            switch sigil {
            case "!": continue
            case ">", "=":
                throw PromptTemplate.ParseError(
                    line: tagLine, message: "partials and delimiter changes are not supported")
            case "#", "^":
                guard !inner.isEmpty else {
                    throw PromptTemplate.ParseError(line: tagLine, message: "section without a name")
                }
                flush()
                let (children, closing) = try parse(until: inner)
                guard closing == inner else {
                    throw PromptTemplate.ParseError(line: tagLine, message: "section '\(inner)' is never closed")
                }
                nodes.append(.section(TemplateParser.path(inner), inverted: sigil == "^", children))
            case "/":
                flush()
                guard inner == section else {
                    throw PromptTemplate.ParseError(
                        line: tagLine,
                        message: section.map { "'{{/\(inner)}}' found where '{{/\($0)}}' was expected" }
                            ?? "'{{/\(inner)}}' closes no open section")
                }
                return (nodes, inner)
            default:
                guard !inner.isEmpty else {
                    throw PromptTemplate.ParseError(line: tagLine, message: "empty tag '{{}}'")
                }
                flush()
                nodes.append(.variable(TemplateParser.path(inner)))
            }
        }
        flush()
        return (nodes, nil)
    }

    static func path(_ name: String) -> [String] {
        name == "." ? ["."] : name.split(separator: ".").map(String.init)
    }

    /// When the tag is the only non-blank thing on its line: the line's start and the index
    /// after its newline (or the end).
    private func standaloneBounds(tagStart: Int, tagEnd: Int) -> (Int, Int)? {
        var a = tagStart
        while a > 0 && (s[a - 1] == 0x20 || s[a - 1] == 0x09) { a -= 1 }
        guard a == 0 || s[a - 1] == 0x0A else { return nil }
        var b = tagEnd
        while b < s.count && (s[b] == 0x20 || s[b] == 0x09 || s[b] == 0x0D) { b += 1 }
        if b < s.count {
            guard s[b] == 0x0A else { return nil }
            b += 1
        }
        return (a, b)
    }
}
