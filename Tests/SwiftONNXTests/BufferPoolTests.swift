import XCTest
import CKernels
@testable import SwiftONNX

/// The session's buffer pool: size classes, reuse, release of buffers idle for two runs, tensors
/// made inside and outside a run.
final class BufferPoolTests: XCTestCase {
    func testSizeClasses() {
        XCTAssertEqual(BufferPool.sizeClass(0), 64)
        XCTAssertEqual(BufferPool.sizeClass(65), 128)
        XCTAssertEqual(BufferPool.sizeClass(4096), 4096)
        XCTAssertEqual(BufferPool.sizeClass(4097), 8192)
    }

    func testReuseAndIdleRelease() {
        let pool = BufferPool()
        let (a, ca) = pool.allocate(1000)
        let (b, cb) = pool.allocate(10_000)
        XCTAssertEqual(pool.statistics.systemAllocations, 2)
        pool.release(a, capacity: ca)
        pool.release(b, capacity: cb)
        XCTAssertEqual(pool.statistics.freeBytes, ca + cb)
        let (a2, ca2) = pool.allocate(1001)      // same class: the same buffer again
        XCTAssertEqual(a2, a)
        XCTAssertEqual(ca2, ca)
        XCTAssertEqual(pool.statistics.reuses, 1)
        pool.release(a2, capacity: ca2)
        // b sits unused: after idleRuns + 1 ends of runs it is given back; a is kept while used.
        for _ in 0...BufferPool.idleRuns {
            pool.endRun()
            let (p, c) = pool.allocate(1000)
            pool.release(p, capacity: c)
        }
        XCTAssertEqual(pool.statistics.freeBytes, ca, "the idle 10 kB buffer should have been released")
    }

    /// Two buffers alive together never share arena bytes; one freed before the next is allocated may.
    func testLayoutKeepsLiveBuffersApart() throws {
        // events: a(0) b(1) free a(2) c(3) free b(4) free c(5); d(6) outlives the run
        let p = try XCTUnwrap(MemoryPattern.layout(sizes: [1000, 500, 1000, 64], alloc: [0, 1, 3, 6],
                                                   free: [2, 4, 5, Int.max]))
        let (a, b, c) = (p.offsets[0], p.offsets[1], p.offsets[2])
        XCTAssertEqual(p.offsets[3], -1, "a buffer that outlives the run is not in the arena")
        XCTAssertTrue(b >= a + 1024 || a >= b + 512, "a and b are alive together")
        XCTAssertTrue(b >= c + 1024 || c >= b + 512, "b and c are alive together")
        XCTAssertEqual(c, a, "c reuses a's bytes")
        XCTAssertEqual(p.arenaBytes, 1024 + 512)
        XCTAssertEqual(p.conflicts[2], [0])
    }

    /// A run records, the next follows the pattern in one slab, and a run that asks for other sizes
    /// falls back to system memory and makes the signature record again.
    func testRecordFollowAndDepart() throws {
        let planner = MemoryPlanner()
        let sig = [1, 2, 3]
        func run(_ sizes: [Int], keep: Int) throws -> (ptrs: [UnsafeMutableRawPointer], kept: Tensor) {
            let arena = planner.arena(for: sig)
            var ptrs: [UnsafeMutableRawPointer] = []
            let kept: Tensor = try RunArena.$current.withValue(arena) {
                var last: Tensor? = nil
                for (i, n) in sizes.enumerated() {
                    let t = try Tensor.uninitialized(.uint8, [n])
                    ptrs.append(t.raw)
                    if i == keep { last = t }
                }
                return last!
            }
            planner.finished(arena, signature: sig)
            return (ptrs, kept)
        }
        let first = try run([4096, 8192, 4096], keep: 2)
        XCTAssertNotNil(planner.pattern(for: sig), "the first run lays out a pattern")
        let s0 = planner.systemAllocations
        let second = try run([4096, 8192, 4096], keep: 2)
        XCTAssertEqual(planner.systemAllocations - s0, 2, "one arena slab and a pool buffer for the output")
        _ = try run([4096, 8192, 4096], keep: 2)      // its output is dropped at once
        let s1 = planner.systemAllocations
        let third = try run([4096, 8192, 4096], keep: 2)
        XCTAssertEqual(planner.systemAllocations - s1, 0, "steady state: no system allocation")
        XCTAssertEqual(second.ptrs[0], third.ptrs[0], "the slab is reused")
        XCTAssertNotEqual(second.kept.raw, third.kept.raw, "the held output of a run is not reused by the next")
        _ = first
        // departing: other sizes
        let odd = try run([4096, 100], keep: 1)
        XCTAssertEqual(odd.ptrs.count, 2)
        XCTAssertNil(planner.arena(for: sig).pattern, "a departed pattern is recorded again")
    }
}

