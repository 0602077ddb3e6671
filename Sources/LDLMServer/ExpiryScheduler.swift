import LDLMCore
import NIOCore

/// Keeps one timer armed for the ``LockTable``'s next lease expiry or wait
/// timeout, so time-based releases happen on time without polling.
final class ExpiryScheduler {
    private let table: LockTable
    private let eventLoop: EventLoop
    private var scheduled: (deadline: UInt64, task: Scheduled<Void>)?

    init(table: LockTable, eventLoop: EventLoop) {
        self.table = table
        self.eventLoop = eventLoop
    }

    /// Call after anything that may have added an earlier deadline.
    func reschedule() {
        guard let next = table.nextDeadline else { return }
        if let scheduled {
            guard next < scheduled.deadline else { return }
            scheduled.task.cancel()
        }
        let task = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(next)) { [weak self] () -> Void in
            guard let self else { return }
            self.fire()
        }
        scheduled = (next, task)
    }

    private func fire() {
        scheduled = nil
        table.expireDue()
        reschedule()
    }
}

/// The monotonic clock NIO schedules with, so table deadlines and timers agree.
final class EventLoopClock: LockClock {
    var nanosecondsNow: UInt64 { NIODeadline.now().uptimeNanoseconds }
}
