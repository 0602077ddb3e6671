import Foundation
import LDLMCore
import LDLMProtocol
import Logging
import NIOCore
import XCTest

@testable import LDLMServer

/// The REST gateway on an embedded server's lock manager, whose clock moves
/// only when a test advances it; gRPC clients of the same server share its locks.
final class RESTGatewayTests: XCTestCase {
    private var server: EmbeddedServer!
    private var gateway: RESTGateway!

    private func start(
        password: String? = nil,
        idleTimeout: Duration = .seconds(60),
        maxSessions: Int = 100,
        configure: (inout ServerConfig) -> Void = { _ in }
    ) {
        server = EmbeddedServer(configure: configure)
        gateway = RESTGateway(
            manager: server.manager,
            password: password,
            idleTimeout: idleTimeout,
            maxSessions: maxSessions,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            wallClock: { EmbeddedServer.wallClockNow }
        )
    }

    /// Sends a request and returns the answer, which must come at once
    /// (nothing here waits for a state file).
    private func send(
        _ method: String, _ path: String, body: String = "", cookie: String? = nil, headers: [(String, String)] = [],
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> RESTResponse {
        var request = RESTRequest(
            method: method, path: path[...], headers: headers.map { (name: $0.0, value: $0.1) }, body: Array(body.utf8),
            remoteAddress: "127.0.0.1:5000"
        )
        if let cookie { request.headers.append(("Cookie", "other=1; \(RESTGateway.cookieName)=\(cookie)")) }
        var answer: RESTResponse?
        gateway.handle(request) { answer = $0 }
        return try XCTUnwrap(answer, "no answer", file: file, line: line)
    }

    private func json(_ response: RESTResponse) throws -> NSDictionary {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.body)) as? NSDictionary)
    }

    private func text(_ response: RESTResponse) -> String {
        String(decoding: response.body, as: UTF8.self)
    }

    /// Opens a session and returns its cookie value.
    private func openSession(headers: [(String, String)] = []) throws -> String {
        let response = try send("POST", "/session", headers: headers)
        XCTAssertEqual(response.status, 201)
        return try XCTUnwrap(try json(response)["session_id"] as? String)
    }

    private func lock(_ name: String, in session: String, size: Int = 1) throws -> NSDictionary {
        let response = try send("POST", "/v1/lock", body: #"{"name": "\#(name)", "size": \#(size)}"#, cookie: session)
        XCTAssertEqual(response.status, 200)
        return try json(response)
    }

    // MARK: Sessions

    func testPostSessionAnswers201WithTheSessionIDInTheBodyAndTheCookie() throws {
        start()
        let response = try send("POST", "/session")
        XCTAssertEqual(response.status, 201)
        XCTAssertEqual(response.header("Content-Type"), "application/json")
        let id = try XCTUnwrap(try json(response)["session_id"] as? String)
        XCTAssertEqual(id.count, 32, "128 random bits in hex")
        XCTAssertTrue(id.allSatisfy(\.isHexDigit))
        // EmbeddedServer's wall clock is 2023-11-14 22:13:20 UTC; the session lasts 60 s.
        XCTAssertEqual(response.header("Set-Cookie"), "ldlm-session=\(id); Path=/; Expires=Tue, 14 Nov 2023 22:14:20 GMT; HttpOnly")
        XCTAssertNotEqual(try openSession(), id, "each session its own id")
    }

    func testRESTSessionsAreLockSessionsTheAdminServiceLists() throws {
        start()
        XCTAssertEqual(server.manager.sessions.count, 0)
        _ = try openSession()
        let listed = try XCTUnwrap(server.manager.sessions.first)
        XCTAssertEqual(listed.peer.connection.remoteAddress, "127.0.0.1:5000")
    }

    func testDeleteSessionEndsItReleasingItsLocks() throws {
        start()
        let session = try openSession()
        XCTAssertEqual(try lock("a", in: session)["locked"] as? Bool, true)

        let deleted = try send("DELETE", "/session", cookie: session)
        XCTAssertEqual(deleted.status, 200)
        XCTAssertEqual(String(decoding: deleted.body, as: UTF8.self), #"{"session_id": ""}"#)
        XCTAssertEqual(deleted.header("Set-Cookie"), "ldlm-session=; Path=/; HttpOnly")
        XCTAssertEqual(server.manager.lockCount, 0)
        XCTAssertEqual(server.manager.sessions.count, 0)

        let again = try send("DELETE", "/session", cookie: session)
        XCTAssertEqual(again.status, 409)
        XCTAssertEqual(text(again), #"{"error": "session not found"}"#)
        XCTAssertEqual(try send("DELETE", "/session").status, 500, "go-ldlm's answer to a DELETE without the cookie")
        XCTAssertEqual(try send("POST", "/v1/lock", body: #"{"name":"a"}"#, cookie: session).status, 401)
    }

    func testCallsWithoutAValidSessionAre401WithGoLDLMsMessages() throws {
        start()
        let missing = try send("POST", "/v1/lock", body: #"{"name":"a"}"#)
        XCTAssertEqual(missing.status, 401)
        XCTAssertEqual(text(missing), #"{"error": "session cookie not found. create a new session at /session"}"#)
        let unknown = try send("POST", "/v1/lock", body: #"{"name":"a"}"#, cookie: "0123456789abcdef0123456789abcdef")
        XCTAssertEqual(unknown.status, 401)
        XCTAssertEqual(text(unknown), #"{"error": "session cookie invalid or expired. create a new session at /session"}"#)
        XCTAssertEqual(server.manager.lockCount, 0)
    }

    func testAnIdleSessionEndsAndItsLockGoesToAGRPCClientButAUsedOneLives() throws {
        start(idleTimeout: .seconds(10))
        let idle = try openSession()
        let busy = try openSession()
        XCTAssertEqual(try lock("idle-lock", in: idle)["locked"] as? Bool, true)
        XCTAssertEqual(try lock("busy-lock", in: busy)["locked"] as? Bool, true)
        let grpc = try server.connect()

        server.advanceTime(by: .seconds(6))
        XCTAssertEqual(try send("POST", "/v1/lock", body: #"{"name":"other"}"#, cookie: busy).status, 200)
        server.advanceTime(by: .seconds(5))

        let taken = try grpc.call("TryLock", TryLockRequest(name: "idle-lock"))
        XCTAssertEqual(try grpc.response(of: taken, as: LockResponse.self)?.locked, true, "the idle session's lock was released")
        let held = try grpc.call("TryLock", TryLockRequest(name: "busy-lock"))
        XCTAssertEqual(try grpc.response(of: held, as: LockResponse.self)?.locked, false, "the used session still holds its lock")
        XCTAssertEqual(try send("POST", "/v1/lock", body: #"{"name":"x"}"#, cookie: idle).status, 401)
        XCTAssertEqual(gateway.sessionCount, 1)
    }

    func testAnExpiredSessionKeepsItsLocksUnderNoClearOnDisconnect() throws {
        start(idleTimeout: .seconds(10)) { $0.clearOnDisconnect = false }
        let session = try openSession()
        XCTAssertEqual(try lock("kept", in: session)["locked"] as? Bool, true)
        server.advanceTime(by: .seconds(11))
        XCTAssertEqual(gateway.sessionCount, 0)
        XCTAssertEqual(server.manager.lockCount, 1, "kept, as a closed connection's locks are")
    }

    func testAnAdministratorEndingTheSessionEndsItForTheClient() throws {
        start()
        let session = try openSession()
        XCTAssertEqual(try lock("a", in: session)["locked"] as? Bool, true)
        let id = try XCTUnwrap(server.manager.sessions.first?.id)
        XCTAssertEqual(server.manager.endSession(id), 1)
        XCTAssertEqual(try send("POST", "/v1/lock", body: #"{"name":"b"}"#, cookie: session).status, 401, "ended before the gateway hears of it")
        XCTAssertEqual(server.manager.lockCount, 0)
        server.loop.run()
        XCTAssertEqual(gateway.sessionCount, 0)
        XCTAssertEqual(try send("POST", "/v1/unlock", body: #"{"name":"a","key":"k"}"#, cookie: session).status, 401)
    }

    func testSessionsBeyondTheLimitAre429UntilOneEnds() throws {
        start(maxSessions: 2)
        let first = try openSession()
        _ = try openSession()
        let refused = try send("POST", "/session")
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(try json(refused)["code"] as? Int, 8)
        XCTAssertEqual(
            try json(refused)["message"] as? String,
            "cannot create session: the server already has 2 REST sessions, its limit (max_rest_sessions)"
        )
        XCTAssertEqual(server.manager.sessions.count, 2)
        XCTAssertEqual(try send("DELETE", "/session", cookie: first).status, 200)
        XCTAssertEqual(try send("POST", "/session").status, 201)
    }

    // MARK: Locks

    func testLockRenewUnlockFlowWithGoLDLMsAnswers() throws {
        start()
        let session = try openSession()
        let locked = try send("POST", "/v1/lock", body: #"{"name": "job", "lock_timeout_seconds": 120}"#, cookie: session)
        XCTAssertEqual(locked.status, 200)
        XCTAssertEqual(locked.header("Content-Type"), "application/json")
        XCTAssertTrue(locked.header("Set-Cookie")?.hasPrefix("ldlm-session=\(session); Path=/; Expires=") == true)
        let key = try XCTUnwrap(try json(locked)["key"] as? String)
        XCTAssertEqual(try json(locked)["locked"] as? Bool, true)
        XCTAssertEqual(try json(locked)["name"] as? String, "job")
        let token = try XCTUnwrap(try json(locked)["fencingToken"] as? String)

        for path in ["/v1/renew", "/v1/refreshlock", "/v1/renewlock"] {
            let renewed = try send("POST", path, body: #"{"name": "job", "key": "\#(key)", "lock_timeout_seconds": 60}"#, cookie: session)
            XCTAssertEqual(text(renewed), #"{"locked":true,"name":"job","key":"\#(key)","fencingToken":"\#(token)"}"#, path)
        }
        let wrongKey = try send("POST", "/v1/renew", body: #"{"name": "job", "key": "nope", "lock_timeout_seconds": 60}"#, cookie: session)
        XCTAssertEqual(try json(wrongKey)["locked"] as? Bool, false)
        XCTAssertEqual((try json(wrongKey)["error"] as? NSDictionary)?["code"] as? String, "LockDoesNotExistOrInvalidKey")

        let unlocked = try send("POST", "/v1/unlock", body: #"{"name": "job", "key": "\#(key)"}"#, cookie: session)
        XCTAssertEqual(text(unlocked), #"{"unlocked":true,"name":"job"}"#)
        XCTAssertEqual(server.manager.lockCount, 0)
        let again = try send("POST", "/v1/unlock", body: #"{"name": "job", "key": "\#(key)"}"#, cookie: session)
        XCTAssertEqual(try json(again)["unlocked"] as? Bool, false)
        XCTAssertEqual((try json(again)["error"] as? NSDictionary)?["code"] as? String, "LockDoesNotExist")
    }

    func testLockIsATryLockRefusedWhileAGRPCClientHoldsIt() throws {
        start()
        let grpc = try server.connect()
        let held = try grpc.call("TryLock", TryLockRequest(name: "shared"))
        XCTAssertEqual(try grpc.response(of: held, as: LockResponse.self)?.locked, true)

        let session = try openSession()
        let refused = try send("POST", "/v1/lock", body: #"{"name": "shared"}"#, cookie: session)
        XCTAssertEqual(text(refused), #"{"locked":false,"name":"shared","key":"","fencingToken":"0"}"#)
        let mismatch = try lock("shared", in: session, size: 3)
        XCTAssertEqual((mismatch["error"] as? NSDictionary)?["code"] as? String, "LockSizeMismatch")
    }

    func testAGRPCClientIsRefusedALockARESTSessionHolds() throws {
        start()
        let session = try openSession()
        XCTAssertEqual(try lock("shared", in: session)["locked"] as? Bool, true)
        let grpc = try server.connect()
        let refused = try grpc.call("TryLock", TryLockRequest(name: "shared"))
        XCTAssertEqual(try grpc.response(of: refused, as: LockResponse.self)?.locked, false)
    }

    func testAServerLimitIs429() throws {
        start { $0.maxLocks = 1 }
        let session = try openSession()
        XCTAssertEqual(try lock("one", in: session)["locked"] as? Bool, true)
        let refused = try send("POST", "/v1/lock", body: #"{"name":"two"}"#, cookie: session)
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(try json(refused)["code"] as? Int, 8)
    }

    // MARK: Routing and bodies

    func testUnknownPathsAndMethodsGetGrpcGatewaysAnswers() throws {
        start()
        let session = try openSession()
        let unknown = try send("POST", "/v1/nothing", cookie: session)
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(text(unknown), #"{"code":5,"message":"Not Found","details":[]}"#)
        let wrongMethod = try send("GET", "/v1/lock", cookie: session)
        XCTAssertEqual(wrongMethod.status, 501)
        XCTAssertEqual(text(wrongMethod), #"{"code":12,"message":"Method Not Allowed","details":[]}"#)
        XCTAssertEqual(try send("GET", "/session").status, 401, "only POST and DELETE open and end sessions; the rest needs one")
    }

    func testBadJSONIs400AndTheSessionGoesOn() throws {
        start()
        let session = try openSession()
        let bad = try send("POST", "/v1/lock", body: #"{"name": "#, cookie: session)
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(text(bad), #"{"code":3,"message":"request body is not valid JSON","details":[]}"#)
        XCTAssertEqual(try lock("after", in: session)["locked"] as? Bool, true)
    }

    // MARK: Password

    private func basic(_ credentials: String) -> [(String, String)] {
        [("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString())]
    }

    func testThePasswordIsHTTPBasicAuthOnEveryRequest() throws {
        start(password: "s3cret:with:colons")
        for headers in [[], basic(":wrong"), basic("s3cret:with:colons"), [("Authorization", "Bearer s3cret:with:colons")]] {
            let refused = try send("POST", "/session", headers: headers)
            XCTAssertEqual(refused.status, 401)
            XCTAssertEqual(refused.header("WWW-Authenticate"), #"Basic realm="Restricted""#)
            XCTAssertTrue(refused.body.isEmpty)
        }
        XCTAssertEqual(server.manager.sessions.count, 0)

        let session = try openSession(headers: basic("any-user:s3cret:with:colons"))
        XCTAssertEqual(try send("POST", "/v1/lock", body: #"{"name":"a"}"#, cookie: session).status, 401, "the session alone is not enough")
        let locked = try send("POST", "/v1/lock", body: #"{"name":"a"}"#, cookie: session, headers: basic(":s3cret:with:colons"))
        XCTAssertEqual(try json(locked)["locked"] as? Bool, true)
    }

    // MARK: Drain

    func testADrainEndsEverySessionAndRefusesRequests() throws {
        start()
        let session = try openSession()
        XCTAssertEqual(try lock("a", in: session)["locked"] as? Bool, true)
        server.manager.beginDrain()
        XCTAssertEqual(gateway.sessionCount, 0)
        XCTAssertEqual(server.manager.lockCount, 0, "without a state file a drain releases as disconnects do")
        let refused = try send("POST", "/session")
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(text(refused), #"{"code":14,"message":"server is shutting down","details":[]}"#)
    }
}
