import CONNXProto
import Foundation

/// Turns ONNX protobufs (parsed by protobuf-c) into the IR. Nothing above this file sees protobuf-c.
struct ModelLoader {
    /// Loads a model file: mmapped, unpacked once, weights aliased into the unpacked message.
    static func load(path: String) throws -> Model {
        let file = try MappedFile(path: path)
        guard let base = file.base, file.size > 0 else { throw ONNXError.invalidModel(path: path, reason: "the file is empty") }
        guard file.size < Int(Int32.max) else {
            throw ONNXError.invalidModel(path: path, reason: "protobuf files are limited to 2 GiB; store large weights as external data")
        }
        let whole = UnsafeRawBufferPointer(start: base, count: file.size)
        try checkNesting(whole, path: path)
        // Large weights stay in the mapped file (aliased, not copied): protobuf-c unpacks the
        // model without them, and the main graph's initializers read them from the file.
        var slices: [Int: UnsafeRawBufferPointer] = [:]
        var msg: ProtoMessage<Onnx__ModelProto>? = nil
        if let split = RawDataSplit.split(whole) {
            msg = split.message.withUnsafeBytes { unpackModelProto($0) }
            if msg != nil {
                for (i, r) in split.slices { slices[i] = UnsafeRawBufferPointer(rebasing: whole[r]) }
            }
        }
        guard let msg = msg ?? unpackModelProto(whole) else {
            throw ONNXError.invalidModel(path: path, reason: "the protobuf cannot be parsed (truncated or not an ONNX file)")
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        defer { file.finishLoading() }
        return try build(msg, path: path, baseDirectory: dir, rawData: slices, file: file)
    }

    /// Loads a model from bytes in memory (external data is then refused).
    static func load(bytes: [UInt8], name: String = "<memory>") throws -> Model {
        guard !bytes.isEmpty else { throw ONNXError.invalidModel(path: name, reason: "no bytes") }
        try bytes.withUnsafeBytes { try checkNesting($0, path: name) }
        let msg = bytes.withUnsafeBytes { unpackModelProto($0) }
        guard let msg else { throw ONNXError.invalidModel(path: name, reason: "the protobuf cannot be parsed (truncated or not an ONNX file)") }
        return try build(msg, path: name, baseDirectory: nil)
    }

    /// Refuses messages nested beyond `ProtoNesting.maxDepth` before anything recurses into them.
    private static func checkNesting(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        let depth = ProtoNesting.depth(bytes)
        if depth > ProtoNesting.maxDepth {
            throw ONNXError.invalidModel(path: path, reason: "its messages nest more than \(ProtoNesting.maxDepth) levels deep (subgraphs inside subgraphs); no real model does, and parsing it would overflow the stack")
        }
    }

    /// `rawData`: main-graph initializer index -> its raw_data, taken out of `msg` (in `file`).
    private static func build(_ msg: ProtoMessage<Onnx__ModelProto>, path: String, baseDirectory: String?,
                              rawData: [Int: UnsafeRawBufferPointer] = [:], file: MappedFile? = nil) throws -> Model {
        let m = msg.pointer.pointee
        guard let g = m.graph else { throw ONNXError.invalidModel(path: path, reason: "the model has no graph") }
        // A random file can parse as a protobuf with no known fields; an ONNX model has at least ir_version or a graph with nodes.
        guard m.has_ir_version != 0 else {
            throw ONNXError.invalidModel(path: path, reason: "no ir_version field (not an ONNX model)")
        }
        var opsets: [String: Int] = [:]
        for i in 0..<m.n_opset_import {
            guard let o = m.opset_import[i] else { continue }
            var d = cString(o.pointee.domain)
            if d == "ai.onnx" { d = "" }
            opsets[d] = Int(o.pointee.version)
        }
        if opsets[""] == nil && m.n_opset_import == 0 { opsets[""] = 1 }
        let external = ExternalDataResolver(baseDirectory: baseDirectory)
        defer { for f in external.mapped { f.finishLoading() } }
        let loader = GraphLoader(owner: msg, external: external, path: path, rawData: rawData, file: file)
        let graph = try loader.graph(g, isMain: true)
        let model = Model(irVersion: Int(m.ir_version), producerName: cString(m.producer_name),
                          producerVersion: cString(m.producer_version), domain: cString(m.domain),
                          modelVersion: Int(m.model_version), docString: cString(m.doc_string), opsets: opsets,
                          graph: graph, keepAlive: [msg] + external.mapped)
        for i in 0..<m.n_metadata_props {
            guard let e = m.metadata_props[i] else { continue }
            model.metadataProps[cString(e.pointee.key)] = cString(e.pointee.value)
        }
        return model
    }
}

private struct GraphLoader {
    let owner: AnyObject
    let external: ExternalDataResolver
    let path: String
    /// The main graph's initializers whose raw_data stayed in the mapped file (by index).
    var rawData: [Int: UnsafeRawBufferPointer] = [:]
    var file: MappedFile? = nil

