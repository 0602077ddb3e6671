import LDLMCore
import NIOCore

/// Where the lock table's changes are made durable before they are
/// acknowledged: the state file (``StateJournal``) or a replica set's etcd
/// (``EtcdJournal``). Every call is on the manager's event loop.
protocol DurableJournal: LockTableJournal {
    /// Whether an answer given now could tell of a change not yet durable.
    var hasUnsyncedChanges: Bool { get }
    /// Runs `body` once every change made so far is durable: at once if it is.
    func afterSync(_ body: @escaping () -> Void)
    /// Called when `table` starts sending its changes here.
    func attached(to table: LockTable)
    /// Completes once every change made so far is durable, or can no longer be.
    func close() -> EventLoopFuture<Void>
}
