import Foundation

/// Writes a `RunReport` as one self-contained HTML page (inline CSS and SVG, no script, no
/// outside resource: it opens offline and prints) and as a JSON summary with the same numbers.
public enum ReportPage {
    // MARK: - JSON

    /// The report's numbers as JSON (man gra-report(1), SUMMARY).
    public static func summary(_ r: RunReport) -> JSONObject {
        var root = JSONObject()
        root.append(r.fromFiles ? "files" : "run", .string(r.directory))
        root.append("seeds", .integer(r.seeds))
        root.append("final", .integer(r.final))
        root.append(
            "rounds",
            .array(
                r.rounds.map { round in
                    var o = JSONObject()
                    o.append("round", .integer(round.number))
                    for (key, value) in funnelRows(round) { o.append(key, .integer(value)) }
                    var dedup = JSONObject()
                    for (k, v) in round.dedupDropped.sorted(by: { $0.key < $1.key }) { dedup.append(k, .integer(v)) }
                    o.append("dedup_dropped_by_method", .object(dedup))
                    o.append("errors", .integer(errors(round)))
                    return .object(o)
                }))
        root.append("reasons", counts(r.reasons))
        var scores = JSONObject()
        for (round, c) in r.scores.sorted(by: { $0.key < $1.key }) {
            scores.append("round_\(round)", .array(c.map { .integer($0) }))
        }
        root.append("scores", .object(scores))
        var byModel = JSONObject()
        for (model, rounds) in r.scoresByModel.sorted(by: { $0.key < $1.key }) {
            var o = JSONObject()
            for (round, c) in rounds.sorted(by: { $0.key < $1.key }) {
                o.append("round_\(round)", .array(c.map { .integer($0) }))
            }
            byModel.append(model, .object(o))
        }
        root.append("scores_by_model", .object(byModel))
        var calibration = JSONObject()
        for (model, c) in r.calibration.sorted(by: { $0.key < $1.key }) {
            var o = JSONObject()
            o.append("reviews", .integer(c.reviews))
            o.append("mean_offset", real(c.meanOffset))
            o.append("votes", .integer(c.votes))
            o.append("agreement", real(c.agreement))
            o.append("disputes", .integer(c.disputes))
            o.append("outlier_rate", real(c.outlierRate))
            o.append("requests", .integer(c.requests))
            o.append("unparsed_replies", .integer(c.unparsed))
            o.append("unparsed_rate", real(c.unparsedRate))
            calibration.append(model, .object(o))
        }
        root.append("calibration", .object(calibration))
        root.append("seed_domains", counts(r.seedDomains))
        root.append("final_domains", counts(r.finalDomains))
        var lengths = JSONObject()
        lengths.append("bins_from_chars", .array(RunReport.lengthBins.map { .integer($0) }))
        for (k, v) in r.lengths.sorted(by: { $0.key < $1.key }) { lengths.append(k, .array(v.map { .integer($0) })) }
        root.append("lengths", .object(lengths))
        var costs = JSONObject()
        for (model, c) in r.costs.sorted(by: { $0.key < $1.key }) {
            var o = JSONObject()
            o.append("requests", .integer(c.requests))
            o.append("cache_hits", .integer(c.cacheHits))
            o.append("retries", .integer(c.retries))
            o.append("failures", .integer(c.failures))
            o.append("prompt_tokens", .integer(c.promptTokens))
            o.append("completion_tokens", .integer(c.completionTokens))
            costs.append(model, .object(o))
        }
        root.append("models", .object(costs))
        root.append(
            "latency",
            .array(
                r.latencies.map { l in
                    .object([
                        "round": .integer(l.round), "stage": .string(l.stage), "model": .string(l.model),
                        "requests": .integer(l.requests), "p50_s": real(l.p50), "p95_s": real(l.p95)
                    ])
                }))
        root.append("pipeline_stats", r.pipelineStats.map { .object($0) } ?? .null)
        var dimensions = JSONObject()
        for round in r.dimensions.keys.sorted() {
            var domains = JSONObject()
            for domain in r.dimensions[round]!.keys.sorted() {
                var o = JSONObject()
                for (name, mean) in r.dimensions[round]![domain]!.sorted(by: { $0.key < $1.key }) {
                    o.append(name, real(mean.value))
                }
                o.append("weakest", r.weakestDimension(round: round, domain: domain).map { .string($0.name) } ?? .null)
                domains.append(domain, .object(o))
            }
            dimensions.append("round_\(round)", .object(domains))
        }
        root.append("dimensions", dimensions.fields.isEmpty ? .null : .object(dimensions))
        var ifd = JSONObject()
        for set in ["seeds", "final"] {
            guard let s = r.ifdSummary(set) else { continue }
            ifd.append(
                set,
                .object([
                    "scored": .integer(s.count), "mean": real(s.mean), "median": real(s.median),
                    "histogram": .array(r.ifdHistogram(set).map { .integer($0) })
                ]))
        }
        if !ifd.fields.isEmpty {
            ifd.append("bins_below", .array(RunReport.ifdBins.map { real($0) }))
            ifd.append("change_percent", real(r.ifdChangePercent))
        }
        root.append("ifd", ifd.fields.isEmpty ? .null : .object(ifd))
        if let map = r.map {
            var sets = JSONObject()
            for set in map.sets {
                sets.append(
                    set.name,
                    .array(zip(set.x, set.y).map { .array([real($0.0), real($0.1)]) }))
            }
            root.append(
                "map",
                .object([
                    "model": .string(map.model), "explained": .array(map.explained.map { real($0) }),
                    "points": .object(sets)
                ]))
        } else {
            root.append("map", .null)
        }
        return root
    }

