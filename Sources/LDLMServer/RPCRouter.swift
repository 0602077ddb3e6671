import LDLMCore
import LDLMGRPC
import Logging

/// Admits or refuses a call before it is routed, e.g. by its credentials.
protocol RPCInterceptor {
    /// Nil admits the call; a status refuses it with that answer.
    func refusal(of request: GRPCRequest, from connection: ConnectionContext) -> GRPCStatus?
}

/// Sends each call through the interceptors, then to its method by `:path`.
final class RPCRouter {
    private let interceptors: [RPCInterceptor]
    private var methods: [String: RPCMethod] = [:]

    init(services: [RPCService], interceptors: [RPCInterceptor]) {
        self.interceptors = interceptors
        for service in services {
            for (name, method) in service.methods {
                methods["/\(service.serviceName)/\(name)"] = method
            }
        }
    }

    func route(
        _ request: GRPCRequest,
        from connection: ConnectionContext,
        session: SessionID,
        makeResponder: () -> RPCResponder
    ) -> RPCOutcome {
        for interceptor in interceptors {
            if let status = interceptor.refusal(of: request, from: connection) {
                connection.logger.warning("refused call", metadata: ["path": "\(request.path)", "reason": "\(status.message)"])
                return .failure(status)
            }
        }
        guard let method = methods[request.path] else {
            return .failure(GRPCStatus(.unimplemented, "unknown method \(request.path)"))
        }
        return method(RPCCall(message: request.message, session: session), makeResponder)
    }
}
