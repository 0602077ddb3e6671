import LDLMCore
import LDLMGRPC
import LDLMProtocol

/// The `ldlm.LDLM` service: decodes each request, applies it through the
/// ``LockManager`` and encodes the answer. Knows nothing of connections.
///
/// With a state file, an answer that tells of a change (a grant, an unlock,
/// a renewal) goes out only once that change is on disk.
final class LockService: RPCService {
    static let name = "ldlm.LDLM"

    let serviceName = LockService.name
    private let manager: LockManager

    init(manager: LockManager) {
        self.manager = manager
    }

    /// The handlers keep the service alive for as long as the router does.
    var methods: [String: RPCMethod] {
        [
            "Lock": { [self] call, makeResponder in call.decoding(LockRequest.self) { lock($0, call, makeResponder) } },
            "TryLock": { [self] call, makeResponder in
                call.decoding(TryLockRequest.self) { manager.durable(tryLock($0, call), makeResponder) }
            },
            "Unlock": { [self] call, makeResponder in call.decoding(UnlockRequest.self) { manager.durable(unlock($0), makeResponder) } },
            // go-ldlm ≤ 1.1 calls it RefreshLock, 1.2 calls it Renew.
            "RefreshLock": { [self] call, makeResponder in
                call.decoding(RenewRequest.self) { manager.durable(renew($0, call), makeResponder) }
            },
            "Renew": { [self] call, makeResponder in call.decoding(RenewRequest.self) { manager.durable(renew($0, call), makeResponder) } },
        ]
    }

    private func lock(_ request: LockRequest, _ call: RPCCall, _ makeResponder: () -> RPCResponder) -> RPCOutcome {
        let name = request.name
        let arguments = LockArguments(
            name: name,
            size: request.size ?? 1,
            leaseSeconds: request.lockTimeoutSeconds ?? 0,
            waitTimeoutSeconds: request.waitTimeoutSeconds ?? 0
        )
        if manager.isDraining {
            return manager.durable(lockWithoutQueueing(arguments, call), makeResponder)
        }
        do {
            var heldGrant: HeldAnswer?
            let attempt = try manager.lock(arguments, session: call.session) {
                let responder = makeResponder()
                // The journal of the moment the call queued: one detached
                // since (a replica stepping down) never records this grant,
                // so it must never answer it either.
                let journal = manager.journal
                let held = journal == nil ? nil : HeldAnswer()
                heldGrant = held
                return { [manager] outcome in
                    switch outcome {
                    case .granted(let grant):
                        let message = LockResponses.locked(name: name, grant)
                        let undo = Self.undo(name: name, key: grant.key, manager)
                        guard let held, let journal else { return responder.reply(message, onUndelivered: undo) }
                        held.hold(message, undo: undo)
                        journal.afterSync { held.deliver(to: responder) }
                    case .timedOut:
                        responder.reply(
                            LockResponses.lockFailure(name: name, .lockWaitTimeout(name: name)), onUndelivered: nil, ldlmError: .lockWaitTimeout
                        )
                    case .withdrawn:
                        responder.fail(Self.shuttingDown)
                    }
                }
            }
            switch attempt {
            case .acquired(let grant):
                let reply = RPCOutcome.reply(LockResponses.locked(name: name, grant), onUndelivered: Self.undo(name: name, key: grant.key, manager))
                return manager.durable(reply, makeResponder)
            case .queued(let ticket):
                return .deferred(cancel: { [manager, heldGrant] in manager.cancelWait(ticket) || heldGrant?.withdraw() == true })
            }
        } catch {
            return failed(error, name: name, call)
        }
    }

    /// While the server drains, a `Lock` is granted at once or not at all.
    private func lockWithoutQueueing(_ arguments: LockArguments, _ call: RPCCall) -> RPCOutcome {
        acquiring(arguments, call) { .failure(Self.shuttingDown) }
    }

    private func tryLock(_ request: TryLockRequest, _ call: RPCCall) -> RPCOutcome {
        let arguments = LockArguments(name: request.name, size: request.size ?? 1, leaseSeconds: request.lockTimeoutSeconds ?? 0)
        return acquiring(arguments, call) {
            .reply(LockResponses.encoded(LockResponse(locked: false, name: request.name)), onUndelivered: nil)
        }
    }

    private func acquiring(_ arguments: LockArguments, _ call: RPCCall, whenTaken: () -> RPCOutcome) -> RPCOutcome {
        do {
            guard let grant = try manager.tryLock(arguments, session: call.session) else { return whenTaken() }
            let undo = Self.undo(name: arguments.name, key: grant.key, manager)
            return .reply(LockResponses.locked(name: arguments.name, grant), onUndelivered: undo)
        } catch {
            return failed(error, name: arguments.name, call)
        }
    }

    /// A server limit is a gRPC RESOURCE_EXHAUSTED status, logged for the
    /// operator; any other failure is an LDLM error in the response.
    private func failed(_ failure: LockFailure, name: String, _ call: RPCCall) -> RPCOutcome {
        guard failure.isResourceExhausted else {
            return .reply(LockResponses.lockFailure(name: name, failure), onUndelivered: nil, ldlmError: LockResponses.errorCode(failure))
        }
        if let limit = failure.limit { manager.metrics?.limitRefused(limit) }
        manager.peer(of: call.session)?.connection.logger.warning("refused lock call over a server limit", metadata: ["error": "\(failure.message)"])
        return .failure(GRPCStatus(.resourceExhausted, failure.message))
    }

    private func unlock(_ request: UnlockRequest) -> RPCOutcome {
        do {
            try manager.unlock(name: request.name, key: request.key)
            return .reply(LockResponses.encoded(UnlockResponse(unlocked: true, name: request.name)), onUndelivered: nil)
        } catch {
            let response = UnlockResponse(unlocked: false, name: request.name, error: LockResponses.ldlmError(error))
            return .reply(LockResponses.encoded(response), onUndelivered: nil, ldlmError: response.error?.code)
        }
    }

    private func renew(_ request: RenewRequest, _ call: RPCCall) -> RPCOutcome {
        do {
            let token = try manager.renew(
                name: request.name, key: request.key, leaseSeconds: request.lockTimeoutSeconds, session: call.session
            )
            let response = LockResponse(locked: true, name: request.name, key: request.key, fencingToken: token)
            return .reply(LockResponses.encoded(response), onUndelivered: nil)
        } catch {
            return .reply(LockResponses.lockFailure(name: request.name, error), onUndelivered: nil, ldlmError: LockResponses.errorCode(error))
        }
    }

    private static let shuttingDown = GRPCStatus(.unavailable, "server is shutting down")

    /// A grant nobody received could never be unlocked by its key: release it.
    private static func undo(name: String, key: LockKey, _ manager: LockManager) -> () -> Void {
        { try? manager.unlock(name: name, key: key.description) }
    }
}
