import LDLMCore
import Logging

/// How a connection reached the server.
enum ConnectionTransport: Equatable {
    case tcp
    /// The `--ipc_socket_file` socket: only the server's user can open it
    /// (mode 0600), so it asks for no password.
    case unixSocket(path: String)

    var isUnixSocket: Bool {
        if case .unixSocket = self { return true }
        return false
    }
}

/// What the handlers of one connection share: who the peer is, its lock
/// session, and a logger whose every line names both.
///
/// Confined to the connection's event loop, like the handlers that hold it;
/// the owner loop keeps a ``copy()`` of a connection on another loop.
final class ConnectionContext {
    private(set) var logger: Logger
    /// `host:port`, or `unix:PATH` on the Unix socket.
    let remoteAddress: String?
    let transport: ConnectionTransport
    /// Set by ``SessionHandler`` while the connection is open.
    private(set) var session: SessionID?
    /// The verified client certificate's names, once a TLS handshake found one.
    private(set) var clientIdentity: CertificateIdentity?

    init(logger: Logger, remoteAddress: String?, transport: ConnectionTransport = .tcp) {
        self.logger = logger
        self.remoteAddress = remoteAddress
        self.transport = transport
        if let remoteAddress {
            self.logger[metadataKey: "remote"] = "\(remoteAddress)"
        }
    }

    /// The same peer as known now, for the owner loop to use while this one
    /// stays with its connection's loop.
    func copy() -> ConnectionContext {
        ConnectionContext(copying: self)
    }

    private init(copying other: ConnectionContext) {
        logger = other.logger
        remoteAddress = other.remoteAddress
        transport = other.transport
        session = other.session
        clientIdentity = other.clientIdentity
    }

    func sessionOpened(_ session: SessionID) {
        self.session = session
        logger[metadataKey: "session"] = "\(session.rawValue)"
    }

    func sessionClosed() {
        session = nil
    }

    func clientAuthenticated(as identity: CertificateIdentity) {
        clientIdentity = identity
        logger[metadataKey: "client"] = "\(identity)"
    }
}
