/// Leader election on one lock name: the holder of the lock leads.
///
/// A campaign waits for the lock with a blocking `lock` under ``lease``,
/// leads while the client keeps that lease renewed, steps down the moment the
/// hold is lost (a renew refused, the lease run out here, the connection
/// dropped, also when the shard has replicas: the hold is not reclaimed),
/// and then campaigns again, first unlocking by its key a hold the server
/// may still keep. Each term's fencing token is larger than
/// any earlier term's: pass it to whatever the leader writes to, so that a
/// leader that stepped down without noticing (paused past its lease) is refused.
///
/// ```swift
/// let election = LeaderElection(client: client, name: "scheduler")
/// try await election.withLeadership { token in
///     try await runScheduler(fencingToken: token)  // cancelled when leadership is lost
/// }
/// ```
public final class LeaderElection: Sendable {
    public enum Role: Equatable, Sendable {
        case follower
        /// 0 from a server that sends no fencing tokens (go-ldlm).
        case leader(fencingToken: UInt64)
    }

    public let client: LDLMClient
    public let name: String
    /// The lock's lease: how long a leader that stops renewing (paused,
    /// partitioned) keeps the lock on the server. Whole seconds, at least 1.
    public let lease: Duration
    /// The role changes of the first campaign (``run()`` or
    /// ``withLeadership(_:)``), in order, for one consumer: `.leader` on each
    /// win, `.follower` the moment it is lost. Nothing is reported for the
    /// start (a follower) or for resigning. Finishes when that campaign ends.
    public let roles: AsyncStream<Role>
    private let continuation: AsyncStream<Role>.Continuation

    public init(client: LDLMClient, name: String, lease: Duration = .seconds(10)) {
        self.client = client
        self.name = name
        self.lease = lease
        // Bounded: a caller of `withLeadership` may never read `roles`.
        (roles, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(16))
    }

    /// Campaigns, leads and campaigns again until the task is cancelled;
    /// then resigns (unlocks if leading) and returns. Follow ``roles`` to know
    /// when to lead. Throws errors that campaigning again cannot cure: a wrong
    /// password, the client closed, the name used with another lock size.
    public func run() async throws {
        do {
            try await campaign(body: Body<Void>?.none)
        } catch is CancellationError {}
    }

    /// Campaigns until elected, then runs `body` with the term's fencing token.
    /// When leadership is lost, `body` is cancelled and, once it has returned,
    /// the campaign starts over; `body` should therefore honour cancellation.
    /// When `body` returns or throws, or the task is cancelled, this resigns
    /// and returns the result, or throws.
    public func withLeadership<T: Sendable>(_ body: @escaping @Sendable (UInt64) async throws -> T) async throws -> T {
        try await campaign(body: body)
    }

    /// What a leader runs, given its term's fencing token.
    private typealias Body<T> = @Sendable (UInt64) async throws -> T

    private enum TermEnd<T: Sendable>: Sendable {
        case lost
        case finished(T)
    }

    private func campaign<T: Sendable>(body: Body<T>?) async throws -> T {
        defer { continuation.finish() }
        var dropped: LockHandle?
        while true {
            let handle = try await acquire(after: dropped)
            continuation.yield(.leader(fencingToken: handle.fencingToken ?? 0))
            let end: TermEnd<T>
            do {
                end = try await term(handle, body: body)
            } catch {
                await resign(handle)
                throw error
            }
            await resign(handle)
            if case .finished(let value) = end { return value }
            dropped = handle.lostReason?.mayStillBeHeld == true ? handle : nil
        }
    }

    /// Leads until the hold is lost or `body` (when given) ends.
    private func term<T: Sendable>(_ handle: LockHandle, body: Body<T>?) async throws -> TermEnd<T> {
        try await withThrowingTaskGroup(of: TermEnd<T>.self) { group in
            group.addTask {
                _ = try await handle.waitUntilLost()
                // Said here, not after `body` winds down: watchers of
                // ``roles`` must stop acting as leader at once.
                self.continuation.yield(.follower)
                return .lost
            }
            if let body {
                group.addTask { .finished(try await body(handle.fencingToken ?? 0)) }
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// Waits for the lock; after a connection failure waits a little and
    /// tries again, so that a server that is down is not hammered.
    ///
    /// The hold is not reclaimed after a drop: a leader that cannot prove it
    /// holds the lock must not lead. But the server may still hold the
    /// `dropped` term's lock for nobody (a new primary until its reclaim
    /// grace ends, a server restarted from its state file until the lease
    /// does, a primary that refused the renew UNAVAILABLE while stepping
    /// down), and this campaign would wait for it: it is unlocked by its key
    /// first, on whichever replica is primary now.
    private func acquire(after dropped: LockHandle?) async throws -> LockHandle {
        var dropped = dropped
        var failures = 0
        while true {
            do {
                if let hold = dropped {
                    try await unlockDropped(hold)
                    dropped = nil
                }
                return try await client.lock(name, lease: lease, reclaimsAfterDrop: false)
            } catch let error as LDLMClientError where error.isWorthRetrying {
                failures += 1
                let delay = client.configuration.reconnect.delay(afterFailures: failures)
                try await Task.sleep(for: .nanoseconds(delay.nanoseconds))
            }
        }
    }

    private func unlockDropped(_ hold: LockHandle) async throws {
        do {
            try await client.unlock(name: hold.name, key: hold.key)
        } catch let error as LDLMClientError where error.saysNothingIsHeld {}
    }

    /// Unlocks. Also after a loss: a lease that ran out here may still be
    /// held on the server, where it would keep everyone, this campaign too,
    /// waiting until it ran out there. A failed unlock leaves it to the lease.
    private func resign(_ handle: LockHandle) async {
        try? await client.unlock(handle)
    }
}

extension LostReason {
    /// The hold ended here, but the server (or the primary that took over)
    /// may still keep it for nobody: the connection dropped, or a renew was
    /// refused UNAVAILABLE (by a primary stepping down, or a standby) on a
    /// connection still open. ``resign(_:)``'s unlock on that connection is
    /// refused likewise. Not after a lease that ran out here, which
    /// ``resign(_:)`` unlocked on its still usable connection, nor when the
    /// server said it holds nothing.
    fileprivate var mayStillBeHeld: Bool {
        switch self {
        case .connectionLost, .renewFailed(.unavailable): return true
        case .released, .renewFailed, .leaseExpired: return false
        }
    }
}

extension LDLMClientError {
    /// The server could not be reached or the connection dropped: the next
    /// attempt may succeed.
    fileprivate var isWorthRetrying: Bool {
        switch self {
        case .unavailable, .deadlineExceeded: return true
        default: return false
        }
    }
}
