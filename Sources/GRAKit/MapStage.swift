#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// What `gra-map` does, as plain values (the CLI fills this from its flags).
public struct MapOptions: Sendable {
    public var template: PromptTemplate
    public var systemTemplate: PromptTemplate?
    /// Dotted path of the field the reply goes into, e.g. `gra.map.translation`.
    public var into: [String]
    /// When set, the reply must be JSON conforming to this schema (sent as `response_format`).
    public var schema: JSONSchema?
    /// Send the schema as `response_format` (some servers reject it).
    public var sendResponseFormat = true
    public var model: ModelEndpoint
    public var parameters = JSONObject()
    /// Re-asks of a reply that is not the JSON asked for, before it becomes an error.
    public var parseRetries = 2
    public var errorsPath: String?
    public var skipBadInput = false
    public var unordered = false
    public var maxLineBytes = LineReader.defaultMaxLineBytes
    public var inputs: [String] = []
    public var statsPath: String?
    /// Handle only this share of the records (`--shard i/n`).
    public var shard: Shard?

    public init(template: PromptTemplate, into: [String], model: ModelEndpoint) {
        self.template = template
        self.into = into
        self.model = model
    }
}

/// Counts of a `gra-map` run.
public struct MapSummary: Sendable {
    public var read = 0
    public var written = 0
    public var failed = 0
    public var cached = 0
    public var badInput = 0
    /// Records left to other shards (`--shard`).
    public var otherShards = 0
}

/// The generic LLM stage: per record, render the prompt, ask the model, put the reply (text,
/// or validated JSON) into a field. Output follows input order through a reorder buffer of
/// bounded size; records whose request failed go to the errors file, so every input record
/// ends up in exactly one place.
public final class MapStage: @unchecked Sendable {
    public let options: MapOptions
    private let client: LLMClient
    private let out: OutputSink
    private let diagnostics: Diagnostics
    private var errors: OutputSink?
    public private(set) var summary = MapSummary()

    /// Work handed from the event-loop thread to this one (replies to decode and complete).
    private let inboxLock = Mutex()
    private var inbox: [@Sendable () -> Void] = []
    private let inboxSignal = DispatchSemaphore(value: 0)

    /// Records read and not yet written, by sequence number.
    private var records: [Int: (record: JSONObject, place: String, reask: Int)] = [:]
    private var finished: [Int: Outcome] = [:]
    private var nextToWrite = 0
    private let startTime = HTTPClient.now()
    private lazy var lastProgress = startTime
    private let liveProgress = isatty(2) == 1

    enum Outcome {
        case done(JSONObject, cached: Bool)
        case failed(JSONObject, place: String, reason: String, status: Int?, attempts: Int)
    }

    /// Hash of the templates and schema: part of every cache key, so editing them re-asks.
    private let promptVersion: String

    public init(options: MapOptions, client: LLMClient, output: OutputSink, diagnostics: Diagnostics) {
        var version = options.template.version
        if let s = options.systemTemplate { version += "+" + s.version }
        if let schema = options.schema { version += "+" + String(SHA256.hex(JSONWriter.string(schema.schema)).prefix(16)) }
        promptVersion = version
        self.options = options
        self.client = client
        self.out = output
        self.diagnostics = diagnostics
        client.executor = { [unowned self] job in self.enqueue(job) }
    }

    /// The most records read ahead of the oldest unwritten one.
    private var window: Int { max(16, client.http.maxInFlight * 4) }

    public func run() throws(GRAError) -> MapSummary {
        if let path = options.errorsPath { errors = try OutputSink(path: path) }
        defer {
            try? errors?.flush()
            errors?.close()
        }
        var failure: GRAError?
        do {
            let inputs = options.inputs.isEmpty ? ["-"] : options.inputs
            var seq = 0
            for input in inputs {
                try process(input: input, seq: &seq)
            }
            while !records.isEmpty { try waitAndWrite() }
        } catch {
            failure = error
        }
        if failure != .brokenPipe { try? out.flush() }
        progress(final: true)
        if let statsPath = options.statsPath { writeStats(statsPath) }
        if let failure { throw failure }
        return summary
    }

    private func process(input: String, seq: inout Int) throws(GRAError) {
        let file = try InputFile(input)
        defer { file.close() }
        let reader = LineReader(fd: file.fd, maxLineBytes: options.maxLineBytes)
        while true {
            if Signals.interrupted { throw GRAError.interrupted }
            while records.count >= window { try waitAndWrite() }
            guard let item = try reader.next() else { break }
            let place: String
            let record: JSONObject
            switch item {
            case .tooLong(let number, let bytes):
                place = file.place(number)
                try badInput(place, "line is \(bytes) bytes, over the \(options.maxLineBytes)-byte limit (--max-line-bytes)")
                continue
            case .line(let number, let bytes):
                place = file.place(number)
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                switch JSONParser.parseResult(bytes) {
                case .failure(let e):
                    try badInput(place, "invalid JSON: \(e)")
                    continue
                case .success(let v):
                    guard case .object(let o) = v else {
                        try badInput(place, "expected a JSON object (one record per line), found \(v.kindDescription)")
                        continue
                    }
                    record = o
                }
            }
            if let shard = options.shard, !shard.contains(record) {
                summary.otherShards += 1
                continue
            }
            summary.read += 1
            records[seq] = (record, place, 0)
            submit(seq)
            seq += 1
            drainInbox()
            try writeReady()
        }
    }

