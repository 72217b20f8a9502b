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

    /// Images in memory and at file URLs: PNG of every layout and JPEG round-trip through Data with
    /// the bytes the file functions write, EXIF orientation applies, bad bytes are typed errors.
    func testImagesInMemoryAndAtURLs() throws {
        for depth in [8, 16] {
            for ch in 1...4 {
                var img = try ImageBuffer(width: 9, height: 4, channels: ch, bitDepth: depth)
                for y in 0..<4 { for x in 0..<9 { for c in 0..<ch { img.setRaw(x, y, c, (x * 29 + y * 71 + c * 13) * (depth == 16 ? 251 : 1) % (depth == 16 ? 65536 : 256)) } } }
                let png = try ImageFile.encode(img, format: .png)
                XCTAssertEqual(try ImageFile.format(of: png), .png)
                XCTAssertEqual(try ImageFile.header(of: png), ImageHeader(format: .png, width: 9, height: 4, channels: ch, bitDepth: depth, orientation: 1))
                XCTAssertEqual(maxDifference(try ImageFile.read(data: png), img), 0)
                // the same bytes as the file writer's
                let url = URL(fileURLWithPath: tempPath("mem_\(depth)_\(ch).png"))
                try ImageFile.write(img, to: url)
                XCTAssertEqual(try Data(contentsOf: url), png)
                XCTAssertEqual(maxDifference(try ImageFile.read(contentsOf: url), img), 0)
            }
        }
        var rgb = try ImageBuffer(width: 16, height: 8, channels: 3, bitDepth: 8)
        for y in 0..<8 { for x in 0..<16 { rgb.setRaw(x, y, 0, x < 8 ? 250 : 10); rgb.setRaw(x, y, 1, 128); rgb.setRaw(x, y, 2, y < 4 ? 200 : 30) } }
        let jpeg = try ImageFile.encode(rgb, format: .jpeg, jpegQuality: 90)
        let url = URL(fileURLWithPath: tempPath("mem.jpg"))
        try ImageFile.write(rgb, to: url, jpegQuality: 90)
        XCTAssertEqual(try Data(contentsOf: url), jpeg)
        XCTAssertEqual(maxDifference(try ImageFile.read(data: jpeg), try ImageFile.read(path: url.path)), 0)
        // EXIF orientation 6 spliced in after SOI: read from memory in display orientation
        var bytes = [UInt8](jpeg)
        let tiff: [UInt8] = [0x4D, 0x4D, 0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]
        let payload: [UInt8] = Array("Exif".utf8) + [0, 0] + tiff
        bytes.insert(contentsOf: [0xFF, 0xE1, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload, at: 2)
        let rotated = try ImageFile.read(data: Data(bytes))
        XCTAssertEqual([rotated.width, rotated.height], [8, 16])
        XCTAssertEqual(try ImageFile.header(of: Data(bytes)).orientation, 6)
        // bad bytes: typed errors naming "<data>"
        XCTAssertThrowsError(try ImageFile.read(data: jpeg.prefix(jpeg.count / 2))) { e in
            guard case .corruptFile("<data>", _)? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ImageFile.read(data: Data("GIF89a....".utf8))) { e in
            guard case .unsupportedFormat("<data>", _)? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ImageFile.read(data: Data())) { e in
            guard case .corruptFile("<data>", _)? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ImageFile.read(data: try ImageFile.encode(rgb, format: .png), pixelCeiling: 100)) { e in
            XCTAssertEqual(e as? EnhanceError, .imageTooLarge(path: "<data>", width: 16, height: 8, ceiling: 100))
        }
        XCTAssertThrowsError(try ImageFile.read(contentsOf: URL(string: "https://example.com/x.png")!))
    }

    /// Images are values: a copy keeps its pixels when the original is written; equality compares
    /// size, layout and samples.
    func testImagesAreValues() throws {
        var a = try ImageBuffer(width: 3, height: 2, channels: 3, bitDepth: 8)
        a.setRaw(0, 0, 0, 200)
        let b = a
        XCTAssertEqual(a, b)
        let shared = a.withUnsafeBytes { $0.baseAddress }
        XCTAssertEqual(b.withUnsafeBytes { $0.baseAddress }, shared, "copies share pixels until one is written")
        a.setSample(1, 1, 2, 1)
        XCTAssertNotEqual(a.withUnsafeBytes { $0.baseAddress }, shared)
        XCTAssertEqual(b.raw(1, 1, 2), 0, "the copy did not change")
        XCTAssertEqual(a.raw(1, 1, 2), 255)
        XCTAssertEqual(a.raw(0, 0, 0), 200)
        XCTAssertNotEqual(a, b)
        a.withUnsafeMutableBytes { $0[0] = 7 }
        XCTAssertEqual(a.raw(0, 0, 0), 7)
        XCTAssertNotEqual(try ImageBuffer(width: 3, height: 2, channels: 1, bitDepth: 8), try ImageBuffer(width: 2, height: 3, channels: 1, bitDepth: 8))
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
