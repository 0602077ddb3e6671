/// What one side of a loop-to-loop hop collects during one event-loop tick,
/// handed to the other loop in a single `execute`.
///
/// Pure: the caller owns the loops. The first item of a batch says so, and
/// the caller then schedules one hand-over for the end of the tick; the
/// hand-over takes the whole batch, in the order the items came.
struct HopBatch<Item> {
    private var items: [Item] = []

    var isEmpty: Bool { items.isEmpty }

    /// Adds `item`; true if it starts a batch, whose hand-over the caller
    /// must now schedule.
    mutating func append(_ item: Item) -> Bool {
        items.append(item)
        return items.count == 1
    }

    /// Everything appended since the last take, oldest first; the next
    /// append starts a new batch.
    mutating func take() -> [Item] {
        let taken = items
        items = []
        return taken
    }
}
