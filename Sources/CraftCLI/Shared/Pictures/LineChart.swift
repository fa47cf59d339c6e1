import Foundation

/// A line chart drawn as self-contained SVG: axes with tick labels, light grid lines, a legend and
/// a title, one polyline per series (with a dot per point when asked, and always for a single
/// point), no scripts, no external fonts or links (`font-family` is the generic `sans-serif`).
///
/// Several charts stack into one SVG document as panels (``document(title:subtitle:panels:width:panelHeight:)``);
/// `craft train` draws its losses per step and its validation accuracy per epoch that way
/// (``TrainingChart``).
///
/// ```swift
/// let chart = LineChart(title: "Loss", xLabel: "step", yLabel: "loss",
///                       series: [.init(name: "total", color: LineChart.palette[0], points: [(1, 2.0), (2, 1.5)])])
/// let svg = LineChart.document(title: "Training", panels: [chart])
/// ```
struct LineChart {
    /// One line of the chart.
    struct Series {
        /// The legend's text.
        var name: String
        /// A CSS colour (`#1f77b4`).
        var color: String
        /// The points, in drawing order; non-finite values are left out.
        var points: [(x: Double, y: Double)]
        /// Whether every point gets a dot (always for a series of one point).
        var markers = false
    }

    /// How tick labels of the y axis read.
    enum TickStyle {
        /// Plain numbers (`0.25`, `1.5`, `20`).
        case number
        /// Fractions as percentages (`0.25` → `25%`).
        case percent
    }

    /// The panel's title.
    var title: String
    /// The x axis's label.
    var xLabel: String
    /// The y axis's label.
    var yLabel: String
    /// The lines; a chart without points says so instead of drawing lines.
    var series: [Series]
    /// A fixed y range (such as `0...1` for accuracies); the data's, rounded outwards to ticks, when nil.
    var yRange: ClosedRange<Double>?
    /// How the y tick labels read.
    var yTickStyle = TickStyle.number
    /// Whether x ticks fall on whole numbers only (steps, epochs).
    var integerX = true

    /// The colours of the series, in order (colour-blind-safe Tableau hues).
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    /// The text shown in a panel with no points.
    static let emptyText = "no data yet"

    // MARK: Axis ranges

