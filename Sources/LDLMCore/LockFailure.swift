/// Why a lock operation did nothing. Each case maps to one LDLM `ErrorCode`.
public enum LockFailure: Error, Equatable, Sendable {
    /// Unlock of a name that has no live lock.
    case lockDoesNotExist(name: String)
    /// Unlock with a key that holds no slot of the named lock.
    case invalidLockKey(name: String)
    /// A `Lock` waited its whole `wait_timeout_seconds`.
    case lockWaitTimeout(name: String)
    /// Renew of a name/key pair that holds nothing.
    case lockDoesNotExistOrInvalidKey(name: String)
    /// The live lock was created with another size.
    case lockSizeMismatch(name: String, lockSize: Int32, requestedSize: Int32)
    /// A size below 1.
    case invalidLockSize(Int32)
    /// A request field out of range: empty or oversized name, negative timeout.
    case invalidArgument(String)
    /// Creating the lock `name` would exceed the table's lock count limit.
    case tooManyLocks(name: String, limit: Int)
    /// Queueing on `name` would exceed its limit of waiting calls.
    case tooManyWaiters(name: String, limit: Int)

    /// A server limit, not a mistake of the request: answered with a gRPC
    /// RESOURCE_EXHAUSTED status rather than an LDLM error.
    public var isResourceExhausted: Bool {
        switch self {
        case .tooManyLocks, .tooManyWaiters: return true
        default: return false
        }
    }

    /// A sentence for the `Error.message` field.
    public var message: String {
        switch self {
        case .lockDoesNotExist(let name):
            return "lock \"\(name)\" does not exist"
        case .invalidLockKey(let name):
            return "invalid key for lock \"\(name)\""
        case .lockWaitTimeout(let name):
            return "timed out waiting for lock \"\(name)\""
        case .lockDoesNotExistOrInvalidKey(let name):
            return "lock \"\(name)\" does not exist or the key is invalid"
        case .lockSizeMismatch(let name, let lockSize, let requestedSize):
            return "lock \"\(name)\" has size \(lockSize), request asked for size \(requestedSize)"
        case .invalidLockSize(let size):
            return "invalid lock size \(size): size must be at least 1"
        case .invalidArgument(let message):
            return message
        case .tooManyLocks(let name, let limit):
            return "cannot create lock \"\(name)\": the server already has \(limit) locks, its limit (max_locks)"
        case .tooManyWaiters(let name, let limit):
            return "cannot wait for lock \"\(name)\": \(limit) calls already wait for it, the server's limit (max_waiters)"
        }
    }
}
