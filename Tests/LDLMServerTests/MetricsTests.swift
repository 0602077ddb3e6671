import Foundation
import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import LDLMServer

/// The metrics and probes port: what a scrape of `/metrics` shows after calls
/// through the whole connection pipeline, and what the probes answer.
final class MetricsTests: XCTestCase {
    private let lockService = ["service": "ldlm.LDLM"]

    private func makeServer(_ configure: (inout ServerConfig) -> Void = { _ in }) -> EmbeddedServer {
        EmbeddedServer {
            $0.metricsListenAddress = "127.0.0.1:0"
            configure(&$0)
        }
    }

    // MARK: RPCs

    func testCallsAreCountedByMethodAndOutcome() throws {
        let server = makeServer()
        let client = try server.connect()
        let taken = try client.call("TryLock", TryLockRequest(name: "a"))
        XCTAssertEqual(try client.response(of: taken, as: LockResponse.self)?.locked, true)
        let notTaken = try client.call("TryLock", TryLockRequest(name: "a"))
        XCTAssertEqual(try client.response(of: notTaken, as: LockResponse.self)?.locked, false)
        try client.call("TryLock", TryLockRequest(name: "a", size: 2))
        try client.call("Unlock", UnlockRequest(name: "a", key: "not-a-key"))
        try client.call("Unlock", UnlockRequest(name: "missing", key: "k"))
        try client.call("TryLock", TryLockRequest(name: ""))
        try client.call("Nope", TryLockRequest(name: "a"))

        let scraped = try scrape(server)
        XCTAssertEqual(scraped.rpcs("TryLock", "OK"), 2, "a TryLock that finds the lock taken is answered OK")
        XCTAssertEqual(scraped.rpcs("TryLock", "LockSizeMismatch"), 1)
        XCTAssertEqual(scraped.rpcs("TryLock", "Unknown"), 1, "the LDLM error for an empty name")
        XCTAssertEqual(scraped.rpcs("Unlock", "InvalidLockKey"), 1)
        XCTAssertEqual(scraped.rpcs("Unlock", "LockDoesNotExist"), 1)
        XCTAssertEqual(scraped.value("ldlm_rpcs_total", ["service": "unknown", "method": "unknown", "outcome": "UNIMPLEMENTED"]), 1)
        XCTAssertNil(scraped.rpcs("Unlock", "OK"), "a series appears with its first call")
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_count", lockService.merging(["method": "TryLock"]) { $1 }), 4)
        XCTAssertEqual(scraped.types["ldlm_rpcs_total"], "counter")
        XCTAssertEqual(scraped.types["ldlm_rpc_duration_seconds"], "histogram")
    }

    func testAQueuedLockIsTimedUntilItsGrant() throws {
        let server = makeServer()
        let holder = try server.connect()
        let waiter = try server.connect(port: 4001)
        let taken = try holder.call("TryLock", TryLockRequest(name: "q"))
        let key = try XCTUnwrap(holder.response(of: taken, as: LockResponse.self)?.key)
        let queued = try waiter.call("Lock", LockRequest(name: "q"))
        XCTAssertEqual(try scrape(server).value("ldlm_lock_waiters"), 1)

        server.advanceTime(by: .milliseconds(1_500))
        try holder.call("Unlock", UnlockRequest(name: "q", key: key))
        try waiter.exchange()
        XCTAssertEqual(try waiter.response(of: queued, as: LockResponse.self)?.locked, true)

        let scraped = try scrape(server)
        XCTAssertEqual(scraped.rpcs("Lock", "OK"), 1)
        let lock = lockService.merging(["method": "Lock"]) { $1 }
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_bucket", lock.merging(["le": "1"]) { $1 }), 0)
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_bucket", lock.merging(["le": "2.5"]) { $1 }), 1)
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_sum", lock), 1.5)
        XCTAssertEqual(scraped.value("ldlm_lock_waiters"), 0)
    }

