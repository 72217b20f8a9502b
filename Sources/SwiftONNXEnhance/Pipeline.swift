import Synchronization
import Foundation
import CImageIO
import SwiftONNX

/// The enhancement tasks and what each model takes and gives (the model contract):
/// NCHW float32 with dynamic H and W, one input and one output.
/// - upscale: RGB [0,1] in, RGB at `scale` times the size out.
/// - restore, deblur: RGB [0,1] in and out, same size; the input is reflection-padded to a multiple
///   of `padMultiple` and the output cropped back.
/// - colorize: Lab L/100 (1 channel) in, ab/128 (2 channels) out; the original L is kept. The model
///   runs once on the whole image's lightness at a working size (`colorWorkingSide`), not in tiles.
/// Outputs are clamped to [0, 1] by the pipeline, not the model.
public enum EnhanceTask: String, CaseIterable, Sendable {
    case upscale, restore, deblur, colorize
}

/// How a pipeline runs its model: the task, the scale, the size granularity, tiling and overlap,
/// the pixel ceiling and colorize's working size. Start from ``defaults(for:scale:)``.
public struct EnhanceConfiguration: Sendable, Equatable {
    /// What the model does, and so how its input is made and its output used.
    public var task: EnhanceTask
    /// Output size / input size (upscale: 2 or 4; others 1). A pipeline accepts 1...16.
    public var scale: Int
    /// Tile sizes and padding are rounded up to multiples of this (the model's size granularity).
    /// 1...1024; a model's "size_multiple" metadata raises it to a common multiple of both.
    public var padMultiple: Int
    /// Tile core size in input pixels; 0 runs the whole image at once. Rounded up to ``padMultiple``,
    /// it must be at least 8 and at least the (rounded) ``overlap``. Smaller tiles use less memory.
    public var tileSize: Int
    /// Extra input pixels each tile reads on each side that has a neighbor; the inner half is blended
    /// with a linear ramp, the outer half (where the model sees the tile's edge) is dropped. In input
    /// pixels, not negative; rounded up to ``padMultiple``.
    public var overlap: Int
    /// Images with more pixels (width x height of the input) than this are rejected with
    /// ``EnhanceError/imageTooLarge(path:width:height:ceiling:)`` (0: no ceiling). The default is
    /// ``ImageFile/defaultPixelCeiling``, 64 megapixels.
    public var pixelCeiling: Int
    /// Colorize only: the model runs once on the whole image's lightness, area-averaged down to
    /// a long side of at most this many pixels; the predicted chroma (a, b) is upsampled
    /// (bilinear) to full size and combined with the full-resolution lightness. Chroma is smooth,
    /// the model sees the whole scene at the scale it was trained on, there are no seams and
    /// memory stays bounded. 0: full resolution, in tiles like the other tasks (the shipped model
    /// has a global context, so each tile then gets its own and neighbouring tiles may disagree).
    /// 0...8192; the default is 512.
    public var colorWorkingSide: Int

    /// A configuration with these settings; the pipeline checks their ranges
    /// (``EnhancePipeline/init(session:configuration:)``). The defaults (scale 1, pad multiple 1,
    /// 512-pixel tiles, 32 pixels of overlap, 64 megapixels, working side 512) suit a model without
    /// size constraints; ``defaults(for:scale:)`` gives each task's own settings.
    ///
    /// - Parameters:
    ///   - task: What the model does.
    ///   - scale: Output size / input size, 1...16 (upscale: the model's factor; others 1).
    ///   - padMultiple: The model's size granularity, 1...1024.
    ///   - tileSize: Tile core size in input pixels; 0 for the whole image at once.
    ///   - overlap: Extra input pixels each tile reads on each side that has a neighbour.
    ///   - pixelCeiling: The most pixels an image may have; 0 for no ceiling.
    ///   - colorWorkingSide: Colorize only: the long side of the working size, 0...8192; 0 for tiles at
    ///     full resolution.
    public init(task: EnhanceTask, scale: Int = 1, padMultiple: Int = 1, tileSize: Int = 512, overlap: Int = 32,
                pixelCeiling: Int = ImageFile.defaultPixelCeiling, colorWorkingSide: Int = 512) {
        self.task = task
        self.colorWorkingSide = colorWorkingSide
        self.scale = scale
        self.padMultiple = padMultiple
        self.tileSize = tileSize
        self.overlap = overlap
        self.pixelCeiling = pixelCeiling
    }

