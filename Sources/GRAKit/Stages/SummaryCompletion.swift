import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What `gra-format --complete-summaries` needs besides the format options.
public struct SummaryCompletionOptions: Sendable {
    public var pool: ModelPool
    public var prompts: PromptSet
    /// Seed of the (reproducible) choice of the model per record.
    public var seed = 0
    public var requests = RoleRequestMaker()
    /// Where records whose extraction failed go, and where `--stats` goes.
    public var errorsPath: String?
    public var statsPath: String?

    public init(pool: ModelPool, prompts: PromptSet) {
        self.pool = pool
        self.prompts = prompts
    }
}

/// Fills in missing `keywords`/`summary` with one extraction call per record (the same prompt
/// and code as gra-generate's knowledge extraction), so accepted output can seed the next GRA
/// round. Records that have both pass through without a request.
public final class SummaryCompletionStage: @unchecked Sendable {
    public let options: SummaryCompletionOptions
    private let engine: StageEngine
    public private(set) var completed = 0

    public init(
        options: SummaryCompletionOptions, io: StageIOOptions, client: LLMClient, output: OutputSink,
        diagnostics: Diagnostics
    ) {
        self.options = options
        engine = StageEngine(name: "gra-format", io: io, client: client, output: output, diagnostics: diagnostics)
        engine.extraStats = { [unowned self] in ["summaries_completed": .integer(completed)] }
    }

    public func run() throws(GRAError) -> StageSummary {
        try engine.run { task in complete(task) }
    }

    private func complete(_ task: StageTask) {
        let fields: SampleFields
        switch SampleFields.read(task.record, needResponse: true) {
        case .failure(let f): return task.fail(f)
        case .success(let v): fields = v
        }
        switch Knowledge.stored(in: task.record) {
        case .failure(let f): return task.fail(f)
        case .success(.some): return task.finish(TaskOutcome(outputs: [task.record]))
        case .success(nil): break
        }
        let name = RoleAssignment.order(options.pool.models.map(\.name), recordID: fields.id, seed: options.seed)[0]
        Knowledge.extract(
            fields, model: options.pool.model(named: name)!, prompts: options.prompts, requests: options.requests,
            task: task
        ) { [self] result in
            switch result {
            case .failure(let f): task.fail(f)
            case .success(let k):
                var record = task.record
                k.store(in: &record)
                completed += 1
                task.finish(TaskOutcome(outputs: [record]))
            }
        }
    }

    /// `gra-format --complete-summaries`: the input is read and unified into gra form
    /// (FormatStage, rejects included), summaries are completed (this stage), and the result is
    /// converted to the target format (FormatStage again) — three steps joined by pipes, all
    /// running at once, so memory stays bounded and order is kept. The summaries line and the
    /// format summary go to stderr at the end.
    public static func formatCompletingSummaries(
        format: FormatOptions, completion: SummaryCompletionOptions, client: LLMClient,
        output: OutputSink, diagnostics: Diagnostics
    ) throws(GRAError) -> (FormatSummary, StageSummary, completed: Int) {
        // The three steps each see part of the paths: check them all together first.
        try OutputGuard.check(
            inputs: format.io.inputs,
            outputs: [
                .init("--rejects", format.io.rejectsPath), .init("--errors", completion.errorsPath),
                .init("--stats", completion.statsPath)
            ], stdoutIsOutput: output.fd == 1)
        var toSummaries: [Int32] = [0, 0]
        var toOutput: [Int32] = [0, 0]
        guard pipe(&toSummaries) == 0, pipe(&toOutput) == 0 else {
            throw GRAError.io("cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        for fd in toSummaries + toOutput { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var first = format
        first.to = .gra
        first.array = false
        first.stripMeta = false
        // Both format steps reject records (unreadable ones, ones the target cannot hold): into one file.
        let rejects = SideOutput(kind: "rejects", tool: "gra-format", path: format.io.rejectsPath)
        try rejects.open()
        defer { rejects.close() }
        let reading = FormatStage(
            options: first, output: OutputSink(fd: toSummaries[1]), diagnostics: diagnostics, rejects: rejects)

        var last = format
        last.from = .gra
        last.normalizeText = false
        last.io = StageIOOptions()
        last.io.inputs = ["/dev/fd/\(toOutput[0])"]
        last.io.maxLineBytes = format.io.maxLineBytes
        let writing = FormatStage(options: last, output: output, diagnostics: diagnostics, rejects: rejects)

        let summariesWriteEnd = toSummaries[1], outputReadEnd = toOutput[0]
        let results = ThreadResults()
        let done = DispatchGroup()
        done.enter()
        Thread {
            results.set(first: Result { () throws(GRAError) in try reading.run() })
            close(summariesWriteEnd)
            done.leave()
        }.start()
        done.enter()
        Thread {
            results.set(last: Result { () throws(GRAError) in try writing.run() })
            close(outputReadEnd)
            done.leave()
        }.start()

        var io = StageIOOptions()
        io.inputs = ["/dev/fd/\(toSummaries[0])"]
        io.errorsPath = completion.errorsPath
        io.statsPath = completion.statsPath
        let middleSink = OutputSink(fd: toOutput[1])
        let middle = SummaryCompletionStage(
            options: completion, io: io, client: client, output: middleSink, diagnostics: diagnostics)
        let middleResult = Result { () throws(GRAError) in try middle.run() }
        try? middleSink.flush()
        close(toOutput[1])
        close(toSummaries[0])
        done.wait()

        // The first failure along the pipe explains the others (a bad input line closes the
        // pipe early; a closed stdout breaks the pipes upstream).
        let first1 = results.first!, last1 = results.last!
        if case .failure(let e) = first1, e != .brokenPipe { throw e }
        if case .failure(let e) = middleResult, e != .brokenPipe { throw e }
        if case .failure(let e) = last1 { throw e }
        if case .failure(let e) = middleResult { throw e }
        if case .failure(let e) = first1 { throw e }
        var summary = try! first1.get()
        let written = try! last1.get()
        summary.written = written.written
        summary.rejected += written.rejected
        for (k, v) in written.reasons { summary.reasons[k, default: 0] += v }
        if let note = rejects.defaultFileNote { summary.notes.append(note) }
        let completion = try! middleResult.get()
        diagnostics.info(
            """
            summaries: \(middle.completed) completed, \(completion.failed) failed, \
            \(completion.written - middle.completed) already had them
            """
        )
        summary.report(to: diagnostics)
        return (summary, completion, middle.completed)
    }
}

/// The two FormatStage threads' outcomes, handed back to the main thread.
private final class ThreadResults: @unchecked Sendable {
    private let lock = Mutex()
    private var _first: Result<FormatSummary, GRAError>?
    private var _last: Result<FormatSummary, GRAError>?
    func set(first r: Result<FormatSummary, GRAError>) { lock.locked { _first = r } }
    func set(last r: Result<FormatSummary, GRAError>) { lock.locked { _last = r } }
    var first: Result<FormatSummary, GRAError>? { lock.locked { _first } }
    var last: Result<FormatSummary, GRAError>? { lock.locked { _last } }
}
