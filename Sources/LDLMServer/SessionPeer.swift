import Foundation
import LDLMCore

/// Who is behind a session, recorded when its connection opens, for the
/// admin service's listings and for ending the session.
struct SessionPeer {
    /// Read when listed rather than copied at open: a TLS connection learns
    /// its client certificate after the session has opened.
    let connection: ConnectionContext
    let connectedSinceUnixMilliseconds: Int64
    /// Closes the session's connection.
    let close: () -> Void
}

/// One open session as an administrator sees it.
struct SessionSummary {
    let id: SessionID
    let peer: SessionPeer
    let locksHeld: Int
    let waitingCalls: Int
}

/// Wall-clock time, for people reading when a connection opened.
func unixMillisecondsNow() -> Int64 {
    Int64(Date().timeIntervalSince1970 * 1000)
}
