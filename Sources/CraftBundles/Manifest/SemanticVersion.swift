// Semantic Versioning 2.0.0 (https://semver.org): parsing and precedence.
import Foundation

/// A Semantic Versioning 2.0.0 version: `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`.
///
/// Ordering follows SemVer precedence: numeric core, then a pre-release sorts before its release,
/// pre-release identifiers compare one by one (numeric ones numerically and below alphanumeric ones,
/// alphanumeric ones in ASCII order, a shorter list first when all shared ones are equal). Build
/// metadata has no precedence; ``isSamePrecedence(as:)`` ignores it, while `<` uses it only as a final
/// tie-break so that `Comparable` stays a strict total order consistent with `==`.
///
/// ```swift
/// let v = try SemanticVersion("1.2.0-beta.2")
/// v < SemanticVersion(major: 1, minor: 2, patch: 0)   // true
/// ```
public struct SemanticVersion: Sendable, Hashable, Comparable, Codable, LosslessStringConvertible {
    public var major: UInt64
    public var minor: UInt64
    public var patch: UInt64
    /// Pre-release identifiers (`["beta", "2"]` for `-beta.2`); empty for a release.
    public var prerelease: [String]
    /// Build metadata identifiers (`["sha", "5114f85"]` for `+sha.5114f85`).
    public var build: [String]

    /// A version from its parts; identifiers are not checked (use ``init(parsing:)`` for text).
    public init(major: UInt64, minor: UInt64, patch: UInt64, prerelease: [String] = [], build: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
        self.build = build
    }

    /// Parses a SemVer 2.0.0 version string, strictly (no `v` prefix, no leading zeros).
    ///
    /// - Throws: ``BundleError`` with code ``BundleError/Code/invalidVersion`` naming what is wrong.
    public init(parsing text: String) throws {
        func fail(_ why: String) -> BundleError {
            BundleError(.invalidVersion, "'\(text)' is not a Semantic Versioning 2.0 version: \(why); write MAJOR.MINOR.PATCH, for example 1.0.0 or 1.2.0-beta.1")
        }
        var rest = Substring(text)
        var buildIDs: [String] = []
        if let plus = rest.firstIndex(of: "+") {
            buildIDs = rest[rest.index(after: plus)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            rest = rest[..<plus]
            guard !buildIDs.isEmpty, buildIDs.allSatisfy({ !$0.isEmpty && $0.allSatisfy(Self.isIdentifierCharacter) }) else {
                throw fail("build metadata must be dot-separated non-empty identifiers of [0-9A-Za-z-]")
            }
        }
        var preIDs: [String] = []
        if let dash = rest.firstIndex(of: "-") {
            preIDs = rest[rest.index(after: dash)...].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            rest = rest[..<dash]
            for identifier in preIDs {
                guard !identifier.isEmpty, identifier.allSatisfy(Self.isIdentifierCharacter) else {
                    throw fail("pre-release identifiers must be dot-separated non-empty identifiers of [0-9A-Za-z-]")
                }
                if identifier.allSatisfy(\.isASCIIDigit), identifier.count > 1, identifier.first == "0" {
                    throw fail("numeric pre-release identifier '\(identifier)' has a leading zero")
                }
            }
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw fail("expected three numbers separated by dots") }
        var numbers: [UInt64] = []
        for part in parts {
            guard !part.isEmpty, part.allSatisfy(\.isASCIIDigit) else { throw fail("'\(part)' is not a number") }
            guard part.count == 1 || part.first != "0" else { throw fail("'\(part)' has a leading zero") }
            guard let value = UInt64(part) else { throw fail("'\(part)' is too large") }
            numbers.append(value)
        }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers[2], prerelease: preIDs, build: buildIDs)
    }

    /// Parses `description`, or returns `nil` when it is not a valid version.
    public init?(_ description: String) {
        guard let parsed = try? SemanticVersion(parsing: description) else { return nil }
        self = parsed
    }

    public var description: String {
        var text = "\(major).\(minor).\(patch)"
        if !prerelease.isEmpty { text += "-" + prerelease.joined(separator: ".") }
        if !build.isEmpty { text += "+" + build.joined(separator: ".") }
        return text
    }

    /// Whether this is a pre-release (it has pre-release identifiers).
    public var isPrerelease: Bool { !prerelease.isEmpty }

    /// The same version without pre-release or build parts.
    public var core: SemanticVersion { SemanticVersion(major: major, minor: minor, patch: patch) }

    /// Whether both versions have the same SemVer precedence (build metadata ignored).
    public func isSamePrecedence(as other: SemanticVersion) -> Bool {
        comparePrecedence(other) == 0
    }

    /// SemVer precedence: -1, 0 or 1.
    public func comparePrecedence(_ other: SemanticVersion) -> Int {
        if major != other.major { return major < other.major ? -1 : 1 }
        if minor != other.minor { return minor < other.minor ? -1 : 1 }
        if patch != other.patch { return patch < other.patch ? -1 : 1 }
        switch (prerelease.isEmpty, other.prerelease.isEmpty) {
        case (true, true): return 0
        case (true, false): return 1
        case (false, true): return -1
        case (false, false): break
        }
        for (left, right) in zip(prerelease, other.prerelease) {
            let result = Self.compareIdentifiers(left, right)
            if result != 0 { return result }
        }
        if prerelease.count == other.prerelease.count { return 0 }
        return prerelease.count < other.prerelease.count ? -1 : 1
    }

    public static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        let order = lhs.comparePrecedence(rhs)
        if order != 0 { return order < 0 }
        return lhs.build.joined(separator: ".") < rhs.build.joined(separator: ".")
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try SemanticVersion(parsing: text)
        } catch let error as BundleError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    private static func compareIdentifiers(_ left: String, _ right: String) -> Int {
        let leftNumeric = left.allSatisfy(\.isASCIIDigit)
        let rightNumeric = right.allSatisfy(\.isASCIIDigit)
        switch (leftNumeric, rightNumeric) {
        case (true, true):
            // Compare digit strings by length then lexically: exact for any size, no overflow.
            if left.count != right.count { return left.count < right.count ? -1 : 1 }
            return left == right ? 0 : (left < right ? -1 : 1)
        case (true, false): return -1
        case (false, true): return 1
        case (false, false):
            let l = Array(left.utf8), r = Array(right.utf8)
            return l == r ? 0 : (l.lexicographicallyPrecedes(r) ? -1 : 1)
        }
    }

    static func isIdentifierCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "-")
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && ("0"..."9").contains(self) }
}
