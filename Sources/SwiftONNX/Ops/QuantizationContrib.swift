import CKernels
import Foundation

/// The com.microsoft quantized ops that onnxruntime's quantization tools write in the QOperator
/// format: QLinearAdd, QLinearMul, QLinearConcat, QLinearGlobalAveragePool, QLinearAveragePool,
/// QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax and QGemm; and MatMulNBits, the weight-only
/// block quantization (2, 4 or 8 bits) small language models ship in.
///
/// Every op computes as ONNX Runtime's CPU kernels do: dequantize, compute in float32, quantize
/// with round-half-to-even and saturation, in ORT's order of float operations where it matters.
/// Checked against ORT 1.32 (exhaustively over byte pairs for Add and Mul and over the 256 values
/// for the tables, on random and tie-heavy cases for the rest; the test cases come from
/// Tests/SwiftONNXTests/Resources/make_quantization_contrib.py): Mul, Sigmoid, LeakyRelu, Concat,
/// GlobalAveragePool, AveragePool and QGemm (u8u8, s8s8) give ORT's bytes. Add is off by one step
/// in about one element in a million, next to a tie (ORT's exact order of fused float operations
/// was not found). Softmax is within one step: ORT sums a table of exponentials its own way
/// (equal bytes for the usual y_scale 1/256). QGemm with u8 A and s8 B is exact here, while ORT's
/// AVX2 kernel saturates pairs of products to int16 and can be far off.
func registerQuantizationContribOps(_ r: inout OpRegistry) {
    let ms = "com.microsoft"
    let binary = Inference { _, ins in
        [TypeInfo(dtype: ins.dtype(0), shape: [ins.at(0), ins.at(3)].broadcastShape())]
    }
    r.register("QLinearAdd", domain: ms, infer: binary) { _ in
        return { inputs, _ in [try qlinearBinary(inputs, add: true)] }
    }
    // SwiftONNX's own: QLinearAdd whose sum then goes through Relu (relu = 1), from LowerQDQBinary.
    r.register("QLinearAdd", domain: "com.swiftonnx", infer: binary) { ctx in
        let relu = try ctx.int("relu", default: 0) != 0
        return { inputs, _ in [try qlinearBinary(inputs, add: true, relu: relu)] }
    }
    r.register("QLinearMul", domain: ms, infer: binary) { _ in
        return { inputs, _ in [try qlinearBinary(inputs, add: false)] }
    }
    r.register("MatMulNBits", domain: ms, infer: Inference { ctx, ins in
        let n = try ctx.int("N")
        guard let a = ins.shape(0), !a.isEmpty, let n else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
        return [TypeInfo(dtype: ins.dtype(0), shape: Array(a.dropLast()) + [.known(n)])]
    }) { ctx in try makeMatMulNBits(ctx) }
    r.register("QLinearSigmoid", domain: ms, infer: .sameAsFirst) { _ in
        return { inputs, _ in
            [try qlinearUnary(inputs, "QLinearSigmoid") { v in 1 / (1 + Foundation.exp(-v)) }]
        }
    }
    r.register("QLinearLeakyRelu", domain: ms, infer: .sameAsFirst) { ctx in
        let alpha = try ctx.float("alpha", default: 0.01)
        return { inputs, _ in
            [try qlinearUnary(inputs, "QLinearLeakyRelu") { v in v >= 0 ? v : v * alpha }]
        }
    }
    r.register("QLinearSoftmax", domain: ms, infer: .sameAsFirst, closure: makeQLinearSoftmax)
    r.register("QLinearGlobalAveragePool", domain: ms, infer: Inference { ctx, ins in
        guard let s = ins.shape(0), s.count >= 3 else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
        let ones = [Dim](repeating: .known(1), count: s.count - 2)
        let channelsLast = try ctx.int("channels_last", default: 0) != 0
        return [TypeInfo(dtype: ins.dtype(0), shape: channelsLast ? [s[0]] + ones + [s[s.count - 1]] : [s[0], s[1]] + ones)]
    }, closure: makeQLinearGlobalAveragePool)
    r.register("QLinearAveragePool", domain: ms, infer: Inference { ctx, ins in
        guard let x = ins.shape(0), x.count >= 3 else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
        let channelsLast = try ctx.int("channels_last", default: 0) != 0
        let n = x[0], c = channelsLast ? x[x.count - 1] : x[1]
        let spatialDims = channelsLast ? Array(x[1..<(x.count - 1)]) : Array(x.dropFirst(2))
        let spatial = spatialDims.compactMap(\.value)
        var out = [Dim](repeating: .unknown, count: spatialDims.count)
        if spatial.count == spatialDims.count {
            out = try PoolAttrs(ctx).geometry([1, 1] + spatial).out.map { .known($0) }
        }
        return [TypeInfo(dtype: ins.dtype(0), shape: channelsLast ? [n] + out + [c] : [n, c] + out)]
    }, closure: makeQLinearAveragePool)
    r.register("QLinearConcat", domain: ms, infer: Inference { ctx, ins in
        // Inputs: Y_scale, Y_zero_point, then (tensor, scale, zero point) per concatenated tensor.
        let shapes = stride(from: 2, to: ins.count, by: 3).map { ins.shape($0) }
        guard let first = shapes.first ?? nil, !shapes.contains(where: { $0 == nil || $0!.count != first.count }),
              let axis = try? normalizeAxis(try ctx.int("axis", default: 0), rank: first.count)
        else { return [TypeInfo(dtype: ins.dtype(1), shape: nil)] }
        var out = first
        let sizes = shapes.map { $0![axis].value }
        out[axis] = sizes.contains(where: { $0 == nil }) ? .unknown : .known(sizes.reduce(0) { $0 + $1! })
        return [TypeInfo(dtype: ins.dtype(1), shape: out)]
    }, closure: makeQLinearConcat)
    r.register("QGemm", domain: ms, infer: Inference { ctx, ins in
        let quantized = ctx.hasInput(7)
        let dtype = quantized ? (ins.dtype(8) ?? ins.dtype(0)) : .float32
        guard let a = ins.shape(0), let b = ins.shape(3), a.count == 2, b.count == 2 else { return [TypeInfo(dtype: dtype, shape: nil)] }
        let ta = try ctx.int("transA", default: 0) != 0, tb = try ctx.int("transB", default: 0) != 0
        return [TypeInfo(dtype: dtype, shape: [ta ? a[1] : a[0], tb ? b[0] : b[1]])]
    }, closure: makeQGemm)
}

