/// Typed attribute value of a node, as the loader hands it to ops.
enum Attribute {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case graph(Graph)
    case floats([Float])
    case ints([Int])
    case strings([String])
    case tensors([Tensor])
    case graphs([Graph])
    /// A type (Optional's `type`): the kind of value and the element type of its tensors.
    case type(ValueKind, DType?)
    /// Sparse tensors and lists of type protos: recognised, not used by any supported op.
    case unsupported(String)

    var typeName: String {
        switch self {
        case .float: return "float"
        case .int: return "int"
        case .string: return "string"
        case .tensor: return "tensor"
        case .graph: return "graph"
        case .floats: return "floats"
        case .ints: return "ints"
        case .strings: return "strings"
        case .tensors: return "tensors"
        case .graphs: return "graphs"
        case .type: return "type proto"
        case .unsupported(let s): return s
        }
    }
}

/// One operator application.
struct Node {
    var name: String
    var opType: String
    var domain: String
    /// Value names; "" marks an omitted optional input.
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: Attribute]
    /// Outer-scope values read by this node's subgraphs (computed by the loader).
    var implicitInputs: [String] = []

    var label: String { name.isEmpty ? "\(opType)(\(outputs.first ?? ""))" : name }
}

/// A computation graph (a model's main graph or a subgraph of If/Loop/Scan).
final class Graph {
    var name: String
    var nodes: [Node]
    /// Inputs a caller feeds (initializers that shadow inputs are excluded, as ONNX says for IR >= 4).
    var inputs: [ValueInfo]
    var outputs: [ValueInfo]
    var initializers: [String: Tensor]
    /// Declared types of intermediate values (value_info), and inferred ones.
    var valueInfo: [String: ValueInfo]
    /// For a subgraph: constants of the enclosing graphs it may read through outer scope
    /// (set by the pass manager so folding inside If/Loop bodies sees the weights).
    var outerConstants: [String: Tensor] = [:]
    /// For a subgraph: what the enclosing graphs know of the values it may read through outer scope
    /// (set by the pass manager, so inference and folding inside If/Loop bodies see their shapes).
    var outerTypes: [String: ValueInfo] = [:]

    init(name: String, nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo],
         initializers: [String: Tensor], valueInfo: [String: ValueInfo]) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.valueInfo = valueInfo
    }

    /// Names this graph (and its nested subgraphs) read but does not define.
    func freeVariables() -> [String] {
        var defined = Set(inputs.map(\.name))
        defined.formUnion(initializers.keys)
        for n in nodes { defined.formUnion(n.outputs) }
        var seen = Set<String>()
        var result: [String] = []
        func use(_ name: String) {
            if !name.isEmpty, !defined.contains(name), seen.insert(name).inserted { result.append(name) }
        }
        for n in nodes {
            n.inputs.forEach(use)
            n.implicitInputs.forEach(use)
        }
        outputs.forEach { use($0.name) }
        return result
    }
}

/// A loaded model: metadata plus its main graph.
final class Model {
    let irVersion: Int
    let producerName: String
    let producerVersion: String
    let domain: String
    let modelVersion: Int
    let docString: String
    /// Opset version per domain ("" is ai.onnx).
    let opsets: [String: Int]
    let graph: Graph
    /// Parsed protobuf and mapped files whose memory tensors alias.
    let keepAlive: [AnyObject]
    /// The model's metadata_props (key/value strings set by its producer).
    var metadataProps: [String: String] = [:]

    init(irVersion: Int, producerName: String, producerVersion: String, domain: String, modelVersion: Int,
         docString: String, opsets: [String: Int], graph: Graph, keepAlive: [AnyObject]) {
        self.irVersion = irVersion
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.opsets = opsets
        self.graph = graph
        self.keepAlive = keepAlive
    }
}

extension Graph {
    /// A copy whose nodes, subgraphs (recursively) and tables can be rewritten without touching this
    /// graph. Tensors are shared: they are immutable.
    func deepCopy() -> Graph {
        let g = Graph(name: name, nodes: nodes.map { $0.withCopiedSubgraphs() }, inputs: inputs, outputs: outputs,
                      initializers: initializers, valueInfo: valueInfo)
        g.outerConstants = outerConstants
        g.outerTypes = outerTypes
        return g
    }

    /// Every value name this graph and its nested subgraphs define or read (leaving out the node at
    /// index `skipping`, if given).
    func allValueNames(into names: inout Set<String>, skipping: Int? = nil) {
        for i in inputs { names.insert(i.name) }
        for o in outputs { names.insert(o.name) }
        names.formUnion(initializers.keys)
        for (k, n) in nodes.enumerated() where k != skipping {
            for x in n.inputs where !x.isEmpty { names.insert(x) }
            for x in n.outputs where !x.isEmpty { names.insert(x) }
            n.forEachSubgraph { $0.allValueNames(into: &names) }
        }
    }

    /// Renames values: definitions and uses here, and uses of outer values inside nested subgraphs
    /// (a subgraph that defines a name itself shadows it).
    func rename(_ map: [String: String]) {
        if map.isEmpty { return }
        func r(_ s: String) -> String { s.isEmpty ? s : (map[s] ?? s) }
        inputs = inputs.map { var v = $0; v.name = r(v.name); return v }
        outputs = outputs.map { var v = $0; v.name = r(v.name); return v }
        var inits: [String: Tensor] = [:]
        for (k, t) in initializers { inits[r(k)] = t }
        initializers = inits
        var infos: [String: ValueInfo] = [:]
        for (k, v) in valueInfo { var w = v; w.name = r(k); infos[r(k)] = w }
        valueInfo = infos
        for i in nodes.indices {
            nodes[i].inputs = nodes[i].inputs.map(r)
            nodes[i].outputs = nodes[i].outputs.map(r)
            nodes[i].implicitInputs = nodes[i].implicitInputs.map(r)
            nodes[i].forEachSubgraph { sub in
                var defined = Set(sub.inputs.map(\.name))
                defined.formUnion(sub.initializers.keys)
                for n in sub.nodes { defined.formUnion(n.outputs) }
                sub.rename(map.filter { !defined.contains($0.key) })
            }
        }
    }
}

extension Node {
    /// This node with its graph attributes deep-copied.
    func withCopiedSubgraphs() -> Node {
        var n = self
        for (k, a) in attributes {
            switch a {
            case .graph(let g): n.attributes[k] = .graph(g.deepCopy())
            case .graphs(let gs): n.attributes[k] = .graphs(gs.map { $0.deepCopy() })
            default: break
            }
        }
        return n
    }

    /// Calls `body` on each subgraph attribute (shared references: rewrites land in the node).
    func forEachSubgraph(_ body: (Graph) throws -> Void) rethrows {
        for a in attributes.values {
            switch a {
            case .graph(let g): try body(g)
            case .graphs(let gs): try gs.forEach(body)
            default: break
            }
        }
    }
}
