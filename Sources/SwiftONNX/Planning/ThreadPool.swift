import CKernels
import Foundation

/// One process-wide pool of worker threads that sleep on a condition variable. Every heavy kernel
/// splits its work with `parallelFor(count, threads:)`: the caller runs items too, and at most
/// `threads - 1` workers help, so each session gets the thread count it asked for even when several
/// sessions with different counts run at once.
///
/// A worker that runs out of work watches for the next job for a short, bounded while (`spinLimit`
/// pause hints, some tens of microseconds) before it sleeps, and the caller likewise watches for its
/// helpers to finish before it sleeps: a model's ops follow each other within microseconds, and a
/// sleep/wake pair through the kernel costs more than a small op's work (on PP-OCR's detector,
/// 2 threads were slower than 1 without it). The wait is bounded, so an idle or busy machine loses
/// at most that much CPU per job; there is no unbounded spinning.
final class ThreadPool: @unchecked Sendable {
    static let shared = ThreadPool(workers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1))

    private final class Job {
        let body: (Int) -> Void
        let count: Int
        var next = 0
        var running = 0      // helpers inside the job
        var tickets: Int     // helpers still allowed to join
        init(body: @escaping (Int) -> Void, count: Int, tickets: Int) {
            self.body = body
            self.count = count
            self.tickets = tickets
        }
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
        cond.lock()
        while true {
            if jobs.isEmpty {
                // Watch for the next job for a bounded while before sleeping.
                let seen = so_atomic_load(posted)
                cond.unlock()
                var spins = 0
                while spins < Self.spinLimit && so_atomic_load(posted) == seen {
                    so_cpu_relax()
                    spins += 1
                }
                cond.lock()
            }
            while jobs.isEmpty { cond.wait() }
            let job = jobs[0]
            job.tickets -= 1
            if job.tickets <= 0 { jobs.removeFirst() }
            job.running += 1
            while job.next < job.count {
                let i = job.next
                job.next += 1
                cond.unlock()
                job.body(i)
                cond.lock()
            }
            job.running -= 1
            if job.running == 0 { cond.broadcast() }
        }
    }

    /// Runs body(0..<count), on the caller and up to threads - 1 workers; returns when all are done.
    func run(_ count: Int, threads: Int, _ body: @escaping (Int) -> Void) {
        if count <= 0 { return }
        let helpers = min(threads - 1, count - 1, workerCount)
        if helpers <= 0 {
            for i in 0..<count { body(i) }
            return
        }
        let job = Job(body: body, count: count, tickets: helpers)
        cond.lock()
        startWorkers()
        jobs.append(job)
        so_atomic_add(posted, 1)
        cond.broadcast()
        while job.next < job.count {
            let i = job.next
            job.next += 1
            cond.unlock()
            body(i)
            cond.lock()
        }
        // Helpers that never joined will not: withdraw the job, then wait for those inside it.
        if let idx = jobs.firstIndex(where: { $0 === job }) { jobs.remove(at: idx) }
        // Helpers still inside finish their last item soon: watch before sleeping.
        var spins = 0
        while job.running > 0 && spins < Self.spinLimit {
            cond.unlock()
            for _ in 0..<16 { so_cpu_relax() }
            spins += 16
            cond.lock()
        }
        while job.running > 0 { cond.wait() }
        cond.unlock()
    }
}

/// Runs body(i) for i in 0..<count on up to `threads` threads (the caller included).
@inline(__always)
func parallelFor(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    if threads <= 1 || count <= 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { b in
        ThreadPool.shared.run(count, threads: threads, b)
    }
}
