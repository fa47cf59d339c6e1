import CraftBundles
import Foundation
import RuntimeTestSupport
import Testing

/// `craft runtimes`, `run`, `eval`, `tokens` and `craft-registry pair` with the Python example runtime plugin
/// (examples/runtime-plugin-python, docs/runtime-protocol.md) found on CRAFT_RUNTIME_PATH: the
/// same answers as Craft's built-in siglip-vq runtime on the same bundle.
@Suite("craft with a runtime plugin")
struct RuntimePluginCommandTests {
    static let root = RegistryTool.packageRoot

    /// The plugins directory (the numpy plugin, and one that fails its handshake) and the digits
    /// encoder repacked to name the plugin's runtime.
    static func setUp(in scratch: Scratch) throws -> (plugins: URL, encoder: URL) {
        let peers = Process()
        peers.executableURL = URL(fileURLWithPath: "/bin/bash")
        peers.arguments = [root.appendingPathComponent("scripts/ensure-python-peers.sh").path]
        let output = Pipe()
        peers.standardOutput = output
        try peers.run()
        peers.waitUntilExit()
        let python = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(peers.terminationStatus == 0 && !python.isEmpty, "scripts/ensure-python-peers.sh failed")

        let plugins = scratch.path("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        let examples = root.appendingPathComponent("examples/runtime-plugin-python")
        for (name, body) in [
            ("numpy-siglip-vq", "exec \"\(python)\" \"\(examples.path)/craft-runtime-numpy-siglip-vq\" \"$@\""),
            ("numpy-gpt2", "exec \"\(python)\" \"\(examples.path)/craft-runtime-numpy-gpt2\" \"$@\""),
            ("broken", "echo 'no model here' >&2; exit 2"),
        ] {
            let url = plugins.appendingPathComponent("craft-runtime-\(name)")
            try "#!/bin/sh\n\(body)\n".write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }

        return (plugins, try repack("digits-siglip-vq/digits-siglip-vq-1.1.0.craft", runtime: "numpy-siglip-vq", name: "digits-numpy-vq", in: scratch))
    }

    /// A registry bundle repacked under another name with its runtime id changed to a plugin's.
    static func repack(_ bundle: String, runtime: String, name: String, in scratch: Scratch) throws -> URL {
        let unpacked = try BundleArchive.unpack(root.appendingPathComponent("registry/bundles/\(bundle)"), into: scratch.path("unpacked-\(name)"))
        let directory = scratch.path(name)
        try FileManager.default.copyItem(at: unpacked.directory, to: directory)
        let manifestURL = directory.appendingPathComponent("craft.json")
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        manifest["runtime"] = ["id": runtime, "version": "1.0.0"]
        manifest["name"] = name
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: manifestURL)
        return try BundleArchive.pack(directory: directory, to: scratch.path("\(name)-1.0.0.craft")).url
    }

