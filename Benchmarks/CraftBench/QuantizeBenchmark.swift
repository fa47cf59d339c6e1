// Replaced by the Quantize benchmark (see docs/benchmarks.md).
enum QuantizeBenchmark {
    static func run(arguments: [String]) throws {
        print("the quantize benchmark is being written")
    }
}
