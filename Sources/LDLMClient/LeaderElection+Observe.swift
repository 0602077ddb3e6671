extension LeaderElection {
    /// Who leads an election, as the server's admin service sees the lock.
    public struct Leader: Equatable, Sendable {
        /// The leader's client certificate names (`CN=... SAN=...`); empty
        /// without mutual TLS.
        public var clientIdentity: String
        /// The leader's connection, `host:port`.
        public var remoteAddress: String
        /// The leader's server session; nil if the server kept the lock after
        /// that session ended.
        public var sessionID: UInt64?
        /// The term's fencing token.
        public var fencingToken: UInt64?
    }

    /// Follows who leads this election without campaigning: yields the leader
    /// (nil while nobody leads) at once and again whenever it changes, as seen
    /// by checking the server every `interval`. A server that cannot be
    /// reached is asked again at the next check; any other failure (no admin
    /// access, say) ends the sequence with that error.
    public func observe(through admin: LDLMAdmin, every interval: Duration = .seconds(1)) -> AsyncThrowingStream<Leader?, Error> {
        let name = self.name
        return AsyncThrowingStream { continuation in
            let polling = Task {
                var last: Leader??
                while !Task.isCancelled {
                    do {
                        let leader = try await Self.currentLeader(of: name, through: admin)
                        if last != .some(leader) {
                            continuation.yield(leader)
                            last = .some(leader)
                        }
                    } catch LDLMClientError.unavailable, LDLMClientError.deadlineExceeded {
                        // Asked again at the next check, like a follower campaigning again.
                    } catch {
                        continuation.finish(throwing: error)
                        return
                    }
                    try? await Task.sleep(for: interval)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in polling.cancel() }
        }
    }

    private static func currentLeader(of name: String, through admin: LDLMAdmin) async throws -> Leader? {
        guard let holder = try await admin.listLocks().first(where: { $0.name == name })?.holders.first else { return nil }
        return Leader(
            clientIdentity: holder.clientIdentity,
            remoteAddress: holder.remoteAddress,
            sessionID: holder.sessionID,
            fencingToken: holder.fencingToken
        )
    }
}
