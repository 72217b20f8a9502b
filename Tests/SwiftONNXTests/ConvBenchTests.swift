import Foundation
import XCTest
import SwiftONNX

/// Manual speed check (no assertions): CONV_BENCH=/dir/with/cases.txt swift test -c release ...
/// cases.txt lines: "<model name> <comma-separated input shape> <flops>"; models are <dir>/<name>.onnx with input "x".
final class ConvBenchTests: XCTestCase {
    func testBench() throws {
        guard let dir = ProcessInfo.processInfo.environment["CONV_BENCH"] else { return }
        let threads = Int(ProcessInfo.processInfo.environment["CONV_BENCH_THREADS"] ?? "1") ?? 1
        let lines = try String(contentsOfFile: dir + "/cases.txt", encoding: .utf8).split(separator: "\n")
        for line in lines {
            let parts = line.split(separator: " ").map(String.init)
            guard parts.count == 3 else { continue }
            let shape = parts[1].split(separator: ",").compactMap { Int($0) }
            let flops = Double(parts[2]) ?? 0
            let session: InferenceSession
            do { session = try InferenceSession(path: dir + "/" + parts[0] + ".onnx", options: .init(threads: threads)) } catch {
                print("ours \(parts[0]): \(error)"); continue
            }
            let n = shape.reduce(1, *)
            let x = try Tensor(shape: shape, scalars: (0..<n).map { Float(($0 * 7919) % 1000) / 500 - 1 })
            for _ in 0..<3 { _ = try session.run(["x": x]) }
            var ts: [Double] = []
            for _ in 0..<15 {
                let t = DispatchTime.now().uptimeNanoseconds
                _ = try session.run(["x": x])
                ts.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
            }
            ts.sort()
            let med = ts[ts.count / 2]
            print(String(format: "ours %-18@ %8.3f ms %7.1f GFLOP/s", parts[0] as NSString, med * 1e3, flops / med / 1e9))
        }
    }
}
