#if canImport(Glibc)
import Glibc
#endif

/// What `gra-format` does, as plain values (the CLI fills this from its flags).
public struct FormatOptions: Sendable {
    /// Input format; nil detects it per record.
    public var from: RecordFormat?
    public var to: RecordFormat = .gra
    /// Write one JSON array instead of JSON lines.
    public var array = false
    public var stripMeta = false
    /// Apply `TextNormalizer` to every text (on by default).
    public var normalizeText = true
    public var rejectsPath: String?
    public var skipBadInput = false
    public var maxLineBytes = LineReader.defaultMaxLineBytes
    /// Input files; empty (or "-") means standard input.
    public var inputs: [String] = []
    public var quiet = false

    public init() {}
}

/// Counts of what a `gra-format` run did.
public struct FormatSummary: Equatable, Sendable {
    public var read = 0
    public var written = 0
    public var rejected = 0
    public var badInput = 0
    /// Rejection reasons (the part before any detail) and how often each occurred.
    public var reasons: [String: Int] = [:]
}

/// The `gra-format` stage: reads records in any `RecordFormat`, unifies their text and
/// writes them in the target format, streaming, in input order.
///
/// Records that cannot be converted go to the rejects file (or, without one, are reported on
/// stderr); malformed input stops the run with `GRAError.badInput` unless `skipBadInput`.
public final class FormatStage {
    public let options: FormatOptions
    private let out: OutputSink
    private let diagnostics: Diagnostics
    private var rejects: OutputSink?
    public private(set) var summary = FormatSummary()
    private var wroteFirstArrayItem = false

    public init(options: FormatOptions, output: OutputSink, diagnostics: Diagnostics) {
        self.options = options
        self.out = output
        self.diagnostics = diagnostics
    }

    /// Runs over every input; flushes complete output before returning or throwing.
    public func run() throws(GRAError) -> FormatSummary {
        if let path = options.rejectsPath { rejects = try OutputSink(path: path) }
        defer {
            try? rejects?.flush()
            rejects?.close()
        }
        do {
            if options.array { out.buffer.append("[") }
            let inputs = options.inputs.isEmpty ? ["-"] : options.inputs
            for input in inputs { try process(input: input) }
            if options.array { out.buffer.append(wroteFirstArrayItem ? "\n]\n" : "]\n") }
            try out.flush()
        } catch {
            if error != .brokenPipe { try? out.flush() }
            throw error
        }
        return summary
    }

    private func process(input: String) throws(GRAError) {
        let fd: Int32
        let label: String
        if input == "-" {
            fd = 0
            label = "line"
        } else {
            fd = open(input, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw GRAError.io("cannot open \(input): \(String(cString: strerror(errno)))") }
            label = input + ":"
        }
        defer { if fd > 2 { _ = close(fd) } }
        let reader = LineReader(fd: fd, maxLineBytes: options.maxLineBytes)
        if try reader.peekFirstNonWhitespace() == UInt8(ascii: "[") {
            try processArrayDocument(reader.readRest(), label: label)
            return
        }
        while let item = try reader.next() {
            if Signals.interrupted { throw GRAError.interrupted }
            switch item {
            case .tooLong(let number, let bytes):
                try badInput(where: place(label, number),
                             message: "line is \(bytes) bytes, over the \(options.maxLineBytes)-byte limit (--max-line-bytes)",
                             raw: nil)
            case .line(let number, let bytes):
                if isBlank(bytes) { continue }
                let value: JSONValue
                do {
                    value = try JSONParser.parse(bytes)
                } catch {
                    try badInput(where: place(label, number), message: "invalid JSON: \(error)", raw: bytes)
                    continue
                }
                try handle(value, where: place(label, number))
            }
        }
    }

    /// A whole JSON array read into memory: each element is one record.
    private func processArrayDocument(_ bytes: [UInt8], label: String) throws(GRAError) {
        let items = try bytes.withUnsafeBufferPointer { buf in Result { () throws(GRAError) in try ArraySplitter.split(buf) } }.get()
        for item in items {
            if Signals.interrupted { throw GRAError.interrupted }
            let whereText = place(label, item.line) + " (array element \(item.index + 1))"
            switch item.result {
            case .success(let value): try handle(value, where: whereText)
            case .failure(let e): try badInput(where: whereText, message: "invalid JSON: \(e)", raw: nil)
            }
        }
    }

    private func place(_ label: String, _ line: Int) -> String {
        label == "line" ? "line \(line)" : "\(label)\(line)"
    }

    private func isBlank(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for c in bytes where !(c == 0x20 || c == 0x09 || c == 0x0D) { return false }
        return true
    }

