import ArgumentParser
import Foundation
import LDLMClient

/// Where the server is and how to authenticate, for lock and admin commands.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong("address"), help: "host:port of the server; repeat for shards (lock commands). Default localhost:3144.")
    var addresses: [String] = []

    @Option(name: .customLong("socket"), help: "The server's --ipc_socket_file, for admin commands without a password.")
    var socket: String?

    @Option(name: .customLong("password"), help: "The server's --password, for lock commands.")
    var password: String?

    @Option(name: .customLong("password_file"), help: "A file holding --password (trailing newline ignored).")
    var passwordFile: String?

    @Option(name: .customLong("admin_password"), help: "The server's --admin_password, for admin commands over TCP.")
    var adminPassword: String?

    @Option(name: .customLong("admin_password_file"), help: "A file holding --admin_password (trailing newline ignored).")
    var adminPasswordFile: String?

    @Option(name: .customLong("tls_ca"), help: "PEM CA bundle to verify the server against; turns TLS on.")
    var tlsCA: String?

    @Option(name: .customLong("tls_cert"), help: "PEM client certificate for mTLS (with --tls_key); turns TLS on.")
    var tlsCert: String?

    @Option(name: .customLong("tls_key"), help: "PEM key of --tls_cert.")
    var tlsKey: String?

    @Flag(name: .customLong("json"), help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if password != nil, passwordFile != nil {
            throw ValidationError("--password and --password_file exclude each other")
        }
        if adminPassword != nil, adminPasswordFile != nil {
            throw ValidationError("--admin_password and --admin_password_file exclude each other")
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls_cert and --tls_key go together")
        }
    }

    func clientConfiguration() throws -> LDLMClient.Configuration {
        var configuration = LDLMClient.Configuration(shards: (addresses.isEmpty ? [Self.defaultAddress] : addresses).map { [$0] })
        configuration.password = try secret(password, file: passwordFile, flag: "--password_file")
        configuration.tls = tls
        return configuration
    }

    func adminConfiguration() throws -> LDLMAdmin.Configuration {
        var configuration: LDLMAdmin.Configuration
        if let socket {
            configuration = LDLMAdmin.Configuration(endpoint: .unixSocket(socket))
        } else {
            configuration = LDLMAdmin.Configuration(endpoint: .address(addresses.first ?? Self.defaultAddress))
            configuration.tls = tls
        }
        configuration.adminPassword = try secret(adminPassword, file: adminPasswordFile, flag: "--admin_password_file")
        return configuration
    }

    private static let defaultAddress = "localhost:3144"

    private var tls: LDLMClient.TLS? {
        guard tlsCA != nil || tlsCert != nil else { return nil }
        return LDLMClient.TLS(trust: tlsCA.map { .caFile($0) } ?? .systemRoots, certificateFile: tlsCert, privateKeyFile: tlsKey)
    }

    /// A file is read as `ldlm-server` reads its password files: once, without
    /// its trailing newline.
    private func secret(_ value: String?, file: String?, flag: String) throws -> String? {
        guard let file else { return value }
        do {
            var text = Substring(try String(contentsOfFile: file, encoding: .utf8))
            while text.last?.isNewline == true { text.removeLast() }
            return String(text)
        } catch {
            throw UsageError(message: "\(flag): cannot read \(file): \(error.localizedDescription)")
        }
    }
}
