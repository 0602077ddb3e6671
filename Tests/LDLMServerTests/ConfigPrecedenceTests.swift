import GoDuration
import XCTest

@testable import LDLMServer

final class ConfigPrecedenceTests: XCTestCase {
    private let file = [
        "/etc/ldlm.yaml": """
        listen_address: 127.0.0.1:1
        keepalive_timeout: 1s
        no_clear_on_disconnect: true
        max_name_bytes: 10
        log_level: error
        """,
    ]

    func testFlagBeatsEnvironmentBeatsFileForEveryKindOfValue() {
        let fromFile = configWith {
            $0.listenAddress = "127.0.0.1:1"
            $0.keepaliveTimeout = .seconds(1)
            $0.clearOnDisconnect = false
            $0.maxNameBytes = 10
            $0.logLevel = .error
        }
        XCTAssertConfig(["--config_file", "/etc/ldlm.yaml"], files: file, is: fromFile)
        XCTAssertConfig([], environment: ["LDLM_CONFIG_FILE": "/etc/ldlm.yaml"], files: file, is: fromFile)

        let environment = [
            "LDLM_CONFIG_FILE": "/etc/ldlm.yaml", "LDLM_LISTEN_ADDRESS": "127.0.0.1:2", "LDLM_KEEPALIVE_TIMEOUT": "2s",
            "LDLM_NO_CLEAR_ON_DISCONNECT": "false", "LDLM_MAX_NAME_BYTES": "20",
        ]
        XCTAssertConfig([], environment: environment, files: file, is: configWith {
            $0.listenAddress = "127.0.0.1:2"
            $0.keepaliveTimeout = .seconds(2)
            $0.maxNameBytes = 20
            $0.logLevel = .error
        })
        XCTAssertConfig(
            ["-l", "127.0.0.1:3", "--keepalive_timeout", "3s", "--no_clear_on_disconnect", "--max_name_bytes", "30", "-v", "info"],
            environment: environment, files: file,
            is: configWith {
                $0.listenAddress = "127.0.0.1:3"
                $0.keepaliveTimeout = .seconds(3)
                $0.clearOnDisconnect = false
                $0.maxNameBytes = 30
            })
    }

    func testConfigFileFlagBeatsItsVariable() {
        let files = ["/a.yaml": "max_name_bytes: 1\n", "/b.yaml": "max_name_bytes: 2\n"]
        XCTAssertConfig(["-c", "/b.yaml"], environment: ["LDLM_CONFIG_FILE": "/a.yaml"], files: files, is: configWith { $0.maxNameBytes = 2 })
        XCTAssertConfigError(["--config_file", "/missing.yaml"], is: "cannot read config file /missing.yaml: no such file")
    }

