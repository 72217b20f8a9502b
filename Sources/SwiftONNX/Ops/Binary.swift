import Foundation

/// Binary and variadic element-wise ops with numpy broadcasting:
/// Add Sub Mul Div Pow Mod BitShift BitwiseAnd/Or/Xor And Or Xor Equal Greater GreaterOrEqual Less
/// LessOrEqual Max Min Mean Sum Where PRelu.
func registerBinaryOps(_ r: inout OpRegistry) {
    let arithOps: [(String, ArithOp)] = [("Add", .add), ("Sub", .sub), ("Mul", .mul), ("Div", .div)]
    for (name, op) in arithOps {
        r.register(name, infer: .broadcast()) { ctx in
            let legacy = try LegacyBroadcast(ctx)
            return { inputs, env in
                let (a, b) = try legacy.operands(inputs)
                return [try arithmetic(op, a, b, threads: env.threads, name)]
            }
        }
    }

    r.register("Mod", infer: .broadcast()) { ctx in
        let fmod = try ctx.int("fmod", default: 0)
        guard fmod == 0 || fmod == 1 else { throw ctx.attributeError("fmod", "must be 0 or 1, got \(fmod)") }
        return { inputs, env in
            let a = try inputs.required(0), b = try inputs.required(1)
            // Floats with fmod=0 take the numpy (Python-sign) rule, as opset 28 defines.
            return [try arithmetic(.mod(fmod: fmod == 1), a, b, threads: env.threads, "Mod")]
        }
    }

    r.register("Pow", infer: .broadcast()) { ctx in
        let legacy = try LegacyBroadcast(ctx)
        return { inputs, env in
            let (a, b) = try legacy.operands(inputs)
            return [try power(a, b, threads: env.threads)]
        }
    }

    r.register("BitShift", infer: .broadcast()) { ctx in
        let dir = try ctx.string("direction") ?? ""
        guard dir == "LEFT" || dir == "RIGHT" else {
            throw ctx.attributeError("direction", "must be \"LEFT\" or \"RIGHT\", got \"\(dir)\"")
        }
        let left = dir == "LEFT"
        return { inputs, env in
            let a = try inputs.required(0), b = try inputs.required(1)
            return [try integerOp(.shift(left: left), a, b, threads: env.threads, "BitShift")]
        }
    }
    let bitwise: [(String, IntOp)] = [("BitwiseAnd", .and), ("BitwiseOr", .or), ("BitwiseXor", .xor)]
    for (name, op) in bitwise {
        r.register(name, infer: .broadcast()) { _ in
            { inputs, env in
                let a = try inputs.required(0), b = try inputs.required(1)
                return [try integerOp(op, a, b, threads: env.threads, name)]
            }
        }
    }

    let logical: [(String, IntOp)] = [("And", .and), ("Or", .or), ("Xor", .xor)]
    for (name, op) in logical {
        r.register(name, infer: .broadcast(.bool)) { ctx in
            let legacy = try LegacyBroadcast(ctx)
            return { inputs, env in
                let (a, b) = try legacy.operands(inputs)
                guard a.dtype == .bool && b.dtype == .bool else {
                    throw ONNXError.unsupportedType("\(name): inputs must be bool, got \(a.dtype) and \(b.dtype)")
                }
                let shape = try broadcastShapes(a.shape, b.shape)
                let out = try Tensor.uninitialized(.bool, shape)
                // On the bytes (a bool is 0 or 1): one loop per op, with no call per element (a
                // [2, 1, 512, 512] attention mask took 3 ms through a closure, Zen 1).
                let pa = a.pointer(UInt8.self), pb = b.pointer(UInt8.self), po = out.pointer(UInt8.self)
                switch op {
                case .and: binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { $0 & $1 }
                case .or: binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { $0 | $1 }
                default: binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { $0 ^ $1 }
                }
                return [out]
            }
        }
    }

    let comparisons: [(String, CompareOp)] = [("Equal", .eq), ("Greater", .gt), ("GreaterOrEqual", .ge),
                                              ("Less", .lt), ("LessOrEqual", .le)]
    for (name, op) in comparisons {
        r.register(name, infer: .broadcast(.bool)) { ctx in
            let legacy = try LegacyBroadcast(ctx)
            return { inputs, env in
                let (a, b) = try legacy.operands(inputs)
                return [try compare(op, a, b, threads: env.threads, name)]
            }
        }
    }

    let variadics: [(String, ArithOp)] = [("Max", .max), ("Min", .min), ("Sum", .add), ("Mean", .add)]
    for (name, op) in variadics {
        r.register(name, infer: .broadcast()) { _ in
            { inputs, env in
                [try variadic(op, mean: name == "Mean", inputs.compactMap { $0 }, threads: env.threads, name)]
            }
        }
    }

    r.register("Where", infer: Inference { _, ins in
        [TypeInfo(dtype: ins.dtype(1), shape: ins.count == 3 ? ins.broadcastShape() : nil)]
    }) { _ in
        { inputs, env in
            [try whereOp(try inputs.required(0, "condition"), try inputs.required(1, "X"), try inputs.required(2, "Y"),
                         threads: env.threads)]
        }
    }

    r.register("PRelu", infer: .broadcast()) { _ in
        { inputs, env in
            [try prelu(try inputs.required(0, "X"), try inputs.required(1, "slope"), threads: env.threads)]
        }
    }

    r.register(FuseResidualScale.opType, domain: "com.swiftonnx", infer: .broadcast(), closure: { _ in
        { inputs, env in
            let x = try inputs.required(0, "input X"), sc = try inputs.required(1, "scale S")
            guard x.dtype == .float32, sc.dtype == .float32 else {
                throw OpError("\(FuseResidualScale.opType): X and S must be float32, got \(x.dtype) and \(sc.dtype)")
            }
            let shape = try broadcastShapes(x.shape, sc.shape)
            let out = try Tensor.uninitialized(.float32, shape)
            f32ResidualMul(x.pointer(Float.self), x.shape, sc.pointer(Float.self), sc.shape, out.pointer(Float.self), shape,
                           threads: env.threads)
            return [out]
        }
    })
    r.rewrite(.fuse, FuseResidualScale())
}

