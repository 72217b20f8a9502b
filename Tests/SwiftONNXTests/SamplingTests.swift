import XCTest
import Foundation
@testable import SwiftONNX

/// GridSample and AffineGrid beyond the node suite's small cases, and the small ops that came with
/// them (BitCast, SwiGLU, Det, TensorScatter): values against hand-computed or double-precision
/// references, and bad input as typed errors.
final class SamplingTests: XCTestCase {
    /// The identity affine grid with aligned corners samples every pixel centre exactly, so linear
    /// and cubic GridSample give the input back; a shifted grid with zeros padding reads zeros.
    func testIdentityGridReproducesTheInput() throws {
        let (n, c, h, w) = (2, 3, 7, 9)
        let x = sinTensor([n, c, h, w], 0.71, 1.5)
        let identity: [Float] = (0..<(n * 6)).map { i -> Float in i % 6 == 0 || i % 6 == 4 ? 1 : 0 }
        let theta = Tensor(validShape: [n, 2, 3], scalars: identity)
        let size = Tensor(validShape: [4], scalars: [Int64(n), Int64(c), Int64(h), Int64(w)])
        let grid = try runOp("AffineGrid", opset: 20, [theta, size], ["align_corners": .int(1)])[0]
        XCTAssertEqual(grid.shape, [n, h, w, 2])
        for mode in ["linear", "cubic", "nearest"] {
            let y = try runOp("GridSample", opset: 20, [x, grid], ["mode": .string(mode), "align_corners": .int(1)])[0]
            try assertClose(y, try x.doubles(), tol: 1e-5)
        }
        // Every grid point moved 4 widths right: all outside, zeros.
        var far: [Float] = try grid.scalars(as: Float.self)
        for i in stride(from: 0, to: far.count, by: 2) { far[i] += 8 }
        let farGrid = Tensor(validShape: grid.shape, scalars: far)
        let y = try runOp("GridSample", opset: 20, [x, farGrid], ["align_corners": .int(1)])[0]
        XCTAssertTrue(try y.scalars(as: Float.self).allSatisfy { $0 == 0 })
        // Border padding reads the last column instead.
        let yb = try runOp("GridSample", opset: 20, [x, farGrid],
                           ["align_corners": .int(1), "padding_mode": .string("border")])[0]
        let xs: [Float] = try x.scalars(as: Float.self), ys: [Float] = try yb.scalars(as: Float.self)
        for row in 0..<(n * c * h) {
            let last: Float = xs[row * w + w - 1]
            for j in 0..<w { XCTAssertEqual(ys[row * w + j], last, accuracy: 1e-6) }
        }
    }

    /// NaN, infinite and huge grid coordinates read outside pixels (zeros, or the border) without trapping.
    func testHostileGridCoordinates() throws {
        let x = sinTensor([1, 2, 4, 5])
        let bad: [Float] = [.nan, 0.3, .infinity, -.infinity, 1e30, -1e30, 0.5, .nan]
        let grid = Tensor(validShape: [1, 2, 2, 2], scalars: bad)
        for mode in ["nearest", "linear", "cubic"] {
            for padding in ["zeros", "border", "reflection"] {
                let y = try runOp("GridSample", opset: 20, [x, grid], ["mode": .string(mode), "padding_mode": .string(padding)])[0]
                XCTAssertEqual(y.shape, [1, 2, 2, 2])
                XCTAssertTrue(try y.scalars(as: Float.self).allSatisfy { $0.isFinite }, "\(mode) \(padding)")
            }
        }
        let far = try runOp("GridSample", opset: 20, [x, Tensor(validShape: [1, 1, 1, 2], scalars: [Float(1e30), -1e30])])[0]
        XCTAssertEqual(try far.scalars(as: Float.self), [0, 0])
    }

    func testSamplingErrorsAreTyped() {
        let x = sinTensor([1, 1, 4, 4])
        XCTAssertThrowsError(try runOp("GridSample", opset: 20, [x, sinTensor([1, 3, 3, 3])])) { e in
            XCTAssertTrue("\(e)".contains("grid"), "\(e)")
        }
        XCTAssertThrowsError(try runOp("GridSample", opset: 20, [x, sinTensor([1, 3, 3, 2])], ["mode": .string("area")]))
        XCTAssertThrowsError(try runOp("AffineGrid", opset: 20, [sinTensor([1, 2, 2]), Tensor(validShape: [4], scalars: [Int64(1), 1, 4, 4])]))
    }

    func testBitCastSwiGLUDetAndTensorScatter() throws {
        // BitCast keeps the bytes.
        let f = Tensor(validShape: [3], scalars: [Float(1), -2.5, 0])
        let i = try runOp("BitCast", opset: 26, [f], ["to": .int(6)])[0]
        XCTAssertEqual(try i.scalars(as: Int32.self), [Float(1), -2.5, 0].map { Int32(bitPattern: $0.bitPattern) })
        XCTAssertThrowsError(try runOp("BitCast", opset: 26, [f], ["to": .int(7)])) { e in XCTAssertTrue("\(e)".contains("width"), "\(e)") }
        let bytes = Tensor(validShape: [2], scalars: [UInt8(1), 2])
        XCTAssertThrowsError(try runOp("BitCast", opset: 26, [bytes], ["to": .int(9)])) { e in XCTAssertTrue("\(e)".contains("boolean"), "\(e)") }
        // SwiGLU: a * sigmoid(alpha a) * b.
        let a = sinTensor([2, 5], 0.9, 3), b = sinTensor([2, 5], 0.4, 2)
        let y = try runOp("SwiGLU", opset: 26, [a, b], ["alpha": .float(1.5)])[0]
        let av = try a.doubles(), bv = try b.doubles()
        try assertClose(y, zip(av, bv).map { $0 / (1 + exp(-1.5 * $0)) * $1 }, tol: 1e-6)
        XCTAssertThrowsError(try runOp("SwiGLU", opset: 26, [a, sinTensor([5, 2])]))
        // Det: a permutation needing pivots, a singular matrix, a batch.
        let m = Tensor(validShape: [3, 3, 3], scalars: [Float(0), 2, 1, 1, 0, 0, 3, 1, 4,
                                                        1, 2, 3, 2, 4, 6, 0, 1, 1,
                                                        2, 0, 0, 0, 3, 0, 0, 0, -0.5])
        let d = try runOp("Det", opset: 22, [m])[0]
        XCTAssertEqual(d.shape, [3])
        try assertClose(d, [-7, 0, -3], tol: 1e-6)
        XCTAssertThrowsError(try runOp("Det", opset: 22, [sinTensor([2, 3])]))
        // TensorScatter, circular: batch 1 writes from 3 and wraps to 0.
        let cache = Tensor(validShape: [2, 4, 1], scalars: [Float](repeating: 0, count: 8))
        let upd = Tensor(validShape: [2, 2, 1], scalars: [Float(1), 2, 3, 4])
        let w = Tensor(validShape: [2], scalars: [Int64(1), 3])
        let out = try runOp("TensorScatter", opset: 24, [cache, upd, w], ["mode": .string("circular")])[0]
        XCTAssertEqual(try out.scalars(as: Float.self), [0, 1, 2, 0, 4, 0, 0, 3])
        XCTAssertThrowsError(try runOp("TensorScatter", opset: 24, [cache, upd, w])) { e in
            XCTAssertTrue("\(e)".contains("outside"), "\(e)")
        }
    }
}
