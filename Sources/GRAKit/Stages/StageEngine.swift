import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a record-at-a-time stage reads from and where its failed and rejected records go:
/// the options `gra-map`, `gra-generate`, `gra-review` and `gra-adjudicate` share.
public struct StageIOOptions: Sendable {
    /// Input files; empty or "-" is standard input.
    public var inputs: [String] = []
    public var errorsPath: String?
    public var rejectsPath: String?
    public var skipBadInput = false
    /// Write records as they finish instead of in input order.
    public var unordered = false
    public var maxLineBytes = LineReader.defaultMaxLineBytes
    public var statsPath: String?
    /// Handle only this share of the records (`--shard`).
    public var shard: Shard?
    /// `--dry-run`: write the requests the stage would send to stdout, send nothing.
    public var dryRun = false

    public init() {}
}

/// Counts of a stage run.
public struct StageSummary: Sendable {
    /// Input records taken (of this shard).
    public var read = 0
    /// Input records whose work is finished (written, rejected or failed).
    public var done = 0
    /// Records written to stdout (a generator writes several per input record).
    public var written = 0
    public var rejected = 0
    /// Error records (requests that failed, replies that never parsed, missing fields).
    public var failed = 0
    /// Input records answered entirely from the cache.
    public var cached = 0
    public var badInput = 0
    /// Records left to other shards (`--shard`).
    public var otherShards = 0

    /// Set when the client stopped sending to a model (69: unreachable, 77: key refused).
    public var blockedStatus: Int32?

    /// The stage's exit status: when some records failed, 77 or 69 if a model was blocked
    /// (its server is gone or refused the key), else 75 (a rerun retries them); else 0.
    public var exitStatus: Int32 { failed > 0 ? blockedStatus ?? GRAExit.tempFailure : GRAExit.ok }
}

/// Why a piece of a record's work failed; becomes one line of the errors file.
public struct TaskFailure: Error, Sendable {
    public var reason: String
    public var status: Int?
    public var attempts: Int
    public var model: String?
    /// Extra fields for the error line (e.g. which sample of a seed failed).
    public var extra = JSONObject()

    /// A request's failure, for the record that made it.
    public init(_ failure: RequestFailure, model: String) {
        self.init(reason: failure.message, status: failure.status, attempts: failure.attempts, model: model)
    }

    public init(reason: String, status: Int? = nil, attempts: Int = 0, model: String? = nil) {
        self.reason = reason
        self.status = status
        self.attempts = attempts
        self.model = model
    }
}

/// What one input record came to: records for stdout, records for the rejects file (with the
/// reason) and failures for the errors file. Every input record yields at least one of them.
public struct TaskOutcome: Sendable {
    public var outputs: [JSONObject] = []
    public var rejects: [(record: JSONObject, reason: String)] = []
    public var failures: [TaskFailure] = []

    public init(
        outputs: [JSONObject] = [], rejects: [(record: JSONObject, reason: String)] = [], failures: [TaskFailure] = []
    ) {
        self.outputs = outputs
        self.rejects = rejects
        self.failures = failures
    }
}

/// One input record on its way through a stage: the stage's handler asks the model through
/// it (as often as it needs, concurrently) and calls `finish` exactly once.
///
/// Everything about a task runs on the stage's reading thread: handlers need no locks.
public final class StageTask: @unchecked Sendable {
    public let seq: Int
    public let record: JSONObject
    /// "file:line" of the record (with its element number when the input was a JSON array), for
    /// messages (made when asked: most records never need it).
    public var place: String { InputFile.place(line, in: inputLabel, element: element) }
    private let inputLabel: String
    private let line: Int
    private let element: Int?
    /// False once any reply came from the network rather than the cache.
    public private(set) var allCached = true
    /// Requests sent for this record (cache hits included).
    public private(set) var asked = 0
    /// Slot for the stage's own per-record state.
    public var state: AnyObject?
    /// Set by `finish` (kept by `TaskWindow` until the record is written).
    fileprivate var hasFinished = false
    fileprivate var outcome: TaskOutcome?
    unowned let engine: StageEngine

