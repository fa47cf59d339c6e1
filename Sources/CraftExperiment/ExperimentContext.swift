// Where the miniature reads and writes, and its log.
import Foundation

/// The directories of one experiment run.
public struct ExperimentContext: Sendable {
    /// The exported data (`examples/data/digits`).
    public var dataDirectory: URL
    /// Scratch space: bundle directories, packed bundles, baselines (`.build/experiment`).
    public var workDirectory: URL
    /// The registry the bundles are published into (`registry/`); `nil` publishes nowhere.
    public var registry: URL?
    /// The settings.
    public var settings: ExperimentSettings
    /// Where progress lines go.
    public var log: @Sendable (String) -> Void

    /// Creates a context.
    public init(dataDirectory: URL, workDirectory: URL, registry: URL?, settings: ExperimentSettings,
                log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.dataDirectory = dataDirectory
        self.workDirectory = workDirectory
        self.registry = registry
        self.settings = settings
        self.log = log
    }

    /// A bundle directory under the work directory.
    public func bundleDirectory(_ name: String) -> URL {
        workDirectory.appendingPathComponent("bundles").appendingPathComponent(name)
    }

    /// The packed bundles' directory.
    public var packedDirectory: URL { workDirectory.appendingPathComponent("packed") }
}

/// The names and versions of the miniature's bundles.
public enum MiniatureBundles {
    /// The SigLIP-VQ encoder: 1.0.0 base, 1.1.0 adapted with CRAFT on the strong shift.
    public static let encoder = "digits-siglip-vq"
    /// Backend A, Llama family (the surrogate).
    public static let llama = "digits-llama"
    /// Backend B, GPT-2 family (never trained with the adapted encoder).
    public static let gpt2 = "digits-gpt2"
    /// The base version of every bundle.
    public static let baseVersion = "1.0.0"
    /// The version of the CRAFT-adapted encoder.
    public static let adaptedVersion = "1.1.0"

    /// The continuous control's counterpart of a bundle (work directory only, never published): the
    /// base encoder with its quantizer bypassed, or a backend trained on the base encoder's
    /// continuous features `z_e` instead of its code vectors.
    public static func continuous(_ name: String) -> String { name + "-continuous" }

    /// A bundle's counterpart on another codebook of the same tower (work directory only): the
    /// encoder quantizing on codebook set `set`, or a backend trained on its tokens.
    public static func inSet(_ name: String, _ set: String?) -> String { set.map { "\(name)-\($0)" } ?? name }
}
