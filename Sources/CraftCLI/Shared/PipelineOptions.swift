import ArgumentParser
import CraftCore
import CraftRegistry
import CraftRuntimes

/// The options `craft run` and `craft eval` share: the encoder and backend bundles, and how each
/// answer is generated (`--max-tokens`, `--keep-ratio`, `--keep-position-ids`). Used with `@OptionGroup`.
struct PipelineOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The encoder: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].", valueName: "bundle"))
    var encoder: String

    @Option(help: ArgumentHelp("The backend: a .craft file, a bundle directory or NAME[@VERSION|@RANGE].", valueName: "bundle"))
    var backend: String

    @Option(name: .long, help: "The most tokens to generate per answer.")
    var maxTokens = 32

    @Option(name: .long, help: "The fraction of visual tokens to keep, in (0, 1]; 1 keeps them all.")
    var keepRatio = 1.0

    @Flag(name: .customLong("keep-position-ids"), help: "Let the visual tokens --keep-ratio keeps keep their original position ids (the token at grid index g sits at the image's first position + g, the text after the image after the whole grid) instead of being renumbered; the llama, qwen2 and gpt2 backends can, other backends refuse (docs/token-pruning.md). Example: --keep-ratio 0.5 --keep-position-ids")
    var keepPositionIDs = false

    /// Refuses (exit 64) a negative `--max-tokens`, a `--keep-ratio` outside (0, 1], and a bundle
    /// argument that is neither a path nor a registry reference.
    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be 0 or more, not \(maxTokens).") }
        guard keepRatio > 0, keepRatio <= 1 else {
            throw ValidationError("--keep-ratio must be in (0, 1], such as 0.5 (1 keeps every token), not \(keepRatio).")
        }
        for side in [encoder, backend] where !BundleSource.looksLikePath(side) {
            _ = try parseReference(side)
        }
    }

    /// Greedy generation of at most `--max-tokens` tokens, visual tokens numbered as `--keep-position-ids` says.
    var generation: GenerationOptions {
        GenerationOptions(maximumNewTokens: maxTokens, visualPositionIDs: keepPositionIDs ? .original : .consecutive)
    }

    /// Steps 1 to 4 of `craft run` (docs/architecture.md) in `workspace`: resolves and opens both
    /// bundles in the registry `registry` selects, checks the pair (on failure the report is printed,
    /// as JSON with `--json`, and the exit status is 3), and loads the ``Pipeline`` with the
    /// environment's runtimes; warns when `--keep-ratio` will prune with uniform code frequencies.
    func pipeline(in workspace: RuntimeWorkspace, registry: RegistryOptions, environment: CraftEnvironment) throws -> Pipeline {
        let pipeline = try workspace.pipeline(
            encoder: encoder, backend: backend, registry: try registry.resolvedRegistry(), runtimes: environment.runtimes,
            json: registry.json)
        pipeline.warnIfPruningUniformly(keepRatio: keepRatio)
        return pipeline
    }
}
