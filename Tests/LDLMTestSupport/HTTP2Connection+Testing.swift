import LDLMHTTP2

extension HTTP2Connection {
    /// The events produced since the last call, oldest first.
    public func takeEvents() -> [HTTP2Event] {
        var events: [HTTP2Event] = []
        drainEvents { events.append($0) }
        return events
    }

    /// All pending output as one array.
    public func drainOutput() throws(HTTP2Error) -> [UInt8] {
        var output: [UInt8] = []
        try drainOutput { output.append(contentsOf: $0) }
        return output
    }
}
