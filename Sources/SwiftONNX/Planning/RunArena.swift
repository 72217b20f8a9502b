import Foundation

/// Intermediates of a run in one arena, laid out from their lifetimes.
///
/// The first run of an input signature (the input shapes and types) records every tensor buffer the
/// run allocates: its size, when it was allocated and when it was freed, counted in allocation and
/// release events. From that the session lays out a `MemoryPattern`: each buffer freed during the
/// run gets an offset in one arena such that buffers alive at the same time never overlap
/// (greedy, largest first, lowest fitting offset). Later runs of the signature take one arena slab
/// and hand out the k-th buffer at its offset: no allocator call and no fresh page per
/// intermediate. Buffers that outlived the recorded run (the outputs) come from the session's
/// `BufferPool` instead, so a caller may keep outputs while the next run reuses the arena.
///
/// The pattern is followed only while the run asks for exactly the recorded sizes in the recorded
/// order, and a buffer is placed in the arena only when every earlier buffer sharing its bytes has
/// been freed in this run: a run that departs from the recording (a data-dependent branch, a
/// different loop count) gets system memory for the rest of the run and the signature is recorded
/// again, so a departure costs speed, never correctness.
final class MemoryPattern: Sendable {
    /// Requested bytes of the k-th allocation.
    let sizes: [Int]
    /// Its arena offset, or -1: it outlived the recorded run (taken from the pool).
    let offsets: [Int]
    /// Earlier allocations whose arena bytes overlap the k-th one's: all must be freed when k is handed out.
    let conflicts: [[Int32]]
    let arenaBytes: Int

    private struct State {
        var valid = true
        var freeSlabs: [ArenaSlab] = []
    }
    private let state = Locked(State())

    init(sizes: [Int], offsets: [Int], conflicts: [[Int32]], arenaBytes: Int) {
        self.sizes = sizes
        self.offsets = offsets
        self.conflicts = conflicts
        self.arenaBytes = arenaBytes
    }

    var isValid: Bool { state.withLock { $0.valid } }
    func invalidate() { state.withLock { $0.valid = false; $0.freeSlabs.removeAll() } }

    /// A slab for one run: a free one, or fresh memory (`fresh` is set then; `beforeFresh` runs first).
    func takeSlab(fresh: inout Bool, beforeFresh: () -> Void = {}) -> ArenaSlab {
        if let s = state.withLock({ $0.freeSlabs.popLast() }) { return s }
        fresh = true
        beforeFresh()
        return ArenaSlab(bytes: arenaBytes)
    }

    func giveBack(_ s: ArenaSlab) {
        state.withLock { st in
            if st.valid && st.freeSlabs.count < 4 { st.freeSlabs.append(s) }
        }
    }

    /// Lays out the recorded buffers. `alloc[k]`, `free[k]`: event times (free Int.max: outlived the run).
    /// nil when there are too many buffers to lay out cheaply.
    static func layout(sizes: [Int], alloc: [Int], free: [Int], limit: Int = 4096) -> MemoryPattern? {
        let n = sizes.count
        let placed = (0..<n).filter { free[$0] != Int.max }
        if placed.count > limit { return nil }
        func rounded(_ b: Int) -> Int { (max(b, 1) + 63) & ~63 }
        var offsets = [Int](repeating: -1, count: n)
        // largest first; ties by allocation order so the layout is deterministic
        let order = placed.sorted { rounded(sizes[$0]) != rounded(sizes[$1]) ? rounded(sizes[$0]) > rounded(sizes[$1]) : $0 < $1 }
        var done: [Int] = []
        var total = 0
        var busy: [(Int, Int)] = []
        for k in order {
            let size = rounded(sizes[k])
            busy.removeAll(keepingCapacity: true)
            for j in done where alloc[j] < free[k] && alloc[k] < free[j] {
                busy.append((offsets[j], offsets[j] + rounded(sizes[j])))
            }
            busy.sort { $0.0 < $1.0 }
            var off = 0
            for (lo, hi) in busy {
                if lo >= off + size { break }
                off = max(off, hi)
            }
            offsets[k] = off
            total = max(total, off + size)
            done.append(k)
        }
        var conflicts = [[Int32]](repeating: [], count: n)
        for a in 0..<placed.count {
            let k = placed[a]
            let lo = offsets[k], hi = lo + rounded(sizes[k])
            for b in 0..<a {
                let j = placed[b]
                if offsets[j] < hi && lo < offsets[j] + rounded(sizes[j]) { conflicts[k].append(Int32(j)) }
            }
        }
        return MemoryPattern(sizes: sizes, offsets: offsets, conflicts: conflicts, arenaBytes: max(total, 64))
    }
}

