import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

@main
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-generate",
        abstract: "GRA's authors: write new instruction samples from seed records.",
        discussion: """
            For each seed (instruction, optional input, response; `output` is read as \
            `response`; a seed without id gets a content-hash id):

            1. Domain: the seed's `domain`, else --domain, else one classification call into \
            --domains (a label outside the set is a parse failure, not a new domain).
            2. Knowledge: the seed's `keywords` and `summary`, else one extraction call.
            3. Few-shot: --shots other seeds of the same domain, drawn reproducibly from a bounded \
            reservoir of the seeds read before this one.
            4. --per-seed N samples, each from a generator drawn from the pool (or the config's \
            roles.generators for the domain) by a hash of the sample id and --seed, asked for JSON \
            {instruction, input, response} (JSON schema via response_format) and parsed strictly.

            Each sample gets the id <seed id>.g<i>, the seed's other fields, and gra.origin \
            {seed, sample, generator, domain, round, shots, keywords, summary, prompt_version}. \
            A sample whose reply never parses is an error record, never half a sample. Every \
            request is cached (the sample index is part of the key): rerunning sends only what \
            never finished.

            Exit status: 0 success, 64 usage error, 65 malformed input, 74 I/O error, 75 some \
            samples failed (see --errors; rerun to retry them), 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("New samples per seed.", valueName: "n"))
    var perSeed: Int = 1

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("Same-domain examples shown to the generator.", valueName: "k"))
    var shots: Int = 2

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            """
            Seeds of a domain shown the same draw of examples, so their prompts share a prefix the server \
            caches (1: a new draw per seed).
            """,
            valueName: "n"))
    var shotReuse: Int = 16

    @Option(
        name: .long, help: ArgumentHelp("Domain of seeds that have none (no classification call).", valueName: "name"))
    var domain: String?

    @Option(name: .long, help: ArgumentHelp("Comma-separated domains seeds are classified into.", valueName: "list"))
    var domains: String = "math,code,reasoning,general"

    @Flag(
        name: .long,
        help:
            """
            Also write each seed (before its samples), marked gra.origin.is_seed, with its domain and extracted \
            keywords/summary.
            """
    )
    var keepSeeds = false

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("GRA round number, recorded in gra.origin.round.", valueName: "n"))
    var round: Int?

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

    func validate() throws {
        guard perSeed > 0 else { throw ValidationError("--per-seed must be positive") }
        guard shots >= 0 else { throw ValidationError("--shots must be 0 or more") }
        guard shotReuse >= 1 else { throw ValidationError("--shot-reuse must be 1 or more") }
        guard !domainList.isEmpty else { throw ValidationError("--domains must name at least one domain") }
    }

    private var domainList: [String] {
        domains.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() throws {
        Signals.install()
        let diagnostics = Diagnostics(tool: "gra-generate", quiet: input.quiet)
        let environment = ProcessInfo.processInfo.environment
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            let prompts = try roles.promptSet()
            try prompts.require([.classify, .extract, .generate], for: "gra-generate")
            let setup = try StageSetup(client, diagnostics: diagnostics, environment: environment)
            defer { setup.shutdown() }
            var options = GenerateOptions(pool: setup.pool, prompts: prompts)
            options.seed = roles.seed
            options.perSeed = perSeed
            options.shots = shots
            options.shotReuse = shotReuse
            options.domain = domain
            options.domains = domainList
            options.generatorsByDomain = try RoleConfig.load(configPath: client.config, pool: setup.pool)
                .generatorsByDomain
            options.keepSeeds = keepSeeds
            options.round = round
            options.requests = roles.requestMaker(sampling, replies)
            options.io = outputs.io(input)
            if !outputs.dryRun { setup.checkModels(setup.pool.models, diagnostics) }
            let summary = try GenerateStage(
                options: options, client: setup.client, output: OutputSink(fd: 1), diagnostics: diagnostics
            ).run()
            return summary.exitStatus
        }
    }
}