// MARK: - rewrites

/// Add(x, Mul(x, s)) with s broadcast over x (the residual squeeze-and-excitation block of PP-OCR's
/// detector neck: x + x * HardSigmoid(...) per channel) becomes com.swiftonnx::ResidualMul(x, s): one
/// pass over the map instead of two (a Mul and an Add, each reading and writing all of it). The
/// product is rounded before the sum, as the two ops do, so the bits are the same as the plain path
/// whether or not the rewrite applies (a model with symbolic sizes may fuse only in its shape plans).
struct FuseResidualScale: GraphPass {
    static let opType = "ResidualMul"
    let name = "fuse-residual-scale"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        /// s is broadcast along some axis of x that is not known to be 1 (so the product would be a
        /// pass of its own over x), and both are float32.
        func worthFusing(_ x: String, _ s: String) -> Bool {
            guard let xi = graph.infoOrConstant(of: x), let si = graph.infoOrConstant(of: s), xi.type == .float32, si.type == .float32,
                  let sx = xi.shape, let ss = si.shape, ss.count <= sx.count else { return false }
            return zip(ss.reversed(), sx.reversed()).contains { $0.value == 1 && $1.value != 1 }
        }
        var changed = false
        var removed = Set<Int>()
        for (ai, add) in graph.nodes.enumerated() {
            guard add.opType == "Add", add.isStandardDomain, add.attributes.isEmpty, add.inputs.count == 2,
                  add.outputs.count == 1 else { continue }
            for k in 0..<2 {
                let x = add.inputs[k], m = add.inputs[1 - k]
                guard x != m, uses[m] == 1, !outputs.contains(m), let mi = producers[m], !removed.contains(mi) else { continue }
                let mul = graph.nodes[mi]
                guard mul.opType == "Mul", mul.isStandardDomain, mul.attributes.isEmpty, mul.inputs.count == 2,
                      mul.outputs.count == 1, let j = mul.inputs.firstIndex(of: x), mul.inputs[1 - j] != x,
                      worthFusing(x, mul.inputs[1 - j]) else { continue }
                graph.nodes[ai] = Node(name: add.name, opType: Self.opType, domain: "com.swiftonnx",
                                       inputs: [x, mul.inputs[1 - j]], outputs: add.outputs, attributes: [:])
                removed.insert(mi)
                changed = true
                break
            }
        }
        if changed { graph.removeNodes(at: removed) }
        return changed
    }
}

