import LDLMCore
import LDLMGRPC
import LDLMProtocol

/// The LDLM RPCs on top of a ``LockTable``: decodes a request, applies it and
/// encodes the answer. Knows nothing of sockets or HTTP/2 streams.
final class LDLMService {
    let table: LockTable
    private let password: [UInt8]?

    /// A hold that a response hands out; undone if the response never arrives.
    struct Grant {
        let name: String
        let key: LockKey
    }

    /// Delivers the reply to a queued `Lock`.
    typealias Completion = (_ reply: [UInt8], _ grant: Grant?) -> Void

    enum Outcome {
        /// The response message, serialized after room for the gRPC prefix.
        case reply([UInt8], grant: Grant?)
        case failure(GRPCStatus)
        /// The call is queued; the completion it made will get its reply later.
        case waiting(WaitTicket)
    }

    init(table: LockTable, password: String?) {
        self.table = table
        self.password = password.map { Array($0.utf8) }
    }

    /// Serves one call. Only a `Lock` that queues calls `makeCompletion`, once,
    /// before this returns; the completion it makes later receives the reply
    /// exactly once, unless the wait is cancelled first. Every other call is
    /// answered in the returned ``Outcome`` and allocates no completion.
    func handle(
        _ request: GRPCRequest,
        session: SessionID,
        makeCompletion: () -> Completion
    ) -> Outcome {
        guard isAuthorized(request) else {
            return .failure(GRPCStatus(.unauthenticated, "invalid or missing password in authorization metadata"))
        }
        do {
            switch request.path {
            case "/ldlm.LDLM/Lock":
                return lock(try LockRequest(serializedBytes: request.message), session: session, makeCompletion: makeCompletion)
            case "/ldlm.LDLM/TryLock":
                return tryLock(try TryLockRequest(serializedBytes: request.message), session: session)
            case "/ldlm.LDLM/Unlock":
                return unlock(try UnlockRequest(serializedBytes: request.message))
            case "/ldlm.LDLM/RefreshLock", "/ldlm.LDLM/Renew":
                return renew(try RenewRequest(serializedBytes: request.message))
            default:
                return .failure(GRPCStatus(.unimplemented, "unknown method \(request.path)"))
            }
        } catch {
            return .failure(GRPCStatus(.invalidArgument, "cannot decode request: \(error)"))
        }
    }

    private func lock(_ request: LockRequest, session: SessionID, makeCompletion: () -> Completion) -> Outcome {
        let name = request.name
        do {
            let attempt = try table.lock(
                name: name,
                size: request.size ?? 1,
                leaseSeconds: request.lockTimeoutSeconds ?? 0,
                waitTimeoutSeconds: request.waitTimeoutSeconds ?? 0,
                session: session
            ) {
                let completion = makeCompletion()
                return { outcome in
                    switch outcome {
                    case .granted(let key):
                        completion(Self.locked(name: name, key: key), Grant(name: name, key: key))
                    case .timedOut:
                        completion(Self.lockFailure(name: name, .lockWaitTimeout(name: name)), nil)
                    }
                }
            }
            switch attempt {
            case .acquired(let key):
                return .reply(Self.locked(name: name, key: key), grant: Grant(name: name, key: key))
            case .queued(let ticket):
                return .waiting(ticket)
            }
        } catch {
            return .reply(Self.lockFailure(name: name, error), grant: nil)
        }
    }

    private func tryLock(_ request: TryLockRequest, session: SessionID) -> Outcome {
        do {
            guard let key = try table.tryLock(
                name: request.name,
                size: request.size ?? 1,
                leaseSeconds: request.lockTimeoutSeconds ?? 0,
                session: session
            ) else {
                return .reply(Self.encoded(LockResponse(locked: false, name: request.name)), grant: nil)
            }
            return .reply(Self.locked(name: request.name, key: key), grant: Grant(name: request.name, key: key))
        } catch {
            return .reply(Self.lockFailure(name: request.name, error), grant: nil)
        }
    }

    private func unlock(_ request: UnlockRequest) -> Outcome {
        do {
            try table.unlock(name: request.name, key: request.key)
            return .reply(Self.encoded(UnlockResponse(unlocked: true, name: request.name)), grant: nil)
        } catch {
            return .reply(Self.encoded(UnlockResponse(unlocked: false, name: request.name, error: Self.ldlmError(error))), grant: nil)
        }
    }

    private func renew(_ request: RenewRequest) -> Outcome {
        do {
            try table.renew(name: request.name, key: request.key, leaseSeconds: request.lockTimeoutSeconds)
            return .reply(Self.encoded(LockResponse(locked: true, name: request.name, key: request.key)), grant: nil)
        } catch {
            return .reply(Self.lockFailure(name: request.name, error), grant: nil)
        }
    }

    /// Serializes a response after room for the gRPC prefix, which the gRPC
    /// layer fills in without copying the message again.
    private static func encoded(_ response: some LDLMMessage) -> [UInt8] {
        response.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
    }

    private static func locked(name: String, key: LockKey) -> [UInt8] {
        Self.encoded(LockResponse(locked: true, name: name, key: key.description))
    }

    private static func lockFailure(name: String, _ failure: LockFailure) -> [UInt8] {
        Self.encoded(LockResponse(locked: false, name: name, error: ldlmError(failure)))
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
        case .invalidArgument: code = .unknown
        }
        return LDLMError(code: code, message: failure.message)
    }

    private func isAuthorized(_ request: GRPCRequest) -> Bool {
        guard let password else { return true }
        guard let presented = request.headers.value(named: "authorization") else { return false }
        return constantTimeEquals(Array(presented.utf8), password)
    }
}

/// Compares without an early exit, so response time does not reveal how much
/// of a guessed password was right.
func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count)
    for index in 0..<max(lhs.count, rhs.count) {
        let left = index < lhs.count ? lhs[index] : 0
        let right = index < rhs.count ? rhs[index] : 0
        difference |= left ^ right
    }
    return difference == 0 && lhs.count == rhs.count
}
