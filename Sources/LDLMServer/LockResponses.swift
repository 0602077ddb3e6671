import LDLMCore
import LDLMGRPC
import LDLMProtocol

/// Encodes the `ldlm.LDLM` answers, each serialized after room for the gRPC
/// prefix. The prefix is written at once, while the array has one owner: the
/// gRPC layer, which the array reaches shared, then leaves it as it is
/// instead of copying the message to write it.
enum LockResponses {
    static func encoded(_ response: some LDLMMessage) -> [UInt8] {
        var bytes = response.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
        GRPCMessageFraming.writePrefix(into: &bytes)
        return bytes
    }

    static func locked(name: String, _ grant: LockGrant) -> [UInt8] {
        encoded(LockResponse(locked: true, name: name, key: grant.key.description, fencingToken: grant.fencingToken))
    }

    static func lockFailure(name: String, _ failure: LockFailure) -> [UInt8] {
        encoded(LockResponse(locked: false, name: name, error: ldlmError(failure)))
    }

    static func ldlmError(_ failure: LockFailure) -> LDLMError {
        LDLMError(code: errorCode(failure), message: failure.message)
    }

    static func errorCode(_ failure: LockFailure) -> ErrorCode {
        switch failure {
        case .lockDoesNotExist: return .lockDoesNotExist
        case .invalidLockKey: return .invalidLockKey
        case .lockWaitTimeout: return .lockWaitTimeout
        case .lockDoesNotExistOrInvalidKey: return .lockDoesNotExistOrInvalidKey
        case .lockSizeMismatch: return .lockSizeMismatch
        case .invalidLockSize: return .invalidLockSize
        case .invalidArgument, .tooManyLocks, .tooManyWaiters: return .unknown
        }
    }
}
