import NIOCore

/// Formats nanoseconds the way Go prints a `time.Duration`, for logs.
func formatGoDuration(_ nanoseconds: UInt64) -> String {
    if nanoseconds == 0 { return "0s" }
    if nanoseconds < 1_000_000_000 {
        return nanoseconds % 1_000_000 == 0 ? "\(nanoseconds / 1_000_000)ms" : "\(nanoseconds)ns"
    }
    var seconds = nanoseconds / 1_000_000_000
    let fraction = nanoseconds % 1_000_000_000
    var text = ""
    if seconds >= 3600 {
        text += "\(seconds / 3600)h"
        seconds %= 3600
    }
    if seconds >= 60 || !text.isEmpty {
        text += "\(seconds / 60)m"
        seconds %= 60
    }
    if fraction == 0 {
        text += "\(seconds)s"
    } else {
        text += "\(Double(seconds) + Double(fraction) / 1e9)s"
    }
    return text
}

/// Formats a duration the way Go prints a `time.Duration`, for logs.
func formatGoDuration(_ duration: Duration) -> String {
    formatGoDuration(UInt64(clamping: duration.nanosecondsClamped))
}

extension Duration {
    /// Whole nanoseconds, saturating at `Int64`'s range.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanosecondsClamped)
    }
}
