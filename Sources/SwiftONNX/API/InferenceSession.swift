import Foundation
import COpenBLAS

/// How a session is built and run: its thread count, whether the graph is optimized, and the most
/// memory it may hold. Fixed when the session is created (``InferenceSession/options``).
public struct SessionOptions: Sendable, Equatable {
    /// Threads for kernels (BLAS and the runtime's own loops) in each run, at least 1; 1 is the default.
    /// A run uses one thread instead while the machine leaves the others too little CPU to gain from
    /// them (other processes keeping the cores busy), and the full count again once it does.
    public var threads: Int
    /// Run the optimization passes (constant folding, fusions). Off: run the graph as written.
    public var optimize: Bool
    /// The most bytes the session may hold at once: its weights (as loaded, and as packed or
    /// transformed for the kernels) and the tensors of its runs (intermediates, and outputs until
    /// the caller lets them go), concurrent runs together. A model, or an input shape, that would
    /// need more fails with `ONNXError.memoryLimitExceeded` before the allocation that would cross
    /// it, naming the node. Kernel scratch (bounded by the blocking, not the model) is not counted.
    /// In bytes; the default is ``defaultMemoryLimit``.
    public var memoryLimit: Int

    /// Three quarters of this machine's physical memory, in bytes: the default ``memoryLimit``.
    public static var defaultMemoryLimit: Int { MemoryBudget.physicalMemory / 4 * 3 }

    /// Options with the given thread count (values below 1 become 1), optimization switch and memory
    /// limit in bytes (negative values become 0).
    ///
    /// - Parameters:
    ///   - threads: Threads for each run's kernels; values below 1 become 1.
    ///   - optimize: Whether to run the optimization passes (constant folding, fusions) on the graph.
    ///   - memoryLimit: The most bytes the session may hold at once; negative values become 0.
    public init(threads: Int = 1, optimize: Bool = true, memoryLimit: Int = SessionOptions.defaultMemoryLimit) {
        self.threads = max(1, threads)
        self.optimize = optimize
        self.memoryLimit = max(0, memoryLimit)
    }
}

/// A loaded, planned model. Immutable after creation; `run` may be called from many threads at once.
///
/// Create one per model and keep it: loading maps the file, optimizes the graph and packs the
/// weights for the kernels once. Each run takes a dictionary of input tensors by name and returns
/// the outputs by name; runs of the same input shapes reuse memory laid out by the first. Every
/// initializer and `run` throws ``ONNXError``.
public final class InferenceSession: Sendable {
    /// The inputs a caller must feed, in the model's order (initializers are not among them).
    public let inputs: [ValueInfo]
    /// The model's outputs, in its order, with their element type and shape as declared or, where
    /// the model leaves them out, as shape inference found them.
    public let outputs: [ValueInfo]
    /// Facts about the model file: producer, versions, opsets, node count and operator histogram.
    public let metadata: ModelMetadata
    /// The options the session was created with.
    public let options: SessionOptions

    let plan: Plan
    /// Plans made for particular input shapes (see `ShapePlans`); nil when every input shape is
    /// fixed already or optimization is off.
    let shapePlans: ShapePlans?
    /// Prepared constant weights, shared by the session's plans.
    let prepared: PreparedWeights
    /// Where the tensors of this session's runs get their memory: an arena per input signature laid
    /// out from a recorded run, and a pool for what outlives a run.
    let memory = MemoryPlanner()
    /// Chooses each run's thread count (1 while the machine leaves no CPU for more; see ThreadGovernor).
    let governor = ThreadGovernor()
    /// What the session holds against `options.memoryLimit` (bound while it loads, plans and runs).
    let budget: MemoryBudget

    /// Bytes the session holds now against `options.memoryLimit`: weights, packed weights, and the
    /// tensors of runs in progress and outputs not yet released.
    public var memoryInUse: Int { budget.inUse }

    /// The newest operator sets (per domain) and IR version this runtime implements: those of ONNX
    /// 1.23. A newer one may change an operator's meaning, so such a model is refused rather than
    /// run with the older semantics. Domains not listed (com.microsoft...) are checked op by op.
    static let newestOpsets: [String: Int] = ["": 28, "ai.onnx.ml": 5]
    static let newestIRVersion = 14

