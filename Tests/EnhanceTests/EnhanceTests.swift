import Foundation
import SwiftONNX
@testable import SwiftONNXEnhance
import XCTest

let resources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources")
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func testModel(_ name: String) -> String { resources.appendingPathComponent("models/\(name).onnx").path }

func tempPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftonnx-enhance-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// Largest per-sample difference in integer levels.
func maxDifference(_ a: ImageBuffer, _ b: ImageBuffer) -> Int {
    precondition(a.width == b.width && a.height == b.height && a.channels == b.channels)
    var m = 0
    for y in 0..<a.height { for x in 0..<a.width { for c in 0..<a.channels { m = max(m, abs(a.raw(x, y, c) - b.raw(x, y, c))) } } }
    return m
}

func config(_ task: EnhanceTask, scale: Int = 1, tile: Int, overlap: Int = 16) -> EnhanceConfiguration {
    var c = EnhanceConfiguration.defaults(for: task, scale: scale)
    c.tileSize = tile
    c.overlap = overlap
    c.colorWorkingSide = 0  // colorize in tiles too (the working-size path has its own tests)
    return c
}

final class EnhanceGoldenTests: XCTestCase {
    /// Each task on the bundled photo, compared with ONNX Runtime's output of the same model (make_golden.py).
    func testGoldenImagesMatchONNXRuntime() throws {
        let manifest = try String(contentsOf: resources.appendingPathComponent("golden/manifest.tsv"), encoding: .utf8)
        let photo = try ImageFile.read(path: resources.appendingPathComponent("photo.png").path)
        var checked = 0
        for line in manifest.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: "\t").map(String.init)
            guard f.count >= 4, let scale = Int(f[1]), let pad = Int(f[2]) else { continue }
            // row names are the task, optionally with a suffix ("restore_shipped", "upscale_x4_shipped")
            guard let task = f[0].hasPrefix("upscale") ? .upscale : EnhanceTask(rawValue: String(f[0].prefix { $0 != "_" })) else {
                XCTFail("golden row \(f[0]): unknown task"); continue
            }
            let model = repoRoot.appendingPathComponent(f[3]).path
            guard FileManager.default.fileExists(atPath: model) else {
                XCTFail("golden \(f[0]): model \(f[3]) is missing (regenerate with make_golden.py)"); continue
            }
            var c = EnhanceConfiguration.defaults(for: task, scale: scale)
            c.padMultiple = pad
            if f.count >= 6, let side = Int(f[5]) { c.colorWorkingSide = side }
            let out = try EnhancePipeline(modelPath: model, configuration: c).process(photo)
            let expected = try ImageFile.read(path: resources.appendingPathComponent("golden/\(f[0]).png").path)
            XCTAssertEqual(out.width, expected.width, f[0])
            XCTAssertEqual(out.height, expected.height, f[0])
            XCTAssertEqual(out.channels, 3, f[0])
            let d = maxDifference(out, expected)
            XCTAssertLessThanOrEqual(d, 1, "\(f[0]): max difference \(d)/255 from ONNX Runtime")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }
}

final class EnhanceTilingTests: XCTestCase {
    /// Tiled and whole-image outputs agree within 1/255 on every sample, for every task.
    func testTiledMatchesWhole() throws {
        let photo = try ImageFile.read(path: resources.appendingPathComponent("photo.png").path)
        let cases: [(EnhanceTask, Int, String)] = [(.upscale, 2, "sr_x2"), (.upscale, 4, "sr_x4"), (.restore, 1, "restore"),
                                                     (.deblur, 1, "deblur"), (.colorize, 1, "colorize")]
        for (task, scale, name) in cases {
            let whole = try EnhancePipeline(modelPath: testModel(name), configuration: config(task, scale: scale, tile: 0)).process(photo)
            let tiledPipe = try EnhancePipeline(modelPath: testModel(name), configuration: config(task, scale: scale, tile: 16, overlap: 16))
            XCTAssertGreaterThanOrEqual(tiledPipe.tileCount(width: photo.width, height: photo.height), 8)
            let tiled = try tiledPipe.process(photo)
            XCTAssertLessThanOrEqual(maxDifference(whole, tiled), 1, "\(name): tiled differs from whole")
        }
    }

