// Turning a dataset example's image file into encoder input with CraftImaging (PNG/JPEG decoding and
// the transformers image-processor recipe, e.g. SigLIP's resize + rescale + normalise).
import CraftImaging
import Foundation
import TensorCore

/// Image loading for ``Trainer``'s `inputs` closure.
public enum ImageInputs {
    /// A closure that decodes each example's image and preprocesses it to pixels `[3, height, width]`.
    ///
    /// ```swift
    /// let inputs = ImageInputs.loader(preprocessing: .siglip)   // 224×224, mean/std 0.5
    /// var trainer = try Trainer(encoder: encoder, surrogate: surrogate, textEmbedder: nil,
    ///                           inputs: inputs, configuration: options)
    /// ```
    ///
    /// - Throws (from the closure): ``TrainingError`` (`invalidDataset`) naming the example's line
    ///   and image path, with the decoder's reason, when the image is missing, corrupt or unsupported.
    public static func loader(preprocessing: ImagePreprocessing = .siglip) -> @Sendable (TrainingExample) throws -> Tensor {
        { example in
            do {
                let pixels = try Image(contentsOf: example.imageURL).pixelValues(preprocessing)
                return Tensor(pixels.values, shape: pixels.shape)
            } catch {
                throw TrainingError(.invalidDataset, "line \(example.line): cannot load image \(example.imagePath): \(error.localizedDescription)")
            }
        }
    }
}
