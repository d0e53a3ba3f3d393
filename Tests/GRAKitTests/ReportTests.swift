import Foundation
import Testing

@testable import GRAKit

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The charts and the statistics behind gra-report: SVG that an XML parser reads, with bars
/// and points where the numbers put them; the funnel, reasons, scores and reviewer
/// calibration of a run directory written here with known contents.
@Suite("gra-report: charts and statistics")
struct ReportTests {
    func xml(_ svg: String) throws -> XMLElement {
        try XMLDocument(xmlString: svg, options: []).rootElement()!
    }

    /// An attribute's value (swift-corelibs-foundation's `attribute(forName:)` finds none under
    /// a default namespace, as SVG's).
    func attribute(_ e: XMLElement, _ name: String) -> String? {
        e.attributes?.first { $0.name == name }?.stringValue
    }

    func elements(_ root: XMLElement, _ name: String, class cls: String? = nil) -> [XMLElement] {
        var found: [XMLElement] = []
        func walk(_ e: XMLElement) {
            if e.name == name && (cls == nil || attribute(e, "class") == cls) { found.append(e) }
            for case let child as XMLElement in e.children ?? [] { walk(child) }
        }
        walk(root)
        return found
    }

    func number(_ e: XMLElement, _ attribute: String) -> Double {
        Double(self.attribute(e, attribute) ?? "") ?? .nan
    }

    @Test func barsAreXMLWithHeightsProportionalToTheValues() throws {
        let svg = SVGChart.bars(
            title: "Scores <by> model & round", categories: ["a<b", "c", "d"],
            series: [SVGChart.Series("m1", [10, 5, 0]), SVGChart.Series("m2", [2.5, 7.5, 20])], xLabel: "score",
            yLabel: "reviews")
        let root = try xml(svg)
        let bars = elements(root, "rect", class: "bar")
        #expect(bars.count == 6)
        // Series by series within each category: a(m1, m2), c(m1, m2), d(m1, m2).
        let heights = bars.map { number($0, "height") }
        #expect(abs(heights[0] / heights[2] - 2) < 0.01, "\(heights)")  // 10 vs 5
        #expect(heights[4] == 0)
        #expect(abs(heights[5] / heights[1] - 8) < 0.02, "\(heights)")  // 20 vs 2.5
        // Every bar stands on the same baseline.
        let bottoms = Set(bars.map { String(format: "%.0f", number($0, "y") + number($0, "height")) })
        #expect(bottoms.count == 1)
        // Title, axis labels, the legend for two series, escaped text, a tooltip per bar.
        #expect(elements(root, "title").first?.stringValue == "Scores <by> model & round")
        #expect(elements(root, "text", class: "x-label").first?.stringValue == "score")
        #expect(elements(root, "text", class: "y-label").first?.stringValue == "reviews")
        #expect(elements(root, "g", class: "legend-item").map { $0.stringValue ?? "" } == ["m1", "m2"])
        #expect(bars[0].stringValue == "m1, a<b: 10")
        #expect(svg.contains("a&lt;b") && !svg.contains("<script"))
        // The y axis reaches past the largest value, in round ticks.
        let ticks = elements(root, "text", class: "tick").compactMap { Double($0.stringValue ?? "") }
        #expect(ticks.contains(0) && ticks.contains(20))
    }

    @Test func oneSeriesHasNoLegend() throws {
        let root = try xml(
            SVGChart.bars(
                title: "t", categories: ["x"], series: [SVGChart.Series("only", [3])], xLabel: "x", yLabel: "y"))
        #expect(elements(root, "g", class: "legend-item").isEmpty)
        #expect(elements(root, "rect", class: "bar").count == 1)
    }

