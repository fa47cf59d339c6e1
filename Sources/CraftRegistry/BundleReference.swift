import CraftBundles
import Foundation

/// A request for a bundle: `NAME`, `NAME@VERSION` or `NAME@RANGE` (docs/cli.md).
///
/// ```swift
/// let ref = try BundleReference(parsing: "clinical-vq@^1.2")
/// ```
public struct BundleReference: Sendable, Equatable, CustomStringConvertible {
    /// Which versions the reference admits.
    public enum Requirement: Sendable, Equatable {
        /// The newest non-yanked version (stable unless pre-releases are asked for).
        case latest
        /// Exactly this version, yanked or not.
        case exact(String)
        /// The newest non-yanked version in the range.
        case range(String)
    }

    /// The bundle name.
    public var name: String
    /// The version requirement.
    public var requirement: Requirement

    public init(name: String, requirement: Requirement = .latest) {
        self.name = name
        self.requirement = requirement
    }

    /// Parses `NAME`, `NAME@VERSION` or `NAME@RANGE`.
    ///
    /// - Throws: ``RegistryError/Code/badReference`` naming the part that is wrong.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        guard Self.isValidName(name) else {
            throw RegistryError(
                .badReference, "'\(text)' does not start with a valid bundle name (lowercase letters, digits, '.', '_', '-', at most 64 characters, starting with a letter or digit); write NAME, NAME@VERSION or NAME@RANGE")
        }
        self.name = name
        guard parts.count == 2 else {
            self.requirement = .latest
            return
        }
        let version = parts[1].trimmingCharacters(in: .whitespaces)
        if version.isEmpty {
            throw RegistryError(.badReference, "'\(text)' has nothing after '@'; write NAME@1.2.3 or NAME@^1.2")
        }
        if SemanticVersion(version) != nil {
            self.requirement = .exact(version)
        } else {
            do {
                _ = try VersionRange(version)
            } catch {
                throw RegistryError(
                    .badReference, "'\(version)' in '\(text)' is neither a SemVer version nor a version range (\(error.localizedDescription)); write e.g. 1.2.3, ^1.2, ~1.2.3, >=1.0 <2.0 or 1.x", cause: error)
            }
            self.requirement = .range(version)
        }
    }

    /// Whether `name` matches `[a-z0-9][a-z0-9._-]{0,63}` (docs/bundle-format.md).
    public static func isValidName(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard (1...64).contains(scalars.count) else { return false }
        func allowed(_ s: Unicode.Scalar, first: Bool) -> Bool {
            switch s {
            case "a"..."z", "0"..."9": true
            case ".", "_", "-": !first
            default: false
            }
        }
        return scalars.enumerated().allSatisfy { allowed($0.element, first: $0.offset == 0) }
    }

    public var description: String {
        switch requirement {
        case .latest: name
        case .exact(let version): "\(name)@\(version)"
        case .range(let range): "\(name)@\(range)"
        }
    }
}
