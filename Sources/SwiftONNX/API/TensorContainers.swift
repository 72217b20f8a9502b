/// What kind of value an input or output of a model is: a tensor, or one of ONNX's container types
/// (a sequence of tensors, an optional value, a map).
public indirect enum ValueKind: Sendable, Hashable, CustomStringConvertible {
    /// A tensor (the usual kind).
    case tensor
    /// A sequence whose elements are of the given kind (ONNX `seq(tensor(T))`).
    case sequence(ValueKind)
    /// A value of the given kind, or none (ONNX `optional(...)`).
    case optional(ValueKind)
    /// A map (ONNX `map(K, V)`); the runtime declares such values but runs no op on them.
    case map

    /// `tensor`, `sequence(tensor)`, `optional(sequence(tensor))`, `map`.
    public var description: String {
        switch self {
        case .tensor: return "tensor"
        case .sequence(let k): return "sequence(\(k))"
        case .optional(let k): return "optional(\(k))"
        case .map: return "map"
        }
    }
}

/// The contents of a sequence or optional value (see `Tensor.init(sequence:elementType:)`).
enum TensorContainer: Sendable {
    case sequence([Tensor])
    /// The element (nil: empty) and the kind it has or would have.
    case optional(Tensor?, ValueKind)
}

extension Tensor {
    /// A sequence of tensors (ONNX `seq(tensor(T))`), the value that sequence ops such as
    /// `SequenceConstruct` and `SplitToSequence` take and produce. Such a value has no elements of its
    /// own: its ``shape`` is `[0]`, its ``dtype`` is the elements' type, and ``sequenceElements``
    /// gives the tensors. Throws `ONNXError.invalidInput` when an element is not a tensor of
    /// `elementType` (sequences hold tensors only).
    ///
    /// - Parameters:
    ///   - elements: The tensors, in order (possibly none).
    ///   - elementType: The element type of every tensor in the sequence.
    public init(sequence elements: [Tensor], elementType: DType) throws(ONNXError) {
        for (i, e) in elements.enumerated() {
            guard e.kind == .tensor else {
                throw .invalidInput(name: "sequence", reason: "element #\(i) is a \(e.kind), a sequence holds tensors")
            }
            guard e.dtype == elementType else {
                throw .invalidInput(name: "sequence", reason: "element #\(i) is \(e.dtype), the sequence holds \(elementType)")
            }
        }
        self.init(dtype: elementType, shape: [0], storage: TensorStorage(container: .sequence(elements)))
    }

    /// An optional value (ONNX `optional(...)`): `element`, or none. Its ``shape`` is `[0]` and its
    /// ``dtype`` the element type; ``optionalElement`` gives the element back.
    ///
    /// - Parameters:
    ///   - element: A tensor or a sequence, or nil for an empty optional.
    ///   - elementType: The element type of the tensor (or of the sequence's tensors).
    ///   - elementKind: The kind of value the optional holds or would hold; taken from `element`
    ///     when there is one.
    /// - Throws: `ONNXError.invalidInput` when `element` is itself an optional or a map, or its
    ///   element type is not `elementType`.
    public init(optional element: Tensor?, elementType: DType, elementKind: ValueKind = .tensor) throws(ONNXError) {
        var kind = elementKind
        if let element {
            kind = element.kind
            if case .optional = kind { throw .invalidInput(name: "optional", reason: "an optional cannot hold an optional") }
            guard element.dtype == elementType else {
                throw .invalidInput(name: "optional", reason: "the element is \(element.dtype), the optional holds \(elementType)")
            }
        }
        self.init(dtype: elementType, shape: [0], storage: TensorStorage(container: .optional(element, kind)))
    }

    /// Whether this is a tensor, a sequence or an optional value.
    public var kind: ValueKind {
        switch storage.container {
        case nil: return .tensor
        case .sequence: return .sequence(.tensor)
        case .optional(_, let k): return .optional(k)
        }
    }

    /// The tensors of a sequence, in order; nil when this is not a sequence.
    public var sequenceElements: [Tensor]? {
        if case .sequence(let e) = storage.container { return e }
        return nil
    }

    /// Whether this is an optional value (empty or not).
    public var isOptional: Bool {
        if case .optional = storage.container { return true }
        return false
    }

    /// The element of an optional value; nil when the optional is empty or this is not an optional.
    public var optionalElement: Tensor? {
        if case .optional(let e, _) = storage.container { return e }
        return nil
    }

    /// Whether this is a sequence or optional value rather than a tensor.
    var isContainer: Bool { storage.container != nil }

    /// `Sequence(float32, 3 tensors)`, `Optional(empty)`, `Optional(Tensor(...))`.
    var containerDescription: String? {
        switch storage.container {
        case nil: return nil
        case .sequence(let e): return "Sequence(\(dtype), \(e.count) tensor\(e.count == 1 ? "" : "s"))"
        case .optional(let e, let k): return "Optional(\(e.map { "\($0)" } ?? "empty \(k) of \(dtype)"))"
        }
    }
}
