import NIOConcurrencyHelpers
import NIOSSL

/// The TLS context new connections use, replaceable while the server runs
/// (SIGHUP) without touching connections that already exist.
final class TLSContextProvider: @unchecked Sendable {
    private let certificatePath: String
    private let keyPath: String
    private let clientCAPath: String?
    private let lock = NIOLock()
    private var context: NIOSSLContext

    /// Loads the files now; a missing file or a key that does not match the
    /// certificate fails here, at start-up, with a message naming the file.
    init(certificatePath: String, keyPath: String, clientCAPath: String?) throws(ConfigError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.context = try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath)
    }

    var current: NIOSSLContext {
        lock.withLock { context }
    }

    /// Reads the files again; on failure the previous context stays in use.
    func reload() throws(ConfigError) {
        let fresh = try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath, clientCAPath: clientCAPath)
        lock.withLock { context = fresh }
    }

    private static func makeContext(certificatePath: String, keyPath: String, clientCAPath: String?) throws(ConfigError) -> NIOSSLContext {
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
        configuration.applicationProtocols = ["h2"]
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
            return try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw ConfigError("TLS key \(keyPath) does not match certificate \(certificatePath)")
        } catch {
            throw ConfigError("cannot set up TLS with \(certificatePath) and \(keyPath): \(error)")
        }
    }
}
