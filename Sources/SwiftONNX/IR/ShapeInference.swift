/// What inference knows of a value.
struct TypeInfo: Equatable {
    var dtype: DType?
    var shape: [Dim]?
    static let unknown = TypeInfo(dtype: nil, shape: nil)
}

/// One input as an inference rule sees it: its type and, when it is a constant, its value.
struct InferenceInput {
    var type: TypeInfo
    var constant: Tensor?
}

/// Computes output types from input types. Returns one TypeInfo per output (unknown where it cannot tell).
typealias InferenceRule = (OpContext, [InferenceInput]) throws -> [TypeInfo]

/// Fills in types and shapes of values the model does not declare, walking the graph in order and
/// applying the rule registered for each op. Values it cannot infer stay unknown; nothing throws.
enum ShapeInference {
    nonisolated(unsafe) static var rules: [String: InferenceRule] = {
        var r: [String: InferenceRule] = [:]
        registerInferenceRules(&r)
        return r
    }()

    static func infer(_ graph: Graph, opsets: [String: Int]) {
        var known: [String: InferenceInput] = [:]
        for (name, t) in graph.initializers {
            known[name] = InferenceInput(type: TypeInfo(dtype: t.dtype, shape: t.shape.map { .known($0) }), constant: t)
        }
        for i in graph.inputs { known[i.name] = InferenceInput(type: TypeInfo(dtype: i.type, shape: i.shape), constant: nil) }
        for node in graph.nodes {
            let ins = node.inputs.map { known[$0] ?? InferenceInput(type: .unknown, constant: nil) }
            var outs = [TypeInfo](repeating: .unknown, count: node.outputs.count)
            let domain = node.domain == "ai.onnx" ? "" : node.domain
            if let rule = rules[domain + "::" + node.opType] {
                let ctx = OpContext(node: node, opset: opsets[domain] ?? 1, compileSubgraph: { _ in
                    throw OpError("no subgraphs during inference")
                })
                if let r = try? rule(ctx, ins) {
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
                if graph.valueInfo[name]?.type == nil || graph.valueInfo[name]?.shape == nil {
                    graph.valueInfo[name] = ValueInfo(name: name, type: t.dtype, shape: t.shape)
                }
            }
        }
    }
}
