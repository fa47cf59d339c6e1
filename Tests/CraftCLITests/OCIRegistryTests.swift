import Foundation
import RuntimeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `craft-registry push` and `pull oci://…` against Debian's `docker-registry` (the reference OCI
/// distribution server, installed by scripts/ensure-system-deps.sh) started by the tests on a loopback
/// port, with the official ORAS Python client as the peer (docs/registry.md, "OCI registries").
@Suite("OCI registries: push and pull against docker-registry", .serialized)
struct OCIRegistryTests {
    static let root = RegistryTool.packageRoot

    /// A `docker-registry serve` on 127.0.0.1 with its storage in the scratch directory.
    final class DistributionServer {
        let storage: URL
        let running: RegistryTool.Running
        let host: String

        /// With `htpasswd`, the registry asks for basic authentication with those credentials.
        init(in scratch: Scratch, htpasswd: (user: String, password: String)? = nil) throws {
            let executable = try #require(["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                          "docker-registry is not installed; scripts/ensure-system-deps.sh --tests installs it")
            storage = scratch.path("oci-storage")
            let port = try Self.freePort()
            host = "127.0.0.1:\(port)"
            let config = scratch.path("oci-config.yml")
            var auth = ""
            if let htpasswd {
                // A bcrypt entry, as htpasswd -B writes it (glibc's crypt knows bcrypt).
                let hashed = try RegistryTool.start(URL(fileURLWithPath: "/usr/bin/python3"), [
                    "-W", "ignore", "-c", "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", htpasswd.password,
                ], in: scratch.url).finish()
                try #require(hashed.status == 0 && hashed.stdout.hasPrefix("$2"), "cannot make a bcrypt hash: \(hashed.stderr)")
                try "\(htpasswd.user):\(hashed.stdout.trimmingCharacters(in: .whitespacesAndNewlines))\n".write(to: scratch.path("htpasswd"), atomically: true, encoding: .utf8)
                auth = "auth:\n  htpasswd:\n    realm: craft-tests\n    path: \(scratch.path("htpasswd").path)\n"
            }
            try """
                version: 0.1
                log:
                  level: error
                storage:
                  filesystem:
                    rootdirectory: \(storage.path)
                  delete:
                    enabled: true
                http:
                  addr: \(host)
                  secret: craft-tests
                """.appending("\n" + auth).write(to: config, atomically: true, encoding: .utf8)
            running = try RegistryTool.start(URL(fileURLWithPath: executable), ["serve", config.path], in: scratch.url)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, running.process.isRunning {
                if let status = try? RegistryServeTests.curl(["http://\(host)/v2/"], in: scratch).status, status == 200 || status == 401 { return }
                usleep(50_000)
            }
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "docker-registry did not start: \(running.finish().stderr)"])
        }

        /// A port nothing listens on now.
        static func freePort() throws -> Int {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
            try #require(bound == 0)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
            return Int(UInt16(bigEndian: address.sin_port))
        }

        /// The file the registry stores a blob (or manifest) of `digest` in.
        func blobData(_ digest: String) -> URL {
            let hex = String(digest.dropFirst("sha256:".count))
            return storage.appendingPathComponent("docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data")
        }

        func stop() {
            guard running.process.isRunning else { return }
            kill(running.process.processIdentifier, SIGKILL)
            _ = running.finish()
        }
    }

    /// The peers' Python with oras-py.
    static func peersPython() throws -> String {
        let peers = try RegistryTool.start(URL(fileURLWithPath: "/bin/bash"), [root.appendingPathComponent("scripts/ensure-python-peers.sh").path],
                                           in: root).finish()
        try #require(peers.status == 0, "scripts/ensure-python-peers.sh failed: \(peers.stderr)")
        return peers.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("push a signed bundle, pull it into a fresh registry, verify, pair and run it; ORAS reads what Craft pushed and Craft refuses what is not a bundle")
    func pushPullPairAndPeer() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try DistributionServer(in: scratch)
        defer { server.stop() }
        let bundle = scratch.path("digits-siglip-vq-1.1.0.craft")
        try FileManager.default.copyItem(at: Self.root.appendingPathComponent("registry/bundles/digits-siglip-vq/digits-siglip-vq-1.1.0.craft"), to: bundle)
        let key = scratch.path("team-key")
        #expect(try RegistryTool.run(["key", "generate", "--output", key.path], in: scratch.url).status == 0)
        #expect(try RegistryTool.run(["sign", bundle.path, "--key", key.path], in: scratch.url).status == 0)

        let target = "oci://\(server.host)/craft/digits-siglip-vq"
        let pushed = try RegistryTool.run(["push", bundle.path, target, "--json"], in: scratch.url)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        let pushReport = try pushed.json()
        #expect(pushReport["tags"] as? [String] == ["1.1.0", "latest"])
        #expect(pushReport["signed_by"] as? String != nil && pushReport["uploaded"] as? Bool == true)
        let digest = try #require(pushReport["digest"] as? String)
        // Pushed again under another tag: the registry has the blob (HEAD), so only manifests are sent.
        let again = try RegistryTool.run(["push", bundle.path, target + ":again", "--json"], in: scratch.url)
        let againReport = try again.json()
        #expect(again.status == 0 && againReport["uploaded"] as? Bool == false, "\(again.stdout) \(again.stderr)")

        // A fresh registry that trusts the team's key: the pull checks the signature pushed beside the bundle.
        let fresh = scratch.path("fresh")
        #expect(try RegistryTool.run(["--registry", fresh.path, "key", "trust", key.path + ".pub"], in: scratch.url).status == 0)
        let pulled = try RegistryTool.run(["--registry", fresh.path, "pull", "\(target):1.1.0", "--require-signature", "--json"], in: scratch.url)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let report = try pulled.json()
        #expect(report["digest"] as? String == digest && (report["signatures"] as? [String: Any])?["status"] as? String == "trusted", "\(report)")
        let file = try #require(report["file"] as? String)
        #expect(try RegistryTool.run(["--registry", fresh.path, "publish", file], in: scratch.url).status == 0)
        let verified = try RegistryTool.run(["--registry", fresh.path, "verify", "digits-siglip-vq", "--json"], in: scratch.url)
        let verifiedDigest = try verified.json()["digest"] as? String
        #expect(verified.status == 0 && verifiedDigest == digest, "\(verified.stderr)")

        // oci:// works wherever a bundle reference does: pair and craft run.
        let pair = try RegistryTool.run(["--registry", Self.root.appendingPathComponent("registry").path, "pair", "\(target):latest", "digits-llama"], in: scratch.url)
        #expect(pair.status == 0, "\(pair.stdout) \(pair.stderr)")
        let ask = ["--backend", "digits-llama", "--registry", "registry", "--image", "examples/data/digits/images/strong/0004.png", "--prompt", "what digit is this ?"]
        let viaOCI = try runCraft(["run", "--encoder", "\(target):1.1.0"] + ask, environment: ["CRAFT_CACHE": scratch.path("cache").path])
        let local = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0"] + ask)
        #expect(viaOCI.status == 0 && viaOCI.standardOutput == local.standardOutput, "\(viaOCI.standardError)")

        // The ORAS client pulls the .craft file Craft pushed, byte for byte.
        let python = try Self.peersPython()
        let peer = Self.root.appendingPathComponent("scripts/oras_peer.py").path
        let orasPull = try RegistryTool.start(URL(fileURLWithPath: python), [peer, "pull", "\(server.host)/craft/digits-siglip-vq:1.1.0", scratch.path("oras").path],
                                              in: scratch.url).finish()
        #expect(orasPull.status == 0 && orasPull.stdout.contains("digits-siglip-vq-1.1.0.craft"), "\(orasPull.stderr)")
        let (ours, theirs) = (try Data(contentsOf: bundle), try Data(contentsOf: scratch.path("oras/digits-siglip-vq-1.1.0.craft")))
        #expect(ours == theirs)
        // What ORAS pushes as a plain file is not a Craft bundle: refused clearly, nothing cached.
        try Data("not a bundle\n".utf8).write(to: scratch.path("notes.txt"))
        let orasPush = try RegistryTool.start(URL(fileURLWithPath: python), [peer, "push", "\(server.host)/other/notes:v1", scratch.path("notes.txt").path],
                                              in: scratch.url).finish()
        #expect(orasPush.status == 0, "\(orasPush.stderr)")
        let foreign = try RegistryTool.run(["pull", "oci://\(server.host)/other/notes:v1"], in: scratch.url)
        #expect(foreign.status == 64 && foreign.stderr.contains("is not a Craft bundle"), "\(foreign.stderr)")
        let missing = try RegistryTool.run(["pull", "oci://\(server.host)/craft/digits-siglip-vq:9.9.9"], in: scratch.url)
        #expect(missing.status == 2, "\(missing.stderr)")
    }

    @Test("a blob or manifest tampered on the registry is refused with exit 4 and nothing is cached")
    func tamperedOnTheServer() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try DistributionServer(in: scratch)
        defer { server.stop() }
        let bundle = Self.root.appendingPathComponent("registry/bundles/digits-llama/digits-llama-1.0.0.craft")
        let pushed = try RegistryTool.run(["push", bundle.path, "oci://\(server.host)/craft/llama:1.0.0", "--json"], in: scratch.url)
        #expect(pushed.status == 0, "\(pushed.stderr)")
        let report = try pushed.json()
        let layer = server.blobData(try #require(report["digest"] as? String))
        var bytes = try Data(contentsOf: layer)
        bytes[bytes.count / 3] ^= 0x41
        try bytes.write(to: layer)
        let pulled = try RegistryTool.run(["pull", "oci://\(server.host)/craft/llama:1.0.0"], in: scratch.url)
        #expect(pulled.status == 4 && pulled.stderr.contains("modified or replaced"), "\(pulled.stderr)")
        let cached = (FileManager.default.enumerator(atPath: scratch.path("cache").path)?.allObjects as? [String] ?? [])
            .filter { $0.contains("sha256") && !$0.hasPrefix("blobs/.locks/") }
        #expect(cached.isEmpty, "\(cached)")

        // The manifest's bytes changed under its tag.
        let manifest = server.blobData(try #require(report["manifest_digest"] as? String))
        let text = try String(contentsOf: manifest, encoding: .utf8)
        try text.replacingOccurrences(of: "\"dev.craft.bundle.kind\":\"backend\"", with: "\"dev.craft.bundle.kind\":\"encoder\"").write(to: manifest, atomically: false, encoding: .utf8)
        let again = try RegistryTool.run(["pull", "oci://\(server.host)/craft/llama:1.0.0"], in: scratch.url)
        #expect(again.status == 4 && again.stderr.contains("manifest"), "\(again.stderr)")
    }

    @Test("credentials: none and wrong ones are refused clearly (never printed); from the environment or Docker's config.json they work")
    func basicAuthentication() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let password = "craft-secret-\(UUID().uuidString.prefix(8))"
        let server = try DistributionServer(in: scratch, htpasswd: ("tester", password))
        defer { server.stop() }
        let bundle = Self.root.appendingPathComponent("registry/bundles/digits-vq/digits-vq-1.0.0.craft").path
        let target = "oci://\(server.host)/team/digits-vq"
        let anonymous = try RegistryTool.run(["push", bundle, target], in: scratch.url)
        #expect(anonymous.status == 1 && anonymous.stderr.contains("needs credentials") && anonymous.stderr.contains("CRAFT_OCI_USERNAME"), "\(anonymous.stderr)")
        let wrong = try RegistryTool.run(["push", bundle, target], in: scratch.url,
                                         environment: ["CRAFT_OCI_USERNAME": "tester", "CRAFT_OCI_PASSWORD": "wrong-\(password)"])
        #expect(wrong.status == 1 && wrong.stderr.contains("refused the credentials") && !wrong.stderr.contains(password), "\(wrong.stderr)")
        let pushed = try RegistryTool.run(["push", bundle, target], in: scratch.url,
                                          environment: ["CRAFT_OCI_USERNAME": "tester", "CRAFT_OCI_PASSWORD": password])
        #expect(pushed.status == 0 && !pushed.stdout.contains(password) && !pushed.stderr.contains(password), "\(pushed.stderr)")
        // docker login's file.
        let docker = scratch.path("docker")
        try FileManager.default.createDirectory(at: docker, withIntermediateDirectories: true)
        let auth = Data("tester:\(password)".utf8).base64EncodedString()
        try #"{"auths": {"\#(server.host)": {"auth": "\#(auth)"}}}"#.write(to: docker.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let pulled = try RegistryTool.run(["pull", "\(target):1.0.0", "--json"], in: scratch.url, environment: ["DOCKER_CONFIG": docker.path])
        let pulledName = try pulled.json()["name"] as? String
        #expect(pulled.status == 0 && pulledName == "digits-vq", "\(pulled.stderr)")
    }
}
