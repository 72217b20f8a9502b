import XCTest
@testable import SwiftONNX

/// FuseElementwiseChains and com.swiftonnx::ElementwiseChain against the unoptimized path, bit for bit.
final class ElementwiseChainTests: XCTestCase {
    /// A QDQ chain like PP-OCR's activations (per-channel Mul and Add, Add 3, Sub, Div 6, Mul by a
    /// per-channel weight, a Q/DQ pair after each), with a value read outside the chain (a graph
    /// output through Relu) and an op outside the chain (Sigmoid) whose result comes back into it
    /// later (the chain must split there, or the graph would have a cycle). Planes of 2250 values
    /// (a stretch and a tail), a full-size operand of lower rank, both zero point types, ties, NaN
    /// and saturation, 1 and 2 threads.
    func testQuantizedChainMatchesTheUnfusedOps() throws {
        let c = 3, h = 45, w = 50
        for signed in [false, true] {
            let zp = signed ? Tensor(scalar: Int8(-5)) : Tensor(scalar: UInt8(120))
            let perChannel = { (k: Float) in try! Tensor(shape: [c, 1, 1], scalars: (0..<c).map { Float($0) * 0.5 + k }) }
            var inits: [String: Tensor] = [
                "sc": perChannel(0.75), "bc": perChannel(-1), "wc": perChannel(1.25),
                "three": Tensor(scalar: Float(3)), "six": Tensor(scalar: Float(6)),
            ]
            var nodes: [Node] = []
            var k = 0
            /// v -> QuantizeLinear -> DequantizeLinear with its own scale; returns the float value.
            func qdq(_ v: String, _ scale: Float) -> String {
                k += 1
                inits["s\(k)"] = Tensor(scalar: scale)
                inits["z\(k)"] = zp
                nodes.append(Node(name: "q\(k)", opType: "QuantizeLinear", domain: "", inputs: [v, "s\(k)", "z\(k)"], outputs: ["q\(k)"], attributes: [:]))
                nodes.append(Node(name: "dq\(k)", opType: "DequantizeLinear", domain: "", inputs: ["q\(k)", "s\(k)", "z\(k)"], outputs: ["d\(k)"], attributes: [:]))
                return "d\(k)"
            }
            func op(_ type: String, _ a: String, _ b: String, _ out: String) -> String {
                nodes.append(Node(name: out, opType: type, domain: "", inputs: [a, b], outputs: [out], attributes: [:]))
                return out
            }
            let x = qdq("X", 0.05)
            let m0 = qdq(op("Mul", x, "sc", "m0"), 0.04)
            let a = qdq(op("Add", m0, "bc", "a0"), 0.05)
            let a3 = qdq(op("Add", a, "three", "a3"), 0.03)
            let p = qdq(op("Sub", a, a3, "p"), 0.1)   // a Mul of two dequantized values would become QLinearMul
            let d = qdq(op("Div", p, "six", "dv"), 0.02)
            let y = qdq(op("Mul", "wc", d, "y"), 0.025)
            nodes.append(Node(name: "relu", opType: "Relu", domain: "", inputs: [a], outputs: ["R"], attributes: [:]))
            nodes.append(Node(name: "sig", opType: "Sigmoid", domain: "", inputs: [p], outputs: ["sg"], attributes: [:]))
            let z = qdq(op("Mul", y, "sg", "zm"), 0.01)
            let z2 = qdq(op("Sub", z, "Full", "zs"), 0.01)
            nodes.append(Node(name: "out", opType: "Identity", domain: "", inputs: [z2], outputs: ["Y"], attributes: [:]))
            let g = Graph(name: "g", nodes: nodes,
                          inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(1), .known(c), .known(h), .known(w)]),
                                   ValueInfo(name: "Full", type: .float32, shape: [.known(c), .known(h), .known(w)])],
                          outputs: [ValueInfo(name: "Y", type: .float32, shape: nil), ValueInfo(name: "R", type: .float32, shape: nil)],
                          initializers: inits, valueInfo: [:])
            let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                              opsets: ["": 21], graph: g, keepAlive: [])
            let n = c * h * w
            var xs: [Float] = (0..<n).map { Float(($0 * 37) % 401 - 200) * 0.025 }   // ties at the input's step
            xs[5] = .nan; xs[6] = 1e30; xs[7] = -.infinity
            let full = (0..<n).map { Float(($0 * 11) % 97) * 0.01 - 0.4 }
            let feeds = ["X": try Tensor(shape: [1, c, h, w], scalars: xs), "Full": try Tensor(shape: [c, h, w], scalars: full)]
            let reference = try InferenceSession(model: model, options: .init(optimize: false)).run(feeds)
            for threads in [1, 2] {
                let fast = try InferenceSession(model: model, options: .init(threads: threads, optimize: true))
                let hist = fast.metadata.opHistogram
                // Split at the Sigmoid: one chain up to y, another from z on.
                XCTAssertEqual(hist["com.swiftonnx::ElementwiseChain"], 2, "\(hist)")
                XCTAssertNil(hist["Mul"], "\(hist)")
                let got = try fast.run(feeds)
                for name in ["Y", "R"] {
                    let want = try XCTUnwrap(reference[name]).scalars(as: Float.self), have = try XCTUnwrap(got[name]).scalars(as: Float.self)
                    let firstDiff = zip(want, have).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
                    XCTAssertNil(firstDiff, "\(name) signed \(signed) threads \(threads): first difference \(String(describing: firstDiff))")
                }
            }
        }
    }

    /// Float chains with no round trip are left to the other fusions; so are small maps.
    func testFloatChainsAndSmallMapsStay() throws {
        for (shape, withQDQ) in [([1, 4, 32, 32], false), ([1, 2, 8, 8], true)] {
            var nodes = [
                Node(name: "a", opType: "Add", domain: "", inputs: ["X", "b"], outputs: ["a"], attributes: [:]),
                Node(name: "m", opType: "Mul", domain: "", inputs: ["a", "X"], outputs: ["m"], attributes: [:]),
            ]
            if withQDQ {
                nodes.append(Node(name: "q", opType: "QuantizeLinear", domain: "", inputs: ["m", "s", "z"], outputs: ["q"], attributes: [:]))
                nodes.append(Node(name: "dq", opType: "DequantizeLinear", domain: "", inputs: ["q", "s", "z"], outputs: ["Y"], attributes: [:]))
            } else {
                nodes.append(Node(name: "id", opType: "Identity", domain: "", inputs: ["m"], outputs: ["Y"], attributes: [:]))
            }
            let g = Graph(name: "g", nodes: nodes, inputs: [ValueInfo(name: "X", type: .float32, shape: shape.map { .known($0) })],
                          outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)],
                          initializers: ["b": Tensor(scalar: Float(0.5)), "s": Tensor(scalar: Float(0.1)), "z": Tensor(scalar: UInt8(128))],
                          valueInfo: [:])
            let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                              opsets: ["": 21], graph: g, keepAlive: [])
            let hist = try InferenceSession(model: model, options: .init(optimize: true)).metadata.opHistogram
            XCTAssertNil(hist["com.swiftonnx::ElementwiseChain"], "\(shape) \(hist)")
        }
    }

    /// A model may name the op itself: malformed programs are typed errors when the session is made.
    func testMalformedProgramsAreErrors() throws {
        let bad: [(inputs: [String], attrs: [String: Attribute])] = [
            ([], ["program": .ints([0, 0, 0]), "outputs": .ints([0])]),                     // no input
            (["X"], ["program": .ints([0, 0, 5]), "outputs": .ints([1])]),                  // register not defined yet
            (["X"], ["program": .ints([9, 0, 0]), "outputs": .ints([1])]),                  // unknown code
            (["X"], ["program": .ints([4, 0, 0]), "params": .floats([0.1, 300, 0, 255]), "outputs": .ints([1])]),  // zero point out of range
            (["X"], ["program": .ints([4, 0, 1]), "params": .floats([0.1, 3, 0, 255]), "outputs": .ints([1])]),   // missing parameters
            (["X"], ["program": .ints([0, 0, 0, 1]), "outputs": .ints([1])]),               // not three ints per instruction
            (["X"], ["program": .ints([0, 0, 0]), "outputs": .ints([0])]),                  // an output that is an input
        ]
        for (i, c) in bad.enumerated() {
            let node = Node(name: "c", opType: "ElementwiseChain", domain: "com.swiftonnx", inputs: c.inputs, outputs: ["Y"], attributes: c.attrs)
            let g = Graph(name: "g", nodes: [node], inputs: [ValueInfo(name: "X", type: .float32, shape: [.known(4)])],
                          outputs: [ValueInfo(name: "Y", type: .float32, shape: nil)], initializers: [:], valueInfo: [:])
            let model = Model(irVersion: 8, producerName: "test", producerVersion: "", domain: "", modelVersion: 1, docString: "",
                              opsets: ["": 21, "com.swiftonnx": 1], graph: g, keepAlive: [])
            XCTAssertThrowsError(try InferenceSession(model: model, options: .init(optimize: false)).run(["X": try Tensor(shape: [4], scalars: [Float](repeating: 1, count: 4))]),
                                 "case \(i) should be an error")
        }
    }
}
