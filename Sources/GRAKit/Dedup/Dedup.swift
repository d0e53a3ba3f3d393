import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Which copy of a duplicate cluster survives.
public enum DedupKeep: String, CaseIterable, Sendable {
    /// The first one read (streaming).
    case first
    /// The one with the highest score (`DedupScore`); ties go to the first.
    case best
}

/// What `gra-dedup` does, as plain values (the CLI fills this from its flags).
public struct DedupOptions: Sendable {
    public var methods: Set<DedupMethod> = [.exact, .minhash]
    /// Fields compared, in order ("output" already mapped to "response").
    public var fields = ["instruction", "input"]
    public var shingle = ShingleSpec.default
    public var numPerm = 128
    /// Jaccard similarity at or above which two records are near duplicates.
    public var threshold = 0.8
    /// LSH banding (from `threshold` unless `--bands`/`--rows` override it).
    public var banding = LSHBanding(bands: 18, rows: 7)
    /// Cosine similarity at or above which two records are semantic duplicates.
    public var cosine = 0.9
    /// Reference sets: records too close to any of their records are dropped.
    public var against: [String] = []
    public var keep = DedupKeep.first
    /// Annotate duplicates with `gra.dedup` and write them instead of dropping them.
    public var mark = false
    /// Inputs, malformed lines, `--shard`, and the rejects (duplicates) and errors (failed
    /// embeddings) files, as every tool takes them (stats, order and dry run do not apply).
    public var io = StageIOOptions()
    /// Directory for the spool files (`--keep best`; texts of kept records that cannot be
    /// read again from their input, for `minhash`) (default `$TMPDIR` or /tmp).
    public var spoolDirectory: String?
    /// Where embeddings come from (`semantic`).
    public var embedder: DedupEmbedder?

    public init() {}
}

/// Counts of what a `gra-dedup` run did.
public struct DedupSummary: Equatable, Sendable {
    /// Set when the embeddings client stopped sending to its model (69 unreachable, 77 key refused).
    public var blockedStatus: Int32?
    /// Sentences for stderr after the summary line (where failed records went without --errors).
    public var notes: [String] = []
    /// 0; when some records failed, 77 or 69 if the model was blocked, else 75.
    public var exitStatus: Int32 { failed > 0 ? blockedStatus ?? GRAExit.tempFailure : GRAExit.ok }
    /// Input records (of this shard).
    public var read = 0
    /// Records written as they were (not duplicates).
    public var kept = 0
    /// Duplicates dropped (or, with `--mark`, written annotated), by method; "against" for
    /// records too close to a reference.
    public var duplicates: [String: Int] = [:]
    /// Records whose chosen fields were all empty: written unchanged, never compared.
    public var withoutText = 0
    /// Records whose embedding could not be had (semantic): in the errors file.
    public var failed = 0
    public var badInput = 0
    public var otherShards = 0
    /// Reference records loaded (`--against`), and those without text (ignored).
    public var references = 0
    public var referencesWithoutText = 0

    public var duplicateCount: Int { duplicates.values.reduce(0, +) }
}

/// The `gra-dedup` stage: drops (or marks) records that duplicate an earlier kept record or
/// a reference record, exactly (normalized text), nearly (MinHash + LSH) or semantically
/// (embeddings), writing the others unchanged in input order.
///
/// Lines are read in 1 MiB batches; each batch is parsed and turned into hashes and
/// signatures on the pool's threads (`DedupPreparer`), and the batches are then compared
/// and inserted into the `DedupIndex` strictly in input order on one serial queue, so the
/// result does not depend on timing. A kept record is written as the very line it was read.
public final class DedupStage: @unchecked Sendable {  // index and output are touched only by the serial merge queue
    public let options: DedupOptions
    private let environment: [String: String]
    private let out: OutputSink
    private let diagnostics: Diagnostics
    private var rejects: OutputSink?
    /// Records whose embedding failed: --errors, or a default file made when the first comes.
    public private(set) lazy var errors = SideOutput(kind: "errors", tool: "gra-dedup", path: options.io.errorsPath)
    let index: DedupIndex
    private let hasher: MinHasher
    private let lsh: HyperplaneLSH?
    public internal(set) var summary = DedupSummary()
    /// Dropped records reported on stderr so far (without --rejects).
    private var reportedDrops = 0
    static let reportedDropsLimit = 10
    /// `--keep best`: the spool and what the first pass decided per record.
    var bestState: KeepBestState?

