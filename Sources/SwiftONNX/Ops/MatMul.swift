import Foundation

/// MatMul ops: MatMul (numpy semantics) and Gemm.
func registerMatMulOps(_ r: inout OpRegistry) {
    r.register("Det", infer: Inference { _, ins in
        [TypeInfo(dtype: ins.dtype(0), shape: ins.shape(0).flatMap { $0.count >= 2 ? Array($0.dropLast(2)) : nil })]
    }, closure: { _ in
        return { inputs, _ in [try determinants(try inputs.required(0, "X"))] }
    })
    r.register("MatMul", infer: Inference { _, ins in
        [TypeInfo(dtype: ins.dtype(0), shape: matMulOutputShape(ins.shape(0), ins.shape(1)))]
    }, closure: { _ in
        return { inputs, env in [try matMul(try inputs.required(0, "A"), try inputs.required(1, "B"), threads: env.threads)] }
    })
    r.register("Gemm", infer: Inference { ctx, ins in
        guard let a = ins.shape(0), let b = ins.shape(1), a.count == 2, b.count == 2 else {
            return [TypeInfo(dtype: ins.dtype(0), shape: nil)]
        }
        let ta = try ctx.int("transA", default: 0) != 0, tb = try ctx.int("transB", default: 0) != 0
        return [TypeInfo(dtype: ins.dtype(0), shape: [ta ? a[1] : a[0], tb ? b[0] : b[1]])]
    }) { ctx in try makeGemmOperator(ctx) }
    r.register(FuseMatMulBias.opType, domain: FuseMatMulBias.domain, infer: Inference { ctx, ins in
        let product = matMulOutputShape(ins.shape(0), ins.shape(1))
        guard ctx.hasInput(3) else { return [TypeInfo(dtype: ins.dtype(0), shape: product)] }
        // With Z: the product plus Z, broadcast.
        guard let p = product, let z = ins.shape(3) else { return [TypeInfo(dtype: ins.dtype(0), shape: nil)] }
        return [TypeInfo(dtype: ins.dtype(0), shape: broadcastDims([p, z]))]
    }) { ctx in try makeFusedMatMul(ctx) }
    r.rewrite(.fold, FuseMatMulBias())       // before the fusions: the per-channel ones must not take the bias Add
    r.rewrite(.fold, DenseGemm())            // so that the epilogue fusion takes what follows a Gemm too
    r.rewrite(.fuse, FuseMatMulEpilogue())
    r.rewrite(.fuse, PackDenseMatMul())      // after the epilogue fusion, which takes plain MatMuls too
}

/// Numpy matmul's result shape (1-D operands promoted and their unit dim dropped, batch dims broadcast).
func matMulOutputShape(_ a: [Dim]?, _ b: [Dim]?) -> [Dim]? {
    guard let a, let b, !a.isEmpty, !b.isEmpty else { return nil }
    let a2 = a.count == 1 ? [.known(1)] + a : a
    let b2 = b.count == 1 ? b + [.known(1)] : b
    guard var s = broadcastDims([Array(a2.dropLast(2)), Array(b2.dropLast(2))]) else { return nil }
    if a.count > 1 { s.append(a2[a2.count - 2]) }
    if b.count > 1 { s.append(b2[b2.count - 1]) }
    return s
}

// MARK: MatMul

/// Shapes of a numpy matmul: batch shape, M, K, N, the output shape, and per-batch offsets.
private struct MatMulPlan {
    var m = 0, k = 0, n = 0
    var outShape: [Int] = []
    var batch = 1
    /// A's batch dims equal the output's (so A can be read as one (batch*M) x K matrix) and B is a single matrix.
    var foldBatchIntoM = false
    var aOffsets: [Int] = []
    var bOffsets: [Int] = []

