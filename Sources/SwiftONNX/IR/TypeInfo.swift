/// What inference knows of a value.
struct TypeInfo: Equatable {
    var dtype: DType?
    var shape: [Dim]?
    static let unknown = TypeInfo(dtype: nil, shape: nil)

    init(dtype: DType?, shape: [Dim]?) {
        self.dtype = dtype
        self.shape = shape
    }
}

/// Product of dims: known when every factor is.
func product(_ dims: ArraySlice<Dim>) -> Dim {
    var p = 1
    for d in dims { guard let v = d.value else { return .unknown }; p *= v }
    return .known(p)
}

/// Broadcast of declared shapes; nil when incompatible.
func broadcastDims(_ shapes: [[Dim]]) -> [Dim]? {
    let rank = shapes.map(\.count).max() ?? 0
    var out = [Dim](repeating: .known(1), count: rank)
    for s in shapes {
        let off = rank - s.count
        for (i, d) in s.enumerated() {
            let j = off + i
            let cur = out[j]
            if cur == d || d == .known(1) { continue }
            if cur == .known(1) { out[j] = d; continue }
            if case .known(let a) = cur, case .known(let b) = d, a != b { return nil }
            if case .known = cur { continue }      // known vs symbolic/unknown: the known size wins
            if case .known = d { out[j] = d; continue }
            out[j] = .unknown
        }
    }
    return out
}
