import Foundation

/// Elementwise (unary) ops: math, activations, predicates, bitwise/logical not, Cast/CastLike.
/// float32 runs through the SIMD kernels of Kernels/ElementwiseKernels.swift; float16/bfloat16
/// compute in float32 and round back; float64 computes in Double; integer types where the spec allows.
func registerElementwiseOps(_ r: inout OpRegistry) {
    // Simple math with a vector float32 kernel.
    registerKernelOp(&r, "Exp", .exp) { Foundation.exp($0) }
    registerKernelOp(&r, "Sqrt", .sqrt) { $0.squareRoot() }
    registerKernelOp(&r, "Reciprocal", .reciprocal) { 1 / $0 }
    registerKernelOp(&r, "Floor", .floor) { $0.rounded(.down) }
    registerKernelOp(&r, "Ceil", .ceil) { $0.rounded(.up) }
    registerKernelOp(&r, "Round", .round) { $0.rounded(.toNearestOrEven) }
    registerKernelOp(&r, "Abs", .abs, ints: { try mapInts($0, AbsFn()) }) { Swift.abs($0) }
    registerKernelOp(&r, "Neg", .neg, ints: { try mapInts($0, NegFn()) }) { -$0 }
    registerKernelOp(&r, "Sign", .sign, ints: { try mapInts($0, SignFn()) }) { $0 > 0 ? 1 : ($0 < 0 ? -1 : $0) }
    registerKernelOp(&r, "Relu", .relu, ints: { try mapInts($0, ReluFn()) }) { $0 < 0 ? 0 : $0 }
    registerKernelOp(&r, "Sigmoid", .sigmoid) { $0 >= 0 ? 1 / (1 + Foundation.exp(-$0)) : Foundation.exp($0) / (1 + Foundation.exp($0)) }
    registerKernelOp(&r, "Tanh", .tanh) { Foundation.tanh($0) }
    registerKernelOp(&r, "Erf", .erf, ints: { x in try x.dtype.visit(ViaDouble(x: x) { Foundation.erf($0) }) }) { Foundation.erf($0) }
    registerKernelOp(&r, "Softsign", .softsign) { $0 / (1 + Swift.abs($0)) }
    registerKernelOp(&r, "HardSwish", .hardSwish) { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) }
    registerKernelOp(&r, "Softplus", .softplus) { Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) }
    registerKernelOp(&r, "Mish", .mish) { x in x * Foundation.tanh(Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))) }

    // Scalar math (no vector kernel).
    registerScalarOp(&r, "Log", { Foundation.log($0) }, { Foundation.log($0) })
    registerScalarOp(&r, "Sin", { Foundation.sin($0) }, { Foundation.sin($0) })
    registerScalarOp(&r, "Cos", { Foundation.cos($0) }, { Foundation.cos($0) })
    registerScalarOp(&r, "Tan", { Foundation.tan($0) }, { Foundation.tan($0) })
    registerScalarOp(&r, "Asin", { Foundation.asin($0) }, { Foundation.asin($0) })
    registerScalarOp(&r, "Acos", { Foundation.acos($0) }, { Foundation.acos($0) })
    registerScalarOp(&r, "Atan", { Foundation.atan($0) }, { Foundation.atan($0) })
    registerScalarOp(&r, "Sinh", { Foundation.sinh($0) }, { Foundation.sinh($0) })
    registerScalarOp(&r, "Cosh", { Foundation.cosh($0) }, { Foundation.cosh($0) })
    registerScalarOp(&r, "Asinh", { Foundation.asinh($0) }, { Foundation.asinh($0) })
    registerScalarOp(&r, "Acosh", { Foundation.acosh($0) }, { Foundation.acosh($0) })
    registerScalarOp(&r, "Atanh", { Foundation.atanh($0) }, { Foundation.atanh($0) })

    // Activations with attributes.
    registerParamOp(&r, "LeakyRelu", .leakyRelu) { ctx in (try ctx.float("alpha", default: 0.01), 0) }
    registerParamOp(&r, "HardSigmoid", .hardSigmoid) { ctx in
        (try ctx.float("alpha", default: 0.2), try ctx.float("beta", default: 0.5))
    }
    registerParamOp(&r, "Elu", .elu) { ctx in (try ctx.float("alpha", default: 1.0), 0) }
    registerParamOp(&r, "Selu", .selu) { ctx in
        (try ctx.float("alpha", default: 1.67326319217681884765625),
         try ctx.float("gamma", default: 1.05070102214813232421875))
    }
    registerParamOp(&r, "Celu", .celu) { ctx in
        let a = try ctx.float("alpha", default: 1.0)
        if a == 0 { throw ctx.attributeError("alpha", "must not be 0") }
        return (a, 0)
    }
    registerParamOp(&r, "ThresholdedRelu", .thresholdedRelu) { ctx in (try ctx.float("alpha", default: 1.0), 0) }
    registerParamOp(&r, "Swish", .swish) { ctx in (try ctx.float("alpha", default: 1.0), 0) }
    r.register("Gelu", infer: .sameAsFirst) { ctx in
        let approx = try ctx.string("approximate", default: "none")
        let kind: ActivationKind
        switch approx {
        case "none": kind = .gelu
        case "tanh": kind = .geluTanh
        default: throw ctx.attributeError("approximate", "must be 'none' or 'tanh', got '\(approx)'")
        }
        let f64 = activationF64(kind, 0, 0)
        return { inputs, env in
            [try floatMap(try inputs.required(0), "Gelu", env, f32: kernelF32(kind, 0, 0), f64: f64)]
        }
    }
    // ONNX Runtime's GELU family (com.microsoft, what its transformer optimizer emits): Gelu (exact),
    // QuickGelu x·sigmoid(alpha·x), FastGelu(X, bias?) = tanh-approximated Gelu of X + bias,
    // BiasGelu(A, B) = exact Gelu of A + B; the bias is one value per element of the last dimension.
    registerParamOp(&r, "Gelu", .gelu, domain: "com.microsoft") { _ in (0, 0) }
    registerParamOp(&r, "QuickGelu", .swish, domain: "com.microsoft") { ctx in (try ctx.float("alpha", default: 1.702), 0) }
    registerBiasActivation(&r, "FastGelu", .geluTanh, biasRequired: false)
    registerBiasActivation(&r, "BiasGelu", .gelu, biasRequired: true)
    r.register("Shrink", infer: .sameAsFirst) { ctx in
        let bias = Double(try ctx.float("bias", default: 0))
        let lambd = Double(try ctx.float("lambd", default: 0.5))
        let fb = Float(bias), fl = Float(lambd)
        let f64: @Sendable (Double) -> Double = { x in x < -lambd ? x + bias : (x > lambd ? x - bias : 0) }
        return { inputs, env in
            let x = try inputs.required(0)
            if !x.dtype.isFloatingPoint {
                guard x.dtype.isInteger else { throw ONNXError.unsupportedType("Shrink: element type \(x.dtype)") }
                return [try x.dtype.visit(ViaDouble(x: x, f: f64))]
            }
            return [try floatMap(x, "Shrink", env, f32: { s, d, n in
                mapF32(s, d, n) { v in v < -fl ? v + fb : (v > fl ? v - fb : 0) }
            }, f64: f64)]
        }
    }
    r.register("Clip", infer: .sameAsFirst, closure: buildClip)
    r.rewrite(.fuse, FuseHardSwish())
    r.rewrite(.cleanup, FuseGelu())   // before the fusions, which would take its Mul by 0.5 into an affine chain
    r.rewrite(.cleanup, FuseSiLU())   // before the dense-layer epilogue fusion, which takes the Swish

    // Predicates and logical/bitwise not.
    r.register("IsNaN", infer: .boolOfFirst) { _ in
        { inputs, _ in [try floatPredicate(try inputs.required(0), "IsNaN") { $0.isNaN }] }
    }
    r.register("IsInf", infer: .boolOfFirst) { ctx in
        let pos = try ctx.int("detect_positive", default: 1) != 0
        let neg = try ctx.int("detect_negative", default: 1) != 0
        return { inputs, _ in
            [try floatPredicate(try inputs.required(0), "IsInf") { v in
                v.isInfinite && ((v > 0 && pos) || (v < 0 && neg))
            }]
        }
    }
    r.register("Not", infer: .sameAsFirst) { _ in
        { inputs, _ in
            let x = try inputs.required(0)
            guard x.dtype == .bool else { throw ONNXError.unsupportedType("Not: element type \(x.dtype), expected bool") }
            return [try mapElements(x, .bool, Bool.self, Bool.self) { !$0 }]
        }
    }
    r.register("BitwiseNot", infer: .sameAsFirst) { _ in
        { inputs, _ in
            let x = try inputs.required(0)
            guard let y = try mapInts(x, BitNotFn()) else {
                throw ONNXError.unsupportedType("BitwiseNot: element type \(x.dtype), expected an integer type")
            }
            return [y]
        }
    }

    // Casts.
    r.register("Cast", infer: Inference { ctx, ins in
        [TypeInfo(dtype: try? castTarget(ctx), shape: ins.shape(0))]
    }) { ctx in
        let to = try castTarget(ctx)
        let saturate = try ctx.int("saturate", default: 1) != 0
        return { inputs, _ in [try castTensor(try inputs.required(0), to: to, saturate: saturate)] }
    }
    // BitCast (opset 26): the same bytes read as another type of the same width.
    r.register("BitCast", infer: Inference { ctx, ins in
        [TypeInfo(dtype: try? castTarget(ctx), shape: ins.shape(0))]
    }) { ctx in
        let to = try castTarget(ctx)
        return { inputs, _ in
            let x = try inputs.required(0)
            guard x.dtype != .string, to != .string, x.dtype.byteSize == to.byteSize, x.dtype.isComputable, to.isComputable else {
                throw OpError("BitCast: cannot reinterpret \(x.dtype) as \(to) (both must be numeric types of the same width)")
            }
            if to == .bool {
                let b = x.pointer(UInt8.self)
                for i in 0..<x.count where b[i] > 1 {
                    throw OpError("BitCast: byte \(b[i]) at element \(i) is not a boolean (0 or 1)")
                }
            }
            return [Tensor(dtype: to, shape: x.shape, storage: x.storage)]
        }
    }
    // SwiGLU (opset 26): A * sigmoid(alpha * A) * B, A and B of one shape.
    r.register("SwiGLU", infer: .sameAsFirst) { ctx in
        let alpha = try ctx.float("alpha", default: 1)
        return { inputs, _ in
            let a0 = try inputs.required(0, "A"), b0 = try inputs.required(1, "B")
            guard a0.dtype.isFloatingPoint, a0.dtype == b0.dtype else {
                throw ONNXError.unsupportedType("SwiGLU: A (\(a0.dtype)) and B (\(b0.dtype)) must be one float type")
            }
            guard a0.shape == b0.shape else {
                throw OpError("SwiGLU: A \(describeShape(a0.shape)) and B \(describeShape(b0.shape)) must have the same shape")
            }
            let a = try a0.converted(to: .float32), b = try b0.converted(to: .float32)
            let y = try Tensor.uninitialized(.float32, a.shape)
            let ap = a.pointer(Float.self), bp = b.pointer(Float.self), yp = y.pointer(Float.self)
            activationF32(.swish, ap, yp, a.count, alpha: alpha)   // Swish's kernel, then the gate
            for i in 0..<a.count { yp[i] *= bp[i] }
            return [try y.converted(to: a0.dtype)]
        }
    }
    r.register("CastLike", infer: Inference { _, ins in [TypeInfo(dtype: ins.dtype(1), shape: ins.shape(0))] }) { ctx in
        let saturate = try ctx.int("saturate", default: 1) != 0
        return { inputs, _ in
            let x = try inputs.required(0)
            let like = try inputs.required(1, "target_type")
            return [try castTensor(x, to: like.dtype, saturate: saturate)]
        }
    }
}

