import CraftCore
import Foundation
import Testing

@testable import CraftBundles

@Suite("Runtimes")
struct RuntimeTests {
    /// Packs and unpacks an encoder and a backend that share the sample codebook.
    func pair(_ temp: TemporaryDirectory, answers: [String: String] = [:]) throws -> (UnpackedBundle, UnpackedBundle) {
        try makeEncoderDirectory(at: temp.path("src-encoder"))
        try makeBackendDirectory(at: temp.path("src-backend"), hash: try Sample.hash(Sample.codebook()), answers: answers)
        let encoder = try BundleArchive.unpack(try BundleArchive.pack(directory: temp.path("src-encoder")).url, into: temp.path("encoder"))
        let backend = try BundleArchive.unpack(try BundleArchive.pack(directory: temp.path("src-backend")).url, into: temp.path("backend"))
        return (encoder, backend)
    }

    /// ``pair(_:answers:)`` whose backend answers "a mole" for image 1's codes.
    func molePair(_ temp: TemporaryDirectory) throws -> (UnpackedBundle, UnpackedBundle) {
        let key = (0..<4).map { String(expectedCode(image: 1, token: $0)) }.joined(separator: ",")
        return try pair(temp, answers: [key: "a mole"])
    }

    @Test("the built-in registry knows the table runtimes by id, version and kind")
    func builtIns() throws {
        let registry = RuntimeRegistry.tables
        #expect(registry.contains("table-encoder"))
        #expect(registry.contains("table-backend"))
        #expect(!registry.contains("llama"))
        #expect(registry.contains("table-encoder", version: try SemanticVersion(parsing: "1.4.0"), kind: .encoder))
        #expect(!registry.contains("table-encoder", version: try SemanticVersion(parsing: "2.0.0")))
        #expect(!registry.contains("table-encoder", version: try SemanticVersion(parsing: "1.0.0"), kind: .backend))
        #expect(registry.knownRuntimes.map(\.description) == ["table-encoder ^1.0 (encoder)", "table-backend ^1.0 (backend)"])
    }

    @Test("table-encoder quantizes stored features to the nearest codes; table-backend answers by codes")
    func tableRuntimesWork() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let (encoderBundle, backendBundle) = try molePair(temp)
        let registry = RuntimeRegistry.tables
        let encoder = try registry.load(encoderBundle, as: TableEncoder.self)
        let backend = try registry.load(backendBundle, as: TableBackend.self)
        #expect(encoder.imageCount == 3 && encoder.tokensPerImage == 4)
        for image in 0..<3 {
            let tokens = try encoder.tokens(forImage: image)
            #expect(tokens.codes.scalars == (0..<4).map { Int32(expectedCode(image: image, token: $0)) })
            #expect(tokens.positions.map(\.row) == [0, 0, 1, 1] && tokens.grid.rows == 2 && tokens.grid.columns == 2)
            // Each feature is its code plus (0, 0.01, 0.02, 0.03): residual norm sqrt(0.0014).
            for norm in tokens.residualNorms { #expect(abs(Double(norm) - 0.0014.squareRoot()) < 1e-4) }
        }
        #expect(backend.answer(try encoder.tokens(forImage: 1)) == "a mole")
        #expect(backend.answer(try encoder.tokens(forImage: 0)) == "I don't know.")
        expectBundleError(.notFound) { _ = try encoder.tokens(forImage: 3) }
        expectBundleError(.runtimeFailed) { _ = try registry.load(encoderBundle, as: TableBackend.self) }
    }

    @Test("the table runtimes are a VisionEncoder (of image indices) and a LanguageBackend")
    func tableRuntimesImplementTheProtocols() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let (encoderBundle, backendBundle) = try molePair(temp)
        let encoder = try RuntimeRegistry.tables.loadEncoder(encoderBundle)
        let backend = try RuntimeRegistry.tables.loadBackend(backendBundle)
        let indexed = try #require(encoder as? any IndexedImageEncoder)
        #expect(indexed.imageCount == 3 && encoder.codebook.hash == backend.codebookHash)
        let tokens = try indexed.tokens(forImage: 1)
        let answer = try backend.generate([.visual(tokens), .text("which animal?")], options: GenerationOptions())
        #expect(answer == GeneratedText(text: "a mole", tokens: [], finishReason: .endOfSequence))
        // The text is not read, so it occupies no positions; the visual tokens do.
        #expect(try backend.promptPositions([.visual(tokens), .text("which animal?")]) == 4)
        #expect(try backend.detokenize(backend.tokenize("a mole")) == "a mole")
        // Fewer tokens (pruned) are another key.
        #expect(try backend.generate([.visual(tokens.keeping([0, 1]))], options: GenerationOptions()).text == "I don't know.")
        // Pictures are refused with a sentence saying the images are indices.
        let refused = expectBundleError(.runtimeFailed) { _ = try encoder.preprocess(RGBImage(width: 1, height: 1, pixels: [0, 0, 0])) }
        #expect(refused?.message.contains("pass an image index") == true)
        // Tokens of another codebook are refused by the backend.
        var foreign = tokens
        foreign.codebookHash = try Sample.hash(Sample.codebook().map { $0 + 1 })
        expectBundleError(.codebookHashMismatch) { _ = try backend.generate([.visual(foreign)], options: GenerationOptions()) }
    }

    @Test("an unknown runtime is an error naming it and listing the known ones")
    func unknownRuntime() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try makeBackendDirectory(at: temp.path("src"), hash: try Sample.hash(Sample.codebook()), runtime: "llama")
        let bundle = try BundleArchive.unpack(try BundleArchive.pack(directory: temp.path("src")).url, into: temp.path("b"))
        let error = expectBundleError(.unknownRuntime, entry: "runtime.id") { _ = try RuntimeRegistry.tables.load(bundle, as: TableBackend.self) }
        #expect(error?.message.contains("llama") == true)
        #expect(error?.message.contains("table-encoder ^1.0 (encoder)") == true)
        #expect(error?.message.contains("table-backend ^1.0 (backend)") == true)
        #expect(error?.category == .notFound)
    }

    @Test("applications register their own runtimes; a later registration wins")
    func customRuntime() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let (_, backendBundle) = try pair(temp)
        struct Echo: Sendable { var name: String }
        var registry = RuntimeRegistry.tables
        registry.register("table-backend", versions: try VersionRange("^1.2"), kind: .backend, summary: "echo") { bundle in
            Echo(name: bundle.manifest.name)
        }
        #expect(try registry.load(backendBundle, as: Echo.self).name == "demo-backend")
        // The built-in still serves versions outside the override's range.
        var older = backendBundle
        older.manifest.runtime.version = try SemanticVersion(parsing: "1.0.0")
        #expect(try registry.load(older, as: TableBackend.self).manifest.name == "demo-backend")
    }
}
