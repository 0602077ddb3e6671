import NIOConcurrencyHelpers
import NIOCore

/// The connections the server has open, so a drain can reach every one of
/// them and, once the shutdown timeout passes, close those still open before
/// the event loops stop; and so a new one over the connection limits is
/// refused (``ConnectionAdmission``). Shared by every event loop that accepts
/// or serves connections, hence its lock; `allClosed` runs on the loop of the
/// connection that closed last.
final class OpenConnections: @unchecked Sendable {
    private let lock = NIOLock()
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var whenAllClosed: [() -> Void] = []
    private var admission: ConnectionAdmission
    private var unixSockets = 0

    init(maxConnections: Int = .max, maxConnectionsPerIP: Int = .max) {
        admission = ConnectionAdmission(maxConnections: maxConnections, maxConnectionsPerIP: maxConnectionsPerIP)
    }

    var count: Int { lock.withLock { channels.count } }
    /// Of ``count``, those on the Unix socket.
    var unixSocketCount: Int { lock.withLock { unixSockets } }

    /// Adds `channel` unless that would go over a limit; `ip` is its client's
    /// address, nil on the Unix socket. Its slots are released when it closes.
    func admit(_ channel: Channel, ip: String?) -> ConnectionAdmission.Verdict {
        let id = ObjectIdentifier(channel)
        let verdict = lock.withLock {
            let verdict = admission.admit(ip: ip)
            guard verdict == .admitted else { return verdict }
            channels[id] = channel
            if ip == nil { unixSockets += 1 }
            return verdict
        }
        guard verdict == .admitted else { return verdict }
        channel.closeFuture.whenComplete { [self] _ in
            let callbacks = lock.withLock { () -> [() -> Void] in
                channels.removeValue(forKey: id)
                if ip == nil { unixSockets -= 1 }
                admission.release(ip: ip)
                return channels.isEmpty ? takeAllClosedCallbacks() : []
            }
            callbacks.forEach { $0() }
        }
        return verdict
    }

    /// Asks every connection to drain (NIO's quiesce event, which
    /// ``ConnectionManagementHandler`` answers with GOAWAY); `allClosed` runs
    /// once none is left, at once if there is none.
    func quiesce(allClosed: @escaping () -> Void) {
        let (open, callbacks) = lock.withLock { () -> ([Channel], [() -> Void]) in
            whenAllClosed.append(allClosed)
            return (Array(channels.values), channels.isEmpty ? takeAllClosedCallbacks() : [])
        }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        callbacks.forEach { $0() }
    }

    /// Closes every connection still open; their sessions end as on any close.
    func closeAll() {
        for channel in lock.withLock({ Array(channels.values) }) {
            channel.close(promise: nil)
        }
    }

    /// Under the lock.
    private func takeAllClosedCallbacks() -> [() -> Void] {
        let callbacks = whenAllClosed
        whenAllClosed.removeAll()
        return callbacks
    }
}
