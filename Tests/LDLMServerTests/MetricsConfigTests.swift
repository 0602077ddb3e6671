import XCTest

@testable import LDLMServer

/// `--metrics_listen_address`, from flags, environment and config file.
final class MetricsConfigTests: XCTestCase {
    func testOffByDefault() throws {
        guard case .run(let config) = try resolveRequest([]) else { return XCTFail("no configuration") }
        XCTAssertNil(config.metricsListenAddress)
    }

    func testFromFlagEnvironmentAndFile() {
        XCTAssertConfig(["--metrics_listen_address", ":9144"], is: configWith { $0.metricsListenAddress = ":9144" })
        XCTAssertConfig(
            [], environment: ["LDLM_METRICS_LISTEN_ADDRESS": "127.0.0.1:9144"], is: configWith { $0.metricsListenAddress = "127.0.0.1:9144" }
        )
        XCTAssertConfig(
            ["-c", "/c.yaml"], files: ["/c.yaml": "metrics_listen_address: '[::1]:9144'\n"], is: configWith { $0.metricsListenAddress = "[::1]:9144" }
        )
        XCTAssertConfig(["--metrics_listen_address", ""], environment: ["LDLM_METRICS_LISTEN_ADDRESS": ":9144"], is: configWith())
    }

    func testAnAddressWithoutAPortIsRefused() {
        XCTAssertConfigError(
            ["--metrics_listen_address", "localhost"],
            is: "metrics_listen_address: invalid listen address \"localhost\": expected host:port"
        )
    }
}
