// The hand-written GPT-2 and Llama-3 split matchers must give exactly the regex engine's matches.
// ICU (checked against the tokenizers library by the fixture tests) is the oracle here.
import Foundation
import Testing

@testable import CraftModels

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Hand-written split patterns agree with the regex engine")
struct TokenizerSplitPatternTests {
    /// Characters that exercise every branch: contractions in both cases, letters, digits, spaces,
    /// line breaks, other whitespace, punctuation, combining marks, CJK, emoji, long s.
    static let alphabet: [String] = [
        "'", "'", "s", "S", "t", "T", "r", "R", "e", "E", "v", "l", "L", "m", "d", "D", "a", "z", "Q",
        "0", "7", "9", "½", "Ⅻ", "٣", " ", " ", " ", "\t", "\n", "\r", "\r\n", "\u{0B}", "\u{85}", "\u{A0}",
        "\u{3000}", "\u{2028}", ".", ",", "!", "?", "-", "_", "(", "\"", "#", "é", "e\u{301}", "\u{301}",
        "ß", "Ω", "ж", "中", "文", "😀", "👍🏽", "\u{200D}", "\u{17F}", "\u{1C}", "$", "€",
    ]

    static func randomText(_ generator: inout SplitMix64) -> String {
        let length = Int(generator.next() % 24)
        return (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }.joined()
    }

    static func offsets(_ ranges: [Range<String.Index>], in text: String) -> [[Int]] {
        let scalars = text.unicodeScalars
        return ranges.map {
            [scalars.distance(from: scalars.startIndex, to: $0.lowerBound), scalars.distance(from: scalars.startIndex, to: $0.upperBound)]
        }
    }

    @Test("GPT-2 and Llama-3 matchers equal ICU on random and tricky strings", arguments: [gpt2SplitPattern, KnownSplitPattern.llama3Pattern])
    func matchersEqualRegex(pattern: String) throws {
        let fast = try CompiledRegex(oniguruma: pattern, source: "test", path: "pattern")
        let icu = try CompiledRegex(oniguruma: pattern, source: "test", path: "pattern", allowHandWritten: false)
        #expect(fast.known != nil)
        #expect(icu.known == nil)
        var generator = SplitMix64(state: 42)
        var texts = [
            "", " ", "  ", "   x", "x   ", "a  \n  b", "\r\n\r\n", " \n \n x", "I'm You'RE we'Ve it'S 'LL 'ſ",
            "'s's't'x '", "12345 1234567", " .,!\n\n", "hello\tworld", "  \u{A0}x", "e\u{301}\u{301}", "😀😀 x",
        ]
        for _ in 0..<3000 { texts.append(Self.randomText(&generator)) }
        var failures = 0
        for text in texts {
            let expected = Self.offsets(try icu.matches(in: text), in: text)
            let actual = Self.offsets(try fast.matches(in: text), in: text)
            if expected != actual {
                failures += 1
                if failures <= 5 {
                    Issue.record("\(pattern.prefix(12)): \(text.unicodeScalars.map { String($0.value, radix: 16) }) gave \(actual), regex gives \(expected)")
                }
            }
        }
        #expect(failures == 0)
    }
}