    init(_ sa: [Int], _ sb: [Int]) throws {
        guard !sa.isEmpty, !sb.isEmpty else {
            throw OpError("MatMul: inputs must have rank >= 1, got \(describeShape(sa)) and \(describeShape(sb))")
        }
        let a = sa.count == 1 ? [1, sa[0]] : sa
        let b = sb.count == 1 ? [sb[0], 1] : sb
        m = a[a.count - 2]; k = a[a.count - 1]
        n = b[b.count - 1]
        guard b[b.count - 2] == k else {
            throw OpError("MatMul: inner dimensions differ: A \(describeShape(sa)) and B \(describeShape(sb))")
        }
        let ba = Array(a.dropLast(2)), bb = Array(b.dropLast(2))
        let bs = try broadcastShapes(ba, bb)
        batch = bs.reduce(1, *)
        outShape = bs
        if sa.count > 1 { outShape.append(m) }
        if sb.count > 1 { outShape.append(n) }
        let aBatch = ba.reduce(1, *), bBatch = bb.reduce(1, *)
        foldBatchIntoM = bBatch == 1 && aBatch == batch
        if !foldBatchIntoM && batch > 0 {
            let rank = bs.count
            let stA = broadcastStrides(ba, to: bs), stB = broadcastStrides(bb, to: bs)
            aOffsets.reserveCapacity(batch); bOffsets.reserveCapacity(batch)
            var idx = [Int](repeating: 0, count: rank)
            for _ in 0..<batch {
                var oa = 0, ob = 0
                for d in 0..<rank { oa += idx[d] * stA[d]; ob += idx[d] * stB[d] }
                aOffsets.append(oa * m * k); bOffsets.append(ob * k * n)
                var d = rank - 1
                while d >= 0 { idx[d] += 1; if idx[d] < bs[d] { break }; idx[d] = 0; d -= 1 }
            }
        }
    }
}

private struct MatMulVisitor: ScalarTypeVisitor {
    let a: Tensor, b: Tensor, plan: MatMulPlan
    var threads = 1
    func visit<T: CastableScalar>(_: T.Type) throws -> Tensor {
        switch T.self {
        case is Float.Type: return try run(Float.self)
        case is Double.Type: return try run(Double.self)
        case is Int32.Type: return try runInt(Int32.self)
        case is Int64.Type: return try runInt(Int64.self)
        case is UInt32.Type: return try runInt(UInt32.self)
        case is UInt64.Type: return try runInt(UInt64.self)
        case is Int8.Type: return try runInt(Int8.self)
        case is Int16.Type: return try runInt(Int16.self)
        case is UInt8.Type: return try runInt(UInt8.self)
        case is UInt16.Type: return try runInt(UInt16.self)
        default: throw ONNXError.unsupportedType("MatMul: element type \(T.dtype)")
        }
    }

    func run<F: BLASFloat>(_: F.Type) throws -> Tensor {
        let p = plan
        let out = try Tensor.uninitialized(F.dtype, p.outShape)
        if out.count == 0 { return out }
        guard gemmSizesFit(p.batch * p.m, p.n, p.k) else { throw OpError("MatMul: sizes are too large for BLAS") }
        let ap = a.pointer(F.self), bp = b.pointer(F.self), op = out.pointer(F.self)
        if p.foldBatchIntoM {
            F.gemm(transA: false, transB: false, m: p.batch * p.m, n: p.n, k: p.k, alpha: 1, a: ap, lda: p.k,
                   b: bp, ldb: p.n, beta: 0, c: op, ldc: p.n, threads: threads)
        } else {
            for i in 0..<p.batch {
                F.gemm(transA: false, transB: false, m: p.m, n: p.n, k: p.k, alpha: 1, a: ap + p.aOffsets[i], lda: p.k,
                       b: bp + p.bOffsets[i], ldb: p.n, beta: 0, c: op + i * p.m * p.n, ldc: p.n, threads: threads)
            }
        }
        return out
    }

