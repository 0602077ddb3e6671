import XCTest

@testable import LDLMServer

final class ConfigFileTests: XCTestCase {
    private func assertFile(
        _ text: String, path: String = "/c.yaml", is expected: ServerConfig,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertConfig(["--config_file", path], files: [path: text], is: expected, file: file, line: line)
    }

    private func assertFileError(
        _ text: String, path: String = "/c.yaml", is expected: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertConfigError(["--config_file", path], files: [path: text], is: expected, file: file, line: line)
    }

    func testYAMLWithCommentsQuotesNumbersAndBooleans() {
        let yaml = """
            # ldlm
            ---
            password: "p#w" # secret
            listen_address: '127.0.0.1:1'
            "keepalive_interval": 1m30s
            max_name_bytes: 64
            max_message_bytes: "128"
            no_clear_on_disconnect: yes
            log_level: WARN
            lock_gc_interval: 30m
            shards: 16
            idle_timeout: 2s

            """
        assertFile(yaml, is: configWith {
            $0.password = "p#w"
            $0.listenAddress = "127.0.0.1:1"
            $0.keepaliveInterval = .seconds(90)
            $0.maxNameBytes = 64
            $0.maxMessageBytes = 128
            $0.clearOnDisconnect = false
            $0.logLevel = .warning
            $0.idleTimeout = .seconds(2)
        })
    }

    func testYAMLScalarsAreTakenAsWritten() {
        assertFile("password: 0x1F\n", is: configWith { $0.password = "0x1F" })
        assertFile("password: yes\n", is: configWith { $0.password = "yes" })
        assertFile("password: 1_000\n", is: configWith { $0.password = "1_000" })
        assertFile("password: ~\n", is: configWith { $0.password = "~" })
        assertFile("password:\n", is: configWith())
        assertFile("listen_address: :4000\n", is: configWith { $0.listenAddress = ":4000" })
        assertFile("no_clear_on_disconnect: on\nmax_name_bytes: '7'\n", is: configWith {
            $0.clearOnDisconnect = false
            $0.maxNameBytes = 7
        })
    }

    func testEmptyYAMLIsNoSettings() {
        assertFile("", is: configWith())
        assertFile("# nothing yet\n", is: configWith())
    }

    func testJSONStringsNumbersAndBooleans() {
        let json = #"{"listen_address": ":4000", "no_clear_on_disconnect": true, "max_name_bytes": 64, "keepalive_timeout": "3s"}"#
        assertFile(json, path: "/c.json", is: configWith {
            $0.listenAddress = ":4000"
            $0.clearOnDisconnect = false
            $0.maxNameBytes = 64
            $0.keepaliveTimeout = .seconds(3)
        })
        assertFile(#"  {"no_clear_on_disconnect": false, "max_name_bytes": 8}"#, path: "/c.json", is: configWith { $0.maxNameBytes = 8 })
    }

    func testRESTGatewayKeys() {
        assertFile("rest_listen_address: :8080\nrest_session_timeout: 1m\n", is: configWith {
            $0.restListenAddress = ":8080"
            $0.restSessionTimeout = .seconds(60)
        })
    }

    func testUnknownKeysAreRefused() {
        assertFileError("unknown_key: 1\n", is: #"config file /c.yaml: unknown option "unknown_key""#)
        assertFileError(#"{"version": true}"#, path: "/c.json", is: #"config file /c.json: unknown option "version""#)
    }

    func testMalformedFilesAreOneLineErrors() {
        assertFileError("not yaml at all\n", is: #"config file /c.yaml line 1: expected "key: value""#)
        assertFileError("# list\n- a\n", is: #"config file /c.yaml line 2: expected "key: value""#)
        assertFileError("password: [unclosed\n  - x: : :\n", is: "config file /c.yaml line 2: did not find expected ',' or ']'")
        assertFileError("password: \"x\n", is: "config file /c.yaml line 2: found unexpected end of stream")
        assertFileError("a: 1\n  b: 2\n", is: "config file /c.yaml line 2: mapping values are not allowed in this context")
        assertFileError("password: a\npassword: b\n", is: #"config file /c.yaml: "password" given more than once"#)
        assertFileError("password:\n  nested: 1\n", is: #"config file /c.yaml: value of "password" must be a string, number or boolean"#)
        assertFileError("password: [a]\n", is: #"config file /c.yaml: value of "password" must be a string, number or boolean"#)
        assertFileError(#"{"password": "x","#, path: "/c.json", is: "config file /c.json is not a valid JSON object")
        assertFileError(#"{"password": null}"#, path: "/c.json", is: #"config file /c.json: value of "password" must be a string, number or boolean"#)
        assertFileError(#"{"password": {"a": 1}}"#, path: "/c.json", is: #"config file /c.json: value of "password" must be a string, number or boolean"#)
    }

    func testFileValuesAreCheckedLikeFlags() {
        assertFileError("keepalive_interval: forever\n", is: #"invalid duration "forever" for --keepalive_interval: use Go syntax such as 500ms, 10s or 1m30s"#)
        assertFileError(#"{"keepalive_timeout": "10 parsecs"}"#, path: "/c.json", is: #"invalid duration "10 parsecs" for --keepalive_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
        assertFileError("log_level: loud\n", is: #"invalid value "loud" for --log_level: use debug, info, warn or error"#)
        assertFileError(#"{"max_name_bytes": 1.5}"#, path: "/c.json", is: #"invalid value "1.5" for --max_name_bytes: must be a positive integer"#)
        assertFileError(#"{"max_name_bytes": 8.0}"#, path: "/c.json", is: #"invalid value "8.0" for --max_name_bytes: must be a positive integer"#)
        assertFileError("shutdown_timeout: 0s\n", is: "--shutdown_timeout must be greater than 0")
        assertFileError("no_clear_on_disconnect: maybe\n", is: #"invalid boolean "maybe" for --no_clear_on_disconnect"#)
    }
}