    /// The funnel's steps for one round, in order: (JSON key, count).
    static func funnelRows(_ round: RunReport.Round) -> [(String, Int)] {
        [
            ("seeds", round.seeds), ("generated", round.generated), ("reviewed", round.reviewed),
            ("review_accept", round.reviewAccept), ("review_reject", round.reviewReject),
            ("review_dispute", round.reviewDispute), ("accepted", round.accepted),
            ("accepted_by_adjudicator", round.acceptedByAdjudicator),
            ("rejected_by_reviewers", round.rejectedByReviewers),
            ("rejected_by_adjudicator", round.rejectedByAdjudicator),
            ("dedup_dropped", round.dedupDropped.values.reduce(0, +)), ("kept", round.kept)
        ]
    }

    static func errors(_ round: RunReport.Round) -> Int {
        round.generateErrors + round.reviewErrors + round.adjudicateErrors + round.dedupErrors
    }

    static func counts(_ d: [String: Int]) -> JSONValue {
        var o = JSONObject()
        for (k, v) in d.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) { o.append(k, .integer(v)) }
        return .object(o)
    }

    static func real(_ v: Double?) -> JSONValue {
        guard let v, v.isFinite else { return .null }
        return .number(String(format: "%.4f", v))
    }

    // MARK: - HTML

    /// The page. `generatedAt` is printed in its header.
    public static func html(_ r: RunReport, generatedAt: String) -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>gra report: \(esc(r.directory))</title>
            <style>\(css)</style></head><body>
            <h1>gra report</h1>
            <p class="meta">\(r.fromFiles ? "Files" : "Run") <code>\(esc(r.directory))</code>: \(meta(r)). \
            Written \(esc(generatedAt)) by gra-report.</p>
            <nav><a href="#funnel">Funnel</a> · <a href="#reasons">Reasons</a> · <a href="#scores">Scores</a> · \
            <a href="#calibration">Reviewer calibration</a> · <a href="#domains">Domains</a> · \
            <a href="#lengths">Lengths</a> · <a href="#difficulty">Difficulty</a> · <a href="#coverage">Coverage</a> · \
            <a href="#cost">Cost and speed</a> · \
            <a href="#samples">Samples</a></nav>\n
            """
        h += funnelSection(r)
        h += reasonsSection(r)
        h += scoresSection(r)
        h += calibrationSection(r)
        h += dimensionsSection(r)
        h += domainsSection(r)
        h += lengthsSection(r)
        h += difficultySection(r)
        h += coverageSection(r)
        h += costSection(r)
        h += samplesSection(r)
        return h + "</body></html>\n"
    }

    static let css = """
        body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;padding:0 16px;color:#222}\
        h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ccc;padding-bottom:4px}\
        table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}\
        th{background:#f4f4f4}td.l,th.l{text-align:left}.meta{color:#555}nav{margin:8px 0 0}\
        .note{color:#555;font-size:13px}svg.chart{display:block;margin:12px 0}\
        td.worst{background:#fde2e2}details{margin:6px 0;border:1px solid #ddd;padding:6px 10px}\
        summary{cursor:pointer}pre{white-space:pre-wrap;background:#f8f8f8;padding:6px;margin:4px 0}
        """

    static func funnelSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"funnel\">Funnel</h2>\n"
        h += """
            <p class="note">Per round: seeds in, samples generated, the reviewers' decisions, the \
            adjudicator's rulings on disputes, gra-dedup's drops and the samples kept (the next round's \
            seeds). Shares are of the samples generated.</p>\n
            """
        h += "<table><tr><th class=\"l\">step</th>"
        for round in r.rounds { h += "<th>\(r.fromFiles ? "files" : "round \(round.number)")</th><th>share</th>" }
        h += "</tr>\n"
        let labels = [
            "seeds": "seeds", "generated": "generated", "reviewed": "reviewed",
            "review_accept": "… accepted by reviewers",
            "review_reject": "… rejected by reviewers", "review_dispute": "… disputed", "accepted": "accepted",
            "accepted_by_adjudicator": "… of them by the adjudicator",
            "rejected_by_reviewers": "rejected by reviewers", "rejected_by_adjudicator": "rejected by the adjudicator",
            "dedup_dropped": "dropped by gra-dedup", "kept": r.fromFiles ? "records (not errors or rejects)" : "kept"
        ]
        for (i, (key, _)) in funnelRows(RunReport.Round(number: 0)).enumerated() {
            h += "<tr><td class=\"l\">\(esc(labels[key] ?? key))</td>"
            for round in r.rounds {
                let value = funnelRows(round)[i].1
                h += "<td>\(value)</td><td>\(key == "seeds" ? "" : percent(value, of: round.generated))</td>"
            }
            h += "</tr>\n"
        }
        h += "<tr><td class=\"l\">errors (all stages)</td>"
        for round in r.rounds {
            h += "<td>\(errors(round))</td><td>\(percent(errors(round), of: round.generated))</td>"
        }
        h += "</tr></table>\n"
        let steps = ["generated", "review_accept", "review_dispute", "accepted", "kept"]
        let stepLabels = ["generated", "accepted by reviewers", "disputed", "accepted", "kept"]
        h += SVGChart.bars(
            title: "Samples through the funnel, per round", categories: stepLabels,
            series: r.rounds.map { round in
                let rows = Dictionary(uniqueKeysWithValues: funnelRows(round))
                return SVGChart.Series("round \(round.number)", steps.map { Double(rows[$0] ?? 0) })
            }, xLabel: "step", yLabel: "samples")
        return h
    }

    static func reasonsSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"reasons\">Why samples were rejected, dropped or failed</h2>\n"
        guard !r.reasons.isEmpty else { return h + "<p>None.</p>\n" }
        let total = r.reasons.values.reduce(0, +)
        h += "<table><tr><th class=\"l\">reason</th><th>samples</th><th>share</th></tr>\n"
        for (reason, n) in r.reasons.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) {
            h += "<tr><td class=\"l\">\(esc(reason))</td><td>\(n)</td><td>\(percent(n, of: total))</td></tr>\n"
        }
        return h + "</table>\n"
    }

    static func scoresSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"scores\">Review scores</h2>\n"
        h += """
            <p class="note">Round 1 judges the instruction, round 2 the response; scores 1–10 as the \
            reviewers gave them.</p>\n
            """
        let categories = (1...10).map(String.init)
        let rounds = r.scores.keys.sorted()
        h += SVGChart.bars(
            title: "Scores, all reviewers", categories: categories,
            series: rounds.map { SVGChart.Series("round \($0)", r.scores[$0]!.map(Double.init)) }, xLabel: "score",
            yLabel: "reviews")
        for round in rounds {
            let models = r.scoresByModel.keys.sorted().filter { r.scoresByModel[$0]?[round] != nil }
            h += SVGChart.bars(
                title: "Round \(round) scores by reviewer model (share of its reviews)", categories: categories,
                series: models.map { SVGChart.Series.shares($0, r.scoresByModel[$0]![round]!) }, xLabel: "score",
                yLabel: "% of the model's reviews")
        }
        return h
    }

    static func calibrationSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"calibration\">Reviewer calibration</h2>\n"
        h += """
            <p class="note"><b>Offset</b>: mean of (its score − the committee's mean) — a lenient judge is \
            above 0, a harsh one below. <b>Agreement</b>: how often its own vote (every score it gave at least \
            the record's min_score) was the final decision. <b>Outlier</b>: of the disputes it sat in, how \
            often it was the one reviewer farthest from the mean. <b>Unparsed</b>: its replies that were not \
            the JSON asked for, of its review requests. The worst value of each column is marked: the table \
            that says which model to drop.</p>\n
            """
        guard !r.calibration.isEmpty else { return h + "<p>No reviews.</p>\n" }
        let models = r.calibration.keys.sorted()
        func worst(_ value: (RunReport.Calibration) -> Double?) -> String? {
            let values = models.compactMap { m in value(r.calibration[m]!).map { (m, $0) } }
            guard values.count > 1, let w = values.max(by: { $0.1 < $1.1 }), w.1 > 0 else { return nil }
            return w.0
        }
        let worstOffset = worst { $0.meanOffset.map(abs) }
        let worstAgreement = worst { $0.agreement.map { 1 - $0 } }
        let worstOutlier = worst { $0.outlierRate }
        let worstUnparsed = worst { $0.unparsedRate }
        h += """
            <table><tr><th class="l">model</th><th>reviews</th><th>offset</th><th>agreement</th>\
            <th>disputes</th><th>outlier</th><th>unparsed</th></tr>\n
            """
        for m in models {
            let c = r.calibration[m]!
            func cell(_ text: String, _ isWorst: Bool) -> String {
                "<td\(isWorst ? " class=\"worst\"" : "")>\(text)</td>"
            }
            h += "<tr><td class=\"l\">\(esc(m))</td><td>\(c.reviews)</td>"
            h += cell(c.meanOffset.map { String(format: "%+.2f", $0) } ?? "–", worstOffset == m)
            h += cell(c.agreement.map { String(format: "%.1f%%", $0 * 100) } ?? "–", worstAgreement == m)
            h += "<td>\(c.disputes)</td>"
            h += cell(c.outlierRate.map { String(format: "%.1f%%", $0 * 100) } ?? "–", worstOutlier == m)
            h += cell(
                c.unparsedRate.map { String(format: "%.1f%% (%ld)", $0 * 100, c.unparsed) } ?? "–", worstUnparsed == m)
            h += "</tr>\n"
        }
        h += "</table>\n"
        h += SVGChart.bars(
            title: "Mean offset from the committee", categories: models,
            series: [SVGChart.Series("", models.map { r.calibration[$0]!.meanOffset.map { abs($0) } ?? 0 })],
            xLabel: "reviewer model", yLabel: "|offset| (score points)")
        return h
    }

    /// gra-review --dimensions: per round, each domain's mean score per dimension, the weakest
    /// marked. Nothing without dimension scores.
    static func dimensionsSection(_ r: RunReport) -> String {
        guard !r.dimensions.isEmpty else { return "" }
        var h = """
            <h2 id="dimensions">Review dimensions</h2>
            <p class="note">gra-review --dimensions: each reviewer's score per dimension, averaged per \
            domain; the weakest dimension of each domain is marked (round 1 judges the instruction, round 2 \
            the response).</p>\n
            """
        for round in r.dimensions.keys.sorted() {
            let byDomain = r.dimensions[round]!
            let names = Set(byDomain.values.flatMap(\.keys)).sorted {
                (RoleSchemas.dimensions.firstIndex(of: $0) ?? 99, $0) < (
                    RoleSchemas.dimensions.firstIndex(of: $1) ?? 99, $1
                )
            }
            h += "<h3>Round \(round)</h3>\n<table><tr><th class=\"l\">domain</th>"
            h += names.map { "<th>\(esc($0))</th>" }.joined() + "<th class=\"l\">weakest</th></tr>\n"
            for domain in byDomain.keys.sorted() {
                let weakest = r.weakestDimension(round: round, domain: domain)
                h += "<tr><td class=\"l\">\(esc(domain))</td>"
                for name in names {
                    let mean = byDomain[domain]![name]?.value
                    let isWeakest = weakest?.name == name
                    h +=
                        "<td\(isWeakest ? " class=\"worst\"" : "")>\(mean.map { String(format: "%.2f", $0) } ?? "–")"
                        + "</td>"
                }
                h += "<td class=\"l\">\(esc(weakest?.name ?? "–"))</td></tr>\n"
            }
            h += "</table>\n"
        }
        return h
    }

    static func domainsSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"domains\">Domains, seeds and final data</h2>\n"
        let domains = Set(r.seedDomains.keys).union(r.finalDomains.keys).sorted()
        let seeds = Double(max(r.seeds, 1))
        let final = Double(max(r.final, 1))
        h += "<table><tr><th class=\"l\">domain</th><th>seeds</th><th>share</th><th>final</th><th>share</th></tr>\n"
        for d in domains {
            let s = r.seedDomains[d] ?? 0
            let f = r.finalDomains[d] ?? 0
            h += """
                <tr><td class="l">\(esc(d))</td><td>\(s)</td><td>\(percent(s, of: r.seeds))</td><td>\(f)</td>\
                <td>\(percent(f, of: r.final))</td></tr>\n
                """
        }
        h += "</table>\n"
        h += SVGChart.bars(
            title: "Domain mix", categories: domains,
            series: [
                SVGChart.Series("seeds", domains.map { Double(r.seedDomains[$0] ?? 0) * 100 / seeds }),
                SVGChart.Series("final", domains.map { Double(r.finalDomains[$0] ?? 0) * 100 / final })
            ], xLabel: "domain", yLabel: "% of the set")
        return h
    }

    static func lengthsSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"lengths\">Lengths</h2>\n"
        let bins = RunReport.lengthBins
        let labels = bins.indices.map { i in i + 1 < bins.count ? "\(bins[i])–\(bins[i + 1] - 1)" : "\(bins[i])+" }
        for field in ["instruction", "response"] {
            let series = ["seeds", "final"].compactMap { set in
                r.lengths["\(set) \(field)"].map { SVGChart.Series.shares(set, $0) }
            }
            h += SVGChart.bars(
                title: "\(field.capitalized) length", categories: labels, series: series, xLabel: "characters",
                yLabel: "% of the set")
        }
        return h
    }

    static func difficultySection(_ r: RunReport) -> String {
        var h = "<h2 id=\"difficulty\">Difficulty (IFD)</h2>\n"
        let sets = ["seeds", "final"].filter { r.ifdSummary($0) != nil }
        guard !sets.isEmpty else {
            return h + """
                <p class="note">No IFD scores: <code>bin/gra-pipeline --ifd MODEL</code> (or <code>gra-ifd</code> \
                on seeds.ndjson and dataset.ndjson) scores each sample's Instruction-Following Difficulty \
                with a vLLM model.</p>\n
                """
        }
        let change = r.ifdChangePercent.map {
            String(format: " The final data is %+.2f%% harder than the seeds (mean).", $0)
        }
        h += """
            <p class="note">Instruction-Following Difficulty (gra-ifd): the perplexity of the response given \
            the instruction over the perplexity of the response alone; higher is harder (the GRA paper reports \
            its generated data 14.58% harder than its seeds).\(change ?? "")</p>\
            \n<table><tr><th class="l">set</th><th>scored</th><th>mean</th><th>median</th></tr>\n
            """
        for set in sets {
            let s = r.ifdSummary(set)!
            h += """
                <tr><td class="l">\(set)</td><td>\(s.count)</td><td>\(String(format: "%.4f", s.mean))</td>\
                <td>\(String(format: "%.4f", s.median))</td></tr>\n
                """
        }
        h += "</table>\n"
        let bins = RunReport.ifdBins
        let labels =
            bins.indices.map { i in
                i == 0 ? "<\(SVGChart.number(bins[0]))" : "\(SVGChart.number(bins[i - 1]))–"
            } + ["≥\(SVGChart.number(bins.last!))"]
        let series = sets.map { SVGChart.Series.shares($0, r.ifdHistogram($0)) }
        h += SVGChart.bars(
            title: "IFD score", categories: labels, series: series, xLabel: "IFD (bins of 0.1)",
            yLabel: "% of the set")
        return h
    }

    static func coverageSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"coverage\">Coverage</h2>\n"
        guard let map = r.map else {
            return h + """
                <p class="note">No map: run gra-report with <code>--embed MODEL@URL</code> (an embeddings \
                model) to see the seeds', the generated samples' and the dataset's instructions on their \
                first two principal components.</p>\n
                """
        }
        h += """
            <p class="note">The instructions, embedded by <code>\(esc(map.model))</code> (a sample of at \
            most \(r.mapPoints) per set) and projected together onto their first two principal \
            components, which hold \(String(format: "%.1f%%", (map.explained.first ?? 0) * 100)) and \
            \(String(format: "%.1f%%", (map.explained.last ?? 0) * 100)) of the variance.</p>\n
            """
        h += SVGChart.scatter(
            title: "Instructions on their first two principal components",
            groups: map.sets.map { set in
                SVGChart.PointGroup(
                    "\(set.name) (\(set.x.count))", zip(set.x, set.y).map { (x: $0.0, y: $0.1) })
            }, xLabel: "PC1", yLabel: "PC2")
        return h
    }

    static func costSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"cost\">Cost and speed</h2>\n"
        if let p = r.pipelineStats {
            let perSample = p["tokens_per_sample"]?.doubleValue.map { String(format: "%.0f", $0) } ?? "–"
            h += """
                <p>Last invocation of bin/gra-pipeline (RUN/stats.json): \(int(p["requests"])) requests sent, \
                \(int(p["cache_hits"])) answered from the cache, \(int(p["prompt_tokens"])) prompt and \
                \(int(p["completion_tokens"])) completion tokens: <b>\(perSample) tokens per sample</b> of the \
                dataset.</p>\n
                """
        }
        guard !r.costs.isEmpty else { return h + "<p>No --stats files in the run directory.</p>\n" }
        h += """
            <table><tr><th class="l">model</th><th>requests</th><th>cache hits</th><th>hit rate</th>\
            <th>retries</th><th>failures</th><th>prompt tokens</th><th>completion tokens</th></tr>\n
            """
        for (m, c) in r.costs.sorted(by: { $0.key < $1.key }) {
            h += """
                <tr><td class="l">\(esc(m))</td><td>\(c.requests)</td><td>\(c.cacheHits)</td>\
                <td>\(percent(c.cacheHits, of: c.requests + c.cacheHits))</td><td>\(c.retries)</td>\
                <td>\(c.failures)</td><td>\(c.promptTokens)</td><td>\(c.completionTokens)</td></tr>\n
                """
        }
        h += "</table>\n<table><tr><th>round</th><th class=\"l\">stage</th><th class=\"l\">model</th>"
        h += "<th>requests</th><th>latency p50</th><th>p95</th></tr>\n"
        for l in r.latencies {
            h += """
                <tr><td>\(l.round)</td><td class="l">\(esc(l.stage))</td><td class="l">\(esc(l.model))</td>\
                <td>\(l.requests)</td><td>\(seconds(l.p50))</td><td>\(seconds(l.p95))</td></tr>\n
                """
        }
        return h + "</table>\n"
    }

    static func samplesSection(_ r: RunReport) -> String {
        var h = "<h2 id=\"samples\">Samples</h2>\n"
        for kind in ["accepted", "rejected", "disputed"] {
            let shown = r.samples.filter { $0.kind == kind }
            h += "<h3>\(kind.capitalized) (\(shown.count) shown)</h3>\n"
            for s in shown {
                let o = s.record
                let id = o["id"]?.stringValue ?? "?"
                h += "<details><summary>round \(s.round): <code>\(esc(id))</code>"
                h += " — \(esc(String((o["instruction"]?.stringValue ?? "").prefix(100))))</summary>\n"
                if let reason = s.reason { h += "<p><b>Reason:</b> \(esc(reason))</p>\n" }
                h += "<p><b>Instruction</b></p><pre>\(esc(o["instruction"]?.stringValue ?? ""))</pre>\n"
                if let input = o["input"]?.stringValue, !input.isEmpty {
                    h += "<p><b>Input</b></p><pre>\(esc(input))</pre>\n"
                }
                let response = (o["response"] ?? o["output"])?.stringValue ?? ""
                h += "<p><b>Response</b></p><pre>\(esc(String(response.prefix(2000))))</pre>\n"
                if let reviews = o.graSection("review")?["reviews"]?.arrayValue, !reviews.isEmpty {
                    h +=
                        """
                        <table><tr><th class="l">reviewer</th><th>round</th><th>score</th>\
                        <th class="l">comment</th></tr>\n
                        """
                    for v in reviews.compactMap(\.objectValue) {
                        h += """
                            <tr><td class="l">\(esc(v["model"]?.stringValue ?? ""))</td>\
                            <td>\(int(v["round"]))</td><td>\(int(v["score"]))</td>\
                            <td class="l">\(esc(v["comment"]?.stringValue ?? ""))</td></tr>\n
                            """
                    }
                    h += "</table>\n"
                }
                if let a = o.graSection("adjudication") {
                    h += """
                        <p><b>Adjudicator</b> \(esc(a["model"]?.stringValue ?? "")): \
                        \(esc(a["decision"]?.stringValue ?? "")), score \(int(a["score"])) — \
                        \(esc(a["rationale"]?.stringValue ?? ""))</p>\n
                        """
                }
                h += "</details>\n"
            }
        }
        return h
    }

    // MARK: - Small things

    /// The page's one-line description of what was read.
    public static func meta(_ r: RunReport) -> String {
        r.fromFiles
            ? "\(r.final) records"
            : "\(r.rounds.count) round(s), \(r.seeds) seeds → \(r.final) samples in the dataset"
    }

    static func esc(_ s: String) -> String { SVGChart.escape(s) }

    static func percent(_ n: Int, of total: Int) -> String {
        total > 0 ? String(format: "%.1f%%", Double(n) * 100 / Double(total)) : "–"
    }

    static func int(_ v: JSONValue?) -> String { v?.doubleValue.map { SVGChart.number($0) } ?? "–" }

    static func seconds(_ v: Double?) -> String { v.map { String(format: "%.3f s", $0) } ?? "–" }
}

extension ReportPage {
    /// Writes `text` to `path` through a temporary file in the same directory and a rename, so
    /// that a reader never sees half a report.
    public static func write(_ text: String, to path: String) throws(GRAError) {
        let temporary = path + ".partial.\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
            throw GRAError.io("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temporary)
            throw GRAError.io("cannot write \(path): \(why)")
        }
    }
}
