import CImageIO
import Foundation
@testable import SwiftONNXEnhance
import XCTest

/// The pipeline's row conversion to 8 bits (`sio_rgb_f32_to_u8`, a C loop the compiler vectorizes)
/// equals its reference, `ImageBuffer.storeSample`, sample for sample.
final class PixelStoreTests: XCTestCase {
    func testRowConversionEqualsStoreSample() throws {
        // awkward values: NaN, infinities, out of range, exact halves of a step and their neighbours,
        // then a seeded sweep over [-0.1, 1.1]
        var values: [Float] = [.nan, -.infinity, .infinity, -1, -0.0, 0, 1, 1.5, 2e9, -2e9]
        for k in 0..<256 {
            let half = (Float(k) + 0.5) / 255
            values += [half, half.nextDown, half.nextUp, Float(k) / 255]
        }
        var s: UInt64 = 12345
        for _ in 0..<3000 {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            values.append(Float(s >> 40) / Float(1 << 24) * 1.2 - 0.1)
        }
        while values.count % 3 != 0 { values.append(0.25) }
        let n = values.count / 3
        for channels in [3, 4] {
            let reference = try ImageBuffer(width: n, height: 1, channels: channels, bitDepth: 8)
            for x in 0..<n { for c in 0..<3 { reference.storeSample(x, 0, c, values[x * 3 + c]) } }
            let fast = try ImageBuffer(width: n, height: 1, channels: channels, bitDepth: 8)
            values.withUnsafeBufferPointer { v in
                sio_rgb_f32_to_u8(v.baseAddress!, fast.data.assumingMemoryBound(to: UInt8.self), n, channels)
            }
            for x in 0..<n {
                for c in 0..<3 {
                    XCTAssertEqual(fast.raw(x, 0, c), reference.raw(x, 0, c), "value \(values[x * 3 + c]), \(channels) channels")
                }
            }
        }
    }
}
