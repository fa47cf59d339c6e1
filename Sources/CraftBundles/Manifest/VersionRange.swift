// SemVer ranges with npm's grammar and pre-release rules (node-semver `Range`), for requests like `^1.2`.
import Foundation

/// A set of versions, written the way npm writes ranges.
///
/// Supported forms (combine with spaces for AND, `||` for OR):
/// - exact `1.2.3` (or `=1.2.3`) and `*` / `x` / empty for any version;
/// - partial and wildcard `1`, `1.2`, `1.x`, `1.2.*`;
/// - caret `^1.2.3` (`>=1.2.3 <2.0.0`), `^0.2.3` (`>=0.2.3 <0.3.0`), `^0.0.3` (`>=0.0.3 <0.0.4`);
/// - tilde `~1.2.3` (`>=1.2.3 <1.3.0`), `~1.2`, `~1`;
/// - comparators `>=1.0 <2.0`, `>1.2.3`, `<=2`;
/// - hyphen ranges `1.2.3 - 2.3`.
///
/// Pre-releases follow npm: a pre-release version matches only when `includePrerelease` is true, or
/// when a comparator of the same alternative names a pre-release of the same `MAJOR.MINOR.PATCH`
/// (`>=1.2.0-beta.1` admits `1.2.0-beta.3` but not `1.3.0-alpha`). Upper bounds exclude pre-releases
/// of the bound (`^1.2` never admits `2.0.0-rc.1`).
///
/// ```swift
/// let range = try VersionRange("^1.2")
/// range.contains(SemanticVersion("1.4.0")!)                 // true
/// range.contains(SemanticVersion("1.5.0-beta")!)            // false
/// range.contains(SemanticVersion("1.5.0-beta")!, includePrerelease: true)   // true
/// ```
public struct VersionRange: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The text the range was parsed from, trimmed.
    public let text: String
    /// Alternatives (joined by `||`), each a conjunction of comparators.
    let alternatives: [[Comparator]]

    struct Comparator: Sendable, Hashable {
        enum Operation: String, Sendable { case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "=" }
        var operation: Operation
        var version: SemanticVersion
        /// Whether the user wrote this pre-release (not a synthetic `-0` bound).
        var namesPrerelease: Bool

        func admits(_ candidate: SemanticVersion) -> Bool {
            let order = candidate.comparePrecedence(version)
            switch operation {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            case .equal: return order == 0
            }
        }
    }

    /// The range admitting every release.
    public static let any = VersionRange(text: "*", alternatives: [[]])

    init(text: String, alternatives: [[Comparator]]) {
        self.text = text
        self.alternatives = alternatives
    }

    /// Parses a range.
    ///
    /// - Throws: ``BundleError`` with code ``BundleError/Code/invalidVersion`` naming the bad part.
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var alternatives: [[Comparator]] = []
        for alternative in trimmed.components(separatedBy: "||") {
            alternatives.append(try Self.parseAlternative(alternative.trimmingCharacters(in: .whitespaces), in: trimmed))
        }
        self.init(text: trimmed.isEmpty ? "*" : trimmed, alternatives: alternatives)
    }

    /// A range admitting exactly one version (by precedence).
    public init(exactly version: SemanticVersion) {
        self.init(text: version.description, alternatives: [[Comparator(operation: .equal, version: version, namesPrerelease: version.isPrerelease)]])
    }

    public var description: String { text }

    /// Whether `version` is in the range.
    ///
    /// - Parameters:
    ///   - version: The version to test.
    ///   - includePrerelease: Admit pre-releases that fall inside the bounds even when the range does
    ///     not name a pre-release of the same core version (npm's `includePrerelease`).
    public func contains(_ version: SemanticVersion, includePrerelease: Bool = false) -> Bool {
        alternatives.contains { comparators in
            guard comparators.allSatisfy({ $0.admits(version) }) else { return false }
            if !version.isPrerelease || includePrerelease { return true }
            return comparators.contains { comparator in
                comparator.namesPrerelease && comparator.version.major == version.major
                    && comparator.version.minor == version.minor && comparator.version.patch == version.patch
            }
        }
    }

    /// The highest version of `versions` in the range, or `nil`.
    public func bestMatch(in versions: some Sequence<SemanticVersion>, includePrerelease: Bool = false) -> SemanticVersion? {
        versions.filter { contains($0, includePrerelease: includePrerelease) }.max()
    }

    /// Whether the range names a pre-release anywhere (so a resolver may want to consider them).
    public var mentionsPrerelease: Bool {
        alternatives.contains { $0.contains { $0.namesPrerelease } }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try VersionRange(text)
        } catch let error as BundleError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public static func == (lhs: VersionRange, rhs: VersionRange) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    // MARK: - Parsing

    /// A possibly partial version: `1`, `1.2`, `1.x`, `1.2.3-beta`.
    private struct Partial {
        var major: UInt64?
        var minor: UInt64?
        var patch: UInt64?
        var prerelease: [String] = []
        var build: [String] = []

        var full: SemanticVersion? {
            guard let major, let minor, let patch else { return nil }
            return SemanticVersion(major: major, minor: minor, patch: patch, prerelease: prerelease, build: build)
        }
    }

    private static func bound(_ major: UInt64, _ minor: UInt64, _ patch: UInt64, prereleaseZero: Bool = false) -> SemanticVersion {
        SemanticVersion(major: major, minor: minor, patch: patch, prerelease: prereleaseZero ? ["0"] : [])
    }

    private static func parseAlternative(_ text: String, in whole: String) throws -> [Comparator] {
        func fail(_ why: String) -> BundleError {
            BundleError(.invalidVersion, "'\(whole)' is not a version range: \(why); write for example 1.2.3, ^1.2, ~1.2.3, >=1.0 <2.0, 1.x or *")
        }
        var tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        // Hyphen range: A - B.
        if tokens.count == 3, tokens[1] == "-" {
            let low = try parsePartial(tokens[0], fail: fail)
            let high = try parsePartial(tokens[2], fail: fail)
            var result: [Comparator] = []
            if let major = low.major {
                let version = low.full ?? bound(major, low.minor ?? 0, low.patch ?? 0)
                result.append(Comparator(operation: .greaterOrEqual, version: version, namesPrerelease: !low.prerelease.isEmpty))
            }
            result += try desugar(operation: "<=", high, fail: fail)
            return result
        }
        guard !tokens.contains("-") else { throw fail("a hyphen range needs exactly one version on each side of ' - '") }
        // Join an operator written apart from its version (`>= 1.0`).
        var index = 0
        while index < tokens.count {
            if ["<", "<=", ">", ">=", "=", "^", "~"].contains(tokens[index]) {
                guard index + 1 < tokens.count else { throw fail("'\(tokens[index])' has no version after it") }
                let version = tokens.remove(at: index + 1)
                tokens[index] += version
            }
            index += 1
        }
        var result: [Comparator] = []
        for token in tokens {
            var operation = ""
            for candidate in [">=", "<=", ">", "<", "=", "^", "~"] where token.hasPrefix(candidate) {
                operation = candidate
                break
            }
            let rest = String(token.dropFirst(operation.count))
            result += try desugar(operation: operation, try parsePartial(rest, fail: fail), fail: fail)
        }
        return result
    }

    private static func parsePartial(_ text: String, fail: (String) -> BundleError) throws -> Partial {
        if text.isEmpty || text == "*" || text == "x" || text == "X" { return Partial() }
        // A full version with pre-release or build parts must be a strict SemVer version.
        if text.contains("-") || text.contains("+") {
            do {
                let version = try SemanticVersion(parsing: text)
                return Partial(major: version.major, minor: version.minor, patch: version.patch, prerelease: version.prerelease, build: version.build)
            } catch {
                throw fail("'\(text)' is not a valid version")
            }
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 3 else { throw fail("'\(text)' has more than three parts") }
        var numbers: [UInt64?] = []
        var sawWildcard = false
        for part in parts {
            if part == "x" || part == "X" || part == "*" {
                sawWildcard = true
                numbers.append(nil)
                continue
            }
            guard !sawWildcard else { throw fail("'\(text)' has a number after a wildcard") }
            guard !part.isEmpty, part.allSatisfy(\.isASCIIDigit), part.count == 1 || part.first != "0",
                let value = UInt64(part)
            else { throw fail("'\(part)' in '\(text)' is not a number without leading zeros") }
            numbers.append(value)
        }
        while numbers.count < 3 { numbers.append(nil) }
        return Partial(major: numbers[0], minor: numbers[1], patch: numbers[2])
    }

    private static func desugar(operation: String, _ partial: Partial, fail: (String) -> BundleError) throws -> [Comparator] {
        let names = !partial.prerelease.isEmpty
        func c(_ op: Comparator.Operation, _ version: SemanticVersion, names: Bool = false) -> Comparator {
            Comparator(operation: op, version: version, namesPrerelease: names)
        }
        func inc(_ value: UInt64) throws -> UInt64 {
            let (result, overflow) = value.addingReportingOverflow(1)
            guard !overflow else { throw fail("\(value) is too large") }
            return result
        }
        let nothing = [c(.less, bound(0, 0, 0, prereleaseZero: true))]
        guard let major = partial.major else {
            // `*`, `^*`, `>=*`, `<=*` admit everything; `<*` and `>*` admit nothing (as npm).
            return operation == "<" || operation == ">" ? nothing : []
        }
        let next = try inc(major)
        guard let minor = partial.minor else {
            switch operation {
            case ">": return [c(.greaterOrEqual, bound(next, 0, 0))]
            case ">=": return [c(.greaterOrEqual, bound(major, 0, 0))]
            case "<": return [c(.less, bound(major, 0, 0, prereleaseZero: true))]
            case "<=": return [c(.less, bound(next, 0, 0, prereleaseZero: true))]
            default:  // "", "=", "^", "~": the whole major line
                return [c(.greaterOrEqual, bound(major, 0, 0)), c(.less, bound(next, 0, 0, prereleaseZero: true))]
            }
        }
        guard let patch = partial.patch, let version = partial.full else {
            switch operation {
            case ">": return [c(.greaterOrEqual, bound(major, try inc(minor), 0))]
            case ">=": return [c(.greaterOrEqual, bound(major, minor, 0))]
            case "<": return [c(.less, bound(major, minor, 0, prereleaseZero: true))]
            case "<=": return [c(.less, bound(major, try inc(minor), 0, prereleaseZero: true))]
            case "^":
                let upper = major > 0 ? bound(next, 0, 0, prereleaseZero: true) : bound(0, try inc(minor), 0, prereleaseZero: true)
                return [c(.greaterOrEqual, bound(major, minor, 0)), c(.less, upper)]
            default:  // "", "=", "~": the minor line
                return [c(.greaterOrEqual, bound(major, minor, 0)), c(.less, bound(major, try inc(minor), 0, prereleaseZero: true))]
            }
        }
        switch operation {
        case ">": return [c(.greater, version, names: names)]
        case ">=": return [c(.greaterOrEqual, version, names: names)]
        case "<": return [c(.less, version, names: names)]
        case "<=": return [c(.lessOrEqual, version, names: names)]
        case "^":
            let upper: SemanticVersion
            if major > 0 {
                upper = bound(next, 0, 0, prereleaseZero: true)
            } else if minor > 0 {
                upper = bound(0, try inc(minor), 0, prereleaseZero: true)
            } else {
                upper = bound(0, 0, try inc(patch), prereleaseZero: true)
            }
            return [c(.greaterOrEqual, version, names: names), c(.less, upper)]
        case "~":
            return [c(.greaterOrEqual, version, names: names), c(.less, bound(major, try inc(minor), 0, prereleaseZero: true))]
        default:
            return [c(.equal, version, names: names)]
        }
    }
}
