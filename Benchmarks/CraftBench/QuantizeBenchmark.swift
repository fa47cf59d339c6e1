// `craft-bench quantize`: Craft's exact nearest-code search (Codebook.quantize) against faiss-cpu
// IndexFlatL2 on the same data, and cblas_sgemm's own throughput on a same-shaped GEMM, measured in
// the same run with alternating repetitions. Results and the exact command: docs/benchmarks.md.
//
//   craft-bench quantize [--n 65536] [--d 256] [--k 8192] [--threads 1,2] [--repeats 3]
//                        [--query-block 1024] [--code-block 512] [--pass automatic|float32|int8] [--no-peer]
// The peer runs with $CRAFT_PYTHON (default ./.venv-ref/bin/python, else python3; see BenchmarkSupport.swift).
import CraftCore
import Foundation
import TensorCore

enum QuantizeBenchmark {
    struct Options {
        var n = 65536, d = 256, k = 8192
        var threads = [1, 2]
        var repeats = 3
        var blocking = SearchBlocking()
        var peer = true
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var reader = BenchmarkArguments(arguments)
        while let argument = reader.next() {
            switch argument {
            case "--n": options.n = try reader.positiveInteger(after: argument)
            case "--d": options.d = try reader.positiveInteger(after: argument)
            case "--k": options.k = try reader.positiveInteger(after: argument)
            case "--repeats": options.repeats = try reader.positiveInteger(after: argument)
            case "--query-block": options.blocking.queries = try reader.positiveInteger(after: argument)
            case "--code-block": options.blocking.codes = try reader.positiveInteger(after: argument)
            case "--pass":
                guard let value = reader.next(), let pass = SearchPass(rawValue: value) else {
                    throw BenchmarkError("--pass takes automatic, float32 or int8", usage: true)
                }
                options.blocking.pass = pass
            case "--no-peer": options.peer = false
            case "--threads": options.threads = try reader.threadCounts(after: argument)
            default: throw BenchmarkError("unknown option \(argument); see the header of QuantizeBenchmark.swift", usage: true)
            }
        }
        return options
    }

