/// Shape ops: ops that move, select, reshape or build tensors without arithmetic on elements.
/// Data movement works on the element byte size (1/2/4/8/16), so one code path serves every
/// element type; string tensors go through a `String` path over `storage.strings`.
func registerShapeOps(_ r: inout OpRegistry) {
    r.rewrite(.fuse, ReshapeToSameShapeIsIdentity())
    registerViewOps(&r)
    registerLayoutOps(&r)
    registerIndexOps(&r)
    registerBuilderOps(&r)
    registerMiscShapeOps(&r)
}

// MARK: - element access (fileprivate helpers)

/// Largest output this family allocates (bytes); larger requests are refused, not attempted.
private let shapeOpsMaxBytes = 1 << 34

/// Validates a requested output shape: no negative dims, no overflow, under the size cap.
private func checkedShape(_ shape: [Int], _ dtype: DType, _ what: String) throws -> [Int] {
    var n = 1
    for d in shape {
        guard d >= 0 else { throw OpError("\(what): negative dimension in shape \(describeShape(shape))") }
        let (p, o) = n.multipliedReportingOverflow(by: d)
        guard !o else { throw OpError("\(what): shape \(describeShape(shape)) is too large") }
        n = p
    }
    let bytes = n.multipliedReportingOverflow(by: max(dtype.byteSize, 8))
    guard !bytes.overflow, bytes.partialValue <= shapeOpsMaxBytes else {
        throw OpError("\(what): output shape \(describeShape(shape)) (\(n) elements) exceeds the size limit")
    }
    return shape
}

/// Sum / product with overflow reported as an OpError.
private func checkedAdd(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (v, o) = a.addingReportingOverflow(b)
    guard !o else { throw OpError("\(what): size overflow") }
    return v
}
/// The product of sizes, or a typed error naming `what` when it overflows.
func checkedProduct(_ a: [Int], _ what: String) throws -> Int {
    var n = 1
    for d in a {
        let (p, o) = n.multipliedReportingOverflow(by: d)
        guard !o else { throw OpError("\(what): size overflow in \(a)") }
        n = p
    }
    return n
}

/// 16-byte element (complex128) for data movement.
private struct ShapeBytes16 { var lo: UInt64; var hi: UInt64 }

/// Generic code run once per element carrier type.
private protocol ElementMover {
    associatedtype Result
    func move<T>(_ type: T.Type) throws -> Result
}

private func dispatchElements<V: ElementMover>(_ dt: DType, _ v: V) throws -> V.Result {
    if dt == .string { return try v.move(String.self) }
    switch dt.byteSize {
    case 1: return try v.move(UInt8.self)
    case 2: return try v.move(UInt16.self)
    case 4: return try v.move(UInt32.self)
    case 8: return try v.move(UInt64.self)
    case 16: return try v.move(ShapeBytes16.self)
    default: throw ONNXError.unsupportedType("element type \(dt) cannot be moved")
    }
}

/// Read access to a tensor's elements as carrier type T (String for string tensors: a temporary copy).
private final class ElemSource<T> {
    let ptr: UnsafePointer<T>
    private let keep: Tensor
    private let owned: UnsafeMutablePointer<String>?
    private let n: Int
    init(_ t: Tensor) {
        keep = t
        if t.dtype == .string {
            let s = t.storage.strings
            n = s.count
            let p = UnsafeMutablePointer<String>.allocate(capacity: max(n, 1))
            _ = UnsafeMutableBufferPointer(start: p, count: n).initialize(from: s)
            owned = p
            ptr = UnsafePointer(UnsafeMutableRawPointer(p).assumingMemoryBound(to: T.self))
        } else {
            n = 0
            owned = nil
            ptr = UnsafePointer(t.raw.assumingMemoryBound(to: T.self))
        }
    }
    deinit {
        if let p = owned { p.deinitialize(count: n); p.deallocate() }
    }
}

/// A new output tensor written through a T pointer; `finish()` returns the tensor.
private final class ElemDest<T> {
    let ptr: UnsafeMutablePointer<T>
    let dtype: DType
    let shape: [Int]
    private let tensor: Tensor?
    private let strs: UnsafeMutablePointer<String>?
    private let n: Int
    init(_ dtype: DType, _ shape: [Int], zeroed: Bool = false) throws {
        self.dtype = dtype
        self.shape = shape
        n = shape.reduce(1, *)
        if dtype == .string {
            let p = UnsafeMutablePointer<String>.allocate(capacity: max(n, 1))
            p.initialize(repeating: "", count: n)
            strs = p
            tensor = nil
            ptr = UnsafeMutableRawPointer(p).assumingMemoryBound(to: T.self)
        } else {
            let t = zeroed ? try Tensor.zeros(dtype, shape) : try Tensor.uninitialized(dtype, shape)
            tensor = t
            strs = nil
            ptr = t.raw.assumingMemoryBound(to: T.self)
        }
    }
    func finish() -> Tensor {
        if let t = tensor { return t }
        let arr = Array(UnsafeBufferPointer(start: strs!, count: n))
        return Tensor(validShape: shape, strings: arr)
    }
    deinit {
        if let p = strs { p.deinitialize(count: n); p.deallocate() }
    }
}

/// First element of a tensor of the same dtype, as carrier T.
private func firstElement<T>(_ t: Tensor, _: T.Type) -> T {
    let s = ElemSource<T>(t)
    return withExtendedLifetime(s) { s.ptr.pointee }
}

/// A one-element tensor of `dtype` holding `value` (numeric types), or "" for strings.
private func scalarOf(_ dtype: DType, _ value: Double) throws -> Tensor {
    if dtype == .string { return Tensor(validShape: [1], strings: [""]) }
    if value == 0 { return try Tensor.zeros(dtype, [1]) }
    return try Tensor.fromDoubles([value], shape: [1], dtype: dtype)
}

/// Reads integer values (int32/int64 and other integer types) from an index-like input.
func readInts(_ t: Tensor, _ what: String) throws -> [Int] {
    guard t.dtype.isInteger else { throw OpError("\(what) must be an integer tensor, got \(t.dtype)") }
    return try t.readAsInts()
}

/// Normalizes an index against a dimension (negative wraps once), or throws.
@inline(__always)
private func wrapIndex(_ i: Int, _ dim: Int, _ what: String) throws -> Int {
    let j = i < 0 ? i + dim : i
    guard j >= 0 && j < dim else { throw OpError("\(what) \(i) is out of range for dimension \(dim)") }
    return j
}

/// Copies a strided view of `src` into a new contiguous tensor.
private struct StridedViewMover: ElementMover {
    let src: Tensor
    let offset: Int
    let strides: [Int]
    let shape: [Int]
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(src)
        let d = try ElemDest<T>(src.dtype, shape)
        ShapeKernels.stridedCopy(src: s.ptr, offset: offset, strides: strides, shape: shape, dst: d.ptr)
        return withExtendedLifetime(s) { d.finish() }
    }
}

private func stridedView(_ src: Tensor, offset: Int = 0, strides: [Int], shape: [Int]) throws -> Tensor {
    try dispatchElements(src.dtype, StridedViewMover(src: src, offset: offset, strides: strides, shape: shape))
}

func transposed(_ x: Tensor, _ perm: [Int]) throws -> Tensor {
    let st = contiguousStrides(x.shape)
    return try stridedView(x, strides: perm.map { st[$0] }, shape: perm.map { x.shape[$0] })
}

private func prod(_ a: ArraySlice<Int>) -> Int { a.reduce(1, *) }

// MARK: - Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze

private func registerViewOps(_ r: inout OpRegistry) {
    r.register("Shape", infer: Inference(inferShape), closure: { ctx in
        let start = try ctx.opset >= 15 ? ctx.int("start", default: 0) : 0
        let end = try ctx.opset >= 15 ? ctx.int("end") : nil
        return { inputs, _ in
            let x = try inputs.required(0)
            let rank = x.rank
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
            let s = clamp(start), e = clamp(end ?? rank)
            let dims = s < e ? x.shape[s..<e].map { Int64($0) } : []
            return [Tensor(validShape: [dims.count], scalars: dims)]
        }
    })

    r.register("Size", infer: Inference { _, _ in [TypeInfo(dtype: .int64, shape: [])] }, closure: { _ in
        return { inputs, _ in [Tensor(scalar: Int64(try inputs.required(0).count))] }
    })

    r.register("Reshape", infer: Inference(inferReshape), closure: { ctx in
        let allowZero = try ctx.opset >= 14 ? ctx.int("allowzero", default: 0) != 0 : false
        let attrShape = ctx.opset < 5 ? try ctx.ints("shape") : nil
        if ctx.opset < 5 && attrShape == nil { throw ctx.attributeError("shape", "required attribute is missing") }
        return { inputs, _ in
            let x = try inputs.required(0)
            let req = try attrShape ?? readInts(try inputs.required(1, "shape"), "Reshape shape")
            let out = try reshapeTarget(x.shape, req, allowZero: allowZero)
            return [x.reshaped(out)]
        }
    })

    r.register("Flatten", infer: Inference(inferFlatten), closure: { ctx in
        let axis = try ctx.int("axis", default: 1)
        return { inputs, _ in
            let x = try inputs.required(0)
            let rank = x.rank
            let a = axis < 0 ? axis + rank : axis
            guard a >= 0 && a <= rank else { throw OpError("Flatten: axis \(axis) is out of range for rank \(rank)") }
            return [x.reshaped([prod(x.shape[0..<a]), prod(x.shape[a...])])]
        }
    })

    r.register("Squeeze", infer: Inference(inferSqueeze), closure: { ctx in
        let attrAxes = ctx.opset < 13 ? try ctx.ints("axes") : nil
        let opset = ctx.opset
        return { inputs, _ in
            let x = try inputs.required(0)
            var axes = attrAxes
            if opset >= 13, let t = inputs.optional(1) { axes = try readInts(t, "Squeeze axes") }
            let rank = x.rank
            var drop = [Bool](repeating: false, count: rank)
            if let axes {
                for a in axes {
                    let n = try normalizeAxis(a, rank: rank, "Squeeze axis")
                    guard rank > 0, x.shape[n] == 1 else {
                        throw OpError("Squeeze: dimension \(a) of shape \(describeShape(x.shape)) is not 1")
                    }
                    drop[n] = true
                }
            } else {
                for i in 0..<rank where x.shape[i] == 1 { drop[i] = true }
            }
            let out = (0..<rank).filter { !drop[$0] }.map { x.shape[$0] }
            return [x.reshaped(out)]
        }
    })

    r.register("Unsqueeze", infer: Inference(inferUnsqueeze), closure: { ctx in
        let attrAxes = ctx.opset < 13 ? try ctx.ints("axes") : nil
        if ctx.opset < 13 && attrAxes == nil { throw ctx.attributeError("axes", "required attribute is missing") }
        return { inputs, _ in
            let x = try inputs.required(0)
            let axes = try attrAxes ?? readInts(try inputs.required(1, "axes"), "Unsqueeze axes")
            let outRank = x.rank + axes.count
            var isNew = [Bool](repeating: false, count: outRank)
            for a in axes {
                let n = try normalizeAxis(a, rank: outRank, "Unsqueeze axis")
                guard !isNew[n] else { throw OpError("Unsqueeze: axis \(a) is repeated in \(axes)") }
                isNew[n] = true
            }
            var out: [Int] = []
            var j = 0
            for i in 0..<outRank {
                if isNew[i] { out.append(1) } else { out.append(x.shape[j]); j += 1 }
            }
            return [x.reshaped(out)]
        }
    })
}

