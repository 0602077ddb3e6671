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
        }
    }
}
