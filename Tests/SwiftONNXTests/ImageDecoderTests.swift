import Foundation
import XCTest
@testable import SwiftONNX

/// ImageDecoder's own BMP and PNM parsers on files written out byte by byte, its pixel formats
/// (PIL's luma for Grayscale), and its typed errors on files it cannot take. PNG and JPEG go
/// through libpng and libjpeg and are checked by the ONNX node suite's image cases against PIL.
final class ImageDecoderTests: XCTestCase {
    private func decode(_ bytes: [UInt8], _ format: String = "RGB") throws -> Tensor {
        try runOp("ImageDecoder", opset: 20, [try Tensor(shape: [bytes.count], scalars: bytes)],
                  ["pixel_format": .string(format)])[0]
    }
    private func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    private func le16(_ v: Int) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// A BMP with a 40-byte info header; `rows` are the stored rows (padding included), in file order.
    private func bmp(width: Int, height: Int, bpp: Int, palette: [[UInt8]] = [], rows: [UInt8]) -> [UInt8] {
        let offset = 14 + 40 + 4 * palette.count
        var b: [UInt8] = [0x42, 0x4D] + le32(offset + rows.count) + [0, 0, 0, 0] + le32(offset)
        b += le32(40) + le32(width) + le32(height) + le16(1) + le16(bpp) + le32(0) + le32(rows.count)
        b += le32(2835) + le32(2835) + le32(palette.count) + le32(0)
        for c in palette { b += c + [0] }   // blue, green, red, reserved
        return b + rows
    }

    func testBMP() throws {
        // 2x2, 24-bit, bottom-up: the first stored row is the bottom one; BGR bytes, rows padded to 4.
        let rows: [UInt8] = [0, 0, 255, 0, 255, 0, 0, 0,     // bottom: red, green
                             255, 0, 0, 255, 255, 255, 0, 0] // top: blue, white
        let t = try decode(bmp(width: 2, height: 2, bpp: 24, rows: rows))
        XCTAssertEqual(t.shape, [2, 2, 3])
        XCTAssertEqual(try t.scalars(as: UInt8.self), [0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 255, 0])
        // Top-down (negative height), 8-bit palette indices.
        let pal = try decode(bmp(width: 3, height: -1, bpp: 8, palette: [[0, 0, 0], [10, 20, 30]], rows: [1, 0, 1, 0]))
        XCTAssertEqual(try pal.scalars(as: UInt8.self), [30, 20, 10, 0, 0, 0, 30, 20, 10])
        // BGR keeps the file's byte order; Grayscale is PIL's L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
        let bgr = try decode(bmp(width: 2, height: 2, bpp: 24, rows: rows), "BGR")
        XCTAssertEqual(Array(try bgr.scalars(as: UInt8.self).prefix(6)), [255, 0, 0, 255, 255, 255])
        let gray = try decode(bmp(width: 2, height: 2, bpp: 24, rows: rows), "Grayscale")
        XCTAssertEqual(gray.shape, [2, 2, 1])
        XCTAssertEqual(try gray.scalars(as: UInt8.self), [29, 255, 76, 150])   // blue, white, red, green
        // Truncated pixel data, RLE compression, a palette index past the palette.
        let cut = bmp(width: 2, height: 2, bpp: 24, rows: Array(rows.prefix(10)))
        XCTAssertThrowsError(try decode(cut)) { XCTAssertTrue("\($0)".contains("BMP"), "\($0)") }
        var rle = bmp(width: 2, height: 2, bpp: 24, rows: rows)
        rle[30] = 1
        XCTAssertThrowsError(try decode(rle)) { XCTAssertTrue("\($0)".contains("compression 1"), "\($0)") }
        XCTAssertThrowsError(try decode(bmp(width: 1, height: 1, bpp: 8, palette: [[0, 0, 0]], rows: [5, 0, 0, 0])))
    }

    func testPNM() throws {
        // P6 with a comment; P5; P3 plain text; 16-bit samples scaled to 8 bits.
        let p6 = Array("P6\n# made by hand\n2 1\n255\n".utf8) + [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(try decode(p6).scalars(as: UInt8.self), [1, 2, 3, 4, 5, 6])
        let p5 = Array("P5 2 2 255\n".utf8) + [0, 100, 200, 255]
        let g = try decode(p5)
        XCTAssertEqual(g.shape, [2, 2, 3])
        XCTAssertEqual(try g.scalars(as: UInt8.self), [0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255])
        XCTAssertEqual(try decode(p5, "Grayscale").scalars(as: UInt8.self), [0, 100, 200, 255])
        let p3 = Array("P3\n1 1\n15\n15 0 # red\n 5\n".utf8)
        XCTAssertEqual(try decode(p3).scalars(as: UInt8.self), [255, 0, 85])
        let wide = Array("P5 1 1 65535\n".utf8) + [0x80, 0x00]
        XCTAssertEqual(try decode(wide).scalars(as: UInt8.self), [128, 128, 128])   // 32768 * 255 / 65535, rounded

        // A header claiming 10^10 pixels, too few pixel bytes, a sample above the maximum.
        XCTAssertThrowsError(try decode(Array("P6 100000 100000 255\n".utf8) + [0])) {
            XCTAssertTrue("\($0)".contains("more than"), "\($0)")
        }
        XCTAssertThrowsError(try decode(Array("P6 2 2 255\n".utf8) + [1, 2, 3])) {
            XCTAssertTrue("\($0)".contains("need 12 bytes"), "\($0)")
        }
        XCTAssertThrowsError(try decode(Array("P3 1 1 10\n11 0 0".utf8)))
    }

    func testUnknownAndUnsupportedFormats() throws {
        XCTAssertThrowsError(try decode(Array("hello".utf8))) { XCTAssertTrue("\($0)".contains("not an image"), "\($0)") }
        XCTAssertThrowsError(try decode([0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0])) { XCTAssertTrue("\($0)".contains("TIFF"), "\($0)") }
        XCTAssertThrowsError(try decode([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0])) {
            XCTAssertTrue("\($0)".contains("PNG"), "\($0)")
        }
        XCTAssertThrowsError(try decode([0xFF, 0xD8, 0xFF, 0xE0, 0, 0])) { XCTAssertTrue("\($0)".contains("JPEG"), "\($0)") }
        XCTAssertThrowsError(try runOp("ImageDecoder", opset: 20, [sinTensor([4])]))
        XCTAssertThrowsError(try runOp("ImageDecoder", opset: 20, [try Tensor(shape: [1], scalars: [UInt8(0)])],
                                       ["pixel_format": .string("CMYK")]))
    }
}
