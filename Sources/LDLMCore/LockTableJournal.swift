/// Hears every change to who holds what, in the order the table makes them
/// and before the caller or waiter concerned is told: a state file records
/// these, and holds its answers until they are on disk.
public protocol LockTableJournal: AnyObject {
    func holdGranted(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64?)
    func holdReleased(name: String, key: LockKey)
    func leaseChanged(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64)
}
