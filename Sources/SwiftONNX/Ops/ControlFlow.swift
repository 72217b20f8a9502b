/// Control-flow ops: If, Loop, Scan (opset 8 and 9+).
///
/// Each op compiles its subgraphs once when the plan is built. At run time the op's `inputs` hold the
/// declared inputs followed by the node's implicit (outer-scope) inputs, in `node.implicitInputs` order;
/// these become the `outer` dictionary handed to the subgraph runners.
func registerControlFlowOps(_ r: inout OpRegistry) {
    r.register("If", infer: Inference(inferIf), containers: true, buildIf)
    r.register("Loop", infer: Inference(inferLoop), containers: true, buildLoop)
    r.register("Scan", infer: Inference(inferScan), containers: true) { ctx in ctx.opset <= 8 ? try buildScan8(ctx) : try buildScan9(ctx) }
    r.rewrite(.fold, InlineConstantIf())
}

/// An If whose condition is a constant becomes the nodes of the branch it takes. Conditions computed
/// from shapes (exporters' batch checks, as in Silero VAD's decoder) fold to constants once the input
/// shapes are known, and the branch's nodes then fold and fuse with the rest of the graph. Values the
/// branch defines are renamed where their names are taken elsewhere in the graph.
struct InlineConstantIf: GraphPass {
    let name = "inline-constant-if"

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        var changed = false
        var i = 0
        while i < graph.nodes.count {
            let node = graph.nodes[i]
            guard node.isStandardDomain, node.opType == "If", node.inputs.count == 1,
                  let cond = graph.initializers[node.inputs[0]], cond.count == 1, cond.dtype != .string,
                  let value = try? truthValue(cond, "condition"),
                  case .graph(let chosen)? = node.attributes[value ? "then_branch" : "else_branch"],
                  chosen.inputs.isEmpty, chosen.outputs.count == node.outputs.count else { i += 1; continue }
            let branch = chosen.deepCopy()
            // Names used anywhere else in the graph (the If's own outputs are taken over by the branch).
            var taken = Set<String>()
            graph.allValueNames(into: &taken, skipping: i)
            var defined = Set(branch.initializers.keys)
            for n in branch.nodes { defined.formUnion(n.outputs.filter { !$0.isEmpty }) }
            // The branch's outputs defined by its nodes take the If's output names, each once.
            var map: [String: String] = [:]
            var identities: [Node] = []
            var claimed = Set<String>()
            for (bo, o) in zip(branch.outputs.map(\.name), node.outputs) where !o.isEmpty {
                if defined.contains(bo), branch.initializers[bo] == nil, !claimed.contains(bo) {
                    map[bo] = o
                    claimed.insert(bo)
                } else {
                    identities.append(Node(name: node.name.isEmpty ? "" : node.name + "/output", opType: "Identity", domain: "",
                                           inputs: [bo], outputs: [o], attributes: [:]))
                }
            }
            var fresh = 0
            for name in defined.sorted() where map[name] == nil && taken.contains(name) {
                var candidate: String
                repeat {
                    candidate = "\(name)__inlined\(fresh)"
                    fresh += 1
                } while taken.contains(candidate) || defined.contains(candidate)
                map[name] = candidate
                taken.insert(candidate)
            }
            branch.rename(map)
            for id in identities.indices { identities[id].inputs = identities[id].inputs.map { map[$0] ?? $0 } }
            for (k, t) in branch.initializers { graph.initializers[k] = t }
            for (k, v) in branch.valueInfo where graph.valueInfo[k] == nil { graph.valueInfo[k] = v }
            let inlined = branch.nodes + identities
            graph.nodes.replaceSubrange(i...i, with: inlined)
            i += inlined.count
            changed = true
        }
        if changed { graph.pruneUnusedInitializers() }
        return changed
    }
}

// MARK: - inference (from the subgraphs' declared outputs)

/// What two possible types of one value have in common.
private func commonType(_ a: TypeInfo, _ b: TypeInfo) -> TypeInfo {
    let dt = a.dtype == b.dtype ? a.dtype : nil
    guard let sa = a.shape, let sb = b.shape, sa.count == sb.count else { return TypeInfo(dtype: dt, shape: nil) }
    return TypeInfo(dtype: dt, shape: zip(sa, sb).map { $0 == $1 ? $0 : .unknown })
}

private func declaredType(_ v: ValueInfo) -> TypeInfo { TypeInfo(dtype: v.type, shape: v.shape) }

