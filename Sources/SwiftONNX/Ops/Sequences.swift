/// Sequence and optional ops: SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceAt,
/// SequenceErase, SequenceLength, SplitToSequence, ConcatFromSequence, SequenceMap, Optional,
/// OptionalHasElement, OptionalGetElement.
///
/// Sequences and optionals are values of the run like tensors (`Tensor.init(sequence:elementType:)`,
/// `Tensor.init(optional:elementType:elementKind:)`): a sequence holds its tensors, which are shared,
/// never copied, as it grows or shrinks. Inference says the element type and leaves shapes unknown.
func registerSequenceOps(_ r: inout OpRegistry) {
    // The element type a sequence-valued output holds.
    let sequenceOfFirst = Inference { _, ins in [TypeInfo(dtype: ins.dtype(0), shape: nil)] }

    r.register("SequenceEmpty", infer: Inference { ctx, _ in
        [TypeInfo(dtype: DType(onnxCode: Int32(truncatingIfNeeded: try ctx.int("dtype", default: 1))), shape: nil)]
    }, containers: true, closure: { ctx in
        let code = try ctx.int("dtype", default: 1)
        guard let dtype = DType(onnxCode: Int32(truncatingIfNeeded: code)) else {
            throw ctx.attributeError("dtype", "\(code) is not a tensor element type")
        }
        return { _, _ in [try Tensor(sequence: [], elementType: dtype)] }
    })

    r.register("SequenceConstruct", infer: sequenceOfFirst, containers: true, closure: { _ in
        return { inputs, _ in
            var elements: [Tensor] = []
            for (i, t) in inputs.enumerated() {
                guard let t else { throw OpError("input #\(i) is missing") }
                elements.append(try tensorElement(t, "input #\(i)"))
            }
            guard let first = elements.first else { throw OpError("SequenceConstruct needs at least one tensor") }
            return [try sequence(elements, first.dtype)]
        }
    })

    r.register("SequenceInsert", infer: sequenceOfFirst, containers: true, closure: { _ in
        return { inputs, _ in
            var (elements, dtype) = try sequenceInput(inputs, 0)
            let t = try tensorElement(try inputs.required(1, "tensor"), "the tensor to insert")
            guard t.dtype == dtype else { throw OpError("the tensor is \(t.dtype); the sequence holds \(dtype)") }
            var at = elements.count
            if let p = inputs.optional(2) { at = try position(p, count: elements.count, allowEnd: true) }
            elements.insert(t, at: at)
            return [try sequence(elements, dtype)]
        }
    })

    r.register("SequenceAt", infer: Inference { _, ins in [TypeInfo(dtype: ins.dtype(0), shape: nil)] },
               containers: true, closure: { _ in
        return { inputs, _ in
            let (elements, _) = try sequenceInput(inputs, 0)
            let at = try position(try inputs.required(1, "position"), count: elements.count, allowEnd: false)
            return [elements[at]]
        }
    })

    r.register("SequenceErase", infer: sequenceOfFirst, containers: true, closure: { _ in
        return { inputs, _ in
            var (elements, dtype) = try sequenceInput(inputs, 0)
            var at = elements.count - 1
            if let p = inputs.optional(1) { at = try position(p, count: elements.count, allowEnd: false) }
            guard at >= 0 else { throw OpError("cannot erase from an empty sequence") }
            elements.remove(at: at)
            return [try sequence(elements, dtype)]
        }
    })

    r.register("SequenceLength", infer: Inference { _, _ in [TypeInfo(dtype: .int64, shape: [])] },
               containers: true, closure: { _ in
        return { inputs, _ in
            let (elements, _) = try sequenceInput(inputs, 0)
            return [Tensor(scalar: Int64(elements.count))]
        }
    })

    r.register("SplitToSequence", infer: sequenceOfFirst, closure: { ctx in
        let axis = try ctx.int("axis", default: 0)
        let keepdims = try ctx.int("keepdims", default: 1)
        return { inputs, _ in
            let x = try inputs.required(0)
            guard x.rank >= 1 else { throw OpError("the input is a scalar; it has no axis to split") }
            let a = try normalizeAxis(axis, rank: x.rank, "axis")
            let dim = x.shape[a]
            var sizes: [Int]
            var squeeze = false
            if let s = inputs.optional(1) {
                let v = try readInts(s, "split")
                if s.rank == 0 {
                    guard let c = v.first, c > 0 else { throw OpError("split \(v.first ?? 0) must be positive") }
                    sizes = Array(repeating: c, count: dim / c)
                    if dim % c != 0 { sizes.append(dim % c) }
                } else {
                    guard s.rank == 1 else { throw OpError("split must be a scalar or 1-D, got shape \(describeShape(s.shape))") }
                    guard v.allSatisfy({ $0 >= 0 }), v.reduce(0, +) == dim else {
                        throw OpError("split sizes \(v) do not sum to dimension \(dim) of \(describeShape(x.shape))")
                    }
                    sizes = v
                }
            } else {
                sizes = Array(repeating: 1, count: dim)
                squeeze = keepdims == 0
            }
            var elements: [Tensor] = []
            elements.reserveCapacity(sizes.count)
            var start = 0
            for n in sizes {
                var part = try sliceAxis(x, axis: a, start: start, len: n)
                if squeeze {
                    var shape = part.shape
                    shape.remove(at: a)
                    part = part.reshaped(shape)
                }
                elements.append(part)
                start += n
            }
            return [try sequence(elements, x.dtype)]
        }
    })

    r.register("ConcatFromSequence", infer: Inference { _, ins in [TypeInfo(dtype: ins.dtype(0), shape: nil)] },
               containers: true, closure: { ctx in
        guard let axis = try ctx.int("axis") else { throw ctx.attributeError("axis", "required attribute is missing") }
        let newAxis = try ctx.int("new_axis", default: 0)
        guard newAxis == 0 || newAxis == 1 else { throw ctx.attributeError("new_axis", "must be 0 or 1, got \(newAxis)") }
        return { inputs, _ in
            let (elements, _) = try sequenceInput(inputs, 0)
            guard let first = elements.first else {
                throw OpError("the sequence is empty: there is no tensor to take the output's shape from")
            }
            if newAxis == 1 {
                // A new axis in [-rank-1, rank].
                let a = try normalizeAxis(axis, rank: first.rank + 1, "axis", scalarAllowed: true)
                return [try stackAlong(elements, axis: a, fallbackType: first.dtype, fallbackShape: first.shape, "ConcatFromSequence")]
            }
            return [try concatenate(elements, axis: axis, "ConcatFromSequence")]
        }
    })

    r.register("SequenceMap", infer: Inference { ctx, _ in Array(repeating: .unknown, count: ctx.outputCount) }, containers: true, closure: { ctx in
        let body = try ctx.compileSubgraph(try ctx.requiredGraph("body"))
        guard body.inputNames.count == ctx.inputCount else {
            throw ctx.attributeError("body", "takes \(body.inputNames.count) inputs; the node gives \(ctx.inputCount)")
        }
        guard body.outputNames.count == ctx.outputCount else {
            throw ctx.attributeError("body", "has \(body.outputNames.count) outputs; the node has \(ctx.outputCount)")
        }
        let declared = ctx.inputCount
        let binding = body.bind(implicitNames: ctx.node.implicitInputs)
        let outputTypes = body.outputs.map(\.type)
        return { inputs, env in
            let (first, _) = try sequenceInput(inputs, 0)
            let n = first.count
            // Each further input: a sequence of n (element i goes to iteration i), or a tensor every
            // iteration takes whole.
            var perIteration: [[Tensor]?] = [first]
            var whole: [Tensor?] = [nil]
            for k in 1..<declared {
                let t = try inputs.required(k, "additional input")
                if let e = t.sequenceElements {
                    guard e.count == n else {
                        throw OpError("input #\(k) is a sequence of \(e.count) tensors; input #0 has \(n)")
                    }
                    perIteration.append(e)
                    whole.append(nil)
                } else {
                    perIteration.append(nil)
                    whole.append(try tensorElement(t, "input #\(k)"))
                }
            }
            var outputs = [[Tensor]](repeating: [], count: outputTypes.count)
            var args: [Tensor] = []
            for i in 0..<n {
                args.removeAll(keepingCapacity: true)
                for k in 0..<declared { args.append(perIteration[k]?[i] ?? whole[k]!) }
                let outs = try body.run(args, binding: binding, nodeInputs: inputs, declared: declared, env: env)
                for (k, o) in outs.prefix(outputTypes.count).enumerated() {
                    outputs[k].append(try tensorElement(o, "body output #\(k)"))
                }
            }
            return try outputs.enumerated().map { k, e in
                try sequence(e, e.first?.dtype ?? outputTypes[k] ?? .float32)
            }
        }
    })

    r.register("Optional", infer: Inference { ctx, ins in
        let declared = try ctx.type("type")?.dtype
        return [TypeInfo(dtype: ins.dtype(0) ?? declared, shape: nil)]
    }, containers: true, closure: { ctx in
        let declared = try ctx.type("type")
        if !ctx.hasInput(0) && declared == nil {
            throw ctx.attributeError("type", "is required when the node has no input")
        }
        return { inputs, _ in
            if let t = inputs.optional(0) {
                if t.isOptional { throw OpError("the input is already an optional value") }
                return [try Tensor(optional: t, elementType: t.dtype)]
            }
            var kind = ValueKind.tensor
            if case .optional(let k)? = declared?.kind { kind = k } else if let k = declared?.kind { kind = k }
            return [try Tensor(optional: nil, elementType: declared?.dtype ?? .float32, elementKind: kind)]
        }
    })

    r.register("OptionalHasElement", infer: Inference { _, _ in [TypeInfo(dtype: .bool, shape: [])] },
               containers: true, closure: { _ in
        return { inputs, _ in
            // No input: an empty optional. A tensor or a sequence (opset 18) has its element.
            guard let t = inputs.optional(0) else { return [Tensor(scalar: false)] }
            return [Tensor(scalar: t.isOptional ? t.optionalElement != nil : true)]
        }
    })

    r.register("OptionalGetElement", infer: Inference { _, ins in [TypeInfo(dtype: ins.dtype(0), shape: nil)] },
               containers: true, closure: { _ in
        return { inputs, _ in
            let t = try inputs.required(0)
            guard t.isOptional else { return [t] }   // a tensor or a sequence is its own element (opset 18)
            guard let e = t.optionalElement else { throw OpError("the optional input is empty") }
            return [e]
        }
    })
}