// MARK: - quantization parameters

/// A per-tensor scale and zero point, read and checked.
private struct QuantParams {
    var scale: Float
    var zeroPoint: Int32
}

/// The 8-bit element type of `x` (uint8 or int8), or an error naming the op and the input.
private func eightBitType(_ x: Tensor, _ op: String, _ what: String) throws -> DType {
    guard x.dtype == .uint8 || x.dtype == .int8 else {
        throw OpError("\(op): \(what) must be uint8 or int8, got \(x.dtype)")
    }
    return x.dtype
}

/// The scale at input `si` and the zero point at input `zi` (0 when absent and not `zeroPointRequired`):
/// both scalars, the scale a float, the zero point of type `dtype`.
private func quantParams(_ inputs: [Tensor?], scale si: Int, zeroPoint zi: Int, dtype: DType, _ op: String,
                         _ what: String, zeroPointRequired: Bool = false) throws -> QuantParams {
    let s = try inputs.required(si, "\(what)_scale")
    guard s.dtype.isFloatingPoint else { throw OpError("\(op): \(what)_scale must be a float tensor, got \(s.dtype)") }
    guard s.count == 1 else { throw OpError("\(op): \(what)_scale must be a scalar, got shape \(describeShape(s.shape))") }
    let scale = try floatValues(s)[0]
    var zp: Int32 = 0
    if let z = inputs.optional(zi) {
        guard z.dtype == dtype else { throw OpError("\(op): \(what)_zero_point type \(z.dtype) differs from \(dtype)") }
        guard z.count == 1 else { throw OpError("\(op): \(what)_zero_point must be a scalar, got shape \(describeShape(z.shape))") }
        zp = try int32Values(z, op)[0]
    } else if zeroPointRequired {
        throw OpError("\(op): required \(what)_zero_point #\(zi) is missing")
    }
    return QuantParams(scale: scale, zeroPoint: zp)
}

/// `v` rounded half to even and saturated to [lo, hi] (bounds that are integers below 2^22 in
/// magnitude); NaN (a zero scale) gives lo. Adding and subtracting 1.5 * 2^23 rounds to an integer
/// in the default rounding mode without a libm call.
@inline(__always)
private func roundSaturate(_ v: Float, _ lo: Float, _ hi: Float) -> Int32 {
    var c = v
    if !(c >= lo) { c = lo }
    if c > hi { c = hi }
    return Int32((c + 12_582_912) - 12_582_912)
}

/// `v` rounded half to even, plus the zero point `zp`, saturated to [lo, hi]: QuantizeLinear's
/// order (the zero point is added to the rounded value), which ORT's tables (Sigmoid, LeakyRelu,
/// Concat), global pooling and GEMM requantization follow. QLinearAdd, QLinearMul and
/// QLinearAveragePool add it before rounding, as ORT does (a tie x.5 then rounds by the parity
/// of x + zp, not of x; checked against ORT on inputs made of ties).
@inline(__always)
private func quantizeByte(_ v: Float, _ zp: Float, _ lo: Float, _ hi: Float) -> UInt8 {
    UInt8(truncatingIfNeeded: roundSaturate(v, lo - zp, hi - zp) + Int32(zp))
}

/// Saturation bounds of an 8-bit type as floats.
@inline(__always)
private func bounds(_ dt: DType) -> (Float, Float) { dt == .int8 ? (-128, 127) : (0, 255) }

/// The 8-bit value whose bit pattern is `byte` in type `dt`, as a Float.
@inline(__always)
private func byteValue(_ byte: UInt8, _ dt: DType) -> Float {
    dt == .int8 ? Float(Int8(bitPattern: byte)) : Float(byte)
}

/// A 256-entry table mapping each input byte to the output byte `quantize(f(dequantize(x)))`.
private func lookupTable(_ dt: DType, _ x: QuantParams, _ y: QuantParams, _ f: (Float) -> Float) -> [UInt8] {
    let (lo, hi) = bounds(dt)
    let yz = Float(y.zeroPoint)
    return (0..<256).map { i in
        let v = f((byteValue(UInt8(i), dt) - Float(x.zeroPoint)) * x.scale)
        return quantizeByte(v / y.scale, yz, lo, hi)
    }
}

/// Applies a 256-entry byte table to every element of `x` (QLinearSigmoid, QLinearLeakyRelu, LookupTable).
func applyTable(_ x: Tensor, _ table: [UInt8]) throws -> Tensor {
    let y = try Tensor.uninitialized(x.dtype, x.shape)
    precondition(table.count == 256)
    so_u8_lookup(x.pointer(UInt8.self), x.count, table, y.pointer(UInt8.self), selectedISA)
    return y
}

// MARK: - element-wise

/// QLinearSigmoid / QLinearLeakyRelu: X, X_scale, X_zero_point?, Y_scale, Y_zero_point?. A lookup
/// table over the 256 input values, each dequantized, mapped by `f` in float32 and quantized, as
/// ORT does (its tables match these byte for byte).
private func qlinearUnary(_ inputs: [Tensor?], _ op: String, _ f: (Float) -> Float) throws -> Tensor {
    let x = try inputs.required(0, "X")
    let dt = try eightBitType(x, op, "X")
    let xp = try quantParams(inputs, scale: 1, zeroPoint: 2, dtype: dt, op, "X")
    let yp = try quantParams(inputs, scale: 3, zeroPoint: 4, dtype: dt, op, "Y")
    return try applyTable(x, lookupTable(dt, xp, yp, f))
}

