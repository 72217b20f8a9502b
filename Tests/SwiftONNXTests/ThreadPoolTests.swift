import Foundation
import XCTest
@testable import SwiftONNX

final class ThreadPoolTests: XCTestCase {
    /// Every item runs exactly once, for item counts below, at and above the thread count.
    func testEveryItemRunsOnce() {
        for threads in [1, 2, 3, 8] {
            for count in [0, 1, 2, 3, 7, 64, 1000] {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
                hits.initialize(repeating: 0, count: max(count, 1))
                defer { hits.deallocate() }
                parallelFor(count, threads: threads) { i in hits[i] += 1 }
                XCTAssertEqual((0..<count).filter { hits[$0] != 1 }.count, 0, "count \(count) threads \(threads)")
            }
        }
    }

    /// A parallelFor inside an item (Winograd splits GEMMs inside a block) and many back-to-back jobs
    /// (a model's ops) neither deadlock nor lose items.
    func testNestedAndBackToBackJobs() {
        let sums = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 16)
        sums.initialize(repeating: 0, count: 4 * 16)
        defer { sums.deallocate() }
        for _ in 0..<500 {
            parallelFor(4, threads: 2) { i in
                parallelFor(16, threads: 2) { j in sums[i * 16 + j] += 1 }
            }
        }
        XCTAssertEqual((0..<64).filter { sums[$0] != 500 }.count, 0)
    }

    /// Several callers at once (sessions on different threads), each with its own thread count.
    func testConcurrentCallers() {
        let callers = 4, rounds = 300, items = 24
        let totals = Locked([Int](repeating: 0, count: callers))
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            let local = UnsafeMutablePointer<Int>.allocate(capacity: items)
            defer { local.deallocate() }
            for _ in 0..<rounds {
                local.initialize(repeating: 0, count: items)
                parallelFor(items, threads: 1 + c % 3) { i in local[i] = i + 1 }
                let sum = (0..<items).reduce(0) { $0 + local[$1] }
                totals.withLock { $0[c] += sum }
            }
        }
        for c in 0..<callers { XCTAssertEqual(totals.current[c], rounds * items * (items + 1) / 2, "caller \(c)") }
    }
}
