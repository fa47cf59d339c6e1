import Foundation

/// Text made safe for XML and HTML (SVG files and the `craft eval --report` page).
enum Markup {
    /// `text` with `&`, `<`, `>`, `"` and `'` written as entities, and the control characters XML 1.0
    /// forbids (all below U+0020 except tab, newline and carriage return, and U+FFFE/U+FFFF) replaced
    /// by U+FFFD, so any string (a prompt, a model's answer, a file name) can go into element text or
    /// a quoted attribute.
    static func escaped(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            case "\t", "\n", "\r": result.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    result += "\u{FFFD}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// A number for an SVG coordinate: at most two decimals, no exponent, no `-0`.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.2f", rounded)
    }
}
