/// Per-channel affine chains that no Conv absorbs become one com.swiftonnx::ChannelAffine pass
/// over the data, y = act(x * scale[c] + bias[c]):
/// - BatchNormalization in inference mode with constant parameters (what FoldBatchNormIntoConv
///   leaves: pre-activation BN as in DenseNet, BN after a Concat or a pooling) becomes
///   ChannelAffine with scale = s / sqrt(var + eps) and bias = B - mean * scale, computed as the
///   BatchNormalization kernel computes them, so the result is bit-identical;
/// - a ChannelAffine whose only reader is Mul or Add by a per-channel constant (Caffe2's
///   BN + scale layers) absorbs it (scale and bias multiplied, or bias shifted);
/// - a ChannelAffine whose only reader is an activation (Relu, Clip, ...) applies it.
struct FuseChannelAffine: GraphPass {
    let name = "fuse-channel-affine"
    static let opType = "ChannelAffine"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        // 1. BatchNormalization -> ChannelAffine.
        let producers = graph.producers()
        for (i, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.isStandardDomain {
            // A BatchNormalization after a Conv is FoldBatchNormIntoConv's to fold.
            if let pi = producers[bn.inputs.first ?? ""], graph.nodes[pi].opType == "Conv" { continue }
            guard let (scale, bias) = inferenceAffine(bn, graph: graph, opsets: opsets) else { continue }
            let sName = uniqueName(graph, bn.outputs[0] + "_affine_scale")
            graph.initializers[sName] = scale
            let bName = uniqueName(graph, bn.outputs[0] + "_affine_bias")
            graph.initializers[bName] = bias
            graph.nodes[i] = Node(name: bn.name, opType: Self.opType, domain: FuseConvActivation.domain,
                                  inputs: [bn.inputs[0], sName, bName], outputs: [bn.outputs[0]], attributes: [:])
            changed = true
        }
        // 1b. A Mul or Add by a per-channel constant that no Conv absorbs (input normalization as
        // (x * s) + b, a learnable affine block after a pooling) starts a ChannelAffine when its only
        // reader is one more step it can absorb (alone it would save nothing).
        do {
            let uses = graph.useCounts()
            let outputs = graph.outputNames
            let readers = graph.readers()
            var started = Set<String>()
            for (i, n) in graph.nodes.enumerated() where (n.opType == "Mul" || n.opType == "Add") && n.isStandardDomain {
                guard n.inputs.count == 2, n.outputs.count == 1 else { continue }
                guard let k = (0..<2).first(where: { graph.initializers[n.inputs[$0]] == nil && graph.initializers[n.inputs[1 - $0]] != nil }) else { continue }
                // After an affine map (a converted BatchNormalization or a chain started here) step 2 absorbs it.
                if started.contains(n.inputs[k]) { continue }
                if let pi = producers[n.inputs[k]] {
                    let p = graph.nodes[pi]
                    if isAffine(p) || p.opType == "BatchNormalization" { continue }
                    // the middle of a chain of constant Mul / Add: its start (or a BN before it) takes it
                    if (p.opType == "Mul" || p.opType == "Add") && p.inputs.contains(where: { graph.initializers[$0] != nil }) { continue }
                }
                guard
                      let start = standalone(n, x: n.inputs[k], constant: n.inputs[1 - k], graph: graph, producers: producers) else { continue }
                let y = n.outputs[0]
                guard uses[y] == 1, !outputs.contains(y), let ri = readers[y] else { continue }
                let next = graph.nodes[ri]
                let other = next.inputs.count == 2 ? next.inputs.first(where: { $0 != y }) : nil
                let absorbable = next.isStandardDomain && next.outputs.count == 1 && !next.hasSubgraph
                    && ((next.inputs.first == y && FuseConvActivation.activation(next, graph: graph) != nil)
                        || ((next.opType == "Mul" || next.opType == "Add") && other.map { graph.initializers[$0] != nil } == true))
                guard absorbable else { continue }
                let sName = uniqueName(graph, y + "_affine_scale")
                graph.initializers[sName] = start.0
                let bName = uniqueName(graph, y + "_affine_bias")
                graph.initializers[bName] = start.1
                graph.nodes[i] = Node(name: n.name, opType: Self.opType, domain: FuseConvActivation.domain,
                                      inputs: [n.inputs[k], sName, bName], outputs: [y], attributes: [:])
                started.insert(y)
                changed = true
            }
        }
        // 2. and 3. absorb the only reader while it is per-channel Mul/Add or an activation.
        var absorbed = true
        while absorbed {
            absorbed = false
            let uses = graph.useCounts()
            let outputs = graph.outputNames
            let readers = graph.readers()
            for (ai, affine) in graph.nodes.enumerated() where isAffine(affine) {
                let y = affine.outputs[0]
                guard uses[y] == 1, !outputs.contains(y), let ri = readers[y], ri != ai else { continue }
                let next = graph.nodes[ri]
                guard next.isStandardDomain, next.outputs.count == 1, !next.hasSubgraph else { continue }
                var fused = affine
                if affine.attributes["activation"] == nil, next.inputs.first == y, let (kind, params) = FuseConvActivation.activation(next, graph: graph) {
                    fused.attributes["activation"] = .string(kind)
                    fused.attributes["activation_params"] = .floats(params)
                } else if affine.attributes["activation"] == nil, next.opType == "Mul" || next.opType == "Add",
                          next.inputs.count == 2, let (s, b) = merged(affine, next, graph: graph) {
                    let sName = uniqueName(graph, next.outputs[0] + "_affine_scale")
                    graph.initializers[sName] = s
                    let bName = uniqueName(graph, next.outputs[0] + "_affine_bias")
                    graph.initializers[bName] = b
                    fused.inputs = [affine.inputs[0], sName, bName]
                } else {
                    continue
                }
                fused.outputs = next.outputs
                graph.nodes[ai] = fused
                graph.nodes.remove(at: ri)
                absorbed = true
                changed = true
                break
            }
        }
        if changed { graph.pruneUnusedInitializers() }
        return changed
    }

