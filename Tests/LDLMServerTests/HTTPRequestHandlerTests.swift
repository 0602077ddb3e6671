import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import LDLMServer

final class HTTPRequestHandlerTests: XCTestCase {
    /// Answers with the method, path and body length it saw; answers to paths
    /// under /slow wait until the test completes them.
    private final class RecordingResponder: HTTPResponder {
        var pending: [EventLoopPromise<HTTPResponse>] = []

        func respond(to request: HTTPRequest, eventLoop: EventLoop) -> EventLoopFuture<HTTPResponse> {
            if request.path.hasPrefix("/slow") {
                let promise = eventLoop.makePromise(of: HTTPResponse.self)
                pending.append(promise)
                return promise.futureResult
            }
            let text = "\(request.head.method) \(request.path) \(request.body.readableBytes)"
            return eventLoop.makeSucceededFuture(.text(.ok, text))
        }
    }

    private var loop: EmbeddedEventLoop!
    private var channel: EmbeddedChannel!
    private var responder: RecordingResponder!

    override func setUp() async throws {
        loop = EmbeddedEventLoop()
        channel = EmbeddedChannel(loop: loop)
        responder = RecordingResponder()
        var limits = HTTPListenerLimits()
        limits.maxBodyBytes = 16
        limits.requestTimeout = .seconds(5)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(responder: responder, limits: limits))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
    }

    override func tearDown() async throws {
        _ = try? channel.finish()
    }

    private func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private func received() throws -> String {
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        return text
    }

    func testAnswersPipelinedRequestsInOrderWithTheirLengths() throws {
        try send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        let answers = try received()
        let first = try XCTUnwrap(answers.range(of: "POST /a 3"))
        let second = try XCTUnwrap(answers.range(of: "GET /b 0"))
        XCTAssertLessThan(first.lowerBound, second.lowerBound)
        XCTAssertTrue(answers.contains("content-length: 9") || answers.contains("Content-Length: 9"), answers)
        XCTAssertTrue(channel.isActive, "keep-alive requests leave the connection open")
    }

    func testARequestPipelinedBehindALateAnswerIsAnsweredToo() throws {
        try send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try received(), "", "the first answer is not ready yet")
        responder.pending.removeFirst().succeed(.text(.ok, "late"))
        let answers = try received()
        let first = try XCTUnwrap(answers.range(of: "late"), answers)
        let second = try XCTUnwrap(answers.range(of: "GET /b 0"), answers)
        XCTAssertLessThan(first.lowerBound, second.lowerBound)
        XCTAssertTrue(channel.isActive)
    }

    func testTheTimeoutPausesForALateAnswerPipelinedBehindAnother() throws {
        try send("GET /slow/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /slow/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        responder.pending.removeFirst().succeed(.text(.ok, "one"))
        guard responder.pending.count == 1 else { return XCTFail("the second request never reached the responder") }
        loop.advanceTime(by: .seconds(10))
        XCTAssertTrue(channel.isActive, "an answer being prepared is not an idle connection")
        responder.pending.removeFirst().succeed(.text(.ok, "two"))
        let answers = try received()
        XCTAssertTrue(answers.contains("one") && answers.contains("two"), answers)
    }

    func testBodyOverTheLimitIsRefusedWith413AndTheConnectionCloses() throws {
        try send("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n5\r\nmore!\r\n0\r\n\r\n")
        let answer = try received()
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413"), answer)
        XCTAssertTrue(answer.lowercased().contains("connection: close"), answer)
        loop.run()
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(responder.pending.isEmpty)
    }

    func testDeclaredLengthOverTheLimitIsRefusedBeforeTheBody() throws {
        try send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        let answer = try received()
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413"), "answered before any of the body was sent: \(answer)")
        XCTAssertTrue(answer.lowercased().contains("connection: close"), answer)
        try send(String(repeating: "x", count: 100_000))
        XCTAssertEqual(try received(), "", "the body that follows is dropped, not answered")
        loop.run()
        XCTAssertFalse(channel.isActive)
        XCTAssertTrue(responder.pending.isEmpty)
    }

    func testNothingMoreIsReadWhileTheClientLeavesItsAnswersUnread() throws {
        final class ReadCounter: ChannelOutboundHandler {
            typealias OutboundIn = NIOAny
            var reads = 0
            func read(context: ChannelHandlerContext) {
                reads += 1
                context.read()
            }
        }
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter, position: .first)
        channel.read()
        XCTAssertEqual(counter.reads, 1)
        try send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(try received().contains("GET /a 0"))

        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        XCTAssertEqual(counter.reads, 1, "answers piling up unsent: reading more requests would pile up more")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(counter.reads, 2, "the held read goes out once the answers drain")
    }

    func testConnectionWithoutACompleteRequestIsClosedAfterTheTimeout() throws {
        try send("GET /a HTTP/1.1\r\nHost: x\r\n")
        loop.advanceTime(by: .seconds(4))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive, "a request trickled in must not hold the connection forever")
    }

    func testTheTimeoutRestartsAfterEachAnswerAndPausesWhileAnswering() throws {
        loop.advanceTime(by: .seconds(4))
        try send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        loop.advanceTime(by: .seconds(10))
        XCTAssertTrue(channel.isActive, "an answer being prepared is not an idle connection")
        responder.pending.removeFirst().succeed(.text(.ok, "done"))
        XCTAssertTrue(try received().contains("done"))
        loop.advanceTime(by: .seconds(4))
        XCTAssertTrue(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive)
    }

    func testDrainClosesAnIdleConnectionAndOneAnsweringAfterItsAnswer() throws {
        try send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertTrue(channel.isActive, "the request in hand is answered first")
        responder.pending.removeFirst().succeed(.text(.ok, "last"))
        let answer = try received()
        XCTAssertTrue(answer.contains("last") && answer.lowercased().contains("connection: close"), answer)
        loop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testAnAnswerForAClosedConnectionIsReportedUndeliveredAndADeliveredOneIsNot() throws {
        var undelivered: [String] = []
        try send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        var delivered = HTTPResponse.text(.ok, "delivered")
        delivered.onUndelivered = { undelivered.append("delivered") }
        responder.pending.removeFirst().succeed(delivered)
        XCTAssertTrue(try received().contains("delivered"))

        try send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        try channel.close().wait()
        var lost = HTTPResponse.text(.ok, "lost")
        lost.onUndelivered = { undelivered.append("lost") }
        responder.pending.removeFirst().succeed(lost)
        XCTAssertEqual(undelivered, ["lost"])
    }

    func testDrainClosesAnIdleConnectionAtOnce() throws {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        loop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testFailedResponderAnswers500AndKeepsServing() throws {
        final class FailingResponder: HTTPResponder {
            struct Failure: Error {}
            func respond(to request: HTTPRequest, eventLoop: EventLoop) -> EventLoopFuture<HTTPResponse> {
                eventLoop.makeFailedFuture(Failure())
            }
        }
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
        try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(responder: FailingResponder(), limits: .init()))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        var text = ""
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        XCTAssertEqual(text.components(separatedBy: "HTTP/1.1 500").count - 1, 2, text)
        _ = try channel.finish()
    }

    func testGarbageGets400() throws {
        try send("NOT HTTP AT ALL\r\n\r\n")
        XCTAssertTrue(try received().hasPrefix("HTTP/1.1 400"))
        loop.run()
        XCTAssertFalse(channel.isActive)
    }
}