// MARK: float machinery

typealias F32Kernel = @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

/// Splits n elements into chunks (multiples of 16) over `threads` workers when n is large.
fileprivate func runChunked(_ n: Int, _ threads: Int, _ body: (Int, Int) -> Void) {
    let minChunk = 1 << 14
    if threads <= 1 || n < 2 * minChunk { body(0, n); return }
    let t = Swift.min(threads, (n + minChunk - 1) / minChunk)
    let chunk = ((n + t - 1) / t + 15) & ~15
    parallelFor(t, threads: threads) { i in
        let s = i * chunk
        let e = Swift.min(n, s + chunk)
        if s < e { body(s, e - s) }
    }
}

fileprivate func runF32(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ threads: Int,
                        _ k: F32Kernel) {
    runChunked(n, threads) { s, c in k(src + s, dst + s, c) }
}

fileprivate func kernelF32(_ kind: ActivationKind, _ a: Float, _ b: Float) -> F32Kernel {
    { s, d, n in activationF32(kind, s, d, n, alpha: a, beta: b) }
}

/// Maps a float tensor (float32/16/bfloat16 through the float32 kernel, float64 through `f64`).
fileprivate func floatMap(_ x: Tensor, _ op: String, _ env: RunEnv, f32: F32Kernel,
                          f64: (Double) -> Double) throws -> Tensor {
    let n = x.count
    switch x.dtype {
    case .float32:
        let out = try Tensor.uninitialized(.float32, x.shape)
        runF32(x.pointer(Float.self), out.pointer(Float.self), n, env.threads, f32)
        return out
    case .float16, .bfloat16:
        let out = try Tensor.uninitialized(x.dtype, x.shape)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(n, 1))
        defer { tmp.deallocate() }
        if x.dtype == .float16 {
            let s = x.pointer(Float16.self)
            for i in 0..<n { tmp[i] = Float(s[i]) }
        } else {
            let s = x.pointer(BFloat16.self)
            for i in 0..<n { tmp[i] = s[i].floatValue }
        }
        runF32(tmp, tmp, n, env.threads, f32)
        if x.dtype == .float16 {
            let d = out.pointer(Float16.self)
            for i in 0..<n { d[i] = Float16(tmp[i]) }
        } else {
            let d = out.pointer(BFloat16.self)
            for i in 0..<n { d[i] = BFloat16(tmp[i]) }
        }
        return out
    case .float64:
        return try mapElements(x, .float64, Double.self, Double.self, f64)
    default:
        throw ONNXError.unsupportedType("\(op): element type \(x.dtype) is not supported (expected a float type)")
    }
}

