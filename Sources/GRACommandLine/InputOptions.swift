import ArgumentParser
import GRAKit

/// Flags every stage shares for reading its input: the files, the line cap, what to do with
/// malformed lines, `--shard`, and `--quiet`.
public struct InputOptions: ParsableArguments {
    @Flag(
        name: .long,
        help:
            """
            Report malformed input lines and go on instead of stopping with exit 65; each is kept whole in the \
            errors file (gra-format: the rejects file; gra-dedup: the rejects file when one is given).
            """
    )
    public var skipBadInput = false

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("Longest input line accepted, in bytes.", valueName: "n"))
    public var maxLineBytes: Int = LineReader.defaultMaxLineBytes

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Handle only shard i of n (by a stable hash of the record id); the n outputs concatenate to the whole.",
            valueName: "i/n"))
    public var shard: String?

    @Flag(name: [.short, .long], help: "No progress or summary on stderr (warnings and errors still appear).")
    public var quiet = false

    @Argument(help: ArgumentHelp("Input files ('-' or none: standard input).", valueName: "file"))
    public var files: [String] = []

    public init() {}

    public func validate() throws {
        guard maxLineBytes > 0 else { throw ValidationError("--max-line-bytes must be positive") }
        if let shard { do { _ = try Shard(shard) } catch { throw ValidationError(error.description) } }
    }

    /// These settings as a stage's I/O options (errors, rejects and stats paths left unset).
    public var ioOptions: StageIOOptions {
        var io = StageIOOptions()
        io.inputs = files
        io.skipBadInput = skipBadInput
        io.maxLineBytes = maxLineBytes
        io.shard = shardValue
        return io
    }

    /// The parsed `--shard` (already checked by `validate`).
    public var shardValue: Shard? { shard.flatMap { try? Shard($0) } }
}