    func runInt<I: FixedWidthInteger & TensorScalar>(_: I.Type) throws -> Tensor {
        let p = plan
        let out = try Tensor.uninitialized(I.dtype, p.outShape)
        if out.count == 0 { return out }
        let ap = a.pointer(I.self), bp = b.pointer(I.self), op = out.pointer(I.self)
        if p.foldBatchIntoM {
            integerGemm(transA: false, transB: false, m: p.batch * p.m, n: p.n, k: p.k, a: ap, lda: p.k,
                        b: bp, ldb: p.n, c: op, ldc: p.n)
        } else {
            for i in 0..<p.batch {
                integerGemm(transA: false, transB: false, m: p.m, n: p.n, k: p.k, a: ap + p.aOffsets[i], lda: p.k,
                            b: bp + p.bOffsets[i], ldb: p.n, c: op + i * p.m * p.n, ldc: p.n)
            }
        }
        return out
    }
}

func matMul(_ a: Tensor, _ b: Tensor, threads: Int = 1) throws -> Tensor {
    guard a.dtype == b.dtype else { throw OpError("MatMul: A is \(a.dtype) but B is \(b.dtype)") }
    let plan = try MatMulPlan(a.shape, b.shape)
    switch a.dtype {
    case .float16, .bfloat16:
        let r = try MatMulVisitor(a: a.converted(to: .float32), b: b.converted(to: .float32), plan: plan, threads: threads).run(Float.self)
        return try r.converted(to: a.dtype)
    case .bool, .string:
        throw ONNXError.unsupportedType("MatMul: element type \(a.dtype)")
    default:
        return try a.dtype.visit(MatMulVisitor(a: a, b: b, plan: plan, threads: threads))
    }
}

// MARK: Gemm

private func makeGemmOperator(_ ctx: OpContext) throws -> any Operator {
    let transA = try ctx.int("transA", default: 0) != 0
    let transB = try ctx.int("transB", default: 0) != 0
    let alpha = try ctx.float("alpha", default: 1)
    let beta = try ctx.float("beta", default: 1)
    // Opset < 7: C broadcasts only when `broadcast` is set.
    let broadcastAttr = try ctx.int("broadcast", default: 0)
    let strictC = ctx.opset < 7 && broadcastAttr == 0
    return ClosureOperator { inputs, env in
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
        let c = inputs.optional(2)
        guard a.dtype == b.dtype, c.map({ $0.dtype == a.dtype }) ?? true else {
            throw OpError("Gemm: inputs must share one element type, got A \(a.dtype), B \(b.dtype)" + (c.map { ", C \($0.dtype)" } ?? ""))
        }
        guard a.rank == 2, b.rank == 2 else {
            throw OpError("Gemm: A and B must be 2-D, got \(describeShape(a.shape)) and \(describeShape(b.shape))")
        }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else {
            throw OpError("Gemm: inner dimensions differ: A \(describeShape(a.shape)) (transA \(transA)) and B \(describeShape(b.shape)) (transB \(transB))")
        }
        if let c = c {
            guard c.rank <= 2 else { throw OpError("Gemm: C must have rank <= 2, got \(describeShape(c.shape))") }
            let ok = (try? broadcastShapes(c.shape, [m, n])) == [m, n]
            guard ok, !strictC || c.shape == [m, n] else {
                throw OpError("Gemm: C of shape \(describeShape(c.shape)) cannot be broadcast to [\(m), \(n)]")
            }
        }
        let g = GemmCall(a: a, b: b, c: c, m: m, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta,
                         threads: env.threads)
        switch a.dtype {
        case .float32: return [try g.runFloat(Float.self)]
        case .float64: return [try g.runFloat(Double.self)]
        case .float16, .bfloat16:
            let g32 = GemmCall(a: try a.converted(to: .float32), b: try b.converted(to: .float32),
                               c: try c?.converted(to: .float32), m: m, n: n, k: k, transA: transA, transB: transB,
                               alpha: alpha, beta: beta, threads: env.threads)
            return [try g32.runFloat(Float.self).converted(to: a.dtype)]
        case .int32: return [try g.runInt(Int32.self)]
        case .int64: return [try g.runInt(Int64.self)]
        case .uint32: return [try g.runInt(UInt32.self)]
        case .uint64: return [try g.runInt(UInt64.self)]
        default: throw ONNXError.unsupportedType("Gemm: element type \(a.dtype)")
        }
    }
}