/// One arena's memory.
final class ArenaSlab: @unchecked Sendable {   // @unchecked: a raw pointer; each run gets its own slab
    let base: UnsafeMutableRawPointer
    private let bytes: Int
    init(bytes: Int) { self.bytes = bytes; base = allocateBuffer(byteCount: bytes) }
    deinit { freeBuffer(base, byteCount: bytes) }
}

/// Where a tensor buffer came from, so it goes back to the same place.
enum BufferGrant {
    case arena(Int)         // the k-th buffer of the pattern, in this run's slab
    case pool(Int)          // the session's pool, with its size class
    case system             // the system allocator
    case recorded(Int, Int) // the k-th buffer of a recording run, from the session's pool (with its size class)
    case caller             // a caller's output buffer (RunArena.offer): not ours to free
}

/// The memory of one run: records a pattern or follows one (see MemoryPattern).
final class RunArena: Sendable {
    /// The arena of the run executing on this thread (bound by `InferenceSession.run`).
    @TaskLocal static var current: RunArena?

    let pool: BufferPool
    let pattern: MemoryPattern?
    private let slab: ArenaSlab?
    private let counters: MemoryCounters

    private struct State {
        var next = 0
        var departed = false
        var ended = false
        var alive: [Bool]
        var arenaLive = 0
        // recording
        var clock = 0
        var recSizes: [Int] = []
        var recAlloc: [Int] = []
        var recFree: [Int] = []
        // caller buffers offered for the outputs of the step running now
        var offered: [CallerBuffer] = []
    }
    private let state: Locked<State>

    init(pool: BufferPool, pattern: MemoryPattern?, counters: MemoryCounters) {
        self.pool = pool
        self.counters = counters
        if let p = pattern, p.isValid {
            self.pattern = p
            var fresh = false
            // The recording runs' buffers wait in the pool: the first slab takes their place (they
            // go before it is mapped, so the two are not resident at once).
            slab = p.takeSlab(fresh: &fresh, beforeFresh: { pool.releaseFree() })
            if fresh { counters.add(system: 1) }
            state = Locked(State(alive: [Bool](repeating: false, count: p.sizes.count)))
        } else {
            self.pattern = nil
            slab = nil
            state = Locked(State(alive: []))
        }
    }

    private enum Source { case system(BufferGrant), recording(Int), arena(Int, UnsafeMutableRawPointer), pool, caller(CallerBuffer) }

    /// Offers caller memory to the allocations of the step about to run: the first request of exactly
    /// a buffer's size gets it (not counted in the arena's pattern). `withdraw` ends the offer.
    func offer(_ buffers: [CallerBuffer]) { state.withLock { $0.offered = buffers } }
    func withdraw() { state.withLock { $0.offered.removeAll() } }

