import CKernels
import Foundation

/// Chains of element-wise float ops over one shape, run as one pass: com.swiftonnx::ElementwiseChain.
///
/// Quantized (QDQ) models put a QuantizeLinear -> DequantizeLinear pair after nearly every float
/// Add and Mul, and between them the ops are element-wise over the same map: PP-OCR's detector and
/// recognizer run Mul, Add, Add, Mul, Div, Mul in a row per activation, each a pass over memory with
/// a round trip after it (23 M values per run of the detector at 256x320). The chain is run stretch
/// by stretch instead: every op of it on 2048 values while they are in L1, then the next stretch, so
/// memory sees the chain's inputs read once and its results written once.
///
/// The node's program (attributes):
/// - `program`: ints, three per instruction `[code, a, b]`. Registers 0..<inputs are the node's
///   inputs, register inputs + k the k-th instruction's result. Codes: 0-3 Add, Sub, Mul, Div of
///   registers a and b (numpy broadcasting of the node's inputs; results have the full shape);
///   4 the QuantizeLinear -> DequantizeLinear round trip of register a with the parameters at
///   `params[4 b ..< 4 b + 4]` (scale, zero point, low, high of the 8-bit type).
/// - `params`: floats, four per round trip.
/// - `outputs`: ints, the register of each node output.
/// Every instruction rounds as the op it stands for does, so the results equal the unfused ops' bit
/// for bit (the tests check it against the unoptimized path).
func registerElementwiseChainOps(_ r: inout OpRegistry) {
    r.register(FuseElementwiseChains.opType, domain: FuseElementwiseChains.domain, infer: Inference { ctx, ins in
        let shape = ins.broadcastShape()
        return ctx.node.outputs.map { _ in TypeInfo(dtype: .float32, shape: shape) }
    }) { ctx in
        let program = try ElementwiseProgram(ctx)
        return { inputs, env in try program.run(inputs, threads: env.threads) }
    }
    r.rewrite(.fuse, FuseElementwiseChains())
}

/// The validated program of one ElementwiseChain node, with the scratch slots of its intermediates.
private struct ElementwiseProgram: Sendable {
    enum Instruction: Sendable {
        case binary(F32BinaryOp, Int, Int)
        case roundTrip(Int, scale: Float, zeroPoint: Int32, lo: Int32, hi: Int32)
    }
    let inputCount: Int
    let instructions: [Instruction]
    /// Per register: the node output it is (-1: none).
    let outputOf: [Int]
    let outputRegisters: [Int]
    /// Per register of an instruction that is no output: its scratch slot.
    let slot: [Int]
    let slotCount: Int
    static let stretch = 2048