// MARK: - legacy (opset < 7) broadcast attributes

/// Before opset 7, Add/Sub/Mul/Div/Pow/And/Or/Xor/Equal/Greater/Less broadcast only when `broadcast=1`,
/// and then only B onto A: B's shape matches a run of A's dims starting at `axis` (default: A's suffix).
private struct LegacyBroadcast {
    var legacy = false
    var enabled = false
    var axis: Int? = nil

    init(_ ctx: OpContext) throws {
        guard ctx.opset < 7 else { return }
        legacy = true
        enabled = try ctx.int("broadcast", default: 0) != 0
        axis = try ctx.int("axis")
    }

    func operands(_ inputs: [Tensor?]) throws -> (Tensor, Tensor) {
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
        guard legacy else { return (a, b) }
        if !enabled {
            guard a.shape == b.shape else {
                throw OpError("shapes \(describeShape(a.shape)) and \(describeShape(b.shape)) differ and broadcast is 0")
            }
            return (a, b)
        }
        if b.shape == a.shape { return (a, b) }
        let ra = a.rank, rb = b.rank
        var start = ra - rb
        if let ax = axis { start = ax < 0 ? ax + ra : ax }
        // A scalar-like B (one element) broadcasts anywhere.
        if b.count == 1 { return (a, b.reshaped([])) }
        guard start >= 0, start + rb <= ra else {
            throw OpError("B of shape \(describeShape(b.shape)) cannot broadcast onto A of shape \(describeShape(a.shape)) at axis \(axis ?? start)")
        }
        var shape = [Int](repeating: 1, count: ra)
        for i in 0..<rb {
            let d = b.shape[i]
            guard d == a.shape[start + i] || d == 1 else {
                throw OpError("B of shape \(describeShape(b.shape)) does not match A of shape \(describeShape(a.shape)) at axis \(start)")
            }
            shape[start + i] = d
        }
        return (a, b.reshaped(shape))
    }
}

// MARK: - element type plumbing

/// Element types with arithmetic: float32, float64 and the eight integer types.
/// (float16 and bfloat16 compute through float32; bool has no arithmetic.)
private protocol ArithScalar: CastableScalar, Comparable {
    static func add(_ a: Self, _ b: Self) -> Self
    static func sub(_ a: Self, _ b: Self) -> Self
    static func mul(_ a: Self, _ b: Self) -> Self
    static func div(_ a: Self, _ b: Self) -> Self
    static func mod(_ a: Self, _ b: Self, fmod: Bool) -> Self
    static func maximum(_ a: Self, _ b: Self) -> Self
    static func minimum(_ a: Self, _ b: Self) -> Self
    static var zero: Self { get }
}

extension ArithScalar where Self: BinaryFloatingPoint {
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a + b }
    @inline(__always) static func sub(_ a: Self, _ b: Self) -> Self { a - b }
    @inline(__always) static func mul(_ a: Self, _ b: Self) -> Self { a * b }
    @inline(__always) static func div(_ a: Self, _ b: Self) -> Self { a / b }
    @inline(__always) static func mod(_ a: Self, _ b: Self, fmod: Bool) -> Self {
        fmod ? a.truncatingRemainder(dividingBy: b) : numpyFloatMod(a, b)
    }
    // NaN propagates (numpy maximum/minimum).
    @inline(__always) static func maximum(_ a: Self, _ b: Self) -> Self { a.isNaN ? a : (b.isNaN ? b : (a < b ? b : a)) }
    @inline(__always) static func minimum(_ a: Self, _ b: Self) -> Self { a.isNaN ? a : (b.isNaN ? b : (b < a ? b : a)) }
}

