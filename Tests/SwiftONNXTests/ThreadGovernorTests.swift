import XCTest
@testable import SwiftONNX

/// The per-session thread governor: runs that got too little CPU for their threads (judged over
/// 100 ms of thread time) make the next runs single-threaded for a while (4 runs, then 8, ... up
/// to 64), then the full count is probed again: blindly, or, where the machine's idle time is
/// known, only once a core was free during the single-threaded stretch.
final class ThreadGovernorTests: XCTestCase {
    private let ms: UInt64 = 1_000_000

    /// A wall clock and a machine idle clock the test moves by hand.
    private final class FakeClocks: @unchecked Sendable {   // @unchecked: the test's one thread
        var wall: UInt64 = 1_000_000_000
        var idle: UInt64 = 5_000_000_000
    }

    func testStaysOnOneThreadWhileNoCoreIsFreeAndProbesWhenOneIs() {
        let c = FakeClocks()
        let g = ThreadGovernor(clock: { c.wall }, idleClock: { c.idle })
        g.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 50 * ms)   // starved: 4 runs on one thread
        for _ in 0..<4 { XCTAssertEqual(g.threads(requested: 2), 1); c.wall += 30 * ms }
        // 120 ms on one thread with 6 ms of idle time on the machine (0.05 cores): no probe, another
        // stretch of 4 runs.
        c.idle += 6 * ms
        XCTAssertEqual((0..<4).map { _ in g.threads(requested: 2) }, [1, 1, 1, 1])
        // A stretch too short to judge (50 ms) stays on one thread even with the machine idle...
        c.wall += 50 * ms
        c.idle += 100 * ms
        XCTAssertEqual(g.threads(requested: 2), 1)
        // ... and once it spans 100 ms with a core idle (150 ms idle over 120 ms), the full count is probed.
        c.wall += 70 * ms
        c.idle += 50 * ms
        XCTAssertEqual(g.threads(requested: 2), 2)
        XCTAssertEqual(g.backoffCount, 1, "the stretches without a free core were not probes")
        // The probe gained from its threads: the governor stays at the full count.
        g.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 95 * ms)
        XCTAssertEqual((0..<3).map { _ in g.threads(requested: 2) }, [2, 2, 2])
    }

    func testBacksOffDoublesAndRecovers() {
        let g = ThreadGovernor(idleClock: nil)
        XCTAssertEqual(g.threads(requested: 2), 2)
        // Two threads that had one core between them: efficiency 0.5.
        g.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 50 * ms)
        XCTAssertEqual((0..<4).map { _ in g.threads(requested: 2) }, [1, 1, 1, 1])
        XCTAssertEqual(g.threads(requested: 2), 2, "then a probe with the full count")
        g.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 55 * ms)   // 0.55: still starved
        XCTAssertEqual((0..<8).filter { _ in g.threads(requested: 2) == 1 }.count, 8)
        XCTAssertEqual(g.threads(requested: 2), 2)
        // A run that gained from its threads (1.8x: its CPU time at least the 1-thread time).
        g.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 90 * ms)
        XCTAssertEqual(g.threads(requested: 2), 2)
        g.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 50 * ms)
        XCTAssertEqual((0..<5).map { _ in g.threads(requested: 2) }, [1, 1, 1, 1, 2], "back to 4 runs after a good run")
        XCTAssertEqual(g.backoffCount, 3)
    }

    /// Short runs are judged together: 10 ms runs on 2 threads, one starved (its helper's time not
    /// counted yet) among good ones, do not back off; a window of starved ones does.
    func testShortRunsAreJudgedTogether() {
        let g = ThreadGovernor(idleClock: nil)
        g.record(threads: 2, wallNanos: 10 * ms, cpuNanos: 8 * ms)   // 0.4 alone
        for _ in 0..<4 { g.record(threads: 2, wallNanos: 10 * ms, cpuNanos: 19 * ms) }
        XCTAssertEqual(g.threads(requested: 2), 2)
        XCTAssertEqual(g.backoffCount, 0)
        for _ in 0..<5 { g.record(threads: 2, wallNanos: 10 * ms, cpuNanos: 10 * ms) }
        XCTAssertEqual(g.threads(requested: 2), 1)
        XCTAssertEqual(g.backoffCount, 1)
    }

    func testIgnoresShortRunsSingleThreadRunsAndCapsTheBackOff() {
        let g = ThreadGovernor(idleClock: nil)
        g.record(threads: 2, wallNanos: ThreadGovernor.minRunNanos - 1, cpuNanos: 0)   // too short to judge
        g.record(threads: 1, wallNanos: 50 * ms, cpuNanos: 1 * ms)                      // nothing to gain
        XCTAssertEqual(g.threads(requested: 2), 2)
        XCTAssertEqual(g.threads(requested: 1), 1)
        for _ in 0..<10 {
            g.record(threads: 4, wallNanos: 25 * ms, cpuNanos: 25 * ms)   // efficiency 0.25
            var single = 0
            while g.threads(requested: 4) == 1 { single += 1 }
            XCTAssertLessThanOrEqual(single, ThreadGovernor.maxSingleRuns)
        }
        g.record(threads: 4, wallNanos: 25 * ms, cpuNanos: 25 * ms)
        XCTAssertEqual((0..<ThreadGovernor.maxSingleRuns).filter { _ in g.threads(requested: 4) == 1 }.count,
                       ThreadGovernor.maxSingleRuns)
        XCTAssertEqual(g.threads(requested: 4), 4)
    }

    /// Runs of a session with 2 threads give the same bits whichever count the governor picks.
    func testRunsOnEitherCountMatch() throws {
        let s1 = try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"), options: .init(threads: 1))
        let s2 = try InferenceSession(contentsOf: resource("conv_bn_relu.onnx"), options: .init(threads: 2))
        let x = try loadPB("conv_bn_relu_input.pb")
        let name = s1.inputs[0].name
        let want = try s1.run([name: x])
        // Force the single-threaded path, then the full count.
        s2.governor.record(threads: 2, wallNanos: 50 * ms, cpuNanos: 50 * ms)
        for _ in 0..<6 {
            let got = try s2.run([name: x])
            for (k, v) in want { XCTAssertEqual(try got[k]!.scalars(as: Float.self), try v.scalars(as: Float.self)) }
        }
    }
}
