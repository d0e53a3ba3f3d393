import Foundation

/// Small SVG charts for `gra-report`: grouped bars (histograms are bars over bins) and scatter
/// plots, each with a title, axis labels with units, gridlines and, for more than one series, a
/// legend. The result is one standalone `<svg>` element with no script and no outside resource,
/// to be inlined into an HTML page; every bar and point carries a `<title>` (the value, shown as
/// a tooltip by browsers without any JavaScript).
public enum SVGChart {
    /// One named row of values, one per category.
    public struct Series: Sendable, Equatable {
        public var name: String
        public var values: [Double]
        public init(_ name: String, _ values: [Double]) {
            self.name = name
            self.values = values
        }

        /// Counts as percentages of their sum (of 1 when they sum to 0).
        public static func shares(_ name: String, _ counts: [Int]) -> Series {
            let n = Double(max(counts.reduce(0, +), 1))
            return Series(name, counts.map { Double($0) * 100 / n })
        }
    }

    /// One named set of points.
    public struct PointGroup: Sendable, Equatable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public init(_ name: String, _ points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
        public static func == (a: PointGroup, b: PointGroup) -> Bool {
            a.name == b.name && a.points.elementsEqual(b.points) { $0.x == $1.x && $0.y == $1.y }
        }
    }

    /// Colours for series, in order (Tableau 10: distinguishable, also in grey print).
    public static let palette = [
        "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"
    ]

    static let width = 640.0
    static let height = 300.0
    static let left = 64.0
    static let right = 16.0
    static let top = 40.0
    static let bottom = 52.0

    /// Grouped bars: one group per category, one bar per series, from 0 to a rounded maximum.
    public static func bars(
        title: String, categories: [String], series: [Series], xLabel: String, yLabel: String
    ) -> String {
        let legendRows = series.count > 1 ? legendRowCount(series.map(\.name)) : 0
        let plotTop = top + Double(legendRows) * 18
        let plotHeight = height - plotTop - bottom
        let plotWidth = width - left - right
        let maxValue = series.flatMap(\.values).filter(\.isFinite).max() ?? 0
        let ticks = niceTicks(from: 0, to: max(maxValue, 1e-9))
        let yMax = ticks.last ?? 1
        var svg = header(title: title)
        svg += axes(
            ticks: ticks, low: 0, high: yMax, plotTop: plotTop, plotHeight: plotHeight, xLabel: xLabel, yLabel: yLabel)
        let groupWidth = categories.isEmpty ? plotWidth : plotWidth / Double(categories.count)
        let barWidth = max(1, groupWidth * 0.8 / Double(max(series.count, 1)))
        let labelEvery = max(1, Int((Double(categories.count) * 42 / plotWidth).rounded(.up)))
        // As many characters as the label's room holds (about 6.5 px each at this size).
        let labelChars = max(6, Int(groupWidth * Double(labelEvery) / 6.5) - 1)
        for (c, category) in categories.enumerated() {
            let groupX = left + Double(c) * groupWidth + groupWidth * 0.1
            for (s, row) in series.enumerated() {
                let value = c < row.values.count && row.values[c].isFinite ? row.values[c] : 0
                let h = yMax > 0 ? value / yMax * plotHeight : 0
                let x = groupX + Double(s) * barWidth
                let y = plotTop + plotHeight - h
                svg += """
                    <rect class="bar" x="\(f(x))" y="\(f(y))" width="\(f(barWidth))" height="\(f(h))" \
                    fill="\(palette[s % palette.count])"><title>\(escape(row.name.isEmpty ? "" : row.name + ", "))\
                    \(escape(category)): \(number(value))</title></rect>\n
                    """
            }
            if c % labelEvery == 0 {
                svg += """
                    <text class="tick" x="\(f(left + (Double(c) + 0.5) * groupWidth))" \
                    y="\(f(plotTop + plotHeight + 16))" \
                    text-anchor="middle">\(escape(shorten(category, labelChars)))</text>\n
                    """
            }
        }
        if series.count > 1 { svg += legend(series.map(\.name)) }
        return svg + "</svg>\n"
    }

    /// Points in groups (a colour each), on axes spanning the data.
    public static func scatter(title: String, groups: [PointGroup], xLabel: String, yLabel: String) -> String {
        let legendRows = groups.count > 1 ? legendRowCount(groups.map(\.name)) : 0
        let plotTop = top + Double(legendRows) * 18
        let plotHeight = height - plotTop - bottom
        let plotWidth = width - left - right
        let all = groups.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xTicks = niceTicks(from: all.map(\.x).min() ?? 0, to: all.map(\.x).max() ?? 1)
        let yTicks = niceTicks(from: all.map(\.y).min() ?? 0, to: all.map(\.y).max() ?? 1)
        let (x0, x1) = (xTicks.first ?? 0, xTicks.last ?? 1)
        let (y0, y1) = (yTicks.first ?? 0, yTicks.last ?? 1)
        var svg = header(title: title)
        svg += axes(
            ticks: yTicks, low: y0, high: y1, plotTop: plotTop, plotHeight: plotHeight, xLabel: xLabel, yLabel: yLabel)
        for tick in xTicks {
            let x = left + (tick - x0) / (x1 - x0) * plotWidth
            svg += """
                <text class="tick" x="\(f(x))" y="\(f(plotTop + plotHeight + 16))" text-anchor="middle">\
                \(number(tick))</text>\n
                """
        }
        for (g, group) in groups.enumerated() {
            for p in group.points where p.x.isFinite && p.y.isFinite {
                let cx = left + (p.x - x0) / (x1 - x0) * plotWidth
                let cy = plotTop + plotHeight - (p.y - y0) / (y1 - y0) * plotHeight
                svg += """
                    <circle class="point" cx="\(f(cx))" cy="\(f(cy))" r="3" fill="\(palette[g % palette.count])" \
                    fill-opacity="0.7"><title>\(escape(group.name)): (\(number(p.x)), \(number(p.y)))</title></circle>\n
                    """
            }
        }
        if groups.count > 1 { svg += legend(groups.map(\.name)) }
        return svg + "</svg>\n"
    }

