/// A deliberate bug the server can be started with (`--debug_fault NAME`), so
/// that a checker such as `bench/chaos.py` can show it catches that bug. For
/// testing only: the server logs a warning at start while any is on.
public enum DebugFault: String, CaseIterable, Sendable {
    /// Grants a lock that is already full (while nobody is queued for it).
    case skipSizeCheck = "skip_size_check"
    /// Answers grants before their state-file record is synced.
    case acknowledgeBeforeSync = "ack_before_sync"
}
