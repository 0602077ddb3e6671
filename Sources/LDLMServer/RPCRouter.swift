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
}

/// Sends each call through the interceptors that guard its service, then to
/// its method by `:path`.
final class RPCRouter {
    /// A class, so that looking one up retains one object.
    private final class Route {
        let method: RPCMethod
        let interceptors: [RPCInterceptor]

        init(method: @escaping RPCMethod, interceptors: [RPCInterceptor]) {
            self.method = method
            self.interceptors = interceptors
        }
    }

    private let interceptors: [RPCInterceptor]
    private var routes: [String: Route] = [:]

    init(services: [RPCService], interceptors: [RPCInterceptor]) {
        self.interceptors = interceptors
        for service in services {
            // Chosen here, so a call pays for the checks of its own service only.
            let guarding = interceptors.filter { $0.guards(service: service.serviceName) }
            for (name, method) in service.methods {
                routes["/\(service.serviceName)/\(name)"] = Route(method: method, interceptors: guarding)
            }
        }
    }

    func route(
        _ request: GRPCRequest,
        from connection: ConnectionContext,
        session: SessionID,
        makeResponder: () -> RPCResponder
    ) -> RPCOutcome {
        let route = routes[request.path]
        for interceptor in route?.interceptors ?? interceptors(forUnknown: request.path) {
            if let status = interceptor.refusal(of: request, from: connection) {
                connection.logger.warning("refused call", metadata: ["path": "\(request.path)", "reason": "\(status.message)"])
                return .failure(status)
            }
        }
        guard let route else {
            return .failure(GRPCStatus(.unimplemented, "unknown method \(request.path)"))
        }
        return route.method(RPCCall(message: request.message, session: session), makeResponder)
    }

    /// An unknown method is checked as its service's methods would be, so a
    /// caller without credentials cannot learn which methods exist.
    private func interceptors(forUnknown path: String) -> [RPCInterceptor] {
        let service = path.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        return interceptors.filter { $0.guards(service: service) }
    }
}
