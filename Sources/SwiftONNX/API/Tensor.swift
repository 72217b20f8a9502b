import Foundation

/// Owns (or aliases) the bytes of a tensor. Immutable once a tensor is handed out.
final class TensorStorage: @unchecked Sendable {   // @unchecked: a raw pointer, filled by the op that made it before it is handed out, read-only after
    let raw: UnsafeMutableRawPointer
    let byteCount: Int
    /// Keeps aliased memory alive (a parsed model, an mmapped file). nil: this storage owns `raw`.
    let owner: AnyObject?
    /// Elements of a string tensor (raw is unused then).
    let strings: [String]
    /// The value of a sequence or an optional (raw is unused then; see `Tensor.isContainer`).
    let container: TensorContainer?
    /// The run arena `raw` came from and goes back to (nil: the system allocator), and how.
    private let arena: RunArena?
    private let grant: BufferGrant
    /// `raw` is a mapping of a load's PageRecycler (see allocateKeptBuffer).
    private let mapped: Bool
    /// A constant whose values a plan released once every op reading it had prepared its own form
    /// of them (packed weights): shape and type remain, `raw` holds no elements. See `Tensor.standIn`.
    let isStandIn: Bool

    /// The session budget the bytes were reserved in (see MemoryBudget), released with them.
    private let budget: MemoryBudget?

    /// 64-byte aligned, uninitialized memory: inside a session's run from the run's arena (see
    /// RunArena), else fresh from the system. Throws `memoryLimitExceeded`, before allocating,
    /// when the bytes would take the session that is loading or running over its limit.
    convenience init(byteCount: Int) throws {
        self.init(byteCount: byteCount, budget: try MemoryBudget.reserveCurrent(byteCount))
    }

    /// A copy of `src` (which exists already: it is counted in the budget over its limit or not).
    convenience init(copyOf src: UnsafeRawBufferPointer) {
        self.init(byteCount: src.count, budget: MemoryBudget.chargeCurrent(src.count))
        if src.count > 0 { raw.copyMemory(from: src.baseAddress!, byteCount: src.count) }
    }

    /// Memory of its own, `byteCount` bytes already reserved in `budget`.
    private init(byteCount: Int, budget: MemoryBudget?) {
        self.budget = budget
        self.byteCount = byteCount
        self.owner = nil
        self.strings = []
        self.container = nil
        self.isStandIn = false
        if let arena = RunArena.current {
            (self.raw, self.grant) = arena.allocate(byteCount)
            self.arena = arena
        } else {
            (self.raw, self.mapped) = allocateKeptBuffer(byteCount: byteCount)
            self.arena = nil
            self.grant = .system
            return
        }
        self.mapped = false
    }

    /// Aliases memory kept alive by `owner` (counted in the session's budget as the weights it is).
    init(aliasing raw: UnsafeMutableRawPointer, byteCount: Int, owner: AnyObject) throws {
        self.budget = try MemoryBudget.reserveCurrent(byteCount)
        self.raw = raw
        self.byteCount = byteCount
        self.owner = owner
        self.strings = []
        self.container = nil
        self.arena = nil
        self.grant = .system
        self.isStandIn = false
        self.mapped = false
    }

    /// Aliases memory the caller handed over (`Tensor.init(dtype:shape:bytesNoCopy:count:deallocator:)`,
    /// `Tensor.init(dtype:shape:data:)`, a run's output buffer): not counted in any session's budget
    /// (it is the caller's), given back through `deallocator` when the last tensor viewing it goes.
    init(caller raw: UnsafeMutableRawPointer, byteCount: Int, deallocator: Tensor.Deallocator, keeping owner: AnyObject?) {
        self.budget = nil
        self.raw = raw
        self.byteCount = byteCount
        self.owner = owner ?? CallerMemory(deallocator)
        self.strings = []
        self.container = nil
        self.arena = nil
        self.grant = .system
        self.isStandIn = false
        self.mapped = false
    }

    /// Whether the bytes may be written through a tensor that alone holds this storage: its own
    /// memory, or memory the caller handed over as writable. Not a mapped model file, not `Data`.
    var isWritable: Bool {
        if isStandIn || !strings.isEmpty || container != nil { return false }
        if owner == nil { return true }
        if let c = owner as? CallerMemory { return c.writable }
        return false
    }

    /// No elements (a released constant's stand-in).
    private init(standIn: Void) {
        self.budget = nil
        self.raw = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        self.byteCount = 0
        self.owner = nil
        self.strings = []
        self.container = nil
        self.arena = nil
        self.grant = .system
        self.isStandIn = true
        self.mapped = false
    }

