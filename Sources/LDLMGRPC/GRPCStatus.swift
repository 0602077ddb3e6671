/// A gRPC status: the code and message sent in `grpc-status` / `grpc-message`.
public struct GRPCStatus: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: Int, Sendable {
        case ok = 0
        case cancelled = 1
        case unknown = 2
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case alreadyExists = 6
        case permissionDenied = 7
        case resourceExhausted = 8
        case failedPrecondition = 9
        case aborted = 10
        case outOfRange = 11
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case dataLoss = 15
        case unauthenticated = 16
    }

    public var code: Code
    public var message: String
    /// Custom trailers sent beside the status, e.g. a standby's
    /// `ldlm-primary`; names lower-case, not starting with `grpc-`.
    public var trailingMetadata: [String: String]

    public init(_ code: Code, _ message: String = "", trailingMetadata: [String: String] = [:]) {
        self.code = code
        self.message = message
        self.trailingMetadata = trailingMetadata
    }

    public var description: String { "\(code) (\(code.rawValue)): \(message)" }
}
