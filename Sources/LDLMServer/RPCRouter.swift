import LDLMCore
import LDLMGRPC
import Logging

/// Admits or refuses a call before it is routed, e.g. by its credentials.
protocol RPCInterceptor {
    /// Whether this interceptor sees the calls of the service named `service`;
    /// asked once per method when the router is built.
    func guards(service: String) -> Bool
    /// Nil admits the call; a status refuses it with that answer.
    func refusal(of request: GRPCRequest, from connection: ConnectionContext) -> GRPCStatus?
    /// What a refused call lacked, for `ldlm_auth_failures_total`; nil when
    /// refusing is not about credentials.
    var credential: RPCCredential? { get }
    /// True if deciding reads lock state, which only the owner loop may:
    /// a connection on another loop then leaves the decision to the owner.
    var readsLockState: Bool { get }
}

extension RPCInterceptor {
    var readsLockState: Bool { false }
}

/// Sends each call through the interceptors that guard its service, then to
/// its method by `:path`.
final class RPCRouter {
    /// A class, so that looking one up retains one object.
    final class Route {
        let method: RPCMethod
        let interceptors: [RPCInterceptor]
        let acceptsLargeRequests: Bool
        /// The method's index in ``ServerMetrics``' tables.
        let metricsIndex: Int

        init(method: @escaping RPCMethod, interceptors: [RPCInterceptor], acceptsLargeRequests: Bool, metricsIndex: Int) {
            self.method = method
            self.interceptors = interceptors
            self.acceptsLargeRequests = acceptsLargeRequests
            self.metricsIndex = metricsIndex
        }
    }

    private let interceptors: [RPCInterceptor]
    private var routes: [String: Route] = [:]
    private var requestStreamRoutes: [String: (method: RPCRequestStreamMethod, interceptors: [RPCInterceptor], metricsIndex: Int)] = [:]
    /// The paths of the methods whose client streams, for the gRPC layer,
    /// which hands their calls over as soon as they open.
    let requestStreamPaths: Set<String>
    let metrics: ServerMetrics?

    init(services: [RPCService], interceptors: [RPCInterceptor], metrics: ServerMetrics? = nil) {
        self.interceptors = interceptors
        self.metrics = metrics
        for service in services {
            // Chosen here, so a call pays for the checks of its own service only.
            let guarding = interceptors.filter { $0.guards(service: service.serviceName) }
            for (name, method) in service.methods {
                routes["/\(service.serviceName)/\(name)"] = Route(
                    method: method, interceptors: guarding, acceptsLargeRequests: service.acceptsLargeRequests,
                    metricsIndex: metrics?.addRPCMethod(service: service.serviceName, method: name) ?? ServerMetrics.unknownMethod
                )
            }
            for (name, method) in service.requestStreamMethods {
                requestStreamRoutes["/\(service.serviceName)/\(name)"] = (
                    method, guarding, metrics?.addRPCMethod(service: service.serviceName, method: name) ?? ServerMetrics.unknownMethod
                )
            }
        }
        requestStreamPaths = Set(requestStreamRoutes.keys)
    }

    /// The method serving `path`, if any.
    func resolve(_ path: String) -> Route? {
        routes[path]
    }

    /// Why the interceptors guarding `route` refuse `request`, if they do.
    /// Also asked before a large request has fully arrived, without its message.
    func refusal(of request: GRPCRequest, to route: Route?, from connection: ConnectionContext) -> GRPCStatus? {
        refusal(of: request, by: route?.interceptors ?? interceptors(forUnknown: request.path), from: connection)
    }

    private func refusal(of request: GRPCRequest, by interceptors: [RPCInterceptor], from connection: ConnectionContext) -> GRPCStatus? {
        for interceptor in interceptors {
            if let status = interceptor.refusal(of: request, from: connection) {
                if let credential = interceptor.credential {
                    metrics?.authFailed(credential)
                    connection.logger.warning("refused call", metadata: ["path": "\(request.path)", "reason": "\(status.message)"])
                }
                return status
            }
        }
        return nil
    }

    /// Why a request whose body has grown past the gRPC layer's admission
    /// threshold must not go on arriving, if it must not: its interceptors
    /// refuse it, its method is unknown (the answer would be UNIMPLEMENTED
    /// anyway), or its service takes only small requests.
    /// Off the owner loop (`onOwnerLoop` false) the interceptors that read
    /// lock state are left to the owner, which sees the call once it arrives.
    func largeRequestRefusal(of request: GRPCRequest, to route: Route?, from connection: ConnectionContext, onOwnerLoop: Bool = true) -> GRPCStatus? {
        var interceptors = route?.interceptors ?? interceptors(forUnknown: request.path)
        if !onOwnerLoop { interceptors.removeAll { $0.readsLockState } }
        if let refusal = refusal(of: request, by: interceptors, from: connection) {
            return refusal
        }
        guard let route else {
            return Self.unknownMethod(request.path)
        }
        guard route.acceptsLargeRequests else {
            return GRPCStatus(.resourceExhausted, "request to \(request.path) is larger than its method takes")
        }
        return nil
    }

    private static func unknownMethod(_ path: String) -> GRPCStatus {
        GRPCStatus(.unimplemented, "unknown method \(path)")
    }

    /// Serves a call through `route`, which ``resolve(_:)`` found for its
    /// path, if its interceptors admit it.
    func route(
        _ request: GRPCRequest,
        to route: Route?,
        from connection: ConnectionContext,
        session: SessionID,
        makeResponder: () -> RPCResponder
    ) -> RPCOutcome {
        if let refusal = refusal(of: request, to: route, from: connection) {
            return .failure(refusal)
        }
        guard let route else {
            return .failure(Self.unknownMethod(request.path))
        }
        return route.method(RPCCall(message: request.message, session: session), makeResponder)
    }

    /// The ``ServerMetrics`` index of the method whose client streams at `path`.
    func requestStreamMetricsIndex(_ path: String) -> Int {
        requestStreamRoutes[path]?.metricsIndex ?? ServerMetrics.unknownMethod
    }

    /// Opens a call to a method whose client streams (one of
    /// ``requestStreamPaths``), if the interceptors guarding it admit it.
    func routeRequestStream(
        _ request: GRPCRequest,
        from connection: ConnectionContext,
        responder: RPCResponder
    ) -> Result<RPCRequestStreamHandler, GRPCStatus> {
        guard let route = requestStreamRoutes[request.path] else {
            return .failure(Self.unknownMethod(request.path))
        }
        if let refusal = refusal(of: request, by: route.interceptors, from: connection) {
            return .failure(refusal)
        }
        return .success(route.method(responder))
    }

    /// An unknown method is checked as its service's methods would be, so a
    /// caller without credentials cannot learn which methods exist.
    private func interceptors(forUnknown path: String) -> [RPCInterceptor] {
        let service = path.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        return interceptors.filter { $0.guards(service: service) }
    }
}

/// The routes of the paths one connection has called, so a call costs a
/// comparison with a path String the gRPC layer reuses rather than a hash.
/// Bounded: a client inventing paths is routed through the router each time.
struct RouteCache {
    private var entries: [(path: String, route: RPCRouter.Route?)] = []
    private static let capacity = 8

    mutating func route(for path: String, in router: RPCRouter) -> RPCRouter.Route? {
        for entry in entries where entry.path == path {
            return entry.route
        }
        let route = router.resolve(path)
        if entries.count < Self.capacity {
            entries.append((path, route))
        }
        return route
    }
}