/// One axis of a Slice (step != 0): the first index taken, how many, and the step clamped to a safe range.
private func sliceBounds(start: Int, end: Int, step: Int, dim: Int) -> (begin: Int, count: Int, step: Int) {
    let s = min(max(step, -(1 << 62)), 1 << 62)
    var b = start, e = end
    if b < 0 { b = b &+ dim }
    if e < 0 { e = e &+ dim }
    if s > 0 {
        b = min(max(b, 0), dim); e = min(max(e, 0), dim)
        return (b, e > b ? (e - b - 1) / s + 1 : 0, s)
    }
    b = min(max(b, 0), dim - 1); e = min(max(e, -1), dim - 1)
    return (b, b > e ? (b - e - 1) / (-s) + 1 : 0, s)
}

/// Resolves a Reshape target (0 copies, -1 infers) against an input shape, or throws.
private func reshapeTarget(_ inShape: [Int], _ req: [Int], allowZero: Bool) throws -> [Int] {
    var out = req
    var inferAt = -1
    var known = 1
    let total = inShape.reduce(1, *)
    for (i, d) in req.enumerated() {
        if d == -1 {
            guard inferAt < 0 else { throw OpError("Reshape: more than one -1 in shape \(req)") }
            inferAt = i
            continue
        }
        if d == 0 && !allowZero {
            guard i < inShape.count else {
                throw OpError("Reshape: 0 at position \(i) of \(req) has no input dimension (input \(describeShape(inShape)))")
            }
            out[i] = inShape[i]
        } else if d < 0 {
            throw OpError("Reshape: invalid dimension \(d) in shape \(req)")
        }
        let (p, o) = known.multipliedReportingOverflow(by: out[i])
        guard !o else { throw OpError("Reshape: shape \(req) is too large") }
        known = p
    }
    if inferAt >= 0 {
        guard known != 0, total % known == 0 else {
            throw OpError("Reshape: cannot reshape input \(describeShape(inShape)) to \(req)")
        }
        out[inferAt] = total / known
    } else if known != total {
        throw OpError("Reshape: input \(describeShape(inShape)) (\(total) elements) cannot take shape \(req) (\(known) elements)")
    }
    return out
}

// MARK: - Transpose, Concat, Split, Slice, Expand, Tile, DepthToSpace, SpaceToDepth

private struct ConcatMover: ElementMover {
    let parts: [Tensor]
    let outShape: [Int]
    let dtype: DType
    let outer: Int
    let blockLens: [Int]
    func move<T>(_: T.Type) throws -> Tensor {
        let srcs = parts.map { ElemSource<T>($0) }
        let d = try ElemDest<T>(dtype, outShape)
        let total = blockLens.reduce(0, +)
        var col = 0
        for (s, len) in zip(srcs, blockLens) {
            if len > 0 {
                var dp = d.ptr + col, sp = s.ptr
                for _ in 0..<outer {
                    ShapeKernels.copyBlock(dp, sp, len)
                    dp += total; sp += len
                }
            }
            col += len
        }
        return withExtendedLifetime(srcs) { d.finish() }
    }
}

/// Slices `x` along one axis: [start, start+len) as a new tensor.
/// `parts` joined along `axis` (negative counts from the end); every other dimension and the
/// element type must agree. `what` names the op in errors.
func concatenate(_ parts: [Tensor], axis: Int, _ what: String) throws -> Tensor {
    guard let first = parts.first else { throw OpError("\(what): no inputs") }
    let rank = first.rank
    guard rank > 0 else { throw OpError("\(what): inputs must have rank >= 1") }
    let a = try normalizeAxis(axis, rank: rank, "\(what) axis")
    var outShape = first.shape
    outShape[a] = 0
    for p in parts {
        guard p.dtype == first.dtype else { throw OpError("\(what): mixed element types \(first.dtype) and \(p.dtype)") }
        guard p.rank == rank, (0..<rank).allSatisfy({ $0 == a || p.shape[$0] == first.shape[$0] }) else {
            throw OpError("\(what): shapes \(parts.map { describeShape($0.shape) }.joined(separator: ", ")) do not match except on axis \(axis)")
        }
        outShape[a] += p.shape[a]
    }
    let outer = prod(first.shape[0..<a])
    let inner = prod(first.shape[(a + 1)...])
    if parts.count == 1 { return first }
    return try dispatchElements(first.dtype, ConcatMover(parts: parts, outShape: outShape, dtype: first.dtype,
                                                         outer: outer, blockLens: parts.map { $0.shape[a] * inner }))
}

/// `len` entries of `x` along `axis` from `start` (a copy).
func sliceAxis(_ x: Tensor, axis: Int, start: Int, len: Int) throws -> Tensor {
    var shape = x.shape
    shape[axis] = len
    let st = contiguousStrides(x.shape)
    return try stridedView(x, offset: start * st[axis], strides: st, shape: shape)
}

