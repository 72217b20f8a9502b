/// The nesting depth of a model's messages, measured on the wire bytes before protobuf-c unpacks
/// them. protobuf-c (and this loader after it) recurse once per nested message, so a crafted
/// file with tens of thousands of levels of subgraphs (If inside If...) would overflow the
/// stack. The walk here is iterative (an explicit stack) and descends only into the message
/// fields that can nest without bound: graphs in attributes, functions and training info, nodes,
/// attributes, and the recursive TypeProto (sequence, map and optional element types).
///
/// The limit is protobuf's own default recursion limit (100 message levels), so every model the
/// reference tools (onnx, ONNX Runtime) can parse passes; a real model's If/Loop nesting uses a
/// few tens of levels at most (each subgraph level is 3: graph, node, attribute).
enum ProtoNesting {
    static let maxDepth = 100

    private enum Kind { case model, graph, node, attribute, function, trainingInfo, valueInfo, type, typeElement }

    /// The message kind field `field` of a `kind` message holds, when it is one that can nest.
    private static func child(_ kind: Kind, _ field: Int) -> Kind? {
        switch (kind, field) {
        case (.model, 7): return .graph
        case (.model, 20): return .trainingInfo
        case (.model, 25): return .function
        case (.trainingInfo, 1), (.trainingInfo, 2): return .graph
        case (.graph, 1): return .node
        case (.graph, 11), (.graph, 12), (.graph, 13): return .valueInfo
        case (.node, 5): return .attribute
        case (.attribute, 6), (.attribute, 11): return .graph
        case (.attribute, 14), (.attribute, 15): return .type
        case (.function, 7): return .node
        case (.function, 11): return .attribute
        case (.function, 12): return .valueInfo
        case (.valueInfo, 2): return .type
        case (.type, 4), (.type, 5), (.type, 9): return .typeElement   // Sequence, Map, Optional
        case (.typeElement, 1), (.typeElement, 2): return .type         // their elem_type / value_type
        default: return nil
        }
    }

    /// The deepest message level of the ModelProto in `buf`, or `maxDepth + 1` as soon as it is
    /// exceeded. Malformed bytes end the walk quietly: protobuf-c judges what is valid.
    static func depth(_ buf: UnsafeRawBufferPointer) -> Int {
        var reader = WireReader(buf)
        var stack: [(kind: Kind, end: Int)] = [(.model, buf.count)]
        var deepest = 1
        while true {
            while let top = stack.last, reader.offset >= top.end { stack.removeLast() }
            guard let top = stack.last, let (field, wire) = reader.tag() else { return deepest }
            if wire == 2, let kind = child(top.kind, field) {
                guard let body = reader.lengthDelimited(), body.upperBound <= top.end else { return deepest }
                stack.append((kind, body.upperBound))
                deepest = max(deepest, stack.count)
                if deepest > maxDepth { return deepest }
                reader.offset = body.lowerBound
            } else if !reader.skip(wire) {
                return deepest
            }
        }
    }
}