    /// The settings for a task: upscale uses 640-pixel tiles with 24 pixels of overlap (the shipped
    /// SR models see 11 input pixels around each output, fewer than the 12 that a tile drops at each
    /// inner edge; larger tiles and less overlap recompute fewer pixels: a 1920x1080 photo reads 1.10x
    /// its pixels in 3x2 tiles, against 1.17x in 4x2 tiles of 512 with 32); restore and deblur pad to
    /// a multiple of 8; deblur reads 48 pixels of overlap (its shipped model's outputs still move by
    /// 2/255 with 32, from context that far away).
    ///
    /// - Parameters:
    ///   - task: The task.
    ///   - scale: Upscale only: the model's factor (2 or 4 for the bundled models); ignored for the
    ///     other tasks.
    public static func defaults(for task: EnhanceTask, scale: Int = 2) -> EnhanceConfiguration {
        switch task {
        case .upscale: return EnhanceConfiguration(task: task, scale: scale, tileSize: 640, overlap: 24)
        case .restore: return EnhanceConfiguration(task: task, padMultiple: 8)
        case .deblur: return EnhanceConfiguration(task: task, padMultiple: 8, overlap: 48)
        case .colorize: return EnhanceConfiguration(task: task)
        }
    }

    /// Where the model for a task lives under `directory`, named as the bundled ones are
    /// (`EnhancePipeline.bundledModelName(task:scale:)`).
    ///
    /// - Parameters:
    ///   - task: The task.
    ///   - scale: Upscale only: the factor in the file name (`sr_x2.onnx`); ignored for the other
    ///     tasks.
    ///   - directory: The folder that holds the models.
    public static func defaultModelPath(task: EnhanceTask, scale: Int = 2, directory: String) -> String {
        (directory as NSString).appendingPathComponent(EnhancePipeline.bundledModelName(task: task, scale: scale))
    }

    var modelInputChannels: Int { task == .colorize ? 1 : 3 }
    var modelOutputChannels: Int { task == .colorize ? 2 : 3 }
}

/// Work done so far: tiles finished out of the total.
public struct EnhanceProgress: Sendable, Equatable {
    /// Tiles finished so far: 0 in the first report, ``total`` in the last.
    public var completed: Int
    /// Tiles of the whole image (one for colorize at a working size).
    public var total: Int
    /// ``completed`` over ``total``, 0...1 (1 when there is nothing to do).
    public var fraction: Double { total == 0 ? 1 : Double(completed) / Double(total) }
}

/// A flag another thread sets to stop the work between tiles (`EnhanceError.cancelled`).
public final class CancellationToken: Sendable {
    private let flag = Atomic(false)
    /// A token whose cancellation this one follows too (the caller's, under the async API's own).
    private let parent: CancellationToken?
    /// A token that is not cancelled.
    public init() { parent = nil }
    init(following parent: CancellationToken?) { self.parent = parent }
    /// Asks the work to stop: it throws ``EnhanceError/cancelled`` before its next tile. Safe from any
    /// thread; cannot be undone.
    public func cancel() { flag.store(true, ordering: .releasing) }
    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { flag.load(ordering: .acquiring) || (parent?.isCancelled ?? false) }
}

/// Runs an enhancement model over images of any size up to the ceiling, tile by tile.
/// Memory: the input and output images (8- or 16-bit), one tile's tensors, and a float
/// accumulator for one row of tiles.
///
/// A pipeline is immutable and `Sendable`: one may process several images at once from different
/// threads or tasks. Every throwing function throws ``EnhanceError``.
public final class EnhancePipeline: Sendable {
    /// The runtime session of the model (its inputs, outputs and metadata).
    public let session: InferenceSession
    /// The configuration in use: the one given, checked, with ``EnhanceConfiguration/padMultiple``
    /// raised to the model's "size_multiple" metadata when it has one.
    public let configuration: EnhanceConfiguration
    let inputName: String
    let outputName: String