/// QLinearAdd / QLinearMul: A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale,
/// C_zero_point?, numpy broadcasting of A and B.
///
/// Add: `ra·a + (rb·b + bias)` with ra = A_scale / C_scale, rb = B_scale / C_scale and
/// bias = C_zp - ra·A_zp - rb·B_zp folded once, each step a fused multiply-add (ORT's kernel uses
/// FMA; of the orders tried this one is closest to its bytes). Mul: `(A_scale·B_scale / C_scale)·((a - A_zp)·(b - B_zp)) + C_zp`.
///
/// relu: the result of Relu on the sum, quantized: quantize(max(v, 0)) = max(quantize(v), C_zp),
/// rounding being monotonic and 0 quantizing to C_zp, so the lower bound becomes C_zp.
private func qlinearBinary(_ inputs: [Tensor?], add: Bool, relu: Bool = false) throws -> Tensor {
    let op = add ? "QLinearAdd" : "QLinearMul"
    let a = try inputs.required(0, "A"), b = try inputs.required(3, "B")
    let dt = try eightBitType(a, op, "A")
    guard b.dtype == dt else { throw OpError("\(op): B's type \(b.dtype) differs from A's \(dt)") }
    let ap = try quantParams(inputs, scale: 1, zeroPoint: 2, dtype: dt, op, "A")
    let bp = try quantParams(inputs, scale: 4, zeroPoint: 5, dtype: dt, op, "B")
    let cp = try quantParams(inputs, scale: 6, zeroPoint: 7, dtype: dt, op, "C")
    let outShape: [Int]
    do { outShape = try broadcastShapes(a.shape, b.shape) } catch {
        throw OpError("\(op): shapes \(describeShape(a.shape)) and \(describeShape(b.shape)) cannot be broadcast together")
    }
    let y = try Tensor.uninitialized(dt, outShape)
    if y.count == 0 { return y }
    var (lo, hi) = bounds(dt)
    if relu { lo = max(lo, Float(cp.zeroPoint)) }
    let kernel: BinaryRowKernel
    if add {
        let ra = ap.scale / cp.scale, rb = bp.scale / cp.scale
        let bias = fusedMultiplyAdd(-ra, Float(ap.zeroPoint), fusedMultiplyAdd(-rb, Float(bp.zeroPoint), Float(cp.zeroPoint)))
        kernel = dt == .int8 ? addRow(Int8.self, ra, rb, bias, lo, hi) : addRow(UInt8.self, ra, rb, bias, lo, hi)
    } else {
        let ratio = ap.scale * bp.scale / cp.scale
        let az = Float(ap.zeroPoint), bz = Float(bp.zeroPoint), cz = Float(cp.zeroPoint)
        kernel = dt == .int8 ? mulRow(Int8.self, ratio, az, bz, cz, lo, hi) : mulRow(UInt8.self, ratio, az, bz, cz, lo, hi)
    }
    forEachBroadcastRow(outShape, broadcastStrides(a.shape, to: outShape), broadcastStrides(b.shape, to: outShape)) { o, ao, bo, aStep, bStep, n in
        kernel(a.raw + ao, aStep, b.raw + bo, bStep, y.pointer(UInt8.self) + o, n)
    }
    return y
}

/// Computes `n` outputs from `n` elements of A and of B read with the given steps (0: one element repeated).
private typealias BinaryRowKernel = (UnsafeRawPointer, Int, UnsafeRawPointer, Int, UnsafeMutablePointer<UInt8>, Int) -> Void

/// x·y + z rounded once to Float, as a fused multiply-add does. With y an 8-bit integer (or a
/// float holding one) x·y is exact in Double (at most 24 + 9 significant bits), and so is its sum
/// with z unless their magnitudes are more than about 2^20 apart; the one rounding to Float is
/// then the fused result (otherwise a double rounding may differ from it in the last bit).
@inline(__always)
private func fusedMultiplyAdd(_ x: Float, _ y: Float, _ z: Float) -> Float {
    Float(Double(x) * Double(y) + Double(z))
}

private func addRow<T: FixedWidthInteger>(_: T.Type, _ ra: Float, _ rb: Float, _ bias: Float,
                                          _ lo: Float, _ hi: Float) -> BinaryRowKernel {
    return { ap, aStep, bp, bStep, y, n in
        if (aStep == 0 || aStep == 1) && (bStep == 0 || bStep == 1) {   // the vector kernel, true fused multiply-adds
            so_q8_binary_row(0, ap, aStep, bp, bStep, T.isSigned ? 1 : 0, ra, rb, bias, 0, lo, hi, y, n, selectedISA)
            return
        }
        let a = ap.assumingMemoryBound(to: T.self), b = bp.assumingMemoryBound(to: T.self)
        if aStep == 1 && bStep == 1 {
            for i in 0..<n {
                let v = fusedMultiplyAdd(ra, Float(a[i]), fusedMultiplyAdd(rb, Float(b[i]), bias))
                y[i] = UInt8(truncatingIfNeeded: roundSaturate(v, lo, hi))
            }
        } else if bStep == 0 {
            let inner = fusedMultiplyAdd(rb, Float(b[0]), bias)
            for i in 0..<n {
                y[i] = UInt8(truncatingIfNeeded: roundSaturate(fusedMultiplyAdd(ra, Float(a[i * aStep]), inner), lo, hi))
            }
        } else {
            for i in 0..<n {
                let v = fusedMultiplyAdd(ra, Float(a[i * aStep]), fusedMultiplyAdd(rb, Float(b[i * bStep]), bias))
                y[i] = UInt8(truncatingIfNeeded: roundSaturate(v, lo, hi))
            }
        }
    }
}

