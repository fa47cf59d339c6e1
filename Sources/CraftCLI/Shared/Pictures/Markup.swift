import CraftCore
import Foundation

/// Text made safe for XML and HTML (SVG files and the `craft eval --report` page).
enum Markup {
    /// `text` escaped for element text or a quoted attribute (``MarkupText/escaped(_:)``).
    static func escaped(_ text: String) -> String { MarkupText.escaped(text) }

    /// A number for an SVG coordinate: at most two decimals, no exponent, no `-0`.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.2f", rounded)
    }
}