    static let batchBytes = 1 << 20
    static let batchesInFlight = 6

    public init(
        options: DedupOptions, output: OutputSink, diagnostics: Diagnostics, environment: [String: String] = [:]
    ) {
        self.options = options
        self.environment = environment
        self.out = output
        self.diagnostics = diagnostics
        hasher = MinHasher(numPerm: options.numPerm)
        lsh = options.methods.contains(.semantic) ? HyperplaneLSH(cosine: options.cosine) : nil
        let texts =
            options.methods.contains(.minhash)
            ? DedupTextStore(
                fields: options.fields, shingle: options.shingle, spoolDirectory: options.spoolDirectory,
                environment: environment)
            : nil
        index = DedupIndex(
            methods: options.methods, numPerm: options.numPerm, banding: options.banding,
            threshold: options.threshold, cosine: options.cosine, lsh: lsh, texts: texts)
    }

    /// What a batch is read for.
    enum Role {
        case reference(file: Int)
        case input
    }

    /// Runs over the reference sets, then every input; flushes complete output before
    /// returning or throwing. The end-of-run summary goes to stderr (unless --quiet).
    public func run() throws(GRAError) -> DedupSummary {
        try OutputGuard.check(
            inputs: options.io.inputs + options.against,
            outputs: [.init("--rejects", options.io.rejectsPath), .init("--errors", options.io.errorsPath)],
            stdoutIsOutput: out.fd == 1)
        if let path = options.io.rejectsPath { rejects = try OutputSink(path: path) }
        try errors.open()
        defer {
            if let rejects {
                try? rejects.flush()
                rejects.close()
            }
            errors.close()
        }
        do {
            for (i, path) in options.against.enumerated() {
                index.referenceFiles.append(path)
                try process(input: path, role: .reference(file: i))
            }
            if options.keep == .best {
                bestState = KeepBestState(
                    spool: try DedupSpool(directory: options.spoolDirectory, environment: environment))
            }
            let inputs = options.io.inputs.isEmpty ? ["-"] : options.io.inputs
            for input in inputs { try process(input: input, role: .input) }
            if bestState != nil { try writeBest() }
            try out.flush()
        } catch {
            if error != .brokenPipe { try? out.flush() }
            throw error
        }
        summary.blockedStatus = options.embedder?.client.health.exitStatus
        if let note = errors.defaultFileNote { summary.notes.append(note) }
        if !diagnostics.quiet && rejects == nil && !options.mark && reportedDrops > Self.reportedDropsLimit {
            diagnostics.warn(
                """
                \(reportedDrops - Self.reportedDropsLimit) more duplicates dropped without a report: use \
                --rejects FILE to keep them
                """
            )
        }
        diagnostics.info(
            summary.report(methods: options.methods, marked: options.mark, references: !options.against.isEmpty))
        for note in summary.notes { diagnostics.warn(note) }
        return summary
    }

    private func preparer(for role: Role) -> DedupPreparer {
        var shard: Shard?
        if case .input = role { shard = options.io.shard }
        return DedupPreparer(
            fields: options.fields, methods: options.methods, shingle: options.shingle, hasher: hasher,
            banding: options.banding, skipBadInput: options.io.skipBadInput, maxLineBytes: options.io.maxLineBytes,
            shard: shard, wantScore: options.keep == .best)
    }

    private func process(input path: String, role: Role) throws(GRAError) {
        let file = try InputFile(path)
        defer { file.close() }
        // Where reading starts (standard input may be a file read from the middle); −1 for pipes.
        let startOffset = Int(lseek(file.fd, 0, SEEK_CUR))
        let reader = LineReader(fd: file.fd, maxLineBytes: options.io.maxLineBytes)
        let preparer = preparer(for: role)
        let isArray = try reader.layout(label: file.label) == .array
        // minhash verification reads kept records again from a regular file, by offset (not
        // an array's elements: their record text is re-serialized).
        var source: (id: Int, start: Int)?
        if !isArray, startOffset >= 0, let texts = index.texts,
            let id = texts.register(fd: file.fd, label: file.label.isEmpty ? "standard input" : file.label)
        {
            source = (id, startOffset)
        }
        try prepareInParallel(
            reader: reader, preparer: preparer, role: role, label: file.label, arrayElements: isArray, source: source)
    }

