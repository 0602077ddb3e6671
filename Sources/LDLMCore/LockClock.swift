/// The time source of a ``LockTable``.
///
/// The table never reads a system clock itself, so tests drive leases and wait
/// timeouts with a fake clock and get the same result on every run.
public protocol LockClock: AnyObject {
    /// Monotonic time in nanoseconds. Only differences between readings matter.
    var nanosecondsNow: UInt64 { get }
}
