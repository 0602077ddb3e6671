import LDLMGRPC
import LDLMProtocol

/// Everything ``LDLMClient`` and ``LDLMAdmin`` throw, besides `CancellationError` for a
/// cancelled `lock` or `tryLock`.
public indirect enum LDLMClientError: Error, Equatable, Sendable {
    // The server's LDLM error codes (`ErrorCode` in ldlm.proto), each with the
    // server's message: the call reached the server and it said no.
    case unknown(String)
    case lockDoesNotExist(String)
    case invalidLockKey(String)
    case lockWaitTimeout(String)
    case notLocked(String)
    case lockDoesNotExistOrInvalidKey(String)
    case lockSizeMismatch(String)
    case invalidLockSize(String)

    // The transport: gRPC statuses other than OK.
    /// Wrong or missing password (or admin password).
    case unauthenticated(String)
    /// The admin service refused this connection: not the Unix socket, and
    /// neither an admin password nor a listed client certificate.
    case permissionDenied(String)
    /// An admin call named a lock, key or session the server does not have.
    case notFound(String)
    /// The server could not be reached, the connection dropped during the
    /// call, or the server is shutting down.
    case unavailable(String)
    case deadlineExceeded(String)
    /// Any other gRPC status, by its code number.
    case rpcFailed(code: Int, message: String)

    // The client itself.
    case invalidConfiguration(String)
    /// Refused by the client, or by the server as gRPC INVALID_ARGUMENT
    /// (e.g. a force-unlock key start that names several holders).
    case invalidArgument(String)
    /// The handle's hold ended before this call: there is nothing left to renew.
    case lockLost(LostReason)
    /// ``LDLMClient/close()`` was called.
    case clientClosed
}

extension LDLMClientError {
    init(_ error: LDLMError) {
        switch error.code {
        case .unknown: self = .unknown(error.message)
        case .lockDoesNotExist: self = .lockDoesNotExist(error.message)
        case .invalidLockKey: self = .invalidLockKey(error.message)
        case .lockWaitTimeout: self = .lockWaitTimeout(error.message)
        case .notLocked: self = .notLocked(error.message)
        case .lockDoesNotExistOrInvalidKey: self = .lockDoesNotExistOrInvalidKey(error.message)
        case .lockSizeMismatch: self = .lockSizeMismatch(error.message)
        case .invalidLockSize: self = .invalidLockSize(error.message)
        }
    }

    init(_ status: GRPCStatus) {
        switch status.code {
        case .unauthenticated: self = .unauthenticated(status.message)
        case .permissionDenied: self = .permissionDenied(status.message)
        case .notFound: self = .notFound(status.message)
        case .invalidArgument: self = .invalidArgument(status.message)
        case .unavailable: self = .unavailable(status.message)
        case .deadlineExceeded: self = .deadlineExceeded(status.message)
        default: self = .rpcFailed(code: status.code.rawValue, message: status.message)
        }
    }
}

extension LDLMClientError: CustomStringConvertible {
    /// One line: what went wrong, then the server's or the transport's message.
    public var description: String {
        switch self {
        case .unknown(let message): return "server error: \(message)"
        case .lockDoesNotExist(let message): return "lock does not exist: \(message)"
        case .invalidLockKey(let message): return "invalid lock key: \(message)"
        case .lockWaitTimeout(let message): return "timed out waiting for the lock: \(message)"
        case .notLocked(let message): return "not locked: \(message)"
        case .lockDoesNotExistOrInvalidKey(let message): return "lock does not exist or invalid key: \(message)"
        case .lockSizeMismatch(let message): return "lock size mismatch: \(message)"
        case .invalidLockSize(let message): return "invalid lock size: \(message)"
        case .unauthenticated(let message): return "unauthenticated: \(message)"
        case .permissionDenied(let message): return "permission denied: \(message)"
        case .notFound(let message): return "not found: \(message)"
        case .unavailable(let message): return "unavailable: \(message)"
        case .deadlineExceeded(let message): return "deadline exceeded: \(message)"
        case .rpcFailed(let code, let message): return "gRPC status \(code): \(message)"
        case .invalidConfiguration(let message): return "invalid configuration: \(message)"
        case .invalidArgument(let message): return "invalid argument: \(message)"
        case .lockLost(let reason): return "lock lost: \(reason)"
        case .clientClosed: return "client closed"
        }
    }
}

extension LDLMClientError {
    /// The server's answer to an unlock or renew: it holds nothing under
    /// that name and key.
    var saysNothingIsHeld: Bool {
        switch self {
        case .lockDoesNotExist, .invalidLockKey, .notLocked, .lockDoesNotExistOrInvalidKey: return true
        default: return false
        }
    }
}
