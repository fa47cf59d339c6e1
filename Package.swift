// swift-tools-version: 6.1
// Craft: codebook-anchored vision adaptation (CRAFT, arXiv 2602.19449) as a plugin-based framework.
// Layout and module dependency direction: docs/architecture.md.
import Foundation
import PackageDescription

let package = Package(
    name: "Craft",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "SafeTensors", targets: ["SafeTensors"]),
        .library(name: "GGUF", targets: ["GGUF"]),
        .library(name: "CraftCore", targets: ["CraftCore"]),
        .library(name: "CraftBundles", targets: ["CraftBundles"]),
        .library(name: "CraftRegistry", targets: ["CraftRegistry"]),
        .library(name: "CraftImaging", targets: ["CraftImaging"]),
        .library(name: "CraftModels", targets: ["CraftModels"]),
        .library(name: "CraftTraining", targets: ["CraftTraining"]),
        .library(name: "CraftPipeline", targets: ["CraftPipeline"]),
        .library(name: "CraftRuntimes", targets: ["CraftRuntimes"]),
        .library(name: "CraftAdaptation", targets: ["CraftAdaptation"]),
        .library(name: "CraftExperiment", targets: ["CraftExperiment"]),
        .library(name: "CraftServe", targets: ["CraftServe"]),
        .library(name: "CraftPlugins", targets: ["CraftPlugins"]),
        .library(name: "CraftPluginKit", targets: ["CraftPluginKit"]),
        .library(name: "CraftRegistryServer", targets: ["CraftRegistryServer"]),
        .library(name: "CraftCLI", targets: ["CraftCLI"]),
        .executable(name: "craft", targets: ["craft"]),
        .executable(name: "craft-registry", targets: ["craft-registry"]),
        .executable(name: "craft-bench", targets: ["CraftBench"]),
        .executable(name: "craft-experiment", targets: ["craft-experiment"]),
        .plugin(name: "CraftPack", targets: ["CraftPack"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // craft serve: HTTP on Hummingbird (without its swift-configuration trait), metrics in Prometheus' format.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // C libraries: each is imported by exactly one Swift module.
        // OpenBLAS, loaded at run time with kernels chosen for the CPU (Sources/CBLAS/loader.c).
        .target(name: "CBLAS", dependencies: ["CKernels"], path: "Sources/CBLAS", linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread")]),
        // Craft's own kernels for half-precision weights (AVX2+FMA+F16C chosen at run time, portable otherwise).
        .target(name: "CKernels", path: "Sources/CKernels"),
        .systemLibrary(
            name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]),
        .systemLibrary(
            name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),

        // Reading files whole, with a size limit and no leak (every module's files go through it).
        .target(name: "CraftFiles"),

        // Numeric side.
        .target(name: "TensorCore", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "SafeTensors", dependencies: ["CraftFiles", "CKernels"]),
        // llama.cpp's GGUF files: metadata, tensor infos, tensors in place, dequantization (docs/gguf.md).
        .target(name: "GGUF", dependencies: ["SafeTensors", "CraftCore"]),
        .target(
            name: "CraftCore",
            dependencies: [
                "CKernels", "TensorCore", "SafeTensors",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(name: "CraftImaging", dependencies: ["CraftFiles", "CPNG", "CJPEG"]),
        .target(name: "CraftModels", dependencies: ["CraftFiles", "TensorCore", "SafeTensors", "GGUF", "CraftCore", "CraftImaging"]),
        .target(
            name: "CraftTraining",
            dependencies: ["CraftFiles", "TensorCore", "SafeTensors", "CraftCore", "CraftModels", "CraftImaging",
                           .product(name: "Crypto", package: "swift-crypto")]),

        // Packaging side.
        .target(
            name: "CraftBundles",
            dependencies: [
                "CArchive", "CraftFiles", "CraftCore", "SafeTensors", "TensorCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(
            name: "CraftRegistry",
            dependencies: [
                "CCurl", "CraftFiles", "CraftBundles", "CraftCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The checked pipeline over any registered runtimes: what a runtime author compiles (no model zoo).
        .target(name: "CraftPipeline", dependencies: ["CraftFiles", "CraftBundles", "CraftCore", "CraftImaging", "TensorCore"]),
        // Where the two sides meet: the model runtimes registered for bundles (re-exports CraftPipeline).
        .target(
            name: "CraftRuntimes",
            dependencies: [
                "CraftFiles", "CraftBundles", "CraftModels", "CraftCore", "CraftImaging", "TensorCore", "SafeTensors",
                "CraftPipeline", "GGUF",
            ]),

        // Runtime plugins: runtimes in other processes and languages over craft.runtime/v1.
        .target(name: "CSpawn", path: "Sources/CSpawn"),
        .target(name: "CraftPlugins", dependencies: ["CSpawn", "CraftBundles", "CraftCore", "CraftFiles", "CraftImaging", "CraftPipeline", "TensorCore"]),
        // The plugin side of craft.runtime/v1 for Swift plugin authors (Foundation only).
        .target(name: "CraftPluginKit"),

        // Adapting bundles (craft train, craft stats): the training library applied to bundles.
        .target(
            name: "CraftAdaptation",
            dependencies: [
                "CraftFiles", "TensorCore", "SafeTensors", "CraftCore", "CraftBundles", "CraftRegistry",
                "CraftImaging", "CraftModels", "CraftTraining", "CraftRuntimes",
            ]),
        // The embedded miniature of the paper's experiment (make reproduce).
        .target(
            name: "CraftExperiment",
            dependencies: [
                "CraftFiles", "TensorCore", "SafeTensors", "CraftCore", "CraftBundles", "CraftRegistry",
                "CraftImaging", "CraftModels", "CraftTraining", "CraftRuntimes", "CraftAdaptation",
            ]),

        // craft serve: checked pairs behind an OpenAI-compatible HTTP API, with continuous batching.
        .target(
            name: "CraftServe",
            dependencies: [
                "CraftFiles", "CraftCore", "CraftBundles", "CraftImaging", "CraftPipeline", "TensorCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),

        // craft-registry serve: a registry directory over HTTP (files, JSON API, publishing, HTML pages).
        .target(
            name: "CraftRegistryServer",
            dependencies: [
                "CraftBundles", "CraftCore", "CraftRegistry",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),

        // Command logic as a library; thin executables.
        .target(
            name: "CraftCLI",
            dependencies: [
                "CraftFiles", "TensorCore", "SafeTensors", "CraftCore", "CraftBundles", "CraftRegistry",
                "CraftImaging", "CraftModels", "CraftTraining", "CraftRuntimes", "CraftAdaptation", "CraftPipeline", "CraftServe",
                "CraftPlugins", "CraftRegistryServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "craft", dependencies: ["CraftCLI"]),
        .executableTarget(
            name: "craft-experiment",
            dependencies: ["CraftExperiment", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "craft-registry", dependencies: ["CraftCLI"]),
        .executableTarget(
            name: "CraftBench",
            dependencies: ["TensorCore", "CraftCore", "SafeTensors", "CraftModels", "CraftTraining", "CraftBundles", "CraftImaging",
                           "CraftRuntimes", "CraftServe", "CraftPlugins", "CraftRegistry"],
            path: "Benchmarks/CraftBench"),

        // examples/custom-runtime's application (its own `craft` with the code-vote runtime), built here
        // under another name so Craft's tests run it (CraftCLITests/CustomRuntimeExampleTests).
        .executableTarget(
            name: "example-my-craft",
            dependencies: [
                "CraftCLI", "CraftRegistry", "CraftRuntimes", "CraftTraining", "CraftBundles", "CraftCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "examples/custom-runtime/Sources/my-craft"),

        // examples/runtime-plugin-swift: a runtime plugin written with CraftPluginKit (run by
        // CraftPluginsTests through CRAFT_RUNTIME_PATH).
        .executableTarget(
            name: "craft-runtime-swift-siglip-vq",
            dependencies: ["CraftPluginKit", "CraftRuntimes", "CraftModels", "CraftBundles", "TensorCore"],
            path: "examples/runtime-plugin-swift/Sources/craft-runtime-swift-siglip-vq"),

        // `swift package craft-pack`: builds craft-registry through the package manager when run, rather than
        // naming it as a dependency (a plugin's tools are built a second time, for the host, by every `swift build`).
        .plugin(
            name: "CraftPack",
            capability: .command(
                intent: .custom(verb: "craft-pack", description: "Pack Craft bundle directories into .craft files"),
                permissions: [.writeToPackageDirectory(reason: "Writes the packed .craft bundles")])),

        // Tests: one target per module plus shared support.
        .target(
            name: "TestSupport", dependencies: [.product(name: "Numerics", package: "swift-numerics"), "TensorCore"],
            path: "Tests/TestSupport"),
        .testTarget(name: "CraftFilesTests", dependencies: ["CraftFiles"]),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "CraftModels", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CraftCoreTests", dependencies: ["CraftCore", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CraftImagingTests", dependencies: ["CraftImaging", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CraftModelsTests", dependencies: ["CraftModels", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CraftTrainingTests", dependencies: ["CraftTraining", "TestSupport"], resources: [.copy("Fixtures")]),
        .target(
            name: "RuntimeTestSupport",
            dependencies: ["CraftBundles", "CraftCore", "CraftImaging", "SafeTensors"],
            path: "Tests/RuntimeTestSupport"),
        .testTarget(name: "CraftPipelineTests", dependencies: ["CraftPipeline", "RuntimeTestSupport"]),
        .testTarget(
            name: "CraftPluginsTests",
            dependencies: ["CraftPlugins", "CraftRuntimes", "TensorCore", "TestSupport", "RuntimeTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "CraftRuntimesTests", dependencies: ["CraftRuntimes", "CraftRegistry", "GGUF", "TestSupport", "RuntimeTestSupport"]),
        .testTarget(name: "CraftBundlesTests", dependencies: ["CraftBundles", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CraftRegistryTests", dependencies: ["CraftRegistry", "TestSupport"]),
        .testTarget(
            name: "CraftAdaptationTests",
            dependencies: ["CraftAdaptation", "TestSupport", "RuntimeTestSupport"]),
        .testTarget(
            name: "CraftExperimentTests",
            dependencies: ["CraftExperiment", "TestSupport", "RuntimeTestSupport"]),
        .testTarget(
            name: "CraftServeTests",
            dependencies: ["CraftServe", "CraftRuntimes", "TestSupport", "RuntimeTestSupport", .product(name: "Hummingbird", package: "hummingbird")]),
        .testTarget(name: "CraftCLITests", dependencies: ["CraftCLI", "TensorCore", "TestSupport", "RuntimeTestSupport"]),
    ]
)

// Fuzz targets (`make fuzz`, docs/fuzzing.md): only with CRAFT_FUZZ=1, built by scripts/fuzz.sh with
// AddressSanitizer, SanitizerCoverage and libFuzzer's no-main runtime, in their own scratch path.
if ProcessInfo.processInfo.environment["CRAFT_FUZZ"] == "1" {
    package.targets.append(.target(name: "FuzzDriver", path: "Fuzz/FuzzDriver"))
    let fuzzTargets: [(name: String, module: String)] = [
        ("fuzz-safetensors", "SafeTensors"), ("fuzz-manifest", "CraftBundles"), ("fuzz-index", "CraftRegistry"),
        ("fuzz-tar", "CraftBundles"), ("fuzz-tokenizer", "CraftModels"), ("fuzz-image", "CraftImaging"), ("fuzz-gguf", "GGUF"),
    ]
    for target in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: target.name, dependencies: ["FuzzDriver", .byName(name: target.module)], path: "Fuzz/\(target.name)"))
        package.products.append(.executable(name: target.name, targets: [target.name]))
    }
}