private func mulRow<T: FixedWidthInteger>(_: T.Type, _ ratio: Float, _ az: Float, _ bz: Float, _ cz: Float,
                                          _ lo: Float, _ hi: Float) -> BinaryRowKernel {
    return { ap, aStep, bp, bStep, y, n in
        if (aStep == 0 || aStep == 1) && (bStep == 0 || bStep == 1) {   // the vector kernel, the same roundings
            so_q8_binary_row(1, ap, aStep, bp, bStep, T.isSigned ? 1 : 0, ratio, az, bz, cz, lo, hi, y, n, selectedISA)
            return
        }
        let a = ap.assumingMemoryBound(to: T.self), b = bp.assumingMemoryBound(to: T.self)
        if aStep == 1 && bStep == 1 {
            for i in 0..<n {
                let v = ratio * ((Float(a[i]) - az) * (Float(b[i]) - bz)) + cz
                y[i] = UInt8(truncatingIfNeeded: roundSaturate(v, lo, hi))
            }
        } else {
            for i in 0..<n {
                let v = ratio * ((Float(a[i * aStep]) - az) * (Float(b[i * bStep]) - bz)) + cz
                y[i] = UInt8(truncatingIfNeeded: roundSaturate(v, lo, hi))
            }
        }
    }
}

/// Calls `body(outOffset, aOffset, bOffset, aStep, bStep, n)` for each run of `n` consecutive
/// outputs whose operands advance by a fixed step (0 along a broadcast dimension). Trailing
/// dimensions that both operands read contiguously (or both repeat) merge into one run.
private func forEachBroadcastRow(_ outShape: [Int], _ aStrides: [Int], _ bStrides: [Int],
                                 _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
    var shape = outShape, sa = aStrides, sb = bStrides
    // Merge dimension d into d+1 (the inner one) while the strides stay linear.
    var d = shape.count - 2
    while d >= 0 {
        let inner = shape[d + 1]
        if sa[d] == sa[d + 1] * inner && sb[d] == sb[d + 1] * inner {
            shape[d + 1] *= shape[d]
            shape.remove(at: d); sa.remove(at: d); sb.remove(at: d)
        }
        d -= 1
    }
    let rank = shape.count
    if rank == 0 { body(0, 0, 0, 0, 0, 1); return }
    let n = shape[rank - 1], aStep = sa[rank - 1], bStep = sb[rank - 1]
    let rows = shape.dropLast().reduce(1, *)
    var idx = [Int](repeating: 0, count: rank)
    var ao = 0, bo = 0
    for r in 0..<rows {
        body(r * n, ao, bo, aStep, bStep, n)
        var k = rank - 2
        while k >= 0 {
            idx[k] += 1
            ao += sa[k]; bo += sb[k]
            if idx[k] < shape[k] { break }
            ao -= sa[k] * shape[k]; bo -= sb[k] * shape[k]
            idx[k] = 0
            k -= 1
        }
    }
}

// MARK: - softmax

/// QLinearSoftmax: X, X_scale, x_zero_point?, y_scale, y_zero_point. Softmax along `axis`
/// (opset >= 13), or over the input coerced to 2-D at `axis` (opset < 13). The exponentials come
/// from a table over the 256 distances to the row's maximum, exp(-X_scale·d); outputs are within
/// one step of ORT's (its own table and summation order; equal for the usual y_scale 1/256).
private func makeQLinearSoftmax(_ ctx: OpContext) throws -> OpBody {
    let axisAttr = try ctx.int("axis", default: -1)
    guard let opset = try ctx.int("opset") else { throw ctx.attributeError("opset", "required attribute is missing") }
    let op = "QLinearSoftmax"
    return { inputs, _ in
        let x = try inputs.required(0, "X")
        let dt = try eightBitType(x, op, "X")
        let xp = try quantParams(inputs, scale: 1, zeroPoint: 2, dtype: dt, op, "X")
        let yp = try quantParams(inputs, scale: 3, zeroPoint: 4, dtype: dt, op, "Y")
        let axis = try normalizeAxis(axisAttr, rank: x.rank, scalarAllowed: true)
        let y = try Tensor.uninitialized(dt, x.shape)
        if x.count == 0 { return [y] }
        let dims = x.rank == 0 ? [1] : x.shape
        let outer = dims[..<axis].reduce(1, *)
        let n = opset >= 13 ? dims[axis] : dims[axis...].reduce(1, *)
        let inner = opset >= 13 ? dims[(axis + 1)...].reduce(1, *) : 1
        var table = [Float](repeating: 0, count: 256)
        for d in 0..<256 { table[d] = Foundation.exp(-(Float(d) * xp.scale)) }
        let (lo, hi) = bounds(dt)
        let yz = Float(yp.zeroPoint)
        // Signed bytes compare as unsigned once their sign bit is flipped; distances stay the same.
        let flip: UInt8 = dt == .int8 ? 0x80 : 0
        let src = x.pointer(UInt8.self), dst = y.pointer(UInt8.self)
        table.withUnsafeBufferPointer { t in
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * n * inner + i
                    var m: UInt8 = 0
                    for k in 0..<n { m = Swift.max(m, src[base + k * inner] ^ flip) }
                    var sum: Float = 0
                    for k in 0..<n { sum += t[Int(m - (src[base + k * inner] ^ flip))] }
                    let scale = 1 / (sum * yp.scale)
                    for k in 0..<n {
                        let e = t[Int(m - (src[base + k * inner] ^ flip))]
                        dst[base + k * inner] = quantizeByte(e * scale, yz, lo, hi)
                    }
                }
            }
        }
        return [y]
    }
}

// MARK: - pooling

