import ArgumentParser
import CraftCore

/// The `craft-registry` tool: look up, pair, pack, verify, publish and pull bundles (docs/cli.md).
///
/// The root holds only the shared options (so `craft-registry --registry PATH COMMAND` works) and
/// the subcommands, one file each in this folder. Exit codes: 0 success, 1 other error, 2 not
/// found, 3 incompatible pair, 4 integrity or signature failure, 64 usage (docs/cli.md).
public struct RegistryCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "craft-registry",
        abstract: "Look up, pair, pack, verify, publish and pull Craft bundles.",
        discussion: """
            The registry is --registry PATH-OR-URL, else $CRAFT_REGISTRY, else ./registry when \
            present, else ~/.craft/registry. An https:// URL reads a registry any web server serves \
            (read-only; bundles are downloaded into the cache and verified; --offline reads the \
            cache only). REF is NAME, NAME@VERSION or NAME@RANGE (^1.2, ~1.2.3, \
            ">=1.0 <2.0", 1.x, *). Every command takes --json. Exit codes: 0 ok, 1 error, \
            2 not found, 3 incompatible pair, 4 integrity or signature failure, 64 usage.

            Examples (from the repository root):
              craft-registry search strong
              craft-registry info digits-siglip-vq@^1.1
              craft-registry pair digits-siglip-vq digits-gpt2
              craft-registry pack examples/bundles/digits-vq --output-directory dist
              craft-registry --registry my-registry publish dist/digits-vq-1.0.0.craft
              craft-registry pull digits-llama
              craft-registry reindex
              craft-registry cache list

            With your own servers (docs/registry.md):
              craft-registry --registry https://HOST/PATH search radiology
              craft-registry push dist/NAME-VERSION.craft oci://HOST/REPOSITORY
            """,
        version: CraftVersion.current,
        subcommands: [
            RegistryListCommand.self,
            RegistrySearchCommand.self,
            RegistryInfoCommand.self,
            RegistryCompatibleCommand.self,
            RegistryPairCommand.self,
            RegistryPackCommand.self,
            RegistryVerifyCommand.self,
            RegistryPublishCommand.self,
            RegistryPullCommand.self,
            RegistryPushCommand.self,
            RegistryYankCommand.self,
            RegistryRemoveCommand.self,
            RegistryReindexCommand.self,
            RegistryKeyCommand.self,
            RegistrySignCommand.self,
            RegistryCacheCommand.self,
            RegistryServeCommand.self,
        ])

    @OptionGroup var options: RegistryOptions

    public init() {}
}
