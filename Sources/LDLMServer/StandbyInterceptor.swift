import LDLMGRPC

/// On a standby replica, refuses every lock and admin call UNAVAILABLE with
/// the primary's address in the `ldlm-primary` trailer, for clients that can
/// follow it (the Swift client does); a load balancer that probes health
/// keeps the rest away. The trailer is there, empty, while no primary is
/// known: it is what tells a standby's refusal from any other UNAVAILABLE.
/// Not a credential check, so not an auth failure.
struct StandbyInterceptor: RPCInterceptor {
    static let primaryTrailer = "ldlm-primary"

    let manager: LockManager

    var credential: RPCCredential? { nil }
    var readsLockState: Bool { true }

    func guards(service: String) -> Bool {
        service == LockService.name || service == AdminService.name
    }

    func refusal(of request: GRPCRequest, from connection: ConnectionContext) -> GRPCStatus? {
        guard case .standby(let primary) = manager.role else { return nil }
        guard let primary else {
            return GRPCStatus(
                .unavailable, "this replica is a standby and no primary is elected yet; retry shortly", trailingMetadata: [Self.primaryTrailer: ""]
            )
        }
        return GRPCStatus(
            .unavailable, "this replica is a standby; the primary is \(primary)", trailingMetadata: [Self.primaryTrailer: primary]
        )
    }
}
