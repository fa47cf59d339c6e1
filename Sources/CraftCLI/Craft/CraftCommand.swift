import ArgumentParser
import CraftCore

/// The `craft` tool: run, evaluate and train encoders and backends (docs/cli.md).
public struct CraftCommand: ParsableCommand, HoistsGlobalOptions {
    public static let configuration = CommandConfiguration(
        commandName: "craft",
        abstract: "Run, evaluate, serve and fine-tune codebook-anchored vision encoders and language backends.",
        discussion: """
            Examples (from the repository root, on the embedded registry registry/):
              craft run --encoder digits-siglip-vq@1.1.0 --backend digits-gpt2 \\
                  --image examples/data/digits/images/strong/0017.png \\
                  --prompt "what digit is this ?"
              craft eval --encoder digits-siglip-vq@1.1.0 --backend digits-llama \\
                  --data examples/data/digits/strong-test.jsonl --limit 20 \\
                  --keep-ratio 0.8
              craft serve --encoder digits-siglip-vq@1.1.0 --backend digits-llama --port 0
              craft train --encoder digits-siglip-vq@1.0.0 --surrogate digits-llama \\
                  --data examples/publish-an-encoder/data/train.jsonl \\
                  --validation examples/publish-an-encoder/data/val.jsonl \\
                  --learning-rate 3e-4 --output-directory out
              craft stats --encoder digits-siglip-vq@1.1.0 \\
                  --data examples/publish-an-encoder/data/train.jsonl \\
                  --output-directory stats
              craft tokens --encoder digits-siglip-vq@1.1.0 \\
                  --image examples/data/digits/images/strong/0017.png
              craft codebook examples/codebooks/tiny-codebook.safetensors --json
              craft forward --model Tests/GGUFTests/Fixtures/models/llama_q8_0.gguf \\
                  --tokens 1,17,42 -o logits.safetensors
              craft runtimes
            """,
        version: CraftVersion.current,
        subcommands: [
            CodebookCommand.self, ConvertCommand.self, EvalCommand.self, ForwardCommand.self, RunCommand.self, RuntimesCommand.self,
            ServeCommand.self, StatsCommand.self,
            TokensCommand.self,
            TrainCommand.self,
        ])

    public init() {}
}
