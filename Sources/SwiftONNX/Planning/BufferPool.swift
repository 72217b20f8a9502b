import CKernels
import Foundation

/// 64-byte aligned, uninitialized memory from the system allocator, for a buffer the caller
/// writes in full: a large one (256 KiB and up) has its pages populated in one system call
/// (`so_populate`) rather than faulted in one by one as it is first written. Free with `deallocate()`.
func allocateBuffer(byteCount: Int) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    _ = so_populate(p, byteCount, 256 << 10)
    return p
}

/// Floats from `allocateBuffer`, freed with the object (memory several owners share).
final class FloatBuffer: @unchecked Sendable {
    let data: UnsafeMutablePointer<Float>
    private let budget: MemoryBudget?
    private let bytes: Int
    /// Throws `memoryLimitExceeded` before allocating when the session being planned cannot hold it.
    init(count: Int) throws {
        bytes = max(count, 1) * 4
        budget = try MemoryBudget.reserveCurrent(bytes)
        data = allocateBuffer(byteCount: bytes).bindMemory(to: Float.self, capacity: max(count, 1))
    }
    /// Scratch of one kernel call, as large as data the session holds already (a run's own packing
    /// of its weights): not counted in the budget.
    init(scratchCount count: Int) {
        bytes = max(count, 1) * 4
        budget = nil
        data = allocateBuffer(byteCount: bytes).bindMemory(to: Float.self, capacity: max(count, 1))
    }
    deinit { data.deallocate(); budget?.release(bytes) }
}

/// Recycles tensor buffers of a session's runs by size class: the buffers a run's arena does not
/// hold (those that outlive a run: its outputs) are taken from here and come back here when the
/// caller drops them, so steady-state runs make no system allocation for them either.
///
/// Buffers are matched by size class (64-byte steps up to 4 KiB, 4 KiB steps above). A free buffer
/// that no run has taken back for `idleRuns` consecutive runs is given back to the system, so the pool
/// holds what the last runs used (a fixed shape reuses all of it every run; after a change of shape
/// the old sizes go away). Thread-safe: concurrent runs share it.
final class BufferPool: @unchecked Sendable {
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
        return (allocateBuffer(byteCount: cap), cap)
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
