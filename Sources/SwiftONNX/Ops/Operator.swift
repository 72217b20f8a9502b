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

/// What an op does at run time, as a closure (called from many threads at once).
typealias OpBody = @Sendable ([Tensor?], RunEnv) throws -> [Tensor]

/// An op given as a closure.
struct ClosureOperator: Operator {
    let body: OpBody
    func run(_ inputs: [Tensor?], _ env: RunEnv) throws -> [Tensor] { try body(inputs, env) }
}

/// The constant inputs an op builder released (`OpContext.releaseConstantValues`).
final class ConstantReleases {
    var inputs = Set<Int>()
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
    /// Where prepared constant weights are kept, so every plan of a session (one per input shape
    /// signature) shares them; nil: the op keeps its own.
    var prepared: PreparedWeights? = nil
    /// The concrete shape of each declared input where shape inference knows every dimension
    /// (static models, plans for one input signature); nil elsewhere.
    var inputShapes: [[Int]?] = []
    /// Where the op records constant inputs whose values it will never read at run time (it
    /// prepared its own form of them); nil: the plan keeps every constant.
    var releases: ConstantReleases? = nil

    var opType: String { node.opType }
    /// The i-th input's shape when the plan knows it.
    func inputShape(_ i: Int) -> [Int]? { i < inputShapes.count ? inputShapes[i] : nil }
    /// Declares that the run never reads the values of constant input i, only its type and shape:
    /// once every reader has said so, the plan may free the values and pass a stand-in
    /// (`Tensor.standIn`). Only for inputs the op has prepared in a form of its own.
    func releaseConstantValues(_ i: Int) { releases?.inputs.insert(i) }
    var inputCount: Int { node.inputs.count }
    var outputCount: Int { node.outputs.count }
    /// Whether the i-th declared input is present.
    func hasInput(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }
    func hasOutput(_ i: Int) -> Bool { i < node.outputs.count && !node.outputs[i].isEmpty }
    /// The i-th input when it is a constant of the plan.
    func constantInput(_ i: Int) -> Tensor? { hasInput(i) ? constants[node.inputs[i]] : nil }

    /// `make()` for the constant `t`, or what an earlier plan of the session made for it under `kind`.
    func prepare<T: AnyObject & Sendable>(_ t: Tensor, kind: String, _ make: () throws -> T) rethrows -> T {
        guard let prepared else { return try make() }
        return try prepared.value(for: t, kind: kind, make)
    }

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
    /// A type attribute (Optional's `type`): the kind of value and its tensors' element type.
    func type(_ name: String) throws -> (kind: ValueKind, dtype: DType?)? {
        guard let a = node.attributes[name] else { return nil }
        guard case .type(let k, let d) = a else { throw attributeError(name, "expected a type, got \(a.typeName)") }
        return (k, d)
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

typealias OpBuilder = @Sendable (OpContext) throws -> any Operator

/// Everything the runtime knows of one op, given in one place by its family file: how its output
/// types and shapes follow from its inputs, and how it is lowered to a runnable operator at plan
/// time (attributes parsed, geometry and constant weights prepared there). The rewrites rooted at
/// the op are registered beside it (`OpRegistry.rewrite`).
struct OpDefinition: Sendable {
    let infer: Inference
    let build: OpBuilder
    /// Whether the op takes sequence and optional values (`Tensor.isContainer`) as inputs: the
    /// sequence and optional ops, Identity, and the ops with subgraphs (their outer-scope values may
    /// be such values). A plan refuses a container on any other op's input, before the op runs.
    var containers = false
}

/// Maps (domain, op type) to its definition, and holds the graph rewrites the op families own.
struct OpRegistry: Sendable {
    private(set) var definitions: [String: OpDefinition] = [:]
    private(set) var rewrites: [(phase: RewritePhase, pass: any GraphPass)] = []

    private static func key(_ domain: String, _ op: String) -> String {
        let d = (domain == "ai.onnx") ? "" : domain
        return d + "::" + op
    }

    /// Registers an op; inference is not optional: every op says what it can of its outputs.
    mutating func register(_ op: String, domain: String = "", infer: Inference, containers: Bool = false, _ builder: @escaping OpBuilder) {
        precondition(definitions[Self.key(domain, op)] == nil, "op \(domain)::\(op) registered twice")
        definitions[Self.key(domain, op)] = OpDefinition(infer: infer, build: builder, containers: containers)
    }

    /// Registers an op whose builder returns a closure.
    mutating func register(_ op: String, domain: String = "", infer: Inference, containers: Bool = false,
                           closure: @escaping @Sendable (OpContext) throws -> @Sendable ([Tensor?], RunEnv) throws -> [Tensor]) {
        register(op, domain: domain, infer: infer, containers: containers) { ctx in ClosureOperator(body: try closure(ctx)) }
    }

    /// Registers a graph rewrite owned by the family that calls it. Rewrites run phase by phase,
    /// in registration order within a phase, repeatedly until none changes the graph.
    mutating func rewrite(_ phase: RewritePhase, _ pass: any GraphPass) {
        rewrites.append((phase, pass))
    }

    func definition(domain: String, op: String) -> OpDefinition? { definitions[Self.key(domain, op)] }
    func builder(domain: String, op: String) -> OpBuilder? { definition(domain: domain, op: op)?.build }
    func inference(domain: String, op: String) -> Inference? { definition(domain: domain, op: op)?.infer }

    func supports(domain: String, op: String) -> Bool { definition(domain: domain, op: op) != nil }

    /// The owned rewrites of one phase, in registration order.
    func rewrites(_ phase: RewritePhase) -> [any GraphPass] { rewrites.filter { $0.phase == phase }.map(\.pass) }

    /// Every op this runtime implements.
    static let standard: OpRegistry = {
        var r = OpRegistry()
        registerAllOps(&r)
        return r
    }()
}

/// When an owned rewrite runs relative to the others (after constant folding).
enum RewritePhase: CaseIterable {
    /// Removes nodes that do nothing (Identity, inference Dropout) and recognises formulas written out
    /// as ops (GELU) before the later phases take their parts.
    case cleanup
    /// Folds constant operands into their producer's weights (BatchNorm or a per-channel Mul/Add into Conv).
    case fold
    /// Fuses chains into one fused op (activations, residual adds, affine chains, decomposed HardSwish).
    case fuse
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
/// An axis in [-rank, rank) as an index into the shape. Rank 0 has no axes (indexing its empty
/// shape would trap), except for ops that treat a scalar as one element (`scalarAllowed`: axis 0).
func normalizeAxis(_ axis: Int, rank: Int, _ what: String = "axis", scalarAllowed: Bool = false) throws -> Int {
    let a = axis < 0 ? axis &+ rank : axis
    guard a >= 0 && a < (scalarAllowed ? max(rank, 1) : rank) else { throw OpError("\(what) \(axis) is out of range for rank \(rank)") }
    return a
}
