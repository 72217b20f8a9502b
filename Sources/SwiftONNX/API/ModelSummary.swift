import Foundation

/// What a model file declares, read without planning it: works for models this runtime cannot run
/// (unsupported operators), which `InferenceSession` refuses. Used by `swift-onnx inspect`.
public struct ModelSummary: Sendable {
    /// Metadata, node count and op histogram of the graph as written (no optimization passes).
    public let metadata: ModelMetadata
    /// Inputs a caller feeds (initializers excluded); outputs with their declared (or inferred) types.
    public let inputs: [ValueInfo]
    /// The model's outputs with their declared types and shapes or, where the model leaves them
    /// out, those shape inference found.
    public let outputs: [ValueInfo]
    /// Number of initializers (stored weights and constants) of the main graph.
    public let initializerCount: Int
    /// Total element count of the main graph's initializers: the model's parameters.
    public let parameterCount: Int
    /// Operators (of the main graph and its subgraphs) this runtime has no implementation for,
    /// as "domain::Op" ("Op" for ai.onnx), sorted.
    public let unsupportedOperators: [String]

    /// Reads a model file. Throws `ONNXError.io` when it cannot be read and `.invalidModel` or
    /// `.invalidGraph` when it is malformed. Operators this runtime does not implement are listed in
    /// ``unsupportedOperators``, not thrown; opset and IR versions are not checked.
    ///
    /// - Parameter path: The path of an `.onnx` file.
    public init(path: String) throws(ONNXError) {
        self.init(model: try typedONNX { try ModelLoader.load(path: path) })
    }

    /// Reads the model file at a file URL (see ``init(path:)``); other URLs throw `ONNXError.io`.
    ///
    /// - Parameter url: A file URL of an `.onnx` file.
    public init(contentsOf url: URL) throws(ONNXError) {
        guard url.isFileURL else { throw ONNXError.io(path: url.absoluteString, reason: "only file URLs are supported") }
        try self.init(path: url.path)
    }

    init(model: Model) {
        let graph = model.graph
        ShapeInference.infer(graph, opsets: model.opsets)
        inputs = graph.inputs
        outputs = graph.outputs.map { o in
            if o.type != nil, o.shape != nil { return o }
            return graph.valueInfo[o.name] ?? o
        }
        func label(_ n: Node) -> String {
            let d = n.domain == "ai.onnx" ? "" : n.domain
            return d.isEmpty ? n.opType : "\(d)::\(n.opType)"
        }
        metadata = ModelMetadata(irVersion: model.irVersion, producerName: model.producerName,
                                 producerVersion: model.producerVersion, domain: model.domain,
                                 modelVersion: model.modelVersion, docString: model.docString,
                                 opsets: model.opsets, nodeCount: graph.nodes.count,
                                 opHistogram: Dictionary(graph.nodes.map { (label($0), 1) }, uniquingKeysWith: +))
        initializerCount = graph.initializers.count
        parameterCount = graph.initializers.values.reduce(0) { $0 + $1.count }

        var missing = Set<String>()
        func visit(_ g: Graph) {
            for n in g.nodes {
                let d = n.domain == "ai.onnx" ? "" : n.domain
                if !OpRegistry.standard.supports(domain: d, op: n.opType) { missing.insert(label(n)) }
                for a in n.attributes.values {
                    switch a {
                    case .graph(let sub): visit(sub)
                    case .graphs(let subs): subs.forEach(visit)
                    default: break
                    }
                }
            }
        }
        visit(graph)
        unsupportedOperators = missing.sorted()
    }
}
