import LDLMProtocol
import NIOCore
import NIOPosix

/// An async LDLM client. Each lock name belongs to one shard; the client
/// keeps one HTTP/2 connection, i.e. one server session, per shard, to its
/// primary, made on first use and again after it drops. Every lock is taken
/// with a lease that the client renews until ``unlock(_:)``; a hold that ends
/// any other way is reported on its ``LockHandle``. After a drop, holds on a
/// shard with replicas are reclaimed on the new primary (see
/// ``Configuration/reclaimGrace``). Safe to use from any task or thread.
public final class LDLMClient: Sendable {
    public let configuration: Configuration
    private let links: [ServerLink]

    public init(configuration: Configuration) throws {
        guard (0..<1).contains(configuration.clockDriftAllowance), configuration.reconnect.attempts >= 1, configuration.reclaimGrace >= .zero else {
            throw LDLMClientError.invalidConfiguration("clockDriftAllowance must be in [0, 1), reconnect.attempts at least 1 and reclaimGrace not negative")
        }
        _ = try Self.leaseSeconds(configuration.lease)
        self.configuration = configuration
        let group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        links = try ConnectionSetup.options(for: configuration).map {
            ServerLink(replicas: $0, backoff: configuration.reconnect, reclaimGrace: TimeAmount(configuration.reclaimGrace), eventLoop: group.next())
        }
    }

    deinit {
        for link in links {
            link.eventLoop.execute { _ = link.close() }
        }
    }

    /// Closes every connection: the servers release their locks, and every
    /// handle reports ``LostReason/connectionLost(_:)``. Later calls throw
    /// ``LDLMClientError/clientClosed``. Releasing the last reference to the
    /// client closes its connections too.
    public func close() async {
        for link in links {
            try? await link.eventLoop.flatSubmit { link.close() }.get()
        }
    }

    /// Waits for the lock, at most `waitTimeout` (whole seconds; nil waits
    /// for ever), and holds it with `lease` (whole seconds; the configured
    /// lease when nil).
    ///
    /// Cancelling the task resets the call (RST_STREAM), so the server
    /// withdraws the request from its queue, and throws `CancellationError`
    /// at once. A grant the server sent just before the reset reached it is
    /// dropped unseen (HTTP/2 ignores a reset stream's frames); the server
    /// sees the reset of a call it had answered and releases that grant.
    public func lock(_ name: String, size: Int32 = 1, waitTimeout: Duration? = nil, lease: Duration? = nil) async throws -> LockHandle {
        try await lock(name, size: size, waitTimeout: waitTimeout, lease: lease, reclaimsAfterDrop: true)
    }

    /// Without `reclaimsAfterDrop` the hold is lost the moment its connection
    /// drops, also with replicas.
    func lock(_ name: String, size: Int32 = 1, waitTimeout: Duration? = nil, lease: Duration? = nil, reclaimsAfterDrop: Bool) async throws -> LockHandle {
        let leaseSeconds = try Self.leaseSeconds(lease ?? configuration.lease)
        let request = LockRequest(
            name: name,
            waitTimeoutSeconds: try waitTimeout.map(Self.waitSeconds),
            lockTimeoutSeconds: leaseSeconds,
            size: size == 1 ? nil : size
        )
        let hold = try await acquire(name, size: size, leaseSeconds: leaseSeconds, reclaimsAfterDrop: reclaimsAfterDrop) { session, done in
            session.connection.lock(request, completion: done)
        }
        guard let hold else { throw LDLMClientError.unknown("server answered locked: false without an error") }
        return hold
    }

    /// Takes the lock if it is free; nil if it is held.
    public func tryLock(_ name: String, size: Int32 = 1, lease: Duration? = nil) async throws -> LockHandle? {
        let leaseSeconds = try Self.leaseSeconds(lease ?? configuration.lease)
        let request = TryLockRequest(name: name, lockTimeoutSeconds: leaseSeconds, size: size == 1 ? nil : size)
        return try await acquire(name, size: size, leaseSeconds: leaseSeconds, reclaimsAfterDrop: true) { session, done in
            session.connection.tryLock(request, completion: done)
        }
    }

