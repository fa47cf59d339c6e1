import Foundation
import Testing

/// Runs the real `craft-registry` executable and checks stdout, stderr, `--json` keys and exit codes
/// (docs/cli.md: 0 ok, 1 error, 2 not found, 3 incompatible, 4 integrity, 64 usage).
@Suite("craft-registry command line")
struct RegistryCLITests {
    let scratch: URL

    init() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("craft-cli-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    func run(_ arguments: String..., environment: [String: String] = [:]) throws -> RegistryTool.Result {
        try RegistryTool.run(arguments, in: scratch, environment: environment)
    }

    func run(arguments: [String]) throws -> RegistryTool.Result {
        try RegistryTool.run(arguments, in: scratch)
    }

    /// Packs and publishes a bundle through the tool; returns the .craft path.
    @discardableResult
    func publish(_ name: String, _ version: String, _ kind: String, seed: Int = 0, domains: [String] = [], note: String = "") throws -> String {
        let source = try CLIBundles.directory(
            in: scratch, name: name, version: version, kind: kind == "encoder" ? .encoder : .backend, seed: seed,
            domains: domains, note: note)
        let packed = try run("pack", source.path, "--output-directory", "dist", "--json")
        #expect(packed.status == 0, "\(packed.stderr)")
        let file = try #require(try packed.json()["file"] as? String)
        let published = try run("--registry", "reg", "publish", file)
        #expect(published.status == 0, "\(published.stderr)")
        return file
    }