    init(seq: Int, record: JSONObject, inputLabel: String, line: Int, element: Int? = nil, engine: StageEngine) {
        self.seq = seq
        self.record = record
        self.inputLabel = inputLabel
        self.line = line
        self.element = element
        self.engine = engine
    }

    /// Sends `request` and parses the reply with `parse`. A reply that does not parse is asked
    /// again (a new cache entry, `reask` in the key) up to `parseRetries` times, then fails.
    /// `done` may run before `ask` returns (a cache hit).
    public func ask<T: Sendable>(
        _ request: ChatRequest, parseRetries: Int,
        parse: @escaping @Sendable (ChatReply) -> Result<T, ReplyProblem>,
        done: @escaping @Sendable (Result<(value: T, reply: ChatReply), TaskFailure>) -> Void
    ) {
        asked += 1
        if engine.io.dryRun {
            // Listed, then answered from the cache when it can be (so the requests that depend on
            // it are listed too), else not sent at all.
            let cached = engine.client!.cachedReply(request) != nil
            engine.listDryRun(request, place: place, cached: cached)
            guard cached else {
                return done(.failure(TaskFailure(reason: "dry run: not sent", model: request.model.name)))
            }
        }
        guard let client = engine.client else { preconditionFailure("a stage without a client asked a model") }
        client.chat(request, via: engine.replyExecutor) { [self] result in
            switch result {
            case .failure(let f):
                allCached = false
                done(.failure(TaskFailure(f, model: request.model.name)))
            case .success(let reply):
                if !reply.fromCache { allCached = false }
                switch parse(reply) {
                case .success(let v):
                    done(.success((v, reply)))
                case .failure(let problem):
                    engine.unparsedReplies[request.model.name, default: 0] += 1
                    // A reply cut off by the token limit is not asked again: it would be cut at
                    // the same place.
                    let cut = reply.finishReason == "length"
                    if !cut && request.reask < parseRetries {
                        var again = request
                        again.reask += 1
                        ask(again, parseRetries: parseRetries, parse: parse, done: done)
                        return
                    }
                    let model = request.model.name
                    let reason: String
                    if cut {
                        let limit = request.parameters["max_tokens"].map { "max_tokens=" + JSONWriter.string($0) }
                        reason = """
                            reply from \(model) cut off at \(limit ?? "the server's token limit") \
                            (finish_reason "length") before it was complete: raise --max-tokens
                            """
                    } else {
                        reason = "unparseable reply from \(model) after \(request.reask + 1) tries: \(problem)"
                    }
                    done(.failure(TaskFailure(reason: reason, status: 200, attempts: reply.attempts, model: model)))
                }
            }
        }
    }

    /// Has `model` score `prompt`: the log-probabilities of its tokens (`LLMClient.promptLogprobs`).
    /// `done` may run before this returns (a cache hit).
    public func scorePrompt(
        _ prompt: String, model: ModelEndpoint,
        done: @escaping @Sendable (Result<PromptLogprobs, TaskFailure>) -> Void
    ) {
        asked += 1
        guard let client = engine.client else { preconditionFailure("a stage without a client asked a model") }
        if engine.io.dryRun {
            let key = LLMClient.promptLogprobsCacheKey(model: model, prompt: prompt)
            let cached = client.cachedPromptLogprobs(model: model, prompt: prompt) != nil
            engine.listDryRun(model: model.name, key: key, place: place, cached: cached) { out in
                let body = LLMClient.promptLogprobsBody(model: model, prompt: prompt)
                withExtendedLifetime(body) { out.append(body.bytes) }
            }
            guard cached else {
                return done(.failure(TaskFailure(reason: "dry run: not sent", model: model.name)))
            }
        }
        client.promptLogprobs(model: model, prompt: prompt, via: engine.replyExecutor) { [self] result in
            switch result {
            case .failure(let f):
                allCached = false
                done(.failure(TaskFailure(f, model: model.name)))
            case .success(let answer):
                if !answer.fromCache { allCached = false }
                done(.success(answer.value))
            }
        }
    }

