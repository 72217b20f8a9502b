import Foundation

/// Plans made for particular input shapes, for models whose inputs have symbolic dimensions.
///
/// The general plan, made at load, cannot fold what depends on input sizes: `Shape` of an
/// intermediate, the batch checks exporters wrap in `If`, geometry that follows from them. When an
/// input signature (every feed's type and shape) comes a second time, the optimized graph is copied,
/// its inputs are given those sizes, and the passes run again (shape inference, constant folding,
/// inlining of constant `If`s, fusions) before the copy is planned; later runs of that signature use
/// that plan. A signature seen once costs nothing extra, so inputs whose shape changes on every run
/// (OCR lines of every width) keep the general plan. Prepared weights are shared with the general plan
/// (`PreparedWeights`), so a shape plan holds only what its folding made. A few plans are kept,
/// least recently used dropped first; a signature whose plan cannot be made keeps the general plan.
final class ShapePlans: @unchecked Sendable {
    enum Decision { case ready(Plan), general, build }

    let graph: Graph
    let opsets: [String: Int]
    let capacity: Int
    private let lock = NSLock()
    private(set) var plans: [[Int]: Plan] = [:]
    private var recency: [[Int]] = []
    private var seen: [[Int]: Int] = [:]
    private var refused: Set<[Int]> = []

    init(graph: Graph, opsets: [String: Int], capacity: Int = 4) {
        self.graph = graph
        self.opsets = opsets
        self.capacity = capacity
    }

    /// What a run of `signature` should use; `.build` once per signature, on its second run.
    func lookup(_ signature: [Int]) -> Decision {
        lock.lock()
        defer { lock.unlock() }
        if let p = plans[signature] {
            if recency.last != signature, let k = recency.firstIndex(of: signature) {
                recency.remove(at: k)
                recency.append(signature)
            }
            return .ready(p)
        }
        if refused.contains(signature) { return .general }
        if seen.count >= 256 { seen.removeAll() }
        let n = seen[signature, default: 0] + 1
        seen[signature] = n
        return n == 2 ? .build : .general
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
            try PassManager.standard.run(on: g, opsets: opsets)
            ShapeInference.infer(g, opsets: opsets)
            let p = try PlanBuilder(registry: .standard, opsets: opsets, prepared: prepared).compile(g)
            lock.lock()
            plans[signature] = p
            recency.append(signature)
            while recency.count > capacity { plans[recency.removeFirst()] = nil }
            lock.unlock()
            return p
        } catch {
            lock.lock()
            refused.insert(signature)
            lock.unlock()
            throw error
        }
    }

    /// How many shape plans are kept (for tests).
    var count: Int { lock.lock(); defer { lock.unlock() }; return plans.count }
}
