import CraftImaging
import Foundation

/// `craft tokens --overlay`: the image as the encoder sees it (resized to its input size) with its
/// patch grid drawn over it, the patches test-time pruning keeps bright with a thin grid line around
/// each, the pruned ones greyed, darkened and hatched.
///
/// The picture is scaled up by a whole factor (nearest neighbour, so each input pixel stays one
/// colour) until its shorter side is at least ``minimumSide`` pixels, so a 32-pixel input is
/// readable.
enum TokenOverlay {
    /// The shorter side the picture is scaled up to at least.
    static let minimumSide = 256
    /// The largest whole scale factor.
    static let maximumScale = 16
    /// The colour of the grid line around kept patches (a bright yellow).
    static let gridColor: (UInt8, UInt8, UInt8) = (255, 214, 0)
    /// The colour of the hatching stripes over pruned patches.
    static let hatchColor: (UInt8, UInt8, UInt8) = (150, 150, 150)
    /// Hatching: a stripe pixel every this many pixels along each diagonal …
    static let hatchPeriod = 8
    /// … this many pixels wide.
    static let hatchWidth = 2

    /// The scale factor for an input of `width` × `height`.
    static func scale(width: Int, height: Int) -> Int {
        let side = max(min(width, height), 1)
        return min(max(1, (minimumSide + side - 1) / side), maximumScale)
    }

    /// The overlay picture.
    ///
    /// - Parameters:
    ///   - image: The image at the encoder's input size (8-bit RGB; other models are converted).
    ///   - kept: `kept[row][column]` is whether the patch at that grid position is kept; its size is
    ///     the encoder's grid (rows × columns).
    /// - Returns: An 8-bit RGB image of `image`'s size times ``scale(width:height:)``.
    /// - Throws: `ImageError` when the grid is empty or ragged.
    static func draw(_ image: Image, kept: [[Bool]]) throws -> Image {
        let rows = kept.count, columns = kept.first?.count ?? 0
        guard rows > 0, columns > 0, kept.allSatisfy({ $0.count == columns }), rows <= image.height, columns <= image.width else {
            throw ImageError(.invalidArgument, "the token grid (\(rows) rows) is empty, ragged or finer than the \(image.width)×\(image.height) image")
        }
        let source = image.convertedTo8Bit().convertedToRGB().bytes
        let factor = scale(width: image.width, height: image.height)
        let width = image.width * factor, height = image.height * factor
        // Each output column's and row's patch, and whether it is the first or last pixel of its patch.
        let columnOf = (0..<width).map { $0 * columns / width }
        let rowOf = (0..<height).map { $0 * rows / height }
        func isEdge(_ index: Int, _ cells: [Int]) -> Bool {
            index == 0 || index == cells.count - 1 || cells[index - 1] != cells[index] || cells[index + 1] != cells[index]
        }
        let columnEdge = (0..<width).map { isEdge($0, columnOf) }
        let rowEdge = (0..<height).map { isEdge($0, rowOf) }
        var bytes = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let sourceRow = (y / factor) * image.width
            for x in 0..<width {
                let from = (sourceRow + x / factor) * 3, to = (y * width + x) * 3
                let (red, green, blue) = (source[from], source[from + 1], source[from + 2])
                let color: (UInt8, UInt8, UInt8)
                if kept[rowOf[y]][columnOf[x]] {
                    color = columnEdge[x] || rowEdge[y] ? gridColor : (red, green, blue)
                } else if (x + y) % hatchPeriod < hatchWidth {
                    color = hatchColor
                } else {
                    // Grey (Rec. 601 luma), pulled two thirds of the way to near-black.
                    let luma = (299 * Int(red) + 587 * Int(green) + 114 * Int(blue)) / 1000
                    let dimmed = UInt8(20 + luma / 3)
                    color = (dimmed, dimmed, dimmed)
                }
                bytes[to] = color.0
                bytes[to + 1] = color.1
                bytes[to + 2] = color.2
            }
        }
        return try Image(width: width, height: height, colorModel: .rgb, bytes: bytes)
    }
}
