import ArgumentParser
import CraftFiles
import CraftModels
import Foundation
import SafeTensors
import TensorCore

/// `craft forward`: runs a Hugging Face-layout model directory on token ids or pixels and writes the
/// outputs to a safetensors file, to check a converted checkpoint against its original (docs/cli.md).
public struct ForwardCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run a Llama, Qwen2, GPT-2 or SigLIP model directory (or a Llama/Qwen2 .gguf file) and write its outputs to safetensors.",
        discussion: """
            The model directory holds config.json and model.safetensors (or a sharded index) in Hugging Face \
            layout; the architecture is read from config.json. Decoders take --tokens and write `logits` [T, V]; \
            a SigLIP vision tower takes --pixels (a safetensors file holding `pixel_values` [B, 3, H, W]) and \
            writes `last_hidden_state` [B, N, H], plus `pooler_output` [B, H] when the model has a head. \
            A SigLIP text tower (or a full SigLIP model) given --tokens writes `last_hidden_state` [1, T, H] \
            and `pooler_output` [1, P] (pad the ids to the model's max length as SigLIP expects). \
            A llama.cpp .gguf file holding a Llama or Qwen2 decoder takes --tokens too (docs/gguf.md).

            Examples (from the repository root):
              craft forward --model Tests/GGUFTests/Fixtures/models/llama_q8_0.gguf \\
                  --tokens 1,17,42 --output logits.safetensors

            With a Hugging Face model directory (docs/models.md):
              craft forward --model MODEL_DIR --tokens 1,15043,3186 -o logits.safetensors
              craft forward --model SIGLIP_DIR --pixels pixels.safetensors \\
                  -o features.safetensors
            """)

    @Option(name: .long, help: "The Hugging Face-layout model directory, or a .gguf file.")
    public var model: String

    @Option(name: .long, help: "Comma-separated token ids (for Llama and GPT-2).")
    public var tokens: String?

    @Option(name: .long, help: "A safetensors file holding `pixel_values` [B, 3, H, W] (for SigLIP).")
    public var pixels: String?

    @Option(name: [.short, .long], help: ArgumentHelp("The .safetensors file to write the outputs to.", valueName: "file"))
    public var output: String

    public init() {}

    public func validate() throws {
        guard (tokens == nil) != (pixels == nil) else {
            throw ValidationError("Pass exactly one of --tokens (for a language model) or --pixels (for a vision model).")
        }
        if let tokens { _ = try Self.parseTokens(tokens) }
    }

    static func parseTokens(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var ids: [Int] = []
        for part in parts {
            guard let id = Int(part), id >= 0 else {
                throw ValidationError("--tokens '\(text)' holds '\(part)', which is not a non-negative integer; pass ids like 1,2,3.")
            }
            ids.append(id)
        }
        return ids
    }

    public func run() throws {
        if model.lowercased().hasSuffix(".gguf") {
            // A llama.cpp GGUF file holding a Llama or Qwen2 decoder (docs/gguf.md).
            guard let tokens else { throw CommandError(.usage, "\(model) is a GGUF language model; pass --tokens, not --pixels.") }
            let ids = try Self.parseTokens(tokens)
            // Exact products (the dequantized weights), as transformers computes them.
            let decoder = try LlamaModel(gguf: URL(fileURLWithPath: model), activations: .float32)
            var writer = SafeTensorsWriter(metadata: ["made_by": "craft forward", "architecture": decoder.configuration.modelType, "format": "gguf"])
            let logits = try withoutGradients { try decoder.logits(tokens: ids) }
            try writer.add("logits", floats: logits.scalars, shape: logits.shape)
            try write(writer, architecture: "\(decoder.configuration.modelType) (GGUF)", kept: WeightMatrix.summary(of: decoder.weights.values))
            return
        }
        let directory = URL(fileURLWithPath: model)
        let architecture = try ModelArchitecture.detect(directory: directory)
        var writer = SafeTensorsWriter(metadata: ["made_by": "craft forward", "architecture": architecture.name])
        var kept: String?
        switch architecture.role {
        case .decoder:
            guard let tokens, let loadDecoder = architecture.loadDecoder else {
                throw CommandError(.usage, "\(model) is a \(architecture.name) language model; pass --tokens, not --pixels.")
            }
            let ids = try Self.parseTokens(tokens)
            let decoder = try loadDecoder(directory)
            kept = WeightMatrix.summary(of: decoder.weights.values)
            let logits = try withoutGradients { try decoder.logits(tokens: ids) }
            try writer.add("logits", floats: logits.scalars, shape: logits.shape)
        case .siglipText:
            guard let tokens else {
                throw CommandError(.usage, "\(model) is a SigLIP text model; pass --tokens, not --pixels.")
            }
            try writeText(ids: try Self.parseTokens(tokens), directory: directory, into: &writer)
        case .siglipVision:
            guard let pixels else {
                if let tokens, Self.hasTextTower(directory) {
                    try writeText(ids: try Self.parseTokens(tokens), directory: directory, into: &writer)
                    break
                }
                throw CommandError(.usage, "\(model) is a SigLIP vision model; pass --pixels FILE holding pixel_values, not --tokens.")
            }
            let input = try Self.readPixels(pixels)
            let tower = try SiglipVisionModel(directory: directory)
            let output = try withoutGradients { try tower(pixelValues: input) }
            try writer.add("last_hidden_state", floats: output.lastHiddenState.scalars, shape: output.lastHiddenState.shape)
            if let pooled = output.poolerOutput {
                try writer.add("pooler_output", floats: pooled.scalars, shape: pooled.shape)
            }
        }
        try write(writer, architecture: architecture.name, kept: kept)
    }

    /// Writes the outputs and says what was written: the architecture read and each tensor's shape.
    func write(_ writer: SafeTensorsWriter, architecture: String, kept: String?) throws {
        do {
            try writer.write(to: URL(fileURLWithPath: output))
            let written = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: output))
            let tensors = try written.names.map { "\($0) \(try written.info($0).shape)" }.joined(separator: ", ")
            Output.line("wrote \(output) from a \(architecture) model: \(tensors)")
            if let kept, !kept.isEmpty { Output.note("weights in memory: \(kept)") }
        } catch {
            throw CommandError(.other, "cannot write \(output): \((error as? LocalizedError)?.errorDescription ?? "\(error)"); check the directory exists and is writable.")
        }
    }

    /// Runs a SigLIP text tower on one row of ids: `last_hidden_state` [1, T, H] and `pooler_output` [1, P].
    func writeText(ids: [Int], directory: URL, into writer: inout SafeTensorsWriter) throws {
        let tower = try SiglipTextModel(directory: directory)
        let output = try withoutGradients { try tower(tokens: [ids]) }
        try writer.add("last_hidden_state", floats: output.lastHiddenState.scalars, shape: output.lastHiddenState.shape)
        try writer.add("pooler_output", floats: output.poolerOutput.scalars, shape: output.poolerOutput.shape)
    }

    /// Whether a SigLIP directory's config.json has a `text_config` (a full `SiglipModel`).
    static func hasTextTower(_ directory: URL) -> Bool {
        guard let data = try? BoundedFile.read(directory.appendingPathComponent("config.json"), limit: ModelFileLimits.maximumConfigurationBytes),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["text_config"] != nil
    }

    static func readPixels(_ path: String) throws -> Tensor {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError(.notFound, "pixel file \(path) does not exist; pass a safetensors file holding pixel_values [B, 3, H, W].")
        }
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CommandError(.integrity, "cannot read pixel file \(path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")")
        }
        guard file.contains("pixel_values") else {
            throw CommandError(.usage, "pixel file \(path) has no tensor 'pixel_values' (it holds \(file.names.joined(separator: ", "))); store the pixels under that name.")
        }
        do {
            let info = try file.info("pixel_values")
            guard info.dtype.isFloatingPoint else {
                throw CommandError(.usage, "pixel_values in \(path) has dtype \(info.dtype.rawValue); store floating-point pixels.")
            }
            return Tensor(try file.floats("pixel_values"), shape: info.shape)
        } catch let error as CommandError {
            throw error
        } catch {
            throw CommandError(.integrity, "cannot read pixel_values in \(path): \((error as? LocalizedError)?.errorDescription ?? "\(error)")")
        }
    }
}