/// The Double form of an activation (float64 tensors).
fileprivate func activationF64(_ kind: ActivationKind, _ a: Double, _ b: Double) -> @Sendable (Double) -> Double {
    switch kind {
    case .leakyRelu: return { $0 < 0 ? $0 * a : $0 }
    case .hardSigmoid: return { Swift.max(0, Swift.min(1, $0 * a + b)) }
    case .elu: return { $0 < 0 ? a * (Foundation.exp($0) - 1) : $0 }
    case .selu: return { $0 <= 0 ? b * (a * Foundation.exp($0) - a) : b * $0 }
    case .celu: return { $0 < 0 ? a * (Foundation.exp($0 / a) - 1) : $0 }
    case .thresholdedRelu: return { $0 > a ? $0 : 0 }
    case .swish: return { $0 / (1 + Foundation.exp(-a * $0)) }
    case .gelu: return { 0.5 * $0 * Foundation.erfc(-$0 / 2.0.squareRoot()) }
    case .geluTanh:
        return { x in
            let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + Foundation.tanh(u))
        }
    case .clip: return { Swift.min(Swift.max($0, a), b) }
    default: return { $0 }
    }
}

fileprivate func registerKernelOp(_ r: inout OpRegistry, _ name: String, _ kind: ActivationKind,
                                  ints: (@Sendable (Tensor) throws -> Tensor?)? = nil,
                                  _ f64: @escaping @Sendable (Double) -> Double) {
    r.register(name, infer: .sameAsFirst) { _ in
        let k = kernelF32(kind, 0, 0)
        return { inputs, env in
            let x = try inputs.required(0)
            if let ints = ints, !x.dtype.isFloatingPoint {
                guard let y = try ints(x) else {
                    throw ONNXError.unsupportedType("\(name): element type \(x.dtype) is not supported")
                }
                return [y]
            }
            return [try floatMap(x, name, env, f32: k, f64: f64)]
        }
    }
}

fileprivate func registerScalarOp(_ r: inout OpRegistry, _ name: String,
                                  _ f32: @escaping @Sendable (Float) -> Float, _ f64: @escaping @Sendable (Double) -> Double) {
    r.register(name, infer: .sameAsFirst) { _ in
        { inputs, env in
            [try floatMap(try inputs.required(0), name, env, f32: { s, d, n in mapF32(s, d, n, f32) }, f64: f64)]
        }
    }
}

fileprivate func registerParamOp(_ r: inout OpRegistry, _ name: String, _ kind: ActivationKind, domain: String = "",
                                 _ params: @escaping @Sendable (OpContext) throws -> (Float, Float)) {
    r.register(name, domain: domain, infer: .sameAsFirst) { ctx in
        let (a, b) = try params(ctx)
        let k = kernelF32(kind, a, b)
        let f64 = activationF64(kind, Double(a), Double(b))
        return { inputs, env in [try floatMap(try inputs.required(0), name, env, f32: k, f64: f64)] }
    }
}

