import XCTest

@testable import LDLMServer

final class ConnectionManagementStateMachineTests: XCTestCase {
    private typealias Machine = ConnectionManagementStateMachine
    private let idle = Machine.Activity(openStreams: 0, lastStreamID: 7, sessionBusy: false)

    private func machine(idleTimeout: UInt64? = 100) -> Machine {
        Machine(configuration: .init(keepaliveInterval: 10, keepaliveTimeout: 5, idleTimeout: idleTimeout))
    }

    func testOnlyOnePingIsOutstandingAtATime() {
        var state = machine()
        XCTAssertEqual(state.keepaliveIntervalElapsed(), .sendPing)
        XCTAssertEqual(state.keepaliveIntervalElapsed(), .none, "the first PING's timeout decides")
        XCTAssertTrue(state.pingTimeoutElapsed())
        state.pingAcknowledged()
        XCTAssertFalse(state.pingTimeoutElapsed(), "an acknowledged PING never closes the connection")
        XCTAssertEqual(state.keepaliveIntervalElapsed(), .sendPing)
    }

    func testIdleCountsFromTheFirstIdleSample() {
        var state = machine()
        XCTAssertFalse(state.idleCheck(idle, now: 1_000))
        XCTAssertFalse(state.idleCheck(idle, now: 1_099))
        XCTAssertTrue(state.idleCheck(idle, now: 1_100))
    }

    func testAnyCallBetweenSamplesRestartsTheIdleClock() {
        var state = machine()
        XCTAssertFalse(state.idleCheck(idle, now: 0))
        var afterACall = idle
        afterACall.lastStreamID += 2
        XCTAssertFalse(state.idleCheck(afterACall, now: 150), "a call started in between")
        XCTAssertFalse(state.idleCheck(afterACall, now: 249))
        XCTAssertTrue(state.idleCheck(afterACall, now: 250))
    }

    func testOpenStreamsHeldLocksAndWaitersAreNotIdle() {
        var state = machine()
        for busy in [
            Machine.Activity(openStreams: 1, lastStreamID: 7, sessionBusy: false),
            Machine.Activity(openStreams: 0, lastStreamID: 7, sessionBusy: true),
        ] {
            XCTAssertFalse(state.idleCheck(busy, now: 0))
            XCTAssertFalse(state.idleCheck(busy, now: 10_000), "\(busy)")
        }
        XCTAssertFalse(state.idleCheck(idle, now: 10_001), "idle only from now on")
    }

    func testWithoutAnIdleTimeoutNothingIsEverIdle() {
        var state = machine(idleTimeout: nil)
        XCTAssertNil(state.idleCheckInterval)
        XCTAssertFalse(state.idleCheck(idle, now: 0))
        XCTAssertFalse(state.idleCheck(idle, now: .max))
    }

    func testQuiesceDrainsOnceAndStopsIdleClosing() {
        var state = machine()
        XCTAssertTrue(state.quiesce())
        XCTAssertFalse(state.quiesce(), "a second request to drain changes nothing")
        XCTAssertFalse(state.idleCheck(idle, now: 0))
        XCTAssertFalse(state.idleCheck(idle, now: 1_000), "a draining connection is already closing")
    }
}