    init(_ ctx: OpContext) throws {
        let node = ctx.node
        let code = try ctx.ints("program") ?? []
        let params = try ctx.floats("params") ?? []
        let outs = try ctx.ints("outputs") ?? []
        inputCount = node.inputs.count
        guard !node.inputs.isEmpty, !node.inputs.contains("") else {
            throw OpError("\(FuseElementwiseChains.opType) needs at least one input, and none omitted")
        }
        guard code.count % 3 == 0, !code.isEmpty else {
            throw ctx.attributeError("program", "must hold three ints per instruction, got \(code.count)")
        }
        var ins: [Instruction] = []
        for k in 0..<(code.count / 3) {
            let c = code[3 * k], a = code[3 * k + 1], b = code[3 * k + 2]
            let defined = inputCount + k   // registers defined before this instruction
            guard a >= 0, a < defined else { throw ctx.attributeError("program", "instruction \(k) reads register \(a), not defined yet") }
            switch c {
            case 0...3:
                guard b >= 0, b < defined else { throw ctx.attributeError("program", "instruction \(k) reads register \(b), not defined yet") }
                ins.append(.binary([F32BinaryOp.add, .sub, .mul, .div][c], a, b))
            case 4:
                guard b >= 0, 4 * b + 3 < params.count else {
                    throw ctx.attributeError("params", "instruction \(k) needs round-trip parameters #\(b), \(params.count / 4) given")
                }
                let s = params[4 * b], z = params[4 * b + 1], lo = params[4 * b + 2], hi = params[4 * b + 3]
                guard z == z.rounded(), lo == lo.rounded(), hi == hi.rounded(), lo >= -128, hi <= 255, lo <= z, z <= hi else {
                    throw ctx.attributeError("params", "round trip #\(b): zero point \(z) and range [\(lo), \(hi)] must be 8-bit integers")
                }
                ins.append(.roundTrip(a, scale: s, zeroPoint: Int32(z), lo: Int32(lo), hi: Int32(hi)))
            default:
                throw ctx.attributeError("program", "instruction \(k) has unknown code \(c)")
            }
        }
        instructions = ins
        let registers = inputCount + ins.count
        guard outs.count == node.outputs.count, outs.allSatisfy({ $0 >= registers - ins.count && $0 < registers }) else {
            throw ctx.attributeError("outputs", "must name one instruction result per node output (\(node.outputs.count)), got \(outs)")
        }
        outputRegisters = outs
        var outputOf = [Int](repeating: -1, count: registers)
        for (i, r) in outs.enumerated() { outputOf[r] = i }
        self.outputOf = outputOf
        let isOutput = outputOf.map { $0 >= 0 }
        // Scratch slots for the intermediates, freed after their last read.
        var lastRead = [Int](repeating: -1, count: registers)
        for (k, i) in ins.enumerated() {
            switch i {
            case .binary(_, let a, let b): lastRead[a] = k; lastRead[b] = k
            case .roundTrip(let a, _, _, _, _): lastRead[a] = k
            }
        }
        var slot = [Int](repeating: -1, count: registers)
        var free: [Int] = []
        var count = 0
        for k in ins.indices {
            let r = inputCount + k
            if !isOutput[r] {
                if let s = free.popLast() { slot[r] = s } else { slot[r] = count; count += 1 }
            }
            // Slots whose last reader is this instruction are free for the next ones.
            for q in inputCount..<r where lastRead[q] == k && slot[q] >= 0 && !isOutput[q] { free.append(slot[q]) }
            if lastRead[r] < 0, slot[r] >= 0 { free.append(slot[r]) }
        }
        self.slot = slot
        slotCount = count
    }