    @Test func everyCommandHasHelpWithExamples() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let commands = [
            [], ["list"], ["search"], ["info"], ["compatible"], ["pair"], ["pack"], ["verify"], ["publish"], ["pull"],
            ["yank"], ["remove"], ["reindex"], ["key", "generate"], ["key", "trust"], ["sign"],
        ]
        for command in commands {
            let result = try run(arguments: command + ["--help"])
            #expect(result.status == 0, "\(command)")
            #expect(result.stdout.contains("USAGE:"), "\(command)")
            #expect(result.stdout.contains("Examples (from the repository root):"), "\(command) --help has no examples")
        }
    }

    @Test func usageErrorsExit64() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        for arguments in [["list", "--no-such-option"], ["info", "Not A Name"], ["yank", "derm@^1.0"], ["info"], ["frobnicate"],
                          ["pack", "x", "-o", "a.craft", "--output-directory", "d"]] {
            let result = try run(arguments: arguments)
            #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
            #expect(!result.stderr.isEmpty)
        }
    }

    @Test func publishListSearchInfoCompatiblePairPull() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        try publish("derm-vq", "1.0.0", "encoder", seed: 1, domains: ["dermatology"])
        try publish("derm-vq", "1.1.0", "encoder", seed: 1, domains: ["dermatology"])
        try publish("xray-vq", "0.2.0", "encoder", seed: 2)
        try publish("tiny-llm", "1.0.0", "backend", seed: 1)
        try publish("other-llm", "1.0.0", "backend", seed: 2)

        // list: aligned table, and JSON with stable keys.
        let list = try run("--registry", "reg", "list")
        #expect(list.status == 0, "\(list.stderr)")
        let lines = list.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        let header = try #require(lines.first)
        let versionColumn = try #require(header.range(of: "VERSION")).lowerBound.utf16Offset(in: header)
        for line in lines.dropFirst() {
            let name = String(line.prefix { $0 != " " })
            let rest = line.dropFirst(name.count).prefix { $0 == " " }
            #expect(name.count + rest.count == versionColumn, "misaligned: \(line)")
        }
        #expect(lines[1].hasPrefix("derm-vq") && lines[1].contains("1.1.0"))

        let listJSON = try run("list", "--registry", "reg", "--json").json()
        let bundles = try #require(listJSON["bundles"] as? [[String: Any]])
        #expect(bundles.map { $0["name"] as? String } == ["derm-vq", "other-llm", "tiny-llm", "xray-vq"])
        let first = try #require(bundles.first)
        for key in ["name", "version", "kind", "summary", "domains", "license", "runtime", "codebook", "digest", "size",
                    "yanked", "prerelease", "signed_by", "file"] {
            #expect(first[key] != nil, "list --json lacks \(key)")
        }
        #expect((first["codebook"] as? [String: Any])?["hash"] as? String == (try CLIBundles.codebookHash(seed: 1)))

        // search ranking through the tool; CRAFT_REGISTRY is honoured.
        let search = try run("search", "derm", "--json", environment: ["CRAFT_REGISTRY": scratch.appendingPathComponent("reg").path])
        #expect(search.status == 0, "\(search.stderr)")
        let results = try #require(try search.json()["results"] as? [[String: Any]])
        #expect(results.first.flatMap { ($0["bundle"] as? [String: Any])?["name"] as? String } == "derm-vq")
        #expect(results.first?["score"] is Int)
        #expect(results.first?["reasons"] is [Any])

        // info, with every version.
        let info = try run("--registry", "reg", "info", "derm-vq@~1.0.0", "--json")
        #expect(info.status == 0, "\(info.stderr)")
        let infoJSON = try info.json()
        #expect((infoJSON["bundle"] as? [String: Any])?["version"] as? String == "1.0.0")
        #expect((infoJSON["versions"] as? [[String: Any]])?.count == 2)
        #expect((infoJSON["signatures"] as? [String: Any])?["status"] as? String == "unsigned")
        let infoText = try run("--registry", "reg", "info", "derm-vq")
        #expect(infoText.stdout.contains("codebook:") && infoText.stdout.contains("1.0.0, 1.1.0"))

        // compatible partners by codebook hash.
        let compatible = try run("--registry", "reg", "compatible", "derm-vq", "--json").json()
        #expect((compatible["partners"] as? [[String: Any]])?.map { $0["name"] as? String } == ["tiny-llm"])
        let reverse = try run("--registry", "reg", "compatible", "other-llm")
        #expect(reverse.stdout.contains("xray-vq") && !reverse.stdout.contains("derm-vq"))

        // pair: a compatible pair exits 0, a mismatched one 3 with one sentence on stderr.
        let good = try run("--registry", "reg", "pair", "derm-vq", "tiny-llm")
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("compatible"))
        let bad = try run("--registry", "reg", "pair", "derm-vq", "other-llm", "--json")
        #expect(bad.status == 3, "\(bad.stdout)\(bad.stderr)")
        #expect(try bad.json()["compatible"] as? Bool == false)
        #expect(bad.stderr.hasPrefix("error: derm-vq@1.1.0 and other-llm@1.0.0 cannot be paired"))
        #expect(bad.stderr.split(separator: "\n").count == 1)

        // verify REF and pull into the cache.
        let verify = try run("--registry", "reg", "verify", "tiny-llm", "--json")
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(try verify.json()["ok"] as? Bool == true)
        let pull = try run("--registry", "reg", "pull", "derm-vq@^1")
        #expect(pull.status == 0, "\(pull.stderr)")
        let directory = pull.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(directory.hasPrefix(scratch.appendingPathComponent("cache").path))
        #expect(FileManager.default.fileExists(atPath: directory + "/craft.json"))

        // The documented JSON keys of pack, publish, pull, yank and remove (docs/cli.md).
        let source = try CLIBundles.directory(in: scratch, name: "keys-llm", version: "2.0.0", kind: .backend, seed: 1)
        let packJSON = try run("pack", source.path, "-o", "keys.craft", "--json").json()
        #expect(Set(packJSON.keys) == ["file", "name", "version", "kind", "digest", "size", "schema_version"])
        let publishJSON = try run("--registry", "reg", "publish", "keys.craft", "--json").json()
        #expect(Set(publishJSON.keys) == ["outcome", "name", "version", "digest", "size", "file", "registry", "signed_by", "schema_version"])
        #expect(publishJSON["outcome"] as? String == "published")
        let pullJSON = try run("--registry", "reg", "pull", "keys-llm", "--json").json()
        #expect(Set(pullJSON.keys) == ["name", "version", "digest", "directory", "reused_cache", "signatures", "schema_version"])
        let yankJSON = try run("--registry", "reg", "yank", "keys-llm@2.0.0", "--json").json()
        #expect(Set(yankJSON.keys) == ["name", "version", "yanked", "schema_version"])
        let removeJSON = try run("--registry", "reg", "remove", "keys-llm@2.0.0", "--json").json()
        #expect(Set(removeJSON.keys) == ["name", "version", "removed", "schema_version"])

        // yank hides the newest version from `list`; exact versions still resolve.
        #expect(try run("--registry", "reg", "yank", "derm-vq@1.1.0").status == 0)
        #expect(try run("--registry", "reg", "info", "derm-vq", "--json").json()["bundle"].flatMap { ($0 as? [String: Any])?["version"] as? String } == "1.0.0")
        #expect(try run("--registry", "reg", "info", "derm-vq@1.1.0").stdout.contains("(yanked)"))
        #expect(try run("--registry", "reg", "remove", "xray-vq@0.2.0").status == 0)
    }

    @Test func notFoundTamperedAndConflictingExitCodes() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let file = try publish("derm-vq", "1.0.0", "encoder", seed: 1)

        let missing = try run("--registry", "reg", "info", "nothing-here")
        #expect(missing.status == 2)
        #expect(missing.stderr.hasPrefix("error: no bundle named 'nothing-here'"))
        #expect(missing.stdout.isEmpty)
        #expect(try run("--registry", "reg", "info", "derm-vq@^7").status == 2)
        #expect(try run("--registry", "no-such-registry", "list").status == 2)
        #expect(try run("verify", "missing.craft").status == 2)

        // Same bytes again: no-op. Different bytes under the same version: refused, exit 4.
        let again = try run("--registry", "reg", "publish", file, "--json")
        #expect(again.status == 0)
        #expect(try again.json()["outcome"] as? String == "unchanged")
        let impostorDirectory = try CLIBundles.directory(
            in: scratch.appendingPathComponent("other"), name: "derm-vq", version: "1.0.0", kind: .encoder, seed: 1, note: "changed")
        let impostor = try run("pack", impostorDirectory.path, "-o", "impostor.craft")
        #expect(impostor.status == 0, "\(impostor.stderr)")
        let conflict = try run("--registry", "reg", "publish", "impostor.craft")
        #expect(conflict.status == 4)
        #expect(conflict.stderr.contains("immutable"))

        // A tampered file in the registry: verify and pull exit 4.
        let stored = scratch.appendingPathComponent("reg/bundles/derm-vq/derm-vq-1.0.0.craft")
        var bytes = try Data(contentsOf: stored)
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: stored)
        let verify = try run("--registry", "reg", "verify", "derm-vq")
        #expect(verify.status == 4)
        #expect(verify.stderr.contains("digest"))
        #expect(try run("--registry", "reg", "pull", "derm-vq").status == 4)
        // A tampered file on its own: the archive checks catch it.
        try bytes.write(to: scratch.appendingPathComponent("tampered.craft"))
        #expect(try run("verify", "tampered.craft").status == 4)

        // A corrupt shard: the listing still prints the rest, names the file, exits 4.
        try publish("tiny-llm", "1.0.0", "backend", seed: 1)
        try Data("{ broken".utf8).write(to: scratch.appendingPathComponent("reg/index/de/derm-vq.json"))
        let list = try run("--registry", "reg", "list")
        #expect(list.status == 4)
        #expect(list.stdout.contains("tiny-llm"))
        #expect(list.stderr.contains("index/de/derm-vq.json"))
    }

    @Test func keysSignaturesAndRequireSignature() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = try CLIBundles.directory(in: scratch, name: "derm-vq", version: "1.0.0", kind: .encoder, seed: 1)
        #expect(try run("pack", source.path, "-o", "derm.craft").status == 0)

        let generated = try run("key", "generate", "--output", "team", "--json")
        #expect(generated.status == 0, "\(generated.stderr)")
        let keyID = try #require(try generated.json()["key_id"] as? String)
        let mode = try FileManager.default.attributesOfItem(atPath: scratch.appendingPathComponent("team").path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        let signed = try run("sign", "derm.craft", "--key", "team", "--json")
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(try signed.json()["signature"] as? String == scratch.appendingPathComponent("derm.craft.sig").path)

        // Signed but not trusted yet.
        let untrusted = try run("--registry", "reg", "verify", "derm.craft", "--json")
        #expect(untrusted.status == 0, "\(untrusted.stderr)")
        #expect((try untrusted.json()["signatures"] as? [String: Any])?["status"] as? String == "untrusted")
        #expect(try run("--registry", "reg", "verify", "derm.craft", "--require-signature").status == 4)

        #expect(try run("--registry", "reg", "publish", "derm.craft").status == 0)
        #expect(try run("--registry", "reg", "key", "trust", "team.pub").status == 0)
        let trusted = try run("--registry", "reg", "verify", "derm-vq", "--require-signature", "--json")
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect((try trusted.json()["signatures"] as? [String: Any])?["key_ids"] as? [String] == [keyID])
        #expect(try run("--registry", "reg", "pull", "derm-vq", "--require-signature").status == 0)

        // Tampered signature file: exit 4.
        let sigURL = scratch.appendingPathComponent("derm.craft.sig")
        var sig = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: sigURL)) as? [String: Any])
        let encoded = try #require(sig["signature"] as? String)
        var raw = try #require(Data(base64Encoded: encoded))
        raw[5] ^= 0x01
        sig["signature"] = raw.base64EncodedString()
        try JSONSerialization.data(withJSONObject: sig).write(to: sigURL)
        #expect(try run("--registry", "reg", "verify", "derm.craft").status == 4)

        // An unsigned bundle under --require-signature: exit 4.
        try publish("tiny-llm", "1.0.0", "backend", seed: 1)
        let unsigned = try run("--registry", "reg", "pull", "tiny-llm", "--require-signature")
        #expect(unsigned.status == 4)
        #expect(unsigned.stderr.contains("not signed"))
    }

    @Test func concurrentPublishProcessesAllLand() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        let executable = try #require(RegistryTool.executable)
        var files: [String] = []
        for index in 0..<4 {
            let source = try CLIBundles.directory(in: scratch, name: "llm-\(index)", version: "1.0.0", kind: .backend, seed: 1)
            let packed = try run("pack", source.path, "--output-directory", "dist", "--json")
            files.append(try #require(try packed.json()["file"] as? String))
        }
        let running = try files.map { try RegistryTool.start(executable, ["--registry", "reg", "publish", $0], in: scratch) }
        let results = running.map { $0.finish() }
        for result in results { #expect(result.status == 0, "\(result.stderr)") }
        let list = try run("--registry", "reg", "list", "--json").json()
        #expect((list["bundles"] as? [[String: Any]])?.count == 4)
        #expect((list["warnings"] as? [Any])?.isEmpty == true)
    }

    /// Rewrites the first version record of a shard.
    func editShard(_ relativePath: String, _ edit: (inout [String: Any]) -> Void) throws {
        let url = scratch.appendingPathComponent("reg/" + relativePath)
        var shard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var versions = try #require(shard["versions"] as? [[String: Any]])
        edit(&versions[0])
        shard["versions"] = versions
        try JSONSerialization.data(withJSONObject: shard, options: [.sortedKeys]).write(to: url)
    }

    @Test func aHostileShardDigestExits4AndPullDeletesNothingOutsideTheCache() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        try publish("derm-vq", "1.0.0", "encoder", seed: 1)
        let pulled = try run("--registry", "reg", "pull", "derm-vq", "--json")
        #expect(pulled.status == 0, "\(pulled.stderr)")
        let digest = try #require(try pulled.json()["digest"] as? String)
        let victim = scratch.appendingPathComponent("victim")
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: victim.appendingPathComponent("file.txt"))
        // $CRAFT_CACHE is scratch/cache: sha256-<hex>/../../victim is scratch/victim.
        try editShard("index/de/derm-vq.json") { $0["digest"] = digest + "/../../victim" }

        for command in [["info", "derm-vq"], ["pull", "derm-vq"], ["verify", "derm-vq"], ["list"]] {
            let result = try run(arguments: ["--registry", "reg"] + command)
            #expect(result.status == 4, "\(command): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("index/de/derm-vq.json"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("versions[0].digest"), "\(command): \(result.stderr)")
        }
        #expect(FileManager.default.fileExists(atPath: victim.appendingPathComponent("file.txt").path))
        #expect(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("cache").path))
    }

    @Test func aLyingCodebookHashIsRefusedByPublishVerifyAndPair() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        try publish("tiny-llm", "1.0.0", "backend", seed: 1)
        let lie = try CLIBundles.lyingEncoder(
            in: scratch, name: "liar-vq", version: "1.0.0", declaredHash: try CLIBundles.codebookHash(seed: 1))

        let published = try run("--registry", "reg", "publish", lie.path)
        #expect(published.status == 4, "\(published.stderr)")
        #expect(published.stderr.contains("codebook") && published.stderr.contains(lie.path), "\(published.stderr)")
        let compatible = try run("--registry", "reg", "compatible", "tiny-llm", "--json")
        #expect(compatible.status == 0, "\(compatible.stderr)")
        #expect((try compatible.json()["partners"] as? [Any])?.isEmpty == true)
        #expect(try run("--registry", "reg", "search", "liar").stdout.contains("No bundle"))

        let verify = try run("--registry", "reg", "verify", lie.path)
        #expect(verify.status == 4, "\(verify.stderr)")
        #expect(verify.stderr.contains("hashes to"), "\(verify.stderr)")
        // pair: the lie is an integrity failure of the encoder bundle (4), not an incompatible pair (3).
        let pair = try run("--registry", "reg", "pair", lie.path, "tiny-llm")
        #expect(pair.status == 4, "\(pair.stdout)\(pair.stderr)")
        #expect(pair.stderr.contains("liar-vq"), "\(pair.stderr)")
    }

    @Test func indexDamageIsReportedRefusedAndRepairedByReindex() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        try publish("derm-vq", "1.0.0", "encoder", seed: 1)
        try publish("derm-vq", "1.1.0", "encoder", seed: 1)
        try publish("tiny-llm", "1.0.0", "backend", seed: 1)
        try publish("xray-vq", "0.2.0", "encoder", seed: 2)
        #expect(try run("--registry", "reg", "yank", "xray-vq@0.2.0").status == 0)
        let index = scratch.appendingPathComponent("reg/registry.json")
        try FileManager.default.removeItem(at: index)

        let list = try run("--registry", "reg", "list")
        #expect(list.status == 4, "\(list.stderr)")
        #expect(list.stdout.contains("derm-vq") && list.stdout.contains("tiny-llm"))
        #expect(list.stderr.contains("registry.json is missing") && list.stderr.contains("reindex"), "\(list.stderr)")
        #expect(list.stderr.contains("damaged"), "\(list.stderr)")
        #expect(try run("--registry", "reg", "search", "derm").status == 4)
        let source = try CLIBundles.directory(in: scratch, name: "new-llm", version: "1.0.0", kind: .backend, seed: 1)
        #expect(try run("pack", source.path, "-o", "new.craft").status == 0)
        let refused = try run("--registry", "reg", "publish", "new.craft")
        #expect(refused.status == 4, "\(refused.stderr)")
        #expect(refused.stderr.contains("craft-registry reindex"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: index.path))

        let reindex = try run("--registry", "reg", "reindex", "--json")
        #expect(reindex.status == 0, "\(reindex.stderr)")
        let json = try reindex.json()
        #expect(Set(json.keys) == ["registry", "names", "versions", "kept", "added", "dropped", "rewritten", "removed", "repaired", "warnings", "schema_version"])
        #expect(json["names"] as? [String] == ["derm-vq", "tiny-llm", "xray-vq"])
        #expect(json["versions"] as? Int == 4)
        #expect(json["rewritten"] as? [String] == ["registry.json"])
        #expect(try run("--registry", "reg", "list").status == 0)
        #expect(try run("--registry", "reg", "info", "xray-vq@0.2.0").stdout.contains("(yanked)"))
        #expect(try run("--registry", "reg", "publish", "new.craft").status == 0)

        // Garbage registry.json: the listing reports it; info and pull of an intact shard still work.
        try Data("{ not json".utf8).write(to: index)
        #expect(try run("--registry", "reg", "list").status == 4)
        let info = try run("--registry", "reg", "info", "derm-vq")
        #expect(info.status == 0, "\(info.stderr)")
        let pull = try run("--registry", "reg", "pull", "tiny-llm")
        #expect(pull.status == 0, "\(pull.stderr)")
        let repaired = try run("--registry", "reg", "reindex")
        #expect(repaired.status == 0, "\(repaired.stderr)")
        #expect(repaired.stdout.hasPrefix("Reindexed"), "\(repaired.stdout)")
        let again = try run("--registry", "reg", "list", "--json")
        #expect(again.status == 0)
        #expect((try again.json()["bundles"] as? [Any])?.count == 3)  // xray-vq is yanked
    }
}
