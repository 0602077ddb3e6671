import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import NIOCore
import XCTest

@testable import LDLMServer

/// `grpc.health.v1.Health` through the whole connection pipeline.
final class HealthServiceTests: XCTestCase {
    private let health = "grpc.health.v1.Health"
    private let unavailable = GRPCStatus.Code.unavailable.rawValue

    func testCheckAnswersServingUntilTheDrainThenNotServing() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        for service in ["", "ldlm.LDLM"] {
            let check = try client.call("Check", HealthCheckRequest(service: service), service: health)
            XCTAssertEqual(client.status(of: check)?.code, 0)
            XCTAssertEqual(try client.response(of: check, as: HealthCheckResponse.self)?.status, .serving, service)
        }

        server.manager.beginDrain()
        for service in ["", "ldlm.LDLM"] {
            let check = try client.call("Check", HealthCheckRequest(service: service), service: health)
            XCTAssertEqual(try client.response(of: check, as: HealthCheckResponse.self)?.status, .notServing, service)
        }
    }

    func testCheckOfAnUnknownServiceIsNotFound() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let check = try client.call("Check", HealthCheckRequest(service: "ldlm.Nope"), service: health)
        XCTAssertEqual(client.status(of: check)?.code, GRPCStatus.Code.notFound.rawValue)
        XCTAssertEqual(client.status(of: check)?.message, #"unknown service "ldlm.Nope""#)
    }

    func testHealthNeedsNoPasswordWhileLockCallsStillDo() throws {
        let server = EmbeddedServer { $0.password = "s3cret" }
        let client = try server.connect()
        let check = try client.call("Check", HealthCheckRequest(), service: health)
        XCTAssertEqual(try client.response(of: check, as: HealthCheckResponse.self)?.status, .serving)
        let watch = try client.call("Watch", HealthCheckRequest(), service: health)
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serving])

        let lock = try client.call("TryLock", TryLockRequest(name: "p"))
        XCTAssertEqual(client.status(of: lock)?.code, GRPCStatus.Code.unauthenticated.rawValue)
        let unknownMethod = try client.call("List", HealthCheckRequest(), service: health)
        XCTAssertEqual(client.status(of: unknownMethod)?.code, GRPCStatus.Code.unimplemented.rawValue)
    }

    func testALargeHealthRequestIsRefusedBeforeItArrivesThoughNoPasswordGuardsIt() throws {
        let server = EmbeddedServer { $0.password = "s3cret" }
        let client = try server.connect()
        let huge = HealthCheckRequest(service: String(repeating: "x", count: 200_000))
        for method in ["Check", "Watch"] {
            let call = try client.call(method, huge, service: health)
            XCTAssertEqual(client.status(of: call)?.code, GRPCStatus.Code.resourceExhausted.rawValue, method)
        }
        let unknown = try client.call("Nope", huge, service: health)
        XCTAssertEqual(client.status(of: unknown)?.code, GRPCStatus.Code.unimplemented.rawValue)
        let check = try client.call("Check", HealthCheckRequest(), service: health)
        XCTAssertEqual(try client.response(of: check, as: HealthCheckResponse.self)?.status, .serving, "the connection goes on")
    }

    func testAnUnknownServiceIsQuotedInPartSoItsStatusFitsInAHeader() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let check = try client.call("Check", HealthCheckRequest(service: String(repeating: "é", count: 5_000)), service: health)
        XCTAssertEqual(client.status(of: check)?.code, GRPCStatus.Code.notFound.rawValue)
        XCTAssertEqual(client.status(of: check)?.message, "unknown service \"\(String(repeating: "é", count: 64))\"")
    }

    func testWatchSendsServingThenNotServingWhenTheDrainBeginsThenEndsWithTheConnectionsDrain() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let watch = try client.call("Watch", HealthCheckRequest(service: "ldlm.LDLM"), service: health)
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serving])
        XCTAssertNil(client.status(of: watch), "the stream stays open")
        server.advanceTime(by: .seconds(30))
        try client.exchange()
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).count, 1, "nothing changed, nothing sent")

        server.manager.beginDrain()
        try client.exchange()
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serving, .notServing])
        XCTAssertNil(client.status(of: watch), "still open until this connection drains")

        client.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try client.exchange()
        XCTAssertEqual(client.status(of: watch)?.code, unavailable)
        XCTAssertEqual(client.status(of: watch)?.message, "server is shutting down")
        XCTAssertTrue(client.receivedGoAway)
        XCTAssertFalse(client.channel.isActive, "the watch does not hold the drained connection open")
    }

    func testEveryWatcherHearsOfTheDrain() throws {
        let server = EmbeddedServer()
        let first = try server.connect()
        let second = try server.connect(port: 4001)
        let watches = [
            (first, try first.call("Watch", HealthCheckRequest(), service: health)),
            (first, try first.call("Watch", HealthCheckRequest(service: "ldlm.LDLM"), service: health)),
            (second, try second.call("Watch", HealthCheckRequest(), service: health)),
        ]
        server.manager.beginDrain()
        for (client, watch) in watches {
            try client.exchange()
            XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serving, .notServing])
        }
    }

    func testWatchOfAnUnknownServiceSendsServiceUnknownAndStaysOpen() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let watch = try client.call("Watch", HealthCheckRequest(service: "ldlm.Nope"), service: health)
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serviceUnknown])
        XCTAssertNil(client.status(of: watch))

        server.manager.beginDrain()
        try client.exchange()
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serviceUnknown], "an unknown service stays unknown")
    }

    func testWatchStartedDuringTheDrainSendsNotServing() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        server.manager.beginDrain()
        let watch = try client.call("Watch", HealthCheckRequest(), service: health)
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.notServing])
    }

    func testWatchesEndedByTheirClientsAreForgotten() throws {
        let server = EmbeddedServer()
        let service = try XCTUnwrap(server.services.lazy.compactMap { $0 as? HealthService }.first)
        let client = try server.connect()
        for _ in 0..<100 {
            try client.resetStream(try client.call("Watch", HealthCheckRequest(), service: health))
        }
        let open = try client.call("Watch", HealthCheckRequest(), service: health)
        let leaving = try server.connect(port: 4001)
        _ = try leaving.call("Watch", HealthCheckRequest(), service: health)
        XCTAssertEqual(service.watcherCount, 2)

        try leaving.channel.close().wait()
        XCTAssertEqual(service.watcherCount, 1, "only the watch still open is kept")
        server.manager.beginDrain()
        try client.exchange()
        XCTAssertEqual(try client.messages(of: open, as: HealthCheckResponse.self).map(\.status), [.serving, .notServing])
    }

    func testWatchEndsWithDeadlineExceededWhenItsDeadlinePasses() throws {
        let server = EmbeddedServer()
        let client = try server.connect()
        let watch = try client.call("Watch", HealthCheckRequest(), service: health, metadata: [HTTP2Header("grpc-timeout", "2S")])
        server.advanceTime(by: .seconds(1))
        try client.exchange()
        XCTAssertNil(client.status(of: watch))

        server.advanceTime(by: .seconds(1))
        try client.exchange()
        XCTAssertEqual(client.status(of: watch)?.code, GRPCStatus.Code.deadlineExceeded.rawValue)
        XCTAssertEqual(try client.messages(of: watch, as: HealthCheckResponse.self).map(\.status), [.serving])
    }
}
