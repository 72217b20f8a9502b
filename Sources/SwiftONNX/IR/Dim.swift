/// One dimension of a declared shape: a known size, a named symbol ("batch", "h"), or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    /// A fixed size; an input's dimension must equal it.
    case known(Int)
    /// A size named by the model ("batch", "height") and chosen by the caller at each run; it
    /// accepts any size, and two inputs that share a name are not required to agree.
    case symbolic(String)
    /// A dimension the model leaves open without a name; it accepts any size.
    case unknown

    /// An integer literal is a known size: `[1, 3, "h", "w"]` declares two known dimensions.
    ///
    /// - Parameter value: The size.
    public init(integerLiteral value: Int) { self = .known(value) }
    /// A string literal is a symbolic dimension of that name.
    ///
    /// - Parameter value: The dimension's name.
    public init(stringLiteral value: String) { self = .symbolic(value) }

    /// The size of a known dimension; nil for a symbolic or unknown one.
    public var value: Int? {
        if case .known(let v) = self { return v }
        return nil
    }

    /// The size ("224"), the quoted name ("\"batch\"") or "?" for an unknown dimension.
    public var description: String {
        switch self {
        case .known(let v): return String(v)
        case .symbolic(let s): return "\"\(s)\""
        case .unknown: return "?"
        }
    }

    /// Whether a concrete size fits this declared dimension: equal to a known size; any size that
    /// is not negative for a symbolic or unknown one.
    ///
    /// - Parameter size: The size of a tensor's dimension.
    public func accepts(_ size: Int) -> Bool {
        if case .known(let v) = self { return v == size }
        return size >= 0
    }
}

func describeShape(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }
func describeShape(_ dims: [Int]) -> String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

/// Name, element type and shape of a graph input or output, as a user sees it.
public struct ValueInfo: Sendable, Hashable, CustomStringConvertible {
    /// The input's or output's name in the graph: the key of its tensor in `run`'s dictionaries.
    public var name: String
    /// The element type; nil when the model does not say (and inference could not tell). For a
    /// sequence or optional value, the type of the tensors it holds.
    public var type: DType?
    /// A tensor (the usual kind), or a sequence or optional value (see ``ValueKind``).
    public var kind: ValueKind
    /// The declared dimensions, outermost first; nil when the rank is unknown, and for a sequence or
    /// optional value.
    public var shape: [Dim]?

    /// The dimensions as sizes: nil for a symbolic or unknown one; nil when the rank is unknown.
    public var dimensions: [Int?]? { shape?.map(\.value) }

    /// The name of each symbolic dimension ("batch", "height"), nil for the others; nil when the
    /// rank is unknown.
    public var dimensionNames: [String?]? {
        shape?.map { if case .symbolic(let s) = $0 { return s } else { return nil } }
    }

    /// A description of a value with the given name, element type and shape (nil: not known).
    ///
    /// - Parameters:
    ///   - name: The value's name in the graph.
    ///   - type: The element type, or nil when not known.
    ///   - shape: The dimensions, outermost first, or nil when the rank is not known (and for a
    ///     sequence or optional value).
    ///   - kind: A tensor, or a sequence or optional value.
    public init(name: String, type: DType?, shape: [Dim]?, kind: ValueKind = .tensor) {
        self.name = name
        self.kind = kind
        self.type = type
        self.shape = shape
    }

    /// The name, type and shape as Swift would write them:
    /// `ValueInfo(name: "input", type: .float32, shape: [1, 3, "h", "w"])`.
    public var description: String {
        let t = type.map { ".\($0)" } ?? "?"
        let s = shape.map(describeShape) ?? "?"
        let k = kind == .tensor ? "" : ", kind: \(kind)"
        return "ValueInfo(name: \"\(name)\", type: \(t), shape: \(s)\(k))"
    }
}