    func testBadEnvironmentValueNamesTheFlag() {
        XCTAssertConfigError([], environment: ["LDLM_KEEPALIVE_TIMEOUT": "soon"], is: #"invalid duration "soon" for --keepalive_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError([], environment: ["LDLM_SHARDS": "many"], is: #"invalid value "many" for --shards: must be a positive integer"#)
        XCTAssertConfig([], environment: ["LDLM_SHARDS": "4", "LDLM_IDLE_TIMEOUT": "90s", "LDLM_BOGUS": "x"], is: configWith { $0.idleTimeout = .seconds(90) })
    }

    func testPasswordAndPasswordFileAreOneSetting() {
        let files = ["/run/pw": "hunter2\r\n", "/run/empty": "\n", "/c.yaml": "password: from-file\n", "/pwf.yaml": "password_file: /missing\n"]
        let hunter2 = configWith { $0.password = "hunter2" }
        XCTAssertConfig(["--password_file", "/run/pw"], files: files, is: hunter2)
        XCTAssertConfig([], environment: ["LDLM_PASSWORD_FILE": "/run/pw"], files: files, is: hunter2)
        XCTAssertConfig(["--password", "flag"], environment: ["LDLM_PASSWORD_FILE": "/run/pw"], files: files, is: configWith { $0.password = "flag" })
        XCTAssertConfig(["--password_file", "/run/pw"], environment: ["LDLM_PASSWORD": "env"], files: files, is: hunter2)
        XCTAssertConfig(["-c", "/c.yaml"], environment: ["LDLM_PASSWORD_FILE": "/run/pw"], files: files, is: hunter2)
        XCTAssertConfig(["-c", "/pwf.yaml", "--password", "flag"], files: files, is: configWith { $0.password = "flag" })
        XCTAssertConfigError(["--password", "a", "--password_file", "/run/pw"], files: files, is: "give either a password or a password file, not both")
        XCTAssertConfigError([], environment: ["LDLM_PASSWORD": "a", "LDLM_PASSWORD_FILE": "/run/pw"], files: files, is: "give either a password or a password file, not both")
        XCTAssertConfigError(["--password_file", "/missing"], is: "cannot read password file /missing: no such file")
        XCTAssertConfigError(["--password_file", "/run/empty"], files: files, is: "password file /run/empty is empty")
        XCTAssertConfig(["--password", ""], environment: ["LDLM_PASSWORD": "env"], is: configWith())
    }

    func testTLSFlagCombinations() {
        let tls = configWith {
            $0.tlsCertificatePath = "/cert.pem"
            $0.tlsKeyPath = "/key.pem"
        }
        XCTAssertConfig(["--tls_cert", "/cert.pem", "--tls_key", "/key.pem"], is: tls)
        let mutual = configWith {
            $0 = tls
            $0.clientCAPath = "/ca.pem"
        }
        XCTAssertConfig(["--tls_cert", "/cert.pem", "--tls_key", "/key.pem", "--client_ca", "/ca.pem"], is: mutual)
        XCTAssertConfig(["--tls_cert", "/cert.pem", "--tls_key", "/key.pem", "--client_ca", "/ca.pem", "--client_cert_verify"], is: mutual)
        XCTAssertConfig(["--tls_cert", "/cert.pem", "--tls_key", "/key.pem", "--client_cert_verify=false"], is: tls)
        XCTAssertConfigError(["--tls_cert", "/cert.pem"], is: "--tls_cert and --tls_key must be given together")
        XCTAssertConfigError(["--tls_key", "/key.pem"], is: "--tls_cert and --tls_key must be given together")
        XCTAssertConfigError(["--client_ca", "/ca.pem"], is: "--client_ca needs --tls_cert and --tls_key")
        XCTAssertConfigError(
            ["--client_cert_verify", "--tls_cert", "/cert.pem", "--tls_key", "/key.pem"],
            is: "--client_cert_verify needs --client_ca, the CA that client certificates must chain to")
        XCTAssertConfigError(
            [], environment: ["LDLM_CLIENT_CERT_VERIFY": "sure"],
            is: #"invalid boolean "sure" for --client_cert_verify"#)
    }

    func testGoDurations() {
        XCTAssertEqual(parseGoDuration("0"), 0)
        XCTAssertEqual(parseGoDuration("500ms"), 500_000_000)
        XCTAssertEqual(parseGoDuration("10s"), 10_000_000_000)
        XCTAssertEqual(parseGoDuration("1m30s"), 90_000_000_000)
        XCTAssertEqual(parseGoDuration("1.5h"), 5_400_000_000_000)
        XCTAssertEqual(parseGoDuration("2us"), 2_000)
        XCTAssertNil(parseGoDuration(""))
        XCTAssertNil(parseGoDuration("10"))
        XCTAssertNil(parseGoDuration("-1s"))
        XCTAssertNil(parseGoDuration("1d"))
        XCTAssertEqual(formatGoDuration(90_000_000_000), "1m30s")
        XCTAssertEqual(formatGoDuration(500_000_000), "500ms")
    }

    func testListenAddressForms() throws {
        let named = try ListenAddress(parsing: "localhost:3144")
        XCTAssertEqual(named.host, "localhost")
        XCTAssertEqual(named.port, 3144)
        let any = try ListenAddress(parsing: ":3144")
        XCTAssertEqual(any.host, "::")
        XCTAssertEqual(any.port, 3144)
        let v6 = try ListenAddress(parsing: "[::1]:80")
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.port, 80)
    }

    func testPasswordComparisonIsExact() {
        XCTAssertTrue(constantTimeEquals(Array("secret".utf8), Array("secret".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("secret".utf8), Array("secreT".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("secret".utf8), Array("secret2".utf8)))
        XCTAssertFalse(constantTimeEquals([], Array("x".utf8)))
    }
}
