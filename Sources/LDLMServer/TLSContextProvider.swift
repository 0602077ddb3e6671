import NIOConcurrencyHelpers
import NIOSSL

/// The TLS context new connections use, replaceable while the server runs
/// (SIGHUP) without touching connections that already exist.
final class TLSContextProvider: @unchecked Sendable {
    private let certificatePath: String
    private let keyPath: String
    private let clientCAPath: String?
    private let lock = NIOLock()
    private var contexts: (http2: NIOSSLContext, http1: NIOSSLContext)

    /// Loads the files now; a missing file or a key that does not match the
    /// certificate fails here, at start-up, with a message naming the file.
    init(certificatePath: String, keyPath: String, clientCAPath: String?) throws(ConfigError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.contexts = try Self.makeContexts(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath)
    }

    /// For gRPC connections: ALPN offers h2 only.
    var current: NIOSSLContext {
        lock.withLock { contexts.http2 }
    }

    /// For the HTTP/1.1 ports (metrics, REST): ALPN offers http/1.1 only.
    var currentForHTTP1: NIOSSLContext {
        lock.withLock { contexts.http1 }
    }

    /// Reads the files again; on failure the previous context stays in use.
    func reload() throws(ConfigError) {
        let fresh = try Self.makeContexts(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath)
        lock.withLock { contexts = fresh }
    }

    private static func makeContexts(
        certificatePath: String,
        keyPath: String,
        clientCAPath: String?
    ) throws(ConfigError) -> (http2: NIOSSLContext, http1: NIOSSLContext) {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw ConfigError("cannot load TLS certificate \(certificatePath): \(error)")
        }
        guard !chain.isEmpty else { throw ConfigError("TLS certificate file \(certificatePath) holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigError("cannot load TLS key \(keyPath): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAPath {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(clientCAPath)
            } catch {
                throw ConfigError("cannot load client CA \(clientCAPath): \(error)")
            }
            guard !roots.isEmpty else { throw ConfigError("client CA file \(clientCAPath) holds no certificate") }
            configuration.trustRoots = .certificates(roots)
            // Full verification would also match the client's SAN against its IP
            // address and refuse valid clients whose certificates name none.
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            var http2 = configuration
            http2.applicationProtocols = ["h2"]
            var http1 = configuration
            http1.applicationProtocols = ["http/1.1"]
            return (try NIOSSLContext(configuration: http2), try NIOSSLContext(configuration: http1))
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw ConfigError("TLS key \(keyPath) does not match certificate \(certificatePath)")
        } catch {
            throw ConfigError("cannot set up TLS with \(certificatePath) and \(keyPath): \(error)")
        }
    }
}
