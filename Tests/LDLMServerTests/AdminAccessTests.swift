import LDLMCore
@testable import LDLMGRPC
import LDLMHTTP2
import Logging
import XCTest

@testable import LDLMServer

/// Who may call what: the interceptors the server builds from its
/// configuration, in front of stand-ins for the lock and admin services.
final class AdminAccessTests: XCTestCase {
    private final class Accepting: RPCService {
        let serviceName: String

        init(_ serviceName: String) {
            self.serviceName = serviceName
        }

        var methods: [String: RPCMethod] {
            ["TryLock": { _, _ in .reply([], onUndelivered: nil) }, "ListLocks": { _, _ in .reply([], onUndelivered: nil) }]
        }
    }

    private struct Case {
        let name: String
        var password: String?
        var adminPassword: String?
        var identities: [String] = []
        var unixSocket = false
        var certificate: CertificateIdentity?
        var authorization: String?
        /// nil: admitted.
        let admin: GRPCStatus.Code?
        var lock: GRPCStatus.Code?
    }

    private static let worker1 = CertificateIdentity(commonNames: ["worker-1"], alternativeNames: ["DNS:Worker-1.Example", "IP:0:0:0:0:0:0:0:1"])
    private static let worker2 = CertificateIdentity(commonNames: ["worker-2"], alternativeNames: [])

    private static let cases: [Case] = [
        Case(name: "unix socket, nothing configured", unixSocket: true, admin: nil),
        Case(name: "unix socket, both passwords set, none sent", password: "lockpw", adminPassword: "adminpw", unixSocket: true, admin: nil),
        Case(name: "tcp, nothing configured", admin: .permissionDenied),
        Case(name: "tcp, lock password alone", password: "lockpw", authorization: "lockpw", admin: .permissionDenied),
        Case(name: "tcp, lock password sent where an admin password is set", password: "lockpw", adminPassword: "adminpw",
             authorization: "lockpw", admin: .unauthenticated),
        Case(name: "tcp, admin password", adminPassword: "adminpw", authorization: "adminpw", admin: nil),
        Case(name: "tcp, admin password does not open the lock service", password: "lockpw", adminPassword: "adminpw",
             authorization: "adminpw", admin: nil, lock: .unauthenticated),
        Case(name: "tcp, admin password missing", adminPassword: "adminpw", admin: .unauthenticated),
        Case(name: "tcp, admin password wrong", adminPassword: "adminpw", authorization: "adminpw ", admin: .unauthenticated),
        Case(name: "tcp, common name listed", identities: ["worker-1"], certificate: worker1, admin: nil),
        Case(name: "tcp, DNS name listed, other case", identities: ["DNS:worker-1.example"], certificate: worker1, admin: nil),
        Case(name: "tcp, IPv6 listed in short form", identities: ["IP:::1"], certificate: worker1, admin: nil),
        Case(name: "tcp, common name not listed", identities: ["worker-1"], certificate: worker2, admin: .permissionDenied),
        Case(name: "tcp, no client certificate", identities: ["worker-1"], admin: .permissionDenied),
        Case(name: "tcp, a common name is no DNS name", identities: ["DNS:worker-1"], certificate: worker1, admin: .permissionDenied),
        Case(name: "tcp, listed identity with the lock password in metadata", password: "lockpw", adminPassword: "adminpw",
             identities: ["worker-1"], certificate: worker1, authorization: "lockpw", admin: nil),
        Case(name: "tcp, unlisted identity and no password", adminPassword: "adminpw", identities: ["worker-1"],
             certificate: worker2, admin: .unauthenticated),
    ]

