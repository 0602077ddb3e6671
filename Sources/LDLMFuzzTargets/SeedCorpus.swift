import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol

/// The committed seed corpus (`fuzz/corpus/<target>/<name>`), made from real
/// requests so that the fuzzer starts from inputs that get deep.
package enum SeedCorpus {
    package static let targets: [String: [String: [UInt8]]] = [
        "server-connection": serverConnectionSeeds(),
        "message-decoding": messageDecodingSeeds(),
    ]

    /// What an HTTP/2 client sends: preface, SETTINGS, then the calls.
    private static func serverConnectionSeeds() -> [String: [UInt8]] {
        [
            "preface-only": clientBytes { _ in },
            "lock": clientBytes { $0.ldlm("Lock", LockRequest(name: "a")) },
            "lock-with-lease-and-deadline": clientBytes {
                $0.ldlm("Lock", LockRequest(name: "a", waitTimeoutSeconds: 5, lockTimeoutSeconds: 30, size: 2), metadata: [HTTP2Header("grpc-timeout", "2S")])
            },
            "lock-twice-then-wait": clientBytes {
                $0.ldlm("Lock", LockRequest(name: "a"))
                $0.ldlm("Lock", LockRequest(name: "a", waitTimeoutSeconds: 10))
            },
            "try-lock-unlock-renew": clientBytes {
                $0.ldlm("TryLock", TryLockRequest(name: "b", lockTimeoutSeconds: 10))
                $0.ldlm("Unlock", UnlockRequest(name: "b", key: "not-the-key"))
                $0.ldlm("Renew", RenewRequest(name: "b", key: "not-the-key", lockTimeoutSeconds: 20))
            },
            "admin-calls": clientBytes {
                $0.ldlm("Lock", LockRequest(name: "c"))
                $0.admin("ListLocks", AdminListLocksRequest())
                $0.admin("ListSessions", AdminListSessionsRequest())
                $0.admin("ForceUnlock", AdminForceUnlockRequest(name: "c"))
                $0.admin("EndSession", AdminEndSessionRequest(sessionID: 1))
            },
            "unknown-method-and-ping": clientBytes {
                $0.ldlm("NoSuchMethod", LockRequest(name: "d"))
                try? $0.http2.sendPing()
            },
        ]
    }

    private static func messageDecodingSeeds() -> [String: [UInt8]] {
        let holder = AdminHolder(keyPrefix: "6f1c", sessionID: 3, remoteAddress: "127.0.0.1:4000", leaseRemainingMilliseconds: 1_500, fencingToken: 9)
        let session = AdminSession(id: 3, remoteAddress: "127.0.0.1:4000", clientIdentity: "CN=a", locksHeld: 1, waitingCalls: 2, connectedSinceUnixMilliseconds: 1_700_000_000_000)
        let seeds: [String: [UInt8]] = [
            "lock-request": MessageDecodingFuzzTarget.input(for: LockRequest(name: "a", waitTimeoutSeconds: 5, lockTimeoutSeconds: 30, size: 2)),
            "try-lock-request": MessageDecodingFuzzTarget.input(for: TryLockRequest(name: "a", lockTimeoutSeconds: 0, size: 1)),
            "unlock-request": MessageDecodingFuzzTarget.input(for: UnlockRequest(name: "a", key: "6f1c1f5e-key")),
            "renew-request": MessageDecodingFuzzTarget.input(for: RenewRequest(name: "a", key: "6f1c1f5e-key", lockTimeoutSeconds: 60)),
            "lock-response": MessageDecodingFuzzTarget.input(for: LockResponse(locked: false, name: "a", key: "k", error: LDLMError(code: .lockWaitTimeout, message: "timed out"), fencingToken: 7)),
            "unlock-response": MessageDecodingFuzzTarget.input(for: UnlockResponse(unlocked: true, name: "a")),
            "admin-list-locks-request": MessageDecodingFuzzTarget.input(for: AdminListLocksRequest()),
            "admin-list-sessions-request": MessageDecodingFuzzTarget.input(for: AdminListSessionsRequest()),
            "admin-force-unlock-request": MessageDecodingFuzzTarget.input(for: AdminForceUnlockRequest(name: "a", key: "6f1c")),
            "admin-end-session-request": MessageDecodingFuzzTarget.input(for: AdminEndSessionRequest(sessionID: 3)),
            "admin-list-locks-response": MessageDecodingFuzzTarget.input(for: AdminListLocksResponse(locks: [AdminLock(name: "a", size: 2, holders: [holder], waiters: 1)])),
            "admin-list-sessions-response": MessageDecodingFuzzTarget.input(for: AdminListSessionsResponse(sessions: [session])),
            "admin-force-unlock-response": MessageDecodingFuzzTarget.input(for: AdminForceUnlockResponse(released: 1)),
            "admin-end-session-response": MessageDecodingFuzzTarget.input(for: AdminEndSessionResponse(releasedLocks: 2)),
        ]
        return seeds
    }

    private static func clientBytes(_ calls: (SeedClient) -> Void) -> [UInt8] {
        let client = SeedClient()
        calls(client)
        var bytes: [UInt8] = []
        do {
            try client.http2.drainOutput { bytes.append(contentsOf: $0) }
        } catch {
            fatalError("a seed's client could not send: \(error)")
        }
        return bytes
    }
}

/// An HTTP/2 client whose calls become seed bytes.
private final class SeedClient {
    let http2: HTTP2Connection

    init() {
        do {
            http2 = try HTTP2Connection(role: .client)
        } catch {
            fatalError("no HTTP/2 client for the seeds: \(error)")
        }
    }

    func ldlm(_ method: String, _ message: some LDLMMessage, metadata: [HTTP2Header] = []) {
        call("/ldlm.LDLM/\(method)", message, metadata: metadata)
    }

    func admin(_ method: String, _ message: some LDLMMessage) {
        call("/ldlm.admin.v1.Admin/\(method)", message, metadata: [HTTP2Header("authorization", ServerConnectionFuzzTarget.adminPassword)])
    }

    private func call(_ path: String, _ message: some LDLMMessage, metadata: [HTTP2Header]) {
        let headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", path), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ] + metadata
        do {
            _ = try http2.sendRequest(headers: headers, body: GRPCMessageFraming.frame(message.serializedBytes()))
        } catch {
            fatalError("a seed's request could not be sent: \(error)")
        }
    }
}
