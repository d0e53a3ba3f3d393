import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

extension RecordFormat: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

@main
struct FormatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-format",
        abstract: "Convert instruction-tuning records between gra, Alpaca, ShareGPT and OpenAI messages form.",
        discussion: """
            Reads NDJSON (or a JSON array, as Alpaca files are) from the FILEs or standard input \
            and writes one record per line to standard output, in input order. The input format \
            is detected per record unless --from is given: 'messages' → openai, 'conversations' → \
            sharegpt, 'instruction' with 'response' → gra, with 'output' → alpaca.

            Text is unified: CRLF → LF, Unicode NFC, whitespace-only lines emptied and runs of \
            blank lines collapsed outside ``` code fences, leading/trailing whitespace trimmed. \
            Records that are empty after that, whose response ends inside an open code fence \
            (truncated), or that cannot be read as their format go to --rejects FILE (or are \
            reported on stderr). Fields a format does not use are carried over unchanged.

            --complete-summaries fills in missing `keywords`/`summary` with one model call per \
            record (gra-generate's knowledge-extraction prompt and code), so accepted output can \
            seed the next GRA round; records whose call failed go to --errors. Without that flag \
            gra-format makes no network call, and the model, prompt and cache options are unused.

            Exit status: 0 success (also when the reader of stdout goes away), 64 usage error, \
            65 malformed input (stops at the bad line unless --skip-bad-input), 74 I/O error, \
            75 some summaries could not be completed (see --errors), 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(
        name: .long,
        help: ArgumentHelp("Input format (default: detect per record).", valueName: "gra|alpaca|sharegpt|openai"))
    var from: RecordFormat?

    @Option(name: .long, help: ArgumentHelp("Output format.", valueName: "gra|alpaca|sharegpt|openai"))
    var to: RecordFormat = .gra

    @Flag(name: .long, help: "Write one JSON array instead of JSON lines.")
    var array = false

    @Flag(
        name: .long,
        help:
            """
            Write a training file: only the fields the target format defines (alpaca: instruction, input, output, \
            system, history, tools; sharegpt: conversations, tools; openai: messages, tools), no 'gra' metadata \
            and no other field unless --keep names it. With --to gra: drop only 'gra'.
            """
    )
    var stripMeta = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --strip-meta: carry these fields anyway (comma-separated, e.g. id,source).", valueName: "field,..."))
    var keep: String?

    @Flag(name: .long, help: "Keep texts exactly as read (no trimming, NFC or blank-line folding).")
    var noNormalize = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write rejected records (and, with --skip-bad-input, bad lines) here as NDJSON with the reason.",
            valueName: "file"))
    var rejects: String?

    @Flag(
        name: .long,
        help: "Fill in missing keywords/summary with one model call per record (for seeding the next GRA round).")
    var completeSummaries = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            With --complete-summaries: prompt files (a directory whose extract.txt replaces the built-in one, or \
            en / zh).
            """,
            valueName: "dir"))
    var prompts: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --complete-summaries: write records whose extraction failed here, as NDJSON with the reason.",
            valueName: "file"))
    var errors: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --complete-summaries: write a JSON summary of the requests (per model) here.", valueName: "file"))
    var stats: String?

    @OptionGroup(title: "Summary completion: replies")
    var replies: ReplyOptions

    @OptionGroup(title: "Summary completion: sampling")
    var sampling: SamplingOptions

    @OptionGroup(title: "Summary completion: models, concurrency and cache")
    var client: ClientOptions

    @OptionGroup(title: "Input")
    var input: InputOptions

    func validate() throws {
        if keep != nil && !stripMeta { throw ValidationError("--keep only applies with --strip-meta") }
        if !completeSummaries {
            let given = [("--errors", errors != nil), ("--prompts", prompts != nil), ("--stats", stats != nil)].filter(
                \.1
            ).map(\.0)
            if let first = given.first { throw ValidationError("\(first) only applies with --complete-summaries") }
        }
    }

    func run() throws {
        Signals.install()
        var options = FormatOptions()
        options.from = from
        options.to = to
        options.array = array
        options.stripMeta = stripMeta
        options.keep = Set(
            (keep ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            })
        options.normalizeText = !noNormalize
        options.io = input.ioOptions
        options.io.rejectsPath = rejects
        let diagnostics = Diagnostics(tool: "gra-format", quiet: input.quiet)
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            guard completeSummaries else {
                _ = try FormatStage(options: options, output: OutputSink(fd: 1), diagnostics: diagnostics).run()
                return GRAExit.ok
            }
            let environment = ProcessInfo.processInfo.environment
            let promptSet = try PromptSet(prompts)
            try promptSet.require([.extract], for: "gra-format --complete-summaries")
            let setup = try StageSetup(client, diagnostics: diagnostics, environment: environment)
            defer { setup.shutdown() }
            var completion = SummaryCompletionOptions(pool: setup.pool, prompts: promptSet)
            completion.requests.parameters = sampling.parameters()
            completion.requests.sendResponseFormat = !replies.noResponseFormat
            completion.requests.parseRetries = replies.parseRetries
            completion.errorsPath = errors
            completion.statsPath = stats
            setup.checkModels(setup.pool.models, diagnostics)
            let run = try SummaryCompletionStage.formatCompletingSummaries(
                format: options, completion: completion, client: setup.client,
                output: OutputSink(fd: 1), diagnostics: diagnostics)
            return run.1.exitStatus
        }
    }
}
