// swift-tools-version: 6.0
// An application that depends on Craft: pull an encoder and a backend from a registry, prove they
// share a codebook, and ask a question about an image (docs/architecture.md, docs/compatibility.md, docs/registry.md).
import PackageDescription

let package = Package(
    name: "PairAndAskExample",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Craft", path: "../.."),
    ],
    targets: [
        .target(
            name: "PairAndAsk",
            dependencies: [
                .product(name: "CraftBundles", package: "Craft"),
                .product(name: "CraftCore", package: "Craft"),
                .product(name: "CraftRegistry", package: "Craft"),
                .product(name: "CraftRuntimes", package: "Craft"),
            ]),
        .executableTarget(name: "pair-and-ask", dependencies: ["PairAndAsk"]),
    ]
)
