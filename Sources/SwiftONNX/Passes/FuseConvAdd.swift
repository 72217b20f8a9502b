/// Conv whose output is only added (Add, or Sum of two) to another tensor of exactly the same shape (a residual
/// connection) becomes com.swiftonnx::FusedConv with that tensor as its fourth input `Z`, added
/// while the output tile is in cache. A following activation is then fused by FuseConvActivation.
struct FuseConvAdd: GraphPass {
    let name = "fuse-conv-add"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        // A two-input Sum of same-shaped tensors is the same Add (ResNet's Caffe2 exports use Sum).
        for (ai, add) in graph.nodes.enumerated() where (add.opType == "Add" || add.opType == "Sum") && add.isStandardDomain {
            guard add.inputs.count == 2, add.outputs.count == 1, add.opType == "Sum" || (opsets[""] ?? 1) >= 7 else { continue }
            for (k, x) in add.inputs.enumerated() {
                guard let ci = producers[x], !removed.contains(ci), ci != ai else { continue }
                let conv = graph.nodes[ci]
                let plainConv = conv.opType == "Conv" && conv.isStandardDomain
                let fusedNoAct = conv.opType == "FusedConv" && conv.domain == FuseConvActivation.domain
                    && conv.attributes["activation"] == nil && conv.inputs.count < 4
                guard plainConv || fusedNoAct, conv.outputs.count == 1, uses[x] == 1, !outputs.contains(x) else { continue }
                let z = add.inputs[1 - k]
                guard !z.isEmpty, z != x, sameKnownShape(graph, x, z) else { continue }
                // Z must be available before the conv runs: not produced by a node that reads the conv's output.
                var fused = conv
                fused.domain = FuseConvActivation.domain
                fused.opType = "FusedConv"
                while fused.inputs.count < 3 { fused.inputs.append("") }
                fused.inputs.append(z)
                fused.outputs = add.outputs
                graph.nodes[ci] = fused
                removed.insert(ai)
                changed = true
                break
            }
        }
        if changed {
            graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        }
        return changed
    }

    /// Both values have the same fully determined shape (known sizes or the same symbols) and type float32.
    private func sameKnownShape(_ graph: Graph, _ a: String, _ b: String) -> Bool {
        func info(_ n: String) -> ValueInfo? {
            if let t = graph.initializers[n] { return ValueInfo(name: n, type: t.dtype, shape: t.shape.map { .known($0) }) }
            return graph.info(of: n)
        }
        guard let x = info(a), let y = info(b), let sx = x.shape, let sy = y.shape,
              x.type == .float32, y.type == .float32, sx == sy else { return false }
        return !sx.contains(.unknown)
    }
}
