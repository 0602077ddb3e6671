import XCTest

@testable import LDLMServer

final class ServerConfigTests: XCTestCase {
    private func resolve(
        _ arguments: [String],
        environment: [String: String] = [:],
        files: [String: String] = [:]
    ) throws -> ServerConfig {
        let request = try ServerConfig.resolve(arguments: arguments, environment: environment) { path in
            guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
            return text
        }
        guard case .run(let config) = request else {
            XCTFail("expected a configuration, got \(request)")
            return ServerConfig()
        }
        return config
    }

    private func configError(
        _ arguments: [String],
        environment: [String: String] = [:],
        files: [String: String] = [:]
    ) -> String? {
        do {
            _ = try resolve(arguments, environment: environment, files: files)
            return nil
        } catch let error as ConfigError {
            return error.message
        } catch {
            return "unexpected \(error)"
        }
    }

    func testDefaultsMatchGoLDLMServer() throws {
        let config = try resolve([])
        XCTAssertEqual(config.listenAddress, "localhost:3144")
        XCTAssertNil(config.password)
        XCTAssertEqual(config.keepaliveInterval, .seconds(60))
        XCTAssertEqual(config.keepaliveTimeout, .seconds(10))
        XCTAssertTrue(config.clearOnDisconnect)
        XCTAssertEqual(config.logLevel, .info)
        XCTAssertEqual(config.maxNameBytes, 4096)
        XCTAssertFalse(config.usesTLS)
    }

    func testFlagsAcceptGoSpellings() throws {
        let config = try resolve([
            "--listen_address", "127.0.0.1:9000",
            "-password=pw",
            "--keepalive_interval=1m30s",
            "--keepalive_timeout", "500ms",
            "--no_clear_on_disconnect",
            "--log_level", "warn",
            "--lock_gc_interval", "30m",
        ])
        XCTAssertEqual(config.listenAddress, "127.0.0.1:9000")
        XCTAssertEqual(config.password, "pw")
        XCTAssertEqual(config.keepaliveInterval, .seconds(90))
        XCTAssertEqual(config.keepaliveTimeout, .milliseconds(500))
        XCTAssertFalse(config.clearOnDisconnect)
        XCTAssertEqual(config.logLevel, .warning)
    }

    func testFlagBeatsEnvironmentWhichBeatsConfigFile() throws {
        let files = ["/etc/ldlm.yaml": "password: from-file\nlog_level: error\nkeepalive_timeout: 3s\n"]
        let environment = ["LDLM_CONFIG_FILE": "/etc/ldlm.yaml", "LDLM_PASSWORD": "from-env", "LDLM_LOG_LEVEL": "debug"]
        let config = try resolve(["--password", "from-flag"], environment: environment, files: files)
        XCTAssertEqual(config.password, "from-flag")
        XCTAssertEqual(config.logLevel, .debug)
        XCTAssertEqual(config.keepaliveTimeout, .seconds(3))

        let withoutFlag = try resolve([], environment: environment, files: files)
        XCTAssertEqual(withoutFlag.password, "from-env")
    }

    func testPasswordFileIsReadWithTrailingNewlineStrippedAndLosesToAPasswordFlag() throws {
        let files = ["/run/pw": "hunter2\n"]
        XCTAssertEqual(try resolve(["--password_file", "/run/pw"], files: files).password, "hunter2")
        XCTAssertEqual(try resolve(["--password", "flag"], environment: ["LDLM_PASSWORD_FILE": "/run/pw"], files: files).password, "flag")
        XCTAssertNotNil(configError(["--password", "a", "--password_file", "/run/pw"], files: files))
        XCTAssertNotNil(configError(["--password_file", "/missing"]))
    }

    func testJSONConfigFile() throws {
        let files = ["/c.json": #"{"listen_address": ":4000", "no_clear_on_disconnect": true, "max_name_bytes": 64}"#]
        let config = try resolve(["--config_file", "/c.json"], files: files)
        XCTAssertEqual(config.listenAddress, ":4000")
        XCTAssertFalse(config.clearOnDisconnect)
        XCTAssertEqual(config.maxNameBytes, 64)
    }

    func testYAMLCommentsAndQuotes() throws {
        let files = ["/c.yaml": "# ldlm\n---\npassword: \"p#w\" # secret\nlisten_address: '127.0.0.1:1'\n"]
        let config = try resolve(["--config_file", "/c.yaml"], files: files)
        XCTAssertEqual(config.password, "p#w")
        XCTAssertEqual(config.listenAddress, "127.0.0.1:1")
    }

    func testBadInputIsAOneLineError() {
        let cases: [([String], [String: String], [String: String])] = [
            (["--bogus"], [:], [:]),
            (["--keepalive_interval", "5x"], [:], [:]),
            (["--keepalive_interval"], [:], [:]),
            (["--log_level", "loud"], [:], [:]),
            (["--listen_address", "nohostport"], [:], [:]),
            (["--listen_address", "host:99999"], [:], [:]),
            (["--max_name_bytes", "-1"], [:], [:]),
            (["positional"], [:], [:]),
            ([], ["LDLM_KEEPALIVE_TIMEOUT": "soon"], [:]),
            (["--config_file", "/c.yaml"], [:], ["/c.yaml": "unknown_key: 1\n"]),
            (["--config_file", "/c.yaml"], [:], ["/c.yaml": "not yaml at all\n"]),
            (["--config_file", "/missing.yaml"], [:], [:]),
            (["--tls_cert", "/a.pem"], [:], [:]),
            (["--client_cert_verify", "--tls_cert", "/a", "--tls_key", "/b"], [:], [:]),
            (["--client_ca", "/ca"], [:], [:]),
        ]
        for (arguments, environment, files) in cases {
            guard let message = configError(arguments, environment: environment, files: files) else {
                XCTFail("\(arguments) \(environment) was accepted")
                continue
            }
            XCTAssertFalse(message.contains("\n"), message)
            XCTAssertFalse(message.isEmpty)
        }
    }

    func testHelpIsNotAnError() throws {
        guard case .showHelp(let usage) = try ServerConfig.resolve(arguments: ["--help"], environment: [:]) else {
            return XCTFail("expected help")
        }
        XCTAssertTrue(usage.contains("--listen_address"))
        XCTAssertTrue(usage.contains("--keepalive_timeout"))
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
        XCTAssertEqual(try ListenAddress(parsing: "localhost:3144"), try ListenAddress(parsing: "localhost:3144"))
        let any = try ListenAddress(parsing: ":3144")
        XCTAssertEqual(any.host, "::")
        XCTAssertEqual(any.port, 3144)
        let v6 = try ListenAddress(parsing: "[::1]:80")
        XCTAssertEqual(v6.host, "::1")
    }

    func testPasswordComparisonIsExact() {
        XCTAssertTrue(constantTimeEquals(Array("secret".utf8), Array("secret".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("secret".utf8), Array("secreT".utf8)))
        XCTAssertFalse(constantTimeEquals(Array("secret".utf8), Array("secret2".utf8)))
        XCTAssertFalse(constantTimeEquals([], Array("x".utf8)))
    }
}
