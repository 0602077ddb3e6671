/// How long a primary may count on its etcd lease, on a clock that keeps
/// running while the machine sleeps (``bootClockNanoseconds()``).
///
/// etcd keeps a lease for its TTL from when a grant or keepalive reaches its
/// leader, which is after the request was sent: counting from the send is on
/// the safe side. A fifth of the TTL is kept back for the rate at which this
/// clock and etcd's may drift apart. A new etcd leader restarts every lease's
/// TTL, which only lengthens what etcd grants.
public struct PrimacyLease: Sendable {
    private let usableNanoseconds: UInt64
    /// Primacy is not to be relied on from this instant.
    public private(set) var validUntil: UInt64

    /// `sentAt`: when the request that granted the lease was sent.
    public init(ttl: Duration, sentAt: UInt64) {
        let ttlNanoseconds = UInt64(ttl.components.seconds) * 1_000_000_000 + UInt64(ttl.components.attoseconds / 1_000_000_000)
        usableNanoseconds = ttlNanoseconds - ttlNanoseconds / 5
        validUntil = sentAt + usableNanoseconds
    }

    /// A keepalive sent at `sentAt` was answered with the full TTL.
    public mutating func renewed(sentAt: UInt64) {
        validUntil = max(validUntil, sentAt + usableNanoseconds)
    }

    public func isValid(at now: UInt64) -> Bool {
        now < validUntil
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// `CLOCK_BOOTTIME`: monotonic, and counting time the machine was suspended,
/// as etcd's clock on another machine does.
public func bootClockNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_BOOTTIME, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
