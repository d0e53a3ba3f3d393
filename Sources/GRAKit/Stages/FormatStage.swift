import Dispatch

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
    /// With `stripMeta`: extra fields to carry anyway (`--keep`).
    public var keep: Set<String> = []
    /// Apply `TextNormalizer` to every text (on by default).
    public var normalizeText = true
    /// Inputs, malformed lines, `--shard` and the rejects file, as every tool takes them
    /// (the errors, stats, order and dry-run settings do not apply).
    public var io = StageIOOptions()

    public init() {}
}

/// Counts of what a `gra-format` run did.
public struct FormatSummary: Equatable, Sendable, CustomStringConvertible {
    public var read = 0
    public var written = 0
    public var rejected = 0
    public var badInput = 0
    /// Records left to other shards (`--shard`).
    public var otherShards = 0
    /// Rejection reasons (the part before any detail) and how often each occurred.
    public var reasons: [String: Int] = [:]
    /// Extra fields named like a field the target format writes (an `output` beside the
    /// `response` written as `output`), by key: kept under `gra.format.displaced`, or dropped
    /// (same value as the one written, or `--strip-meta`). See `FormatConverter.Encoded`.
    public var displaced: [String: Int] = [:]
    public var dropped: [String: Int] = [:]
    /// Sentences for stderr after the summary line (where records went without --rejects).
    public var notes: [String] = []

    /// Writes the end-of-run line (unless --quiet) and the notes on stderr.
    public func report(to diagnostics: Diagnostics) {
        diagnostics.info(description)
        for note in notes { diagnostics.warn(note) }
    }

    /// The end-of-run line: "N records read, N written, N rejected (reason: N, …)" and what
    /// else happened.
    public var description: String {
        func counts(_ d: [String: Int]) -> String {
            d.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        }
        var line = "\(read) records read, \(written) written, \(rejected) rejected"
        if !reasons.isEmpty { line += " (" + counts(reasons) + ")" }
        if badInput > 0 { line += ", \(badInput) bad input lines skipped" }
        if otherShards > 0 { line += ", \(otherShards) left to other shards" }
        if !displaced.isEmpty {
            line +=
                "; fields the target format writes itself, other value kept under gra.format.displaced ("
                + counts(displaced) + ")"
        }
        if !dropped.isEmpty { line += "; fields the target format writes itself, dropped (" + counts(dropped) + ")" }
        return line
    }
}

/// The `gra-format` stage: reads records in any `RecordFormat`, unifies their text and
/// writes them in the target format, streaming, in input order.
///
/// Lines are read in batches; a batch's records are converted on all cores at once
/// (`FormatWorker`), then the results are written strictly in input order. Records that
/// cannot be converted go to the rejects file (without --rejects, a default one made when the
/// first comes: `SideOutput`);
/// malformed input stops the run with `GRAError.badInput` unless `skipBadInput`, after
/// everything before the bad line has been written.
// @unchecked: output state is touched only by the writer queue while batches convert.
public final class FormatStage: @unchecked Sendable {
    public let options: FormatOptions
    private let out: OutputSink
    private let diagnostics: Diagnostics
    /// Records that cannot be converted, and skipped bad input.
    public let rejects: SideOutput
    public private(set) var summary = FormatSummary()
    private var wroteFirstArrayItem = false

    /// Bytes of input per batch, and batches read but not yet written at most.
    static let batchBytes = 1 << 20
    static let batchesInFlight = 6

    /// `rejects`: given when this stage is a step of a larger run (`--complete-summaries`),
    /// whose rejects file it shares and which reports the summary; else the stage is the whole
    /// run, with a rejects file for `options.io.rejectsPath`.
    public init(options: FormatOptions, output: OutputSink, diagnostics: Diagnostics, rejects: SideOutput? = nil) {
        self.options = options
        self.out = output
        self.diagnostics = diagnostics
        self.rejects = rejects ?? SideOutput(kind: "rejects", tool: "gra-format", path: options.io.rejectsPath)
        isWholeRun = rejects == nil
    }

    private let isWholeRun: Bool

    /// Runs over every input; flushes complete output before returning or throwing. As the
    /// whole run, it reports the summary on stderr at the end (unless --quiet).
    public func run() throws(GRAError) -> FormatSummary {
        try OutputGuard.check(
            inputs: options.io.inputs, outputs: [.init("--rejects", options.io.rejectsPath)],
            stdoutIsOutput: out.fd == 1)
        try rejects.open()
        defer { if isWholeRun { rejects.close() } }
        do {
            if options.array { out.buffer.append("[") }
            let inputs = options.io.inputs.isEmpty ? ["-"] : options.io.inputs
            for input in inputs { try process(input: input) }
            if options.array { out.buffer.append(wroteFirstArrayItem ? "\n]\n" : "]\n") }
            try out.flush()
        } catch {
            if error != .brokenPipe { try? out.flush() }
            throw error
        }
        if isWholeRun {
            if let note = rejects.defaultFileNote { summary.notes.append(note) }
            summary.report(to: diagnostics)
        }
        return summary
    }

