import Foundation

/// Per-op-type time, collected when SWIFTONNX_PROFILE=1 is set, printed to stderr at exit.
/// Costs nothing when off (one boolean test per step).
enum Profiler {
    static let enabled: Bool = {
        let v = ProcessInfo.processInfo.environment["SWIFTONNX_PROFILE"]
        let on = v == "1" || v == "nodes"
        if on { atexit { Profiler.report() } }
        return on
    }()
    /// SWIFTONNX_PROFILE=nodes: per node instead of per op type.
    static let perNode = ProcessInfo.processInfo.environment["SWIFTONNX_PROFILE"] == "nodes"
    private static let lock = NSLock()
    nonisolated(unsafe) private static var totals: [String: (ns: UInt64, calls: Int)] = [:]

    static func record(_ op: String, ns: UInt64) {
        lock.lock()
        let t = totals[op] ?? (0, 0)
        totals[op] = (t.ns + ns, t.calls + 1)
        lock.unlock()
    }

    static func report() {
        lock.lock()
        defer { lock.unlock() }
        let all = totals.values.reduce(0) { $0 + $1.ns }
        var s = "SwiftONNX profile (op type, total ms, calls, share):\n"
        for (op, t) in totals.sorted(by: { $0.value.ns > $1.value.ns }) {
            let name = op.count < 40 ? op + String(repeating: " ", count: 40 - op.count) : op
            s += name + String(format: " %10.3f ms %8d  %5.1f%%\n", Double(t.ns) / 1e6, t.calls,
                               all > 0 ? 100 * Double(t.ns) / Double(all) : 0)
        }
        FileHandle.standardError.write(Data(s.utf8))
    }
}
