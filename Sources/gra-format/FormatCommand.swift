import ArgumentParser
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

            Exit status: 0 success (also when the reader of stdout goes away), 64 usage error, \
            65 malformed input (stops at the bad line unless --skip-bad-input), 74 I/O error, \
            130 interrupted.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Input format (default: detect per record).", valueName: "gra|alpaca|sharegpt|openai"))
    var from: RecordFormat?

    @Option(name: .long, help: ArgumentHelp("Output format.", valueName: "gra|alpaca|sharegpt|openai"))
    var to: RecordFormat = .gra

    @Flag(name: .long, help: "Write one JSON array instead of JSON lines.")
    var array = false

    @Flag(name: .long, help: "Drop the 'gra' metadata object (for training files).")
    var stripMeta = false

    @Flag(name: .long, help: "Keep texts exactly as read (no trimming, NFC or blank-line folding).")
    var noNormalize = false

    @Option(name: .long, help: ArgumentHelp("Write rejected records (and, with --skip-bad-input, bad lines) here as NDJSON with the reason.", valueName: "file"))
    var rejects: String?

    @Flag(name: .long, help: "Report malformed input lines and go on instead of stopping with exit 65.")
    var skipBadInput = false

    @Option(name: .long, help: ArgumentHelp("Longest input line accepted, in bytes.", valueName: "n"))
    var maxLineBytes: Int = LineReader.defaultMaxLineBytes

    @Option(name: .long, help: ArgumentHelp("Handle only shard i of n (by a stable hash of the record id); the n outputs concatenate to the whole.", valueName: "i/n"))
    var shard: String?

    @Flag(name: [.short, .long], help: "Print no summary on stderr (warnings and errors still appear).")
    var quiet = false

    @Argument(help: ArgumentHelp("Input files ('-' or none: standard input).", valueName: "file"))
    var files: [String] = []

    func validate() throws {
        guard maxLineBytes > 0 else { throw ValidationError("--max-line-bytes must be positive") }
        if let shard { do { _ = try Shard(shard) } catch { throw ValidationError(error.description) } }
    }

    func run() throws {
        Signals.install()
        var options = FormatOptions()
        options.from = from
        options.to = to
        options.array = array
        options.stripMeta = stripMeta
        options.normalizeText = !noNormalize
        options.rejectsPath = rejects
        options.skipBadInput = skipBadInput
        options.maxLineBytes = maxLineBytes
        options.inputs = files
        options.quiet = quiet
        options.shard = try shard.map { text throws(GRAError) in try Shard(text) }
        let diagnostics = Diagnostics(tool: "gra-format", quiet: quiet)
        let stage = FormatStage(options: options, output: OutputSink(fd: 1), diagnostics: diagnostics)
        do {
            let s = try stage.run()
            var line = "\(s.read) records read, \(s.written) written, \(s.rejected) rejected"
            if !s.reasons.isEmpty {
                line += " (" + s.reasons.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
            }
            if s.badInput > 0 { line += ", \(s.badInput) bad input lines skipped" }
            if s.otherShards > 0 { line += ", \(s.otherShards) left to other shards" }
            diagnostics.info(line)
        } catch {
            if error == .brokenPipe { throw ExitCode(0) }
            if error != .interrupted { diagnostics.error(error.description) }
            throw ExitCode(error.exitCode)
        }
    }
}
