// Text made safe for XML and HTML: one escaper for the SVG pictures and report pages of the command
// line (CraftCLI) and the registry server's pages (CraftRegistryServer).

/// Escaping for element text and quoted attribute values in XML and HTML.
public enum MarkupText {
    /// `text` with `&`, `<`, `>`, `"` and `'` written as entities, and the control characters XML 1.0
    /// forbids (all below U+0020 except tab, newline and carriage return, and U+FFFE/U+FFFF) replaced
    /// by U+FFFD, so any string (a prompt, a model's answer, a file name, a bundle's summary) can go
    /// into element text or a quoted attribute.
    public static func escaped(_ text: some StringProtocol) -> String {
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
}