    static func run(arguments: [String]) throws {
        let options = try parse(arguments)
        let (n, d, k) = (options.n, options.d, options.k)
        var random = GaussianSource(seed: 20260226)
        let codebookValues = (0..<(k * d)).map { _ in random.next() }
        let queries = (0..<(n * d)).map { _ in random.next() }
        let codebook = try Codebook(values: codebookValues, entries: k, dimension: d, metric: .l2)
        let flops = 2.0 * Double(n) * Double(k) * Double(d)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("craft-bench-quantize-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(codebookValues, to: directory.appendingPathComponent("codebook.f32"))
        try write(queries, to: directory.appendingPathComponent("queries.f32"))
        let python = peerPython
        let script = peerScript()

        let pass = options.blocking.pass.resolved(entries: k, dimension: d)
        let passName = pass == .int8 ? "int8 first pass (\(SearchPass.int8KernelName))" : "float32 first pass (sgemm)"
        print("craft-bench quantize: N=\(n) D=\(d) K=\(k), \(passName), blocks \(options.blocking.queries)x\(options.blocking.codes), "
            + "\(options.repeats) alternating repetitions, medians; BLAS: \(BLAS.kernels.summary)")
        if let load = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8).split(separator: " ").first,
           let value = Double(load) {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            print("load average \(load) on \(cores) cores" + (value > Double(cores) / 2
                ? ": the machine is busy, so compare the CPU-time columns, not wall time" : ""))
        }
        var rows: [[String]] = [["threads", "craft vec/s", "faiss vec/s", "craft/faiss", "craft GFLOP/s", "sgemm GFLOP/s", "craft/sgemm", "craft vec/CPU-s", "faiss vec/CPU-s", "craft/faiss CPU", "craft GFLOP/CPU-s", "sgemm GFLOP/CPU-s", "agree"]]
        for threads in options.threads {
            var craftTimes: [Double] = [], faissTimes: [Double] = [], sgemmWallRates: [Double] = []
            var craftCPU: [Double] = [], faissCPU: [Double] = [], sgemmCPURates: [Double] = []
            var codes: [Int32] = []
            var faissVersion = ""
            for _ in 0..<options.repeats {
                let start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
                let result = try codebook.quantize(queries, count: n, threads: threads, blocking: options.blocking)
                craftTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                craftCPU.append(processCPUSeconds() - cpuStart)
                codes = result.codes
                if options.peer {
                    let (seconds, cpu, version) = try runPeer(python: python, script: script, directory: directory, n: n, d: d, k: k, threads: threads)
                    faissTimes.append(seconds)
                    faissCPU.append(cpu)
                    faissVersion = version
                }
                let rates = sgemmRates(m: min(n, 4096), n: k, k: d, threads: threads)
                sgemmWallRates.append(rates.wall)
                sgemmCPURates.append(rates.cpu)
            }
            var agreement = "-"
            if options.peer, let data = try? Data(contentsOf: directory.appendingPathComponent("faiss-indices-\(threads).i64")),
               data.count == n * 8 {
                let faissCodes = data.withUnsafeBytes { raw in (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) } }
                let same = zip(codes, faissCodes).filter { Int64($0) == $1 }.count
                agreement = String(format: "%.5f", Double(same) / Double(n))
            }
            let craft = median(craftTimes), sgemm = median(sgemmWallRates)
            let craftRate = flops / craft / 1e9
            let faiss = faissTimes.isEmpty ? Double.nan : median(faissTimes)
            rows.append([
                "\(threads)", format(Double(n) / craft), faissTimes.isEmpty ? "-" : format(Double(n) / faiss),
                faissTimes.isEmpty ? "-" : String(format: "%.3f", faiss / craft), String(format: "%.1f", craftRate),
                String(format: "%.1f", sgemm), String(format: "%.1f%%", 100 * craftRate / sgemm),
                format(Double(n) / median(craftCPU)), faissCPU.isEmpty ? "-" : format(Double(n) / median(faissCPU)),
                faissCPU.isEmpty ? "-" : String(format: "%.3f", median(faissCPU) / median(craftCPU)),
                String(format: "%.1f", flops / median(craftCPU) / 1e9), String(format: "%.1f", median(sgemmCPURates)), agreement,
            ])
            if !faissTimes.isEmpty {
                Summary.line("quantize", String(format: "%d thread%@, %@: %.2fx faiss's vectors/s, share of codes identical %@%@", threads, threads == 1 ? "" : "s",
                                                pass == .int8 ? "int8 pass" : "float32 pass", faiss / craft, agreement, threads == 1 ? " (target >= 1.2x)" : ""))
            }
            print("threads \(threads): craft \(craftTimes.map { String(format: "%.3f", $0) }) s, faiss \(faissVersion) "
                + "\(faissTimes.map { String(format: "%.3f", $0) }) s, sgemm \(sgemmWallRates.map { String(format: "%.1f", $0) }) GFLOP/s; "
                + "CPU seconds: craft \(craftCPU.map { String(format: "%.3f", $0) }), faiss \(faissCPU.map { String(format: "%.3f", $0) })")
        }
        printTable(rows)
    }

    /// GFLOP/s of one `cblas_sgemm` computing an `m × n` product over `k` (the search's GEMM shape,
    /// `m` query rows against all codes), with OpenBLAS on `threads` threads, by wall time and by
    /// process CPU time (GFLOP per CPU-second: per-core throughput, robust when the machine is shared).
    static func sgemmRates(m: Int, n: Int, k: Int, threads: Int) -> (wall: Double, cpu: Double) {
        var random = GaussianSource(seed: 7)
        let a = (0..<(m * k)).map { _ in random.next() }, b = (0..<(n * k)).map { _ in random.next() }
        var c = [Float](repeating: 0, count: m * n)
        let saved = BLAS.threadCount
        BLAS.threadCount = threads
        defer { BLAS.threadCount = saved }
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    BLAS.sgemm(
                        transposeA: .none, transposeB: .transposed, m: m, n: n, k: k, alpha: -2,
                        a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: k, c: c.baseAddress!, ldc: n)
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu = processCPUSeconds() - cpuStart
        let flops = 2 * Double(m) * Double(n) * Double(k)
        return (flops / seconds / 1e9, flops / cpu / 1e9)
    }

    /// CPU seconds used by this process so far (all threads), from `getrusage`.
    static func processCPUSeconds() -> Double { cpuSeconds(RUSAGE_SELF) }

    /// CPU seconds of `who` (`RUSAGE_SELF`, or `RUSAGE_CHILDREN`: the children waited for so far).
    static func cpuSeconds(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(who.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    static func runPeer(
        python: String, script: String, directory: URL, n: Int, d: Int, k: Int, threads: Int
    ) throws -> (Double, Double, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, directory.path, "\(n)", "\(d)", "\(k)", "\(threads)"]
        var environment = ProcessInfo.processInfo.environment
        environment["OMP_NUM_THREADS"] = "\(threads)"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let object = try? JSONSerialization.jsonObject(with: output) as? [String: Any],
              let seconds = object["seconds"] as? Double
        else {
            throw BenchmarkError("the faiss peer (\(python) \(script)) failed; set CRAFT_PYTHON to a Python with faiss-cpu or pass --no-peer")
        }
        return (seconds, object["cpu_seconds"] as? Double ?? .nan, object["faiss"] as? String ?? "?")
    }

    static func peerScript() -> String {
        let nextToSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("peers/faiss_quantize.py").path
        if FileManager.default.fileExists(atPath: nextToSource) { return nextToSource }
        return "Benchmarks/peers/faiss_quantize.py"
    }

    static func write(_ values: [Float], to url: URL) throws {
        try values.withUnsafeBufferPointer { try Data(buffer: $0).write(to: url) }
    }

    /// The median; NaN when there is no value (a peer that did not run), printed as "nan" rather than a crash.
    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func format(_ value: Double) -> String { String(format: "%.0f", value) }

    static func printTable(_ rows: [[String]]) {
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        }
    }
}

/// Standard normal values from SplitMix64 and Box-Muller (deterministic, fast enough for setup).
struct GaussianSource {
    var state: UInt64
    var spare: Float?
    init(seed: UInt64) { state = seed }
    mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) + 0.5) / Double(1 << 53)
    }
    mutating func next() -> Float {
        if let value = spare { spare = nil; return value }
        let radius = (-2 * Foundation.log(uniform())).squareRoot(), angle = 2 * Double.pi * uniform()
        spare = Float(radius * Foundation.sin(angle))
        return Float(radius * Foundation.cos(angle))
    }
}
