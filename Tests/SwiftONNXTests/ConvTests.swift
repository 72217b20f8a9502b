import Foundation
import XCTest
@testable import SwiftONNX

// References: onnx.reference (float64) on the same sin-based inputs, see each test;
// tolerance 1e-4 relative (float32 accumulation) unless stated.

/// Deterministic inputs: sin(i * k + phase), as the numpy reference generator used.
func sinData(_ shape: [Int], _ k: Double = 0.37, _ phase: Double = 0) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(validShape: shape, scalars: (0..<n).map { Float(sin(Double($0) * k + phase)) })
}

/// Builds one op through the registry and runs it.
func runTestOp(_ op: String, domain: String = "", opset: Int = 17, _ attrs: [String: Attribute],
               _ inputs: [Tensor?], threads: Int = 1) throws -> Tensor {
    let node = Node(name: "n", opType: op, domain: domain,
                    inputs: inputs.enumerated().map { $0.element == nil ? "" : "i\($0.offset)" },
                    outputs: ["y"], attributes: attrs)
    guard let builder = OpRegistry.standard.builder(domain: domain, op: op) else {
        throw OpError("no op \(op)")
    }
    let ctx = OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("no subgraphs") })
    return try builder(ctx).run(inputs, RunEnv(threads: threads))[0]
}

func assertClose(_ t: Tensor, _ expected: [Float], shape: [Int], tol: Float = 1e-4,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(t.shape, shape, file: file, line: line)
    let got = try t.doubles()
    XCTAssertEqual(got.count, expected.count, file: file, line: line)
    var worst: Float = 0
    for (g, e) in zip(got, expected) { worst = max(worst, abs(Float(g) - e) / max(1, abs(e))) }
    XCTAssertLessThanOrEqual(worst, tol, "max relative error \(worst)", file: file, line: line)
}

