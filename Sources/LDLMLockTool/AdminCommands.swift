import ArgumentParser
import Foundation
import GoDuration
import LDLMClient

/// Runs one admin call on its own connection, closed afterwards.
private func withAdmin<T>(_ root: LDLMLock, _ body: (LDLMAdmin) async throws -> T) async throws -> T {
    let admin = try LDLMAdmin(configuration: root.server.adminConfiguration())
    let result = try await body(admin)
    await admin.close()
    return result
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the server's locks: one row per holder (key prefix, session, address, lease left, fencing token)."
    )

    @ParentCommand var root: LDLMLock

    func run() async throws {
        let locks = try await withAdmin(root) { try await $0.listLocks() }
        Output(json: root.server.json).print(json: locks.map(AdminJSON.lock), table: AdminTables.locks(locks))
    }
}

struct SessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List the server's sessions (client connections)."
    )

    @ParentCommand var root: LDLMLock

    func run() async throws {
        let sessions = try await withAdmin(root) { try await $0.listSessions() }
        Output(json: root.server.json).print(json: sessions.map(AdminJSON.session), table: AdminTables.sessions(sessions))
    }
}

struct ForceUnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "force-unlock",
        abstract: "Release every holder of a lock, or the one whose key starts with KEY.",
        discussion: "A holder learns of it when its next renew fails. `list` shows each holder's key prefix."
    )

    @ParentCommand var root: LDLMLock
    @Argument(help: "The lock's name.") var name: String
    @Argument(help: "A holder's key or its start (the listed prefix will do).") var key: String?

    func run() async throws {
        let released = try await withAdmin(root) { try await $0.forceUnlock(name: name, key: key) }
        Output(json: root.server.json).print(json: ["name": name, "released": released], table: [["RELEASED"], ["\(released)"]])
    }
}

struct EndSessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "end-session",
        abstract: "Close a session's connection and release its locks (also under --no_clear_on_disconnect)."
    )

    @ParentCommand var root: LDLMLock
    @Argument(help: "The session id, as `sessions` lists it.") var id: UInt64

    func run() async throws {
        let released = try await withAdmin(root) { try await $0.endSession(id: id) }
        Output(json: root.server.json).print(json: ["session_id": id, "released_locks": released], table: [["RELEASED LOCKS"], ["\(released)"]])
    }
}

/// The listings as JSON objects, with the admin protocol's field names.
enum AdminJSON {
    static func lock(_ lock: LDLMAdmin.Lock) -> [String: Any] {
        ["name": lock.name, "size": lock.size, "waiters": lock.waiters, "holders": lock.holders.map(holder)]
    }

    static func holder(_ holder: LDLMAdmin.Holder) -> [String: Any] {
        [
            "key_prefix": holder.keyPrefix,
            "session_id": holder.sessionID.map { $0 as Any } ?? NSNull(),
            "remote_address": holder.remoteAddress,
            "client_identity": holder.clientIdentity,
            "lease_remaining_ms": holder.leaseRemaining.map { $0.milliseconds as Any } ?? NSNull(),
            "fencing_token": holder.fencingToken.map { $0 as Any } ?? NSNull(),
        ]
    }

    static func session(_ session: LDLMAdmin.Session) -> [String: Any] {
        [
            "id": session.id,
            "remote_address": session.remoteAddress,
            "client_identity": session.clientIdentity,
            "locks_held": session.locksHeld,
            "waiting_calls": session.waitingCalls,
            "connected_since_unix_ms": session.connectedSinceUnixMilliseconds,
        ]
    }
}

/// The listings as table rows, a header first.
enum AdminTables {
    static func locks(_ locks: [LDLMAdmin.Lock]) -> [[String]] {
        let header = ["NAME", "SIZE", "WAITERS", "KEY", "SESSION", "ADDRESS", "LEASE LEFT", "TOKEN"]
        return [header] + locks.flatMap { lock -> [[String]] in
            let lockCells = [lock.name, "\(lock.size)", "\(lock.waiters)"]
            guard !lock.holders.isEmpty else { return [lockCells + ["-", "-", "-", "-", "-"]] }
            return lock.holders.map { holder in
                lockCells + [
                    holder.keyPrefix,
                    holder.sessionID.map(String.init) ?? "-",
                    holder.remoteAddress.isEmpty ? "-" : holder.remoteAddress,
                    holder.leaseRemaining.map { formatGoDuration(UInt64(clamping: max($0.milliseconds, 0) * 1_000_000)) } ?? "-",
                    holder.fencingToken.map(String.init) ?? "-",
                ]
            }
        }
    }

    static func sessions(_ sessions: [LDLMAdmin.Session]) -> [[String]] {
        let header = ["ID", "ADDRESS", "IDENTITY", "LOCKS", "WAITING", "CONNECTED SINCE"]
        let formatter = ISO8601DateFormatter()
        return [header] + sessions.map { session in
            [
                "\(session.id)",
                session.remoteAddress,
                session.clientIdentity.isEmpty ? "-" : session.clientIdentity,
                "\(session.locksHeld)",
                "\(session.waitingCalls)",
                formatter.string(from: Date(timeIntervalSince1970: Double(session.connectedSinceUnixMilliseconds) / 1000)),
            ]
        }
    }
}

private extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
