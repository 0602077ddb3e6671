import Foundation
import LDLMEtcd
import NIOCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Real etcd members on 127.0.0.1, each with free ports and a temporary data
/// directory, stopped by PID.
public final class EtcdTestCluster {
    public static let binary = "/usr/bin/etcd"

    public struct Member {
        public let name: String
        public let clientPort: Int
        public let peerPort: Int
        public let process: Process
        public var endpoint: EtcdEndpoint { EtcdEndpoint(host: "127.0.0.1", port: clientPort) }
        public var pid: pid_t { process.processIdentifier }
    }

    public private(set) var members: [Member] = []
    private let directory: URL
    /// With TLS: the CA and the client's certificate, which etcd demands.
    public let clientTLS: EtcdTLSFiles?

    public var endpoints: [EtcdEndpoint] { members.map(\.endpoint) }

    /// Starts `size` members as one new cluster; the caller waits for it with
    /// ``waitUntilServing(group:)``. With `tls`, clients must speak TLS and
    /// show a certificate of the cluster's CA (`--client-cert-auth`).
    /// `arguments` go to every member.
    public init(size: Int, tls: Bool = false, arguments: [String] = []) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("\(Self.binary) not found: apt-get install etcd-server")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ldlm-etcd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tlsArguments: [String] = []
        if tls {
            try Self.makeCertificates(in: directory)
            let directory = directory
            let file = { (name: String) in directory.appendingPathComponent(name).path }
            tlsArguments = ["--cert-file", file("server.crt"), "--key-file", file("server.key"), "--client-cert-auth", "--trusted-ca-file", file("ca.crt")]
            clientTLS = EtcdTLSFiles(caFile: file("ca.crt"), certificateFile: file("client.crt"), keyFile: file("client.key"))
        } else {
            clientTLS = nil
        }
        let scheme = tls ? "https" : "http"
        let ports = try (0..<size).map { _ in (client: try Self.freePort(), peer: try Self.freePort()) }
        let names = (0..<size).map { "member\($0)" }
        let initialCluster = zip(names, ports).map { "\($0)=http://127.0.0.1:\($1.peer)" }.joined(separator: ",")
        for (name, port) in zip(names, ports) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = [
                "--name", name,
                "--data-dir", directory.appendingPathComponent(name).path,
                "--listen-client-urls", "\(scheme)://127.0.0.1:\(port.client)",
                "--advertise-client-urls", "\(scheme)://127.0.0.1:\(port.client)",
                "--listen-peer-urls", "http://127.0.0.1:\(port.peer)",
                "--initial-advertise-peer-urls", "http://127.0.0.1:\(port.peer)",
                "--initial-cluster", initialCluster,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", directory.lastPathComponent,
                // Fast elections keep the tests short; the minimum lease TTL follows (1 s).
                "--heartbeat-interval", "50",
                "--election-timeout", "500",
                "--log-level", "error",
            ] + tlsArguments + arguments
            let log = directory.appendingPathComponent("\(name).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            do {
                try process.run()
            } catch {
                stop()
                throw error
            }
            members.append(Member(name: name, clientPort: port.client, peerPort: port.peer, process: process))
        }
    }

    /// Waits until every member answers a linearizable read.
    public func waitUntilServing(group: EventLoopGroup) async throws {
        for member in members {
            let configuration = EtcdClientConfiguration(endpoints: [member.endpoint], tls: clientTLS, callTimeout: .seconds(1))
            let client = try EtcdClient(configuration: configuration, eventLoopGroup: group)
            let start = ContinuousClock.now
            var lastError: Error?
            while ContinuousClock.now - start < .seconds(20) {
                do {
                    _ = try await client.range(EtcdRangeRequest(key: Array("health".utf8)))
                    lastError = nil
                    break
                } catch {
                    lastError = error
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            await client.close()
            if let lastError {
                throw StartFailure(description: "etcd \(member.name) did not serve within 20 s: \(lastError); log: \(log(of: member))")
            }
        }
    }

    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    public func log(of member: Member) -> String {
        (try? String(contentsOf: directory.appendingPathComponent("\(member.name).log"), encoding: .utf8)) ?? ""
    }

    public func pause(_ index: Int) { Glibc.kill(members[index].pid, SIGSTOP) }
    public func resume(_ index: Int) { Glibc.kill(members[index].pid, SIGCONT) }

    /// Kills the member by PID and waits for it.
    public func kill(_ index: Int) {
        let process = members[index].process
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public func stop() {
        for index in members.indices {
            kill(index)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A CA, a server certificate for 127.0.0.1 and a client certificate, by the openssl command.
    private static func makeCertificates(in directory: URL) throws {
        let script = """
        set -e
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
        key ca.key
        openssl req -x509 -new -key ca.key -subj /CN=ldlm-test-ca -days 1 -out ca.crt
        for who in server client; do
          key $who.key
          openssl req -new -key $who.key -subj /CN=$who -out $who.csr
        done
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
        printf 'extendedKeyUsage=clientAuth\n' > client.ext
        for who in server client; do
          openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile $who.ext -out $who.crt 2>/dev/null
        done
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw XCTSkip("cannot run openssl to make test certificates: \(error)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw StartFailure(description: "openssl could not make test certificates") }
    }

    /// A port nothing listens on now; etcd takes it a moment later.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw StartFailure(description: "cannot find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