    /// Stops renewing and releases the lock. Runs to its end even when the
    /// task is cancelled. Unlocking twice, or a hold whose connection dropped
    /// (the server released it with the session), does nothing.
    public func unlock(_ handle: LockHandle) async throws {
        let keeper = handle.keeper
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            keeper.eventLoop.execute { keeper.release { continuation.resume(with: $0) } }
        }
    }

    /// Releases a hold known only by its name and key, e.g. one another
    /// process took and printed, on a server run with `--no_clear_on_disconnect`
    /// (otherwise it ended with that process's connection). For this client's
    /// own holds use ``unlock(_:)``, which also stops renewing.
    public func unlock(name: String, key: String) async throws {
        let request = UnlockRequest(name: name, key: key)
        let call = PendingCall<UnlockResponse, Void>(
            link: links[Sharding.shard(of: name, shards: links.count)],
            start: { session, done in session.connection.unlock(request, completion: done) },
            complete: { _, response, _ in response.outcome }
        )
        try await call.run(cancellable: false)
    }

    /// Renews now, with `lease` (whole seconds) for this and later renews when given.
    /// The client renews on its own; this is for changing the lease. A
    /// failure ends the hold, except while the hold is being reclaimed after
    /// a drop: then this throws ``LDLMClientError/unavailable(_:)`` and the
    /// hold goes on.
    public func renew(_ handle: LockHandle, lease: Duration? = nil) async throws {
        let keeper = handle.keeper
        let amount = try lease.map { TimeAmount.seconds(Int64(try Self.leaseSeconds($0))) }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            keeper.eventLoop.execute { keeper.renew(lease: amount) { continuation.resume(with: $0) } }
        }
    }

    private func acquire(
        _ name: String,
        size: Int32,
        leaseSeconds: Int32,
        reclaimsAfterDrop: Bool,
        start: @escaping PendingCall<LockResponse, LockHandle?>.Start
    ) async throws -> LockHandle? {
        let lease = TimeAmount.seconds(Int64(leaseSeconds))
        let driftAllowance = configuration.clockDriftAllowance
        let link = links[Sharding.shard(of: name, shards: links.count)]
        let call = PendingCall<LockResponse, LockHandle?>(
            link: link,
            start: start,
            complete: { session, response, sentAt in
                if let error = response.error { return .failure(LDLMClientError(error)) }
                guard response.locked else { return .success(nil) }
                let keeper = LeaseKeeper(
                    name: name,
                    key: response.key,
                    fencingToken: response.fencingToken,
                    link: link,
                    session: session,
                    reclaimsAfterDrop: reclaimsAfterDrop,
                    lease: lease,
                    driftAllowance: driftAllowance,
                    sentAt: sentAt
                )
                keeper.start()
                // go-ldlm sends no token: 0 is "none", never a token of ours.
                return .success(LockHandle(name: name, key: response.key, size: size, fencingToken: response.fencingToken == 0 ? nil : response.fencingToken, keeper: keeper))
            }
        )
        return try await call.run(cancellable: true)
    }

    /// Leases go on the wire in whole seconds: rounded up, at least 1.
    private static func leaseSeconds(_ lease: Duration) throws -> Int32 {
        let seconds = try waitSeconds(lease)
        guard seconds >= 1 else { throw LDLMClientError.invalidArgument("a lease must be at least 1 s") }
        return seconds
    }

    private static func waitSeconds(_ duration: Duration) throws -> Int32 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0, seconds < Int64(Int32.max) else {
            throw LDLMClientError.invalidArgument("\(duration) is not a whole number of seconds the protocol can carry")
        }
        return Int32(seconds) + (attoseconds > 0 ? 1 : 0)
    }
}
