// Reading a JSON file of a model directory or bundle with a size cap checked before the bytes are read,
// so a hostile or mistaken multi-gigabyte file cannot exhaust memory.
import Foundation

/// The size caps on the JSON files the model side reads, and the one reader that enforces them.
public enum ModelFileLimits {
    /// The largest `tokenizer.json` read: 64 MiB. Published tokenizers are far smaller (Llama-3's is
    /// 9 MB, Gemma-3's 33 MB); parsing keeps about 3-4× the file's size in memory at its peak.
    public static let maximumTokenizerBytes = 64 << 20
    /// The largest `config.json` (or other JSON configuration of a model directory) read: 4 MiB.
    /// Real configurations are a few kilobytes; label maps of a few thousand classes stay far below.
    public static let maximumConfigurationBytes = 4 << 20
}

/// Why a bounded read failed.
package enum BoundedReadFailure: Error {
    /// The file holds more bytes than the cap (`size` is what was seen: the reported size, or
    /// `limit + 1` when the file grew while being read).
    case tooLarge(size: Int, limit: Int)
    /// The file is missing, not a regular file, or cannot be read.
    case unreadable(String)
}

/// The one reader of JSON files the model side takes from bundles and model directories; `package` so
/// the runtimes can read their other bundle JSON (preprocessing, code frequencies) the same way.
package enum BoundedFile {
    /// The bytes of the regular file at `url`, refusing it before reading when it is larger than
    /// `limit` bytes (and reading at most `limit + 1` bytes, so a file that grows meanwhile is caught).
    package static func read(_ url: URL, limit: Int) throws(BoundedReadFailure) -> Data {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        } catch {
            throw .unreadable(error.localizedDescription)
        }
        if let type = attributes[.type] as? FileAttributeType, type != .typeRegular {
            throw .unreadable("it is not a regular file")
        }
        if let size = (attributes[.size] as? NSNumber)?.int64Value, size > Int64(limit) {
            throw .tooLarge(size: Int(clamping: size), limit: limit)
        }
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            let data = try handle.read(upToCount: limit + 1) ?? Data()
            guard data.count <= limit else { throw BoundedReadFailure.tooLarge(size: data.count, limit: limit) }
            return data
        } catch let failure as BoundedReadFailure {
            throw failure
        } catch {
            throw .unreadable(error.localizedDescription)
        }
    }
}

extension BoundedReadFailure {
    /// "is N bytes, over the M-byte limit" or the system's reason, for a sentence about the file.
    package var reason: String {
        switch self {
        case .tooLarge(let size, let limit): "is \(size) bytes, over the \(limit)-byte limit"
        case .unreadable(let reason): "cannot be read: \(reason)"
        }
    }
}