    /// The shipped models (when present) with the command line's default overlap and 128-pixel tiles
    /// (the default tiles are larger than the sample): tiled and whole outputs agree within 1/255.
    func testShippedModelsTiledMatchesWhole() throws {
        let dir = repoRoot.appendingPathComponent("Models/enhance")
        let samples = repoRoot.appendingPathComponent("Models/samples")
        let cases: [(EnhanceTask, Int, String)] = [(.upscale, 2, "chelsea.png"), (.upscale, 4, "chelsea.png"),
                                                     (.restore, 1, "chelsea_noisy.jpg"), (.deblur, 1, "chelsea_blurred.png")]
        var checked = 0
        for (task, scale, sample) in cases {
            let model = EnhanceConfiguration.defaultModelPath(task: task, scale: scale, directory: dir.path)
            guard FileManager.default.fileExists(atPath: model) else { continue }
            let photo = try ImageFile.read(path: samples.appendingPathComponent(sample).path)
            var c = EnhanceConfiguration.defaults(for: task, scale: scale)
            c.tileSize = 128
            let tiledPipe = try EnhancePipeline(modelPath: model, configuration: c)
            XCTAssertGreaterThanOrEqual(tiledPipe.tileCount(width: photo.width, height: photo.height), 4)
            c.tileSize = 0
            let whole = try EnhancePipeline(modelPath: model, configuration: c).process(photo)
            let d = maxDifference(whole, try tiledPipe.process(photo))
            XCTAssertLessThanOrEqual(d, 1, "\(model): tiled differs from whole by \(d)/255")
            checked += 1
        }
        if checked == 0 { print("note: no shipped models in Models/enhance; skipped") }
    }

