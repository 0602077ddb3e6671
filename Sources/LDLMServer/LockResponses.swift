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
        let code: ErrorCode
        switch failure {
        case .lockDoesNotExist: code = .lockDoesNotExist
        case .invalidLockKey: code = .invalidLockKey
        case .lockWaitTimeout: code = .lockWaitTimeout
        case .lockDoesNotExistOrInvalidKey: code = .lockDoesNotExistOrInvalidKey
        case .lockSizeMismatch: code = .lockSizeMismatch
        case .invalidLockSize: code = .invalidLockSize
        case .invalidArgument, .tooManyLocks, .tooManyWaiters: code = .unknown
        }
        return LDLMError(code: code, message: failure.message)
    }
}