    func testAWaitThatEndsWithoutAGrantCountsHowItEnded() throws {
        let server = makeServer()
        let holder = try server.connect()
        try holder.call("TryLock", TryLockRequest(name: "w"))
        let waiter = try server.connect(port: 4001)

        try waiter.call("Lock", LockRequest(name: "w", waitTimeoutSeconds: 1))
        try waiter.call("Lock", LockRequest(name: "w"), metadata: [HTTP2Header("grpc-timeout", "2S")])
        let reset = try waiter.call("Lock", LockRequest(name: "w"))
        try waiter.resetStream(reset)
        server.advanceTime(by: .seconds(2))
        try waiter.exchange()
        try waiter.call("Lock", LockRequest(name: "w"))
        server.manager.beginDrain()
        try waiter.exchange()

        let scraped = try scrape(server)
        XCTAssertEqual(scraped.rpcs("Lock", "LockWaitTimeout"), 1)
        XCTAssertEqual(scraped.rpcs("Lock", "DEADLINE_EXCEEDED"), 1)
        XCTAssertEqual(scraped.rpcs("Lock", "CANCELLED"), 1)
        XCTAssertEqual(scraped.rpcs("Lock", "UNAVAILABLE"), 1, "the drain answers waiting calls")
        XCTAssertNil(scraped.rpcs("Lock", "OK"))
    }

    func testAStreamingCallIsCountedWhenItEnds() throws {
        let server = makeServer()
        let client = try server.connect()
        try client.call("Watch", HealthCheckRequest(), service: HealthService.name)
        let health = ["service": HealthService.name, "method": "Watch"]
        XCTAssertNil(try scrape(server).value("ldlm_rpcs_total", health.merging(["outcome": "UNAVAILABLE"]) { $1 }), "still open")

        server.manager.beginDrain()
        client.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try client.exchange()
        XCTAssertEqual(try scrape(server).value("ldlm_rpcs_total", health.merging(["outcome": "UNAVAILABLE"]) { $1 }), 1)
    }

    func testAReflectionStreamIsCountedWhenItEndsHoweverItEnds() throws {
        let server = makeServer { $0.password = "s3cret" }
        let client = try server.connect()
        let reflection = ["service": "grpc.reflection.v1.ServerReflection", "method": "ServerReflectionInfo"]
        func outcome(_ label: String) throws -> Double? {
            try scrape(server).value("ldlm_rpcs_total", reflection.merging(["outcome": label]) { $1 })
        }
        var headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ]
        let listServices = GRPCMessageFraming.frame(ServerReflectionRequest(query: .listServices("")).serializedBytes())
        try client.http2.sendRequest(headers: headers, body: listServices)
        try client.exchange()
        XCTAssertEqual(try outcome("UNAUTHENTICATED"), 1)
        XCTAssertEqual(try scrape(server).value("ldlm_auth_failures_total", ["credential": "password"]), 1)

        headers.append(HTTP2Header("authorization", "s3cret"))
        try client.http2.sendRequest(headers: headers, body: listServices)
        try client.exchange()
        XCTAssertEqual(try outcome("OK"), 1)
        XCTAssertEqual(try scrape(server).value("ldlm_rpc_duration_seconds_count", reflection), 2)

