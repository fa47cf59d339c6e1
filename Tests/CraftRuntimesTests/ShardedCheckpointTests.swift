import CraftBundles
import CraftCore
import CraftImaging
import Foundation
import RuntimeTestSupport
import SafeTensors
import Testing

@testable import CraftRuntimes

@Suite("Bundles holding sharded checkpoints (model.safetensors.index.json + shards)")
struct ShardedCheckpointTests {
    static let shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

    /// Replaces `directory/model.safetensors` by two shards (tensors alternately) and their index, as
    /// transformers' `save_pretrained(max_shard_size=...)` lays them out, and lists them in craft.json
    /// (`listSecondShard: false` leaves the second shard out of the bundle altogether).
    static func shard(_ directory: URL, listSecondShard: Bool = true) throws {
        let single = directory.appendingPathComponent("model.safetensors")
        let file = try SafeTensorsFile(contentsOf: single)
        var writers = [SafeTensorsWriter(), SafeTensorsWriter()]
        var weightMap: [String: String] = [:]
        for (position, name) in file.names.enumerated() {
            let part = position % 2
            try writers[part].add(name, floats: try file.floats(name), shape: try file.info(name).shape)
            weightMap[name] = shards[part]
        }
        #expect(Set(weightMap.values).count == 2, "the fixture has at least two tensors")
        for (part, writer) in writers.enumerated() where listSecondShard || part == 0 {
            try writer.write(to: directory.appendingPathComponent(shards[part]))
        }
        try FileManager.default.removeItem(at: single)
        let index: [String: Any] = ["metadata": ["total_size": 0], "weight_map": weightMap]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])
            .write(to: directory.appendingPathComponent("model.safetensors.index.json"))

        let manifestURL = directory.appendingPathComponent("craft.json")
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as? [String: Any])
        var files = ((manifest["files"] as? [[String: Any]]) ?? []).filter { $0["path"] as? String != "model.safetensors" }
        files.append(["path": "model.safetensors.index.json"])
        files.append(["path": shards[0]])
        if listSecondShard { files.append(["path": shards[1]]) }
        manifest["files"] = files
        try TinyBundles.writeManifest(manifest, to: directory)
    }

    func answer(encoder: URL, backend: URL, scratch: Scratch, tag: String) throws -> (GeneratedText, [Int32]) {
        let encoderBundle = try TinyBundles.packAndUnpack(encoder, in: scratch, as: "encoder-\(tag)")
        let backendBundle = try TinyBundles.packAndUnpack(backend, in: scratch, as: "backend-\(tag)")
        let report = checkCompatibility(encoder: encoderBundle, backend: backendBundle, runtimes: .craftDefault)
        let pipeline = try Pipeline(pair: try report.requirePairing(), encoder: encoderBundle, backend: backendBundle)
        let image = try ImageInput.rgbImage(contentsOf: scratch.path("image.png"))
        let tokens = try pipeline.tokens(for: image)
        return (try pipeline.answer(image: image, prompt: "what is this ?", options: GenerationOptions(maximumNewTokens: 5)), tokens.codes.scalars)
    }

    @Test("a sharded siglip-vq encoder and sharded llama and gpt2 backends answer exactly as their single-file bundles")
    func shardedBundlesMatchSingleFile() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let values = TinyBundles.codebook()
        let hash = try TinyBundles.hash(values)
        try TinyBundles.writeImage(to: scratch.path("image.png"))
        try TinyBundles.encoderDirectory(at: scratch.path("enc"), codebook: values)
        try TinyBundles.encoderDirectory(at: scratch.path("enc-sharded"), codebook: values)
        try Self.shard(scratch.path("enc-sharded"))
        for (model, runtime) in [("llama_tied", "llama"), ("gpt2", "gpt2")] {
            try TinyBundles.backendDirectory(at: scratch.path("\(model)"), name: "tiny-\(runtime)", model: model, runtime: runtime, codebookHash: hash)
            try TinyBundles.backendDirectory(at: scratch.path("\(model)-sharded"), name: "tiny-\(runtime)", model: model, runtime: runtime, codebookHash: hash)
            try Self.shard(scratch.path("\(model)-sharded"))
            let (plain, plainCodes) = try answer(encoder: scratch.path("enc"), backend: scratch.path(model), scratch: scratch, tag: "\(model)-plain")
            let (sharded, shardedCodes) = try answer(
                encoder: scratch.path("enc-sharded"), backend: scratch.path("\(model)-sharded"), scratch: scratch, tag: "\(model)-sharded")
            #expect(shardedCodes == plainCodes)
            #expect(sharded == plain, "\(model)")
            #expect(!plain.tokens.isEmpty || plain.finishReason == .endOfSequence)
        }
    }

    @Test("an index naming a shard the bundle does not carry is a missing-entry error naming the shard")
    func unlistedShardIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.backendDirectory(at: scratch.path("llm"), codebookHash: try TinyBundles.hash(TinyBundles.codebook()))
        try Self.shard(scratch.path("llm"), listSecondShard: false)
        let bundle = try TinyBundles.packAndUnpack(scratch.path("llm"), in: scratch, as: "backend")
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadBackend(bundle) }
        #expect(error.code == .missingEntry)
        #expect(error.message.contains(Self.shards[1]) && error.message.contains("tiny-llm@1.0.0"), "\(error.message)")
    }

    @Test("a malformed index is an error naming the index file")
    func malformedIndexIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        try TinyBundles.encoderDirectory(at: scratch.path("enc"))
        try Self.shard(scratch.path("enc"))
        try Data("{\"weight_map\": [1, 2]}".utf8).write(to: scratch.path("enc/model.safetensors.index.json"))
        let bundle = try TinyBundles.packAndUnpack(scratch.path("enc"), in: scratch, as: "encoder")
        let error = try #require(throws: BundleError.self) { try RuntimeRegistry.craftDefault.loadEncoder(bundle) }
        #expect(error.message.contains("model.safetensors.index.json"), "\(error.message)")
    }
}
