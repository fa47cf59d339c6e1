import CraftBundles
import CraftCore
import CraftModels
import Foundation
import RuntimeTestSupport
import TensorCore
import Testing

@testable import CraftRuntimes

@Suite("siglip-vq runtime: config.bypass_quantizer")
struct SiglipVQBypassTests {
    func encoderBundle(config: JSONValue?, in scratch: Scratch, as role: String) throws -> UnpackedBundle {
        try TinyBundles.encoderDirectory(at: scratch.path("\(role)-source"))
        var bundle = try TinyBundles.packAndUnpack(scratch.path("\(role)-source"), in: scratch, as: role)
        bundle.manifest.config = config
        return bundle
    }

    @Test("bypass_quantizer true gives z_e as token features; absent or false gives the code vectors")
    func flagFromManifest() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let plain = try SiglipVQRuntime.load(try encoderBundle(config: nil, in: scratch, as: "plain"))
        #expect(!plain.bypassesQuantizer)
        let off = try SiglipVQRuntime.load(try encoderBundle(config: ["bypass_quantizer": false], in: scratch, as: "off"))
        #expect(!off.bypassesQuantizer)
        let on = try SiglipVQRuntime.load(try encoderBundle(config: ["bypass_quantizer": true, "quantization_layer": 1], in: scratch, as: "on"))
        #expect(on.bypassesQuantizer)
        let pixels = Tensor.ones([1, 3, 32, 32])
        let continuous = try on.encode(pixels)[0]
        let discrete = try plain.encode(pixels)[0]
        #expect(continuous.codes.scalars == discrete.codes.scalars)
        let features = try #require(continuous.features)
        let expected = try on.features(pixels, tower: on.tower).squeezed(0)
        #expect(features.scalars == expected.scalars)
        #expect(features.scalars != discrete.features?.scalars)
    }

    @Test("a bypass_quantizer that is not a Boolean is refused, naming the field")
    func nonBooleanIsRefused() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let bundle = try encoderBundle(config: ["bypass_quantizer": "yes"], in: scratch, as: "bad")
        let error = try #require(throws: BundleError.self) { try SiglipVQRuntime.load(bundle) }
        #expect(error.entry == "config.bypass_quantizer")
        #expect(error.message.contains("tiny-vq@1.0.0"))
    }
}
