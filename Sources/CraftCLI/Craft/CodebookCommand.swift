import ArgumentParser
import CraftCore
import Foundation
import SafeTensors

extension CodebookMetric: ExpressibleByArgument {}

/// `craft codebook FILE`: the identity of a codebook tensor (entries, dim, depth, metric, hash), and
/// optionally the codes a file of vectors quantizes to.
public struct CodebookCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "codebook",
        abstract: "Print the size, metric and hash of a codebook tensor in a safetensors file.",
        discussion: """
            The codebook tensor is shaped [K, D] (one level) or [depth, K, D] (residual levels), in any float dtype. The hash (docs/codebook-hash.md) is what encoders and backends must agree on.

            With --quantize VECTORS.safetensors, also quantizes the [N, D] tensor named by --vectors-tensor (default "vectors") and prints each row's codes and residual norm.

            Examples (from the repository root):
              craft codebook examples/codebooks/tiny-codebook.safetensors
              craft codebook examples/codebooks/tiny-codebook.safetensors \\
                  --metric cosine --json
              craft codebook examples/codebooks/tiny-codebook.safetensors \\
                  --quantize examples/codebooks/sample-vectors.safetensors

            Exit codes: 0 success, 2 file or tensor not found, 4 malformed file or invalid \
            codebook (NaN or infinity, wrong shape), 64 usage error.
            """)

    @Argument(help: "The safetensors file holding the codebook.")
    public var file: String

    @Option(help: "The codebook tensor's name.")
    public var tensor: String = "codebook"

    @Option(help: "The metric the codebook is searched with: l2 or cosine.")
    public var metric: CodebookMetric = .l2

    @Option(help: "Read a [K, D] tensor as one codebook shared by this many residual levels (hashed as [N][K][D]).")
    var sharedDepth = 1

    @Option(help: ArgumentHelp("A safetensors file of vectors to quantize.", valueName: "VECTORS.safetensors"))
    public var quantize: String?

    @Option(help: "The [N, D] tensor to quantize in the --quantize file.")
    public var vectorsTensor: String = "vectors"

    @Flag(help: "Print JSON with stable keys instead of text.")
    public var json = false

    public init() {}

    /// What `--json` prints (keys are stable).
    struct Report: Encodable {
        var file: String
        var tensor: String
        var entries: Int
        var dim: Int
        var depth: Int
        var metric: String
        var hash: String
        var quantized: Quantized?
    }

    /// The `quantized` object of ``Report``, present with `--quantize`.
    struct Quantized: Encodable {
        var file: String
        var tensor: String
        var rows: Int
        var codes: [[Int32]]
        var residualNorms: [Float]

        enum CodingKeys: String, CodingKey {
            case file, tensor, rows, codes
            case residualNorms = "residual_norms"
        }
    }

    public func run() throws {
        guard sharedDepth >= 1 else { throw CommandError(.usage, "--shared-depth must be at least 1, not \(sharedDepth)") }
        let codebook = try Codebook(contentsOf: URL(fileURLWithPath: file), tensorName: tensor, metric: metric, sharedDepth: sharedDepth)
        var report = Report(
            file: file, tensor: tensor, entries: codebook.entries, dim: codebook.dimension, depth: codebook.depth,
            metric: codebook.metric.rawValue, hash: codebook.hash)
        if let quantize {
            report.quantized = try quantizeVectors(path: quantize, with: codebook)
        }
        if json { return try Output.json(report) }
        printTable([
            ["file", file], ["tensor", tensor], ["entries", "\(codebook.entries)"], ["dim", "\(codebook.dimension)"],
            ["depth", "\(codebook.depth)"], ["metric", codebook.metric.rawValue], ["hash", codebook.hash],
        ])
        if let quantized = report.quantized {
            print("")
            print("quantized \(quantized.rows) vectors from \(quantized.file) (tensor \(quantized.tensor)):")
            var rows = [["row", codebook.depth == 1 ? "code" : "codes", "residual"]]
            for row in 0..<quantized.rows {
                rows.append([
                    "\(row)", quantized.codes[row].map(String.init).joined(separator: ","),
                    String(format: "%.4f", quantized.residualNorms[row]),
                ])
            }
            printTable(rows)
        }
    }

    private func quantizeVectors(path: String, with codebook: Codebook) throws -> Quantized {
        let vectors: SafeTensorsFile
        do {
            vectors = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path))
        } catch let error as SafeTensorsError {
            throw CommandError(error.code == .notFound ? .notFound : .integrity, error.message)
        }
        guard vectors.contains(vectorsTensor) else {
            throw CommandError(
                .notFound, "\(path) holds no tensor '\(vectorsTensor)' (it holds \(vectors.names.prefix(8).joined(separator: ", "))); pass its name with --vectors-tensor")
        }
        let info = try vectors.info(vectorsTensor)
        guard info.dtype.isFloatingPoint, info.shape.count == 2, info.shape[1] == codebook.dimension else {
            throw CommandError(
                .integrity,
                "tensor '\(vectorsTensor)' in \(path) is \(info.dtype.rawValue) \(info.shape), but the codebook needs float vectors shaped [N, \(codebook.dimension)]")
        }
        let values: [Float]
        do {
            values = try vectors.floats(vectorsTensor)
        } catch let error as SafeTensorsError {
            throw CommandError(.integrity, error.message)
        }
        let result: Quantization
        do {
            result = try codebook.quantize(values, count: info.shape[0])
        } catch let error as CraftCoreError {
            throw CommandError(.integrity, "\(path), tensor '\(vectorsTensor)': \(error.message)")
        }
        let codes = (0..<result.count).map { Array(result.codes[($0 * result.depth)..<(($0 + 1) * result.depth)]) }
        return Quantized(file: path, tensor: vectorsTensor, rows: result.count, codes: codes, residualNorms: result.residualNorms)
    }

    private func printTable(_ rows: [[String]]) {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  "))
        }
    }
}
