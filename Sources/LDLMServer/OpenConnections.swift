import NIOCore

/// The connections the server has open, so a drain can reach every one of
/// them and, once the shutdown timeout passes, close those still open before
/// the event loop stops. Used only on the server's event loop.
final class OpenConnections {
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var whenAllClosed: [() -> Void] = []

    var count: Int { channels.count }

    func add(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        channels[id] = channel
        channel.closeFuture.whenComplete { [self] _ in
            channels.removeValue(forKey: id)
            if channels.isEmpty { notifyAllClosed() }
        }
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