    private static func checkVersions(_ model: Model) throws {
        for (domain, version) in model.opsets.sorted(by: { $0.key < $1.key }) {
            guard let newest = newestOpsets[domain] else { continue }
            if version < 1 || version > newest {
                throw ONNXError.unsupportedOpset(domain: domain, version: version, newest: newest)
            }
        }
        if model.irVersion > newestIRVersion {
            throw ONNXError.unsupportedIRVersion(version: model.irVersion, newest: newestIRVersion)
        }
    }

    /// The instruction set the kernels were chosen for on this CPU ("avx512", "avx2" or "scalar"),
    /// after the SWIFTONNX_ISA cap if one is set. The same for every session of the process.
    public static var kernelISA: String { isaName(selectedISA) }

    /// Loads an ONNX file (weights are mapped, not copied) and plans it. External data files are read
    /// from the model's folder. Throws `ONNXError.io` when `url` is not a file URL or the file cannot
    /// be read, `.invalidModel` or `.invalidGraph` for a malformed model, `.unsupportedOpset`,
    /// `.unsupportedIRVersion` or `.unsupportedOperator` for one this runtime cannot run, and
    /// `.memoryLimitExceeded` when its weights do not fit `options.memoryLimit`. A model file is at
    /// most 2 GiB (larger weights go in external data files).
    ///
    /// - Parameters:
    ///   - url: A file URL of an `.onnx` file.
    ///   - options: Threads, optimization and memory limit of the session.
    public convenience init(contentsOf url: URL, options: SessionOptions = .init()) throws(ONNXError) {
        guard url.isFileURL else { throw ONNXError.io(path: url.absoluteString, reason: "only file URLs are supported") }
        // Before parsing: OpenBLAS's own workers spin from library start-up until they are stopped,
        // and would take the second core for the whole load.
        BLAS.configure()
        let budget = MemoryBudget(limit: options.memoryLimit)
        let model: Model = try typedONNX {
            try Self.withBudget("loading '\(url.path)'", budget) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let model = try ModelLoader.load(path: url.path)
                if Profiler.enabled { Profiler.record("[load] parse", ns: DispatchTime.now().uptimeNanoseconds - t0) }
                return model
            }
        }
        try self.init(model: model, options: options, budget: budget)
    }

    /// `body` with `budget` bound, and a PageRecycler, so the weights and packed forms it frees
    /// hand their pages to the ones it makes next; a memory-limit error not placed yet says it
    /// happened `during`.
    private static func withBudget<T>(_ during: String, _ budget: MemoryBudget, _ body: () throws -> T) throws -> T {
        let recycler = PageRecycler.forLoad()   // what it did not hand out again is unmapped when it goes away
        do {
            return try MemoryBudget.$current.withValue(budget) {
                try PageRecycler.$current.withValue(recycler, operation: body)
            }
        } catch let e as ONNXError {
            throw e.memoryLimit(during: during)
        }
    }

    /// Loads the ONNX file at a file system path and plans it (see ``init(contentsOf:options:)``).
    ///
    /// - Parameters:
    ///   - path: The path of an `.onnx` file, absolute or relative to the current directory.
    ///   - options: Threads, optimization and memory limit of the session.
    public convenience init(path: String, options: SessionOptions = .init()) throws(ONNXError) {
        try self.init(contentsOf: URL(fileURLWithPath: path), options: options)
    }

    /// Loads a model from serialized bytes (models with external data need a file) and plans it. The
    /// weights are copied out of `bytes`. Throws as ``init(contentsOf:options:)`` does; errors name
    /// the model "<memory>".
    ///
    /// - Parameters:
    ///   - modelBytes: A serialized ONNX ModelProto, the contents of an `.onnx` file.
    ///   - options: Threads, optimization and memory limit of the session.
    public convenience init(modelBytes: [UInt8], options: SessionOptions = .init()) throws(ONNXError) {
        BLAS.configure()
        let budget = MemoryBudget(limit: options.memoryLimit)
        let model = try typedONNX { try Self.withBudget("loading the model bytes", budget) { try ModelLoader.load(bytes: modelBytes) } }
        try self.init(model: model, options: options, budget: budget)
    }

    /// Plans `model`, whose weights were loaded against `budget` (a fresh one when nil).
    init(model: Model, options: SessionOptions, budget: MemoryBudget? = nil) throws(ONNXError) {
        let budget = budget ?? MemoryBudget(limit: options.memoryLimit)
        try typedONNX { try Self.checkVersions(model) }
        self.options = options
        self.budget = budget
        let prepared = PreparedWeights()
        self.prepared = prepared
        BLAS.configure()
        self.plan = try typedONNX {
            try Self.withBudget("optimizing the model", budget) { try Self.prepare(model, options: options, prepared: prepared) }
        }
        let graph = model.graph
        self.inputs = graph.inputs
        self.outputs = graph.outputs.map { o in
            if o.kind != .tensor || (o.type != nil && o.shape != nil) { return o }
            return graph.valueInfo[o.name] ?? o
        }
        self.metadata = ModelMetadata(irVersion: model.irVersion, producerName: model.producerName,
                                      producerVersion: model.producerVersion, domain: model.domain,
                                      modelVersion: model.modelVersion, docString: model.docString,
                                      opsets: model.opsets, nodeCount: graph.nodes.count,
                                      opHistogram: Dictionary(graph.nodes.map { ($0.domain.isEmpty ? $0.opType : "\($0.domain)::\($0.opType)", 1) }, uniquingKeysWith: +),
                                      customMetadata: model.metadataProps)
        self.shapePlans = Self.isShapePlanned(model, options) ? ShapePlans(graph: graph, opsets: model.opsets) : nil
    }

    /// Whether the session makes plans per input signature: optimizing, and some input dimension is symbolic.
    private static func isShapePlanned(_ model: Model, _ options: SessionOptions) -> Bool {
        // Sequence and optional inputs have no shape to plan for: such a model keeps its general plan.
        options.optimize && model.graph.inputs.allSatisfy { $0.kind == .tensor }
            && model.graph.inputs.contains { $0.shape.map { $0.contains { $0.value == nil } } ?? true }
    }

    /// Optimizes the graph, infers its types and shapes, and makes the general plan.
    private static func prepare(_ model: Model, options: SessionOptions, prepared: PreparedWeights) throws -> Plan {
        let graph = model.graph
        if options.optimize {
            try PassManager.standard.run(on: graph, opsets: model.opsets)
        }
        ShapeInference.infer(graph, opsets: model.opsets)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let shapePlanned = isShapePlanned(model, options)
        // A model planned once (no plans per input shape to come) frees each weight once the ops
        // reading it have packed their own copy: the session keeps one form of its weights.
        var builder = PlanBuilder(registry: .standard, opsets: model.opsets, prepared: shapePlanned ? prepared : nil)
        builder.releaseWeights = !shapePlanned
        let plan = try builder.compile(graph)
        if Profiler.enabled { Profiler.record("[load] plan", ns: DispatchTime.now().uptimeNanoseconds - t0) }
        return plan
    }

    /// The plan for a run whose feeds have `signature`: one made for these input shapes when the
    /// session has one (or makes one now: on the second run of a signature), else the general plan.
    private func plan(for signature: [Int], memorySignature: [Int], feeds: [String: Tensor]) -> Plan {
        guard let shapePlans else { return plan }
        switch shapePlans.lookup(signature) {
        case .ready(let p): return p
        case .general: return plan
        case .build:
            let t0 = DispatchTime.now().uptimeNanoseconds
            let p = try? shapePlans.build(signature, shapes: feeds.mapValues(\.shape), prepared: prepared)
            if Profiler.enabled { Profiler.record("[run] plan for input shapes", ns: DispatchTime.now().uptimeNanoseconds - t0) }
            if p != nil { memory.forget(memorySignature) }   // its runs allocate differently: learn them anew
            return p ?? plan
        }
    }

    /// Runs the model on `feeds` (every declared input, with its element type and a shape that fits)
    /// and returns every output by name. Blocks the calling thread until the run is done; safe to call
    /// from many threads at once. Throws `ONNXError.missingInput`, `.unknownInput`,
    /// `.inputTypeMismatch` or `.inputShapeMismatch` when the feeds do not match ``inputs``,
    /// `.nodeFailed` when a node cannot compute on them, and `.memoryLimitExceeded`.
    ///
    /// - Parameter feeds: A tensor for every input of the model, keyed by input name (see ``inputs``).
    public func run(_ feeds: [String: Tensor]) throws(ONNXError) -> [String: Tensor] {
        try run(feeds, control: nil)
    }

    /// Runs only what the named outputs need (a model's other heads, its auxiliary outputs are
    /// skipped) and returns those outputs. Throws `ONNXError.unknownOutput` for a name the model
    /// does not output.
    ///
    /// - Parameters:
    ///   - feeds: A tensor for every input of the model, keyed by input name (see ``inputs``).
    ///   - names: The outputs to compute and return, by name (see ``outputs``).
    public func run(_ feeds: [String: Tensor], outputs names: [String]) throws(ONNXError) -> [String: Tensor] {
        try run(feeds, control: try control(outputs: names, buffers: [:]))
    }

    /// Runs the model writing the named outputs into the caller's memory, and returns every output
    /// (or only `outputs`, when given, which must include the buffers' names). Each buffer must have
    /// exactly its output's byte count (elements in row-major order). The op that makes such an
    /// output writes it straight into the buffer where it can (convolutions, matrix products,
    /// elementwise ops...); otherwise the output is copied there once. The returned tensors for
    /// these outputs view the buffers: they stay valid as long as the caller keeps the memory alive
    /// and unchanged. Throws `ONNXError.invalidOutputBuffer` when a buffer's size does not match.
    ///
    /// - Parameters:
    ///   - feeds: A tensor for every input of the model, keyed by input name (see ``inputs``).
    ///   - buffers: Memory for outputs, keyed by output name, each exactly the output's byte count.
    ///   - names: The outputs to compute and return, including every key of `buffers`; nil for all.
    public func run(_ feeds: [String: Tensor], into buffers: [String: UnsafeMutableRawBufferPointer],
                    outputs names: [String]? = nil) throws(ONNXError) -> [String: Tensor] {
        try run(feeds, control: try control(outputs: names, buffers: buffers))
    }

    /// The asynchronous `run`: the model runs on the session's own threads, not on the caller's
    /// (so it does not hold a thread of Swift concurrency's cooperative pool). Cancelling the calling
    /// Task stops the run before its next node and throws `ONNXError.cancelled`.
    ///
    /// - Parameter feeds: A tensor for every input of the model, keyed by input name (see ``inputs``).
    public func run(_ feeds: [String: Tensor]) async throws(ONNXError) -> [String: Tensor] {
        try await run(feeds, control: RunControl())
    }

    /// The asynchronous `run(_:outputs:)`: runs only what the named outputs need, on the session's own
    /// threads; cancelling the calling Task stops the run before its next node and throws
    /// `ONNXError.cancelled`.
    ///
    /// - Parameters:
    ///   - feeds: A tensor for every input of the model, keyed by input name (see ``inputs``).
    ///   - names: The outputs to compute and return, by name (see ``outputs``).
    public func run(_ feeds: [String: Tensor], outputs names: [String]) async throws(ONNXError) -> [String: Tensor] {
        try await run(feeds, control: try control(outputs: names, buffers: [:]))
    }

    private func run(_ feeds: [String: Tensor], control: RunControl) async throws(ONNXError) -> [String: Tensor] {
        if Task.isCancelled { throw .cancelled }
        let result: Result<[String: Tensor], ONNXError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Result<[String: Tensor], ONNXError>, Never>) in
                runQueue.async {
                    done.resume(returning: Result { () throws(ONNXError) in try self.run(feeds, control: control) })
                }
            }
        } onCancel: {
            control.cancel()
        }
        return try result.get()
    }

    /// The declared input called `name`, or nil when the model has no such input.
    ///
    /// - Parameter name: The input's name in the graph.
    public func input(named name: String) -> ValueInfo? { inputs.first { $0.name == name } }
    /// The declared output called `name`, or nil when the model has no such output.
    ///
    /// - Parameter name: The output's name in the graph.
    public func output(named name: String) -> ValueInfo? { outputs.first { $0.name == name } }

    /// Runs of the async API, off Swift concurrency's cooperative pool.
    private let runQueue = DispatchQueue(label: "SwiftONNX.InferenceSession.run", qos: .userInitiated, attributes: .concurrent)

    /// The run control for `names` (nil: all outputs) and `buffers`, checked against the outputs.
    private func control(outputs names: [String]?, buffers: [String: UnsafeMutableRawBufferPointer]) throws(ONNXError) -> RunControl {
        let known = Set(outputs.map(\.name))
        for name in (names ?? []) + buffers.keys.sorted() where !known.contains(name) { throw .unknownOutput(name) }
        if let names {
            for name in buffers.keys.sorted() where !names.contains(name) {
                throw .invalidOutputBuffer(name: name, reason: "a buffer was given for it but it is not among the requested outputs")
            }
        }
        var kept: [String: CallerBuffer] = [:]
        for (name, b) in buffers {
            if b.count > 0 && b.baseAddress == nil { throw .invalidOutputBuffer(name: name, reason: "the buffer has no address") }
            kept[name] = CallerBuffer(b)
        }
        return RunControl(wanted: names.map(Set.init), buffers: kept)
    }

    /// Checks that `feeds` (type and shape per input name) name every declared input and no other,
    /// with the declared types and shapes that fit.
    private func check(_ feeds: [String: (dtype: DType, shape: [Int])], kinds: [String: ValueKind] = [:],
                       emptyOptionals: Set<String> = []) throws(ONNXError) {
        for name in feeds.keys.sorted() where !inputs.contains(where: { $0.name == name }) {
            throw .unknownInput(name)
        }
        for info in inputs {
            guard let t = feeds[info.name] else { throw .missingInput(info.name) }
            if !Self.kindFits(info.kind, kinds[info.name] ?? .tensor) {
                throw .invalidInput(name: info.name, reason: "the model takes a \(info.kind) value here, got a \(kinds[info.name] ?? .tensor) value")
            }
            if let dt = info.type, dt != t.dtype, !emptyOptionals.contains(info.name) {
                throw .inputTypeMismatch(input: info.name, expected: dt, got: t.dtype)
            }
            if let shape = info.shape {
                // Symbolic dims accept any size (exporters reuse names like "?" for unrelated dims,
                // and ONNX Runtime does not bind them either); known dims and the rank must match.
                let ok = shape.count == t.shape.count && zip(shape, t.shape).allSatisfy { $0.accepts($1) }
                if !ok { throw .inputShapeMismatch(input: info.name, expected: shape, got: t.shape) }
            }
        }
    }

    /// Whether a value of kind `got` may feed an input declared as `declared`: the same kind, where
    /// an optional's or sequence's element kind is compared as far as the value tells it.
    private static func kindFits(_ declared: ValueKind, _ got: ValueKind) -> Bool {
        switch (declared, got) {
        case (.tensor, .tensor): return true
        case (.sequence, .sequence(.tensor)): return true
        case (.optional(let d), .optional(let g)): return kindFits(d, g)
        default: return false
        }
    }

    /// Plans the model for inputs of these shapes now, as the second run of a new input shape
    /// otherwise does: for a caller that will run one shape many times (an image in tiles of one
    /// size), so that the first run already uses that plan and records its memory layout, and the
    /// second follows it. Models whose inputs have no symbolic dimensions have one plan for all runs
    /// and need no preparing (nothing happens). A plan that cannot be made leaves the general plan,
    /// as a run would. Throws `ONNXError.missingInput`, `.unknownInput` or `.inputShapeMismatch`
    /// when the shapes do not fit ``inputs``.
    ///
    /// - Parameter inputShapes: The shape of every input, by name; each input's type is the declared
    ///   one (float32 when the model does not declare it).
    public func prepare(inputShapes: [String: [Int]]) throws(ONNXError) {
        var feeds: [String: (dtype: DType, shape: [Int])] = [:]
        for (name, shape) in inputShapes { feeds[name] = (input(named: name)?.type ?? .float32, shape) }
        try check(feeds)
        guard let shapePlans else { return }
        let signature = MemoryPlanner.signature(plan.feedOrder.compactMap { feeds[$0.name] })
        shapePlans.prepare(signature, shapes: inputShapes, prepared: prepared)
    }

    private func run(_ feeds: [String: Tensor], control: RunControl?) throws(ONNXError) -> [String: Tensor] {
        try check(feeds.mapValues { ($0.dtype, $0.shape) }, kinds: feeds.mapValues(\.kind),
                  emptyOptionals: Set(feeds.filter { $0.value.isOptional && $0.value.optionalElement == nil }.keys))
        // The plan goes by the feeds' types and shapes; the memory pattern also by which outputs are
        // wanted and where they go.
        let feedSignature = MemoryPlanner.signature(plan.feedOrder.compactMap { feeds[$0.name] })  // all present: checked above
        var signature = feedSignature
        if let control {
            // Runs of other outputs, or into caller memory, allocate differently: arenas of their own.
            signature.append(Int.min)
            for (k, o) in outputs.enumerated() {
                signature.append((control.wanted?.contains(o.name) ?? true ? 1 : 0) + (control.buffers[o.name] != nil ? 2 : 0) + 4 * k)
            }
        }
        do {
            return try MemoryBudget.$current.withValue(budget) {
                try run(feeds, feedSignature: feedSignature, signature: signature, control: control)
            }
        } catch {
            throw ONNXError(wrapping: error)
        }
    }

    private func run(_ feeds: [String: Tensor], feedSignature: [Int], signature: [Int], control: RunControl?) throws -> [String: Tensor] {
        let runPlan = plan(for: feedSignature, memorySignature: signature, feeds: feeds)
        let arena = memory.arena(for: signature)
        let results: [Tensor?]
        do {
            let threads = governor.threads(requested: options.threads)
            let wall0 = DispatchTime.now().uptimeNanoseconds, cpu0 = ThreadGovernor.processCPUNanos()
            results = try RunArena.$current.withValue(arena) {
                try runPlan.run(feeds, env: RunEnv(threads: threads), control: control)
            }
            governor.record(threads: threads, wallNanos: DispatchTime.now().uptimeNanoseconds - wall0,
                            cpuNanos: ThreadGovernor.processCPUNanos() - cpu0)
        } catch {
            memory.finished(arena, signature: signature, learn: false)
            throw error
        }
        memory.finished(arena, signature: signature)
        var out: [String: Tensor] = [:]
        for (o, t) in zip(runPlan.outputs, results) { if let t { out[o.name] = t } }
        return out
    }
}

