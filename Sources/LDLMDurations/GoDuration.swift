/// Parses a duration in Go's `time.ParseDuration` syntax (`500ms`, `10s`,
/// `1m30s`, `1.5h`, `0`), the form `ldlm-server`'s flags and the command-line
/// clients take. Returns nanoseconds.
public func parseGoDuration(_ text: String) -> UInt64? {
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
