import Foundation

/// Misc ops: Identity, Dropout (inference), NonMaxSuppression.
func registerMiscOps(_ r: inout OpRegistry) {
    r.register("Identity", infer: .sameAsFirst, containers: true) { _ in
        return { inputs, _ in [try inputs.required(0)] }
    }
    r.register("Dropout", infer: Inference { ctx, ins in
        // The mask is bool from opset 10, the input's type before.
        [ins.at(0).type, TypeInfo(dtype: ctx.opset >= 10 ? .bool : ins.dtype(0), shape: ins.shape(0))]
    }, closure: makeDropout)
    r.register("NonMaxSuppression", infer: Inference { _, _ in [TypeInfo(dtype: .int64, shape: [.unknown, .known(3)])] },
               closure: makeNonMaxSuppression)
    let window = Inference { ctx, ins in
        let dt = DType(onnxCode: Int32(try ctx.int("output_datatype", default: 1)))
        return [TypeInfo(dtype: dt, shape: [ins.ints(0).flatMap { $0.count == 1 ? .known($0[0]) : nil } ?? .unknown])]
    }
    r.rewrite(.cleanup, RemoveIdentity())
    r.register("HannWindow", infer: window) { ctx in try makeWindow(ctx) { n, d in 0.5 - 0.5 * cos(2 * .pi * n / d) } }
    r.register("HammingWindow", infer: window) { ctx in
        try makeWindow(ctx) { n, d in 25.0 / 46.0 - (21.0 / 46.0) * cos(2 * .pi * n / d) }
    }
    r.register("BlackmanWindow", infer: window) { ctx in
        try makeWindow(ctx) { n, d in 0.42 - 0.5 * cos(2 * .pi * n / d) + 0.08 * cos(4 * .pi * n / d) }
    }
}

// MARK: - window functions

/// Hann / Hamming / Blackman windows: `f(n, denominator)` with denominator size (periodic) or size - 1.
private func makeWindow(_ ctx: OpContext, _ f: @escaping @Sendable (Double, Double) -> Double) throws -> OpBody {
    let code = try ctx.int("output_datatype", default: 1)
    guard let dt = DType(onnxCode: Int32(code)), dt.isComputable, dt != .string else {
        throw ctx.attributeError("output_datatype", "unsupported type \(code)")
    }
    let periodic = try ctx.int("periodic", default: 1) != 0
    let op = ctx.opType
    return { inputs, _ in
        let sizeT = try inputs.required(0, "size")
        guard sizeT.count == 1 else { throw OpError("\(op): size must be a scalar") }
        let size = try sizeT.readAsInts()[0]
        guard size >= 0 && size <= 1 << 28 else { throw OpError("\(op): size \(size) is out of range") }
        let denom = Double(periodic ? size : size - 1)
        let v = (0..<size).map { f(Double($0), denom) }
        return [try Tensor.fromDoubles(v, shape: [size], dtype: dt)]
    }
}

// MARK: - Dropout

/// Inference Dropout: output = input, optional mask all true. Training mode with a nonzero ratio is
/// not supported (it would need a random generator matching no reference anyway).
private func makeDropout(_ ctx: OpContext) throws -> OpBody {
    let opset = ctx.opset
    let ratioAttr = try ctx.float("ratio", default: 0.5)
    // Before opset 7, is_test = 0 meant training.
    let isTest = opset < 7 ? try ctx.int("is_test", default: 0) != 0 : true
    let wantMask = ctx.hasOutput(1)
    return { inputs, _ in
        let x = try inputs.required(0)
        var ratio = Double(ratioAttr)
        var training = !isTest
        if opset >= 12 {
            if let r = inputs.optional(1) {
                guard r.count == 1 else { throw OpError("Dropout: ratio must be a scalar") }
                ratio = try r.readAsDoubles()[0]
            } else {
                ratio = 0.5
            }
            if let t = inputs.optional(2) {
                guard t.count == 1 else { throw OpError("Dropout: training_mode must be a scalar") }
                training = try t.readAsDoubles()[0] != 0
            }
        }
        if training && ratio != 0 {
            throw ONNXError.unsupportedType("Dropout: training mode with ratio \(ratio) is not supported (inference runtime)")
        }
        guard wantMask else { return [x] }
        let mask: Tensor
        if opset < 10 {
            // The mask had the input's type before opset 10.
            mask = try Tensor.fromDoubles([Double](repeating: 1, count: x.count), shape: x.shape, dtype: x.dtype)
        } else {
            mask = try Tensor.uninitialized(.bool, x.shape)
            if x.count > 0 { mask.raw.initializeMemory(as: UInt8.self, repeating: 1, count: x.count) }
        }
        return [x, mask]
    }
}

// MARK: - NonMaxSuppression