    func run(_ inputs: [Tensor?], threads: Int) throws -> [Tensor] {
        let name = FuseElementwiseChains.opType
        let xs = try (0..<inputCount).map { try inputs.required($0) }
        for (i, x) in xs.enumerated() where x.dtype != .float32 {
            throw OpError("\(name): input #\(i) must be float32, got \(x.dtype)")
        }
        let shape = try broadcastShapes(xs.map(\.shape))
        guard let n = elementCount(shape) else { throw OpError("\(name): shape \(describeShape(shape)) holds too many values") }
        let rank = shape.count
        // Inputs with every value are read along the stretch; the others must be constant over the
        // trailing axes from `split` on, and are read once per plane (outer index).
        var split = 0
        for x in xs where x.count != n || x.shape.count > rank {
            let aligned = [Int](repeating: 1, count: rank - x.shape.count) + x.shape
            if let last = aligned.lastIndex(where: { $0 != 1 }) { split = max(split, last + 1) }
        }
        let inner = shape[split...].reduce(1, *), outer = inner == 0 ? 0 : n / inner
        var planeValues: [[Float]] = xs.map { _ in [] }
        for (i, x) in xs.enumerated() where x.count != n {
            let aligned = [Int](repeating: 1, count: rank - x.shape.count) + x.shape
            var strides = [Int](repeating: 0, count: split)
            var s = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                if d < split { strides[d] = aligned[d] == 1 ? 0 : s }
                s *= aligned[d]
            }
            let p = x.pointer(Float.self)
            var values = [Float](repeating: 0, count: outer)
            for o in 0..<outer {
                var rest = o, off = 0
                for d in stride(from: split - 1, through: 0, by: -1) {
                    off += (rest % shape[d]) * strides[d]
                    rest /= shape[d]
                }
                values[o] = p[off]
            }
            planeValues[i] = values
        }
        let outputs = try outputRegisters.map { _ in try Tensor.uninitialized(.float32, shape) }
        if n == 0 { return outputs }
        let full = xs.map { $0.count == n }
        let inPtr = xs.map { UnsafePointer($0.pointer(Float.self)) }
        let outPtr = outputs.map { $0.pointer(Float.self) }
        let perPlane = (inner + Self.stretch - 1) / Self.stretch
        let items = outer * perPlane
        let workers = max(1, min(threads, items, n / 32768))
        let isa = selectedISA
        parallelFor(workers, threads: threads) { w in
            let lo = items * w / workers, hi = items * (w + 1) / workers
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, slotCount * Self.stretch))
            defer { scratch.deallocate() }
            var consts = [Float](repeating: 0, count: inputCount)
            consts.withUnsafeMutableBufferPointer { cs in
                var ptrs = [UnsafePointer<Float>](repeating: inPtr[0], count: inputCount + instructions.count)
                var steps = [Int](repeating: 1, count: inputCount + instructions.count)
                for item in lo..<hi {
                    let o = item / perPlane, start = (item % perPlane) * Self.stretch
                    let len = min(Self.stretch, inner - start), base = o * inner + start
                    for i in 0..<inputCount {
                        if full[i] { ptrs[i] = inPtr[i] + base; steps[i] = 1 } else {
                            cs[i] = planeValues[i][o]
                            ptrs[i] = UnsafePointer(cs.baseAddress! + i); steps[i] = 0
                        }
                    }
                    for (k, ins) in instructions.enumerated() {
                        let r = inputCount + k
                        let dst = outputOf[r] >= 0 ? outPtr[outputOf[r]] + base : scratch + slot[r] * Self.stretch
                        switch ins {
                        case .binary(let op, let a, let b):
                            if steps[a] == 0 && steps[b] == 0 {
                                let x = ptrs[a][0], y = ptrs[b][0]
                                let v: Float
                                switch op { case .add: v = x + y; case .sub: v = x - y; case .mul: v = x * y; case .div: v = x / y }
                                dst.update(repeating: v, count: len)
                            } else {
                                f32BinaryKernel(op.kernelCode, ptrs[a], steps[a], ptrs[b], steps[b], dst, len)
                            }
                        case .roundTrip(let a, let s, let z, let qlo, let qhi):
                            if steps[a] == 0 {
                                dst.update(repeating: ptrs[a][0], count: len)
                                so_q8_roundtrip(dst, len, s, z, qlo, qhi, dst, isa)
                            } else {
                                so_q8_roundtrip(ptrs[a], len, s, z, qlo, qhi, dst, isa)
                            }
                        }
                        ptrs[r] = UnsafePointer(dst)
                        steps[r] = 1
                    }
                }
            }
        }
        return outputs
    }
}

/// Groups element-wise float ops over one static shape into ElementwiseChain nodes: Add, Sub, Mul,
/// Div (an operand with every value, the other too or constant over the two trailing axes: a scalar
/// or per channel), com.swiftonnx QuantizeDequantizeLinear and ArithmeticQuantizeDequantize. Nodes
/// are taken in order; a node joins the group of an operand's producer when each of its other
/// operands comes from that group or from before the group's first node (so no path leaves the group
/// and comes back: the fused graph has no cycle). Values read outside a group are its outputs.
/// Groups of fewer than two nodes, and groups without a round trip (float models' chains, which
/// their own fusions take), stay as they were. Shapes must be known, so models with symbolic
/// sizes are fused in their plans per input shape.
struct FuseElementwiseChains: GraphPass {
    static let opType = "ElementwiseChain"
    static let domain = "com.swiftonnx"
    let name = "fuse-elementwise-chains"
    /// Maps smaller than this are left alone: one pass costs little there.
    static let minimumCount = 4096

    private struct Member {
        /// The node's operands as value names, and its instructions over them (registers: -1 - operand index).
        var operands: [String]
        var instructions: [(code: Int, a: Int, b: Int, params: [Float]?)]
    }

