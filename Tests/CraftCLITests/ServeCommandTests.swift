import Foundation
import Testing

/// `craft serve` as a process, talked to by the official openai Python client and by curl
/// (docs/serve.md). The openai client comes from PyPI into .build/peers-venv
/// (scripts/ensure-python-peers.sh).
@Suite("craft serve with real clients", .serialized)
struct ServeCommandTests {
    static let python: String? = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        ?? Self.which("python3")
    static let prompt = "what digit is this ?"
    static let images = [
        "examples/data/digits/images/strong/0000.png", "examples/data/digits/images/strong/0001.png",
        "examples/data/digits/images/strong/0002.png", "Tests/CraftImagingTests/Fixtures/rgb_baseline.jpg",
    ]

    static func which(_ name: String) -> String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a command in the package root; its output goes to files, so no pipe fills up.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let running = try RegistryTool.start(URL(fileURLWithPath: executable), arguments, in: RegistryTool.packageRoot)
        let result = running.finish()
        return (result.status, result.stdout, result.stderr)
    }

    /// Starts `craft serve ARGS --port 0` and waits for the port it prints.
    static func startServer(_ arguments: [String], environment: [String: String] = [:]) throws -> (process: RegistryTool.Running, port: Int) {
        let craft = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"))
        let running = try RegistryTool.start(craft, ["serve", "--registry", "registry"] + arguments + ["--port", "0"], in: RegistryTool.packageRoot,
                                             environment: environment)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, running.process.isRunning {
            let text = (try? String(contentsOf: running.stderrURL, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
               let port = Int(text[range].split(separator: ":").last ?? "") {
                return (running, port)
            }
            usleep(50_000)
        }
        let result = running.finish()
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "craft serve did not start (exit \(result.status)): \(result.stderr)"])
    }

    @Test("the openai client and curl get craft run's answers, 64 concurrent clients x 4 requests included; SIGTERM exits 0",
          .enabled(if: python != nil, "no python3 on this machine: the openai client check needs Python"))
    func openAIClientAndCurl() throws {
        let craft = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"))
        let peers = try Self.run("/bin/bash", ["scripts/ensure-python-peers.sh"])
        try #require(peers.status == 0, "installing the openai client failed: \(peers.stderr)")
        let python = peers.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // What craft run answers for each image.
        var expected: [[String: String]] = []
        for image in Self.images {
            let result = try Self.run(craft.path, ["run", "--registry", "registry", "--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-llama",
                                                   "--image", image, "--prompt", Self.prompt, "--max-tokens", "3"])
            try #require(result.status == 0, "craft run: \(result.stderr)")
            expected.append(["image": image, "answer": result.stdout.trimmingCharacters(in: .newlines)])
        }
        let expectedFile = FileManager.default.temporaryDirectory.appendingPathComponent("serve-expected-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: expected).write(to: expectedFile)
        defer { try? FileManager.default.removeItem(at: expectedFile) }

        let (server, port) = try Self.startServer(["--encoder", "digits-siglip-vq@1.1.0", "--backend", "digits-llama"])
        defer { if server.process.isRunning { server.process.terminate() } }
        let check = try Self.run(python, ["scripts/serve_openai_check.py", "--base-url", "http://127.0.0.1:\(port)/v1",
                                          "--expected", expectedFile.path, "--prompt", Self.prompt, "--clients", "64", "--rounds", "4"])
        #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
        #expect(check.stdout.contains("256 answers correct"), "\(check.stdout)")

        // curl, plain: the same answer for the PNG.
        let body = try JSONSerialization.data(withJSONObject: [
            "model": "digits-siglip-vq+digits-llama", "max_tokens": 3,
            "messages": [["role": "user", "content": [
                ["type": "image_url", "image_url": ["url": "data:image/png;base64," + (try Data(contentsOf: RegistryTool.packageRoot.appendingPathComponent(Self.images[1]))).base64EncodedString()]],
                ["type": "text", "text": Self.prompt]]]],
        ] as [String: Any])
        let bodyFile = FileManager.default.temporaryDirectory.appendingPathComponent("serve-body-\(UUID().uuidString).json")
        try body.write(to: bodyFile)
        defer { try? FileManager.default.removeItem(at: bodyFile) }
        let curl = try Self.run("/usr/bin/env", ["curl", "-s", "-H", "Content-Type: application/json", "--data-binary", "@\(bodyFile.path)",
                                                 "http://127.0.0.1:\(port)/v1/chat/completions"])
        let reply = try JSONSerialization.jsonObject(with: Data(curl.stdout.utf8)) as? [String: Any]
        let content = ((reply?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(content == expected[1]["answer"], "\(curl.stdout)")
        let metrics = try Self.run("/usr/bin/env", ["curl", "-s", "http://127.0.0.1:\(port)/metrics"])
        #expect(metrics.stdout.contains("craft_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"))

        server.process.terminate()  // SIGTERM
        let stopped = server.finish()
        #expect(stopped.status == 0 && server.process.terminationReason == .exit, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("craft serve: stopped"))
    }

    @Test("a pair that fails the checker stops the start with the report and exit 3")
    func incompatiblePairExits3() throws {
        let craft = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"))
        let result = try Self.run(craft.path, ["serve", "--registry", "registry", "--encoder", "digits-siglip-vq@1.1.0",
                                               "--backend", "digits-llama", "--pair", "digits-siglip-vq@1.1.0=digits-answers", "--port", "0"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stdout.contains("codebook") && result.stderr.contains("cannot be paired"), "\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("listening"))
    }

    @Test("options are checked before anything is opened (exit 64)")
    func badOptions() throws {
        let craft = try #require(RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"))
        for arguments in [["serve"], ["serve", "--encoder", "digits-vq"], ["serve", "--pair", "nonsense"],
                          ["serve", "--pair", "a=b", "--port", "70000"], ["serve", "--pair", "a=b", "--max-batch", "0"],
                          ["serve", "--pair", "a=b", "--allow-files", "/no/such/dir"]] {
            let result = try Self.run(craft.path, arguments)
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
        }
    }
}