    /// The storage of every stand-in.
    static let standIn = TensorStorage(standIn: ())

    init(strings: [String]) {
        self.budget = nil
        self.raw = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
        self.byteCount = 0
        self.owner = nil
        self.strings = strings
        self.container = nil
        self.arena = nil
        self.grant = .system
        self.isStandIn = false
        self.mapped = false
    }

    /// A sequence or optional value: no elements of its own.
    init(container: TensorContainer) {
        self.budget = nil
        self.raw = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
        self.byteCount = 0
        self.owner = nil
        self.strings = []
        self.container = container
        self.arena = nil
        self.grant = .system
        self.isStandIn = false
        self.mapped = false
    }

    /// Memory of its own from the system allocator (not aliased, not from a run arena, not strings).
    var isPrivateHeap: Bool { owner == nil && arena == nil && strings.isEmpty && byteCount > 0 }

    deinit {
        if let arena { arena.release(raw, byteCount: byteCount, grant) } else if owner == nil { freeKeptBuffer(raw, byteCount: byteCount, mapped: mapped) }
        else if let c = owner as? CallerMemory { c.give(raw, byteCount) }
        budget?.release(byteCount)
    }
}

/// Memory a caller handed to a tensor, and how it goes back.
final class CallerMemory: Sendable {
    let deallocator: Tensor.Deallocator
    /// `Data` is never written; raw memory handed over as mutable may be.
    let writable: Bool
    init(_ d: Tensor.Deallocator, writable: Bool = true) { deallocator = d; self.writable = writable }
    func give(_ p: UnsafeMutableRawPointer, _ n: Int) {
        switch deallocator {
        case .none: break
        case .free: free(p)
        case .custom(let f): f(p, n)
        }
    }
}

/// Keeps a `Data` alive for the tensor that views its bytes.
final class DataOwner: Sendable {
    let data: Data
    init(_ d: Data) { data = d }
}

/// Element types a `Tensor` can be built from and read into.
///
/// The standard integer and floating-point types, `Bool`, `Float16` (where the platform has it) and
/// ``BFloat16`` conform. A conforming type's memory layout must be that of its ``dtype``'s elements.
public protocol TensorScalar: Sendable {
    /// The tensor element type whose elements have this Swift type's layout.
    static var dtype: DType { get }
}

/// `Float` elements make ``DType/float32`` tensors.
extension Float: TensorScalar { public static var dtype: DType { .float32 } }
/// `Double` elements make ``DType/float64`` tensors.
extension Double: TensorScalar { public static var dtype: DType { .float64 } }
/// `Int8` elements make ``DType/int8`` tensors.
extension Int8: TensorScalar { public static var dtype: DType { .int8 } }
/// `Int16` elements make ``DType/int16`` tensors.
extension Int16: TensorScalar { public static var dtype: DType { .int16 } }
/// `Int32` elements make ``DType/int32`` tensors.
extension Int32: TensorScalar { public static var dtype: DType { .int32 } }
/// `Int64` elements make ``DType/int64`` tensors.
extension Int64: TensorScalar { public static var dtype: DType { .int64 } }
/// `UInt8` elements make ``DType/uint8`` tensors.
extension UInt8: TensorScalar { public static var dtype: DType { .uint8 } }
/// `UInt16` elements make ``DType/uint16`` tensors.
extension UInt16: TensorScalar { public static var dtype: DType { .uint16 } }
/// `UInt32` elements make ``DType/uint32`` tensors.
extension UInt32: TensorScalar { public static var dtype: DType { .uint32 } }
/// `UInt64` elements make ``DType/uint64`` tensors.
extension UInt64: TensorScalar { public static var dtype: DType { .uint64 } }
/// `Bool` elements make ``DType/bool`` tensors.
extension Bool: TensorScalar { public static var dtype: DType { .bool } }
#if !(os(macOS) && arch(x86_64))
/// `Float16` elements make ``DType/float16`` tensors.
extension Float16: TensorScalar { public static var dtype: DType { .float16 } }
#endif

