import HeapModule

/// The deadlines of deferred calls, earliest first.
///
/// A call answered before its deadline leaves its entry behind rather than
/// paying for a removal; stale entries are skipped when they come due, and
/// the heap is rebuilt from the live calls whenever it has doubled, so memory
/// follows the calls that are actually waiting.
struct GRPCCallDeadlines {
    private struct Entry: Comparable {
        let deadline: UInt64
        let streamID: Int32

        static func < (lhs: Entry, rhs: Entry) -> Bool { lhs.deadline < rhs.deadline }
    }

    private var heap = Heap<Entry>()
    private var rebuildThreshold = Self.minimumRebuildThreshold
    private static let minimumRebuildThreshold = 64

    var earliest: UInt64? { heap.min?.deadline }

    var count: Int { heap.count }

    /// `liveDeadlines` lists the deadlines of calls still waiting, for a rebuild.
    mutating func add(_ deadline: UInt64, streamID: Int32, liveDeadlines: () -> [(UInt64, Int32)]) {
        heap.insert(Entry(deadline: deadline, streamID: streamID))
        guard heap.count >= rebuildThreshold else { return }
        heap = Heap(liveDeadlines().map { Entry(deadline: $0.0, streamID: $0.1) })
        rebuildThreshold = max(Self.minimumRebuildThreshold, 2 * heap.count)
    }

    /// Removes every entry due at `now` and hands its stream to `expire`.
    mutating func popDue(now: UInt64, _ expire: (Int32) -> Void) {
        while let first = heap.min, first.deadline <= now {
            heap.removeMin()
            expire(first.streamID)
        }
    }
}
