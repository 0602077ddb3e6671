import LDLMCore
import LDLMGRPC
import LDLMProtocol

/// Encodes the `ldlm.LDLM` answers, each serialized after room for the gRPC
/// prefix, which the gRPC layer fills in without copying the message again.
enum LockResponses {
    static func encoded(_ response: some LDLMMessage) -> [UInt8] {
        response.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
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
