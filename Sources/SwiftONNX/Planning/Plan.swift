import Dispatch
import Foundation

/// A graph compiled once into an ordered list of steps over numbered value slots,
/// with each intermediate freed right after its last reader. Immutable; every run has its own slots.
final class Plan: Sendable {
    struct Step {
        let op: any Operator
        let inputs: [Int]       // -1: omitted optional input
        let outputs: [Int]      // -1: unused/omitted output
        let release: [Int]      // slots whose last reader is this step
        let nodeLabel: String
        let opType: String
        /// Whether the op takes sequence and optional values (`OpDefinition.containers`).
        var containers = false
    }

    let steps: [Step]
    let slotCount: Int
    /// Values fed by the caller: graph inputs, then outer-scope values (for subgraphs).
    let feedSlots: [String: Int]
    let constants: [(slot: Int, tensor: Tensor)]
    let outputs: [(name: String, slot: Int)]
    /// The feeds in a fixed order, for positional runs.
    let feedOrder: [(name: String, slot: Int)]

    init(steps: [Step], slotCount: Int, feedSlots: [String: Int], constants: [(slot: Int, tensor: Tensor)],
         outputs: [(name: String, slot: Int)]) {
        self.steps = steps
        self.slotCount = slotCount
        self.feedSlots = feedSlots
        self.feedOrder = feedSlots.sorted { $0.value < $1.value }.map { ($0.key, $0.value) }
        self.constants = constants
        self.outputs = outputs
    }

    /// Runs the plan. `feeds` must hold every feed slot's name.
    func run(_ feeds: [String: Tensor], env: RunEnv) throws -> [Tensor] {
        try run(feeds, env: env, control: nil).map { $0! }
    }

    /// Runs the plan as `control` asks (nil: every step, every output): outputs it did not ask
    /// for are nil.
    func run(_ feeds: [String: Tensor], env: RunEnv, control: RunControl?) throws -> [Tensor?] {
        var slots = [Tensor?](repeating: nil, count: slotCount)
        for (slot, t) in constants { slots[slot] = t }
        for (name, slot) in feedSlots {
            guard let t = feeds[name] else { throw ONNXError.missingInput(name) }
            slots[slot] = t
        }
        return try execute(&slots, env: env, control: control)
    }

    /// Which steps compute `wanted` output slots: each step one of whose outputs a wanted value
    /// depends on. Steps are in topological order, so one backward sweep finds them.
    func stepMask(computing wanted: Set<Int>) -> [Bool] {
        var needed = wanted
        var mask = [Bool](repeating: false, count: steps.count)
        for i in stride(from: steps.count - 1, through: 0, by: -1) {
            let step = steps[i]
            guard step.outputs.contains(where: { $0 >= 0 && needed.contains($0) }) else { continue }
            mask[i] = true
            for s in step.inputs where s >= 0 { needed.insert(s) }
        }
        return mask
    }

    /// Runs the plan with feeds given in `feedOrder` order (no name lookups: for subgraphs run per call).
    func run(ordered feeds: [Tensor?], env: RunEnv) throws -> [Tensor] {
        var slots = [Tensor?](repeating: nil, count: slotCount)
        for (slot, t) in constants { slots[slot] = t }
        for (k, f) in feedOrder.enumerated() {
            guard let t = feeds[k] else { throw ONNXError.missingInput(f.name) }
            slots[f.slot] = t
        }
        return try execute(&slots, env: env, control: nil).map { $0! }
    }

