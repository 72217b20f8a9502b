import XCTest
@testable import SwiftONNX

/// Shape-family ops run through the registry. Expected values come from numpy
/// (np.transpose, slicing, np.pad, reshape/transpose formulas of the ONNX spec); data movement
/// is exact, so comparisons are exact (tolerance 0).
final class ShapeOpsTests: XCTestCase {

    private func run(_ op: String, _ inputs: [Tensor?], attrs: [String: Attribute] = [:], opset: Int = 21,
                     outputs: Int = 1) throws -> [Tensor] {
        let node = Node(name: "n", opType: op, domain: "", inputs: inputs.enumerated().map { $0.element == nil ? "" : "i\($0.offset)" },
                        outputs: (0..<outputs).map { "o\($0)" }, attributes: attrs)
        guard let b = OpRegistry.standard.builder(domain: "", op: op) else { throw OpError("no op \(op)") }
        let ctx = OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("no subgraphs") })
        return try b(ctx).run(inputs, RunEnv(threads: 1))
    }

    private func f(_ shape: [Int], _ v: [Float]? = nil) -> Tensor {
        Tensor(validShape: shape, scalars: v ?? (0..<shape.reduce(1, *)).map(Float.init))
    }
    private func i64(_ v: [Int], shape: [Int]? = nil) -> Tensor {
        Tensor(validShape: shape ?? [v.count], scalars: v.map(Int64.init))
    }

    func testReshapeSharesStorageAndInfers() throws {
        let x = f([2, 3, 4])
        let y = try run("Reshape", [x, i64([0, -1])])[0]
        XCTAssertEqual(y.shape, [2, 12])
        XCTAssertEqual(y.raw, x.raw, "Reshape must not copy")
        XCTAssertThrowsError(try run("Reshape", [x, i64([5, -1])]))
        XCTAssertThrowsError(try run("Reshape", [x, i64([-1, -1])]))
        let z = try run("Reshape", [f([0, 3]), i64([3, 0])], attrs: ["allowzero": .int(1)])[0]
        XCTAssertEqual(z.shape, [3, 0])
        let legacy = try run("Reshape", [x], attrs: ["shape": .ints([4, 6])], opset: 4)[0]
        XCTAssertEqual(legacy.shape, [4, 6])
    }

    func testSqueezeUnsqueezeFlattenShape() throws {
        let x = f([1, 3, 1, 2])
        XCTAssertEqual(try run("Squeeze", [x])[0].shape, [3, 2])
        XCTAssertEqual(try run("Squeeze", [x, i64([-2])])[0].shape, [1, 3, 2])
        XCTAssertEqual(try run("Squeeze", [x], attrs: ["axes": .ints([0])], opset: 11)[0].shape, [3, 1, 2])
        XCTAssertThrowsError(try run("Squeeze", [x, i64([1])]))
        XCTAssertEqual(try run("Unsqueeze", [f([3, 2]), i64([0, 3])])[0].shape, [1, 3, 2, 1])
        XCTAssertThrowsError(try run("Unsqueeze", [f([3, 2]), i64([0, 0])]))
        XCTAssertEqual(try run("Flatten", [x], attrs: ["axis": .int(2)])[0].shape, [3, 2])
        let s = try run("Shape", [x], attrs: ["start": .int(1), "end": .int(-1)])[0]
        XCTAssertEqual(try s.scalars(as: Int64.self), [3, 1])
        XCTAssertEqual(try run("Size", [x])[0].scalars(as: Int64.self), [6])
    }

    func testTransposeSmallAndBlocked() throws {
        let x = f([2, 3, 4])
        let y = try run("Transpose", [x], attrs: ["perm": .ints([1, 2, 0])])[0]
        XCTAssertEqual(y.shape, [3, 4, 2])
        XCTAssertEqual(try y.scalars(as: Float.self),
                       [0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23])
        // Blocked path (NCHW -> NHWC) against a naive loop.
        let (c, h, w) = (37, 5, 41)
        let big = f([1, c, h, w])
        let t = try run("Transpose", [big], attrs: ["perm": .ints([0, 2, 3, 1])])[0]
        let got = try t.scalars(as: Float.self)
        var want = [Float](repeating: 0, count: c * h * w)
        for ci in 0..<c { for hi in 0..<h { for wi in 0..<w { want[(hi * w + wi) * c + ci] = Float((ci * h + hi) * w + wi) } } }
        XCTAssertEqual(got, want)
        // And back (NHWC -> NCHW: the other loop order of the blocked transpose).
        let back = try run("Transpose", [t], attrs: ["perm": .ints([0, 3, 1, 2])])[0]
        XCTAssertEqual(try back.scalars(as: Float.self), try big.scalars(as: Float.self))
        // Few channels last to first (an NHWC image to NCHW: the one-pass path), batch 2, 1 to 9 channels;
        // 21 and 65 positions (vectors of 16 and the rest).
        for ch in 1...9 { for (hh, ww) in [(3, 7), (5, 13)] {
            let n = 2
            let img = f([n, hh, ww, ch])
            let u = try run("Transpose", [img], attrs: ["perm": .ints([0, 3, 1, 2])])[0]
            XCTAssertEqual(u.shape, [n, ch, hh, ww])
            var expect = [Float](repeating: 0, count: n * ch * hh * ww)
            for b in 0..<n { for y in 0..<hh { for xx in 0..<ww { for cc in 0..<ch {
                expect[((b * ch + cc) * hh + y) * ww + xx] = Float(((b * hh + y) * ww + xx) * ch + cc)
            } } } }
            XCTAssertEqual(try u.scalars(as: Float.self), expect, "\(ch) channels, \(hh)x\(ww)")
        } }
        // Few channels first to last (NCHW to NHWC: the interleaving path), 1 to 9 channels.
        for ch in 1...9 { for (hh, ww) in [(3, 7), (2, 8)] {
            let img = f([2, ch, hh, ww])
            let u = try run("Transpose", [img], attrs: ["perm": .ints([0, 2, 3, 1])])[0]
            var expect = [Float](repeating: 0, count: 2 * ch * hh * ww)
            for b in 0..<2 { for y in 0..<hh { for xx in 0..<ww { for cc in 0..<ch {
                expect[((b * hh + y) * ww + xx) * ch + cc] = Float(((b * ch + cc) * hh + y) * ww + xx)
            } } } }
            XCTAssertEqual(try u.scalars(as: Float.self), expect, "\(ch) channels, \(hh)x\(ww)")
        } }
        // Default perm reverses; int64 data.
        let r = try run("Transpose", [i64([1, 2, 3, 4, 5, 6], shape: [2, 3])])[0]
        XCTAssertEqual(try r.scalars(as: Int64.self), [1, 4, 2, 5, 3, 6])
        XCTAssertThrowsError(try run("Transpose", [x], attrs: ["perm": .ints([0, 0, 1])]))
    }

    func testSliceNegativeStepsAndClamp() throws {
        let x = f([2, 3, 4])
        // numpy x[:, ::-2, 3:0:-2]
        let y = try run("Slice", [x, i64([Int(Int64.max), 3]), i64([Int(Int64.min), 0]), i64([1, 2]), i64([-2, -2])])[0]
        XCTAssertEqual(y.shape, [2, 2, 2])
        XCTAssertEqual(try y.scalars(as: Float.self), [11, 9, 3, 1, 23, 21, 15, 13])
        let legacy = try run("Slice", [x], attrs: ["starts": .ints([1]), "ends": .ints([100]), "axes": .ints([0])], opset: 9)[0]
        XCTAssertEqual(legacy.shape, [1, 3, 4])
        XCTAssertThrowsError(try run("Slice", [x, i64([0]), i64([1]), i64([0]), i64([0])]))
    }

    func testPadModes() throws {
        let y = f([3, 4])
        let refl = try run("Pad", [y, i64([2, 3, 1, 2])], attrs: ["mode": .string("reflect")])[0]
        XCTAssertEqual(refl.shape, [6, 9])
        XCTAssertEqual(try refl.scalars(as: Float.self),
                       [11, 10, 9, 8, 9, 10, 11, 10, 9, 7, 6, 5, 4, 5, 6, 7, 6, 5, 3, 2, 1, 0, 1, 2, 3, 2, 1,
                        7, 6, 5, 4, 5, 6, 7, 6, 5, 11, 10, 9, 8, 9, 10, 11, 10, 9, 7, 6, 5, 4, 5, 6, 7, 6, 5])
        let wrap = try run("Pad", [y, i64([1, 5, 1, 1])], attrs: ["mode": .string("wrap")])[0]
        XCTAssertEqual(try wrap.scalars(as: Float.self),
                       [11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4,
                        11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0])
        let edge = try run("Pad", [y, i64([0, 1, 2, 0])], attrs: ["mode": .string("edge")])[0]
        XCTAssertEqual(try edge.scalars(as: Float.self),
                       [0, 0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10, 11, 8, 8, 9, 10, 11, 8, 8, 9, 10, 11])
        // Constant with value, negative pad (crop), axes input.
        let c = try run("Pad", [y, i64([1, -1]), Tensor(scalar: Float(7)), i64([1])])[0]
        XCTAssertEqual(c.shape, [3, 4])
        XCTAssertEqual(try c.scalars(as: Float.self), [7, 0, 1, 2, 7, 4, 5, 6, 7, 8, 9, 10])
        let legacy = try run("Pad", [y], attrs: ["pads": .ints([0, 1, 0, 0]), "value": .float(2)], opset: 2)[0]
        XCTAssertEqual(try legacy.scalars(as: Float.self), [2, 0, 1, 2, 3, 2, 4, 5, 6, 7, 2, 8, 9, 10, 11])
        XCTAssertThrowsError(try run("Pad", [y, i64([0, -9, 0, 0])]))
    }

    func testDepthToSpaceBothModes() throws {
        let d = f([1, 8, 2, 3])
        let crd = try run("DepthToSpace", [d], attrs: ["blocksize": .int(2), "mode": .string("CRD")])[0]
        XCTAssertEqual(crd.shape, [1, 2, 4, 6])
        XCTAssertEqual(try crd.scalars(as: Float.self),
                       [0, 6, 1, 7, 2, 8, 12, 18, 13, 19, 14, 20, 3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23,
                        24, 30, 25, 31, 26, 32, 36, 42, 37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47])
        let dcr = try run("DepthToSpace", [d], attrs: ["blocksize": .int(2)])[0]
        XCTAssertEqual(try dcr.scalars(as: Float.self),
                       [0, 12, 1, 13, 2, 14, 24, 36, 25, 37, 26, 38, 3, 15, 4, 16, 5, 17, 27, 39, 28, 40, 29, 41,
                        6, 18, 7, 19, 8, 20, 30, 42, 31, 43, 32, 44, 9, 21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47])
        // Blocks 1 to 5 (2 and 4: the interleaving path's vector steps), widths with and without a
        // tail of the 4-wide steps, batch 2; float32 (the 4-byte path) and int64 (the generic one),
        // against the spec's reshape-transpose formula.
        for b in 1...5 { for mode in ["DCR", "CRD"] { for (h, w) in [(3, 13), (2, 8), (1, 3)] {
            let (n, oc) = (2, 3), c = oc * b * b
            let x = f([n, c, h, w])
            var want = [Float](repeating: 0, count: n * c * h * w)
            for bn in 0..<n { for co in 0..<oc { for y in 0..<h { for i in 0..<b { for xx in 0..<w { for j in 0..<b {
                let ci = mode == "DCR" ? (i * b + j) * oc + co : (co * b + i) * b + j
                want[((bn * oc + co) * h * b + y * b + i) * w * b + xx * b + j] = Float(((bn * c + ci) * h + y) * w + xx)
            } } } } } }
            let attrs: [String: Attribute] = ["blocksize": .int(b), "mode": .string(mode)]
            let got = try run("DepthToSpace", [x], attrs: attrs)[0]
            XCTAssertEqual(got.shape, [n, oc, h * b, w * b])
            XCTAssertEqual(try got.scalars(as: Float.self), want, "b \(b) \(mode) \(h)x\(w)")
            let xi = i64((0..<(n * c * h * w)).map { $0 }, shape: [n, c, h, w])
            XCTAssertEqual(try run("DepthToSpace", [xi], attrs: attrs)[0].scalars(as: Int64.self), want.map { Int64($0) })
        } } }
        // SpaceToDepth inverts DepthToSpace in the same mode.
        for mode in ["DCR", "CRD"] {
            let a = try run("DepthToSpace", [d], attrs: ["blocksize": .int(2), "mode": .string(mode)])[0]
            let back = try run("SpaceToDepth", [a], attrs: ["blocksize": .int(2), "mode": .string(mode)], opset: 28)[0]
            XCTAssertEqual(try back.scalars(as: Float.self), try d.scalars(as: Float.self))
        }
    }

    func testGatherScatterFamilies() throws {
        let x = f([3, 2])
        let g = try run("Gather", [x, i64([2, -3], shape: [2])])[0]
        XCTAssertEqual(try g.scalars(as: Float.self), [4, 5, 0, 1])
        XCTAssertThrowsError(try run("Gather", [x, i64([3])]))
        let ge = try run("GatherElements", [x, i64([1, 0, -1, 1], shape: [2, 2])], attrs: ["axis": .int(1)])[0]
        XCTAssertEqual(try ge.scalars(as: Float.self), [1, 0, 3, 3])
        // GatherND with batch_dims=1: data [2,2,2], indices [[1],[0]] -> [[2,3],[4,5]]
        let gnd = try run("GatherND", [f([2, 2, 2]), i64([1, 0], shape: [2, 1])], attrs: ["batch_dims": .int(1)])[0]
        XCTAssertEqual(gnd.shape, [2, 2])
        XCTAssertEqual(try gnd.scalars(as: Float.self), [2, 3, 4, 5])
        let snd = try run("ScatterND", [f([4], [1, 2, 3, 4]), i64([1, 3, 1], shape: [3, 1]), f([3], [10, 20, 30])],
                          attrs: ["reduction": .string("mul")])[0]
        XCTAssertEqual(try snd.scalars(as: Float.self), [1, 600, 3, 80])
        let se = try run("ScatterElements", [Tensor(shape: [1, 4], scalars: [Int32(1), 2, 3, 4]), i64([0, 0], shape: [1, 2]),
                                             try Tensor(shape: [1, 2], scalars: [Int32(9), Int32(-5)])],
                         attrs: ["axis": .int(1), "reduction": .string("max")])[0]
        XCTAssertEqual(try se.scalars(as: Int32.self), [9, 2, 3, 4])
        XCTAssertThrowsError(try run("ScatterND", [f([4]), i64([4], shape: [1, 1]), f([1])]))
    }

    func testStringsMoveThroughEveryPath() throws {
        let s = try Tensor(shape: [2, 2], strings: ["a", "b", "c", "d"])
        XCTAssertEqual(try run("Transpose", [s])[0].strings(), ["a", "c", "b", "d"])
        XCTAssertEqual(try run("Concat", [s, s], attrs: ["axis": .int(1)])[0].strings(), ["a", "b", "a", "b", "c", "d", "c", "d"])
        XCTAssertEqual(try run("Gather", [s, i64([1])], attrs: ["axis": .int(1)])[0].strings(), ["b", "d"])
        XCTAssertEqual(try run("Pad", [s, i64([0, 1, 0, 0])])[0].strings(), ["", "a", "b", "", "c", "d"])
        let u = try run("Unique", [Tensor(shape: [4], strings: ["z", "a", "z", "b"])], outputs: 4)
        XCTAssertEqual(try u[0].strings(), ["a", "b", "z"])
        XCTAssertEqual(try u[3].scalars(as: Int64.self), [1, 1, 2])
    }

    func testBuildersAndSizeLimits() throws {
        let c = try run("ConstantOfShape", [i64([2, 3])], attrs: ["value": .tensor(Tensor(shape: [1], scalars: [Int32(7)]))])[0]
        XCTAssertEqual(c.dtype, .int32)
        XCTAssertEqual(try c.scalars(as: Int32.self), [7, 7, 7, 7, 7, 7])
        XCTAssertThrowsError(try run("ConstantOfShape", [i64([1 << 40, 1 << 40])]))
        XCTAssertThrowsError(try run("ConstantOfShape", [i64([-1])]))
        XCTAssertThrowsError(try run("Expand", [f([1]), i64([1 << 62])]))
        XCTAssertThrowsError(try run("Tile", [f([2]), i64([Int(Int64.max)])]))
        XCTAssertThrowsError(try run("Range", [Tensor(scalar: Float(0)), Tensor(scalar: Float(1e30)), Tensor(scalar: Float(1e-3))]))
        let r = try run("Range", [Tensor(scalar: Int32(10)), Tensor(scalar: Int32(1)), Tensor(scalar: Int32(-3))])[0]
        XCTAssertEqual(try r.scalars(as: Int32.self), [10, 7, 4])
        let t = try run("Tile", [f([2], [1, 2]), i64([3])])[0]
        XCTAssertEqual(try t.scalars(as: Float.self), [1, 2, 1, 2, 1, 2])
        let e = try run("Expand", [f([3, 1], [1, 2, 3]), i64([2, 1, 2])])[0]
        XCTAssertEqual(e.shape, [2, 3, 2])
        XCTAssertEqual(try e.scalars(as: Float.self), [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        let tri = try run("Trilu", [f([3, 3]), i64([0], shape: [])], attrs: ["upper": .int(0)])[0]
        XCTAssertEqual(try tri.scalars(as: Float.self), [0, 0, 0, 3, 4, 0, 6, 7, 8])
        let oh = try run("OneHot", [i64([0, -1, 5]), Tensor(scalar: Int64(3)), f([2], [0, 1])])[0]
        XCTAssertEqual(try oh.scalars(as: Float.self), [1, 0, 0, 0, 0, 1, 0, 0, 0])
        let nz = try run("NonZero", [f([2, 2], [0, 1, 2, 0])])[0]
        XCTAssertEqual(try nz.scalars(as: Int64.self), [0, 1, 1, 0])
        let sp = try run("Split", [f([5]), i64([2, 3])], outputs: 2)
        XCTAssertEqual(try sp[1].scalars(as: Float.self), [2, 3, 4])
        let sp3 = try run("Split", [f([5])], attrs: ["num_outputs": .int(3)], opset: 18, outputs: 3)
        XCTAssertEqual(sp3.map(\.shape), [[2], [2], [1]])
    }
}

/// Timing of the main float32 movement paths (runs only with SHAPE_PERF=1; build with -c release).
final class ShapeOpsPerfTests: XCTestCase {
    func testPerf() throws {
        guard ProcessInfo.processInfo.environment["SHAPE_PERF"] == "1" else { return }
        func op(_ name: String, _ attrs: [String: Attribute], opset: Int = 21, outputs: Int = 1) throws -> any Operator {
            let node = Node(name: "n", opType: name, domain: "", inputs: ["a", "b", "c", "d"], outputs: (0..<outputs).map { "o\($0)" }, attributes: attrs)
            return try OpRegistry.standard.builder(domain: "", op: name)!(OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("x") }))
        }
        func time(_ label: String, bytes: Int, _ body: () throws -> Void) rethrows {
            try body()
            var best = Double.infinity
            for _ in 0..<20 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            print(String(format: "%@: %.3f ms (%.1f GB/s r+w)", label, best, Double(2 * bytes) / best / 1e6))
        }
        let x = try Tensor(shape: [1, 64, 128, 128], scalars: (0..<(64 * 128 * 128)).map { Float($0 % 977) })
        let bytes = x.count * 4
        let t1 = try op("Transpose", ["perm": .ints([0, 2, 3, 1])])
        try time("Transpose NCHW->NHWC 1x64x128x128", bytes: bytes) { _ = try t1.run([x], RunEnv(threads: 1)) }
        let nhwc = try Tensor(shape: [1, 128, 128, 64], scalars: (0..<(64 * 128 * 128)).map { Float($0 % 977) })
        let t2 = try op("Transpose", ["perm": .ints([0, 3, 1, 2])])
        try time("Transpose NHWC->NCHW", bytes: bytes) { _ = try t2.run([nhwc], RunEnv(threads: 1)) }
        let t3 = try op("Transpose", ["perm": .ints([0, 2, 1, 3])])
        try time("Transpose keep inner block [0,2,1,3]", bytes: bytes) { _ = try t3.run([x], RunEnv(threads: 1)) }
        let c = try op("Concat", ["axis": .int(1)])
        try time("Concat 2x 1x64x128x128 axis 1", bytes: 2 * bytes) { _ = try c.run([x, x], RunEnv(threads: 1)) }
        let s = try op("Slice", [:])
        let st = try Tensor(shape: [2], scalars: [Int64(1), 1]), en = try Tensor(shape: [2], scalars: [Int64(127), 127]), ax = try Tensor(shape: [2], scalars: [Int64(2), 3])
        try time("Slice 1x64x126x126 of 128x128", bytes: bytes) { _ = try s.run([x, st, en, ax], RunEnv(threads: 1)) }
        let p = try op("Pad", ["mode": .string("reflect")])
        let pads = try Tensor(shape: [8], scalars: [Int64(0), 0, 2, 2, 0, 0, 2, 2])
        try time("Pad reflect 2 on 1x64x128x128", bytes: bytes) { _ = try p.run([x, pads], RunEnv(threads: 1)) }
        let g = try op("Gather", ["axis": .int(0)])
        let emb = try Tensor(shape: [30000, 256], scalars: [Float](repeating: 1, count: 30000 * 256))
        let ids = try Tensor(shape: [1, 512], scalars: (0..<512).map { Int64($0 * 37 % 30000) })
        try time("Gather 512 rows of 256", bytes: 512 * 256 * 4) { _ = try g.run([emb, ids], RunEnv(threads: 1)) }
        let d2s = try op("DepthToSpace", ["blocksize": .int(2)])
        try time("DepthToSpace b=2 1x64x128x128", bytes: bytes) { _ = try d2s.run([x], RunEnv(threads: 1)) }
    }
}