private func registerLayoutOps(_ r: inout OpRegistry) {
    r.register("Transpose", infer: Inference(inferTranspose), closure: { ctx in
        let perm = try ctx.ints("perm")
        return { inputs, _ in
            let x = try inputs.required(0)
            let rank = x.rank
            let p = perm ?? Array((0..<rank).reversed())
            guard p.count == rank, Set(p).count == rank, p.allSatisfy({ $0 >= 0 && $0 < rank }) else {
                throw OpError("Transpose: perm \(p) is not a permutation for input \(describeShape(x.shape))")
            }
            if p == Array(0..<rank) { return [x] }
            return [try transposed(x, p)]
        }
    })

    r.register("Concat", infer: Inference(inferConcat), closure: { ctx in
        let axisAttr = try ctx.int("axis")
        if ctx.opset >= 4 && axisAttr == nil { throw ctx.attributeError("axis", "required attribute is missing") }
        let axis = axisAttr ?? 1
        return { inputs, _ in [try concatenate(inputs.compactMap { $0 }, axis: axis, "Concat")] }
    })

    r.register("Split", infer: Inference(inferSplit), closure: { ctx in
        let axis = try ctx.int("axis", default: 0)
        let attrSplit = ctx.opset < 13 ? try ctx.ints("split") : nil
        let numOutputs = ctx.opset >= 18 ? try ctx.int("num_outputs") : nil
        let nOut = ctx.outputCount
        let opset = ctx.opset
        return { inputs, _ in
            let x = try inputs.required(0)
            let a = try normalizeAxis(axis, rank: x.rank, "Split axis")
            let dim = x.rank > 0 ? x.shape[a] : 0
            var sizes: [Int]
            if let s = attrSplit {
                sizes = s
            } else if opset >= 13, let t = inputs.optional(1) {
                sizes = try readInts(t, "Split split")
            } else if opset == 1, let t = inputs.optional(1) {  // opset 1 also took split as an input
                sizes = try readInts(t, "Split split")
            } else {
                let n = numOutputs ?? nOut
                guard n > 0 else { throw OpError("Split: number of outputs must be positive") }
                if numOutputs == nil && dim % n != 0 {
                    throw OpError("Split: dimension \(dim) of \(describeShape(x.shape)) is not divisible into \(n) equal parts")
                }
                let chunk = (dim + n - 1) / n
                sizes = (0..<n).map { i in max(0, min(chunk, dim - i * chunk)) }
                guard sizes.reduce(0, +) == dim else {
                    throw OpError("Split: cannot split dimension \(dim) into \(n) parts")
                }
            }
            guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == dim else {
                throw OpError("Split: split sizes \(sizes) do not sum to dimension \(dim) of \(describeShape(x.shape))")
            }
            guard sizes.count == nOut else {
                throw OpError("Split: \(sizes.count) split sizes for \(nOut) outputs")
            }
            var outs: [Tensor] = []
            var start = 0
            for s in sizes {
                outs.append(try sliceAxis(x, axis: a, start: start, len: s))
                start += s
            }
            return outs
        }
    })

    r.register("Slice", infer: Inference(inferSlice), closure: { ctx in
        let legacy = ctx.opset < 10
        let aStarts = legacy ? try ctx.ints("starts") : nil
        let aEnds = legacy ? try ctx.ints("ends") : nil
        let aAxes = legacy ? try ctx.ints("axes") : nil
        if legacy && (aStarts == nil || aEnds == nil) { throw ctx.attributeError("starts", "starts and ends are required") }
        return { inputs, _ in
            let x = try inputs.required(0)
            let starts: [Int], ends: [Int]
            var axes: [Int]?, steps: [Int]?
            if legacy {
                starts = aStarts!; ends = aEnds!; axes = aAxes
            } else {
                starts = try readInts(try inputs.required(1, "starts"), "Slice starts")
                ends = try readInts(try inputs.required(2, "ends"), "Slice ends")
                if let t = inputs.optional(3) { axes = try readInts(t, "Slice axes") }
                if let t = inputs.optional(4) { steps = try readInts(t, "Slice steps") }
            }
            let rank = x.rank
            let ax = axes ?? Array(0..<starts.count)
            let stp = steps ?? [Int](repeating: 1, count: starts.count)
            guard starts.count == ends.count, ax.count == starts.count, stp.count == starts.count else {
                throw OpError("Slice: starts \(starts), ends \(ends), axes \(ax), steps \(stp) differ in length")
            }
            var begin = [Int](repeating: 0, count: rank)
            var step = [Int](repeating: 1, count: rank)
            var outShape = x.shape
            var seen = [Bool](repeating: false, count: rank)
            for i in 0..<ax.count {
                let a = try normalizeAxis(ax[i], rank: rank, "Slice axis")
                guard !seen[a] else { throw OpError("Slice: axis \(ax[i]) is repeated in \(ax)") }
                seen[a] = true
                let dim = x.shape[a]
                guard stp[i] != 0 else { throw OpError("Slice: step 0 on axis \(ax[i])") }
                let (b, n, s) = sliceBounds(start: starts[i], end: ends[i], step: stp[i], dim: dim)
                begin[a] = n > 0 ? b : 0
                step[a] = n > 1 ? s : 1
                outShape[a] = n
            }
            let st = contiguousStrides(x.shape)
            var offset = 0
            var strides = st
            for d in 0..<rank { offset += begin[d] * st[d]; strides[d] = st[d] * step[d] }
            if outShape == x.shape && step.allSatisfy({ $0 == 1 }) { return [x] }
            return [try stridedView(x, offset: offset, strides: strides, shape: outShape)]
        }
    })

    r.register("Expand", infer: Inference(inferExpand), closure: { _ in
        return { inputs, _ in
            let x = try inputs.required(0)
            let req = try readInts(try inputs.required(1, "shape"), "Expand shape")
            guard req.allSatisfy({ $0 >= 0 }) else { throw OpError("Expand: negative dimension in shape \(req)") }
            let out = try checkedShape(try broadcastShapes(x.shape, req), x.dtype, "Expand")
            if out == x.shape { return [x] }
            return [try stridedView(x, strides: broadcastStrides(x.shape, to: out), shape: out)]
        }
    })

    r.register("Tile", infer: Inference(inferTile), closure: { _ in
        return { inputs, _ in
            let x = try inputs.required(0)
            let reps = try readInts(try inputs.required(1, "repeats"), "Tile repeats")
            guard reps.count == x.rank else {
                throw OpError("Tile: \(reps.count) repeats for input of shape \(describeShape(x.shape))")
            }
            guard reps.allSatisfy({ $0 >= 0 }) else { throw OpError("Tile: negative repeat in \(reps)") }
            let out = try checkedShape(zip(x.shape, reps).map { try checkedProduct([$0, $1], "Tile") }, x.dtype, "Tile")
            // View the output as [r0, d0, r1, d1, ...] reading the input with stride 0 on repeat dims.
            let st = contiguousStrides(x.shape)
            var vShape: [Int] = [], vStrides: [Int] = []
            for i in 0..<x.rank { vShape += [reps[i], x.shape[i]]; vStrides += [0, st[i]] }
            let t = try stridedView(x, strides: vStrides, shape: vShape)
            return [t.reshaped(out)]
        }
    })

    r.register("DepthToSpace", infer: Inference { ctx, ins in [try inferBlockMove(ctx, ins, toSpace: true)] }, closure: { ctx in
        guard let b = try ctx.int("blocksize"), b > 0 else { throw ctx.attributeError("blocksize", "must be a positive integer") }
        let mode = try ctx.string("mode", default: "DCR")
        guard mode == "DCR" || mode == "CRD" else { throw ctx.attributeError("mode", "must be DCR or CRD, got \(mode)") }
        return { inputs, _ in
            let x = try inputs.required(0)
            guard x.rank == 4, x.shape[1] % (b * b) == 0 else {
                throw OpError("DepthToSpace: input \(describeShape(x.shape)) must be 4-D with channels divisible by \(b * b)")
            }
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let oc = c / (b * b)
            // Output viewed as [n, oc, h, b(i), w, b(j)].
            let hw = h * w
            let chanStride: (Int, Int, Int) -> Int = { co, i, j in
                mode == "DCR" ? ((i * b + j) * oc + co) * hw : ((co * b + i) * b + j) * hw
            }
            let sOC = chanStride(1, 0, 0), sI = chanStride(0, 1, 0), sJ = chanStride(0, 0, 1)
            let t = try stridedView(x, strides: [c * hw, sOC, w, sI, 1, sJ], shape: [n, oc, h, b, w, b])
            return [t.reshaped([n, oc, h * b, w * b])]
        }
    })

    r.register("SpaceToDepth", infer: Inference { ctx, ins in [try inferBlockMove(ctx, ins, toSpace: false)] }, closure: { ctx in
        guard let b = try ctx.int("blocksize"), b > 0 else { throw ctx.attributeError("blocksize", "must be a positive integer") }
        let mode = try ctx.string("mode", default: "DCR")
        guard mode == "DCR" || mode == "CRD" else { throw ctx.attributeError("mode", "must be DCR or CRD, got \(mode)") }
        return { inputs, _ in
            let x = try inputs.required(0)
            guard x.rank == 4, x.shape[2] % b == 0, x.shape[3] % b == 0 else {
                throw OpError("SpaceToDepth: input \(describeShape(x.shape)) must be 4-D with H and W divisible by \(b)")
            }
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let oh = h / b, ow = w / b
            // Input strides for [n, c, oh, bi, ow, bj].
            let sN = c * h * w, sC = h * w, sOH = b * w, sBI = w, sOW = b, sBJ = 1
            let t: Tensor
            if mode == "DCR" {
                t = try stridedView(x, strides: [sN, sBI, sBJ, sC, sOH, sOW], shape: [n, b, b, c, oh, ow])
            } else {
                t = try stridedView(x, strides: [sN, sC, sBI, sBJ, sOH, sOW], shape: [n, c, b, b, oh, ow])
            }
            return [t.reshaped([n, c * b * b, oh, ow])]
        }
    })
}

// MARK: - Gather, GatherElements, GatherND, Scatter*, Compress, NonZero, OneHot, ReverseSequence

private struct GatherMover: ElementMover {
    let x: Tensor
    let outShape: [Int]
    let outer: Int, axisDim: Int, inner: Int
    let indices: [Int]
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(x)
        let d = try ElemDest<T>(x.dtype, outShape)
        indices.withUnsafeBufferPointer { ip in
            ShapeKernels.gather(src: s.ptr, dst: d.ptr, outer: outer, axisDim: axisDim, inner: inner,
                                indices: ip.baseAddress!, indexCount: ip.count)
        }
        return withExtendedLifetime(s) { d.finish() }
    }
}

/// Gathers along `axis` with validated indices; `indexShape` replaces the axis dim in the output.
private func gatherAxis(_ x: Tensor, axis a: Int, indices: [Int], indexShape: [Int]) throws -> Tensor {
    let out = Array(x.shape[0..<a]) + indexShape + Array(x.shape[(a + 1)...])
    return try dispatchElements(x.dtype, GatherMover(x: x, outShape: out, outer: prod(x.shape[0..<a]), axisDim: x.shape[a],
                                                      inner: prod(x.shape[(a + 1)...]), indices: indices))
}

/// Elementwise gather/scatter by precomputed (dst, src) offsets.
private struct OffsetGatherMover: ElementMover {
    let x: Tensor
    let outShape: [Int]
    let srcOffsets: [Int]
    let block: Int
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(x)
        let d = try ElemDest<T>(x.dtype, outShape)
        for (i, o) in srcOffsets.enumerated() { ShapeKernels.copyBlock(d.ptr + i * block, s.ptr + o, block) }
        return withExtendedLifetime(s) { d.finish() }
    }
}

enum ScatterReduction: Sendable { case none, add, mul, max, min }

private func parseReduction(_ ctx: OpContext) throws -> ScatterReduction {
    guard let s = try ctx.string("reduction") else { return .none }
    switch s {
    case "none": return .none
    case "add": return .add
    case "mul": return .mul
    case "max": return .max
    case "min": return .min
    default: throw ctx.attributeError("reduction", "unknown reduction \(s)")
    }
}

@inline(__always)
private func reduceScalar<T: CastableScalar>(_ a: T, _ b: T, _ r: ScatterReduction) -> T {
    switch T.kind {
    case .float:
        let x = a.f64, y = b.f64
        switch r {
        case .none: return b
        case .add: return T(f64: x + y)
        case .mul: return T(f64: x * y)
        case .max: return (x.isNaN || y.isNaN) ? T(f64: .nan) : (y > x ? b : a)
        case .min: return (x.isNaN || y.isNaN) ? T(f64: .nan) : (y < x ? b : a)
        }
    case .signed, .bool:
        let x = a.i64, y = b.i64
        switch r {
        case .none: return b
        case .add: return T(i64: x &+ y)
        case .mul: return T(i64: x &* y)
        case .max: return y > x ? b : a
        case .min: return y < x ? b : a
        }
    case .unsigned:
        let x = a.u64, y = b.u64
        switch r {
        case .none: return b
        case .add: return T(u64: x &+ y)
        case .mul: return T(u64: x &* y)
        case .max: return y > x ? b : a
        case .min: return y < x ? b : a
        }
    }
}

/// Scatter: out = copy of data; then for each (dstOffset, srcOffset) block of `block` elements,
/// out[dst...] = reduce(out[dst...], updates[src...]).
private struct ScatterCopyMover: ElementMover {
    let data: Tensor, updates: Tensor
    let pairs: [(Int, Int)]
    let block: Int
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(data), u = ElemSource<T>(updates)
        let d = try ElemDest<T>(data.dtype, data.shape)
        ShapeKernels.copyBlock(d.ptr, s.ptr, data.count)
        for (dst, src) in pairs { ShapeKernels.copyBlock(d.ptr + dst, u.ptr + src, block) }
        return withExtendedLifetime((s, u)) { d.finish() }
    }
}

private struct ScatterReduceVisitor: ScalarTypeVisitor {
    let data: Tensor, updates: Tensor
    let pairs: [(Int, Int)]
    let block: Int
    let reduction: ScatterReduction
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(data.dtype, data.shape)
        let d = out.pointer(T.self), s = data.pointer(T.self), u = updates.pointer(T.self)
        d.update(from: s, count: data.count)
        for (dst, src) in pairs {
            for j in 0..<block { d[dst + j] = reduceScalar(d[dst + j], u[src + j], reduction) }
        }
        return out
    }
}

private func scatter(_ data: Tensor, _ updates: Tensor, pairs: [(Int, Int)], block: Int, _ r: ScatterReduction) throws -> Tensor {
    guard updates.dtype == data.dtype else { throw OpError("updates type \(updates.dtype) differs from data type \(data.dtype)") }
    if r == .none {
        return try dispatchElements(data.dtype, ScatterCopyMover(data: data, updates: updates, pairs: pairs, block: block))
    }
    return try data.dtype.visit(ScatterReduceVisitor(data: data, updates: updates, pairs: pairs, block: block, reduction: r))
}

