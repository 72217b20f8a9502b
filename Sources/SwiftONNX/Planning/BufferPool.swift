import CKernels
import Foundation

/// 64-byte aligned, uninitialized memory for a buffer the caller writes in full. A large one
/// (`mappedThreshold` and up, on Linux) is its own anonymous mapping, its pages populated in one
/// system call (`so_populate`) rather than faulted in one by one as it is first written, and its
/// pages go back to the system when it is freed. Through `malloc` they would not: glibc raises its
/// mmap threshold to the size of each large block freed, so after a model's first runs (which
/// allocate every intermediate on its own) later large blocks came from the heap, and the holes
/// they left stayed resident (open-nsfw: 8 MB of peak RSS). Free with `freeBuffer(_:byteCount:)`.
func allocateBuffer(byteCount: Int) -> UnsafeMutableRawPointer {
    if byteCount >= mappedThreshold {
        guard let p = so_map_pages(PageRecycler.mappedSize(byteCount)) else {
            fatalError("SwiftONNX: out of memory mapping \(byteCount) bytes")   // as the allocator traps
        }
        _ = so_populate(p, byteCount, 0)
        return p
    }
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    _ = so_populate(p, byteCount, 256 << 10)
    return p
}

/// Buffers from this size up are mapped by `allocateBuffer` (where the system maps pages: Linux).
#if os(Linux)
let mappedThreshold = 256 << 10
#else
let mappedThreshold = Int.max
#endif

/// Frees a buffer of `byteCount` bytes from `allocateBuffer`.
func freeBuffer(_ p: UnsafeMutableRawPointer, byteCount: Int) {
    if byteCount >= mappedThreshold { so_unmap_pages(p, PageRecycler.mappedSize(byteCount)) } else { p.deallocate() }
}

/// A buffer for data a session keeps (a weight, a folded constant, a packed form): while a load
/// recycles pages (`PageRecycler.current`) a large one is mapped from the recycler (`mapped` true:
/// free it with `freeKeptBuffer(_:byteCount:mapped:)` so its pages go back), else `allocateBuffer`.
func allocateKeptBuffer(byteCount: Int) -> (pointer: UnsafeMutableRawPointer, mapped: Bool) {
    if byteCount >= PageRecycler.threshold, let r = PageRecycler.current, let p = r.allocate(byteCount) { return (p, true) }
    return (allocateBuffer(byteCount: byteCount), false)
}

func freeKeptBuffer(_ p: UnsafeMutableRawPointer, byteCount: Int, mapped: Bool) {
    if mapped { PageRecycler.release(p, byteCount) } else { freeBuffer(p, byteCount: byteCount) }
}

/// Floats from `allocateKeptBuffer`, freed with the object (memory several owners share).
final class FloatBuffer: @unchecked Sendable {   // @unchecked: a raw pointer, written once (packing) before it is shared
    let data: UnsafeMutablePointer<Float>
    private let budget: MemoryBudget?
    private let bytes: Int
    /// Throws `memoryLimitExceeded` before allocating when the session being planned cannot hold it.
    convenience init(count: Int) throws {
        self.init(floats: max(count, 1), budget: try MemoryBudget.reserveCurrent(max(count, 1) * 4))
    }
    private let mapped: Bool
    private init(floats: Int, budget: MemoryBudget?) {
        bytes = floats * 4
        self.budget = budget
        let (p, mapped) = allocateKeptBuffer(byteCount: bytes)
        self.mapped = mapped
        data = p.bindMemory(to: Float.self, capacity: floats)
    }
    deinit { freeKeptBuffer(data, byteCount: bytes, mapped: mapped); budget?.release(bytes) }
}

/// Recycles tensor buffers of a session's runs by size class: the buffers a run's arena does not
/// hold (those that outlive a run: its outputs) are taken from here and come back here when the
/// caller drops them, so steady-state runs make no system allocation for them either. Runs that
/// record a memory pattern take all their buffers from here (a signature's first run and the first
/// run of its shape plan record one after the other); the free ones are released when the first
/// arena slab is made.
///
/// Buffers are matched by size class (64-byte steps up to 4 KiB, 4 KiB steps above). A free buffer
/// that no run has taken back for `idleRuns` consecutive runs is given back to the system, so the pool
/// holds what the last runs used (a fixed shape reuses all of it every run; after a change of shape
/// the old sizes go away). Thread-safe: concurrent runs share it.
final class BufferPool: Sendable {
    /// Runs a free buffer may sit unused before it is released.
    static let idleRuns = 2

    /// A free buffer and the run count when it was freed.
    private struct FreeBuffer {
        let pointer: UnsafeMutableRawPointer
        let run: Int
    }
    private struct State {
        /// Free buffers per size class.
        var free: [Int: [FreeBuffer]] = [:]
        var freeBytes = 0
        var runs = 0
        /// Buffers taken from the system allocator (pool misses) and handed out again (hits).
        var systemAllocations = 0
        var reuses = 0
    }
    private let state = Locked(State())

    static func sizeClass(_ bytes: Int) -> Int {
        let n = max(bytes, 64)
        return n <= 4096 ? (n + 63) & ~63 : (n + 4095) & ~4095
    }

    /// A 64-byte aligned buffer of `sizeClass(bytes)` bytes, uninitialized.
    func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, capacity: Int) {
        let cap = Self.sizeClass(bytes)
        let reused: FreeBuffer? = state.withLock { st in
            if let e = st.free[cap]?.popLast() {
                st.freeBytes -= cap
                st.reuses += 1
                return e
            }
            st.systemAllocations += 1
            return nil
        }
        if let reused { return (reused.pointer, cap) }
        return (allocateBuffer(byteCount: cap), cap)
    }

    /// Takes back a buffer `allocate` handed out.
    func release(_ p: UnsafeMutableRawPointer, capacity: Int) {
        state.withLock { st in
            st.free[capacity, default: []].append(FreeBuffer(pointer: p, run: st.runs))
            st.freeBytes += capacity
        }
    }

    /// Called after each run: releases the free buffers no run has taken for `idleRuns` runs.
    func endRun() {
        let stale: [(FreeBuffer, Int)] = state.withLock { st in
            var stale: [(FreeBuffer, Int)] = []
            st.runs += 1
            let oldest = st.runs - Self.idleRuns
            for (cap, list) in st.free where list.contains(where: { $0.run < oldest }) {
                let keep = list.filter { $0.run >= oldest }
                for e in list where e.run < oldest { stale.append((e, cap)); st.freeBytes -= cap }
                st.free[cap] = keep.isEmpty ? nil : keep
            }
            return stale
        }
        for (e, cap) in stale { freeBuffer(e.pointer, byteCount: cap) }
    }

    /// Gives every free buffer back to the system (a run's arena slab now holds what they held).
    func releaseFree() {
        let all: [(FreeBuffer, Int)] = state.withLock { st in
            var all: [(FreeBuffer, Int)] = []
            for (cap, list) in st.free { for e in list { all.append((e, cap)) } }
            st.free.removeAll()
            st.freeBytes = 0
            return all
        }
        for (e, cap) in all { freeBuffer(e.pointer, byteCount: cap) }
    }

    /// (system allocations, reuses, bytes kept free) so far, for tests and diagnostics.
    var statistics: (systemAllocations: Int, reuses: Int, freeBytes: Int) {
        state.withLock { ($0.systemAllocations, $0.reuses, $0.freeBytes) }
    }

    deinit {
        state.withLock { st in
            for (cap, list) in st.free { for e in list { freeBuffer(e.pointer, byteCount: cap) } }
        }
    }
}
