import Foundation

/// Reduction ops: Reduce*, ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax, CumSum, TopK, Einsum.
func registerReductionOps(_ r: inout OpRegistry) {
    let reduces: [(String, ReduceKind)] = [
        ("ReduceSum", .sum), ("ReduceMean", .mean), ("ReduceMax", .max), ("ReduceMin", .min),
        ("ReduceProd", .prod), ("ReduceL1", .l1), ("ReduceL2", .l2), ("ReduceLogSum", .logSum),
        ("ReduceLogSumExp", .logSumExp), ("ReduceSumSquare", .sumSquare),
    ]
    for (name, kind) in reduces {
        // ReduceSum takes axes as an input from opset 13, the others from opset 18.
        let axesInputFrom = kind == .sum ? 13 : 18
        r.register(name, infer: Inference(inferReduce)) { ctx in try makeReduce(ctx, kind: kind, axesInputFrom: axesInputFrom) }
    }
    let arg = Inference { ctx, ins in
        guard let s = ins.shape(0) else { return [TypeInfo(dtype: .int64, shape: nil)] }
        let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: s.count)
        var out = s
        if try ctx.int("keepdims", default: 1) != 0 { out[axis] = .known(1) } else { out.remove(at: axis) }
        return [TypeInfo(dtype: .int64, shape: out)]
    }
    r.register("ArgMax", infer: arg) { ctx in try makeArgExtreme(ctx, max: true) }
    r.register("ArgMin", infer: arg) { ctx in try makeArgExtreme(ctx, max: false) }
    r.register("Softmax", infer: .sameAsFirst) { ctx in try makeSoftmax(ctx, .softmax) }
    r.register("LogSoftmax", infer: .sameAsFirst) { ctx in try makeSoftmax(ctx, .logSoftmax) }
    r.register("Hardmax", infer: .sameAsFirst) { ctx in try makeHardmax(ctx) }
    r.register("CumSum", infer: .sameAsFirst) { ctx in try makeCumSum(ctx) }
    r.register("TopK", infer: Inference { ctx, ins in
        // Values and int64 indices: the input's shape with K along the axis.
        var shape = ins.shape(0)
        if var s = shape {
            let axis = try normalizeAxis(try ctx.int("axis", default: -1), rank: s.count)
            let k = ctx.opset < 10 ? try ctx.int("k") : ins.ints(1).flatMap { $0.count == 1 ? $0[0] : nil }
            s[axis] = k.map { .known($0) } ?? .unknown
            shape = s
        }
        return [TypeInfo(dtype: ins.dtype(0), shape: shape), TypeInfo(dtype: .int64, shape: shape)]
    }) { ctx in try makeTopK(ctx) }
    r.register("Einsum", infer: Inference(inferEinsum)) { ctx in try makeEinsum(ctx) }
    r.register("CumProd", infer: .sameAsFirst) { ctx in try makeCumSum(ctx, product: true) }
    let loss = Inference { ctx, ins in
        // Per element (reduction "none": the target's shape) or a scalar; SoftmaxCrossEntropyLoss's log_prob is X's.
        let none = try ctx.string("reduction", default: "mean") == "none"
        return [TypeInfo(dtype: ins.dtype(0), shape: none ? ins.shape(1) : []), ins.at(0).type]
    }
    r.register("NegativeLogLikelihoodLoss", infer: loss) { ctx in try makeLoss(ctx, softmax: false) }
    r.register("SoftmaxCrossEntropyLoss", infer: loss) { ctx in try makeLoss(ctx, softmax: true) }
}