/// QLinearGlobalAveragePool: X, x_scale, x_zero_point, y_scale, y_zero_point; NCHW (N x C x D1...)
/// or, with channels_last, N x D1... x C. The integer sum of each channel, less size·x_zp, times
/// x_scale / (y_scale·size) in float32, plus y_zp: ORT's bytes.
private func makeQLinearGlobalAveragePool(_ ctx: OpContext) throws -> OpBody {
    let channelsLast = try ctx.int("channels_last", default: 0) != 0
    let op = "QLinearGlobalAveragePool"
    return { inputs, _ in
        let x = try inputs.required(0, "X")
        let dt = try eightBitType(x, op, "X")
        guard x.rank >= 3 else { throw OpError("\(op): X must have rank >= 3 (N, C and spatial dims), got \(describeShape(x.shape))") }
        let xp = try quantParams(inputs, scale: 1, zeroPoint: 2, dtype: dt, op, "x")
        let yp = try quantParams(inputs, scale: 3, zeroPoint: 4, dtype: dt, op, "y")
        let batch = x.shape[0]
        let c = channelsLast ? x.shape[x.rank - 1] : x.shape[1]
        let size = channelsLast ? x.shape[1..<(x.rank - 1)].reduce(1, *) : x.shape[2...].reduce(1, *)
        let ones = [Int](repeating: 1, count: x.rank - 2)
        let y = try Tensor.uninitialized(dt, channelsLast ? [batch] + ones + [c] : [batch, c] + ones)
        if y.count == 0 { return [y] }
        guard size > 0 else { throw OpError("\(op): X has no spatial elements (shape \(describeShape(x.shape)))") }
        let scale = xp.scale / (yp.scale * Float(size))
        let (lo, hi) = bounds(dt)
        let yz = Float(yp.zeroPoint)
        let bias = Int(xp.zeroPoint) * size
        var sums = [Int](repeating: 0, count: batch * c)
        func accumulate<T: FixedWidthInteger>(_: T.Type) {
            let src = x.pointer(T.self)
            if channelsLast {
                for b in 0..<batch {
                    for s in 0..<size {
                        let row = src + (b * size + s) * c
                        for k in 0..<c { sums[b * c + k] += Int(row[k]) }
                    }
                }
            } else {
                for p in 0..<(batch * c) {
                    let plane = src + p * size
                    var acc = 0
                    for s in 0..<size { acc += Int(plane[s]) }
                    sums[p] = acc
                }
            }
        }
        if dt == .int8 { accumulate(Int8.self) } else { accumulate(UInt8.self) }
        let dst = y.pointer(UInt8.self)
        for i in 0..<(batch * c) {   // both layouts store channel k of image b at b·c + k
            dst[i] = quantizeByte(scale * Float(sums[i] - bias), yz, lo, hi)
        }
        return [y]
    }
}

/// QLinearAveragePool: X, x_scale, x_zero_point?, y_scale, y_zero_point?; the attributes of
/// AveragePool plus channels_last. As ORT does: the dequantized values of each window summed in
/// float32 (depth, row, column order), divided by the window's size, divided by y_scale, plus
/// y_zero_point, rounded (ORT's bytes, ties included). With
/// count_include_pad the size is the whole kernel, also for a ceil_mode window that hangs over
/// the padded input (ORT's float AveragePool counts only the padded extent there; this op does not).
private func makeQLinearAveragePool(_ ctx: OpContext) throws -> OpBody {
    let attrs = try PoolAttrs(ctx)
    let includePad = try ctx.int("count_include_pad", default: 0) != 0
    let channelsLast = try ctx.int("channels_last", default: 0) != 0
    let op = "QLinearAveragePool"
    let kernelSize = Float(attrs.kernel.reduce(1, *))
    return { inputs, _ in
        let x = try inputs.required(0, "X")
        let dt = try eightBitType(x, op, "X")
        guard x.rank >= 3 else { throw OpError("\(op): X must have rank >= 3, got \(describeShape(x.shape))") }
        let xp = try quantParams(inputs, scale: 1, zeroPoint: 2, dtype: dt, op, "x")
        let yp = try quantParams(inputs, scale: 3, zeroPoint: 4, dtype: dt, op, "y")
        let batch = x.shape[0]
        let c = channelsLast ? x.shape[x.rank - 1] : x.shape[1]
        let spatial = channelsLast ? Array(x.shape[1..<(x.rank - 1)]) : Array(x.shape.dropFirst(2))
        let (outSpatial, tables) = try attrs.geometry([batch, c] + spatial)
        let y = try Tensor.uninitialized(dt, channelsLast ? [batch] + outSpatial + [c] : [batch, c] + outSpatial)
        if y.count == 0 { return [y] }
        let (ad, ah, aw) = (tables[0], tables[1], tables[2])
        let inPlane = spatial.reduce(1, *), outPlane = outSpatial.reduce(1, *)
        let inH = ah.inSize, inW = aw.inSize
        var deq = [Float](repeating: 0, count: 256)
        for i in 0..<256 { deq[i] = (byteValue(UInt8(i), dt) - Float(xp.zeroPoint)) * xp.scale }
        let (lo, hi) = bounds(dt)
        let yz = Float(yp.zeroPoint)
        let src = x.pointer(UInt8.self), dst = y.pointer(UInt8.self)
        // Spatial position s of channel k in image b: base + s·step (NCHW: planes; NHWC: interleaved).
        let step = channelsLast ? c : 1
        deq.withUnsafeBufferPointer { t in
            for b in 0..<batch {
                for k in 0..<c {
                    let inBase = channelsLast ? b * inPlane * c + k : (b * c + k) * inPlane
                    let outBase = channelsLast ? b * outPlane * c + k : (b * c + k) * outPlane
                    var o = 0
                    for od in 0..<ad.outSize {
                        for oh in 0..<ah.outSize {
                            for ow in 0..<aw.outSize {
                                var sum: Float = 0
                                for td in ad.lo[od]..<ad.hi[od] {
                                    let id = ad.start[od] + td * ad.dilation
                                    for th in ah.lo[oh]..<ah.hi[oh] {
                                        let row = (id * inH + ah.start[oh] + th * ah.dilation) * inW
                                        for tw in aw.lo[ow]..<aw.hi[ow] {
                                            sum += t[Int(src[inBase + (row + aw.start[ow] + tw * aw.dilation) * step])]
                                        }
                                    }
                                }
                                let taps = (ad.hi[od] - ad.lo[od]) * (ah.hi[oh] - ah.lo[oh]) * (aw.hi[ow] - aw.lo[ow])
                                let avg = sum / (includePad ? kernelSize : Float(taps))
                                dst[outBase + o * step] = UInt8(truncatingIfNeeded: roundSaturate(avg / yp.scale + yz, lo, hi))
                                o += 1
                            }
                        }
                    }
                }
            }
        }
        return [y]
    }
}

// MARK: - concat

