import CLDLMProto
import CProtobufC

// Swift views of the messages in `Protos/health.proto` (package
// `grpc.health.v1`, the standard gRPC health checking protocol).

public struct HealthCheckRequest: Equatable, Sendable {
    /// The service asked about; empty for the server as a whole.
    public var service: String

    public init(service: String = "") {
        self.service = service
    }
}

public struct HealthCheckResponse: Equatable, Sendable {
    public enum ServingStatus: Int32, Sendable {
        case unknown = 0
        case serving = 1
        case notServing = 2
        /// Only `Watch` answers it: `Check` refuses an unknown service with NOT_FOUND.
        case serviceUnknown = 3
    }

    public var status: ServingStatus

    public init(status: ServingStatus) {
        self.status = status
    }
}

extension HealthCheckRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: grpc__health__v1__health_check_request__unpack, free: grpc__health__v1__health_check_request__free_unpacked) {
            HealthCheckRequest(service: string($0.service))
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Grpc__Health__V1__HealthCheckRequest()
        grpc__health__v1__health_check_request__init(&message)
        return service.withCString { service in
            message.service = UnsafeMutablePointer(mutating: service)
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: grpc__health__v1__health_check_request__get_packed_size, pack: grpc__health__v1__health_check_request__pack)
        }
    }
}

extension HealthCheckResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: grpc__health__v1__health_check_response__unpack, free: grpc__health__v1__health_check_response__free_unpacked) {
            // proto3 enums are open: a status from a newer peer reads as UNKNOWN.
            HealthCheckResponse(status: ServingStatus(rawValue: Int32($0.status.rawValue)) ?? .unknown)
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Grpc__Health__V1__HealthCheckResponse()
        grpc__health__v1__health_check_response__init(&message)
        message.status = Grpc__Health__V1__HealthCheckResponse__ServingStatus(rawValue: UInt32(bitPattern: status.rawValue))
        return encodeCMessage(&message, prefixLength: prefixLength, packedSize: grpc__health__v1__health_check_response__get_packed_size, pack: grpc__health__v1__health_check_response__pack)
    }
}
