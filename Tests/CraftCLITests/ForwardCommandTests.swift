import Foundation
import SafeTensors
import Testing
import TestSupport
import TensorCore
@testable import CraftCLI

@Suite struct ForwardCommandTests {
    let models = "Tests/CraftModelsTests/Fixtures/models"

    var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func temporaryOutput() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("forward-\(UUID().uuidString).safetensors")
    }

    @Test(arguments: ["llama_tied", "gpt2", "qwen2_untied", "qwen2_tied_bf16", "llama_rope_llama3", "llama_untied_f16", "gpt2_bf16"])
    func writesLogitsMatchingTransformers(name: String) throws {
        let reference = try SafeTensorsFile(contentsOf: root.appendingPathComponent("\(models)/\(name).reference.safetensors"))
        let tokens = try reference.int64s("input_ids").map(String.init).joined(separator: ",")
        let out = temporaryOutput()
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCraft(["forward", "--model", "\(models)/\(name)", "--tokens", tokens, "--output", out.path])
        #expect(result.status == 0, "\(result.standardError)")
        let family = name.hasPrefix("qwen2") ? "qwen2" : name.hasPrefix("gpt2") ? "gpt2" : "llama"
        let shape = try reference.info("logits").shape
        #expect(result.standardOutput == "wrote \(out.path) from a \(family) model: logits \(shape)\n", "\(result.standardOutput)")
        // How the weights were kept: half-precision matrices stay half, float32 ones stay float32.
        let kept = name.hasSuffix("bf16") ? "bfloat16 matrices" : name.hasSuffix("f16") ? "float16 matrices" : "float32 tensors"
        #expect(result.standardError.contains("weights in memory: ") && result.standardError.contains(kept), "\(result.standardError)")
        let written = try SafeTensorsFile(contentsOf: out)
        #expect(try written.info("logits").shape == shape)
        let (ok, report) = approximatelyEqual(try written.floats("logits"), try reference.floats("logits"), relative: 1e-4, absolute: 1e-5)
        #expect(ok, "\(report)")
    }

    /// A llama.cpp GGUF file (docs/gguf.md): logits equal transformers' on the same file.
    @Test(arguments: ["llama_q8_0", "qwen2_f16"])
    func writesLogitsOfAGGUFFile(name: String) throws {
        let fixture = "Tests/GGUFTests/Fixtures/models/\(name)"
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("\(fixture).logits.json"))) as! [String: Any]
        let tokens = (reference["tokens"] as! [Int]).map(String.init).joined(separator: ",")
        let out = temporaryOutput()
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCraft(["forward", "--model", "\(fixture).gguf", "--tokens", tokens, "--output", out.path])
        #expect(result.status == 0, "\(result.standardError)")
        let shape = reference["shape"] as! [Int]
        #expect(result.standardOutput.contains("(GGUF) model: logits [\(shape[0]), \(shape[1])]"), "\(result.standardOutput)")
        let kept = name.hasSuffix("q8_0") ? "Q8_0 matrices" : "float16 matrices"
        #expect(result.standardError.contains("weights in memory: ") && result.standardError.contains(kept), "\(result.standardError)")
        let written = try SafeTensorsFile(contentsOf: out)
        let expected = (reference["logits"] as! [NSNumber]).map { $0.floatValue }
        let (ok, report) = approximatelyEqual(try written.floats("logits"), expected, relative: 1e-4, absolute: 1e-4)
        #expect(ok, "\(report)")
        let missing = try runCraft(["forward", "--model", "no-such-model.gguf", "--tokens", "1", "--output", out.path])
        #expect(missing.status == 2 && missing.standardError.contains("does not exist"), "\(missing.standardError)")
    }

    /// The same model on OpenBLAS's portable SSE3 kernels (forced) and on the kernels Craft chooses
    /// for this CPU gives the same logits; `--version` reports which ran and why.
    @Test func kernelsChosenForTheCPUAgreeWithThePortableOnes() throws {
        let name = "llama_tied"
        let reference = try SafeTensorsFile(contentsOf: root.appendingPathComponent("\(models)/\(name).reference.safetensors"))
        let tokens = try reference.int64s("input_ids").map(String.init).joined(separator: ",")
        var logits: [[Float]] = []
        for coreType in ["Prescott", nil] {
            let out = temporaryOutput()
            defer { try? FileManager.default.removeItem(at: out) }
            let result = try runCraft(["forward", "--model", "\(models)/\(name)", "--tokens", tokens, "--output", out.path],
                                      environment: ["OPENBLAS_CORETYPE": coreType])
            #expect(result.status == 0, "\(result.standardError)")
            logits.append(try SafeTensorsFile(contentsOf: out).floats("logits"))
        }
        let (ok, report) = approximatelyEqual(logits[0], logits[1], relative: 1e-4, absolute: 1e-5)
        #expect(ok, "\(report)")

        let forced = try runCraft(["--version"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(forced.status == 0)
        #expect(forced.standardOutput.contains("Prescott kernels (from OPENBLAS_CORETYPE"), "\(forced.standardOutput)")
        #expect(forced.standardOutput.contains("Craft kernels: elementwise \(Tensor.elementwiseKernelName), attention "), "\(forced.standardOutput)")
        let chosen = try runCraft(["--version"], environment: ["OPENBLAS_CORETYPE": nil])
        #expect(chosen.standardOutput.hasPrefix("craft "), "\(chosen.standardOutput)")
        #expect(chosen.standardOutput.contains("BLAS: OpenBLAS"), "\(chosen.standardOutput)")
        #expect(chosen.standardOutput.contains("bundle format: craft.bundle/v1"), "\(chosen.standardOutput)")
        #expect(!chosen.standardOutput.contains("from OPENBLAS_CORETYPE"), "\(chosen.standardOutput)")
    }

    /// `CRAFT_MAX_ISA` caps every kernel family and Craft's choice of OpenBLAS kernels, `--version`
    /// says so, and a bfloat16 Qwen2 (matrix-vector, attention, elementwise kernels, sgemm) gives
    /// transformers' logits under each cap; a value not understood is reported and caps nothing.
    @Test func instructionSetCapHoldsForEveryKernel() throws {
        let name = "qwen2_tied_bf16"
        let reference = try SafeTensorsFile(contentsOf: root.appendingPathComponent("\(models)/\(name).reference.safetensors"))
        let tokens = try reference.int64s("input_ids").map(String.init).joined(separator: ",")
        let features = BLAS.kernels.cpuFeatures.split(separator: " ").map(String.init)
        let hasAVX2 = features.contains("avx2") && features.contains("fma")
        let vendor = features.first ?? ""
        let expected: [String: (blas: String, kernels: String)] = [
            "avx2": hasAVX2
                ? ("\(BLAS.chosenCore(vendor: vendor, avx2: true, fma: true, avx512: false, osSavesAVX: true, osSavesAVX512: false) ?? "") kernels",
                   "elementwise avx2-fma, attention avx2-fma, matrix-vector avx2-fma-f16c, nearest-code search int8 avx2 (capped by CRAFT_MAX_ISA=avx2)")
                : ("kernels", "elementwise portable, attention portable, matrix-vector portable"),
            "portable": (features.contains("avx") ? "Prescott kernels" : "kernels",
                         "elementwise portable, attention portable, matrix-vector portable, nearest-code search float32 (sgemm) (capped by CRAFT_MAX_ISA=portable)"),
        ]
        for (cap, want) in expected.sorted(by: { $0.key < $1.key }) {
            let environment = ["CRAFT_MAX_ISA": cap, "OPENBLAS_CORETYPE": nil]
            let version = try runCraft(["--version"], environment: environment)
            #expect(version.status == 0)
            #expect(version.standardOutput.contains(want.blas) && version.standardOutput.contains(want.kernels),
                    "CRAFT_MAX_ISA=\(cap): \(version.standardOutput)")
            let out = temporaryOutput()
            defer { try? FileManager.default.removeItem(at: out) }
            let result = try runCraft(["forward", "--model", "\(models)/\(name)", "--tokens", tokens, "--output", out.path],
                                      environment: environment)
            #expect(result.status == 0, "\(result.standardError)")
            let (ok, report) = approximatelyEqual(try SafeTensorsFile(contentsOf: out).floats("logits"), try reference.floats("logits"),
                                                  relative: 1e-4, absolute: 1e-5)
            #expect(ok, "CRAFT_MAX_ISA=\(cap): \(report)")
        }
        let wrong = try runCraft(["--version"], environment: ["CRAFT_MAX_ISA": "avx3"])
        #expect(wrong.status == 0)
        #expect(wrong.standardError.contains("warning: CRAFT_MAX_ISA=avx3 is not avx512, avx2 or portable"), "\(wrong.standardError)")
        #expect(wrong.standardOutput.contains("(CRAFT_MAX_ISA=avx3 not understood, not capped)"), "\(wrong.standardOutput)")
        #expect(wrong.standardOutput.contains("Craft kernels: elementwise \(Tensor.elementwiseKernelName), attention \(Tensor.fusedAttentionKernelName)"))
    }

    @Test func writesSiglipOutputsWithPooler() throws {
        let name = "siglip_head_prefixed"
        let referenceURL = root.appendingPathComponent("\(models)/\(name).reference.safetensors")
        let reference = try SafeTensorsFile(contentsOf: referenceURL)
        let out = temporaryOutput()
        defer { try? FileManager.default.removeItem(at: out) }
        // The reference file holds pixel_values among other tensors; the command reads just that one.
        let result = try runCraft(["forward", "--model", "\(models)/\(name)", "--pixels", referenceURL.path, "--output", out.path])
        #expect(result.status == 0, "\(result.standardError)")
        let written = try SafeTensorsFile(contentsOf: out)
        #expect(Set(written.names) == ["last_hidden_state", "pooler_output"])
        for tensor in written.names {
            let (ok, report) = approximatelyEqual(try written.floats(tensor), try reference.floats(tensor), relative: 1e-4, absolute: 1e-5)
            #expect(ok, "\(tensor): \(report)")
        }
    }

    @Test func writesSiglipTextOutputs() throws {
        let name = "siglip_text"
        let reference = try SafeTensorsFile(contentsOf: root.appendingPathComponent("\(models)/\(name).reference.safetensors"))
        let ids = try reference.int64s("input_ids")
        let out = temporaryOutput()
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCraft(["forward", "--model", "\(models)/\(name)", "--tokens", ids[0..<12].map(String.init).joined(separator: ","),
                                   "--output", out.path])
        #expect(result.status == 0, "\(result.standardError)")
        let written = try SafeTensorsFile(contentsOf: out)
        #expect(try written.info("pooler_output").shape == [1, 24])
        let (ok, report) = approximatelyEqual(try written.floats("pooler_output"), Array(try reference.floats("pooler_output")[0..<24]),
                                              relative: 1e-4, absolute: 1e-5)
        #expect(ok, "\(report)")
    }

    @Test func reportsUsageAndMissingInputErrors() throws {
        let out = temporaryOutput()
        defer { try? FileManager.default.removeItem(at: out) }
        let both = try runCraft(["forward", "--model", "\(models)/gpt2", "--output", out.path])
        #expect(both.status == 64)
        let badTokens = try runCraft(["forward", "--model", "\(models)/gpt2", "--tokens", "1,x", "--output", out.path])
        #expect(badTokens.status == 64 && badTokens.standardError.contains("'x'"))
        let wrongInput = try runCraft(["forward", "--model", "\(models)/siglip_no_head", "--tokens", "1,2", "--output", out.path])
        #expect(wrongInput.status == 64 && wrongInput.standardError.contains("--pixels"))
        let outOfVocabulary = try runCraft(["forward", "--model", "\(models)/gpt2", "--tokens", "1,500", "--output", out.path])
        #expect(outOfVocabulary.status == 64 && outOfVocabulary.standardError.contains("500"))
        let missing = try runCraft(["forward", "--model", "no/such/model", "--tokens", "1", "--output", out.path])
        #expect(missing.status == 2 && missing.standardError.contains("config.json"))
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test func helpShowsExamples() throws {
        let result = try runCraft(["forward", "--help"])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("craft forward --model"))
    }
}