    private func process(input: String) throws(GRAError) {
        let file = try InputFile(input)
        defer { file.close() }
        let reader = LineReader(fd: file.fd, maxLineBytes: options.io.maxLineBytes)
        let worker = FormatWorker(options: options, input: file)
        let isArray = try reader.layout(label: file.label) == .array
        try convertInParallel(reader: reader, worker: worker, arrayElements: isArray)
    }

    /// The streaming path, for NDJSON and for JSON array documents alike (`arrayElements`:
    /// the batches hold the array's elements). This thread reads batches; each is converted
    /// on a pool thread as soon as it is read (at most `batchesInFlight` at once, which bounds
    /// memory); a serial queue writes the results strictly in input order as they complete.
    /// No thread waits for a whole round, so both cores stay busy.
    private func convertInParallel(reader: LineReader, worker: FormatWorker, arrayElements: Bool) throws(GRAError) {
        try OrderedBatches.run(
            inFlight: FormatStage.batchesInFlight, label: "gra.format.writer",
            next: { () throws(GRAError) in
                try LineBatch.read(
                    from: reader, bytes: FormatStage.batchBytes, mayBlock: true, arrayElements: arrayElements)
            },
            process: { batch, done in done(worker.process(batch: batch)) },
            merge: { (r: BatchResult) throws(GRAError) in try self.merge(r) },
            flush: { () throws(GRAError) in
                try self.out.flush()
                try self.rejects.flush()
            })
    }

    /// Writes one batch's result in order; rethrows the batch's fatal bad-input error.
    private func merge(_ r: BatchResult) throws(GRAError) {
        summary.read += r.summary.read
        summary.written += r.summary.written
        summary.rejected += r.summary.rejected
        summary.badInput += r.summary.badInput
        summary.otherShards += r.summary.otherShards
        for (k, v) in r.summary.reasons { summary.reasons[k, default: 0] += v }
        for (k, v) in r.summary.displaced { summary.displaced[k, default: 0] += v }
        for (k, v) in r.summary.dropped { summary.dropped[k, default: 0] += v }
        if r.output.count > 0 {
            var bytes = r.output.bytes
            if options.array && !wroteFirstArrayItem {
                bytes = UnsafeBufferPointer(rebasing: bytes.dropFirst())  // the first element has no comma
                wroteFirstArrayItem = true
            }
            try out.write(lines: bytes)
        }
        try rejects.write(lines: r.rejects.bytes, count: r.rejectLines)
        for w in r.warnings where !diagnostics.quiet { diagnostics.warn(w.message, fold: w.foldKey) }
        if let fatal = r.fatal { throw fatal }
    }
}

/// What converting one batch produced: output and rejects lines, counts, messages for
/// stderr, and the error that stops the run, if a line was malformed.
final class BatchResult: @unchecked Sendable {
    let output = ByteBuffer(capacity: 1 << 16)
    let rejects = ByteBuffer(capacity: 1 << 10)
    var summary = FormatSummary()
    /// Lines in `rejects`.
    var rejectLines = 0
    /// Messages for stderr, each with the key repeats are folded by.
    var warnings: [(message: String, foldKey: String)] = []
    var fatal: GRAError?
}

/// Converts the records of one batch; holds no state between batches, so several batches
/// can be converted at once.
struct FormatWorker: Sendable {
    let options: FormatOptions
    /// The input, for naming places in messages.
    let input: InputFile

    func process(batch: LineBatch) -> BatchResult {
        let r = BatchResult()
        batch.bytes.withUnsafeBufferPointer { all in
            for line in batch.lines {
                if r.fatal != nil { return }
                switch line {
                case .tooLong(let number, let bytes, let element):
                    badInput(
                        r, where: input.place(number, element: element.map { $0 + 1 }),
                        message: InputLine.tooLongMessage(
                            bytes: bytes, element: element, limit: options.io.maxLineBytes),
                        overlongBytes: bytes)
                case .text(let number, let start, let count):
                    sortAndHandle(
                        r, UnsafeBufferPointer(rebasing: all[start..<(start + count)]), isElement: false,
                        where: input.place(number))
                case .element(let index, let number, let start, let count):
                    sortAndHandle(
                        r, UnsafeBufferPointer(rebasing: all[start..<(start + count)]), isElement: true,
                        where: input.place(number, element: index + 1))
                }
            }
        }
        return r
    }