    private func handle(_ value: JSONValue, where place: String) throws(GRAError) {
        summary.read += 1
        guard case .object(let record) = value else {
            try badInput(where: place, message: "expected a JSON object (one record per line), found \(value.kindDescription)", raw: nil, value: value)
            return
        }
        let format: RecordFormat
        if let f = options.from {
            format = f
        } else if let f = RecordFormat.detect(record) {
            format = f
        } else {
            try reject(record, reason: "unrecognized record", detail: "no 'instruction' with 'response'/'output', no 'conversations', no 'messages'", place: place)
            return
        }
        var sample: Sample
        var extras: JSONObject
        do {
            (sample, extras) = try FormatConverter.decode(record, as: format)
        } catch {
            try reject(record, reason: "cannot read as \(format.rawValue)", detail: error.reason, place: place)
            return
        }
        if options.normalizeText {
            let (unclosed, _) = sample.unifyText()
            if unclosed {
                try reject(record, reason: "truncated", detail: "response has an unclosed code fence", place: place)
                return
            }
        }
        if sample.instruction.isEmpty {
            try reject(record, reason: "empty instruction", detail: nil, place: place)
            return
        }
        if sample.response.isEmpty {
            try reject(record, reason: "empty response", detail: nil, place: place)
            return
        }
        let converted = FormatConverter.encode(sample, extras: extras, as: options.to, stripMeta: options.stripMeta)
        if options.array {
            out.buffer.append(wroteFirstArrayItem ? ",\n" : "\n")
            wroteFirstArrayItem = true
            JSONWriter.write(converted, to: out.buffer)
            try out.lineEnded()
        } else {
            try out.writeLine(converted)
        }
        summary.written += 1
    }

    private func reject(_ record: JSONObject, reason: String, detail: String?, place: String) throws(GRAError) {
        summary.rejected += 1
        summary.reasons[reason, default: 0] += 1
        let full = detail.map { "\(reason): \($0)" } ?? reason
        if let rejects {
            var entry = JSONObject()
            entry.append("stage", .string("gra-format"))
            entry.append("where", .string(place))
            entry.append("reason", .string(full))
            entry.append("record", .object(record))
            try rejects.writeLine(entry)
        } else if !options.quiet {
            diagnostics.warn("\(place): rejected (\(full)); use --rejects FILE to keep rejected records")
        }
    }

    /// Malformed input: stop (exit 65) unless --skip-bad-input, then record it in rejects.
    private func badInput(where place: String, message: String, raw: UnsafeBufferPointer<UInt8>?, value: JSONValue? = nil) throws(GRAError) {
        guard options.skipBadInput else {
            throw GRAError.badInput("\(place): \(message)")
        }
        summary.badInput += 1
        if !options.quiet || rejects == nil { diagnostics.warn("\(place): \(message) (skipped)") }
        if let rejects {
            var entry = JSONObject()
            entry.append("stage", .string("gra-format"))
            entry.append("where", .string(place))
            entry.append("reason", .string(message))
            if let value { entry.append("value", value) }
            if let raw { entry.append("raw", .string(String(decoding: raw, as: UTF8.self))) }
            try rejects.writeLine(entry)
        }
    }
}

/// One element of a JSON array document, parsed on its own so that a bad element can be
/// reported (and skipped) without losing the others.
struct ArrayElement {
    var index: Int
    var line: Int
    var result: Result<JSONValue, JSONParseError>
}

/// Splits a JSON array document into its top-level elements.
enum ArraySplitter {
    static func split(_ buf: UnsafeBufferPointer<UInt8>) throws(GRAError) -> [ArrayElement] {
        var items: [ArrayElement] = []
        let n = buf.count
        var i = 0
        var line = 1
        func skipWS() {
            while i < n, buf[i] == 0x20 || buf[i] == 0x0A || buf[i] == 0x0D || buf[i] == 0x09 {
                if buf[i] == 0x0A { line += 1 }
                i += 1
            }
        }
        skipWS()
        guard i < n, buf[i] == UInt8(ascii: "[") else { throw GRAError.badInput("line \(line): expected '[' to open a JSON array") }
        i += 1
        skipWS()
        if i < n && buf[i] == UInt8(ascii: "]") {
            i += 1
            skipWS()
            if i < n { throw GRAError.badInput("line \(line): unexpected data after the JSON array") }
            return items
        }
        while true {
            skipWS()
            let start = i
            let startLine = line
            // Find the element's end: a ',' or ']' at depth 0 outside strings.
            var depth = 0
            var inString = false
            while i < n {
                let c = buf[i]
                if inString {
                    if c == UInt8(ascii: "\\") { i += 1 }
                    else if c == UInt8(ascii: "\"") { inString = false }
                    else if c == 0x0A { line += 1 }
                } else if c == UInt8(ascii: "\"") {
                    inString = true
                } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                    depth += 1
                } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                    if depth == 0 { break }
                    depth -= 1
                } else if c == UInt8(ascii: ",") && depth == 0 {
                    break
                } else if c == 0x0A {
                    line += 1
                }
                i += 1
            }
            guard i < n else {
                throw GRAError.badInput("line \(startLine): JSON array is not closed (input ends inside element \(items.count + 1))")
            }
            let element = UnsafeBufferPointer(rebasing: buf[start..<i])
            let result = JSONParser.parseResult(element)
            items.append(ArrayElement(index: items.count, line: startLine, result: result))
            let c = buf[i]
            i += 1
            if c == UInt8(ascii: "]") { break }
            if c != UInt8(ascii: ",") {
                throw GRAError.badInput("line \(line): expected ',' or ']' between array elements")
            }
        }
        skipWS()
        if i < n { throw GRAError.badInput("line \(line): unexpected data after the JSON array") }
        return items
    }
}
