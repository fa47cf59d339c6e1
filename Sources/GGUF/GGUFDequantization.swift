// Dequantization of ggml's block formats into float32, bit-exact with the gguf Python package's
// reference (`gguf.quants.dequantize`): the same float32 operations in the same order.
import SafeTensors

/// Turns a tensor's bytes into float32 values.
enum GGUFDequantization {
    static func floats(_ bytes: UnsafeRawBufferPointer, type: GGUFTensorType, count: Int, tensor: String, file: String) throws(GGUFError) -> [Float] {
        guard GGUFTensorType.dequantizable.contains(type.id) else {
            throw GGUFError(.unsupported, "\(file): the tensor \"\(tensor)\" is \(type), which Craft does not dequantize yet (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K)", file: file)
        }
        precondition(bytes.count == count / type.blockSize * type.blockBytes, "sizes checked when the file was opened")
        return [Float](unsafeUninitializedCapacity: count) { output, initialized in
            let blocks = count / type.blockSize
            for block in 0..<blocks {
                let source = UnsafeRawBufferPointer(rebasing: bytes[(block * type.blockBytes)..<((block + 1) * type.blockBytes)])
                let destination = UnsafeMutableBufferPointer(rebasing: output[(block * type.blockSize)..<((block + 1) * type.blockSize)])
                switch type.id {
                case GGUFTensorType.f32.id: destination[0] = Float(bitPattern: source.loadUnaligned(as: UInt32.self).littleEndian)
                case GGUFTensorType.f16.id: destination[0] = half(source, 0)
                case GGUFTensorType.bf16.id: destination[0] = HalfPrecision.float(fromBFloat: source.loadUnaligned(as: UInt16.self).littleEndian)
                case GGUFTensorType.q8_0.id: q8_0(source, destination)
                case GGUFTensorType.q4_0.id: q4_0(source, destination)
                case GGUFTensorType.q4_K.id: q4_K(source, destination, fifthBits: false)
                case GGUFTensorType.q5_K.id: q4_K(source, destination, fifthBits: true)
                default: q6_K(source, destination)
                }
            }
            initialized = count
        }
    }

    @inline(__always)
    static func half(_ block: UnsafeRawBufferPointer, _ offset: Int) -> Float {
        HalfPrecision.float(fromHalf: block.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian)
    }

    /// `d` (f16), then 32 signed bytes: `q · d`.
    static func q8_0(_ block: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>) {
        let d = half(block, 0)
        for i in 0..<32 { out[i] = Float(Int8(bitPattern: block[2 + i])) * d }
    }

    /// `d` (f16), then 16 bytes: values 0-15 are the low nibbles, 16-31 the high ones, minus 8.
    static func q4_0(_ block: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>) {
        let d = half(block, 0)
        for i in 0..<16 {
            let byte = block[2 + i]
            out[i] = d * Float(Int(byte & 0x0F) - 8)
            out[16 + i] = d * Float(Int(byte >> 4) - 8)
        }
    }

    /// The 6-bit scale and minimum of sub-block `s` (0-7) from Q4_K's 12 packed scale bytes.
    @inline(__always)
    static func scaleAndMinimum(_ scales: UnsafeRawBufferPointer, _ s: Int) -> (Float, Float) {
        if s < 4 { return (Float(scales[s] & 63), Float(scales[s + 4] & 63)) }
        let scale = (scales[s + 4] & 0x0F) | ((scales[s - 4] >> 2) & 0x30)
        let minimum = (scales[s + 4] >> 4) | ((scales[s] >> 2) & 0x30)
        return (Float(scale), Float(minimum))
    }

    /// Q4_K: `d`, `dmin` (f16), 12 bytes of 6-bit scales and minimums for 8 sub-blocks of 32, then
    /// 128 bytes of nibbles (sub-block 2j the low nibbles of bytes 32j..., 2j+1 the high ones).
    /// Q5_K adds 32 bytes of fifth bits (bit s of byte i for value i of sub-block s) before them.
    /// Each value is `(d · scale) · q − dmin · minimum`.
    static func q4_K(_ block: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>, fifthBits: Bool) {
        let d = half(block, 0), dmin = half(block, 2)
        let scales = UnsafeRawBufferPointer(rebasing: block[4..<16])
        let qh = 16, qs = fifthBits ? 48 : 16
        for s in 0..<8 {
            let (scale, minimum) = scaleAndMinimum(scales, s)
            let factor = d * scale, offset = dmin * minimum
            let group = qs + (s / 2) * 32, shift = UInt8((s % 2) * 4)
            for i in 0..<32 {
                var q = (block[group + i] >> shift) & 0x0F
                if fifthBits { q |= ((block[qh + i] >> UInt8(s)) & 1) << 4 }
                out[s * 32 + i] = factor * Float(q) - offset
            }
        }
    }

    /// Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 signed 8-bit scales (one per 16
    /// values), then `d` (f16). Each value is `(d · scale) · (q − 32)`.
    static func q6_K(_ block: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>) {
        let d = half(block, 208)
        for half in 0..<2 {
            for i in 0..<128 {
                let position = half * 128 + i
                let low = (block[half * 64 + i % 64] >> UInt8((i / 64) * 4)) & 0x0F
                let high = (block[128 + half * 32 + i % 32] >> UInt8((i / 32) * 2)) & 0x03
                let q = Int(low | (high << 4)) - 32
                let scale = Float(Int8(bitPattern: block[192 + position / 16]))
                out[position] = (d * scale) * Float(q)
            }
        }
    }
}
