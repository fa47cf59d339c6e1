// Packs an encoder and a caption backend, checks the pair, loads both (the backend through the
// custom `caption-backend` runtime) and prints a caption per image.
import CustomRuntime
import Foundation

let work = FileManager.default.temporaryDirectory.appendingPathComponent("craft-custom-runtime-\(UUID().uuidString)")
defer { try? FileManager.default.removeItem(at: work) }
do {
    print(try CaptionRuntimeDemo.run(in: work), terminator: "")
} catch {
    FileHandle.standardError.write(Data("error: \((error as? LocalizedError)?.errorDescription ?? "\(error)")\n".utf8))
    exit(1)
}
