// The version of this Craft build, checked against bundles' `requires.craft` ranges.

/// The version of Craft this code is (Semantic Versioning 2.0).
///
/// Bundles declare the Craft versions they need (`requires.craft` in `craft.json`); the compatibility
/// checker tests that range against ``current``.
public enum CraftVersion {
    /// The version of this build.
    public static let current = "0.1.0"
}
