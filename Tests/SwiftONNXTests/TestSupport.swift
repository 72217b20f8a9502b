import Foundation
import XCTest
@testable import SwiftONNX

/// The folder of committed test models (Tests/SwiftONNXTests/Resources).
let testResources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources")

func resource(_ name: String) -> URL { testResources.appendingPathComponent(name) }

func loadPB(_ name: String) throws -> Tensor {
    try TensorProto.decode([UInt8](Data(contentsOf: resource(name)))).tensor
}

/// Asserts |a - b| <= atol + rtol * |b| element-wise, with equal shapes.
func assertClose(_ a: Tensor, _ b: Tensor, rtol: Double = 1e-4, atol: Double = 1e-5,
                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(a.shape, b.shape, "shape", file: file, line: line)
    XCTAssertEqual(a.dtype, b.dtype, "dtype", file: file, line: line)
    let x = try a.doubles(), y = try b.doubles()
    for i in 0..<min(x.count, y.count) where !(abs(x[i] - y[i]) <= atol + rtol * abs(y[i])) {
        XCTFail("element \(i): \(x[i]) vs \(y[i])", file: file, line: line)
        return
    }
}

/// A temporary directory removed at the end of the test.
func temporaryDirectory() throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("swiftonnx-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

/// Builds one node with the standard registry and runs it.
func runOp(_ op: String, opset: Int = 19, domain: String = "", _ inputs: [Tensor?], _ attrs: [String: Attribute] = [:],
                       outputs: Int = 1, threads: Int = 1) throws -> [Tensor] {
    let node = Node(name: "t", opType: op, domain: domain,
                    inputs: inputs.enumerated().map { $0.element == nil ? "" : "i\($0.offset)" },
                    outputs: (0..<outputs).map { "o\($0)" }, attributes: attrs)
    let ctx = OpContext(node: node, opset: opset, compileSubgraph: { _ in throw OpError("no subgraphs") })
    guard let b = OpRegistry.standard.builder(domain: domain, op: op) else { throw OpError("no \(domain)::\(op)") }
    return try b(ctx).run(inputs, RunEnv(threads: threads))
}

/// The generator's inputs: sin(i*k)*s in float32.
func sinTensor(_ shape: [Int], _ k: Double = 0.37, _ s: Double = 2) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(validShape: shape, scalars: (0..<n).map { Float(sin(Double($0) * k) * s) })
}

func assertClose(_ t: Tensor, _ ref: [Double], tol: Double, file: StaticString = #filePath, line: UInt = #line) throws {
    let got = try t.doubles()
    XCTAssertEqual(got.count, ref.count, "element count", file: file, line: line)
    for i in 0..<min(got.count, ref.count) where abs(got[i] - ref[i]) > tol * (1 + abs(ref[i])) {
        XCTFail("element \(i): got \(got[i]), expected \(ref[i])", file: file, line: line)
        return
    }
}

/// A small seeded generator for test data.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        let u = Float(next() >> 40) / 16_777_216.0
        return lo + (hi - lo) * u
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// n bytes for the integer kernels' tests; extreme ones are all 0 or 255 (the largest products).
    mutating func kernelBytes(_ n: Int, extreme: Bool) -> [UInt8] {
        (0..<n).map { _ in
            let v = next()
            return extreme ? (v % 2 == 0 ? 255 : 0) : UInt8(truncatingIfNeeded: v >> 17)
        }
    }

    /// n bytes for the integer GEMM tests: uniform, or (extreme) only 255, 0 and 128.
    mutating func gemmBytes(_ n: Int, extreme: Bool) -> [UInt8] {
        (0..<n).map { _ in
            let r = next()
            if extreme { return r % 2 == 0 ? 255 : (r % 3 == 0 ? 0 : 128) }
            return UInt8(truncatingIfNeeded: r >> 11)
        }
    }

    /// n signed weights for the integer kernels' tests; extreme ones are all -128 or 127.
    mutating func kernelWeights(_ n: Int, extreme: Bool) -> [Int8] {
        kernelBytes(n, extreme: extreme).map { Int8(bitPattern: extreme ? ($0 == 255 ? 0x7F : 0x80) : $0) }
    }
}

