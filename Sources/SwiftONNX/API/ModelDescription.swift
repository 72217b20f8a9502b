import Foundation

/// What a model file says about itself, read without planning it (so it works even when some
/// operator is not supported: `unsupportedOperators` lists those).
public struct ModelDescription: Sendable {
    public let metadata: ModelMetadata
    public let inputs: [ValueInfo]
    public let outputs: [ValueInfo]
    /// Initializer count and total bytes of weights.
    public let initializerCount: Int
    public let weightBytes: Int
    /// Ops (as "domain::Op", or "Op" for ai.onnx) this runtime cannot run, with their opset; main graph and subgraphs.
    public let unsupportedOperators: [String]

    /// Reads a model file. Throws only when the file cannot be read or parsed.
    public init(contentsOf url: URL) throws {
        let model = try ModelLoader.load(path: url.path)
        let g = model.graph
        var hist: [String: Int] = [:]
        var unsupported = Set<String>()
        func walk(_ graph: Graph) {
            for n in graph.nodes {
                let key = n.domain.isEmpty ? n.opType : "\(n.domain)::\(n.opType)"
                hist[key, default: 0] += 1
                if !OpRegistry.standard.supports(domain: n.domain, op: n.opType) {
                    let d = n.domain.isEmpty ? "" : n.domain
                    unsupported.insert("\(d.isEmpty ? "ai.onnx" : d)::\(n.opType) (opset \(model.opsets[d] ?? 1))")
                }
                for a in n.attributes.values {
                    if case .graph(let sg) = a { walk(sg) }
                    if case .graphs(let gs) = a { gs.forEach(walk) }
                }
            }
        }
        walk(g)
        let topCount = g.nodes.count
        metadata = ModelMetadata(irVersion: model.irVersion, producerName: model.producerName,
                                 producerVersion: model.producerVersion, domain: model.domain,
                                 modelVersion: model.modelVersion, docString: model.docString, opsets: model.opsets,
                                 nodeCount: topCount, opHistogram: hist)
        ShapeInference.infer(g, opsets: model.opsets)
        inputs = g.inputs
        outputs = g.outputs.map { o in (o.type != nil && o.shape != nil) ? o : (g.valueInfo[o.name] ?? o) }
        initializerCount = g.initializers.count
        weightBytes = g.initializers.values.reduce(0) { $0 + $1.byteCount }
        unsupportedOperators = unsupported.sorted()
    }
}