    /// Colorize at a working size: one model run, progress 0/1 then 1/1, the size and alpha kept.
    func testColorizeWorkingSize() throws {
        var img = try ImageBuffer(width: 300, height: 140, channels: 2, bitDepth: 8)
        for y in 0..<140 { for x in 0..<300 { img.setRaw(x, y, 0, (x + 2 * y) % 256); img.setRaw(x, y, 1, 200) } }
        var c = EnhanceConfiguration.defaults(for: .colorize)
        c.colorWorkingSide = 64
        let pipe = try EnhancePipeline(modelPath: testModel("colorize"), configuration: c)
        XCTAssertEqual(pipe.tileCount(width: 300, height: 140), 1)
        var seen: [Int] = []
        let out = try pipe.process(img, progress: { seen.append($0.completed) })
        XCTAssertEqual(seen, [0, 1])
        XCTAssertEqual([out.width, out.height, out.channels], [300, 140, 4])
        for y in stride(from: 0, to: 140, by: 7) { for x in stride(from: 0, to: 300, by: 11) { XCTAssertEqual(out.raw(x, y, 3), 200) } }
        // (the values themselves are checked against ONNX Runtime by the golden row colorize_side40)
        XCTAssertEqual(EnhancePipeline.workingSize(width: 300, height: 140, side: 64).0, 64)
        XCTAssertEqual(EnhancePipeline.workingSize(width: 300, height: 140, side: 64).1, 30)
        XCTAssertEqual(EnhancePipeline.workingSize(width: 50, height: 40, side: 64).0, 50)
        for (n, m) in [(300, 64), (7, 3), (5, 5)] {
            for (_, w) in EnhancePipeline.areaWeights(from: n, to: m) { XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-5) }
        }
    }

    func testWeightsPartitionUnity() {
        let spans = TileLayout.spans(length: 100, tile: 32, overlap: 16, align: 8)
        // three tiles of the same 56 pixels (a multiple of 8, at most 32 + 2 * 16) at multiples of
        // 8, spread evenly; neighbors overlap by 32 >= 2 * 16 pixels, core boundaries in the middle
        XCTAssertEqual(spans.map { $0.extent }, [0..<56, 24..<80, 48..<104])
        XCTAssertEqual(spans.map { $0.core }, [0..<40, 40..<64, 64..<100])
        // one tile while the axis is no longer than one tile's read (32 + 2 * 16)
        XCTAssertEqual(TileLayout.spans(length: 64, tile: 32, overlap: 16, align: 8).map { $0.extent }, [0..<64])
        XCTAssertEqual(TileLayout.spans(length: 63, tile: 32, overlap: 16, align: 8).map { $0.extent }, [0..<64])
        XCTAssertEqual(TileLayout.spans(length: 65, tile: 32, overlap: 16, align: 8).count, 2)
        // the axis is rounded up to the pad multiple, as a whole-image run pads it
        XCTAssertEqual(TileLayout.spans(length: 97, tile: 32, overlap: 16, align: 8).map { $0.extent }, [0..<56, 24..<80, 48..<104])
        XCTAssertEqual(TileLayout.spans(length: 97, tile: 32, overlap: 16, align: 8).last?.core, 64..<97)
        // every tile of a 1920-pixel axis reads the same 504 pixels (4 cores of at most 512)
        XCTAssertEqual(Set(TileLayout.spans(length: 1920, tile: 512, overlap: 16).map { $0.extent.count }), [504])
        for s in [1, 3] {
            var sum = [Float](repeating: 0, count: 104 * s)
            for span in spans {
                let w = TileLayout.weights(span: span, scale: s, overlap: 16)
                for (i, v) in w.enumerated() { sum[span.extent.lowerBound * s + i] += v }
            }
            for v in sum.prefix(100 * s) { XCTAssertEqual(v, 1, accuracy: 1e-6) }
        }
    }

    func testProgressReachesTotalAndCancellationStopsBetweenTiles() throws {
        let photo = try ImageFile.read(path: resources.appendingPathComponent("photo.png").path)
        let pipe = try EnhancePipeline(modelPath: testModel("sr_x2"), configuration: config(.upscale, scale: 2, tile: 32, overlap: 8))
        let total = pipe.tileCount(width: photo.width, height: photo.height)
        XCTAssertEqual(total, 3 * 2)
        var seen: [EnhanceProgress] = []
        _ = try pipe.process(photo, progress: { seen.append($0) })
        XCTAssertEqual(seen.map { $0.completed }, Array(0...total))
        XCTAssertTrue(seen.allSatisfy { $0.total == total })

        let token = CancellationToken()
        var last = 0
        XCTAssertThrowsError(try pipe.process(photo, progress: { p in
            last = p.completed
            if p.completed == 2 { token.cancel() }
        }, cancellation: token)) { XCTAssertEqual($0 as? EnhanceError, .cancelled) }
        XCTAssertEqual(last, 2)
    }

    func testAlphaAndGrayAndSixteenBit() throws {
        // RGBA 16-bit: alpha is upscaled (constant stays constant), depth kept.
        var img = try ImageBuffer(width: 20, height: 12, channels: 4, bitDepth: 16)
        for y in 0..<12 { for x in 0..<20 {
            for c in 0..<3 { img.setRaw(x, y, c, (x * 3000 + y * 1000 + c * 7000) % 65536) }
            img.setRaw(x, y, 3, 40000)
        } }
        let out = try EnhancePipeline(modelPath: testModel("sr_x2"), configuration: config(.upscale, scale: 2, tile: 8, overlap: 4)).process(img)
        XCTAssertEqual([out.width, out.height, out.channels, out.bitDepth], [40, 24, 4, 16])
        for y in 0..<24 { for x in 0..<40 { XCTAssertEqual(out.raw(x, y, 3), 40000) } }

        var gray = try ImageBuffer(width: 16, height: 16, channels: 1, bitDepth: 8)
        for y in 0..<16 { for x in 0..<16 { gray.setRaw(x, y, 0, x * 16 + y) } }
        let r = try EnhancePipeline(modelPath: testModel("restore"), configuration: config(.restore, tile: 0)).process(gray)
        XCTAssertEqual([r.width, r.height, r.channels], [16, 16, 1])
        let col = try EnhancePipeline(modelPath: testModel("colorize"), configuration: config(.colorize, tile: 0)).process(gray)
        XCTAssertEqual([col.width, col.height, col.channels], [16, 16, 3])
    }

    func testLabRoundTrip() {
        for (r, g, b) in [(Float(0.2), Float(0.5), Float(0.9)), (1, 1, 1), (0, 0, 0), (0.8, 0.1, 0.3)] {
            let l = LabColor.lightness(r: r, g: g, b: b)
            // with the true a, b a round trip would be exact; neutral a = b = 0 gives gray of the same L
            let (r2, g2, b2) = LabColor.labToSRGB(l: l, a: 0, b: 0)
            XCTAssertEqual(r2, g2, accuracy: 1e-3)
            XCTAssertEqual(g2, b2, accuracy: 1e-3)
            XCTAssertEqual(LabColor.lightness(r: r2, g: g2, b: b2), l, accuracy: 0.05)
        }
        XCTAssertEqual(LabColor.lightness(r: 1, g: 1, b: 1), 100, accuracy: 0.01)
    }

    func testModelContractErrors() throws {
        let photo = try ImageFile.read(path: resources.appendingPathComponent("photo.png").path)
        // An x2 model run as x4: the output shape is wrong and the error says so.
        let pipe = try EnhancePipeline(modelPath: testModel("sr_x2"), configuration: config(.upscale, scale: 4, tile: 0))
        XCTAssertThrowsError(try pipe.process(photo)) { e in
            guard case .modelContract(let m)? = e as? EnhanceError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("[1, 3, 248, 376]"), m)
        }
        XCTAssertThrowsError(try EnhancePipeline(modelPath: "/nonexistent.onnx", configuration: config(.restore, tile: 0)))
        XCTAssertThrowsError(try EnhancePipeline(modelPath: testModel("sr_x2"), configuration: config(.upscale, scale: 2, tile: 8, overlap: 32)))
    }
}