    private func sortAndHandle(
        _ r: BatchResult, _ bytes: UnsafeBufferPointer<UInt8>, isElement: Bool, where place: String
    ) {
        switch InputLine.classify(bytes, isElement: isElement) {
        case .blank:
            return
        case .record(let record):
            r.summary.read += 1
            handle(r, record, where: place)
        case .bad(let problem, let value?):
            // JSON that is not an object counts as read (and as bad input).
            r.summary.read += 1
            badInput(r, where: place, message: problem, value: value)
        case .bad(let problem, nil):
            badInput(r, where: place, message: problem, raw: bytes)
        }
    }

    private func handle(_ r: BatchResult, _ record: JSONObject, where place: String) {
        if let shard = options.io.shard, !shard.contains(record) {
            r.summary.read -= 1
            r.summary.otherShards += 1
            return
        }
        if record["chosen"] != nil && record["rejected"] != nil {
            reject(
                r, record, reason: "preference pair (DPO)",
                detail: "'chosen'/'rejected' have no place in a supervised sample", place: place)
            return
        }
        let format: RecordFormat
        if let f = options.from {
            format = f
        } else if let f = RecordFormat.detect(record) {
            format = f
        } else {
            reject(
                r, record, reason: "unrecognized record",
                detail: "no 'instruction' with 'response'/'output', no 'conversations', no 'messages'", place: place)
            return
        }
        var sample: Sample
        var extras: JSONObject
        do {
            (sample, extras) = try FormatConverter.decode(record, as: format)
        } catch {
            reject(r, record, reason: "cannot read as \(format.rawValue)", detail: error.reason, place: place)
            return
        }
        // Normalizing finds an unclosed fence on the way; without it, the same check alone.
        let unclosed =
            options.normalizeText
            ? sample.unifyText().unclosedFenceInResponse : TextNormalizer.hasUnclosedFence(sample.response)
        if unclosed {
            reject(r, record, reason: "truncated", detail: "response has an unclosed code fence", place: place)
            return
        }
        if let why = options.to.cannotHold(sample) {
            reject(r, record, reason: "cannot write as \(options.to.rawValue)", detail: why, place: place)
            return
        }
        if sample.instruction.isEmpty {
            reject(r, record, reason: "empty instruction", detail: nil, place: place)
            return
        }
        if sample.response.isEmpty {
            reject(r, record, reason: "empty response", detail: nil, place: place)
            return
        }
        let converted = FormatConverter.encode(
            sample, extras: extras, as: options.to, stripMeta: options.stripMeta, keep: options.keep)
        for key in converted.displaced { r.summary.displaced[key, default: 0] += 1 }
        for key in converted.dropped { r.summary.dropped[key, default: 0] += 1 }
        if options.array { r.output.append(",\n") }
        JSONWriter.write(converted.record, to: r.output)
        if !options.array { r.output.append(0x0A) }
        r.summary.written += 1
    }

    private func reject(_ r: BatchResult, _ record: JSONObject, reason: String, detail: String?, place: String) {
        r.summary.rejected += 1
        r.summary.reasons[reason, default: 0] += 1
        let full = detail.map { "\(reason): \($0)" } ?? reason
        var entry = JSONObject()
        entry.append("stage", .string("gra-format"))
        entry.append("where", .string(place))
        entry.append("reason", .string(full))
        entry.append("record", .object(record))
        JSONWriter.write(entry, to: r.rejects)
        r.rejects.append(0x0A)
        r.rejectLines += 1
    }

    /// Malformed input: stop (exit 65) unless --skip-bad-input, then record it in rejects.
    private func badInput(
        _ r: BatchResult, where place: String, message: String,
        raw: UnsafeBufferPointer<UInt8>? = nil, value: JSONValue? = nil, overlongBytes: Int? = nil
    ) {
        guard options.io.skipBadInput else {
            r.fatal = GRAError.badRecord(place, message)
            return
        }
        r.summary.badInput += 1
        r.warnings.append(("\(place): \(message) (skipped)", "\(message) (skipped)"))
        let entry = InputLine.skippedEntry(
            stage: "gra-format", place: place, message: message, raw: raw, value: value,
            overlongBytes: overlongBytes)
        JSONWriter.write(entry, to: r.rejects)
        r.rejects.append(0x0A)
        r.rejectLines += 1
    }
}