    private func badInput(_ place: String, _ message: String) throws(GRAError) {
        guard options.skipBadInput else {
            // Everything before the bad line is written first.
            while !records.isEmpty { try waitAndWrite() }
            throw GRAError.badInput("\(place): \(message)")
        }
        summary.badInput += 1
        diagnostics.warn("\(place): \(message) (skipped)")
        if let errors {
            var e = JSONObject()
            e.append("stage", .string("gra-map"))
            e.append("where", .string(place))
            e.append("reason", .string(message))
            try errors.writeLine(e)
        }
    }

    /// Renders the prompt for record `seq` and sends it; a rendering problem fails the record.
    private func submit(_ seq: Int) {
        guard let entry = records[seq] else { return }
        var missing: [String] = []
        let root = JSONValue.object(entry.record)
        // Template files end with a newline; the message should not.
        let user = options.template.render(root, missing: &missing).trimmingWhitespace()
        let system = options.systemTemplate?.render(root, missing: &missing).trimmingWhitespace()
        if !missing.isEmpty {
            let names = Array(Set(missing)).sorted().map { "'\($0)'" }.joined(separator: ", ")
            finished[seq] = .failed(entry.record, place: entry.place, reason: "the prompt uses \(names), missing from the record", status: nil, attempts: 0)
            return
        }
        var messages: [JSONValue] = []
        if let system { messages.append(.object(["role": .string("system"), "content": .string(system)])) }
        messages.append(.object(["role": .string("user"), "content": .string(user)]))
        var responseFormat: JSONValue?
        if let schema = options.schema, options.sendResponseFormat {
            responseFormat = .object([
                "type": .string("json_schema"),
                "json_schema": .object(["name": .string("gra_map"), "schema": schema.schema, "strict": .bool(true)]),
            ])
        }
        var request = ChatRequest(model: options.model, messages: messages, parameters: options.parameters,
                                  responseFormat: responseFormat, promptVersion: promptVersion)
        request.reask = entry.reask
        // Runs on this thread: synchronously for a cache hit, else from `drainInbox`.
        client.chat(request) { [self] result in complete(seq, result) }
    }

