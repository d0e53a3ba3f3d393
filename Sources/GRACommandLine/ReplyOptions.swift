import ArgumentParser
import Foundation
import GRAKit

/// How structured replies are asked for and checked: the same two flags in every tool that
/// parses replies (gra-map, gra-format --complete-summaries, the role stages), so their help
/// cannot drift apart.
public struct ReplyOptions: ParsableArguments {
    @Flag(
        name: .long,
        help:
            """
            Do not send JSON schemas as response_format (for servers that reject it); replies are still parsed \
            and checked strictly.
            """
    )
    public var noResponseFormat = false

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Times a reply that is not the JSON asked for (or is out of range) is re-asked before the record fails.",
            valueName: "n"))
    public var parseRetries: Int = 2

    public init() {}

    public func validate() throws {
        guard parseRetries >= 0 else { throw ValidationError("--parse-retries must be ≥ 0") }
    }
}
