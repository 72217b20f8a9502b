import Foundation
import SwiftONNX

/// Colorization at a working size: lightness of the whole image area-averaged to a long side of at
/// most `colorWorkingSide`, one model run, chroma upsampled with bilinear interpolation.
/// Memory: the working-size planes only (at most colorWorkingSide^2 floats each) besides the images.
extension EnhancePipeline {
    /// Lab lightness (0...100) of one pixel: gray images by their value, colour ones by their colour.
    @inline(__always)
    func lightness(_ image: ImageBuffer, _ x: Int, _ y: Int) -> Float {
        image.colorChannels == 1
            ? 116 * LabColor.f(LabColor.srgbToLinear(image.sample(x, y, 0))) - 16
            : LabColor.lightness(r: image.sample(x, y, 0), g: image.sample(x, y, 1), b: image.sample(x, y, 2))
    }

    /// The working size for a width and height: the same when the long side fits, else scaled down
    /// (rounded, at least 1).
    static func workingSize(width: Int, height: Int, side: Int) -> (Int, Int) {
        guard side > 0, max(width, height) > side else { return (width, height) }
        let s = Double(side) / Double(max(width, height))
        return (max(1, Int((Double(width) * s).rounded())), max(1, Int((Double(height) * s).rounded())))
    }

    /// For each of `m` cells, the first of the `n` source cells it covers and their weights: cell o
    /// averages the source interval [o r, (o + 1) r) with r = n / m (exact copy when m == n).
    static func areaWeights(from n: Int, to m: Int) -> [(start: Int, weights: [Float])] {
        let r = Double(n) / Double(m)
        return (0..<m).map { o in
            let a = Double(o) * r, b = Double(o + 1) * r
            let i0 = Int(a.rounded(.down)), i1 = min(n, Int(b.rounded(.up)))
            return (i0, (i0..<i1).map { i in Float((min(b, Double(i + 1)) - max(a, Double(i))) / r) })
        }
    }

    /// Bilinear taps (half-pixel centres, edges clamped) from `m` cells to each of `n`.
    static func bilinearTaps(from m: Int, to n: Int) -> [(i0: Int, i1: Int, t: Float)] {
        (0..<n).map { x in
            let u = min(max((Double(x) + 0.5) * Double(m) / Double(n) - 0.5, 0), Double(m - 1))
            let i0 = Int(u.rounded(.down))
            return (i0, min(i0 + 1, m - 1), Float(u - Double(i0)))
        }
    }

    func colorizeWhole(_ image: ImageBuffer, progress: ((EnhanceProgress) -> Void)?,
                       cancellation: CancellationToken?) throws -> ImageBuffer {
        let c = configuration
        let W = image.width, H = image.height
        let (ww, wh) = Self.workingSize(width: W, height: H, side: c.colorWorkingSide)
        progress?(EnhanceProgress(completed: 0, total: 1))
        if cancellation?.isCancelled == true { throw EnhanceError.cancelled }

        // Working lightness: rows area-averaged from source rows, each made of area-averaged columns.
        let xw = Self.areaWeights(from: W, to: ww), yw = Self.areaWeights(from: H, to: wh)
        var lw = [Float](repeating: 0, count: ww * wh)
        var srcRow = [Float](repeating: 0, count: W)
        for (oy, (y0, wys)) in yw.enumerated() {
            for (k, wy) in wys.enumerated() {
                let y = y0 + k
                for x in 0..<W { srcRow[x] = lightness(image, x, y) }
                for (ox, (x0, wxs)) in xw.enumerated() {
                    var sum: Float = 0
                    for (j, wx) in wxs.enumerated() { sum += wx * srcRow[x0 + j] }
                    lw[oy * ww + ox] += wy * sum
                }
            }
        }

        // One model run on the reflection-padded working plane.
        let m = c.padMultiple
        let pw = TileLayout.roundUp(ww, m), ph = TileLayout.roundUp(wh, m)
        var input = [Float](repeating: 0, count: pw * ph)
        for ty in 0..<ph {
            let sy = reflect(ty, wh)
            for tx in 0..<pw { input[ty * pw + tx] = lw[sy * ww + reflect(tx, ww)] / 100 }
        }
        let result = try session.run([inputName: Tensor(shape: [1, 1, ph, pw], scalars: input)])
        guard let t = result[outputName] else { throw EnhanceError.modelContract("no output '\(outputName)'") }
        guard t.shape == [1, 2, ph, pw] else {
            throw EnhanceError.modelContract("for a [1, 1, \(ph), \(pw)] input the output should be [1, 2, \(ph), \(pw)], got \(t.shape)")
        }
        guard t.dtype == .float32 else { throw EnhanceError.modelContract("output must be float32, not \(t.dtype)") }
        let ab = try t.scalars(as: Float.self)  // [2][ph][pw]
        if cancellation?.isCancelled == true { throw EnhanceError.cancelled }

        // Full size: chroma by bilinear interpolation of the working plane, lightness from the image.
        let out = try ImageBuffer(width: W, height: H, channels: image.hasAlpha ? 4 : 3, bitDepth: image.bitDepth)
        let bx = Self.bilinearTaps(from: ww, to: W), by = Self.bilinearTaps(from: wh, to: H)
        let plane = ph * pw
        ab.withUnsafeBufferPointer { p in
            for y in 0..<H {
                let (r0, r1, ty) = by[y]
                for x in 0..<W {
                    let (c0, c1, tx) = bx[x]
                    func at(_ ch: Int) -> Float {
                        let b = ch * plane
                        let top = p[b + r0 * pw + c0] * (1 - tx) + p[b + r0 * pw + c1] * tx
                        let bottom = p[b + r1 * pw + c0] * (1 - tx) + p[b + r1 * pw + c1] * tx
                        return (top * (1 - ty) + bottom * ty) * 128
                    }
                    let (r, g, b) = LabColor.labToSRGB(l: lightness(image, x, y), a: at(0), b: at(1))
                    out.storeSample(x, y, 0, r); out.storeSample(x, y, 1, g); out.storeSample(x, y, 2, b)
                }
            }
        }
        if image.hasAlpha { copyAlpha(from: image, to: out) }
        progress?(EnhanceProgress(completed: 1, total: 1))
        return out
    }
}