final class ImageFileTests: XCTestCase {
    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: (tempPath("x") as NSString).deletingLastPathComponent)
        super.tearDown()
    }

    func testPNGRoundTripAllLayouts() throws {
        for depth in [8, 16] {
            for ch in 1...4 {
                var img = try ImageBuffer(width: 7, height: 5, channels: ch, bitDepth: depth)
                for y in 0..<5 { for x in 0..<7 { for c in 0..<ch { img.setRaw(x, y, c, (x * 37 + y * 101 + c * 53) * (depth == 16 ? 257 : 1) % (depth == 16 ? 65536 : 256)) } } }
                let p = tempPath("rt_\(depth)_\(ch).png")
                try ImageFile.write(img, path: p)
                let h = try ImageFile.header(path: p)
                XCTAssertEqual(h, ImageHeader(format: .png, width: 7, height: 5, channels: ch, bitDepth: depth, orientation: 1))
                let back = try ImageFile.read(path: p)
                XCTAssertEqual(maxDifference(img, back), 0)
            }
        }
    }

    func testJPEGRoundTripAndExifOrientation() throws {
        var img = try ImageBuffer(width: 16, height: 8, channels: 3, bitDepth: 8)
        for y in 0..<8 { for x in 0..<16 { img.setRaw(x, y, 0, x < 8 ? 250 : 10); img.setRaw(x, y, 1, 128); img.setRaw(x, y, 2, y < 4 ? 200 : 30) } }
        let p = tempPath("rt.jpg")
        try ImageFile.write(img, path: p)
        let back = try ImageFile.read(path: p)
        XCTAssertEqual([back.width, back.height, back.channels], [16, 8, 3])
        for (x, y) in [(2, 1), (13, 1), (2, 6), (13, 6)] {  // away from the edges chroma subsampling blurs
            for c in 0..<3 { XCTAssertEqual(Double(back.raw(x, y, c)), Double(img.raw(x, y, c)), accuracy: 24) }
        }

        // Splice an EXIF APP1 segment (big-endian TIFF, orientation 6 = rotate 90 degrees clockwise) after SOI.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let tiff: [UInt8] = [0x4D, 0x4D, 0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]
        let payload: [UInt8] = Array("Exif".utf8) + [0, 0] + tiff
        let len = payload.count + 2
        bytes.insert(contentsOf: [0xFF, 0xE1, UInt8(len >> 8), UInt8(len & 0xFF)] + payload, at: 2)
        let q = tempPath("rot6.jpg")
        try Data(bytes).write(to: URL(fileURLWithPath: q))
        XCTAssertEqual(ImageFile.exifOrientation(path: q), 6)
        let rot = try ImageFile.read(path: q)
        XCTAssertEqual([rot.width, rot.height], [8, 16])
        // display top-left comes from the stored bottom-left: red high (x < 8), blue low (y >= 4)
        XCTAssertGreaterThan(rot.raw(0, 0, 0), 200)
        XCTAssertLessThan(rot.raw(0, 0, 2), 80)
        // display top-right comes from the stored top-left: blue high
        XCTAssertGreaterThan(rot.raw(7, 0, 2), 150)
    }

    func testOrientationsMatchDefinitions() throws {
        var img = try ImageBuffer(width: 3, height: 2, channels: 1, bitDepth: 8)
        for y in 0..<2 { for x in 0..<3 { img.setRaw(x, y, 0, y * 3 + x) } }  // 0 1 2 / 3 4 5
        func rows(_ b: ImageBuffer) -> [[Int]] { (0..<b.height).map { y in (0..<b.width).map { b.raw($0, y, 0) } } }
        XCTAssertEqual(rows(try img.oriented(2)), [[2, 1, 0], [5, 4, 3]])
        XCTAssertEqual(rows(try img.oriented(3)), [[5, 4, 3], [2, 1, 0]])
        XCTAssertEqual(rows(try img.oriented(4)), [[3, 4, 5], [0, 1, 2]])
        XCTAssertEqual(rows(try img.oriented(5)), [[0, 3], [1, 4], [2, 5]])
        XCTAssertEqual(rows(try img.oriented(6)), [[3, 0], [4, 1], [5, 2]])
        XCTAssertEqual(rows(try img.oriented(7)), [[5, 2], [4, 1], [3, 0]])
        XCTAssertEqual(rows(try img.oriented(8)), [[2, 5], [1, 4], [0, 3]])
    }

    func testBadFilesGiveTypedErrors() throws {
        var img = try ImageBuffer(width: 64, height: 64, channels: 3, bitDepth: 8)
        for y in 0..<64 { for x in 0..<64 { for c in 0..<3 { img.setRaw(x, y, c, (x * 7 + y * 13 + c * 91) & 255) } } }
        for ext in ["png", "jpg"] {
            let p = tempPath("full.\(ext)")
            try ImageFile.write(img, path: p)
            let data = try Data(contentsOf: URL(fileURLWithPath: p))
            let t = tempPath("trunc.\(ext)")
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: t))
            XCTAssertThrowsError(try ImageFile.read(path: t)) { e in
                guard case .corruptFile(let path, _)? = e as? EnhanceError else { return XCTFail("\(ext): \(e)") }
                XCTAssertEqual(path, t)
            }
            // too large for a ceiling: rejected from the header
            XCTAssertThrowsError(try ImageFile.read(path: p, pixelCeiling: 4000)) { e in
                XCTAssertEqual(e as? EnhanceError, .imageTooLarge(path: p, width: 64, height: 64, ceiling: 4000))
            }
        }
        let junk = tempPath("junk.png")
        try Data("GIF89a not really".utf8).write(to: URL(fileURLWithPath: junk))
        XCTAssertThrowsError(try ImageFile.read(path: junk)) { e in
            guard case .unsupportedFormat? = e as? EnhanceError else { return XCTFail("\(e)") }
            XCTAssertTrue("\(e)".contains("GIF"))
            XCTAssertEqual(e.localizedDescription, "\(e)", "localizedDescription says what was wrong")
        }
        let empty = tempPath("empty.png")
        try Data().write(to: URL(fileURLWithPath: empty))
        XCTAssertThrowsError(try ImageFile.read(path: empty)) { e in
            guard case .corruptFile? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ImageFile.read(path: tempPath("missing.png"))) { e in
            guard case .io? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try ImageFile.write(img, path: tempPath("out.bmp"))) { e in
            guard case .unsupportedFormat? = e as? EnhanceError else { return XCTFail("\(e)") }
        }
    }
}
