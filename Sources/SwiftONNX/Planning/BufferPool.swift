import Foundation

/// Recycles the memory of the tensors a session's runs produce. While a run executes, every tensor
/// an op allocates (`Tensor.uninitialized`, `Tensor.zeros`) takes its buffer from the session's pool;
/// when the last reference to a tensor goes away (an intermediate after its last reader, an output
/// the caller dropped) its buffer goes back to the pool instead of to the system allocator. Runs of
/// a shape seen before therefore make no system allocation for intermediates and touch no fresh
/// pages (large `malloc` blocks are mmapped, and every first touch of such a page is a fault).
///
/// Buffers are matched by size class (64-byte steps up to 4 KiB, 4 KiB steps above). A free buffer
/// that no run has taken back for `idleRuns` consecutive runs is given back to the system, so the pool
/// holds what the last runs used (a fixed shape reuses all of it every run; after a change of shape
/// the old sizes go away). Thread-safe: concurrent runs share it.
final class BufferPool: @unchecked Sendable {
    /// The pool of the run executing on this thread (bound by `InferenceSession.run`).
    @TaskLocal static var current: BufferPool?

    /// Runs a free buffer may sit unused before it is released.
    static let idleRuns = 2

    private let lock = NSLock()
    /// Free buffers per size class, each with the run count when it was freed.
    private var free: [Int: [(p: UnsafeMutableRawPointer, run: Int)]] = [:]
    private var freeBytes = 0
    private var runs = 0
    /// Buffers taken from the system allocator (pool misses) and handed out again (hits).
    private var systemAllocations = 0
    private var reuses = 0

    static func sizeClass(_ bytes: Int) -> Int {
        let n = max(bytes, 64)
        return n <= 4096 ? (n + 63) & ~63 : (n + 4095) & ~4095
    }

    /// A 64-byte aligned buffer of `sizeClass(bytes)` bytes, uninitialized.
    func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, capacity: Int) {
        let cap = Self.sizeClass(bytes)
        lock.lock()
        if let e = free[cap]?.popLast() {
            freeBytes -= cap
            reuses += 1
            lock.unlock()
            return (e.p, cap)
        }
        systemAllocations += 1
        lock.unlock()
        return (UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 64), cap)
    }

    /// Takes back a buffer `allocate` handed out.
    func release(_ p: UnsafeMutableRawPointer, capacity: Int) {
        lock.lock()
        free[capacity, default: []].append((p, runs))
        freeBytes += capacity
        lock.unlock()
    }

    /// Called after each run: releases the free buffers no run has taken for `idleRuns` runs.
    func endRun() {
        var stale: [UnsafeMutableRawPointer] = []
        lock.lock()
        runs += 1
        let oldest = runs - Self.idleRuns
        for (cap, list) in free where list.contains(where: { $0.run < oldest }) {
            let keep = list.filter { $0.run >= oldest }
            for e in list where e.run < oldest { stale.append(e.p); freeBytes -= cap }
            free[cap] = keep.isEmpty ? nil : keep
        }
        lock.unlock()
        for p in stale { p.deallocate() }
    }

    /// (system allocations, reuses, bytes kept free) so far, for tests and diagnostics.
    var statistics: (systemAllocations: Int, reuses: Int, freeBytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (systemAllocations, reuses, freeBytes)
    }

    deinit {
        for (_, list) in free { for e in list { e.p.deallocate() } }
    }
}
