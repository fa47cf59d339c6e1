import Foundation
import RuntimeTestSupport
import Testing

/// `--registry http://…`: a copy of `registry/` served by a static web server (Python's http.server
/// with ETags and byte ranges, scripts/static_registry_server.py) started by the tests on 127.0.0.1
/// (docs/registry.md, "Remote registries").
@Suite("Remote registries over HTTP", .serialized)
struct RemoteRegistryTests {
    static let root = RegistryTool.packageRoot

    /// A static server on a copy of the repository's registry (so it can be tampered with).
    final class StaticServer {
        let directory: URL
        let log: URL
        let running: RegistryTool.Running
        let url: String

        init(in scratch: Scratch, name: String = "served", arguments: [String] = []) throws {
            directory = scratch.path(name)
            if !FileManager.default.fileExists(atPath: directory.path) {
                try FileManager.default.copyItem(at: RemoteRegistryTests.root.appendingPathComponent("registry"), to: directory)
            }
            log = scratch.path("\(name).log")
            let python = try #require(ServeCommandTests.python, "python3 serves the registry in these tests")
            running = try RegistryTool.start(
                URL(fileURLWithPath: python),
                [RemoteRegistryTests.root.appendingPathComponent("scripts/static_registry_server.py").path, directory.path, "--log", log.path] + arguments,
                in: scratch.url)
            let deadline = Date().addingTimeInterval(30)
            var found: String?
            while Date() < deadline, running.process.isRunning, found == nil {
                let text = (try? String(contentsOf: running.stdoutURL, encoding: .utf8)) ?? ""
                if let range = text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) { found = String(text[range]) }
                else { usleep(20_000) }
            }
            guard let found else {
                throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the static server did not start: \(running.finish().stderr)"])
            }
            url = found
        }

        var requests: [String] { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

        func stop() {
            guard running.process.isRunning else { return }
            kill(running.process.processIdentifier, SIGKILL)
            _ = running.finish()
        }
    }

    /// The bundle file `NAME-VERSION.craft` of the served copy.
    static func bundleFile(_ server: StaticServer, _ name: String, _ version: String) -> URL {
        server.directory.appendingPathComponent("bundles/\(name)/\(name)-\(version).craft")
    }

    /// stdout as JSON with the fields that name where the registry is removed.
    static func normalized(_ result: RegistryTool.Result, dropping more: [String] = []) throws -> String {
        func strip(_ value: Any) -> Any {
            if let object = value as? [String: Any] {
                return object.filter { !(["registry", "file", "path", "directory"] + more).contains($0.key) }.mapValues(strip)
            }
            if let array = value as? [Any] { return array.map(strip) }
            return value
        }
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        return String(decoding: try JSONSerialization.data(withJSONObject: strip(object), options: [.sortedKeys]), as: UTF8.self)
    }

