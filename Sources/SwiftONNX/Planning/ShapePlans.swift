import Foundation

/// Plans made for particular input shapes, for models whose inputs have symbolic dimensions.
///
/// The general plan, made at load, cannot fold what depends on input sizes: `Shape` of an
/// intermediate, the batch checks exporters wrap in `If`, geometry that follows from them. When an
/// input signature (every feed's type and shape) comes a second time, the optimized graph is copied,
/// its inputs are given those sizes, and only what the sizes now determine is folded (shape
/// inference, constant folding, inlining of constant `If`s: `PassManager.specialization`) before the
/// copy is lowered: the pattern rewrites are not run again (the general graph has them already), so
/// a new sequence length costs a re-lowering, not a re-optimization, and computes what the general
/// plan computes. Later runs of that signature use that plan. (`SWIFTONNX_SHAPE_PLAN=full` runs
/// every pass again instead, for comparison.) A signature seen once costs nothing extra, so inputs
/// whose shape changes on every run (OCR lines of every width) keep the general plan. Prepared weights are shared with the general plan
/// (`PreparedWeights`), so a shape plan holds only what its folding made. A few plans are kept,
/// least recently used dropped first; a signature whose plan cannot be made keeps the general plan.
final class ShapePlans: @unchecked Sendable {   // the graph: read-only here (each plan works on a deep copy)
    enum Decision { case ready(Plan), general, build }

    let graph: Graph
    let opsets: [String: Int]
    let capacity: Int
    private struct State {
        var plans: [[Int]: Plan] = [:]
        var recency: [[Int]] = []
        var seen: [[Int]: Int] = [:]
        var refused: Set<[Int]> = []
    }
    private let state = Locked(State())

    init(graph: Graph, opsets: [String: Int], capacity: Int = 4) {
        self.graph = graph
        self.opsets = opsets
        self.capacity = capacity
    }

    /// What a run of `signature` should use; `.build` once per signature, on its second run.
    func lookup(_ signature: [Int]) -> Decision {
        state.withLock { st in
            if let p = st.plans[signature] {
                if st.recency.last != signature, let k = st.recency.firstIndex(of: signature) {
                    st.recency.remove(at: k)
                    st.recency.append(signature)
                }
                return .ready(p)
            }
            if st.refused.contains(signature) { return .general }
            if st.seen.count >= 256 { st.seen.removeAll() }
            let n = st.seen[signature, default: 0] + 1
            st.seen[signature] = n
            return n == 2 ? .build : .general
        }
    }

    /// Makes the plan for `signature` now unless it has one or could not make one
    /// (`InferenceSession.prepare(inputShapes:)`); a failure is remembered and leaves the general plan.
    func prepare(_ signature: [Int], shapes: [String: [Int]], prepared: PreparedWeights) {
        let needed = state.withLock { st in st.plans[signature] == nil && !st.refused.contains(signature) }
        if needed { _ = try? build(signature, shapes: shapes, prepared: prepared) }
    }

    /// Makes (and keeps) the plan for `shapes` (feed name -> shape); nil, remembered, when it fails.
    func build(_ signature: [Int], shapes: [String: [Int]], prepared: PreparedWeights) throws -> Plan {
        do {
            let g = graph.deepCopy()
            for k in g.inputs.indices {
                guard let s = shapes[g.inputs[k].name] else { continue }
                g.inputs[k].shape = s.map { .known($0) }
                g.valueInfo[g.inputs[k].name] = g.inputs[k]
            }
            let full = ProcessInfo.processInfo.environment["SWIFTONNX_SHAPE_PLAN"] == "full"
            try (full ? PassManager.standard : PassManager.specialization).run(on: g, opsets: opsets)
            ShapeInference.infer(g, opsets: opsets)
            let p = try PlanBuilder(registry: .standard, opsets: opsets, prepared: prepared).compile(g)
            let capacity = self.capacity
            state.withLock { st in
                st.plans[signature] = p
                st.recency.append(signature)
                while st.recency.count > capacity { st.plans[st.recency.removeFirst()] = nil }
            }
            return p
        } catch {
            state.withLock { _ = $0.refused.insert(signature) }
            throw error
        }
    }

    /// How many shape plans are kept (for tests).
    var count: Int { state.withLock { $0.plans.count } }

    /// The plans kept, by signature (for tests).
    var plans: [[Int]: Plan] { state.withLock { $0.plans } }
}
