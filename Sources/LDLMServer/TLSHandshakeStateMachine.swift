/// The TLS handshake of one connection: it must finish in time and agree on
/// HTTP/2. Pure: ``TLSHandshakeHandler`` reports what happened and carries out
/// the verdict.
struct TLSHandshakeStateMachine {
    enum State: Equatable {
        case handshaking
        case established
        case closed
    }

    enum Verdict: Equatable {
        case proceed
        /// Close the connection; the reason goes to the log.
        case refuse(reason: String)
    }

    private(set) var state = State.handshaking

    /// The handshake finished; `negotiatedProtocol` is the ALPN result.
    mutating func handshakeCompleted(negotiatedProtocol: String?) -> Verdict {
        guard state == .handshaking else { return .proceed }
        // A client without ALPN gets HTTP/2 anyway (prior knowledge); one that
        // negotiated something else would not understand our frames.
        if let negotiatedProtocol, negotiatedProtocol != "h2" {
            state = .closed
            return .refuse(reason: "refused TLS connection that negotiated \(negotiatedProtocol) instead of h2")
        }
        state = .established
        return .proceed
    }

    /// The handshake timeout elapsed; true if the connection must be closed.
    mutating func timeoutElapsed() -> Bool {
        guard state == .handshaking else { return false }
        state = .closed
        return true
    }

    /// An error while handshaking is a refused handshake (plaintext client,
    /// missing or untrusted certificate), worth a warning; later ones are not.
    mutating func errorCaught() -> Bool {
        defer { state = .closed }
        return state == .handshaking
    }
}
