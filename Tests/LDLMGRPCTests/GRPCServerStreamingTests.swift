@testable import LDLMGRPC
@testable import LDLMHTTP2
import LDLMTestSupport
import XCTest

/// Server-streaming calls: several messages on one stream, the status later,
/// and the ways a stream ends without its owner (reset, deadline, drain, loss).
final class GRPCServerStreamingTests: XCTestCase {
    private final class Owner {
        var cancels: [Int32] = []

        func streamingCall(_ streamID: Int32, deadline: UInt64? = nil) -> GRPCDeferredCall {
            GRPCDeferredCall(deadline: deadline) { [self] in
                cancels.append(streamID)
                return true
            }
        }
    }

    private let unavailable = String(GRPCStatus.Code.unavailable.rawValue)

    func testMessagesGoOutAsTheyAreSentAndTheStatusEndsTheCall() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.beginStream(streamID: request.streamID, firstMessage: GRPCMessageFraming.frame([10]), owner.streamingCall(request.streamID))
        try pair.pump()
        var outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.httpStatus, "200")
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([10]), "the first message goes out at once")
        XCTAssertFalse(outcome.ended, "the call stays open")
        XCTAssertNil(outcome.grpcStatus)

        pair.server.sendMessage(streamID: request.streamID, prefixedMessage: GRPCMessageFraming.frame([20, 21]))
        try pair.pump()
        outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([10]) + GRPCMessageFraming.frame([20, 21]))
        XCTAssertFalse(outcome.ended)

        pair.server.sendStatus(streamID: request.streamID, GRPCStatus(.ok, ""))
        try pair.pump()
        outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.headerBlocks.count, 2, "headers, then trailers")
        XCTAssertEqual(outcome.grpcStatus, "0")
        XCTAssertTrue(outcome.ended)
        XCTAssertEqual(outcome.closeCode, 0)
        XCTAssertEqual(owner.cancels, [], "the owner ended it itself")
        XCTAssertEqual(pair.server.openStreamCount, 0)
        XCTAssertEqual(pair.server.http2.outboundStreamCount, 0)

        pair.server.sendMessage(streamID: request.streamID, prefixedMessage: GRPCMessageFraming.frame([30]))
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: request.streamID).body.count, 2 * GRPCMessageFraming.prefixLength + 3, "nothing after the end")
    }

    func testMessagesLargerThanAFrameAndTheFlowControlWindowArriveWhole() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        let first = (0..<50_000).map { UInt8(truncatingIfNeeded: $0) }
        let second = (0..<30_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        pair.server.beginStream(streamID: request.streamID, firstMessage: GRPCMessageFraming.frame(first), owner.streamingCall(request.streamID))
        pair.server.sendMessage(streamID: request.streamID, prefixedMessage: GRPCMessageFraming.frame(second))
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: request.streamID).body, GRPCMessageFraming.frame(first) + GRPCMessageFraming.frame(second))
        XCTAssertFalse(pair.outcome(of: request.streamID).ended)

        pair.server.sendMessage(streamID: request.streamID, prefixedMessage: GRPCMessageFraming.frame([3]))
        pair.server.sendStatus(streamID: request.streamID, GRPCStatus(.ok, ""))
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: request.streamID).body.suffix(6), GRPCMessageFraming.frame([3])[...])
        XCTAssertEqual(pair.outcome(of: request.streamID).grpcStatus, "0")
    }

    func testClientResetEndsTheStreamAndCancelsItsOwner() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.beginStream(streamID: request.streamID, firstMessage: GRPCMessageFraming.frame([10]), owner.streamingCall(request.streamID))
        try pair.pump()

        pair.client.resetStream(request.streamID, errorCode: HTTP2ErrorCode.cancel)
        try pair.pump()
        XCTAssertEqual(owner.cancels, [request.streamID])
        XCTAssertEqual(pair.server.openStreamCount, 0)
        XCTAssertEqual(pair.server.http2.outboundStreamCount, 0)

        pair.server.sendMessage(streamID: request.streamID, prefixedMessage: GRPCMessageFraming.frame([20]))
        pair.server.sendStatus(streamID: request.streamID, GRPCStatus(.ok, ""))
        try pair.pump()
        XCTAssertEqual(owner.cancels, [request.streamID], "cancelled once")
        XCTAssertEqual(pair.outcome(of: request.streamID).body, GRPCMessageFraming.frame([10]))
    }

    func testDrainEndsStreamsWithItsStatusAfterTheMessagesAlreadySent() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.beginStream(streamID: request.streamID, firstMessage: GRPCMessageFraming.frame([10]), owner.streamingCall(request.streamID))
        pair.server.sendMessage(streamID: request.streamID, prefixedMessage: GRPCMessageFraming.frame([20]))

        pair.server.failDeferredCalls(GRPCStatus(.unavailable, "server is shutting down"))
        pair.server.closeGracefully()
        try pair.pump()
        let outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([10]) + GRPCMessageFraming.frame([20]))
        XCTAssertEqual(outcome.grpcStatus, unavailable)
        XCTAssertEqual(outcome.grpcMessage, "server is shutting down")
        XCTAssertEqual(owner.cancels, [request.streamID])
        XCTAssertFalse(pair.server.http2.isActive, "no stream keeps the drained connection open")
    }

    func testStreamBegunAfterTheDrainSendsItsFirstMessageAndEndsAtOnce() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.failDeferredCalls(GRPCStatus(.unavailable, "server is shutting down"))

        pair.server.beginStream(streamID: request.streamID, firstMessage: GRPCMessageFraming.frame([10]), owner.streamingCall(request.streamID))
        try pair.pump()
        let outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([10]))
        XCTAssertEqual(outcome.grpcStatus, unavailable)
        XCTAssertEqual(owner.cancels, [request.streamID])
    }

    func testDeadlineEndsAStreamWithDeadlineExceeded() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.beginStream(streamID: request.streamID, firstMessage: nil, owner.streamingCall(request.streamID, deadline: 1_000))
        XCTAssertEqual(pair.server.nextDeadline, 1_000)

        pair.server.expireDeadlines(now: 1_000)
        try pair.pump()
        XCTAssertEqual(owner.cancels, [request.streamID])
        XCTAssertEqual(pair.outcome(of: request.streamID).grpcStatus, String(GRPCStatus.Code.deadlineExceeded.rawValue))
        XCTAssertEqual(pair.outcome(of: request.streamID).body, [])
    }

    func testConnectionLossCancelsStreams() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let request = try pair.dispatchCall(message: [1])
        pair.server.beginStream(streamID: request.streamID, firstMessage: nil, owner.streamingCall(request.streamID))

        pair.server.connectionClosed()
        XCTAssertEqual(owner.cancels, [request.streamID])
        XCTAssertEqual(pair.server.openStreamCount, 0)
    }

    func testUnaryAnswersOnTheSameConnectionAreUnchanged() throws {
        let pair = try GRPCPair()
        let owner = Owner()
        let streaming = try pair.dispatchCall(message: [1])
        pair.server.beginStream(streamID: streaming.streamID, firstMessage: GRPCMessageFraming.frame([10]), owner.streamingCall(streaming.streamID))
        let unary = try pair.dispatchCall(message: [2])
        pair.sendResponse(streamID: unary.streamID, message: [7])
        try pair.pump()
        let answer = pair.outcome(of: unary.streamID)
        XCTAssertEqual(answer.body, GRPCMessageFraming.frame([7]))
        XCTAssertEqual(answer.grpcStatus, "0")
        XCTAssertFalse(pair.outcome(of: streaming.streamID).ended)
    }
}
