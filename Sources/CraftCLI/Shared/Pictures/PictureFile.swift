import ArgumentParser
import CraftBundles
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Writes `data` to `url` atomically, as the registry writes its files: into `.NAME.tmp-PID-UUID`
    /// in the same directory (tracked, so SIGINT/SIGTERM remove it), flushed, then renamed over `url`
    /// (`rename(2)` is atomic within a file system), so a reader, or a run killed midway, never sees
    /// a half-written picture.
    ///
    /// - Throws: ``CommandError`` (`other`) naming the file when it cannot be written.
    static func write(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent("." + ScratchFiles.name(url.lastPathComponent + ".tmp"))
        let tracked = ScratchFiles.track(temporary)
        defer { ScratchFiles.untrack(tracked) }
        do {
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let handle = try FileHandle(forWritingTo: temporary)
            do {
                try handle.write(contentsOf: data)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            guard rename(temporary.path, url.path) == 0 else {
                throw CommandError(.other, "cannot move \(temporary.lastPathComponent) into place as \(url.path) (\(String(cString: strerror(errno))))")
            }
        } catch let error as CommandError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw CommandError(.other, "cannot write \(url.path) (\(error.localizedDescription)); check the directory exists and is writable")
        }
    }

    /// Writes `text` as UTF-8, like ``write(_:to:)``.
    static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }
}
