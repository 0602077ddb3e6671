import LDLMGRPC
import NIOCore

/// One RPC made from async code on a shard's primary. Everything but
/// ``run(cancellable:)`` happens on the link's event loop.
///
/// Cancelling the calling task resets the call's stream (the server withdraws
/// it) and throws `CancellationError` at once, without waiting for the server.
/// No response can follow: HTTP/2 ignores a reset stream's frames.
final class PendingCall<Response: Sendable, Output: Sendable>: @unchecked Sendable {
    /// Starts the call on the session and returns its stream ID.
    typealias Start = (Session, @escaping (Result<Response, GRPCStatus>) -> Void) -> Int32
    /// Turns a response into the caller's result, on the event loop, so that
    /// what it sets up (a lease) is in place before anything else happens there.
    typealias Complete = (Session, Response, _ sentAt: NIODeadline) -> Result<Output, LDLMClientError>

    private let link: ServerLink
    private let start: Start
    private let complete: Complete
    private var continuation: CheckedContinuation<Output, Error>?
    /// Where the call runs now: a call a standby refused starts again elsewhere.
    private var session: Session?
    private var streamID: Int32 = 0
    private var isCancelled = false

    init(link: ServerLink, start: @escaping Start, complete: @escaping Complete) {
        self.link = link
        self.start = start
        self.complete = complete
    }

    /// Without `cancellable` the call runs to its end even when the task is
    /// cancelled: an unlock or renew should not be skipped.
    func run(cancellable: Bool) async throws -> Output {
        let eventLoop = link.eventLoop
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                eventLoop.execute { self.begin(continuation) }
            }
        } onCancel: {
            if cancellable { eventLoop.execute { self.cancel() } }
        }
    }

    private func begin(_ continuation: CheckedContinuation<Output, Error>) {
        // The cancel handler runs before the operation when the task was
        // cancelled already; both hop here in that order.
        guard !isCancelled else { return continuation.resume(throwing: CancellationError()) }
        self.continuation = continuation
        link.send({ session, done in
            // Cancelled while the call moved to another replica: never started there.
            guard self.continuation != nil else { return }
            self.session = session
            self.streamID = self.start(session) { result in
                // Cancelled: this is the reset's own close, no answer from the
                // server. The link must not act on it (retry it, or take it
                // for a standby's refusal and close the connection).
                guard self.continuation != nil else { return }
                done(result)
            }
        }, completion: { result in
            // Cancelled while connecting or between refusals.
            guard self.continuation != nil else { return }
            self.resume(result.flatMap { self.complete($0.session, $0.response, $0.sentAt) })
        })
    }

    private func cancel() {
        isCancelled = true
        guard let continuation else { return }
        // Detached first: resetting reports the stream closed at once, which
        // must not reach the caller as UNAVAILABLE.
        self.continuation = nil
        if let session { session.connection.cancel(streamID: streamID) }
        continuation.resume(throwing: CancellationError())
    }

    private func resume(_ result: Result<Output, LDLMClientError>) {
        let continuation = self.continuation
        self.continuation = nil
        continuation?.resume(with: result.mapError { $0 as Error })
    }
}
