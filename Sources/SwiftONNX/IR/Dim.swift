/// One dimension of a declared shape: a known size, a named symbol ("batch", "h"), or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    case known(Int)
    case symbolic(String)
    case unknown

    public init(integerLiteral value: Int) { self = .known(value) }
    public init(stringLiteral value: String) { self = .symbolic(value) }

    public var value: Int? {
        if case .known(let v) = self { return v }
        return nil
    }

    public var description: String {
        switch self {
        case .known(let v): return String(v)
        case .symbolic(let s): return "\"\(s)\""
        case .unknown: return "?"
        }
    }

    /// Whether a concrete size fits this declared dimension.
    public func accepts(_ size: Int) -> Bool {
        if case .known(let v) = self { return v == size }
        return size >= 0
    }
}

func describeShape(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }
func describeShape(_ dims: [Int]) -> String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

/// Name, element type and shape of a graph input or output, as a user sees it.
public struct ValueInfo: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// nil when the model does not say (and inference could not tell).
    public var type: DType?
    /// nil when the rank is unknown.
    public var shape: [Dim]?

    /// The dimensions as sizes: nil for a symbolic or unknown one; nil when the rank is unknown.
    public var dimensions: [Int?]? { shape?.map(\.value) }

    /// The name of each symbolic dimension ("batch", "height"), nil for the others; nil when the
    /// rank is unknown.
    public var dimensionNames: [String?]? {
        shape?.map { if case .symbolic(let s) = $0 { return s } else { return nil } }
    }

    public init(name: String, type: DType?, shape: [Dim]?) {
        self.name = name
        self.type = type
        self.shape = shape
    }

    public var description: String {
        let t = type.map { ".\($0)" } ?? "?"
        let s = shape.map(describeShape) ?? "?"
        return "ValueInfo(name: \"\(name)\", type: \(t), shape: \(s))"
    }
}
