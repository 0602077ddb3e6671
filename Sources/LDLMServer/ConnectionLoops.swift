import NIOCore

/// The event loops connections run on, each with what its connections
/// share: an output buffer and, except on the owner loop, the bridge to the
/// owner. Fixed when the server starts, so any loop may look itself up.
final class ConnectionLoops {
    struct Shared {
        let outputBuffer: SharedOutputBuffer
        /// Nil on the owner loop, whose connections call the manager directly.
        let bridge: OwnerLoopBridge?
    }

    /// One per loop other than the owner's.
    private let bridges: [OwnerLoopBridge]
    private let byLoop: [ObjectIdentifier: Shared]

    /// `others`: the loops besides `owner` that connections run on.
    init(owner: EventLoop, others: [EventLoop], manager: LockManager, router: RPCRouter) {
        bridges = others.map { OwnerLoopBridge(owner: owner, loop: $0, manager: manager, router: router) }
        var byLoop = [ObjectIdentifier(owner): Shared(outputBuffer: SharedOutputBuffer(), bridge: nil)]
        for bridge in bridges {
            byLoop[ObjectIdentifier(bridge.loop)] = Shared(outputBuffer: SharedOutputBuffer(), bridge: bridge)
        }
        self.byLoop = byLoop
    }

    /// What the connections of `loop`, one of the server's, share.
    func shared(by loop: EventLoop) -> Shared {
        guard let shared = byLoop[ObjectIdentifier(loop)] else {
            preconditionFailure("a connection on an event loop the server was not given")
        }
        return shared
    }

    /// On the owner: sends every loop what the owner queued for it, so that
    /// what the owner tells connections next comes after it.
    func handOverNow() {
        for bridge in bridges {
            bridge.handToLoopNow()
        }
    }
}