/// Reduce*: reduced dims dropped or kept as 1; axes from the attribute or a constant input;
/// none means all (or, with noop_with_empty_axes, the input unchanged).
private func inferReduce(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let s = ins.shape(0) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let keep = try ctx.int("keepdims", default: 1) != 0
    var axes = try ctx.ints("axes")
    if axes == nil, ctx.hasInput(1) {
        guard let a = ins.ints(1) else { return [TypeInfo(dtype: dt, shape: nil)] }
        axes = a
    }
    let all = axes?.isEmpty ?? true
    if all, try ctx.int("noop_with_empty_axes", default: 0) != 0 { return [ins.at(0).type] }
    let norm = Set(try (axes ?? []).map { try normalizeAxis($0, rank: s.count) })
    var out: [Dim] = []
    for (i, d) in s.enumerated() {
        if all || norm.contains(i) { if keep { out.append(.known(1)) } } else { out.append(d) }
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

/// Einsum: each output label takes its size from an operand that has it (a size other than 1 wins,
/// as broadcast ellipsis dims do).
private func inferEinsum(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    let shapes = ins.compactMap(\.type.shape)
    guard let eq = try ctx.string("equation"), shapes.count == ins.count else { return [TypeInfo(dtype: dt, shape: nil)] }
    let spec = try parseEinsum(eq, ranks: shapes.map(\.count))
    var size: [Int: Dim] = [:]
    for (shape, labels) in zip(shapes, spec.inputs) {
        for (d, l) in zip(shape, labels) where size[l] == nil || size[l] == .known(1) { size[l] = d }
    }
    return [TypeInfo(dtype: dt, shape: spec.output.map { size[$0] ?? .unknown })]
}

// MARK: - Reduce*

enum ReduceKind { case sum, mean, max, min, prod, l1, l2, logSum, logSumExp, sumSquare }

private func makeReduce(_ ctx: OpContext, kind: ReduceKind, axesInputFrom: Int) throws -> OpBody {
    let keepdims = try ctx.int("keepdims", default: 1) != 0
    let axesFromInput = ctx.opset >= axesInputFrom
    let noop = axesFromInput ? (try ctx.int("noop_with_empty_axes", default: 0) != 0) : false
    let attrAxes = axesFromInput ? nil : try ctx.ints("axes")
    let opName = ctx.opType
    return { inputs, _ in
        let x = try inputs.required(0)
        var axes: [Int]?
        if axesFromInput {
            if let a = inputs.optional(1) {
                guard a.dtype == .int64 || a.dtype == .int32 else { throw OpError("\(opName): axes must be int64, got \(a.dtype)") }
                axes = try a.readAsInts()
            }
        } else {
            axes = attrAxes
        }
        let rank = x.rank
        var reduced = [Bool](repeating: false, count: rank)
        if let axes, !axes.isEmpty {
            for a in axes {
                let n = try normalizeAxis(a, rank: rank, "\(opName) axis")
                guard rank > 0 else { break }
                if reduced[n] { throw OpError("\(opName): axis \(a) is repeated in axes \(axes)") }
                reduced[n] = true
            }
        } else if !noop {
            reduced = [Bool](repeating: true, count: rank)
        }
        return [try reduceTensor(x, reduced: reduced, keepdims: keepdims, kind: kind, opName: opName)]
    }
}

/// Reduces `x` over the dims flagged in `reduced`.
func reduceTensor(_ x: Tensor, reduced: [Bool], keepdims: Bool, kind: ReduceKind, opName: String) throws -> Tensor {
    var outShape: [Int] = []
    var keptShape: [Int] = []
    for (d, s) in x.shape.enumerated() {
        if reduced[d] { if keepdims { outShape.append(1) } } else { outShape.append(s); keptShape.append(s) }
    }
    var rCount = 1
    for (d, s) in x.shape.enumerated() where reduced[d] { rCount *= s }
    let out = try Tensor.uninitialized(x.dtype, outShape)

    switch x.dtype {
    case .float32:
        if kind != .logSumExp, x.count > 0, let (outer, n, inner) = singleBlock(x.shape, reduced) {
            let core: F32ReduceCore
            switch kind {
            case .sum, .mean, .logSum: core = .sum
            case .max: core = .max
            case .min: core = .min
            case .prod: core = .prod
            case .l1: core = .sumAbs
            case .l2, .sumSquare: core = .sumSquare
            case .logSumExp: core = .sum
            }
            let src = UnsafePointer(x.pointer(Float.self)), dst = out.pointer(Float.self)
            if inner == 1 {
                f32ReduceRows(src, rows: outer, n: n, core: core, out: dst)
            } else {
                f32ReduceMiddle(src, outer: outer, n: n, inner: inner, core: core, out: dst)
            }
            let m = out.count
            switch kind {
            case .mean:
                let inv = 1 / Float(n)
                if n == 0 { for i in 0..<m { dst[i] = .nan } } else { for i in 0..<m { dst[i] *= inv } }
            case .l2: for i in 0..<m { dst[i] = dst[i].squareRoot() }
            case .logSum: for i in 0..<m { dst[i] = Foundation.log(dst[i]) }
            default: break
            }
            return out
        }
        try genericReduce(x, Float.self, Double.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .float64: try genericReduce(x, Double.self, Double.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .float16: try genericReduce(x, Float16.self, Double.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .bfloat16: try genericReduce(x, BFloat16.self, Double.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .int8: try genericReduce(x, Int8.self, Int64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .int16: try genericReduce(x, Int16.self, Int64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .int32: try genericReduce(x, Int32.self, Int64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .int64: try genericReduce(x, Int64.self, Int64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .uint8: try genericReduce(x, UInt8.self, UInt64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .uint16: try genericReduce(x, UInt16.self, UInt64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .uint32: try genericReduce(x, UInt32.self, UInt64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .uint64: try genericReduce(x, UInt64.self, UInt64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    case .bool:
        guard kind == .max || kind == .min else { throw ONNXError.unsupportedType("\(opName): bool input") }
        try genericReduce(x, Bool.self, UInt64.self, reduced: reduced, rCount: rCount, kind: kind, out: out)
    default:
        throw ONNXError.unsupportedType("\(opName): element type \(x.dtype)")
    }
    return out
}

/// When the reduced dims (ignoring size-1 dims) form one contiguous block, the (outer, n, inner) view.
private func singleBlock(_ shape: [Int], _ reduced: [Bool]) -> (Int, Int, Int)? {
    var outer = 1, n = 1, inner = 1
    var state = 0  // 0: before the block, 1: in it, 2: after it
    for (d, s) in shape.enumerated() where s != 1 {
        if reduced[d] {
            if state == 2 { return nil }
            state = 1
            n *= s
        } else {
            if state == 0 { outer *= s } else { state = 2; inner *= s }
        }
    }
    return (outer, n, inner)
}

/// Accumulator carriers for the generic reduction path.
private protocol ReduceAccumulator {
    static var zero: Self { get }
    static var one: Self { get }
    static func add(_ a: Self, _ b: Self) -> Self
    static func mul(_ a: Self, _ b: Self) -> Self
    /// a > b, NaN counting as greatest.
    static func greater(_ a: Self, _ b: Self) -> Bool
    static func less(_ a: Self, _ b: Self) -> Bool
    var magnitude0: Self { get }
    var dbl: Double { get }
    static func load<T: CastableScalar>(_ t: T) -> Self
    func store<T: CastableScalar>(_: T.Type) -> T
}

extension Double: ReduceAccumulator {
    static var one: Double { 1 }
    static func add(_ a: Double, _ b: Double) -> Double { a + b }
    static func mul(_ a: Double, _ b: Double) -> Double { a * b }
    static func greater(_ a: Double, _ b: Double) -> Bool { a > b || a.isNaN }
    static func less(_ a: Double, _ b: Double) -> Bool { a < b || a.isNaN }
    var magnitude0: Double { Swift.abs(self) }
    var dbl: Double { self }
    static func load<T: CastableScalar>(_ t: T) -> Double { t.f64 }
    func store<T: CastableScalar>(_: T.Type) -> T { T(f64: self) }
}
extension Int64: ReduceAccumulator {
    static var one: Int64 { 1 }
    static func add(_ a: Int64, _ b: Int64) -> Int64 { a &+ b }
    static func mul(_ a: Int64, _ b: Int64) -> Int64 { a &* b }
    static func greater(_ a: Int64, _ b: Int64) -> Bool { a > b }
    static func less(_ a: Int64, _ b: Int64) -> Bool { a < b }
    var magnitude0: Int64 { self < 0 ? 0 &- self : self }
    var dbl: Double { Double(self) }
    static func load<T: CastableScalar>(_ t: T) -> Int64 { t.i64 }
    func store<T: CastableScalar>(_: T.Type) -> T { T(i64: self) }
}
extension UInt64: ReduceAccumulator {
    static var one: UInt64 { 1 }
    static func add(_ a: UInt64, _ b: UInt64) -> UInt64 { a &+ b }
    static func mul(_ a: UInt64, _ b: UInt64) -> UInt64 { a &* b }
    static func greater(_ a: UInt64, _ b: UInt64) -> Bool { a > b }
    static func less(_ a: UInt64, _ b: UInt64) -> Bool { a < b }
    var magnitude0: UInt64 { self }
    var dbl: Double { Double(self) }
    static func load<T: CastableScalar>(_ t: T) -> UInt64 { t.u64 }
    func store<T: CastableScalar>(_: T.Type) -> T { T(u64: self) }
}

/// Lowest and highest values of an element type, as accumulators (identity of max and min).
private func typeBounds<A: ReduceAccumulator>(_ dt: DType, _: A.Type) -> (A, A) {
    switch dt {
    case .int8: return (A.load(Int64(Int8.min)), A.load(Int64(Int8.max)))
    case .int16: return (A.load(Int64(Int16.min)), A.load(Int64(Int16.max)))
    case .int32: return (A.load(Int64(Int32.min)), A.load(Int64(Int32.max)))
    case .int64: return (A.load(Int64.min), A.load(Int64.max))
    case .uint8: return (A.load(UInt64(0)), A.load(UInt64(UInt8.max)))
    case .uint16: return (A.load(UInt64(0)), A.load(UInt64(UInt16.max)))
    case .uint32: return (A.load(UInt64(0)), A.load(UInt64(UInt32.max)))
    case .uint64: return (A.load(UInt64(0)), A.load(UInt64.max))
    case .bool: return (A.load(UInt64(0)), A.load(UInt64(1)))
    default: return (A.load(-Double.infinity), A.load(Double.infinity))
    }
}

/// One pass over the input in memory order, combining each element into its output slot.
private func genericReduce<T: CastableScalar, A: ReduceAccumulator>(
    _ x: Tensor, _: T.Type, _: A.Type, reduced: [Bool], rCount: Int, kind: ReduceKind, out: Tensor
) throws {
    let outCount = out.count
    guard outCount > 0 else { return }
    // Strides into the (keepdims) output, zero along reduced dims.
    var keptShapeFull = x.shape
    for d in 0..<x.rank where reduced[d] { keptShapeFull[d] = 1 }
    let os = contiguousStrides(keptShapeFull)
    var accStrides = os
    for d in 0..<x.rank where reduced[d] { accStrides[d] = 0 }
    let src = x.pointer(T.self), dst = out.pointer(T.self)

    if kind == .logSumExp {
        // Pass 1: max over finite values; pass 2: sum of exp(x - max).
        var mx = [Double](repeating: -.infinity, count: outCount)
        mx.withUnsafeMutableBufferPointer { m in
            forEachStrided(x.shape, accStrides) { i, o in
                let v = src[i].f64
                if v.isFinite && v > m[o] { m[o] = v }
            }
        }
        for o in 0..<outCount where !mx[o].isFinite { mx[o] = 0 }
        var acc = [Double](repeating: 0, count: outCount)
        acc.withUnsafeMutableBufferPointer { a in
            mx.withUnsafeBufferPointer { m in
                forEachStrided(x.shape, accStrides) { i, o in a[o] += Foundation.exp(src[i].f64 - m[o]) }
            }
        }
        for o in 0..<outCount { dst[o] = T(f64: Foundation.log(acc[o]) + mx[o]) }
        return
    }

    let (lo, hi) = typeBounds(x.dtype, A.self)
    let initial: A
    switch kind {
    case .max: initial = lo
    case .min: initial = hi
    case .prod: initial = A.one
    default: initial = A.zero
    }
    var acc = [A](repeating: initial, count: outCount)
    acc.withUnsafeMutableBufferPointer { a in
        switch kind {
        case .sum, .mean, .logSum:
            forEachStrided(x.shape, accStrides) { i, o in a[o] = A.add(a[o], A.load(src[i])) }
        case .l1:
            forEachStrided(x.shape, accStrides) { i, o in a[o] = A.add(a[o], A.load(src[i]).magnitude0) }
        case .l2, .sumSquare:
            forEachStrided(x.shape, accStrides) { i, o in let v = A.load(src[i]); a[o] = A.add(a[o], A.mul(v, v)) }
        case .prod:
            forEachStrided(x.shape, accStrides) { i, o in a[o] = A.mul(a[o], A.load(src[i])) }
        case .max:
            forEachStrided(x.shape, accStrides) { i, o in let v = A.load(src[i]); if A.greater(v, a[o]) { a[o] = v } }
        case .min:
            forEachStrided(x.shape, accStrides) { i, o in let v = A.load(src[i]); if A.less(v, a[o]) { a[o] = v } }
        case .logSumExp:
            break
        }
    }
    for o in 0..<outCount {
        switch kind {
        case .mean: dst[o] = T(f64: acc[o].dbl / Double(rCount))
        case .l2: dst[o] = T(f64: acc[o].dbl.squareRoot())
        case .logSum: dst[o] = T(f64: Foundation.log(acc[o].dbl))
        default: dst[o] = acc[o].store(T.self)
        }
    }
}

// MARK: - comparable element access (ArgMax/ArgMin, TopK, Hardmax)

protocol ComparableVisitor {
    associatedtype Result
    func visit<T: Comparable>(_ p: UnsafePointer<T>) throws -> Result
}

/// Runs `v` on the elements of `t` as a Comparable type (bfloat16 read as float32, bool as uint8).
func visitComparable<V: ComparableVisitor>(_ t: Tensor, _ v: V, _ opName: String) throws -> V.Result {
    switch t.dtype {
    case .float32: return try v.visit(UnsafePointer(t.pointer(Float.self)))
    case .float64: return try v.visit(UnsafePointer(t.pointer(Double.self)))
    case .float16: return try v.visit(UnsafePointer(t.pointer(Float16.self)))
    case .bfloat16:
        let f = try t.converted(to: .float32)
        return try withExtendedLifetime(f) { try v.visit(UnsafePointer(f.pointer(Float.self))) }
    case .int8: return try v.visit(UnsafePointer(t.pointer(Int8.self)))
    case .int16: return try v.visit(UnsafePointer(t.pointer(Int16.self)))
    case .int32: return try v.visit(UnsafePointer(t.pointer(Int32.self)))
    case .int64: return try v.visit(UnsafePointer(t.pointer(Int64.self)))
    case .uint8, .bool: return try v.visit(UnsafePointer(t.pointer(UInt8.self)))
    case .uint16: return try v.visit(UnsafePointer(t.pointer(UInt16.self)))
    case .uint32: return try v.visit(UnsafePointer(t.pointer(UInt32.self)))
    case .uint64: return try v.visit(UnsafePointer(t.pointer(UInt64.self)))
    default: throw ONNXError.unsupportedType("\(opName): element type \(t.dtype)")
    }
}

/// a ranks above b (NaN above everything).
@inline(__always) private func ranksAbove<T: Comparable>(_ a: T, _ b: T) -> Bool {
    if a != a { return b == b }
    if b != b { return false }
    return a > b
}

/// Splits a shape at `axis` into (outer, n, inner).
func splitAt(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
    var outer = 1, inner = 1
    for d in 0..<axis { outer *= shape[d] }
    for d in (axis + 1)..<shape.count { inner *= shape[d] }
    return (outer, shape[axis], inner)
}

// MARK: - ArgMax / ArgMin

private struct ArgExtremeVisitor: ComparableVisitor {
    let outer: Int, n: Int, inner: Int
    let max: Bool, last: Bool
    let dst: UnsafeMutablePointer<Int64>
    func visit<T: Comparable>(_ p: UnsafePointer<T>) throws -> Void {
        for o in 0..<outer {
            for j in 0..<inner {
                let base = o * n * inner + j
                var best = p[base], bi = 0
                for k in 1..<max(n, 1) where k < n {
                    let v = p[base + k * inner]
                    let better = self.max ? ranksAbove(v, best) : ranksAbove(best, v)
                    if better || (last && v == best) { best = v; bi = k }
                }
                dst[o * inner + j] = Int64(bi)
            }
        }
    }
    private func max(_ a: Int, _ b: Int) -> Int { a > b ? a : b }
}

private func makeArgExtreme(_ ctx: OpContext, max: Bool) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: 0)
    let keepdims = try ctx.int("keepdims", default: 1) != 0
    let last = try ctx.int("select_last_index", default: 0) != 0
    let opName = ctx.opType
    return { inputs, _ in
        let x = try inputs.required(0)
        guard x.rank > 0 else { throw OpError("\(opName): input must have rank >= 1") }
        let axis = try normalizeAxis(axisAttr, rank: x.rank)
        let (outer, n, inner) = splitAt(x.shape, axis)
        var outShape = x.shape
        if keepdims { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let out = try Tensor.uninitialized(.int64, outShape)
        if out.count > 0 {
            guard n > 0 else { throw OpError("\(opName): cannot reduce an empty axis \(axis) of shape \(describeShape(x.shape))") }
            try visitComparable(x, ArgExtremeVisitor(outer: outer, n: n, inner: inner, max: max, last: last,
                                                     dst: out.pointer(Int64.self)), opName)
        }
        return [out]
    }
}

// MARK: - Softmax / LogSoftmax / Hardmax

/// The (outer, n, inner) view softmax-like ops work on: before opset 13 the input is coerced to 2-D at axis.
private func softmaxView(_ shape: [Int], axisAttr: Int?, opset: Int) throws -> (Int, Int, Int) {
    let rank = shape.count
    if rank == 0 { return (1, 1, 1) }
    if opset < 13 {
        let axis = try normalizeAxis(axisAttr ?? 1, rank: rank + 1)  // axis may equal rank
        guard axis <= rank else { throw OpError("axis out of range") }
        var outer = 1, n = 1
        for d in 0..<axis { outer *= shape[d] }
        for d in axis..<rank { n *= shape[d] }
        return (outer, n, 1)
    }
    let axis = try normalizeAxis(axisAttr ?? -1, rank: rank)
    return splitAt(shape, axis)
}

private func makeSoftmax(_ ctx: OpContext, _ kind: SoftmaxKind) throws -> OpBody {
    let axisAttr = try ctx.int("axis")
    let opset = ctx.opset
    let opName = ctx.opType
    return { inputs, _ in
        let x = try inputs.required(0)
        let (outer, n, inner) = try softmaxView(x.shape, axisAttr: axisAttr, opset: opset)
        switch x.dtype {
        case .float32:
            return [try softmaxF32(x, outer: outer, n: n, inner: inner, kind: kind)]
        case .float16, .bfloat16:
            let y = try softmaxF32(try x.converted(to: .float32), outer: outer, n: n, inner: inner, kind: kind)
            return [try y.converted(to: x.dtype)]
        case .float64:
            let y = try Tensor.uninitialized(.float64, x.shape)
            if x.count > 0 {
                f64SoftmaxMiddle(x.pointer(Double.self), y.pointer(Double.self), outer: outer, n: n, inner: inner, kind: kind)
            }
            return [y]
        default:
            throw ONNXError.unsupportedType("\(opName): element type \(x.dtype)")
        }
    }
}

private func softmaxF32(_ x: Tensor, outer: Int, n: Int, inner: Int, kind: SoftmaxKind) throws -> Tensor {
    let y = try Tensor.uninitialized(.float32, x.shape)
    guard x.count > 0 else { return y }
    let src = UnsafePointer(x.pointer(Float.self)), dst = y.pointer(Float.self)
    if inner == 1 {
        f32SoftmaxRows(src, dst, rows: outer, n: n, kind: kind)
    } else {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * inner)
        defer { scratch.deallocate() }
        f32SoftmaxMiddle(src, dst, outer: outer, n: n, inner: inner, kind: kind, scratch: scratch)
    }
    return y
}

private func makeHardmax(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis")
    let opset = ctx.opset
    let opName = ctx.opType
    return { inputs, _ in
        let x = try inputs.required(0)
        guard x.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("\(opName): element type \(x.dtype)") }
        let (outer, n, inner) = try softmaxView(x.shape, axisAttr: axisAttr, opset: opset)
        let idx = try Tensor.uninitialized(.int64, [outer * inner])
        if x.count > 0 {
            try visitComparable(x, ArgExtremeVisitor(outer: outer, n: n, inner: inner, max: true, last: false,
                                                     dst: idx.pointer(Int64.self)), opName)
        }
        let y = try Tensor.zeros(.float32, x.shape)
        let yp = y.pointer(Float.self), ip = idx.pointer(Int64.self)
        if x.count > 0 {
            for o in 0..<outer {
                for j in 0..<inner { yp[(o * n + Int(ip[o * inner + j])) * inner + j] = 1 }
            }
        }
        return [try y.converted(to: x.dtype)]
    }
}

// MARK: - CumSum

private func makeCumSum(_ ctx: OpContext, product: Bool = false) throws -> OpBody {
    let exclusive = try ctx.int("exclusive", default: 0) != 0
    let reverse = try ctx.int("reverse", default: 0) != 0
    return { inputs, _ in
        let x = try inputs.required(0)
        let axisT = try inputs.required(1, "axis")
        guard axisT.count == 1, axisT.rank <= 1 else { throw OpError("CumSum: axis must be a scalar, got shape \(describeShape(axisT.shape))") }
        guard x.rank > 0 else { throw OpError("CumSum: input must have rank >= 1") }
        let axis = try normalizeAxis(try axisT.readAsInts()[0], rank: x.rank)
        let (outer, n, inner) = splitAt(x.shape, axis)
        let y = try Tensor.uninitialized(x.dtype, x.shape)
        if x.count == 0 { return [y] }
        if product {
            switch x.dtype {
            case .float32: cumSumGeneric(x, y, Float.self, Double.self, outer, n, inner, exclusive, reverse, product: true)
            case .float64: cumSumGeneric(x, y, Double.self, Double.self, outer, n, inner, exclusive, reverse, product: true)
            case .float16: cumSumGeneric(x, y, Float16.self, Double.self, outer, n, inner, exclusive, reverse, product: true)
            case .bfloat16: cumSumGeneric(x, y, BFloat16.self, Double.self, outer, n, inner, exclusive, reverse, product: true)
            case .int32: cumSumGeneric(x, y, Int32.self, Int64.self, outer, n, inner, exclusive, reverse, product: true)
            case .int64: cumSumGeneric(x, y, Int64.self, Int64.self, outer, n, inner, exclusive, reverse, product: true)
            case .uint32: cumSumGeneric(x, y, UInt32.self, UInt64.self, outer, n, inner, exclusive, reverse, product: true)
            case .uint64: cumSumGeneric(x, y, UInt64.self, UInt64.self, outer, n, inner, exclusive, reverse, product: true)
            default: throw ONNXError.unsupportedType("CumProd: element type \(x.dtype)")
            }
            return [y]
        }
        switch x.dtype {
        case .float32:
            cumSumF32(x.pointer(Float.self), y.pointer(Float.self), outer: outer, n: n, inner: inner,
                      exclusive: exclusive, reverse: reverse)
        case .float64: cumSumGeneric(x, y, Double.self, Double.self, outer, n, inner, exclusive, reverse)
        case .float16: cumSumGeneric(x, y, Float16.self, Double.self, outer, n, inner, exclusive, reverse)
        case .bfloat16: cumSumGeneric(x, y, BFloat16.self, Double.self, outer, n, inner, exclusive, reverse)
        case .int8: cumSumGeneric(x, y, Int8.self, Int64.self, outer, n, inner, exclusive, reverse)
        case .int16: cumSumGeneric(x, y, Int16.self, Int64.self, outer, n, inner, exclusive, reverse)
        case .int32: cumSumGeneric(x, y, Int32.self, Int64.self, outer, n, inner, exclusive, reverse)
        case .int64: cumSumGeneric(x, y, Int64.self, Int64.self, outer, n, inner, exclusive, reverse)
        case .uint8: cumSumGeneric(x, y, UInt8.self, UInt64.self, outer, n, inner, exclusive, reverse)
        case .uint16: cumSumGeneric(x, y, UInt16.self, UInt64.self, outer, n, inner, exclusive, reverse)
        case .uint32: cumSumGeneric(x, y, UInt32.self, UInt64.self, outer, n, inner, exclusive, reverse)
        case .uint64: cumSumGeneric(x, y, UInt64.self, UInt64.self, outer, n, inner, exclusive, reverse)
        default: throw ONNXError.unsupportedType("CumSum: element type \(x.dtype)")
        }
        return [y]
    }
}

private func cumSumF32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, outer: Int, n: Int, inner: Int,
                       exclusive: Bool, reverse: Bool) {
    let acc = UnsafeMutablePointer<Float>.allocate(capacity: inner)
    defer { acc.deallocate() }
    for o in 0..<outer {
        acc.update(repeating: 0, count: inner)
        for s in 0..<n {
            let k = reverse ? n - 1 - s : s
            let off = (o * n + k) * inner
            if exclusive {
                for j in 0..<inner { y[off + j] = acc[j]; acc[j] += x[off + j] }
            } else {
                for j in 0..<inner { acc[j] += x[off + j]; y[off + j] = acc[j] }
            }
        }
    }
}

private func cumSumGeneric<T: CastableScalar, A: ReduceAccumulator>(
    _ x: Tensor, _ y: Tensor, _: T.Type, _: A.Type, _ outer: Int, _ n: Int, _ inner: Int, _ exclusive: Bool, _ reverse: Bool,
    product: Bool = false
) {
    let xp = x.pointer(T.self), yp = y.pointer(T.self)
    let start = product ? A.one : A.zero
    let combine: (A, A) -> A = product ? A.mul : A.add
    var acc = [A](repeating: start, count: inner)
    for o in 0..<outer {
        for j in 0..<inner { acc[j] = start }
        for s in 0..<n {
            let k = reverse ? n - 1 - s : s
            let off = (o * n + k) * inner
            for j in 0..<inner {
                if exclusive {
                    yp[off + j] = acc[j].store(T.self)
                    acc[j] = combine(acc[j], A.load(xp[off + j]))
                } else {
                    acc[j] = combine(acc[j], A.load(xp[off + j]))
                    yp[off + j] = acc[j].store(T.self)
                }
            }
        }
    }
}

// MARK: - TopK

private struct TopKVisitor: ComparableVisitor {
    let outer: Int, n: Int, inner: Int, k: Int
    let largest: Bool
    let idx: UnsafeMutablePointer<Int64>
    func visit<T: Comparable>(_ p: UnsafePointer<T>) throws -> Void {
        var order = [Int](repeating: 0, count: n)
        for o in 0..<outer {
            for j in 0..<inner {
                let base = o * n * inner + j
                for i in 0..<n { order[i] = i }
                let before: (Int, Int) -> Bool
                if largest {
                    before = { a, b in
                        let va = p[base + a * inner], vb = p[base + b * inner]
                        if ranksAbove(va, vb) { return true }
                        if ranksAbove(vb, va) { return false }
                        return a < b
                    }
                } else {
                    before = { a, b in
                        let va = p[base + a * inner], vb = p[base + b * inner]
                        if ranksAbove(vb, va) { return true }
                        if ranksAbove(va, vb) { return false }
                        return a < b
                    }
                }
                if k < n / 8 {
                    partialTopK(&order, k, before)
                } else {
                    order.sort(by: before)
                }
                for t in 0..<k { idx[(o * k + t) * inner + j] = Int64(order[t]) }
            }
        }
    }
}

/// Moves the first k elements by `before` to the front of `a`, in order (a bounded insertion pass).
private func partialTopK(_ a: inout [Int], _ k: Int, _ before: (Int, Int) -> Bool) {
    guard k > 0 else { return }
    var top = Array(a[0..<k])
    top.sort(by: before)
    for i in k..<a.count {
        let v = a[i]
        if before(v, top[k - 1]) {
            var pos = k - 1
            while pos > 0 && before(v, top[pos - 1]) { top[pos] = top[pos - 1]; pos -= 1 }
            top[pos] = v
        }
    }
    for i in 0..<k { a[i] = top[i] }
}

private func makeTopK(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: -1)
    let largest = try ctx.int("largest", default: 1) != 0
    let kAttr = ctx.opset < 10 ? try ctx.int("k") : nil
    if ctx.opset < 10 && kAttr == nil { throw ctx.attributeError("k", "required before opset 10") }
    let opset = ctx.opset
    return { inputs, _ in
        let x = try inputs.required(0)
        guard x.rank > 0 else { throw OpError("TopK: input must have rank >= 1") }
        let k: Int
        if opset < 10 {
            k = kAttr ?? 0
        } else {
            let kt = try inputs.required(1, "K")
            guard kt.count == 1 else { throw OpError("TopK: K must hold one value, got shape \(describeShape(kt.shape))") }
            k = try kt.readAsInts()[0]
        }
        let axis = try normalizeAxis(axisAttr, rank: x.rank)
        let (outer, n, inner) = splitAt(x.shape, axis)
        guard k >= 0 && k <= n else { throw OpError("TopK: k = \(k) is out of range for axis \(axis) of size \(n)") }
        var outShape = x.shape
        outShape[axis] = k
        let idx = try Tensor.uninitialized(.int64, outShape)
        let vals = try Tensor.uninitialized(x.dtype, outShape)
        if idx.count > 0 {
            try visitComparable(x, TopKVisitor(outer: outer, n: n, inner: inner, k: k, largest: largest,
                                               idx: idx.pointer(Int64.self)), "TopK")
            let es = x.dtype.byteSize
            let ip = idx.pointer(Int64.self)
            let src = x.raw, dst = vals.raw
            for o in 0..<outer {
                for t in 0..<k {
                    for j in 0..<inner {
                        let oi = (o * k + t) * inner + j
                        let si = (o * n + Int(ip[oi])) * inner + j
                        (dst + oi * es).copyMemory(from: src + si * es, byteCount: es)
                    }
                }
            }
        }
        return [vals, idx]
    }
}

// MARK: - Einsum

private struct EinsumSpec {
    var inputs: [[Int]]   // label ids per operand dim (after ellipsis expansion)
    var output: [Int]
}

/// Parses an einsum equation given the operand ranks. Labels are letters; "..." stands for the
/// broadcast dims, labelled with ids >= 128 (right-aligned across operands).
private func parseEinsum(_ eq: String, ranks: [Int]) throws -> EinsumSpec {
    let s = eq.replacingOccurrences(of: " ", with: "")
    let parts = s.components(separatedBy: "->")
    guard parts.count <= 2 else { throw OpError("Einsum: bad equation '\(eq)'") }
    let lhs = parts[0].components(separatedBy: ",")
    guard lhs.count == ranks.count else {
        throw OpError("Einsum: equation '\(eq)' has \(lhs.count) operands, got \(ranks.count) inputs")
    }
    // Tokens: a letter code, or -1 for "...".
    func tokens(_ term: String) throws -> [Int] {
        var out: [Int] = []
        let chars = Array(term)
        var i = 0
        while i < chars.count {
            if chars[i] == "." {
                guard i + 2 < chars.count, chars[i + 1] == ".", chars[i + 2] == ".", !out.contains(-1) else {
                    throw OpError("Einsum: bad ellipsis in '\(eq)'")
                }
                out.append(-1)
                i += 3
                continue
            }
            guard chars[i].isLetter, let a = chars[i].asciiValue else { throw OpError("Einsum: bad label '\(chars[i])' in '\(eq)'") }
            out.append(Int(a))
            i += 1
        }
        return out
    }
    let inTokens = try lhs.map(tokens)
    var ellipsisRank = 0
    for (t, r) in zip(inTokens, ranks) {
        let letters = t.filter { $0 >= 0 }.count
        if t.contains(-1) {
            guard r >= letters else { throw OpError("Einsum: a term of '\(eq)' does not fit rank \(r)") }
            ellipsisRank = max(ellipsisRank, r - letters)
        } else if r != letters {
            throw OpError("Einsum: a term of '\(eq)' has \(letters) labels for rank \(r)")
        }
    }
    var ins: [[Int]] = []
    for (t, r) in zip(inTokens, ranks) {
        let n = r - t.filter { $0 >= 0 }.count
        var labs: [Int] = []
        for tok in t {
            if tok == -1 { for e in 0..<n { labs.append(128 + ellipsisRank - n + e) } } else { labs.append(tok) }
        }
        ins.append(labs)
    }
    var output: [Int] = []
    if parts.count == 2 {
        for tok in try tokens(parts[1]) {
            if tok == -1 { for e in 0..<ellipsisRank { output.append(128 + e) } } else { output.append(tok) }
        }
        guard Set(output).count == output.count else { throw OpError("Einsum: repeated output label in '\(eq)'") }
    } else {
        var counts: [Int: Int] = [:]
        for l in ins.flatMap({ $0 }) { counts[l, default: 0] += 1 }
        output = (0..<ellipsisRank).map { 128 + $0 }
        output += counts.keys.filter { $0 < 128 && counts[$0] == 1 }.sorted()
    }
    return EinsumSpec(inputs: ins, output: output)
}

private func makeEinsum(_ ctx: OpContext) throws -> OpBody {
    guard let eq = try ctx.string("equation") else { throw ctx.attributeError("equation", "required") }
    return { inputs, _ in
        let xs = try (0..<inputs.count).map { try inputs.required($0) }
        guard let first = xs.first else { throw OpError("Einsum: no inputs") }
        for x in xs where x.dtype != first.dtype { throw OpError("Einsum: inputs have different types") }
        let spec = try parseEinsum(eq, ranks: xs.map(\.rank))
        // Sizes per label (broadcasting size-1 ellipsis dims).
        var size: [Int: Int] = [:]
        for (x, labs) in zip(xs, spec.inputs) {
            for (d, l) in labs.enumerated() {
                let s = x.shape[d]
                if let old = size[l], old != s {
                    if old == 1 && l >= 128 { size[l] = s } else if !(s == 1 && l >= 128) {
                        throw OpError("Einsum: label size mismatch \(old) vs \(s) in '\(eq)'")
                    }
                } else if size[l] == nil { size[l] = s }
            }
        }
        for l in spec.output where size[l] == nil { throw OpError("Einsum: output label not found in inputs of '\(eq)'") }
        let all = spec.output + Set(spec.inputs.flatMap { $0 }).subtracting(spec.output).sorted()
        let pos = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1, $0) })
        let dims = all.map { size[$0]! }
        // Strides of each operand over the full label space (summed for repeated labels = diagonal).
        var opStrides: [[Int]] = []
        for (x, labs) in zip(xs, spec.inputs) {
            var st = [Int](repeating: 0, count: all.count)
            let cs = contiguousStrides(x.shape)
            for (d, l) in labs.enumerated() where x.shape[d] != 1 || size[l] == 1 { st[pos[l]!] += cs[d] }
            opStrides.append(st)
        }
        let outShape = spec.output.map { size[$0]! }
        let outCount = outShape.reduce(1, *)
        let total = dims.reduce(1, *)
        let contracted = outCount == 0 ? 0 : total / max(outCount, 1)
        let vals = try xs.map { try $0.readAsDoubles() }
        var acc = [Double](repeating: 0, count: outCount)
        if total > 0 {
            var idx = [Int](repeating: 0, count: all.count)
            var offs = [Int](repeating: 0, count: xs.count)
            for t in 0..<total {
                var p = 1.0
                for k in 0..<xs.count { p *= vals[k][offs[k]] }
                acc[t / contracted] += p
                // Advance the odometer (last label fastest; output labels come first so t / contracted is the output index).
                var d = all.count - 1
                while d >= 0 {
                    idx[d] += 1
                    for k in 0..<xs.count { offs[k] += opStrides[k][d] }
                    if idx[d] < dims[d] { break }
                    for k in 0..<xs.count { offs[k] -= opStrides[k][d] * dims[d] }
                    idx[d] = 0
                    d -= 1
                }
            }
        }
        return [try Tensor.fromDoubles(acc, shape: outShape, dtype: first.dtype)]
    }
}

// MARK: - NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss

private func makeLoss(_ ctx: OpContext, softmax: Bool) throws -> OpBody {
    let reduction = try ctx.string("reduction", default: "mean")
    guard ["none", "sum", "mean"].contains(reduction) else { throw ctx.attributeError("reduction", "unknown value \(reduction)") }
    let ignoreIndex = try ctx.int("ignore_index")
    let opName = ctx.opType
    let wantLogProb = softmax && ctx.hasOutput(1)
    return { inputs, _ in
        let x = try inputs.required(0), targetT = try inputs.required(1, "target")
        guard x.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("\(opName): element type \(x.dtype)") }
        guard x.rank >= 2, targetT.rank == x.rank - 1, targetT.shape[0] == x.shape[0],
              Array(targetT.shape.dropFirst()) == Array(x.shape.dropFirst(2)) else {
            throw OpError("\(opName): target \(describeShape(targetT.shape)) does not fit input \(describeShape(x.shape))")
        }
        let n = x.shape[0], c = x.shape[1]
        let d = x.count / Swift.max(n * c, 1)
        var xv = try x.readAsDoubles()
        var logProb: Tensor?
        if softmax {
            var lp = [Double](repeating: 0, count: xv.count)
            xv.withUnsafeBufferPointer { src in
                lp.withUnsafeMutableBufferPointer { dst in
                    f64SoftmaxMiddle(src.baseAddress!, dst.baseAddress!, outer: n, n: c, inner: d, kind: .logSoftmax)
                }
            }
            xv = lp
            if wantLogProb { logProb = try Tensor.fromDoubles(lp, shape: x.shape, dtype: x.dtype) }
        }
        let target = try targetT.readAsInts()
        var weight: [Double]?
        if let w = inputs.optional(2) {
            guard w.count == c else { throw OpError("\(opName): weight must have \(c) elements, got \(w.count)") }
            weight = try w.readAsDoubles()
        }
        var loss = [Double](repeating: 0, count: n * d)
        var wsum = 0.0
        for i in 0..<n {
            for k in 0..<d {
                let t = target[i * d + k]
                if let ig = ignoreIndex, t == ig { continue }
                guard t >= 0 && t < c else { throw OpError("\(opName): target value \(t) is out of range [0, \(c))") }
                let w = weight?[t] ?? 1
                loss[i * d + k] = -xv[(i * c + t) * d + k] * w
                wsum += w
            }
        }
        let out: Tensor
        switch reduction {
        case "none": out = try Tensor.fromDoubles(loss, shape: targetT.shape, dtype: x.dtype)
        case "sum": out = try Tensor.fromDoubles([loss.reduce(0, +)], shape: [], dtype: x.dtype)
        default: out = try Tensor.fromDoubles([loss.reduce(0, +) / wsum], shape: [], dtype: x.dtype)
        }
        return logProb.map { [out, $0] } ?? [out]
    }
}
