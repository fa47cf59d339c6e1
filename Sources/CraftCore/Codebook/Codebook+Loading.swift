import Foundation
import SafeTensors

extension Codebook {
    /// Loads a codebook tensor from a safetensors file.
    ///
    /// The tensor is `[K, D]` (depth 1) or `[depth, K, D]` (residual levels), in any floating-point
    /// dtype (F16 and BF16 widen exactly to Float32, F64 rounds). The hash is computed from the
    /// Float32 values (see `docs/codebook-hash.md`). With `sharedDepth` N > 1 a `[K, D]` tensor is one
    /// codebook shared by N residual levels, hashed as its logical `[N][K][D]` values
    /// (``sharedLevels(_:depth:)``).
    ///
    /// With `droppingPaddingRow`, the last entry of every level is dropped before anything else: RQ-VAE
    /// (and so VILA-U) stores each codebook as an `nn.Embedding(K + 1, D, padding_idx=K)` whose last
    /// row is a padding embedding that quantization never chooses.
    ///
    /// - Parameters:
    ///   - url: the safetensors file.
    ///   - tensorName: the tensor holding the codebook (`"codebook"` by convention).
    ///   - metric: the metric the codebook is searched with (the file does not record it).
    /// - Throws: ``CraftCoreError`` with code `notFound` when the file or tensor does not exist,
    ///   `malformed` when the file is not valid safetensors or the tensor is not a float tensor of
    ///   rank 2 or 3, `invalidCodebook` when a size is zero or a value is NaN or infinite.
    public init(
        contentsOf url: URL, tensorName: String = "codebook", metric: CodebookMetric, sharedDepth: Int = 1,
        droppingPaddingRow: Bool = false
    ) throws {
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(contentsOf: url)
        } catch let error as SafeTensorsError {
            throw CraftCoreError(error.code == .notFound ? .notFound : .malformed, error.message, cause: error)
        }
        guard file.contains(tensorName) else {
            let names = file.names.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
            throw CraftCoreError(
                .notFound,
                "\(url.path) holds no tensor '\(tensorName)' (it holds \(names.isEmpty ? "no tensors" : names)); pass the codebook's name with --tensor")
        }
        let info = try file.info(tensorName)
        guard info.dtype.isFloatingPoint else {
            throw CraftCoreError(
                .malformed,
                "tensor '\(tensorName)' in \(url.path) is \(info.dtype.rawValue), not a floating-point tensor; a codebook holds F32, F16, BF16 or F64 values")
        }
        let depth: Int, dimension: Int
        var entries: Int
        switch info.shape.count {
        case 2: (depth, entries, dimension) = (1, info.shape[0], info.shape[1])
        case 3: (depth, entries, dimension) = (info.shape[0], info.shape[1], info.shape[2])
        default:
            throw CraftCoreError(
                .malformed,
                "tensor '\(tensorName)' in \(url.path) has shape \(info.shape); a codebook is shaped [K, D] or [depth, K, D]")
        }
        var values: [Float]
        do {
            values = try file.floats(tensorName)
        } catch let error as SafeTensorsError {
            throw CraftCoreError(.malformed, error.message, cause: error)
        }
        if droppingPaddingRow {
            guard entries >= 2 else {
                throw CraftCoreError(
                    .malformed, "tensor '\(tensorName)' in \(url.path) has \(entries) row(s) per level; dropping the padding row needs at least 2")
            }
            let level = entries * dimension
            values = (0..<depth).flatMap { values[($0 * level)..<(($0 + 1) * level - dimension)] }
            entries -= 1
        }
        var levels = depth
        if sharedDepth > 1 {
            guard depth == 1 else {
                throw CraftCoreError(
                    .malformed, "tensor '\(tensorName)' in \(url.path) already has \(depth) levels; a shared codebook is one [K, D] tensor")
            }
            values = Self.sharedLevels(values, depth: sharedDepth)
            levels = sharedDepth
        }
        do {
            try self.init(values: values, entries: entries, dimension: dimension, depth: levels, metric: metric)
        } catch let error as CraftCoreError {
            throw CraftCoreError(error.code, "tensor '\(tensorName)' in \(url.path): \(error.message)", cause: error)
        }
    }

    /// The logical `[depth][K][D]` values of one `[K, D]` codebook shared by `depth` residual levels
    /// (stored once in a bundle, hashed and searched as every level's own copy, so the identity does
    /// not depend on how it is stored).
    public static func sharedLevels(_ values: [Float], depth: Int) -> [Float] {
        Array([[Float]](repeating: values, count: max(depth, 1)).joined())
    }
}
