import Numerics
import TensorCore

/// Whether two float arrays agree elementwise within a relative and absolute tolerance.
///
/// The one tolerance helper for the test suite: it checks counts first, then each element with
/// swift-numerics' `isApproximatelyEqual`, and returns a description of the first failures so a
/// failing `#expect` prints both values.
public func approximatelyEqual(
    _ actual: [Float], _ expected: [Float], relative: Float = 1e-4, absolute: Float = 1e-6
) -> (ok: Bool, report: String) {
    guard actual.count == expected.count else {
        return (false, "count \(actual.count) differs from expected \(expected.count)")
    }
    var failures: [String] = []
    for index in actual.indices {
        let a = actual[index], e = expected[index]
        let ok = a.isApproximatelyEqual(to: e, absoluteTolerance: absolute, relativeTolerance: relative)
            || (a.isNaN && e.isNaN)
        if !ok {
            failures.append("[\(index)] actual \(a) expected \(e)")
            if failures.count >= 5 { break }
        }
    }
    return (failures.isEmpty, failures.joined(separator: "; "))
}
