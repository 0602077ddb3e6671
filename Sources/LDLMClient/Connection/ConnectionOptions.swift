import LDLMGRPC
import LDLMHTTP2
import NIOCore
import NIOSSL

/// How to reach one server: shared by ``LDLMClient`` and `ldlm-bench`.
package struct ConnectionOptions: Sendable {
    package var host: String
    package var port: Int
    /// Connect to this Unix socket instead of `host:port` (an `ldlm-server
    /// --ipc_socket_file`); `host` then only names the HTTP/2 authority.
    package var unixSocketPath: String?
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

    /// The server's Unix socket: plaintext, no keepalive needed (the kernel
    /// reports a peer that went away).
    package init(unixSocketPath: String, password: String? = nil, connectTimeout: TimeAmount = .seconds(10)) {
        self.init(host: "localhost", port: 0, password: password, connectTimeout: connectTimeout, unixSocketPath: unixSocketPath)
    }

    package init(
        host: String,
        port: Int,
        password: String? = nil,
        tls: NIOSSLContext? = nil,
        keepalive: (interval: TimeAmount, timeout: TimeAmount)? = nil,
        connectTimeout: TimeAmount = .seconds(10),
        unixSocketPath: String? = nil
    ) {
        self.host = host
        self.port = port
        self.unixSocketPath = unixSocketPath
        self.password = password
        self.tls = tls
        self.keepalive = keepalive
        self.connectTimeout = connectTimeout
    }

    var channelOptions: GRPCClientChannelOptions {
        GRPCClientChannelOptions(
            metadata: password.map { [HTTP2Header("authorization", $0)] } ?? [],
            usesTLS: tls != nil,
            keepalive: keepalive,
            connectTimeout: connectTimeout
        )
    }

    var authority: String {
        // A path is no valid authority (nghttp2 rejects its "/"); gRPC clients send "localhost".
        if unixSocketPath != nil { return host }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// SNI and certificate name check; NIOSSL refuses an IP literal there and
    /// then checks the certificate against the connected address instead.
    var serverHostname: String? {
        host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
    }
}