    func graph(_ gp: UnsafeMutablePointer<Onnx__GraphProto>, isMain: Bool) throws -> Graph {
        let g = gp.pointee
        let gname = cString(g.name)
        var initializers: [String: Tensor] = [:]
        for i in 0..<g.n_initializer {
            guard let tp = g.initializer[i] else { continue }
            let t = try decodeTensor(tp, owner: owner, external: external, raw: isMain ? rawData[i] : nil, rawOwner: file)
            let name = cString(tp.pointee.name)
            guard !name.isEmpty else { throw ONNXError.invalidGraph("graph '\(gname)': initializer #\(i) has no name") }
            if initializers[name] != nil { throw ONNXError.invalidGraph("graph '\(gname)': initializer '\(name)' appears twice") }
            initializers[name] = t
        }
        if g.n_sparse_initializer > 0 {
            throw ONNXError.unsupportedType("graph '\(gname)' has sparse initializers, which are not supported")
        }
        var inputs: [ValueInfo] = []
        var seenInputs = Set<String>()
        for i in 0..<g.n_input {
            guard let vi = g.input[i] else { continue }
            let info = valueInfo(vi)
            guard seenInputs.insert(info.name).inserted else {
                throw ONNXError.invalidGraph("graph '\(gname)': input '\(info.name)' is declared twice")
            }
            // An initializer with the same name gives the input a default: it is not required.
            if initializers[info.name] == nil { inputs.append(info) }
        }
        let outputs = (0..<g.n_output).compactMap { g.output[$0] }.map(valueInfo)
        var vinfo: [String: ValueInfo] = [:]
        for i in 0..<g.n_value_info {
            guard let vi = g.value_info[i] else { continue }
            let v = valueInfo(vi)
            vinfo[v.name] = v
        }
        for o in outputs { vinfo[o.name] = o }
        for i in inputs { vinfo[i.name] = i }

        var nodes: [Node] = []
        nodes.reserveCapacity(g.n_node)
        for i in 0..<g.n_node {
            guard let np = g.node[i] else { continue }
            let node = try self.node(np, index: i)
            // Constant nodes become initializers.
            if node.opType == "Constant" && (node.domain.isEmpty || node.domain == "ai.onnx") {
                guard node.outputs.count == 1, !node.outputs[0].isEmpty else {
                    throw ONNXError.invalidGraph("Constant node '\(node.label)' must have one output")
                }
                if initializers[node.outputs[0]] != nil {
                    throw ONNXError.invalidGraph("value '\(node.outputs[0])' is defined twice (Constant node '\(node.label)')")
                }
                initializers[node.outputs[0]] = try constantValue(node)
                continue
            }
            nodes.append(node)
        }
        return Graph(name: gname, nodes: nodes, inputs: inputs, outputs: outputs,
                     initializers: initializers, valueInfo: vinfo)
    }