private struct GemmCall {
    let a: Tensor, b: Tensor, c: Tensor?
    let m: Int, n: Int, k: Int
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float
    var threads = 1

    /// Writes C broadcast to [m, n] into `out`, converted by `f`.
    func fillC<S, D>(_ cs: UnsafePointer<S>, _ out: UnsafeMutablePointer<D>, _ f: (S) -> D) {
        guard let c = c else { return }
        let shape = c.shape
        let rows = shape.count == 2 ? shape[0] : 1
        let cols = shape.count >= 1 ? shape[shape.count - 1] : 1
        for i in 0..<m {
            let src = cs + (rows == 1 ? 0 : i) * cols
            let dst = out + i * n
            if cols == 1 { dst.update(repeating: f(src[0]), count: n) } else { for j in 0..<n { dst[j] = f(src[j]) } }
        }
    }

    func runFloat<F: BLASFloat>(_: F.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(F.dtype, [m, n])
        if out.count == 0 { return out }
        guard gemmSizesFit(m, n, k) else { throw OpError("Gemm: sizes are too large for BLAS") }
        let op = out.pointer(F.self)
        var betaF: F = 0
        if let c = c, beta != 0 {
            fillC(c.pointer(F.self), op, { $0 })
            betaF = F(beta)
        } else {
            op.update(repeating: 0, count: m * n)
        }
        F.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: F(alpha), a: a.pointer(F.self),
               lda: a.shape[1], b: b.pointer(F.self), ldb: b.shape[1], beta: betaF, c: op, ldc: n, threads: threads)
        return out
    }

    func runInt<I: FixedWidthInteger & CastableScalar>(_: I.Type) throws -> Tensor {
        let out = try Tensor.uninitialized(I.dtype, [m, n])
        if out.count == 0 { return out }
        let op = out.pointer(I.self)
        integerGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.pointer(I.self), lda: a.shape[1],
                    b: b.pointer(I.self), ldb: b.shape[1], c: op, ldc: n)
        let total = m * n
        if alpha == 1 && (beta == 1 || c == nil) {
            if let c = c {
                let tmp = UnsafeMutablePointer<I>.allocate(capacity: total)
                defer { tmp.deallocate() }
                fillC(c.pointer(I.self), tmp, { $0 })
                for i in 0..<total { op[i] = op[i] &+ tmp[i] }
            }
        } else {
            // Scaled: compute in Double and convert back (as the reference does through numpy).
            let tmp = UnsafeMutablePointer<Double>.allocate(capacity: total)
            defer { tmp.deallocate() }
            tmp.update(repeating: 0, count: total)
            if let c = c, beta != 0 { fillC(c.pointer(I.self), tmp, { $0.f64 }) }
            let al = Double(alpha), be = Double(beta)
            for i in 0..<total { op[i] = I(f64: al * op[i].f64 + be * tmp[i]) }
        }
        return out
    }
}

/// Det: the determinant of each trailing square matrix, by LU decomposition with partial pivoting
/// in double precision.
private func determinants(_ x0: Tensor) throws -> Tensor {
    guard x0.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("Det: X has element type \(x0.dtype) (expected a float type)") }
    guard x0.rank >= 2, x0.shape[x0.rank - 1] == x0.shape[x0.rank - 2] else {
        throw OpError("Det: X must end in a square matrix, got \(describeShape(x0.shape))")
    }
    let m = x0.shape[x0.rank - 1]
    let outShape = Array(x0.shape.dropLast(2))
    let count = outShape.reduce(1, *)
    let x = try x0.converted(to: .float64)
    let xp = x.pointer(Double.self)
    var out = [Double](repeating: 0, count: count)
    var a = [Double](repeating: 0, count: m * m)
    for t in 0..<count {
        for i in 0..<(m * m) { a[i] = xp[t * m * m + i] }
        var det = 1.0
        for col in 0..<m {
            var pivot = col
            for r in (col + 1)..<m where abs(a[r * m + col]) > abs(a[pivot * m + col]) { pivot = r }
            if a[pivot * m + col] == 0 { det = 0; break }
            if pivot != col {
                for j in 0..<m { a.swapAt(pivot * m + j, col * m + j) }
                det = -det
            }
            let p = a[col * m + col]
            det *= p
            for r in (col + 1)..<m {
                let f = a[r * m + col] / p
                if f == 0 { continue }
                for j in col..<m { a[r * m + j] -= f * a[col * m + j] }
            }
        }
        out[t] = det
    }
    return try Tensor(validShape: outShape, scalars: out).converted(to: x0.dtype)
}

