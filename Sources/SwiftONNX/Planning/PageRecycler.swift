import CKernels
import Foundation

/// Large buffers made while a session loads (weight copies, folded constants, packed weights)
/// hand their pages on to the next ones instead of back to the system.
///
/// Planning releases each weight once the ops reading it have packed their own form, and the next
/// op's packing then wants about as many fresh bytes. Fresh pages are the largest part of a load on
/// the machines measured (populating costs about 0.4 ms per MB, faulting them in 1 ms per MB, while
/// packing itself runs at several GB/s), so a buffer of at least `threshold` bytes made while a
/// recycler is bound is its own anonymous mapping, and when it is freed while one is bound, its
/// already-populated pages go to the recycler, which hands them out again: the smallest free chunk
/// that fits (the rest stays free), or else pieces of several moved next to each other with
/// `mremap` (page tables move, no byte is copied), and only what is still missing is populated
/// fresh. Whatever is left when the load ends is unmapped.
///
/// Linux only (mremap); elsewhere no recycler is bound and buffers come from the allocator.
/// The memory is uninitialized, as `allocateBuffer`'s is: recycled pages hold old values.
final class PageRecycler: Sendable {
    /// The recycler of the load running on this thread (bound by `InferenceSession`).
    @TaskLocal static var current: PageRecycler?

    /// Buffers from this size up are mapped and recycled.
    static let threshold = 512 << 10

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Free chunks: base address and bytes (page multiples).
    private let free = Locked([(base: UnsafeMutableRawPointer, bytes: Int)]())
    /// Bytes handed out again instead of populated fresh (for tests and diagnostics).
    private let reused = Locked(0)

    var reusedBytes: Int { reused.withLock { $0 } }

    static func mappedSize(_ bytes: Int) -> Int { (max(bytes, 1) + pageSize - 1) / pageSize * pageSize }

    /// A recycler for a load, where the system has what it needs (Linux), else nil.
    static func forLoad() -> PageRecycler? {
        #if os(Linux)
        return PageRecycler()
        #else
        return nil
        #endif
    }

    /// `bytes` of page-aligned memory, its pages populated: recycled ones first. nil when the
    /// system has no memory to map (the caller falls back to the allocator).
    func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        let need = Self.mappedSize(bytes)
        // The smallest free chunk that fits, else the largest ones to piece together.
        let taken: [(base: UnsafeMutableRawPointer, bytes: Int)] = free.withLock { free in
            if let i = free.indices.filter({ free[$0].bytes >= need }).min(by: { free[$0].bytes < free[$1].bytes }) {
                let c = free.remove(at: i)
                if c.bytes > need { free.append((c.base + need, c.bytes - need)) }
                return [(c.base, need)]
            }
            free.sort { $0.bytes > $1.bytes }
            var out: [(base: UnsafeMutableRawPointer, bytes: Int)] = []
            var have = 0
            while have < need, !free.isEmpty {
                let c = free.removeFirst()
                out.append(c)
                have += c.bytes
            }
            if have > need, let last = out.popLast() {   // only the head of the last piece: its tail stays free
                let head = last.bytes - (have - need)
                out.append((last.base, head))
                free.append((last.base + head, last.bytes - head))
            }
            return out
        }
        precondition(taken.reduce(0) { $0 + $1.bytes } <= need, "recycled pieces overrun the new buffer")
        if taken.count == 1 && taken[0].bytes == need {
            reused.withLock { $0 += need }
            return taken[0].base
        }
        // One fresh mapping of the whole size; the recycled pieces are moved over its start.
        guard let fresh = so_map_pages(need) else {
            free.withLock { $0.append(contentsOf: taken) }   // kept for later requests
            return nil
        }
        var offset = 0
        for c in taken {
            if so_move_pages(c.base, c.bytes, fresh + offset) == 0 {
                so_unmap_pages(c.base, c.bytes)
                continue
            }
            offset += c.bytes
        }
        reused.withLock { $0 += offset }
        if offset < need { _ = so_populate(fresh + offset, need - offset, 0) }
        return fresh
    }

    /// Takes back a buffer `allocate` (of any recycler) made with `bytes`.
    func recycle(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        free.withLock { $0.append((p, Self.mappedSize(bytes))) }
    }

    /// Unmaps what was not handed out again (the load is over; also when the recycler goes away).
    func drain() {
        let chunks = free.withLock { free in defer { free.removeAll() }; return free }
        for c in chunks { so_unmap_pages(c.base, c.bytes) }
    }

    deinit { drain() }

    /// Frees a mapped buffer of `bytes`: to the recycler bound now, else to the system.
    static func release(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if let r = current { r.recycle(p, bytes) } else { so_unmap_pages(p, mappedSize(bytes)) }
    }
}