/// A sequence of `elements`, typed errors as op errors.
private func sequence(_ elements: [Tensor], _ dtype: DType) throws -> Tensor {
    do { return try Tensor(sequence: elements, elementType: dtype) } catch {
        if case .invalidInput(_, let reason) = error { throw OpError(reason) }
        throw error
    }
}

/// The i-th input as a sequence: its tensors and their element type.
private func sequenceInput(_ inputs: [Tensor?], _ i: Int) throws -> ([Tensor], DType) {
    let t = try inputs.required(i, "sequence")
    guard let e = t.sequenceElements else { throw OpError("input #\(i) is a \(t.kind) value, not a sequence") }
    return (e, t.dtype)
}

/// `t` when it is a tensor, else an error naming `what`.
private func tensorElement(_ t: Tensor, _ what: String) throws -> Tensor {
    guard !t.isContainer else { throw OpError("\(what) is a \(t.kind) value; a sequence holds tensors") }
    return t
}

/// A position in a sequence of `count` tensors: a scalar integer in [-count, count) (or up to count
/// itself where inserting at the end is allowed), negative counting from the end.
private func position(_ t: Tensor, count: Int, allowEnd: Bool) throws -> Int {
    guard t.dtype == .int32 || t.dtype == .int64 else { throw OpError("position must be int32 or int64, got \(t.dtype)") }
    guard t.count == 1, t.rank <= 1 else { throw OpError("position must be a scalar, got shape \(describeShape(t.shape))") }
    let p = try t.readAsInts()[0]
    let upper = allowEnd ? count : count - 1
    guard p >= -count && p <= upper else {
        throw OpError("position \(p) is out of range for a sequence of \(count) tensor\(count == 1 ? "" : "s")")
    }
    return p < 0 ? p + count : p
}
