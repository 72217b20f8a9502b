/// Evaluates nodes whose inputs are all constants once, at session creation, and replaces them by
/// initializers. Also folds `Shape` (and `Size`) of values whose shape inference found fully known.
struct ConstantFolding: GraphPass {
    let name = "constant-folding"
    /// Results larger than this stay computed at run time (weights built by ConstantOfShape and the like are folded, as ONNX Runtime does).
    var maxFoldedBytes = 1 << 30
    /// Where the ops come from: a node is folded by running the operator its definition builds.
    var registry: OpRegistry = .standard

    /// Ops whose result is not a pure function of their inputs.
    static let nondeterministic: Set<String> = [
        "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial",
    ]

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        // Outer constants count only for names this graph does not define itself.
        var outer = graph.outerConstants
        if !outer.isEmpty {
            for i in graph.inputs { outer.removeValue(forKey: i.name) }
            for n in graph.nodes { for o in n.outputs { outer.removeValue(forKey: o) } }
        }
        var changed = false
        var kept: [Node] = []
        kept.reserveCapacity(graph.nodes.count)
        // Types are inferred as the walk goes, so a Reshape whose target a fold just fixed gives the
        // nodes after it their sizes in this walk: a chain of shape arithmetic through every layer of
        // a transformer folds in one walk, not one layer per round of the pass manager.
        var inference = ShapeInference.Walk(graph, opsets: opsets, registry: registry)
        for node in graph.nodes {
            if let folded = try fold(node, graph: graph, outer: outer, opsets: opsets) {
                for (name, t) in zip(node.outputs, folded) where !name.isEmpty {
                    graph.initializers[name] = t
                    inference.constant(name, t)
                }
                changed = true
            } else {
                kept.append(node)
                inference.visit(node)
            }
        }
        if changed {
            graph.nodes = kept
            graph.pruneUnusedInitializers()
        }
        return changed
    }

    private func fold(_ node: Node, graph: Graph, outer: [String: Tensor], opsets: [String: Int]) throws -> [Tensor]? {
        guard node.isStandardDomain, !node.hasSubgraph, node.implicitInputs.isEmpty,
              !Self.nondeterministic.contains(node.opType) else { return nil }
        // Shape/Size of a value with a fully known shape.
        if node.opType == "Shape" || node.opType == "Size", let x = node.inputs.first,
           graph.initializers[x] == nil,
           let dims = graph.valueInfo[x]?.shape ?? graph.inputs.first(where: { $0.name == x })?.shape ?? graph.outerTypes[x]?.shape {
            let known = dims.compactMap(\.value)
            if known.count == dims.count {
                if node.opType == "Size" { return [Tensor(scalar: Int64(known.reduce(1, *)))] }
                var start = 0, end = known.count
                let opset = opsets[""] ?? 1
                if opset >= 15 {
                    if case .int(let s)? = node.attributes["start"] { start = s < 0 ? max(0, s + known.count) : min(s, known.count) }
                    if case .int(let e)? = node.attributes["end"] { end = e < 0 ? max(0, e + known.count) : min(e, known.count) }
                }
                let slice = start < end ? Array(known[start..<end]) : []
                return [Tensor(validShape: [slice.count], scalars: slice.map { Int64($0) })]
            }
        }
        var inputs: [Tensor?] = []
        for name in node.inputs {
            if name.isEmpty { inputs.append(nil); continue }
            guard let t = graph.initializers[name] ?? outer[name] else { return nil }
            inputs.append(t)
        }
        guard !inputs.isEmpty else { return nil }
        // Evaluate; an op that fails here (or is not implemented) is left for run time to report.
        let domain = node.domain == "ai.onnx" ? "" : node.domain
        guard let build = registry.builder(domain: domain, op: node.opType) else { return nil }
        let ctx = OpContext(node: node, opset: opsets[domain] ?? 1, compileSubgraph: { _ in
            throw OpError("nodes with subgraphs are not folded")
        })
        guard let op = try? build(ctx), let out = try? op.run(inputs, RunEnv(threads: 1)) else { return nil }
        guard out.count >= node.outputs.filter({ !$0.isEmpty }).count else { return nil }
        // Sequence and optional values stay values of the run, not initializers.
        guard !out.contains(where: \.isContainer) else { return nil }
        let bytes = out.reduce(0) { $0 + $1.count * max($1.dtype.byteSize, 8) }
        guard bytes <= maxFoldedBytes else { return nil }
        return Array(out.prefix(node.outputs.count))
    }
}
