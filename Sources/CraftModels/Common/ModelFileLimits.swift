// The size caps on the JSON files of a model directory or bundle, checked before the bytes are read
// (by CraftFiles' BoundedFile), so a hostile or mistaken multi-gigabyte file cannot exhaust memory.
import Foundation

/// The size caps on the JSON files the model side reads.
public enum ModelFileLimits {
    /// The largest `tokenizer.json` read: 64 MiB. Published tokenizers are far smaller (Llama-3's is
    /// 9 MB, Gemma-3's 33 MB); parsing keeps about 3-4× the file's size in memory at its peak.
    public static let maximumTokenizerBytes = 64 << 20
    /// The largest `config.json` (or other JSON configuration of a model directory) read: 4 MiB.
    /// Real configurations are a few kilobytes; label maps of a few thousand classes stay far below.
    public static let maximumConfigurationBytes = 4 << 20
}
