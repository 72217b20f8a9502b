/// Conv followed by Mul or Add with a constant per-output-channel operand (BatchNormalization
/// exported as Mul + Add, as in Inception v2, or a plain scale/shift) folds into the Conv's
/// weights and bias: Mul by s scales output channel c's weights and bias by s[c]; Add of a adds
/// a[c] to its bias. Only when the Conv's output has no other reader.
struct FoldConvAffine: GraphPass {
    let name = "fold-conv-affine"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        var uses = graph.useCounts()
        var producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (ni, node) in graph.nodes.enumerated() where (node.opType == "Mul" || node.opType == "Add") && node.isStandardDomain {
            guard node.inputs.count == 2, node.outputs.count == 1, !removed.contains(ni) else { continue }
            for k in 0..<2 {
                let x = node.inputs[k], other = node.inputs[1 - k]
                guard let ci = producers[x], !removed.contains(ci), ci != ni,
                      let t = graph.initializers[other], t.dtype == .float32 else { continue }
                let conv = graph.nodes[ci]
                guard conv.opType == "Conv", conv.isStandardDomain, conv.outputs.count == 1, uses[x] == 1,
                      !outputs.contains(x), conv.inputs.count >= 2,
                      let w = graph.initializers[conv.inputs[1]], w.dtype == .float32, w.rank >= 3 else { continue }
                let cout = w.shape[0]
                guard let perChannel = perChannelConstant(t, channels: cout, outputRank: w.rank) else { continue }
                var bias: [Float] = [Float](repeating: 0, count: cout)
                if conv.inputs.count > 2 && !conv.inputs[2].isEmpty {
                    guard let b = graph.initializers[conv.inputs[2]], b.dtype == .float32, b.count == cout else { continue }
                    bias = Array(b.buffer(Float.self))
                }
                var newInputs = conv.inputs
                while newInputs.count < 3 { newInputs.append("") }
                if node.opType == "Mul" {
                    let per = w.count / cout
                    let nw = Tensor.uninitialized(.float32, w.shape)
                    let wp = w.pointer(Float.self), nwp = nw.pointer(Float.self)
                    for c in 0..<cout {
                        let s = perChannel[c]
                        for j in 0..<per { nwp[c * per + j] = wp[c * per + j] * s }
                        bias[c] *= s
                    }
                    let wName = uniqueName(graph, conv.inputs[1] + "_scaled")
                    graph.initializers[wName] = nw
                    newInputs[1] = wName
                } else {
                    for c in 0..<cout { bias[c] += perChannel[c] }
                }
                let bName = uniqueName(graph, node.outputs[0] + "_bias")
                graph.initializers[bName] = Tensor(shape: [cout], scalars: bias)
                newInputs[2] = bName
                var fused = conv
                fused.inputs = newInputs
                fused.outputs = node.outputs
                graph.nodes[ci] = fused
                removed.insert(ni)
                uses[x] = 0
                producers[node.outputs[0]] = ci
                changed = true
                break
            }
        }
        if changed {
            graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}
