import NIOCore

extension LDLMClient {
    public struct Configuration: Sendable {
        /// The servers, one entry per shard; a lock name belongs to shard
        /// `crc32(name) % shards.count`. Each shard lists its replicas as
        /// "host:port" ("[::1]:3144" for IPv6): one primary and its standbys,
        /// in any order. The client connects to the one that last answered
        /// as primary, moves on to the next when one cannot be reached, and
        /// follows a standby's `ldlm-primary` hint, even to an address not
        /// listed here.
        public var shards: [[String]]
        /// Sent as `authorization` metadata, as `ldlm-server --password` expects.
        public var password: String?
        /// nil for plaintext.
        public var tls: TLS?
        /// nil turns PINGs off: a frozen server or dead network path is then
        /// noticed only when TCP gives up.
        public var keepalive: Keepalive? = Keepalive()
        /// Bounds TCP connect plus TLS handshake, per attempt.
        public var connectTimeout: Duration = .seconds(5)
        /// Retries of a connection that cannot be made; with several replicas
        /// each attempt tries every one. A call that fails once connected is
        /// never retried, since the server may have acted on it, unless a
        /// standby refused it.
        public var reconnect: Backoff = Backoff()
        /// With several replicas in a shard, how long after a dropped
        /// connection its holds are renewed on the (new) primary, which keeps
        /// them that long for their holder (`ldlm-server --ha_reclaim_grace`,
        /// also 15 s by default). A hold not reclaimed by then, or refused,
        /// is lost; so is one whose lease runs out here first. With one
        /// replica a drop loses the holds at once: the server released them.
        public var reclaimGrace: Duration = .seconds(15)
        /// The lease of every lock unless a call gives its own; whole seconds, at least 1.
        public var lease: Duration = .seconds(30)
        /// The share of a lease the client gives up to clock drift between it
        /// and the server: a hold counts as lost at `sent + lease × (1 − allowance)`.
        public var clockDriftAllowance: Double = 0.1
        /// Where connections and timers run; nil for NIO's shared singleton.
        public var eventLoopGroup: (any EventLoopGroup)?

        public init(shards: [[String]]) {
            self.shards = shards
        }

        /// One server, one shard.
        public init(address: String) {
            self.init(shards: [[address]])
        }
    }

    public struct TLS: Sendable {
        public enum Trust: Sendable {
            case systemRoots
            /// A PEM bundle of the CAs that may sign the server's certificate.
            case caFile(String)
        }

        public var trust: Trust
        /// PEM client certificate chain and key, for servers that require mTLS.
        public var certificateFile: String?
        public var privateKeyFile: String?

        public init(trust: Trust = .systemRoots, certificateFile: String? = nil, privateKeyFile: String? = nil) {
            self.trust = trust
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
        }
    }

    public struct Keepalive: Sendable {
        /// Time between PINGs on each connection.
        public var interval: Duration
        /// A PING not answered within this closes the connection, and every
        /// lock held on it is reported lost.
        public var timeout: Duration

        public init(interval: Duration = .seconds(10), timeout: Duration = .seconds(5)) {
            self.interval = interval
            self.timeout = timeout
        }
    }

    /// Exponential backoff between connection attempts, with ±20% jitter so
    /// clients cut off together do not return together.
    public struct Backoff: Sendable {
        public var initialDelay: Duration
        public var maximumDelay: Duration
        public var multiplier: Double
        /// Connection attempts per call, the first included, each a round of
        /// the shard's replicas; then the call fails with
        /// ``LDLMClientError/unavailable(_:)``.
        public var attempts: Int

        public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(2), multiplier: Double = 2, attempts: Int = 4) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
            self.multiplier = multiplier
            self.attempts = attempts
        }

        /// The wait after `failures` failed attempts (1 or more).
        func delay(afterFailures failures: Int) -> TimeAmount {
            let cap = Double(TimeAmount(maximumDelay).nanoseconds)
            var delay = Double(TimeAmount(initialDelay).nanoseconds)
            for _ in 1..<max(failures, 1) where delay < cap {
                delay *= multiplier
            }
            return .nanoseconds(Int64(min(delay, cap) * Double.random(in: 0.8...1.2)))
        }
    }
}
