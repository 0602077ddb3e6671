import NIOCore
import NIOHTTP1

/// The REST gateway behind an ``HTTPListener``: converts each request and
/// answer between NIO's HTTP types and the gateway's own. The listener must
/// be bound to the lock manager's event loop, where the gateway runs.
struct RESTResponder: HTTPResponder {
    let gateway: RESTGateway

    func respond(to request: HTTPRequest, eventLoop: EventLoop) -> EventLoopFuture<HTTPResponse> {
        let answer = eventLoop.makePromise(of: HTTPResponse.self)
        let restRequest = RESTRequest(
            method: request.head.method.rawValue,
            path: request.path,
            headers: request.head.headers.map { ($0.name, $0.value) },
            body: Array(request.body.readableBytesView),
            remoteAddress: request.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" }
        )
        gateway.handle(restRequest) { response in
            answer.succeed(HTTPResponse(
                status: HTTPResponseStatus(statusCode: response.status),
                headers: HTTPHeaders(response.headers.map { ($0.name, $0.value) }),
                body: ByteBuffer(bytes: response.body)
            ))
        }
        return answer.futureResult
    }
}