/// QLinearConcat: Y_scale, Y_zero_point, then (X_i, X_i_scale, X_i_zero_point) per input, all of
/// Y_zero_point's 8-bit type. An input quantized like Y is copied; another is requantized
/// through a table (dequantize, divide by Y_scale, round, add Y_zp): ORT's bytes.
private func makeQLinearConcat(_ ctx: OpContext) throws -> OpBody {
    guard let axisAttr = try ctx.int("axis") else { throw ctx.attributeError("axis", "required attribute is missing") }
    let op = "QLinearConcat"
    return { inputs, _ in
        let yzp = try inputs.required(1, "Y_zero_point")
        let dt = try eightBitType(yzp, op, "Y_zero_point")
        let yp = try quantParams(inputs, scale: 0, zeroPoint: 1, dtype: dt, op, "Y")
        guard inputs.count >= 5, (inputs.count - 2) % 3 == 0 else {
            throw OpError("\(op): expected Y_scale, Y_zero_point and (tensor, scale, zero point) triples, got \(inputs.count) inputs")
        }
        var xs: [Tensor] = []
        var tables: [[UInt8]?] = []
        for t in stride(from: 2, to: inputs.count, by: 3) {
            let x = try inputs.required(t, "input")
            guard x.dtype == dt else { throw OpError("\(op): input #\(t) has type \(x.dtype), expected \(dt) like Y_zero_point") }
            let p = try quantParams(inputs, scale: t + 1, zeroPoint: t + 2, dtype: dt, op, "input #\(t)", zeroPointRequired: true)
            xs.append(x)
            tables.append(p.scale == yp.scale && p.zeroPoint == yp.zeroPoint ? nil : lookupTable(dt, p, yp) { $0 })
        }
        let rank = xs[0].rank
        let axis = try normalizeAxis(axisAttr, rank: rank)
        var outShape = xs[0].shape
        outShape[axis] = 0
        for (i, x) in xs.enumerated() {
            guard x.rank == rank, (0..<rank).allSatisfy({ $0 == axis || x.shape[$0] == xs[0].shape[$0] }) else {
                throw OpError("\(op): input \(i) of shape \(describeShape(x.shape)) does not match \(describeShape(xs[0].shape)) off axis \(axis)")
            }
            outShape[axis] += x.shape[axis]
        }
        let y = try Tensor.uninitialized(dt, outShape)
        if y.count == 0 { return [y] }
        let outer = outShape[..<axis].reduce(1, *)
        let innerOut = outShape[axis...].reduce(1, *)
        let dst = y.pointer(UInt8.self)
        var offset = 0
        for (x, table) in zip(xs, tables) {
            let block = x.shape[axis...].reduce(1, *)
            let src = x.pointer(UInt8.self)
            for o in 0..<outer {
                let from = src + o * block, to = dst + o * innerOut + offset
                if let table {
                    so_u8_lookup(from, block, table, to, selectedISA)
                } else {
                    to.update(from: from, count: block)
                }
            }
            offset += block
        }
        return [y]
    }
}

// MARK: - gemm

/// QGemm: A, a_scale, a_zero_point, B, b_scale, b_zero_point, C?, y_scale?, y_zero_point?;
/// attributes alpha, transA, transB. Y = alpha·a_scale·b_scale·((A - a_zp)(B - b_zp) + C) with C
/// an int32 bias (quantized with scale alpha·a_scale·b_scale, zero point 0) broadcast to (M, N);
/// float32 without y_scale, else quantized. b_scale and b_zero_point may be per column.
/// ORT's bytes for u8u8 and s8s8; for u8s8 its AVX2 kernel saturates pairs of products to int16,
/// which this exact integer product does not.
private func makeQGemm(_ ctx: OpContext) throws -> OpBody {
    let alpha = try ctx.float("alpha", default: 1)
    let transA = try ctx.int("transA", default: 0) != 0, transB = try ctx.int("transB", default: 0) != 0
    let op = "QGemm"
    return { inputs, _ in
        var a = try inputs.required(0, "A"), b = try inputs.required(3, "B")
        let adt = try eightBitType(a, op, "A"), bdt = try eightBitType(b, op, "B")
        guard a.rank == 2, b.rank == 2 else {
            throw OpError("\(op): A and B must be matrices, got \(describeShape(a.shape)) and \(describeShape(b.shape))")
        }
        if transA { a = try transposed8(a) }
        if transB { b = try transposed8(b) }
        let m = a.shape[0], n = b.shape[1]
        guard a.shape[1] == b.shape[0] else {
            throw OpError("\(op): A (\(describeShape(a.shape))) and B (\(describeShape(b.shape))) do not multiply (transA \(transA), transB \(transB))")
        }
        let ap = try quantParams(inputs, scale: 1, zeroPoint: 2, dtype: adt, op, "a")
        let bScale = try inputs.required(4, "b_scale")
        guard bScale.dtype.isFloatingPoint, bScale.rank <= 1, bScale.count == 1 || bScale.count == n else {
            throw OpError("\(op): b_scale must be a float scalar or have \(n) elements, got \(bScale.dtype) \(describeShape(bScale.shape))")
        }
        let bs = try floatValues(bScale)
        if let bz = inputs.optional(5) {
            guard bz.dtype == bdt, bz.rank <= 1, bz.count == 1 || bz.count == n else {
                throw OpError("\(op): b_zero_point must be a scalar or have \(n) elements of B's type \(bdt), got \(bz.dtype) \(describeShape(bz.shape))")
            }
        }
        let acc = try integerMatMul(a, b, aZP: inputs.optional(2), bZP: inputs.optional(5), op)
        let accp = acc.pointer(Int32.self)
        if let c = inputs.optional(6) {
            guard c.dtype == .int32 else { throw OpError("\(op): C must be int32, got \(c.dtype)") }
            let cs = c.shape, cr = c.rank
            let rows = cr == 2 ? cs[0] : 1, cols = cr >= 1 ? cs[cr - 1] : 1
            guard cr <= 2, rows == 1 || rows == m, cols == 1 || cols == n else {
                throw OpError("\(op): C of shape \(describeShape(cs)) does not broadcast to (\(m), \(n))")
            }
            let cp = c.pointer(Int32.self)
            for i in 0..<m {
                for j in 0..<n { accp[i * n + j] &+= cp[(rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j)] }
            }
        }
        let mult = (0..<n).map { alpha * ap.scale * bs[bs.count == 1 ? 0 : $0] }
        guard inputs.optional(7) != nil else {
            let y = try Tensor.uninitialized(.float32, [m, n])
            let yp = y.pointer(Float.self)
            for i in 0..<m { for j in 0..<n { yp[i * n + j] = Float(accp[i * n + j]) * mult[j] } }
            return [y]
        }
        let ydt = inputs.optional(8)?.dtype ?? adt
        guard ydt == .uint8 || ydt == .int8 else { throw OpError("\(op): y_zero_point must be uint8 or int8, got \(ydt)") }
        let yp = try quantParams(inputs, scale: 7, zeroPoint: 8, dtype: ydt, op, "y")
        let ratio = mult.map { $0 / yp.scale }
        let (lo, hi) = bounds(ydt)
        let yz = Float(yp.zeroPoint)
        let y = try Tensor.uninitialized(ydt, [m, n])
        let dst = y.pointer(UInt8.self)
        for i in 0..<m {
            for j in 0..<n {
                dst[i * n + j] = quantizeByte(Float(accp[i * n + j]) * ratio[j], yz, lo, hi)
            }
        }
        return [y]
    }
}

