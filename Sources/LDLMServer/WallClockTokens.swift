import Foundation
import LDLMCore

extension FencingTokenSource {
    /// Starts above the wall clock's microseconds since the Unix epoch, read
    /// once: the tokens of this run then start above those of earlier runs
    /// (see ``FencingTokenSource`` for what that assumes), and no grant pays
    /// for a clock read.
    /// `floor` is the largest token a state file recorded: it keeps tokens
    /// increasing even if the wall clock went back since.
    static func startingAboveWallClock(orAbove floor: UInt64 = 0) -> FencingTokenSource {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let microseconds = UInt64(max(0, now.tv_sec)) * 1_000_000 + UInt64(max(0, now.tv_nsec)) / 1_000
        return FencingTokenSource(startingAbove: max(microseconds, floor))
    }
}
