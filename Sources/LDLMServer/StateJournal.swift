import DequeModule
import Glibc
import LDLMCore
import LDLMStateLog
import Logging
import NIOCore
import NIOPosix

/// Writes the lock table's changes to the state file and holds every answer
/// that depends on a change until that change is on disk.
///
/// Group commit: records are encoded on the event loop as the table makes
/// them; one sync at a time runs on its own thread and takes every record
/// made since the last one began, so the loop keeps serving while the disk
/// syncs, and the more calls arrive during a sync the more share the next.
/// When the file has grown to twice its last snapshot, the next sync writes
/// a fresh snapshot instead (a new file renamed over the old).
final class StateJournal: DurableJournal {
    private let eventLoop: EventLoop
    private let file: StateLogFile
    private let syncThread: NIOThreadPool
    private let logger: Logger
    private let acknowledgesBeforeSync: Bool
    /// Encodes the whole table as a snapshot, on the event loop.
    private var snapshot: (() -> [UInt8])?
    /// Times each sync and counts its records, when metrics are served.
    var metrics: ServerMetrics?

    /// Set once ``close()`` is asked: later changes (leases running out while
    /// the process exits) are not written, and their holds come back leased.
    private var isClosing = false
    private var pending: [UInt8] = []
    private var recordsMade: UInt64 = 0
    private var recordsOnDisk: UInt64 = 0
    private var syncState = SyncState.idle
    private var waiting = Deque<(upTo: UInt64, body: () -> Void)>()
    private var fileSize: Int
    private var compactionThreshold: Int

    private enum SyncState {
        case idle, scheduled, running
    }

    /// Snapshots are written no smaller than this apart, so a small table does
    /// not rewrite its file every few records.
    private let minimumCompactionBytes: Int

    /// `acknowledgesBeforeSync` is a fault for testing checkers: answers go
    /// out at once and the file is synced once a second, as Redis's
    /// `appendfsync everysec` does, so a crash loses acknowledged changes.
    init(
        file: StateLogFile,
        eventLoop: EventLoop,
        logger: Logger,
        minimumCompactionBytes: Int = 4 * 1024 * 1024,
        acknowledgesBeforeSync: Bool = false
    ) {
        self.file = file
        self.eventLoop = eventLoop
        self.logger = logger
        self.minimumCompactionBytes = minimumCompactionBytes
        self.acknowledgesBeforeSync = acknowledgesBeforeSync
        self.fileSize = file.size
        self.compactionThreshold = max(minimumCompactionBytes, 2 * file.size)
        syncThread = NIOThreadPool(numberOfThreads: 1)
        syncThread.start()
    }

    func attached(to table: LockTable) {
        snapshot = { [unowned table] in Self.snapshot(of: table) }
    }

    /// Whether an answer given now could tell of a change not yet on disk.
    var hasUnsyncedChanges: Bool { recordsMade != recordsOnDisk && !acknowledgesBeforeSync }

    /// Runs `body` once every change made so far is on disk: at once if it is.
    func afterSync(_ body: @escaping () -> Void) {
        if recordsMade == recordsOnDisk || acknowledgesBeforeSync {
            body()
        } else {
            waiting.append((recordsMade, body))
        }
    }

    /// Completes once every change made so far is on disk and the file is
    /// closed; for the end of a drain.
    func close() -> EventLoopFuture<Void> {
        let closed = eventLoop.makePromise(of: Void.self)
        isClosing = true
        afterSync { [file, syncThread, eventLoop] in
            syncThread.runIfActive(eventLoop: eventLoop) { file.close() }.whenComplete { result in
                syncThread.shutdownGracefully { _ in }
                closed.completeWith(result)
            }
        }
        return closed.futureResult
    }

    // MARK: LockTableJournal

    func holdGranted(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64?) {
        let record = StateRecord.grant(
            name: name, size: size, key: grant.key, fencingToken: grant.fencingToken,
            leaseEndUnixMilliseconds: leaseDeadline.map(Self.unixMilliseconds(atUptime:))
        )
        append(record)
    }

    func holdReleased(name: String, key: LockKey) {
        append(.release(name: name, key: key))
    }