/// Offsets for GatherElements/ScatterElements: for each element of `indices` (same rank as data),
/// the data offset with the axis coordinate replaced by the index.
private func elementOffsets(dataShape: [Int], indexShape: [Int], indices: [Int], axis a: Int, _ op: String) throws -> [Int] {
    guard dataShape.count == indexShape.count else {
        throw OpError("\(op): indices \(describeShape(indexShape)) and data \(describeShape(dataShape)) differ in rank")
    }
    for d in 0..<dataShape.count where d != a && indexShape[d] > dataShape[d] {
        throw OpError("\(op): indices \(describeShape(indexShape)) exceed data \(describeShape(dataShape)) on dim \(d)")
    }
    let dst = contiguousStrides(dataShape)
    var zeroAxis = dst
    zeroAxis[a] = 0
    var out = [Int](repeating: 0, count: indices.count)
    let dim = dataShape[a], sa = dst[a]
    var i = 0
    var err: Error?
    ShapeKernels.forEachOffset(shape: indexShape, aStrides: zeroAxis, bStrides: contiguousStrides(indexShape)) { base, _ in
        if err != nil { return }
        let v = indices[i]
        let j = v < 0 ? v + dim : v
        if j < 0 || j >= dim { err = OpError("\(op): index \(v) is out of range for axis \(a) of size \(dim)"); return }
        out[i] = base + j * sa
        i += 1
    }
    if let err { throw err }
    return out
}

/// GatherND/ScatterND offsets: for each index tuple (per batch), the data offset and the slice size.
private func ndOffsets(dataShape: [Int], indexShape: [Int], indices: [Int], batchDims b: Int, _ op: String) throws -> (offsets: [Int], slice: Int) {
    let r = dataShape.count, q = indexShape.count
    guard q >= 1, let k = indexShape.last, b >= 0, b < min(q, r + 1), k >= 0, b + k <= r else {
        throw OpError("\(op): indices \(describeShape(indexShape)) do not fit data \(describeShape(dataShape)) with batch_dims \(b)")
    }
    guard Array(dataShape[0..<b]) == Array(indexShape[0..<b]) else {
        throw OpError("\(op): batch dims of data \(describeShape(dataShape)) and indices \(describeShape(indexShape)) differ")
    }
    let st = contiguousStrides(dataShape)
    let slice = prod(dataShape[(b + k)...])
    let batches = prod(dataShape[0..<b])
    let batchStride = prod(dataShape[b...])
    let tuples = prod(indexShape[0..<(q - 1)])
    let perBatch = tuples / max(batches, 1)
    var out = [Int](repeating: 0, count: tuples)
    for t in 0..<tuples {
        var off = (perBatch > 0 ? t / perBatch : 0) * batchStride
        for j in 0..<k {
            let dim = dataShape[b + j]
            let v = indices[t * k + j]
            let w = v < 0 ? v + dim : v
            guard w >= 0 && w < dim else { throw OpError("\(op): index \(v) is out of range for dimension \(dim) (data \(describeShape(dataShape)))") }
            off += w * st[b + j]
        }
        out[t] = off
    }
    return (out, slice)
}

private struct ReverseSequenceMover: ElementMover {
    let x: Tensor
    let lens: [Int]
    let timeAxis: Int, batchAxis: Int
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(x)
        let d = try ElemDest<T>(x.dtype, x.shape)
        ShapeKernels.copyBlock(d.ptr, s.ptr, x.count)
        let st = contiguousStrides(x.shape)
        var rest = x.shape
        rest[timeAxis] = 1; rest[batchAxis] = 1
        var restSt = st
        restSt[timeAxis] = 0; restSt[batchAxis] = 0
        for (bi, l) in lens.enumerated() where l > 1 {
            for t in 0..<l {
                let dOff = bi * st[batchAxis] + t * st[timeAxis]
                let sOff = bi * st[batchAxis] + (l - 1 - t) * st[timeAxis]
                ShapeKernels.forEachOffset(shape: rest, aStrides: restSt, bStrides: restSt) { o, _ in
                    d.ptr[dOff + o] = s.ptr[sOff + o]
                }
            }
        }
        return withExtendedLifetime(s) { d.finish() }
    }
}

private struct OneHotMover: ElementMover {
    let values: Tensor
    let outShape: [Int]
    let outer: Int, depth: Int, inner: Int
    let indices: [Int]   // -1 for none
    func move<T>(_: T.Type) throws -> Tensor {
        let v = ElemSource<T>(values)
        let off = v.ptr[0], on = v.ptr[1]
        let d = try ElemDest<T>(values.dtype, outShape)
        d.ptr.update(repeating: off, count: outer * depth * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                let k = indices[o * inner + i]
                if k >= 0 { d.ptr[(o * depth + k) * inner + i] = on }
            }
        }
        return withExtendedLifetime(v) { d.finish() }
    }
}

private struct NonZeroVisitor: ScalarTypeVisitor {
    let x: Tensor
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        let p = x.pointer(T.self)
        let n = x.count
        var flat: [Int] = []
        for i in 0..<n where p[i].f64 != 0 || (T.kind != .float && p[i].u64 != 0) { flat.append(i) }
        let shape = x.rank == 0 ? [1] : x.shape
        let r = shape.count
        let st = contiguousStrides(shape)
        var out = [Int64](repeating: 0, count: r * flat.count)
        for (j, f) in flat.enumerated() {
            var rem = f
            for d in 0..<r { out[d * flat.count + j] = Int64(rem / st[d]); rem %= st[d] }
        }
        return Tensor(validShape: [r, flat.count], scalars: out)
    }
}

private func registerIndexOps(_ r: inout OpRegistry) {
    r.register("Gather", infer: Inference(inferGather), closure: { ctx in
        let axis = try ctx.int("axis", default: 0)
        return { inputs, _ in
            let x = try inputs.required(0)
            let idxT = try inputs.required(1, "indices")
            let a = try normalizeAxis(axis, rank: x.rank, "Gather axis")
            guard x.rank > 0 else { throw OpError("Gather: data must have rank >= 1") }
            let dim = x.shape[a]
            let idx = try readInts(idxT, "Gather indices").map { try wrapIndex($0, dim, "Gather: index") }
            return [try gatherAxis(x, axis: a, indices: idx, indexShape: idxT.shape)]
        }
    })

    r.register("GatherElements", infer: Inference { _, ins in [TypeInfo(dtype: ins.dtype(0), shape: ins.shape(1))] }, closure: { ctx in
        let axis = try ctx.int("axis", default: 0)
        return { inputs, _ in
            let x = try inputs.required(0)
            let idxT = try inputs.required(1, "indices")
            let a = try normalizeAxis(axis, rank: x.rank, "GatherElements axis")
            let offs = try elementOffsets(dataShape: x.shape, indexShape: idxT.shape,
                                          indices: readInts(idxT, "GatherElements indices"), axis: a, "GatherElements")
            return [try dispatchElements(x.dtype, OffsetGatherMover(x: x, outShape: idxT.shape, srcOffsets: offs, block: 1))]
        }
    })

    r.register("GatherND", infer: Inference(inferGatherND), closure: { ctx in
        let b = try ctx.opset >= 12 ? ctx.int("batch_dims", default: 0) : 0
        return { inputs, _ in
            let x = try inputs.required(0)
            let idxT = try inputs.required(1, "indices")
            let (offs, slice) = try ndOffsets(dataShape: x.shape, indexShape: idxT.shape,
                                              indices: readInts(idxT, "GatherND indices"), batchDims: b, "GatherND")
            let k = idxT.shape.last ?? 0
            let out = Array(idxT.shape.dropLast()) + Array(x.shape[(b + k)...])
            return [try dispatchElements(x.dtype, OffsetGatherMover(x: x, outShape: out, srcOffsets: offs, block: slice))]
        }
    })

    r.register("ScatterND", infer: .sameAsFirst, closure: { ctx in
        let red = try parseReduction(ctx)
        return { inputs, _ in
            let x = try inputs.required(0)
            let idxT = try inputs.required(1, "indices")
            let upd = try inputs.required(2, "updates")
            let (offs, slice) = try ndOffsets(dataShape: x.shape, indexShape: idxT.shape,
                                              indices: readInts(idxT, "ScatterND indices"), batchDims: 0, "ScatterND")
            let k = idxT.shape.last ?? 0
            let want = Array(idxT.shape.dropLast()) + Array(x.shape[k...])
            guard upd.shape == want else {
                throw OpError("ScatterND: updates \(describeShape(upd.shape)) should be \(describeShape(want)) for data \(describeShape(x.shape)) and indices \(describeShape(idxT.shape))")
            }
            let pairs = offs.enumerated().map { ($0.element, $0.offset * slice) }
            return [try scatter(x, upd, pairs: pairs, block: slice, red)]
        }
    })

    for op in ["ScatterElements", "Scatter"] {
        r.register(op, infer: .sameAsFirst, closure: { ctx in
            let axis = try ctx.int("axis", default: 0)
            let red = try parseReduction(ctx)
            return { inputs, _ in
                let x = try inputs.required(0)
                let idxT = try inputs.required(1, "indices")
                let upd = try inputs.required(2, "updates")
                guard upd.shape == idxT.shape else {
                    throw OpError("\(op): updates \(describeShape(upd.shape)) and indices \(describeShape(idxT.shape)) differ")
                }
                let a = try normalizeAxis(axis, rank: x.rank, "\(op) axis")
                let offs = try elementOffsets(dataShape: x.shape, indexShape: idxT.shape,
                                              indices: readInts(idxT, "\(op) indices"), axis: a, op)
                let pairs = offs.enumerated().map { ($0.element, $0.offset) }
                return [try scatter(x, upd, pairs: pairs, block: 1, red)]
            }
        })
    }

    r.register("Compress", infer: Inference(inferCompress), closure: { ctx in
        let axis = try ctx.int("axis")
        return { inputs, _ in
            var x = try inputs.required(0)
            let c = try inputs.required(1, "condition")
            guard c.rank == 1 else { throw OpError("Compress: condition must be 1-D, got \(describeShape(c.shape))") }
            let cond = try c.readAsDoubles()
            var a = 0
            if let axis { a = try normalizeAxis(axis, rank: x.rank, "Compress axis") } else { x = x.reshaped([x.count]) }
            guard x.rank > 0 else { throw OpError("Compress: input must have rank >= 1") }
            let dim = x.shape[a]
            var idx: [Int] = []
            for (i, v) in cond.enumerated() where v != 0 {
                guard i < dim else { throw OpError("Compress: condition of length \(cond.count) selects beyond dimension \(dim)") }
                idx.append(i)
            }
            return [try gatherAxis(x, axis: a, indices: idx, indexShape: [idx.count])]
        }
    })

    r.register("NonZero", infer: Inference { _, ins in [TypeInfo(dtype: .int64, shape: [ins.shape(0).map { .known($0.count) } ?? .unknown, .unknown])] }, closure: { _ in
        return { inputs, _ in
            let x = try inputs.required(0)
            return [try x.dtype.visit(NonZeroVisitor(x: x))]
        }
    })

    r.register("OneHot", infer: Inference(inferOneHot), closure: { ctx in
        let axis = try ctx.int("axis", default: -1)
        return { inputs, _ in
            let idxT = try inputs.required(0)
            let depthT = try inputs.required(1, "depth")
            let values = try inputs.required(2, "values")
            guard depthT.count == 1, values.count == 2 else {
                throw OpError("OneHot: depth must hold 1 value and values 2, got \(describeShape(depthT.shape)) and \(describeShape(values.shape))")
            }
            let dd = try depthT.readAsDoubles()[0]
            guard dd.isFinite, dd >= 1, dd < 1e12 else { throw OpError("OneHot: invalid depth \(dd)") }
            let depth = Int(dd)
            let outRank = idxT.rank + 1
            let a = try normalizeAxis(axis, rank: outRank, "OneHot axis")
            var outShape = idxT.shape
            outShape.insert(depth, at: a)
            _ = try checkedShape(outShape, values.dtype, "OneHot")
            let idx: [Int] = try idxT.readAsDoubles().map { v in
                guard v.isFinite, abs(v) < 1e15 else { return -1 }
                var k = Int(v.rounded(.towardZero))
                if k < 0 { k += depth }
                return (k >= 0 && k < depth) ? k : -1
            }
            let outer = prod(idxT.shape[0..<a]), inner = prod(idxT.shape[a...])
            return [try dispatchElements(values.dtype, OneHotMover(values: values, outShape: outShape, outer: outer,
                                                                    depth: depth, inner: inner, indices: idx))]
        }
    })

    r.register("ReverseSequence", infer: .sameAsFirst, closure: { ctx in
        let timeAxis = try ctx.int("time_axis", default: 0)
        let batchAxis = try ctx.int("batch_axis", default: 1)
        return { inputs, _ in
            let x = try inputs.required(0)
            let lensT = try inputs.required(1, "sequence_lens")
            guard x.rank >= 2 else { throw OpError("ReverseSequence: input \(describeShape(x.shape)) must have rank >= 2") }
            let t = try normalizeAxis(timeAxis, rank: x.rank, "time_axis")
            let b = try normalizeAxis(batchAxis, rank: x.rank, "batch_axis")
            guard t != b, t <= 1, b <= 1 else { throw OpError("ReverseSequence: time_axis and batch_axis must be 0 and 1") }
            let lens = try readInts(lensT, "sequence_lens")
            guard lens.count == x.shape[b] else {
                throw OpError("ReverseSequence: \(lens.count) sequence lengths for batch of \(x.shape[b])")
            }
            for l in lens where l < 0 || l > x.shape[t] {
                throw OpError("ReverseSequence: sequence length \(l) is out of range for time dimension \(x.shape[t])")
            }
            return [try dispatchElements(x.dtype, ReverseSequenceMover(x: x, lens: lens, timeAxis: t, batchAxis: b))]
        }
    })
}

