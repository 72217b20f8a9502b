import CKernels
import Foundation

/// Pooling ops.
func registerPoolingOps(_ r: inout OpRegistry) {
    // The window geometry the kernels use (ceil_mode drops a last window that would start in the padding).
    let window = Inference { ctx, ins in
        var shape: [Dim]? = nil
        if let x = ins.shape(0), x.count >= 3 {
            let spatial = x.dropFirst(2).compactMap(\.value)
            if spatial.count == x.count - 2 {
                shape = [x[0], x[1]] + (try PoolAttrs(ctx).geometry([1, 1] + spatial).out).map { .known($0) }
            } else {
                shape = [x[0], x[1]] + Array(repeating: .unknown, count: x.count - 2)
            }
        }
        return [TypeInfo(dtype: ins.dtype(0), shape: shape), TypeInfo(dtype: .int64, shape: shape)]   // MaxPool's optional Indices
    }
    let global = Inference { _, ins in
        guard let s = ins.shape(0), s.count >= 2 else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
        return [TypeInfo(dtype: ins.dtype(0), shape: [s[0], s[1]] + Array(repeating: .known(1), count: s.count - 2))]
    }
    r.register("MaxPool", infer: window, closure: makeMaxPool)
    r.register("AveragePool", infer: window) { ctx in ClosureOperator(body: try makeAvgLpPool(ctx, lp: false)) }
    r.register("LpPool", infer: window) { ctx in ClosureOperator(body: try makeAvgLpPool(ctx, lp: true)) }
    r.register("GlobalAveragePool", infer: global) { ctx in ClosureOperator(body: try makeGlobalPool(ctx, kind: 0)) }
    r.register("GlobalMaxPool", infer: global) { ctx in ClosureOperator(body: try makeGlobalPool(ctx, kind: 1)) }
    r.register("GlobalLpPool", infer: global) { ctx in ClosureOperator(body: try makeGlobalPool(ctx, kind: 2)) }
    r.register("MaxUnpool", infer: Inference(inferMaxUnpool), closure: makeMaxUnpool)
    // Region pooling: one [C, h, w] map per region of interest.
    let roi = { (size: @escaping @Sendable (OpContext) throws -> [Int]) in
        Inference { ctx, ins in
            let hw = try size(ctx)
            guard let x = ins.shape(0), x.count == 4, let rois = ins.shape(1), !rois.isEmpty, hw.count == 2 else {
                return [TypeInfo(dtype: ins.dtype(0), shape: nil)]
            }
            return [TypeInfo(dtype: ins.dtype(0), shape: [rois[0], x[1], .known(hw[0]), .known(hw[1])])]
        }
    }
    r.register("MaxRoiPool", infer: roi { ctx in try ctx.ints("pooled_shape") ?? [] }, closure: makeMaxRoiPool)
    r.register("RoiAlign", infer: roi { ctx in
        [try ctx.int("output_height", default: 1), try ctx.int("output_width", default: 1)]
    }, closure: makeRoiAlign)
}

