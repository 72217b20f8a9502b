import XCTest
import Foundation
@testable import SwiftONNX

// References computed with the ONNX reference implementation (numpy), inputs sin(i*k)*s.
final class PoolingTests: XCTestCase {
    func testMaxPoolPadsStrides() throws {
        let y = try runOp("MaxPool", [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])[0]
        XCTAssertEqual(y.shape, [1, 2, 3, 4])
        try assertClose(y, PoolRef.maxpool_pads, tol: 1e-7)
    }
    func testMaxPoolCeilWithIndices() throws {
        let out = try runOp("MaxPool", [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([2, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)], outputs: 2)
        XCTAssertEqual(out[0].shape, [1, 2, 3, 3])
        try assertClose(out[0], PoolRef.maxpool_ceil, tol: 1e-7)
        XCTAssertEqual(out[1].dtype, .int64)
        try assertClose(out[1], PoolRef.maxpool_ceil_idx, tol: 1e-7)
    }
    func testMaxPoolColumnMajorIndices() throws {
        let out = try runOp("MaxPool", [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "storage_order": .int(1)], outputs: 2)
        try assertClose(out[1], PoolRef.maxpool_so1_idx, tol: 1e-7)
    }
    func testMaxPoolUInt8() throws {
        let x = try Tensor(shape: [1, 1, 2, 3], scalars: [UInt8(1), 200, 3, 4, 5, 250])
        let y = try runOp("MaxPool", [x], ["kernel_shape": .ints([2, 2])])[0]
        XCTAssertEqual(try y.scalars(as: UInt8.self), [200, 250])
    }
    /// 8-bit MaxPool (the float kernel between exact conversions) against the general path (which
    /// also gives the indices), both signednesses, padding, strides, ceil mode, values at the ends.
    func testMaxPool8BitMatchesTheGeneralPath() throws {
        var rng = SplitMix64(seed: 41)
        for signed in [false, true] {
            for (k, s, p, ceil) in [(3, 2, 1, 0), (2, 2, 0, 1), (3, 1, 1, 0), (5, 3, 2, 1)] {
                let bytes = (0..<(2 * 3 * 13 * 11)).map { i in i % 17 == 0 ? UInt8(255) : i % 19 == 0 ? 0 : UInt8(truncatingIfNeeded: rng.next() >> 13) }
                let x = signed ? try Tensor(shape: [2, 3, 13, 11], scalars: bytes.map { Int8(bitPattern: $0) })
                               : try Tensor(shape: [2, 3, 13, 11], scalars: bytes)
                let attrs: [String: Attribute] = ["kernel_shape": .ints([k, k]), "strides": .ints([s, s]),
                                                  "pads": .ints([p, p, p, p]), "ceil_mode": .int(ceil)]
                let fast = try runOp("MaxPool", [x], attrs)[0]
                let general = try runOp("MaxPool", [x], attrs, outputs: 2)[0]
                XCTAssertEqual(fast.dtype, x.dtype)
                XCTAssertEqual(fast, general, "signed \(signed) kernel \(k) stride \(s) pad \(p) ceil \(ceil)")
            }
        }
    }
    func testAveragePoolCountIncludePad() throws {
        let a = try runOp("AveragePool", [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]), "count_include_pad": .int(1)])[0]
        try assertClose(a, PoolRef.avg_incl, tol: 1e-6)
        let b = try runOp("AveragePool", [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])[0]
        try assertClose(b, PoolRef.avg_excl, tol: 1e-6)
    }
    func testGlobalAverageAndLpPool() throws {
        let g = try runOp("GlobalAveragePool", [sinTensor([1, 2, 5, 7])])[0]
        XCTAssertEqual(g.shape, [1, 2, 1, 1])
        try assertClose(g, PoolRef.gap, tol: 1e-5)
        // an AveragePool whose one window is the whole plane (the global pooling's kernel runs it)
        for include in [0, 1] {
            let w = try runOp("AveragePool", [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([5, 7]), "count_include_pad": .int(include)])[0]
            XCTAssertEqual(w.shape, [1, 2, 1, 1])
            try assertClose(w, PoolRef.gap, tol: 1e-5)
        }
        let l = try runOp("LpPool", opset: 18, [sinTensor([1, 2, 5, 7])], ["kernel_shape": .ints([2, 2]), "p": .int(3)])[0]
        try assertClose(l, PoolRef.lppool, tol: 1e-5)
    }
    func testMaxPoolLargeMatchesGeneric() throws {
        // Fast float32 path (no indices) against the generic path (with indices).
        let x = sinTensor([2, 3, 33, 47], 0.013, 5)
        let attrs: [String: Attribute] = ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 0, 1, 2]), "dilations": .ints([1, 2])]
        let fast = try runOp("MaxPool", [x], attrs)[0]
        let generic = try runOp("MaxPool", [x], attrs, outputs: 2)[0]
        XCTAssertEqual(try fast.scalars(as: Float.self), try generic.scalars(as: Float.self))
    }
    func testAvgPoolFastKernelMatchesReferenceKernel() throws {
        let x = sinTensor([1, 2, 19, 23], 0.013, 5)
        for include in [false, true] {
            let tables = [PoolAxisTable.unit,
                          PoolAxisTable(inSize: 19, outSize: 19, kernel: 3, stride: 1, dilation: 1, padBegin: 1, padEnd: 1),
                          PoolAxisTable(inSize: 23, outSize: 22, kernel: 4, stride: 1, dilation: 1, padBegin: 2, padEnd: 1)]
            var a = [Float](repeating: 0, count: 2 * 19 * 22), b = a
            poolAvgF32(x.pointer(Float.self), &a, planes: 2, axes: tables, countIncludePad: include)
            poolAvgLpKernel(x.pointer(Float.self), &b, planes: 2, axes: tables, lp: false, p: 1, countIncludePad: include)
            for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-5) }
        }
    }
    func testMaxUnpool() throws {
        let x = try Tensor(shape: [1, 1, 2, 2], scalars: [Float(5), 6, 7, 8])
        let i = try Tensor(shape: [1, 1, 2, 2], scalars: [Int64(5), 7, 13, 15])
        let y = try runOp("MaxUnpool", [x, i], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])[0]
        XCTAssertEqual(y.shape, [1, 1, 4, 4])
        XCTAssertEqual(try y.scalars(as: Float.self), [0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 7, 0, 8])
        let bad = try Tensor(shape: [1, 1, 2, 2], scalars: [Int64(5), 7, 13, 99])
        XCTAssertThrowsError(try runOp("MaxUnpool", [x, bad], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]))
    }
    func testErrors() throws {
        XCTAssertThrowsError(try runOp("MaxPool", [sinTensor([1, 1, 2, 2])], ["kernel_shape": .ints([3, 3])]))
        XCTAssertThrowsError(try runOp("MaxPool", [sinTensor([1, 1, 4])], ["kernel_shape": .ints([2, 2])]))
        XCTAssertThrowsError(try runOp("AveragePool", [sinTensor([1, 1, 4, 4])], [:]))
        XCTAssertThrowsError(try runOp("AveragePool", [Tensor(shape: [1, 1, 2, 2], scalars: [Int32(1), 2, 3, 4])], ["kernel_shape": .ints([2, 2])]))
    }
}


