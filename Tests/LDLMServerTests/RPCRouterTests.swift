import LDLMCore
@testable import LDLMGRPC
import LDLMHTTP2
import Logging
import XCTest

@testable import LDLMServer

final class RPCRouterTests: XCTestCase {
    private final class EchoService: RPCService {
        let serviceName = "test.Echo"
        var calls = 0

        var methods: [String: RPCMethod] {
            ["Say": { [self] call, _ in
                calls += 1
                return .reply(Array(call.message), onUndelivered: nil)
            }]
        }
    }

    private struct RefuseAll: RPCInterceptor {
        var credential: RPCCredential? { .password }

        func guards(service: String) -> Bool { true }

        func refusal(of request: GRPCRequest, from connection: ConnectionContext) -> GRPCStatus? {
            GRPCStatus(.permissionDenied, "not you")
        }
    }

    private let connection = ConnectionContext(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), remoteAddress: nil)

    private func request(_ path: String, _ message: [UInt8] = [1, 2]) -> GRPCRequest {
        GRPCRequest(streamID: 1, path: path, headers: HTTP2HeaderFields(), timeoutNanoseconds: nil, message: message[...])
    }

    private func route(_ router: RPCRouter, _ path: String) -> RPCOutcome {
        var cache = RouteCache()
        let call = request(path)
        return router.route(call, to: cache.route(for: path, in: router), from: connection, session: SessionID(rawValue: 1)) {
            XCTFail("no method here answers later")
            fatalError()
        }
    }

    func testRoutesByServiceAndMethodName() {
        let service = EchoService()
        let router = RPCRouter(services: [service], interceptors: [])
        guard case .reply(let message, _, _) = route(router, "/test.Echo/Say") else { return XCTFail("not routed") }
        XCTAssertEqual(message, [1, 2])
        XCTAssertEqual(service.calls, 1)
    }

    func testRouteCacheAnswersLikeTheRouterForKnownUnknownAndManyPaths() {
        let router = RPCRouter(services: [EchoService()], interceptors: [])
        var cache = RouteCache()
        let paths = ["/test.Echo/Say"] + (0..<20).map { "/test.Echo/Nope\($0)" } + ["/test.Echo/Say"]
        for _ in 0..<2 {
            for path in paths {
                XCTAssertTrue(cache.route(for: path, in: router) === router.resolve(path), path)
            }
        }
        XCTAssertNotNil(cache.route(for: "/test.Echo/Say", in: router))
    }

    func testUnknownMethodsAndServicesAreUnimplemented() {
        let router = RPCRouter(services: [EchoService()], interceptors: [])
        for path in ["/test.Echo/Shout", "/other.Echo/Say", "/test.Echo/Say/", ""] {
            guard case .failure(let status) = route(router, path) else { return XCTFail(path) }
            XCTAssertEqual(status.code, .unimplemented, path)
            XCTAssertEqual(status.message, "unknown method \(path)")
        }
    }

    func testAnInterceptorsRefusalKeepsTheCallFromItsMethod() {
        let service = EchoService()
        let router = RPCRouter(services: [service], interceptors: [RefuseAll()])
        guard case .failure(let status) = route(router, "/test.Echo/Say") else { return XCTFail("admitted") }
        XCTAssertEqual(status, GRPCStatus(.permissionDenied, "not you"))
        XCTAssertEqual(service.calls, 0)
    }

    func testPasswordInterceptorAdmitsOnlyTheExactPassword() {
        let check = PasswordInterceptor(password: "s3cret")
        func refusal(_ presented: String?) -> GRPCStatus? {
            let fields = HTTP2HeaderFields(presented.map { [HTTP2Header("authorization", $0)] } ?? [])
            let call = GRPCRequest(streamID: 1, path: "/x/y", headers: fields, timeoutNanoseconds: nil, message: [])
            return check.refusal(of: call, from: connection)
        }
        XCTAssertNil(refusal("s3cret"))
        for wrong in [nil, "", "s3cre", "s3cret ", "S3cret"] {
            XCTAssertEqual(refusal(wrong)?.code, .unauthenticated, wrong ?? "nil")
        }
    }
}