    private func execute(_ slots: inout [Tensor?], env: RunEnv, control: RunControl?) throws -> [Tensor?] {
        var args: [Tensor?] = []
        // What the control asks, in this plan's slots.
        var mask: [Bool]? = nil
        var destinations: [Int: CallerBuffer] = [:]
        var outputName: [Int: String] = [:]
        if let control {
            if let wanted = control.wanted {
                mask = stepMask(computing: Set(outputs.filter { wanted.contains($0.name) }.map(\.slot)))
            }
            for o in outputs {
                outputName[o.slot] = o.name
                if let b = control.buffers[o.name] { destinations[o.slot] = b }
            }
        }
        let arena = destinations.isEmpty ? nil : RunArena.current
        for (index, step) in steps.enumerated() {
            if let control {
                if let mask, !mask[index] { continue }
                if control.isCancelled { throw ONNXError.cancelled }
            }
            // Caller buffers for this step's outputs are offered to its allocations.
            var destined: [(k: Int, buffer: CallerBuffer)] = []
            if !destinations.isEmpty {
                for (k, slot) in step.outputs.enumerated() where slot >= 0 {
                    if let b = destinations[slot] { destined.append((k, b)) }
                }
                if !destined.isEmpty { arena?.offer(destined.map(\.buffer)) }
            }
            defer { if !destined.isEmpty { arena?.withdraw() } }
            args.removeAll(keepingCapacity: true)
            for i in step.inputs { args.append(i >= 0 ? slots[i] : nil) }
            if !step.containers {
                for (k, a) in args.enumerated() where a?.isContainer == true {
                    throw ONNXError.nodeFailed(node: step.nodeLabel, op: step.opType,
                                               reason: "input #\(k) is a \(a!.kind) value; this op takes tensors")
                }
            }
            let results: [Tensor]
            do {
                if Profiler.enabled {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    results = try step.op.run(args, env)
                    Profiler.record(Profiler.perNode ? step.opType + " " + step.nodeLabel : step.opType, ns: DispatchTime.now().uptimeNanoseconds - t0)
                } else {
                    results = try step.op.run(args, env)
                }
            } catch let e as OpError {
                throw ONNXError.nodeFailed(node: step.nodeLabel, op: step.opType, reason: e.message)
            } catch let e as ONNXError {
                switch e {
                case .nodeFailed: throw e   // from a subgraph: already names its node
                case .memoryLimitExceeded: throw e.memoryLimit(during: "node '\(step.nodeLabel)' (\(step.opType))")
                default: throw ONNXError.nodeFailed(node: step.nodeLabel, op: step.opType, reason: e.description)
                }
            }
            for (k, slot) in step.outputs.enumerated() where slot >= 0 {
                guard k < results.count else {
                    throw ONNXError.nodeFailed(node: step.nodeLabel, op: step.opType,
                                               reason: "produced \(results.count) outputs, output #\(k) is used")
                }
                slots[slot] = results[k]
            }
            for (k, buffer) in destined {
                let slot = step.outputs[k]
                slots[slot] = try Self.place(results[k], in: buffer, output: outputName[slot] ?? "")
            }
            for r in step.release { slots[r] = nil }
        }
        return try outputs.map { o in
            if let wanted = control?.wanted, !wanted.contains(o.name) { return nil }
            guard let t = slots[o.slot] else { throw ONNXError.invalidGraph("output '\(o.name)' was never computed") }
            return t
        }
    }

    /// `t` in the caller's buffer: itself when its op wrote it there, else a copy placed there.
    /// Throws when the buffer does not have exactly the output's byte count.
    private static func place(_ t: Tensor, in buffer: CallerBuffer, output name: String) throws -> Tensor {
        if t.dtype == .string {
            throw ONNXError.invalidOutputBuffer(name: name, reason: "it is a string tensor; its elements cannot go to a buffer")
        }
        if t.isContainer {
            throw ONNXError.invalidOutputBuffer(name: name, reason: "it is a \(t.kind) value, not a tensor; it cannot go to a buffer")
        }
        if t.storage.raw == buffer.pointer && t.storage.byteCount == buffer.byteCount { return t }
        guard t.storage.byteCount == buffer.byteCount else {
            throw ONNXError.invalidOutputBuffer(
                name: name, reason: "the output is \(t.dtype) \(describeShape(t.shape)), \(t.storage.byteCount) bytes; the buffer holds \(buffer.byteCount)")
        }
        if t.storage.byteCount > 0 { buffer.pointer.copyMemory(from: t.storage.raw, byteCount: t.storage.byteCount) }
        return Tensor(dtype: t.dtype, shape: t.shape,
                      storage: TensorStorage(caller: buffer.pointer, byteCount: buffer.byteCount, deallocator: .none, keeping: nil))
    }
}

/// A compiled subgraph (If branch, Loop/Scan body) and the outer-scope names it reads.
final class SubgraphRunner: Sendable {
    let plan: Plan
    let inputNames: [String]
    let outerNames: [String]
    let outputNames: [String]
    /// The subgraph's declared outputs (types and shapes as written).
    let outputs: [ValueInfo]
    /// The subgraph's name, for errors.
    let name: String

    init(plan: Plan, graph: Graph, outerNames: [String]) {
        self.plan = plan
        self.name = graph.name
        self.inputNames = graph.inputs.map(\.name)
        self.outerNames = outerNames
        self.outputs = graph.outputs
        self.outputNames = graph.outputs.map(\.name)
    }

