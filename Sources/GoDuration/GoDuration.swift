/// Parses a duration in Go's `time.ParseDuration` syntax (`500ms`, `10s`,
/// `1m30s`, `1.5h`, `0`), the form `ldlm-server` and `ldlm-lock` flags use.
/// Returns nanoseconds.
package func parseGoDuration(_ text: String) -> UInt64? {
    if text == "0" { return 0 }
    let units: [(String, Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]
    var rest = Substring(text)
    var total = 0.0
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        let unitText = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
        guard let unit = units.filter({ $0.0 == unitText }).first else { return nil }
        rest = rest.dropFirst(unitText.count)
        total += value * unit.1
    }
    guard total.isFinite, total < Double(UInt64.max) else { return nil }
    return UInt64(total)
}

/// Formats nanoseconds the way Go prints a `time.Duration`, for logs.
package func formatGoDuration(_ nanoseconds: UInt64) -> String {
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
package func formatGoDuration(_ duration: Duration) -> String {
    formatGoDuration(UInt64(clamping: duration.nanosecondsClamped))
}

extension Duration {
    /// Whole nanoseconds, saturating at `Int64`'s range.
    package var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }
}
