import XCTest

@testable import LDLMServer

final class ServerConfigTests: XCTestCase {
    func testDefaultsMatchGoLDLMServer() throws {
        guard case .run(let config) = try resolveRequest([]) else {
            return XCTFail("no configuration")
        }
        XCTAssertEqual(config.listenAddress, "localhost:3144")
        XCTAssertNil(config.password)
        XCTAssertEqual(config.keepaliveInterval, .seconds(60))
        XCTAssertEqual(config.keepaliveTimeout, .seconds(10))
        XCTAssertTrue(config.clearOnDisconnect)
        XCTAssertEqual(config.logLevel, .info)
        XCTAssertEqual(config.maxNameBytes, 4096)
        XCTAssertEqual(config.maxMessageBytes, 4_194_304)
        XCTAssertNil(config.tlsCertificatePath)
        XCTAssertNil(config.tlsKeyPath)
        XCTAssertNil(config.clientCAPath)
        XCTAssertEqual(config.handshakeTimeout, .seconds(10))
        XCTAssertEqual(config.shutdownTimeout, .seconds(10))
        XCTAssertEqual(config.idleTimeout, .zero)
        XCTAssertFalse(config.usesTLS)
    }

    func testEveryLongFlagInGoSpellings() {
        XCTAssertConfig(
            [
                "--listen_address", "127.0.0.1:9000", "-password=pw", "--keepalive_interval=1m30s",
                "-keepalive_timeout", "500ms", "--no_clear_on_disconnect", "--log_level", "warn",
                "--max_name_bytes=64", "-max_message_bytes", "1024", "--handshake_timeout", "2s",
                "--shutdown_timeout", "30s", "--idle_timeout=5m", "--lock_gc_interval", "30m",
                "-lock_gc_min_idle=5m", "--shards", "16",
            ],
            is: configWith {
                $0.listenAddress = "127.0.0.1:9000"
                $0.password = "pw"
                $0.keepaliveInterval = .seconds(90)
                $0.keepaliveTimeout = .milliseconds(500)
                $0.clearOnDisconnect = false
                $0.logLevel = .warning
                $0.maxNameBytes = 64
                $0.maxMessageBytes = 1024
                $0.handshakeTimeout = .seconds(2)
                $0.shutdownTimeout = .seconds(30)
                $0.idleTimeout = .seconds(300)
            })
    }