    func testAccessRules() throws {
        for entry in Self.cases {
            var config = ServerConfig()
            config.password = entry.password
            config.adminPassword = entry.adminPassword
            config.adminIdentities = try entry.identities.map { try XCTUnwrap(AdminIdentity($0), entry.name) }
            let router = RPCRouter(services: [Accepting("ldlm.LDLM"), Accepting(AdminService.name)], interceptors: LockServer.interceptors(config))
            let connection = ConnectionContext(
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                remoteAddress: nil,
                transport: entry.unixSocket ? .unixSocket(path: "/s") : .tcp
            )
            if let certificate = entry.certificate {
                connection.clientAuthenticated(as: certificate)
            }
            XCTAssertEqual(refusal(router, "/\(AdminService.name)/ListLocks", entry.authorization, connection), entry.admin, "admin: \(entry.name)")
            XCTAssertEqual(refusal(router, "/ldlm.LDLM/TryLock", entry.authorization, connection), entry.lock, "lock: \(entry.name)")
        }
    }

    func testAnUnknownAdminMethodIsRefusedBeforeItIsFoundMissing() {
        let router = RPCRouter(services: [Accepting(AdminService.name)], interceptors: LockServer.interceptors(ServerConfig()))
        let connection = ConnectionContext(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), remoteAddress: nil)
        XCTAssertEqual(refusal(router, "/\(AdminService.name)/DropEverything", nil, connection), .permissionDenied)
        let local = ConnectionContext(logger: connection.logger, remoteAddress: nil, transport: .unixSocket(path: "/s"))
        XCTAssertEqual(refusal(router, "/\(AdminService.name)/DropEverything", nil, local), .unimplemented)
    }

    func testRefusalsSayWhatWouldBeAccepted() {
        let connection = ConnectionContext(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), remoteAddress: nil)
        func message(_ interceptor: AdminAccessInterceptor, _ authorization: String? = nil) -> String? {
            let headers = HTTP2HeaderFields(authorization.map { [HTTP2Header("authorization", $0)] } ?? [])
            let request = GRPCRequest(streamID: 1, path: "/x/y", headers: headers, timeoutNanoseconds: nil, message: [])
            return interceptor.refusal(of: request, from: connection)?.message
        }
        XCTAssertEqual(
            message(AdminAccessInterceptor(password: nil, identities: [])),
            "the admin service is served only on the --ipc_socket_file Unix socket unless --admin_password or --admin_identities is set"
        )
        XCTAssertEqual(message(AdminAccessInterceptor(password: "pw", identities: []), "x"), "invalid admin password in authorization metadata")
        XCTAssertEqual(
            message(AdminAccessInterceptor(password: "pw", identities: [AdminIdentity("a")!])),
            "admin calls need the admin password in authorization metadata or a client certificate listed in --admin_identities"
        )
        XCTAssertEqual(
            message(AdminAccessInterceptor(password: nil, identities: [AdminIdentity("a")!])),
            "admin calls need a client certificate listed in --admin_identities (this one: none)"
        )
    }

    func testIdentityEntries() {
        XCTAssertEqual(AdminIdentity("worker-1")?.kind, .commonName)
        XCTAssertEqual(AdminIdentity("worker-1")?.value, "worker-1")
        XCTAssertEqual(AdminIdentity("DNS:a.example")?.kind, .alternativeName)
        XCTAssertEqual(AdminIdentity("IP:2001:db8::1")?.value, "IP:2001:db8:0:0:0:0:0:1")
        XCTAssertEqual(AdminIdentity("IP:10.1.2.3")?.value, "IP:10.1.2.3")
        XCTAssertEqual(AdminIdentity("DNS:A.Example")?.value, "DNS:a.example")
        for invalid in ["", "IP:", "IP:10.1.2", "IP:host.example", "DNS:"] {
            XCTAssertNil(AdminIdentity(invalid), invalid)
        }
    }

    private func refusal(_ router: RPCRouter, _ path: String, _ authorization: String?, _ connection: ConnectionContext) -> GRPCStatus.Code? {
        let headers = HTTP2HeaderFields(authorization.map { [HTTP2Header("authorization", $0)] } ?? [])
        let request = GRPCRequest(streamID: 1, path: path, headers: headers, timeoutNanoseconds: nil, message: [])
        switch router.route(request, to: router.resolve(request.path), from: connection, session: SessionID(rawValue: 1), makeResponder: { fatalError("answered at once") }) {
        case .failure(let status): return status.code
        case .reply: return nil
        case .deferred, .stream: return .unknown
        }
    }
}
