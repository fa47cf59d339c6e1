// Replaced by the Layer benchmark (see docs/benchmarks.md).
enum LayerBenchmark {
    static func run(arguments: [String]) throws {
        print("the layer benchmark is being written")
    }
}
