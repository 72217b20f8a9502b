import Foundation
@testable import SwiftONNXEnhance
import XCTest

/// The PNG encoder (`Sources/CImageIO/png_encode.c`): every layout and awkward size decodes (with
/// libpng, which checks the chunks' CRCs and the zlib stream's Adler-32) to exactly the pixels
/// given, the bytes do not depend on the thread count, and smooth images compress.
final class PNGEncodeTests: XCTestCase {
    /// Samples that exercise Paeth's three predictors and byte wrap-around: noise, steps between
    /// 0 and the maximum, and smooth ramps, by region.
    private func pattern(width: Int, height: Int, channels: Int, depth: Int, seed: UInt64) throws -> ImageBuffer {
        var img = try ImageBuffer(width: width, height: height, channels: channels, bitDepth: depth)
        let maxV = depth == 16 ? 65535 : 255
        var s = seed
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    s = s &* 6364136223846793005 &+ 1442695040888963407
                    let v: Int
                    switch (x / 5 + y / 7 + c) % 4 {
                    case 0: v = Int(s >> 33) % (maxV + 1)                       // noise
                    case 1: v = (x + y) % 2 == 0 ? 0 : maxV                      // saturating steps
                    case 2: v = (x * 37 + y * 11 + c * 5) * (maxV / 255) % (maxV + 1)   // ramps
                    default: v = maxV - (y * 3 % (maxV + 1))
                    }
                    img.setRaw(x, y, c, v)
                }
            }
        }
        return img
    }

    func testEveryLayoutAndSizeRoundTripsWithAnyThreadCount() throws {
        // sizes: one pixel, one column and one row across several 64-row strips, a strip boundary
        // exactly, and a tail strip
        let sizes = [(1, 1), (1, 200), (200, 1), (31, 64), (67, 130)]
        for depth in [8, 16] {
            for channels in 1...4 {
                for (w, h) in sizes {
                    let img = try pattern(width: w, height: h, channels: channels, depth: depth, seed: UInt64(w * 1000 + h * 10 + channels))
                    let one = try ImageFile.encode(img, format: .png, threads: 1)
                    let what = "\(w)x\(h) \(channels) channels \(depth)-bit"
                    XCTAssertEqual(try ImageFile.header(of: one),
                                   ImageHeader(format: .png, width: w, height: h, channels: channels, bitDepth: depth, orientation: 1), what)
                    XCTAssertEqual(maxDifference(try ImageFile.read(data: one), img), 0, what)
                    for threads in [2, 3, 16] {
                        XCTAssertEqual(try ImageFile.encode(img, format: .png, threads: threads), one, "\(what), \(threads) threads")
                    }
                }
            }
        }
    }

    /// A smooth 1000x300 RGB image (the kind of output the pipeline writes) takes a small fraction of
    /// its raw size, and a corrupted byte inside its compressed data is caught by the reader.
    func testSmoothImagesCompressAndDamageIsDetected() throws {
        var img = try ImageBuffer(width: 1000, height: 300, channels: 3, bitDepth: 8)
        for y in 0..<300 {
            for x in 0..<1000 {
                img.setRaw(x, y, 0, x * 255 / 999)
                img.setRaw(x, y, 1, y * 255 / 299)
                img.setRaw(x, y, 2, (x + y) / 6 % 256)
            }
        }
        let png = try ImageFile.encode(img, format: .png, threads: 2)
        // 51 KB, 5.7% of the raw 900 KB (the ramps step every few pixels, leaving 0/1 residuals)
        XCTAssertLessThan(png.count, 1000 * 300 * 3 * 8 / 100, "a smooth image should take under 8% of its raw size")
        XCTAssertEqual(maxDifference(try ImageFile.read(data: png), img), 0)
        var bad = [UInt8](png)
        bad[bad.count / 2] ^= 0x55   // inside the IDAT data: the chunk's CRC no longer matches
        XCTAssertThrowsError(try ImageFile.read(data: Data(bad))) { e in
            guard case .corruptFile("<data>", _)? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
    }
}
