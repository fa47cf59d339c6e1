// Fuzzes the GGUF reader: header, metadata of every value type, tensor infos against the file, and
// dequantization of every tensor small enough to decode.
import FuzzDriver
import GGUF

runFuzzer { data in
    let url = scratchFile("model.gguf", data)
    guard let file = try? GGUFFile(contentsOf: url) else { return }
    for key in file.metadataKeys { _ = file.metadata[key]?.integerValue }
    for tensor in file.tensors where tensor.count <= 1 << 20 {
        _ = try? file.dequantized(tensor.name)
    }
}