/// Each output: what both branches declare alike.
private func inferIf(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let a = try ctx.requiredGraph("then_branch").outputs, b = try ctx.requiredGraph("else_branch").outputs
    return (0..<ctx.outputCount).map { k in
        k < a.count && k < b.count ? commonType(declaredType(a[k]), declaredType(b[k])) : .unknown
    }
}

/// Loop-carried values keep their type (and the dims the body keeps); scan outputs gain a leading trip dimension.
private func inferLoop(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let body = try ctx.requiredGraph("body").outputs
    let nCarried = max(ctx.inputCount - 2, 0)
    return (0..<ctx.outputCount).map { k in
        guard 1 + k < body.count else { return .unknown }
        let out = declaredType(body[1 + k])
        if k < nCarried { return commonType(ins.at(2 + k).type, out) }
        return TypeInfo(dtype: out.dtype, shape: out.shape.map { [.unknown] + $0 })
    }
}

/// States keep their type; scan outputs stack the body's per-iteration outputs along their axis.
private func inferScan(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let body = try ctx.requiredGraph("body").outputs
    guard let m = try ctx.int("num_scan_inputs") else { return [] }
    let legacy = ctx.opset <= 8   // opset 8 has a leading sequence_lens input and a batch axis
    let first = legacy ? 1 : 0
    let nStates = ctx.inputCount - first - m
    guard nStates >= 0 else { return [] }
    let outAxes = legacy ? nil : try ctx.ints("scan_output_axes")
    return (0..<ctx.outputCount).map { k in
        guard k < body.count else { return .unknown }
        let out = declaredType(body[k])
        if k < nStates { return commonType(ins.at(first + k).type, out) }
        guard var shape = out.shape else { return TypeInfo(dtype: out.dtype, shape: nil) }
        if legacy {
            shape = [.unknown, .unknown] + shape   // [batch, sequence] + the body's per-step shape
        } else {
            let j = k - nStates
            var axis = outAxes.flatMap { j < $0.count ? $0[j] : nil } ?? 0
            if axis < 0 { axis += shape.count + 1 }
            guard axis >= 0 && axis <= shape.count else { return TypeInfo(dtype: out.dtype, shape: nil) }
            shape.insert(.unknown, at: axis)
        }
        return TypeInfo(dtype: out.dtype, shape: shape)
    }
}

// MARK: - helpers

/// Outer-scope values of a node with subgraphs, by name.
fileprivate func outerValues(_ inputs: [Tensor?], declared: Int, names: [String]) -> [String: Tensor] {
    var outer: [String: Tensor] = [:]
    outer.reserveCapacity(names.count)
    for (k, name) in names.enumerated() where declared + k < inputs.count {
        if let t = inputs[declared + k] { outer[name] = t }
    }
    return outer
}

/// Truth value of a one-element tensor (bool, or any number: nonzero is true).
fileprivate func truthValue(_ t: Tensor, _ what: String) throws -> Bool {
    guard t.count == 1 else { throw OpError("\(what) must hold exactly one element, got shape \(describeShape(t.shape))") }
    switch t.dtype {
    case .bool: return t.pointer(UInt8.self).pointee != 0
    case .string: throw OpError("\(what) must be boolean, got a string tensor")
    default: return try t.readAsDoubles()[0] != 0
    }
}

/// A one-element integer tensor read as Int.
fileprivate func scalarInt(_ t: Tensor, _ what: String) throws -> Int {
    guard t.count == 1 else { throw OpError("\(what) must hold exactly one element, got shape \(describeShape(t.shape))") }
    guard t.dtype != .string, !t.dtype.isFloatingPoint else { throw OpError("\(what) must be an integer, got \(t.dtype)") }
    return try t.readAsInts()[0]
}

/// The sub-tensor at `index` along `axis` (that axis removed). Copies.
fileprivate func sliceAlong(_ t: Tensor, axis: Int, index: Int) throws -> Tensor {
    var shape = t.shape
    let n = shape.remove(at: axis)
    let outer = t.shape[..<axis].reduce(1, *)
    let inner = shape[axis...].reduce(1, *)
    if t.dtype == .string {
        let src = t.storage.strings
        var dst: [String] = []
        dst.reserveCapacity(outer * inner)
        for o in 0..<outer {
            let base = (o * n + index) * inner
            dst.append(contentsOf: src[base..<(base + inner)])
        }
        return Tensor(validShape: shape, strings: dst)
    }
    if outer == 1 {
        // Contiguous block: alias no memory (inputs may be mapped files), just copy once.
        let out = try Tensor.uninitialized(t.dtype, shape)
        let es = t.dtype.byteSize
        if inner > 0 { out.raw.copyMemory(from: t.raw + index * inner * es, byteCount: inner * es) }
        return out
    }
    let out = try Tensor.uninitialized(t.dtype, shape)
    let es = t.dtype.byteSize
    let blk = inner * es
    if blk > 0 {
        for o in 0..<outer {
            out.raw.advanced(by: o * blk).copyMemory(from: t.raw + ((o * n + index) * inner) * es, byteCount: blk)
        }
    }
    return out
}