/// act(X + bias) with bias one value per element of X's last dimension (com.microsoft FastGelu, BiasGelu).
fileprivate func registerBiasActivation(_ r: inout OpRegistry, _ name: String, _ kind: ActivationKind, biasRequired: Bool) {
    r.register(name, domain: "com.microsoft", infer: .sameAsFirst) { _ in
        let k = kernelF32(kind, 0, 0)
        let f64 = activationF64(kind, 0, 0)
        return { inputs, env in
            let x = try inputs.required(0)
            guard let b0 = biasRequired ? try inputs.required(1, "bias") : inputs.optional(1) else {
                return [try floatMap(x, name, env, f32: k, f64: f64)]
            }
            guard x.dtype.isFloatingPoint, b0.dtype.isFloatingPoint else {
                throw ONNXError.unsupportedType("\(name): element types \(x.dtype) and \(b0.dtype) are not supported (expected float types)")
            }
            guard x.rank >= 1, let n = x.shape.last, b0.count == n, b0.shape.last == n || (n == 1 && b0.count == 1) else {
                throw OpError("\(name): bias \(describeShape(b0.shape)) must hold one value per element of the input's last dimension \(describeShape(x.shape))")
            }
            let xf = try x.converted(to: .float32), b = try b0.converted(to: .float32)
            let y = try Tensor.uninitialized(.float32, x.shape)
            let xp = xf.pointer(Float.self), yp = y.pointer(Float.self), bp = b.pointer(Float.self)
            if n > 0 {
                for r in 0..<(y.count / n) {
                    let src = xp + r * n, row = yp + r * n
                    for i in 0..<n { row[i] = src[i] + bp[i] }
                }
            }
            runF32(yp, yp, y.count, env.threads, k)
            return [try y.converted(to: x.dtype)]
        }
    }
}

// MARK: Clip

fileprivate func buildClip(_ ctx: OpContext) throws -> OpBody {
    if ctx.opset < 11 {
        let lo = try ctx.float("min", default: -Float.greatestFiniteMagnitude)
        let hi = try ctx.float("max", default: Float.greatestFiniteMagnitude)
        let k = kernelF32(.clip, lo, hi)
        let f64 = activationF64(.clip, Double(lo), Double(hi))
        return { inputs, env in [try floatMap(try inputs.required(0), "Clip", env, f32: k, f64: f64)] }
    }
    return { inputs, env in
        let x = try inputs.required(0)
        let minT = inputs.optional(1), maxT = inputs.optional(2)
        for (t, what) in [(minT, "min"), (maxT, "max")] {
            guard let t = t else { continue }
            guard t.dtype == x.dtype else {
                throw OpError("Clip: \(what) has element type \(t.dtype), input has \(x.dtype)")
            }
            guard t.count == 1 else {
                throw OpError("Clip: \(what) must be a scalar, got shape \(describeShape(t.shape))")
            }
        }
        if x.dtype.isFloatingPoint {
            let lo = try minT?.readAsDoubles()[0] ?? -Double.infinity
            let hi = try maxT?.readAsDoubles()[0] ?? Double.infinity
            return [try floatMap(x, "Clip", env, f32: kernelF32(.clip, Float(lo), Float(hi)),
                                 f64: activationF64(.clip, lo, hi))]
        }
        func clip<T: FixedWidthInteger>(_: T.Type) throws -> Tensor {
            let lo = minT.map { $0.pointer(T.self)[0] } ?? T.min
            let hi = maxT.map { $0.pointer(T.self)[0] } ?? T.max
            return try mapElements(x, x.dtype, T.self, T.self) { Swift.min(Swift.max($0, lo), hi) }
        }
        switch x.dtype {
        case .int8: return [try clip(Int8.self)]
        case .int16: return [try clip(Int16.self)]
        case .int32: return [try clip(Int32.self)]
        case .int64: return [try clip(Int64.self)]
        case .uint8: return [try clip(UInt8.self)]
        case .uint16: return [try clip(UInt16.self)]
        case .uint32: return [try clip(UInt32.self)]
        case .uint64: return [try clip(UInt64.self)]
        default: throw ONNXError.unsupportedType("Clip: element type \(x.dtype) is not supported")
        }
    }
}

// MARK: generic element maps

@inline(__always)
fileprivate func mapElements<S, D>(_ x: Tensor, _ dt: DType, _: S.Type, _: D.Type, _ f: (S) -> D) throws -> Tensor {
    let out = try Tensor.uninitialized(dt, x.shape)
    let s = x.pointer(S.self), d = out.pointer(D.self)
    for i in 0..<x.count { d[i] = f(s[i]) }
    return out
}

fileprivate protocol IntFn { func apply<T: FixedWidthInteger>(_ x: T) -> T }
fileprivate struct AbsFn: IntFn { func apply<T: FixedWidthInteger>(_ x: T) -> T { x < 0 ? 0 &- x : x } }
fileprivate struct NegFn: IntFn { func apply<T: FixedWidthInteger>(_ x: T) -> T { 0 &- x } }
fileprivate struct SignFn: IntFn { func apply<T: FixedWidthInteger>(_ x: T) -> T { x > 0 ? 1 : (x < 0 ? 0 &- 1 : 0) } }
fileprivate struct ReluFn: IntFn { func apply<T: FixedWidthInteger>(_ x: T) -> T { x < 0 ? 0 : x } }
fileprivate struct BitNotFn: IntFn { func apply<T: FixedWidthInteger>(_ x: T) -> T { ~x } }

/// Applies an integer function to an integer tensor; nil for non-integer element types.
fileprivate func mapInts<F: IntFn>(_ x: Tensor, _ f: F) throws -> Tensor? {
    func m<T: FixedWidthInteger>(_: T.Type) throws -> Tensor { try mapElements(x, x.dtype, T.self, T.self) { f.apply($0) } }
    switch x.dtype {
    case .int8: return try m(Int8.self)
    case .int16: return try m(Int16.self)
    case .int32: return try m(Int32.self)
    case .int64: return try m(Int64.self)
    case .uint8: return try m(UInt8.self)
    case .uint16: return try m(UInt16.self)
    case .uint32: return try m(UInt32.self)
    case .uint64: return try m(UInt64.self)
    default: return nil
    }
}

/// Computes through Double and converts back with Cast semantics (ops that allow integer inputs).
fileprivate struct ViaDouble: ScalarTypeVisitor {
    let x: Tensor
    let f: @Sendable (Double) -> Double
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        try mapElements(x, x.dtype, T.self, T.self) { T(f64: f($0.f64)) }
    }
}

