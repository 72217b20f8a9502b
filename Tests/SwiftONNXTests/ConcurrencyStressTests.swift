import Foundation
import XCTest
@testable import SwiftONNX

/// Three sessions (different graphs, 1, 2 and 3 kernel threads) run from 8 threads at once, 500
/// runs each; every output must equal, bit for bit, what the same session gave run alone.
final class ConcurrencyStressTests: XCTestCase {
    /// A small convolutional net big enough for the kernels to split work over threads:
    /// 3x3 conv (Winograd) + residual + Relu, depthwise 3x3 stride 2, 1x1 conv, global pooling, Gemm.
    static func convNet(seed: UInt64) throws -> Model {
        var rng = SplitMix64(seed: seed)
        func t(_ shape: [Int], _ scale: Float = 0.1) throws -> Tensor {
            try Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.uniform(-scale, scale) })
        }
        let nodes = [
            node("Conv", ["x", "w1", "b1"], ["c1"], ["pads": .ints([1, 1, 1, 1])]),
            node("Add", ["c1", "x"], ["r1"]),
            node("Relu", ["r1"], ["a1"]),
            node("Conv", ["a1", "wd", "bd"], ["c2"], ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2]), "group": .int(32)]),
            node("Conv", ["c2", "w3", "b3"], ["c3"]),
            node("Relu", ["c3"], ["a3"]),
            node("GlobalAveragePool", ["a3"], ["p"]),
            node("Flatten", ["p"], ["f"]),
            node("Gemm", ["f", "wg", "bg"], ["y"], ["transB": .int(1)]),
        ]
        let g = graph("g", nodes, inputs: [vi("x", .float32, [1, 32, 40, 40])], outputs: [vi("y", .float32, [1, 10])],
                      initializers: ["w1": try t([32, 32, 3, 3]), "b1": try t([32]), "wd": try t([32, 1, 3, 3]), "bd": try t([32]),
                                     "w3": try t([64, 32, 1, 1]), "b3": try t([64]), "wg": try t([10, 64]), "bg": try t([10])])
        return Model(irVersion: 8, producerName: "", producerVersion: "", domain: "", modelVersion: 0, docString: "",
                     opsets: ["": 17], graph: g, keepAlive: [])
    }

    func testEightThreadsFiveHundredRunsThreeSessions() throws {
        let sessions = [
            try InferenceSession(model: Self.convNet(seed: 1), options: .init(threads: 1)),
            try InferenceSession(model: Self.convNet(seed: 2), options: .init(threads: 2)),
            try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"), options: .init(threads: 3)),
        ]
        let inputName = sessions.map { $0.inputs[0].name }
        let outputName = sessions.map { $0.outputs[0].name }
        let base = [sinTensor([1, 32, 40, 40]), sinTensor([1, 32, 40, 40], 0.21), try loadPB("conv_bn_relu_input.pb")]
        // Per thread: its session and an input of its own (scaled), and the result of a run alone.
        let workers = 8, runs = 500
        let plan = try (0..<workers).map { k -> (session: Int, input: Tensor, expected: [Float]) in
            let s = k % sessions.count
            let x = base[s]
            let input = try Tensor(shape: x.shape, scalars: try x.scalars(as: Float.self).map { $0 * Float(k + 1) / 4 })
            let expected = try sessions[s].run([inputName[s]: input])[outputName[s]]!.scalars(as: Float.self)
            return (s, input, expected)
        }
        let failures = Locked([String]())
        let completed = Locked(0)
        DispatchQueue.concurrentPerform(iterations: workers) { k in
            let (s, input, expected) = plan[k]
            var done = 0
            for r in 0..<runs {
                do {
                    let y = try sessions[s].run([inputName[s]: input])[outputName[s]]!.scalars(as: Float.self)
                    // Bit for bit: the same session, the same input, whatever runs beside it.
                    guard y.map(\.bitPattern) == expected.map(\.bitPattern) else {
                        failures.withLock { $0.append("thread \(k) run \(r): output differs") }
                        break
                    }
                    done += 1
                } catch {
                    failures.withLock { $0.append("thread \(k) run \(r): \(error)") }
                    break
                }
            }
            completed.withLock { $0 += done }
        }
        XCTAssertEqual(failures.current, [])
        XCTAssertEqual(completed.current, workers * runs)
    }
}
