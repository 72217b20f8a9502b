import CKernels
import XCTest
@testable import SwiftONNX

/// The GEMV family (few rows times a weight matrix): every ISA level this CPU runs is bit-identical
/// to the scalar reference, and the reference agrees with a double-precision product, on awkward
/// sizes, column sub-ranges, padded leading dimensions, bias and activations.
final class GemvTests: XCTestCase {
    func testEveryISAMatchesTheReference() {
        var rng = SplitMix64(seed: 21)
        let reference = so_f32_gemv_select(Int32(SO_ISA_SCALAR))!.pointee
        let shapes: [(m: Int, k: Int, n: Int)] = [(1, 1, 1), (1, 17, 5), (2, 31, 17), (3, 100, 64), (4, 1000, 33),
                                                   (5, 16, 3), (1, 9217, 7), (4, 15, 1001)]
        for level in 0...Int32(so_isa_supported()) {
            let v = so_f32_gemv_select(level)!.pointee
            for s in shapes {
                let ldx = s.k + 3, ldy = s.n + 2
                let x = (0..<(s.m * ldx)).map { _ in rng.uniform(-1, 1) }
                let bias = (0..<s.n).map { _ in rng.uniform(-1, 1) }
                for transposed in [true, false] {
                    let ldw = transposed ? s.k + 1 : s.n + 5
                    let w = (0..<((transposed ? s.n : s.k) * ldw)).map { _ in rng.uniform(-1, 1) }
                    for (act, useBias) in [(SO_ACT_IDENTITY, false), (SO_ACT_RELU, true), (SO_ACT_SIGMOID, true)] {
                        let j0 = s.n > 4 ? 3 : 0, j1 = s.n
                        var want = [Float](repeating: -7, count: s.m * ldy), got = want
                        let fr = transposed ? reference.dot! : reference.axpy!
                        let fv = transposed ? v.dot! : v.axpy!
                        bias.withUnsafeBufferPointer { bp in
                            let b = useBias ? bp.baseAddress : nil
                            fr(s.m, s.k, x, ldx, w, ldw, &want, ldy, j0, j1, b, Int32(act), 0, 0)
                            fv(s.m, s.k, x, ldx, w, ldw, &got, ldy, j0, j1, b, Int32(act), 0, 0)
                        }
                        let name = String(cString: v.name)
                        // Sigmoid goes through each ISA's unary kernel (its own approximation).
                        if act == SO_ACT_SIGMOID {
                            for i in 0..<got.count where abs(got[i] - want[i]) > 1e-6 {
                                XCTFail("\(name) \(s) trans \(transposed) sigmoid: element \(i) \(got[i]) vs \(want[i])"); break
                            }
                        } else {
                            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(name) \(s) trans \(transposed) act \(act)")
                        }
                        // The reference against a double product; untouched outside [j0, j1).
                        for r in 0..<s.m {
                            for j in 0..<ldy {
                                let y = want[r * ldy + j]
                                if j < j0 || j >= j1 { XCTAssertEqual(y, -7, "wrote outside the column range"); continue }
                                var acc = 0.0, mag = 0.0
                                for i in 0..<s.k {
                                    let wv = Double(transposed ? w[j * ldw + i] : w[i * ldw + j])
                                    acc += Double(x[r * ldx + i]) * wv
                                    mag += abs(Double(x[r * ldx + i]) * wv)
                                }
                                if useBias { acc += Double(bias[j]) }
                                if act == SO_ACT_RELU { acc = max(acc, 0) }
                                if act == SO_ACT_SIGMOID { acc = 1 / (1 + exp(-acc)) }
                                if abs(Double(y) - acc) > 1e-5 * (mag + 1) {
                                    XCTFail("reference \(s) trans \(transposed): y[\(r)][\(j)] \(y) vs \(acc)"); return
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