    /// The streaming path, as in `FormatStage` (`OrderedBatches`), for NDJSON and JSON array
    /// documents alike: batches are prepared on pool threads (and embedded, for semantic) and
    /// merged strictly in input order.
    private func prepareInParallel(
        reader: LineReader, preparer: DedupPreparer, role: Role, label: String,
        arrayElements: Bool, source: (id: Int, start: Int)?
    ) throws(GRAError) {
        try OrderedBatches.run(
            inFlight: Self.batchesInFlight, label: "gra.dedup.merge",
            next: { () throws(GRAError) in
                try LineBatch.read(
                    from: reader, bytes: Self.batchBytes, mayBlock: true, arrayElements: arrayElements,
                    fileStart: source?.start)
            },
            process: { batch, done in
                let prepared = preparer.prepare(batch, offsets: batch.offsets)
                prepared.textSource = source?.id
                self.embed(prepared) { done(prepared) }
            },
            merge: { (p: PreparedBatch) throws(GRAError) in try self.merge(p, role: role, label: label) },
            flush: { () throws(GRAError) in
                try self.out.flush()
                try self.rejects?.flush()
                try self.errors.flush()
            })
    }

    /// `semantic`: asks for the embeddings of the batch's records, makes them unit vectors
    /// with their LSH codes (on a pool thread, not the client's event loop), then calls `then`.
    /// Without semantic, calls `then` at once.
    private func embed(_ batch: PreparedBatch, then: @escaping @Sendable () -> Void) {
        guard let lsh, let embedder = options.embedder else { return then() }
        let slots = batch.records.indices.filter {
            if case .record = batch.records[$0].status { return true } else { return false }
        }
        guard !slots.isEmpty else { return then() }
        let texts = slots.map { batch.records[$0].semanticText ?? "" }
        embedder.embed(texts) { result in
            DispatchQueue.global().async {
                switch result {
                case .failure(let f):
                    batch.embeddingFailure = f
                case .success(let vectors):
                    batch.vectors = Array(repeating: [], count: batch.records.count)
                    batch.semanticCodes = Array(repeating: 0, count: batch.records.count * lsh.tables)
                    var codes: [UInt32] = []
                    for (k, slot) in slots.enumerated() {
                        let unit = unitVector(vectors[k])
                        codes.removeAll(keepingCapacity: true)
                        lsh.appendCodes(unit, to: &codes)
                        batch.vectors[slot] = unit
                        batch.semanticCodes.replaceSubrange(
                            (slot * lsh.tables)..<((slot + 1) * lsh.tables), with: codes)
                    }
                }
                then()
            }
        }
    }

    /// Why the record in `slot` has no usable embedding (`semantic`), if it has none.
    private func embeddingProblem(_ batch: PreparedBatch, slot: Int) -> (reason: String, status: Int?, attempts: Int)? {
        guard let semantic = index.semantic else { return nil }
        if let f = batch.embeddingFailure { return ("no embedding: \(f.message)", f.status, f.attempts) }
        let n = batch.vectors[slot].count
        if n == 0 { return ("the embeddings endpoint returned an empty vector", 200, 1) }
        if let d = semantic.dimension, d != n {
            return ("embedding of dimension \(n), expected \(d) (as the first one)", 200, 1)
        }
        return nil
    }

