/// A node compiled for execution: attributes parsed once, run many times (from many threads).
protocol Operator: Sendable {
    /// `inputs` holds the node's declared inputs (nil where omitted) followed by its implicit
    /// outer-scope inputs. Returns at least one tensor per declared output.
    func run(_ inputs: [Tensor?], _ env: RunEnv) throws -> [Tensor]
}

/// Per-run facts an op may use.
struct RunEnv: Sendable {
    var threads: Int
}

/// An op given as a closure.
struct ClosureOperator: Operator, @unchecked Sendable {
    let body: ([Tensor?], RunEnv) throws -> [Tensor]
    func run(_ inputs: [Tensor?], _ env: RunEnv) throws -> [Tensor] { try body(inputs, env) }
}

/// What an op builder sees of its node: typed attributes, opset, arity, and a way to compile subgraphs.
struct OpContext {
    let node: Node
    /// Opset version in force for the node's domain.
    let opset: Int
    let compileSubgraph: (Graph) throws -> SubgraphRunner
    /// Values known when the plan is made (the graph's initializers that are not inputs), so an
    /// op can prepare them once (pack weights, convert types).
    var constants: [String: Tensor] = [:]

    var opType: String { node.opType }
    var inputCount: Int { node.inputs.count }
    var outputCount: Int { node.outputs.count }
    /// Whether the i-th declared input is present.
    func hasInput(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }
    func hasOutput(_ i: Int) -> Bool { i < node.outputs.count && !node.outputs[i].isEmpty }
    /// The i-th input when it is a constant of the plan.
    func constantInput(_ i: Int) -> Tensor? { hasInput(i) ? constants[node.inputs[i]] : nil }

    func attributeError(_ name: String, _ reason: String) -> ONNXError {
        .invalidAttribute(node: node.label, op: node.opType, attribute: name, reason: reason)
    }

    func has(_ name: String) -> Bool { node.attributes[name] != nil }

    func int(_ name: String) throws -> Int? {
        guard let a = node.attributes[name] else { return nil }
        guard case .int(let v) = a else { throw attributeError(name, "expected int, got \(a.typeName)") }
        return v
    }
    func int(_ name: String, default d: Int) throws -> Int { try int(name) ?? d }

    func float(_ name: String) throws -> Float? {
        guard let a = node.attributes[name] else { return nil }
        switch a {
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: throw attributeError(name, "expected float, got \(a.typeName)")
        }
    }
    func float(_ name: String, default d: Float) throws -> Float { try float(name) ?? d }

    func string(_ name: String) throws -> String? {
        guard let a = node.attributes[name] else { return nil }
        guard case .string(let v) = a else { throw attributeError(name, "expected string, got \(a.typeName)") }
        return v
    }
    func string(_ name: String, default d: String) throws -> String { try string(name) ?? d }

    func ints(_ name: String) throws -> [Int]? {
        guard let a = node.attributes[name] else { return nil }
        switch a {
        case .ints(let v): return v
        case .int(let v): return [v]
        default: throw attributeError(name, "expected ints, got \(a.typeName)")
        }
    }
    func floats(_ name: String) throws -> [Float]? {
        guard let a = node.attributes[name] else { return nil }
        switch a {
        case .floats(let v): return v
        case .float(let v): return [v]
        default: throw attributeError(name, "expected floats, got \(a.typeName)")
        }
    }
    func strings(_ name: String) throws -> [String]? {
        guard let a = node.attributes[name] else { return nil }
        switch a {
        case .strings(let v): return v
        case .string(let v): return [v]
        default: throw attributeError(name, "expected strings, got \(a.typeName)")
        }
    }
    func tensor(_ name: String) throws -> Tensor? {
        guard let a = node.attributes[name] else { return nil }
        guard case .tensor(let v) = a else { throw attributeError(name, "expected tensor, got \(a.typeName)") }
        return v
    }
    func graph(_ name: String) throws -> Graph? {
        guard let a = node.attributes[name] else { return nil }
        guard case .graph(let v) = a else { throw attributeError(name, "expected graph, got \(a.typeName)") }
        return v
    }
    func requiredGraph(_ name: String) throws -> Graph {
        guard let g = try graph(name) else { throw attributeError(name, "required graph attribute is missing") }
        return g
    }
}

typealias OpBuilder = (OpContext) throws -> any Operator

/// Maps (domain, op type) to a builder. Builders see the opset and choose semantics.
struct OpRegistry {
    private(set) var builders: [String: OpBuilder] = [:]

    private static func key(_ domain: String, _ op: String) -> String {
        let d = (domain == "ai.onnx") ? "" : domain
        return d + "::" + op
    }

    mutating func register(_ op: String, domain: String = "", _ builder: @escaping OpBuilder) {
        builders[Self.key(domain, op)] = builder
    }

    /// Registers an op whose builder returns a closure.
    mutating func register(_ op: String, domain: String = "",
                           closure: @escaping (OpContext) throws -> ([Tensor?], RunEnv) throws -> [Tensor]) {
        register(op, domain: domain) { ctx in ClosureOperator(body: try closure(ctx)) }
    }

    func builder(domain: String, op: String) -> OpBuilder? { builders[Self.key(domain, op)] }

    func supports(domain: String, op: String) -> Bool { builder(domain: domain, op: op) != nil }

    /// Every op this runtime implements.
    static let standard: OpRegistry = {
        var r = OpRegistry()
        registerAllOps(&r)
        return r
    }()
}

// MARK: helpers every op family uses

extension Array where Element == Tensor? {
    /// The i-th input, or an error naming it when absent.
    func required(_ i: Int, _ what: String = "input") throws -> Tensor {
        guard i < count, let t = self[i] else { throw OpError("required \(what) #\(i) is missing") }
        return t
    }
    /// The i-th input if present.
    func optional(_ i: Int) -> Tensor? { i < count ? self[i] : nil }
}

/// Normalizes a possibly negative axis against a rank, or throws.
func normalizeAxis(_ axis: Int, rank: Int, _ what: String = "axis") throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < max(rank, 1) else { throw OpError("\(what) \(axis) is out of range for rank \(rank)") }
    return a
}