    @Test("list, search, info, compatible and pair over HTTP answer as the directory does; index files are revalidated with ETags")
    func lookupsEqualTheDirectory() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try StaticServer(in: scratch)
        defer { server.stop() }
        let directory = Self.root.appendingPathComponent("registry").path
        // Before the bundle is downloaded, info says so instead of its provenance.
        let early = try RegistryTool.run(["--registry", server.url, "--json", "info", "digits-llama"], in: scratch.url).json()
        #expect((early["details"] as? [String: Any])?["source"] as? String == "not-downloaded", "\(early)")
        // info last: pair has downloaded digits-llama by then, so its details come from the bundle as locally.
        for command in [["list"], ["search", "digits"], ["compatible", "digits-siglip-vq"],
                        ["pair", "digits-siglip-vq", "digits-llama"], ["pair", "digits-vq", "digits-answers-k24"], ["info", "digits-llama"]] {
            let local = try RegistryTool.run(["--registry", directory, "--json"] + command, in: scratch.url)
            let remote = try RegistryTool.run(["--registry", server.url, "--json"] + command, in: scratch.url)
            #expect(remote.status == local.status, "\(command): \(remote.stderr)")
            #expect(try Self.normalized(remote) == Self.normalized(local), "\(command)")
        }
        // The second and later commands asked with If-None-Match and got 304s.
        #expect(server.requests.contains { $0.hasPrefix("GET /index/search.tsv 304") }, "\(server.requests)")
        let info = try RegistryTool.run(["--registry", server.url, "info", "digits-llama"], in: scratch.url)
        #expect(info.stdout.contains("url:") && info.stdout.contains("\(server.url)/bundles/digits-llama/digits-llama-1.0.0.craft"), "\(info.stdout)")
        // Writes are refused with the reason: a static server takes no bundles, whatever the token.
        let publish = try RegistryTool.run(["--registry", server.url, "publish", Self.bundleFile(server, "digits-vq", "1.0.0").path], in: scratch.url,
                                           environment: ["CRAFT_REGISTRY_TOKEN": "0123456789abcdef"])
        #expect(publish.status == 64 && publish.stderr.contains("static web server"), "\(publish.stderr)")
        let yank = try RegistryTool.run(["--registry", server.url, "yank", "digits-vq@1.0.0"], in: scratch.url)
        #expect(yank.status == 64 && yank.stderr.contains("HTTP registries are read-only"), "\(yank.stderr)")
    }

    /// The `list` and `search` commands the search-index tests compare with the directory's answers.
    static let searches: [[String]] = [
        ["list"], ["list", "--include-prerelease"], ["list", "--kind", "encoder"], ["search", "digits"], ["search", "strong"],
        ["search", "handwritten digits", "--kind", "backend"], ["search", "sha256:363a276a"], ["search", "VQ"],
        ["search", "digits", "--include-prerelease"], ["search", "nothing-matches-this"],
    ]

    @Test("list and search over HTTP read index/search.tsv, not the shards, and answer as the shards of the directory do; without it they read the shards")
    func searchIndexEqualsTheShards() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try StaticServer(in: scratch)
        defer { server.stop() }
        #expect(FileManager.default.fileExists(atPath: server.directory.appendingPathComponent("index/search.tsv").path))
        let directory = Self.root.appendingPathComponent("registry").path
        for removed in [false, true] {
            if removed { try FileManager.default.removeItem(at: server.directory.appendingPathComponent("index/search.tsv")) }
            for command in Self.searches {
                let local = try RegistryTool.run(["--registry", directory, "--json"] + command, in: scratch.url)
                let remote = try RegistryTool.run(["--registry", server.url, "--json"] + command, in: scratch.url)
                #expect(remote.status == local.status && remote.status == 0, "\(command): \(remote.stderr)")
                #expect(try Self.normalized(remote) == Self.normalized(local), "\(command), search index removed: \(removed)")
            }
            let shardFetches = server.requests.filter { $0.hasPrefix("GET /index/") && !$0.hasPrefix("GET /index/search.tsv") }
            #expect(removed ? !shardFetches.isEmpty : shardFetches.isEmpty, "\(shardFetches)")
        }
    }

    @Test("a truncated or tampered index/search.tsv is reported (exit 4) and the shards answer instead")
    func damagedSearchIndex() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try StaticServer(in: scratch)
        defer { server.stop() }
        let file = server.directory.appendingPathComponent("index/search.tsv")
        let original = try String(contentsOf: file, encoding: .utf8)
        let directory = Self.root.appendingPathComponent("registry").path
        let lines = original.split(separator: "\n", omittingEmptySubsequences: false)
        let tamperedRow = try #require(lines.firstIndex { $0.hasPrefix("digits-llama\t") })
        var tampered = lines
        // Same length (the first line announces the file's length): six hex digits become "../../".
        tampered[tamperedRow] = tampered[tamperedRow].replacingOccurrences(of: #"\tsha256:[0-9a-f]{6}"#, with: "\tsha256:../../", options: .regularExpression)[...]
        let damages: [(String, String)] = [
            (String(original.dropLast(40)), "does not end with a line break"),
            (lines.dropLast(2).joined(separator: "\n") + "\n", "announces"),
            (tampered.joined(separator: "\n"), "row \(tamperedRow - 1): codebook.hash is"),
        ]
        for (text, reason) in damages {
            try text.write(to: file, atomically: true, encoding: .utf8)
            for command in [["list"], ["search", "llama"]] {
                let local = try RegistryTool.run(["--registry", directory, "--json"] + command, in: scratch.url)
                let remote = try RegistryTool.run(["--registry", server.url, "--json"] + command, in: scratch.url)
                #expect(remote.status == 4, "\(command): \(remote.stderr)")
                #expect(remote.stderr.contains("\(server.url)/index/search.tsv") && remote.stderr.contains(reason)
                        && remote.stderr.contains("craft-registry reindex"), "\(command): \(remote.stderr)")
                #expect(try Self.normalized(remote, dropping: ["warnings"]) == Self.normalized(local, dropping: ["warnings"]), "\(command) after \(reason)")
            }
        }
    }

    @Test("pull downloads, verifies and caches by digest; craft run reads the remote registry; --offline reads the cache only")
    func pullRunAndOffline() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try StaticServer(in: scratch)
        let pulled = try RegistryTool.run(["--registry", server.url, "pull", "digits-llama", "--json"], in: scratch.url)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let directory = try #require(try pulled.json()["directory"] as? String)
        let local = try RegistryTool.run(["--registry", Self.root.appendingPathComponent("registry").path, "pull", "digits-llama", "--output-directory", scratch.path("local").path],
                                         in: scratch.url)
        #expect(local.status == 0)
        let (remoteManifest, localManifest) = (try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent("craft.json")),
                                               try Data(contentsOf: scratch.path("local/craft.json")))
        #expect(remoteManifest == localManifest)

        let ask = ["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-llama", "--image", "examples/data/digits/images/strong/0003.png",
                   "--prompt", "what digit is this ?", "--max-tokens", "3"]
        let remoteRun = try runCraft(ask + ["--registry", server.url], environment: ["CRAFT_CACHE": scratch.path("cache").path])
        let localRun = try runCraft(ask + ["--registry", "registry"])
        #expect(remoteRun.status == 0 && remoteRun.standardOutput == localRun.standardOutput, "\(remoteRun.standardError)")

        let cache = try RegistryTool.run(["cache", "list", "--json"], in: scratch.url)
        let kinds = ((try cache.json()["items"] as? [[String: Any]]) ?? []).compactMap { $0["kind"] as? String }
        #expect(kinds.filter { $0 == "download" }.count == 2 && kinds.contains("index") && kinds.contains("bundle"), "\(cache.stdout)")

        #expect(try RegistryTool.run(["--registry", server.url, "list"], in: scratch.url).status == 0)
        server.stop()
        // The server is gone: a plain command says it cannot reach it; --offline answers from the cache.
        let down = try RegistryTool.run(["--registry", server.url, "list"], in: scratch.url)
        #expect(down.status == 1 && down.stderr.contains("cannot fetch \(server.url)/index/search.tsv") && down.stderr.contains("--offline"), "\(down.stderr)")
        let offline = try RegistryTool.run(["--registry", server.url, "--offline", "pull", "digits-llama"], in: scratch.url)
        #expect(offline.status == 0 && offline.stdout.trimmingCharacters(in: .newlines) == directory, "\(offline.stderr)")
        #expect(try RegistryTool.run(["--registry", server.url, "--offline", "list"], in: scratch.url).status == 0)
        let uncached = try RegistryTool.run(["--registry", server.url, "--offline", "pull", "digits-gpt2"], in: scratch.url)
        let unknown = try RegistryTool.run(["--registry", server.url, "--offline", "info", "no-such-bundle"], in: scratch.url)
        #expect(unknown.status == 2 && unknown.stderr.contains("not in the cache"), "\(unknown.stderr)")
        #expect(uncached.status == 2 && uncached.stderr.contains("is not in the cache"), "\(uncached.stderr)")

        let pruned = try RegistryTool.run(["cache", "prune", "--all", "--json"], in: scratch.url)
        let removed = (try pruned.json()["removed"] as? [Any])?.count ?? 0
        #expect(pruned.status == 0 && removed >= 4, "\(pruned.stdout)")
        #expect(try RegistryTool.run(["cache", "list"], in: scratch.url).stdout.contains("is empty"))
    }

    @Test("a tampered served bundle is refused with exit 4 and leaves nothing in the cache")
    func tamperedBundle() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try StaticServer(in: scratch)
        defer { server.stop() }
        let file = Self.bundleFile(server, "digits-llama", "1.0.0")
        var bytes = try Data(contentsOf: file)
        bytes[bytes.count / 2] ^= 0x5A
        try bytes.write(to: file)
        let pulled = try RegistryTool.run(["--registry", server.url, "pull", "digits-llama"], in: scratch.url)
        #expect(pulled.status == 4 && pulled.stderr.contains("the served file was modified or replaced"), "\(pulled.stderr)")
        let cache = scratch.path("cache")
        let left = (FileManager.default.enumerator(atPath: cache.path)?.allObjects as? [String] ?? []).filter { $0.contains("sha256") && !$0.hasPrefix("blobs/.locks/") }
        #expect(left.isEmpty, "left in the cache: \(left)")
        // A longer file than the index records is cut off at the recorded size.
        bytes.append(Data(repeating: 7, count: 1 << 20))
        try bytes.write(to: file)
        let longer = try RegistryTool.run(["--registry", server.url, "pull", "digits-llama"], in: scratch.url)
        #expect(longer.status == 4 && longer.stderr.contains("longer than"), "\(longer.stderr)")
        // Plain HTTP to another machine is refused before anything is sent.
        let insecure = try RegistryTool.run(["--registry", "http://registry.example.org/craft", "list"], in: scratch.url)
        #expect(insecure.status == 64 && insecure.stderr.contains("--insecure"), "\(insecure.stderr)")
    }

    @Test("an interrupted download resumes with Range; 16 concurrent pulls into one cache download once")
    func resumeAndConcurrentPulls() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let server = try StaticServer(in: scratch, arguments: ["--cut-after", "100000"])
        defer { server.stop() }
        let first = try RegistryTool.run(["--registry", server.url, "pull", "digits-gpt2"], in: scratch.url)
        #expect(first.status == 1 && first.stderr.contains("run the command again to resume"), "\(first.stderr)")
        let partials = ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path("cache/blobs").path)) ?? []).filter { $0.hasSuffix(".partial") }
        #expect(partials.count == 1)
        let second = try RegistryTool.run(["--registry", server.url, "pull", "digits-gpt2"], in: scratch.url)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(server.requests.contains { $0.contains("/bundles/digits-gpt2/digits-gpt2-1.0.0.craft 206 bytes=") }, "\(server.requests)")

        // 16 processes pull another bundle at once (its first full GET is cut too, then resumed).
        let pulls = try (0..<16).map { _ in
            try RegistryTool.start(RegistryTool.executable!, ["--registry", server.url, "pull", "digits-llama"], in: scratch.url)
        }
        let results = pulls.map { $0.finish() }
        let failures = results.filter { $0.status != 0 }
        // The cut first transfer fails the pull that made it; every other pull succeeds with the same directory.
        #expect(failures.count <= 1 && failures.allSatisfy { $0.stderr.contains("resume") }, "\(failures.map(\.stderr))")
        #expect(Set(results.filter { $0.status == 0 }.map(\.stdout)).count == 1)
        let downloads = server.requests.filter { $0.contains("/bundles/digits-llama/") && ($0.contains(" 200 ") || $0.contains(" 206 ")) }
        #expect(downloads.count <= 2, "the bundle was downloaded \(downloads.count) times: \(downloads)")
    }

    @Test("redirects are followed under the same rule: to the same server, yes; to plain HTTP on another machine, refused before any request")
    func redirects() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        // /moved/… → /… on the same server (relative Location); /away/… → plain HTTP elsewhere.
        let server = try StaticServer(in: scratch, arguments: ["--redirect", "/moved/=/", "--redirect", "/away/=http://registry.example.org/"])
        defer { server.stop() }
        let direct = try RegistryTool.run(["--registry", server.url, "info", "digits-llama", "--json"], in: scratch.url)
        let moved = try RegistryTool.run(["--registry", server.url + "/moved", "info", "digits-llama", "--json"], in: scratch.url)
        #expect(direct.status == 0 && moved.status == 0, "\(moved.stderr)")
        #expect(try Self.normalized(moved) == Self.normalized(direct))
        let pulled = try RegistryTool.run(["--registry", server.url + "/moved", "pull", "digits-gpt2", "--json"], in: scratch.url)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(server.requests.contains { $0.hasPrefix("GET /moved/bundles/digits-gpt2/digits-gpt2-1.0.0.craft 302") }, "\(server.requests)")
        #expect(server.requests.contains { $0.hasPrefix("GET /bundles/digits-gpt2/digits-gpt2-1.0.0.craft 200") }, "\(server.requests)")

        let away = try RegistryTool.run(["--registry", server.url + "/away", "list"], in: scratch.url)
        #expect(away.status == 64 && away.stderr.contains("redirects to http://registry.example.org/") && away.stderr.contains("--insecure"), "\(away.stderr)")
    }
}
