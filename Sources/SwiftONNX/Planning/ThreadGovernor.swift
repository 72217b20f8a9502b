import CKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Picks the thread count of each run of a session: `SessionOptions.threads`, or 1 while the
/// machine leaves the session's threads too little CPU to gain from them.
///
/// With other processes keeping the cores busy (or, on a virtual machine, the host taking the
/// second vCPU away), the scheduler gives each runnable thread an equal share: two threads of a
/// run then get about one core between them, and wait for each other at every op, so a run was
/// up to twice as slow on 2 threads as on 1 (PP-OCRv4 det beside two busy processes). After each
/// run of at least `minRunNanos`, the governor adds the process's CPU time over the run and what
/// the threads could have used (wall time x threads); once `windowNanos` of the latter are
/// collected it compares the two. Below `minEfficiency` the next runs use one thread (4 runs,
/// doubling after every further such judgement up to `maxSingleRuns`). A run that gains at least
/// 1.2x from its threads always has an efficiency of at least 0.6 (its CPU time is at least the
/// one-thread time), so on a machine with free cores nothing changes.
///
/// When those single-threaded runs are over, the full count is tried again only if a core was
/// free meanwhile: the machine's idle time (`/proc/stat`, all CPUs) over the single-threaded
/// stretch, once it spans `windowNanos` of wall time, must be at least `minFreeCores` cores. While
/// the other work goes on, the session so stays on one thread without paying a slow probe run
/// every few runs (ResNet-50 beside two busy processes: 4 of 30 runs were such probes); when it
/// ends, the next decision sees the idle core. Where the idle time cannot be read, the full count
/// is probed blindly after each stretch, as above.
final class ThreadGovernor: Sendable {
    static let minEfficiency = 0.6
    static let minRunNanos: UInt64 = 1_000_000
    static let maxSingleRuns = 64
    /// Runs are judged together until their thread-time capacity (wall x threads) reaches this:
    /// the process CPU clock counts a thread running on another core only at its scheduler ticks
    /// (up to 4 ms late), so one short run alone would be misjudged.
    static let windowNanos = 100_000_000.0
    /// Idle cores (idle CPU time over wall time) a single-threaded stretch must have seen for the
    /// full count to be tried again.
    static let minFreeCores = 0.5

    private struct State {
        var singleRunsLeft = 0
        var backoff = 0
        /// Runs that backed off, for tests and diagnostics.
        var backoffs = 0
        /// Thread-time capacity (wall x threads) and CPU time of the runs not judged yet.
        var windowWall = 0.0
        var windowCPU = 0.0
        /// Start of the current single-threaded stretch: wall clock and machine idle time (ns).
        var idleMark: (wall: UInt64, idle: UInt64)? = nil
    }
    private let state = Locked(State())
    private let clock: @Sendable () -> UInt64
    private let idleClock: (@Sendable () -> UInt64?)?

    /// - Parameters:
    ///   - clock: wall time in ns (monotonic).
    ///   - idleClock: the machine's idle time so far in ns, summed over CPUs (nil: unknown); nil
    ///     to probe blindly.
    init(clock: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds },
         idleClock: (@Sendable () -> UInt64?)? = ThreadGovernor.machineIdleNanos) {
        self.clock = clock
        self.idleClock = idleClock
    }

    /// `/proc/stat`'s idle time, or nil where it cannot be read.
    @Sendable static func machineIdleNanos() -> UInt64? {
        let v = so_machine_idle_ns()
        return v >= 0 ? UInt64(v) : nil
    }

    /// The threads for the next run.
    func threads(requested: Int) -> Int {
        guard requested > 1 else { return requested }
        return state.withLock { st in
            if st.singleRunsLeft > 0 { st.singleRunsLeft -= 1; return 1 }
            guard let mark = st.idleMark else { return requested }
            guard let idle = idleClock?(), idle >= mark.idle else { st.idleMark = nil; return requested }
            let now = clock()
            let wall = now &- mark.wall
            if now < mark.wall || Double(wall) < Self.windowNanos { return 1 }   // too short a stretch to tell yet
            if Double(idle - mark.idle) / Double(wall) >= Self.minFreeCores {
                st.idleMark = nil
                return requested   // a core was free: probe the full count
            }
            // No core free: another stretch on one thread, without a probe.
            st.idleMark = (now, idle)
            st.singleRunsLeft = max(st.backoff - 1, 0)
            return 1
        }
    }

    /// A run on `threads` threads took `wallNanos` and the process `cpuNanos` of CPU time meanwhile.
    func record(threads: Int, wallNanos: UInt64, cpuNanos: UInt64) {
        guard threads > 1, wallNanos >= Self.minRunNanos else { return }
        state.withLock { st in
            st.windowWall += Double(wallNanos) * Double(threads)
            st.windowCPU += Double(cpuNanos)
            guard st.windowWall >= Self.windowNanos else { return }
            let efficiency = st.windowCPU / st.windowWall
            st.windowWall = 0
            st.windowCPU = 0
            if efficiency < Self.minEfficiency {
                st.backoff = min(max(2 * st.backoff, 4), Self.maxSingleRuns)
                st.singleRunsLeft = st.backoff
                st.backoffs += 1
                if let idle = idleClock?() { st.idleMark = (clock(), idle) }
            } else {
                st.backoff = 0
                st.idleMark = nil
            }
        }
    }

    var backoffCount: Int { state.withLock { $0.backoffs } }

    /// CPU time of the whole process so far (all threads), in ns.
    static func processCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
