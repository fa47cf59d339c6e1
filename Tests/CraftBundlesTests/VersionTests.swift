import Foundation
import Testing

@testable import CraftBundles

@Suite("Semantic versions")
struct SemanticVersionTests {
    @Test("parses every part and prints it back")
    func parsesAndPrints() throws {
        let version = try SemanticVersion(parsing: "1.20.3-beta.2+build.5")
        #expect(version.major == 1 && version.minor == 20 && version.patch == 3)
        #expect(version.prerelease == ["beta", "2"])
        #expect(version.build == ["build", "5"])
        #expect(version.description == "1.20.3-beta.2+build.5")
    }

    @Test("rejects what SemVer 2.0 forbids", arguments: ["1.2", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "1.2.3+", "v1.2.3", "1.2.3-a..b", "1.2.x", "", "1.2.3.4", "-1.2.3"])
    func rejectsInvalid(_ text: String) {
        #expect(SemanticVersion(text) == nil)
        #expect(throws: BundleError.self) { try SemanticVersion(parsing: text) }
    }

    @Test("orders by precedence as the SemVer 2.0 specification's example")
    func precedenceChain() throws {
        let chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
        let versions = try chain.map { try SemanticVersion(parsing: $0) }
        for index in versions.indices.dropLast() {
            #expect(versions[index] < versions[index + 1], "\(versions[index]) < \(versions[index + 1])")
            #expect(!(versions[index + 1] < versions[index]))
        }
        #expect(versions.shuffled().sorted() == versions)
    }

    @Test("build metadata has no precedence but keeps the order total")
    func buildMetadata() throws {
        let a = try SemanticVersion(parsing: "1.0.0+a"), b = try SemanticVersion(parsing: "1.0.0+b")
        #expect(a.isSamePrecedence(as: b))
        #expect(a != b)
        #expect(a < b && !(b < a))
    }

    @Test("round-trips through JSON as a string")
    func codable() throws {
        let version = try SemanticVersion(parsing: "3.1.4-rc.1")
        let data = try JSONEncoder().encode([version])
        #expect(String(decoding: data, as: UTF8.self) == "[\"3.1.4-rc.1\"]")
        #expect(try JSONDecoder().decode([SemanticVersion].self, from: data) == [version])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([SemanticVersion].self, from: Data("[\"1.0\"]".utf8)) }
    }
}

@Suite("Version ranges")
struct VersionRangeTests {
    func check(_ range: String, admits: [String], rejects: [String], includePrerelease: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let parsed = try VersionRange(range)
        for text in admits {
            let version = try SemanticVersion(parsing: text)
            #expect(parsed.contains(version, includePrerelease: includePrerelease), "\(range) should admit \(text)", sourceLocation: sourceLocation)
        }
        for text in rejects {
            let version = try SemanticVersion(parsing: text)
            #expect(!parsed.contains(version, includePrerelease: includePrerelease), "\(range) should reject \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test("caret ranges follow npm, including 0.x")
    func caret() throws {
        try check("^1.2", admits: ["1.2.0", "1.9.9"], rejects: ["1.1.9", "2.0.0", "2.0.0-rc.1"])
        try check("^1.2.3", admits: ["1.2.3", "1.3.0"], rejects: ["1.2.2", "2.0.0"])
        try check("^0.2.3", admits: ["0.2.3", "0.2.9"], rejects: ["0.3.0", "0.2.2"])
        try check("^0.0.3", admits: ["0.0.3"], rejects: ["0.0.4", "0.0.2"])
        try check("^0", admits: ["0.0.0", "0.9.1"], rejects: ["1.0.0"])
    }

    @Test("tilde, wildcards, exact, any")
    func tildeAndWildcards() throws {
        try check("~1.2.3", admits: ["1.2.3", "1.2.9"], rejects: ["1.3.0", "1.2.2"])
        try check("~1.2", admits: ["1.2.0", "1.2.5"], rejects: ["1.3.0"])
        try check("1.x", admits: ["1.0.0", "1.99.0"], rejects: ["2.0.0", "0.9.0"])
        try check("1.2.*", admits: ["1.2.7"], rejects: ["1.3.0"])
        try check("1.2.3", admits: ["1.2.3", "1.2.3+build"], rejects: ["1.2.4", "1.2.3-rc.1"])
        try check("*", admits: ["0.0.1", "99.0.0"], rejects: ["1.0.0-alpha"])
        try check("", admits: ["1.0.0"], rejects: [])
    }

    @Test("comparators, conjunctions, alternatives and hyphen ranges")
    func comparators() throws {
        try check(">=1.0 <2.0", admits: ["1.0.0", "1.5.2"], rejects: ["0.9.9", "2.0.0"])
        try check(">= 1.0.0 < 2", admits: ["1.9.0"], rejects: ["2.0.0"])
        try check(">1.2", admits: ["1.3.0"], rejects: ["1.2.9"])
        try check("<=1.2", admits: ["1.2.9"], rejects: ["1.3.0"])
        try check("<1.2.0", admits: ["1.1.9"], rejects: ["1.2.0"])
        try check("^1.0 || ^3.0", admits: ["1.2.0", "3.4.0"], rejects: ["2.0.0"])
        try check("1.2.3 - 2.3", admits: ["1.2.3", "2.3.9"], rejects: ["2.4.0", "1.2.2"])
    }

    @Test("pre-releases match only when asked or named for the same core")
    func prereleases() throws {
        try check("^1.2.0-beta.1", admits: ["1.2.0-beta.1", "1.2.0-beta.3", "1.2.0", "1.4.0"], rejects: ["1.3.0-alpha", "1.2.0-alpha"])
        try check(">=1.0.0", admits: ["2.0.0"], rejects: ["2.0.0-rc.1"])
        try check(">=1.0.0", admits: ["2.0.0-rc.1"], rejects: ["0.9.0-rc.1"], includePrerelease: true)
        try check("^1.2", admits: ["1.5.0-beta"], rejects: ["2.0.0-rc.1"], includePrerelease: true)
    }

    @Test("best match picks the highest admitted version")
    func bestMatch() throws {
        let versions = try ["1.0.0", "1.4.0", "1.5.0-rc.1", "2.0.0"].map { try SemanticVersion(parsing: $0) }
        #expect(try VersionRange("^1.0").bestMatch(in: versions)?.description == "1.4.0")
        #expect(try VersionRange("^1.0").bestMatch(in: versions, includePrerelease: true)?.description == "1.5.0-rc.1")
        #expect(try VersionRange("^3.0").bestMatch(in: versions) == nil)
    }

    @Test("rejects malformed ranges with a sentence naming them", arguments: ["^", ">=", "1.2.3.4", "1.x.3", "01.2", "^1.2.3-", "1 - ", "abc", ">=1.0 - 2.0"])
    func rejectsMalformed(_ text: String) {
        #expect(throws: BundleError.self) { try VersionRange(text) }
        do {
            _ = try VersionRange(text)
        } catch let error as BundleError {
            #expect(error.code == .invalidVersion)
            #expect(error.message.contains("not a version range"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
