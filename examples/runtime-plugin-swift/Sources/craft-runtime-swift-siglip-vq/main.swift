// A runtime plugin written in Swift with CraftPluginKit. It serves two runtimes of the miniature from
// its own process: `swift-siglip-vq` (the SigLIP-VQ encoder) and `swift-gpt2` (the GPT-2 backend).
// The plugin is only its models: the kit speaks craft.runtime/v1 (docs/runtime-protocol.md). Here the
// models are Craft's own runtimes, so the answers equal the built-in ones; a plugin author puts
// theirs in their place. Install the executable under each id it serves (a link is enough):
// craft-runtime-swift-siglip-vq and craft-runtime-swift-gpt2.
import CraftBundles
import CraftCore
import CraftModels
import CraftPluginKit
import CraftRuntimes
import Foundation
import TensorCore

/// The bundle's SigLIP tower and codebook, run by CraftModels.
struct SiglipVQModel: PluginEncoderModel {
    let encoder: SiglipVQEncoder

    init(directory: URL) throws {
        // The bundle Craft unpacked and verified; read it as a siglip-vq bundle.
        encoder = try SiglipVQRuntime.load(try BundleArchive.open(directory: directory, verifyFiles: false))
    }

    var grid: (rows: Int, columns: Int) { encoder.grid }

    func encode(pixels: [Float], shape: [Int]) throws -> (codes: [Int32], residualNorms: [Float]) {
        let tokens = try encoder.encode(Tensor(pixels, shape: shape))
        return (tokens.flatMap(\.codes.scalars), tokens.flatMap(\.residualNorms))
    }
}

/// The bundle's GPT-2, tokenizer and projector, run by CraftModels.
struct GPT2Model: PluginBackendModel {
    let backend: DecoderBackend

    init(directory: URL) throws {
        backend = try DecoderRuntime.load(try BundleArchive.open(directory: directory, verifyFiles: false), architecture: .gpt2)
    }

    func tokenize(_ text: String) throws -> [Int] { try backend.tokenize(text).map(Int.init) }

    func detokenize(_ tokens: [Int]) throws -> String { try backend.detokenize(tokens.map(Int32.init)) }

    func generate(_ prompt: [PluginPromptSegment], options: PluginGenerationOptions) throws -> PluginGeneration {
        let segments: [PromptSegment] = try prompt.map { segment in
            switch segment {
            case .text(let text): return .text(text)
            case .tokens(let ids): return .tokens(ids.map(Int32.init))
            case .visual(_, let count, _, let vectors, let dimension):
                // The projector reads the vectors in the codebook's space.
                guard let vectors else { throw PluginFailure("this backend projects codebook-space vectors; the prompt's image came without them") }
                return .vectors(Tensor(vectors, shape: [count, dimension]))
            }
        }
        var generation = GenerationOptions(maximumNewTokens: options.maximumTokens)
        generation.temperature = Float(options.temperature)
        generation.topK = options.topK
        generation.seed = options.seed
        generation.stopSequences = options.stopSequences
        let answer = try backend.generate(segments, options: generation)
        let reason: PluginFinishReason = switch answer.finishReason {
        case .endOfSequence: .endOfSequence
        case .stopSequence: .stopSequence
        case .length: .length
        case .contextFull: .contextFull
        }
        return PluginGeneration(text: answer.text, tokens: answer.tokens.map(Int.init), finishReason: reason)
    }
}

var server = PluginServer(plugin: "swift-miniature", version: "1.0.0")
server.encoder("swift-siglip-vq", version: "1.0.0", summary: "SigLIP-VQ encoder served by a Swift plugin (CraftPluginKit)") { request in
    try SiglipVQModel(directory: request.directory)
}
server.backend("swift-gpt2", version: "1.0.0", summary: "GPT-2 backend served by a Swift plugin (CraftPluginKit)") { request in
    try GPT2Model(directory: request.directory)
}
server.run()