// MARK: - Pad, ConstantOfShape, Range, EyeLike, Trilu

private enum PadMode { case constant, reflect, edge, wrap }

private struct PadMover: ElementMover {
    let x: Tensor
    let outShape: [Int]
    let maps: [[Int]]    // per dim: output index -> source index, -1 = constant
    let fill: Tensor
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(x)
        let fv: T = firstElement(fill, T.self)
        let d = try ElemDest<T>(x.dtype, outShape)
        let rank = outShape.count
        if rank == 0 { d.ptr.pointee = s.ptr.pointee; return withExtendedLifetime(s) { d.finish() } }
        let total = outShape.reduce(1, *)
        if total == 0 { return withExtendedLifetime(s) { d.finish() } }
        // Runs of the innermost dim.
        let last = maps[rank - 1]
        var runs: [(Int, Int, Int)] = []
        for (j, m) in last.enumerated() {
            if let r = runs.last {
                let contiguous = (m < 0 && r.1 < 0) || (m >= 0 && r.1 >= 0 && r.1 + r.2 == m)
                if contiguous { runs[runs.count - 1].2 += 1; continue }
            }
            runs.append((j, m, 1))
        }
        let inSt = contiguousStrides(x.shape)
        let w = outShape[rank - 1]
        let rows = total / w
        var idx = [Int](repeating: 0, count: rank)
        for row in 0..<rows {
            var base = 0
            var isFill = false
            for dd in 0..<(rank - 1) {
                let m = maps[dd][idx[dd]]
                if m < 0 { isFill = true; break }
                base += m * inSt[dd]
            }
            let dp = d.ptr + row * w
            if isFill { dp.update(repeating: fv, count: w) } else {
                ShapeKernels.padRow(src: s.ptr + base, dst: dp, runs: runs, fill: fv)
            }
            var dd = rank - 2
            while dd >= 0 {
                idx[dd] += 1
                if idx[dd] < outShape[dd] { break }
                idx[dd] = 0
                dd -= 1
            }
        }
        return withExtendedLifetime(s) { d.finish() }
    }
}

private func padMap(dim n: Int, before: Int, after: Int, mode: PadMode) throws -> [Int] {
    let out = n + before + after
    guard out >= 0 else { throw OpError("Pad: pads \(before), \(after) leave a negative size for dimension \(n)") }
    if n == 0 && out > 0 && mode != .constant {
        throw OpError("Pad: cannot pad an empty dimension in this mode")
    }
    return (0..<out).map { o in
        let i = o - before
        if i >= 0 && i < n { return i }
        switch mode {
        case .constant: return -1
        case .edge: return min(max(i, 0), n - 1)
        case .wrap: return ((i % n) + n) % n
        case .reflect:
            if n == 1 { return 0 }
            let p = 2 * (n - 1)
            var m = ((i % p) + p) % p
            if m >= n { m = p - m }
            return m
        }
    }
}

private struct TriluMover: ElementMover {
    let x: Tensor, k: Int, upper: Bool
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(x)
        let z: T = firstElement(try scalarOf(x.dtype, 0), T.self)
        let d = try ElemDest<T>(x.dtype, x.shape)
        let r = x.rank
        let rows = x.shape[r - 2], cols = x.shape[r - 1]
        ShapeKernels.trilu(src: s.ptr, dst: d.ptr, batch: prod(x.shape[0..<(r - 2)]), rows: rows, cols: cols,
                           k: k, upper: upper, zero: z)
        return withExtendedLifetime(s) { d.finish() }
    }
}

private struct FillMover: ElementMover {
    let value: Tensor
    let shape: [Int]
    func move<T>(_: T.Type) throws -> Tensor {
        let v: T = firstElement(value, T.self)
        let d = try ElemDest<T>(value.dtype, shape)
        d.ptr.update(repeating: v, count: shape.reduce(1, *))
        return d.finish()
    }
}

private struct RangeVisitor: ScalarTypeVisitor {
    let start: Double, limit: Double, delta: Double
    let iStart: Int64, iLimit: Int64, iDelta: Int64
    let dtype: DType
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        let n: Int
        if T.kind == .float {
            guard delta != 0, delta.isFinite, start.isFinite, limit.isFinite else { throw OpError("Range: invalid start \(start), limit \(limit), delta \(delta)") }
            let c = ((limit - start) / delta).rounded(.up)
            guard c < Double(1 << 40) else { throw OpError("Range: \(c) elements exceed the size limit") }
            n = c > 0 ? Int(c) : 0
        } else {
            guard iDelta != 0 else { throw OpError("Range: delta is 0") }
            let span = Double(iLimit) - Double(iStart)
            let c = (span / Double(iDelta)).rounded(.up)
            guard c < Double(1 << 40) else { throw OpError("Range: \(c) elements exceed the size limit") }
            // Exact integer count.
            let (diff, ovf) = iLimit.subtractingReportingOverflow(iStart)
            guard !ovf else { throw OpError("Range: limit \(iLimit) - start \(iStart) overflows") }
            var q = c > 0 ? Int(diff / iDelta) : 0
            if c > 0 && diff % iDelta != 0 { q += 1 }
            n = max(q, 0)
        }
        _ = try checkedShape([n], dtype, "Range")
        let out = try Tensor.uninitialized(dtype, [n])
        let p = out.pointer(T.self)
        if T.kind == .float {
            for i in 0..<n { p[i] = T(f64: start + Double(i) * delta) }
        } else {
            for i in 0..<n { p[i] = T(i64: iStart &+ Int64(i) &* iDelta) }
        }
        return out
    }
}

