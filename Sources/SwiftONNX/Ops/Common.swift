/// Shape helpers shared by op families.

/// Row-major strides of a shape.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        s[i] = acc
        acc *= shape[i]
    }
    return s
}

/// Numpy-style multidirectional broadcast of several shapes.
func broadcastShapes(_ shapes: [[Int]]) throws -> [Int] {
    let rank = shapes.map(\.count).max() ?? 0
    var out = [Int](repeating: 1, count: rank)
    for s in shapes {
        let off = rank - s.count
        for (i, d) in s.enumerated() {
            let j = off + i
            if out[j] == d || d == 1 { continue }
            if out[j] == 1 { out[j] = d; continue }
            throw OpError("shapes \(shapes.map(describeShape).joined(separator: ", ")) cannot be broadcast together")
        }
    }
    return out
}

func broadcastShapes(_ a: [Int], _ b: [Int]) throws -> [Int] { try broadcastShapes([a, b]) }

/// Strides to read a tensor of `shape` as if it had `outShape` (0 along broadcast dims).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let st = contiguousStrides(shape)
    let off = outShape.count - shape.count
    var r = [Int](repeating: 0, count: outShape.count)
    for i in 0..<shape.count where shape[i] != 1 { r[off + i] = st[i] }
    return r
}

/// Calls `body(outIndex, srcOffset)` for every element of `outShape`, with the source offset
/// computed from `strides` (e.g. broadcast strides or transposed strides). The innermost dim is a tight loop.
@inline(__always)
func forEachStrided(_ outShape: [Int], _ strides: [Int], _ body: (Int, Int) -> Void) {
    let rank = outShape.count
    let n = outShape.reduce(1, *)
    if n == 0 { return }
    if rank == 0 { body(0, 0); return }
    let inner = outShape[rank - 1], innerStride = strides[rank - 1]
    var idx = [Int](repeating: 0, count: rank)
    var base = 0
    var o = 0
    while o < n {
        var off = base
        for _ in 0..<inner {
            body(o, off)
            o += 1
            off += innerStride
        }
        // Advance the outer index.
        var d = rank - 2
        while d >= 0 {
            idx[d] += 1
            base += strides[d]
            if idx[d] < outShape[d] { break }
            base -= strides[d] * outShape[d]
            idx[d] = 0
            d -= 1
        }
    }
}