fileprivate enum PoolRef {
    static let maxpool_pads: [Double] = [1.04808867, 1.79139733, 1.99176168, 1.92255044, 1.99295127, 1.91874969, 1.35860932, 1.79741621, 1.99295127, 1.91874969, 1.03645647, 0.0272579268, 1.36857975, 1.99404824, 1.99404824, 1.57650411, 1.91088104, 1.56808066, 1.80920315, 1.99505258, 1.91088104, 1.56808066, 0.320904016, 0.773784101]
    static let maxpool_ceil: [Double] = [1.34857583, 1.99176168, 1.99176168, 1.99295127, 1.58485436, 1.79741621, -1.60946178, -1.32832146, 0.0272579268, 1.80335152, 1.99404824, 1.91485977, 1.91088104, 1.37848651, 1.99505258, -1.76649296, -0.6721403, 0.773784101]
    static let maxpool_ceil_idx: [Double] = [2, 4, 4, 21, 23, 20, 28, 32, 34, 37, 38, 39, 56, 53, 55, 65, 67, 69]
    static let maxpool_so1_idx: [Double] = [1, 15, 20, 3, 13, 27, 40, 50, 55, 38, 48, 62]
    static let avg_incl: [Double] = [0.236945793, 0.345166534, 0.310014993, 0.232904404, 0.124271289, -0.00118136406, -0.0445622616, -0.110140339, -0.0808648169, 0.0838641673, 0.23724249, 0.358511239, 0.431257129, 0.306107223, 0.244134128, 0.299662769, 0.159070432, -0.00305136712, -0.164760172, -0.304169446, -0.246654585, -0.305713296, -0.429575324, -0.354821861, -0.232044905, -0.0778617635, 0.0868595988, 0.114039712, 0.0413728021, -0.0035439597, -0.128671005, -0.236383036, -0.312101722, -0.345578909, -0.236629754, 0.2277973, 0.307870716, 0.229382545, 0.119848475, -0.00590639655, -0.130861938, -0.128800139, 0.00523479097, 0.0898509696, 0.242396116, 0.362134099, 0.432858855, 0.444998324, 0.293894976, 0.156546459, 0.153351128, -0.00915355142, -0.17041932, -0.308619559, -0.405049711, -0.297316104, -0.271893233, -0.3510665, -0.226804152, -0.0718449131, 0.0928381458, 0.244956076, 0.212547928, -0.0493306853, -0.133046791, -0.239817753, -0.314130455, -0.345927149, -0.330904216, -0.210147142]
    static let avg_excl: [Double] = [0.533128023, 0.465022475, 0.186406925, -0.100265086, 0.366201162, 0.159070432, -0.164760172, -0.369981915, 0.0930888355, -0.193006516, -0.468152612, -0.53241694, 0.512543917, 0.344073802, -0.0088596344, -0.289800256, 0.234819695, -0.00915355142, -0.308619559, -0.445974201, -0.110994071, -0.359726667, -0.518890679, -0.47283107]
    static let gap: [Double] = [0.000403573038, 0.0225399788]
    static let lppool: [Double] = [1.16390944, 1.43103719, 2.11373091, 2.66589427, 2.97238708, 2.96944046, 2.10193276, 1.41884136, 1.16988814, 1.78576469, 2.41928458, 2.85815191, 2.84666443, 2.39869428, 1.76011729, 1.15829706, 1.44333339, 2.12548375, 2.97522712, 2.96638703, 2.64932752, 2.09009004, 1.4067539, 1.17622495, 1.45572209, 2.13719058, 2.68212128, 2.97795987, 2.96322727, 2.64091802, 1.39478338, 1.18291211, 1.81127417, 2.4396081, 2.86924386, 3.01060176, 2.37784338, 1.73434281, 1.14822102, 1.4681958, 2.14885044, 2.69010592, 2.95996141, 2.63242531, 2.06627369, 1.38293815, 1.18994153, 1.82397723]
}