    /// Where each feed of the plan comes from, for a node whose run gets `declared` inputs followed by
    /// its implicit inputs `implicitNames`: the subgraph's own inputs come from `inputs`.
    struct Binding {
        enum Source { case input(Int), implicit(Int), missing(String) }
        let sources: [Source]
    }

    func bind(implicitNames: [String]) -> Binding {
        var position: [String: Int] = [:]
        for (k, n) in implicitNames.enumerated() where position[n] == nil { position[n] = k }
        let inputIndex = Dictionary(inputNames.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        return Binding(sources: plan.feedOrder.map { f in
            if let k = inputIndex[f.name] { return .input(k) }
            if let j = position[f.name] { return .implicit(j) }
            return .missing(f.name)
        })
    }

    /// Runs with positional inputs and outer values taken by position from the node's inputs
    /// (`nodeInputs[declared + j]` is implicit input j).
    func run(_ inputs: [Tensor], binding: Binding, nodeInputs: [Tensor?], declared: Int, env: RunEnv) throws -> [Tensor] {
        guard inputs.count == inputNames.count else {
            throw OpError("subgraph '\(name)' takes \(inputNames.count) inputs, got \(inputs.count)")
        }
        var feeds: [Tensor?] = []
        feeds.reserveCapacity(binding.sources.count)
        for src in binding.sources {
            switch src {
            case .input(let k): feeds.append(inputs[k])
            case .implicit(let j):
                let i = declared + j
                guard i < nodeInputs.count, let t = nodeInputs[i] else {
                    throw OpError("subgraph '\(name)': outer value #\(j) is not available")
                }
                feeds.append(t)
            case .missing(let name):
                throw OpError("subgraph '\(name)': outer value '\(name)' is not available")
            }
        }
        return try plan.run(ordered: feeds, env: env)
    }

    /// Runs with positional inputs; outer-scope values are looked up in `outer`.
    func run(_ inputs: [Tensor], outer: [String: Tensor], env: RunEnv) throws -> [Tensor] {
        guard inputs.count == inputNames.count else {
            throw OpError("subgraph '\(name)' takes \(inputNames.count) inputs, got \(inputs.count)")
        }
        var feeds: [String: Tensor] = [:]
        for name in outerNames {
            guard let t = outer[name] else { throw OpError("subgraph '\(name)': outer value '\(name)' is not available") }
            feeds[name] = t
        }
        for (n, t) in zip(inputNames, inputs) { feeds[n] = t }
        return try plan.run(feeds, env: env)
    }
}

/// Constant weights prepared for a kernel (packed for the GEMM, Winograd-transformed), kept per
/// session so the plans of its input shape signatures share one copy.
final class PreparedWeights: Sendable {
    private struct Key: Hashable {
        let storage: ObjectIdentifier
        let address: Int
        let dtype: DType
        let shape: [Int]
        let kind: String
    }
    // The tensor is kept with its preparation so its storage (the key's identity) stays alive.
    private let entries = Locked([Key: (tensor: Tensor, value: any AnyObject & Sendable)]())

    func value<T: AnyObject & Sendable>(for t: Tensor, kind: String, _ make: () throws -> T) rethrows -> T {
        let key = Key(storage: ObjectIdentifier(t.storage), address: Int(bitPattern: t.storage.raw), dtype: t.dtype,
                      shape: t.shape, kind: kind)
        if let v = entries.withLock({ $0[key]?.value as? T }) { return v }
        let v = try make()
        return entries.withLock { entries in
            if let w = entries[key]?.value as? T { return w }
            entries[key] = (t, v)
            return v
        }
    }

    var count: Int { entries.withLock { $0.count } }
}

/// Builds plans: validates and orders the graph, compiles every node through the registry.
struct PlanBuilder {
    let registry: OpRegistry
    let opsets: [String: Int]
    var prepared: PreparedWeights? = nil
    /// Frees the values of constants that every reader has prepared in its own form (packed
    /// weights; `OpContext.releaseConstantValues`), as soon as the last reader is built, so a
    /// model's raw weights and their packed copy are not both kept: the graph's initializer and the
    /// plan's constant become stand-ins (`Tensor.standIn`). Only for a graph planned once (a static
    /// model's session, with no `prepared` table holding the tensors); the main graph only.
    var releaseWeights = false

