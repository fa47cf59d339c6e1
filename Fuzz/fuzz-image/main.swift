// Fuzzes the PNG and JPEG decoders (recognised by their first bytes), then the conversions every
// image goes through before an encoder sees it.
import CraftImaging
import Foundation
import FuzzDriver

runFuzzer { data in
    guard let image = try? Image(data: data) else { return }
    _ = image.convertedTo8Bit()
}