extension InferenceSession: CustomStringConvertible {
    /// The inputs and outputs, thread count and kernels: "InferenceSession(inputs: [...], outputs: [...], threads: 1, kernels: avx2)".
    public var description: String {
        "InferenceSession(inputs: \(inputs), outputs: \(outputs), threads: \(options.threads), kernels: \(Self.kernelISA))"
    }
}

/// Facts about the model file.
public struct ModelMetadata: Sendable, Equatable {
    /// The ONNX IR version the file was written with (ModelProto.ir_version).
    public let irVersion: Int
    /// The tool that wrote the model ("pytorch", "tf2onnx"...); empty when the file does not say.
    public let producerName: String
    /// The version of that tool; empty when the file does not say.
    public let producerVersion: String
    /// The model's namespace as its producer set it (ModelProto.domain); often empty.
    public let domain: String
    /// The model's own version number (ModelProto.model_version); 0 when not set.
    public let modelVersion: Int
    /// The model's documentation string (ModelProto.doc_string); often empty.
    public let docString: String
    /// Opset version per domain ("" is the default ai.onnx domain).
    public let opsets: [String: Int]
    /// Nodes of the main graph (after optimization when enabled; subgraphs' nodes not counted).
    public let nodeCount: Int
    /// How many nodes of each op type (after optimization when enabled).
    public let opHistogram: [String: Int]
    /// The producer's key/value metadata (ModelProto.metadata_props).
    public var customMetadata: [String: String] = [:]
}

enum BLAS {
    /// One-time set-up, run by the first session (a static let is initialized exactly once, thread-safely):
    /// the OpenBLAS core for this CPU (the AVX-512 check), and OpenBLAS single-threaded: the runtime's
    /// pool splits large GEMMs itself (honouring each session's thread count), and OpenBLAS's own idle
    /// workers would compete with it.
    private static let configured: Bool = {
        _ = swiftonnx_openblas_use_detected_core()
        openblas_set_num_threads(1)
        _ = swiftonnx_openblas_stop_workers()
        return true
    }()
    static func configure() { _ = configured }
    /// The OpenBLAS core in use (e.g. "Cooperlake"), after the one-time AVX-512 check.
    static var coreName: String {
        configure()
        return String(cString: openblas_get_corename())
    }
}