private func registerBuilderOps(_ r: inout OpRegistry) {
    r.register("Pad", infer: Inference(inferPad), closure: { ctx in
        let modeName = try ctx.string("mode", default: "constant")
        let mode: PadMode
        switch modeName {
        case "constant": mode = .constant
        case "reflect": mode = .reflect
        case "edge": mode = .edge
        case "wrap": mode = .wrap
        default: throw ctx.attributeError("mode", "unknown mode \(modeName)")
        }
        let legacy = ctx.opset < 11
        let attrPads = legacy ? try (ctx.ints("pads") ?? ctx.ints("paddings")) : nil
        if legacy && attrPads == nil { throw ctx.attributeError("pads", "required attribute is missing") }
        let attrValue = legacy ? try ctx.float("value", default: 0) : 0
        let opset = ctx.opset
        return { inputs, _ in
            let x = try inputs.required(0)
            let rank = x.rank
            let padsIn = try attrPads ?? readInts(try inputs.required(1, "pads"), "Pad pads")
            var axes = Array(0..<rank)
            if !legacy, opset >= 18, let t = inputs.optional(3) {
                axes = try readInts(t, "Pad axes").map { try normalizeAxis($0, rank: rank, "Pad axis") }
            }
            guard padsIn.count == 2 * axes.count else {
                throw OpError("Pad: \(padsIn.count) pads for \(axes.count) axes of input \(describeShape(x.shape))")
            }
            var before = [Int](repeating: 0, count: rank), after = before
            for (i, a) in axes.enumerated() { before[a] = padsIn[i]; after[a] = padsIn[i + axes.count] }
            var fill: Tensor
            if !legacy, let v = inputs.optional(2), v.count > 0 {
                guard v.dtype == x.dtype else { throw OpError("Pad: constant_value type \(v.dtype) differs from data type \(x.dtype)") }
                fill = v
            } else {
                fill = try scalarOf(x.dtype, Double(attrValue))
            }
            if x.dtype == .string && fill.count == 0 { fill = Tensor(validShape: [1], strings: [""]) }
            let outShape = try checkedShape((0..<rank).map {
                try checkedAdd(checkedAdd(x.shape[$0], before[$0], "Pad"), after[$0], "Pad")
            }, x.dtype, "Pad")
            let maps = try (0..<rank).map { try padMap(dim: x.shape[$0], before: before[$0], after: after[$0], mode: mode) }
            return [try dispatchElements(x.dtype, PadMover(x: x, outShape: outShape, maps: maps, fill: fill))]
        }
    })

    r.register("ConstantOfShape", infer: Inference(inferConstantOfShape), closure: { ctx in
        let value = try ctx.tensor("value") ?? Tensor(validShape: [1], scalars: [Float(0)])
        guard value.count == 1 else { throw ctx.attributeError("value", "must hold exactly one element") }
        return { inputs, _ in
            let shapeT = try inputs.required(0)
            let shape = try checkedShape(readInts(shapeT, "ConstantOfShape shape"), value.dtype, "ConstantOfShape")
            return [try dispatchElements(value.dtype, FillMover(value: value, shape: shape))]
        }
    })

    r.register("Range", infer: Inference(inferRange), closure: { _ in
        return { inputs, _ in
            let s = try inputs.required(0), l = try inputs.required(1, "limit"), d = try inputs.required(2, "delta")
            guard s.count == 1, l.count == 1, d.count == 1 else {
                throw OpError("Range: start, limit and delta must be scalars, got \(describeShape(s.shape)), \(describeShape(l.shape)), \(describeShape(d.shape))")
            }
            let isInt = s.dtype.isInteger
            let ints = isInt ? [try s.readAsInts()[0], try l.readAsInts()[0], try d.readAsInts()[0]] : [0, 0, 0]
            let v = VisitorArgs(s: try s.readAsDoubles()[0], l: try l.readAsDoubles()[0], d: try d.readAsDoubles()[0])
            return [try s.dtype.visit(RangeVisitor(start: v.s, limit: v.l, delta: v.d, iStart: Int64(ints[0]),
                                                   iLimit: Int64(ints[1]), iDelta: Int64(ints[2]), dtype: s.dtype))]
        }
    })

    r.register("EyeLike", infer: Inference(inferEyeLike), closure: { ctx in
        let k = min(max(try ctx.int("k", default: 0), -(1 << 40)), 1 << 40)
        let dt = try ctx.int("dtype")
        return { inputs, _ in
            let x = try inputs.required(0)
            var dtype = x.dtype
            if let dt {
                guard let d = DType(rawValue: Int32(truncatingIfNeeded: dt)) else { throw OpError("EyeLike: unknown dtype \(dt)") }
                dtype = d
            }
            guard x.rank == 2 else { throw OpError("EyeLike: input must be 2-D, got \(describeShape(x.shape))") }
            guard dtype.isComputable, dtype != .string else { throw ONNXError.unsupportedType("EyeLike: \(dtype)") }
            let out = try Tensor.zeros(dtype, x.shape)
            let one = try scalarOf(dtype, 1)
            let rows = x.shape[0], cols = x.shape[1], bs = dtype.byteSize
            for i in 0..<rows {
                let j = i + k
                if j >= 0 && j < cols { (out.raw + (i * cols + j) * bs).copyMemory(from: one.raw, byteCount: bs) }
            }
            return [out]
        }
    })

    r.register("Trilu", infer: .sameAsFirst, closure: { ctx in
        let upper = try ctx.int("upper", default: 1) != 0
        return { inputs, _ in
            let x = try inputs.required(0)
            guard x.rank >= 2 else { throw OpError("Trilu: input must have rank >= 2, got \(describeShape(x.shape))") }
            var k = 0
            if let t = inputs.optional(1) {
                guard t.count == 1 else { throw OpError("Trilu: k must be a scalar") }
                k = try readInts(t, "Trilu k")[0]
                k = min(max(k, -(1 << 40)), 1 << 40)
            }
            return [try dispatchElements(x.dtype, TriluMover(x: x, k: k, upper: upper))]
        }
    })
}

private struct VisitorArgs { let s: Double, l: Double, d: Double }

// MARK: - Unique, Col2Im, CenterCropPad

/// Compares items (slices along an axis) lexicographically.
private struct UniqueComparator: ScalarTypeVisitor {
    let x: Tensor
    let outer: Int, n: Int, inner: Int
    func visit<T: CastableScalar>(_: T.Type) throws -> (Int, Int) -> Int {
        let p = x.pointer(T.self)
        let outer = outer, n = n, inner = inner
        return { a, b in
            for o in 0..<outer {
                let pa = p + (o * n + a) * inner, pb = p + (o * n + b) * inner
                for i in 0..<inner {
                    let c = compareScalars(pa[i], pb[i])
                    if c != 0 { return c }
                }
            }
            return 0
        }
    }
}

@inline(__always)
private func compareScalars<T: CastableScalar>(_ a: T, _ b: T) -> Int {
    switch T.kind {
    case .float:
        let x = a.f64, y = b.f64
        if x.isNaN || y.isNaN { return x.isNaN == y.isNaN ? 0 : (x.isNaN ? 1 : -1) }
        return x < y ? -1 : (x > y ? 1 : 0)
    case .signed, .bool:
        let x = a.i64, y = b.i64
        return x < y ? -1 : (x > y ? 1 : 0)
    case .unsigned:
        let x = a.u64, y = b.u64
        return x < y ? -1 : (x > y ? 1 : 0)
    }
}

private struct Col2ImVisitor: ScalarTypeVisitor {
    let x: Tensor
    let image: [Int], block: [Int], dil: [Int], padsB: [Int], strides: [Int], blocksPer: [Int]
    let n: Int, c: Int
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        guard T.kind == .float else { throw ONNXError.unsupportedType("Col2Im: \(x.dtype)") }
        let nd = image.count
        let imgSize = image.reduce(1, *), kSize = block.reduce(1, *), L = blocksPer.reduce(1, *)
        var acc = [Double](repeating: 0, count: n * c * imgSize)
        let p = x.pointer(T.self)
        let imgSt = contiguousStrides(image)
        var kIdx = [Int](repeating: 0, count: nd), lIdx = [Int](repeating: 0, count: nd)
        for b in 0..<n {
            for ch in 0..<c {
                for k in 0..<kSize {
                    var rem = k
                    for d in stride(from: nd - 1, through: 0, by: -1) { kIdx[d] = rem % block[d]; rem /= block[d] }
                    let row = (b * c * kSize + ch * kSize + k) * L
                    for l in 0..<L {
                        var r2 = l
                        for d in stride(from: nd - 1, through: 0, by: -1) { lIdx[d] = r2 % blocksPer[d]; r2 /= blocksPer[d] }
                        var off = 0
                        var inside = true
                        for d in 0..<nd {
                            let pos = lIdx[d] * strides[d] - padsB[d] + kIdx[d] * dil[d]
                            if pos < 0 || pos >= image[d] { inside = false; break }
                            off += pos * imgSt[d]
                        }
                        if inside { acc[(b * c + ch) * imgSize + off] += p[row + l].f64 }
                    }
                }
            }
        }
        let out = try Tensor.uninitialized(x.dtype, [n, c] + image)
        let o = out.pointer(T.self)
        for i in 0..<acc.count { o[i] = T(f64: acc[i]) }
        return out
    }
}

private struct CropPadMover: ElementMover {
    let x: Tensor
    let outShape: [Int]
    let srcStart: [Int], dstStart: [Int], copy: [Int]
    func move<T>(_: T.Type) throws -> Tensor {
        let s = ElemSource<T>(x)
        let d = try ElemDest<T>(x.dtype, outShape, zeroed: true)
        let sst = contiguousStrides(x.shape), dst = contiguousStrides(outShape)
        var so = 0, doff = 0
        for i in 0..<x.rank { so += srcStart[i] * sst[i]; doff += dstStart[i] * dst[i] }
        ShapeKernels.forEachOffset(shape: copy, aStrides: sst, bStrides: dst) { a, b in
            d.ptr[doff + b] = s.ptr[so + a]
        }
        return withExtendedLifetime(s) { d.finish() }
    }
}

