// CraftRuntimes: the built-in model runtimes (siglip-vq, llama, gpt2) registered for bundles. It
// re-exports CraftPipeline (the Pipeline built from a passing compatibility report), so code that
// imports CraftRuntimes sees both; a runtime author imports CraftPipeline alone.
import CraftBundles
import CraftCore
import CraftModels
@_exported import CraftPipeline

extension RuntimeRegistry {
    /// Every runtime Craft ships, the one registry every command and library entry point starts from:
    /// the model runtimes `siglip-vq` (encoders), `llama` and `gpt2` (backends), each for runtime
    /// versions `^1.0`, and the table runtimes `table-encoder` and `table-backend`.
    ///
    /// Bundle layouts are documented in `docs/runtimes.md`.
    public static var craftDefault: RuntimeRegistry {
        var registry = RuntimeRegistry.tables
        ModelRuntimes.register(in: &registry)
        return registry
    }
}

/// Registration of the model runtimes.
public enum ModelRuntimes {
    /// Runtime id of the SigLIP vision tower quantized into the bundle's codebook.
    public static let siglipVQ = "siglip-vq"
    /// Runtime id of Llama-family decoder backends.
    public static let llama = "llama"
    /// Runtime id of GPT-2 decoder backends.
    public static let gpt2 = "gpt2"

    /// The runtime versions the model runtimes load: `^1.0`.
    public static let versions: VersionRange = (try? VersionRange("^1.0")) ?? .any

    /// Registers `siglip-vq` and a backend runtime per decoder of the model-type table
    /// (``ModelArchitecture/decoders``: `llama`, `gpt2`) in `registry`.
    public static func register(in registry: inout RuntimeRegistry) {
        registry.registerEncoder(siglipVQ, versions: versions,
            summary: "SigLIP vision tower quantized into the bundle's codebook at a configured layer") { bundle in
            try SiglipVQRuntime.load(bundle)
        }
        // Every decoder of CraftModels' model-type table is a backend runtime of the same id.
        for architecture in ModelArchitecture.decoders {
            registry.registerBackend(architecture.name, versions: versions, summary: architecture.summary) { bundle in
                try DecoderRuntime.load(bundle, architecture: architecture)
            }
        }
    }
}

extension Pipeline {
    /// Loads both bundles with every runtime Craft ships (``RuntimeRegistry/craftDefault``) and wires
    /// them; see ``Pipeline/init(pair:encoder:backend:runtimes:)``.
    public init(pair: CheckedPair, encoder: UnpackedBundle, backend: UnpackedBundle) throws {
        try self.init(pair: pair, encoder: encoder, backend: backend, runtimes: .craftDefault)
    }
}