/// Stacks equally shaped tensors along a new axis `axis` (0...rank). `fallback` gives dtype and
/// per-part shape when `parts` is empty.
func stackAlong(_ parts: [Tensor], axis: Int, fallbackType: DType?, fallbackShape: [Int]?,
                            _ what: String) throws -> Tensor {
    guard let first = parts.first else {
        let dt = fallbackType ?? .float32
        var shape = fallbackShape ?? []
        let a = min(max(axis, 0), shape.count)
        shape.insert(0, at: a)
        return try Tensor.zeros(dt, shape)
    }
    for (i, p) in parts.enumerated() where p.shape != first.shape || p.dtype != first.dtype {
        throw OpError("\(what): iteration \(i) produced \(p.dtype) \(describeShape(p.shape)), " +
                      "but iteration 0 produced \(first.dtype) \(describeShape(first.shape))")
    }
    guard axis >= 0 && axis <= first.rank else {
        throw OpError("\(what): axis \(axis) is out of range for stacking rank-\(first.rank) tensors")
    }
    let n = parts.count
    var shape = first.shape
    shape.insert(n, at: axis)
    let outer = first.shape[..<axis].reduce(1, *)
    let inner = first.shape[axis...].reduce(1, *)
    if first.dtype == .string {
        var dst = [String](repeating: "", count: outer * n * inner)
        for (t, p) in parts.enumerated() {
            let src = p.storage.strings
            for o in 0..<outer {
                for k in 0..<inner { dst[(o * n + t) * inner + k] = src[o * inner + k] }
            }
        }
        return Tensor(validShape: shape, strings: dst)
    }
    let out = try Tensor.uninitialized(first.dtype, shape)
    let blk = inner * first.dtype.byteSize
    if blk > 0 {
        for (t, p) in parts.enumerated() {
            for o in 0..<outer {
                out.raw.advanced(by: (o * n + t) * blk).copyMemory(from: p.raw + o * blk, byteCount: blk)
            }
        }
    }
    return out
}

/// The declared shape of a graph output, if fully known.
fileprivate func knownShape(_ v: ValueInfo) -> [Int]? {
    guard let dims = v.shape else { return nil }
    var s: [Int] = []
    for d in dims {
        guard let x = d.value else { return nil }
        s.append(x)
    }
    return s
}

// MARK: - If

fileprivate func buildIf(_ ctx: OpContext) throws -> any Operator {
    let thenR = try ctx.compileSubgraph(try ctx.requiredGraph("then_branch"))
    let elseR = try ctx.compileSubgraph(try ctx.requiredGraph("else_branch"))
    let nOut = ctx.outputCount
    for (name, br) in [("then_branch", thenR), ("else_branch", elseR)] where br.outputNames.count < nOut {
        throw ctx.attributeError(name, "has \(br.outputNames.count) outputs, the node has \(nOut)")
    }
    for (name, br) in [("then_branch", thenR), ("else_branch", elseR)] where !br.inputNames.isEmpty {
        throw ctx.attributeError(name, "declares \(br.inputNames.count) inputs; If branches take none")
    }
    let declared = ctx.inputCount
    let names = ctx.node.implicitInputs
    // Outer values are bound by position once here, so a run does no name lookups.
    let thenB = thenR.bind(implicitNames: names), elseB = elseR.bind(implicitNames: names)
    return ClosureOperator { inputs, env in
        let cond = try truthValue(try inputs.required(0, "cond"), "If condition")
        return cond ? try thenR.run([], binding: thenB, nodeInputs: inputs, declared: declared, env: env)
                    : try elseR.run([], binding: elseB, nodeInputs: inputs, declared: declared, env: env)
    }
}

// MARK: - Loop