private func registerMiscShapeOps(_ r: inout OpRegistry) {
    r.register("Unique", infer: Inference(inferUnique), closure: { ctx in
        let axisAttr = try ctx.int("axis")
        let sorted = try ctx.int("sorted", default: 1) != 0
        return { inputs, _ in
            var x = try inputs.required(0)
            var a = 0
            if let axisAttr {
                guard x.rank > 0 else { throw OpError("Unique: axis given for a 0-d input") }
                a = try normalizeAxis(axisAttr, rank: x.rank, "Unique axis")
            } else { x = x.reshaped([x.count]) }
            let n = x.shape[a], outer = prod(x.shape[0..<a]), inner = prod(x.shape[(a + 1)...])
            let cmp: (Int, Int) -> Int
            if x.dtype == .string {
                let s = x.storage.strings
                cmp = { i, j in
                    for o in 0..<outer {
                        for k in 0..<inner {
                            let u = s[(o * n + i) * inner + k], v = s[(o * n + j) * inner + k]
                            if u != v { return u < v ? -1 : 1 }
                        }
                    }
                    return 0
                }
            } else {
                cmp = try x.dtype.visit(UniqueComparator(x: x, outer: outer, n: n, inner: inner))
            }
            // Stable sort of item indices; groups of equal items.
            let order = (0..<n).sorted { i, j in
                let c = cmp(i, j)
                return c != 0 ? c < 0 : i < j
            }
            var groupFirst: [Int] = [], groupCount: [Int] = []
            var groupOf = [Int](repeating: 0, count: n)
            for (pos, i) in order.enumerated() {
                if pos == 0 || cmp(order[pos - 1], i) != 0 { groupFirst.append(i); groupCount.append(0) }
                groupOf[i] = groupFirst.count - 1
                groupCount[groupFirst.count - 1] += 1
            }
            var groupRank = Array(0..<groupFirst.count)  // output position of each group
            if !sorted {
                let byFirst = groupRank.sorted { groupFirst[$0] < groupFirst[$1] }
                for (pos, g) in byFirst.enumerated() { groupRank[g] = pos }
            }
            let u = groupFirst.count
            var firsts = [Int](repeating: 0, count: u), counts = [Int64](repeating: 0, count: u)
            for g in 0..<u { firsts[groupRank[g]] = groupFirst[g]; counts[groupRank[g]] = Int64(groupCount[g]) }
            let inverse = (0..<n).map { Int64(groupRank[groupOf[$0]]) }
            let y = try gatherAxis(x, axis: a, indices: firsts, indexShape: [u])
            return [y, Tensor(validShape: [u], scalars: firsts.map { Int64($0) }),
                    Tensor(validShape: [n], scalars: inverse), Tensor(validShape: [u], scalars: counts)]
        }
    })

    r.register("Col2Im", infer: Inference(inferCol2Im), closure: { ctx in
        let dAttr = try ctx.ints("dilations"), pAttr = try ctx.ints("pads"), sAttr = try ctx.ints("strides")
        return { inputs, _ in
            let x = try inputs.required(0)
            let image = try readInts(try inputs.required(1, "image_shape"), "Col2Im image_shape")
            let block = try readInts(try inputs.required(2, "block_shape"), "Col2Im block_shape")
            let nd = image.count
            guard nd > 0, block.count == nd, x.rank == 3 else {
                throw OpError("Col2Im: input \(describeShape(x.shape)), image_shape \(image), block_shape \(block) do not agree")
            }
            let dil = dAttr ?? [Int](repeating: 1, count: nd)
            let pads = pAttr ?? [Int](repeating: 0, count: 2 * nd)
            let st = sAttr ?? [Int](repeating: 1, count: nd)
            guard dil.count == nd, pads.count == 2 * nd, st.count == nd,
                  dil.allSatisfy({ $0 > 0 }), st.allSatisfy({ $0 > 0 }), block.allSatisfy({ $0 > 0 }), image.allSatisfy({ $0 > 0 }) else {
                throw OpError("Col2Im: invalid dilations \(dil), pads \(pads), strides \(st) for \(nd) spatial dims")
            }
            let kSize = try checkedProduct(block, "Col2Im")
            _ = try checkedShape(image, x.dtype, "Col2Im")
            guard x.shape[1] % kSize == 0 else { throw OpError("Col2Im: channels \(x.shape[1]) not divisible by block size \(kSize)") }
            var per: [Int] = []
            for d in 0..<nd {
                guard dil[d] < (1 << 30), block[d] < (1 << 30), abs(pads[d]) < (1 << 40), abs(pads[d + nd]) < (1 << 40) else {
                    throw OpError("Col2Im: dilations \(dil), block \(block) or pads \(pads) too large")
                }
                let eff = dil[d] * (block[d] - 1) + 1
                let v = (image[d] + pads[d] + pads[d + nd] - eff) / st[d] + 1
                guard v > 0 else { throw OpError("Col2Im: block \(block) does not fit image \(image)") }
                per.append(v)
            }
            guard per.reduce(1, *) == x.shape[2] else {
                throw OpError("Col2Im: input has \(x.shape[2]) blocks, image \(image) with block \(block) needs \(per.reduce(1, *))")
            }
            _ = try checkedShape([x.shape[0], x.shape[1] / kSize] + image, x.dtype, "Col2Im")
            return [try x.dtype.visit(Col2ImVisitor(x: x, image: image, block: block, dil: dil, padsB: Array(pads[0..<nd]),
                                                    strides: st, blocksPer: per, n: x.shape[0], c: x.shape[1] / kSize))]
        }
    })

    r.register("CenterCropPad", infer: Inference(inferCenterCropPad), closure: { ctx in
        let axesAttr = try ctx.ints("axes")
        return { inputs, _ in
            let x = try inputs.required(0)
            let target = try readInts(try inputs.required(1, "shape"), "CenterCropPad shape")
            let rank = x.rank
            let axes = try (axesAttr ?? Array(0..<rank)).map { try normalizeAxis($0, rank: rank, "CenterCropPad axis") }
            guard target.count == axes.count else {
                throw OpError("CenterCropPad: shape \(target) has \(target.count) values for \(axes.count) axes")
            }
            var outShape = x.shape, srcStart = [Int](repeating: 0, count: rank), dstStart = srcStart, copy = x.shape
            for (a, t) in zip(axes, target) {
                guard t >= 0 else { throw OpError("CenterCropPad: negative target size \(t)") }
                let dim = x.shape[a]
                outShape[a] = t
                if t < dim { srcStart[a] = (dim - t) / 2; copy[a] = t } else if t > dim { dstStart[a] = (t - dim) / 2; copy[a] = dim }
            }
            _ = try checkedShape(outShape, x.dtype, "CenterCropPad")
            return [try dispatchElements(x.dtype, CropPadMover(x: x, outShape: outShape, srcStart: srcStart, dstStart: dstStart, copy: copy))]
        }
    })
}

// MARK: - inference

private func inferShape(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let s = ins.shape(0) else { return [TypeInfo(dtype: .int64, shape: [.unknown])] }
    func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + s.count : v, 0), s.count) }
    let start = ctx.opset >= 15 ? clamp(try ctx.int("start", default: 0)) : 0
    let end = ctx.opset >= 15 ? clamp(try ctx.int("end", default: s.count)) : s.count
    return [TypeInfo(dtype: .int64, shape: [.known(max(0, end - start))])]
}