    /// The embedding of `text` by `model` (`LLMClient.embeddings`, cached per text). `done` may
    /// run before this returns (a cache hit). A dry run sends nothing: only a cached vector is
    /// had.
    public func embed(
        _ text: String, model: ModelEndpoint, done: @escaping @Sendable (Result<[Float], TaskFailure>) -> Void
    ) {
        asked += 1
        guard let client = engine.client else { preconditionFailure("a stage without a client asked a model") }
        if engine.io.dryRun {
            guard let v = client.cachedEmbedding(model: model, input: text) else {
                return done(.failure(TaskFailure(reason: "dry run: embedding not sent", model: model.name)))
            }
            return done(.success(v))
        }
        client.embeddings(model: model, inputs: [text], via: engine.replyExecutor) { [self] result in
            switch result {
            case .failure(let f):
                allCached = false
                done(.failure(TaskFailure(f, model: model.name)))
            case .success(let v):
                done(.success(v.first ?? []))
            }
        }
    }

    /// Hands the record's result to the stage (once).
    public func finish(_ outcome: TaskOutcome) {
        engine.finish(self, outcome)
    }

    /// Shorthand: the record failed for one reason.
    public func fail(_ failure: TaskFailure) {
        finish(TaskOutcome(failures: [failure]))
    }
}

/// The machinery of a record-at-a-time LLM stage: reads NDJSON (files or stdin), hands each
/// record to the stage's handler as a `StageTask`, keeps a bounded window of records in work,
/// writes results in input order through a reorder buffer (or as they come with `unordered`),
/// sends failures to the errors file and rejects to the rejects file, prints progress and
/// writes `--stats`. Every input record ends up in exactly one of those places.
///
/// The client's replies are handed to this thread (`replyExecutor`), so handlers run here,
/// one at a time.
public final class StageEngine: @unchecked Sendable {
    public let name: String
    public let io: StageIOOptions
    /// The client the stage's requests go through; nil for a stage that asks no model
    /// (`gra-review --rescore`).
    public let client: LLMClient?
    private let out: OutputSink
    public let diagnostics: Diagnostics
    /// Failed records: the --errors file, or a default one made when the first comes.
    public let errors: SideOutput
    /// Rejected records: the --rejects file, or a default one made when the first comes.
    public let rejects: SideOutput
    public private(set) var summary = StageSummary()
    /// Replies per model that were not the JSON asked for (or were out of range, or cut off),
    /// re-asked or not: how often a model fails its role's format (gra-report's calibration).
    /// Counted on the reading thread, where replies are handled.
    var unparsedReplies: [String: Int] = [:]
    /// Extra fields for the `--stats` file (the stage's own counts).
    public var extraStats: () -> JSONObject = { JSONObject() }
    /// Checks the first record before anything is asked (a template variable it lacks, say):
    /// a message stops the run with exit 65 instead of failing every record the same way.
    public var checkFirstRecord: ((JSONObject) -> String?)?

    /// A reply and the work that completes it.
    ///
    /// A struct, not a tuple: an array of tuples holds its closures at the generic (most
    /// abstract) representation, so every append wrapped the closure in a thunk, one
    /// allocation per reply.
    private struct InboxItem {
        let handle: @Sendable (HTTPResponse) -> Void
        let response: HTTPResponse
    }

    /// Where the client runs the work after each of this stage's replies: queued for this
    /// thread (`enqueue`), so handlers run here, one at a time.
    fileprivate lazy var replyExecutor: HTTPClient.Executor = { [unowned self] handle, response in
        self.enqueue(handle, response)
    }

    /// Work handed from the event-loop thread to this one (replies to decode and complete).
    private let inboxLock = Mutex()
    private var inbox: [InboxItem] = []
    /// The other half of the inbox's double buffer (swapped, never copied: no allocation).
    private var draining: [InboxItem] = []
    private let inboxSignal = DispatchSemaphore(value: 0)
    /// Work was queued and the reader not yet signalled (see `wakeIfQueued`).
    private var wakeDue = false