/// bfloat16: the upper 16 bits of a float32.
public struct BFloat16: TensorScalar, Hashable, CustomStringConvertible {
    /// The 16 bits as stored: sign, 8 exponent bits, 7 mantissa bits.
    public var bitPattern: UInt16
    /// ``DType/bfloat16``.
    public static var dtype: DType { .bfloat16 }
    /// The value with these bits.
    ///
    /// - Parameter bitPattern: Sign, 8 exponent bits and 7 mantissa bits.
    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }
    /// Rounds to nearest even, as ONNX's reference does; NaN stays NaN.
    ///
    /// - Parameter f: The value to round; NaN gives the quiet NaN 0x7FC0.
    public init(_ f: Float) {
        if f.isNaN { bitPattern = 0x7FC0; return }
        let bits = f.bitPattern
        let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        bitPattern = UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
    /// The value as a float32, exactly (every bfloat16 is a float32 with its low 16 bits zero).
    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }
    /// The value as ``floatValue`` prints it: "1.5", "-0.0", "nan".
    public var description: String { floatValue.description }
}

/// An n-dimensional array of one element type. A value type: copies share immutable storage.
///
/// Elements are stored in row-major order (the last dimension varies fastest), little-endian. A
/// tensor is `Sendable`: its storage is never written once other copies can see it, and the
/// mutating accessors give a tensor memory of its own first.
public struct Tensor: Sendable, CustomStringConvertible {
    /// The element type.
    public let dtype: DType
    /// The size of each dimension, outermost first; `[]` for a scalar (one element).
    public let shape: [Int]
    /// `var` only so that `isKnownUniquelyReferenced` can look at it (Graph.takeForRewrite).
    var storage: TensorStorage

    /// Number of elements: the product of ``shape`` (1 for a scalar, 0 when a dimension is 0).
    public var count: Int { shape.reduce(1, *) }
    /// Number of dimensions (0 for a scalar).
    public var rank: Int { shape.count }

    init(dtype: DType, shape: [Int], storage: TensorStorage) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A constant's stand-in once its values are released: same type and shape, no elements. A
    /// plan puts it in place of a weight that every op reading it has prepared in its own form
    /// (packed, transformed), so the model's copy can be freed; those ops read only its shape.
    static func standIn(for t: Tensor) -> Tensor { Tensor(dtype: t.dtype, shape: t.shape, storage: .standIn) }

    /// Whether this is a released constant's stand-in (see `standIn(for:)`).
    var isStandIn: Bool { storage.isStandIn }

    /// A tensor with uninitialized contents; fill it through `mutableRaw` before anyone reads it.
    static func uninitialized(_ dtype: DType, _ shape: [Int]) throws -> Tensor {
        let n = shape.reduce(1, *)
        if dtype == .string {
            return Tensor(dtype: .string, shape: shape, storage: TensorStorage(strings: Array(repeating: "", count: n)))
        }
        return Tensor(dtype: dtype, shape: shape, storage: try TensorStorage(byteCount: n * dtype.byteSize))
    }

    /// A tensor of zeros (empty strings for string tensors).
    static func zeros(_ dtype: DType, _ shape: [Int]) throws -> Tensor {
        let t = try uninitialized(dtype, shape)
        if dtype != .string { t.storage.raw.initializeMemory(as: UInt8.self, repeating: 0, count: t.storage.byteCount) }
        return t
    }

    /// Builds a tensor from scalars in row-major order. Throws `ONNXError.invalidInput` when a
    /// dimension is negative, the element count overflows, or `scalars.count` differs from it.
    ///
    /// - Parameters:
    ///   - shape: The size of each dimension, outermost first; none negative.
    ///   - scalars: The elements in row-major order, as many as the shape holds; their type sets
    ///     ``dtype``.
    public init<T: TensorScalar>(shape: [Int], scalars: [T]) throws(ONNXError) {
        let n = try checkedElementCount(shape, what: "scalars") { .invalidInput(name: "scalars", reason: $0) }
        guard n == scalars.count else {
            throw ONNXError.invalidInput(name: "scalars", reason: "\(scalars.count) scalars do not fill shape \(describeShape(shape)) (\(n) elements)")
        }
        self.init(validShape: shape, scalars: scalars)
    }

    /// `scalars.count` equals the product of `shape` (the caller made sure).
    init<T: TensorScalar>(validShape shape: [Int], scalars: [T]) {
        let st = scalars.withUnsafeBytes { TensorStorage(copyOf: $0) }
        self.init(dtype: T.dtype, shape: shape, storage: st)
    }

    /// A string tensor. Throws `ONNXError.invalidInput` when the shape does not hold `strings.count` elements.
    ///
    /// - Parameters:
    ///   - shape: The size of each dimension, outermost first; none negative.
    ///   - strings: The elements in row-major order, as many as the shape holds.
    public init(shape: [Int], strings: [String]) throws(ONNXError) {
        let n = try checkedElementCount(shape, what: "strings") { .invalidInput(name: "strings", reason: $0) }
        guard n == strings.count else {
            throw ONNXError.invalidInput(name: "strings", reason: "\(strings.count) strings do not fill shape \(describeShape(shape)) (\(n) elements)")
        }
        self.init(validShape: shape, strings: strings)
    }