fileprivate func floatPredicate(_ x: Tensor, _ op: String, _ p: (Double) -> Bool) throws -> Tensor {
    switch x.dtype {
    case .float32: return try mapElements(x, .bool, Float.self, Bool.self) { p(Double($0)) }
    case .float64: return try mapElements(x, .bool, Double.self, Bool.self, p)
    case .float16: return try mapElements(x, .bool, Float16.self, Bool.self) { p(Double($0)) }
    case .bfloat16: return try mapElements(x, .bool, BFloat16.self, Bool.self) { p(Double($0.floatValue)) }
    case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz:
        let fmt = x.dtype
        return try mapElements(x, .bool, UInt8.self, Bool.self) { p(Double(decodeFloat8($0, fmt))) }
    default:
        throw ONNXError.unsupportedType("\(op): element type \(x.dtype) is not supported (expected a float type)")
    }
}

// MARK: Cast

fileprivate func castTarget(_ ctx: OpContext) throws -> DType {
    if case .string(let s)? = ctx.node.attributes["to"] {
        // Opset 1-5: the type by name.
        let names: [String: DType] = [
            "FLOAT": .float32, "UINT8": .uint8, "INT8": .int8, "UINT16": .uint16, "INT16": .int16,
            "INT32": .int32, "INT64": .int64, "STRING": .string, "BOOL": .bool, "FLOAT16": .float16,
            "DOUBLE": .float64, "UINT32": .uint32, "UINT64": .uint64, "BFLOAT16": .bfloat16,
        ]
        guard let d = names[s.uppercased()] else { throw ctx.attributeError("to", "unknown type name '\(s)'") }
        return d
    }
    guard let code = try ctx.int("to") else { throw ctx.attributeError("to", "required attribute is missing") }
    guard let d = DType(onnxCode: Int32(truncatingIfNeeded: code)), code > 0 else {
        throw ctx.attributeError("to", "unknown element type code \(code)")
    }
    return d
}

/// ONNX Cast of a whole tensor.
func castTensor(_ x: Tensor, to: DType, saturate: Bool) throws -> Tensor {
    if x.dtype == to { return x }
    if to == .string { return try castToString(x) }
    if x.dtype == .string { return try castFromString(x, to: to) }
    if x.dtype.isComputable && to.isComputable {
        if x.dtype == .float32 && to == .float16 {
            return try mapElements(x, .float16, Float.self, Float16.self) { Float16($0) }
        }
        if x.dtype == .float16 && to == .float32 {
            return try mapElements(x, .float32, Float16.self, Float.self) { Float($0) }
        }
        return try x.converted(to: to)
    }
    return try castExotic(x, to: to, saturate: saturate)
}

fileprivate struct ToStrings: ScalarTypeVisitor {
    let x: Tensor
    func visit<T: CastableScalar>(_: T.Type) throws -> [String] {
        let p = x.pointer(T.self)
        return (0..<x.count).map { i -> String in
            let v = p[i]
            switch T.kind {
            case .bool: return v.i64 != 0 ? "True" : "False"
            case .signed: return String(v.i64)
            case .unsigned: return String(v.u64)
            case .float:
                if T.dtype == .float64 { return formatFloat(v.f64, "\(v.f64)") }
                return formatFloat(v.f64, "\(Float(v.f64))")
            }
        }
    }
}

/// numpy-like spelling: "inf", "-inf", "nan"; integers as "1.0"; Swift's shortest round-trip digits.
fileprivate func formatFloat(_ v: Double, _ swiftText: String) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v > 0 ? "inf" : "-inf" }
    return swiftText
}

fileprivate func castToString(_ x: Tensor) throws -> Tensor {
    let src: Tensor
    if x.dtype.isComputable { src = x } else { src = try castExotic(x, to: .float32, saturate: true) }
    let strs = try src.dtype.visit(ToStrings(x: src))
    return Tensor(validShape: x.shape, strings: strs)
}

fileprivate func parseNumber(_ s: String) -> Double? {
    let t = s.trimmingCharacters(in: .whitespaces)
    if let d = Double(t) { return d }
    switch t.lowercased() {
    case "inf", "+inf", "infinity", "+infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    case "nan", "+nan", "-nan": return .nan
    case "true": return 1
    case "false": return 0
    default: return nil
    }
}

fileprivate struct FromStrings: ScalarTypeVisitor {
    let strs: [String]
    let shape: [Int]
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(T.dtype, shape)
        let d = out.pointer(T.self)
        for (i, s) in strs.enumerated() {
            let t = s.trimmingCharacters(in: .whitespaces)
            if T.kind == .signed, let v = Int64(t) { d[i] = T(i64: v); continue }
            if T.kind == .unsigned, let v = UInt64(t) { d[i] = T(u64: v); continue }
            guard let v = parseNumber(t) else { throw OpError("Cast: cannot parse '\(s)' as \(T.dtype)") }
            d[i] = T(f64: v)
        }
        return out
    }
}

fileprivate func castFromString(_ x: Tensor, to: DType) throws -> Tensor {
    let strs = x.storage.strings
    if to.isComputable { return try to.visit(FromStrings(strs: strs, shape: x.shape)) }
    let f = try FromStrings(strs: strs, shape: x.shape).visit(Float.self)
    return try castExotic(f, to: to, saturate: true)
}

// MARK: float8 / int4 / int2 / float4 / e8m0 (stored one element per byte)

