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

            Exit status: 0 success, 64 usage error, 65 a run file is not what gra writes, 66 the \
            directory is not a run directory, 74 I/O error.
            """,
        version: GRAVersion.string
    )

    @Argument(help: ArgumentHelp("A run directory written by bin/gra-pipeline --run DIR.", valueName: "run-dir"))
    var runDirectory: String

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Write the HTML page here (default: RUN-DIR/report.html).", valueName: "file"))
    var output: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Write the JSON summary here (default: RUN-DIR/report.json).", valueName: "file"))
    var json: String?

    @Flag(name: .shortAndLong, help: "Print nothing on stderr but errors.")
    var quiet = false

    func run() throws {
        let diagnostics = Diagnostics(tool: "gra-report", quiet: quiet)
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            let report = try RunReport.load(runDirectory: runDirectory)
            let html = output ?? runDirectory + "/report.html"
            let summary = json ?? runDirectory + "/report.json"
            let stamp = ISO8601DateFormatter().string(from: Date())
            try ReportPage.write(ReportPage.html(report, generatedAt: stamp), to: html)
            try ReportPage.write(JSONWriter.string(.object(ReportPage.summary(report))) + "\n", to: summary)
            diagnostics.info(
                """
                \(report.rounds.count) round(s), \(report.seeds) seeds -> \(report.final) samples; \
                wrote \(html) and \(summary)
                """
            )
            return 0
        }
    }
}
