import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

@main
struct ReviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-review",
        abstract: "GRA's reviewers: score each sample in two rounds and decide accept, reject or dispute.",
        discussion: """
            For each record (instruction, optional input, response; `output` is read as \
            `response`), --reviewers K models from the pool score it from 1 to 10 with a comment: \
            round 1 judges the instruction (reasonable, clear, answerable, self-contained), round 2 \
            the response (correct, relevant, complete, well written). Reviewers are drawn per \
            record by a hash of its id and --seed, never the record's own generator \
            (gra.origin.generator) unless the pool is too small (then a warning says which rule \
            was relaxed). Replies are parsed strictly: a score outside 1-10 or not a number is \
            re-asked, then an error, never clamped or guessed.

            Decision per round, from the mean and the population variance of the K scores: mean \
            < --min-score with variance <= --max-variance rejects (an instruction rejected in \
            round 1 skips round 2); variance > --max-variance in any round is a dispute (for \
            gra-adjudicate); otherwise accept. Every record is written with gra.review (roles, \
            each review, per-round mean and variance, decision, reason); nothing is filtered here. \
            --rescore re-decides from the stored scores with new thresholds without asking any \
            model. --dimensions has each reviewer also score six dimensions (correctness, clarity, \
            completeness, relevance, coherence, ethicality), stored per review for gra-report. \
            --neighbours FILE shows round 2 each sample's --neighbour-count nearest samples of FILE \
            (MinHash over instruction and input, as gra-dedup compares them) and asks for a novelty \
            score (1 a near copy, 10 new) as part of the response's score, stored per review.

            Exit status: 0 success, 64 usage error, 65 malformed input, 74 I/O error, 75 some \
            records failed (see --errors; rerun to retry them, answered requests come from the \
            cache), 130 interrupted.
            """,
        version: GRAVersion.string
    )

    @Option(
        name: .long, parsing: .unconditional, help: ArgumentHelp("Reviewers per record (default 3).", valueName: "k"))
    var reviewers: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "A round whose mean score is below this (with variance at most --max-variance) rejects.", valueName: "x"))
    var minScore: Double = 7

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("A round whose score variance exceeds this is a dispute.", valueName: "x"))
    var maxVariance: Double = 2

    @Flag(
        name: .long,
        help: "Re-decide from the scores stored in gra.review with the thresholds given; no request is sent.")
    var rescore = false

    @Flag(
        name: .long,
        help: """
            Rubric mode: each reviewer also scores correctness, clarity, completeness, relevance, coherence and \
            ethicality (1-10, stored in gra.review.reviews[].dimensions); the decision still uses the overall score.
            """)
    var dimensions = false

    @Option(
        name: .long, parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            """
            Samples already in the dataset (NDJSON: seeds, earlier rounds' kept samples; repeatable): round 2 \
            shows each sample its nearest ones among them and asks for a novelty score too.
            """,
            valueName: "file"))
    var neighbours: [String] = []

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("Neighbours shown per sample with --neighbours (default 3).", valueName: "k"))
    var neighbourCount = 3

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Shingles of the neighbour similarity: word:K or char:K (default word:1).", valueName: "spec"))
    var neighbourShingle = "word:1"

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Find neighbours by this embeddings model (a pool name, or NAME@URL) instead of MinHash.",
            valueName: "name"))
    var neighbourModel: String?

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
        if let reviewers, reviewers <= 0 { throw ValidationError("--reviewers must be positive") }
        if neighbourCount <= 0 { throw ValidationError("--neighbour-count must be positive") }
        if neighbourModel != nil && neighbours.isEmpty {
            throw ValidationError("--neighbour-model needs --neighbours FILE: the samples to find neighbours among")
        }
        if rescore && !neighbours.isEmpty {
            throw ValidationError("--rescore asks no reviewer: --neighbours has no effect")
        }
        if rescore && dimensions {
            throw ValidationError("--rescore asks no reviewer: the stored dimensions are kept as they are")
        }
        if rescore && reviewers != nil {
            throw ValidationError(
                "--rescore asks no reviewer: it re-decides from the stored scores, so --reviewers has no effect")
        }
        guard (1...10).contains(minScore) else { throw ValidationError("--min-score must be between 1 and 10") }
        guard maxVariance >= 0 else { throw ValidationError("--max-variance must be ≥ 0") }
    }

    func run() throws {
        Signals.install()
        let diagnostics = Diagnostics(tool: "gra-review", quiet: input.quiet)
        let environment = ProcessInfo.processInfo.environment
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            let prompts = try roles.promptSet()
            if !rescore {
                try prompts.require(
                    dimensions
                        ? [.reviewInstructionDimensions, .reviewResponseDimensions]
                        : [.reviewInstruction, .reviewResponse],
                    for: "gra-review")
            }
            let thresholds = ReviewRule.Thresholds(minScore: minScore, maxVariance: maxVariance)
            if rescore {
                // No model is asked: no pool, no server, no cache needed.
                var options = ReviewOptions(pool: ModelPool(), prompts: prompts)
                options.thresholds = thresholds
                options.rescore = true
                options.io = outputs.io(input)
                let summary = try ReviewStage(
                    options: options, client: nil, output: OutputSink(fd: 1), diagnostics: diagnostics
                ).run()
                return summary.exitStatus
            }
            let setup = try StageSetup(client, diagnostics: diagnostics, environment: environment)
            defer { setup.shutdown() }
            var options = ReviewOptions(pool: setup.pool, prompts: prompts)
            options.reviewers = reviewers ?? 3
            options.dimensions = dimensions
            if !neighbours.isEmpty {
                let spec: ShingleSpec
                do { spec = try ShingleSpec(neighbourShingle) } catch {
                    throw GRAError.usage(
                        "\(error)".replacingOccurrences(of: "--shingle", with: "--neighbour-shingle"))
                }
                let index = try NeighbourIndex.load(neighbours, shingle: spec)
                if let neighbourModel {
                    let model = try setup.pool.model(spec: neighbourModel, environment: environment)
                    if !outputs.dryRun {
                        try index.embed(model: model, client: setup.client)
                    } else {
                        // A dry run sends nothing: the neighbours' vectors only from the cache.
                        let cached = index.texts.map { setup.client.cachedEmbedding(model: model, input: $0) }
                        if !cached.isEmpty, cached.allSatisfy({ $0 != nil }) {
                            try index.setVectors(cached.map { $0! })
                        }
                    }
                    options.neighbourModel = model
                }
                options.neighbours = index
                options.neighbourCount = neighbourCount
                diagnostics.info(
                    """
                    neighbours: \(options.neighbours!.entries.count) samples from \
                    \(neighbours.joined(separator: ", "))\(neighbourModel.map { ", by \($0)" } ?? "")
                    """
                )
            }
            options.seed = roles.seed
            options.thresholds = thresholds
            options.roles = try RoleConfig.load(configPath: client.config, pool: setup.pool)
            options.requests = roles.requestMaker(sampling, replies)
            options.io = outputs.io(input)
            if !outputs.dryRun { setup.checkModels(setup.pool.models, diagnostics) }
            let summary = try ReviewStage(
                options: options, client: setup.client, output: OutputSink(fd: 1), diagnostics: diagnostics
            ).run()
            return summary.exitStatus
        }
    }
}
