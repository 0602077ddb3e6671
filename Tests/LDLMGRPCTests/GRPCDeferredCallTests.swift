@testable import LDLMGRPC
import LDLMHTTP2
import LDLMTestSupport
import XCTest

/// Calls answered later: deadlines, withdrawal, drain and connection loss.
final class GRPCDeferredCallTests: XCTestCase {
    private final class Owner {
        var cancels: [Int32] = []
        /// What `cancel` answers: false once the owner's answer is on its way.
        var stillWaiting = true

        func deferredCall(_ streamID: Int32, deadline: UInt64?) -> GRPCDeferredCall {
            GRPCDeferredCall(deadline: deadline) { [self] in
                cancels.append(streamID)
                return stillWaiting
            }
        }
    }

    func testDeadlineFailsAnUnansweredCallWithDeadlineExceeded() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.deferAnswer(streamID: request.streamID, owner.deferredCall(request.streamID, deadline: 1_000))
        XCTAssertEqual(pair.server.nextDeadline, 1_000)

        pair.server.expireDeadlines(now: 999)
        XCTAssertEqual(owner.cancels, [], "not due yet")
        pair.server.expireDeadlines(now: 1_000)
        try pair.pump()

        XCTAssertEqual(owner.cancels, [request.streamID])
        XCTAssertEqual(pair.outcome(of: request.streamID).grpcStatus, String(GRPCStatus.Code.deadlineExceeded.rawValue))
        XCTAssertNil(pair.server.nextDeadline)
    }

    func testDeadlineOfACallAnsweredMeanwhileChangesNothing() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.deferAnswer(streamID: request.streamID, owner.deferredCall(request.streamID, deadline: 1_000))
        pair.sendResponse(streamID: request.streamID, message: [7])

        pair.server.expireDeadlines(now: 5_000)
        try pair.pump()
        XCTAssertEqual(owner.cancels, [], "an answered call is not withdrawn")
        XCTAssertEqual(pair.outcome(of: request.streamID).grpcStatus, "0")
        XCTAssertEqual(pair.outcome(of: request.streamID).body, GRPCMessageFraming.frame([7]))
    }

    func testDeadlineRacingTheOwnersAnswerLetsTheAnswerWin() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        owner.stillWaiting = false
        let request = try pair.dispatchCall(message: [1])
        pair.server.deferAnswer(streamID: request.streamID, owner.deferredCall(request.streamID, deadline: 10))

        pair.server.expireDeadlines(now: 10)
        XCTAssertTrue(pair.server.isAwaitingResponse(request.streamID), "the owner's answer is on its way")
        pair.sendResponse(streamID: request.streamID, message: [3])
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: request.streamID).grpcStatus, "0")
    }

    func testStaleDeadlinesAreDroppedSoMemoryFollowsWaitingCalls() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        for round in 0..<500 {
            let request = try pair.dispatchCall(message: [1])
            pair.server.deferAnswer(streamID: request.streamID, owner.deferredCall(request.streamID, deadline: UInt64(1_000_000 + round)))
            pair.sendResponse(streamID: request.streamID, message: [2])
            try pair.pump()
        }
        XCTAssertLessThanOrEqual(pair.server.deadlineEntryCount, 64, "answered calls leave no deadline behind for long")
    }

    func testFailingDeferredCallsAnswersEachWaitingCallOnly() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let waiting = try pair.dispatchCall(message: [1])
        pair.server.deferAnswer(streamID: waiting.streamID, owner.deferredCall(waiting.streamID, deadline: nil))
        let answeredAtOnce = try pair.dispatchCall(message: [2])
        pair.sendResponse(streamID: answeredAtOnce.streamID, message: [4])

        pair.server.failDeferredCalls(GRPCStatus(.unavailable, "server is shutting down"))
        try pair.pump()
        XCTAssertEqual(owner.cancels, [waiting.streamID])
        XCTAssertEqual(pair.outcome(of: waiting.streamID).grpcStatus, String(GRPCStatus.Code.unavailable.rawValue))
        XCTAssertEqual(pair.outcome(of: waiting.streamID).grpcMessage, "server is shutting down")
        XCTAssertEqual(pair.outcome(of: answeredAtOnce.streamID).grpcStatus, "0")
    }

    func testGracefulCloseFinishesTakenCallsThenGoesInactive() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])

        pair.server.closeGracefully()
        try pair.pump()
        XCTAssertTrue(pair.takeClientEvents().contains(.goAway(lastStreamID: request.streamID, errorCode: 0)))
        XCTAssertTrue(pair.server.http2.isActive, "a taken call is still answered")

        pair.sendResponse(streamID: request.streamID, message: [5])
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: request.streamID).grpcStatus, "0")
        XCTAssertFalse(pair.server.http2.isActive, "nothing is left to serve")
    }

    func testConnectionLossWithdrawsDeferredCallsAndUndoesUndeliveredAnswers() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let waiting = try pair.dispatchCall(message: [1])
        pair.server.deferAnswer(streamID: waiting.streamID, owner.deferredCall(waiting.streamID, deadline: 50))
        let answered = try pair.dispatchCall(message: [2])
        pair.sendResponse(streamID: answered.streamID, message: [9])

        pair.server.connectionClosed()
        XCTAssertEqual(owner.cancels, [waiting.streamID])
        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: answered.streamID, responseDelivered: false)])
        XCTAssertEqual(pair.server.openStreamCount, 0)
        pair.server.expireDeadlines(now: 100)
        XCTAssertEqual(owner.cancels, [waiting.streamID], "a gone call's deadline does nothing")
    }

    func testAResetThatArrivesAfterTheWholeAnswerWentOutUndoesIt() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        pair.sendResponse(streamID: request.streamID, message: [9])
        let answer = try pair.server.http2.drainOutput()
        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: request.streamID, responseDelivered: true)],
                       "sent whole: closed on the server's side")

        // The client cancels before the answer reaches it.
        pair.client.resetStream(request.streamID, errorCode: HTTP2ErrorCode.cancel)
        _ = try pair.server.receive(try pair.client.drainOutput())
        try pair.client.receive(answer)
        XCTAssertEqual(pair.outcome(of: request.streamID).body, [], "the client dropped the answer unread")
        XCTAssertTrue(pair.undeliveredStreams.contains(request.streamID), "so its effect was undone")

        pair.client.resetStream(request.streamID, errorCode: HTTP2ErrorCode.cancel)
        _ = try pair.server.receive(try pair.client.drainOutput())
        XCTAssertEqual(pair.undoCount, 1, "a second reset undoes nothing more")
        try pair.pump()
        XCTAssertTrue(pair.server.http2.isActive)
    }

    func testAnAnswerReadByTheClientIsNeverUndone() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        pair.sendResponse(streamID: request.streamID, message: [9])
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: request.streamID).body, GRPCMessageFraming.frame([9]))
        XCTAssertEqual(pair.undoCount, 0)
    }

    func testALargeCallIsRefusedBeforeItsBodyIsBuffered() throws {
        let pair = try GRPCPair()
        var asked: [(Int32, String, String?)] = []
        pair.server.admission = { streamID, path, headers in
            asked.append((streamID, path, headers.value(named: "authorization")))
            return GRPCStatus(.unauthenticated, "no")
        }
        let body = messagePrefix(length: 2_000_000) + Array(repeating: 7, count: 2_000_000)
        let streamID = try pair.startCall(path: "/ldlm.LDLM/Lock", metadata: [HTTP2Header("authorization", "guess")], body: body)
        try pair.pump()

        XCTAssertEqual(asked.map(\.0), [streamID])
        XCTAssertEqual(asked.first?.1, "/ldlm.LDLM/Lock")
        XCTAssertEqual(asked.first?.2, "guess")
        XCTAssertEqual(pair.takeServerEvents().requests.count, 0, "never dispatched")
        XCTAssertEqual(pair.outcome(of: streamID).grpcStatus, String(GRPCStatus.Code.unauthenticated.rawValue))
        XCTAssertLessThan(pair.bytesSentByClient, body.count / 2, "the client was told to stop sending its body")
    }

    func testASmallCallIsLeftToItsOwnerAndALargeAdmittedOneIsAskedAboutOnce() throws {
        let pair = try GRPCPair()
        var asked = 0
        pair.server.admission = { _, _, _ in asked += 1; return nil }
        let small = try pair.dispatchCall(message: [4, 2])
        XCTAssertEqual(Array(small.message), [4, 2])
        XCTAssertEqual(asked, 0, "a small call costs no admission check")
        let large = try pair.dispatchCall(message: Array(repeating: 1, count: 100_000))
        XCTAssertEqual(large.message.count, 100_000)
        XCTAssertEqual(asked, 1)
    }

    func testLastStreamIDTracksTheNewestCall() throws {
        let pair = try GRPCPair()
        XCTAssertEqual(pair.server.lastStreamID, 0)
        let first = try pair.dispatchCall(message: [1])
        let second = try pair.dispatchCall(message: [1])
        XCTAssertEqual(pair.server.lastStreamID, second.streamID)
        XCTAssertGreaterThan(second.streamID, first.streamID)
    }
}