private func inferReshape(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let target = ctx.opset < 5 ? try ctx.ints("shape") : ins.ints(1) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let allowZero = try ctx.opset >= 14 && ctx.int("allowzero", default: 0) != 0
    let src = ins.shape(0)
    var out: [Dim] = []
    var inferAt = -1
    for (i, d) in target.enumerated() {
        if d == -1 { inferAt = i; out.append(.unknown) }
        else if d == 0 && !allowZero { out.append(src.flatMap { i < $0.count ? $0[i] : nil } ?? .unknown) }
        else { out.append(.known(d)) }
    }
    if inferAt >= 0, let src, let total = product(src[...]).value {
        let rest = out.enumerated().filter { $0.offset != inferAt }.map(\.element)
        if let r = product(rest[...]).value, r > 0 { out[inferAt] = .known(total / r) }
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

private func inferFlatten(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let s = ins.shape(0) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    var axis = try ctx.int("axis", default: 1)
    if axis < 0 { axis += s.count }
    guard axis >= 0 && axis <= s.count else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    return [TypeInfo(dtype: ins.dtype(0), shape: [product(s[..<axis]), product(s[axis...])])]
}

/// Axes from the attribute (before opset 13) or the constant second input; nil when not given.
private func axesOperand(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> (given: Bool, axes: [Int]?) {
    if ctx.opset < 13 { let a = try ctx.ints("axes"); return (a != nil, a) }
    return (ctx.hasInput(1), ins.ints(1))
}

private func inferSqueeze(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let s = ins.shape(0) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let (given, axes) = try axesOperand(ctx, ins)
    if given {
        guard let axes else { return [TypeInfo(dtype: dt, shape: nil)] }
        let drop = Set(try axes.map { try normalizeAxis($0, rank: s.count) })
        return [TypeInfo(dtype: dt, shape: s.enumerated().filter { !drop.contains($0.offset) }.map(\.element))]
    }
    guard s.allSatisfy({ $0.value != nil }) else { return [TypeInfo(dtype: dt, shape: nil)] }
    return [TypeInfo(dtype: dt, shape: s.filter { $0.value != 1 })]
}

private func inferUnsqueeze(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let s = ins.shape(0), let axes = try axesOperand(ctx, ins).axes else { return [TypeInfo(dtype: dt, shape: nil)] }
    let rank = s.count + axes.count
    let new = Set(try axes.map { try normalizeAxis($0, rank: rank) })
    var out: [Dim] = []
    var k = 0
    for i in 0..<rank {
        if new.contains(i) { out.append(.known(1)) } else if k < s.count { out.append(s[k]); k += 1 }
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

private func inferTranspose(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let s = ins.shape(0) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    let perm = try ctx.ints("perm") ?? Array((0..<s.count).reversed())
    guard perm.count == s.count, perm.allSatisfy({ $0 >= 0 && $0 < s.count }) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    return [TypeInfo(dtype: ins.dtype(0), shape: perm.map { s[$0] })]
}

private func inferConcat(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.compactMap(\.type.dtype).first
    let shapes = ins.compactMap(\.type.shape)
    guard let first = shapes.first, shapes.count == ins.count, shapes.allSatisfy({ $0.count == first.count }) else {
        return [TypeInfo(dtype: dt, shape: nil)]
    }
    let axis = try normalizeAxis(try ctx.int("axis") ?? 1, rank: first.count)
    var out = first
    for i in out.indices where i != axis {
        // Dims other than the axis agree; a known size wins over a symbol.
        if let k = shapes.first(where: { $0[i].value != nil })?[i] { out[i] = k }
    }
    var total: Int? = 0
    for s in shapes { if let v = s[axis].value, let t = total { total = t + v } else { total = nil } }
    out[axis] = total.map { .known($0) } ?? .unknown
    return [TypeInfo(dtype: dt, shape: out)]
}

private func inferSplit(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0), n = ctx.outputCount
    let unknown = Array(repeating: TypeInfo(dtype: dt, shape: nil), count: n)
    guard let s = ins.shape(0) else { return unknown }
    let a = try normalizeAxis(try ctx.int("axis", default: 0), rank: s.count)
    func with(_ d: Dim) -> TypeInfo { var o = s; o[a] = d; return TypeInfo(dtype: dt, shape: o) }
    var sizes: [Int]? = nil
    if ctx.opset < 13, let v = try ctx.ints("split") { sizes = v }
    else if (ctx.opset >= 13 || ctx.opset == 1) && ctx.hasInput(1) {
        guard let v = ins.ints(1) else { return Array(repeating: with(.unknown), count: n) }
        sizes = v
    }
    if let sizes { return sizes.map { with(.known($0)) } }
    guard let dim = s[a].value else { return Array(repeating: with(.unknown), count: n) }
    let parts = ctx.opset >= 18 ? try ctx.int("num_outputs") ?? n : n
    guard parts > 0 else { return unknown }
    let chunk = (dim + parts - 1) / parts
    return (0..<n).map { i in with(.known(max(0, min(chunk, dim - i * chunk)))) }
}

private func inferSlice(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let starts: [Int]?, ends: [Int]?
    var axes: [Int]? = nil, steps: [Int]? = nil
    if ctx.opset < 10 {
        starts = try ctx.ints("starts"); ends = try ctx.ints("ends"); axes = try ctx.ints("axes")
    } else {
        starts = ins.ints(1); ends = ins.ints(2)
        if ctx.hasInput(3) { guard let a = ins.ints(3) else { return [TypeInfo(dtype: dt, shape: x.map { _ in .unknown })] }; axes = a }
        if ctx.hasInput(4) { guard let st = ins.ints(4) else { return [TypeInfo(dtype: dt, shape: x.map { _ in .unknown })] }; steps = st }
    }
    guard let starts, let ends, starts.count == ends.count else { return [TypeInfo(dtype: dt, shape: x.map { _ in .unknown })] }
    let ax = try (axes ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: x.count) }
    let stp = steps ?? Array(repeating: 1, count: starts.count)
    guard ax.count == starts.count, stp.count == starts.count else { return [TypeInfo(dtype: dt, shape: nil)] }
    var out = x
    for i in ax.indices {
        guard let dim = x[ax[i]].value, stp[i] != 0 else { out[ax[i]] = .unknown; continue }
        out[ax[i]] = .known(sliceBounds(start: starts[i], end: ends[i], step: stp[i], dim: dim).count)
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

private func inferExpand(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let x = ins.shape(0), let req = ins.ints(1) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    return [TypeInfo(dtype: ins.dtype(0), shape: broadcastDims([x, req.map { .known($0) }]))]
}

private func inferTile(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let x = ins.shape(0), let reps = ins.ints(1), reps.count == x.count else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    return [TypeInfo(dtype: ins.dtype(0), shape: try zip(x, reps).map { d, r in
        r == 1 ? d : (try d.value.map { .known(try sizeProduct($0, r, "Tile")) } ?? .unknown)
    })]
}

/// DepthToSpace ([n, c / b², h b, w b]) and SpaceToDepth ([n, c b², h / b, w / b]).
private func inferBlockMove(_ ctx: OpContext, _ ins: [InferenceInput], toSpace: Bool) throws -> TypeInfo {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0), x.count == 4, let b = try ctx.int("blocksize"), b > 0 else { return TypeInfo(dtype: dt, shape: nil) }
    func map(_ d: Dim, _ f: (Int) -> Int) -> Dim { d.value.map { .known(f($0)) } ?? .unknown }
    if toSpace { return TypeInfo(dtype: dt, shape: [x[0], map(x[1]) { $0 / (b * b) }, map(x[2]) { $0 * b }, map(x[3]) { $0 * b }]) }
    return TypeInfo(dtype: dt, shape: [x[0], map(x[1]) { $0 * b * b }, map(x[2]) { $0 / b }, map(x[3]) { $0 / b }])
}

private func inferGather(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let s = ins.shape(0), let idx = ins.shape(1) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    let axis = try normalizeAxis(try ctx.int("axis", default: 0), rank: s.count)
    return [TypeInfo(dtype: ins.dtype(0), shape: Array(s[..<axis]) + idx + Array(s[(axis + 1)...]))]
}

private func inferGatherND(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let b = ctx.opset >= 12 ? try ctx.int("batch_dims", default: 0) : 0
    guard let x = ins.shape(0), let idx = ins.shape(1), let k = idx.last?.value, b + k <= x.count else {
        return [TypeInfo(dtype: ins.dtype(0), shape: nil)]
    }
    return [TypeInfo(dtype: ins.dtype(0), shape: Array(idx.dropLast()) + Array(x[(b + k)...]))]
}

private func inferCompress(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    guard let axis = try ctx.int("axis") else { return [TypeInfo(dtype: ins.dtype(0), shape: [.unknown])] }
    guard var s = ins.shape(0) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
    s[try normalizeAxis(axis, rank: s.count)] = .unknown
    return [TypeInfo(dtype: ins.dtype(0), shape: s)]
}

private func inferOneHot(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(2)
    guard var s = ins.shape(0) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let a = try normalizeAxis(try ctx.int("axis", default: -1), rank: s.count + 1)
    var depth: Dim = .unknown
    if let v = (try? ins.at(1).constant?.readAsDoubles()) ?? nil, v.count == 1, v[0].isFinite, v[0] >= 1, v[0] < 1e12 {
        depth = .known(Int(v[0]))
    }
    s.insert(depth, at: a)
    return [TypeInfo(dtype: dt, shape: s)]
}

private func inferPad(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let pads = ctx.opset < 11 ? try ctx.ints("pads") ?? ctx.ints("paddings") : ins.ints(1)
    var axes = Array(0..<x.count)
    if ctx.opset >= 18, ctx.hasInput(3) {
        guard let a = ins.ints(3) else { return [TypeInfo(dtype: dt, shape: x.map { _ in .unknown })] }
        axes = try a.map { try normalizeAxis($0, rank: x.count) }
    }
    guard let pads, pads.count == 2 * axes.count else { return [TypeInfo(dtype: dt, shape: x.map { _ in .unknown })] }
    var out = x
    for (i, a) in axes.enumerated() {
        let add = try sizeSum(pads[i], pads[i + axes.count], "Pad")
        out[a] = add == 0 ? x[a] : (try x[a].value.map { .known(try sizeSum($0, add, "Pad")) } ?? .unknown)
    }
    return [TypeInfo(dtype: dt, shape: out)]
}

private func inferConstantOfShape(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = try ctx.tensor("value")?.dtype ?? .float32
    if let s = ins.ints(0) { return [TypeInfo(dtype: dt, shape: s.map { .known($0) })] }
    let rank = ins.shape(0).flatMap { $0.count == 1 ? $0[0].value : nil }
    return [TypeInfo(dtype: dt, shape: rank.map { Array(repeating: .unknown, count: $0) })]
}

private func inferRange(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    func value(_ i: Int) -> Double? { (try? ins.at(i).constant?.readAsDoubles()).flatMap { $0 }.flatMap { $0.count == 1 ? $0[0] : nil } }
    guard let s = value(0), let l = value(1), let d = value(2), d != 0 else { return [TypeInfo(dtype: dt, shape: [.unknown])] }
    let n = ((l - s) / d).rounded(.up)
    guard n.isFinite, n < 1e12 else { return [TypeInfo(dtype: dt, shape: [.unknown])] }
    return [TypeInfo(dtype: dt, shape: [.known(max(Int(n), 0))])]
}

private func inferEyeLike(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = try ctx.int("dtype").map { DType(rawValue: Int32(truncatingIfNeeded: $0)) } ?? ins.dtype(0)
    return [TypeInfo(dtype: dt, shape: ins.shape(0))]
}

/// Unique: Y keeps the input's type (1-D, or the input's shape with the axis unknown); the index outputs are int64 and 1-D.
private func inferUnique(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    var y = TypeInfo(dtype: ins.dtype(0), shape: [.unknown])
    if let axis = try ctx.int("axis") {
        y.shape = try ins.shape(0).map { s in var o = s; o[try normalizeAxis(axis, rank: s.count)] = .unknown; return o }
    }
    let idx = TypeInfo(dtype: .int64, shape: [.unknown])
    return [y, idx, idx, idx]
}

private func inferCol2Im(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0), x.count == 3, let image = ins.ints(1), let block = ins.ints(2),
          block.allSatisfy({ $0 > 0 }) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let blockSize = try block.reduce(1) { try sizeProduct($0, $1, "Col2Im") }
    let c: Dim = x[1].value.map { .known($0 / blockSize) } ?? .unknown
    return [TypeInfo(dtype: dt, shape: [x[0], c] + image.map { .known($0) })]
}

private func inferCenterCropPad(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let dt = ins.dtype(0)
    guard let x = ins.shape(0), let target = ins.ints(1) else { return [TypeInfo(dtype: dt, shape: nil)] }
    let axes = try (try ctx.ints("axes") ?? Array(0..<x.count)).map { try normalizeAxis($0, rank: x.count) }
    guard axes.count == target.count else { return [TypeInfo(dtype: dt, shape: nil)] }
    var out = x
    for (a, t) in zip(axes, target) { out[a] = .known(t) }
    return [TypeInfo(dtype: dt, shape: out)]
}

/// A Reshape whose output has its input's shape (both known to the last dimension, as in a plan for
/// known input shapes, where exporters' `Reshape(x, [B, -1, S, D])` of an x of that shape folds to a
/// constant target) becomes an Identity, which `RemoveIdentity` then drops. Such a Reshape moves no
/// data but stands between ops that read each other's values in place (attention and the head
/// transposes around it).
struct ReshapeToSameShapeIsIdentity: GraphPass {
    let name = "reshape-to-same-shape-is-identity"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        for i in graph.nodes.indices {
            let n = graph.nodes[i]
            guard n.isStandardDomain, n.opType == "Reshape", n.inputs.count == 2, n.outputs.count == 1,
                  let target = graph.initializers[n.inputs[1]], target.dtype == .int64, target.rank == 1,
                  let dims = graph.infoOrConstant(of: n.inputs[0])?.shape else { continue }
            let input = dims.compactMap(\.value)
            guard input.count == dims.count, target.count == input.count else { continue }
            var allowZero = 0
            if case .int(let v)? = n.attributes["allowzero"] { allowZero = v }
            let t = target.pointer(Int64.self)
            // Each target entry gives the same size: itself, 0 copying the input's (without allowzero),
            // or the one -1 (the rest agreeing, it is the input's size there too).
            var minusOnes = 0
            var same = true
            for k in 0..<input.count {
                let v = Int(t[k])
                if v == input[k] || (v == 0 && allowZero == 0) { continue }
                if v == -1 { minusOnes += 1; continue }
                same = false
                break
            }
            guard same, minusOnes <= 1, !input.contains(0) || minusOnes == 0 else { continue }
            graph.nodes[i] = Node(name: n.name, opType: "Identity", domain: "", inputs: [n.inputs[0]], outputs: n.outputs,
                                  attributes: [:])
            changed = true
        }
        return changed
    }
}