fileprivate func buildLoop(_ ctx: OpContext) throws -> any Operator {
    let body = try ctx.compileSubgraph(try ctx.requiredGraph("body"))
    let nCarried = max(ctx.inputCount - 2, 0)
    guard body.inputNames.count == nCarried + 2 else {
        throw ctx.attributeError("body", "takes \(body.inputNames.count) inputs; expected \(nCarried + 2) " +
                                 "(iteration number, condition and \(nCarried) loop-carried values)")
    }
    let nScan = body.outputNames.count - 1 - nCarried
    guard nScan >= 0 else {
        throw ctx.attributeError("body", "has \(body.outputNames.count) outputs; expected at least \(nCarried + 1)")
    }
    guard ctx.outputCount <= nCarried + nScan else {
        throw ctx.attributeError("body", "yields \(nCarried) loop-carried values and \(nScan) scan outputs, " +
                                 "but the node has \(ctx.outputCount) outputs")
    }
    let scanInfos = Array(body.outputs[(1 + nCarried)...])
    let declared = ctx.inputCount
    let binding = body.bind(implicitNames: ctx.node.implicitInputs)
    return ClosureOperator { inputs, env in
        var maxTrips: Int? = nil
        if let m = inputs.optional(0) { maxTrips = try scalarInt(m, "Loop max trip count M") }
        var cond = true
        if let c = inputs.optional(1) { cond = try truthValue(c, "Loop condition") }
        var carried: [Tensor] = []
        carried.reserveCapacity(nCarried)
        for k in 0..<nCarried {
            carried.append(try inputs.required(2 + k, "loop-carried initial value"))
        }
        var scans = [[Tensor]](repeating: [], count: nScan)
        var i = 0
        var args: [Tensor] = []
        while cond, maxTrips.map({ i < $0 }) ?? true {
            args.removeAll(keepingCapacity: true)
            args.append(Tensor(scalar: Int64(i)))
            args.append(Tensor(scalar: cond))
            args.append(contentsOf: carried)
            let outs = try body.run(args, binding: binding, nodeInputs: inputs, declared: declared, env: env)
            cond = try truthValue(outs[0], "Loop body condition output")
            for k in 0..<nCarried { carried[k] = outs[1 + k] }
            for k in 0..<nScan {
                let t = outs[1 + nCarried + k]
                if t.isContainer { throw OpError("scan output #\(k) of the body is a \(t.kind) value; Loop stacks tensors only") }
                scans[k].append(t)
            }
            i += 1
        }
        var result = carried
        for k in 0..<nScan {
            result.append(try stackAlong(scans[k], axis: 0, fallbackType: scanInfos[k].type,
                                         fallbackShape: knownShape(scanInfos[k]), "Loop scan output #\(k)"))
        }
        return result
    }
}

// MARK: - Scan (opset 9+)