/// The transpose of an 8-bit matrix.
private func transposed8(_ x: Tensor) throws -> Tensor {
    let r = x.shape[0], c = x.shape[1]
    let y = try Tensor.uninitialized(x.dtype, [c, r])
    let s = x.pointer(UInt8.self), d = y.pointer(UInt8.self)
    for i in 0..<r { for j in 0..<c { d[j * r + i] = s[i * c + j] } }
    return y
}

// MARK: - rewrites

/// DequantizeLinear(a), DequantizeLinear(b) -> Add or Mul -> QuantizeLinear, with one scale and zero
/// point each and one 8-bit type, becomes com.microsoft QLinearAdd / QLinearMul on the bytes, as
/// onnxruntime's QDQ transformer does: the sum or product of the dequantized values is computed from
/// the scale ratios (see `qlinearBinary`) and requantized without a division, over one byte per value
/// instead of four. It is not the unfused ops' bits: their float result is divided by the scale,
/// this multiplies by ratios of scales, so a value within a few float ulps of a rounding boundary
/// may land one step away (the tests bound it); the models' accuracy against their float originals
/// is held to ORT int8's (Int8ModelTests). The DequantizeLinear nodes stay while something else
/// reads them. Sum of two inputs is an Add; a Relu between the Add and the QuantizeLinear (residual
/// blocks: DequantizeLinear x2 -> Add -> Relu -> QuantizeLinear) becomes the lower bound of
/// com.swiftonnx::QLinearAdd (relu = 1).
struct LowerQDQBinary: GraphPass {
    let name = "lower-qdq-binary"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        guard (opsets[""] ?? 0) >= 7 else { return false }
        let producers = graph.producers()
        let readers = graph.readers()
        let uses = graph.useCounts()
        let outputs = graph.outputNames
        /// The 8-bit type of a scalar zero point constant.
        func scalarParams(_ scale: String, _ zero: String) -> DType? {
            guard let s = graph.initializers[scale], s.dtype == .float32, s.count == 1,
                  let z = graph.initializers[zero], z.count == 1, z.dtype == .uint8 || z.dtype == .int8 else { return nil }
            return z.dtype
        }
        /// The DequantizeLinear making `v`, when it has one scale and zero point of type `dt`.
        func dequantized(_ v: String, _ dt: DType) -> Node? {
            guard let p = producers[v] else { return nil }
            let dq = graph.nodes[p]
            guard dq.opType == "DequantizeLinear", dq.isStandardDomain, dq.inputs.count == 3, dq.attributes["block_size"] == nil,
                  scalarParams(dq.inputs[1], dq.inputs[2]) == dt, graph.infoOrConstant(of: dq.inputs[0])?.type == dt else { return nil }
            return dq
        }
        var removed = Set<Int>()
        var changed = false
        /// The single reader of `v`, when `v` is read once and is not a graph output.
        func onlyReader(_ v: String) -> Int? {
            guard uses[v] == 1, !outputs.contains(v), let r = readers[v], !removed.contains(r) else { return nil }
            return r
        }
        for (i, op) in graph.nodes.enumerated() where ["Add", "Mul", "Sum"].contains(op.opType) && op.isStandardDomain {
            guard op.attributes.isEmpty, op.inputs.count == 2, op.outputs.count == 1, var qi = onlyReader(op.outputs[0]) else { continue }
            // Add -> Relu -> QuantizeLinear: the Relu goes into the output's lower bound
            var relu: Int? = nil
            let isAdd = op.opType != "Mul"
            if isAdd, graph.nodes[qi].opType == "Relu", graph.nodes[qi].isStandardDomain, graph.nodes[qi].outputs.count == 1,
               let next = onlyReader(graph.nodes[qi].outputs[0]) {
                relu = qi
                qi = next
            }
            let q = graph.nodes[qi]
            guard q.opType == "QuantizeLinear", q.isStandardDomain, q.inputs.count == 3, q.outputs.count == 1,
                  q.attributes["output_dtype"] == nil, q.attributes["block_size"] == nil, q.attributes["saturate"] == nil,
                  q.attributes["precision"] == nil, let dt = scalarParams(q.inputs[1], q.inputs[2]),
                  let a = dequantized(op.inputs[0], dt), let b = dequantized(op.inputs[1], dt) else { continue }
            let inputs = a.inputs + b.inputs + [q.inputs[1], q.inputs[2]]
            if let relu {
                graph.nodes[qi] = Node(name: q.name, opType: "QLinearAdd", domain: "com.swiftonnx", inputs: inputs,
                                       outputs: q.outputs, attributes: ["relu": .int(1)])
                removed.insert(relu)
            } else {
                graph.nodes[qi] = Node(name: q.name, opType: isAdd ? "QLinearAdd" : "QLinearMul", domain: "com.microsoft",
                                       inputs: inputs, outputs: q.outputs, attributes: [:])
            }
            removed.insert(i)
            changed = true
        }
        guard changed else { return false }
        graph.removeNodes(at: removed)
        graph.removeUnreadDequantizers()
        return true
    }
}