    /// A record that cannot be compared (its embedding failed): to the errors file, not stdout.
    private func failed(
        _ r: PreparedRecord, raw: UnsafeBufferPointer<UInt8>, place: String,
        _ problem: (reason: String, status: Int?, attempts: Int)
    ) throws(GRAError) {
        summary.failed += 1
        try errors.writeLine { b in
            b.append(#"{"stage":"gra-dedup","where":"#)
            JSONWriter.writeString(place, to: b)
            b.append(#","id":"#)
            if r.idIsNumber { b.append(r.id) } else { JSONWriter.writeString(r.id, to: b) }
            if let model = options.embedder?.model.name {
                b.append(#","model":"#)
                JSONWriter.writeString(model, to: b)
            }
            b.append(#","reason":"#)
            JSONWriter.writeString(problem.reason, to: b)
            b.append(#","status":"#)
            b.append(problem.status.map(String.init) ?? "null")
            b.append(#","attempts":"#)
            b.append(String(problem.attempts))
            b.append(#","record":"#)
            b.append(raw)
            b.append("}")
        }
    }

    // MARK: - Merging, in input order

    private func merge(_ batch: PreparedBatch, role: Role, label: String) throws(GRAError) {
        try batch.bytes.withUnsafeBufferPointer { (all) throws(GRAError) in
            for slot in batch.records.indices {
                let r = batch.records[slot]
                let raw = UnsafeBufferPointer(rebasing: all[r.rawStart..<(r.rawStart + r.rawCount)])
                // Made only when needed: a string per record costs.
                let place = { InputFile.place(r.line, in: label, element: r.element) }
                switch r.status {
                case .bad(let message):
                    try badInput(place(), message, raw: raw)
                case .otherShard:
                    summary.otherShards += 1
                case .noText:
                    switch role {
                    case .reference: summary.referencesWithoutText += 1
                    case .input:
                        summary.read += 1
                        summary.withoutText += 1
                        if let best = bestState {
                            try best.spoolPassThrough(raw)
                        } else {
                            try write(raw)
                        }
                    }
                case .record:
                    if let problem = embeddingProblem(batch, slot: slot) {
                        if case .input = role { summary.read += 1 }
                        try failed(r, raw: raw, place: place(), problem)
                        continue
                    }
                    switch role {
                    case .reference(let file):
                        summary.references += 1
                        try index.insert(
                            batch, slot: slot, referenceFile: file,
                            name: r.hasOwnID ? nil : place())
                    case .input:
                        summary.read += 1
                        let match = try index.match(batch, slot: slot)
                        if let best = bestState {
                            try best.spool(
                                batch, slot: slot, raw: raw, place: place(),
                                match: match, index: index)
                        } else if let m = match {
                            try duplicate(r.id, idIsNumber: r.idIsNumber, report(m), raw: raw, place: place())
                        } else {
                            try index.insert(batch, slot: slot, name: r.hasOwnID ? nil : place())
                            summary.kept += 1
                            try write(raw)
                        }
                    }
                }
            }
        }
        if let f = batch.fatal {
            throw GRAError.badRecord(InputFile.place(f.line, in: label, element: f.element), f.message)
        }
    }

    func write(_ raw: UnsafeBufferPointer<UInt8>) throws(GRAError) {
        out.buffer.append(raw)
        out.buffer.append(0x0A)
        try out.lineEnded()
    }

    /// What is said of a duplicate: in rejects, in `gra.dedup`, on stderr.
    struct DuplicateReport {
        /// exact, minhash, semantic, or against.
        var method: String
        var of: String
        var similarity: Double
        var reason: String
        /// The reference file (method against).
        var reference: String?
    }

    func report(_ m: DedupMatch) -> DuplicateReport {
        let of = index.id(m.entry)
        if index.isReference(m.entry) {
            let file = index.referenceFile(m.entry)
            return DuplicateReport(
                method: "against", of: of, similarity: m.similarity,
                reason: "too close to reference \(of) in \(file) (\(measure(m.method, m.similarity)))", reference: file)
        }
        return report(m.method, of: of, similarity: m.similarity)
    }

    func report(_ method: DedupMethod, of: String, similarity: Double) -> DuplicateReport {
        let reason: String
        switch method {
        case .exact: reason = "exact duplicate of \(of)"
        case .minhash: reason = "near duplicate of \(of) (\(measure(method, similarity)))"
        case .semantic: reason = "semantic duplicate of \(of) (\(measure(method, similarity)))"
        }
        return DuplicateReport(method: method.rawValue, of: of, similarity: similarity, reason: reason)
    }

    private func measure(_ method: DedupMethod, _ x: Double) -> String {
        switch method {
        case .exact: return "exact"
        case .minhash: return "Jaccard \(JSONWriter.string(roundedNumber(x)))"
        case .semantic: return "cosine \(JSONWriter.string(roundedNumber(x)))"
        }
    }

    /// A duplicate: annotated and written with --mark; else to the rejects file (or stderr).
    func duplicate(_ id: String, idIsNumber: Bool, _ d: DuplicateReport, raw: UnsafeBufferPointer<UInt8>, place: String)
        throws(GRAError)
    {
        summary.duplicates[d.method, default: 0] += 1
        if options.mark {
            guard case .success(.object(var record)) = JSONParser.parseResult(raw) else {
                preconditionFailure("a record that parsed once parses again")
            }
            var note = JSONObject()
            note.append("method", .string(d.method))
            note.append("duplicate_of", .string(d.of))
            note.append("similarity", roundedNumber(d.similarity))
            if let file = d.reference { note.append("reference", .string(file)) }
            record.setGRASection("dedup", note)
            JSONWriter.write(record, to: out.buffer)
            out.buffer.append(0x0A)
            try out.lineEnded()
            return
        }
        guard let rejects else {
            reportedDrops += 1
            if reportedDrops <= Self.reportedDropsLimit {
                diagnostics.warn(
                    "\(place): dropped: \(d.reason)"
                        + (reportedDrops == 1 ? " (use --rejects FILE to keep dropped records)" : ""))
            }
            return
        }
        let b = rejects.buffer
        b.append(#"{"stage":"gra-dedup","where":"#)
        JSONWriter.writeString(place, to: b)
        b.append(#","id":"#)
        if idIsNumber { b.append(id) } else { JSONWriter.writeString(id, to: b) }
        b.append(#","reason":"#)
        JSONWriter.writeString(d.reason, to: b)
        b.append(#","method":"#)
        JSONWriter.writeString(d.method, to: b)
        b.append(#","duplicate_of":"#)
        JSONWriter.writeString(d.of, to: b)
        b.append(#","similarity":"#)
        JSONWriter.write(roundedNumber(d.similarity), to: b)
        if let file = d.reference {
            b.append(#","reference":"#)
            JSONWriter.writeString(file, to: b)
        }
        b.append(#","record":"#)
        b.append(raw)
        b.append("}\n")
        try rejects.lineEnded()
    }

    /// Malformed input with --skip-bad-input: reported, and kept in the rejects file, or
    /// without --rejects (whose drops are only reported) in the errors file, so that it is
    /// never only a line on stderr.
    private func badInput(_ place: String, _ message: String, raw: UnsafeBufferPointer<UInt8>) throws(GRAError) {
        summary.badInput += 1
        diagnostics.warn("\(place): \(message) (skipped)")
        let entry = InputLine.skippedEntry(
            stage: "gra-dedup", place: place, message: message, raw: raw.count > 0 ? raw : nil)
        if let rejects { try rejects.writeLine(entry) } else { try errors.writeLine(entry) }
    }

    /// Approximate bytes the index holds (for the summary and the benchmarks).
    public var indexBytes: Int { index.memoryBytes }
}

extension DedupSummary {
    /// The end-of-run line: "1000 records read, 950 kept, 50 duplicates dropped (exact 10,
    /// minhash 38, against 2)".
    public func report(methods: Set<DedupMethod>, marked: Bool, references: Bool) -> String {
        var names = methods.sorted().map(\.rawValue)
        if references { names.append("against") }
        let counts = names.map { "\($0) \(duplicates[$0, default: 0])" }.joined(separator: ", ")
        var line =
            """
            \(read) records read, \(kept) kept, \(duplicateCount) duplicates \(marked ? "marked" : "dropped") \
            (\(counts))
            """
        if references {
            line +=
                "; \(self.references) reference records"
                + (referencesWithoutText > 0 ? " (\(referencesWithoutText) without text, ignored)" : "")
        }
        if withoutText > 0 { line += ", \(withoutText) without text in the compared fields (written unchanged)" }
        if failed > 0 { line += ", \(failed) failed" }
        if badInput > 0 { line += ", \(badInput) bad input lines skipped" }
        if otherShards > 0 { line += ", \(otherShards) left to other shards" }
        return line
    }
}
