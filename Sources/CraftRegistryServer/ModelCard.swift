// A bundle's model card (its README.md) rendered as HTML on the server, without JavaScript: a small
// Markdown subset, every piece of the card's text HTML-escaped (docs/registry.md, "Serving a registry").
import Foundation

/// Renders the Markdown of a model card into safe HTML.
///
/// The subset: ATX headings (`#` to `######`, shown one level below the page's own section headings),
/// paragraphs, `-`/`*`/`+` and `1.` lists (one level), fenced code blocks, code spans, `*emphasis*`,
/// `**strong**`, and `[links](https://…)` whose target is `http` or `https` (any other target, such
/// as `javascript:`, keeps its text and loses the link). Raw HTML is not interpreted: it is shown as
/// text. Anything else reads as paragraph text.
enum ModelCard {
    /// The file a bundle carries its model card in.
    static let fileName = "README.md"
    /// The largest model card read from a bundle for display.
    static let maxSize: Int64 = 256 << 10

    static func html(_ markdown: String) -> String {
        var output = ""
        var paragraph: [Substring] = []
        var list: (ordered: Bool, items: [Substring])?
        var fence: (marker: Substring, lines: [Substring])?

        func flushParagraph() {
            guard !paragraph.isEmpty else { return }
            output += "<p>" + inline(paragraph.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")[...]) + "</p>\n"
            paragraph = []
        }
        func flushList() {
            guard let current = list else { return }
            let tag = current.ordered ? "ol" : "ul"
            output += "<\(tag)>" + current.items.map { "<li>" + inline($0) + "</li>" }.joined() + "</\(tag)>\n"
            list = nil
        }

        for rawLine in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if var open = fence {
                if line.trimmingCharacters(in: .whitespaces).hasPrefix(open.marker) {
                    output += "<pre><code>" + escape(open.lines.joined(separator: "\n")) + "</code></pre>\n"
                    fence = nil
                } else {
                    open.lines.append(line)
                    fence = open
                }
                continue
            }
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                flushParagraph(); flushList()
                fence = (trimmed.prefix(3), [])
                continue
            }
            if trimmed.isEmpty {
                flushParagraph(); flushList()
                continue
            }
            if let found = heading(trimmed) {
                flushParagraph(); flushList()
                let tag = "h\(min(found.level + 2, 6))"
                output += "<\(tag)>" + inline(found.text) + "</\(tag)>\n"
                continue
            }
            if let item = listItem(trimmed) {
                flushParagraph()
                if let current = list, current.ordered != item.ordered { flushList() }
                list = (item.ordered, (list?.items ?? []) + [item.text])
                continue
            }
            if var current = list, line.first == " " {
                // An indented line continues the last item.
                let last = current.items.count - 1
                current.items[last] = Substring(String(current.items[last]) + " " + String(trimmed))
                list = current
                continue
            }
            flushList()
            paragraph.append(line)
        }
        if let open = fence {
            // An unclosed fence runs to the end, as in CommonMark.
            output += "<pre><code>" + escape(open.lines.joined(separator: "\n")) + "</code></pre>\n"
        }
        flushParagraph(); flushList()
        return output
    }

    /// `# Title` → (1, "Title"): one to six `#` followed by a space.
    private static func heading(_ line: Substring) -> (level: Int, text: Substring)? {
        let marks = line.prefix { $0 == "#" }.count
        guard (1...6).contains(marks) else { return nil }
        let rest = line.dropFirst(marks)
        guard rest.isEmpty || rest.first == " " else { return nil }
        var text = Substring(rest.trimmingCharacters(in: .whitespaces))
        // Closing hashes after a space (`## Title ##`), not a `#` that is part of a word (`C#`).
        if let space = text.lastIndex(of: " "), text[text.index(after: space)...].allSatisfy({ $0 == "#" }) {
            text = text[..<space]
        } else if text.allSatisfy({ $0 == "#" }) {
            text = ""
        }
        return (marks, Substring(text.trimmingCharacters(in: .whitespaces)))
    }

    /// `- item`, `* item`, `+ item` (unordered) or `12. item` (ordered).
    private static func listItem(_ line: Substring) -> (ordered: Bool, text: Substring)? {
        if let first = line.first, "-*+".contains(first), line.dropFirst().first == " " {
            return (false, line.dropFirst(2))
        }
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        guard (1...9).contains(digits.count) else { return nil }
        let rest = line.dropFirst(digits.count)
        guard rest.hasPrefix(". ") || rest.hasPrefix(") ") else { return nil }
        return (true, rest.dropFirst(2))
    }

    /// Code spans, links, strong and emphasis within one block; everything else escaped.
    static func inline(_ text: Substring) -> String {
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "`", let close = text[next...].firstIndex(of: "`") {
                output += "<code>" + escape(text[next..<close]) + "</code>"
                index = text.index(after: close)
                continue
            }
            if character == "[", let link = link(in: text, at: index) {
                output += link.html
                index = link.end
                continue
            }
            if character == "*" || character == "_" {
                let atWordStart = index == text.startIndex || !(text[text.index(before: index)].isLetter || text[text.index(before: index)].isNumber)
                let double = text[next...].first == character
                let marker = String(repeating: String(character), count: double ? 2 : 1)
                let start = double ? text.index(after: next) : next
                if character == "*" || atWordStart, start < text.endIndex, text[start] != " ",
                   let close = text[start...].range(of: marker), close.lowerBound > start {
                    let tag = double ? "strong" : "em"
                    output += "<\(tag)>" + inline(text[start..<close.lowerBound]) + "</\(tag)>"
                    index = close.upperBound
                    continue
                }
            }
            output += escape(String(character))
            index = next
        }
        return output
    }

    /// `[text](target)` at `start`: a link when the target is http(s), else the text alone.
    private static func link(in text: Substring, at start: Substring.Index) -> (html: String, end: Substring.Index)? {
        guard let closeBracket = text[start...].firstIndex(of: "]") else { return nil }
        let open = text.index(after: closeBracket)
        guard open < text.endIndex, text[open] == "(" else { return nil }
        // The matching parenthesis: a target may hold balanced ones (`f(x)`).
        var depth = 0
        var closing: Substring.Index?
        for position in text[open...].indices {
            if text[position] == "(" { depth += 1 } else if text[position] == ")" { depth -= 1 }
            if depth == 0 { closing = position; break }
        }
        guard let closeParen = closing else { return nil }
        let label = inline(text[text.index(after: start)..<closeBracket])
        let target = text[text.index(after: open)..<closeParen].trimmingCharacters(in: .whitespaces)
        let end = text.index(after: closeParen)
        guard isSafeTarget(target) else { return (label, end) }
        return ("<a href=\"\(escape(target))\" rel=\"nofollow noopener\">\(label)</a>", end)
    }

    /// Only absolute http(s) addresses without spaces or control characters become links.
    static func isSafeTarget(_ target: String) -> Bool {
        let lowered = target.lowercased()
        return (lowered.hasPrefix("https://") || lowered.hasPrefix("http://"))
            && !target.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f }
    }

    private static func escape(_ text: some StringProtocol) -> String { RegistryPages.escapeHTML(String(text)) }
}
