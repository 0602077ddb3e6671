import NIOCore
import NIOSSL

/// Turns the public configuration into per-server ``ConnectionOptions``,
/// rejecting what cannot work before any connection is tried.
enum ConnectionSetup {
    /// Per shard, its replicas in the configured order.
    static func options(for configuration: LDLMClient.Configuration) throws -> [[ConnectionOptions]] {
        guard !configuration.shards.isEmpty else {
            throw LDLMClientError.invalidConfiguration("no shards")
        }
        let tls = try configuration.tls.map(makeContext)
        let keepalive = configuration.keepalive.map { (interval: TimeAmount($0.interval), timeout: TimeAmount($0.timeout)) }
        return try configuration.shards.map { replicas in
            guard !replicas.isEmpty else {
                throw LDLMClientError.invalidConfiguration("a shard without a server")
            }
            return try replicas.map { address in
                try tcp(address, password: configuration.password, tls: tls, keepalive: keepalive, connectTimeout: configuration.connectTimeout)
            }
        }
    }

    static func tcp(
        _ address: String,
        password: String?,
        tls: NIOSSLContext?,
        keepalive: (interval: TimeAmount, timeout: TimeAmount)?,
        connectTimeout: Duration
    ) throws -> ConnectionOptions {
        let (host, port) = try parse(address)
        return ConnectionOptions(host: host, port: port, password: password, tls: tls, keepalive: keepalive, connectTimeout: TimeAmount(connectTimeout))
    }

    /// "host:port", or "[v6 address]:port".
    static func parse(_ address: String) throws -> (host: String, port: Int) {
        guard let colon = address.lastIndex(of: ":"),
              let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port)
        else {
            throw LDLMClientError.invalidConfiguration("not host:port: \(address)")
        }
        var host = address[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        }
        guard !host.isEmpty else {
            throw LDLMClientError.invalidConfiguration("no host in \(address)")
        }
        return (String(host), port)
    }

    static func makeContext(_ tls: LDLMClient.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["h2"]
        switch tls.trust {
        case .systemRoots: configuration.trustRoots = .default
        case .caFile(let path): configuration.trustRoots = .file(path)
        }
        do {
            switch (tls.certificateFile, tls.privateKeyFile) {
            case (nil, nil):
                break
            case (let certificate?, let key?):
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            default:
                throw LDLMClientError.invalidConfiguration("mTLS needs both a certificate file and a key file")
            }
            return try NIOSSLContext(configuration: configuration)
        } catch let error as LDLMClientError {
            throw error
        } catch {
            throw LDLMClientError.invalidConfiguration("TLS: \(error)")
        }
    }
}