/// The plain integer convolution of one image (c x h x w bytes, read as signed when `signed`) with
/// `w` (weights minus their zero points; m x c x kh x kw, or m x kh x kw with channel i of the input
/// for output i when `depthwise`): the sum over taps inside the image of (x - zp) * w, in Int64.
func naiveIntegerConv(_ g: Int8ConvGeometry, depthwise: Bool, _ x: [UInt8], signed: Bool, zp: Int32, _ w: [Int64]) -> [Int32] {
    var y = [Int32](repeating: 0, count: g.m * g.oh * g.ow)
    for i in 0..<g.m {
        let channels = depthwise ? i..<(i + 1) : 0..<g.c
        for oy in 0..<g.oh {
            for ox in 0..<g.ow {
                var s: Int64 = 0
                for ch in channels {
                    let filter = depthwise ? i * g.kh * g.kw : (i * g.c + ch) * g.kh * g.kw
                    for ky in 0..<g.kh {
                        for kx in 0..<g.kw {
                            let iy = oy * g.sh - g.padTop + ky * g.dh, ix = ox * g.sw - g.padLeft + kx * g.dw
                            if iy < 0 || iy >= g.h || ix < 0 || ix >= g.w { continue }
                            let b = x[(ch * g.h + iy) * g.w + ix]
                            let v = signed ? Int64(Int8(bitPattern: b)) : Int64(b)
                            s += (v - Int64(zp)) * w[filter + ky * g.kw + kx]
                        }
                    }
                }
                y[(i * g.oh + oy) * g.ow + ox] = Int32(s)
            }
        }
    }
    return y
}

/// The sums an integer kernel's driver writes through `.int32` output (rows `ldy` values apart) into
/// `count` values followed by 64 sentinels 0x5A5A5A5A (the caller checks they stay).
func int32Sums(count: Int, ldy: Int, _ body: (Int8GemmOutput) -> Void) -> [Int32] {
    var y = [Int32](repeating: 0x5A5A5A5A, count: count + 64)
    y.withUnsafeMutableBufferPointer { yp in body(.int32(yp.baseAddress!, ldy: ldy)) }
    return y
}

/// The bytes an integer kernel's driver writes through `.requantized` output (bias and scale one per
/// row, rows `ldy` bytes apart, outputs (zero point -3) or 7, full range of the type) into `count`
/// bytes followed by 64 sentinel bytes 0xA5 (the caller checks they stay).
func requantizedBytes(count: Int, ldy: Int, bias: [Int32], scale: [Float], signedOut: Bool,
                      _ body: (Int8GemmOutput) -> Void) -> [UInt8] {
    var y = [UInt8](repeating: 0xA5, count: count + 64)
    bias.withUnsafeBufferPointer { bp in
        scale.withUnsafeBufferPointer { sp in
            y.withUnsafeMutableBufferPointer { yp in
                let rq = Int8Requantization(bias: bp.baseAddress!, scale: sp.baseAddress!, zeroPoint: signedOut ? -3 : 7,
                                            lo: signedOut ? -128 : 0, hi: signedOut ? 127 : 255, signedOutput: signedOut)
                body(.requantized(rq, UnsafeMutableRawPointer(yp.baseAddress!), ldy: ldy))
            }
        }
    }
    return y
}

// MARK: - small graph-building helpers (control-flow, shape-plan tests)

func vi(_ name: String, _ type: DType? = nil, _ shape: [Dim]? = nil) -> ValueInfo {
    ValueInfo(name: name, type: type, shape: shape)
}

/// A node; implicit inputs are computed from its graph attributes as the loader does.
func node(_ op: String, _ inputs: [String], _ outputs: [String], _ attrs: [String: Attribute] = [:]) -> Node {
    var n = Node(name: "\(op)_\(outputs.first ?? "")", opType: op, domain: "", inputs: inputs, outputs: outputs,
                 attributes: attrs)
    var implicit: [String] = []
    for a in attrs.values {
        if case .graph(let g) = a { implicit += g.freeVariables() }
    }
    var seen = Set<String>()
    n.implicitInputs = implicit.filter { seen.insert($0).inserted }
    return n
}

func graph(_ name: String, _ nodes: [Node], inputs: [ValueInfo] = [], outputs: [ValueInfo],
          initializers: [String: Tensor] = [:]) -> Graph {
    Graph(name: name, nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers, valueInfo: [:])
}