    // MARK: - Parts

    static func header(title: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" class="chart" width="\(f(width))" height="\(f(height))" \
        viewBox="0 0 \(f(width)) \(f(height))" role="img" font-family="sans-serif" font-size="11">
        <title>\(escape(title))</title>
        <text class="chart-title" x="\(f(width / 2))" y="18" text-anchor="middle" font-size="14" \
        font-weight="bold">\(escape(title))</text>\n
        """
    }

    /// The y axis with gridlines at `ticks`, the x axis line, and both axis labels.
    static func axes(
        ticks: [Double], low: Double, high: Double, plotTop: Double, plotHeight: Double, xLabel: String, yLabel: String
    ) -> String {
        var svg = ""
        let span = high > low ? high - low : 1
        for tick in ticks {
            let y = plotTop + plotHeight - (tick - low) / span * plotHeight
            svg += """
                <line class="grid" x1="\(f(left))" x2="\(f(width - right))" y1="\(f(y))" y2="\(f(y))" \
                stroke="#ddd"/>
                <text class="tick" x="\(f(left - 6))" y="\(f(y + 4))" text-anchor="end">\(number(tick))</text>\n
                """
        }
        let base = plotTop + plotHeight
        svg += """
            <line class="axis" x1="\(f(left))" x2="\(f(width - right))" y1="\(f(base))" y2="\(f(base))" stroke="#333"/>
            <line class="axis" x1="\(f(left))" x2="\(f(left))" y1="\(f(plotTop))" y2="\(f(base))" stroke="#333"/>
            <text class="x-label" x="\(f(left + (width - left - right) / 2))" y="\(f(height - 10))" \
            text-anchor="middle">\(escape(xLabel))</text>
            <text class="y-label" x="14" y="\(f(plotTop + plotHeight / 2))" text-anchor="middle" \
            transform="rotate(-90 14 \(f(plotTop + plotHeight / 2)))">\(escape(yLabel))</text>\n
            """
        return svg
    }

    /// Rows of a colour swatch and a name under the title, wrapped to the chart's width.
    static func legend(_ names: [String]) -> String {
        var svg = ""
        var x = left
        var y = top - 8
        for (i, name) in names.enumerated() {
            let label = shorten(name, 28)
            let w = 18 + Double(label.count) * 6.2 + 14
            if x + w > width - right && x > left {
                x = left
                y += 18
            }
            svg += """
                <g class="legend-item"><rect x="\(f(x))" y="\(f(y))" width="10" height="10" \
                fill="\(palette[i % palette.count])"/><text x="\(f(x + 14))" y="\(f(y + 9))">\
                \(escape(label))</text></g>\n
                """
            x += w
        }
        return svg
    }

    static func legendRowCount(_ names: [String]) -> Int {
        var rows = 1
        var x = left
        for name in names {
            let w = 18 + Double(shorten(name, 28).count) * 6.2 + 14
            if x + w > width - right && x > left {
                rows += 1
                x = left
            }
            x += w
        }
        return rows
    }

    // MARK: - Numbers and text

    /// About five round tick values covering low...high (1, 2 or 5 times a power of ten apart).
    public static func niceTicks(from low: Double, to high: Double, count: Int = 5) -> [Double] {
        guard low.isFinite, high.isFinite else { return [0, 1] }
        var (lo, hi) = (min(low, high), max(low, high))
        if hi - lo < 1e-12 {
            lo -= 0.5
            hi += 0.5
        }
        let raw = (hi - lo) / Double(max(count, 1))
        let power = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        // k × step, written with the step's decimals (3 × 0.2 is 0.6, not 0.6000000000000001).
        let decimals = max(0, -Int(floor(log10(step))))
        func tick(_ k: Int) -> Double { Double(String(format: "%.\(decimals)f", Double(k) * step)) ?? Double(k) * step }
        var k = Int(floor(lo / step))
        var ticks = [tick(k)]
        while ticks.last! < hi - step * 1e-9 || ticks.count < 2 {
            k += 1
            ticks.append(tick(k))
        }
        return ticks.map { $0 == 0 ? 0 : $0 }
    }

    /// A number as people write it: integers without a decimal point, others to 3 significant
    /// digits.
    public static func number(_ v: Double) -> String {
        guard v.isFinite else { return "–" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int(v)) }
        return String(format: "%.3g", v)
    }

    /// Text safe inside XML and HTML elements and attributes.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters are not allowed in XML 1.0; tab and newline are.
                if c.value < 0x20 && c != "\t" && c != "\n" { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }

    static func shorten(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n - 1)) + "…" }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
