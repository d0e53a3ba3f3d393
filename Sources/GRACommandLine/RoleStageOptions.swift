import ArgumentParser
import Foundation
import GRAKit

/// Flags the GRA role stages (generate, review, adjudicate) share: the prompts and the role
/// seed.
public struct RoleStageOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            Prompt files: a directory whose NAME.txt files replace the built-in ones, or 'en' (default) / 'zh' \
            for a built-in set.
            """,
            valueName: "dir"))
    public var prompts: String?

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            """
            Seed of the role assignment (and of few-shot draws): the same seed gives the same roles and, from the \
            cache, the same output.
            """,
            valueName: "n"))
    public var seed: Int = 0

    public init() {}

    public func promptSet() throws(GRAError) -> PromptSet { try PromptSet(prompts) }

    /// How requests are made: sampling parameters and the reply settings.
    public func requestMaker(_ sampling: SamplingOptions, _ replies: ReplyOptions) -> RoleRequestMaker {
        var maker = RoleRequestMaker()
        maker.parameters = sampling.parameters()
        maker.sendResponseFormat = !replies.noResponseFormat
        maker.parseRetries = replies.parseRetries
        return maker
    }
}