    /// Queues work from the event-loop thread; signals only the first job of a burst, as the
    /// reader drains them all at once.
    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        let wasEmpty = inboxLock.locked { () -> Bool in
            let e = inbox.isEmpty
            inbox.append(job)
            return e
        }
        if wasEmpty { inboxSignal.signal() }
    }

    /// Runs the queued reply work, which moves completed requests into `finished`.
    private func drainInbox() {
        let jobs = inboxLock.locked { () -> [@Sendable () -> Void] in
            let jobs = inbox
            inbox.removeAll(keepingCapacity: true)
            return jobs
        }
        for job in jobs { job() }
    }

    private func complete(_ seq: Int, _ result: Result<ChatReply, RequestFailure>) {
        guard let entry = records[seq] else { return }
        switch result {
        case .failure(let f):
            finished[seq] = .failed(entry.record, place: entry.place, reason: f.message, status: f.status, attempts: f.attempts)
        case .success(let reply):
            let value: JSONValue
            if let schema = options.schema {
                let problem: String
                switch ReplyJSON.extract(reply.content ?? "") {
                case .success(let v):
                    guard let violation = schema.violation(v) else {
                        value = v
                        return store(seq, entry, value, reply)
                    }
                    problem = "reply does not match the schema: \(violation)"
                case .failure(let p):
                    problem = p.description
                }
                if entry.reask < options.parseRetries {
                    records[seq]!.reask += 1
                    submit(seq)
                } else {
                    finished[seq] = .failed(entry.record, place: entry.place,
                                            reason: "unparseable reply after \(entry.reask + 1) tries: \(problem)",
                                            status: 200, attempts: reply.attempts)
                }
                return
            }
            guard let text = reply.content else {
                finished[seq] = .failed(entry.record, place: entry.place, reason: "the model sent no content", status: 200, attempts: reply.attempts)
                return
            }
            value = .string(text)
            store(seq, entry, value, reply)
        }
    }

    private func store(_ seq: Int, _ entry: (record: JSONObject, place: String, reask: Int), _ value: JSONValue, _ reply: ChatReply) {
        var record = entry.record
        do {
            try MapStage.set(value, at: options.into[...], in: &record)
            finished[seq] = .done(record, cached: reply.fromCache)
        } catch {
            finished[seq] = .failed(entry.record, place: entry.place, reason: error.description, status: nil, attempts: reply.attempts)
        }
    }

    /// Sets `value` at a dotted path, creating objects on the way.
    static func set(_ value: JSONValue, at path: ArraySlice<String>, in object: inout JSONObject) throws(GRAError) {
        guard let key = path.first else { return }
        if path.count == 1 {
            object[key] = value
            return
        }
        var inner: JSONObject
        switch object[key] {
        case nil, .null?: inner = JSONObject()
        case .object(let o)?: inner = o
        case let other?: throw GRAError.badInput("cannot write into '\(key)': it holds \(other.kindDescription), not an object")
        }
        try set(value, at: path.dropFirst(), in: &inner)
        object[key] = .object(inner)
    }

    /// Waits for at least one completion (or a progress tick), then writes what is ready.
    private func waitAndWrite() throws(GRAError) {
        if options.unordered ? finished.isEmpty : finished[nextToWrite] == nil {
            let r = inboxSignal.wait(timeout: .now() + 0.5)
            if r == .timedOut { progress(final: false) }
            if Signals.interrupted { throw GRAError.interrupted }
        }
        drainInbox()
        try writeReady()
    }

    private func writeReady() throws(GRAError) {
        var wrote = false
        while true {
            let seq: Int
            if options.unordered {
                guard let any = finished.keys.first else { break }
                seq = any
            } else {
                guard finished[nextToWrite] != nil else { break }
                seq = nextToWrite
                nextToWrite += 1
            }
            let outcome = finished.removeValue(forKey: seq)!
            records.removeValue(forKey: seq)
            switch outcome {
            case .done(let record, let cached):
                JSONWriter.write(record, to: out.buffer)
                out.buffer.append(0x0A)
                summary.written += 1
                if cached { summary.cached += 1 }
            case .failed(let record, let place, let reason, let status, let attempts):
                summary.failed += 1
                try reportFailure(record, place: place, reason: reason, status: status, attempts: attempts)
            }
            wrote = true
        }
        if wrote {
            // Hand output on while waiting for slow replies; batch it while they stream in.
            if out.buffer.count >= out.flushThreshold || finished.isEmpty { try out.flush() }
        }
    }

    private func reportFailure(_ record: JSONObject, place: String, reason: String, status: Int?, attempts: Int) throws(GRAError) {
        var e = JSONObject()
        e.append("stage", .string("gra-map"))
        e.append("where", .string(place))
        if let id = record["id"] { e.append("id", id) }
        e.append("model", .string(options.model.name))
        e.append("reason", .string(reason))
        e.append("status", status.map { .integer($0) } ?? .null)
        e.append("attempts", .integer(attempts))
        e.append("record", .object(record))
        if let errors {
            try errors.writeLine(e)
        } else {
            diagnostics.warn("\(place): failed: \(reason) (use --errors FILE to keep failed records)")
        }
    }

    // MARK: - Progress and stats

    private func progress(final: Bool) {
        let now = HTTPClient.now()
        if !final && now - lastProgress < (liveProgress ? 0.5 : 30) { return }
        lastProgress = now
        let stats = client.stats
        let requests = stats.values.reduce(0) { $0 + $1.requests }
        let retries = stats.values.reduce(0) { $0 + $1.retries }
        let tokensOut = stats.values.reduce(0) { $0 + $1.completionTokens }
        let elapsed = max(now - startTime, 0.001)
        let done = summary.written + summary.failed
        var line = "\(done)/\(summary.read) done, \(summary.cached) cached, \(summary.failed) failed, \(requests) requests"
        if retries > 0 { line += " (\(retries) retries)" }
        line += String(format: ", %.0f rec/s, %.0f tok/s", Double(done) / elapsed, Double(tokensOut) / elapsed)
        if !final { line += ", \(records.count) in progress" }
        if final {
            if liveProgress { diagnostics.emitRaw("\r\u{1B}[K") }
            diagnostics.info(line)
        } else if liveProgress {
            diagnostics.emitRaw("\r\u{1B}[K\(diagnostics.tool): \(line)")
        } else {
            diagnostics.info(line)
        }
    }

    private func writeStats(_ path: String) {
        var models = JSONObject()
        for (name, s) in client.stats.sorted(by: { $0.key < $1.key }) {
            var o = JSONObject()
            o.append("requests", .integer(s.requests))
            o.append("cache_hits", .integer(s.cacheHits))
            o.append("retries", .integer(s.retries))
            o.append("failures", .integer(s.failures))
            o.append("prompt_tokens", .integer(s.promptTokens))
            o.append("completion_tokens", .integer(s.completionTokens))
            o.append("latency_p50_s", s.percentile(0.5).map { .number(String(format: "%.4f", $0)) } ?? .null)
            o.append("latency_p95_s", s.percentile(0.95).map { .number(String(format: "%.4f", $0)) } ?? .null)
            models.append(name, .object(o))
        }
        var root = JSONObject()
        root.append("stage", .string("gra-map"))
        root.append("records", .integer(summary.read))
        root.append("written", .integer(summary.written))
        root.append("failed", .integer(summary.failed))
        root.append("cached", .integer(summary.cached))
        root.append("seconds", .number(String(format: "%.3f", HTTPClient.now() - startTime)))
        root.append("models", .object(models))
        if let sink = try? OutputSink(path: path) {
            try? sink.writeLine(root)
            try? sink.flush()
            sink.close()
        }
    }
}
