import LDLMHTTP2

/// One call's life on the server, from its headers to the close of its stream.
///
/// The client half and our half close independently, as in HTTP/2; a unary
/// call moves through these states in order, and a state names what the
/// connection may still do with the stream. A server-streaming call (health
/// `Watch`) goes from `dispatched` to `streaming` and, once its status is
/// sent, to `answered`; the unary path never passes through `streaming`.
/// A call whose client streams (reflection) is `requestStream` from its
/// headers until its status is sent.
enum GRPCServerStream {
    /// Headers accepted; the request body is arriving.
    case receiving(GRPCIncomingRequest)
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
    /// A client-streaming or bidirectional call: its messages go to the owner
    /// one by one as they arrive, and the owner's messages and status go back.
    case requestStream(GRPCRequestStream)
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
        case .receiving, .streaming, .requestStream, .answered, .refused: return false
        }
    }

    /// The call its owner answers later: a deferred or a streaming call, or
    /// a request stream the owner accepted.
    var pendingCall: GRPCDeferredCall? {
        switch self {
        case .deferred(let call), .streaming(let call): return call
        case .requestStream(let stream): return stream.receiver?.call
        case .receiving, .dispatched, .answered, .refused: return nil
        }
    }
}

/// A call whose client streams, from its headers to our status. A class, as
/// it changes with every message and outlives the calls into its owner.
final class GRPCRequestStream {
    /// Nil until the owner accepts the call; messages wait meanwhile.
    var receiver: GRPCRequestStreamReceiver?
    var deframer: GRPCMessageDeframer
    /// Received and not yet given back to the client's flow-control window.
    var unconsumedByteCount = 0
    /// The client half-closed: once its last message is delivered, the owner hears so.
    var clientEnded = false
    var endDelivered = false
    /// Our response headers are out.
    var responseBegun = false
    /// Messages wait until the answers queued on the stream have gone out, so
    /// a client that sends without reading cannot make answers pile up here.
    var awaitsQueuedAnswers = false

    init(maxMessageBytes: Int) {
        self.deframer = GRPCMessageDeframer(maxMessageBytes: maxMessageBytes)
    }
}

/// Where a request stream's messages go, given by its owner when it accepts it.
public struct GRPCRequestStreamReceiver {
    /// Its deadline and how the connection withdraws it, as for a streaming
    /// call: the client reset it or left, the deadline passed, the server
    /// drains, or a message could not be read.
    public let call: GRPCDeferredCall
    /// Each request message without its prefix, in order.
    public let receive: (ArraySlice<UInt8>) -> Void
    /// The client half-closed, after its last message.
    public let clientEnded: () -> Void

    public init(call: GRPCDeferredCall, receive: @escaping (ArraySlice<UInt8>) -> Void, clientEnded: @escaping () -> Void) {
        self.call = call
        self.receive = receive
        self.clientEnded = clientEnded
    }
}

/// A unary call from its headers until its message is complete. A class,
/// so that a stream's state stays a few words, cheap to copy and destroy on
/// every change, and the body grows where it lies.
final class GRPCIncomingRequest {
    @exclusivity(unchecked)
    var head: GRPCRequestHead
    @exclusivity(unchecked)
    var body: UnaryMessageAccumulator

    init(head: GRPCRequestHead, body: UnaryMessageAccumulator) {
        self.head = head
        self.body = body
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
    /// An owner on another thread, which cannot tell at once, returns false
    /// and answers the call itself: with ``GRPCServerConnection/withdrawal``
    /// if it withdrew it, else with the answer it had sent first.
    public let cancel: () -> Bool
    /// Monotonic time (uptime nanoseconds) at which the call fails with
    /// DEADLINE_EXCEEDED unless answered; nil for none.
    public let deadline: UInt64?

    public init(deadline: UInt64?, cancel: @escaping () -> Bool) {
        self.deadline = deadline
        self.cancel = cancel
    }
}