// MARK: FusedMatMul (internal)

/// com.swiftonnx::FusedMatMul(A, B, bias, Z), attributes activation / activation_params as FusedConv's
/// and gemm (1 when it stands for a Gemm: A must then be 2-D, as Gemm's):
/// act(MatMul(A, B) + bias + Z) for float32 A of rank >= 2 and a 2-D B (a dense layer's weights);
/// bias (optional) holds one value per column of B, Z (optional) has the output's shape. The GEMM
/// applies them while each output tile is in cache, in the unfused graph's order (bias, then Z, then
/// the activation), so the results are those of the separate nodes.
private func makeFusedMatMul(_ ctx: OpContext) throws -> any Operator {
    let act = try parseActivation(ctx)
    let gemm = try ctx.int("gemm", default: 0) != 0   // standing for a Gemm (DenseGemm): A must be 2-D
    // Constant weights are packed into the GEMM's column panels once, here; the run never reads
    // the stored ones again.
    var panels: F32PackedPanels? = nil
    if let w = ctx.constantInput(1), w.dtype == .float32, w.rank == 2, w.count > 0 {
        panels = try ctx.prepare(w, kind: "f32-dense-panels") {
            try F32PackedPanels(w.pointer(Float.self), k: w.shape[0], n: w.shape[1])
        }
        ctx.releaseConstantValues(1)
    }
    let packed = panels
    return ClosureOperator { inputs, env in
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
        let bias = inputs.optional(2), z = inputs.optional(3)
        for (name, t) in [("A", a), ("B", b), ("bias", bias), ("Z", z)] {
            if let t, t.dtype != .float32 { throw OpError("FusedMatMul: \(name) is \(t.dtype), expected float32") }
        }
        if gemm && a.rank != 2 {
            throw OpError("Gemm: A and B must be 2-D, got \(describeShape(a.shape)) and \(describeShape(b.shape))")
        }
        guard a.rank >= 1, b.rank == 2 else {
            throw OpError("FusedMatMul: A \(describeShape(a.shape)) and B \(describeShape(b.shape)) do not multiply "
                          + "(A of rank >= 1, B 2-D, A's last dim = B's first)")
        }
        guard a.shape[a.rank - 1] == b.shape[0] else {
            // worded as the MatMul the user's graph has (this op stands for it)
            throw OpError("MatMul: inner dimensions differ: A \(describeShape(a.shape)) and B \(describeShape(b.shape))")
        }
        let k = b.shape[0], n = b.shape[1]
        let outShape = Array(a.shape.dropLast()) + [n]   // a 1-D A is one row whose unit dim numpy drops
        if let bias, bias.count != n {
            throw OpError("FusedMatMul: bias has \(bias.count) values, expected one per column of B (\(n))")
        }
        // The fusions take Z without knowing its shape when the graph's shapes are symbolic: a Z that
        // is not of the product's shape is added afterwards, broadcast as Add does, then the activation.
        let zInEpilogue = z.map { $0.shape == outShape } ?? true
        let out = try Tensor.uninitialized(.float32, outShape)
        if out.count > 0 {
            let m = out.count / n
            guard gemmSizesFit(m, n, k) else { throw OpError("FusedMatMul: sizes are too large for BLAS") }
            let epilogue = F32GemmEpilogue(columnBias: bias?.pointer(Float.self), z: zInEpilogue ? z?.pointer(Float.self) : nil,
                                           ldz: n, act: zInEpilogue ? act : .none)
            if let packed {
                f32PackedDense(m: m, a: a.pointer(Float.self), b: packed, c: out.pointer(Float.self), epilogue: epilogue,
                               threads: env.threads)
            } else {
                f32Dense(m: m, n: n, k: k, a: a.pointer(Float.self), b: b.pointer(Float.self), c: out.pointer(Float.self),
                         epilogue: epilogue, threads: env.threads)
            }
        }
        guard let z, !zInEpilogue else { return [out] }
        let sum = try arithmetic(.add, out, z, threads: env.threads, "FusedMatMul")
        if act != .none { finishRowF32(sum.pointer(Float.self), sum.count, bias: 0, z: nil, act) }
        return [sum]
    }
}