/// MaxUnpool: the given output_shape, or (in - 1) * stride - pads + kernel per spatial dim.
private func inferMaxUnpool(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    if let given = ins.ints(2) { return [TypeInfo(dtype: dt, shape: given.map { .known($0) })] }
    // An output_shape known only at run time leaves the shape unknown.
    guard !ctx.hasInput(2), let x = ins.shape(0), let kernel = try ctx.ints("kernel_shape"), x.count == kernel.count + 2 else {
        return [TypeInfo(dtype: dt, shape: nil)]
    }
    let n = kernel.count
    let strides = try ctx.ints("strides") ?? Array(repeating: 1, count: n)
    let pads = try ctx.ints("pads") ?? Array(repeating: 0, count: 2 * n)
    guard strides.count == n, pads.count == 2 * n else { return [TypeInfo(dtype: dt, shape: nil)] }
    var out = Array(x.prefix(2))
    for i in 0..<n {
        out.append(x[2 + i].value.map { .known(($0 - 1) * strides[i] - pads[i] - pads[i + n] + kernel[i]) } ?? .unknown)
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

/// Attributes shared by the windowed pooling ops.
struct PoolAttrs {
    var kernel: [Int]
    var strides: [Int]?
    var dilations: [Int]?
    var pads: [Int]?
    var autoPad: String
    var ceilMode: Bool

    init(_ ctx: OpContext) throws {
        guard let k = try ctx.ints("kernel_shape") else { throw ctx.attributeError("kernel_shape", "required attribute is missing") }
        guard !k.isEmpty, k.allSatisfy({ $0 >= 1 }) else { throw ctx.attributeError("kernel_shape", "must be positive, got \(k)") }
        kernel = k
        strides = try ctx.ints("strides")
        dilations = try ctx.ints("dilations")
        pads = try ctx.ints("pads")
        autoPad = try ctx.string("auto_pad", default: "NOTSET")
        ceilMode = try ctx.int("ceil_mode", default: 0) != 0
        let n = k.count
        if let s = strides, s.count != n || s.contains(where: { $0 < 1 }) { throw ctx.attributeError("strides", "expected \(n) positive values, got \(s)") }
        if let d = dilations, d.count != n || d.contains(where: { $0 < 1 }) { throw ctx.attributeError("dilations", "expected \(n) positive values, got \(d)") }
        if let p = pads, p.count != 2 * n || p.contains(where: { $0 < 0 }) { throw ctx.attributeError("pads", "expected \(2 * n) non-negative values, got \(p)") }
        if !["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) {
            throw ctx.attributeError("auto_pad", "unknown value \(autoPad)")
        }
    }

    /// Output spatial shape and per-axis window tables (lifted to 3 axes).
    func geometry(_ xShape: [Int]) throws -> (out: [Int], tables: [PoolAxisTable]) {
        let n = kernel.count
        guard xShape.count == n + 2 else {
            throw OpError("input of shape \(describeShape(xShape)) does not match a \(n)-D kernel \(kernel)")
        }
        guard n <= 3 else { throw OpError("pooling over \(n) spatial dims is not supported (at most 3)") }
        var out: [Int] = []
        var tables: [PoolAxisTable] = []
        for i in 0..<n {
            let inSize = xShape[i + 2]
            let k = kernel[i], s = strides?[i] ?? 1, d = dilations?[i] ?? 1
            let ek = (k - 1) * d + 1
            var pb = pads?[i] ?? 0, pe = pads?[i + n] ?? 0
            var o: Int
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                o = (inSize + s - 1) / s
                let total = max(0, (o - 1) * s + ek - inSize)
                pb = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pe = total - pb
            case "VALID":
                pb = 0; pe = 0
                let span = inSize - ek
                o = span < 0 ? 0 : (ceilMode ? (span + s - 1) / s : span / s) + 1
            default:
                let span = inSize + pb + pe - ek
                if span < 0 { o = 0 } else {
                    o = (ceilMode ? (span + s - 1) / s : span / s) + 1
                    if ceilMode && (o - 1) * s >= inSize + pb { o -= 1 }
                }
            }
            guard o >= 1 || inSize == 0 else {
                throw OpError("kernel \(kernel) (dilations \(dilations ?? [])) does not fit input \(describeShape(xShape)) with pads \(pads ?? [])")
            }
            guard o < (1 << 31) else { throw OpError("pooling output size \(o) along axis \(i + 2) is too large") }
            out.append(max(o, 0))
            tables.append(PoolAxisTable(inSize: inSize, outSize: max(o, 0), kernel: k, stride: s, dilation: d, padBegin: pb, padEnd: pe))
        }
        var total = xShape[0] * xShape[1]
        for o in out {
            let r = total.multipliedReportingOverflow(by: o)
            guard !r.overflow, r.partialValue <= (1 << 36) else { throw OpError("pooling output shape \(out) is too large") }
            total = r.partialValue
        }
        while tables.count < 3 { tables.insert(.unit, at: 0) }
        return (out, tables)
    }
}

private func makeMaxPool(_ ctx: OpContext) throws -> OpBody {
    let attrs = try PoolAttrs(ctx)
    let columnMajor = try ctx.int("storage_order", default: 0) == 1
    let wantIndices = ctx.hasOutput(1)
    return { inputs, env in
        let x = try inputs.required(0, "X")
        let (outSpatial, tables) = try attrs.geometry(x.shape)
        let outShape = Array(x.shape.prefix(2)) + outSpatial
        let planes = x.shape[0] * x.shape[1]
        let indices = wantIndices ? try Tensor.uninitialized(.int64, outShape) : nil
        let ip = indices?.pointer(Int64.self)
        func run<T: Comparable>(_: T.Type, _ src: Tensor, lowest: T) throws -> Tensor {
            let y = try Tensor.uninitialized(src.dtype, outShape)
            poolMaxKernel(src.pointer(T.self), y.pointer(T.self), indices: ip, columnMajor: columnMajor,
                          planes: planes, axes: tables, lowest: lowest)
            return y
        }
        var y: Tensor
        switch x.dtype {
        case .float32:
            if ip == nil {
                y = try Tensor.uninitialized(.float32, outShape)
                if y.count > 0 { poolMaxF32(x.pointer(Float.self), y.pointer(Float.self), planes: planes, axes: tables, threads: env.threads) }
            } else {
                y = try run(Float.self, x, lowest: -.infinity)
            }
        case .float64: y = try run(Double.self, x, lowest: -.infinity)
        case .float16: y = try run(Float16.self, x, lowest: -.infinity)
        case .bfloat16: y = try run(Float.self, x.converted(to: .float32), lowest: -.infinity).converted(to: .bfloat16)
        case .int8 where ip == nil && tables[0].inSize == 1 && tables[0].outSize == 1 && tables[0].kernel == 1,
             .uint8 where ip == nil && tables[0].inSize == 1 && tables[0].outSize == 1 && tables[0].kernel == 1:
            // 8-bit 2-D (quantized models): on the bytes.
            y = try Tensor.uninitialized(x.dtype, outShape)
            if y.count > 0 { poolMaxU8(x.raw, y.raw, signed: x.dtype == .int8, planes: planes, axes: tables, threads: env.threads) }
        case .int8 where ip == nil, .uint8 where ip == nil:
            // 8-bit (quantized models): through the float kernel, exactly (bytes are exact floats, and
            // so is their max), in reused scratch memory (fresh pages cost more than the pooling).
            let signed: Int32 = x.dtype == .int8 ? 1 : 0
            y = try Tensor.uninitialized(x.dtype, outShape)
            if y.count > 0 {
                let count = x.count, outCount = y.count
                ScratchPool.shared.withFloats(count + outCount) { xf in
                    let yf = xf + count
                    so_q8_dequantize(x.raw, count, 1, 0, signed, xf, selectedISA)
                    poolMaxF32(xf, yf, planes: planes, axes: tables, threads: env.threads)
                    so_q8_quantize(yf, outCount, 1, 0, signed == 1 ? -128 : 0, signed == 1 ? 127 : 255, signed, y.raw, selectedISA)
                }
            }
        case .int8: y = try run(Int8.self, x, lowest: .min)
        case .uint8: y = try run(UInt8.self, x, lowest: .min)
        case .int16: y = try run(Int16.self, x, lowest: .min)
        case .uint16: y = try run(UInt16.self, x, lowest: .min)
        case .int32: y = try run(Int32.self, x, lowest: .min)
        case .int64: y = try run(Int64.self, x, lowest: .min)
        default: throw ONNXError.unsupportedType("MaxPool: element type \(x.dtype)")
        }
        if let ind = indices { return [y, ind] }
        return [y]
    }
}

/// Runs a float pooling computation in float32 (float16/bfloat16 converted), float64 natively.
private func withFloatCompute(_ op: String, _ x: Tensor, _ outShape: [Int],
                              _ f32: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                              _ f64: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void) throws -> Tensor {
    switch x.dtype {
    case .float32, .float16, .bfloat16:
        let src = try x.converted(to: .float32)
        let y = try Tensor.uninitialized(.float32, outShape)
        if y.count > 0 { f32(src.pointer(Float.self), y.pointer(Float.self)) }
        return try y.converted(to: x.dtype)
    case .float64:
        let y = try Tensor.uninitialized(.float64, outShape)
        if y.count > 0 { f64(x.pointer(Double.self), y.pointer(Double.self)) }
        return y
    default:
        throw ONNXError.unsupportedType("\(op): element type \(x.dtype) (expected a float type)")
    }
}

private func makeAvgLpPool(_ ctx: OpContext, lp: Bool) throws -> OpBody {
    let attrs = try PoolAttrs(ctx)
    let includePad = try ctx.int("count_include_pad", default: 0) != 0
    let p = lp ? try ctx.float("p", default: 2) : 1
    let name = ctx.opType
    return { inputs, env in
        let x = try inputs.required(0, "X")
        let (outSpatial, tables) = try attrs.geometry(x.shape)
        let outShape = Array(x.shape.prefix(2)) + outSpatial
        let planes = x.shape[0] * x.shape[1]
        let y = try withFloatCompute(name, x, outShape, { s, d in
            if lp {
                poolAvgLpKernel(s, d, planes: planes, axes: tables, lp: true, p: Float(p), countIncludePad: includePad)
            } else {
                poolAvgF32(s, d, planes: planes, axes: tables, countIncludePad: includePad, threads: env.threads)
            }
        }, { s, d in
            poolAvgLpKernel(s, d, planes: planes, axes: tables, lp: lp, p: Double(p), countIncludePad: includePad)
        })
        return [y]
    }
}

/// kind 0: average, 1: max, 2: Lp.
private func makeGlobalPool(_ ctx: OpContext, kind: Int) throws -> OpBody {
    let p = kind == 2 ? try ctx.float("p", default: 2) : 2
    let name = ctx.opType
    return { inputs, _ in
        let x = try inputs.required(0, "X")
        guard x.rank >= 2 else { throw OpError("\(name) needs rank >= 2, got \(describeShape(x.shape))") }
        let planes = x.shape[0] * x.shape[1]
        let size = x.shape.dropFirst(2).reduce(1, *)
        let outShape = Array(x.shape.prefix(2)) + [Int](repeating: 1, count: x.rank - 2)
        if x.dtype == .float32 && kind != 2 {
            let y = try Tensor.uninitialized(.float32, outShape)
            globalPoolF32(x.pointer(Float.self), y.pointer(Float.self), planes: planes, size: size, max: kind == 1)
            return [y]
        }
        let tables = [PoolAxisTable.unit, .unit,
                      PoolAxisTable(inSize: size, outSize: 1, kernel: size, stride: 1, dilation: 1, padBegin: 0, padEnd: 0)]
        if kind == 1 {
            func run<T: Comparable>(_: T.Type, _ src: Tensor, lowest: T) throws -> Tensor {
                let y = try Tensor.uninitialized(src.dtype, outShape)
                poolMaxKernel(src.pointer(T.self), y.pointer(T.self), indices: nil, columnMajor: false,
                              planes: planes, axes: tables, lowest: lowest)
                return y
            }
            switch x.dtype {
            case .float64: return [try run(Double.self, x, lowest: -.infinity)]
            case .float16: return [try run(Float16.self, x, lowest: -.infinity)]
            case .bfloat16: return [try run(Float.self, x.converted(to: .float32), lowest: -.infinity).converted(to: .bfloat16)]
            default: throw ONNXError.unsupportedType("\(name): element type \(x.dtype)")
            }
        }
        let y = try withFloatCompute(name, x, outShape, { s, d in
            poolAvgLpKernel(s, d, planes: planes, axes: tables, lp: kind == 2, p: Float(p), countIncludePad: false)
        }, { s, d in
            poolAvgLpKernel(s, d, planes: planes, axes: tables, lp: kind == 2, p: Double(p), countIncludePad: false)
        })
        return [y]
    }
}

/// Copies element `s` of `src` to element `d` of `dst` (same element size).
@inline(__always)
private func copyElement(_ src: UnsafeRawPointer, _ s: Int, _ dst: UnsafeMutableRawPointer, _ d: Int, size: Int) {
    switch size {
    case 1: dst.storeBytes(of: src.load(fromByteOffset: s, as: UInt8.self), toByteOffset: d, as: UInt8.self)
    case 2: dst.storeBytes(of: src.load(fromByteOffset: s * 2, as: UInt16.self), toByteOffset: d * 2, as: UInt16.self)
    case 4: dst.storeBytes(of: src.load(fromByteOffset: s * 4, as: UInt32.self), toByteOffset: d * 4, as: UInt32.self)
    case 8: dst.storeBytes(of: src.load(fromByteOffset: s * 8, as: UInt64.self), toByteOffset: d * 8, as: UInt64.self)
    default: (dst + d * size).copyMemory(from: src + s * size, byteCount: size)
    }
}

private func makeMaxUnpool(_ ctx: OpContext) throws -> OpBody {
    guard let kernel = try ctx.ints("kernel_shape") else { throw ctx.attributeError("kernel_shape", "required attribute is missing") }
    let n = kernel.count
    let strides = try ctx.ints("strides") ?? [Int](repeating: 1, count: n)
    let pads = try ctx.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
    guard strides.count == n, pads.count == 2 * n else { throw ctx.attributeError("strides", "strides/pads do not match kernel_shape \(kernel)") }
    return { inputs, _ in
        let x = try inputs.required(0, "X")
        let ind = try inputs.required(1, "I")
        guard x.rank == n + 2 else { throw OpError("MaxUnpool: X \(describeShape(x.shape)) does not match kernel \(kernel)") }
        guard ind.shape == x.shape else { throw OpError("MaxUnpool: I \(describeShape(ind.shape)) must have X's shape \(describeShape(x.shape))") }
        guard x.dtype != .string else { throw ONNXError.unsupportedType("MaxUnpool: string") }
        var outShape = Array(x.shape.prefix(2))
        for i in 0..<n { outShape.append((x.shape[i + 2] - 1) * strides[i] - pads[i] - pads[i + n] + kernel[i]) }
        guard outShape.allSatisfy({ $0 >= 0 }) else { throw OpError("MaxUnpool: invalid output shape \(outShape)") }
        // Indices address the inferred shape; a given output_shape receives it at its origin
        // (zero-filled beyond, cropped if smaller), as the ONNX reference does.
        let y = try Tensor.zeros(x.dtype, outShape)
        let total = y.count
        let idx = try ind.readAsInts()
        let es = x.dtype.byteSize
        for i in 0..<x.count {
            let t = idx[i]
            guard t >= 0 && t < total else { throw OpError("MaxUnpool: index \(t) is out of range for output \(describeShape(outShape))") }
            copyElement(x.raw, i, y.raw, t, size: es)
        }
        if let os = inputs.optional(2) {
            let given = try os.readAsInts()
            var n = 1, overflow = false
            for d in given where d > 0 { let r = n.multipliedReportingOverflow(by: d); n = r.partialValue; overflow = overflow || r.overflow || n > (1 << 36) }
            guard given.count == x.rank, given.allSatisfy({ $0 >= 0 }), !overflow else {
                throw OpError("MaxUnpool: output_shape \(given) must have \(x.rank) non-negative values")
            }
            if given != outShape {
                let z = try Tensor.zeros(x.dtype, given)
                let common = zip(given, outShape).map { min($0, $1) }
                if common.allSatisfy({ $0 > 0 }) {
                    let ys = contiguousStrides(outShape), zs = contiguousStrides(given)
                    var k = 0
                    forEachStrided(common, ys) { _, src in
                        // destination offset from the running index over `common`
                        var rem = k, dst = 0
                        for d in stride(from: common.count - 1, through: 0, by: -1) {
                            dst += (rem % common[d]) * zs[d]; rem /= common[d]
                        }
                        copyElement(y.raw, src, z.raw, dst, size: es)
                        k += 1
                    }
                }
                return [z]
            }
        }
        return [y]
    }
}

// MARK: region-of-interest pooling

private func makeMaxRoiPool(_ ctx: OpContext) throws -> OpBody {
    guard let ps = try ctx.ints("pooled_shape"), ps.count == 2, ps.allSatisfy({ $0 > 0 }) else {
        throw ctx.attributeError("pooled_shape", "required: two positive values")
    }
    let scale = Double(try ctx.float("spatial_scale", default: 1))
    return { inputs, _ in
        let x0 = try inputs.required(0, "X"), rois = try inputs.required(1, "rois")
        guard x0.rank == 4, rois.rank == 2, rois.shape[1] == 5 else {
            throw OpError("MaxRoiPool: X must be 4-D and rois [num_rois, 5]; got \(describeShape(x0.shape)), \(describeShape(rois.shape))")
        }
        let x = try x0.converted(to: .float32)
        let r = try rois.readAsDoubles()
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ph, pw) = (ps[0], ps[1])
        let nr = rois.shape[0]
        let y = try Tensor.uninitialized(.float32, [nr, C, ph, pw])
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        for k in 0..<nr {
            let b = Int(r[k * 5])
            guard b >= 0 && b < N else { throw OpError("MaxRoiPool: batch index \(b) out of range") }
            let x1 = Int((r[k * 5 + 1] * scale).rounded()), y1 = Int((r[k * 5 + 2] * scale).rounded())
            let x2 = Int((r[k * 5 + 3] * scale).rounded()), y2 = Int((r[k * 5 + 4] * scale).rounded())
            let rh = max(y2 - y1 + 1, 1), rw = max(x2 - x1 + 1, 1)
            let bh = Double(rh) / Double(ph), bw = Double(rw) / Double(pw)
            for c in 0..<C {
                let plane = xp + (b * C + c) * H * W
                for i in 0..<ph {
                    let hs = min(max(Int(floor(Double(i) * bh)) + y1, 0), H)
                    let he = min(max(Int(ceil(Double(i + 1) * bh)) + y1, 0), H)
                    for j in 0..<pw {
                        let ws = min(max(Int(floor(Double(j) * bw)) + x1, 0), W)
                        let we = min(max(Int(ceil(Double(j + 1) * bw)) + x1, 0), W)
                        var m = -Float.greatestFiniteMagnitude
                        let empty = he <= hs || we <= ws
                        if !empty { for h in hs..<he { for w in ws..<we { m = max(m, plane[h * W + w]) } } }
                        yp[((k * C + c) * ph + i) * pw + j] = empty ? 0 : m
                    }
                }
            }
        }
        return [try y.converted(to: x0.dtype)]
    }
}

