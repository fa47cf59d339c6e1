// swift-tools-version: 6.0
// An application that depends on Craft and builds its own `craft` with an extra runtime
// (docs/runtimes.md). Craft's own package builds the same sources as `example-my-craft` for its tests.
import PackageDescription

let package = Package(
    name: "CustomRuntimeExample",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Craft", path: "../.."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "my-craft",
            dependencies: [
                .product(name: "CraftCLI", package: "Craft"),
                .product(name: "CraftRegistry", package: "Craft"),
                .product(name: "CraftRuntimes", package: "Craft"),
                .product(name: "CraftTraining", package: "Craft"),
                .product(name: "CraftBundles", package: "Craft"),
                .product(name: "CraftCore", package: "Craft"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
    ]
)
