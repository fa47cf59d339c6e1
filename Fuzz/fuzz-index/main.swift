// Fuzzes the registry index readers: `registry.json` and a name's shard, then every lookup that
// uses them. Property: whatever the index says, a resolved bundle's file is inside the registry.
import CraftRegistry
import Foundation
import FuzzDriver

let root = fuzzScratch.appendingPathComponent("registry")
let shardDirectory = root.appendingPathComponent("index/fu")
try? FileManager.default.createDirectory(at: shardDirectory, withIntermediateDirectories: true)
let validIndex = Data(#"{"format":"craft.registry/v1","names":["fuzz-x"]}"#.utf8)

runFuzzer { data in
    // The first byte chooses the damaged file: even bytes fuzz the shard, odd ones registry.json.
    let fuzzShard = (data.first ?? 0) % 2 == 0
    let body = data.dropFirst()
    try? (fuzzShard ? validIndex : Data(body)).write(to: root.appendingPathComponent("registry.json"))
    try? (fuzzShard ? Data(body) : Data()).write(to: shardDirectory.appendingPathComponent("fuzz-x.json"))
    let registry = Registry(root: root)
    _ = try? registry.readIndex()
    _ = try? registry.readShard(named: "fuzz-x")
    _ = try? registry.allShards()
    _ = try? registry.list()
    _ = try? registry.search("fuzz")
    for text in ["fuzz-x", "fuzz-x@^1", "fuzz-x@1.0.0"] {
        guard let reference = try? BundleReference(parsing: text),
              let resolved = try? registry.resolve(reference) else { continue }
        let file = resolved.file.standardizedFileURL.path
        require(file.hasPrefix(root.standardizedFileURL.path + "/"), "\(text) resolved outside the registry: \(file)")
    }
}