    /// `outerConstants`: constants of the enclosing graphs a subgraph can see (its ops may prepare
    /// them once, as for the graph's own initializers).
    func compile(_ graph: Graph, outerScope: Set<String> = [], outerConstants: [String: Tensor] = [:]) throws -> Plan {
        var slotOf: [String: Int] = [:]
        var nextSlot = 0
        func newSlot(_ name: String) -> Int {
            let s = nextSlot
            nextSlot += 1
            slotOf[name] = s
            return s
        }

        var feedSlots: [String: Int] = [:]
        var constantSlots: [(slot: Int, name: String)] = []
        for inp in graph.inputs {
            if slotOf[inp.name] != nil { throw ONNXError.invalidGraph("graph '\(graph.name)': input '\(inp.name)' is declared twice") }
            feedSlots[inp.name] = newSlot(inp.name)
        }
        for name in graph.initializers.keys.sorted() where slotOf[name] == nil {
            constantSlots.append((newSlot(name), name))
        }
        if graph.initializers.values.contains(where: \.isStandIn) {
            throw ONNXError.invalidGraph("graph '\(graph.name)' was planned before with its weights released; it cannot be planned again")
        }
        // Outer-scope values the subgraph reads become feeds.
        let free = graph.freeVariables()
        for name in free {
            guard outerScope.contains(name) else {
                throw ONNXError.invalidGraph("graph '\(graph.name)': value '\(name)' is used but never defined")
            }
            feedSlots[name] = newSlot(name)
        }

        var constantValues: [String: Tensor] = [:]
        if !outerConstants.isEmpty {
            var shadowed = Set(graph.inputs.map(\.name))
            for n in graph.nodes { shadowed.formUnion(n.outputs) }
            for (name, t) in outerConstants where !shadowed.contains(name) { constantValues[name] = t }
        }
        for (name, t) in graph.initializers where feedSlots[name] == nil { constantValues[name] = t }
        // Order the nodes topologically (ONNX requires it, but producers sometimes do not comply).
        let order = try topologicalOrder(graph)

        // Releasing constants: the readers of each constant not built yet, and the constants whose
        // values something reads at run time (a reader that did not release them, a graph output).
        let release = releaseWeights && prepared == nil
        var readersLeft: [String: Int] = [:]
        var valuesRead = Set(graph.outputs.map(\.name))
        if release {
            for n in graph.nodes {
                for name in n.inputs + n.implicitInputs where graph.initializers[name] != nil { readersLeft[name, default: 0] += 1 }
            }
        }
        func concreteShape(_ name: String) -> [Int]? {
            if let t = constantValues[name] { return t.shape }
            guard let dims = (graph.valueInfo[name] ?? graph.inputs.first { $0.name == name })?.shape else { return nil }
            let known = dims.compactMap(\.value)
            return known.count == dims.count ? known : nil
        }

        var steps: [(node: Node, op: any Operator, inputs: [Int], outputs: [Int], containers: Bool)] = []
        for idx in order {
            let node = graph.nodes[idx]
            var ins: [Int] = []
            for name in node.inputs + node.implicitInputs {
                if name.isEmpty { ins.append(-1); continue }
                guard let s = slotOf[name] else {
                    throw ONNXError.invalidGraph("node '\(node.label)' (\(node.opType)) reads '\(name)', which is never defined")
                }
                ins.append(s)
            }
            var outs: [Int] = []
            for name in node.outputs {
                if name.isEmpty { outs.append(-1); continue }
                if slotOf[name] != nil {
                    throw ONNXError.invalidGraph("value '\(name)' is produced twice (second time by node '\(node.label)')")
                }
                outs.append(newSlot(name))
            }
            // Only nodes with subgraphs need the names visible to them.
            let visible = node.hasSubgraph ? outerScope.union(slotOf.keys) : []
            let releases = release ? ConstantReleases() : nil
            let op = try buildOperator(node, outer: visible, constants: constantValues,
                                       inputShapes: node.inputs.map { $0.isEmpty ? nil : concreteShape($0) }, releases: releases)
            let containers = registry.definition(domain: node.domain == "ai.onnx" ? "" : node.domain, op: node.opType)?.containers ?? false
            steps.append((node, op, ins, outs, containers))
            if let releases {
                for (i, name) in (node.inputs + node.implicitInputs).enumerated() where readersLeft[name] != nil {
                    readersLeft[name]! -= 1
                    if !releases.inputs.contains(i) { valuesRead.insert(name) }
                    if readersLeft[name] == 0, !valuesRead.contains(name), let t = constantValues[name] {
                        let standIn = Tensor.standIn(for: t)
                        constantValues[name] = standIn
                        graph.initializers[name] = standIn
                    }
                }
            }
        }
        let constants = constantSlots.map { (slot: $0.slot, tensor: constantValues[$0.name]!) }

        var outputs: [(name: String, slot: Int)] = []
        for o in graph.outputs {
            guard let s = slotOf[o.name] else { throw ONNXError.invalidGraph("graph output '\(o.name)' is never produced") }
            outputs.append((o.name, s))
        }

        // Liveness: free each intermediate after its last reader; never free outputs, feeds or constants.
        var keep = Set(outputs.map(\.slot))
        keep.formUnion(feedSlots.values)
        keep.formUnion(constants.map(\.slot))
        var lastUse: [Int: Int] = [:]
        for (i, s) in steps.enumerated() {
            for slot in s.inputs where slot >= 0 { lastUse[slot] = i }
            for slot in s.outputs where slot >= 0 && lastUse[slot] == nil { lastUse[slot] = i }
        }
        var releaseAt = [[Int]](repeating: [], count: steps.count)
        for (slot, i) in lastUse where !keep.contains(slot) { releaseAt[i].append(slot) }

        let planSteps = steps.enumerated().map { i, s in
            Plan.Step(op: s.op, inputs: s.inputs, outputs: s.outputs, release: releaseAt[i],
                      nodeLabel: s.node.label, opType: s.node.opType, containers: s.containers)
        }
        return Plan(steps: planSteps, slotCount: nextSlot, feedSlots: feedSlots, constants: constants, outputs: outputs)
    }