/// Decodes one float8 byte of the given format.
func decodeFloat8(_ b: UInt8, _ fmt: DType) -> Float {
    let sign: Float = (b & 0x80) != 0 ? -1 : 1
    switch fmt {
    case .float8e4m3fn:
        if b & 0x7F == 0x7F { return .nan }
        let e = Int((b >> 3) & 0xF), m = Float(b & 0x7)
        return e == 0 ? sign * m * 0x1p-9 : sign * (1 + m / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    case .float8e4m3fnuz:
        if b == 0x80 { return .nan }
        let e = Int((b >> 3) & 0xF), m = Float(b & 0x7)
        return e == 0 ? sign * m * 0x1p-10 : sign * (1 + m / 8) * Float(sign: .plus, exponent: e - 8, significand: 1)
    case .float8e5m2:
        let e = Int((b >> 2) & 0x1F), m = Float(b & 0x3)
        if e == 31 { return m == 0 ? sign * .infinity : .nan }
        return e == 0 ? sign * m * 0x1p-16 : sign * (1 + m / 4) * Float(sign: .plus, exponent: e - 15, significand: 1)
    case .float8e5m2fnuz:
        if b == 0x80 { return .nan }
        let e = Int((b >> 2) & 0x1F), m = Float(b & 0x3)
        return e == 0 ? sign * m * 0x1p-17 : sign * (1 + m / 4) * Float(sign: .plus, exponent: e - 16, significand: 1)
    default:
        return .nan
    }
}

/// Every finite non-negative value of a small float format with its code, ascending.
fileprivate func positiveTable(_ fmt: DType) -> [(Float, UInt8)] {
    var t: [(Float, UInt8)] = []
    switch fmt {
    case .float4e2m1:
        let vals: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
        for (i, v) in vals.enumerated() { t.append((v, UInt8(i))) }
    default:
        for c in 0..<128 {
            let v = decodeFloat8(UInt8(c), fmt)
            if v.isFinite { t.append((v, UInt8(c))) }
        }
    }
    t.sort { $0.0 < $1.0 }
    return t
}

/// Encodes a float into a small float format: round to nearest even; out of range saturates to
/// the largest finite value when `saturate`, else gives inf (e5m2) or NaN.
fileprivate func encodeSmallFloat(_ v: Float, _ fmt: DType, _ table: [(Float, UInt8)], saturate: Bool) -> UInt8 {
    let hasNegZero = !(fmt == .float8e4m3fnuz || fmt == .float8e5m2fnuz)
    let signBit: UInt8 = fmt == .float4e2m1 ? 0x8 : 0x80
    let nanCode: UInt8
    switch fmt {
    case .float8e4m3fn: nanCode = 0x7F
    case .float8e5m2: nanCode = 0x7E
    case .float4e2m1: nanCode = 0x7  // no NaN: saturate to max (as the reference does)
    default: nanCode = 0x80
    }
    if v.isNaN {
        if fmt == .float4e2m1 { return 0x8 }  // no NaN in e2m1: the reference gives -0
        return hasNegZero && v.sign == .minus ? nanCode | 0x80 : nanCode
    }
    let neg = v.sign == .minus
    let a = Swift.abs(v)
    let maxV = table.last!.0
    var code: UInt8
    if a.isInfinite || a > maxV {
        // Values that round to max stay finite.
        let lastStep = maxV - table[table.count - 2].0
        if !a.isInfinite && a < maxV + lastStep / 2 {
            code = table.last!.1
        } else if a == maxV + lastStep / 2 && !a.isInfinite {
            code = (table.last!.1 & 1) == 0 ? table.last!.1 : (saturate ? table.last!.1 : 0)
            if code == 0 { return fmt == .float8e5m2 ? (neg ? 0xFC : 0x7C) : (hasNegZero ? nanCode | (neg ? 0x80 : 0) : nanCode) }
        } else if saturate || fmt == .float4e2m1 {
            code = table.last!.1
        } else {
            if fmt == .float8e5m2 { return neg ? 0xFC : 0x7C }
            return fmt == .float8e4m3fn ? (neg ? 0xFF : 0x7F) : nanCode
        }
    } else {
        // Binary search the nearest representable value.
        var lo = 0, hi = table.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if table[mid].0 <= a { lo = mid } else { hi = mid }
        }
        let (lv, lc) = table[lo], (hv, hc) = table[hi]
        if a <= lv { code = lc } else if a >= hv { code = hc } else {
            let dl = a - lv, dh = hv - a
            code = dl < dh ? lc : (dh < dl ? hc : ((lc & 1) == 0 ? lc : hc))
        }
    }
    if neg && (code != 0 || hasNegZero) { code |= signBit }
    return code
}

fileprivate func decodeExotic(_ b: UInt8, _ fmt: DType) -> Float {
    switch fmt {
    case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz: return decodeFloat8(b, fmt)
    case .float4e2m1:
        let vals: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
        let v = vals[Int(b & 0x7)]
        return (b & 0x8) != 0 ? -v : v
    case .float8e8m0:
        if b == 0xFF { return .nan }
        return Float(sign: .plus, exponent: Int(b) - 127, significand: 1)
    case .int4: return Float(Int8(bitPattern: (b & 0xF) << 4) >> 4)
    case .uint4: return Float(b & 0xF)
    case .int2: return Float(Int8(bitPattern: (b & 0x3) << 6) >> 6)
    case .uint2: return Float(b & 0x3)
    default: return .nan
    }
}

/// Casts where the source or the target is one of the byte-stored exotic types.
fileprivate func castExotic(_ x: Tensor, to: DType, saturate: Bool) throws -> Tensor {
    let n = x.count
    // Source: decode to float32 (int4/int2 sources decode exactly to integers).
    if !x.dtype.isComputable {
        switch x.dtype {
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float4e2m1, .float8e8m0,
             .int4, .uint4, .int2, .uint2: break
        default: throw ONNXError.unsupportedType("Cast from \(x.dtype)")
        }
        let f = try Tensor.uninitialized(.float32, x.shape)
        let s = x.pointer(UInt8.self), d = f.pointer(Float.self)
        let fmt = x.dtype
        for i in 0..<n { d[i] = decodeExotic(s[i], fmt) }
        if to == .float32 { return f }
        return try castTensor(f, to: to, saturate: saturate)
    }
    // Target: from a computable type through float32 (float64 -> float32 -> float8 can double-round;
    // the reference does the same for float16 sources).
    let srcF: Tensor
    if x.dtype == .float32 { srcF = x } else if x.dtype.isInteger && (to == .int4 || to == .uint4 || to == .int2 || to == .uint2) {
        srcF = x
    } else { srcF = try x.converted(to: .float32) }
    let out = try Tensor.uninitialized(to, x.shape)
    let d = out.pointer(UInt8.self)
    switch to {
    case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float4e2m1:
        let table = positiveTable(to)
        let s = srcF.pointer(Float.self)
        for i in 0..<n { d[i] = encodeSmallFloat(s[i], to, table, saturate: saturate) }
    case .float8e8m0:
        let s = srcF.pointer(Float.self)
        for i in 0..<n {
            let v = s[i]
            if v.isNaN || v.isInfinite || v <= 0 {
                d[i] = v.isNaN ? 0xFF : (v.isInfinite && v > 0 ? (saturate ? 0xFE : 0xFF) : 0)
                if v <= 0 && !v.isNaN && !(v.isInfinite && v > 0) { d[i] = 0 }
                continue
            }
            // Round up ("up" mode, the default): any nonzero mantissa bumps the exponent.
            let bits = v.bitPattern
            var e = Int((bits >> 23) & 0xFF)
            let mant = bits & 0x7FFFFF
            if e == 0 { e = 0 } else if mant != 0 { e += 1 }
            if e >= 255 { d[i] = saturate ? 0xFE : 0xFF } else { d[i] = UInt8(e) }
        }
    case .int4, .uint4, .int2, .uint2:
        let bits = (to == .int4 || to == .uint4) ? 4 : 2
        let signed = to == .int4 || to == .int2
        let vals = try srcF.readAsDoubles()
        let mask = UInt8((1 << bits) - 1)
        for i in 0..<n {
            // Truncate toward zero, then wrap into the low bits (as a C cast would).
            let v = vals[i]
            let iv: Int64 = v.isFinite ? Int64(Swift.max(Swift.min(v, 9.0e18), -9.0e18).rounded(.towardZero)) : 0
            var b = UInt8(truncatingIfNeeded: iv) & mask
            if signed && (b & (1 << UInt8(bits - 1))) != 0 { b |= ~mask }
            // Signed values are kept sign-extended in their byte, as the loader stores them.
            d[i] = b
        }
    default:
        throw ONNXError.unsupportedType("Cast to \(to)")
    }
    return out
}