    func apply(to graph: Graph, opsets: [String: Int]) throws -> Bool {
        guard (opsets[""] ?? 0) >= 7 else { return false }
        let producers = graph.producers()
        let readersOf = graph.readerLists()
        let graphOutputs = graph.outputNames
        func staticShape(_ v: String) -> [Int]? {
            guard let info = graph.infoOrConstant(of: v), info.type == .float32, let dims = info.shape else { return nil }
            var s: [Int] = []
            for d in dims { guard case .known(let k) = d else { return nil }; s.append(k) }
            return elementCount(s) == nil ? nil : s   // a hostile shape's count may not fit an Int
        }
        func scalarConstant(_ v: String) -> Tensor? {
            guard let t = graph.initializers[v], t.count == 1 else { return nil }
            return t
        }
        /// Operand x of an op whose result has shape s: every value (same count), or constant over the
        /// two trailing axes (plane-constant). Anything else (a row broadcast along the last axis) is not taken.
        func fits(_ x: [Int], _ s: [Int], full: Bool) -> Bool {
            guard x.count <= s.count else { return false }
            guard let n = elementCount(s), let c = elementCount(x) else { return false }
            if c == n { return true }
            if full { return false }
            if c == 1 { return true }
            guard s.count >= 3 else { return false }
            let aligned = [Int](repeating: 1, count: s.count - x.count) + x
            return aligned[(s.count - 2)...].allSatisfy { $0 == 1 }
        }
        func roundTripParams(_ scale: String, _ zero: String) -> [Float]? {
            guard let s = scalarConstant(scale), s.dtype == .float32, let z = scalarConstant(zero) else { return nil }
            switch z.dtype {
            case .uint8: return [s.pointer(Float.self)[0], Float(z.pointer(UInt8.self)[0]), 0, 255]
            case .int8: return [s.pointer(Float.self)[0], Float(z.pointer(Int8.self)[0]), -128, 127]
            default: return nil
            }
        }
        // The members: what each candidate node computes.
        var members: [Int: Member] = [:]
        var shapeOf: [Int: [Int]] = [:]
        for (i, n) in graph.nodes.enumerated() where n.outputs.count == 1 {
            guard let s = staticShape(n.outputs[0]), let count = elementCount(s), count >= Self.minimumCount else { continue }
            let binaryCodes = ["Add": 0, "Sub": 1, "Mul": 2, "Div": 3]
            if n.isStandardDomain, let c = binaryCodes[n.opType], n.attributes.isEmpty, n.inputs.count == 2 {
                guard let a = staticShape(n.inputs[0]), let b = staticShape(n.inputs[1]),
                      (fits(a, s, full: true) && fits(b, s, full: false)) || (fits(b, s, full: true) && fits(a, s, full: false)),
                      (try? broadcastShapes(a, b)) == s else { continue }
                members[i] = Member(operands: n.inputs, instructions: [(c, -1, -2, nil)])
            } else if n.domain == FuseQuantizeDequantize.domain, n.opType == "QuantizeDequantizeLinear", n.inputs.count == 3,
                      staticShape(n.inputs[0]) == s, let p = roundTripParams(n.inputs[1], n.inputs[2]) {
                members[i] = Member(operands: [n.inputs[0]], instructions: [(4, -1, 0, p)])
            } else if n.domain == FuseArithmeticQuantizeDequantize.domain, n.opType == FuseArithmeticQuantizeDequantize.opType,
                      n.inputs.count == 4, case .string(let opName)? = n.attributes["op"], let c = binaryCodes[opName],
                      let a = staticShape(n.inputs[0]), let b = staticShape(n.inputs[1]),
                      (fits(a, s, full: true) && fits(b, s, full: false)) || (fits(b, s, full: true) && fits(a, s, full: false)),
                      (try? broadcastShapes(a, b)) == s, let p = roundTripParams(n.inputs[2], n.inputs[3]) {
                // the round trip reads the binary result: register 0 of this member (resolved below)
                members[i] = Member(operands: [n.inputs[0], n.inputs[1]], instructions: [(c, -1, -2, nil), (4, 0, 0, p)])
            } else { continue }
            shapeOf[i] = s
        }
        if members.count < 2 { return false }
        // Groups, in node order.
        var groupOf: [Int: Int] = [:]
        var groups: [[Int]] = []
        for i in graph.nodes.indices {
            guard let m = members[i], let s = shapeOf[i] else { continue }
            var chosen: Int?
            for v in m.operands {
                guard let p = producers[v], let g = groupOf[p], shapeOf[groups[g][0]] == s else { continue }
                let first = groups[g][0]
                let ok = m.operands.allSatisfy { u in
                    guard let q = producers[u] else { return true }   // input or constant
                    return groupOf[q] == g || q < first
                }
                if ok { chosen = g; break }
            }
            if let g = chosen { groups[g].append(i); groupOf[i] = g } else { groupOf[i] = groups.count; groups.append([i]) }
        }
        var changed = false
        var removed = Set<Int>()
        var placed: [Int: Node] = [:]
        for group in groups where group.count >= 2 {
            // Only chains with a round trip: float models' chains are left to their own fusions.
            guard group.contains(where: { members[$0]!.instructions.contains { $0.code == 4 } }) else { continue }
            let inGroup = Set(group)
            var inputs: [String] = []
            var register: [String: Int] = [:]   // value -> register, for inputs then member results
            var program: [Int] = [], params: [Float] = []
            var produced: [(value: String, register: Int)] = []
            // Inputs first: every operand not made inside the group.
            for i in group {
                for v in members[i]!.operands where register[v] == nil {
                    if let p = producers[v], inGroup.contains(p) { continue }
                    register[v] = inputs.count
                    inputs.append(v)
                }
            }
            var next = inputs.count
            for i in group {
                let m = members[i]!
                var local: [Int] = []   // registers of this member's instructions
                for ins in m.instructions {
                    func resolve(_ x: Int) -> Int { x < 0 ? register[m.operands[-1 - x]]! : local[x] }
                    let a = resolve(ins.a)
                    var b = ins.b
                    if let p = ins.params { b = params.count / 4; params += p } else { b = resolve(ins.b) }
                    program += [ins.code, a, b]
                    local.append(next)
                    next += 1
                }
                let out = graph.nodes[i].outputs[0]
                register[out] = local.last!
                produced.append((out, local.last!))
            }
            // Outputs: results read outside the group (or graph outputs).
            var outputs: [String] = [], outputRegisters: [Int] = []
            for (v, r) in produced {
                let outside = graphOutputs.contains(v) || (readersOf[v] ?? []).contains { !inGroup.contains($0) }
                if outside { outputs.append(v); outputRegisters.append(r) }
            }
            if outputs.isEmpty { continue }   // nothing reads it: dead code, left to whoever removes it
            let last = group.last!
            placed[last] = Node(name: graph.nodes[last].name + "_chain", opType: Self.opType, domain: Self.domain,
                                inputs: inputs, outputs: outputs,
                                attributes: ["program": .ints(program), "params": .floats(params), "outputs": .ints(outputRegisters)])
            removed.formUnion(group.dropLast())
            changed = true
        }
        guard changed else { return false }
        for (i, node) in placed { graph.nodes[i] = node }
        graph.removeNodes(at: removed)
        graph.sortTopologically()
        return true
    }
}