extension ArithScalar where Self: FixedWidthInteger {
    @inline(__always) static func add(_ a: Self, _ b: Self) -> Self { a &+ b }
    @inline(__always) static func sub(_ a: Self, _ b: Self) -> Self { a &- b }
    @inline(__always) static func mul(_ a: Self, _ b: Self) -> Self { a &* b }
    @inline(__always) static func div(_ a: Self, _ b: Self) -> Self { cTruncatingDiv(a, b) }
    @inline(__always) static func mod(_ a: Self, _ b: Self, fmod: Bool) -> Self { onnxIntMod(a, b, python: !fmod) }
    @inline(__always) static func maximum(_ a: Self, _ b: Self) -> Self { Swift.max(a, b) }
    @inline(__always) static func minimum(_ a: Self, _ b: Self) -> Self { Swift.min(a, b) }
}

extension Float: ArithScalar {}
extension Double: ArithScalar {}
extension Int8: ArithScalar {}
extension Int16: ArithScalar {}
extension Int32: ArithScalar {}
extension Int64: ArithScalar {}
extension UInt8: ArithScalar {}
extension UInt16: ArithScalar {}
extension UInt32: ArithScalar {}
extension UInt64: ArithScalar {}

private protocol ArithVisitor {
    associatedtype R
    func visit<T: ArithScalar>(_: T.Type) throws -> R
}

private func visitArith<V: ArithVisitor>(_ dt: DType, _ v: V, _ op: String) throws -> V.R {
    switch dt {
    case .float32: return try v.visit(Float.self)
    case .float64: return try v.visit(Double.self)
    case .int8: return try v.visit(Int8.self)
    case .int16: return try v.visit(Int16.self)
    case .int32: return try v.visit(Int32.self)
    case .int64: return try v.visit(Int64.self)
    case .uint8: return try v.visit(UInt8.self)
    case .uint16: return try v.visit(UInt16.self)
    case .uint32: return try v.visit(UInt32.self)
    case .uint64: return try v.visit(UInt64.self)
    default: throw ONNXError.unsupportedType("\(op): element type \(dt) is not supported")
    }
}

private protocol IntScalar: ArithScalar, FixedWidthInteger {}
extension Int8: IntScalar {}
extension Int16: IntScalar {}
extension Int32: IntScalar {}
extension Int64: IntScalar {}
extension UInt8: IntScalar {}
extension UInt16: IntScalar {}
extension UInt32: IntScalar {}
extension UInt64: IntScalar {}

private protocol IntVisitor {
    associatedtype R
    func visit<T: IntScalar>(_: T.Type) throws -> R
}

private func visitInt<V: IntVisitor>(_ dt: DType, _ v: V, _ op: String) throws -> V.R {
    switch dt {
    case .int8: return try v.visit(Int8.self)
    case .int16: return try v.visit(Int16.self)
    case .int32: return try v.visit(Int32.self)
    case .int64: return try v.visit(Int64.self)
    case .uint8: return try v.visit(UInt8.self)
    case .uint16: return try v.visit(UInt16.self)
    case .uint32: return try v.visit(UInt32.self)
    case .uint64: return try v.visit(UInt64.self)
    default: throw ONNXError.unsupportedType("\(op): element type \(dt) is not supported (integer types only)")
    }
}

private func requireSameType(_ a: Tensor, _ b: Tensor, _ op: String) throws {
    guard a.dtype == b.dtype else {
        throw OpError("\(op): inputs have different element types \(a.dtype) and \(b.dtype)")
    }
}

/// A fresh tensor with the same contents.
private func copyTensor(_ t: Tensor) throws -> Tensor {
    if t.dtype == .string { return Tensor(validShape: t.shape, strings: t.storage.strings) }
    let out = try Tensor.uninitialized(t.dtype, t.shape)
    if t.byteCount > 0 { out.raw.copyMemory(from: t.raw, byteCount: t.byteCount) }
    return out
}

// MARK: - arithmetic (Add Sub Mul Div Mod Max Min Sum Mean)

enum ArithOp {
    case add, sub, mul, div, mod(fmod: Bool), max, min