// MARK: - rewrites owned by this family

/// The decomposed hard swish that exporters emit becomes one HardSwish node (which a preceding
/// Conv then fuses as its activation):
///   Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)  (also with Mul by 1/6, and the operands in either order)
///   Mul(x, HardSigmoid(x, alpha = 1/6, beta = 0.5))
/// The intermediate values must have no other reader.
struct FuseHardSwish: GraphPass {
    let name = "fuse-hard-swish"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        func single(_ v: String) -> Bool { uses[v] == 1 && !outputs.contains(v) }
        func scalar(_ name: String) -> Float? {
            guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
            return t.pointer(Float.self)[0]
        }
        func node(_ v: String, _ op: String) -> Int? {
            guard let i = producers[v], !removed.contains(i), graph.nodes[i].opType == op,
                  graph.nodes[i].isStandardDomain, graph.nodes[i].outputs.count == 1 else { return nil }
            return i
        }
        /// x when `v` is Clip(Add(x, 3), 0, 6) with single-use intermediates, and the nodes.
        func clipOfAdd3(_ v: String) -> (String, [Int])? {
            guard single(v), let ci = node(v, "Clip") else { return nil }
            let clip = graph.nodes[ci]
            var lo: Float? = nil, hi: Float? = nil
            if clip.inputs.count >= 3 {
                lo = scalar(clip.inputs[1]); hi = scalar(clip.inputs[2])
            } else if case .float(let a)? = clip.attributes["min"], case .float(let b)? = clip.attributes["max"] {
                lo = a; hi = b
            }
            guard lo == 0, hi == 6, let ai = node(clip.inputs[0], "Add"), single(clip.inputs[0]) else { return nil }
            let add = graph.nodes[ai]
            guard add.inputs.count == 2 else { return nil }
            for k in 0..<2 where scalar(add.inputs[1 - k]) == 3 { return (add.inputs[k], [ci, ai]) }
            return nil
        }
        for (ni, top) in graph.nodes.enumerated() where top.isStandardDomain && top.inputs.count == 2 && top.outputs.count == 1 {
            if removed.contains(ni) { continue }
            var x: String? = nil
            var dead: [Int] = []
            if top.opType == "Div" || top.opType == "Mul" {
                // Div(m, 6) / Mul(m, 1/6) with m = Mul(x, Clip(Add(x, 3), 0, 6))
                for k in 0..<2 {
                    if top.opType == "Div" && k == 1 { break }
                    guard let c = scalar(top.inputs[1 - k]),
                          top.opType == "Div" ? c == 6 : abs(c - 1.0 / 6.0) < 1e-7,
                          single(top.inputs[k]), let mi = node(top.inputs[k], "Mul") else { continue }
                    let mul = graph.nodes[mi]
                    guard mul.inputs.count == 2 else { continue }
                    for j in 0..<2 {
                        if let (xx, nodes) = clipOfAdd3(mul.inputs[1 - j]), xx == mul.inputs[j] {
                            x = xx
                            dead = nodes + [mi]
                            break
                        }
                    }
                    if x != nil { break }
                }
                // Mul(x, HardSigmoid(x, 1/6, 0.5))
                if x == nil && top.opType == "Mul" {
                    for k in 0..<2 {
                        guard single(top.inputs[1 - k]), let hi = node(top.inputs[1 - k], "HardSigmoid") else { continue }
                        let hs = graph.nodes[hi]
                        var alpha: Float = 0.2, beta: Float = 0.5
                        if case .float(let a)? = hs.attributes["alpha"] { alpha = a }
                        if case .float(let b)? = hs.attributes["beta"] { beta = b }
                        if hs.inputs.first == top.inputs[k] && abs(alpha - 1.0 / 6.0) < 1e-6 && beta == 0.5 {
                            x = top.inputs[k]
                            dead = [hi]
                            break
                        }
                    }
                }
            }
            guard let input = x else { continue }
            graph.nodes[ni] = Node(name: top.name, opType: "HardSwish", domain: "", inputs: [input],
                                   outputs: top.outputs, attributes: [:])
            removed.formUnion(dead)
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}

/// SiLU written out, Mul(x, Sigmoid(x)) in either operand order (Llama's MLP gate, YOLO's
/// activations), becomes Swish(x) with alpha 1: one pass over x instead of two, and an activation the
/// dense-layer epilogue takes. The Sigmoid's result must be read only by the Mul; x is float32.
struct FuseSiLU: GraphPass {
    let name = "fuse-silu"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        var changed = false
        for i in graph.nodes.indices where !removed.contains(i) {
            let m = graph.nodes[i]
            guard m.isStandardDomain, m.opType == "Mul", m.inputs.count == 2, m.outputs.count == 1 else { continue }
            for (x, s) in [(m.inputs[0], m.inputs[1]), (m.inputs[1], m.inputs[0])] {
                guard !x.isEmpty, uses[s] == 1, !outputs.contains(s), let si = producers[s], !removed.contains(si) else { continue }
                let sig = graph.nodes[si]
                guard sig.isStandardDomain, sig.opType == "Sigmoid", sig.inputs == [x], sig.outputs.count == 1,
                      graph.infoOrConstant(of: x)?.type == .float32 else { continue }
                graph.nodes[i] = Node(name: m.name, opType: "Swish", domain: "", inputs: [x], outputs: m.outputs,
                                      attributes: ["alpha": .float(1)])
                removed.insert(si)
                changed = true
                break
            }
        }
        graph.removeNodes(at: removed)
        return changed
    }
}

