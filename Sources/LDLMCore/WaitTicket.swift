/// Names one queued `Lock` call so its caller can withdraw it.
public struct WaitTicket: Hashable, Sendable {
    public let rawValue: UInt64
}

/// How a queued `Lock` call ended, delivered once to its outcome handler.
public enum WaitOutcome: Equatable, Sendable {
    case granted(LockGrant)
    case timedOut
    /// The server withdrew the call (it is shutting down); no lock was taken.
    case withdrawn
}

/// The immediate result of ``LockTable/lock(name:size:leaseSeconds:waitTimeoutSeconds:session:makeOutcomeHandler:)``.
public enum LockAttempt: Equatable, Sendable {
    /// Granted at once; no outcome handler was made.
    case acquired(LockGrant)
    /// Queued; the outcome handler made for it is called exactly once unless the wait is cancelled first.
    case queued(WaitTicket)
}
