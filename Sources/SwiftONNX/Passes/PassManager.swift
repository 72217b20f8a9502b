import Dispatch

/// A rewrite of the graph. Each is small, named, owned by the op family whose op it is rooted at
/// (registered with `OpRegistry.rewrite`), and tested against the unoptimized path.
protocol GraphPass: Sendable {
    var name: String { get }
    /// Returns whether it changed anything.
    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool
}

/// Runs the passes in order, repeatedly, until none changes the graph (or a round limit is hit).
struct PassManager {
    let passes: [any GraphPass]
    var maxRounds = 8

    /// The cleanup rewrites, then constant folding, then the other rewrites the op families own, by phase.
    static var standard: PassManager {
        let registry = OpRegistry.standard
        return PassManager(passes: registry.rewrites(.cleanup) + [ConstantFolding(registry: registry)]
                               + registry.rewrites(.fold) + registry.rewrites(.fuse))
    }

    /// What a plan for known input shapes runs on the already optimized graph: folding what the sizes
    /// now determine (shape arithmetic, constant `If`s), then the three linear rewrites that folding
    /// enables: a Reshape to its input's own shape is an Identity and goes, and the head transposes
    /// around attention, whose other readers were Shape nodes now folded, become the attention's
    /// strided reads and writes. No other pattern rewrites.
    static var specialization: PassManager {
        let registry = OpRegistry.standard
        return PassManager(passes: [ConstantFolding(registry: registry), InlineConstantIf(), ReshapeToSameShapeIsIdentity(),
                                    RemoveIdentity(), AttentionHeadsInPlace()])
    }

    /// Optimizes `graph` and, recursively, every subgraph of its nodes (If branches, Loop/Scan bodies).
    func run(on graph: Graph, opsets: [String: Int]) throws {
        try runOne(graph, opsets: opsets)
        guard graph.nodes.contains(where: \.hasSubgraph) else { return }
        // What subgraphs see of this graph: its constants and value types, and those it sees itself.
        var visible = graph.outerConstants
        for (k, v) in graph.initializers { visible[k] = v }
        var visibleTypes = graph.outerTypes
        for (k, v) in graph.valueInfo { visibleTypes[k] = v }
        for v in graph.inputs { visibleTypes[v.name] = v }
        for (k, t) in graph.initializers { visibleTypes[k] = ValueInfo(name: k, type: t.dtype, shape: t.shape.map { .known($0) }) }
        for node in graph.nodes {
            try node.forEachSubgraph { g in
                g.outerConstants = visible
                g.outerTypes = visibleTypes
                try run(on: g, opsets: opsets)
                g.outerConstants = [:]
                g.outerTypes = [:]
            }
        }
    }

    private func runOne(_ graph: Graph, opsets: [String: Int]) throws {
        for _ in 0..<maxRounds {
            var t0 = DispatchTime.now().uptimeNanoseconds
            ShapeInference.infer(graph, opsets: opsets)
            if Profiler.enabled { Profiler.record("[load] shape inference", ns: DispatchTime.now().uptimeNanoseconds - t0) }
            var changed = false
            for p in passes {
                t0 = DispatchTime.now().uptimeNanoseconds
                if try p.apply(to: graph, opsets: opsets) { changed = true }
                if Profiler.enabled { Profiler.record("[load] pass " + p.name, ns: DispatchTime.now().uptimeNanoseconds - t0) }
            }
            if !changed { break }
        }
    }
}
