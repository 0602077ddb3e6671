import LDLMHTTP2

/// One call's life on the server, from its headers to the close of its stream.
///
/// The client half and our half close independently, as in HTTP/2; a unary
/// call moves through these states in order, and a state names what the
/// connection may still do with the stream. A server-streaming call (health
/// `Watch`) goes from `dispatched` to `streaming` and, once its status is
/// sent, to `answered`; the unary path never passes through `streaming`.
enum GRPCServerStream {
    /// Headers accepted; the request body is arriving.
    case receiving(GRPCRequestHead, UnaryMessageAccumulator)
    /// The request was handed to the owner, which has not answered yet.
    case dispatched
    /// The owner will answer later; `cancel` withdraws the call and reports
    /// whether it was still unanswered.
    case deferred(GRPCDeferredCall)
    /// Our headers are out and messages follow as the owner sends them, until
    /// the owner's status ends the call. Ended otherwise (the client resets
    /// it, the connection closes, the deadline passes, the server drains),
    /// `call.cancel` tells the owner to stop sending.
    case streaming(GRPCDeferredCall)
    /// Our answer is queued or sent. `onUndelivered` runs if the stream closes
    /// before all of it reached the client.
    case answered(onUndelivered: (() -> Void)?)
    /// Answered before it was dispatched (a malformed call): late frames are
    /// ignored and nothing is undone.
    case refused

    /// Whether the owner still owes this stream an answer.
    var awaitsAnswer: Bool {
        switch self {
        case .dispatched, .deferred: return true
        case .receiving, .streaming, .answered, .refused: return false
        }
    }

    /// The call its owner answers later: a deferred or a streaming call.
    var pendingCall: GRPCDeferredCall? {
        switch self {
        case .deferred(let call), .streaming(let call): return call
        case .receiving, .dispatched, .answered, .refused: return nil
        }
    }
}

/// What a call's headers said, kept until its message is complete.
struct GRPCRequestHead {
    var path: String
    var headers: HTTP2HeaderFields
    var timeoutNanoseconds: UInt64?
    /// The owner's admission check passed (see `GRPCServerConnection.admission`).
    var admitted = false
}

/// A call whose answer comes later, e.g. a `Lock` waiting in a queue, or
/// whose messages keep coming, e.g. a health `Watch`.
public struct GRPCDeferredCall {
    /// Withdraws the call; true if it was still unanswered (it will now never
    /// be answered by its owner), false if its answer is already on its way.
    public let cancel: () -> Bool
    /// Monotonic time (uptime nanoseconds) at which the call fails with
    /// DEADLINE_EXCEEDED unless answered; nil for none.
    public let deadline: UInt64?

    public init(deadline: UInt64?, cancel: @escaping () -> Bool) {
        self.deadline = deadline
        self.cancel = cancel
    }
}