    var f32Fast: F32BinaryOp? {
        switch self {
        case .add: return .add
        case .sub: return .sub
        case .mul: return .mul
        case .div: return .div
        default: return nil
        }
    }
}

private struct ArithInto: ArithVisitor {
    let op: ArithOp
    let a: Tensor, b: Tensor, out: Tensor
    let threads: Int

    func visit<T: ArithScalar>(_: T.Type) throws {
        let pa = UnsafePointer(a.pointer(T.self)), pb = UnsafePointer(b.pointer(T.self)), po = out.pointer(T.self)
        let sa = a.shape, sb = b.shape, so = out.shape
        switch op {
        case .add: binaryBroadcast(pa, sa, pb, sb, po, so) { T.add($0, $1) }
        case .sub: binaryBroadcast(pa, sa, pb, sb, po, so) { T.sub($0, $1) }
        case .mul: binaryBroadcast(pa, sa, pb, sb, po, so) { T.mul($0, $1) }
        case .div: binaryBroadcast(pa, sa, pb, sb, po, so) { T.div($0, $1) }
        case .mod(let f): binaryBroadcast(pa, sa, pb, sb, po, so) { T.mod($0, $1, fmod: f) }
        case .max: binaryBroadcast(pa, sa, pb, sb, po, so) { T.maximum($0, $1) }
        case .min: binaryBroadcast(pa, sa, pb, sb, po, so) { T.minimum($0, $1) }
        }
    }
}

/// out = a op b; `out` has the broadcast shape and may be `a` itself when a already has it.
private func arithmeticInto(_ op: ArithOp, _ a: Tensor, _ b: Tensor, _ out: Tensor, threads: Int, _ name: String) throws {
    if a.dtype == .float32, let f = op.f32Fast {
        f32BinaryBroadcast(f, a.pointer(Float.self), a.shape, b.pointer(Float.self), b.shape,
                           out.pointer(Float.self), out.shape, threads: threads)
        return
    }
    try visitArith(a.dtype, ArithInto(op: op, a: a, b: b, out: out, threads: threads), name)
}

func arithmetic(_ op: ArithOp, _ a: Tensor, _ b: Tensor, threads: Int, _ name: String) throws -> Tensor {
    try requireSameType(a, b, name)
    let shape = try broadcastShapes(a.shape, b.shape)
    if a.dtype == .float16 || a.dtype == .bfloat16 {
        let r = try arithmetic(op, try a.converted(to: .float32), try b.converted(to: .float32), threads: threads, name)
        return try r.converted(to: a.dtype)
    }
    if a.dtype == .bool || a.dtype == .string || !a.dtype.isComputable {
        throw ONNXError.unsupportedType("\(name): element type \(a.dtype) is not supported")
    }
    let out = try Tensor.uninitialized(a.dtype, shape)
    try arithmeticInto(op, a, b, out, threads: threads, name)
    return out
}

private struct DivideByCount: ArithVisitor {
    let t: Tensor
    let count: Int
    func visit<T: ArithScalar>(_: T.Type) throws {
        let p = t.pointer(T.self)
        let c = T(i64: Int64(count))
        for i in 0..<t.count { p[i] = T.div(p[i], c) }
    }
}