    func constantValue(_ node: Node) throws -> Tensor {
        guard node.attributes.count == 1, let (key, a) = node.attributes.first else {
            throw ONNXError.invalidAttribute(node: node.label, op: "Constant", attribute: "value",
                                             reason: "exactly one of value, value_float(s), value_int(s), value_string(s) must be set")
        }
        switch (key, a) {
        case ("value", .tensor(let t)): return t
        case ("value_float", .float(let f)): return Tensor(scalar: f)
        case ("value_floats", .floats(let f)): return Tensor(validShape: [f.count], scalars: f)
        case ("value_int", .int(let v)): return Tensor(scalar: Int64(v))
        case ("value_ints", .ints(let v)): return Tensor(validShape: [v.count], scalars: v.map { Int64($0) })
        case ("value_string", .string(let s)): return Tensor(validShape: [], strings: [s])
        case ("value_strings", .strings(let s)): return Tensor(validShape: [s.count], strings: s)
        case ("sparse_value", _):
            throw ONNXError.unsupportedType("Constant node '\(node.label)': sparse_value is not supported")
        default:
            throw ONNXError.invalidAttribute(node: node.label, op: "Constant", attribute: key,
                                             reason: "unexpected attribute of type \(a.typeName)")
        }
    }

    func node(_ np: UnsafeMutablePointer<Onnx__NodeProto>, index: Int) throws -> Node {
        let n = np.pointee
        let inputs = (0..<n.n_input).map { cString(n.input[$0]) }
        let outputs = (0..<n.n_output).map { cString(n.output[$0]) }
        var domain = cString(n.domain)
        if domain == "ai.onnx" { domain = "" }
        var node = Node(name: cString(n.name), opType: cString(n.op_type), domain: domain,
                        inputs: inputs, outputs: outputs, attributes: [:])
        if node.name.isEmpty { node.name = "\(node.opType)_\(index)" }
        guard !node.opType.isEmpty else { throw ONNXError.invalidGraph("node #\(index) has no op_type") }
        var implicit: [String] = []
        for i in 0..<n.n_attribute {
            guard let ap = n.attribute[i] else { continue }
            let aname = cString(ap.pointee.name)
            let attr = try attribute(ap, node: node)
            node.attributes[aname] = attr
            switch attr {
            case .graph(let g): implicit += g.freeVariables()
            case .graphs(let gs): for g in gs { implicit += g.freeVariables() }
            default: break
            }
        }
        var seen = Set<String>()
        node.implicitInputs = implicit.filter { seen.insert($0).inserted }
        return node
    }

