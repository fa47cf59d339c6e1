import ArgumentParser
import Foundation

/// Where the picture outputs (`--overlay`, `--report`, `training.svg`) are checked and written.
enum PictureFile {
    /// Refuses (exit 64, one sentence) a destination that does not end in `.EXTENSION` or whose
    /// directory does not exist, before any work is done.
    ///
    /// - Parameters:
    ///   - path: The path the user gave.
    ///   - flag: The option's spelling, such as `--overlay`.
    ///   - fileExtension: The required extension without the dot, such as `png`.
    static func validateDestination(_ path: String, flag: String, fileExtension: String) throws {
        let url = URL(fileURLWithPath: path)
        guard url.pathExtension.lowercased() == fileExtension.lowercased(), url.lastPathComponent.count > fileExtension.count + 1 else {
            throw ValidationError("\(flag) must name a .\(fileExtension) file, such as out/picture.\(fileExtension), not \(path).")
        }
        var isDirectory: ObjCBool = false
        let directory = url.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(flag) \(path): the directory \(directory.path) does not exist; create it first or pick another path.")
        }
    }

    /// Writes `data` to `url` atomically: into a temporary file in the same directory, then renamed
    /// over `url`, so a reader (or a run killed midway) never sees a half-written picture.
    ///
    /// - Throws: ``CommandError`` (`other`) naming the file when it cannot be written.
    static func write(_ data: Data, to url: URL) throws {
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw CommandError(.other, "cannot write \(url.path) (\(error.localizedDescription)); check the directory exists and is writable")
        }
    }

    /// Writes `text` as UTF-8, like ``write(_:to:)``.
    static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }
}