    @Test func scatterPutsPointsWhereTheyBelong() throws {
        let root = try xml(
            SVGChart.scatter(
                title: "map",
                groups: [SVGChart.PointGroup("seeds", [(0, 0), (10, 10)]), SVGChart.PointGroup("final", [(5, 5)])],
                xLabel: "PC1", yLabel: "PC2"))
        let points = elements(root, "circle", class: "point")
        #expect(points.count == 3)
        let (a, b, c) = (points[0], points[1], points[2])
        // (5, 5) halfway between (0, 0) and (10, 10), and y grows upwards.
        #expect(abs(number(c, "cx") - (number(a, "cx") + number(b, "cx")) / 2) < 0.2)
        #expect(abs(number(c, "cy") - (number(a, "cy") + number(b, "cy")) / 2) < 0.2)
        #expect(number(b, "cy") < number(a, "cy"))
        #expect(
            points.map { attribute($0, "fill") } == [
                SVGChart.palette[0], SVGChart.palette[0], SVGChart.palette[1]
            ])
    }

    @Test func ticksAreRoundAndCoverTheRange() {
        #expect(SVGChart.niceTicks(from: 0, to: 7.3) == [0, 2, 4, 6, 8])
        #expect(SVGChart.niceTicks(from: 0, to: 100) == [0, 20, 40, 60, 80, 100])
        #expect(SVGChart.niceTicks(from: -0.3, to: 0.45) == [-0.4, -0.2, 0, 0.2, 0.4, 0.6].map { $0 })
        let flat = SVGChart.niceTicks(from: 3, to: 3)
        #expect(flat.first! <= 3 && flat.last! >= 3 && flat.count >= 2)
        #expect(SVGChart.number(12) == "12" && SVGChart.number(0.12345) == "0.123")
    }

    // MARK: - Statistics

    /// One reviewed record: round 1 scores 8, 8, 8; round 2 scores 9, 9, 4 (mean 7.33, variance
    /// 5.56 > 2: a dispute whose outlier is m3's 4).
    static let review: JSONObject = {
        let text = #"""
            {"reviews":[{"model":"m1","round":1,"score":8},{"model":"m2","round":1,"score":8},\#
            {"model":"m3","round":1,"score":8},{"model":"m1","round":2,"score":9},{"model":"m2","round":2,"score":9},\#
            {"model":"m3","round":2,"score":4}],"min_score":7,"max_variance":2,"decision":"dispute"}
            """#
        return try! JSONParser.parse(text).objectValue!
    }()

    @Test func calibrationOfOneDispute() {
        var r = RunReport(directory: "x")
        r.countReviews(Self.review, decision: true)
        let m1 = r.calibration["m1"]!
        let m3 = r.calibration["m3"]!
        #expect(m1.reviews == 2 && m3.reviews == 2)
        #expect(abs(m1.meanOffset! - (0 + (9 - 22.0 / 3)) / 2) < 1e-9)
        #expect(abs(m3.meanOffset! - (0 + (4 - 22.0 / 3)) / 2) < 1e-9)
        // m1 voted accept (8 and 9 ≥ 7) like the final decision; m3 voted reject (4 < 7).
        #expect(m1.agreement == 1 && m3.agreement == 0)
        #expect(m1.disputes == 1 && m1.outliers == 0 && m3.outliers == 1 && m3.outlierRate == 1)
        #expect(r.scores[1] == [0, 0, 0, 0, 0, 0, 0, 3, 0, 0])
        #expect(r.scores[2] == [0, 0, 0, 1, 0, 0, 0, 0, 2, 0])
        #expect(r.scoresByModel["m3"]?[2] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        // Without a final decision (the record failed later) there is no vote to count.
        var undecided = RunReport(directory: "x")
        undecided.countReviews(Self.review, decision: nil)
        #expect(undecided.calibration["m1"]!.votes == 0 && undecided.calibration["m1"]!.agreement == nil)
    }

    @Test func aTiedDisputeHasNoOutlier() throws {
        let review = try JSONParser.parse(
            #"""
            {"reviews":[{"model":"a","round":1,"score":2},{"model":"b","round":1,"score":9}],\#
            "min_score":7,"max_variance":2}
            """#
        ).objectValue!
        var r = RunReport(directory: "x")
        r.countReviews(review, decision: false)
        #expect(r.calibration["a"]!.disputes == 0 && r.calibration["b"]!.outliers == 0)
    }

    @Test func reasonsGroupWithoutTheirNumbers() {
        #expect(
            RunReport.group("rejected by reviewers: response rejected in round 2: mean 3.33 < 7 with variance 0.22 ≤ 2")
                == "rejected by reviewers: response rejected in round 2")
        #expect(
            RunReport.group("rejected by the adjudicator (m5): wrong answer") == "rejected by the adjudicator (m5)")
    }

    /// A run directory written here: two seeds, three generated samples, one accepted by the
    /// reviewers, one by the adjudicator, one rejected, one error, one duplicate dropped.
    @Test func runDirectoryCounts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gra-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let round = dir.appendingPathComponent("round-1")
        try FileManager.default.createDirectory(at: round, withIntermediateDirectories: true)
        func write(_ name: String, _ lines: [String], in folder: URL? = nil) throws {
            try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: (folder ?? round).appendingPathComponent(name))
        }
        let review =
            #""review":{"reviews":[{"model":"m1","round":1,"score":9},{"model":"m2","round":1,"score":8}],"#
            + #""min_score":7,"max_variance":2,"decision":"accept"}"#
        try write(
            "seeds.ndjson",
            [
                #"{"id":"s1","domain":"math","instruction":"Seed one","output":"A"}"#,
                #"{"id":"s2","domain":"code","instruction":"Seed two","output":"B"}"#
            ], in: dir)
        try write(
            "generated.ndjson",
            ["g1", "g2", "g3"].map { #"{"id":"\#($0)","domain":"math","instruction":"x","response":"y"}"# })
        try write(
            "reviewed.ndjson",
            [
                #"{"id":"g1","gra":{\#(review)}}"#,
                #"{"id":"g2","gra":{"review":{"decision":"dispute"}}}"#,
                #"{"id":"g3","gra":{"review":{"decision":"reject"}}}"#
            ])
        try write("errors-generate.ndjson", [#"{"reason":"unparseable reply from m1 after 3 tries: x"}"#])
        try write(
            "accepted.ndjson",
            [
                #"{"id":"g1","domain":"math","instruction":"Inst","response":"Resp","gra":{\#(review)}}"#,
                #"{"id":"g2","domain":"math","instruction":"I2","response":"R2","#
                    + #""gra":{"adjudication":{"decision":"accept"}}}"#
            ])
        try write(
            "rejects.ndjson",
            [
                #"{"id":"g3","reason":"rejected by reviewers: instruction rejected in round 1: mean 2 < 7","#
                    + #""record":{"id":"g3"}}"#
            ])
        try write("dedup.rejects.ndjson", [#"{"id":"g2","method":"minhash"}"#])
        try write("kept.ndjson", [#"{"id":"g1"}"#])
        try write(
            "stats-review.json",
            [
                #"{"models":{"m1":{"requests":10,"cache_hits":2,"retries":1,"failures":0,"prompt_tokens":500,"#
                    + #""completion_tokens":50,"latency_p50_s":0.5,"latency_p95_s":0.9,"unparsed_replies":3}}}"#
            ])
        try write("dataset.ndjson", [#"{"id":"g1","domain":"math","instruction":"Inst","response":"Resp"}"#], in: dir)

        let r = try RunReport.load(runDirectory: dir.path)
        #expect(r.seeds == 2 && r.final == 1 && r.rounds.count == 1)
        let one = r.rounds[0]
        #expect(one.seeds == 2 && one.generated == 3 && one.generateErrors == 1)
        #expect(one.reviewAccept == 1 && one.reviewDispute == 1 && one.reviewReject == 1)
        #expect(one.accepted == 2 && one.acceptedByAdjudicator == 1 && one.rejectedByReviewers == 1)
        #expect(one.dedupDropped == ["minhash": 1] && one.kept == 1)
        #expect(
            r.reasons == [
                "rejected by reviewers: instruction rejected in round 1": 1, "duplicate (minhash)": 1,
                "gra-generate error: unparseable reply from m1 after 3 tries": 1
            ])
        #expect(r.seedDomains == ["math": 1, "code": 1] && r.finalDomains == ["math": 1])
        // "Inst" and "Seed one" are under 50 characters: the first length bin.
        #expect(r.lengths["final instruction"]?.first == 1 && r.lengths["seeds instruction"]?.first == 2)
        #expect(
            r.costs["m1"]
                == {
                    var c = RunReport.Cost()
                    (c.requests, c.cacheHits, c.retries, c.promptTokens, c.completionTokens) = (10, 2, 1, 500, 50)
                    return c
                }())
        #expect(r.calibration["m1"]!.unparsed == 3 && r.calibration["m1"]!.requests == 12)
        #expect(r.calibration["m1"]!.agreement == 1)
        #expect(r.latencies.first?.p95 == 0.9)
        #expect(r.samples.map(\.kind) == ["accepted", "disputed", "rejected"])

        // The page and the summary carry the same numbers.
        let summary = ReportPage.summary(r)
        let rounds = summary["rounds"]?.arrayValue?.first?.objectValue
        #expect(rounds?["kept"]?.doubleValue == 1 && rounds?["errors"]?.doubleValue == 1)
        let html = ReportPage.html(r, generatedAt: "now")
        for id in ["funnel", "reasons", "scores", "calibration", "domains", "lengths", "cost", "samples"] {
            #expect(html.contains("id=\"\(id)\""), "section \(id)")
        }
        // Self-contained: nothing to fetch, nothing to run.
        for outside in ["<script", "src=", "<link", "url(", "@import"] {
            #expect(!html.contains(outside), "\(outside)")
        }
    }

    @Test func aDirectoryThatIsNoRunIsNamed() {
        #expect(throws: GRAError.self) { try RunReport.load(runDirectory: "/nonexistent/run") }
        do {
            _ = try RunReport.load(runDirectory: FileManager.default.temporaryDirectory.path)
            Issue.record("loaded a directory without seeds.ndjson")
        } catch {
            #expect(error.description.contains("no seeds.ndjson"))
        }
    }

    /// Points at ±3, ±2 and ±1 on three axes: the variance is 18, 8 and 2 of 28, the first
    /// component is the first axis and the second the second.
    @Test func principalComponentsOfKnownData() {
        let rows: [[Float]] = [[3, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]].map {
            $0.map { $0 + 5 }  // an offset the centring removes
        }
        let (points, explained) = EmbeddingMap.principalComponents(rows)
        #expect(abs(explained[0] - 18.0 / 28) < 1e-9 && abs(explained[1] - 8.0 / 28) < 1e-9, "\(explained)")
        #expect(abs(abs(points[0].0) - 3) < 1e-9 && abs(points[0].1) < 1e-9, "\(points)")
        #expect(abs(points[2].0) < 1e-9 && abs(abs(points[2].1) - 2) < 1e-9, "\(points)")
        #expect(abs(points[4].0) < 1e-9 && abs(points[4].1) < 1e-9, "\(points)")
        // The same input, the same map.
        #expect(EmbeddingMap.principalComponents(rows).points.elementsEqual(points) { $0 == $1 })
    }

    @Test func textSampleIsBoundedUniformAndRepeatable() {
        var a = TextSample(limit: 100)
        var b = TextSample(limit: 100)
        for i in 0..<10_000 {
            a.add(String(i))
            b.add(String(i))
        }
        #expect(a.texts.count == 100 && a.seen == 10_000 && a.texts == b.texts)
        let mean = a.texts.compactMap { Double($0) }.reduce(0, +) / 100
        #expect(abs(mean - 5_000) < 1_000, "mean index \(mean): not a uniform sample")
        var few = TextSample(limit: 100)
        for i in 0..<7 { few.add(String(i)) }
        #expect(few.texts == (0..<7).map(String.init))
    }
}

/// IFD in the report: summary statistics, histogram bins and the change of the mean.
@Suite struct ReportIFDTests {
    @Test func summaryHistogramAndChange() throws {
        var r = RunReport(directory: "x")
        #expect(r.ifdSummary("seeds") == nil && r.ifdChangePercent == nil)
        r.ifd["seeds"] = [0.5, 0.9, 0.7, 0.05]
        r.ifd["final"] = [0.8, 1.0, 2.5]
        let seeds = try #require(r.ifdSummary("seeds"))
        #expect(seeds.count == 4 && abs(seeds.mean - 0.5375) < 1e-12 && abs(seeds.median - 0.6) < 1e-12)
        let final = try #require(r.ifdSummary("final"))
        #expect(final.median == 1.0 && abs(final.mean - 4.3 / 3) < 1e-12)
        #expect(abs(r.ifdChangePercent! - ((4.3 / 3) / 0.5375 - 1) * 100) < 1e-9)
        // Bins of 0.1 from 0 up to 1.5, then the rest: 0.05 in the first, 0.5 in [0.5, 0.6), 2.5 in the last.
        let h = r.ifdHistogram("seeds")
        #expect(h.count == 16 && h[0] == 1 && h[5] == 1 && h[7] == 1 && h[9] == 1 && h.reduce(0, +) == 4)
        let f = r.ifdHistogram("final")
        #expect(f[8] == 1 && f[10] == 1 && f[15] == 1)
        let json = ReportPage.summary(r)
        let ifd = try #require(json["ifd"]?.objectValue)
        #expect(JSONWriter.string(ifd["change_percent"]!) == String(format: "%.4f", r.ifdChangePercent!))
        #expect(ifd["seeds"]?.objectValue?["scored"] == .integer(4))
        let page = ReportPage.html(r, generatedAt: "now")
        #expect(page.contains("The final data is +166.67% harder than the seeds (mean)."), "\(page)")
    }

    @Test func noScoresNoSection() {
        let r = RunReport(directory: "x")
        #expect(ReportPage.summary(r)["ifd"] == .null)
        #expect(ReportPage.html(r, generatedAt: "now").contains("No IFD scores"))
    }
}

/// gra-review --dimensions in the report: the means per round and domain, and the weakest.
@Suite struct ReportDimensionsTests {
    func review(_ json: String) throws -> JSONObject {
        try #require(try JSONParser.parse(Array(json.utf8)).objectValue)
    }

    @Test func meansAndTheWeakestWithTies() throws {
        var r = RunReport(directory: "x")
        r.countReviews(
            try review(
                #"{"reviews":[{"model":"a","round":2,"score":8,"#
                    + #""dimensions":{"clarity":4,"coherence":4,"correctness":6}},"#
                    + #"{"model":"b","round":2,"score":8,"dimensions":{"clarity":6,"coherence":5,"correctness":2}},"#
                    + #"{"model":"c","round":2,"score":8}]}"#), decision: nil, domain: "math")
        #expect(r.dimensions[2]?["math"]?["clarity"]?.value == 5)
        #expect(r.dimensions[2]?["math"]?["correctness"]?.value == 4)
        // correctness 4, coherence 4.5, clarity 5: correctness.
        #expect(r.weakestDimension(round: 2, domain: "math")?.name == "correctness")
        var tie = RunReport(directory: "x")
        tie.countReviews(
            try review(#"{"reviews":[{"model":"a","round":1,"score":5,"dimensions":{"relevance":3,"clarity":3}}]}"#),
            decision: nil)
        // A tie goes to the first in the schema's order: clarity before relevance.
        #expect(tie.weakestDimension(round: 1, domain: "(none)")?.name == "clarity")
        #expect(ReportPage.summary(tie)["dimensions"]?.objectValue?["round_1"] != nil)
        #expect(ReportPage.summary(RunReport(directory: "y"))["dimensions"] == .null)
    }
}
