import Foundation

/// How a scalar type converts to and from the three wide carriers (Double, Int64, UInt64).
/// Lets one generic loop serve every pair of element types in casts and in ops that work on many types.
protocol CastableScalar: TensorScalar {
    static var kind: ScalarKind { get }
    var f64: Double { get }
    var i64: Int64 { get }
    var u64: UInt64 { get }
    init(f64: Double)
    init(i64: Int64)
    init(u64: UInt64)
}

enum ScalarKind { case float, signed, unsigned, bool }

@inline(__always) private func f64ToInt64(_ v: Double) -> Int64 {
    if v.isNaN { return Int64.min }
    if v >= 9.2233720368547758e18 { return Int64.min }  // as x86 cvttsd2si does on overflow
    if v < -9.2233720368547758e18 { return Int64.min }
    return Int64(v.rounded(.towardZero))
}

@inline(__always) private func f64ToUInt64(_ v: Double) -> UInt64 {
    if v.isNaN { return 0 }
    if v < 0 { return UInt64(bitPattern: f64ToInt64(v)) }
    if v >= 1.8446744073709552e19 { return 0 }
    return UInt64(v.rounded(.towardZero))
}

extension Float: CastableScalar {
    static var kind: ScalarKind { .float }
    var f64: Double { Double(self) }
    var i64: Int64 { f64ToInt64(Double(self)) }
    var u64: UInt64 { f64ToUInt64(Double(self)) }
    init(f64: Double) { self = Float(f64) }
    init(i64: Int64) { self = Float(i64) }
    init(u64: UInt64) { self = Float(u64) }
}
extension Double: CastableScalar {
    static var kind: ScalarKind { .float }
    var f64: Double { self }
    var i64: Int64 { f64ToInt64(self) }
    var u64: UInt64 { f64ToUInt64(self) }
    init(f64: Double) { self = f64 }
    init(i64: Int64) { self = Double(i64) }
    init(u64: UInt64) { self = Double(u64) }
}
#if !(os(macOS) && arch(x86_64))
extension Float16: CastableScalar {
    static var kind: ScalarKind { .float }
    var f64: Double { Double(Float(self)) }
    var i64: Int64 { f64ToInt64(Double(Float(self))) }
    var u64: UInt64 { f64ToUInt64(Double(Float(self))) }
    // Double -> Float16 directly rounds once (no double rounding through Float).
    init(f64: Double) { self = Float16(f64) }
    init(i64: Int64) { self = Float16(Float(i64)) }
    init(u64: UInt64) { self = Float16(Float(u64)) }
}
#endif
extension BFloat16: CastableScalar {
    static var kind: ScalarKind { .float }
    var f64: Double { Double(floatValue) }
    var i64: Int64 { f64ToInt64(Double(floatValue)) }
    var u64: UInt64 { f64ToUInt64(Double(floatValue)) }
    init(f64: Double) { self = BFloat16(Float(f64)) }
    init(i64: Int64) { self = BFloat16(Float(i64)) }
    init(u64: UInt64) { self = BFloat16(Float(u64)) }
}
extension Bool: CastableScalar {
    static var kind: ScalarKind { .bool }
    var f64: Double { self ? 1 : 0 }
    var i64: Int64 { self ? 1 : 0 }
    var u64: UInt64 { self ? 1 : 0 }
    init(f64: Double) { self = f64 != 0 }
    init(i64: Int64) { self = i64 != 0 }
    init(u64: UInt64) { self = u64 != 0 }
}

protocol CastableInteger: CastableScalar, FixedWidthInteger {}
extension CastableInteger {
    var f64: Double { Double(self) }
    var i64: Int64 { Int64(truncatingIfNeeded: self) }
    var u64: UInt64 { UInt64(truncatingIfNeeded: self) }
    init(i64: Int64) { self.init(truncatingIfNeeded: i64) }
    init(u64: UInt64) { self.init(truncatingIfNeeded: u64) }
}
extension Int8: CastableInteger {
    static var kind: ScalarKind { .signed }
    init(f64: Double) { self.init(truncatingIfNeeded: f64ToInt64(f64)) }
}
extension Int16: CastableInteger {
    static var kind: ScalarKind { .signed }
    init(f64: Double) { self.init(truncatingIfNeeded: f64ToInt64(f64)) }
}
extension Int32: CastableInteger {
    static var kind: ScalarKind { .signed }
    init(f64: Double) { self.init(truncatingIfNeeded: f64ToInt64(f64)) }
}
extension Int64: CastableInteger {
    static var kind: ScalarKind { .signed }
    init(f64: Double) { self = f64ToInt64(f64) }
}
extension UInt8: CastableInteger {
    static var kind: ScalarKind { .unsigned }
    init(f64: Double) { self.init(truncatingIfNeeded: f64ToUInt64(f64)) }
}
extension UInt16: CastableInteger {
    static var kind: ScalarKind { .unsigned }
    init(f64: Double) { self.init(truncatingIfNeeded: f64ToUInt64(f64)) }
}
extension UInt32: CastableInteger {
    static var kind: ScalarKind { .unsigned }
    init(f64: Double) { self.init(truncatingIfNeeded: f64ToUInt64(f64)) }
}
extension UInt64: CastableInteger {
    static var kind: ScalarKind { .unsigned }
    init(f64: Double) { self = f64ToUInt64(f64) }
}

