import Foundation
import Testing

@testable import CraftBundles

/// examples/custom-runtime: its runtime source is compiled into this target (a symbolic link), because
/// building the nested package in a test would rebuild all of Craft (minutes on two cores).
@Suite("Custom runtime example")
struct CustomRuntimeExampleTests {
    @Test("the example registers caption-backend, pairs it with table-encoder and captions every image")
    func exampleRuns() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let output = try CaptionRuntimeDemo.run(in: temp.path("work"))
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(output)")
        #expect(lines.first == "without the custom runtime: incompatible (runtime.registered)")
        #expect(lines[1].hasPrefix("with caption-backend registered: paired coast-encoder@1.0.0 + coast-captions@1.0.0 on sha256:"))
        #expect(lines[2] == "image 0: sky sea sand")
        #expect(lines[3] == "image 1: cloud boat sea bird")
    }
}
