import XCTest
@testable import SwiftONNX

/// The load's page recycler: freed large buffers hand their pages (and their bytes: nothing is
/// copied) to the next buffers, the smallest fitting chunk first, else pieces moved together.
final class PageRecyclerTests: XCTestCase {
    private func fill(_ p: UnsafeMutableRawPointer, _ bytes: Int, _ value: UInt8) {
        p.initializeMemory(as: UInt8.self, repeating: value, count: bytes)
    }

    private func all(_ p: UnsafeMutableRawPointer, _ bytes: Int, _ value: UInt8) -> Bool {
        let b = p.assumingMemoryBound(to: UInt8.self)
        return (0..<bytes).allSatisfy { b[$0] == value }
    }

    func testSmallestFittingChunkFirstAndItsTailStaysFree() throws {
        guard let r = PageRecycler.forLoad() else { throw XCTSkip("page recycling is Linux only") }
        let mb = 1 << 20
        let a = try XCTUnwrap(r.allocate(mb)), b = try XCTUnwrap(r.allocate(2 * mb))
        XCTAssertEqual(r.reusedBytes, 0)
        XCTAssertEqual(Int(bitPattern: a) % 4096, 0)
        fill(a, mb, 1)
        fill(b, 2 * mb, 2)
        r.recycle(b, 2 * mb)
        r.recycle(a, mb)
        // 600 KB fits both: the 1 MB chunk is the smaller, its start is handed out with its bytes
        let c = try XCTUnwrap(r.allocate(600 << 10))
        XCTAssertEqual(c, a)
        XCTAssertTrue(all(c, 600 << 10, 1), "recycled pages keep their bytes: nothing is copied or cleared")
        XCTAssertEqual(r.reusedBytes, PageRecycler.mappedSize(600 << 10))
        // the 424 KB left of it is the smallest chunk that fits 400 KB
        let d = try XCTUnwrap(r.allocate(400 << 10))
        XCTAssertEqual(d, a + PageRecycler.mappedSize(600 << 10))
        fill(c, 600 << 10, 3)
        fill(d, 400 << 10, 4)
        r.recycle(c, 600 << 10)
        r.recycle(d, 400 << 10)
        r.drain()
    }

    func testPiecesMovedTogetherThenFreshPages() throws {
        guard let r = PageRecycler.forLoad() else { throw XCTSkip("page recycling is Linux only") }
        let mb = 1 << 20
        let a = try XCTUnwrap(r.allocate(mb)), b = try XCTUnwrap(r.allocate(2 * mb))
        fill(a, mb, 7)
        fill(b, 2 * mb, 9)
        r.recycle(a, mb)
        r.recycle(b, 2 * mb)
        // 4 MB: no chunk fits, so the largest (b) goes first, then a, then 1 MB of fresh pages
        let c = try XCTUnwrap(r.allocate(4 * mb))
        XCTAssertEqual(r.reusedBytes, 3 * mb)
        XCTAssertTrue(all(c, 2 * mb, 9))
        XCTAssertTrue(all(c + 2 * mb, mb, 7))
        XCTAssertTrue(all(c + 3 * mb, mb, 0), "the missing part is fresh (zero) memory")
        fill(c, 4 * mb, 5)   // all of it is writable
        XCTAssertTrue(all(c, 4 * mb, 5))
        // without a recycler bound, release unmaps; with one bound, the pages go to it
        PageRecycler.$current.withValue(r) { PageRecycler.release(c, 4 * mb) }
        let d = try XCTUnwrap(r.allocate(4 * mb))
        XCTAssertEqual(d, c)
        XCTAssertEqual(r.reusedBytes, 7 * mb)
        PageRecycler.release(d, 4 * mb)
        r.drain()
    }

    /// Pieces that together exceed the request: only the head of the last one is moved in, and its
    /// tail stays free (a move past the new buffer's end would clobber whatever is mapped there).
    func testLastPieceIsSplitToFit() throws {
        guard let r = PageRecycler.forLoad() else { throw XCTSkip("page recycling is Linux only") }
        let mb = 1 << 20
        let a = try XCTUnwrap(r.allocate(2 * mb)), b = try XCTUnwrap(r.allocate(2 * mb))
        fill(a, 2 * mb, 1)
        fill(b, 2 * mb, 2)
        r.recycle(a, 2 * mb)
        r.recycle(b, 2 * mb)
        let c = try XCTUnwrap(r.allocate(3 * mb))   // 2 MB + the first 1 MB of the other
        XCTAssertEqual(r.reusedBytes, 3 * mb)
        let firstValue = c.load(as: UInt8.self), secondValue: UInt8 = firstValue == 1 ? 2 : 1
        XCTAssertTrue(all(c, 2 * mb, firstValue))
        XCTAssertTrue(all(c + 2 * mb, mb, secondValue))
        // the remaining 1 MB is still free, with its bytes
        let d = try XCTUnwrap(r.allocate(mb))
        XCTAssertEqual(r.reusedBytes, 4 * mb)
        XCTAssertTrue(all(d, mb, secondValue))
        fill(c, 3 * mb, 3)
        fill(d, mb, 4)
        XCTAssertTrue(all(c, 3 * mb, 3))
        r.recycle(c, 3 * mb)
        r.recycle(d, mb)
        r.drain()
    }

    /// Buffers made while a recycler is bound are mapped from it (large ones only) and go back to
    /// it; tensors and packed weights made that way hold the values written into them.
    func testKeptBuffersUseTheBoundRecycler() throws {
        guard let r = PageRecycler.forLoad() else { throw XCTSkip("page recycling is Linux only") }
        try PageRecycler.$current.withValue(r) {
            let small = allocateKeptBuffer(byteCount: 1000)
            XCTAssertFalse(small.mapped)
            freeKeptBuffer(small.pointer, byteCount: 1000, mapped: small.mapped)
            var t: Tensor? = try Tensor.zeros(.float32, [1 << 18])   // 1 MiB
            let first = t!.raw
            t = nil
            let w = try Tensor.uninitialized(.float32, [1 << 18])
            XCTAssertEqual(w.raw, first, "the freed tensor's pages went to the recycler and came back")
            let x = (0..<(1 << 18)).map { Float($0 % 97) }
            x.withUnsafeBytes { w.raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            XCTAssertEqual(try w.scalars(as: Float.self), x)
        }
        XCTAssertEqual(r.reusedBytes, 1 << 20)
        r.drain()
    }
}