    /// Threads a pipeline uses unless told otherwise: two, or one on a single-core machine. (A
    /// tile's convolutions split well over two threads; more rarely pay on these models.)
    public static var defaultThreads: Int { min(2, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// A pipeline on the model at `modelPath`. A missing file is `EnhanceError.io`; a file the
    /// runtime cannot load is `.model` with the runtime's error.
    ///
    /// - Parameters:
    ///   - modelPath: The path of the model's `.onnx` file.
    ///   - configuration: The task and its settings; see ``EnhanceConfiguration/defaults(for:scale:)``.
    ///   - threads: Threads for each run of the model (`SessionOptions.threads`); by default two
    ///     where the machine has them (``defaultThreads``).
    public convenience init(modelPath: String, configuration: EnhanceConfiguration,
                            threads: Int = EnhancePipeline.defaultThreads) throws(EnhanceError) {
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw EnhanceError.io(path: modelPath, reason: "model file not found")
        }
        let session: InferenceSession
        do {
            session = try InferenceSession(path: modelPath, options: SessionOptions(threads: threads))
        } catch {
            throw .model(error)
        }
        try self.init(session: session, configuration: configuration)
    }

    /// A pipeline on a session of an enhancement model (see `EnhanceTask` for the model contract).
    /// Throws ``EnhanceError/invalidArgument(_:)`` for a setting out of range and
    /// ``EnhanceError/modelContract(_:)`` when the model has not exactly one input or no output, or
    /// its input is not float32. The output's shape is checked on each tile.
    ///
    /// - Parameters:
    ///   - session: A session of a model that follows the task's contract.
    ///   - configuration: The task and its settings; see ``EnhanceConfiguration/defaults(for:scale:)``.
    public init(session: InferenceSession, configuration: EnhanceConfiguration) throws(EnhanceError) {
        var c = configuration
        // A model may say which size multiple it needs (metadata "size_multiple"): pad to a common multiple.
        if let s = session.metadata.customMetadata["size_multiple"], let m = Int(s), m > 1, m <= 1024 {
            var a = c.padMultiple, b = m
            while b != 0 { (a, b) = (b, a % b) }
            c.padMultiple = c.padMultiple / a * m
        }
        guard c.scale >= 1, c.scale <= 16 else { throw EnhanceError.invalidArgument("scale must be 1...16, not \(c.scale)") }
        guard c.padMultiple >= 1, c.padMultiple <= 1024 else { throw EnhanceError.invalidArgument("pad multiple must be 1...1024") }
        guard c.colorWorkingSide >= 0, c.colorWorkingSide <= 8192 else {
            throw EnhanceError.invalidArgument("colour working side must be 0...8192, not \(c.colorWorkingSide)")
        }
        guard c.tileSize >= 0, c.overlap >= 0 else { throw EnhanceError.invalidArgument("tile size and overlap must not be negative") }
        if c.tileSize > 0 {
            let t = TileLayout.roundUp(c.tileSize, c.padMultiple), o = TileLayout.roundUp(c.overlap, c.padMultiple)
            guard t >= max(o, 8) else {
                throw EnhanceError.invalidArgument("tile size \(t) must be at least the overlap \(o) and at least 8")
            }
        }
        guard session.inputs.count == 1, session.outputs.count >= 1 else {
            throw EnhanceError.modelContract("expected one input and an output, got \(session.inputs.count) inputs and \(session.outputs.count) outputs")
        }
        let inp = session.inputs[0]
        if let t = inp.type, t != .float32 { throw EnhanceError.modelContract("input '\(inp.name)' must be float32, not \(t)") }
        self.session = session
        self.configuration = c
        self.inputName = inp.name
        self.outputName = session.outputs[0].name
    }

    /// How many tiles an image of this size takes (colorize at a working size: one): the
    /// ``EnhanceProgress/total`` that `process` reports.
    ///
    /// - Parameters:
    ///   - width: The input image's width in pixels.
    ///   - height: The input image's height in pixels.
    public func tileCount(width: Int, height: Int) -> Int {
        let c = configuration
        if c.task == .colorize, c.colorWorkingSide > 0 { return 1 }
        return TileLayout.spans(length: width, tile: c.tileSize, overlap: c.overlap, align: c.padMultiple).count
            * TileLayout.spans(length: height, tile: c.tileSize, overlap: c.overlap, align: c.padMultiple).count
    }

    /// Enhances an image. The result has the input's bit depth; colorize gives RGB (with the
    /// input's alpha), the other tasks keep the input's channel layout. Alpha is copied, or
    /// upscaled with bicubic interpolation.
    /// `progress` is called after each tile; `cancellation` is checked before each tile. From
    /// async code use the async `process`, which does not block a thread of the cooperative pool.
    /// Blocks the calling thread until the image is done. Throws
    /// ``EnhanceError/imageTooLarge(path:width:height:ceiling:)`` (path "<image>") for an image over
    /// the configuration's pixel ceiling, ``EnhanceError/cancelled`` when `cancellation` is cancelled,
    /// ``EnhanceError/modelContract(_:)`` when the model's output has the wrong shape or type,
    /// ``EnhanceError/model(_:)`` when the runtime fails, and ``EnhanceError/outOfMemory(bytes:)``.
    ///
    /// - Parameters:
    ///   - image: The image to enhance, at most ``EnhanceConfiguration/pixelCeiling`` pixels.
    ///   - progress: Called on the calling thread with the tiles done so far: before the first tile and
    ///     after each.
    ///   - cancellation: A token another thread may cancel to stop the work between tiles.
    @available(*, noasync, message: "use the async process(_:progress:cancellation:)")
    public func process(_ image: ImageBuffer, progress: ((EnhanceProgress) -> Void)? = nil,
                        cancellation: CancellationToken? = nil) throws(EnhanceError) -> ImageBuffer {
        try typedEnhance { try processTiles(image, progress: progress, cancellation: cancellation) }
    }

    /// The asynchronous `process`: the work runs on the pipeline's own queue, not on the caller's
    /// thread (nor on Swift concurrency's cooperative pool). `progress` is called from that queue
    /// after each tile. Cancelling the calling Task stops the work before its next tile and throws
    /// `EnhanceError.cancelled`, as does `cancellation` when given.
    ///
    /// - Parameters:
    ///   - image: The image to enhance, at most ``EnhanceConfiguration/pixelCeiling`` pixels.
    ///   - progress: Called on the pipeline's queue with the tiles done so far: before the first tile
    ///     and after each.
    ///   - cancellation: A token that stops the work between tiles, besides the calling Task's
    ///     cancellation.
    public func process(_ image: ImageBuffer, progress: sending ((EnhanceProgress) -> Void)? = nil,
                        cancellation: CancellationToken? = nil) async throws(EnhanceError) -> ImageBuffer {
        let token = CancellationToken(following: cancellation)
        if Task.isCancelled { throw .cancelled }
        let progress = SentClosure(progress)
        let result: Result<ImageBuffer, EnhanceError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Result<ImageBuffer, EnhanceError>, Never>) in
                Self.queue.async {
                    done.resume(returning: Result { () throws(EnhanceError) in
                        try self.process(image, progress: progress.value, cancellation: token)
                    })
                }
            }
        } onCancel: {
            token.cancel()
        }
        return try result.get()
    }

    /// A closure the caller gave up (`sending`) on its way to the queue that calls it.
    private struct SentClosure: @unchecked Sendable {   // @unchecked: sent, so no one else calls it
        let value: ((EnhanceProgress) -> Void)?
        init(_ v: ((EnhanceProgress) -> Void)?) { value = v }
    }

    /// Where the async API runs the work.
    private static let queue = DispatchQueue(label: "SwiftONNXEnhance.process", qos: .userInitiated, attributes: .concurrent)

    private func processTiles(_ image: ImageBuffer, progress: ((EnhanceProgress) -> Void)?,
                              cancellation: CancellationToken?) throws -> ImageBuffer {
        let c = configuration
        let s = c.scale, m = c.padMultiple
        let W = image.width, H = image.height
        if c.pixelCeiling > 0, W * H > c.pixelCeiling {
            throw EnhanceError.imageTooLarge(path: "<image>", width: W, height: H, ceiling: c.pixelCeiling)
        }
        if c.task == .colorize, c.colorWorkingSide > 0 {
            return try colorizeWhole(image, progress: progress, cancellation: cancellation)
        }
        let overlap = TileLayout.roundUp(c.overlap, m)
        let xs = TileLayout.spans(length: W, tile: c.tileSize, overlap: c.overlap, align: m)
        let ys = TileLayout.spans(length: H, tile: c.tileSize, overlap: c.overlap, align: m)
        let total = xs.count * ys.count
        let outW = W * s, outH = H * s
        let outChannels = c.task == .colorize ? (image.hasAlpha ? 4 : 3) : image.channels
        let out = try ImageBuffer(width: outW, height: outH, channels: outChannels, bitDepth: image.bitDepth)
        let cm = c.modelOutputChannels
        let xWeights = xs.map { TileLayout.weights(span: $0, scale: s, overlap: overlap) }

        // Float accumulator for the output rows of one row of tiles: [row][x][channel].
        let capRows = (ys.map { $0.extent.count }.max() ?? 0) * s
        let rowFloats = outW * cm
        let (accCount, ovf) = capRows.multipliedReportingOverflow(by: rowFloats)
        guard !ovf else { throw EnhanceError.outOfMemory(bytes: Int.max) }
        var acc = [Float](repeating: 0, count: accCount)
        var accStart = 0  // output row held in acc row 0

        func flush(upTo end: Int) {
            guard end > accStart else { return }
            acc.withUnsafeMutableBufferPointer { a in
                for y in accStart..<end {
                    let row = a.baseAddress! + (y - accStart) * rowFloats
                    finishRow(y: y, row: row, image: image, out: out)
                }
                let keep = capRows - (end - accStart)
                let base = a.baseAddress!
                if keep > 0 { base.update(from: base + (end - accStart) * rowFloats, count: keep * rowFloats) }
                (base + max(keep, 0) * rowFloats).update(repeating: 0, count: (capRows - max(keep, 0)) * rowFloats)
            }
            accStart = end
        }

        // One input and one output buffer for every tile: all tiles have the same shape (TileLayout),
        // so the model writes each tile's output into the same memory and nothing is allocated per tile.
        let tileW = TileLayout.roundUp(xs[0].extent.count, m), tileH = TileLayout.roundUp(ys[0].extent.count, m)
        let (inCount, o1) = (c.modelInputChannels * tileH).multipliedReportingOverflow(by: tileW)
        let (outCount, o2) = (cm * tileH * s * s).multipliedReportingOverflow(by: tileW)
        guard !o1, !o2 else { throw EnhanceError.outOfMemory(bytes: Int.max) }
        // Every tile has this shape: plan for it now, so that the first tile already runs that plan
        // (and records its memory) instead of the general plan (a shape is otherwise planned on its
        // second run, which then records again). A shape that does not fit fails in the run.
        if total > 1 { try? session.prepare(inputShapes: [inputName: [1, c.modelInputChannels, tileH, tileW]]) }
        let inBuf = UnsafeMutablePointer<Float>.allocate(capacity: max(inCount, 1))
        let outBuf = UnsafeMutablePointer<Float>.allocate(capacity: max(outCount, 1))
        defer { inBuf.deallocate(); outBuf.deallocate() }

        var done = 0
        progress?(EnhanceProgress(completed: 0, total: total))
        for ySpan in ys {
            flush(upTo: ySpan.extent.lowerBound * s)
            let yWeights = TileLayout.weights(span: ySpan, scale: s, overlap: overlap)
            for (xi, xSpan) in xs.enumerated() {
                if cancellation?.isCancelled == true { throw EnhanceError.cancelled }
                let tile = try runTile(image: image, xSpan: xSpan, ySpan: ySpan, input: inBuf, output: outBuf)
                // tile: [cm][tile.height][tile.width]
                // a tile may run past the image's right or bottom edge (up to the pad multiple, as a
                // whole-image run pads it): those outputs are not kept
                let x0 = xSpan.extent.lowerBound * s, y0 = ySpan.extent.lowerBound * s
                let tw = min(xSpan.extent.count * s, outW - x0), th = min(ySpan.extent.count * s, outH - y0)
                let wx = xWeights[xi]
                do {
                    let t = UnsafeBufferPointer(start: UnsafePointer(tile.values), count: cm * tile.height * tile.width)
                    acc.withUnsafeMutableBufferPointer { a in
                        for ty in 0..<th {
                            let wyv = yWeights[ty]
                            if wyv == 0 { continue }
                            let arow = a.baseAddress! + (y0 + ty - accStart) * rowFloats + x0 * cm
                            for ch in 0..<cm {
                                let trow = t.baseAddress! + (ch * tile.height + ty) * tile.width
                                for tx in 0..<tw {
                                    arow[tx * cm + ch] += trow[tx] * (wx[tx] * wyv)
                                }
                            }
                        }
                    }
                }
                done += 1
                progress?(EnhanceProgress(completed: done, total: total))
            }
        }
        flush(upTo: outH)
        if image.hasAlpha { copyAlpha(from: image, to: out) }
        return out
    }

    struct TileOutput {
        var values: UnsafeMutablePointer<Float>   // [channels][height][width]
        var width: Int   // padded output width
        var height: Int  // padded output height
    }

    /// Runs the model on one tile and checks the output shape. Where the tile (or the whole image)
    /// runs past the image's edge, up to the pad multiple, the image is reflected (numpy "reflect").
    /// `input` holds the tile's model input and `output` receives the model's output (each sized for
    /// the tile's padded shape); the returned tile views `output`.
    func runTile(image: ImageBuffer, xSpan: TileSpan, ySpan: TileSpan, input: UnsafeMutablePointer<Float>,
                 output: UnsafeMutablePointer<Float>) throws -> TileOutput {
        let c = configuration
        let pw = TileLayout.roundUp(xSpan.extent.count, c.padMultiple), ph = TileLayout.roundUp(ySpan.extent.count, c.padMultiple)
        let cin = c.modelInputChannels
        let xMap = (0..<pw).map { reflect(xSpan.extent.lowerBound + $0, image.width) }
        let yMap = (0..<ph).map { reflect(ySpan.extent.lowerBound + $0, image.height) }
        let gray = image.colorChannels == 1
        do {
            let p = input
            let plane = ph * pw
            for ty in 0..<ph {
                let sy = yMap[ty]
                for tx in 0..<pw {
                    let sx = xMap[tx]
                    let i = ty * pw + tx
                    if c.task == .colorize {
                        let l: Float = gray
                            ? 116 * LabColor.f(LabColor.srgbToLinear(image.sample(sx, sy, 0))) - 16
                            : LabColor.lightness(r: image.sample(sx, sy, 0), g: image.sample(sx, sy, 1), b: image.sample(sx, sy, 2))
                        p[i] = l / 100
                    } else if gray {
                        let v = image.sample(sx, sy, 0)
                        p[i] = v; p[plane + i] = v; p[2 * plane + i] = v
                    } else {
                        p[i] = image.sample(sx, sy, 0)
                        p[plane + i] = image.sample(sx, sy, 1)
                        p[2 * plane + i] = image.sample(sx, sy, 2)
                    }
                }
            }
        }
        let want = [1, c.modelOutputChannels, ph * c.scale, pw * c.scale]
        let feed = try Tensor(dtype: .float32, shape: [1, cin, ph, pw],
                              bytesNoCopy: UnsafeRawBufferPointer(start: input, count: cin * ph * pw * 4))
        let outBytes = UnsafeMutableRawBufferPointer(start: output, count: want.reduce(1, *) * 4)
        let result: [String: Tensor]
        do {
            result = try session.run([inputName: feed], into: [outputName: outBytes], outputs: [outputName])
        } catch {
            // A failure, or an output that does not fit [1, channels, scale * H, scale * W] float32:
            // run without the buffer to say what the model gives (its own error, if it fails again).
            let t = try session.run([inputName: feed], outputs: [outputName])[outputName]
            guard let t, t.shape == want, t.dtype == .float32 else {
                throw EnhanceError.modelContract("for a \(describe([1, cin, ph, pw])) input the output should be float32 \(describe(want)), got "
                                                 + (t.map { "\($0.dtype) \(describe($0.shape))" } ?? "none"))
            }
            throw error
        }
        guard let t = result[outputName] else { throw EnhanceError.modelContract("no output '\(outputName)'") }
        guard t.shape == want else {
            throw EnhanceError.modelContract("for a \(describe([1, cin, ph, pw])) input the output should be \(describe(want)), got \(describe(t.shape))")
        }
        guard t.dtype == .float32 else { throw EnhanceError.modelContract("output must be float32, not \(t.dtype)") }
        return TileOutput(values: output, width: pw * c.scale, height: ph * c.scale)
    }

    private func describe(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    /// Turns one accumulated row (model outputs, already blended) into output pixels.
    func finishRow(y: Int, row: UnsafeMutablePointer<Float>, image: ImageBuffer, out: ImageBuffer) {
        let cm = configuration.modelOutputChannels
        if configuration.task == .colorize {
            let gray = image.colorChannels == 1
            for x in 0..<out.width {
                let l: Float = gray
                    ? 116 * LabColor.f(LabColor.srgbToLinear(image.sample(x, y, 0))) - 16
                    : LabColor.lightness(r: image.sample(x, y, 0), g: image.sample(x, y, 1), b: image.sample(x, y, 2))
                let (r, g, b) = LabColor.labToSRGB(l: l, a: row[x * cm] * 128, b: row[x * cm + 1] * 128)
                out.storeSample(x, y, 0, r); out.storeSample(x, y, 1, g); out.storeSample(x, y, 2, b)
            }
        } else if out.colorChannels == 1 {
            for x in 0..<out.width { out.storeSample(x, y, 0, (row[x * 3] + row[x * 3 + 1] + row[x * 3 + 2]) / 3) }
        } else if out.bitDepth == 8 {
            // storeSample's arithmetic (clamp to [0, 1], NaN to 0, scale, round half away from zero)
            // in a C loop the compiler vectorizes (Swift's rounding called floorf per sample)
            let n = out.width, ch = out.channels
            sio_rgb_f32_to_u8(row, out.data.assumingMemoryBound(to: UInt8.self) + y * n * ch, n, ch)
        } else {
            for x in 0..<out.width {
                out.storeSample(x, y, 0, row[x * 3]); out.storeSample(x, y, 1, row[x * 3 + 1]); out.storeSample(x, y, 2, row[x * 3 + 2])
            }
        }
    }

    /// Copies the alpha channel, upscaling it with bicubic interpolation (Keys, a = -0.5) when the sizes differ.
    func copyAlpha(from image: ImageBuffer, to out: ImageBuffer) {
        let ia = image.channels - 1, oa = out.channels - 1
        let s = configuration.scale
        if s == 1 {
            for y in 0..<out.height { for x in 0..<out.width { out.storeRaw(x, y, oa, image.raw(x, y, ia)) } }
            return
        }
        func taps(_ q: Int, _ n: Int) -> ([Int], [Float]) {
            let u = (Float(q) + 0.5) / Float(s) - 0.5
            let i0 = Int(u.rounded(.down)), t = u - Float(i0)
            func k(_ d: Float) -> Float {
                let a: Float = -0.5, x = abs(d)
                if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
                return 0
            }
            let idx = (-1...2).map { min(max(i0 + $0, 0), n - 1) }
            let w = (-1...2).map { k(t - Float($0)) }
            return (idx, w)
        }
        let xt = (0..<out.width).map { taps($0, image.width) }
        for y in 0..<out.height {
            let (yi, yw) = taps(y, image.height)
            for x in 0..<out.width {
                let (xi, xw) = xt[x]
                var v: Float = 0
                for j in 0..<4 {
                    var r: Float = 0
                    for i in 0..<4 { r += xw[i] * image.sample(xi[i], yi[j], ia) }
                    v += yw[j] * r
                }
                out.storeSample(x, y, oa, v)
            }
        }
    }
}

/// numpy "reflect" padding index: the edge pixel is not repeated.
@inline(__always) func reflect(_ i: Int, _ n: Int) -> Int {
    if n <= 1 { return 0 }
    let period = 2 * (n - 1)
    var k = i % period
    if k < 0 { k += period }
    return k < n ? k : period - k
}