private func makeRoiAlign(_ ctx: OpContext) throws -> OpBody {
    let mode = try ctx.string("mode", default: "avg")
    guard mode == "avg" || mode == "max" else { throw ctx.attributeError("mode", "expected avg or max, got \(mode)") }
    let oh = try ctx.int("output_height", default: 1), ow = try ctx.int("output_width", default: 1)
    guard oh > 0, ow > 0 else { throw ctx.attributeError("output_height", "output size must be positive") }
    let ratio = try ctx.int("sampling_ratio", default: 0)
    let scale = Double(try ctx.float("spatial_scale", default: 1))
    // opset 16 added coordinate_transformation_mode (default half_pixel); opset 10 behaves as output_half_pixel.
    let ctm = try ctx.string("coordinate_transformation_mode", default: ctx.opset >= 16 ? "half_pixel" : "output_half_pixel")
    let offset = ctm == "half_pixel" ? 0.5 : 0.0
    let isMax = mode == "max"
    return { inputs, _ in
        let x0 = try inputs.required(0, "X"), rois = try inputs.required(1, "rois"), bi = try inputs.required(2, "batch_indices")
        guard x0.rank == 4, rois.rank == 2, rois.shape[1] == 4, bi.count == rois.shape[0] else {
            throw OpError("RoiAlign: X must be 4-D, rois [num_rois, 4], batch_indices [num_rois]; got \(describeShape(x0.shape)), \(describeShape(rois.shape)), \(describeShape(bi.shape))")
        }
        let x = try x0.converted(to: .float32)
        let r = try rois.readAsDoubles(), bidx = try bi.readAsInts()
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let nr = rois.shape[0]
        let y = try Tensor.uninitialized(.float32, [nr, C, oh, ow])
        let xp = x.pointer(Float.self), yp = y.pointer(Float.self)
        for k in 0..<nr {
            let b = bidx[k]
            guard b >= 0 && b < N else { throw OpError("RoiAlign: batch index \(b) out of range for batch \(N)") }
            let sw = r[k * 4] * scale - offset, sh = r[k * 4 + 1] * scale - offset
            let ew = r[k * 4 + 2] * scale - offset, eh = r[k * 4 + 3] * scale - offset
            var rw = ew - sw, rh = eh - sh
            if ctm != "half_pixel" { rw = max(rw, 1); rh = max(rh, 1) }
            let binH = rh / Double(oh), binW = rw / Double(ow)
            let gh = ratio > 0 ? ratio : Int(ceil(rh / Double(oh)))
            let gw = ratio > 0 ? ratio : Int(ceil(rw / Double(ow)))
            let count = Double(max(gh * gw, 1))
            for c in 0..<C {
                let plane = xp + (b * C + c) * H * W
                for i in 0..<oh {
                    for j in 0..<ow {
                        var acc = 0.0
                        var first = true
                        for iy in 0..<gh {
                            var yy = sh + Double(i) * binH + (Double(iy) + 0.5) * binH / Double(gh)
                            for ix in 0..<gw {
                                var xx = sw + Double(j) * binW + (Double(ix) + 0.5) * binW / Double(gw)
                                if yy < -1 || yy > Double(H) || xx < -1 || xx > Double(W) {
                                    if isMax { if first { acc = 0; first = false } } 
                                    continue
                                }
                                yy = max(yy, 0); xx = max(xx, 0)
                                var y0 = Int(yy), x0i = Int(xx)
                                var y1: Int, x1: Int
                                if y0 >= H - 1 { y0 = H - 1; y1 = H - 1; yy = Double(y0) } else { y1 = y0 + 1 }
                                if x0i >= W - 1 { x0i = W - 1; x1 = W - 1; xx = Double(x0i) } else { x1 = x0i + 1 }
                                let ly = yy - Double(y0), lx = xx - Double(x0i)
                                let hy = 1 - ly, hx = 1 - lx
                                let v1 = Double(plane[y0 * W + x0i]), v2 = Double(plane[y0 * W + x1])
                                let v3 = Double(plane[y1 * W + x0i]), v4 = Double(plane[y1 * W + x1])
                                if isMax {
                                    let v = max(max(hy * hx * v1, hy * lx * v2), max(ly * hx * v3, ly * lx * v4))
                                    if first { acc = v; first = false } else { acc = max(acc, v) }
                                } else {
                                    acc += hy * hx * v1 + hy * lx * v2 + ly * hx * v3 + ly * lx * v4
                                }
                            }
                        }
                        yp[((k * C + c) * oh + i) * ow + j] = Float(isMax ? acc : acc / count)
                    }
                }
            }
        }
        return [try y.converted(to: x0.dtype)]
    }
}
