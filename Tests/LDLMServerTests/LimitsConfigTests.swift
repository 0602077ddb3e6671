import XCTest

@testable import LDLMServer

final class LimitsConfigTests: XCTestCase {
    private let integerLimits: [(flag: String, keyPath: WritableKeyPath<ServerConfig, Int>, defaultValue: Int)] = [
        ("max_locks", \.maxLocks, 1_000_000),
        ("max_waiters", \.maxWaiters, 10_000),
        ("max_connections", \.maxConnections, 10_000),
        ("max_connections_per_ip", \.maxConnectionsPerIP, 1_000),
        ("max_concurrent_streams", \.maxConcurrentStreams, 1_000),
        ("max_header_list_bytes", \.maxHeaderListBytes, 16_384),
    ]

    func testDefaults() {
        let config = ServerConfig()
        for limit in integerLimits {
            XCTAssertEqual(config[keyPath: limit.keyPath], limit.defaultValue, limit.flag)
        }
        XCTAssertEqual(config.prefaceTimeout, .seconds(10))
    }

    func testEachLimitFromFlagEnvironmentAndFile() {
        for (index, limit) in integerLimits.enumerated() {
            let fromFlag = configWith { $0[keyPath: limit.keyPath] = 11 + index }
            XCTAssertConfig(["--\(limit.flag)", "\(11 + index)"], is: fromFlag)
            XCTAssertConfig([], environment: ["LDLM_\(limit.flag.uppercased())": "\(11 + index)"], is: fromFlag)
            XCTAssertConfig(["-c", "/l.yaml"], files: ["/l.yaml": "\(limit.flag): \(11 + index)\n"], is: fromFlag)
            XCTAssertConfig(
                ["--\(limit.flag)=3"],
                environment: ["LDLM_\(limit.flag.uppercased())": "4", "LDLM_CONFIG_FILE": "/l.yaml"],
                files: ["/l.yaml": "\(limit.flag): 5\n"],
                is: configWith { $0[keyPath: limit.keyPath] = 3 })
        }
        let fromFlag = configWith { $0.prefaceTimeout = .milliseconds(1_500) }
        XCTAssertConfig(["--preface_timeout", "1.5s"], is: fromFlag)
        XCTAssertConfig([], environment: ["LDLM_PREFACE_TIMEOUT": "1500ms"], is: fromFlag)
        XCTAssertConfig(["-c", "/l.json"], files: ["/l.json": #"{"preface_timeout": "1.5s"}"#], is: fromFlag)
    }

    func testBadValuesAreRefused() {
        for limit in integerLimits {
            for bad in ["0", "-1", "many", "2.5"] {
                XCTAssertConfigError(["--\(limit.flag)", bad], is: #"invalid value "\#(bad)" for --\#(limit.flag): must be a positive integer"#)
            }
            XCTAssertConfigError(
                [], environment: ["LDLM_\(limit.flag.uppercased())": "0"],
                is: #"invalid value "0" for --\#(limit.flag): must be a positive integer"#)
        }
        XCTAssertConfigError(["--max_concurrent_streams", "4294967296"], is: #"invalid value "4294967296" for --max_concurrent_streams: must be at most 4294967295"#)
        XCTAssertConfigError(["--max_header_list_bytes", "4294967296"], is: #"invalid value "4294967296" for --max_header_list_bytes: must be at most 4294967295"#)
        XCTAssertConfigError(["--preface_timeout", "0"], is: "--preface_timeout must be greater than 0")
        XCTAssertConfigError(["--preface_timeout", "soon"], is: #"invalid duration "soon" for --preface_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
        XCTAssertConfigError(["--preface_timeout", "-1s"], is: #"invalid duration "-1s" for --preface_timeout: use Go syntax such as 500ms, 10s or 1m30s"#)
    }
}