/// Direct 2-D convolution in Double (group 1): the reference for paths without an onnx.reference table.
private func naiveConv2D(_ x: Tensor, _ w: Tensor, _ b: Tensor?, strides: [Int], pads: [Int], dilations: [Int]) throws -> [Double] {
    let xs = try x.doubles(), ws = try w.doubles(), bs = try b?.doubles()
    let (n, c, ih, iw) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (m, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let oh = (ih + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0] + 1
    let ow = (iw + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1] + 1
    var out: [Double] = []
    for img in 0..<n { for oc in 0..<m { for y in 0..<oh { for xo in 0..<ow {
        var acc = bs?[oc] ?? 0
        for ch in 0..<c { for u in 0..<kh { for v in 0..<kw {
            let yy = y * strides[0] - pads[0] + u * dilations[0], xx = xo * strides[1] - pads[1] + v * dilations[1]
            guard yy >= 0, yy < ih, xx >= 0, xx < iw else { continue }
            acc += xs[((img * c + ch) * ih + yy) * iw + xx] * ws[((oc * c + ch) * kh + u) * kw + v]
        } } }
        out.append(acc)
    } } } }
    return out
}

final class ConvTests: XCTestCase {
    /// Convolutions with at most 4 output positions per image run as rows of patches times the
    /// weights (GEMV): 1-D frames, strided and padded 2-D maps, dilations, odd channel counts.
    func testFewOutputPositionsMatchADoubleReference() throws {
        struct Case { let x: [Int], w: [Int], strides: [Int], pads: [Int], dilations: [Int], bias: Bool }
        let cases = [
            Case(x: [1, 1, 1, 40], w: [6, 1, 1, 16], strides: [1, 8], pads: [0, 0, 0, 0], dilations: [1, 1], bias: false),
            Case(x: [2, 5, 3, 3], w: [7, 5, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], bias: true),
            Case(x: [1, 3, 5, 5], w: [4, 3, 2, 2], strides: [3, 3], pads: [0, 0, 0, 0], dilations: [2, 2], bias: true),
            Case(x: [1, 129, 1, 4], w: [37, 129, 1, 3], strides: [1, 1], pads: [0, 1, 0, 1], dilations: [1, 1], bias: true),
            Case(x: [3, 17, 2, 2], w: [33, 17, 2, 2], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], bias: false),
        ]
        for (i, t) in cases.enumerated() {
            let x = sinData(t.x, 0.37, Double(i)), w = sinData(t.w, 0.91, 0.3), b = t.bias ? sinData([t.w[0]], 1.3) : nil
            let y = try runTestOp("Conv", ["strides": .ints(t.strides), "pads": .ints(t.pads), "dilations": .ints(t.dilations)],
                                  [x, w, b])
            XCTAssertLessThanOrEqual(y.count / y.shape[0] / y.shape[1], 4, "case \(i) has few output positions")
            try assertClose(y, try naiveConv2D(x, w, b, strides: t.strides, pads: t.pads, dilations: t.dilations), tol: 1e-5)
        }
    }

    /// Grouped convolutions whose groups are each too small to split over threads but worth it
    /// together (ShuffleNet's 4-group 1x1 convolutions) split the groups over the threads: the same
    /// bits on 1, 2 and 3 threads, and each group against a Double reference.
    func testSmallGroupsSplitOverThreads() throws {
        struct Case { let x: [Int], w: [Int], group: Int, pads: [Int] }
        let cases = [
            Case(x: [1, 64, 56, 56], w: [64, 16, 1, 1], group: 4, pads: [0, 0, 0, 0]),   // 0.8 M MACs per group
            Case(x: [1, 48, 28, 28], w: [48, 16, 3, 3], group: 3, pads: [1, 1, 1, 1]),   // 1.8 M per group, im2col
        ]
        for (i, t) in cases.enumerated() {
            let x = sinData(t.x, 0.37, Double(i)), w = sinData(t.w, 0.91, 0.3), b = sinData([t.w[0]], 1.3)
            let attrs: [String: Attribute] = ["group": .int(t.group), "pads": .ints(t.pads)]
            let y1 = try runTestOp("Conv", attrs, [x, w, b], threads: 1)
            for threads in [2, 3] {
                let y = try runTestOp("Conv", attrs, [x, w, b], threads: threads)
                XCTAssertEqual(try y.scalars(as: Float.self), try y1.scalars(as: Float.self), "case \(i), \(threads) threads")
            }
            // Reference: each group as its own convolution, outputs in group order (batch 1).
            let cg = t.x[1] / t.group, mg = t.w[0] / t.group, plane = t.x[2] * t.x[3], wSize = t.w[1] * t.w[2] * t.w[3]
            let xs = try x.scalars(as: Float.self), ws = try w.scalars(as: Float.self), bs = try b.scalars(as: Float.self)
            var expected: [Double] = []
            for g in 0..<t.group {
                let xg = Tensor(validShape: [1, cg, t.x[2], t.x[3]], scalars: Array(xs[(g * cg * plane)..<((g + 1) * cg * plane)]))
                let wg = Tensor(validShape: [mg] + t.w.dropFirst(), scalars: Array(ws[(g * mg * wSize)..<((g + 1) * mg * wSize)]))
                let bg = Tensor(validShape: [mg], scalars: Array(bs[(g * mg)..<((g + 1) * mg)]))
                expected += try naiveConv2D(xg, wg, bg, strides: [1, 1], pads: t.pads, dilations: [1, 1])
            }
            try assertClose(y1, expected, tol: 1e-5)
        }
    }

    /// 3x3 stride-1 convolutions on either side of the Winograd choice: few output channels on a
    /// small map (under 32 tiles) go through im2col (its gathered panels span several output rows)
    /// and one GEMM, larger ones through Winograd; both against a Double reference, on 1 and 2 threads.
    func testSmallMap3x3EitherSideOfTheWinogradChoice() throws {
        for (i, (c, m, h, w)) in [(96, 24, 8, 10), (40, 24, 4, 5), (33, 17, 7, 9), (24, 24, 16, 20), (20, 64, 5, 5)].enumerated() {
            let x = sinData([1, c, h, w], 0.37, Double(i)), wt = sinData([m, c, 3, 3], 0.91, 0.3), b = sinData([m], 1.3)
            let want = try naiveConv2D(x, wt, b, strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1])
            for threads in [1, 2] {
                // constant weights, as in a model: the session prepares the path's weights at plan time
                let g = graph("g", [node("Conv", ["x", "w", "b"], ["y"], ["pads": .ints([1, 1, 1, 1])])],
                              inputs: [vi("x", .float32, [1, .known(c), .known(h), .known(w)])], outputs: [vi("y", .float32)],
                              initializers: ["w": wt, "b": b])
                let model = Model(irVersion: 8, producerName: "", producerVersion: "", domain: "", modelVersion: 0,
                                  docString: "", opsets: ["": 17], graph: g, keepAlive: [])
                let s = try InferenceSession(model: model, options: .init(threads: threads))
                let y = try XCTUnwrap(try s.run(["x": x])["y"])
                try assertClose(y, want.map { Float($0) }, shape: [1, m, h, w], tol: 1e-4)
            }
        }
    }

    func testConv2DStridesAsymmetricPadsDilations() throws {
        let expected: [Float] = [0.2129524, 0.6172619, 0.938028, 1.131836, 0.5574428, -1.59102, -1.633204, -1.454341, -1.078641, -0.203283, 0.8271562, 0.2573705, -0.3472491, -0.9048701, -0.7129148, 0.6653676, 0.9547194, 1.114854, 1.124099, 0.4931134, 1.466011, 1.039341, 0.6024144, 0.2143666, 0.4252714, 1.952812, 2.368451, 2.593944, 2.598773, 1.628949, -0.5879056, -0.268205, 0.2182089, 0.8055024, 1.253206, 1.063012, 0.6643909, 0.3062605, 0.03709218, 0.41026, -0.4838455, -0.2203694, 0.1427034, 0.5562326, 0.8005369, 0.5582303, -0.05010707, -0.5818919, -0.9651498, -0.3226254, 2.116557, 2.185976, 2.029304, 1.667746, 0.7750857, -0.3055228, 0.02901184, 0.4293905, 0.8414239, 0.8883608, 0.3738691, 0.3881698, 0.2568477, -0.002323507, -0.5955915, -1.743895, -1.207419, -0.6006106, -0.005598254, -0.04139576, -1.642132, -2.070481, -2.311686, -2.333101, -1.383692, 0.4977733, 0.372811, 0.1043045, -0.271405, -0.7180341]
        let expectedShape = [1, 4, 4, 5]
        let y = try runTestOp("Conv", ["strides": .ints([2, 1]), "pads": .ints([1, 0, 2, 1]), "dilations": .ints([1, 2])],
                              [sinData([1, 3, 7, 6]), sinData([4, 3, 3, 2], 0.91, 0.3), sinData([4], 1.3)])
        try assertClose(y, expected, shape: expectedShape)
    }

    func testConv2DFloat64AndFloat16() throws {
        let expected: [Float] = [0.2129524, 0.6172619, 0.938028, 1.131836, 0.5574428, -1.59102, -1.633204, -1.454341, -1.078641, -0.203283, 0.8271562, 0.2573705, -0.3472491, -0.9048701, -0.7129148, 0.6653676, 0.9547194, 1.114854, 1.124099, 0.4931134, 1.466011, 1.039341, 0.6024144, 0.2143666, 0.4252714, 1.952812, 2.368451, 2.593944, 2.598773, 1.628949, -0.5879056, -0.268205, 0.2182089, 0.8055024, 1.253206, 1.063012, 0.6643909, 0.3062605, 0.03709218, 0.41026, -0.4838455, -0.2203694, 0.1427034, 0.5562326, 0.8005369, 0.5582303, -0.05010707, -0.5818919, -0.9651498, -0.3226254, 2.116557, 2.185976, 2.029304, 1.667746, 0.7750857, -0.3055228, 0.02901184, 0.4293905, 0.8414239, 0.8883608, 0.3738691, 0.3881698, 0.2568477, -0.002323507, -0.5955915, -1.743895, -1.207419, -0.6006106, -0.005598254, -0.04139576, -1.642132, -2.070481, -2.311686, -2.333101, -1.383692, 0.4977733, 0.372811, 0.1043045, -0.271405, -0.7180341]
        let expectedShape = [1, 4, 4, 5]
        let attrs: [String: Attribute] = ["strides": .ints([2, 1]), "pads": .ints([1, 0, 2, 1]), "dilations": .ints([1, 2])]
        let ins = [sinData([1, 3, 7, 6]), sinData([4, 3, 3, 2], 0.91, 0.3), sinData([4], 1.3)]
        let y64 = try runTestOp("Conv", attrs, try ins.map { try $0.converted(to: .float64) })
        XCTAssertEqual(y64.dtype, .float64)
        try assertClose(y64, expected, shape: expectedShape, tol: 1e-5)
        let y16 = try runTestOp("Conv", attrs, try ins.map { try $0.converted(to: .float16) })
        XCTAssertEqual(y16.dtype, .float16)
        try assertClose(y16, expected, shape: expectedShape, tol: 2e-2)
    }

    func testDepthwise3x3Stride1AndFusedRelu() throws {
        let expected: [Float] = [0.9401404, -0.07644904, -0.7030125, -1.234426, -1.598767, -1.746721, -1.658265, -1.345371, -0.8503869, -0.240307, 0.4022972, 0.9904525, 1.444555, 1.703143, 1.731219, 1.524983, 1.112347, 0.5491606, -0.08835235, -0.5825462, -0.5316777, -0.6900959, -0.2455243, 0.2322778, 0.6786422, 1.033156, 1.247836, 1.293628, 1.164333, 0.8774517, 0.471811, 0.002312918, -0.4674982, -0.8740357, -1.162276, -1.293209, -1.249111, -1.035952, -0.682582, -0.02296871, 0.01378012, 0.6861727, 1.038495, 1.250262, 1.292811, 1.160385, 0.870906, 0.4635541, -0.006537773, -0.4757448, -0.8805619, -1.166199, -1.293997, -1.246658, -1.03059, -0.6750364, -0.2281198, 0.2496717, 0.6936714, 1.099999, 0.5437641, 1.291934, 1.156383, 0.8643199, 0.4552756, -0.01538816, -0.4839692, -0.8870473, -1.170068, -1.294725, -1.244147, -1.02518, -0.6674595, -0.2194015, 0.2583515, 0.7011378, 1.049028, 1.254938, 1.290997, 0.9877723, 0.4631525, 0.446976, -0.02423783, -0.4921712, -0.8934914, -1.173882, -1.295393, -1.241578, -1.019722, -0.6598515, -0.2106729, 0.2670193, 0.7085717, 1.054222, 1.257189, 1.290001, 1.148217, 0.8510276, 0.4386556, -0.2336296, -0.1375356, -0.8998941, -1.177641, -1.296001, -1.238952, -1.014217, -0.6522129, -0.2019346, 0.2756747, 0.7159726, 1.059367, 1.259381, 1.288944, 1.144054, 0.844322, 0.4303149, -0.04193339, -0.5085061, -0.906255, -1.192688, -0.5837842, -1.236268, -1.008665, -0.6445441, -0.1931869, 0.2843172, 0.7233404, 1.064463, 1.261515, 1.287827, 1.139838, 0.8375772, 0.4219541, -0.05077846, -0.5166384, -0.9125738, -1.184997, -1.297036, -1.233527, -0.8124703, -0.3744984, -0.1844302, 0.2929466, 0.7306745, 1.069509, 1.26359, 1.286651, 1.135569, 0.8307935, 0.4135738, -0.05962116, -0.5247467, -0.9188502, -1.188592, -1.297463, -1.230728, -0.9974208, -0.6291169, -0.175665, 0.4800742, 1.284799, 2.040961, 2.165011, 1.996037, 1.556909, 0.9070601, 0.1344452, -0.6563663, -1.358342, -1.876472, -2.14063, -2.115065, -1.803235, -1.247346, -0.522634, 0.2728136, 1.031337, 1.650274, 2.045854, 1.182112, 0.142722, -0.128815, 0.4635591, 1.123606, 1.761991, 2.292311, 2.642792, 2.765996, 2.645248, 2.296892, 1.768075, 1.130371, 0.4700889, -0.123404, -0.5697817, -0.808629, -0.8076191, -0.5668886, -0.1190194, 0.9074985, 1.410944, 2.038444, 2.364331, 2.50063, 2.428894, 2.158831, 1.726993, 1.191828, 0.6257684, 0.1054265, -0.2987712, -0.5321186, -0.5630331, -0.3873307, -0.02879181, 0.464057, 1.024511, 1.576715, 2.045932, 1.778739, 2.257993, 2.425639, 2.152189, 1.717864, 1.181447, 0.6155396, 0.09673499, -0.3047492, -0.5345739, -0.5616334, -0.3822655, -0.02074657, 0.4739934, 1.034994, 1.586325, 2.053369, 2.372911, 2.501704, 2.422316, 1.649828, 1.651514, 1.171055, 0.605327, 0.0880837, -0.3106682, -0.5369596, -0.5601629, -0.3771377, -0.01265562, 0.4839524, 1.045473, 1.595907, 2.060755, 2.377103, 2.502134, 2.418926, 2.138741, 1.699501, 1.160654, 0.7503005, 0.2725256, -0.3165281, -0.5392756, -0.5586216, -0.3719477, -0.00451933, 0.4939338, 1.055948, 1.605458, 2.06809, 2.381229, 2.502492, 2.415468, 2.131935, 1.690268, 1.150243, 0.5849521, 0.07090349, -0.3223285, 0.09024121, -0.3304983, -0.3666956, 0.003661914, 0.5039369, 1.06642, 1.61498, 2.075374, 2.385289, 2.502779, 2.411943, 2.125075, 1.681001, 1.139824, 0.5747909, 0.06237537, -0.3280692, -0.5436982, -0.555327, -0.3613818, 0.4108342, 0.5195807, 1.076886, 1.624472, 2.082607, 2.389283, 2.502995, 2.40835, 2.118161, 1.671701, 1.129397, 0.5646476, 0.0538891, -0.33375, -0.5458045, -0.5535738, -0.3560065, 0.02015775, 0.5240068, 1.087347, 1.352084, 1.868204, 2.393211, 2.503138, 2.404691, 2.111193, 1.662367, 1.118962, 0.5545229, 0.04544507, -0.3393705, -0.5478407, -0.5517502, -0.3505699, 0.02847158, 0.5340726, 1.097802, 1.643363, 2.096915, 2.397073, 1.857056, 1.5505, 0.4784433, 0.03129688, -0.2896724, -0.4410227, -0.4022696, -0.1786582, 0.1995469, 0.6811573, 1.200989, 1.688686, 2.07824, 2.316928, 2.372443, 2.237272, 1.92971, 1.491383, 0.9816186, 0.4694094, -0.3040414, 1.181173, 2.16979, 2.658615, 2.857381, 2.739183, 2.320021, 1.656626, 0.8387847, -0.02281142, -0.8115494, -1.420677, -1.767753, -1.8058, -1.52967, -0.9767361, -0.2218346, 0.6328618, 1.471674, 2.181073, 1.872175, 1.132075, 0.686324, 0.3760642, 0.0846766, -0.1484009, -0.2916224, -0.3256035, -0.2457449, -0.06285526, 0.1983123, 0.5024098, 0.8082793, 1.074523, 1.265105, 1.354232, 1.329841, 1.195233, 0.9686261, 0.6806911, -0.07377434, 0.6860495, -0.1519312, -0.2932733, -0.3251516, -0.2432515, -0.0586577, 0.2036458, 0.5081575, 0.8136632, 1.078814, 1.267723, 1.354823, 1.328324, 1.191813, 0.9637673, 0.6750504, 0.3647394, 0.0748333, -0.1554305, -0.2169422, 0.04851494, -0.2407228, -0.05443348, 0.2089939, 0.5139056, 0.8190333, 1.083079, 1.270306, 1.355374, 1.326769, 1.188363, 0.9588877, 0.6694024, 0.3590874, 0.06994223, -0.1588986, -0.2964625, -0.3241309, -0.2381591, 0.4623547, -0.0646381, 0.5196537, 0.8243893, 1.087318, 1.272855, 1.355887, 1.325177, 1.184881, 0.9539875, 0.6637472, 0.3534426, 0.06507186, -0.1623354, -0.2980005, -0.3235621, -0.2355603, -0.04590583, 0.2197324, 0.5254017, 1.20133, 0.4736506, 1.275368, 1.35636, 1.323546, 1.181368, 0.9490669, 0.6580851, 0.3478053, 0.0602224, -0.1657407, -0.2995008, -0.3229542, -0.2329266, -0.04160281, 0.2251225, 0.5311491, 0.835058, 1.095716, 1.277845, 1.170185, 1.058934, 1.177824, 0.9441262, 0.6524164, 0.3421759, 0.05539409, -0.1691143, -0.3009632, -0.3223075, -0.2302582, -0.0372739, 0.230526, 0.5368959, 0.8403702, 1.099875, 1.280288, 1.35719, 1.320174, 1.174249, 0.4038919, 1.033994, 0.3365545, 0.05058714, -0.1724562, -0.3023877, -0.3216218, -0.2275552, -0.03291933, 0.2359427, 0.5426417, 0.8456673, 1.104007, 1.282694, 1.357546, 1.318431, 1.170644, 0.9341853, 0.6410602, 0.3309413, -0.2370743, -1.121139, -1.583138, -1.010468, -0.2312656, 0.6490084, 1.511213, 2.238652, 2.732871, 2.92698, 2.794706, 2.353953, 1.664373, 0.8192997, -0.0668916, -0.8742588, -1.493528, -1.840885, -1.869316, -1.574973, -0.5772294, 0.4183742, -0.1823689, -0.6641562, -1.149139, -1.571677, -1.874582, -2.016857, -1.979246, -1.766839, -1.408384, -0.9523978, -0.4605944, 0.000462251, 0.3683705, 0.5933355, 0.6449095, 0.5161121, 0.2243754, -0.1908154, -1.358234, -1.70197, -2.29887, -2.128567, -1.763259, -1.252389, -0.6650986, -0.08087665, 0.4212057, 0.7731938, 0.9274479, 0.8630904, 0.5888317, 0.1417914, -0.4175255, -1.013418, -1.565236, -1.998291, -2.253974, -2.297678, -1.808671, -1.361255, -1.242028, -0.6540606, -0.07065505, 0.4292274, 0.77793, 0.9282575, 0.8598638, 0.5820056, 0.1322898, -0.4284168, -1.024225, -1.574495, -2.004751, -2.256759, -2.296411, -2.11834, -1.746648, -1.231642, -0.6345245, -0.2642752, 0.4371972, 0.7825981, 0.928992, 0.8565653, 0.5751206, 0.12275, -0.43932, -1.035016, -1.583714, -2.011149, -2.25947, -2.295069, -2.113127, -1.738269, -1.22123, -0.6319897, -0.05029829, 0.4451148, 0.4798368, 0.3571642, 0.8531951, 0.5681769, 0.1131727, -0.4502349, -1.045791, -1.59289, -2.017485, -2.262109, -2.293653, -2.107847, -1.729841, -1.210794, -0.6209579, -0.04016407, 0.4529798, 0.7917291, 0.9302357, 0.8497533, 0.2830905, -0.1947543, -0.4611607, -1.056549, -1.602025, -2.02376, -2.264675, -2.292162, -2.102502, -1.721364, -1.200333, -0.6099292, -0.03005994, 0.4607919, 0.7961917, 0.9307449, 0.8462401, 0.5541148, 0.09390675, -0.4720971, -1.003836, -1.300278, -2.029973, -2.267167, -2.290597, -2.097091, -1.712839, -1.189849, -0.5989041, -0.01998634, 0.4685506, 0.8005854, 0.9311789, 0.8426557, 0.5469971, 0.08421912, -0.4830435, -1.078014, -1.620167, -2.036123, -1.935846, -1.718009, -2.091614, -1.704267, -1.179341, -0.5878831, -0.009943762, 0.4762555, 0.80491, 0.9315377, 0.8390002, 0.5398221, 0.07449564, -0.4939994, -1.08872, -1.629173, -2.042211, -2.271932, -2.287243, -2.086072, -1.46638, -1.050699, 0.06406891, 0.5199775, 0.8124236, 0.9018261, 0.7760848, 0.452218, -0.0259402, -0.5936735, -1.174142, -1.688781, -2.067938, -2.260295, -2.239818, -2.009278, -1.599877, -1.067026, -0.4828447, 0.07360186, 0.084149]
        let expectedShape = [1, 4, 9, 20]
        let ins = [sinData([1, 4, 9, 20]), sinData([4, 1, 3, 3], 0.91, 0.3), sinData([4], 1.3)]
        for threads in [1, 2] {
            let y = try runTestOp("Conv", ["pads": .ints([1, 1, 1, 1]), "group": .int(4)], ins, threads: threads)
            try assertClose(y, expected, shape: expectedShape)
        }
        let f = try runTestOp("FusedConv", domain: "com.swiftonnx",
                              ["pads": .ints([1, 1, 1, 1]), "group": .int(4), "activation": .string("Relu")], ins)
        try assertClose(f, expected.map { max($0, 0) }, shape: expectedShape)
    }

    func testDepthwiseStride2WithMultiplier() throws {
        let expected: [Float] = [-1.587448, -2.083494, -1.7142, -0.4482717, 1.052131, 0.2855141, -3.161183, -1.639187, 0.4539729, 2.309677, 2.957274, 1.415319, 2.170171, 2.830662, 2.681134, 1.129205, -1.013369, -0.5465359, 1.936623, 0.04193201, -1.966854, -2.946852, -2.385461, -1.106925, -2.312658, -3.093288, -2.37921, -0.4206547, 1.757929, 1.372065, -0.3757969, -1.866325, -2.212612, -1.401564, 0.1425905, 2.036839, 0.41916, -0.769118, 0.4951843, 1.500474, 1.720922, 1.909395, 0.5295635, 1.729647, 1.474876, 0.448652, -0.812245, -2.56285, -0.7179764, -0.2068684, -1.327411, -1.753635, -1.262597, -0.463258, 0.493194, -0.7357033, -1.021923, -0.7736124, -0.1206541, 1.699971, -1.228985, 0.6500161, 2.788467, 3.468375, 2.334104, 0.535542, 2.945956, 4.108147, 3.165069, 0.5664611, -2.328442, -2.640637, 0.7751927, -0.9721919, -3.412525, -4.067894, -2.595498, -0.7919137, -3.383373, -3.559569, -1.239486, 1.728926, 3.793001, 3.087489, -0.5051409, 1.187053, 3.189613, 3.523804, 2.014824, 0.05927353, 0.6141647, -0.6160923, -0.4726713, -0.08201342, 0.3515426, 0.2541959, -1.552274, -0.9568791, -0.8498064, -0.2982315, 0.4093372, -1.026703, -1.285494, 0.06625079, 0.7083207, 0.9798943, 0.7389216, 0.6705339, 2.277638, 0.9194958, 0.4501229, -0.2546926, -0.8262879, 0.648341, 0.5095867, -1.051373, -1.636627, -1.365823, -0.3806066, -0.03941546, 2.077452, 2.869277, 0.8702538, -1.583966, -3.209673, -2.939947, -0.4950814, -1.624166, -3.272812, -3.209572, -1.467524, 0.4204362, -1.703195, -2.491818, -0.2044822, 2.189811, 3.438695, 3.290413, 1.456142, 3.030222, 3.388195, 1.97393, -0.4728257, -2.277115, 0.960497, 2.032535, 0.3695548, -1.486726, -2.565355, -2.561969, -2.795201, -1.61892, 0.0006404487, 1.619866, 2.3918, 0.7315413, -0.5020768, 1.345063, 2.995187, 3.078639, 1.55177, 0.5645564, 3.491469, 2.468809, 0.3882179, -1.895435, -3.187656, -1.72695, -1.468052, -2.738136, -3.214246, -2.009104, 0.2469261, 0.4099084, -2.927353, -1.953312, 0.3389135, 2.453866, 3.285292, 1.671583]
        let expectedShape = [1, 6, 5, 6]
        let y = try runTestOp("Conv", ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2]), "group": .int(3)],
                              [sinData([1, 3, 9, 11]), sinData([6, 1, 3, 3], 0.91, 0.3)])
        try assertClose(y, expected, shape: expectedShape)
    }

    func testConv1DAutoPadSameLower() throws {
        let expected: [Float] = [-0.0660254, 1.708898, 3.681792, 3.728878, 1.707574, -0.8859219, -1.290682, 0.506943, 2.039405, 1.998619, -0.8960501, -3.110527, -3.131273, -1.514166, 0.4628466, 0.3535295, 2.909508, 3.974637, 2.960781, 0.1997536, -1.551679, -0.4033654, 1.379995, 2.441531, 1.139067, -2.03859, -3.347547, -2.476018, -0.3093761, 1.037228]
        let expectedShape = [2, 3, 5]
        let y = try runTestOp("Conv", ["strides": .ints([2]), "auto_pad": .string("SAME_LOWER")],
                              [sinData([2, 2, 9]), sinData([3, 2, 4], 0.91, 0.3)])
        try assertClose(y, expected, shape: expectedShape)
    }

    func testConv3DGroup2() throws {
        let expected: [Float] = [-1.47151, -2.326067, -1.67077, 0.07250101, -0.6644684, 1.027382, 2.45954, 1.593963, 1.964848, 4.176414, 4.228759, 1.296908, 2.411853, 2.6868, 1.301193, -0.4405931, -0.6832762, -2.649534, -3.062844, -1.475985, -1.969255, -5.534319, -5.683456, -2.009577, -3.695203, -3.345796, -0.07255021, 2.044716, 1.165799, 6.059052, 8.087525, 4.289415, 4.731974, 8.734251, 7.264972, 1.769959, 0.9845585, -1.634008, -3.607768, -3.025766, 0.1641904, -3.143124, -4.65887, -2.818168, -4.844445, -8.124829, -6.120774, -1.006273, -2.282028, -0.01077171, 3.268215, 3.28988, 2.814985, 8.11525, 9.027273, 3.932039, 2.603432, 2.64333, 0.5202466, -1.559549, 2.213257, 0.8633454, -1.240057, -2.178483, -3.504093, -8.728455, -9.023489, -3.540132, -4.557104, -6.07506, -3.230653, 0.599652, -0.5486447, 3.325764, 6.150394, 4.073416, 2.884384, 5.562241, 4.380903, 0.7081302, 1.637345, 2.436083, 1.622115, -0.06424576, -0.4897741, -2.980401, -4.157162, -2.559224, -2.212047, -4.739611, -4.066467, -1.365495, -1.47745, -1.234644, 0.5407599, 1.344858, 0.7178899, 2.690938, 2.875759, 1.292529, 1.323794, 1.150979, 0.1995253, -0.8409574, -0.6115533, -2.8221, -3.653822, -1.515428, -2.47559, -3.788047, -3.072382, -0.3508396, -1.590046, -0.5466981, 0.921482, 1.203418, 1.353555, 3.108227, 2.905239, 0.9199112, 2.911624, 5.34713, 4.348586, 0.5673343, 1.692991, -1.313161, -4.389237, -3.494141, -3.377108, -8.423271, -8.835242, -3.355074, -4.696331, -6.177848, -3.468148, 0.5103968, 0.6897625, 4.476112, 5.645559, 3.106211, 1.491422, 5.151485, 5.623826, 2.258154, 4.343723, 4.8816, 1.881757, -1.250383, -0.1223907, -4.441506, -6.909101, -3.989013, -4.452568, -8.831533, -8.026179, -2.297138, -1.458499, 0.6010746, 2.737681, 2.778679, -0.6952323, 2.308455, 4.008942, 2.788492, 4.762185, 8.567672, 7.185702, 1.635956, 3.195224, 1.822781, -1.432323, -2.572969, -1.920599, -6.946631, -8.459499, -3.924157, -2.857227, -3.582859, -1.577111, 1.023164, -1.351476, -1.095807, -0.02424577, 0.8323818, 1.62496, 4.503604, 4.887333, 2.27384, 2.335745, 3.707951, 2.304463, 0.1368049, 0.4522723, -1.206038, -2.837921, -2.152176, -1.281231, -2.880635, -2.468418, -0.6193341]
        let expectedShape = [1, 2, 5, 5, 4]
        let y = try runTestOp("Conv", ["pads": .ints([1, 1, 1, 1, 1, 1]), "group": .int(2)],
                              [sinData([1, 4, 4, 5, 3]), sinData([2, 2, 2, 3, 2], 0.91, 0.3)])
        try assertClose(y, expected, shape: expectedShape)
    }

    func testPointwiseAndFusedResidualClip() throws {
        let expected: [Float] = [0.2519959, -0.1035264, -0.4450368, -0.7263137, -0.9092873, -0.9691932, -0.8979233, -0.7051238, -0.416889, -0.07223025, 0.2822045, 0.5984442, 1.585945, 1.506083, 1.352792, 1.14682, 0.9160452, 0.6917006, 0.5041507, 0.3787794, 0.3325552, 0.3717343, 0.4910139, 0.6742503, 0.0622552, 0.4436012, 0.8346785, 1.182557, 1.440152, 1.5726, 1.561975, 1.409715, 1.136427, 0.7790993, 0.3860952, 0.01060557, -1.163595, -1.207041, -1.180207, -1.086722, -0.9392412, -0.7577241, -0.5667385, -0.3921334, -0.2575409, -0.1811773, -0.1733781, -0.235199, -0.2763482, -0.6436455, -1.0434, -1.421507, -1.72679, -1.917933, -1.969063, -1.873262, -1.643494, -1.310859, -0.9203771, -0.5248976, 0.4946392, 0.6568524, 0.7592792, 0.7880566, 0.7392897, 0.6195789, 0.4451265, 0.2395438, 0.0306554, -0.1532665, -0.2873291, -0.3533875, -0.05245476, 0.3011027, 0.6139072, 0.8436223, 0.9591571, 0.9448745, 0.8027075, 0.5518979, 0.2263914, -0.129756, -0.4683416, -0.7435394, 0.3763369, 0.4996635, 0.6857761, 0.9094852, 1.140513, 1.34759, 1.502691, 1.584823, 1.582869, 1.497095, 1.339108, 1.130293, 0.7578356, 0.3644002, -0.008584354, -0.3106364, -0.5008745, -0.5535509, -0.4615361, -0.2372839, 0.08885428, 0.4727371, 0.8624079, 1.205127, -0.1789042, -0.1750126, -0.2405197, -0.3665596, -0.5360732, -0.7261178, -0.9109717, -1.065616, -1.16912, -1.207475, -1.175489, -1.077493, -1.290331, -0.8981536, -0.5039872, -0.1611799, 0.08387092, 0.1979987, 0.1657569, -0.008490805, -0.3011608, -0.6726414, -1.072655, -1.447061, -0.1621776, -0.2928807, -0.3548282, -0.3396359, -0.24936, -0.09621895, 0.0990604, 0.3100479, 0.5081873, 0.6666614, 0.7640216, 0.7870904]
        let expectedShape = [2, 6, 3, 4]
        let ins = [sinData([2, 5, 3, 4]), sinData([6, 5, 1, 1], 0.91, 0.3), sinData([6], 1.3)]
        let y = try runTestOp("Conv", [:], ins)
        try assertClose(y, expected, shape: expectedShape)
        let z = sinData(expectedShape, 0.13, 1.0)
        let zs = try z.scalars(as: Float.self)
        let f = try runTestOp("FusedConv", domain: "com.swiftonnx",
                              ["activation": .string("Clip"), "activation_params": .floats([-0.5, 0.75])], ins + [z])
        try assertClose(f, zip(expected, zs).map { min(max($0 + $1, -0.5), 0.75) }, shape: expectedShape)
        let h = try runTestOp("FusedConv", domain: "com.swiftonnx", ["activation": .string("HardSwish")], ins)
        try assertClose(h, expected.map { $0 * min(max($0 / 6 + 0.5, 0), 1) }, shape: expectedShape)
        let s = try runTestOp("FusedConv", domain: "com.swiftonnx", ["activation": .string("Sigmoid")], ins)
        try assertClose(s, expected.map { 1 / (1 + exp(-$0)) }, shape: expectedShape)
    }

    func testConvTransposeStridesOutputPaddingPads() throws {
        let expected: [Float] = [-0.6013569, 0.2248822, 0.2962628, -0.02662616, 0.06619238, -0.2745308, -0.1728369, -0.4852789, -0.2775637, 1.238689, 0.8861111, 0.8311573, 1.214097, 1.100828, 1.377761, 1.221506, 1.354951, 1.540188, -0.1109097, -0.6303468, -0.551532, -0.6901003, -0.6399433, -0.6564519, -0.6417412, -0.5339558, -1.137927, -0.3633287, 1.148755, 0.97293, 0.7870799, 0.6373194, 0.3188777, 0.2154506, -0.1924831, 1.068997, 0.5812442, -0.3391913, -0.3962794, -0.09851886, -0.1822418, 0.1554876, 0.05646144, 0.3884496, 0.07120841, -0.8853525, -0.08916409, -0.01213285, -0.2450587, -0.09683504, -0.3677858, -0.1684311, -0.4407348, -0.2399563, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.872094, 1.773542, 1.635549, 1.647708, 1.401738, 1.429277, 1.108622, 1.147813, 1.431662, 0.705639, -0.1594998, 0.2500757, 0.2798261, 0.7342397, 0.811692, 1.249441, 1.364112, -0.03416175, 0.327768, 0.8414112, 0.5058172, 0.5515413, 0.2777158, 0.317436, 0.14244, 0.1707803, 1.142131, 2.723669, 1.862319, 2.099271, 2.238883, 2.31888, 2.442838, 2.355053, 2.446579, 1.625789, -0.060274, 0.1314234, 0.2085592, 0.204692, 0.4010054, 0.3806696, 0.6695904, 0.6355384, 0.5278375, 1.798631, 1.98621, 1.92893, 1.806833, 1.634963, 1.513323, 1.250125, 1.145405, 1.393597, 0.9635582, 0.9635582, 0.9635582, 0.9635582, 0.9635582, 0.9635582, 0.9635582, 0.9635582, 0.9635582, 0.5177138, -0.2435342, -0.2239134, 0.09095716, 0.1603462, 0.4829086, 0.5926744, 0.8792713, 0.4843688, -0.5530996, 0.3700038, 0.1548582, -0.2477006, -0.4340994, -0.7621092, -0.8945331, -1.103599, -0.3667285, 1.04569, 1.226399, 1.368896, 1.477311, 1.607731, 1.598046, 1.698738, 1.572264, 1.535666, -0.2818953, -1.225952, -1.206388, -1.112606, -1.015601, -0.7789045, -0.6175861, -0.2700108, -0.9902119, 0.6094351, 1.403454, 1.409674, 1.114463, 1.068725, 0.7444063, 0.6529003, 0.3433681, 0.731634, 0.8501553, -0.06973377, -0.1089912, 0.204453, 0.1695708, 0.5207386, 0.4949529, 0.8363155, 0.4718638, 0.5155014, 0.5155014, 0.5155014, 0.5155014, 0.5155014, 0.5155014, 0.5155014, 0.5155014, 0.5155014]
        let expectedShape = [1, 3, 7, 9]
        let y = try runTestOp("ConvTranspose", ["strides": .ints([2, 2]), "output_padding": .ints([1, 1]), "pads": .ints([1, 0, 0, 1])],
                              [sinData([1, 2, 3, 4]), sinData([2, 3, 3, 3], 0.91, 0.3), sinData([3], 1.3)])
        try assertClose(y, expected, shape: expectedShape)
    }

    func testConvTransposeGroupDilations() throws {
        // Reference: onnx.reference per group (its grouped path is broken), concatenated.
        let expected: [Float] = [0.134149, 0, 0.6718815, 0, 1.6359, 0, 1.423972, 0.9545353, 0, 2.799195, 0, 2.841025, 0, 1.783594, 0.8083215, 0, 2.320017, 0, 1.706257, 0, -0.06473579, 1.245198, 0, 1.083105, 0, 1.001373, 0, -0.229694, 1.013803, 0, 0.4607204, 0, 0.0749752, 0, 0.02268217, 0.8764076, 0, 1.960904, 0, 2.692531, 0, 1.130817, 1.92892, 0, 3.012821, 0, 2.558134, 0, 0.9181912, 0.6038425, 0, -0.442827, 0, -2.151882, 0, -1.957988, -0.4289464, 0, -2.130485, 0, -1.899933, 0, -1.265944, -0.1462893, 0, -0.733395, 0, 0.04470492, 0, 0.5179064]
        let expectedShape = [1, 2, 5, 7]
        let y = try runTestOp("ConvTranspose", ["group": .int(2), "dilations": .ints([2, 2]), "strides": .ints([1, 2])],
                              [sinData([1, 4, 3, 3]), sinData([4, 1, 2, 2], 0.91, 0.3)])
        try assertClose(y, expected, shape: expectedShape)
    }

    /// ConvTranspose splits output channels (or, with fewer channels than threads and non-overlapping
    /// taps, input pixels) over threads: the same bits with 1, 2 and 3 threads (overlapping 3x3 taps at
    /// stride 2, groups, bias, an odd channel count per group, one or two output channels, output padding).
    func testConvTransposeThreadsGiveTheSameBits() throws {
        let cases: [([String: Attribute], [Int], [Int])] = [
            (["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])], [1, 24, 40, 48], [24, 7, 3, 3]),
            (["strides": .ints([2, 2]), "group": .int(2)], [2, 16, 32, 40], [16, 5, 2, 2]),
            // Fewer output channels than threads, kernel within the stride: the threads split input pixels.
            (["strides": .ints([2, 2])], [1, 32, 96, 100], [32, 1, 2, 2]),
            (["strides": .ints([3, 3]), "pads": .ints([1, 0, 1, 0]), "output_padding": .ints([1, 2])],
             [2, 16, 64, 70], [16, 2, 3, 3]),
        ]
        for (attrs, xs, ws) in cases {
            let outC = ws[1] * ((attrs["group"].flatMap { if case .int(let g) = $0 { return g } else { return nil } }) ?? 1)
            let ins = [sinTensor(xs, 0.37, 1), sinTensor(ws, 0.91, 0.3), sinTensor([outC], 1.3, 1)]
            let one = try runOp("ConvTranspose", ins, attrs)[0]
            for t in [2, 3] {
                let many = try runOp("ConvTranspose", ins, attrs, threads: t)[0]
                XCTAssertEqual(many.shape, one.shape)
                let a = try one.scalars(as: Float.self), b = try many.scalars(as: Float.self)
                XCTAssertEqual(zip(a, b).filter { $0.0.bitPattern != $0.1.bitPattern }.count, 0, "\(xs) \(ws) threads \(t)")
            }
        }
    }

    func testConvErrors() throws {
        // Channel mismatch.
        XCTAssertThrowsError(try runTestOp("Conv", [:], [sinData([1, 3, 5, 5]), sinData([2, 2, 3, 3])]))
        // Kernel larger than the padded input.
        XCTAssertThrowsError(try runTestOp("Conv", [:], [sinData([1, 1, 2, 2]), sinData([1, 1, 3, 3])]))
        // Bias of the wrong size.
        XCTAssertThrowsError(try runTestOp("Conv", [:], [sinData([1, 1, 5, 5]), sinData([2, 1, 3, 3]), sinData([3])]))
        // Bad attribute value.
        XCTAssertThrowsError(try runTestOp("Conv", ["auto_pad": .string("BOGUS")], [sinData([1, 1, 5, 5]), sinData([1, 1, 3, 3])]))
        XCTAssertThrowsError(try runTestOp("FusedConv", domain: "com.swiftonnx", ["activation": .string("Gelu2")],
                                           [sinData([1, 1, 5, 5]), sinData([1, 1, 3, 3])]))
        // Integer inputs are not a Conv type.
        let xi = try Tensor(shape: [1, 1, 3, 3], scalars: [Int32](repeating: 1, count: 9))
        XCTAssertThrowsError(try runTestOp("Conv", [:], [xi, xi]))
    }
}

/// A static model's session keeps one form of its conv weights: once every op reading a weight
/// has packed its own copy, the plan frees the stored values (the graph and the plan hold a
/// stand-in with the shape). Weights some run path still reads (depthwise, GEMV heads, another
/// op) stay. Results are checked against a session that keeps everything (optimize off plans the
/// same convs without releasing nothing it needs) and against the unoptimized path.
final class ConvWeightReleaseTests: XCTestCase {
    private func model() -> Model {
        var rng = SplitMix64(seed: 21)
        func t(_ shape: [Int]) -> Tensor {
            Tensor(validShape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.uniform(-0.5, 0.5) })
        }
        let g = Graph(name: "g", nodes: [
            // 3x3 stride 1, 16 -> 16: Winograd (released)
            Node(name: "wino", opType: "Conv", domain: "", inputs: ["X", "w3"], outputs: ["A"], attributes: ["pads": .ints([1, 1, 1, 1])]),
            // 1x1 stride 2: packed GEMM (released)
            Node(name: "pw", opType: "Conv", domain: "", inputs: ["A", "w1", "b1"], outputs: ["B"], attributes: ["strides": .ints([2, 2])]),
            // depthwise 3x3: reads its stored weights at run time (kept)
            Node(name: "dw", opType: "Conv", domain: "", inputs: ["B", "wd"], outputs: ["C"],
                 attributes: ["group": .int(8), "pads": .ints([1, 1, 1, 1])]),
            // a 4x4 kernel on the 4x4 map: one output position, the GEMV path (kept)
            Node(name: "head", opType: "Conv", domain: "", inputs: ["C", "wh"], outputs: ["D"], attributes: [:]),
            // weights read by a conv and by an Add: kept
            Node(name: "shared", opType: "Conv", domain: "", inputs: ["A", "ws"], outputs: ["E"], attributes: [:]),
            Node(name: "add", opType: "Add", domain: "", inputs: ["E", "ws_bias"], outputs: ["F"], attributes: [:]),
            Node(name: "mean", opType: "ReduceMean", domain: "", inputs: ["X"], outputs: ["S"], attributes: ["keepdims": .int(1)]),
            Node(name: "reads_ws", opType: "Mul", domain: "", inputs: ["ws", "S"], outputs: ["G"], attributes: [:]),
        ], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(1), .known(16), .known(8), .known(8)])],
           outputs: ["D", "F", "G"].map { ValueInfo(name: $0, type: .float32, shape: nil) },
           initializers: ["w3": t([16, 16, 3, 3]), "w1": t([8, 16, 1, 1]), "b1": t([8]), "wd": t([8, 1, 3, 3]),
                          "wh": t([5, 8, 4, 4]), "ws": t([4, 16, 1, 1]), "ws_bias": t([1, 4, 1, 1])],
           valueInfo: [:])
        return Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                     opsets: ["": 13], graph: g, keepAlive: [])
    }

    func testPackedWeightsReleaseTheStoredOnesAndResultsStayTheSame() throws {
        let m = model()
        let session = try InferenceSession(model: m, options: .init(optimize: true))
        let released = Set(m.graph.initializers.filter { $0.value.isStandIn }.keys)
        XCTAssertEqual(released, ["w3", "w1"], "only the weights every reader packed are freed")
        XCTAssertEqual(m.graph.initializers["w3"]?.shape, [16, 16, 3, 3], "the stand-in keeps the shape")
        let plain = try InferenceSession(model: model(), options: .init(optimize: false))
        var rng = SplitMix64(seed: 5)
        let x = try Tensor(shape: [1, 16, 8, 8], scalars: (0..<1024).map { _ in rng.uniform(-1, 1) })
        for _ in 0..<2 {
            let a = try session.run(["X": x]), b = try plain.run(["X": x])
            for name in ["D", "F", "G"] { try assertClose(try XCTUnwrap(a[name]), try XCTUnwrap(b[name]), rtol: 1e-4, atol: 1e-5) }
        }
        // A graph whose weights were released cannot be planned again.
        XCTAssertThrowsError(try InferenceSession(model: m, options: .init(optimize: true)))
    }

    /// Weights inside subgraphs (an If branch, planned when its node is built) are kept: only the
    /// main graph's are freed. Both branches give the expected values on repeated runs.
    func testSubgraphWeightsAreKept() throws {
        let w = try Tensor(shape: [16, 16, 1, 1], scalars: (0..<256).map { Float($0 % 16 == $0 / 16 ? 2 : 0) })
        let thenG = graph("then", [node("Conv", ["x", "w"], ["ty"])], outputs: [vi("ty")], initializers: ["w": w])
        let elseG = graph("else", [node("Neg", ["x"], ["ey"])], outputs: [vi("ey")])
        let g = graph("main", [node("If", ["c"], ["y"], ["then_branch": .graph(thenG), "else_branch": .graph(elseG)])],
                      inputs: [vi("x", .float32, [1, 16, 4, 4]), vi("c", .bool, [])], outputs: [vi("y", .float32)])
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": 13], graph: g, keepAlive: [])
        let session = try InferenceSession(model: m, options: .init(optimize: true))
        let x = try Tensor(shape: [1, 16, 4, 4], scalars: (0..<256).map { Float($0 % 9) - 4 })
        let xs = try x.scalars(as: Float.self)
        for _ in 0..<3 {
            for c in [true, false] {
                let y = try XCTUnwrap(try session.run(["x": x, "c": Tensor(shape: [], scalars: [c])])["y"])
                XCTAssertEqual(try y.scalars(as: Float.self), xs.map { c ? 2 * $0 : -$0 })
            }
        }
        func standIns(_ g: Graph) -> Int {
            var n = g.initializers.values.filter(\.isStandIn).count
            for node in g.nodes { node.forEachSubgraph { n += standIns($0) } }
            return n
        }
        XCTAssertEqual(standIns(m.graph), 0)
    }

    /// A model with a symbolic input size keeps its weights: plans for new shapes pack them again.
    func testSymbolicInputKeepsTheWeights() throws {
        let w = try Tensor(shape: [4, 16, 1, 1], scalars: (0..<64).map { Float($0) / 64 })
        let g = Graph(name: "g", nodes: [
            Node(name: "pw", opType: "Conv", domain: "", inputs: ["X", "w"], outputs: ["Y"], attributes: [:]),
        ], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(1), .known(16), .symbolic("h"), .known(3)])],
           outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: ["w": w], valueInfo: [:])
        let m = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                      opsets: ["": 13], graph: g, keepAlive: [])
        let session = try InferenceSession(model: m, options: .init(optimize: true))
        XCTAssertFalse(try XCTUnwrap(m.graph.initializers["w"]).isStandIn)
        for h in [2, 5, 5, 5] {
            let x = try Tensor(shape: [1, 16, h, 3], scalars: (0..<(48 * h)).map { Float($0 % 7) - 3 })
            let y = try XCTUnwrap(try session.run(["X": x])["Y"])
            XCTAssertEqual(y.shape, [1, 4, h, 3])
            let xs: [Float] = try x.scalars(as: Float.self), ys: [Float] = try y.scalars(as: Float.self)
            for o in 0..<4 {
                for p in 0..<(h * 3) {
                    var ref = 0.0
                    for c in 0..<16 {
                        let wv = Double(Float(o * 16 + c) / 64)
                        ref += wv * Double(xs[c * h * 3 + p])
                    }
                    XCTAssertEqual(Double(ys[o * h * 3 + p]), ref, accuracy: 1e-4)
                }
            }
        }
    }
}
