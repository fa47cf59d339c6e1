import Foundation

/// The user's home directory as the shell sees it: `$HOME` when set, else the password entry's.
enum HomeDirectory {
    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let home = environment["HOME"], !home.isEmpty { return URL(fileURLWithPath: home) }
        return FileManager.default.homeDirectoryForCurrentUser
    }
}
