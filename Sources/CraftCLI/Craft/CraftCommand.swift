import ArgumentParser

/// The `craft` tool: run, evaluate and train encoders and backends (DESIGN.md section 9).
public struct CraftCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "craft",
        abstract: "Run, evaluate and fine-tune codebook-anchored vision encoders and language backends.",
        discussion: """
            Examples:
              craft codebook registry/encoders/base/codebook.safetensors
              craft codebook CODEBOOK.safetensors --tensor codebook --metric cosine --json
              craft forward --model MODEL_DIR --tokens 1,2,3 --out logits.safetensors
              craft run --encoder derm-vq --backend tiny-llm --image x.png --prompt "What is shown?"
              craft tokens --encoder derm-vq --image x.png
              craft eval --encoder derm-vq --backend tiny-llm --data val.jsonl --keep-ratio 0.5
              craft train --encoder base-vq --surrogate tiny-llm --data train.jsonl
              craft stats --encoder derm-vq --data train.jsonl --output out
            """,
        subcommands: [
            CodebookCommand.self, EvalCommand.self, ForwardCommand.self, RunCommand.self, StatsCommand.self, TokensCommand.self,
            TrainCommand.self,
        ])

    public init() {}
}
