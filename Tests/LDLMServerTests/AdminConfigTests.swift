import XCTest

@testable import LDLMServer

/// `--admin_password`, `--admin_password_file`, `--admin_identities` and
/// `--ipc_socket_file`, from flags, environment and config file.
final class AdminConfigTests: XCTestCase {
    private let mutualTLS = ["--tls_cert", "/c.pem", "--tls_key", "/k.pem", "--client_ca", "/ca.pem"]

    private func withMutualTLS(_ change: (inout ServerConfig) -> Void) -> ServerConfig {
        configWith {
            $0.tlsCertificatePath = "/c.pem"
            $0.tlsKeyPath = "/k.pem"
            $0.clientCAPath = "/ca.pem"
            change(&$0)
        }
    }

    func testDefaultsServeNoAdminOverTheNetworkAndNoSocket() throws {
        guard case .run(let config) = try resolveRequest([]) else { return XCTFail("no configuration") }
        XCTAssertNil(config.adminPassword)
        XCTAssertEqual(config.adminIdentities, [])
        XCTAssertNil(config.ipcSocketFile)
    }

    func testEachSettingFromFlagEnvironmentAndFile() {
        XCTAssertConfig(["--admin_password", "apw"], is: configWith { $0.adminPassword = "apw" })
        XCTAssertConfig([], environment: ["LDLM_ADMIN_PASSWORD": "apw"], is: configWith { $0.adminPassword = "apw" })
        XCTAssertConfig(["-c", "/c.yaml"], files: ["/c.yaml": "admin_password: apw\n"], is: configWith { $0.adminPassword = "apw" })
        XCTAssertConfig(["-ipc_socket_file=/run/ldlm.sock"], is: configWith { $0.ipcSocketFile = "/run/ldlm.sock" })
        XCTAssertConfig([], environment: ["LDLM_IPC_SOCKET_FILE": "/run/ldlm.sock"], is: configWith { $0.ipcSocketFile = "/run/ldlm.sock" })
        XCTAssertConfig(["-c", "/c.json"], files: ["/c.json": #"{"ipc_socket_file": "/s"}"#], is: configWith { $0.ipcSocketFile = "/s" })
        XCTAssertConfig(["--ipc_socket_file", ""], environment: ["LDLM_IPC_SOCKET_FILE": "/s"], is: configWith())
        XCTAssertConfig(
            mutualTLS + ["--admin_identities", "worker-1, DNS:ops.example,IP:::1,"],
            is: withMutualTLS {
                $0.adminIdentities = [AdminIdentity("worker-1")!, AdminIdentity("DNS:ops.example")!, AdminIdentity("IP:0:0:0:0:0:0:0:1")!]
            })
        XCTAssertConfig(
            mutualTLS, environment: ["LDLM_ADMIN_IDENTITIES": "ops"],
            is: withMutualTLS { $0.adminIdentities = [AdminIdentity("ops")!] })
    }

    func testAdminPasswordAndItsFileAreOneSetting() {
        let files = ["/run/apw": "admin-secret\n", "/run/empty": ""]
        XCTAssertConfig(["--admin_password_file", "/run/apw"], files: files, is: configWith { $0.adminPassword = "admin-secret" })
        XCTAssertConfig(
            ["--admin_password", "flag"], environment: ["LDLM_ADMIN_PASSWORD_FILE": "/run/apw"], files: files,
            is: configWith { $0.adminPassword = "flag" })
        XCTAssertConfigError(
            ["--admin_password", "a", "--admin_password_file", "/run/apw"], files: files,
            is: "give either an admin password or an admin password file, not both")
        XCTAssertConfigError(["--admin_password_file", "/missing"], is: "cannot read admin password file /missing: no such file")
        XCTAssertConfigError(["--admin_password_file", "/run/empty"], files: files, is: "admin password file /run/empty is empty")
        XCTAssertConfig(
            ["--password", "lock", "--admin_password_file", "/run/apw"], files: files,
            is: configWith {
                $0.password = "lock"
                $0.adminPassword = "admin-secret"
            })
    }

    func testTheLockPasswordCannotBeTheAdminPassword() {
        XCTAssertConfigError(
            ["--password", "same", "--admin_password", "same"],
            is: "--admin_password must differ from --password: the lock password must not open the admin service")
    }

    func testIdentitiesNeedVerifiedClientCertificatesAndValidEntries() {
        XCTAssertConfigError(
            ["--admin_identities", "worker-1"],
            is: "--admin_identities needs --client_ca: the identities are read from verified client certificates")
        XCTAssertConfigError(
            mutualTLS + ["--admin_identities", "ok,IP:300.1.1.1"],
            is: #"invalid entry "IP:300.1.1.1" in --admin_identities: use a common name, DNS:name or IP:address"#)
        XCTAssertConfig(mutualTLS + ["--admin_identities", " , "], is: withMutualTLS { _ in })
    }
}
