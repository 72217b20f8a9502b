/// The decomposed hard swish that exporters emit becomes one HardSwish node (which a preceding
/// Conv then fuses as its activation):
///   Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)  (also with Mul by 1/6, and the operands in either order)
///   Mul(x, HardSigmoid(x, alpha = 1/6, beta = 0.5))
/// The intermediate values must have no other reader.
struct FuseHardSwish: GraphPass {
    let name = "fuse-hard-swish"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        func single(_ v: String) -> Bool { uses[v] == 1 && !outputs.contains(v) }
        func scalar(_ name: String) -> Float? {
            guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
            return t.pointer(Float.self)[0]
        }
        func node(_ v: String, _ op: String) -> Int? {
            guard let i = producers[v], !removed.contains(i), graph.nodes[i].opType == op,
                  graph.nodes[i].isStandardDomain, graph.nodes[i].outputs.count == 1 else { return nil }
            return i
        }
        /// x when `v` is Clip(Add(x, 3), 0, 6) with single-use intermediates, and the nodes.
        func clipOfAdd3(_ v: String) -> (String, [Int])? {
            guard single(v), let ci = node(v, "Clip") else { return nil }
            let clip = graph.nodes[ci]
            var lo: Float? = nil, hi: Float? = nil
            if clip.inputs.count >= 3 {
                lo = scalar(clip.inputs[1]); hi = scalar(clip.inputs[2])
            } else if case .float(let a)? = clip.attributes["min"], case .float(let b)? = clip.attributes["max"] {
                lo = a; hi = b
            }
            guard lo == 0, hi == 6, let ai = node(clip.inputs[0], "Add"), single(clip.inputs[0]) else { return nil }
            let add = graph.nodes[ai]
            guard add.inputs.count == 2 else { return nil }
            for k in 0..<2 where scalar(add.inputs[1 - k]) == 3 { return (add.inputs[k], [ci, ai]) }
            return nil
        }
        for (ni, top) in graph.nodes.enumerated() where top.isStandardDomain && top.inputs.count == 2 && top.outputs.count == 1 {
            if removed.contains(ni) { continue }
            var x: String? = nil
            var dead: [Int] = []
            if top.opType == "Div" || top.opType == "Mul" {
                // Div(m, 6) / Mul(m, 1/6) with m = Mul(x, Clip(Add(x, 3), 0, 6))
                for k in 0..<2 {
                    if top.opType == "Div" && k == 1 { break }
                    guard let c = scalar(top.inputs[1 - k]),
                          top.opType == "Div" ? c == 6 : abs(c - 1.0 / 6.0) < 1e-7,
                          single(top.inputs[k]), let mi = node(top.inputs[k], "Mul") else { continue }
                    let mul = graph.nodes[mi]
                    guard mul.inputs.count == 2 else { continue }
                    for j in 0..<2 {
                        if let (xx, nodes) = clipOfAdd3(mul.inputs[1 - j]), xx == mul.inputs[j] {
                            x = xx
                            dead = nodes + [mi]
                            break
                        }
                    }
                    if x != nil { break }
                }
                // Mul(x, HardSigmoid(x, 1/6, 0.5))
                if x == nil && top.opType == "Mul" {
                    for k in 0..<2 {
                        guard single(top.inputs[1 - k]), let hi = node(top.inputs[1 - k], "HardSigmoid") else { continue }
                        let hs = graph.nodes[hi]
                        var alpha: Float = 0.2, beta: Float = 0.5
                        if case .float(let a)? = hs.attributes["alpha"] { alpha = a }
                        if case .float(let b)? = hs.attributes["beta"] { beta = b }
                        if hs.inputs.first == top.inputs[k] && abs(alpha - 1.0 / 6.0) < 1e-6 && beta == 0.5 {
                            x = top.inputs[k]
                            dead = [hi]
                            break
                        }
                    }
                }
            }
            guard let input = x else { continue }
            graph.nodes[ni] = Node(name: top.name, opType: "HardSwish", domain: "", inputs: [input],
                                   outputs: top.outputs, attributes: [:])
            removed.formUnion(dead)
            changed = true
        }
        if changed {
            graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}