/// The number of values of a shape, or nil when a dimension is negative or the product overflows.
private func elementCount(_ dims: [Int]) -> Int? {
    var n = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}

extension Graph {
    /// Reorders the nodes so each comes after the producers of its inputs, keeping the present order
    /// wherever it already is one (a stable topological sort). Values no node here produces (inputs,
    /// constants, outer-scope values) are available from the start.
    func sortTopologically() {
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs where !o.isEmpty { producer[o] = i } }
        var pending = [Int](repeating: 0, count: nodes.count)
        var dependents = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            var seen = Set<Int>()
            for v in n.inputs + n.implicitInputs where !v.isEmpty {
                if let p = producer[v], p != i, seen.insert(p).inserted { pending[i] += 1; dependents[p].append(i) }
            }
        }
        // Smallest ready index first keeps the original order where it is valid.
        var ready = pending.indices.filter { pending[$0] == 0 }.sorted(by: >)
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.popLast() {
            order.append(i)
            for d in dependents[i] {
                pending[d] -= 1
                if pending[d] == 0 {
                    let at = ready.firstIndex { $0 < d } ?? ready.endIndex
                    ready.insert(d, at: at)
                }
            }
        }
        guard order.count == nodes.count else { return }   // a cycle: leave the order as it was
        nodes = order.map { nodes[$0] }
    }
}