    /// Records read and not yet written, and the outcomes of those finished.
    private var tasks: TaskWindow
    private var nextToWrite = 0
    private let startTime = HTTPClient.now()
    private lazy var lastProgress = startTime
    /// A status line redrawn in place on stderr (`--progress`, or stderr is a terminal), at
    /// least twice a second; else a plain line every 30 s.
    private let liveProgress: Bool
    /// Bytes of all inputs when every one is a regular file (for the ETA), else nil.
    private var inputBytes: Int?
    /// Bytes of the inputs finished, and the reader of the current one.
    private var inputBytesDone = 0
    private var currentReader: LineReader?

    /// `window`: the most records in work at once (default: four per request the client may
    /// have in flight, at least 16).
    public init(
        name: String, io: StageIOOptions, client: LLMClient?, window: Int? = nil, output: OutputSink,
        diagnostics: Diagnostics
    ) {
        self.name = name
        self.io = io
        self.client = client
        self.out = output
        self.diagnostics = diagnostics
        liveProgress = diagnostics.progress ?? (isatty(2) == 1 && !diagnostics.quiet)
        self.window = window ?? max(16, (client?.http.maxInFlight ?? 4) * 4)
        errors = SideOutput(kind: "errors", tool: name, path: io.errorsPath)
        rejects = SideOutput(kind: "rejects", tool: name, path: io.rejectsPath)
        tasks = TaskWindow(capacity: self.window, unordered: io.unordered)
    }

    /// The most records read ahead of the oldest unwritten one (the capacity of `tasks`).
    private let window: Int

    /// Requests listed by `--dry-run`, and how many of them the cache answers.
    private var dryRunListed = 0, dryRunCached = 0

    /// One line of `--dry-run` output: where the request comes from, the model, whether the
    /// cache answers it, its cache key, and the request body as it would be sent.
    fileprivate func listDryRun(_ request: ChatRequest, place: String, cached: Bool) {
        listDryRun(model: request.model.name, key: request.cacheKey(), place: place, cached: cached) {
            request.writeBody(to: $0)
        }
    }