    func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, BufferGrant) {
        let source: Source = state.withLock { st in
            if !st.offered.isEmpty, let i = st.offered.firstIndex(where: { $0.byteCount == bytes }) {
                return .caller(st.offered.remove(at: i))
            }
            let k = st.next
            st.next += 1
            guard let p = pattern else {
                if st.ended { return .system(.system) }
                st.recSizes.append(bytes); st.recAlloc.append(st.clock); st.recFree.append(Int.max)
                st.clock += 1
                return .recording(k)
            }
            if !st.departed && (k >= p.sizes.count || p.sizes[k] != bytes) {
                st.departed = true
                p.invalidate()
            }
            if st.departed || st.ended { return .system(.system) }
            let off = p.offsets[k]
            if off >= 0, let slab, p.conflicts[k].allSatisfy({ !st.alive[Int($0)] }) {
                st.alive[k] = true
                st.arenaLive += 1
                return .arena(k, slab.base + off)
            }
            if off >= 0 { p.invalidate() }   // an earlier buffer on these bytes is still alive: record again
            return .pool
        }
        switch source {
        case .system(let grant):
            counters.add(system: 1)
            return (allocateBuffer(byteCount: bytes), grant)
        case .recording(let k):
            // From the pool, not fresh pages: a recording run frees most of its buffers before it
            // ends, and the next (a shape plan's first run records again) takes them back.
            let (ptr, cap) = pool.allocate(bytes)
            return (ptr, .recorded(k, cap))
        case .arena(let k, let pointer):
            return (pointer, .arena(k))
        case .pool:
            let (ptr, cap) = pool.allocate(bytes)
            return (ptr, .pool(cap))
        case .caller(let b):
            return (b.pointer, .caller)
        }
    }

    func release(_ ptr: UnsafeMutableRawPointer, byteCount: Int, _ grant: BufferGrant) {
        switch grant {
        case .arena(let k):
            let giveBack = state.withLock { st in
                st.alive[k] = false
                st.arenaLive -= 1
                return st.ended && st.arenaLive == 0
            }
            if giveBack, let slab, let pattern { pattern.giveBack(slab) }
        case .pool(let cap):
            pool.release(ptr, capacity: cap)
        case .system:
            freeBuffer(ptr, byteCount: byteCount)
        case .recorded(let k, let cap):
            state.withLock { st in
                if !st.ended { st.recFree[k] = st.clock; st.clock += 1 }
            }
            pool.release(ptr, capacity: cap)
        case .caller:
            break
        }
    }

    /// Ends the run (outputs still held): returns the pattern a recording run learned, and gives the
    /// slab back when nothing in it is alive.
    func finish() -> MemoryPattern? {
        let (giveBack, departed, sizes, alloc, free) = state.withLock { st in
            st.ended = true
            return (st.arenaLive == 0, st.departed, st.recSizes, st.recAlloc, st.recFree)
        }
        if let pattern {
            if departed { pattern.invalidate() }
            if giveBack, let slab { pattern.giveBack(slab) }
            return nil
        }
        return MemoryPattern.layout(sizes: sizes, alloc: alloc, free: free)
    }
}

/// Counts a session's system allocations for tensor memory (pool misses, arena slabs, recorded and
/// fallback buffers), for tests and diagnostics.
final class MemoryCounters: Sendable {
    private let system = Locked(0)
    func add(system n: Int) { system.withLock { $0 += n } }
    var systemAllocations: Int { system.withLock { $0 } }
}

/// A session's learned patterns, per input signature (a few are kept).
final class MemoryPlanner: Sendable {
    private let patterns = Locked([[Int]: MemoryPattern]())
    let pool = BufferPool()
    let counters = MemoryCounters()

    /// The signature of a run's feeds in a fixed order: dtype code and shape of each.
    static func signature(_ feeds: [Tensor]) -> [Int] {
        signature(feeds.map { ($0.dtype, $0.shape) })
    }

    static func signature(_ feeds: [(dtype: DType, shape: [Int])]) -> [Int] {
        var s: [Int] = []
        for t in feeds { s.append(-1 - Int(t.dtype.rawValue)); s.append(contentsOf: t.shape) }
        return s
    }

    func arena(for signature: [Int]) -> RunArena {
        let p: MemoryPattern? = patterns.withLock { patterns in
            if let q = patterns[signature], !q.isValid { patterns[signature] = nil }
            return patterns[signature]
        }
        return RunArena(pool: pool, pattern: p, counters: counters)
    }

    /// After a run (its outputs still held); `learn: false` for a run that failed.
    func finished(_ arena: RunArena, signature: [Int], learn: Bool = true) {
        let learned = arena.finish()
        pool.endRun()
        guard learn, let learned else { return }
        patterns.withLock { patterns in
            if patterns.count >= 8 { patterns.removeAll() }
            patterns[signature] = learned
        }
    }

    /// Drops what was learned for a signature (its runs will allocate differently).
    func forget(_ signature: [Int]) {
        patterns.withLock { patterns in
            patterns[signature]?.invalidate()
            patterns[signature] = nil
        }
    }

    /// Tensor-memory allocations this session made from the system so far.
    var systemAllocations: Int { counters.systemAllocations + pool.statistics.systemAllocations }

    /// The pattern learned for a signature, if any.
    func pattern(for signature: [Int]) -> MemoryPattern? {
        patterns.withLock { $0[signature] }
    }
}