/// Whether `name` is a float32 constant of the graph with a 2-D shape (a dense layer's weights).
private func isDenseWeight(_ graph: Graph, _ name: String) -> Bool {
    guard let w = graph.initializers[name] else { return false }
    return w.dtype == .float32 && w.rank == 2
}

/// MatMul(A, W) + b, with W a 2-D float32 constant and b a float32 constant of one value per column of
/// W (shape [N], or [1, ..., 1, N] not raising the output's rank), becomes com.swiftonnx::FusedMatMul(A, W, b):
/// the bias is added by the GEMM's epilogue instead of a pass over the output (the dense layers of
/// every transformer).
struct FuseMatMulBias: GraphPass {
    let name = "fuse-matmul-bias"
    static let opType = "FusedMatMul"
    static let domain = "com.swiftonnx"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        guard (opsets[""] ?? 1) >= 7 else { return false }   // Add broadcasts from opset 7 on
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        var removed = Set<Int>()
        for (ai, add) in graph.nodes.enumerated() where add.opType == "Add" && add.isStandardDomain {
            guard add.inputs.count == 2, add.outputs.count == 1 else { continue }
            for k in 0..<2 {
                let y = add.inputs[k], biasName = add.inputs[1 - k]
                guard let mi = producers[y], mi != ai, !removed.contains(mi) else { continue }
                let mm = graph.nodes[mi]
                guard mm.opType == "MatMul", mm.isStandardDomain, mm.inputs.count == 2, mm.outputs.count == 1,
                      uses[y] == 1, !outputs.contains(y), isDenseWeight(graph, mm.inputs[1]),
                      let w = graph.initializers[mm.inputs[1]],
                      let ai0 = graph.infoOrConstant(of: mm.inputs[0]), ai0.type == .float32,
                      let bias = graph.initializers[biasName], bias.dtype == .float32,
                      bias.rank >= 1, bias.shape.last == w.shape[1], bias.count == w.shape[1],
                      // the bias must not raise the product's rank: 1-D always fits (the product has at
                      // least one dimension, of B's columns); a longer one needs A's rank
                      bias.rank == 1 || bias.rank <= (ai0.shape?.count ?? 0) else { continue }
                graph.nodes[ai] = Node(name: add.name, opType: Self.opType, domain: Self.domain,
                                       inputs: [mm.inputs[0], mm.inputs[1], biasName], outputs: add.outputs,
                                       attributes: [:])
                removed.insert(mi)
                break
            }
        }
        if removed.isEmpty { return false }
        graph.removeNodes(at: removed)
        return true
    }
}

