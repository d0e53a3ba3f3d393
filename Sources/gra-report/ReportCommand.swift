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

            Exit status: 0 success, 64 usage error, 65 a run file is not what gra writes, 66 the \
            directory is not a run directory or a file cannot be read, 74 I/O error.
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

    @Flag(name: .shortAndLong, help: "Print nothing on stderr but errors.")
    var quiet = false

    func run() throws {
        let diagnostics = Diagnostics(tool: "gra-report", quiet: quiet)
        try StageRunner.run(diagnostics) { () throws(GRAError) -> Int32 in
            var isDirectory: ObjCBool = false
            let runDirectory =
                inputs.count == 1 && FileManager.default.fileExists(atPath: inputs[0], isDirectory: &isDirectory)
                    && isDirectory.boolValue ? inputs[0] : nil
            let html = output ?? (runDirectory.map { $0 + "/report.html" } ?? "report.html")
            let summary = json ?? (runDirectory.map { $0 + "/report.json" } ?? "report.json")
            let report: RunReport
            if let runDirectory {
                report = try RunReport.load(runDirectory: runDirectory)
            } else {
                try OutputGuard.check(
                    inputs: inputs, outputs: [.init("--output", html), .init("--json", summary)], stdoutIsOutput: false)
                report = try RunReport.load(files: inputs)
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
