import LDLMGRPC

/// What the gRPC layer tells connection management.
enum ConnectionEvent {
    case pingAcknowledged
}

/// What connection management asks of the gRPC layer.
enum ConnectionCommand {
    case ping
    /// Answers waiting calls with `status`, refuses new ones (GOAWAY) and
    /// closes once the calls already taken are answered.
    case drain(GRPCStatus)
    /// Refuses new calls (GOAWAY) and closes once the open ones are answered.
    case closeGracefully
}
