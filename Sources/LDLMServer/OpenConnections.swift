import NIOCore

/// The connections the server has open, so a drain can reach every one of
/// them and, once the shutdown timeout passes, close those still open before
/// the event loop stops; and so a new one over the connection limits is
/// refused (``ConnectionAdmission``). Used only on the server's event loop.
final class OpenConnections {
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var whenAllClosed: [() -> Void] = []
    private var admission: ConnectionAdmission

    init(maxConnections: Int = .max, maxConnectionsPerIP: Int = .max) {
        admission = ConnectionAdmission(maxConnections: maxConnections, maxConnectionsPerIP: maxConnectionsPerIP)
    }

    var count: Int { channels.count }
    /// Of ``count``, those on the Unix socket.
    private(set) var unixSocketCount = 0

    /// Adds `channel` unless that would go over a limit; `ip` is its client's
    /// address, nil on the Unix socket. Its slots are released when it closes.
    func admit(_ channel: Channel, ip: String?) -> ConnectionAdmission.Verdict {
        let verdict = admission.admit(ip: ip)
        guard verdict == .admitted else { return verdict }
        let id = ObjectIdentifier(channel)
        channels[id] = channel
        if ip == nil { unixSocketCount += 1 }
        channel.closeFuture.whenComplete { [self] _ in
            channels.removeValue(forKey: id)
            if ip == nil { unixSocketCount -= 1 }
            admission.release(ip: ip)
            if channels.isEmpty { notifyAllClosed() }
        }
        return verdict
    }

    /// Asks every connection to drain (NIO's quiesce event, which
    /// ``ConnectionManagementHandler`` answers with GOAWAY); `allClosed` runs
    /// once none is left, at once if there is none.
    func quiesce(allClosed: @escaping () -> Void) {
        whenAllClosed.append(allClosed)
        for channel in channels.values {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        if channels.isEmpty { notifyAllClosed() }
    }

    /// Closes every connection still open; their sessions end as on any close.
    func closeAll() {
        for channel in channels.values {
            channel.close(promise: nil)
        }
    }

    private func notifyAllClosed() {
        let callbacks = whenAllClosed
        whenAllClosed.removeAll()
        callbacks.forEach { $0() }
    }
}
