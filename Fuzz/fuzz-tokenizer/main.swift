// Fuzzes the tokenizer loader (`tokenizer.json`: models, normalizers, pre-tokenizers, regexes,
// decoders, padding and truncation) and runs the loaded tokenizer on a short prompt both ways.
import CraftModels
import Foundation
import FuzzDriver

runFuzzer { data in
    guard let tokenizer = try? Tokenizer(data: data) else { return }
    guard let ids = try? tokenizer.encode("what digit is this? 3 a ü") else { return }
    _ = try? tokenizer.decode(ids)
}
