/// The undo actions of the last answers that went out whole.
///
/// A client that cancels a call resets its stream; if our whole answer was
/// already sent, the reset reaches us after the stream closed here, and the
/// client drops the answer unread (a reset stream's frames are discarded). The
/// answer's effect, such as a lock grant, must then be undone. The reset comes
/// within one round trip of the answer, so only the newest few are kept.
struct RecentlyDeliveredAnswers {
    private static let capacity = 64
    /// A ring, allocated on the first answer that has an undo.
    private var entries: [(streamID: Int32, undo: () -> Void)] = []
    private var next = 0

    mutating func remember(_ streamID: Int32, undo: @escaping () -> Void) {
        if entries.count < Self.capacity {
            entries.append((streamID, undo))
        } else {
            entries[next] = (streamID, undo)
        }
        next = (next + 1) % Self.capacity
    }

    /// The undo of `streamID`'s answer, once: a second reset finds nothing.
    mutating func take(_ streamID: Int32) -> (() -> Void)? {
        guard let index = entries.firstIndex(where: { $0.streamID == streamID }) else { return nil }
        let undo = entries[index].undo
        entries[index] = (0, {})
        return undo
    }
}
