import Foundation

// Tensors over memory the caller already has, and access to a tensor's elements without a copy.

extension Tensor {
    /// How memory handed to `init(dtype:shape:bytesNoCopy:count:deallocator:)` goes back when the
    /// last tensor viewing it is gone.
    public enum Deallocator: Sendable {
        /// The caller keeps the memory alive and unchanged for as long as any tensor views it (the
        /// tensor itself, its copies, and outputs of runs that pass it through, such as an Identity
        /// or Reshape output), and frees it afterwards.
        case none
        /// `free(3)`: the memory came from `malloc`, `calloc` or `posix_memalign`.
        case free
        /// Called once with the pointer and byte count.
        case custom(@Sendable (UnsafeMutableRawPointer, Int) -> Void)
    }

    /// A tensor viewing `count` bytes at `bytesNoCopy`: no copy is made. The runtime never writes
    /// them (a run reads its inputs only); `withUnsafeMutableBytes` on a tensor that alone views
    /// them writes in place. The bytes are the elements in row-major order, little-endian; the
    /// pointer must be aligned to the element size (`DType.byteSize`). Throws
    /// `ONNXError.invalidInput` (naming `bytesNoCopy`) when `count` does not match `shape` and
    /// `dtype`, or the pointer is misaligned; the deallocator is not called then.
    ///
    /// - Parameters:
    ///   - dtype: The element type; not ``DType/string``.
    ///   - shape: The size of each dimension, outermost first; none negative.
    ///   - bytesNoCopy: The first byte, aligned to ``DType/byteSize``.
    ///   - count: The byte count: element count x ``DType/byteSize``.
    ///   - deallocator: How the memory goes back when the last tensor viewing it is gone.
    public init(dtype: DType, shape: [Int], bytesNoCopy: UnsafeMutableRawPointer, count: Int,
                deallocator: Deallocator) throws(ONNXError) {
        let n = try Self.checkedBytes(dtype, shape, count, what: "bytesNoCopy")
        guard Int(bitPattern: bytesNoCopy) % max(1, dtype.byteSize) == 0 else {
            throw .invalidInput(name: "bytesNoCopy", reason: "the pointer is not aligned to the \(dtype.byteSize)-byte elements of \(dtype)")
        }
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(caller: bytesNoCopy, byteCount: n, deallocator: deallocator, keeping: nil))
    }

    /// A tensor viewing read-only memory the caller keeps alive (a memory-mapped file, a buffer
    /// owned by another library): no copy is made, and the bytes are never written (a tensor that
    /// is written takes a copy first, see `withUnsafeMutableBytes`). The caller keeps them alive
    /// and unchanged while any tensor views them, then `deallocator` (if not `.none`) gets them
    /// back. Throws `ONNXError.invalidInput` when the byte count does not match `shape` and
    /// `dtype` or the address is not aligned to the element size.
    ///
    /// - Parameters:
    ///   - dtype: The element type of the bytes.
    ///   - shape: The dimensions; their product times `dtype.byteSize` must equal `bytesNoCopy.count`.
    ///   - bytesNoCopy: The elements in row-major order, little-endian.
    ///   - deallocator: How the memory goes back when the last tensor viewing it is gone.
    public init(dtype: DType, shape: [Int], bytesNoCopy: UnsafeRawBufferPointer, deallocator: Deallocator = .none) throws(ONNXError) {
        let n = try Self.checkedBytes(dtype, shape, bytesNoCopy.count, what: "bytesNoCopy")
        guard let base = bytesNoCopy.baseAddress ?? (n == 0 ? UnsafeRawPointer(TensorStorage.standIn.raw) : nil) else {
            throw .invalidInput(name: "bytesNoCopy", reason: "the buffer has no address")
        }
        guard Int(bitPattern: base) % max(1, dtype.byteSize) == 0 else {
            throw .invalidInput(name: "bytesNoCopy", reason: "the pointer is not aligned to the \(dtype.byteSize)-byte elements of \(dtype)")
        }
        let owner = CallerMemory(bytesNoCopy.baseAddress == nil ? .none : deallocator, writable: false)
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(caller: UnsafeMutableRawPointer(mutating: base), byteCount: n,
                                         deallocator: .none, keeping: owner))
    }

    /// A tensor over the bytes of `data` (elements in row-major order, little-endian). When `data`
    /// keeps its bytes on the heap (more than 64 bytes) and they are aligned to the element size, the
    /// tensor views them without a copy and keeps `data` alive; `Data` is a value, so later changes
    /// to the caller's `data` do not reach the tensor. Otherwise the bytes are copied once. Throws
    /// `ONNXError.invalidInput` when the byte count does not match `shape` and `dtype`.
    ///
    /// - Parameters:
    ///   - dtype: The element type; not ``DType/string``.
    ///   - shape: The size of each dimension, outermost first; none negative.
    ///   - data: The elements in row-major order, little-endian: element count x ``DType/byteSize``
    ///     bytes.
    public init(dtype: DType, shape: [Int], data: Data) throws(ONNXError) {
        let n = try Self.checkedBytes(dtype, shape, data.count, what: "data")
        let kept = DataOwner(data)
        let base: UnsafeRawPointer? = kept.data.withUnsafeBytes { $0.baseAddress }
        if n > 64, let base, Int(bitPattern: base) % max(1, dtype.byteSize) == 0 {
            self.init(dtype: dtype, shape: shape,
                      storage: TensorStorage(caller: UnsafeMutableRawPointer(mutating: base), byteCount: n,
                                             deallocator: .none, keeping: kept))
        } else {
            let st = data.withUnsafeBytes { TensorStorage(copyOf: $0) }
            self.init(dtype: dtype, shape: shape, storage: st)
        }
    }

    /// Validates a byte count for `dtype` and `shape`; returns it.
    static func checkedBytes(_ dtype: DType, _ shape: [Int], _ count: Int, what: String) throws(ONNXError) -> Int {
        guard dtype != .string else { throw .unsupportedType("string tensors are built with init(shape:strings:)") }
        let n = try checkedElementCount(shape, what: what) { .invalidInput(name: what, reason: $0) }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == count else {
            throw .invalidInput(name: what, reason: "\(count) bytes do not fill \(dtype) shape \(describeShape(shape))"
                                + (overflow ? "" : " (\(bytes) bytes)"))
        }
        return bytes
    }

    /// The elements' bytes, in row-major order, little-endian, valid only inside `body` (no copy).
    /// Empty for string tensors.
    ///
    /// - Parameter body: Reads the bytes; its result, or its error, is this method's.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage.raw, count: dtype == .string ? 0 : storage.byteCount))
    }

    /// The elements as `T`, valid only inside `body` (no copy). `T` must be the tensor's element
    /// type (`T.dtype == dtype`): anything else is a programming error and stops the program, as a
    /// wrong `assumingMemoryBound` would; check `dtype` first, or use `scalars(as:)`, which throws.
    ///
    /// - Parameters:
    ///   - type: The Swift type of the elements; its ``TensorScalar/dtype`` must be this tensor's.
    ///   - body: Reads the elements; its result, or its error, is this method's.
    public func withUnsafeBufferPointer<T: TensorScalar, R, E: Error>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws(E) -> R) throws(E) -> R {
        precondition(T.dtype == dtype, "Tensor.withUnsafeBufferPointer(as: \(T.self)): the tensor holds \(dtype)")
        return try body(UnsafeBufferPointer(start: storage.raw.assumingMemoryBound(to: T.self), count: count))
    }

    /// The elements' bytes for writing, in place when this tensor alone holds memory that may be
    /// written (its own, or memory handed over with `bytesNoCopy`), else after the tensor takes a copy
    /// of its own first (copies of a tensor never see each other's writes). Empty for string tensors.
    ///
    /// - Parameter body: Reads and writes the bytes; its result, or its error, is this method's.
    public mutating func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        if dtype == .string { return try body(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
        makeUniquelyWritable()
        return try body(UnsafeMutableRawBufferPointer(start: storage.raw, count: storage.byteCount))
    }

    /// The elements as `T` for writing (see `withUnsafeMutableBytes`). `T` must be the element type,
    /// as for `withUnsafeBufferPointer(as:_:)`.
    ///
    /// - Parameters:
    ///   - type: The Swift type of the elements; its ``TensorScalar/dtype`` must be this tensor's.
    ///   - body: Reads and writes the elements; its result, or its error, is this method's.
    public mutating func withUnsafeMutableBufferPointer<T: TensorScalar, R, E: Error>(
        as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws(E) -> R) throws(E) -> R {
        precondition(T.dtype == dtype, "Tensor.withUnsafeMutableBufferPointer(as: \(T.self)): the tensor holds \(dtype)")
        makeUniquelyWritable()
        return try body(UnsafeMutableBufferPointer(start: storage.raw.assumingMemoryBound(to: T.self), count: count))
    }

    /// Gives this tensor storage that only it holds and that may be written.
    private mutating func makeUniquelyWritable() {
        if isKnownUniquelyReferenced(&storage) && storage.isWritable { return }
        let copy = TensorStorage(copyOf: UnsafeRawBufferPointer(start: storage.raw, count: storage.byteCount))
        storage = copy
    }
}

extension Tensor: Equatable {
    /// Same element type, shape and elements, compared bit for bit (a NaN equals the same NaN;
    /// 0.0 and -0.0 differ), as `Data` compares bytes. Sequences are equal when their tensors are,
    /// pairwise; optionals when both are empty or their elements are equal.
    ///
    /// - Parameters:
    ///   - a: A tensor.
    ///   - b: Another tensor.
    public static func == (a: Tensor, b: Tensor) -> Bool {
        guard a.dtype == b.dtype, a.shape == b.shape else { return false }
        switch (a.storage.container, b.storage.container) {
        case (nil, nil): break
        case (.sequence(let x)?, .sequence(let y)?): return x == y
        case (.optional(let x, let kx)?, .optional(let y, let ky)?): return kx == ky && x == y
        default: return false
        }
        if a.dtype == .string { return a.storage.strings == b.storage.strings }
        if a.storage === b.storage { return true }
        let n = a.storage.byteCount
        return n == b.storage.byteCount && memcmp(a.storage.raw, b.storage.raw, n) == 0
    }
}