        let open = try client.http2.beginStreamingRequest(headers: HTTP2HeaderBlock(headers))
        client.http2.sendData(streamID: open, listServices)
        try client.exchange()
        XCTAssertNil(try outcome("UNAVAILABLE"), "still open")
        server.manager.beginDrain()
        client.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try client.exchange()
        XCTAssertEqual(try outcome("UNAVAILABLE"), 1, "the drain ends it")
    }

    func testAReflectionStreamTheConnectionCannotReadIsCountedWithTheStatusItGets() throws {
        let server = makeServer { $0.maxMessageBytes = 1_024 }
        let client = try server.connect()
        let headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ]
        let tooLarge = try client.http2.sendRequest(headers: headers, body: GRPCMessageFraming.frame(Array(repeating: 0, count: 2_000)))
        let truncated = try client.http2.sendRequest(headers: headers, body: Array(GRPCMessageFraming.frame([1, 2, 3, 4]).dropLast()))
        try client.exchange()
        XCTAssertEqual(client.status(of: tooLarge)?.code, GRPCStatus.Code.resourceExhausted.rawValue)
        XCTAssertEqual(client.status(of: truncated)?.code, GRPCStatus.Code.invalidArgument.rawValue)

        let scraped = try scrape(server)
        let reflection = ["service": "grpc.reflection.v1.ServerReflection", "method": "ServerReflectionInfo"]
        XCTAssertEqual(scraped.value("ldlm_rpcs_total", reflection.merging(["outcome": "RESOURCE_EXHAUSTED"]) { $1 }), 1)
        XCTAssertEqual(scraped.value("ldlm_rpcs_total", reflection.merging(["outcome": "INVALID_ARGUMENT"]) { $1 }), 1)
        XCTAssertNil(scraped.value("ldlm_rpcs_total", reflection.merging(["outcome": "CANCELLED"]) { $1 }), "the client cancelled nothing")
    }

    func testADurationOnABoundCountsInThatBucketAndBeyondTheLastOnlyInInf() {
        let histogram = RPCDurationHistogram(labels: #"method="M""#)
        histogram.record(nanoseconds: 50_000)
        histogram.record(nanoseconds: 50_001)
        histogram.record(nanoseconds: 61_000_000_000)
        var text: [UInt8] = []
        histogram.emit(into: &text)
        let scraped = Exposition(RPCDurationHistogram.header + String(decoding: text, as: UTF8.self), lockService: [:])
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_bucket", ["method": "M", "le": "0.00005"]), 1)
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_bucket", ["method": "M", "le": "0.0001"]), 2)
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_bucket", ["method": "M", "le": "60"]), 2)
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_bucket", ["method": "M", "le": "+Inf"]), 3)
        XCTAssertEqual(scraped.value("ldlm_rpc_duration_seconds_count", ["method": "M"]), 3)
        XCTAssertEqual(try XCTUnwrap(scraped.value("ldlm_rpc_duration_seconds_sum", ["method": "M"])), 61.000100001, accuracy: 1e-9)
        XCTAssertEqual(scraped.types["ldlm_rpc_duration_seconds"], "histogram")
    }

    // MARK: Refusals

    func testRESTRequestsWithAWrongPasswordAreCountedAsAuthFailures() throws {
        let server = makeServer { $0.password = "s3cret" }
        let gateway = RESTGateway(
            manager: server.manager, password: "s3cret", idleTimeout: .seconds(60), maxSessions: 10,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: server.metrics
        )
        var statuses: [Int] = []
        for password in ["wrong", "s3cret"] {
            let credentials = "user:" + password
            let request = RESTRequest(
                method: "POST", path: "/session"[...],
                headers: [(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())],
                body: [], remoteAddress: "127.0.0.1:5000"
            )
            gateway.handle(request) { statuses.append($0.status) }
        }
        XCTAssertEqual(statuses, [401, 201])
        XCTAssertEqual(try scrape(server).value("ldlm_auth_failures_total", ["credential": "password"]), 1)
    }

    func testAuthFailuresAndLimitRefusalsAreCounted() throws {
        let server = makeServer {
            $0.password = "s3cret"
            $0.adminPassword = "admin"
            $0.maxLocks = 1
        }
        let client = try server.connect()
        try client.call("TryLock", TryLockRequest(name: "a"))
        try client.call("TryLock", TryLockRequest(name: "a"), metadata: [HTTP2Header("authorization", "wrong")])
        try client.call("ListLocks", AdminListLocksRequest(), service: AdminService.name, metadata: [HTTP2Header("authorization", "s3cret")])
        let password = [HTTP2Header("authorization", "s3cret")]
        try client.call("TryLock", TryLockRequest(name: "a"), metadata: password)
        let overLimit = try client.call("TryLock", TryLockRequest(name: "b"), metadata: password)
        XCTAssertEqual(client.status(of: overLimit)?.code, GRPCStatus.Code.resourceExhausted.rawValue)

        let scraped = try scrape(server)
        XCTAssertEqual(scraped.value("ldlm_auth_failures_total", ["credential": "password"]), 2)
        XCTAssertEqual(scraped.value("ldlm_auth_failures_total", ["credential": "admin"]), 1)
        XCTAssertEqual(scraped.rpcs("TryLock", "UNAUTHENTICATED"), 2)
        XCTAssertEqual(scraped.value("ldlm_limit_refusals_total", ["limit": "max_locks"]), 1)
        XCTAssertEqual(scraped.value("ldlm_limit_refusals_total", ["limit": "max_waiters"]), 0, "every limit is listed from the start")
        XCTAssertEqual(scraped.rpcs("TryLock", "RESOURCE_EXHAUSTED"), 1)
    }

    func testAKeepaliveTimeoutIsCounted() throws {
        let server = makeServer { $0.keepaliveInterval = .seconds(10); $0.keepaliveTimeout = .seconds(2) }
        let client = try server.connect()
        XCTAssertEqual(try scrape(server).value("ldlm_keepalive_timeouts_total"), 0)
        server.advanceTime(by: .seconds(10))
        XCTAssertTrue(try client.takeUnansweredOutputContainsPing())
        server.advanceTime(by: .seconds(2))
        XCTAssertFalse(client.channel.isActive)
        XCTAssertEqual(try scrape(server).value("ldlm_keepalive_timeouts_total"), 1)
    }

    // MARK: Read at scrape time

    func testLockCoreCountsAreReadWhenScraped() throws {
        let server = makeServer()
        let first = try server.connect()
        let second = try server.connect(port: 4001)
        try first.call("TryLock", TryLockRequest(name: "s", size: 2))
        try second.call("TryLock", TryLockRequest(name: "s", size: 2))
        try first.call("TryLock", TryLockRequest(name: "leased", lockTimeoutSeconds: 1))
        try second.call("Lock", LockRequest(name: "leased"))

        var scraped = try scrape(server)
        XCTAssertEqual(scraped.value("ldlm_locks_held"), 2)
        XCTAssertEqual(scraped.value("ldlm_lock_holders"), 3)
        XCTAssertEqual(scraped.value("ldlm_lock_waiters"), 1)
        XCTAssertEqual(scraped.value("ldlm_sessions"), 2)
        XCTAssertEqual(scraped.types["ldlm_locks_held"], "gauge")

        server.advanceTime(by: .seconds(1))
        try second.exchange()
        scraped = try scrape(server)
        XCTAssertEqual(scraped.value("ldlm_lease_expiries_total"), 1)
        XCTAssertEqual(scraped.value("ldlm_lock_holders"), 3, "the waiter took the expired lease's slot")
        XCTAssertEqual(scraped.value("ldlm_lock_waiters"), 0)

        try first.channel.close().wait()
        scraped = try scrape(server)
        XCTAssertEqual(scraped.value("ldlm_locks_released_on_disconnect_total"), 1)
        XCTAssertEqual(scraped.value("ldlm_lock_holders"), 2)
        XCTAssertEqual(scraped.value("ldlm_sessions"), 1)
        XCTAssertEqual(try scrape(server).value("ldlm_lease_expiries_total"), 1, "a second scrape adds nothing new")
    }

    func testConnectionsAreLabelledByTransport() throws {
        let loop = EmbeddedEventLoop()
        let connections = OpenConnections()
        let tcp = EmbeddedChannel(loop: loop)
        let unix = EmbeddedChannel(loop: loop)
        XCTAssertEqual(connections.admit(tcp, ip: "127.0.0.1"), .admitted)
        XCTAssertEqual(connections.admit(unix, ip: nil), .admitted)
        let server = makeServer()
        var scraped = try scrape(server, connections: connections)
        XCTAssertEqual(scraped.value("ldlm_connections", ["transport": "plaintext"]), 1)
        XCTAssertEqual(scraped.value("ldlm_connections", ["transport": "unix"]), 1)

        try unix.close().wait()
        loop.run()
        scraped = try scrape(server, connections: connections)
        XCTAssertEqual(scraped.value("ldlm_connections", ["transport": "unix"]), 0)
        XCTAssertEqual(scraped.value("ldlm_connections", ["transport": "plaintext"]), 1)
    }

    func testWithoutAMetricsAddressNothingIsKept() throws {
        let server = EmbeddedServer()
        XCTAssertNil(server.metrics)
        XCTAssertNil(server.manager.metrics)
        let client = try server.connect()
        let taken = try client.call("TryLock", TryLockRequest(name: "a"))
        XCTAssertEqual(try client.response(of: taken, as: LockResponse.self)?.locked, true)
    }

    // MARK: Probes

    func testReadinessTurnsUnavailableWhenTheServerDrainsAndLivenessStaysOK() throws {
        let server = makeServer()
        XCTAssertEqual(try get(server, "/readyz").status, .ok)
        XCTAssertEqual(try get(server, "/healthz").status, .ok)
        XCTAssertEqual(try scrape(server).value("ldlm_draining"), 0)
        server.manager.beginDrain()
        XCTAssertEqual(try get(server, "/readyz").status, .serviceUnavailable)
        XCTAssertEqual(try scrape(server).value("ldlm_draining"), 1)
        XCTAssertEqual(try get(server, "/healthz").status, .ok)
        XCTAssertEqual(try get(server, "/metrics").status, .ok, "a draining server still tells its metrics")
    }

    func testOtherPathsAreNotFoundAndOtherMethodsNotAllowed() throws {
        let server = makeServer()
        XCTAssertEqual(try get(server, "/").status, .notFound)
        XCTAssertEqual(try get(server, "/metrics/x").status, .notFound)
        let post = try get(server, "/metrics", method: .POST)
        XCTAssertEqual(post.status, .methodNotAllowed)
        XCTAssertEqual(post.headers["Allow"], ["GET"])
        let query = try get(server, "/metrics?name[]=ldlm_sessions")
        XCTAssertEqual(query.status, .ok)
        XCTAssertEqual(query.headers["Content-Type"], ["text/plain; version=0.0.4; charset=utf-8"])
    }

    // MARK: Helpers

    private func get(_ server: EmbeddedServer, _ uri: String, method: HTTPMethod = .GET) throws -> HTTPResponse {
        let responder = MetricsResponder(metrics: try XCTUnwrap(server.metrics), manager: server.manager, connections: OpenConnections())
        let request = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: method, uri: uri), body: ByteBuffer(), remoteAddress: nil)
        let future = responder.respond(to: request, eventLoop: server.loop)
        server.loop.run()
        var result: Result<HTTPResponse, Error>?
        future.whenComplete { result = $0 }
        return try XCTUnwrap(result).get()
    }

    private func scrape(_ server: EmbeddedServer, connections: OpenConnections = OpenConnections()) throws -> Exposition {
        let responder = MetricsResponder(metrics: try XCTUnwrap(server.metrics), manager: server.manager, connections: connections)
        let request = HTTPRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/metrics"), body: ByteBuffer(), remoteAddress: nil)
        let future = responder.respond(to: request, eventLoop: server.loop)
        server.loop.run()
        var result: Result<HTTPResponse, Error>?
        future.whenComplete { result = $0 }
        let response = try XCTUnwrap(result).get()
        XCTAssertEqual(response.status, .ok)
        return Exposition(String(buffer: response.body), lockService: lockService)
    }
}

/// The Prometheus text format as a test reads it: samples by name and labels.
private struct Exposition {
    private(set) var samples: [(name: String, labels: [String: String], value: Double)] = []
    private(set) var types: [String: String] = [:]
    let lockService: [String: String]

    init(_ text: String, lockService: [String: String]) {
        self.lockService = lockService
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let space = line.lastIndex(of: " ")!
            let series = line[..<space]
            let value = Double(line[line.index(after: space)...])!
            guard let brace = series.firstIndex(of: "{") else {
                samples.append((String(series), [:], value))
                continue
            }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let equals = pair.firstIndex(of: "=")!
                labels[String(pair[..<equals])] = String(pair[pair.index(equals, offsetBy: 2)..<pair.index(before: pair.endIndex)])
            }
            samples.append((String(series[..<brace]), labels, value))
        }
    }

    /// The one sample of `name` with exactly `labels`; nil when there is none.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { $0.name == name && $0.labels == labels }
        precondition(matching.count <= 1, "\(name) \(labels) appears twice")
        return matching.first?.value
    }

    func rpcs(_ method: String, _ outcome: String) -> Double? {
        value("ldlm_rpcs_total", lockService.merging(["method": method, "outcome": outcome]) { $1 })
    }
}
