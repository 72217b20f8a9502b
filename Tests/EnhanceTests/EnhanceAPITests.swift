import Foundation
import SwiftONNX
@testable import SwiftONNXEnhance
import XCTest

/// The pipeline's newer API: the bundled models from any folder, one error type, the async process.
final class EnhanceAPITests: XCTestCase {
    /// `EnhancePipeline(task:)` finds the models that ship with the library with the working
    /// directory somewhere else, and they run.
    func testBundledModelsFromAnotherFolder() throws {
        let before = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(NSTemporaryDirectory()))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(before) }
        for (task, scale) in [(EnhanceTask.upscale, 2), (.upscale, 4), (.restore, 1), (.deblur, 1), (.colorize, 1)] {
            let url = try EnhancePipeline.bundledModelURL(task: task, scale: scale)
            XCTAssertEqual(url.lastPathComponent, EnhancePipeline.bundledModelName(task: task, scale: scale))
            // the very file in the repository's Models/enhance (a link to the target's Models)
            let committed = repoRoot.appendingPathComponent("Models/enhance").appendingPathComponent(url.lastPathComponent)
            XCTAssertEqual(FileManager.default.contents(atPath: url.path), FileManager.default.contents(atPath: committed.path))
        }
        let pipe = try EnhancePipeline(task: .upscale, scale: 2)
        XCTAssertEqual(pipe.configuration, .defaults(for: .upscale, scale: 2))
        let photo = try ImageBuffer(width: 20, height: 12, channels: 3, bitDepth: 8)
        let out = try pipe.process(photo)
        XCTAssertEqual([out.width, out.height, out.channels], [40, 24, 3])
        do throws(EnhanceError) {
            _ = try EnhancePipeline(task: .upscale, scale: 3)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error, .invalidArgument("the bundled upscale models are x2 and x4, not x3"))
        }
    }

    /// A missing model file and a corrupt one are both EnhanceError (the runtime's error inside).
    func testOneErrorTypeForMissingAndCorruptModels() throws {
        let corrupt = tempPath("corrupt.onnx")
        try Data([0x08, 0x07, 0x12, 0xFF, 0xFF]).write(to: URL(fileURLWithPath: corrupt))
        do throws(EnhanceError) {
            _ = try EnhancePipeline(modelPath: corrupt, configuration: .defaults(for: .restore))
            XCTFail("expected an error")
        } catch {
            guard case .model(.invalidModel(let path, _)) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, corrupt)
        }
        do throws(EnhanceError) {
            _ = try EnhancePipeline(modelPath: "/nonexistent.onnx", configuration: .defaults(for: .restore))
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error, .io(path: "/nonexistent.onnx", reason: "model file not found"))
        }
    }

    /// The async process gives the synchronous result with progress, and a cancelled Task stops
    /// between tiles with `.cancelled`.
    func testAsyncProcessAndTaskCancellation() async throws {
        let photo = try ImageFile.read(path: resources.appendingPathComponent("photo.png").path)
        let pipe = try EnhancePipeline(modelPath: testModel("sr_x2"), configuration: config(.upscale, scale: 2, tile: 32, overlap: 8))
        let expected = try Self.processBlocking(pipe, photo)
        let seen = Guarded<[Int]>([])
        let out = try await pipe.process(photo, progress: { p in seen.update { $0.append(p.completed) } })
        XCTAssertEqual(maxDifference(out, expected), 0)
        XCTAssertEqual(seen.value, Array(0...6))

        // The first tile's progress call holds the work until the test has cancelled the Task.
        let started = Guarded(false), released = Guarded(false)
        let task = Task {
            try await pipe.process(photo, progress: { p in
                guard p.completed == 1 else { return }
                started.update { $0 = true }
                while !released.value { usleep(1000) }
            })
        }
        while !started.value { try await Task.sleep(nanoseconds: 1_000_000) }
        task.cancel()
        released.update { $0 = true }
        do {
            _ = try await task.value
            XCTFail("the work finished although its Task was cancelled")
        } catch let e as EnhanceError {
            XCTAssertEqual(e, .cancelled)
        }
    }

    static func processBlocking(_ p: EnhancePipeline, _ image: ImageBuffer) throws -> ImageBuffer { try p.process(image) }
}

/// A value behind a lock, for the test's callbacks.
final class Guarded<Value: Sendable>: @unchecked Sendable {   // @unchecked: every access holds the lock
    private let lock = NSLock()
    private var stored: Value
    init(_ v: Value) { stored = v }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func update(_ f: (inout Value) -> Void) { lock.lock(); defer { lock.unlock() }; f(&stored) }
}
