import CraftCore
import Foundation
import Testing

@testable import CraftBundles

@Suite("Bundle manifest")
struct ManifestTests {
    static let validJSON = """
        {
          "schema": "craft.bundle/v1", "kind": "encoder", "name": "derm-encoder", "version": "1.2.0",
          "summary": "Dermatology encoder", "domains": ["dermatology"], "license": "MIT",
          "runtime": {"id": "siglip-vq", "version": "1.0.0", "x-runtime-extra": 1},
          "codebook": {"hash": "sha256:\(String(repeating: "0f", count: 32))", "entries": 8, "dim": 4, "depth": 1, "metric": "cosine",
                       "tensor": {"file": "codebook.safetensors", "name": "codebook", "dtype-hint": "f16"}, "x-note": "kept"},
          "files": [{"path": "codebook.safetensors", "size": 10, "sha256": "\(String(repeating: "a", count: 64))", "x-compressed": false}],
          "config": {"layers": 12, "nested": {"list": [1, 2.5, null, true, "s"]}},
          "encoder": {"image_size": 224, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "tokens_per_image": 196, "quantization_layer": 9, "x-patch": 16},
          "provenance": {"method": "craft", "surrogate": "gpt2-tiny@1.0.0", "metrics": {"accuracy": 0.91}},
          "requires": {"craft": ">=0.1 <1.0", "x-os": "linux"},
          "x-future-field": {"anything": [1, 2, 3]},
          "signatures": ["later"]
        }
        """

    @Test("decodes every known field")
    func decodesKnownFields() throws {
        let manifest = try BundleManifest.decode(Data(Self.validJSON.utf8))
        #expect(manifest.kind == .encoder)
        #expect(manifest.version == SemanticVersion("1.2.0"))
        #expect(manifest.codebook.dimension == 4 && manifest.codebook.metric == .cosine)
        #expect(manifest.codebook.tensor?.file == "codebook.safetensors" && manifest.codebook.tensor?.name == "codebook")
        #expect(manifest.encoder?.tokensPerImage == 196 && manifest.encoder?.quantizationLayer == 9)
        #expect(manifest.requires?.craft?.text == ">=0.1 <1.0")
        #expect(manifest.provenance?["metrics"]?["accuracy"]?.doubleValue == 0.91)
        #expect(manifest.problems().isEmpty, "\(manifest.problems())")
        try manifest.validate()
    }

    @Test("unknown fields survive a decode–encode round trip at every level")
    func unknownFieldsRoundTrip() throws {
        let manifest = try BundleManifest.decode(Data(Self.validJSON.utf8))
        #expect(manifest.unknownFields["x-future-field"] == ["anything": [1, 2, 3]])
        #expect(manifest.unknownFields["signatures"] == ["later"])
        #expect(manifest.runtime.unknownFields["x-runtime-extra"] == 1)
        #expect(manifest.codebook.unknownFields["x-note"] == "kept")
        #expect(manifest.codebook.tensor?.unknownFields["dtype-hint"] == "f16")
        #expect(manifest.files[0].unknownFields["x-compressed"] == false)
        #expect(manifest.encoder?.unknownFields["x-patch"] == 16)
        #expect(manifest.requires?.unknownFields["x-os"] == "linux")
        let again = try BundleManifest.decode(try manifest.canonicalJSON())
        #expect(again == manifest)
        // And as plain JSON: every original member is present after re-encoding.
        let original = try JSONDecoder().decode(JSONValue.self, from: Data(Self.validJSON.utf8))
        let reencoded = try JSONDecoder().decode(JSONValue.self, from: try manifest.canonicalJSON())
        #expect(original == reencoded)
    }

