import LDLMCore
import LDLMGRPC
import LDLMProtocol
import Logging

/// The `ldlm.admin.v1.Admin` service: lists the locks and sessions, releases
/// locks by force and ends sessions, through the ``LockManager``. Who may call
/// it is decided before a call gets here (``AdminAccessInterceptor``).
final class AdminService: RPCService {
    static let name = "ldlm.admin.v1.Admin"
    /// How much of a key a listing shows: enough to tell holders apart and to
    /// name one in ForceUnlock, never the key itself, which unlocks.
    static let keyPrefixLength = 8

    let serviceName = AdminService.name
    private let manager: LockManager
    /// The server's: what an administrator changed is worth a line.
    private let logger: Logger

    init(manager: LockManager, logger: Logger) {
        self.manager = manager
        self.logger = logger
    }

    var methods: [String: RPCMethod] {
        [
            "ListLocks": { [self] call, _ in call.decoding(AdminListLocksRequest.self) { _ in listLocks() } },
            "ListSessions": { [self] call, _ in call.decoding(AdminListSessionsRequest.self) { _ in listSessions() } },
            "ForceUnlock": { [self] call, makeResponder in
                call.decoding(AdminForceUnlockRequest.self) { manager.durable(forceUnlock($0), makeResponder) }
            },
            "EndSession": { [self] call, makeResponder in
                call.decoding(AdminEndSessionRequest.self) { manager.durable(endSession($0), makeResponder) }
            },
        ]
    }

    // MARK: Listings

    private func listLocks() -> RPCOutcome {
        let now = manager.nanosecondsNow
        let locks = manager.locks.sorted { $0.name < $1.name }.map { lock in
            AdminLock(
                name: lock.name,
                size: lock.size,
                holders: lock.holders.map { holder($0, now: now) },
                waiters: UInt32(clamping: lock.waiterCount)
            )
        }
        return reply(AdminListLocksResponse(locks: locks))
    }

    private func holder(_ holder: LockInfo.HolderInfo, now: UInt64) -> AdminHolder {
        let peer = holder.session.flatMap(manager.peer)
        return AdminHolder(
            keyPrefix: String(holder.key.description.prefix(Self.keyPrefixLength)),
            sessionID: holder.session?.rawValue ?? 0,
            remoteAddress: peer?.connection.remoteAddress ?? "",
            clientIdentity: peer?.connection.clientIdentity.map { "\($0)" } ?? "",
            leaseRemainingMilliseconds: holder.leaseDeadline.map { Int64(($0 - min($0, now)) / 1_000_000) },
            fencingToken: holder.fencingToken
        )
    }

    private func listSessions() -> RPCOutcome {
        let sessions = manager.sessions.map { session in
            AdminSession(
                id: session.id.rawValue,
                remoteAddress: session.peer.connection.remoteAddress ?? "",
                clientIdentity: session.peer.connection.clientIdentity.map { "\($0)" } ?? "",
                locksHeld: UInt32(clamping: session.locksHeld),
                waitingCalls: UInt32(clamping: session.waitingCalls),
                connectedSinceUnixMilliseconds: session.peer.connectedSinceUnixMilliseconds
            )
        }
        return reply(AdminListSessionsResponse(sessions: sessions))
    }

    // MARK: Actions

    private func forceUnlock(_ request: AdminForceUnlockRequest) -> RPCOutcome {
        do {
            guard !request.key.isEmpty else {
                let released = try manager.forceUnlock(name: request.name)
                logger.notice("admin released a lock by force", metadata: ["name": "\(request.name)", "holders": "\(released)"])
                return reply(AdminForceUnlockResponse(released: UInt32(clamping: released)))
            }
            let key: LockKey
            switch holderKey(of: request.name, startingWith: request.key) {
            case .success(let found): key = found
            case .failure(let status): return .failure(status)
            }
            try manager.unlock(name: request.name, key: key.description)
            logger.notice("admin released a lock by force", metadata: ["name": "\(request.name)", "key_prefix": "\(key.description.prefix(Self.keyPrefixLength))"])
            return reply(AdminForceUnlockResponse(released: 1))
        } catch {
            return .failure(GRPCStatus(.notFound, error.message))
        }
    }

    /// The one holder of `name` whose key starts with `start`, in any case:
    /// a key is hexadecimal, and a listing shows its first characters.
    private func holderKey(of name: String, startingWith start: String) -> Result<LockKey, GRPCStatus> {
        guard let lock = manager.lockInfo(name: name) else {
            return .failure(GRPCStatus(.notFound, LockFailure.lockDoesNotExist(name: name).message))
        }
        let start = start.lowercased()
        let matching = lock.holders.filter { $0.key.description.hasPrefix(start) }
        switch matching.count {
        case 1:
            return .success(matching[0].key)
        case 0:
            return .failure(GRPCStatus(.notFound, "no holder of lock \"\(name)\" has a key starting with \"\(start)\""))
        default:
            return .failure(GRPCStatus(
                .invalidArgument,
                "\(matching.count) holders of lock \"\(name)\" have a key starting with \"\(start)\": give more of the key"
            ))
        }
    }

    private func endSession(_ request: AdminEndSessionRequest) -> RPCOutcome {
        guard let released = manager.endSession(SessionID(rawValue: request.sessionID)) else {
            return .failure(GRPCStatus(.notFound, "session \(request.sessionID) is not open"))
        }
        logger.notice("admin ended a session", metadata: ["session": "\(request.sessionID)", "released_locks": "\(released)"])
        return reply(AdminEndSessionResponse(releasedLocks: UInt32(clamping: released)))
    }

    private func reply(_ response: some LDLMMessage) -> RPCOutcome {
        .reply(LockResponses.encoded(response), onUndelivered: nil)
    }
}
