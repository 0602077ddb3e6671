import LDLMGRPC

/// Refuses calls whose `authorization` metadata is not the server password:
/// lock calls, and reflection, as a server guards its schema like its other
/// services, and a caller who may not lock has no use for it.
///
/// Not for the admin service, whose own rule (``AdminAccessInterceptor``)
/// keeps the lock password from granting it; not for the health service, which
/// load balancers and Kubernetes probes call without metadata and which tells
/// only whether the server serves; and not on the Unix socket, which only the
/// server's user can open.
struct PasswordInterceptor: RPCInterceptor {
    private let password: [UInt8]

    init(password: String) {
        self.password = Array(password.utf8)
    }

    var credential: RPCCredential? { .password }

    func guards(service: String) -> Bool {
        service != AdminService.name && service != HealthService.name
    }

    func refusal(of request: GRPCRequest, from connection: ConnectionContext) -> GRPCStatus? {
        if connection.transport.isUnixSocket {
            return nil
        }
        guard let presented = request.headers.value(named: "authorization"),
              constantTimeEquals(Array(presented.utf8), password)
        else {
            return GRPCStatus(.unauthenticated, "invalid or missing password in authorization metadata")
        }
        return nil
    }
}

/// Compares without an early exit, so response time does not reveal how much
/// of a guessed password was right.
func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count)
    for index in 0..<max(lhs.count, rhs.count) {
        let left = index < lhs.count ? lhs[index] : 0
        let right = index < rhs.count ? rhs[index] : 0
        difference |= left ^ right
    }
    return difference == 0 && lhs.count == rhs.count
}