extension BufferPoolTests {
    /// Recording runs take their buffers from the pool: a second recording of the signature (as a
    /// shape plan's first run makes) allocates nothing new, and the first arena slab releases them.
    func testRecordingRunsShareThePoolAndTheSlabReleasesIt() throws {
        let planner = MemoryPlanner()
        let sig = [7, 7]
        func run() throws {
            let arena = planner.arena(for: sig)
            try RunArena.$current.withValue(arena) {
                for n in [1 << 20, 3 << 20, 1 << 20] { _ = try Tensor.uninitialized(.uint8, [n]) }
            }
            planner.finished(arena, signature: sig)
        }
        try run()
        XCTAssertGreaterThan(planner.pool.statistics.freeBytes, 0, "the recording's buffers wait in the pool")
        planner.forget(sig)
        let s0 = planner.systemAllocations
        try run()
        XCTAssertEqual(planner.systemAllocations - s0, 0, "the second recording reuses the first one's buffers")
        XCTAssertNotNil(planner.pattern(for: sig))
        try run()
        XCTAssertEqual(planner.pool.statistics.freeBytes, 0, "the first slab releases the pool's free buffers")
    }
}

final class AllocateBufferTests: XCTestCase {
    /// Large buffers get their pages populated up front; the memory is aligned and usable either way.
    func testLargeAndSmallBuffersAreAlignedAndWritable() {
        for bytes in [1, 1000, 256 << 10, (3 << 20) + 123] {
            let p = allocateBuffer(byteCount: bytes)
            defer { freeBuffer(p, byteCount: bytes) }
            XCTAssertEqual(Int(bitPattern: p) % 64, 0)
            let b = p.bindMemory(to: UInt8.self, capacity: bytes)
            for i in stride(from: 0, to: bytes, by: 4093) { b[i] = UInt8(truncatingIfNeeded: i) }
            b[bytes - 1] = 7
            for i in stride(from: 0, to: bytes - 1, by: 4093) { XCTAssertEqual(b[i], UInt8(truncatingIfNeeded: i)) }
            XCTAssertEqual(b[bytes - 1], 7)
        }
        // Below the threshold nothing is asked of the kernel.
        let small = allocateBuffer(byteCount: 4096)
        XCTAssertEqual(so_populate(small, 4096, 256 << 10), 0)
        freeBuffer(small, byteCount: 4096)
    }

    /// Large buffers are mappings of their own (Linux) whose pages go back when freed, so the resident
    /// set after freeing is what it was before, which the C allocator does not promise once its
    /// thresholds have risen; small ones come from the allocator. Every size is writable in full.
    func testLargeBuffersAreMappedAndReturned() throws {
        for bytes in [1, 4096, mappedThreshold - 64, mappedThreshold, mappedThreshold + 1, 3 << 20] where bytes < Int.max / 2 {
            let p = allocateBuffer(byteCount: bytes)
            XCTAssertEqual(Int(bitPattern: p) % 64, 0)
            memset(p, 0x5a, bytes)
            XCTAssertEqual(p.load(fromByteOffset: bytes - 1, as: UInt8.self), 0x5a)
            freeBuffer(p, byteCount: bytes)
        }
        #if os(Linux)
        func residentKB() throws -> Int {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
            return try XCTUnwrap(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        }
        // A 16 MB block through malloc and back raises glibc's mmap threshold to 16 MB: through
        // malloc, the 12 MB buffer below would then come from the heap.
        let raise = UnsafeMutableRawPointer.allocate(byteCount: 16 << 20, alignment: 64)
        raise.deallocate()
        let bytes = 12 << 20
        let before = try residentKB()
        let p = allocateBuffer(byteCount: bytes)
        XCTAssertEqual(Int(bitPattern: p) % 4096, 0, "a large buffer is page-aligned: its own mapping")
        memset(p, 1, bytes)
        let during = try residentKB()
        freeBuffer(p, byteCount: bytes)
        let after = try residentKB()
        XCTAssertGreaterThan(during - before, 11 << 10, "12 MB written should be resident")
        XCTAssertLessThan(after - before, 2 << 10, "freeing a large buffer should give its pages back")
        #endif
    }
}