/// Max/Min/Sum/Mean over one or more inputs with multidirectional broadcasting.
private func variadic(_ op: ArithOp, mean: Bool, _ ts: [Tensor], threads: Int, _ name: String) throws -> Tensor {
    guard let first = ts.first else { throw OpError("\(name): needs at least one input") }
    for t in ts.dropFirst() { try requireSameType(first, t, name) }
    let dt = first.dtype
    if dt == .float16 || dt == .bfloat16 {
        let r = try variadic(op, mean: mean, ts.map { try $0.converted(to: .float32) }, threads: threads, name)
        return try r.converted(to: dt)
    }
    if dt == .bool || dt == .string || !dt.isComputable {
        throw ONNXError.unsupportedType("\(name): element type \(dt) is not supported")
    }
    if mean && !dt.isFloatingPoint {
        throw ONNXError.unsupportedType("Mean: element type \(dt) is not supported (float types only)")
    }
    _ = try broadcastShapes(ts.map(\.shape))  // reports incompatible shapes up front
    var acc: Tensor
    if ts.count == 1 {
        acc = try copyTensor(first)
    } else {
        acc = try arithmetic(op, ts[0], ts[1], threads: threads, name)
        for t in ts.dropFirst(2) {
            let shape = try broadcastShapes(acc.shape, t.shape)
            if shape == acc.shape {
                try arithmeticInto(op, acc, t, acc, threads: threads, name)   // acc is ours: in place
            } else {
                acc = try arithmetic(op, acc, t, threads: threads, name)
            }
        }
    }
    if mean && ts.count > 1 {
        if dt == .float32 {
            let p = acc.pointer(Float.self)
            f32BinaryVS(.div, p, Float(ts.count), p, acc.count)
        } else {
            try visitArith(dt, DivideByCount(t: acc, count: ts.count), name)
        }
    }
    return acc
}

// MARK: - Pow

private struct PowBase: ScalarTypeVisitor {
    let a: Tensor, b: Tensor, shape: [Int], threads: Int
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        try b.dtype.visit(PowExp<T>(a: a, b: b, shape: shape, threads: threads))
    }
}

private struct PowExp<A: CastableScalar>: ScalarTypeVisitor {
    let a: Tensor, b: Tensor, shape: [Int], threads: Int
    func visit<B: CastableScalar>(_: B.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(A.dtype, shape)
        let pa = UnsafePointer(a.pointer(A.self)), pb = UnsafePointer(b.pointer(B.self)), po = out.pointer(A.self)
        if A.kind == .float || B.kind == .float {
            // numpy computes mixed types in float64, then the result is cast to the base's type.
            binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { x, y in
                A(f64: Foundation.pow(x.f64, y.f64))
            }
        } else if B.kind == .unsigned {
            binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { x, y in
                let e = y.u64 > UInt64(Int64.max) ? Int64.max : Int64(y.u64)
                return A.kind == .unsigned ? A(u64: wrappingIntPow(x.u64, e)) : A(i64: wrappingIntPow(x.i64, e))
            }
        } else {
            binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { x, y in
                A.kind == .unsigned ? A(u64: wrappingIntPow(x.u64, y.i64)) : A(i64: wrappingIntPow(x.i64, y.i64))
            }
        }
        return out
    }
}

/// Pow: the output has the base's type; the exponent may be of any numeric type.
private func power(_ a: Tensor, _ b: Tensor, threads: Int) throws -> Tensor {
    let shape = try broadcastShapes(a.shape, b.shape)
    for t in [a, b] where t.dtype == .bool || t.dtype == .string || !t.dtype.isComputable {
        throw ONNXError.unsupportedType("Pow: element type \(t.dtype) is not supported")
    }
    if a.dtype == .float32 && b.dtype == .float32 {
        let out = try Tensor.uninitialized(.float32, shape)
        let po = out.pointer(Float.self)
        // x^2 (common in norms and losses) is exact as a product.
        if b.count == 1 && b.pointer(Float.self)[0] == 2 {
            let pa = a.pointer(Float.self)
            f32BinaryBroadcast(.mul, pa, a.shape, pa, a.shape, po, shape, threads: threads)
            return out
        }
        binaryBroadcast(a.pointer(Float.self), a.shape, b.pointer(Float.self), b.shape, po, shape) { Foundation.pow($0, $1) }
        return out
    }
    if a.dtype == .float64 && b.dtype == .float64 {
        let out = try Tensor.uninitialized(.float64, shape)
        binaryBroadcast(a.pointer(Double.self), a.shape, b.pointer(Double.self), b.shape, out.pointer(Double.self), shape) { Foundation.pow($0, $1) }
        return out
    }
    return try a.dtype.visit(PowBase(a: a, b: b, shape: shape, threads: threads))
}

// MARK: - integer ops (BitShift, BitwiseAnd/Or/Xor)

private enum IntOp { case and, or, xor, shift(left: Bool) }

