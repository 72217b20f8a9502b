import Foundation

/// Every error this library throws. Each case says what was wrong and where.
///
/// Every throwing public function of SwiftONNX declares `throws(ONNXError)`, so a `catch` block
/// gets an `ONNXError` without a cast and can switch over its cases. ``description`` (and
/// `localizedDescription`) is a sentence for a person: the file, node, op type, input or output
/// name, and the expected and actual values.
public enum ONNXError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file could not be opened, read or mapped, or is not a usable `.npy` or TensorProto file.
    /// `path` names it (a URL's text when it is not a file URL).
    case io(path: String, reason: String)
    /// The bytes are not a valid ONNX model (not protobuf, truncated, missing graph, nested too deep...).
    /// `path` names the file, or "<memory>" for a model loaded from bytes.
    case invalidModel(path: String, reason: String)
    /// The graph is malformed: undefined value, cycle, duplicate name, bad subgraph, a tensor whose
    /// data does not match its shape. The text names the node or value.
    case invalidGraph(String)
    /// No implementation for an operator of this domain and opset version. `domain` is empty for the
    /// default ai.onnx domain; `node` is the node's name.
    case unsupportedOperator(op: String, domain: String, opset: Int, node: String)
    /// The model imports an operator set newer than this runtime knows (or a version below 1).
    /// `newest` is the newest version of `domain` this runtime implements.
    case unsupportedOpset(domain: String, version: Int, newest: Int)
    /// The model's IR version is newer than this runtime reads; `newest` is the newest it reads.
    case unsupportedIRVersion(version: Int, newest: Int)
    /// An element type (or type combination) this runtime does not compute on, or a file's element
    /// type it cannot read or write. The text names the type and the operation.
    case unsupportedType(String)
    /// An attribute is missing, of the wrong type or has a bad value, on the named node of type `op`.
    case invalidAttribute(node: String, op: String, attribute: String, reason: String)
    /// A value given to `run` or to a tensor initializer is unusable: `name` is the input's name, or
    /// the initializer's argument ("scalars", "bytes", "data", "bytesNoCopy"), and `reason` says why.
    case invalidInput(name: String, reason: String)
    /// `run` was not given a required graph input; the associated value is its name.
    case missingInput(String)
    /// `run` was given a name that is not a graph input; the associated value is that name.
    case unknownInput(String)
    /// An input's element type differs from the declared one: `expected` is the model's, `got` the
    /// tensor's.
    case inputTypeMismatch(input: String, expected: DType, got: DType)
    /// An input's shape does not fit the declared one (its rank differs, or a known dimension has
    /// another size): `expected` is the model's, `got` the tensor's.
    case inputShapeMismatch(input: String, expected: [Dim], got: [Int])
    /// A tensor accessor was asked for another element type: `what` names the accessor
    /// ("Tensor.scalars"), `expected` the type asked for, `got` the tensor's.
    case typeMismatch(what: String, expected: DType, got: DType)
    /// A node failed while running (bad shapes, out-of-range indices...): its name, its op type and why.
    case nodeFailed(node: String, op: String, reason: String)
    /// Going on would take the session over `SessionOptions.memoryLimit`: `requested` more bytes
    /// with `inUse` held already. Nothing was allocated for the request. `during`: what was
    /// loading, planning or running ("node 'conv1' (Conv)", "loading 'model.onnx'").
    case memoryLimitExceeded(during: String, requested: Int, inUse: Int, limit: Int)
    /// `run` was asked for a name that is not an output of the model (in `outputs:` or as a buffer's
    /// key); the associated value is that name.
    case unknownOutput(String)
    /// A buffer given for an output cannot hold it (its byte count differs, or it is a string output).
    case invalidOutputBuffer(name: String, reason: String)
    /// The run was cancelled (its Task was cancelled) before it finished; nothing it computed is returned.
    case cancelled

    /// What was wrong and where, as a sentence for a person: "missing input 'x'", "node 'conv1'
    /// (Conv) failed: ...". The same text as `localizedDescription`.
    public var description: String {
        switch self {
        case let .io(path, reason): return "cannot read '\(path)': \(reason)"
        case let .invalidModel(path, reason): return "'\(path)' is not a valid ONNX model: \(reason)"
        case let .invalidGraph(r): return "invalid graph: \(r)"
        case let .unsupportedOperator(op, domain, opset, node):
            let d = domain.isEmpty ? "ai.onnx" : domain
            return "unsupported operator \(d)::\(op) (opset \(opset)) at node '\(node)'"
        case let .unsupportedOpset(domain, version, newest):
            let d = domain.isEmpty ? "ai.onnx" : domain
            return "the model imports opset \(version) of \(d); this runtime supports \(d) opsets 1 to \(newest)"
        case let .unsupportedIRVersion(version, newest):
            return "the model has IR version \(version); this runtime reads IR versions up to \(newest)"
        case let .unsupportedType(r): return "unsupported type: \(r)"
        case let .invalidAttribute(node, op, attribute, reason):
            return "node '\(node)' (\(op)): attribute '\(attribute)': \(reason)"
        case let .invalidInput(name, reason): return "input '\(name)': \(reason)"
        case let .missingInput(n): return "missing input '\(n)'"
        case let .unknownInput(n): return "unknown input '\(n)' (not an input of the model)"
        case let .inputTypeMismatch(input, expected, got):
            return "input '\(input)': expected element type \(expected), got \(got)"
        case let .inputShapeMismatch(input, expected, got):
            return "input '\(input)': expected shape \(describeShape(expected)), got \(describeShape(got))"
        case let .typeMismatch(what, expected, got): return "\(what): tensor holds \(got), not \(expected)"
        case let .nodeFailed(node, op, reason): return "node '\(node)' (\(op)) failed: \(reason)"
        case let .unknownOutput(n): return "unknown output '\(n)' (not an output of the model)"
        case let .invalidOutputBuffer(name, reason): return "buffer for output '\(name)': \(reason)"
        case .cancelled: return "the run was cancelled"
        case let .memoryLimitExceeded(during, requested, inUse, limit):
            return "memory limit exceeded" + (during.isEmpty ? "" : " at \(during)")
                + ": \(describeBytes(requested)) more wanted with \(describeBytes(inUse)) in use, over the session's limit of \(describeBytes(limit)) (SessionOptions.memoryLimit)"
        }
    }
}

