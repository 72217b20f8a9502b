import CKernels
import Foundation

/// One process-wide pool of worker threads that sleep on a condition variable. Every heavy kernel
/// splits its work with `parallelFor(count, threads:)`: the caller runs items too, and at most
/// `threads - 1` workers help, so each session gets the thread count it asked for even when several
/// sessions with different counts run at once.
///
/// Items are claimed with one atomic add each (no lock per item), so a helper that arrives late, or
/// is preempted by another process, simply leaves the remaining items to the caller.
///
/// A worker that runs out of work watches for the next job for a short, bounded while (`spinLimit`
/// pause hints, some tens of microseconds) before it sleeps, and the caller likewise watches for its
/// helpers to finish before it sleeps: a model's ops follow each other within microseconds, and a
/// sleep/wake pair through the kernel costs more than a small op's work (on PP-OCR's detector,
/// 2 threads were slower than 1 without it). The wait is bounded, so an idle or busy machine loses
/// at most that much CPU per job; there is no unbounded spinning.
final class ThreadPool: @unchecked Sendable {   // @unchecked: state under `cond` (NSCondition, which waits) and atomics on raw counters
    static let shared = ThreadPool(workers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    /// One parallelFor call. The body is reached through a pointer to the caller's stack (the job
    /// never retains it), so a helper still holding the job after the caller returned cannot keep
    /// the caller's closure alive; it can only find that no item is left.
    private final class Job {
        let body: UnsafeRawPointer
        let count: Int
        /// [0]: next item to claim, [1]: items finished.
        let counters = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        var tickets: Int     // helpers still allowed to join (guarded by the pool's lock)
        init(body: UnsafeRawPointer, count: Int, tickets: Int) {
            self.body = body
            self.count = count
            self.tickets = tickets
            counters.initialize(repeating: 0, count: 2)
        }
        deinit { counters.deallocate() }

        /// Claims and runs items until none is left; true when this call finished the last one.
        func work() -> Bool {
            let fn = body.assumingMemoryBound(to: ((Int) -> Void).self)
            var last = false
            while true {
                let i = so_atomic_fetch_add(counters, 1)
                if i >= count { return last }
                fn.pointee(i)
                last = so_atomic_fetch_add(counters + 1, 1) == count - 1
            }
        }
        var finished: Bool { so_atomic_load(counters + 1) >= count }
    }

    private let cond = NSCondition()
    private var jobs: [Job] = []
    private let workerCount: Int
    private var started = false
    /// Bumped (atomically) whenever a job is posted, so spinning workers see it without the lock.
    private let posted = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    /// Pause hints a worker (or a caller waiting for helpers) spends watching before it sleeps.
    static let spinLimit = 4000

    init(workers: Int) {
        workerCount = workers
        posted.initialize(to: 0)
    }

    private func startWorkers() {
        // called with cond locked
        if started { return }
        started = true
        for i in 0..<workerCount {
            let t = Thread { [unowned self] in self.workerLoop() }
            t.name = "swiftonnx-worker-\(i)"
            t.stackSize = 1 << 20
            t.start()
        }
    }

    private func workerLoop() {
        var seen = so_atomic_load(posted)
        while true {
            // Watch for the next job for a bounded while before sleeping.
            var spins = 0
            while spins < Self.spinLimit && so_atomic_load(posted) == seen {
                so_cpu_relax()
                spins += 1
            }
            cond.lock()
            while jobs.isEmpty { cond.wait() }
            let job = jobs[0]
            job.tickets -= 1
            if job.tickets <= 0 { jobs.removeFirst() }
            // Read under the lock: a job posted from now on changes it; one already queued skips the watch.
            seen = jobs.isEmpty ? so_atomic_load(posted) : -1
            cond.unlock()
            if job.work() {
                // This helper finished the last item: the caller may be asleep waiting for it.
                cond.lock()
                cond.broadcast()
                cond.unlock()
            }
        }
    }

    /// Runs body(0..<count), on the caller and up to threads - 1 workers; returns when all are done.
    func run(_ count: Int, threads: Int, _ body: (Int) -> Void) {
        if count <= 0 { return }
        let helpers = min(threads - 1, count - 1, workerCount)
        if helpers <= 0 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var fn = escapable
            withUnsafePointer(to: &fn) { fp in
                let job = Job(body: UnsafeRawPointer(fp), count: count, tickets: helpers)
                cond.lock()
                startWorkers()
                jobs.append(job)
                so_atomic_add(posted, 1)
                cond.broadcast()
                cond.unlock()
                _ = job.work()
                // No item is left to claim: withdraw the job from helpers that have not joined.
                cond.lock()
                if let idx = jobs.firstIndex(where: { $0 === job }) { jobs.remove(at: idx) }
                cond.unlock()
                // Helpers still inside finish their last item soon: watch before sleeping.
                var spins = 0
                while !job.finished && spins < Self.spinLimit {
                    so_cpu_relax()
                    spins += 1
                }
                if !job.finished {
                    cond.lock()
                    while !job.finished { cond.wait() }
                    cond.unlock()
                }
            }
        }
    }
}

/// Runs body(i) for i in 0..<count on up to `threads` threads (the caller included).
@inline(__always)
func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    if threads <= 1 || count <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    ThreadPool.shared.run(count, threads: threads, body)
}
