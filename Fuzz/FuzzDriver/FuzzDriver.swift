// The libFuzzer driver shared by the fuzz targets (`make fuzz`, docs/fuzzing.md).
//
// Each target is an executable whose `main.swift` calls `runFuzzer { data in ... }`. The targets
// are compiled with AddressSanitizer and SanitizerCoverage and linked with libFuzzer's no-main
// runtime, whose `LLVMFuzzerRunDriver` takes the command line (`-runs=N`, `-max_total_time=S`,
// corpus directories) exactly like a classic libFuzzer binary.
import Foundation

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var fuzzBody: ((Data) -> Void)?

/// Runs libFuzzer with `body` as the test function; returns libFuzzer's exit status.
///
/// `body` must not crash on any input: errors thrown by the code under test are the expected
/// outcome for most inputs and are ignored by the targets; a crash, a sanitizer report, a leak or
/// a time-out is a finding.
public func runFuzzer(_ body: @escaping (Data) -> Void) -> Never {
    fuzzBody = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { bytes, size in
        let data = bytes.map { Data(bytes: $0, count: size) } ?? Data()
        fuzzBody?(data)
        return 0
    }
    exit(status)
}

/// A scratch directory of this fuzzing process, for targets whose code under test reads files.
public let fuzzScratch: URL = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("craft-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}()

/// Writes `data` to `name` in ``fuzzScratch`` (replacing it) and returns its URL.
public func scratchFile(_ name: String, _ data: Data) -> URL {
    let url = fuzzScratch.appendingPathComponent(name)
    try? data.write(to: url)
    return url
}

/// Fails the run (a finding) when a property of the code under test does not hold.
public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data(("property violated: " + message() + "\n").utf8))
        abort()
    }
}