// MARK: - MatMulNBits

/// com.microsoft MatMulNBits: Y = A · dequantize(B)ᵀ (+ bias), A float32 [..., K]. B holds the
/// weights column by column, [N, blocks, block_size · bits / 8] bytes of `bits`-bit codes, low bits
/// first along K; each block of a column has a scale (scales [N · blocks]) and a zero point
/// (`zero_points`: packed codes of `bits` bits, each column's in its own bytes, or floats
/// [N · blocks]; default 2^(bits-1)); a weight is (code - zero point) · scale. The weights are
/// dequantized once per plan when B, scales and zero points are constants (shared by the
/// session's plans), and the product is the float MatMul's: ORT's float accuracy level, the same
/// values. `g_idx` (act-order, deprecated) is rejected.
private func makeMatMulNBits(_ ctx: OpContext) throws -> OpBody {
    let op = "MatMulNBits"
    guard let k = try ctx.int("K"), let n = try ctx.int("N"), k > 0, n > 0 else {
        throw ctx.attributeError("K", "MatMulNBits needs positive K and N attributes")
    }
    let bits = try ctx.int("bits", default: 4)
    guard [2, 4, 8].contains(bits) else { throw ctx.attributeError("bits", "must be 2, 4 or 8, got \(bits)") }
    guard let blockSize = try ctx.int("block_size"), blockSize >= 16, blockSize & (blockSize - 1) == 0 else {
        throw ctx.attributeError("block_size", "must be a power of two of at least 16")
    }
    if ctx.hasInput(4) { throw OpError("\(op): g_idx (act-order block indices) is not supported") }
    let blocks = (k + blockSize - 1) / blockSize, blob = blockSize * bits / 8
    guard k.multipliedReportingOverflow(by: n).overflow == false, k * n <= 1 << 31 else {
        throw OpError("\(op): K x N = \(k) x \(n) weights are too many")
    }
    /// The float weights [K, N] (row-major) from B, scales and zero points.
    @Sendable func dequantize(_ b: Tensor, _ scales: Tensor, _ zeros: Tensor?) throws -> Tensor {
        guard b.dtype == .uint8, b.shape == [n, blocks, blob] else {
            throw OpError("\(op): B must be uint8 [\(n), \(blocks), \(blob)] (N, blocks of K = \(k), bytes per block), got \(b.dtype) \(describeShape(b.shape))")
        }
        guard scales.dtype == .float32, scales.count == n * blocks else {
            throw OpError("\(op): scales must be \(n * blocks) float32 values (N x blocks), got \(scales.dtype) \(describeShape(scales.shape))")
        }
        let zeroBytesPerColumn = (blocks * bits + 7) / 8
        if let z = zeros {
            guard (z.dtype == .uint8 && z.count == n * zeroBytesPerColumn) || (z.dtype == .float32 && z.count == n * blocks) else {
                throw OpError("\(op): zero_points must be \(n * zeroBytesPerColumn) uint8 (packed) or \(n * blocks) float32 values, got \(z.dtype) \(describeShape(z.shape))")
            }
        }
        let w = try Tensor.uninitialized(.float32, [k, n])
        let wp = w.pointer(Float.self), bp = b.pointer(UInt8.self), sp = scales.pointer(Float.self)
        let mask = (1 << bits) - 1, perByte = 8 / bits
        let defaultZero = Float(1 << (bits - 1))
        for col in 0..<n {
            for blk in 0..<blocks {
                let scale = sp[col * blocks + blk]
                var zero = defaultZero
                if let z = zeros {
                    if z.dtype == .float32 {
                        zero = z.pointer(Float.self)[col * blocks + blk]
                    } else {
                        let byte = Int(z.pointer(UInt8.self)[col * zeroBytesPerColumn + blk / perByte])
                        zero = Float((byte >> ((blk % perByte) * bits)) & mask)
                    }
                }
                let codes = bp + (col * blocks + blk) * blob
                for j in 0..<min(blockSize, k - blk * blockSize) {
                    let code = (Int(codes[j / perByte]) >> ((j % perByte) * bits)) & mask
                    wp[(blk * blockSize + j) * n + col] = (Float(code) - zero) * scale
                }
            }
        }
        return w
    }
    var prepared: Tensor?
    if let b = ctx.constantInput(1), let scales = ctx.constantInput(2), !ctx.hasInput(3) || ctx.constantInput(3) != nil {
        let zeros = ctx.constantInput(3)
        prepared = try ctx.prepare(b, kind: "MatMulNBits-\(k)x\(n)-\(bits)-\(blockSize)-\(ctx.node.inputs[2])-\(ctx.node.inputs.count > 3 ? ctx.node.inputs[3] : "")") {
            Box(try dequantize(b, scales, zeros))
        }.value
    }
    let weights = prepared
    return { inputs, env in
        let a = try inputs.required(0, "A")
        guard a.dtype == .float32, a.rank >= 1, a.shape.last == k else {
            throw OpError("\(op): A must be float32 [..., \(k)] (K = \(k)), got \(a.dtype) \(describeShape(a.shape))")
        }
        let w = try weights ?? dequantize(try inputs.required(1, "B"), try inputs.required(2, "scales"), inputs.count > 3 ? inputs[3] : nil)
        let y = try matMul(a, w, threads: env.threads)
        if inputs.count > 5, let bias = inputs[5] {
            guard bias.dtype == .float32, bias.count == n else {
                throw OpError("\(op): bias must be \(n) float32 values, got \(bias.dtype) \(describeShape(bias.shape))")
            }
            let yp = y.pointer(Float.self), bp = bias.pointer(Float.self)
            for row in 0..<(y.count / n) { f32BinaryVV(.add, yp + row * n, bp, yp + row * n, n) }
        }
        return [y]
    }
}
