import CraftImaging
import Foundation
import RuntimeTestSupport
import Testing

/// `craft-registry serve DIR` as a process on 127.0.0.1: read by `craft-registry --registry URL`,
/// its JSON API and publishing with curl, its pages as HTML (docs/registry.md, "Serving a registry").
@Suite("craft-registry serve", .serialized)
struct RegistryServeTests {
    static let root = RegistryTool.packageRoot
    static let token = "0123456789abcdef0123456789abcdef"

    /// `craft-registry serve COPY --port 0 [--token-file]` on a copy of the repository's registry.
    final class Server {
        let directory: URL
        let running: RegistryTool.Running
        let url: String

        init(in scratch: Scratch, token: String? = RegistryServeTests.token) throws {
            directory = scratch.path("served")
            if !FileManager.default.fileExists(atPath: directory.path) {
                try FileManager.default.copyItem(at: RegistryServeTests.root.appendingPathComponent("registry"), to: directory)
            }
            var arguments = ["serve", directory.path, "--port", "0"]
            if let token {
                try token.write(to: scratch.path("token"), atomically: true, encoding: .utf8)
                arguments += ["--token-file", scratch.path("token").path]
            }
            running = try RegistryTool.start(try #require(RegistryTool.executable), arguments, in: scratch.url)
            let deadline = Date().addingTimeInterval(60)
            var found: String?
            while Date() < deadline, running.process.isRunning, found == nil {
                let text = (try? String(contentsOf: running.stderrURL, encoding: .utf8)) ?? ""
                if let range = text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) { found = String(text[range]) } else { usleep(20_000) }
            }
            guard let found else {
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "craft-registry serve did not start: \(running.finish().stderr)"])
            }
            url = found
        }

        /// SIGTERM; the exit status.
        func stop() -> Int32 {
            guard running.process.isRunning else { return running.process.terminationStatus }
            running.process.terminate()
            return running.finish().status
        }
    }

    /// curl: the status code and the body.
    static func curl(_ arguments: [String], in scratch: Scratch) throws -> (status: Int, body: String) {
        let output = scratch.path("curl-\(UUID().uuidString)")
        let result = try RegistryTool.start(URL(fileURLWithPath: "/usr/bin/env"), ["curl", "-s", "-o", output.path, "-w", "%{http_code}"] + arguments, in: scratch.url).finish()
        defer { try? FileManager.default.removeItem(at: output) }
        return (Int(result.stdout) ?? 0, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("read with --registry URL: lookups and pulls answer as the directory does; hidden files are never served; SIGTERM exits 0")
    func readByTheRegistryClient() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch)
        let directory = Self.root.appendingPathComponent("registry").path
        // info after pair, which has downloaded the bundle it describes (its details come from the bundle).
        for command in [["list"], ["search", "strong"], ["compatible", "digits-llama"], ["pair", "digits-siglip-vq", "digits-gpt2"], ["info", "digits-siglip-vq"]] {
            let local = try RegistryTool.run(["--registry", directory, "--json"] + command, in: scratch.url)
            let remote = try RegistryTool.run(["--registry", server.url, "--json"] + command, in: scratch.url)
            #expect(remote.status == local.status && remote.status == 0, "\(command): \(remote.stderr)")
            #expect(try RemoteRegistryTests.normalized(remote) == RemoteRegistryTests.normalized(local), "\(command)")
        }
        let pulled = try RegistryTool.run(["--registry", server.url, "pull", "digits-gpt2"], in: scratch.url)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        for hidden in ["/.lock", "/index/.x", "/bundles/..%2F.lock", "/bundles/digits-vq/../../token"] {
            #expect(try Self.curl(["\(server.url)\(hidden)"], in: scratch).status == 404, "\(hidden)")
        }
        let ranged = try Self.curl(["-H", "Range: bytes=1-3", "\(server.url)/registry.json"], in: scratch)
        let whole = try String(contentsOf: server.directory.appendingPathComponent("registry.json"), encoding: .utf8)
        #expect(ranged.status == 206 && ranged.body == String(whole.dropFirst().prefix(3)), "\(ranged.body)")
        #expect(server.stop() == 0)
    }

    @Test("the JSON API: bundles, search, info, compatible; errors are JSON objects with the right status")
    func jsonAPI() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch, token: nil)
        defer { _ = server.stop() }
        let bundles = try Self.curl(["\(server.url)/api/v1/bundles?kind=encoder"], in: scratch)
        let names = (Self.json(bundles.body)["bundles"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(bundles.status == 200 && names.contains("digits-siglip-vq") && !names.contains("digits-llama"), "\(bundles.body)")
        let search = try Self.curl(["\(server.url)/api/v1/search?q=strong"], in: scratch)
        let first = ((Self.json(search.body)["results"] as? [[String: Any]])?.first?["bundle"] as? [String: Any])?["name"] as? String
        #expect(first == "digits-siglip-vq", "\(search.body)")
        let info = Self.json(try Self.curl(["\(server.url)/api/v1/bundles/digits-siglip-vq@1.0.0"], in: scratch).body)
        #expect((info["bundle"] as? [String: Any])?["version"] as? String == "1.0.0")
        #expect((info["versions"] as? [[String: Any]])?.count == 2, "\(info)")
        let partners = Self.json(try Self.curl(["\(server.url)/api/v1/bundles/digits-siglip-vq/compatible"], in: scratch).body)["partners"] as? [[String: Any]]
        #expect(Set(partners?.compactMap { $0["name"] as? String } ?? []) == ["digits-gpt2", "digits-llama"])
        let missing = try Self.curl(["\(server.url)/api/v1/bundles/no-such-bundle"], in: scratch)
        #expect(missing.status == 404 && (Self.json(missing.body)["error"] as? [String: Any])?["code"] as? String == "not-found", "\(missing.body)")
        let badKind = try Self.curl(["\(server.url)/api/v1/bundles?kind=decoder"], in: scratch)
        #expect(badKind.status == 400)
        // No token file: no writes at all.
        let put = try Self.curl(["-T", server.directory.appendingPathComponent("bundles/digits-vq/digits-vq-1.0.0.craft").path, "\(server.url)/api/v1/bundles"], in: scratch)
        #expect(put.status == 403 && put.body.contains("--token-file"), "\(put.body)")
    }

    @Test("publishing: refused without the token or with a wrong one, accepted with it, seen by the next reader")
    func publishing() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch)
        defer { _ = server.stop() }
        let source = try CLIBundles.directory(in: scratch.url, name: "served-vq", version: "1.0.0", kind: .encoder, seed: 3,
                                              summary: "An encoder published over HTTP <script>alert(1)</script>", domains: ["tests"])
        let file = scratch.path("served-vq-1.0.0.craft")
        #expect(try RegistryTool.run(["pack", source.path, "-o", file.path], in: scratch.url).status == 0)
        let endpoint = "\(server.url)/api/v1/bundles"
        #expect(try Self.curl(["-T", file.path, endpoint], in: scratch).status == 401)
        #expect(try Self.curl(["-H", "Authorization: Bearer wrong-token-wrong-token", "-T", file.path, endpoint], in: scratch).status == 401)
        let auth = ["-H", "Authorization: Bearer \(Self.token)"]
        let published = try Self.curl(auth + ["-T", file.path, endpoint], in: scratch)
        #expect(published.status == 201 && Self.json(published.body)["outcome"] as? String == "published", "\(published.body)")
        #expect(try Self.curl(auth + ["-T", file.path, endpoint], in: scratch).status == 200)
        try Data("not a bundle".utf8).write(to: scratch.path("garbage.craft"))
        let garbage = try Self.curl(auth + ["-T", scratch.path("garbage.craft").path, endpoint], in: scratch)
        #expect(garbage.status == 422, "\(garbage.body)")
        // A reader that cached the index before sees the new version.
        let info = try RegistryTool.run(["--registry", server.url, "info", "served-vq"], in: scratch.url)
        #expect(info.status == 0 && info.stdout.contains("served-vq"), "\(info.stderr)")
        // The page escapes what the bundle says.
        let page = try Self.curl(["\(server.url)/bundle/served-vq"], in: scratch)
        #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.body.contains("<script>"), "\(page.body)")
    }

    @Test("craft-registry publish to a served registry: the token from CRAFT_REGISTRY_TOKEN or --token-file, FILE.sig carried along, the server's refusals as exit codes")
    func publishingFromTheCommandLine() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch)
        defer { _ = server.stop() }
        let source = try CLIBundles.directory(in: scratch.url, name: "pushed-vq", version: "1.0.0", kind: .encoder, seed: 5,
                                              summary: "An encoder published by craft-registry over HTTP", domains: ["tests"])
        let file = scratch.path("pushed-vq-1.0.0.craft")
        #expect(try RegistryTool.run(["pack", source.path, "-o", file.path], in: scratch.url).status == 0)
        let key = scratch.path("team-key")
        #expect(try RegistryTool.run(["key", "generate", "--output", key.path], in: scratch.url).status == 0)
        #expect(try RegistryTool.run(["sign", file.path, "--key", key.path], in: scratch.url).status == 0)
        let publish = ["--registry", server.url, "publish", file.path, "--json"]

        let noToken = try RegistryTool.run(publish, in: scratch.url)
        #expect(noToken.status == 64 && noToken.stderr.contains("CRAFT_REGISTRY_TOKEN"), "\(noToken.stderr)")
        let wrong = try RegistryTool.run(publish, in: scratch.url, environment: ["CRAFT_REGISTRY_TOKEN": "wrong-token-wrong-token"])
        #expect(wrong.status == 1 && wrong.stderr.contains("HTTP 401") && !wrong.stderr.contains("wrong-token"), "\(wrong.stderr)")

        let published = try RegistryTool.run(publish, in: scratch.url, environment: ["CRAFT_REGISTRY_TOKEN": Self.token])
        #expect(published.status == 0, "\(published.stderr)")
        let report = try published.json()
        #expect(report["outcome"] as? String == "published" && (report["signed_by"] as? [String])?.count == 1, "\(report)")
        // The served index carries the signature: a reader trusting the key sees it trusted.
        let reader = scratch.path("reader")
        #expect(try RegistryTool.run(["--registry", server.url, "key", "trust", key.path + ".pub"], in: scratch.url,
                                     environment: ["CRAFT_CACHE": reader.path]).status == 0)
        let verified = try RegistryTool.run(["--registry", server.url, "pull", "pushed-vq", "--require-signature"], in: scratch.url,
                                            environment: ["CRAFT_CACHE": reader.path])
        #expect(verified.status == 0, "\(verified.stderr)")

        // Again with --token-file: the same bytes change nothing.
        try Self.token.write(to: scratch.path("my-token"), atomically: true, encoding: .utf8)
        let again = try RegistryTool.run(publish + ["--token-file", scratch.path("my-token").path], in: scratch.url)
        let againOutcome = try again.json()["outcome"] as? String
        #expect(again.status == 0 && againOutcome == "unchanged", "\(again.stderr)")
        // Different bytes under the same version: the server's conflict, exit 4 as locally.
        let other = try CLIBundles.directory(in: scratch.path("other"), name: "pushed-vq", version: "1.0.0", kind: .encoder, seed: 6,
                                             summary: "Other bytes", domains: ["tests"])
        let otherFile = scratch.path("other-pushed-vq-1.0.0.craft")
        #expect(try RegistryTool.run(["pack", other.path, "-o", otherFile.path], in: scratch.url).status == 0)
        let conflict = try RegistryTool.run(["--registry", server.url, "publish", otherFile.path], in: scratch.url,
                                            environment: ["CRAFT_REGISTRY_TOKEN": Self.token])
        #expect(conflict.status == 4 && conflict.stderr.contains("HTTP 409"), "\(conflict.stderr)")
        // A signature of other bytes: the server's check refuses it, exit 4.
        #expect(try RegistryTool.run(["sign", otherFile.path, "--key", key.path], in: scratch.url).status == 0)
        let misSigned = try RegistryTool.run(["--registry", server.url, "publish", file.path, "--signature", otherFile.path + ".sig"], in: scratch.url,
                                             environment: ["CRAFT_REGISTRY_TOKEN": Self.token])
        #expect(misSigned.status == 4 && misSigned.stderr.contains("HTTP 422"), "\(misSigned.stderr)")
        // Garbage: the server's verification fails, exit 4.
        try Data("not a bundle".utf8).write(to: scratch.path("garbage.craft"))
        let garbage = try RegistryTool.run(["--registry", server.url, "publish", scratch.path("garbage.craft").path], in: scratch.url,
                                           environment: ["CRAFT_REGISTRY_TOKEN": Self.token])
        #expect(garbage.status == 4 && garbage.stderr.contains("HTTP 422"), "\(garbage.stderr)")
    }

    @Test("the pages: every bundle linked on the home page, search, and a bundle page with provenance, files, versions, partners and commands")
    func pages() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch, token: nil)
        defer { _ = server.stop() }
        let home = try Self.curl(["\(server.url)/"], in: scratch)
        #expect(home.status == 200)
        for name in ["digits-siglip-vq", "digits-llama", "digits-gpt2", "derm-vq", "tiny-answers"] {
            #expect(home.body.contains("<a href=\"/bundle/\(name)\">\(name)</a>"), "\(name)")
        }
        let search = try Self.curl(["\(server.url)/?q=strong"], in: scratch)
        #expect(search.body.contains("/bundle/digits-siglip-vq") && !search.body.contains("/bundle/derm-vq"))
        let page = try Self.curl(["\(server.url)/bundle/digits-siglip-vq"], in: scratch).body
        for text in ["sha256:43aa10658d5b47d4ca09d5b4bdfedd4b50f5170019017ef95934286a00d9656d", "Provenance", "digits-siglip-vq@1.0.0",
                     "digits-llama@1.0.0", "0.2812", "0.6719", "model.safetensors", "1.1.0", "?version=1.0.0",
                     "<a href=\"/bundle/digits-llama\">digits-llama</a>", "craft-registry --registry \(server.url) pull digits-siglip-vq@1.1.0"] {
            #expect(page.contains(text), "the bundle page lacks \(text)")
        }
        let old = try Self.curl(["\(server.url)/bundle/digits-siglip-vq?version=1.0.0"], in: scratch).body
        #expect(old.contains("<strong>1.0.0</strong>"))
        let missing = try Self.curl(["\(server.url)/bundle/no-such-bundle"], in: scratch)
        #expect(missing.status == 404 && missing.body.contains("<html"))
    }

    @Test("a bundle's README.md shows as its model card, escaped, with headings, lists and only http(s) links; a bundle without one has no card")
    func modelCard() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch, token: nil)
        defer { _ = server.stop() }
        let source = try CLIBundles.directory(in: scratch.url, name: "carded-llm", version: "1.0.0", kind: .backend, summary: "A backend with a model card")
        try """
            # Carded LLM

            Answers questions about <b>digits</b>. <script>alert(1)</script>

            ## Intended use
            - reading **handwritten** digits
            - a `code span` and [a link](https://example.org/card?a=1&b=2)
            - [a trap](javascript:alert(2)) and [another](JAVASCRIPT:alert(3))

            ```
            <img src=x onerror=alert(4)>
            ```
            """.write(to: source.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let manifestURL = source.appendingPathComponent("craft.json")
        var manifest = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
        manifest["files"] = ((manifest["files"] as? [[String: Any]]) ?? []) + [["path": "README.md"]]
        try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]).write(to: manifestURL)
        let file = scratch.path("carded-llm-1.0.0.craft")
        #expect(try RegistryTool.run(["pack", source.path, "-o", file.path], in: scratch.url).status == 0)
        let published = try RegistryTool.run(["--registry", server.directory.path, "publish", file.path], in: scratch.url)
        #expect(published.status == 0, "\(published.stderr)")

        let page = try Self.curl(["\(server.url)/bundle/carded-llm"], in: scratch).body
        for text in ["<h2>Model card</h2>", "<h3>Carded LLM</h3>", "<h4>Intended use</h4>", "<li>reading <strong>handwritten</strong> digits</li>",
                     "<code>code span</code>", "<a href=\"https://example.org/card?a=1&amp;b=2\" rel=\"nofollow noopener\">a link</a>",
                     "&lt;b&gt;digits&lt;/b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "<li>a trap and another</li>",
                     "<pre><code>&lt;img src=x onerror=alert(4)&gt;</code></pre>"] {
            #expect(page.contains(text), "the model card lacks \(text)")
        }
        for unsafe in ["<script", "javascript:", "JAVASCRIPT:", "<img", "<b>"] {
            #expect(!page.contains(unsafe), "the page carries \(unsafe)")
        }
        let plain = try Self.curl(["\(server.url)/bundle/digits-gpt2"], in: scratch)
        #expect(plain.status == 200 && !plain.body.contains("Model card"))
    }

    @Test("the home and a bundle page render in headless Chromium (not blank)")
    func pagesInABrowser() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try Server(in: scratch, token: nil)
        defer { _ = server.stop() }
        for (path, name) in [("/", "home"), ("/bundle/digits-siglip-vq", "bundle")] {
            let page = try #require(URL(string: server.url + path))
            let screenshot = scratch.path("\(name).png")
            try HeadlessChromium.screenshot(of: page, to: screenshot, width: 1100, height: 900)
            let picture = try Image(data: try Data(contentsOf: screenshot), name: screenshot.path)
            #expect(picture.width == 1100 && picture.height == 900, "\(name): \(picture.width)×\(picture.height)")
            let statistics = pictureStatistics(picture)
            #expect(statistics.variance > 100 && statistics.inked > 0.005, "the \(name) page looks blank: \(statistics)")
        }
    }
}
