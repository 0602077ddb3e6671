import LDLMHTTP2

/// The sending side that gRPC server and client connections share.
public protocol GRPCConnectionOutput: AnyObject {
    associatedtype Event
    var http2: HTTP2Connection { get }
    /// Events raised while sending, such as streams that closed once their last frame went out.
    func takeEvents() -> [Event]
}

extension GRPCConnectionOutput {
    /// Hands all pending output to `write` and the events sending raised to
    /// `handle`, again and again, since handling them may queue more output.
    public func drainOutput(
        _ write: (UnsafeRawBufferPointer) -> Void,
        handlingEvents handle: ([Event]) -> Void
    ) throws(HTTP2Error) {
        while true {
            try http2.drainOutput(write)
            let events = takeEvents()
            if events.isEmpty { return }
            handle(events)
        }
    }
}

extension GRPCServerConnection: GRPCConnectionOutput {}
extension GRPCClientConnection: GRPCConnectionOutput {}