    /// (scale, bias) of Mul or Add of x by a per-channel float32 constant, when x has a known
    /// channel count and no Conv produces it (FoldConvAffine folds those into the weights).
    private func standalone(_ n: Node, x: String, constant: String, graph: Graph, producers: [String: Int]) -> (Tensor, Tensor)? {
        if let pi = producers[x], graph.nodes[pi].opType == "Conv" || graph.nodes[pi].opType == "FusedConv" { return nil }
        guard let info = graph.info(of: x), info.type == .float32,
              let shape = info.shape, shape.count >= 2, case .known(let c) = shape[1], c >= 1,
              let t = graph.initializers[constant], t.dtype == .float32,
              let per = perChannelConstant(t, channels: c, outputRank: shape.count) else { return nil }
        if n.opType == "Mul" {
            return (Tensor(shape: [c], scalars: per), Tensor(shape: [c], scalars: [Float](repeating: 0, count: c)))
        }
        return (Tensor(shape: [c], scalars: [Float](repeating: 1, count: c)), Tensor(shape: [c], scalars: per))
    }

    private func isAffine(_ n: Node) -> Bool {
        n.opType == Self.opType && n.domain == FuseConvActivation.domain && n.outputs.count == 1 && n.inputs.count == 3
    }

    /// Known rank and float32 type of a value, else nil.
    private func float32Rank(_ graph: Graph, _ name: String) -> Int? {
        guard let v = graph.info(of: name), v.type == .float32, let s = v.shape else { return nil }
        return s.count
    }

    /// (scale, bias) of an inference-mode BatchNormalization with constant float32 parameters.
    private func inferenceAffine(_ bn: Node, graph: Graph, opsets: [String: Int]) -> (Tensor, Tensor)? {
        guard bn.inputs.count == 5, bn.outputs.count >= 1, !bn.outputs[0].isEmpty,
              bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }) else { return nil }
        let opset = opsets[""] ?? 1
        if opset >= 14, case .int(let t)? = bn.attributes["training_mode"], t != 0 { return nil }
        if opset < 7, case .int(let t)? = bn.attributes["is_test"], t == 0 { return nil }
        if opset < 9, case .int(let sp)? = bn.attributes["spatial"], sp == 0 { return nil }
        guard let rank = float32Rank(graph, bn.inputs[0]), rank >= 2 else { return nil }
        let ps = bn.inputs[1...4].map { graph.initializers[$0] }
        guard let s = ps[0], let b = ps[1], let m = ps[2], let v = ps[3] else { return nil }
        let c = s.count
        guard c >= 1, [s, b, m, v].allSatisfy({ $0.dtype == .float32 && $0.rank == 1 && $0.count == c }) else { return nil }
        if let xs = graph.valueInfo[bn.inputs[0]]?.shape, case .known(let xc) = xs[1], xc != c { return nil }
        var eps: Float = 1e-5
        if case .float(let e)? = bn.attributes["epsilon"] { eps = e }
        let (a, t) = batchNormAffine(scale: Array(s.buffer(Float.self)), bias: Array(b.buffer(Float.self)),
                                     mean: m.buffer(Float.self).map(Double.init), variance: v.buffer(Float.self).map(Double.init),
                                     epsilon: Double(eps))
        return (Tensor(shape: [c], scalars: a), Tensor(shape: [c], scalars: t))
    }

    /// The affine map followed by Mul or Add with a per-channel constant, as one affine map.
    private func merged(_ affine: Node, _ next: Node, graph: Graph) -> (Tensor, Tensor)? {
        let y = affine.outputs[0]
        guard let k = next.inputs.firstIndex(of: y), next.inputs[1 - k] != y,
              let t = graph.initializers[next.inputs[1 - k]], t.dtype == .float32,
              let rank = float32Rank(graph, affine.inputs[0]), rank >= 2,
              let s0 = graph.initializers[affine.inputs[1]], let b0 = graph.initializers[affine.inputs[2]],
              let per = perChannelConstant(t, channels: s0.count, outputRank: rank) else { return nil }
        var s = Array(s0.buffer(Float.self)), b = Array(b0.buffer(Float.self))
        if next.opType == "Mul" {
            for c in 0..<s.count { s[c] *= per[c]; b[c] *= per[c] }
        } else {
            for c in 0..<s.count { b[c] += per[c] }
        }
        return (Tensor(shape: [s.count], scalars: s), Tensor(shape: [b.count], scalars: b))
    }
}