/// GELU written out as its formula, as PyTorch's exporters emit it, becomes one Gelu node (one pass
/// over the tensor instead of five):
///   exact: 0.5 * x * (1 + Erf(x / sqrt 2))            (Div by sqrt 2 or Mul by 1/sqrt 2)
///   tanh:  0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))   (x^3 as Pow(x, 3) or x * x * x)
/// in any order of the three factors (0.5, x and the bracket) and of each op's operands. Every
/// intermediate must be read only inside the pattern.
struct FuseGelu: GraphPass {
    let name = "fuse-gelu"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        func single(_ v: String) -> Bool { uses[v] == 1 && !outputs.contains(v) }
        func scalar(_ name: String) -> Float? {
            guard let t = graph.initializers[name], t.dtype == .float32, t.count == 1 else { return nil }
            return t.pointer(Float.self)[0]
        }
        func near(_ v: Float?, _ want: Float) -> Bool { v.map { abs($0 - want) <= 1e-5 * abs(want) } ?? false }
        /// The producer of v when it is a single-use standard op of this type with two inputs (one for unary ops).
        func node(_ v: String, _ op: String) -> Node? {
            guard single(v), let i = producers[v], !removed.contains(i), graph.nodes[i].opType == op,
                  graph.nodes[i].isStandardDomain, graph.nodes[i].outputs.count == 1 else { return nil }
            return graph.nodes[i]
        }
        func index(_ v: String) -> Int { producers[v]! }
        /// (a, b) operand orders of a binary node.
        func orders(_ n: Node) -> [(String, String)] {
            n.inputs.count == 2 ? [(n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])] : []
        }
        /// x * c with a scalar c, as Mul.
        func scaled(_ v: String, by c: Float) -> (String, [Int])? {
            guard let m = node(v, "Mul") else { return nil }
            for (a, b) in orders(m) where near(scalar(b), c) { return (a, [index(v)]) }
            return nil
        }
        /// x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x).
        func cube(_ v: String) -> (String, [Int])? {
            if let p = node(v, "Pow"), p.inputs.count == 2, scalar(p.inputs[1]) == 3 { return (p.inputs[0], [index(v)]) }
            if let m = node(v, "Mul") {
                for (a, b) in orders(m) {
                    if let sq = node(b, "Mul"), sq.inputs.count == 2, sq.inputs[0] == a, sq.inputs[1] == a { return (a, [index(v), index(b)]) }
                }
            }
            return nil
        }
        /// (x, nodes, approximate) when v is 1 + Erf(x / sqrt 2) or 1 + Tanh(sqrt(2/pi) * (x + 0.044715 x^3)).
        func bracket(_ v: String) -> (String, [Int], String)? {
            guard let add = node(v, "Add") else { return nil }
            for (a, one) in orders(add) where scalar(one) == 1 {
                if let erf = node(a, "Erf"), let arg = erf.inputs.first {
                    if let d = node(arg, "Div"), d.inputs.count == 2, near(scalar(d.inputs[1]), 1.4142135) {
                        return (d.inputs[0], [index(v), index(a), index(arg)], "none")
                    }
                    if let (x, n) = scaled(arg, by: 0.70710677) { return (x, [index(v), index(a)] + n, "none") }
                }
                if let th = node(a, "Tanh"), let arg = th.inputs.first, let (inner, n1) = scaled(arg, by: 0.7978846),
                   let sum = node(inner, "Add") {
                    for (x, c) in orders(sum) {
                        guard let (cu, n2) = scaled(c, by: 0.044715), let (x3, n3) = cube(cu), x3 == x else { continue }
                        return (x, [index(v), index(a)] + n1 + [index(inner)] + n2 + n3, "tanh")
                    }
                }
            }
            return nil
        }
        for (ni, top) in graph.nodes.enumerated() where top.opType == "Mul" && top.isStandardDomain && top.inputs.count == 2 && top.outputs.count == 1 {
            if removed.contains(ni) { continue }
            var found: (String, [Int], String)? = nil
            for (a, b) in orders(top) where found == nil {
                // (x * bracket) * 0.5, (bracket * 0.5) * x or (x * 0.5) * bracket, with a the product.
                guard let m = node(a, "Mul") else { continue }
                for (p, q) in orders(m) where found == nil {
                    if near(scalar(b), 0.5), let (x, n, ap) = bracket(q), x == p { found = (x, n + [index(a)], ap) }
                    else if near(scalar(q), 0.5), let (x, n, ap) = bracket(p), x == b { found = (x, n + [index(a)], ap) }
                    else if near(scalar(q), 0.5), p != b, let (x, n, ap) = bracket(b), x == p { found = (x, n + [index(a)], ap) }
                }
            }
            guard let (x, dead, approximate) = found, Set(dead).isDisjoint(with: removed) else { continue }
            graph.nodes[ni] = Node(name: top.name, opType: "Gelu", domain: "", inputs: [x], outputs: top.outputs,
                                   attributes: approximate == "tanh" ? ["approximate": .string("tanh")] : [:])
            removed.formUnion(dead)
            changed = true
        }
        if changed {
            graph.removeNodes(at: removed)
            graph.pruneUnusedInitializers()
        }
        return changed
    }
}