    /// Both sides from plugins (the numpy encoder and the numpy GPT-2 backend): craft run and craft
    /// eval answer as the built-in runtimes do with the same bundles.
    @Test("craft run and eval with a numpy GPT-2 backend plugin answer as the built-in gpt2 runtime")
    func backendPlugin() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (plugins, encoder) = try Self.setUp(in: scratch)
        let backend = try Self.repack("digits-gpt2/digits-gpt2-1.0.0.craft", runtime: "numpy-gpt2", name: "digits-numpy-gpt2", in: scratch)
        let environment: [String: String?] = ["CRAFT_RUNTIME_PATH": plugins.path]
        func answers(_ output: String) throws -> Any? { try JSONSerialization.jsonObject(with: Data(output.utf8)) }
        for image in ["examples/data/digits/images/strong/0003.png", "examples/data/digits/images/general/0001.png"] {
            let ask = ["--image", image, "--prompt", "what digit is this ?", "--json", "--registry", "registry"]
            let builtIn = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2"] + ask)
            let plugin = try runCraft(["run", "--encoder", encoder.path, "--backend", backend.path] + ask, environment: environment)
            #expect(builtIn.status == 0 && plugin.status == 0, "\(plugin.standardError)")
            let (ours, theirs) = (try answers(plugin.standardOutput) as? [String: Any], try answers(builtIn.standardOutput) as? [String: Any])
            #expect(ours?["answer"] as? String != nil && ours?["answer"] as? String == theirs?["answer"] as? String, "\(plugin.standardOutput)")
        }
        let data = ["--data", "examples/data/digits/strong-test.jsonl", "--limit", "16", "--json", "--registry", "registry"]
        let builtInEval = try runCraft(["eval", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2"] + data)
        let pluginEval = try runCraft(["eval", "--encoder", "digits-siglip-vq@1.1.0", "--backend", backend.path] + data, environment: environment)
        #expect(builtInEval.status == 0 && pluginEval.status == 0, "\(pluginEval.standardError)")
        let (expected, measured) = ((try answers(builtInEval.standardOutput) as? [String: Any])?["accuracy"] as? Double,
                                    (try answers(pluginEval.standardOutput) as? [String: Any])?["accuracy"] as? Double)
        #expect(expected != nil && measured == expected, "\(pluginEval.standardOutput)")
    }

    /// `craft serve` on a pair whose two sides are plugins: concurrent clients get `craft run`'s
    /// answers of the built-in runtimes, and SIGTERM ends the server and its plugin processes.
    @Test("craft serve with an encoder and a backend plugin answers as the built-in runtimes")
    func serveWithPlugins() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (plugins, encoder) = try Self.setUp(in: scratch)
        let backend = try Self.repack("digits-gpt2/digits-gpt2-1.0.0.craft", runtime: "numpy-gpt2", name: "digits-numpy-gpt2", in: scratch)
        let images = (0..<3).map { String(format: "examples/data/digits/images/strong/%04d.png", $0) }
        let expected = try images.map { image in
            let result = try runCraft(["run", "--registry", "registry", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-gpt2",
                                       "--image", image, "--prompt", "what digit is this ?", "--max-tokens", "3"])
            try #require(result.status == 0, "\(result.standardError)")
            return result.standardOutput.trimmingCharacters(in: .newlines)
        }
        let (server, port) = try ServeCommandTests.startServer(["--encoder", encoder.path, "--backend", backend.path],
                                                               environment: ["CRAFT_RUNTIME_PATH": plugins.path])
        defer { if server.process.isRunning { server.process.terminate() } }
        // Three clients at once; the plugin backend has no step-wise decoding, so they are served in turn.
        let clients = try images.enumerated().map { index, image in
            let body = try JSONSerialization.data(withJSONObject: [
                "model": "digits-numpy-vq+digits-numpy-gpt2", "max_tokens": 3,
                "messages": [["role": "user", "content": [
                    ["type": "image_url", "image_url": ["url": "data:image/png;base64," + (try Data(contentsOf: Self.root.appendingPathComponent(image))).base64EncodedString()]],
                    ["type": "text", "text": "what digit is this ?"]]]],
            ] as [String: Any])
            let file = scratch.path("body-\(index).json")
            try body.write(to: file)
            return try RegistryTool.start(URL(fileURLWithPath: "/usr/bin/env"),
                                          ["curl", "-s", "--max-time", "60", "-H", "Content-Type: application/json", "--data-binary", "@\(file.path)",
                                           "http://127.0.0.1:\(port)/v1/chat/completions"], in: scratch.url)
        }
        for (client, answer) in zip(clients, expected) {
            let reply = try JSONSerialization.jsonObject(with: Data(client.finish().stdout.utf8)) as? [String: Any]
            let content = ((reply?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            #expect(content == answer, "\(String(describing: reply))")
        }
        server.process.terminate()  // SIGTERM
        let stopped = server.finish()
        #expect(stopped.status == 0, "\(stopped.stderr)")
        // The server stopped its plugin processes on the way out.
        let plugin = plugins.path
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            Int32(entry) != nil && ((try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8)) ?? "").contains("runtime-plugin-python")
                && ((try? String(contentsOfFile: "/proc/\(entry)/environ", encoding: .utf8)) ?? "").contains(plugin)
        }
        #expect(left.isEmpty, "plugin processes outlived craft serve: \(left)")
    }

