// swift-tools-version: 6.0
// An application that depends on Craft and registers its own runtime (docs/runtimes.md).
import PackageDescription

let package = Package(
    name: "CustomRuntimeExample",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Craft", path: "../.."),
    ],
    targets: [
        .target(
            name: "CustomRuntime",
            dependencies: [
                .product(name: "CraftBundles", package: "Craft"),
                .product(name: "CraftCore", package: "Craft"),
                .product(name: "SafeTensors", package: "Craft"),
            ]),
        .executableTarget(name: "custom-runtime-demo", dependencies: ["CustomRuntime"]),
    ]
)
