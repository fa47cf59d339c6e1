import ArgumentParser
import CraftCore

/// The `craft` tool: run, evaluate and train encoders and backends (docs/cli.md).
public struct CraftCommand: ParsableCommand, HoistsGlobalOptions {
    public static let configuration = CommandConfiguration(
        commandName: "craft",
        abstract: "Run, evaluate, serve and fine-tune codebook-anchored vision encoders and language backends.",
        discussion: """
            Examples (from the repository root, on the embedded registry registry/;
            D=examples/data/digits):
              craft run --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --backend digits-gpt2 --image $D/images/strong/0000.png \\
                  --prompt "what digit is this ?"
              craft eval --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --backend digits-llama --data $D/strong-test.jsonl --limit 100 \\
                  --keep-ratio 0.8
              craft serve --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --backend digits-llama --port 8080
              craft train --registry registry --encoder digits-siglip-vq@1.0.0 \\
                  --surrogate digits-llama --data $D/strong-train.jsonl \\
                  --output adapted
              craft stats --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --data $D/strong-train.jsonl --output stats
              craft tokens --registry registry --encoder digits-siglip-vq@1.1.0 \\
                  --image $D/images/strong/0000.png
              craft codebook examples/codebooks/tiny-codebook.safetensors --json
              craft forward --model MODEL_DIR --tokens 1,2,3 --out logits.safetensors
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