    @Test("canonical JSON is sorted, pretty and ends with a newline")
    func canonicalJSON() throws {
        let manifest = try BundleManifest.decode(Data(Self.validJSON.utf8))
        let data = try manifest.canonicalJSON()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasSuffix("}\n"))
        #expect(text.contains("\n"))
        let topKeys = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]).keys.sorted()
        var lastIndex = text.startIndex
        for key in topKeys {
            let range = try #require(text.range(of: "\n  \"\(key)\""), "top-level key \(key)")
            #expect(range.lowerBound >= lastIndex, "\(key) is out of order")
            lastIndex = range.lowerBound
        }
        #expect(try BundleManifest.decode(data).canonicalJSON() == data)
    }

    func mutated(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        var json = try #require(try JSONSerialization.jsonObject(with: Data(Self.validJSON.utf8)) as? [String: Any])
        edit(&json)
        return try JSONSerialization.data(withJSONObject: json)
    }

    @Test("decoding errors name the field path")
    func decodingErrorsNameTheField() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("license", { $0["license"] = nil }),
            ("version", { $0["version"] = "1.2" }),
            ("kind", { $0["kind"] = "tokenizer" }),
            ("files[0].size", { $0["files"] = [["path": "a", "size": "ten", "sha256": String(repeating: "a", count: 64)]] }),
            ("codebook.metric", { json in
                var codebook = json["codebook"] as? [String: Any] ?? [:]
                codebook["metric"] = "manhattan"
                json["codebook"] = codebook
            }),
            ("requires.craft", { $0["requires"] = ["craft": ">=banana"] }),
        ]
        for (field, edit) in cases {
            let data = try mutated(edit)
            let error = expectBundleError(.invalidManifest, entry: field) { _ = try BundleManifest.decode(data) }
            #expect(error?.message.contains(field) == true, "\(error?.message ?? "")")
        }
        expectBundleError(.invalidManifest, entry: "craft.json") { _ = try BundleManifest.decode(Data("{not json".utf8)) }
    }

    @Test("validation names the field path of each problem")
    func validationNamesFields() throws {
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("name", { $0["name"] = "Derm Encoder" }),
            ("schema", { $0["schema"] = "craft.bundle/v2" }),
            ("summary", { $0["summary"] = "  " }),
            ("domains[1]", { $0["domains"] = ["ok", "Not OK"] }),
            ("runtime.id", { $0["runtime"] = ["id": "", "version": "1.0.0"] }),
            ("files[1].sha256", { $0["files"] = [
                ["path": "codebook.safetensors", "size": 1, "sha256": String(repeating: "a", count: 64)],
                ["path": "b.bin", "size": 1, "sha256": String(repeating: "A", count: 64)],
            ] }),
            ("files[0].path", { $0["files"] = [["path": "../escape", "size": 1, "sha256": String(repeating: "a", count: 64)]] }),
            ("files[1].path", { $0["files"] = [
                ["path": "codebook.safetensors", "size": 1, "sha256": String(repeating: "a", count: 64)],
                ["path": "codebook.safetensors", "size": 1, "sha256": String(repeating: "a", count: 64)],
            ] }),
            ("codebook.hash", { json in
                var codebook = json["codebook"] as? [String: Any] ?? [:]
                codebook["hash"] = "md5:abc"
                json["codebook"] = codebook
            }),
            ("codebook.tensor.file", { json in
                var codebook = json["codebook"] as? [String: Any] ?? [:]
                codebook["tensor"] = ["file": "missing.safetensors", "name": "codebook"]
                json["codebook"] = codebook
            }),
            ("encoder.tokens_per_image", { json in
                var encoder = json["encoder"] as? [String: Any] ?? [:]
                encoder["tokens_per_image"] = 0
                json["encoder"] = encoder
            }),
            ("encoder", { $0["encoder"] = nil }),
            ("config", { $0["config"] = [1, 2] }),
        ]
        for (field, edit) in cases {
            let manifest = try BundleManifest.decode(try mutated(edit))
            #expect(manifest.problems().map(\.field).contains(field), "expected a problem at \(field), got \(manifest.problems())")
            let error = expectBundleError(.invalidManifest, entry: field) { try manifest.validate() }
            #expect(error?.message.contains(field) == true)
        }
    }

    @Test("names follow [a-z0-9][a-z0-9._-]{0,63}")
    func namePattern() {
        #expect(BundleManifest.isValidName("a"))
        #expect(BundleManifest.isValidName("derm-encoder_v2.1"))
        #expect(BundleManifest.isValidName(String(repeating: "a", count: 64)))
        #expect(!BundleManifest.isValidName(String(repeating: "a", count: 65)))
        #expect(!BundleManifest.isValidName("-derm"))
        #expect(!BundleManifest.isValidName("Derm"))
        #expect(!BundleManifest.isValidName(""))
        #expect(!BundleManifest.isValidName("dérm"))
    }
}

@Suite("Example manifests")
struct ExampleManifestTests {
    @Test("the committed examples (also checked by the JSON Schema) decode, validate and round-trip", arguments: ["manifest-encoder", "manifest-backend"])
    func examplesValidate(_ name: String) throws {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        let data = try Data(contentsOf: url)
        let manifest = try BundleManifest.decode(data)
        #expect(manifest.problems().isEmpty, "\(manifest.problems())")
        #expect(try JSONDecoder().decode(JSONValue.self, from: manifest.canonicalJSON()) == JSONDecoder().decode(JSONValue.self, from: data))
        let candidate = manifest.compatibilityCandidate()
        #expect(candidate.declaredCodebook.entries == 16384)
    }
}