    func leaseChanged(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64) {
        append(.lease(name: name, key: grant.key, endUnixMilliseconds: Self.unixMilliseconds(atUptime: leaseDeadline)))
    }

    /// The whole table as a state file: what compaction writes.
    static func snapshot(of table: LockTable) -> [UInt8] {
        var bytes = StateLogFormat.header
        StateLogFormat.append(.fencingTokenHighWater(table.fencingTokenHighWater), to: &bytes)
        for lock in table.allLocks {
            for holder in lock.holders {
                let grant = StateRecord.grant(
                    name: lock.name, size: lock.size, key: holder.key, fencingToken: holder.fencingToken,
                    leaseEndUnixMilliseconds: holder.leaseDeadline.map(unixMilliseconds(atUptime:))
                )
                StateLogFormat.append(grant, to: &bytes)
            }
        }
        return bytes
    }

    /// Wall-clock time of a monotonic (NIO uptime) deadline.
    static func unixMilliseconds(atUptime deadline: UInt64) -> Int64 {
        let now = NIODeadline.now().uptimeNanoseconds
        let offset = deadline >= now ? Int64((deadline - now) / 1_000_000) : -Int64((now - deadline) / 1_000_000)
        return unixMillisecondsNow() + offset
    }

    // MARK: Syncing

    private func append(_ record: StateRecord) {
        guard !isClosing else { return }
        StateLogFormat.append(record, to: &pending)
        recordsMade += 1
        guard case .idle = syncState else { return }
        scheduleSync()
    }

    private func scheduleSync() {
        syncState = .scheduled
        if acknowledgesBeforeSync {
            eventLoop.scheduleTask(in: .seconds(1)) { self.startSync() }
        } else {
            // Later in this loop turn: the rest of this read's calls join the batch.
            eventLoop.execute { self.startSync() }
        }
    }

    private func startSync() {
        guard recordsMade > recordsOnDisk else {
            syncState = .idle
            return
        }
        syncState = .running
        let upTo = recordsMade
        let startedAt = NIODeadline.now()
        let batch = pending
        pending = []
        let job: @Sendable () throws -> (fileSize: Int, wasSnapshot: Bool)
        if fileSize + batch.count >= compactionThreshold, let snapshot = snapshot?() {
            // The snapshot already holds this batch's changes.
            job = { [file] in
                try file.replace(with: snapshot)
                return (file.size, true)
            }
        } else {
            job = { [file] in
                try file.append(batch)
                return (file.size, false)
            }
        }
        syncThread.runIfActive(eventLoop: eventLoop, job).whenComplete { result in
            switch result {
            case .success(let (size, wasSnapshot)):
                self.metrics?.stateFileSynced(
                    records: upTo - self.recordsOnDisk,
                    nanoseconds: NIODeadline.now().uptimeNanoseconds - startedAt.uptimeNanoseconds
                )
                self.synced(upTo: upTo, fileSize: size, wasSnapshot: wasSnapshot)
            case .failure(let error):
                self.failStop(error)
            }
        }
    }

    private func synced(upTo: UInt64, fileSize: Int, wasSnapshot: Bool) {
        if wasSnapshot {
            compactionThreshold = max(minimumCompactionBytes, 2 * fileSize)
            logger.info("state file compacted", metadata: ["bytes": "\(fileSize)"])
        }
        self.fileSize = fileSize
        recordsOnDisk = upTo
        while let first = waiting.first, first.upTo <= upTo {
            waiting.removeFirst().body()
        }
        syncState = .idle
        guard recordsMade > recordsOnDisk else { return }
        // What arrived during this sync goes in the next one at once.
        acknowledgesBeforeSync ? scheduleSync() : startSync()
    }

    /// A change that cannot be made durable must not be acknowledged, and
    /// after a failed sync nothing says what reached the disk: stop, and let
    /// the restart read what is there.
    private func failStop(_ error: Error) -> Never {
        logger.critical("state file write failed; stopping without answering the calls that waited for it", metadata: [
            "error": "\(error)",
            "path": "\(file.path)",
        ])
        _exit(1)
    }
}
