import LDLMCore
import LDLMGRPC
import LDLMProtocol

/// A gRPC service: a name and its methods. Adding one to the server is one
/// file with a type conforming to this, plus one line where the server lists
/// its services (``LockServer``).
protocol RPCService: AnyObject {
    /// The fully qualified service name, e.g. `ldlm.LDLM`.
    var serviceName: String { get }
    /// Each method's handler by method name, e.g. `Lock`.
    var methods: [String: RPCMethod] { get }
    /// The methods whose client sends a stream of messages (client-streaming
    /// or bidirectional), by method name.
    var requestStreamMethods: [String: RPCRequestStreamMethod] { get }
    /// False for a service whose requests are always small: a body past the
    /// gRPC layer's admission threshold is then refused before it arrives,
    /// whoever sends it (its methods may need no credentials).
    var acceptsLargeRequests: Bool { get }
}

extension RPCService {
    var acceptsLargeRequests: Bool { true }
    var requestStreamMethods: [String: RPCRequestStreamMethod] { [:] }
}

/// Serves one call. `makeResponder` is called only by a method that answers
/// later (returning ``RPCOutcome/deferred(cancel:)``) or streams (returning
/// ``RPCOutcome/stream(firstMessage:cancel:)``), once, before returning.
typealias RPCMethod = (_ call: RPCCall, _ makeResponder: () -> RPCResponder) -> RPCOutcome

/// Serves a call whose client streams, from when it opens: `responder`
/// carries its answers (messages, then a status), and the handler returned
/// takes its request messages as they arrive. Served on the connection's own
/// event loop, so it must not touch lock state.
typealias RPCRequestStreamMethod = (_ responder: RPCResponder) -> RPCRequestStreamHandler

/// What a service does with the messages of a call whose client streams.
struct RPCRequestStreamHandler {
    /// Each request message without its gRPC prefix, in order.
    let receive: (ArraySlice<UInt8>) -> Void
    /// The client has sent its last message.
    let clientEnded: () -> Void
    /// The call ended without the service (client gone, deadline, drain, a
    /// message that could not be read): send nothing more.
    let cancel: () -> Void
}

/// One call as a service sees it.
struct RPCCall {
    /// The request message without its gRPC prefix.
    let message: ArraySlice<UInt8>
    /// The calling connection's lock session.
    let session: SessionID
}

extension RPCCall {
    /// Runs `body` with the decoded request, or answers INVALID_ARGUMENT.
    func decoding<Request: LDLMMessage>(_: Request.Type, _ body: (Request) -> RPCOutcome) -> RPCOutcome {
        do {
            return body(try Request(serializedBytes: message))
        } catch {
            return .failure(GRPCStatus(.invalidArgument, "cannot decode request: \(error)"))
        }
    }
}

/// How a method answers.
enum RPCOutcome {
    /// A response message serialized after room for the gRPC prefix.
    /// `onUndelivered` undoes its effect if it never reaches the client;
    /// `ldlmError` names the error the message carries, for the metrics.
    case reply([UInt8], onUndelivered: (() -> Void)?, ldlmError: ErrorCode? = nil)
    case failure(GRPCStatus)
    /// The answer comes later through the responder made for this call, unless
    /// `cancel` withdraws the call first (client gone, deadline, drain); `cancel`
    /// returns false if the answer is already on its way.
    case deferred(cancel: () -> Bool)
    /// A server-streaming call: `firstMessage` (serialized as for `reply`) goes
    /// out now if given, then each message sent through the responder made for
    /// this call, until the responder's status ends it. `cancel` runs if the
    /// call ends otherwise (client gone, deadline, drain): send nothing more.
    case stream(firstMessage: [UInt8]?, cancel: () -> Void)
}

/// A deferred call's answer, or a message of a streaming call.
enum RPCAnswer {
    case reply([UInt8], onUndelivered: (() -> Void)?, ldlmError: ErrorCode? = nil)
    /// Ends the call with this status.
    case failure(GRPCStatus)
    /// One more message of a streaming call, which stays open.
    case message([UInt8])
}

/// Where a deferred call's answer goes.
protocol RPCAnswerSink: AnyObject {
    func answer(streamID: Int32, with answer: RPCAnswer)
}

/// Delivers one deferred call's answer to its connection, if still there.
struct RPCResponder {
    private weak var sink: RPCAnswerSink?
    private let streamID: Int32

    init(sink: RPCAnswerSink, streamID: Int32) {
        self.sink = sink
        self.streamID = streamID
    }

    func reply(_ prefixedMessage: [UInt8], onUndelivered: (() -> Void)?, ldlmError: ErrorCode? = nil) {
        guard let sink else {
            onUndelivered?()
            return
        }
        sink.answer(streamID: streamID, with: .reply(prefixedMessage, onUndelivered: onUndelivered, ldlmError: ldlmError))
    }

    /// Sends one more message of a streaming call.
    func send(_ prefixedMessage: [UInt8]) {
        sink?.answer(streamID: streamID, with: .message(prefixedMessage))
    }

    func fail(_ status: GRPCStatus) {
        sink?.answer(streamID: streamID, with: .failure(status))
    }

    /// Ends a streaming call with status OK.
    func finish() {
        sink?.answer(streamID: streamID, with: .failure(GRPCStatus(.ok)))
    }
}

/// A name a client sent, quoted for an answer that echoes it: only its first
/// `maxScalars` Unicode scalars, since the client picks its length.
func quotedEcho(_ name: String, maxScalars: Int) -> String {
    "\"\(String(String.UnicodeScalarView(name.unicodeScalars.prefix(maxScalars))))\""
}