    /// Round tick positions covering `low...high`: about `count` ticks at a step of 1, 2, 2.5 or 5
    /// times a power of ten, the range widened outwards to the first and last tick.
    ///
    /// An empty or single-valued range is widened first (`0...1` when there is no data, else
    /// ±10% of the value and at least ±0.1, or ±1 for integers) so there is always an axis to draw.
    ///
    /// - Parameters:
    ///   - low: The smallest value to cover.
    ///   - high: The largest value to cover.
    ///   - count: About how many ticks.
    ///   - integer: Whether ticks must be whole numbers (the step is at least 1).
    /// - Returns: The ticks, ascending; the first and last are the axis's ends.
    static func ticks(from low: Double, to high: Double, count: Int = 5, integer: Bool = false) -> [Double] {
        var (low, high) = (low, high)
        if !low.isFinite || !high.isFinite || low > high { (low, high) = (0, 1) }
        if low == high {
            let spread = integer ? 1 : max(abs(low) * 0.1, 0.1)
            (low, high) = (low - spread, high + spread)
        }
        let rough = (high - low) / Double(max(count - 1, 1))
        let magnitude = pow(10, floor(log10(rough)))
        var step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough * 0.999 } ?? 10 * magnitude
        if integer { step = max(step.rounded(.up), 1) }
        let first = floor(low / step + 1e-9) * step
        let last = ceil(high / step - 1e-9) * step
        var ticks: [Double] = []
        var index = 0.0
        while first + index * step <= last + step * 1e-6, ticks.count < 100 {
            let value = first + index * step
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            index += 1
        }
        return ticks.count >= 2 ? ticks : [first, first + step]
    }

    /// The x axis's ends for data from `low` to `high`: the data's range widened by 3% on each side
    /// (`0...1` without data; ±1 for integers, else ±10% or at least ±0.1, around a single value).
    static func xRange(low: Double?, high: Double?, integer: Bool) -> (low: Double, high: Double) {
        guard let low, let high, low.isFinite, high.isFinite, low <= high else { return (0, 1) }
        if low == high {
            let spread = integer ? 1 : max(abs(low) * 0.1, 0.1)
            return (low - spread, high + spread)
        }
        let room = (high - low) * 0.03
        return (low - room, high + room)
    }

    /// A tick label: whole numbers plainly, others with as few decimals as the step needs.
    static func label(_ value: Double, step: Double, style: TickStyle) -> String {
        let scaled = style == .percent ? value * 100 : value
        let scaledStep = style == .percent ? step * 100 : step
        let decimals = scaledStep >= 1 ? 0 : min(Int(ceil(-log10(scaledStep) - 1e-9)), 6)
        let text = String(format: "%.\(decimals)f", scaled)
        let clean = text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
        return style == .percent ? clean + "%" : clean
    }

    // MARK: Drawing

    /// The finite points of every series.
    private var allPoints: [(x: Double, y: Double)] {
        series.flatMap { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
    }

    /// The SVG elements of this chart as a panel in the rectangle at (`x`, `y`) of `width` × `height`.
    func panel(x originX: Double, y originY: Double, width: Double, height: Double) -> String {
        let points = allPoints
        let xs = points.map(\.x), ys = points.map(\.y)
        // The x axis spans the data (plus a little room so end points clear the frame), with round
        // ticks inside it; the y axis is rounded outwards to its ticks.
        let (xLow, xHigh) = Self.xRange(low: xs.min(), high: xs.max(), integer: integerX)
        let xTicks = Self.ticks(from: xLow, to: xHigh, count: 6, integer: integerX).filter { $0 >= xLow - 1e-9 && $0 <= xHigh + 1e-9 }
        let yTicks = yRange.map { Self.ticks(from: $0.lowerBound, to: $0.upperBound, count: 5) }
            ?? Self.ticks(from: ys.min() ?? 0, to: ys.max() ?? 1, count: 5)
        let (yLow, yHigh) = (yTicks.first!, yTicks.last!)
        // The plot area inside the panel: room for the title and legend above, tick labels and the
        // axis labels left and below.
        let left = originX + 70, right = originX + width - 20
        let top = originY + 56, bottom = originY + height - 46
        func px(_ value: Double) -> Double { left + (value - xLow) / (xHigh - xLow) * (right - left) }
        func py(_ value: Double) -> Double { bottom - (min(max(value, yLow), yHigh) - yLow) / (yHigh - yLow) * (bottom - top) }
        let n = Markup.number
        var svg = "<g class=\"panel\">\n"
        svg += "<text x=\"\(n(originX + width / 2))\" y=\"\(n(originY + 20))\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(Markup.escaped(title))</text>\n"
        // Grid lines and tick labels.
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1
        for tick in yTicks {
            svg += "<line x1=\"\(n(left))\" y1=\"\(n(py(tick)))\" x2=\"\(n(right))\" y2=\"\(n(py(tick)))\" stroke=\"#e4e4e4\" stroke-width=\"1\"/>\n"
            svg += "<text class=\"y-tick\" x=\"\(n(left - 6))\" y=\"\(n(py(tick) + 4))\" text-anchor=\"end\" font-size=\"11\" fill=\"#444\">\(Self.label(tick, step: yStep, style: yTickStyle))</text>\n"
        }
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for tick in xTicks {
            svg += "<line x1=\"\(n(px(tick)))\" y1=\"\(n(top))\" x2=\"\(n(px(tick)))\" y2=\"\(n(bottom))\" stroke=\"#f0f0f0\" stroke-width=\"1\"/>\n"
            svg += "<line x1=\"\(n(px(tick)))\" y1=\"\(n(bottom))\" x2=\"\(n(px(tick)))\" y2=\"\(n(bottom + 4))\" stroke=\"#444\" stroke-width=\"1\"/>\n"
            svg += "<text class=\"x-tick\" x=\"\(n(px(tick)))\" y=\"\(n(bottom + 17))\" text-anchor=\"middle\" font-size=\"11\" fill=\"#444\">\(Self.label(tick, step: xStep, style: .number))</text>\n"
        }
        // Axes and their labels.
        svg += "<path d=\"M\(n(left)) \(n(top)) V\(n(bottom)) H\(n(right))\" fill=\"none\" stroke=\"#444\" stroke-width=\"1\"/>\n"
        svg += "<text x=\"\(n((left + right) / 2))\" y=\"\(n(originY + height - 8))\" text-anchor=\"middle\" font-size=\"12\">\(Markup.escaped(xLabel))</text>\n"
        let yLabelX = originX + 16, yLabelY = (top + bottom) / 2
        svg += "<text x=\"\(n(yLabelX))\" y=\"\(n(yLabelY))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 \(n(yLabelX)) \(n(yLabelY)))\">\(Markup.escaped(yLabel))</text>\n"
        // The legend: a swatch and a name per series, in one row under the title.
        var legendX = left
        for line in series {
            svg += "<g class=\"legend\"><line x1=\"\(n(legendX))\" y1=\"\(n(originY + 38))\" x2=\"\(n(legendX + 18))\" y2=\"\(n(originY + 38))\" stroke=\"\(Markup.escaped(line.color))\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(n(legendX + 23))\" y=\"\(n(originY + 42))\" font-size=\"12\">\(Markup.escaped(line.name))</text></g>\n"
            legendX += 23 + Double(line.name.count) * 7 + 18
        }
        // The lines.
        if points.isEmpty {
            svg += "<text class=\"empty\" x=\"\(n((left + right) / 2))\" y=\"\(n((top + bottom) / 2))\" text-anchor=\"middle\" font-size=\"13\" fill=\"#888\">\(Markup.escaped(Self.emptyText))</text>\n"
        }
        for line in series {
            let finite = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            svg += "<g class=\"series\" data-series=\"\(Markup.escaped(line.name))\" data-points=\"\(finite.count)\">"
            if finite.count > 1 {
                let coordinates = finite.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(Markup.escaped(line.color))\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>"
            }
            if line.markers || finite.count == 1 {
                for point in finite {
                    svg += "<circle cx=\"\(n(px(point.x)))\" cy=\"\(n(py(point.y)))\" r=\"3.5\" fill=\"\(Markup.escaped(line.color))\"/>"
                }
            }
            svg += "</g>\n"
        }
        svg += "</g>\n"
        return svg
    }

    /// A whole SVG document: a title (and an optional subtitle) above `panels` stacked vertically.
    ///
    /// - Parameters:
    ///   - title: The document's heading, also its `<title>`.
    ///   - subtitle: A line under the heading (a summary), or nil.
    ///   - panels: The charts, top to bottom.
    ///   - width: The document's width in pixels.
    ///   - panelHeight: Each panel's height in pixels.
    static func document(title: String, subtitle: String? = nil, panels: [LineChart], width: Double = 900, panelHeight: Double = 320) -> String {
        let header = subtitle == nil ? 40.0 : 60.0
        let height = header + panelHeight * Double(panels.count) + 10
        let n = Markup.number
        var svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"sans-serif\">\n"
        svg += "<title>\(Markup.escaped(title))</title>\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        svg += "<text x=\"\(n(width / 2))\" y=\"26\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\">\(Markup.escaped(title))</text>\n"
        if let subtitle {
            svg += "<text x=\"\(n(width / 2))\" y=\"48\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">\(Markup.escaped(subtitle))</text>\n"
        }
        for (index, chart) in panels.enumerated() {
            svg += chart.panel(x: 0, y: header + Double(index) * panelHeight, width: width, height: panelHeight)
        }
        svg += "</svg>\n"
        return svg
    }
}