fileprivate func buildScan9(_ ctx: OpContext) throws -> any Operator {
    let body = try ctx.compileSubgraph(try ctx.requiredGraph("body"))
    guard let m = try ctx.int("num_scan_inputs"), m >= 1 else {
        throw ctx.attributeError("num_scan_inputs", "is required and must be at least 1")
    }
    let nStates = ctx.inputCount - m
    guard nStates >= 0 else { throw ctx.attributeError("num_scan_inputs", "\(m) exceeds the \(ctx.inputCount) inputs") }
    guard body.inputNames.count == nStates + m else {
        throw ctx.attributeError("body", "takes \(body.inputNames.count) inputs; expected \(nStates + m)")
    }
    let nScanOut = body.outputNames.count - nStates
    guard nScanOut >= 0 else { throw ctx.attributeError("body", "has fewer outputs than the \(nStates) states") }
    let inAxes = try ctx.ints("scan_input_axes") ?? Array(repeating: 0, count: m)
    let inDirs = try ctx.ints("scan_input_directions") ?? Array(repeating: 0, count: m)
    let outAxes = try ctx.ints("scan_output_axes") ?? Array(repeating: 0, count: nScanOut)
    let outDirs = try ctx.ints("scan_output_directions") ?? Array(repeating: 0, count: nScanOut)
    guard inAxes.count == m else { throw ctx.attributeError("scan_input_axes", "needs \(m) entries") }
    guard inDirs.count == m, inDirs.allSatisfy({ $0 == 0 || $0 == 1 }) else {
        throw ctx.attributeError("scan_input_directions", "needs \(m) entries of 0 or 1")
    }
    guard outAxes.count == nScanOut else { throw ctx.attributeError("scan_output_axes", "needs \(nScanOut) entries") }
    guard outDirs.count == nScanOut, outDirs.allSatisfy({ $0 == 0 || $0 == 1 }) else {
        throw ctx.attributeError("scan_output_directions", "needs \(nScanOut) entries of 0 or 1")
    }
    let scanInfos = Array(body.outputs[nStates...])
    let declared = ctx.inputCount
    let names = ctx.node.implicitInputs
    return ClosureOperator { inputs, env in
        var states: [Tensor] = []
        for k in 0..<nStates { states.append(try inputs.required(k, "initial state")) }
        var scanIn: [Tensor] = []
        var axes: [Int] = []
        var seqLen = -1
        for j in 0..<m {
            let t = try inputs.required(nStates + j, "scan input")
            if t.isContainer { throw OpError("scan input #\(j) is a \(t.kind) value; Scan slices tensors only") }
            let a = try normalizeAxis(inAxes[j], rank: t.rank, "scan_input_axes[\(j)]")
            guard t.rank >= 1 else { throw OpError("scan input #\(j) must have rank >= 1") }
            if seqLen < 0 { seqLen = t.shape[a] } else if t.shape[a] != seqLen {
                throw OpError("scan inputs disagree on sequence length: \(seqLen) vs \(t.shape[a]) (input #\(j), " +
                              "shape \(describeShape(t.shape)), axis \(a))")
            }
            scanIn.append(t)
            axes.append(a)
        }
        let outer = outerValues(inputs, declared: declared, names: names)
        var scans = [[Tensor]](repeating: [], count: nScanOut)
        var args: [Tensor] = []
        for t in 0..<max(seqLen, 0) {
            args.removeAll(keepingCapacity: true)
            args.append(contentsOf: states)
            for j in 0..<m {
                let idx = inDirs[j] == 1 ? seqLen - 1 - t : t
                args.append(try sliceAlong(scanIn[j], axis: axes[j], index: idx))
            }
            let outs = try body.run(args, outer: outer, env: env)
            for k in 0..<nStates { states[k] = outs[k] }
            for k in 0..<nScanOut {
                if outs[nStates + k].isContainer { throw OpError("scan output #\(k) of the body is a \(outs[nStates + k].kind) value; Scan stacks tensors only") }
                scans[k].append(outs[nStates + k])
            }
        }
        var result = states
        for k in 0..<nScanOut {
            if outDirs[k] == 1 { scans[k].reverse() }
            let r = (scans[k].first?.rank ?? (scanInfos[k].shape?.count ?? 0)) + 1
            let a = try normalizeAxis(outAxes[k], rank: r, "scan_output_axes[\(k)]")
            result.append(try stackAlong(scans[k], axis: a, fallbackType: scanInfos[k].type,
                                         fallbackShape: knownShape(scanInfos[k]), "Scan output #\(k)"))
        }
        return result
    }
}

// MARK: - Scan (opset 8): batch axis 0, sequence axis 1, optional sequence_lens first

