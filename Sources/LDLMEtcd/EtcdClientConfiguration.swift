import NIOCore
import NIOSSL

/// One etcd member's client URL.
public struct EtcdEndpoint: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// TLS to etcd: the files of `--trusted-ca-file`'s CA and, for etcd's
/// `--client-cert-auth`, the client's certificate and key (PEM).
public struct EtcdTLSFiles: Sendable {
    /// nil trusts the system's roots.
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    func makeContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            configuration.trustRoots = .file(caFile)
        }
        if let certificateFile {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
        }
        if let keyFile {
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        configuration.applicationProtocols = ["h2"]
        return try NIOSSLContext(configuration: configuration)
    }
}

public struct EtcdClientConfiguration: Sendable {
    /// Tried in order when connecting; the next one after a member fails.
    public var endpoints: [EtcdEndpoint]
    public var tls: EtcdTLSFiles?
    /// With etcd auth enabled: the client authenticates before its first
    /// call, and again once when etcd calls the token invalid.
    public var user: (name: String, password: String)?
    /// Each call's deadline unless it names its own; sent as `grpc-timeout`.
    public var callTimeout: Duration
    /// Per endpoint: TCP connect, TLS handshake and etcd's first HTTP/2 frame together;
    /// a frozen member fails here, before any call is sent to it.
    public var connectTimeout: Duration
    /// PINGs every `interval`; one unanswered for `timeout` drops the
    /// connection, failing its calls, so a frozen member is left quickly.
    public var keepalive: (interval: Duration, timeout: Duration)?

    public init(
        endpoints: [EtcdEndpoint],
        tls: EtcdTLSFiles? = nil,
        user: (name: String, password: String)? = nil,
        callTimeout: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(2),
        keepalive: (interval: Duration, timeout: Duration)? = (interval: .seconds(5), timeout: .seconds(3))
    ) {
        self.endpoints = endpoints
        self.tls = tls
        self.user = user
        self.callTimeout = callTimeout
        self.connectTimeout = connectTimeout
        self.keepalive = keepalive
    }
}
