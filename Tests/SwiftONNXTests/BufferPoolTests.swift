import XCTest
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

    func testTensorsInsideARunComeFromThePoolAndReturnToIt() {
        let pool = BufferPool()
        XCTAssertNil(BufferPool.current)
        BufferPool.$current.withValue(pool) {
            let t = Tensor.uninitialized(.float32, [10, 10])
            XCTAssertEqual(t.count, 100)
            XCTAssertEqual(pool.statistics.systemAllocations, 1)
        }
        XCTAssertEqual(pool.statistics.freeBytes, BufferPool.sizeClass(400))
        // outside a run: the system allocator
        let u = Tensor(shape: [3], scalars: [Float(1), 2, 3])
        XCTAssertEqual(try u.scalars(as: Float.self), [1, 2, 3])
        XCTAssertEqual(pool.statistics.systemAllocations, 1)
    }
}
