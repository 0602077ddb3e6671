import LDLMCore
import Logging

/// What the handlers of one connection share: who the peer is, its lock
/// session, and a logger whose every line names both.
///
/// Confined to the connection's event loop, like the handlers that hold it.
final class ConnectionContext {
    private(set) var logger: Logger
    /// Set by ``SessionHandler`` while the connection is open.
    private(set) var session: SessionID?
    /// The verified client certificate's names, once a TLS handshake found one.
    private(set) var clientIdentity: CertificateIdentity?

    init(logger: Logger, remoteAddress: String?) {
        self.logger = logger
        if let remoteAddress {
            self.logger[metadataKey: "remote"] = "\(remoteAddress)"
        }
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