private struct IntOpVisitor: IntVisitor {
    let op: IntOp
    let a: Tensor, b: Tensor, shape: [Int], threads: Int
    func visit<T: IntScalar>(_: T.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(T.dtype, shape)
        let pa = UnsafePointer(a.pointer(T.self)), pb = UnsafePointer(b.pointer(T.self)), po = out.pointer(T.self)
        switch op {
        case .and: binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { $0 & $1 }
        case .or: binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { $0 | $1 }
        case .xor: binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { $0 ^ $1 }
        case .shift(let left):
            if left {
                binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { onnxBitShift($0, $1, left: true) }
            } else {
                binaryBroadcast(pa, a.shape, pb, b.shape, po, shape) { onnxBitShift($0, $1, left: false) }
            }
        }
        return out
    }
}

private func integerOp(_ op: IntOp, _ a: Tensor, _ b: Tensor, threads: Int, _ name: String) throws -> Tensor {
    try requireSameType(a, b, name)
    let shape = try broadcastShapes(a.shape, b.shape)
    return try visitInt(a.dtype, IntOpVisitor(op: op, a: a, b: b, shape: shape, threads: threads), name)
}

// MARK: - comparisons

private enum CompareOp { case eq, gt, ge, lt, le }

private struct CompareVisitor: ArithVisitor {
    let op: CompareOp
    let a: Tensor, b: Tensor, out: Tensor, threads: Int
    func visit<T: ArithScalar>(_: T.Type) throws {
        compareLoop(op, a, b, out, T.self, threads: threads)
    }
}

@inline(__always)
private func compareLoop<T: Comparable>(_ op: CompareOp, _ a: Tensor, _ b: Tensor, _ out: Tensor, _: T.Type, threads: Int) {
    let pa = UnsafePointer(a.pointer(T.self)), pb = UnsafePointer(b.pointer(T.self)), po = out.pointer(Bool.self)
    let sa = a.shape, sb = b.shape, so = out.shape
    switch op {
    case .eq: binaryBroadcast(pa, sa, pb, sb, po, so) { $0 == $1 }
    case .gt: binaryBroadcast(pa, sa, pb, sb, po, so) { $0 > $1 }
    case .ge: binaryBroadcast(pa, sa, pb, sb, po, so) { $0 >= $1 }
    case .lt: binaryBroadcast(pa, sa, pb, sb, po, so) { $0 < $1 }
    case .le: binaryBroadcast(pa, sa, pb, sb, po, so) { $0 <= $1 }
    }
}

private func compare(_ op: CompareOp, _ a: Tensor, _ b: Tensor, threads: Int, _ name: String) throws -> Tensor {
    try requireSameType(a, b, name)
    let shape = try broadcastShapes(a.shape, b.shape)
    let out = try Tensor.uninitialized(.bool, shape)
    switch a.dtype {
    case .string:
        guard op == .eq else { throw ONNXError.unsupportedType("\(name): string inputs are supported by Equal only") }
        a.storage.strings.withUnsafeBufferPointer { sa in
            b.storage.strings.withUnsafeBufferPointer { sb in
                if let ba = sa.baseAddress, let bb = sb.baseAddress {
                    binaryBroadcast(ba, a.shape, bb, b.shape, out.pointer(Bool.self), shape) { $0 == $1 }
                }
            }
        }
    case .bool:
        // Compare as 0/1 (Equal allows bool; the ordering ops are given the natural false < true).
        compareLoop(op, a, b, out, UInt8.self, threads: threads)
    case .float16:
        compareLoop(op, a, b, out, Float16.self, threads: threads)
    case .bfloat16:
        return try compare(op, try a.converted(to: .float32), try b.converted(to: .float32), threads: threads, name)
    default:
        try visitArith(a.dtype, CompareVisitor(op: op, a: a, b: b, out: out, threads: threads), name)
    }
    return out
}

// MARK: - Where

