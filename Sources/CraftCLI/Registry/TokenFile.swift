import CraftFiles
import Foundation

/// A bearer token kept in a file (`craft-registry serve --token-file`, `publish --token-file`):
/// surrounding white space removed, never printed.
enum TokenFile {
    /// The token in `path`, at least `minimumLength` characters.
    static func read(_ path: String, minimumLength: Int = 1) throws -> String {
        let data: Data
        do {
            data = try BoundedFile.read(URL(fileURLWithPath: path), limit: 1 << 12)
        } catch {
            throw CommandError(.notFound, "cannot read the token file \(path) (\(error.localizedDescription)); write the token into it")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= minimumLength else {
            throw CommandError(.usage, "the token in \(path) has \(token.count) characters; use at least \(minimumLength) (for example: openssl rand -hex 32 > \(path))")
        }
        return token
    }
}
