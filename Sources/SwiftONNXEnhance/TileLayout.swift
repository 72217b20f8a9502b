/// One tile's extent along one axis, in input pixels: the core ranges of all tiles partition the
/// axis; each tile reads `overlap` more pixels on each side that has a neighbor.
struct TileSpan: Sendable, Equatable {
    var core: Range<Int>
    var extent: Range<Int>
    var hasPrevious: Bool
    var hasNext: Bool
}

enum TileLayout {
    /// Spans covering `length` pixels with cores of `tile` pixels (a multiple of `align`) and reads
    /// extended by `overlap` (a multiple of `align`). `tile <= 0` or a short axis gives one span.
    static func spans(length: Int, tile: Int, overlap: Int, align: Int = 1) -> [TileSpan] {
        let a = max(1, align)
        let t = tile <= 0 ? 0 : roundUp(tile, a)
        let o = roundUp(max(0, overlap), a)
        if t == 0 || length <= t { return [TileSpan(core: 0..<length, extent: 0..<length, hasPrevious: false, hasNext: false)] }
        var out: [TileSpan] = []
        var s = 0
        while s < length {
            let e = min(length, s + t)
            out.append(TileSpan(core: s..<e, extent: max(0, s - o)..<min(length, e + o), hasPrevious: s > 0, hasNext: e < length))
            s = e
        }
        return out
    }

    @inline(__always) static func roundUp(_ v: Int, _ m: Int) -> Int { (v + m - 1) / m * m }

    /// Blending weights along one axis for output pixels `span.extent * scale`: 1 inside, 0 in the
    /// outer half of each overlap (where the model saw the tile edge), and a linear ramp across the
    /// `overlap` pixels centered on each core boundary, so neighbors' weights sum to 1.
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
