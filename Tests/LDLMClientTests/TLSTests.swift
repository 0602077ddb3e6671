import Foundation
import LDLMClient
import XCTest

/// TLS and mTLS against a server using certificates made by the `openssl` CLI.
final class TLSTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ldlm-client-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try makeCertificates()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ file: String) -> String { directory.appendingPathComponent(file).path }

    func testMutualTLSByIPAddressAndByHostname() async throws {
        let server = try ServerProcess(arguments: [
            "--tls_cert", path("server.crt"), "--tls_key", path("server.key"), "--client_ca", path("ca.crt"),
        ])
        defer { server.stop() }
        let tls = LDLMClient.TLS(trust: .caFile(path("ca.crt")), certificateFile: path("client.crt"), privateKeyFile: path("client.key"))
        for address in [server.address, "localhost:\(server.port)"] {
            let client = try makeClient([server]) { $0.shards = [[address]]; $0.tls = tls }
            let handle = try await client.lock(uniqueName())
            try await client.unlock(handle)
            await client.close()
        }
    }

    func testHandshakesTheServerRefusesFailAsUnavailable() async throws {
        let server = try ServerProcess(arguments: [
            "--tls_cert", path("server.crt"), "--tls_key", path("server.key"), "--client_ca", path("ca.crt"),
        ])
        defer { server.stop() }
        let refused = [
            LDLMClient.TLS(trust: .caFile(path("ca.crt"))),  // no client certificate
            LDLMClient.TLS(trust: .systemRoots, certificateFile: path("client.crt"), privateKeyFile: path("client.key")),
        ]
        for tls in refused {
            let client = try makeClient([server]) { $0.tls = tls }
            await assertThrows(try await withTimeout(10) { try await client.tryLock(uniqueName()) }) {
                if case LDLMClientError.unavailable = $0 { return true }
                return false
            }
            await client.close()
        }
        let plaintext = try makeClient([server])
        await assertThrows(try await withTimeout(10) { try await plaintext.tryLock(uniqueName()) }) {
            if case LDLMClientError.unavailable = $0 { return true }
            return false
        }
        await plaintext.close()
    }

    private func makeCertificates() throws {
        guard let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("no openssl CLI")
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try run(openssl, ["req", "-x509"] + ec + ["-days", "2", "-subj", "/CN=test-ca", "-keyout", path("ca.key"), "-out", path("ca.crt")])
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=worker")] {
            try run(openssl, ["req"] + ec + ["-subj", subject, "-keyout", path("\(name).key"), "-out", path("\(name).csr")])
            try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: path("san.ext"), atomically: true, encoding: .utf8)
            try run(openssl, [
                "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", path("san.ext"), "-out", path("\(name).crt"),
            ])
        }
    }

    private func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ServerStartError(log: "openssl \(arguments.joined(separator: " ")) failed", status: process.terminationStatus)
        }
    }
}
