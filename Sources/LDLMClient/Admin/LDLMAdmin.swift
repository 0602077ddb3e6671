import LDLMProtocol
import NIOCore
import NIOPosix

/// The admin service (`ldlm.admin.v1.Admin`) of one `ldlm-server`: what it
/// holds, and an operator's way to release a lock or end a session. Keeps one
/// connection, made on first use and again after it drops. Safe to use from
/// any task or thread.
public final class LDLMAdmin: Sendable {
    public struct Configuration: Sendable {
        public enum Endpoint: Sendable {
            /// "host:port" over TCP: the server lets in `adminPassword`, or a
            /// client certificate listed in its `--admin_identities`.
            case address(String)
            /// The server's `--ipc_socket_file`: plaintext, no password.
            case unixSocket(String)
        }

        public var endpoint: Endpoint
        /// Sent as `authorization` metadata, as `ldlm-server --admin_password` expects.
        public var adminPassword: String?
        /// nil for plaintext; TCP only.
        public var tls: LDLMClient.TLS?
        /// Bounds connect plus TLS handshake, per attempt.
        public var connectTimeout: Duration = .seconds(5)
        public var reconnect: LDLMClient.Backoff = LDLMClient.Backoff()
        /// Where the connection runs; nil for NIO's shared singleton.
        public var eventLoopGroup: (any EventLoopGroup)?

        public init(endpoint: Endpoint) {
            self.endpoint = endpoint
        }
    }

    public let configuration: Configuration
    private let link: ServerLink

    public init(configuration: Configuration) throws {
        guard configuration.reconnect.attempts >= 1 else {
            throw LDLMClientError.invalidConfiguration("reconnect.attempts must be at least 1")
        }
        self.configuration = configuration
        let group = configuration.eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        link = ServerLink(replicas: [try Self.options(for: configuration)], backoff: configuration.reconnect, reclaimGrace: nil, eventLoop: group.next())
    }

    deinit {
        let link = self.link
        link.eventLoop.execute { _ = link.close() }
    }

    /// Closes the connection. Later calls throw ``LDLMClientError/clientClosed``.
    public func close() async {
        let link = self.link
        try? await link.eventLoop.flatSubmit { link.close() }.get()
    }

    /// Every lock, by name.
    public func listLocks() async throws -> [Lock] {
        try await call("ListLocks", AdminListLocksRequest()) { (response: AdminListLocksResponse) in
            response.locks.map(Lock.init)
        }
    }

    /// Every open session (connection), by id.
    public func listSessions() async throws -> [Session] {
        try await call("ListSessions", AdminListSessionsRequest()) { (response: AdminListSessionsResponse) in
            response.sessions.map(Session.init)
        }
    }

    /// Releases every holder of `name`, or with `key` the one holder whose key
    /// starts with it (a listed ``Holder/keyPrefix`` will do); waiters are then
    /// granted in order. The holder learns of it when its next renew fails.
    /// Returns how many holds were released. Throws ``LDLMClientError/notFound(_:)``
    /// for an unknown lock or key and ``LDLMClientError/invalidArgument(_:)``
    /// when `key` starts several holders' keys.
    @discardableResult
    public func forceUnlock(name: String, key: String? = nil) async throws -> Int {
        try await call("ForceUnlock", AdminForceUnlockRequest(name: name, key: key ?? "")) { (response: AdminForceUnlockResponse) in
            Int(response.released)
        }
    }

    /// Closes the session's connection and releases its locks, also on a server
    /// run with `--no_clear_on_disconnect`. Returns how many locks it held.
    /// Throws ``LDLMClientError/notFound(_:)`` if no such session is open.
    @discardableResult
    public func endSession(id: UInt64) async throws -> Int {
        try await call("EndSession", AdminEndSessionRequest(sessionID: id)) { (response: AdminEndSessionResponse) in
            Int(response.releasedLocks)
        }
    }

    private func call<Request: LDLMMessage, Response: LDLMMessage, Output: Sendable>(
        _ method: String,
        _ request: Request,
        _ transform: @escaping (Response) -> Output
    ) async throws -> Output {
        let call = PendingCall<Response, Output>(
            link: link,
            start: { session, done in session.connection.unaryCall("/ldlm.admin.v1.Admin/\(method)", request, completion: done) },
            complete: { _, response, _ in .success(transform(response)) }
        )
        return try await call.run(cancellable: true)
    }

    private static func options(for configuration: Configuration) throws -> ConnectionOptions {
        switch configuration.endpoint {
        case .unixSocket(let path):
            guard configuration.tls == nil else {
                throw LDLMClientError.invalidConfiguration("the Unix socket is served without TLS")
            }
            return ConnectionOptions(unixSocketPath: path, password: configuration.adminPassword, connectTimeout: TimeAmount(configuration.connectTimeout))
        case .address(let address):
            return try ConnectionSetup.tcp(
                address,
                password: configuration.adminPassword,
                tls: try configuration.tls.map(ConnectionSetup.makeContext),
                keepalive: nil,
                connectTimeout: configuration.connectTimeout
            )
        }
    }
}
