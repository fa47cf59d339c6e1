import CKernels
import Foundation
import Testing
import TestSupport
@testable import TensorCore

/// The kernel selection of Sources/CBLAS/loader.c, checked against the CPU as Linux reports it.
@Suite struct BLASKernelTests {
    /// The vendor and feature flags of the first CPU in /proc/cpuinfo (the kernel lists only what
    /// the OS enables, so AVX-512 flags there imply the OS saves its state).
    func cpuInfo() throws -> (vendor: String, flags: Set<String>) {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        var vendor = "", flags: Set<String> = []
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "vendor_id", vendor.isEmpty { vendor = parts[1] }
            if parts[0] == "flags", flags.isEmpty { flags = Set(parts[1].split(separator: " ").map(String.init)) }
        }
        return (vendor, flags)
    }

    /// `CRAFT_MAX_ISA`'s values (the cap itself, in a process of its own: ForwardCommandTests).
    @Test func instructionSetCapValues() {
        #expect(craft_max_isa_parse(nil) == Int32(CRAFT_PATH_AVX512))
        #expect(craft_max_isa_parse("") == Int32(CRAFT_PATH_AVX512))
        #expect(craft_max_isa_parse("avx512") == Int32(CRAFT_PATH_AVX512))
        #expect(craft_max_isa_parse("AVX2") == Int32(CRAFT_PATH_AVX2))
        #expect(craft_max_isa_parse("Portable") == Int32(CRAFT_PATH_PORTABLE))
        for wrong in ["avx3", "avx", "sse2", " avx2", "avx2 "] { #expect(craft_max_isa_parse(wrong) == -1, "\(wrong)") }
        // This process: no cap unless the environment sets one.
        if ProcessInfo.processInfo.environment["CRAFT_MAX_ISA"] == nil {
            #expect(InstructionSetCap.setting == nil && InstructionSetCap.effective == nil && InstructionSetCap.note == nil)
        }
    }

    @Test func choiceFollowsTheCPUFeatures() {
        #expect(BLAS.chosenCore(vendor: "GenuineIntel", avx2: true, fma: true, avx512: true, osSavesAVX: true, osSavesAVX512: true) == "SkylakeX")
        #expect(BLAS.chosenCore(vendor: "AuthenticAMD", avx2: true, fma: true, avx512: true, osSavesAVX: true, osSavesAVX512: true) == "SkylakeX")
        // AVX-512 the OS does not save is no AVX-512.
        #expect(BLAS.chosenCore(vendor: "GenuineIntel", avx2: true, fma: true, avx512: true, osSavesAVX: true, osSavesAVX512: false) == "Haswell")
        #expect(BLAS.chosenCore(vendor: "AuthenticAMD", avx2: true, fma: true, avx512: false, osSavesAVX: true, osSavesAVX512: false) == "Zen")
        #expect(BLAS.chosenCore(vendor: "GenuineIntel", avx2: true, fma: false, avx512: false, osSavesAVX: true, osSavesAVX512: false) == nil)
        #expect(BLAS.chosenCore(vendor: "GenuineIntel", avx2: true, fma: true, avx512: false, osSavesAVX: false, osSavesAVX512: false) == nil)
    }

    /// The kernels this process runs are the ones the CPU calls for: the user's OPENBLAS_CORETYPE
    /// when set, else Craft's choice for the features Linux reports, else OpenBLAS's own.
    @Test func runningKernelsMatchTheCPU() throws {
        let kernels = BLAS.kernels
        let (vendor, flags) = try cpuInfo()
        let avx512 = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
        let expected = BLAS.chosenCore(
            vendor: vendor, avx2: flags.contains("avx2"), fma: flags.contains("fma"), avx512: avx512,
            osSavesAVX: flags.contains("avx"), osSavesAVX512: avx512)
        #expect(kernels.configuration.hasPrefix("OpenBLAS"), "\(kernels.configuration)")
        #expect(kernels.cpuFeatures.hasPrefix(vendor), "\(kernels.cpuFeatures) vs \(vendor)")
        switch kernels.selection {
        case .environment:
            // Loading Craft never changes the user's variable.
            let variable = try #require(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"])
            #expect(kernels.requestedCore == nil)
            #expect(!variable.isEmpty)
        case .craft:
            let requested = try #require(kernels.requestedCore)
            #expect(requested == expected, "Craft asked for \(requested); /proc/cpuinfo calls for \(expected ?? "none")")
            #expect(kernels.core.lowercased() == requested.lowercased(), "OpenBLAS runs \(kernels.core), Craft asked for \(requested)")
            // Craft's choice is not passed on to child processes.
            #expect(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil)
        case .openBLAS:
            #expect(expected == nil, "the CPU has \(expected ?? "") features but Craft left the choice to OpenBLAS")
        }
        #expect(kernels.summary.contains(kernels.core))
        // The idle-spin setting: the user's when set (never changed), else Craft's, not passed on.
        switch kernels.threadTimeoutSelection {
        case .environment:
            #expect(ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] == kernels.threadTimeout)
        case .craft:
            #expect(kernels.threadTimeout == "4")
            #expect(ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] == nil)
        case .openBLAS:
            Issue.record("the thread timeout is set by the user or by Craft")
        }
        #expect(kernels.summary.contains("thread timeout 2^\(kernels.threadTimeout)"))
    }

    /// sgemm and sgemv on the chosen kernels agree with plain loops (the portable path) for every
    /// transpose, on sizes that exercise the kernels' edge tiles.
    @Test func chosenKernelsAgreeWithThePortablePath() {
        var random = SystemRandomNumberGenerator()
        for (m, n, k) in [(1, 1, 1), (7, 13, 29), (33, 65, 17), (64, 48, 130)] {
            for transposeA in [BLAS.Transpose.none, .transposed] {
                for transposeB in [BLAS.Transpose.none, .transposed] {
                    let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &random) }
                    let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &random) }
                    var c = [Float](repeating: 0, count: m * n)
                    let lda = transposeA == .none ? k : m, ldb = transposeB == .none ? n : k
                    BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                               a: a, lda: lda, b: b, ldb: ldb, c: &c, ldc: n)
                    var expected = [Float](repeating: 0, count: m * n)
                    for row in 0..<m {
                        for column in 0..<n {
                            var sum: Double = 0
                            for inner in 0..<k {
                                let left = transposeA == .none ? a[row * k + inner] : a[inner * m + row]
                                let right = transposeB == .none ? b[inner * n + column] : b[column * k + inner]
                                sum += Double(left) * Double(right)
                            }
                            expected[row * n + column] = Float(sum)
                        }
                    }
                    let (ok, report) = approximatelyEqual(c, expected, relative: 1e-5, absolute: 1e-5)
                    #expect(ok, "sgemm \(m)x\(n)x\(k) \(transposeA)/\(transposeB): \(report)")
                }
            }
            let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &random) }
            let x = (0..<k).map { _ in Float.random(in: -1...1, using: &random) }
            var y = [Float](repeating: 0, count: m)
            BLAS.sgemv(transpose: .none, rows: m, columns: k, a: a, lda: k, x: x, incrementX: 1, y: &y, incrementY: 1)
            let expected = (0..<m).map { row in Float((0..<k).reduce(0.0) { $0 + Double(a[row * k + $1]) * Double(x[$1]) }) }
            let (ok, report) = approximatelyEqual(y, expected, relative: 1e-5, absolute: 1e-5)
            #expect(ok, "sgemv \(m)x\(k): \(report)")
        }
    }
}
