import Foundation
import XCTest
@testable import SwiftONNX

/// DFT and STFT against the transforms' definitions (sums in Double) and their identities: the
/// inverse undoes the forward transform, the one-sided spectrum is the first half of the full one and
/// its inverse gives the real signal back. (The ONNX node suite's DFT/STFT cases run them too.)
final class SignalTests: XCTestCase {
    /// X[k] = sum_t x[t] exp(-2 pi i k t / n) of a real signal zero-padded or cut to n.
    private func dft(_ x: [Double], n: Int) -> [(Double, Double)] {
        (0..<n).map { k in
            var re = 0.0, im = 0.0
            for t in 0..<min(n, x.count) {
                let a = -2 * Double.pi * Double(k * t) / Double(n)
                re += x[t] * cos(a); im += x[t] * sin(a)
            }
            return (re, im)
        }
    }

    func testForwardAlongAnAxisWithPaddingAndTruncation() throws {
        // x (2, 7, 3, 1): DFT along axis 1, lengths 7 (as is), 10 (padded), 4 (cut)
        let x = sinTensor([2, 7, 3, 1], 0.61, 1.5)
        let xs = try x.doubles()
        for n in [nil, 10, 4] as [Int?] {
            let len = n.map { Tensor(validShape: [1], scalars: [Int64($0)]) }
            let y = try runOp("DFT", opset: 20, [x, len, Tensor(scalar: Int64(1))])[0]
            let bins = n ?? 7
            XCTAssertEqual(y.shape, [2, bins, 3, 2])
            var want = [Double](repeating: 0, count: 2 * bins * 3 * 2)
            for b in 0..<2 {
                for c in 0..<3 {
                    let line = (0..<7).map { xs[(b * 7 + $0) * 3 + c] }
                    for (k, v) in dft(line, n: bins).enumerated() {
                        want[((b * bins + k) * 3 + c) * 2] = v.0
                        want[((b * bins + k) * 3 + c) * 2 + 1] = v.1
                    }
                }
            }
            try assertClose(y, want, tol: 1e-5)
            // opset 17's attribute axis gives the same
            let y17 = try runOp("DFT", opset: 17, [x, len], ["axis": .int(1)])[0]
            XCTAssertEqual(try y17.doubles(), try y.doubles())
        }
    }

    func testInverseAndOneSidedRoundTrips() throws {
        let x = sinTensor([3, 8, 1], 0.83, 2)
        let full = try runOp("DFT", opset: 20, [x, nil, Tensor(scalar: Int64(-2))])[0]
        // the inverse of the full spectrum: the signal, imaginary parts 0
        let back = try runOp("DFT", opset: 20, [full, nil, Tensor(scalar: Int64(1))], ["inverse": .int(1)])[0]
        let xs = try x.doubles()
        try assertClose(back, xs.flatMap { [$0, 0] }, tol: 1e-5)
        // the one-sided spectrum is the first 5 bins of the full one; its inverse is the real signal
        let half = try runOp("DFT", opset: 20, [x, nil, Tensor(scalar: Int64(1))], ["onesided": .int(1)])[0]
        XCTAssertEqual(half.shape, [3, 5, 2])
        let f = try full.doubles()
        try assertClose(half, (0..<3).flatMap { b in (0..<10).map { f[b * 16 + $0] } }, tol: 1e-6)
        let real = try runOp("DFT", opset: 19, [half], ["axis": .int(1), "inverse": .int(1), "onesided": .int(1)])[0]
        XCTAssertEqual(real.shape, [3, 8, 1])
        try assertClose(real, xs, tol: 1e-5)
    }

    func testSTFTFramesAreWindowedTransforms() throws {
        let signal = sinTensor([2, 40, 1], 0.29, 1)
        let window = (0..<8).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / 8)) }
        let y = try runOp("STFT", opset: 17, [signal, Tensor(scalar: Int64(5)), Tensor(validShape: [8], scalars: window)])[0]
        XCTAssertEqual(y.shape, [2, 7, 5, 2])   // (40 - 8) / 5 + 1 frames, 8 / 2 + 1 bins
        let s = try signal.doubles()
        var want: [Double] = []
        for b in 0..<2 {
            for f in 0..<7 {
                let frame = (0..<8).map { s[b * 40 + f * 5 + $0] * Double(window[$0]) }
                for v in dft(frame, n: 8).prefix(5) { want += [v.0, v.1] }
            }
        }
        try assertClose(y, want, tol: 1e-5)
        // a frame_length instead of a window: a rectangular window, all bins when not one-sided
        let rect = try runOp("STFT", opset: 17, [signal, Tensor(scalar: Int64(5)), nil, Tensor(scalar: Int64(8))],
                             ["onesided": .int(0)])[0]
        XCTAssertEqual(rect.shape, [2, 7, 8, 2])
    }

    func testBadInputsAreTypedErrors() {
        XCTAssertThrowsError(try runOp("DFT", opset: 20, [sinTensor([4, 3]), nil, Tensor(scalar: Int64(0))]))   // last dim 3
        XCTAssertThrowsError(try runOp("DFT", opset: 20, [sinTensor([4, 1]), nil, Tensor(scalar: Int64(1))]))   // the complex axis
        XCTAssertThrowsError(try runOp("DFT", opset: 20, [sinTensor([4, 2]), nil, Tensor(scalar: Int64(0))], ["onesided": .int(1)]))
        XCTAssertThrowsError(try runOp("STFT", opset: 17, [sinTensor([1, 4, 1]), Tensor(scalar: Int64(2)), nil, Tensor(scalar: Int64(8))]))
        XCTAssertThrowsError(try runOp("STFT", opset: 17, [sinTensor([1, 16, 1]), Tensor(scalar: Int64(2))]))
        // a hostile dft_length: refused before anything of its size is allocated or computed
        for n in [Int64(1) << 40, 1 << 20] {
            XCTAssertThrowsError(try runOp("DFT", opset: 20, [sinTensor([2, 4, 1]), Tensor(validShape: [1], scalars: [n]),
                                                              Tensor(scalar: Int64(1))])) { e in
                XCTAssertTrue("\(e)".contains("DFT"), "\(e)")
            }
        }
    }
}
