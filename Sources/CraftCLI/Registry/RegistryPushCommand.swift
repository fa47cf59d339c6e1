import ArgumentParser
import CraftRegistry
import Foundation

/// `craft-registry push FILE oci://HOST/REPOSITORY[:TAG]`: a bundle into an OCI distribution registry.
struct RegistryPushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Verify a .craft file and push it to an OCI registry (Docker Hub, GHCR, Harbor, distribution).",
        discussion: """
            The bundle becomes an OCI artifact (artifactType application/vnd.craft.bundle.v1): \
            its craft.json is the config blob, the .craft file the one layer, and the manifest is \
            annotated with name, version, kind and codebook hash. Without a tag it is tagged with \
            its version and latest. FILE.sig, when present, is pushed beside it under the tag \
            sha256-<manifest hex>.sig. Credentials: CRAFT_OCI_USERNAME and CRAFT_OCI_PASSWORD, or \
            docker login / oras login. Plain HTTP only to this machine or with --insecure. \
            Details: docs/registry.md, "OCI registries".

            Forms (with your registry; docs/registry.md has a local one to try):
              craft-registry push dist/NAME-VERSION.craft oci://HOST/REPOSITORY
              craft-registry push dist/NAME-VERSION.craft oci://127.0.0.1:5000/team/NAME:1.2.0
              craft-registry pull oci://HOST/REPOSITORY:VERSION
            """)

    @OptionGroup var options: RegistryOptions

    @Argument(help: ArgumentHelp("The .craft file to push.", valueName: "file"))
    var file: String

    @Argument(help: ArgumentHelp("Where: oci://HOST[:PORT]/REPOSITORY[:TAG].", valueName: "oci-reference"))
    var destination: String

    func validate() throws {
        _ = try OCIReference(parsing: destination)
    }

    func run() throws {
        let registry = try options.resolvedRegistry()
        var oci = OCIBundles(allowInsecure: registry.allowInsecure)
        oci.progress = TransferProgress.reporter("uploading")
        let url = URL(fileURLWithPath: file)
        let result = try ProgressLine.run("pushing \(url.lastPathComponent)", bytes: ProgressLine.size(of: url)) {
            try oci.push(url, to: try OCIReference(parsing: destination))
        }
        if options.json {
            struct Result: Encodable {
                var reference: String
                var tags: [String]
                var manifestDigest: String
                var digest: String
                var size: Int64
                var name: String
                var version: String
                var signedBy: String?
                var uploaded: Bool
            }
            try Output.json(Result(
                reference: result.reference.description, tags: result.tags, manifestDigest: result.manifestDigest, digest: result.digest,
                size: result.size, name: result.name, version: result.version, signedBy: result.signedBy,
                uploaded: result.uploaded))
        } else {
            let reference = result.reference
            let place = "oci://\(reference.host)/\(reference.repository)"
            Output.line("Pushed \(result.name)@\(result.version) (\(result.digest)) to \(place) as \(result.tags.joined(separator: ", "))\(result.signedBy.map { ", signed by \($0)" } ?? "")\(result.uploaded ? "" : " (the registry already had its bytes: only the manifest was sent)").")
            Output.line("Pull it with: craft-registry pull \(place):\(result.tags[0])")
        }
    }
}
