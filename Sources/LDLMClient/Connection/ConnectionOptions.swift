import NIOCore
import NIOSSL

/// How to reach one server: shared by ``LDLMClient`` and `ldlm-bench`.
package struct ConnectionOptions: Sendable {
    package var host: String
    package var port: Int
    /// Sent as `authorization` metadata on every call.
    package var password: String?
    /// TLS (and mTLS, when it carries a client certificate); nil for plaintext.
    package var tls: NIOSSLContext?
    /// Pings the server every `interval`; a PING not answered within
    /// `timeout` closes the connection, so a frozen server or a dead network
    /// path is noticed without waiting for TCP.
    package var keepalive: (interval: TimeAmount, timeout: TimeAmount)?
    /// Bounds TCP connect and TLS handshake together.
    package var connectTimeout: TimeAmount

    package init(
        host: String,
        port: Int,
        password: String? = nil,
        tls: NIOSSLContext? = nil,
        keepalive: (interval: TimeAmount, timeout: TimeAmount)? = nil,
        connectTimeout: TimeAmount = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.tls = tls
        self.keepalive = keepalive
        self.connectTimeout = connectTimeout
    }

    var authority: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// SNI and certificate name check; NIOSSL refuses an IP literal there and
    /// then checks the certificate against the connected address instead.
    var serverHostname: String? {
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }
}