fileprivate func buildScan8(_ ctx: OpContext) throws -> any Operator {
    let body = try ctx.compileSubgraph(try ctx.requiredGraph("body"))
    guard let m = try ctx.int("num_scan_inputs"), m >= 1 else {
        throw ctx.attributeError("num_scan_inputs", "is required and must be at least 1")
    }
    let nStates = ctx.inputCount - 1 - m
    guard nStates >= 0 else { throw ctx.attributeError("num_scan_inputs", "\(m) exceeds the inputs") }
    guard body.inputNames.count == nStates + m else {
        throw ctx.attributeError("body", "takes \(body.inputNames.count) inputs; expected \(nStates + m)")
    }
    let nScanOut = body.outputNames.count - nStates
    guard nScanOut >= 0 else { throw ctx.attributeError("body", "has fewer outputs than the \(nStates) states") }
    let dirs = try ctx.ints("directions") ?? Array(repeating: 0, count: m)
    guard dirs.count == m, dirs.allSatisfy({ $0 == 0 || $0 == 1 }) else {
        throw ctx.attributeError("directions", "needs \(m) entries of 0 or 1")
    }
    let scanInfos = Array(body.outputs[nStates...])
    let declared = ctx.inputCount
    let names = ctx.node.implicitInputs
    return ClosureOperator { inputs, env in
        var initStates: [Tensor] = []
        for k in 0..<nStates { initStates.append(try inputs.required(1 + k, "initial state")) }
        var scanIn: [Tensor] = []
        var batch = -1, maxSeq = -1
        for j in 0..<m {
            let t = try inputs.required(1 + nStates + j, "scan input")
            if t.isContainer { throw OpError("scan input #\(j) is a \(t.kind) value; Scan slices tensors only") }
            guard t.rank >= 2 else { throw OpError("Scan-8 input #\(j) needs shape [batch, sequence, ...], got \(describeShape(t.shape))") }
            if batch < 0 { batch = t.shape[0]; maxSeq = t.shape[1] } else if t.shape[0] != batch || t.shape[1] != maxSeq {
                throw OpError("scan inputs disagree on [batch, sequence]: \(describeShape(t.shape)) vs [\(batch), \(maxSeq)]")
            }
            scanIn.append(t)
        }
        for (k, s) in initStates.enumerated() where s.rank < 1 || s.shape[0] != batch {
            throw OpError("initial state #\(k) of shape \(describeShape(s.shape)) does not start with batch size \(batch)")
        }
        var lens = [Int](repeating: maxSeq, count: batch)
        if let sl = inputs.optional(0) {
            let v = try sl.readAsInts()
            guard v.count == batch else { throw OpError("sequence_lens has \(v.count) entries, batch size is \(batch)") }
            for (b, l) in v.enumerated() {
                guard l >= 0 && l <= maxSeq else { throw OpError("sequence_lens[\(b)] = \(l) is outside [0, \(maxSeq)]") }
                lens[b] = l
            }
        }
        let outer = outerValues(inputs, declared: declared, names: names)
        var finalStates = [[Tensor]](repeating: [], count: nStates)
        var perBatchScans = [[Tensor]](repeating: [], count: nScanOut)   // [k][b]: [len_b, ...]
        var args: [Tensor] = []
        for b in 0..<batch {
            var states = try initStates.map { try sliceAlong($0, axis: 0, index: b) }
            let seqs = try scanIn.map { try sliceAlong($0, axis: 0, index: b) }
            var scans = [[Tensor]](repeating: [], count: nScanOut)
            let len = lens[b]
            for t in 0..<len {
                args.removeAll(keepingCapacity: true)
                args.append(contentsOf: states)
                for j in 0..<m { args.append(try sliceAlong(seqs[j], axis: 0, index: dirs[j] == 1 ? len - 1 - t : t)) }
                let outs = try body.run(args, outer: outer, env: env)
                for k in 0..<nStates { states[k] = outs[k] }
                for k in 0..<nScanOut {
                if outs[nStates + k].isContainer { throw OpError("scan output #\(k) of the body is a \(outs[nStates + k].kind) value; Scan stacks tensors only") }
                scans[k].append(outs[nStates + k])
            }
            }
            for k in 0..<nStates { finalStates[k].append(states[k]) }
            for k in 0..<nScanOut {
                perBatchScans[k].append(try stackAlong(scans[k], axis: 0, fallbackType: scanInfos[k].type,
                                                       fallbackShape: nil, "Scan output #\(k)"))
            }
        }
        var result: [Tensor] = []
        for k in 0..<nStates {
            result.append(try stackAlong(finalStates[k], axis: 0, fallbackType: initStates[k].dtype,
                                         fallbackShape: Array(initStates[k].shape.dropFirst()), "Scan state #\(k)"))
        }
        for k in 0..<nScanOut {
            // Pad each batch's [len_b, ...] to [maxSeq, ...] with zeros, then stack over the batch.
            let parts = perBatchScans[k]
            let ref = parts.first(where: { $0.shape[0] > 0 })
            let elemShape = ref.map { Array($0.shape.dropFirst()) } ?? knownShape(scanInfos[k]) ?? []
            let dt = ref?.dtype ?? scanInfos[k].type ?? .float32
            var padded: [Tensor] = []
            for p in parts {
                if p.shape[0] == maxSeq, p.dtype == dt { padded.append(p); continue }
                if p.shape[0] > 0 && (Array(p.shape.dropFirst()) != elemShape || p.dtype != dt) {
                    throw OpError("Scan output #\(k): batches produced different element shapes")
                }
                let full = try Tensor.zeros(dt, [maxSeq] + elemShape)
                if dt == .string {
                    var s = full.storage.strings
                    let src = p.storage.strings
                    for i in 0..<src.count { s[i] = src[i] }
                    padded.append(Tensor(validShape: full.shape, strings: s))
                } else {
                    if p.byteCount > 0 { full.raw.copyMemory(from: p.raw, byteCount: p.byteCount) }
                    padded.append(full)
                }
            }
            result.append(try stackAlong(padded, axis: 0, fallbackType: dt, fallbackShape: [maxSeq] + elemShape,
                                         "Scan output #\(k)"))
        }
        return result
    }
}
