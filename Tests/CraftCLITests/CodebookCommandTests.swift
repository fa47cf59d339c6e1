import Foundation
import SafeTensors
import Testing
@testable import CraftCLI

/// The result of running a built executable.
struct ExecutionResult {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

/// Runs the built `craft` executable (argument-parser's `AssertExecuteCommand` style).
/// Runs the built `craft`; `environment` entries replace the inherited ones (nil removes a variable).
func runCraft(_ arguments: [String], environment: [String: String?] = [:]) throws -> ExecutionResult {
    let root = RegistryTool.packageRoot
    let executable = try #require(
        RegistryTool.builtExecutable(named: "craft", override: "CRAFT_EXECUTABLE"),
        "the craft executable is not built; run `swift build --build-tests` first")
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.currentDirectoryURL = root
    if !environment.isEmpty {
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value }
        process.environment = variables
    }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ExecutionResult(
        status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
        standardError: String(decoding: errData, as: UTF8.self))
}

@Suite struct CodebookCommandTests {
    let example = "examples/codebooks/tiny-codebook.safetensors"
    let exampleHash = "sha256:0b84525bf8c7f8bc26937d2cfe858b359107e527e659fdf7d000044360a7f9d1"

    func temporaryFile(_ build: (inout SafeTensorsWriter) throws -> Void) throws -> URL {
        var writer = SafeTensorsWriter()
        try build(&writer)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString).safetensors")
        try writer.write(to: url)
        return url
    }

    @Test func printsAlignedTextForTheExampleCodebook() throws {
        let result = try runCraft(["codebook", example])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.isEmpty)
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines == [
            "file     \(example)", "tensor   codebook", "entries  16", "dim      64", "depth    1", "metric   l2",
            "hash     \(exampleHash)",
        ])
    }

    @Test func printsJSONWithStableKeys() throws {
        let url = try temporaryFile { try $0.add("rq", floats: [1, -0.0, 0.5, -2, 0.25, 3], shape: [1, 2, 3]) }
        defer { try? FileManager.default.removeItem(at: url) }
        let result = try runCraft(["codebook", url.path, "--tensor", "rq", "--metric", "cosine", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["file", "tensor", "entries", "dim", "depth", "metric", "hash", "schema_version"])
        #expect(object["entries"] as? Int == 2 && object["dim"] as? Int == 3 && object["depth"] as? Int == 1)
        #expect(object["metric"] as? String == "cosine" && object["tensor"] as? String == "rq")
        // The cosine hash of the worked example in docs/codebook-hash.md.
        #expect(object["hash"] as? String == "sha256:b7ef672871efeb2fb0bff886a6041a01e95c465c6bf1cff1e68d7143d774e1b3")
    }

    @Test func quantizesAVectorFile() throws {
        let result = try runCraft(["codebook", example, "--quantize", "examples/codebooks/sample-vectors.safetensors", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let quantized = try #require(object["quantized"] as? [String: Any])
        #expect(quantized["rows"] as? Int == 6)
        let codes = try #require(quantized["codes"] as? [[Int]])
        #expect(codes.count == 6 && codes.allSatisfy { $0.count == 1 && (0..<16).contains($0[0]) })
        let text = try runCraft(["codebook", example, "--quantize", "examples/codebooks/sample-vectors.safetensors"])
        #expect(text.standardOutput.contains("quantized 6 vectors"))
        #expect(text.standardOutput.contains("row  code  residual"))
    }

    @Test func errorsExitWithTheDocumentedCodes() throws {
        let missing = try runCraft(["codebook", "does-not-exist.safetensors"])
        #expect(missing.status == 2)
        #expect(missing.standardOutput.isEmpty)
        #expect(missing.standardError.hasPrefix("error: ") && missing.standardError.contains("does-not-exist.safetensors"))
        #expect(missing.standardError.split(separator: "\n").count == 1)

        let noTensor = try runCraft(["codebook", example, "--tensor", "missing"])
        #expect(noTensor.status == 2)
        #expect(noTensor.standardError.contains("'missing'"))

        let notSafetensors = try runCraft(["codebook", "docs/codebook-hash.md"])
        #expect(notSafetensors.status == 4)

        let bad = try temporaryFile {
            try $0.add("codebook", floats: [1, .nan, 3, 4], shape: [2, 2])
            try $0.add("flat", floats: [1, 2, 3], shape: [3])
        }
        defer { try? FileManager.default.removeItem(at: bad) }
        let nan = try runCraft(["codebook", bad.path])
        #expect(nan.status == 4)
        #expect(nan.standardError.contains("finite"))
        #expect(try runCraft(["codebook", bad.path, "--tensor", "flat"]).status == 4)

        let usage = try runCraft(["codebook", example, "--metric", "manhattan"])
        #expect(usage.status == 64)
        #expect(try runCraft(["codebook"]).status == 64)
        let wrongVectors = try runCraft(["codebook", example, "--quantize", example, "--vectors-tensor", "codebook"])
        #expect(wrongVectors.status == 0)  // a [16, 64] codebook is itself a valid [N, 64] vector file
        let wrongDimension = try runCraft(["codebook", example, "--quantize", bad.path, "--vectors-tensor", "codebook"])
        #expect(wrongDimension.status == 4)
    }

    @Test func helpShowsExamples() throws {
        let help = try runCraft(["codebook", "--help"])
        #expect(help.status == 0)
        #expect(help.standardOutput.contains("Examples (from the repository root):"))
        #expect(help.standardOutput.contains("--quantize"))
    }
}
