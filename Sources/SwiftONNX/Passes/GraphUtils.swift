/// Queries passes share.
extension Graph {
    /// How many node inputs (including implicit subgraph reads) and graph outputs read each value.
    func useCounts() -> [String: Int] {
        var c: [String: Int] = [:]
        for n in nodes {
            for i in n.inputs + n.implicitInputs where !i.isEmpty { c[i, default: 0] += 1 }
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

    var outputNames: Set<String> { Set(outputs.map(\.name)) }

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
