/// One tile's extent along one axis, in input pixels: the core ranges of all tiles partition the
/// axis; each tile reads its extent, which reaches at least `overlap` past its core on each side
/// that has a neighbor.
struct TileSpan: Sendable, Equatable {
    var core: Range<Int>
    var extent: Range<Int>
    var hasPrevious: Bool
    var hasNext: Bool
}

enum TileLayout {
    /// Spans covering `length` pixels with as few tiles as cores of `tile` pixels need (`tile` and
    /// `overlap` rounded up to multiples of `align`). The axis is taken as `length` rounded up to a
    /// multiple of `align`, as a whole-image run pads it (the pipeline reflects the image past
    /// its edge, there and in a tile): every tile starts at a multiple of `align` and reads the
    /// same number of pixels, at most `tile + 2 * overlap` and a multiple of `align`, so all tiles
    /// of an image share one input shape (one plan and one memory pattern in the session, nothing
    /// re-planned per tile) and a model with strided layers sees each pixel at the same phase in
    /// every tile. The first tile starts at 0 and the last ends at the rounded length; the others
    /// are spread evenly between, so neighbors overlap by at least `2 * overlap` pixels, and the
    /// core boundary between two neighbors is the middle of their overlap; the cores partition
    /// `0..<length`. `tile <= 0`, or an axis no longer than one tile's read, gives one span.
    static func spans(length: Int, tile: Int, overlap: Int, align: Int = 1) -> [TileSpan] {
        let a = max(1, align)
        let padded = roundUp(length, a)
        // in units of `align`
        let len = padded / a, t = tile <= 0 ? 0 : roundUp(tile, a) / a, o = roundUp(max(0, overlap), a) / a
        if t == 0 || len <= t + 2 * o { return [TileSpan(core: 0..<length, extent: 0..<padded, hasPrevious: false, hasNext: false)] }
        // n tiles of e units with n * e >= len + (n - 1) * 2o: the starts step by at most e - 2o
        let n = (len - 2 * o + t - 1) / t
        let e = min(len, (len + (n - 1) * 2 * o + n - 1) / n)
        let starts = (0..<n).map { i in i * (len - e) / (n - 1) * a }
        var bounds = [0]
        for i in 1..<n { bounds.append(min(length, (starts[i] + starts[i - 1] + e * a) / 2)) }
        bounds.append(length)
        return (0..<n).map { i in
            TileSpan(core: bounds[i]..<bounds[i + 1], extent: starts[i]..<(starts[i] + e * a), hasPrevious: i > 0, hasNext: i < n - 1)
        }
    }

    @inline(__always) static func roundUp(_ v: Int, _ m: Int) -> Int { (v + m - 1) / m * m }

    /// Blending weights along one axis for output pixels `span.extent * scale`: 1 inside, 0 where
    /// the tile is within half an overlap of its edge (where the model saw the tile edge), and a
    /// linear ramp across the `overlap` pixels centered on each core boundary, so neighbors'
    /// weights sum to 1.
    static func weights(span: TileSpan, scale: Int, overlap: Int) -> [Float] {
        let n = span.extent.count * scale
        let o = Float(overlap), half = o / 2, s = Float(scale)
        func rise(_ u: Float, _ b: Float) -> Float {
            if o <= 0 { return u >= b ? 1 : 0 }
            return min(max((u - (b - half)) / o, 0), 1)
        }
        var w = [Float](repeating: 1, count: n)
        let b0 = Float(span.core.lowerBound), b1 = Float(span.core.upperBound)
        for q in 0..<n {
            let u = (Float(span.extent.lowerBound * scale + q) + 0.5) / s
            var v: Float = 1
            if span.hasPrevious { v *= rise(u, b0) }
            if span.hasNext { v *= 1 - rise(u, b1) }
            w[q] = v
        }
        return w
    }
}