extension ONNXError {
    /// An error from inside the runtime as the public API throws it: ONNXError as is; an op's
    /// error that escaped a node (from a graph rewrite) as `.invalidGraph` with its message.
    init(wrapping error: any Error) {
        if let e = error as? ONNXError { self = e; return }
        if let e = error as? OpError { self = .invalidGraph(e.message); return }
        self = .invalidGraph(String(describing: error))
    }
}

/// Runs `body`, throwing what it throws as an ONNXError (see `init(wrapping:)`).
func typedONNX<T>(_ body: () throws -> T) throws(ONNXError) -> T {
    do { return try body() } catch { throw ONNXError(wrapping: error) }
}

/// Errors raised inside ops and kernels; the executor adds node name and op type.
struct OpError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// `error.localizedDescription` says what was wrong (Foundation's default names only the type and case number).
extension ONNXError: LocalizedError {
    /// The error's ``description``, so that `localizedDescription` says what was wrong.
    public var errorDescription: String? { description }
}

extension OpError: LocalizedError {
    var errorDescription: String? { description }
}

/// Size arithmetic on values a model supplies (attributes, constant shapes): an overflow is an
/// OpError naming the op, where plain `*` and `+` would trap.
func sizeProduct(_ a: Int, _ b: Int, _ op: String) throws -> Int {
    let (v, o) = a.multipliedReportingOverflow(by: b)
    if o { throw OpError("\(op): size arithmetic overflows (\(a) × \(b))") }
    return v
}

func sizeSum(_ a: Int, _ b: Int, _ op: String) throws -> Int {
    let (v, o) = a.addingReportingOverflow(b)
    if o { throw OpError("\(op): size arithmetic overflows (\(a) + \(b))") }
    return v
}

func sizeDifference(_ a: Int, _ b: Int, _ op: String) throws -> Int {
    let (v, o) = a.subtractingReportingOverflow(b)
    if o { throw OpError("\(op): size arithmetic overflows (\(a) - \(b))") }
    return v
}