    func attribute(_ ap: UnsafeMutablePointer<Onnx__AttributeProto>, node: Node) throws -> Attribute {
        let a = ap.pointee
        let name = cString(a.name)
        var type = a.type
        if a.has_type == 0 || type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED {
            // Old producers leave `type` out; tell it from the field that is set.
            if a.has_f != 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT }
            else if a.has_i != 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT }
            else if a.has_s != 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING }
            else if a.t != nil { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR }
            else if a.g != nil { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH }
            else if a.n_floats > 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS }
            else if a.n_ints > 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS }
            else if a.n_strings > 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS }
            else if a.n_tensors > 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS }
            else if a.n_graphs > 0 { type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS }
            else {
                throw ONNXError.invalidAttribute(node: node.label, op: node.opType, attribute: name, reason: "attribute has no type and no value")
            }
        }
        if a.ref_attr_name != nil && a.ref_attr_name.pointee != 0 {
            throw ONNXError.invalidAttribute(node: node.label, op: node.opType, attribute: name,
                                             reason: "references a function attribute, which only functions may do")
        }
        switch type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return .float(a.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return .int(Int(a.i))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return .string(binaryString(a.s))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            guard let t = a.t else { throw ONNXError.invalidAttribute(node: node.label, op: node.opType, attribute: name, reason: "tensor attribute is empty") }
            return .tensor(try decodeTensor(t, owner: owner, external: external, fallbackName: name))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
            guard let g = a.g else { throw ONNXError.invalidAttribute(node: node.label, op: node.opType, attribute: name, reason: "graph attribute is empty") }
            return .graph(try graph(g, isMain: false))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            return .floats((0..<a.n_floats).map { a.floats[$0] })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            return .ints((0..<a.n_ints).map { Int(a.ints[$0]) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
            return .strings((0..<a.n_strings).map { binaryString(a.strings[$0]) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
            return .tensors(try (0..<a.n_tensors).compactMap { a.tensors[$0] }.map {
                try decodeTensor($0, owner: owner, external: external, fallbackName: name)
            })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
            return .graphs(try (0..<a.n_graphs).compactMap { a.graphs[$0] }.map { try graph($0, isMain: false) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
            return .unsupported("sparse tensor")
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
            guard let tp = a.tp else { return .unsupported("type proto") }
            let (kind, dtype) = containerType(tp)
            return .type(kind, dtype)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
            return .unsupported("type protos")
        default:
            throw ONNXError.invalidAttribute(node: node.label, op: node.opType, attribute: name, reason: "unknown attribute type \(type.rawValue)")
        }
    }

    /// The kind of value a TypeProto describes, and the element type of the tensors it holds (nil
    /// when not given). A type this runtime does not know is taken as a tensor of unknown type.
    func containerType(_ tp: UnsafeMutablePointer<Onnx__TypeProto>, depth: Int = 0) -> (ValueKind, DType?) {
        guard depth < 8 else { return (.tensor, nil) }
        switch tp.pointee.value_case {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            guard let tt = tp.pointee.tensor_type, tt.pointee.has_elem_type != 0 else { return (.tensor, nil) }
            return (.tensor, DType(onnxCode: tt.pointee.elem_type))
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
            guard let e = tp.pointee.sequence_type?.pointee.elem_type else { return (.sequence(.tensor), nil) }
            let (k, d) = containerType(e, depth: depth + 1)
            return (.sequence(k), d)
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
            guard let e = tp.pointee.optional_type?.pointee.elem_type else { return (.optional(.tensor), nil) }
            let (k, d) = containerType(e, depth: depth + 1)
            return (.optional(k), d)
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
            return (.map, nil)
        default:
            return (.tensor, nil)
        }
    }

    func valueInfo(_ vp: UnsafeMutablePointer<Onnx__ValueInfoProto>) -> ValueInfo {
        let v = vp.pointee
        let name = cString(v.name)
        guard let tp = v.type else { return ValueInfo(name: name, type: nil, shape: nil) }
        guard tp.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, let tt = tp.pointee.tensor_type else {
            // A container: its kind and the element type of the tensors inside; no shape.
            let (kind, dtype) = containerType(tp)
            return ValueInfo(name: name, type: dtype, shape: nil, kind: kind)
        }
        let dtype = tt.pointee.has_elem_type != 0 ? DType(onnxCode: tt.pointee.elem_type) : nil
        var shape: [Dim]? = nil
        if let sp = tt.pointee.shape {
            var dims: [Dim] = []
            for i in 0..<sp.pointee.n_dim {
                guard let d = sp.pointee.dim[i] else { dims.append(.unknown); continue }
                switch d.pointee.value_case {
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                    // Some exporters write -1 for "any size".
                    let v = Int(d.pointee.dim_value)
                    dims.append(v >= 0 ? .known(v) : .unknown)
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                    let p = cString(d.pointee.dim_param)
                    dims.append(p.isEmpty ? .unknown : .symbolic(p))
                default: dims.append(.unknown)
                }
            }
            shape = dims
        }
        return ValueInfo(name: name, type: dtype, shape: shape)
    }
}