    /// `strings.count` equals the product of `shape` (the caller made sure).
    init(validShape shape: [Int], strings: [String]) {
        self.init(dtype: .string, shape: shape, storage: TensorStorage(strings: strings))
    }

    /// A 0-d tensor (shape `[]`) holding one element.
    ///
    /// - Parameter scalar: The element; its type sets ``dtype``.
    public init<T: TensorScalar>(scalar: T) { self.init(validShape: [], scalars: [scalar]) }

    /// Builds a tensor of any element type from its little-endian bytes (sub-byte types one element per byte).
    /// The bytes are copied. Throws `ONNXError.invalidInput` when `bytes.count` does not match
    /// `shape` and `dtype` or a dimension is negative, and `.unsupportedType` for `.string`.
    ///
    /// - Parameters:
    ///   - dtype: The element type; not ``DType/string``.
    ///   - shape: The size of each dimension, outermost first; none negative.
    ///   - bytes: The elements in row-major order, little-endian: element count x ``DType/byteSize``
    ///     bytes.
    public init(dtype: DType, shape: [Int], bytes: [UInt8]) throws(ONNXError) {
        _ = try Self.checkedBytes(dtype, shape, bytes.count, what: "bytes")
        let st = bytes.withUnsafeBytes { TensorStorage(copyOf: $0) }
        self.init(dtype: dtype, shape: shape, storage: st)
    }

    /// The elements in row-major order, copied into an array. Throws `ONNXError.typeMismatch` when `T`
    /// is not this tensor's element type (`T.dtype != dtype`).
    ///
    /// - Parameter type: The Swift type of the elements; its ``TensorScalar/dtype`` must be this
    ///   tensor's.
    public func scalars<T: TensorScalar>(as type: T.Type = T.self) throws(ONNXError) -> [T] {
        guard T.dtype == dtype else {
            throw ONNXError.typeMismatch(what: "Tensor.scalars", expected: T.dtype, got: dtype)
        }
        let n = count
        return Array(UnsafeBufferPointer(start: storage.raw.assumingMemoryBound(to: T.self), count: n))
    }

    /// The elements of a string tensor, in row-major order. Throws `ONNXError.typeMismatch` when the
    /// tensor does not hold strings.
    public func strings() throws(ONNXError) -> [String] {
        guard dtype == .string else { throw ONNXError.typeMismatch(what: "Tensor.strings", expected: .string, got: dtype) }
        return storage.strings
    }

    /// The raw little-endian bytes (sub-byte types one element per byte), copied into an array; empty
    /// for a string tensor.
    public func bytes() -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: storage.raw, count: storage.byteCount))
    }

    /// Elements converted to Double (for inspection and comparison; not for hot paths). Throws
    /// `ONNXError.unsupportedType` for string tensors and for types the kernels do not compute on
    /// (complex, float8, 4- and 2-bit; see ``DType/isComputable``).
    public func doubles() throws(ONNXError) -> [Double] {
        try typedONNX { try readAsDoubles() }
    }

    /// Element type, shape and the first few elements: `Tensor(float32, [1, 3], [0.5, 1.0, -2.0])`.
    public var description: String {
        if let c = containerDescription { return c }
        let shown = 6
        var values: [String] = []
        if dtype == .string {
            values = storage.strings.prefix(shown).map { "\"\($0)\"" }
        } else if let d = try? readAsDoubles(limit: shown) {
            values = d.map { v in
                if dtype.isFloatingPoint { return Float(v).description }
                return v.magnitude < 1e18 ? String(Int64(v)) : v.description
            }
        }
        let more = count > shown ? ", ..." : ""
        return "Tensor(\(dtype), \(describeShape(shape)), [\(values.joined(separator: ", "))\(more)])"
    }

    // MARK: internal access for ops and kernels

    var raw: UnsafeMutableRawPointer { storage.raw }
    var byteCount: Int { storage.byteCount }

    /// Typed pointer to the elements. Callers must match T to dtype.
    @inline(__always) func pointer<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        storage.raw.assumingMemoryBound(to: T.self)
    }

    @inline(__always) func buffer<T>(_: T.Type) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(start: storage.raw.assumingMemoryBound(to: T.self), count: count)
    }

    /// Same elements, another shape (no copy). The element count must match.
    func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(dtype: dtype, shape: newShape, storage: storage)
    }
}