private func makeNonMaxSuppression(_ ctx: OpContext) throws -> OpBody {
    let centerPointBox = try ctx.int("center_point_box", default: 0)
    guard centerPointBox == 0 || centerPointBox == 1 else {
        throw ctx.attributeError("center_point_box", "must be 0 or 1, got \(centerPointBox)")
    }
    return { inputs, _ in
        let boxesT = try inputs.required(0), scoresT = try inputs.required(1)
        guard boxesT.rank == 3, boxesT.shape[2] == 4 else {
            throw OpError("NonMaxSuppression: boxes must be [batches, boxes, 4], got \(describeShape(boxesT.shape))")
        }
        guard scoresT.rank == 3, scoresT.shape[0] == boxesT.shape[0], scoresT.shape[2] == boxesT.shape[1] else {
            throw OpError("NonMaxSuppression: scores \(describeShape(scoresT.shape)) do not fit boxes \(describeShape(boxesT.shape))")
        }
        var maxOut = 0
        if let t = inputs.optional(2), t.count > 0 { maxOut = max(0, try t.readAsInts()[0]) }
        var iouThreshold: Float = 0
        if let t = inputs.optional(3), t.count > 0 { iouThreshold = Float(try t.readAsDoubles()[0]) }
        var scoreThreshold: Float?
        if let t = inputs.optional(4), t.count > 0 { scoreThreshold = Float(try t.readAsDoubles()[0]) }
        let boxes = try boxesT.readAsDoubles().map { Float($0) }
        let scores = try scoresT.readAsDoubles().map { Float($0) }
        let nb = boxesT.shape[0], nBoxes = boxesT.shape[1], nc = scoresT.shape[1]

        // Corner form (ymin, xmin, ymax, xmax) of every box.
        var corners = [Float](repeating: 0, count: boxes.count)
        for i in 0..<(nb * nBoxes) {
            let b = i * 4
            if centerPointBox == 0 {
                corners[b] = min(boxes[b], boxes[b + 2]); corners[b + 2] = max(boxes[b], boxes[b + 2])
                corners[b + 1] = min(boxes[b + 1], boxes[b + 3]); corners[b + 3] = max(boxes[b + 1], boxes[b + 3])
            } else {
                let xc = boxes[b], yc = boxes[b + 1], hw = boxes[b + 2] / 2, hh = boxes[b + 3] / 2
                corners[b] = yc - hh; corners[b + 2] = yc + hh
                corners[b + 1] = xc - hw; corners[b + 3] = xc + hw
            }
        }
        func suppresses(_ i: Int, _ j: Int) -> Bool {
            let a = i * 4, b = j * 4
            let ix0 = max(corners[a + 1], corners[b + 1]), ix1 = min(corners[a + 3], corners[b + 3])
            if ix1 <= ix0 { return false }
            let iy0 = max(corners[a], corners[b]), iy1 = min(corners[a + 2], corners[b + 2])
            if iy1 <= iy0 { return false }
            let inter = (ix1 - ix0) * (iy1 - iy0)
            let areaA = (corners[a + 3] - corners[a + 1]) * (corners[a + 2] - corners[a])
            let areaB = (corners[b + 3] - corners[b + 1]) * (corners[b + 2] - corners[b])
            let union = areaA + areaB - inter
            if inter <= 0 || areaA <= 0 || areaB <= 0 || union <= 0 { return false }
            return inter / union > iouThreshold
        }

        var selected: [Int64] = []
        if maxOut > 0 {
            for b in 0..<nb {
                for c in 0..<nc {
                    let sBase = (b * nc + c) * nBoxes
                    var cand: [Int] = []
                    for i in 0..<nBoxes {
                        if let st = scoreThreshold, !(scores[sBase + i] > st) { continue }
                        cand.append(i)
                    }
                    // Highest score first; ties: lower index first.
                    cand.sort { x, y in
                        let sx = scores[sBase + x], sy = scores[sBase + y]
                        return sx > sy || (sx == sy && x < y)
                    }
                    var kept: [Int] = []
                    for i in cand {
                        if kept.count >= maxOut { break }
                        let gi = b * nBoxes + i
                        if kept.contains(where: { suppresses(gi, b * nBoxes + $0) }) { continue }
                        kept.append(i)
                        selected += [Int64(b), Int64(c), Int64(i)]
                    }
                }
            }
        }
        return [Tensor(validShape: [selected.count / 3, 3], scalars: selected)]
    }
}

// MARK: - rewrites owned by this family

/// Removes Identity and inference-mode Dropout nodes (whose mask, if named, nobody reads) and Casts to
/// the type their input already has (exporters write them for `.to(float32)`: they would split
/// patterns such as RMSNorm's) by rewiring their readers to the source value.
/// A node whose output is a graph output is kept (the output name must stay).
struct RemoveIdentity: GraphPass {
    let name = "remove-identity"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        let outputs = graph.outputNames
        // Values something reads: a Dropout whose mask nobody reads is an identity too.
        var read = Set(outputs)
        for n in graph.nodes { read.formUnion(n.inputs); read.formUnion(n.implicitInputs) }
        var rename: [String: String] = [:]
        var kept: [Node] = []
        for n in graph.nodes {
            let isIdentity = n.isStandardDomain && (n.opType == "Identity" ||
                (n.opType == "Dropout" && n.inputs.count == 1 && n.outputs.dropFirst().allSatisfy { $0.isEmpty || !read.contains($0) })
                || sameTypeCast(n, in: graph))
            if isIdentity, n.inputs.count >= 1, !n.inputs[0].isEmpty, let o = n.outputs.first, !outputs.contains(o) {
                rename[o] = rename[n.inputs[0]] ?? n.inputs[0]
                continue
            }
            kept.append(n)
        }
        guard !rename.isEmpty else { return false }
        // Subgraphs that read a renamed value through outer scope keep working only if we leave those alone.
        let subgraphReads = Set(kept.flatMap(\.implicitInputs))
        if !subgraphReads.isDisjoint(with: rename.keys) { return false }
        for i in kept.indices {
            kept[i].inputs = kept[i].inputs.map { rename[$0] ?? $0 }
        }
        graph.nodes = kept
        return true
    }

    /// A Cast whose input's element type is known to be its target type (Cast returns such an input as it is).
    private func sameTypeCast(_ n: Node, in graph: Graph) -> Bool {
        guard n.opType == "Cast", n.inputs.count == 1, case .int(let code)? = n.attributes["to"],
              let to = DType(onnxCode: Int32(truncatingIfNeeded: code)), code > 0,
              let from = graph.infoOrConstant(of: n.inputs[0])?.type else { return false }
        return from == to
    }
}