    func buildOperator(_ node: Node, outer: Set<String>, constants: [String: Tensor] = [:],
                       inputShapes: [[Int]?] = [], releases: ConstantReleases? = nil) throws -> any Operator {
        let domain = node.domain == "ai.onnx" ? "" : node.domain
        let opset = opsets[domain] ?? (domain.isEmpty ? 1 : 1)
        guard let builder = registry.builder(domain: domain, op: node.opType) else {
            throw ONNXError.unsupportedOperator(op: node.opType, domain: domain, opset: opset, node: node.label)
        }
        let ctx = OpContext(node: node, opset: opset, compileSubgraph: { g in
            // Subgraphs keep their weights: only the main graph's are freed (releaseWeights).
            var inner = self
            inner.releaseWeights = false
            let sub = try inner.compile(g, outerScope: outer, outerConstants: constants)
            return SubgraphRunner(plan: sub, graph: g, outerNames: g.freeVariables())
        }, constants: constants, prepared: prepared, inputShapes: inputShapes, releases: releases)
        let t0 = Profiler.enabled ? DispatchTime.now().uptimeNanoseconds : 0
        defer { if Profiler.enabled { Profiler.record("[plan] " + node.opType, ns: DispatchTime.now().uptimeNanoseconds - t0) } }
        do {
            return try builder(ctx)
        } catch let e as OpError {
            throw ONNXError.nodeFailed(node: node.label, op: node.opType, reason: e.message)
        } catch let e as ONNXError {
            throw e.memoryLimit(during: "planning node '\(node.label)' (\(node.opType))")
        }
    }

    private func topologicalOrder(_ graph: Graph) throws -> [Int] {
        var producer: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() {
            for o in n.outputs where !o.isEmpty {
                if producer[o] != nil {
                    throw ONNXError.invalidGraph("value '\(o)' is produced twice (second time by node '\(n.label)')")
                }
                producer[o] = i
            }
        }
        var state = [UInt8](repeating: 0, count: graph.nodes.count)  // 0 new, 1 visiting, 2 done
        var order: [Int] = []
        order.reserveCapacity(graph.nodes.count)
        // Iterative DFS so deep graphs cannot overflow the stack.
        for start in graph.nodes.indices where state[start] == 0 {
            var stack: [(Int, Int)] = [(start, 0)]
            state[start] = 1
            while let (n, k) = stack.last {
                let deps = graph.nodes[n].inputs + graph.nodes[n].implicitInputs
                if k < deps.count {
                    stack[stack.count - 1].1 = k + 1
                    if let p = producer[deps[k]] {
                        if state[p] == 1 {
                            throw ONNXError.invalidGraph("cycle through node '\(graph.nodes[p].label)' and value '\(deps[k])'")
                        }
                        if state[p] == 0 { state[p] = 1; stack.append((p, 0)) }
                    }
                } else {
                    state[n] = 2
                    order.append(n)
                    stack.removeLast()
                }
            }
        }
        return order
    }
}
