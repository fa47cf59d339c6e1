// Fuzzes the safetensors reader: header parsing, offsets against the file, every dtype's decoding.
import FuzzDriver
import SafeTensors

runFuzzer { data in
    let url = scratchFile("model.safetensors", data)
    guard let file = try? SafeTensorsFile(contentsOf: url) else { return }
    for name in file.names {
        _ = try? file.info(name)
        _ = try? file.floats(name)
        _ = try? file.bytes(name)
    }
}
