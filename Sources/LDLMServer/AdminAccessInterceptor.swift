import LDLMGRPC

/// Who may call the admin service (``AdminService``).
///
/// On the Unix socket, anyone: its file mode already limits it to the
/// server's user. Over the network, a client certificate listed in
/// `--admin_identities`, or the admin password (`--admin_password`) as
/// `authorization` metadata; with neither configured, nobody. The lock
/// password never grants it: it is only for taking locks.
struct AdminAccessInterceptor: RPCInterceptor {
    private let password: [UInt8]?
    private let identities: [AdminIdentity]

    init(password: String?, identities: [AdminIdentity]) {
        self.password = password.map { Array($0.utf8) }
        self.identities = identities
    }

    var credential: RPCCredential? { .admin }

    func guards(service: String) -> Bool {
        service == AdminService.name
    }

    func refusal(of request: GRPCRequest, from connection: ConnectionContext) -> GRPCStatus? {
        if connection.transport.isUnixSocket {
            return nil
        }
        if let identity = connection.clientIdentity, identities.contains(where: { $0.matches(identity) }) {
            return nil
        }
        if let password {
            guard let presented = request.headers.value(named: "authorization") else {
                return GRPCStatus(.unauthenticated, "admin calls need the admin password in authorization metadata\(orCertificate)")
            }
            guard constantTimeEquals(Array(presented.utf8), password) else {
                return GRPCStatus(.unauthenticated, "invalid admin password in authorization metadata")
            }
            return nil
        }
        if !identities.isEmpty {
            let presented = connection.clientIdentity.map { "\($0)" } ?? "none"
            return GRPCStatus(.permissionDenied, "admin calls need a client certificate listed in --admin_identities (this one: \(presented))")
        }
        return GRPCStatus(
            .permissionDenied,
            "the admin service is served only on the --ipc_socket_file Unix socket unless --admin_password or --admin_identities is set"
        )
    }

    private var orCertificate: String {
        identities.isEmpty ? "" : " or a client certificate listed in --admin_identities"
    }
}