@inline(__always)
private func whereLoop<T>(_ c: Tensor, _ x: Tensor, _ y: Tensor, _ out: Tensor, _: T.Type, threads: Int) {
    ternaryBroadcast(UnsafePointer(c.pointer(Bool.self)), c.shape, UnsafePointer(x.pointer(T.self)), x.shape,
                     UnsafePointer(y.pointer(T.self)), y.shape, out.pointer(T.self), out.shape) { $0 ? $1 : $2 }
}

private func whereOp(_ c: Tensor, _ x: Tensor, _ y: Tensor, threads: Int) throws -> Tensor {
    guard c.dtype == .bool else { throw OpError("Where: condition must be bool, got \(c.dtype)") }
    try requireSameType(x, y, "Where")
    let shape = try broadcastShapes([c.shape, x.shape, y.shape])
    if x.dtype == .string {
        var res = [String](repeating: "", count: shape.reduce(1, *))
        x.storage.strings.withUnsafeBufferPointer { sx in
            y.storage.strings.withUnsafeBufferPointer { sy in
                res.withUnsafeMutableBufferPointer { so in
                    if let bx = sx.baseAddress, let by = sy.baseAddress, let bo = so.baseAddress {
                        ternaryBroadcast(UnsafePointer(c.pointer(Bool.self)), c.shape, bx, x.shape, by, y.shape,
                                         bo, shape) { $0 ? $1 : $2 }
                    }
                }
            }
        }
        return Tensor(validShape: shape, strings: res)
    }
    let out = try Tensor.uninitialized(x.dtype, shape)
    // Selection moves bits only: pick by element width.
    switch x.dtype.byteSize {
    case 1: whereLoop(c, x, y, out, UInt8.self, threads: threads)
    case 2: whereLoop(c, x, y, out, UInt16.self, threads: threads)
    case 4: whereLoop(c, x, y, out, UInt32.self, threads: threads)
    case 8: whereLoop(c, x, y, out, UInt64.self, threads: threads)
    case 16: whereLoop(c, x, y, out, SIMD2<UInt64>.self, threads: threads)
    default: throw ONNXError.unsupportedType("Where: element type \(x.dtype) is not supported")
    }
    return out
}

// MARK: - PRelu

private struct PReluVisitor: ArithVisitor {
    let x: Tensor, slope: Tensor, slopeShape: [Int], out: Tensor, threads: Int
    func visit<T: ArithScalar>(_: T.Type) throws {
        binaryBroadcast(UnsafePointer(x.pointer(T.self)), x.shape, UnsafePointer(slope.pointer(T.self)), slopeShape,
                        out.pointer(T.self), x.shape) { v, s in v > T.zero ? v : T.mul(v, s) }
    }
}

extension ArithScalar where Self: BinaryFloatingPoint { static var zero: Self { 0 } }
extension ArithScalar where Self: FixedWidthInteger { static var zero: Self { 0 } }

/// The shape to read `slope` with so it broadcasts to X's shape (unidirectional), or the legacy
/// rule: a 1-D slope whose length matches exactly one of X's dims applies along that dim.
private func preluSlopeShape(_ x: [Int], _ s: [Int]) throws -> [Int] {
    if let shape = try? broadcastShapes(x, s), shape == x { return s }
    if s.count == 1 {
        let matches = x.indices.filter { x[$0] == s[0] }
        if matches.count == 1 {
            var r = [Int](repeating: 1, count: x.count)
            r[matches[0]] = s[0]
            return r
        }
    }
    throw OpError("PRelu: slope of shape \(describeShape(s)) does not broadcast to X of shape \(describeShape(x))")
}

private func prelu(_ x: Tensor, _ slope: Tensor, threads: Int) throws -> Tensor {
    try requireSameType(x, slope, "PRelu")
    let sshape = try preluSlopeShape(x.shape, slope.shape)
    if x.dtype == .float16 || x.dtype == .bfloat16 {
        let r = try prelu(try x.converted(to: .float32), try slope.converted(to: .float32), threads: threads)
        return try r.converted(to: x.dtype)
    }
    let out = try Tensor.uninitialized(x.dtype, x.shape)
    try visitArith(x.dtype, PReluVisitor(x: x, slope: slope, slopeShape: sshape, out: out, threads: threads), "PRelu")
    return out
}