@inline(__always) func convertScalar<S: CastableScalar, D: CastableScalar>(_ s: S, to: D.Type) -> D {
    switch S.kind {
    case .float: return D(f64: s.f64)
    case .signed, .bool: return D.kind == .float ? D(f64: s.f64) : D(i64: s.i64)
    case .unsigned: return D.kind == .float ? D(f64: s.f64) : D(u64: s.u64)
    }
}

/// Calls `body` with the Swift type of a computable element type (every type but string and the
/// float8/int4/complex family, which throw `unsupportedType`).
protocol ScalarTypeVisitor {
    associatedtype Result
    func visit<T: CastableScalar>(_ type: T.Type) throws -> Result
}

extension DType {
    func visit<V: ScalarTypeVisitor>(_ v: V) throws -> V.Result {
        switch self {
        case .float32: return try v.visit(Float.self)
        case .float64: return try v.visit(Double.self)
        case .float16: return try v.visit(Float16.self)
        case .bfloat16: return try v.visit(BFloat16.self)
        case .int8: return try v.visit(Int8.self)
        case .int16: return try v.visit(Int16.self)
        case .int32: return try v.visit(Int32.self)
        case .int64: return try v.visit(Int64.self)
        case .uint8: return try v.visit(UInt8.self)
        case .uint16: return try v.visit(UInt16.self)
        case .uint32: return try v.visit(UInt32.self)
        case .uint64: return try v.visit(UInt64.self)
        case .bool: return try v.visit(Bool.self)
        default: throw ONNXError.unsupportedType("element type \(self) is not supported by this operation")
        }
    }
}

private struct CastVisitor<S: CastableScalar>: ScalarTypeVisitor {
    let src: Tensor
    func visit<D: CastableScalar>(_: D.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(D.dtype, src.shape)
        let n = src.count
        let s = src.pointer(S.self), d = out.pointer(D.self)
        for i in 0..<n { d[i] = convertScalar(s[i], to: D.self) }
        return out
    }
}

private struct CastSourceVisitor: ScalarTypeVisitor {
    let src: Tensor
    let to: DType
    func visit<S: CastableScalar>(_: S.Type) throws -> Tensor {
        try to.visit(CastVisitor<S>(src: src))
    }
}

private struct ToDoubles: ScalarTypeVisitor {
    let t: Tensor
    var limit = Int.max
    func visit<S: CastableScalar>(_: S.Type) throws -> [Double] {
        let p = t.pointer(S.self)
        return (0..<min(t.count, limit)).map { p[$0].f64 }
    }
}

private struct ToInt64s: ScalarTypeVisitor {
    let t: Tensor
    func visit<S: CastableScalar>(_: S.Type) throws -> [Int64] {
        let p = t.pointer(S.self)
        return (0..<t.count).map { convertScalar(p[$0], to: Int64.self) }
    }
}

extension Tensor {
    /// Element-wise conversion to another computable type, with ONNX Cast semantics for
    /// numeric types (float to int truncates toward zero; anything nonzero is true).
    func converted(to dt: DType) throws -> Tensor {
        if dt == dtype { return self }
        if dtype == .string || dt == .string {
            throw ONNXError.unsupportedType("conversion between \(dtype) and \(dt)")
        }
        return try dtype.visit(CastSourceVisitor(src: self, to: dt))
    }

    /// The first `limit` elements (all by default) as Double.
    func readAsDoubles(limit: Int = .max) throws -> [Double] {
        if dtype == .string { throw ONNXError.unsupportedType("string tensor read as numbers") }
        return try dtype.visit(ToDoubles(t: self, limit: limit))
    }

    /// Integer elements as Int (for shapes, axes, indices given as tensors).
    func readAsInts() throws -> [Int] {
        if dtype == .string { throw ONNXError.unsupportedType("string tensor read as integers") }
        return try dtype.visit(ToInt64s(t: self)).map { Int($0) }
    }

    /// A float32 tensor from Doubles (helper for tests and ops).
    static func fromDoubles(_ values: [Double], shape: [Int], dtype: DType) throws -> Tensor {
        let t64 = Tensor(validShape: shape, scalars: values)
        return try t64.converted(to: dtype)
    }
}
