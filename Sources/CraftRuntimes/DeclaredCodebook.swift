// The codebook a backend bundle declares but does not carry: enough for the backend to check hashes
// and shapes; it cannot look codes up, so visual tokens must carry their quantized vectors.
import CraftBundles
import CraftCore

/// A ``CodebookSpace`` known only by its declared identity (hash, entries, dim, depth, metric).
///
/// Backend bundles carry their projector and language model, not the codebook; the compatibility
/// checker proves the encoder's recomputed codebook has this hash. Encoders of the model runtimes
/// attach the quantized vectors to their tokens (`VisualTokens.features`), so the backend never has to
/// look codes up; ``embed(_:)`` and ``quantize(_:count:threads:)`` say so plainly if asked.
public struct DeclaredCodebook: CodebookSpace {
    /// K, as declared.
    public let entries: Int
    /// D, as declared.
    public let dimension: Int
    /// Residual levels, as declared.
    public let depth: Int
    /// The distance, as declared.
    public let metric: CodebookMetric
    /// The declared hash (the compatibility checker proves the encoder's recomputed hash equals it).
    public let hash: String
    /// The bundle that declared it, for messages.
    public let owner: String

    /// The codebook a manifest declares.
    public init(_ descriptor: CodebookDescriptor, owner: String) {
        entries = descriptor.entries
        dimension = descriptor.dimension
        depth = descriptor.depth
        metric = descriptor.metric
        hash = descriptor.hash
        self.owner = owner
    }

    /// Always throws: the vectors are not in the backend bundle.
    public func quantize(_ features: [Float], count: Int, threads: Int) throws -> Quantization {
        throw CraftCoreError(.invalidFeatures, "\(owner) does not carry its codebook's vectors, so it cannot quantize; quantize with the paired encoder")
    }

    /// Always throws: the vectors are not in the backend bundle.
    public func embed(_ codes: [Int32]) throws -> [Float] {
        throw CraftCoreError(.invalidFeatures, "\(owner) does not carry its codebook's vectors, so it cannot look codes up; pass visual tokens with their quantized features (as the paired encoder produces)")
    }
}
