import Foundation
import XCTest
@testable import SwiftONNX

/// The public API's newer parts: tensors over the caller's memory, element access without copies,
/// runs of chosen outputs, runs into caller buffers, the async run and its cancellation, typed errors.
final class SessionAPITests: XCTestCase {
    // MARK: - models

    static func model(_ nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo], initializers: [String: Tensor] = [:]) -> Model {
        Model(irVersion: 8, producerName: "", producerVersion: "", domain: "", modelVersion: 0, docString: "",
              opsets: ["": 17], graph: graph("g", nodes, inputs: inputs, outputs: outputs, initializers: initializers),
              keepAlive: [])
    }

    /// y = Relu(Conv(x) + b) (1 -> 8 channels, 3x3, padded); z = x reshaped by a shape fed at run
    /// time, which fails when the element counts differ.
    static func twoHeads() throws -> Model {
        var rng = SplitMix64(seed: 7)
        let w = try Tensor(shape: [8, 4, 3, 3], scalars: (0..<288).map { _ in rng.uniform(-0.5, 0.5) })
        let b = try Tensor(shape: [8], scalars: (0..<8).map { _ in rng.uniform(-0.1, 0.1) })
        return model([
            node("Conv", ["x", "w", "b"], ["c"], ["pads": .ints([1, 1, 1, 1])]),
            node("Relu", ["c"], ["y"]),
            node("Reshape", ["x", "s"], ["z"]),
        ], inputs: [vi("x", .float32, [1, 4, 16, "w"]), vi("s", .int64, [2])],
           outputs: [vi("y", .float32, nil), vi("z", .float32, nil)], initializers: ["w": w, "b": b])
    }

    static func input(width: Int = 16) throws -> Tensor {
        try Tensor(shape: [1, 4, 16, width], scalars: (0..<(64 * width)).map { Float(sin(Double($0) * 0.37)) })
    }

    // MARK: - tensors over caller memory

    func testDataInputIsViewedNotCopied() throws {
        let values = (0..<100).map { Float($0) * 0.5 }
        let data = values.withUnsafeBytes { Data($0) }
        let t = try Tensor(dtype: .float32, shape: [4, 25], data: data)
        let dataBase = data.withUnsafeBytes { Int(bitPattern: $0.baseAddress) }
        let tensorBase = t.withUnsafeBytes { Int(bitPattern: $0.baseAddress) }
        XCTAssertEqual(tensorBase, dataBase, "a heap-backed, aligned Data is viewed in place")
        XCTAssertEqual(try t.scalars(as: Float.self), values)
        // A value: changing the caller's Data afterwards does not reach the tensor.
        var changed = data
        changed[0] = 0xFF
        XCTAssertEqual(try t.scalars(as: Float.self), values)
        // Small, or misaligned: copied, same values.
        let small = try Tensor(dtype: .float32, shape: [2], data: Data([0, 0, 128, 63, 0, 0, 0, 64]))
        XCTAssertEqual(try small.scalars(as: Float.self), [1, 2])
        let padded = Data([0xAA]) + data
        let misaligned = try Tensor(dtype: .float32, shape: [100], data: padded.dropFirst())
        XCTAssertEqual(try misaligned.scalars(as: Float.self), values)
    }

    func testDataOfTheWrongSizeIsATypedError() {
        do throws(ONNXError) {
            _ = try Tensor(dtype: .float32, shape: [3], data: Data(count: 8))
            XCTFail("expected an error")
        } catch {
            // `error` is an ONNXError, statically (typed throws)
            guard case .invalidInput(let name, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "data")
            XCTAssertTrue(reason.contains("8 bytes do not fill float32 shape [3]"), reason)
        }
    }

    func testBytesNoCopyIsGivenBackOnceWhenTheLastTensorGoes() throws {
        let calls = Locked(0)
        let p = UnsafeMutableRawPointer.allocate(byteCount: 24, alignment: 16)
        let address = Int(bitPattern: p)
        p.bindMemory(to: Float.self, capacity: 6).initialize(from: [1, 2, 3, 4, 5, 6], count: 6)
        do {
            let t = try Tensor(dtype: .float32, shape: [2, 3], bytesNoCopy: p, count: 24,
                               deallocator: .custom { q, n in
                                   XCTAssertEqual(Int(bitPattern: q), address)
                                   XCTAssertEqual(n, 24)
                                   calls.withLock { $0 += 1 }
                                   q.deallocate()
                               })
            let copy = t
            XCTAssertEqual(t.withUnsafeBytes { $0.baseAddress }, UnsafeRawPointer(p))
            XCTAssertEqual(try copy.scalars(as: Float.self), [1, 2, 3, 4, 5, 6])
            XCTAssertEqual(calls.withLock { $0 }, 0)
        }
        XCTAssertEqual(calls.withLock { $0 }, 1)
        // Misaligned or the wrong size: an error, and the deallocator is not called.
        let q = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 16)
        defer { q.deallocate() }
        XCTAssertThrowsError(try Tensor(dtype: .float32, shape: [2], bytesNoCopy: q + 1, count: 8, deallocator: .free))
        XCTAssertThrowsError(try Tensor(dtype: .float32, shape: [2], bytesNoCopy: q, count: 12, deallocator: .free))
    }

    func testReadOnlyBufferIsViewedAndNeverWritten() throws {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let calls = Locked(0)
        let p = UnsafeMutableRawPointer.allocate(byteCount: 24, alignment: 16)
        p.copyMemory(from: values, byteCount: 24)
        do {
            var t = try Tensor(dtype: .float32, shape: [3, 2], bytesNoCopy: UnsafeRawBufferPointer(start: p, count: 24),
                               deallocator: .custom { q, _ in calls.withLock { $0 += 1 }; q.deallocate() })
            XCTAssertEqual(t.withUnsafeBytes { $0.baseAddress }, UnsafeRawPointer(p))
            XCTAssertEqual(try t.scalars(as: Float.self), values)
            // writing takes a copy, even for the only tensor viewing them: the caller's bytes stay as they were
            t.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = -1 }
            XCTAssertEqual(try t.scalars(as: Float.self)[0], -1)
            XCTAssertNotEqual(t.withUnsafeBytes { $0.baseAddress }, UnsafeRawPointer(p))
            XCTAssertEqual(calls.withLock { $0 }, 1, "the tensor's copy let the caller's memory go")
            let q = UnsafeMutableRawPointer.allocate(byteCount: 24, alignment: 16)
            defer { q.deallocate() }
            q.copyMemory(from: values, byteCount: 24)
            let u = try Tensor(dtype: .float32, shape: [6], bytesNoCopy: UnsafeRawBufferPointer(start: q, count: 24))
            var w = u
            w.withUnsafeMutableBytes { $0.storeBytes(of: Float(9), as: Float.self) }
            XCTAssertEqual(try u.scalars(as: Float.self), values, "the viewed bytes were not written")
            XCTAssertEqual(try w.scalars(as: Float.self)[0], 9)
        }
        XCTAssertEqual(calls.withLock { $0 }, 1)
        XCTAssertThrowsError(try Tensor(dtype: .float32, shape: [2], bytesNoCopy: UnsafeRawBufferPointer(start: nil, count: 0)))
        XCTAssertEqual(try Tensor(dtype: .float32, shape: [0], bytesNoCopy: UnsafeRawBufferPointer(start: nil, count: 0)).count, 0)
    }

    func testWritesReachOnlyTheTensorWritten() throws {
        var a = try Tensor(shape: [3], scalars: [Float(1), 2, 3])
        let b = a
        a.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 10 }
        XCTAssertEqual(try a.scalars(as: Float.self), [10, 2, 3])
        XCTAssertEqual(try b.scalars(as: Float.self), [1, 2, 3], "a copy keeps its values")
        // A tensor alone over its own memory is written in place.
        let before = a.withUnsafeBytes { $0.baseAddress }
        a.withUnsafeMutableBytes { $0[0] = 0 }
        XCTAssertEqual(a.withUnsafeBytes { $0.baseAddress }, before)
        // Data is never written: the tensor takes a copy first.
        let data = (0..<32).map { Float($0) }.withUnsafeBytes { Data($0) }
        var d = try Tensor(dtype: .float32, shape: [32], data: data)
        d.withUnsafeMutableBufferPointer(as: Float.self) { $0[1] = -1 }
        XCTAssertEqual(data.withUnsafeBytes { $0.load(fromByteOffset: 4, as: Float.self) }, 1)
        XCTAssertEqual(try d.scalars(as: Float.self)[1], -1)
    }

    func testEquatableAndDescription() throws {
        let a = try Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4])
        XCTAssertEqual(a, try Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 4]))
        XCTAssertNotEqual(a, try Tensor(shape: [4], scalars: [Float(1), 2, 3, 4]))
        XCTAssertNotEqual(a, try Tensor(shape: [2, 2], scalars: [Float(1), 2, 3, 5]))
        XCTAssertNotEqual(a, try Tensor(shape: [2, 2], scalars: [Double(1), 2, 3, 4]))
        XCTAssertEqual(a.description, "Tensor(float32, [2, 2], [1.0, 2.0, 3.0, 4.0])")
        let long = try Tensor(shape: [10], scalars: (0..<10).map { Int64($0) })
        XCTAssertEqual(long.description, "Tensor(int64, [10], [0, 1, 2, 3, 4, 5, ...])")
        XCTAssertEqual(try Tensor(shape: [1], strings: ["a"]).description, "Tensor(string, [1], [\"a\"])")
    }

    // MARK: - sessions

    func testLookupsAndDimensions() throws {
        let s = try InferenceSession(model: Self.twoHeads(), options: .init())
        XCTAssertEqual(s.input(named: "x")?.dimensions, [1, 4, 16, nil])
        XCTAssertEqual(s.input(named: "x")?.dimensionNames, [nil, nil, nil, "w"])
        XCTAssertNil(s.input(named: "nope"))
        XCTAssertEqual(s.output(named: "z")?.name, "z")
        XCTAssertTrue(s.description.hasPrefix("InferenceSession(inputs: [ValueInfo(name: \"x\""), s.description)
    }

    func testChosenOutputsRunOnlyWhatTheyNeed() throws {
        let s = try InferenceSession(model: Self.twoHeads(), options: .init())
        let x = try Self.input()
        let badShape = try Tensor(shape: [2], scalars: [Int64(3), 5])   // 15 elements: Reshape of 1024 fails
        // All outputs: the Reshape runs and fails.
        XCTAssertThrowsError(try s.run(["x": x, "s": badShape])) { e in
            guard case ONNXError.nodeFailed(_, "Reshape", _)? = e as? ONNXError else { return XCTFail("\(e)") }
        }
        // Only y: the Reshape is not run.
        let y = try s.run(["x": x, "s": badShape], outputs: ["y"])
        XCTAssertEqual(Array(y.keys), ["y"])
        let good = try Tensor(shape: [2], scalars: [Int64(64), 16])
        let all = try s.run(["x": x, "s": good])
        XCTAssertEqual(y["y"], all["y"])
        XCTAssertEqual(try s.run(["x": x, "s": good], outputs: ["z"])["z"], all["z"])
        do throws(ONNXError) {
            _ = try s.run(["x": x, "s": good], outputs: ["nope"])
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error, .unknownOutput("nope"))
        }
    }

    func testOutputIntoCallerBufferFromDataInputCopiesNothing() throws {
        for threads in [1, 2] {
            let s = try InferenceSession(model: Self.twoHeads(), options: .init(threads: threads))
            let x = try Self.input(width: 20)
            let data = x.withUnsafeBytes { Data($0) }
            let xd = try Tensor(dtype: .float32, shape: x.shape, data: data)
            XCTAssertEqual(xd.withUnsafeBytes { $0.baseAddress }, data.withUnsafeBytes { $0.baseAddress })
            let shape = try Tensor(shape: [2], scalars: [Int64(80), 16])
            let expected = try s.run(["x": x, "s": shape])
            let bytes = 8 * 16 * 20 * 4
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            defer { buffer.deallocate() }
            for _ in 0..<3 {   // again with the arena learned
                buffer.initializeMemory(as: UInt8.self, repeating: 0xEE)
                let out = try s.run(["x": xd, "s": shape], into: ["y": buffer], outputs: ["y"])
                // The Relu wrote straight into the buffer: the output views it.
                XCTAssertEqual(out["y"]!.withUnsafeBytes { $0.baseAddress }, UnsafeRawPointer(buffer.baseAddress))
                XCTAssertEqual(out["y"], expected["y"])
                XCTAssertEqual(Array(buffer.bindMemory(to: Float.self).prefix(8)),
                               Array(try expected["y"]!.scalars(as: Float.self).prefix(8)))
                XCTAssertNil(out["z"])
            }
            // z is x itself (a Reshape views its input): copied into its buffer once, all outputs returned.
            let zb = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 20 * 4, alignment: 16)
            defer { zb.deallocate() }
            let both = try s.run(["x": xd, "s": shape], into: ["z": zb])
            XCTAssertEqual(both["z"]!.withUnsafeBytes { $0.baseAddress }, UnsafeRawPointer(zb.baseAddress))
            XCTAssertEqual(both["z"], expected["z"])
            XCTAssertEqual(both["y"], expected["y"])
        }
    }

    func testCallerBufferOfTheWrongSizeIsRefused() throws {
        let s = try InferenceSession(model: Self.twoHeads(), options: .init())
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 100, alignment: 16)
        defer { buffer.deallocate() }
        let shape = try Tensor(shape: [2], scalars: [Int64(64), 16])
        let x = try Self.input()
        do throws(ONNXError) {
            _ = try s.run(["x": x, "s": shape], into: ["y": buffer])
            XCTFail("expected an error")
        } catch {
            guard case .invalidOutputBuffer(let name, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "y")
            XCTAssertTrue(reason.contains("float32 [1, 8, 16, 16], 8192 bytes; the buffer holds 100"), reason)
        }
        XCTAssertThrowsError(try s.run(["x": try Self.input(), "s": shape], into: ["y": buffer], outputs: ["z"]))
        // The session still runs.
        XCTAssertEqual(try s.run(["x": try Self.input(), "s": shape]).count, 2)
    }

    // MARK: - async

    /// The synchronous run, from an async test.
    static func runBlocking(_ s: InferenceSession, _ feeds: [String: Tensor]) throws -> [String: Tensor] { try s.run(feeds) }

    func testAsyncRunMatchesTheSyncRun() async throws {
        let s = try InferenceSession(model: Self.twoHeads(), options: .init(threads: 2))
        let feeds = ["x": try Self.input(), "s": try Tensor(shape: [2], scalars: [Int64(64), 16])]
        let sync = try Self.runBlocking(s, feeds)
        let results = try await withThrowingTaskGroup(of: [String: Tensor].self) { group in
            for _ in 0..<4 { group.addTask { try await s.run(feeds) } }
            var all: [[String: Tensor]] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(results.count, 4)
        for r in results { XCTAssertEqual(r, sync) }
        let onlyY = try await s.run(feeds, outputs: ["y"])
        XCTAssertEqual(onlyY, ["y": sync["y"]!])
    }

    /// A chain of 3000 matrix products (about 1 ms each): a Task cancelled shortly after it starts
    /// stops at the next node with `.cancelled`; one cancelled before it starts never runs.
    func testCancellingTheTaskStopsTheRun() async throws {
        let n = 3000
        var nodes: [Node] = []
        for i in 0..<n { nodes.append(node("MatMul", [i == 0 ? "x" : "h\(i)", "w"], ["h\(i + 1)"])) }
        var rng = SplitMix64(seed: 3)
        let w = try Tensor(shape: [256, 256], scalars: (0..<65536).map { _ in rng.uniform(-0.06, 0.06) })
        let s = try InferenceSession(model: Self.model(nodes, inputs: [vi("x", .float32, [256, 256])],
                                                       outputs: [vi("h\(n)", .float32, [256, 256])], initializers: ["w": w]),
                                       options: .init())
        let x = try Tensor(shape: [256, 256], scalars: (0..<65536).map { _ in rng.uniform(-1, 1) })
        let task = Task { try await s.run(["x": x]) }
        try await Task.sleep(nanoseconds: 50_000_000)
        task.cancel()
        do {
            _ = try await task.value
            XCTFail("the run finished although its Task was cancelled")
        } catch let e as ONNXError {
            XCTAssertEqual(e, .cancelled)
        }
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await s.run(["x": x])
        }
        do {
            _ = try await early.value
            XCTFail("expected .cancelled")
        } catch let e as ONNXError {
            XCTAssertEqual(e, .cancelled)
        }
    }
}
