import NIOCore
import NIOHTTP1

/// The `--metrics_listen_address` port: Prometheus metrics and the HTTP
/// probes an orchestrator asks.
///
/// - `GET /metrics`: every series, in the Prometheus text format 0.0.4.
/// - `GET /healthz`: 200 whenever the process answers at all (liveness).
/// - `GET /readyz`: 200 while the server takes calls, 503 once it drains
///   and while a replica is a standby
///   (readiness). The port is bound only after the gRPC listeners and the
///   state file, so an answer already means both are in place.
///
/// Anything else is 404, and a method other than GET 405. What the lock
/// core counts is read on the lock manager's event loop, where it lives.
struct MetricsResponder: HTTPResponder {
    let metrics: ServerMetrics
    let manager: LockManager
    let connections: OpenConnections

    func respond(to request: HTTPRequest, eventLoop: EventLoop) -> EventLoopFuture<HTTPResponse> {
        let path = request.path
        guard path == "/metrics" || path == "/healthz" || path == "/readyz" else {
            return eventLoop.makeSucceededFuture(.text(.notFound, "not found; try /metrics, /healthz or /readyz\n"))
        }
        guard request.head.method == .GET else {
            var response = HTTPResponse.text(.methodNotAllowed, "only GET\n")
            response.headers.add(name: "Allow", value: "GET")
            return eventLoop.makeSucceededFuture(response)
        }
        let (metrics, manager, connections) = (self.metrics, self.manager, self.connections)
        return manager.eventLoop.submit { () -> HTTPResponse in
            switch path {
            case "/metrics":
                metrics.refresh(from: manager, connections: connections)
                return HTTPResponse(
                    status: .ok,
                    headers: ["Content-Type": ServerMetrics.contentType],
                    body: ByteBuffer(bytes: metrics.exposition())
                )
            case "/readyz":
                if manager.isDraining { return .text(.serviceUnavailable, "draining\n") }
                if case .standby = manager.role { return .text(.serviceUnavailable, "standby\n") }
                return .text(.ok, "ready\n")
            default:
                return .text(.ok, "ok\n")
            }
        }.hop(to: eventLoop)
    }
}
