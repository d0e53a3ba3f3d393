import ArgumentParser
import Foundation
import GRAKit

/// Where a record-at-a-time LLM stage's failed records and statistics go, and the output
/// order: the same flags in gra-map and every role stage.
public struct RunOutputOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            Write records that failed (request failed after retries, reply never parsed, field missing) here, \
            whole, as NDJSON with the reason. Default: ./gra-STAGE.errors.ndjson, made when the first one comes \
            (never overwriting a file); /dev/null drops them.
            """,
            valueName: "file"))
    public var errors: String?

    @Flag(name: .long, help: "Write records as they finish instead of in input order.")
    public var unordered = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write a JSON summary (counts; per model: requests, cache hits, retries, tokens, latency p50/p95) here.",
            valueName: "file"))
    public var stats: String?

    @Flag(
        name: .long,
        help:
            """
            Send nothing: write the requests the stage would send to stdout as NDJSON ({stage, where, model, \
            cached, cache_key, request}). Replies in the cache are used, so the requests that follow them are \
            listed too.
            """
    )
    public var dryRun = false

    public init() {}

    /// The stage's I/O options: the input settings with these.
    public func io(_ input: InputOptions) -> StageIOOptions {
        var io = input.ioOptions
        io.errorsPath = errors
        io.unordered = unordered
        io.statsPath = stats
        io.dryRun = dryRun
        return io
    }
}
