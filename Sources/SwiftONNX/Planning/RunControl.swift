import Synchronization

/// What a caller asked of one run beyond its feeds: which outputs to compute, memory of its own to
/// write some of them into, and a cancellation flag the executor checks between nodes.
/// Names, not slots: a session runs the plan made for the feeds' shapes, whose slots are its own.
final class RunControl: Sendable {
    /// The outputs the caller asked for; nil: all.
    let wanted: Set<String>?
    /// Caller memory per output name.
    let buffers: [String: CallerBuffer]
    private let cancelled = Atomic<Bool>(false)

    init(wanted: Set<String>? = nil, buffers: [String: CallerBuffer] = [:]) {
        self.wanted = wanted
        self.buffers = buffers
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }
    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}

/// A caller's output buffer: its address as an integer (so the control is Sendable; the caller keeps
/// the memory alive for the synchronous run that uses it).
struct CallerBuffer: Sendable, Hashable {
    let address: Int
    let byteCount: Int
    var pointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: address)! }
    init(_ p: UnsafeMutableRawBufferPointer) {
        address = Int(bitPattern: p.baseAddress)
        byteCount = p.count
    }
}
