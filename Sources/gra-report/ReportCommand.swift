import ArgumentParser
import Foundation
import GRACommandLine
import GRAKit

@main
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gra-report",
        abstract: "Show a run: one self-contained HTML page and a JSON summary with the same numbers.",
        discussion: """
            Reads a run directory written by bin/gra-pipeline (seeds.ndjson, round-N/ with each \
            stage's output, rejects, errors and --stats, dataset.ndjson, stats.json) and writes \
            RUN-DIR/report.html (or --output FILE): the funnel per round, the reasons for rejections, \
            drops and errors, review score histograms overall and per reviewer model, each \
            reviewer's calibration (offset from its committees, agreement with the final \
            decisions, how often it was a dispute's outlier, how often its replies did not parse), \
            the domain mix and lengths of seeds and final data, requests, tokens and latency per \
            model, and a few accepted, rejected and disputed samples with their reviews. The page \
            has inline SVG charts and CSS, no script and no outside resource: it opens offline. \
            --json FILE (default RUN-DIR/report.json) holds the same numbers. Nothing is sent anywhere.

            With FILEs instead of a run directory it reads gra NDJSON (stage outputs and the \
            entries of errors and rejects files, each record once) as one set and writes \
            report.html and report.json in the current directory (man gra-report(1), FILES).

            --embed NAME@URL adds the coverage map: up to --map-points instructions (with their \
            input, as gra-dedup --method semantic embeds them) of the seeds, the generated samples \
            and the dataset, embedded through the response cache (one entry per text, so the \
            embeddings a semantic gra-dedup left there are used) and projected onto their first two \
            principal components.

            Exit status: 0 success, 64 usage error, 65 a run file is not what gra writes, 66 the \
            directory is not a run directory or a file cannot be read, 69 the embeddings for the \
            map could not be had, 74 I/O error.
            """,
        version: GRAVersion.string
    )

    @Argument(
        help: ArgumentHelp(
            "A run directory written by bin/gra-pipeline --run DIR, or gra NDJSON files ('-': standard input).",
            valueName: "run-dir | file"))
    var inputs: [String]

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp(
            "Write the HTML page here (default: RUN-DIR/report.html, or report.html).", valueName: "file"))
    var output: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write the JSON summary here (default: RUN-DIR/report.json, or report.json).", valueName: "file"))
    var json: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Embed the instructions with this embeddings model (NAME@BASE_URL) and draw the coverage map.",
            valueName: "name@url"))
    var embed: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Instructions per set (seeds, generated, final) on the map: a uniform sample.", valueName: "n"))
    var mapPoints = 1000

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Response cache for the embeddings (default: RUN-DIR/cache when it exists, else the stages' default).",
            valueName: "dir"))
    var cache: String?

    @Flag(name: .shortAndLong, help: "Print nothing on stderr but errors.")
    var quiet = false

    func validate() throws {
        guard mapPoints > 0 else { throw ValidationError("--map-points must be at least 1") }
    }

    /// Embeds the sampled instructions (through the response cache) and projects them.
    func coverageMap(
        _ report: RunReport, embed: String, runDirectory: String?, _ diagnostics: Diagnostics
    ) throws(GRAError) -> EmbeddingMap {
        let environment = ProcessInfo.processInfo.environment
        var pool = ModelPool()
        try pool.add(spec: embed, defaultBaseURL: environment["OPENAI_BASE_URL"])
        let runCache = runDirectory.map { $0 + "/cache" }.flatMap {
            FileManager.default.fileExists(atPath: $0) ? $0 : nil
        }
        let store = try ResponseCache(
            directory: cache ?? runCache ?? ResponseCache.defaultDirectory(environment: environment)
        ) { diagnostics.warn($0) }
        var retry = RetryPolicy()
        if let base = environment["GRA_RETRY_BASE_DELAY"], let delay = Double(base) { retry.baseDelay = delay }
        let client = LLMClient(
            http: HTTPClient(maxInFlight: 8), cache: store, retry: retry, environment: environment,
            onRetry: { message, key in diagnostics.info(message, fold: key) },
            onWarning: { diagnostics.warn($0) })
        defer { client.http.shutdown() }
        let order = report.fromFiles ? ["records"] : ["seeds", "generated", "final"]
        return try EmbeddingMap.make(
            sets: order.compactMap { name in report.mapTexts[name].map { (name, $0.texts) } }, model: pool.models[0],
            client: client)
    }

    func run() throws {
        let diagnostics = Diagnostics(tool: "gra-report", quiet: quiet)
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            var isDirectory: ObjCBool = false
            let runDirectory =
                inputs.count == 1 && FileManager.default.fileExists(atPath: inputs[0], isDirectory: &isDirectory)
                    && isDirectory.boolValue ? inputs[0] : nil
            let html = output ?? (runDirectory.map { $0 + "/report.html" } ?? "report.html")
            let summary = json ?? (runDirectory.map { $0 + "/report.json" } ?? "report.json")
            let points = embed == nil ? 0 : mapPoints
            var report: RunReport
            if let runDirectory {
                report = try RunReport.load(runDirectory: runDirectory, mapPoints: points)
            } else {
                try OutputGuard.check(
                    inputs: inputs, outputs: [.init("--output", html), .init("--json", summary)], stdoutIsOutput: false)
                report = try RunReport.load(files: inputs, mapPoints: points)
            }
            if let embed {
                report.map = try coverageMap(report, embed: embed, runDirectory: runDirectory, diagnostics)
            }
            let stamp = ISO8601DateFormatter().string(from: Date())
            try ReportPage.write(ReportPage.html(report, generatedAt: stamp), to: html)
            try ReportPage.write(JSONWriter.string(.object(ReportPage.summary(report))) + "\n", to: summary)
            diagnostics.info(
                """
                \(ReportPage.meta(report)); wrote \(html) and \(summary)
                """
            )
            return 0
        }
    }
}
