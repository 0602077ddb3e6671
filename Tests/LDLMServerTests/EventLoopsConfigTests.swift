import XCTest

@testable import LDLMServer

final class EventLoopsConfigTests: XCTestCase {
    func testDefaultIsOneLoop() {
        XCTAssertEqual(ServerConfig().eventLoops, 1)
        XCTAssertEqual(ConfigSetting.eventLoops.defaultValue, "1")
    }

    func testFromFlagEnvironmentAndFile() {
        let four = configWith { $0.eventLoops = 4 }
        XCTAssertConfig(["--event_loops", "4"], is: four)
        XCTAssertConfig(["-event_loops=4"], is: four)
        XCTAssertConfig([], environment: ["LDLM_EVENT_LOOPS": "4"], is: four)
        XCTAssertConfig(["-c", "/l.yaml"], files: ["/l.yaml": "event_loops: 4\n"], is: four)
        XCTAssertConfig(["--event_loops", "1"], environment: ["LDLM_EVENT_LOOPS": "3"], is: configWith { $0.eventLoops = 1 })
    }

    func testBadValuesAreRefusedAtStartup() {
        for bad in ["0", "-2", "two", "1.5", ""] {
            XCTAssertConfigError(["--event_loops", bad], is: #"invalid value "\#(bad)" for --event_loops: must be a positive integer"#)
        }
        XCTAssertConfigError([], environment: ["LDLM_EVENT_LOOPS": "0"], is: #"invalid value "0" for --event_loops: must be a positive integer"#)
        XCTAssertConfigError(["--event_loops", "1025"], is: #"invalid value "1025" for --event_loops: must be at most 1024"#)
    }
}
