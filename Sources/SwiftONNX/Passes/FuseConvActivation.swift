/// Conv followed by an activation (Relu, LeakyRelu, Clip with constant bounds, Sigmoid, HardSigmoid,
/// HardSwish, Tanh) becomes com.swiftonnx::FusedConv, which applies the activation while the output is in cache.
struct FuseConvActivation: GraphPass {
    let name = "fuse-conv-activation"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (ai, act) in graph.nodes.enumerated() where act.isStandardDomain {
            guard let x = act.inputs.first, let ci = producers[x], !removed.contains(ci) else { continue }
            let conv = graph.nodes[ci]
            let plainConv = conv.opType == "Conv" && conv.isStandardDomain
            let fusedNoAct = conv.opType == "FusedConv" && conv.domain == Self.domain && conv.attributes["activation"] == nil
            guard plainConv || fusedNoAct, conv.outputs.count == 1,
                  uses[x] == 1, !outputs.contains(x), act.outputs.count == 1 else { continue }
            guard let (kind, params) = Self.activation(act, graph: graph) else { continue }
            var fused = conv
            fused.domain = Self.domain
            fused.opType = "FusedConv"
            fused.attributes["activation"] = .string(kind)
            fused.attributes["activation_params"] = .floats(params)
            fused.outputs = act.outputs
            graph.nodes[ci] = fused
            removed.insert(ai)
            changed = true
        }
        if changed {
            graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
            graph.pruneUnusedInitializers()
        }
        return changed
    }

    /// (activation name, parameters) of a node FusedConv and ChannelAffine can apply, else nil.
    static func activation(_ n: Node, graph: Graph) -> (String, [Float])? {
        func f(_ key: String, _ d: Float) -> Float {
            if case .float(let v)? = n.attributes[key] { return v }
            return d
        }
        switch n.opType {
        case "Relu": return ("Relu", [])
        case "LeakyRelu": return ("LeakyRelu", [f("alpha", 0.01)])
        case "Sigmoid": return ("Sigmoid", [])
        case "Tanh": return ("Tanh", [])
        case "HardSigmoid": return ("HardSigmoid", [f("alpha", 0.2), f("beta", 0.5)])
        case "HardSwish": return ("HardSwish", [])
        case "Clip":
            var lo = -Float.greatestFiniteMagnitude, hi = Float.greatestFiniteMagnitude
            if n.inputs.count > 1 {
                for (k, name) in n.inputs.enumerated().dropFirst() where !name.isEmpty {
                    guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
                    if k == 1 { lo = t.pointer(Float.self)[0] } else { hi = t.pointer(Float.self)[0] }
                }
            } else {
                lo = f("min", lo)
                hi = f("max", hi)
            }
            return ("Clip", [lo, hi])
        default: return nil
        }
    }
}