    fileprivate func listDryRun(
        model: String, key: [UInt8], place: String, cached: Bool, writeBody: (ByteBuffer) -> Void
    ) {
        dryRunListed += 1
        if cached { dryRunCached += 1 }
        let b = out.buffer
        b.append(#"{"stage":"#)
        JSONWriter.writeString(name, to: b)
        b.append(#","where":"#)
        JSONWriter.writeString(place, to: b)
        b.append(#","model":"#)
        JSONWriter.writeString(model, to: b)
        b.append(cached ? #","cached":true,"cache_key":""# : #","cached":false,"cache_key":""#)
        b.append(SHA256.hexString(key))
        b.append(#"","request":"#)
        writeBody(b)
        b.append("}\n")
    }

    /// Runs the stage: `start` is called once per record (after `--shard`), on this thread.
    ///
    /// The client's callbacks reach this engine only while `run` runs: its requests are sent
    /// and the loop's hook installed here, and its end shuts the client down (loop threads
    /// joined), so no late reply can call into an engine that is gone.
    public func run(_ start: (StageTask) -> Void) throws(GRAError) -> StageSummary {
        client?.http.afterCompletions = { [unowned self] in self.wakeIfQueued() }
        defer { client?.http.shutdown() }
        try OutputGuard.check(
            inputs: io.inputs,
            outputs: [
                .init("--errors", io.errorsPath), .init("--rejects", io.rejectsPath),
                .init("--stats", io.statsPath)
            ], stdoutIsOutput: out.fd == 1)
        try errors.open()
        try rejects.open()
        inputBytes = Self.totalBytes(io.inputs.isEmpty ? ["-"] : io.inputs)
        defer {
            errors.close()
            rejects.close()
        }
        var failure: GRAError?
        do {
            let inputs = io.inputs.isEmpty ? ["-"] : io.inputs
            var seq = 0
            for input in inputs {
                try process(input: input, seq: &seq, start: start)
            }
            while tasks.count > 0 { try waitAndWrite() }
        } catch {
            failure = error
        }
        if failure != .brokenPipe { try? out.flush() }
        summary.blockedStatus = client?.health.exitStatus
        progress(final: true)
        for note in [errors.defaultFileNote, rejects.defaultFileNote].compactMap({ $0 }) { diagnostics.warn(note) }
        if let statsPath = io.statsPath { writeStats(statsPath) }
        if let failure { throw failure }
        return summary
    }

    private func process(input: String, seq: inout Int, start: (StageTask) -> Void) throws(GRAError) {
        let file = try InputFile(input)
        defer { file.close() }
        let reader = LineReader(fd: file.fd, maxLineBytes: io.maxLineBytes)
        currentReader = reader
        defer {
            inputBytesDone += reader.consumed
            currentReader = nil
        }
        // NDJSON, or one JSON array of records (as Alpaca files are), like gra-format.
        let isArray = try reader.layout(label: file.label) == .array
        while true {
            if Signals.interrupted { throw GRAError.interrupted }
            while tasks.count >= window { try waitAndWrite() }
            guard let item = try nextItem(reader, isArray: isArray, fd: file.fd) else { break }
            let line: Int, element: Int?, sorted: InputLine, text: UnsafeBufferPointer<UInt8>
            switch item {
            case .tooLong(let number, let n, let index):
                try badInput(
                    file.place(number, element: index.map { $0 + 1 }),
                    InputLine.tooLongMessage(bytes: n, element: index, limit: io.maxLineBytes), overlongBytes: n)
                continue
            case .line(let number, let bytes):
                (line, element, sorted, text) = (number, nil, InputLine.classify(bytes), bytes)
            case .element(let index, let number, let bytes):
                (line, element, sorted, text) = (number, index + 1, InputLine.classify(bytes, isElement: true), bytes)
            }
            let record: JSONObject
            switch sorted {
            case .blank: continue
            case .record(let o): record = o
            case .bad(let problem, let value):
                try badInput(file.place(line, element: element), problem, raw: text, value: value)
                continue
            }
            if let shard = io.shard, !shard.contains(record) {
                summary.otherShards += 1
                continue
            }
            if seq == 0, let check = checkFirstRecord, let problem = check(record) {
                throw GRAError.badInput("\(file.place(line, element: element)): \(problem)")
            }
            summary.read += 1
            let task = StageTask(
                seq: seq, record: record, inputLabel: file.label, line: line, element: element, engine: self)
            tasks.insert(task)
            seq += 1
            start(task)
            drainInbox()
            try writeReady()
            progress(final: false)
        }
    }

    /// The next line or element. While records are in work and no complete one is buffered, it
    /// waits for input in short polls and writes what finishes meanwhile: a slow producer
    /// upstream (a pipe fed now and then) must not hold back records already answered.
    private func nextItem(_ reader: LineReader, isArray: Bool, fd: Int32) throws(GRAError) -> LineReader.Item? {
        while tasks.count > 0 {
            if let item = try isArray ? reader.nextElement(mayRead: false) : reader.next(mayRead: false) { return item }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            // Readable, hung up, an error or a signal: the read below tells which.
            if poll(&p, 1, 50) != 0 { break }
            drainInbox()
            try writeReady()
            progress(final: false)
        }
        return try isArray ? reader.nextElement() : reader.next()
    }

    /// The summed size of `inputs` when each is a regular file (standard input redirected
    /// from one counts), else nil.
    private static func totalBytes(_ inputs: [String]) -> Int? {
        var total = 0
        for input in inputs {
            var st = stat()
            let ok = input == "-" ? fstat(0, &st) == 0 : stat(input, &st) == 0
            guard ok, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            total += Int(st.st_size)
        }
        return total
    }

    private func badInput(
        _ place: String, _ message: String, raw: UnsafeBufferPointer<UInt8>? = nil, value: JSONValue? = nil,
        overlongBytes: Int? = nil
    ) throws(GRAError) {
        guard io.skipBadInput else {
            // Everything before the bad line is written first.
            while tasks.count > 0 { try waitAndWrite() }
            throw GRAError.badRecord(place, message)
        }
        summary.badInput += 1
        diagnostics.warn("\(place): \(message) (skipped)", fold: "\(message) (skipped)")
        try errors.writeLine(
            InputLine.skippedEntry(
                stage: name, place: place, message: message, raw: raw, value: value, overlongBytes: overlongBytes))
    }

    fileprivate func finish(_ task: StageTask, _ outcome: TaskOutcome) {
        let first = tasks.finish(task, outcome)
        precondition(first, "a task finished twice")
    }

    /// Queues work from the event-loop thread. The reader is woken by `wakeIfQueued`, once per
    /// round of the loop: woken per reply, it would drain one reply per wake-up.
    private func enqueue(_ handle: @escaping @Sendable (HTTPResponse) -> Void, _ response: HTTPResponse) {
        inboxLock.locked {
            if inbox.isEmpty { wakeDue = true }
            inbox.append(InboxItem(handle: handle, response: response))
        }
    }

    /// After a loop round: wakes the reader if work was queued since it last drained.
    private func wakeIfQueued() {
        let wake = inboxLock.locked { () -> Bool in
            defer { wakeDue = false }
            return wakeDue
        }
        if wake { inboxSignal.signal() }
    }

    /// Runs the queued reply work, which records finished records' outcomes in `tasks`.
    private func drainInbox() {
        inboxLock.locked { swap(&inbox, &draining) }
        for i in draining.indices { draining[i].handle(draining[i].response) }
        draining.removeAll(keepingCapacity: true)
    }

    /// Waits for at least one completion (or a progress tick), then writes what is ready.
    private func waitAndWrite() throws(GRAError) {
        if io.unordered ? !tasks.anyFinished : !tasks.isFinished(nextToWrite) {
            _ = inboxSignal.wait(timeout: .now() + 0.25)
            if Signals.interrupted { throw GRAError.interrupted }
        }
        drainInbox()
        try writeReady()
        progress(final: false)
    }

    private func writeReady() throws(GRAError) {
        var wrote = false
        while true {
            let task: StageTask, outcome: TaskOutcome
            if io.unordered {
                guard let any = tasks.removeAnyFinished() else { break }
                (task, outcome) = any
            } else {
                guard tasks.isFinished(nextToWrite) else { break }
                (task, outcome) = tasks.remove(nextToWrite)
                nextToWrite += 1
            }
            try write(outcome, of: task)
            wrote = true
        }
        if wrote {
            // Hand output on while waiting for slow replies; batch it while they stream in.
            if out.buffer.count >= out.flushThreshold || !tasks.anyFinished { try out.flush() }
        }
    }

    private func write(_ outcome: TaskOutcome, of task: StageTask) throws(GRAError) {
        summary.done += 1
        if io.dryRun { return }  // the requests are the output
        if task.allCached && task.asked > 0 { summary.cached += 1 }
        for record in outcome.outputs {
            JSONWriter.write(record, to: out.buffer)
            out.buffer.append(0x0A)
            summary.written += 1
        }
        for (record, reason) in outcome.rejects {
            summary.rejected += 1
            var e = JSONObject()
            e.append("stage", .string(name))
            e.append("where", .string(task.place))
            if let id = record["id"] { e.append("id", id) }
            e.append("reason", .string(reason))
            e.append("record", .object(record))
            try rejects.writeLine(e)
        }
        for failure in outcome.failures {
            summary.failed += 1
            var e = JSONObject()
            e.append("stage", .string(name))
            e.append("where", .string(task.place))
            if let id = task.record["id"] {
                e.append("id", id)
            } else if case .success(let fields) = SampleFields.read(task.record, needResponse: false) {
                e.append("id", .string(fields.id))  // the content-hash id the stages give it
            }
            if let model = failure.model { e.append("model", .string(model)) }
            for f in failure.extra.fields { e.append(f.key, f.value) }
            e.append("reason", .string(failure.reason))
            e.append("status", failure.status.map { .integer($0) } ?? .null)
            e.append("attempts", .integer(failure.attempts))
            e.append("record", .object(task.record))
            try errors.writeLine(e)
        }
    }

    // MARK: - Progress and stats

    /// Prints the status line when it is due (every 0.4 s when live, 30 s otherwise), or the
    /// final one. Cheap when not due: called after every record and every wait.
    private func progress(final: Bool) {
        let now = HTTPClient.now()
        if !final && now - lastProgress < (liveProgress ? 0.4 : 30) { return }
        lastProgress = now
        let stats = client?.stats ?? [:]
        let requests = stats.values.reduce(0) { $0 + $1.requests }
        let retries = stats.values.reduce(0) { $0 + $1.retries }
        let tokensOut = stats.values.reduce(0) { $0 + $1.completionTokens }
        let elapsed = max(now - startTime, 0.001)
        var line = "\(summary.done)/\(summary.read) done, \(summary.written) written"
        if summary.rejected > 0 { line += ", \(summary.rejected) rejected" }
        line += ", \(summary.cached) cached, \(summary.failed) failed, \(requests) requests"
        if retries > 0 { line += " (\(retries) retries)" }
        line += String(format: ", %.0f rec/s, %.0f tok/s", Double(summary.done) / elapsed, Double(tokensOut) / elapsed)
        if !final {
            line += ", \(tasks.count) in progress"
            // The window, once an overloaded server has made it smaller than the cap.
            if let windows = client?.http.windows(), windows.contains(where: { $0.window.cuts > 0 }) {
                line += ", window \(windows.map { String($0.window.current) }.joined(separator: "+"))"
            }
            if let eta = eta(elapsed: elapsed) { line += eta }
        }
        if final && io.dryRun {
            if liveProgress { diagnostics.emitRaw("\r\u{1B}[K") }
            diagnostics.info(
                """
                dry run: \(summary.read) records, \(dryRunListed) requests listed (\(dryRunCached) answered from \
                the cache, so the requests that follow them are listed too); nothing was sent
                """
            )
        } else if final {
            if liveProgress { diagnostics.emitRaw("\r\u{1B}[K") }
            diagnostics.reportFolded()
            diagnostics.info(line)
        } else if liveProgress {
            diagnostics.emitRaw("\r\u{1B}[K\(diagnostics.tool): \(line)")
        } else {
            diagnostics.info(line)
        }
    }

    /// ", 42%, ETA 3m05s" from the bytes read when the inputs are regular files: this stage's
    /// records in the inputs are estimated from its records per byte read so far.
    private func eta(elapsed: Double) -> String? {
        guard let total = inputBytes, total > 0, summary.done > 0 else { return nil }
        let read = inputBytesDone + (currentReader?.consumed ?? 0)
        guard read > 0 else { return nil }
        let ours = Double(summary.read) * Double(total) / Double(read)
        let fraction = min(1, Double(summary.done) / max(ours, 1))
        let seconds = elapsed * (1 - fraction) / fraction
        return String(format: ", %.0f%%, ETA ", fraction * 100) + Self.duration(seconds)
    }

    /// "45s", "3m05s", "2h07m".
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    private func writeStats(_ path: String) {
        var models = JSONObject()
        for (name, s) in (client?.stats ?? [:]).sorted(by: { $0.key < $1.key }) {
            var o = JSONObject()
            o.append("requests", .integer(s.requests))
            o.append("cache_hits", .integer(s.cacheHits))
            o.append("retries", .integer(s.retries))
            o.append("failures", .integer(s.failures))
            o.append("prompt_tokens", .integer(s.promptTokens))
            o.append("completion_tokens", .integer(s.completionTokens))
            o.append("latency_p50_s", s.percentile(0.5).map { .number(String(format: "%.4f", $0)) } ?? .null)
            o.append("latency_p95_s", s.percentile(0.95).map { .number(String(format: "%.4f", $0)) } ?? .null)
            o.append("latency_p99_s", s.percentile(0.99).map { .number(String(format: "%.4f", $0)) } ?? .null)
            func classes(_ d: [String: Int]) -> JSONValue {
                var c = JSONObject()
                for (k, v) in d.sorted(by: { $0.key < $1.key }) { c.append(k, .integer(v)) }
                return .object(c)
            }
            o.append("retries_by_class", classes(s.retriesByClass))
            o.append("failures_by_class", classes(s.failuresByClass))
            o.append("unparsed_replies", .integer(unparsedReplies[name] ?? 0))
            models.append(name, .object(o))
        }
        var root = JSONObject()
        root.append("stage", .string(name))
        root.append("records", .integer(summary.read))
        root.append("written", .integer(summary.written))
        root.append("rejected", .integer(summary.rejected))
        root.append("failed", .integer(summary.failed))
        root.append("cached", .integer(summary.cached))
        for f in extraStats().fields { root.append(f.key, f.value) }
        root.append("seconds", .number(String(format: "%.3f", HTTPClient.now() - startTime)))
        root.append("models", .object(models))
        var endpoints = JSONObject()
        for (endpoint, w) in client?.http.windows() ?? [] {
            var o = JSONObject()
            o.append("window", .integer(w.current))
            o.append("smallest_window", .integer(w.smallest))
            o.append("max_window", .integer(w.largest))
            o.append("window_cuts", .integer(w.cuts))
            endpoints.append(endpoint, .object(o))
        }
        root.append("endpoints", .object(endpoints))
        if let sink = try? OutputSink(path: path) {
            try? sink.writeLine(root)
            try? sink.flush()
            sink.close()
        }
    }
}

/// The records in work and the outcomes of those finished, found without hashing: in input
/// order, in a ring indexed by sequence number (the window's admission keeps every unwritten
/// record within `capacity` of the oldest); with `unordered`, finished records in a list.
struct TaskWindow {
    private var ring: [StageTask?]
    private let mask: Int
    /// Records in work (read and not yet removed).
    private(set) var count = 0
    /// With `unordered`: the finished records not yet removed, latest last.
    private var finishedList: [StageTask] = []
    private var finishedCount = 0
    private let unordered: Bool

    /// `capacity`: the most records in work at once.
    init(capacity: Int, unordered: Bool) {
        var size = 16
        while size < capacity { size *= 2 }
        ring = unordered ? [] : Array(repeating: nil, count: size)
        mask = size - 1
        self.unordered = unordered
    }

    mutating func insert(_ task: StageTask) {
        if !unordered {
            precondition(ring[task.seq & mask] == nil, "more records in work than the window holds")
            ring[task.seq & mask] = task
        }
        count += 1
    }

    /// Records a task's outcome; false when it had finished already.
    mutating func finish(_ task: StageTask, _ outcome: TaskOutcome) -> Bool {
        guard !task.hasFinished else { return false }
        task.hasFinished = true
        task.outcome = outcome
        finishedCount += 1
        if unordered { finishedList.append(task) }
        return true
    }

    /// Whether record `seq` is finished and not yet removed (in input order only).
    func isFinished(_ seq: Int) -> Bool {
        guard let t = ring[seq & mask], t.seq == seq else { return false }
        return t.outcome != nil
    }

    var anyFinished: Bool { finishedCount > 0 }

    /// Takes finished record `seq` out (in input order).
    mutating func remove(_ seq: Int) -> (task: StageTask, outcome: TaskOutcome) {
        precondition(isFinished(seq), "only finished records are removed")
        let task = ring[seq & mask]!
        ring[seq & mask] = nil
        return take(task)
    }

    /// Takes the latest finished record out (with `unordered`).
    mutating func removeAnyFinished() -> (task: StageTask, outcome: TaskOutcome)? {
        guard let task = finishedList.popLast() else { return nil }
        return take(task)
    }

    private mutating func take(_ task: StageTask) -> (task: StageTask, outcome: TaskOutcome) {
        let outcome = task.outcome!
        task.outcome = nil
        count -= 1
        finishedCount -= 1
        return (task, outcome)
    }
}
