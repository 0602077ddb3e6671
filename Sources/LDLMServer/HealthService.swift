import LDLMGRPC
import LDLMProtocol

/// The standard gRPC health service, `grpc.health.v1.Health`, for load
/// balancers and Kubernetes probes: SERVING while the server serves,
/// NOT_SERVING from the moment it drains, and while a replica is a standby. It reports on the server as a whole
/// (service "") and on the lock service; any other name is unknown. No
/// password guards it (see ``PasswordInterceptor``).
final class HealthService: RPCService {
    static let name = "grpc.health.v1.Health"
    private static let reportedServices: Set<String> = ["", LockService.name]

    let serviceName = HealthService.name
    /// A health request is a service name: a large one is an attack, and no
    /// password guards this service.
    let acceptsLargeRequests = false
    private let manager: LockManager
    /// The open `Watch` calls on a reported service, each told of every change.
    private var watchers: [Int: RPCResponder] = [:]
    private var nextWatcherID = 0

    init(manager: LockManager) {
        self.manager = manager
        manager.onDrain { [weak self] in self?.statusChanged() }
        manager.onRoleChange { [weak self] in self?.statusChanged() }
    }

    var methods: [String: RPCMethod] {
        [
            "Check": { [self] call, _ in call.decoding(HealthCheckRequest.self) { check($0) } },
            "Watch": { [self] call, makeResponder in
                call.decoding(HealthCheckRequest.self) { watch($0, makeResponder) }
            },
        ]
    }

    /// How many `Watch` calls wait for a change; each ends with its stream.
    var watcherCount: Int { watchers.count }

    private var status: HealthCheckResponse.ServingStatus {
        manager.isServing ? .serving : .notServing
    }

    private func check(_ request: HealthCheckRequest) -> RPCOutcome {
        guard Self.reportedServices.contains(request.service) else {
            // The status travels in a header, which has a size limit.
            return .failure(GRPCStatus(.notFound, "unknown service \(quotedEcho(request.service, maxScalars: 64))"))
        }
        return .reply(Self.encoded(status), onUndelivered: nil)
    }

    /// As the health protocol asks, an unknown service is answered
    /// SERVICE_UNKNOWN and the call stays open, to report the service should
    /// it become known (ours never do).
    private func watch(_ request: HealthCheckRequest, _ makeResponder: () -> RPCResponder) -> RPCOutcome {
        guard Self.reportedServices.contains(request.service) else {
            return .stream(firstMessage: Self.encoded(.serviceUnknown), cancel: {})
        }
        let id = nextWatcherID
        nextWatcherID += 1
        watchers[id] = makeResponder()
        return .stream(firstMessage: Self.encoded(status), cancel: { [weak self] in self?.watchers[id] = nil })
    }

    private func statusChanged() {
        let message = Self.encoded(status)
        for responder in watchers.values {
            responder.send(message)
        }
    }

    private static func encoded(_ status: HealthCheckResponse.ServingStatus) -> [UInt8] {
        LockResponses.encoded(HealthCheckResponse(status: status))
    }
}
