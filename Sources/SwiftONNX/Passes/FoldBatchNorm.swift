/// Conv followed by BatchNormalization (inference) becomes one Conv with scaled weights and a new bias.
struct FoldBatchNormIntoConv: GraphPass {
    let name = "fold-batchnorm-into-conv"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        var uses = graph.useCounts()
        var producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (bi, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.isStandardDomain {
            guard bn.inputs.count == 5, bn.outputs.filter({ !$0.isEmpty }).count == 1,
                  let ci = producers[bn.inputs[0]], !removed.contains(ci) else { continue }
            let conv = graph.nodes[ci]
            guard conv.opType == "Conv", conv.isStandardDomain, conv.outputs.count == 1,
                  uses[conv.outputs[0]] == 1, !outputs.contains(conv.outputs[0]) else { continue }
            if case .int(let t)? = bn.attributes["training_mode"], t != 0 { continue }
            guard let w = graph.initializers[conv.inputs[1]], w.dtype == .float32, w.rank >= 3,
                  let scale = graph.initializers[bn.inputs[1]], let bias = graph.initializers[bn.inputs[2]],
                  let mean = graph.initializers[bn.inputs[3]], let variance = graph.initializers[bn.inputs[4]],
                  [scale, bias, mean, variance].allSatisfy({ $0.dtype == .float32 && $0.count == w.shape[0] }) else { continue }
            var b: Tensor? = nil
            if conv.inputs.count > 2 && !conv.inputs[2].isEmpty {
                guard let cb = graph.initializers[conv.inputs[2]], cb.dtype == .float32, cb.count == w.shape[0] else { continue }
                b = cb
            }
            var eps: Float = 1e-5
            if case .float(let e)? = bn.attributes["epsilon"] { eps = e }
            let cout = w.shape[0]
            let per = w.count / cout
            let nw = Tensor.uninitialized(.float32, w.shape)
            let nb = Tensor.uninitialized(.float32, [cout])
            let wp = w.pointer(Float.self), nwp = nw.pointer(Float.self), nbp = nb.pointer(Float.self)
            let sp = scale.pointer(Float.self), bp = bias.pointer(Float.self)
            let mp = mean.pointer(Float.self), vp = variance.pointer(Float.self)
            for c in 0..<cout {
                let s = sp[c] / (vp[c] + eps).squareRoot()
                for k in 0..<per { nwp[c * per + k] = wp[c * per + k] * s }
                let cb = b.map { $0.pointer(Float.self)[c] } ?? 0
                nbp[c] = (cb - mp[c]) * s + bp[c]
            }
            let wName = uniqueName(graph, conv.inputs[1] + "_bnfolded")
            let bName = uniqueName(graph, bn.outputs[0] + "_bias")
            graph.initializers[wName] = nw
            graph.initializers[bName] = nb
            var fused = conv
            fused.inputs = [conv.inputs[0], wName, bName]
            fused.outputs = [bn.outputs[0]]
            fused.name = conv.name
            graph.nodes[ci] = fused
            removed.insert(bi)
            uses[conv.outputs[0]] = 0
            producers[bn.outputs[0]] = ci
            changed = true
        }
        if changed {
            graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}

/// A name not yet used by any initializer or value of the graph.
func uniqueName(_ graph: Graph, _ base: String) -> String {
    func taken(_ name: String) -> Bool {
        graph.initializers[name] != nil || graph.inputs.contains { $0.name == name }
            || graph.nodes.contains { $0.outputs.contains(name) || $0.inputs.contains(name) }
    }
    if !taken(base) { return base }
    var used = Set(graph.initializers.keys)
    for n in graph.nodes { used.formUnion(n.outputs); used.formUnion(n.inputs) }
    used.formUnion(graph.inputs.map(\.name))
    var i = 1
    while used.contains("\(base)_\(i)") { i += 1 }
    return "\(base)_\(i)"
}