    @Test("craft runtimes lists the plugin from its handshake, and a broken one with the reason")
    func runtimesListsPlugins() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (plugins, _) = try Self.setUp(in: scratch)
        let result = try runCraft(["runtimes", "--json"], environment: ["CRAFT_RUNTIME_PATH": plugins.path])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as! [String: Any]
        let builtIn = (report["builtin"] as! [[String: Any]]).map { $0["id"] as! String }
        #expect(builtIn.contains("siglip-vq") && builtIn.contains("llama"))
        let found = report["plugins"] as! [[String: Any]]
        let numpy = try #require(found.first { $0["id"] as? String == "numpy-siglip-vq" })
        #expect(numpy["source"] as? String == "CRAFT_RUNTIME_PATH" && numpy["problem"] == nil)
        let offers = numpy["runtimes"] as! [[String: Any]]
        #expect(offers.map { $0["kind"] as? String } == ["encoder"] && offers.first?["version"] as? String == "1.0.0")
        let broken = try #require(found.first { $0["id"] as? String == "broken" })
        #expect((broken["problem"] as? String)?.contains("exit status 2") == true)
        #expect((broken["problem"] as? String)?.contains("no model here") == true)

        let text = try runCraft(["runtimes"], environment: ["CRAFT_RUNTIME_PATH": plugins.path])
        #expect(text.status == 0)
        #expect(text.standardOutput.contains("runtime plugins (craft.runtime/v1):"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("broken"), "\(text.standardOutput)")
    }

    @Test("craft run, eval, tokens and craft-registry pair work with the plugin as with the built-in runtime")
    func runAndEvalThroughThePlugin() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let (plugins, encoder) = try Self.setUp(in: scratch)
        let environment: [String: String?] = ["CRAFT_RUNTIME_PATH": plugins.path]
        let image = "examples/data/digits/images/strong/0003.png"
        let common = ["--backend", "digits-llama", "--registry", "registry"]
        let builtIn = try runCraft(["run", "--encoder", "digits-siglip-vq@1.1.0", "--image", image, "--prompt", "what digit is this ?", "--json"] + common)
        let plugin = try runCraft(["run", "--encoder", encoder.path, "--image", image, "--prompt", "what digit is this ?", "--json"] + common,
                                  environment: environment)
        #expect(builtIn.status == 0 && plugin.status == 0, "\(plugin.standardError)")
        func answer(_ output: String) throws -> String? {
            (try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["answer"] as? String
        }
        let (ours, theirs) = (try answer(plugin.standardOutput), try answer(builtIn.standardOutput))
        #expect(ours != nil && ours == theirs, "\(plugin.standardOutput)")

        let data = ["--data", "examples/data/digits/strong-test.jsonl", "--limit", "24", "--json"]
        let builtInEval = try runCraft(["eval", "--encoder", "digits-siglip-vq@1.1.0"] + data + common)
        let pluginEval = try runCraft(["eval", "--encoder", encoder.path] + data + common, environment: environment)
        #expect(builtInEval.status == 0 && pluginEval.status == 0, "\(pluginEval.standardError)")
        func accuracy(_ output: String) throws -> Double? {
            (try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["accuracy"] as? Double
        }
        let (expected, measured) = (try accuracy(builtInEval.standardOutput), try accuracy(pluginEval.standardOutput))
        #expect(expected != nil && measured == expected, "\(pluginEval.standardOutput)")

        // craft tokens: the same grid of codes.
        let tokens = try runCraft(["tokens", "--encoder", encoder.path, "--image", image], environment: environment)
        let builtInTokens = try runCraft(["tokens", "--registry", "registry", "--encoder", "digits-siglip-vq@1.1.0", "--image", image])
        #expect(tokens.status == 0 && tokens.standardOutput == builtInTokens.standardOutput, "\(tokens.standardError)")

        // craft-registry pair: the checker counts the plugin's runtime as registered (found, not started).
        let pair = try RegistryTool.run(["pair", "--registry", Self.root.appendingPathComponent("registry").path, "--json", encoder.path, "digits-llama"],
                                        in: scratch.url, environment: ["CRAFT_RUNTIME_PATH": plugins.path])
        #expect(pair.status == 0, "\(pair.stdout) \(pair.stderr)")

        // Without the plugin on the path, the runtime is unknown: exit 1 with the runtimes known.
        let missing = try runCraft(["run", "--encoder", encoder.path, "--image", image, "--prompt", "what digit is this ?"] + common,
                                   environment: ["CRAFT_RUNTIME_PATH": scratch.path("nowhere").path, "PATH": "/usr/bin:/bin"])
        #expect(missing.status != 0 && missing.standardError.contains("numpy-siglip-vq"), "\(missing.standardError)")
    }
}
