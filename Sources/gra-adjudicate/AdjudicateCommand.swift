import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

@main
struct AdjudicateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-adjudicate",
        abstract: "GRA's area chair: rule on disputed samples; write the accepted ones.",
        discussion: """
            Reads records reviewed by gra-review. Accepted records pass through untouched. \
            Records the reviewers rejected go to --rejects with their reason. Disputed records \
            go to an adjudicator model (the one gra.review.roles names, else one drawn from the \
            pool that is neither author nor reviewer) with the sample and every review; it \
            answers {decision accept|reject, score, rationale}, parsed strictly, stored in \
            gra.adjudication. Accepted ones are written to stdout, rejected ones to --rejects. \
            The end-of-run line on stderr counts accepted, rejected by reviewers, rejected by \
            the adjudicator, and errors.

            Every input record ends up on stdout, in the --rejects file or in the --errors file. \
            Exit status: 0 success, 64 usage error, 65 malformed input, 74 I/O error, 75 some \
            records failed (see --errors; rerun to retry them), 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            Write rejected records here (NDJSON: stage, id, reason, record). Default: \
            ./gra-adjudicate.rejects.ndjson, made when the first one comes (never overwriting a file); /dev/null \
            drops them.
            """,
            valueName: "file"))
    var rejects: String?

    @OptionGroup(title: "Roles and prompts")
    var roles: RoleStageOptions

    @OptionGroup(title: "Replies")
    var replies: ReplyOptions

    @OptionGroup(title: "Sampling")
    var sampling: SamplingOptions

    @OptionGroup(title: "Models, concurrency and cache")
    var client: ClientOptions

    @OptionGroup(title: "Input")
    var input: InputOptions

    @OptionGroup(title: "Failed records, statistics, dry run")
    var outputs: RunOutputOptions

    func run() throws {
        Signals.install()
        let diagnostics = Diagnostics(tool: "gra-adjudicate", quiet: input.quiet)
        let environment = ProcessInfo.processInfo.environment
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            let prompts = try roles.promptSet()
            try prompts.require([.adjudicate], for: "gra-adjudicate")
            let setup = try StageSetup(client, diagnostics: diagnostics, environment: environment)
            defer { setup.shutdown() }
            var options = AdjudicateOptions(pool: setup.pool, prompts: prompts)
            options.seed = roles.seed
            options.roles = try RoleConfig.load(configPath: client.config, pool: setup.pool)
            options.requests = roles.requestMaker(sampling, replies)
            options.io = outputs.io(input)
            options.io.rejectsPath = rejects
            if !outputs.dryRun { setup.checkModels(setup.pool.models, diagnostics) }
            let summary = try AdjudicateStage(
                options: options, client: setup.client, output: OutputSink(fd: 1), diagnostics: diagnostics
            ).run()
            return summary.exitStatus
        }
    }
}
