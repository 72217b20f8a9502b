import Dispatch

/// One input as an inference rule sees it: its type and, when it is a constant, its value.
struct InferenceInput {
    var type: TypeInfo
    var constant: Tensor?
    static let absent = InferenceInput(type: .unknown, constant: nil)
}

/// Type and shape inference of one op: output types from input types (and the values of constant
/// inputs). A rule returns what it can tell, one TypeInfo per output; anything uncertain stays
/// unknown (nil dtype or shape, `.unknown` dims), and symbolic dims flow through ops that keep them.
/// Rules never fail a load: a rule that throws leaves the outputs unknown.
struct Inference: Sendable {
    let rule: @Sendable (OpContext, [InferenceInput]) throws -> [TypeInfo]
    init(_ rule: @escaping @Sendable (OpContext, [InferenceInput]) throws -> [TypeInfo]) { self.rule = rule }

    /// One output with the first input's type and shape (unary element-wise ops, norms, softmax...).
    static let sameAsFirst = Inference { _, ins in [ins.first?.type ?? .unknown] }

    /// One bool output of the first input's shape (IsNaN, IsInf).
    static let boolOfFirst = Inference { _, ins in [TypeInfo(dtype: .bool, shape: ins.shape(0))] }

    /// One output, the multidirectional broadcast of all inputs' shapes; element type `fixed` or the first input's.
    static func broadcast(_ fixed: DType? = nil) -> Inference {
        Inference { ctx, ins in
            let dt = fixed ?? ins.first?.type.dtype
            // Opset < 7 broadcast (attribute `broadcast`, optional `axis`): the result has A's shape.
            if ctx.opset < 7, ins.count == 2, ((try? ctx.int("broadcast", default: 0)) ?? 0) != 0 {
                return [TypeInfo(dtype: dt, shape: ins[0].type.shape)]
            }
            return [TypeInfo(dtype: dt, shape: ins.broadcastShape())]
        }
    }

    /// Outputs whose element types are known but whose shapes depend on data.
    static func dtypes(_ f: @escaping @Sendable (OpContext, [InferenceInput]) -> [DType?]) -> Inference {
        Inference { ctx, ins in f(ctx, ins).map { TypeInfo(dtype: $0, shape: nil) } }
    }
}

extension Array where Element == InferenceInput {
    /// The i-th input (absent when out of range).
    func at(_ i: Int) -> InferenceInput { i < count ? self[i] : .absent }
    func dtype(_ i: Int) -> DType? { at(i).type.dtype }
    func shape(_ i: Int) -> [Dim]? { at(i).type.shape }
    /// Integer values of the i-th input when it is a constant.
    func ints(_ i: Int) -> [Int]? { (try? at(i).constant?.readAsInts()) ?? nil }
    /// Numpy broadcast of every present input's shape; nil when one is unknown or they do not broadcast.
    func broadcastShape() -> [Dim]? {
        let shapes = map(\.type.shape)
        guard !isEmpty, !shapes.contains(where: { $0 == nil }) else { return nil }
        return broadcastDims(shapes.map { $0! })
    }
}

/// Fills in the types and shapes of values the model does not declare, walking the graph in order
/// and applying each op's inference from the registry. Values it cannot infer stay unknown; nothing throws.
enum ShapeInference {
    static func infer(_ graph: Graph, opsets: [String: Int], registry: OpRegistry = .standard) {
        var walk = Walk(graph, opsets: opsets, registry: registry)
        for node in graph.nodes { walk.visit(node) }
    }

    /// Inference one node at a time, in graph order: what `infer` does, for a pass that changes the
    /// graph as it walks (constant folding records each value it folds with `constant(_:_:)`, so the
    /// nodes after it see the sizes it fixed in the same walk, not a round later).
    struct Walk {
        let graph: Graph
        let opsets: [String: Int]
        let registry: OpRegistry
        private var known: [String: InferenceInput] = [:]

        init(_ graph: Graph, opsets: [String: Int], registry: OpRegistry = .standard) {
            self.graph = graph
            self.opsets = opsets
            self.registry = registry
            // Outer-scope values first: the graph's own definitions shadow them.
            for (name, v) in graph.outerTypes {
                known[name] = InferenceInput(type: TypeInfo(dtype: v.type, shape: v.shape), constant: graph.outerConstants[name])
            }
            for (name, t) in graph.outerConstants where known[name] == nil {
                known[name] = InferenceInput(type: TypeInfo(dtype: t.dtype, shape: t.shape.map { .known($0) }), constant: t)
            }
            for (name, t) in graph.initializers { constant(name, t) }
            for i in graph.inputs { known[i.name] = InferenceInput(type: TypeInfo(dtype: i.type, shape: i.shape), constant: nil) }
        }

        /// Records that `name` is now the constant `t`.
        mutating func constant(_ name: String, _ t: Tensor) {
            known[name] = InferenceInput(type: TypeInfo(dtype: t.dtype, shape: t.shape.map { .known($0) }), constant: t)
        }

        /// Infers `node`'s outputs from what is known of its inputs and records them in `graph.valueInfo`.
        mutating func visit(_ node: Node) {
            let ins = node.inputs.map { $0.isEmpty ? .absent : (known[$0] ?? .absent) }
            var outs = [TypeInfo](repeating: .unknown, count: node.outputs.count)
            let domain = node.domain == "ai.onnx" ? "" : node.domain
            if let inference = registry.inference(domain: domain, op: node.opType) {
                let ctx = OpContext(node: node, opset: opsets[domain] ?? 1, compileSubgraph: { _ in
                    throw OpError("no subgraphs are compiled during inference")
                })
                if let r = try? inference.rule(ctx, ins) {
                    for (k, t) in r.prefix(outs.count).enumerated() { outs[k] = t }
                }
            }
            for (k, name) in node.outputs.enumerated() where !name.isEmpty {
                var t = outs[k]
                if let declared = graph.valueInfo[name] {
                    if t.dtype == nil { t.dtype = declared.type }
                    if t.shape == nil { t.shape = declared.shape }
                }
                known[name] = InferenceInput(type: t, constant: nil)
                if let declared = graph.valueInfo[name], declared.type != nil, let ds = declared.shape {
                    // A recorded shape (declared, or inferred before the input shapes were known) takes
                    // the sizes inference now knows where it has a symbol or nothing.
                    if let s = t.shape, s.count == ds.count,
                       zip(ds, s).contains(where: { $0.value == nil && $1.value != nil }) {
                        graph.valueInfo[name]?.shape = zip(ds, s).map { $0.value == nil && $1.value != nil ? $1 : $0 }
                    }
                } else {
                    graph.valueInfo[name] = ValueInfo(name: name, type: t.dtype, shape: t.shape)
                }
            }
        }
    }
}
