// A consumer of SwiftONNX in Swift 6 mode, using the public API only, as a new user would.
// Usage: consumer MODEL.onnx INPUT.pb EXPECTED.pb  (conv_bn_relu from Tests/SwiftONNXTests/Resources)
// Exits 0 when every check holds, 1 with the failed checks listed otherwise.
import Foundation
import SwiftONNX
import SwiftONNXEnhance

nonisolated(unsafe) var failures: [String] = []

func check(_ ok: Bool, _ what: String) {
    print((ok ? "ok    " : "FAIL  ") + what)
    if !ok { failures.append(what) }
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

let args = CommandLine.arguments
guard args.count == 4 else {
    print("usage: consumer MODEL.onnx INPUT.pb EXPECTED.pb")
    exit(2)
}

/// Every check, in an async function as an app's code would be.
func runChecks() async throws {
    // Load, look inputs and outputs up by name.
    let session = try InferenceSession(contentsOf: URL(fileURLWithPath: args[1]), options: SessionOptions(threads: 2))
    print(session)
    guard let input = session.input(named: "X"), let output = session.output(named: "Y") else {
        check(false, "the model has an input X and an output Y")
        return
    }
    check(input.dimensions == [1, 3, 10, 12], "ValueInfo.dimensions gives [Int?]")
    check(output.type == .float32, "ValueInfo.type")

    // Reference tensors from TensorProto files.
    let x = try TensorProto.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: args[2]))), path: args[2]).tensor
    let expected = try TensorProto.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: args[3]))), path: args[3]).tensor
    let want = try expected.scalars(as: Float.self)

    // A Data input viewed in place, the output written into our own buffer: no copy of either.
    let data = x.withUnsafeBytes { Data($0) }
    let xd = try Tensor(dtype: .float32, shape: x.shape, data: data)
    check(xd.withUnsafeBytes { $0.baseAddress } == data.withUnsafeBytes { $0.baseAddress }, "a Data input is viewed, not copied")
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: want.count * 4, alignment: 64)
    defer { buffer.deallocate() }
    let out = try session.run(["X": xd], into: ["Y": buffer])
    check(out["Y"]!.withUnsafeBytes { $0.baseAddress } == UnsafeRawPointer(buffer.baseAddress), "the output is in the caller's buffer")
    let got = Array(buffer.bindMemory(to: Float.self))
    check(maxDifference(got, want) < 1e-4, "run(into:) matches the reference (max diff \(maxDifference(got, want)))")
    let plain = try await session.run(["X": x])
    check(plain["Y"] == out["Y"], "run(into:) gives the bits of run() (Tensor is Equatable)")

    // Chosen outputs; typed errors switched over exhaustively by case.
    let only = try await session.run(["X": x], outputs: ["Y"])
    check(only.keys.sorted() == ["Y"], "run(_:outputs:)")
    do throws(ONNXError) {
        _ = try await session.run(["X": x], outputs: ["nope"])
        check(false, "an unknown output is refused")
    } catch {
        switch error {   // `error` is ONNXError: typed throws
        case .unknownOutput(let name): check(name == "nope", "typed error .unknownOutput names the output")
        default: check(false, "unexpected error \(error)")
        }
    }
    do throws(ONNXError) {
        _ = try await session.run(["X": try Tensor(shape: [1, 3, 10], scalars: [Float](repeating: 0, count: 30))])
        check(false, "a wrong shape is refused")
    } catch {
        if case .inputShapeMismatch(let name, _, let got) = error {
            check(name == "X" && got == [1, 3, 10], "typed error .inputShapeMismatch: \(error.localizedDescription)")
        } else {
            check(false, "unexpected error \(error)")
        }
    }

    // Concurrent async runs from a TaskGroup (on the session's threads), and a cancelled Task.
    let all = try await withThrowingTaskGroup(of: [Float].self) { group in
        for _ in 0..<8 { group.addTask { try await session.run(["X": x])["Y"]!.scalars(as: Float.self) } }
        var all: [[Float]] = []
        for try await r in group { all.append(r) }
        return all
    }
    check(all.count == 8 && all.allSatisfy { maxDifference($0, want) < 1e-4 }, "8 concurrent async runs match")
    let cancelled = Task {
        withUnsafeCurrentTask { $0?.cancel() }
        return try await session.run(["X": x])
    }
    do {
        _ = try await cancelled.value
        check(false, "a cancelled Task's run is stopped")
    } catch let e as ONNXError {
        check(e == .cancelled, "a cancelled Task's run throws .cancelled")
    }

    // Writing into a tensor of our own: copy on write.
    var mine = try Tensor(shape: [3], scalars: [Float(1), 2, 3])
    let shared = mine
    mine.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 9 }
    check(try shared.scalars(as: Float.self) == [1, 2, 3] && (try mine.scalars(as: Float.self)) == [9, 2, 3], "copy on write")

    // Enhancement on the bundled model, from whatever folder we run in, asynchronously with progress.
    let pipeline = try EnhancePipeline(task: .upscale, scale: 2)
    let image = try ImageBuffer(width: 24, height: 16, channels: 3, bitDepth: 8)
    let ticks = Counter()
    let up = try await pipeline.process(image, progress: { _ in ticks.add() })
    check(up.width == 48 && up.height == 32, "bundled x2 model upscales 24x16 to \(up.width)x\(up.height)")
    check(ticks.value >= 2, "progress reported (\(ticks.value) calls)")
    do throws(EnhanceError) {
        _ = try EnhancePipeline(modelPath: "/nonexistent.onnx", configuration: .defaults(for: .restore))
        check(false, "a missing model is refused")
    } catch {
        switch error {   // EnhanceError: typed throws
        case .io(let path, _): check(path == "/nonexistent.onnx", "typed EnhanceError.io names the file")
        default: check(false, "unexpected error \(error)")
        }
    }
}

do {
    try await runChecks()
} catch {
    print("error: \(error)")
    exit(1)
}

if failures.isEmpty {
    print("consumer: all checks passed")
} else {
    print("consumer: \(failures.count) checks failed")
    exit(1)
}

/// A thread-safe count, for the progress callback.
final class Counter: @unchecked Sendable {   // @unchecked: every access holds the lock
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