    func testGoLDLMShortFlags() {
        XCTAssertConfig(["-l", "127.0.0.1:7"], is: configWith { $0.listenAddress = "127.0.0.1:7" })
        XCTAssertConfig(["-k", "2m"], is: configWith { $0.keepaliveInterval = .seconds(120) })
        XCTAssertConfig(["-t=3s"], is: configWith { $0.keepaliveTimeout = .seconds(3) })
        XCTAssertConfig(["-v", "debug"], is: configWith { $0.logLevel = .debug })
        XCTAssertConfig(["-n"], is: configWith { $0.clearOnDisconnect = false })
        XCTAssertConfig(["--n=false"], is: configWith())
        XCTAssertConfig(["-c", "/c.yaml"], files: ["/c.yaml": "max_name_bytes: 9\n"], is: configWith { $0.maxNameBytes = 9 })
        XCTAssertConfig(["-g", "1m", "-m", "2m"], is: configWith())
        // Accepted without effect, so the error is what shows the mapping.
        XCTAssertConfigError(["-g", "x"], is: #"invalid duration "x" for --lock_gc_interval: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["-m", "x"], is: #"invalid duration "x" for --lock_gc_min_idle: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["-l"], is: "flag -l (--listen_address) needs a value")
    }

    func testRESTGatewayTakesGoLDLMsFlagsAndEnvironment() {
        XCTAssertNil(ServerConfig().restListenAddress)
        XCTAssertEqual(ServerConfig().restSessionTimeout, .seconds(600))
        XCTAssertConfig(["-r", ":8080"], is: configWith { $0.restListenAddress = ":8080" })
        XCTAssertConfig(["--rest_listen_address", "127.0.0.1:1", "--rest_session_timeout", "30s"], is: configWith {
            $0.restListenAddress = "127.0.0.1:1"
            $0.restSessionTimeout = .seconds(30)
        })
        XCTAssertConfig([], environment: ["LDLM_REST_LISTEN_ADDRESS": ":9", "LDLM_MAX_REST_SESSIONS": "5"], is: configWith {
            $0.restListenAddress = ":9"
            $0.maxRESTSessions = 5
        })
        XCTAssertConfig(["--rest_listen_address="], is: configWith())
        XCTAssertConfigError(["-r", "nowhere"], is: #"invalid listen address "nowhere": expected host:port"#)
        XCTAssertConfigError(["--rest_session_timeout", "0"], is: "--rest_session_timeout must be greater than 0")
        XCTAssertConfigError(["--max_rest_sessions", "0"], is: #"invalid value "0" for --max_rest_sessions: must be a positive integer"#)
    }

    func testStateFileAndDefaultLockTimeoutTakeGoLDLMsNames() {
        XCTAssertEqual(ServerConfig().defaultLockTimeout, .seconds(600))
        XCTAssertNil(ServerConfig().stateFile)
        XCTAssertConfig(["-s", "/var/lib/ldlm/state"], is: configWith { $0.stateFile = "/var/lib/ldlm/state" })
        XCTAssertConfig(["--state_file", "/x", "-d", "90s"], is: configWith {
            $0.stateFile = "/x"
            $0.defaultLockTimeout = .seconds(90)
        })
        XCTAssertConfig(["-default_lock_timeout=1m"], is: configWith { $0.defaultLockTimeout = .seconds(60) })
        XCTAssertConfig(["--state_file="], is: configWith())
        XCTAssertConfigError(["-d", "0"], is: "--default_lock_timeout must be greater than 0")
        XCTAssertConfigError(["-d", "soon"], is: #"invalid duration "soon" for --default_lock_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
    }

    func testVersionAndHelp() throws {
        for arguments in [["--version"], ["-version"], ["-l", ":1", "--version"]] {
            XCTAssertEqual(try resolveRequest(arguments), .showVersion("ldlm-server (swift-ldlm) 0.3.0"), "\(arguments)")
        }
        for arguments in [["--help"], ["-help"], ["-h"], ["--h"], ["-l", ":1", "--help"]] {
            guard case .showHelp(let text) = try resolveRequest(arguments) else {
                XCTFail("\(arguments): no help")
                continue
            }
            // ArgumentParser wraps to the terminal's width.
            let usage = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            XCTAssertTrue(usage.contains("Precedence: flag, then environment, then config file."), usage)
            XCTAssertTrue(usage.contains("LDLM_<FLAG>"), usage)
            XCTAssertTrue(usage.contains("-l, --listen_address, -listen_address <host:port>"), usage)
            XCTAssertTrue(usage.contains("(default localhost:3144)"), usage)
            XCTAssertTrue(usage.contains("(default 10s)"), usage)
            XCTAssertTrue(usage.contains("-h, -help, --help"), usage)
            for setting in ConfigSetting.allCases where !setting.isHiddenFromHelp {
                XCTAssertTrue(usage.contains("--\(setting.name)"), "help lacks --\(setting.name)")
            }
            XCTAssertFalse(usage.contains("debug_fault"), "a debug fault is offered in help")
        }
    }

    func testBooleanForms() {
        let on = configWith { $0.clearOnDisconnect = false }
        for form in ["", "=true", "=1", "=t", "=TRUE", "=yes", "=on"] {
            XCTAssertConfig(["--no_clear_on_disconnect" + form], is: on)
            XCTAssertConfig(["-no_clear_on_disconnect" + form], is: on)
        }
        for form in ["=false", "=0", "=f", "=False", "=no", "=off"] {
            XCTAssertConfig(["--no_clear_on_disconnect" + form], environment: ["LDLM_NO_CLEAR_ON_DISCONNECT": "1"], is: configWith())
        }
        XCTAssertConfig([], environment: ["LDLM_NO_CLEAR_ON_DISCONNECT": "true"], is: on)
        XCTAssertConfigError(["--no_clear_on_disconnect=maybe"], is: #"invalid boolean "maybe" for --no_clear_on_disconnect"#)
        XCTAssertConfigError(["--no_clear_on_disconnect="], is: #"invalid boolean "" for --no_clear_on_disconnect"#)
        // As in Go, the argument after a boolean flag is never its value.
        XCTAssertConfigError(["--no_clear_on_disconnect", "false"], is: #"unexpected argument "false""#)
        XCTAssertConfigError(["-n", "x"], is: #"unexpected argument "x""#)
    }

    func testGoCommandLineSyntax() {
        XCTAssertConfig(["--password", "-x"], is: configWith { $0.password = "-x" })
        XCTAssertConfig(["--password", "--no_clear_on_disconnect"], is: configWith { $0.password = "--no_clear_on_disconnect" })
        XCTAssertConfig(["--password", "-h"], is: configWith { $0.password = "-h" })
        XCTAssertConfig(["--password", "---x"], is: configWith { $0.password = "---x" })
        XCTAssertConfig(["--password", "--", "-n"], is: configWith {
            $0.password = "--"
            $0.clearOnDisconnect = false
        })
        XCTAssertConfig(["--password=a=b"], is: configWith { $0.password = "a=b" })
        XCTAssertConfig(["--password=", "-n"], environment: ["LDLM_PASSWORD": "env"], is: configWith { $0.clearOnDisconnect = false })
        XCTAssertConfig(["--max_name_bytes", "1", "--max_name_bytes", "2"], is: configWith { $0.maxNameBytes = 2 })
        XCTAssertConfigError(["--bogus"], is: "unknown flag --bogus (see --help)")
        XCTAssertConfigError(["--bogus=1"], is: "unknown flag --bogus (see --help)")
        XCTAssertConfigError(["-x"], is: "unknown flag --x (see --help)")
        // One name in Go, not the short flags -n -o -t -h -i -n -g.
        XCTAssertConfigError(["-nothing"], is: "unknown flag --nothing (see --help)")
        XCTAssertConfigError(["-shutdown_timeot", "5s"], is: "unknown flag --shutdown_timeot (see --help)")
        XCTAssertConfigError(["---password", "x"], is: "unknown flag ---password (see --help)")
        XCTAssertConfigError(["--generate-completion-script", "bash"], is: "unknown flag --generate-completion-script (see --help)")
        XCTAssertConfigError(["--max_name_bytes", "10", "--nope", "x"], is: "unknown flag --nope (see --help)")
        XCTAssertConfigError(["--password"], is: "flag --password needs a value")
        XCTAssertConfigError(["-keepalive_interval"], is: "flag --keepalive_interval needs a value")
        XCTAssertConfigError(["positional"], is: #"unexpected argument "positional""#)
        XCTAssertConfigError(["-"], is: #"unexpected argument "-""#)
        XCTAssertConfigError(["--", "--password", "x"], is: #"unexpected argument "--password""#)
        XCTAssertConfigError(
            ["--version=1"],
            is: "invalid command line: The option '--version' does not take any value, but '1' was specified.")
    }

    func testValuesAreChecked() {
        XCTAssertConfigError(["--keepalive_interval", "5x"], is: #"invalid duration "5x" for --keepalive_interval: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["--keepalive_timeout", ""], is: #"invalid duration "" for --keepalive_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["-t", "1m30"], is: #"invalid duration "1m30" for --keepalive_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["--idle_timeout", "-1s"], is: #"invalid duration "-1s" for --idle_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["--log_level", "loud"], is: #"invalid value "loud" for --log_level: use debug, info, warn or error"#)
        XCTAssertConfigError(["--max_name_bytes", "-1"], is: #"invalid value "-1" for --max_name_bytes: must be a positive integer"#)
        XCTAssertConfigError(["--max_message_bytes", "12.5"], is: #"invalid value "12.5" for --max_message_bytes: must be a positive integer"#)
        XCTAssertConfigError(["--shards", "0"], is: #"invalid value "0" for --shards: must be a positive integer"#)
        XCTAssertConfigError(["--listen_address", "nohostport"], is: #"invalid listen address "nohostport": expected host:port"#)
        XCTAssertConfigError(["--listen_address", "host:99999"], is: #"invalid port in listen address "host:99999""#)
        XCTAssertConfig(["--log_level", "WARNING"], is: configWith { $0.logLevel = .warning })
        XCTAssertConfig(["--log_level", "error"], is: configWith { $0.logLevel = .error })
    }

    func testDebugFaultsAreNamedAndChecked() {
        XCTAssertConfig(["--debug_fault", "skip_size_check, ack_before_sync"], is: configWith {
            $0.debugFaults = [.skipSizeCheck, .acknowledgeBeforeSync]
        })
        XCTAssertConfig([], is: configWith { $0.debugFaults = [] })
        XCTAssertConfigError(["--debug_fault", "skip_everything"], is: #"invalid value "skip_everything" for --debug_fault: use skip_size_check, ack_before_sync"#)
    }

    func testTimeoutsThatMustBePositive() {
        XCTAssertConfigError(["--shutdown_timeout", "0"], is: "--shutdown_timeout must be greater than 0")
        XCTAssertConfigError([], environment: ["LDLM_SHUTDOWN_TIMEOUT": "0s"], is: "--shutdown_timeout must be greater than 0")
        XCTAssertConfigError(["--handshake_timeout", "0"], is: "--handshake_timeout must be greater than 0")
        XCTAssertConfigError(["--keepalive_timeout", "0"], is: "--keepalive_timeout must be greater than 0 when keepalive is on")
        XCTAssertConfig(
            ["--keepalive_interval", "0", "--keepalive_timeout", "0"],
            is: configWith {
                $0.keepaliveInterval = .zero
                $0.keepaliveTimeout = .zero
            })
        XCTAssertConfig(["--idle_timeout", "0"], is: configWith())
        XCTAssertConfig(["--shutdown_timeout", "1.5s"], is: configWith { $0.shutdownTimeout = .milliseconds(1500) })
    }
}
