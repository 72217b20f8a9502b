import Foundation

/// A value several threads share, read and changed only inside `withLock`: how every session-wide
/// structure guards its mutable state (budgets, pools, learned memory patterns, prepared weights).
///
/// A pthread mutex (NSLock) rather than `Synchronization.Mutex`: ThreadSanitizer intercepts pthread
/// locks, while Mutex's futex lock lives in the uninstrumented standard library, so every access it
/// guards would be reported as a race. The one `@unchecked Sendable` for shared state: the lock is
/// what makes it safe.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// A copy of the value now.
    var current: Value { withLock { $0 } }
}