/// A dense layer (FusedMatMul without residual or activation, or MatMul by a 2-D float32 constant)
/// whose only reader adds a float32 tensor of exactly its known shape (the residual connection) takes
/// that tensor as Z; one whose only reader is an activation the GEMM epilogue applies (Gelu, Relu,
/// LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, Swish, which is SiLU as `FuseSiLU` finds it)
/// takes the activation.
struct FuseMatMulEpilogue: GraphPass {
    let name = "fuse-matmul-epilogue"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let uses = graph.useCounts()
        let producers = graph.producers()
        let outputs = graph.outputNames
        let readerOf = graph.readers()
        var removed = Set<Int>()
        /// The node at i as a dense layer still open to a residual (Z) or an activation, else nil.
        func dense(_ i: Int) -> Node? {
            let n = graph.nodes[i]
            if n.opType == FuseMatMulBias.opType && n.domain == FuseMatMulBias.domain {
                return n.attributes["activation"] == nil ? n : nil
            }
            return PackDenseMatMul.dense(n, graph)
        }
        for (ri, reader) in graph.nodes.enumerated() where reader.isStandardDomain && reader.outputs.count == 1 {
            for (k, y) in reader.inputs.enumerated() where !y.isEmpty {
                guard let di = producers[y], di != ri, !removed.contains(di), uses[y] == 1, !outputs.contains(y),
                      var fused = dense(di), fused.outputs.count == 1 else { continue }
                if reader.opType == "Add", reader.inputs.count == 2, (opsets[""] ?? 1) >= 7 {
                    let z = reader.inputs[1 - k]
                    // Z of the product's shape is added in the epilogue; when the shapes are not known to
                    // match (symbolic shapes inference could not follow), the op checks at run time and
                    // falls back to a broadcast Add. Z must be float32, and no more than Add would accept.
                    func concrete(_ v: String) -> Bool { graph.infoOrConstant(of: v)?.shape.map { $0.allSatisfy { $0.value != nil } } ?? false }
                    guard fused.inputs.count < 4, !z.isEmpty, z != y,
                          graph.sameKnownFloatShape(y, z)
                            || graph.infoOrConstant(of: z)?.type == .float32 && !(concrete(y) && concrete(z)) else { continue }
                    while fused.inputs.count < 3 { fused.inputs.append("") }
                    fused.inputs.append(z)
                } else if k == 0, let (kind, params) = Self.activation(reader, graph: graph) {
                    fused.attributes["activation"] = .string(kind)
                    fused.attributes["activation_params"] = .floats(params)
                } else if reader.opType == "Reshape", k == 0, reader.inputs.count == 2, let r = reader.outputs.first,
                          uses[r] == 1, !outputs.contains(r), let ai = readerOf[r], !removed.contains(ai),
                          let (kind, params) = Self.activation(graph.nodes[ai], graph: graph), graph.nodes[ai].inputs.first == r {
                    // Activation(Reshape(product)): an element-wise activation commutes with a reshape, so the
                    // product applies it and the reshape moves the result (GPT-2's Conv1D as TorchScript
                    // exports it: Reshape to 2-D, Gemm, Reshape back, then Gelu).
                    fused.attributes["activation"] = .string(kind)
                    fused.attributes["activation_params"] = .floats(params)
                    graph.nodes[di] = fused
                    graph.nodes[ri].outputs = graph.nodes[ai].outputs
                    removed.insert(ai)
                    break
                } else {
                    continue
                }
                fused.name = graph.nodes[di].name
                fused.outputs = reader.outputs
                graph.nodes[ri] = fused   // at the reader's place: after Z's producer
                removed.insert(di)
                break
            }
        }
        if removed.isEmpty { return false }
        graph.removeNodes(at: removed)
        return true
    }

    /// The epilogue activations: FusedConv's, and Gelu (exact or tanh).
    static func activation(_ n: Node, graph: Graph) -> (String, [Float])? {
        if n.opType == "Swish", n.inputs.count == 1 {
            if case .float(let a)? = n.attributes["alpha"] { return ("Swish", [a]) }
            return n.attributes["alpha"] == nil ? ("Swish", [1]) : nil
        }
        if n.opType == "Gelu", n.inputs.count == 1 {
            switch n.attributes["approximate"] {
            case nil, .string("none")?: return ("Gelu", [])
            case .string("tanh")?: return ("GeluTanh", [])
            default: return nil
            }
        }
        return FuseConvActivation.activation(n, graph: graph)
    }
}

