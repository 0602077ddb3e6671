import LDLMHTTP2

/// The sending side that gRPC server and client connections share.
public protocol GRPCConnectionOutput: AnyObject {
    associatedtype Event
    var http2: HTTP2Connection { get }
    /// Handles events raised while sending, such as streams that closed once their last frame went out.
    func drainEvents(_ onEvent: (Event) -> Void)
}

extension GRPCConnectionOutput {
    /// Hands all pending output to `write` and the events sending raised to
    /// `onEvent`, again and again, since handling them may queue more output.
    public func drainOutput(
        _ write: (UnsafeRawBufferPointer) -> Void,
        onEvent: (Event) -> Void
    ) throws(HTTP2Error) {
        while true {
            try http2.drainOutput(write)
            guard http2.hasEvents else { return }
            drainEvents(onEvent)
        }
    }
}

extension GRPCServerConnection: GRPCConnectionOutput {}
extension GRPCClientConnection: GRPCConnectionOutput {}
