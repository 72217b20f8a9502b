import Foundation

/// The bytes a session may hold at once: its weights (as loaded, and the packed or transformed
/// forms its kernels prepare) and the tensors of its runs (intermediates, and outputs until the
/// caller lets them go). `SessionOptions.memoryLimit` sets it.
///
/// Every tensor buffer a session allocates is reserved here first, while the session's budget is
/// bound (`MemoryBudget.$current`: during loading and planning, and during each run), and released
/// when the buffer is freed. A reservation that would take the total over the limit throws
/// `ONNXError.memoryLimitExceeded` before anything is allocated, so a model, or an input shape, that
/// would need more fails with an error instead of exhausting the machine. Concurrent runs of one
/// session share the budget. Scratch space of a kernel (blocked GEMM panels, im2col tiles) is
/// bounded by the blocking, not by the model, and is not counted.
final class MemoryBudget: Sendable {
    /// The budget of the session loading, planning or running on this task.
    @TaskLocal static var current: MemoryBudget?

    let limit: Int
    private let used = Locked(0)

    init(limit: Int) { self.limit = max(limit, 0) }

    /// Reserves `bytes`, or throws `memoryLimitExceeded` (its `during` empty: the caller that knows
    /// the node or file fills it in) leaving the budget as it was.
    func reserve(_ bytes: Int) throws {
        guard bytes > 0 else { return }
        let refused: Int? = used.withLock { used in
            let (total, overflow) = used.addingReportingOverflow(bytes)
            if overflow || total > limit { return used }
            used = total
            return nil
        }
        if let inUse = refused {
            throw ONNXError.memoryLimitExceeded(during: "", requested: bytes, inUse: inUse, limit: limit)
        }
    }

    /// Counts `bytes` that exist already in another form (an array a tensor is built from), over the limit or not.
    func charge(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.withLock { $0 = $0 &+ bytes }
    }

    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.withLock { $0 -= bytes }
    }

    /// Bytes reserved now.
    var inUse: Int { used.withLock { $0 } }

    /// Reserves `bytes` in the bound budget, if any: what a buffer of that size needs before it is allocated.
    static func reserveCurrent(_ bytes: Int) throws -> MemoryBudget? {
        guard let b = current else { return nil }
        try b.reserve(bytes)
        return b
    }

    /// `charge`s `bytes` in the bound budget, if any.
    static func chargeCurrent(_ bytes: Int) -> MemoryBudget? {
        guard let b = current else { return nil }
        b.charge(bytes)
        return b
    }

    /// Physical memory of this machine, in bytes.
    static var physicalMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }
}

extension ONNXError {
    /// The same error with `during` filled in, if it is a memory-limit error that does not say yet where it happened.
    func memoryLimit(during: String) -> ONNXError {
        if case let .memoryLimitExceeded(d, requested, inUse, limit) = self, d.isEmpty {
            return .memoryLimitExceeded(during: during, requested: requested, inUse: inUse, limit: limit)
        }
        return self
    }
}

/// "1.5 GiB (1610612736 bytes)".
func describeBytes(_ n: Int) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    if u == 0 { return "\(n) bytes" }
    return String(format: "%.1f %@ (%ld bytes)", v, units[u], n)
}
