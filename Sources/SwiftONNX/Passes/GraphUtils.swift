/// Queries passes share.
extension Graph {
    /// How many node inputs (including implicit subgraph reads) and graph outputs read each value.
    func useCounts() -> [String: Int] {
        var c: [String: Int] = [:]
        for n in nodes {
            for i in n.inputs where !i.isEmpty { c[i, default: 0] += 1 }
            for i in n.implicitInputs where !i.isEmpty { c[i, default: 0] += 1 }
        }
        for o in outputs { c[o.name, default: 0] += 1 }
        return c
    }

    /// Index of the node producing each value.
    func producers() -> [String: Int] {
        var p: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs where !o.isEmpty { p[o] = i } }
        return p
    }

    /// Index of a node reading each value (the last one, in node order): the reader, where a
    /// value has one use.
    func readers() -> [String: Int] {
        var r: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for x in n.inputs where !x.isEmpty { r[x] = i } }
        return r
    }

    /// Every node reading each value (inputs and subgraph captures), in graph order, once per input.
    func readerLists() -> [String: [Int]] {
        var r: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for v in n.inputs + n.implicitInputs where !v.isEmpty { r[v, default: []].append(i) }
        }
        return r
    }

    /// An initializer about to be rewritten element by element (weights scaled by a folded
    /// normalization): `source` holds its values and `target` takes the new ones. When one node
    /// reads it (`uses`) and this graph holds the only reference to memory of its own (a folded
    /// constant, not the parsed file nor a tensor someone else holds), the initializer is taken
    /// out of the graph and `target` is `source` itself: the rewrite happens in place, with no
    /// second copy of the weights. Otherwise the initializer stays and `target` is fresh memory.
    /// The caller stores `target` under a name of its choice and points the reader at it.
    func takeForRewrite(_ name: String, uses: [String: Int]) throws -> (source: Tensor, target: Tensor)? {
        guard var t = initializers.removeValue(forKey: name) else { return nil }
        if uses[name] == 1, t.storage.isPrivateHeap, isKnownUniquelyReferenced(&t.storage) { return (t, t) }
        initializers[name] = t
        return (t, try Tensor.uninitialized(t.dtype, t.shape))
    }

    /// Drops the nodes at the given indices, keeping the others in order.
    func removeNodes(at indices: Set<Int>) {
        if indices.isEmpty { return }
        nodes = nodes.enumerated().filter { !indices.contains($0.offset) }.map(\.element)
    }

    /// What shape inference (or the graph's inputs) says of a value.
    func info(of name: String) -> ValueInfo? { valueInfo[name] ?? inputs.first { $0.name == name } }

    /// `info(of:)`, or for a constant weight its own type and shape.
    func infoOrConstant(of name: String) -> ValueInfo? {
        if let t = initializers[name] { return ValueInfo(name: name, type: t.dtype, shape: t.shape.map { .known($0) }) }
        return info(of: name)
    }

    var outputNames: Set<String> { Set(outputs.map(\.name)) }

    /// Both values are float32 with the same fully determined shape (known sizes or the same symbols):
    /// one can be added to the other element for element (a residual fused into a GEMM epilogue).
    func sameKnownFloatShape(_ a: String, _ b: String) -> Bool {
        guard let x = infoOrConstant(of: a), let y = infoOrConstant(of: b), let sx = x.shape, let sy = y.shape,
              x.type == .float32, y.type == .float32, sx == sy else { return false }
        return !sx.contains(.unknown)
    }

    /// Drops initializers nothing reads any more.
    func pruneUnusedInitializers() {
        let used = useCounts()
        for name in initializers.keys where used[name] == nil { initializers.removeValue(forKey: name) }
    }
}

extension Node {
    var isStandardDomain: Bool { domain.isEmpty || domain == "ai.onnx" }
    var hasSubgraph: Bool {
        attributes.values.contains { if case .graph = $0 { return true }; if case .graphs = $0 { return true }; return false }
    }
}

/// A float32 constant's value per channel when it broadcasts over a tensor of rank `outputRank`
/// laid out (N, C, spatial...) as a per-channel constant (or a scalar), else nil. The result must
/// keep that tensor's shape, so the constant's rank may not exceed it.
func perChannelConstant(_ t: Tensor, channels: Int, outputRank: Int) -> [Float]? {
    guard t.rank <= outputRank, t.count >= 1 else { return nil }
    let p = t.pointer(Float.self)
    if t.count == 1 { return [Float](repeating: p[0], count: channels) }
    // right-aligned: dim i of t sits at output dim outputRank - t.rank + i; only the channel dim (1) may be > 1
    for (i, d) in t.shape.enumerated() {
        let outDim = outputRank - t.rank + i
        if outDim == 1 { if d != channels && d != 1 { return nil } } else if d != 1 { return nil }
    }
    guard t.count == channels else { return nil }
    return (0..<channels).map { p[$0] }
}
