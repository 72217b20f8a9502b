import Foundation

/// One process-wide pool of worker threads that sleep on a condition variable (no spin-waiting).
/// Every heavy kernel splits its work with `parallelFor(count, threads:)`: the caller runs items
/// too, and at most `threads - 1` workers help, so each session gets the thread count it asked
/// for even when several sessions with different counts run at once.
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

    init(workers: Int) { workerCount = workers }

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