/// A MatMul by a 2-D float32 constant that no fusion took (a dense layer without bias: Llama's
/// projections, a language model's head) becomes com.swiftonnx::FusedMatMul(A, W): its weights are
/// packed into the GEMM's panels once, at plan time, and its activations read in place, where the
/// plain MatMul packed both every run (llama.dynamo23 on Zen 1: a 32 x 64 x 128 projection 19.2 -> 17.6 us).
struct PackDenseMatMul: GraphPass {
    let name = "pack-dense-matmul"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        for i in graph.nodes.indices {
            guard let fused = Self.dense(graph.nodes[i], graph) else { continue }
            graph.nodes[i] = fused
            changed = true
        }
        return changed
    }

    /// `n` as a FusedMatMul without bias, residual or activation when it is a MatMul of float32 A by
    /// a 2-D float32 constant, else nil.
    static func dense(_ n: Node, _ graph: Graph) -> Node? {
        guard n.opType == "MatMul", n.isStandardDomain, n.inputs.count == 2, n.outputs.count == 1,
              isDenseWeight(graph, n.inputs[1]),
              let a = graph.infoOrConstant(of: n.inputs[0]), a.type == .float32, (a.shape?.count ?? 1) >= 1 else { return nil }
        return Node(name: n.name, opType: FuseMatMulBias.opType, domain: FuseMatMulBias.domain,
                    inputs: n.inputs, outputs: n.outputs, attributes: [:])
    }
}

/// Gemm(A, W, c) as a dense layer writes it (transA 0, alpha 1, beta 1; W a 2-D float32 constant,
/// transposed or not; c absent or a float32 constant of one value per output column, shape [N] or
/// [1, N]) becomes com.swiftonnx::FusedMatMul(A, W as K x N, c): packed weights, activations read in
/// place, and the activation or residual that follows fused by FuseMatMulEpilogue (GPT-2's Conv1D
/// layers, the classifier heads of CNNs). A transposed W is transposed once here, into a new constant.
struct DenseGemm: GraphPass {
    let name = "dense-gemm"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        guard (opsets[""] ?? 1) >= 7 else { return false }   // C broadcasts unidirectionally from opset 7
        var changed = false
        func attr(_ n: Node, _ key: String) -> Attribute? { n.attributes[key] }
        for (i, g) in graph.nodes.enumerated() where g.opType == "Gemm" && g.isStandardDomain {
            guard g.inputs.count >= 2, g.outputs.count == 1, isDenseWeight(graph, g.inputs[1]),
                  let w = graph.initializers[g.inputs[1]],
                  let a = graph.infoOrConstant(of: g.inputs[0]), a.type == .float32, a.shape.map({ $0.count == 2 }) ?? true
            else { continue }
            if case .int(let t)? = attr(g, "transA"), t != 0 { continue }
            if case .float(let alpha)? = attr(g, "alpha"), alpha != 1 { continue }
            let transB: Bool
            switch attr(g, "transB") {
            case nil: transB = false
            case .int(let t)?: transB = t != 0
            default: continue
            }
            let n = transB ? w.shape[0] : w.shape[1]
            var inputs = [g.inputs[0], g.inputs[1]]
            if g.inputs.count >= 3, !g.inputs[2].isEmpty {
                if case .float(let beta)? = attr(g, "beta"), beta != 1 { continue }
                guard let c = graph.initializers[g.inputs[2]], c.dtype == .float32, c.count == n,
                      c.shape == [n] || c.shape == [1, n] else { continue }
                inputs.append(g.inputs[2])
            }
            if transB {
                let k = w.shape[1]
                var t = [Float](repeating: 0, count: k * n)
                t.withUnsafeMutableBufferPointer {
                    ShapeKernels.transpose2D(src: w.pointer(Float.self), srcColStride: k, dst: $0.baseAddress!,
                                             dstRowStride: n, rows: k, cols: n)
                }
                let name = uniqueName(graph, g.inputs[1] + "_transposed")
                graph.initializers[name] = Tensor(validShape: [k, n], scalars: t)
                inputs[1] = name
            }
            // "gemm": the op keeps Gemm's rule that A is 2-D (its shape may not be known here)
            graph.nodes[i] = Node(name: g.name, opType: FuseMatMulBias.opType, domain: FuseMatMulBias.domain,
                                  inputs: inputs, outputs: g.outputs, attributes: ["gemm": .int(1)])
            changed = true
        }
        return changed
    }
}
