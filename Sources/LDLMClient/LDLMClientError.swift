import LDLMGRPC
import LDLMProtocol

/// Everything ``LDLMClient`` throws, besides `CancellationError` for a
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
    /// Wrong or missing password.
    case unauthenticated(String)
    /// The server could not be reached, the connection dropped during the
    /// call, or the server is shutting down.
    case unavailable(String)
    case deadlineExceeded(String)
    /// Any other gRPC status, by its code number.
    case rpcFailed(code: Int, message: String)

    // The client itself.
    case invalidConfiguration(String)
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
        case .unavailable: self = .unavailable(status.message)
        case .deadlineExceeded: self = .deadlineExceeded(status.message)
        default: self = .rpcFailed(code: status.code.rawValue, message: status.message)
        }
    }
}
