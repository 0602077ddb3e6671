/// Parses the `grpc-timeout` header: 1 to 8 ASCII digits and a unit
/// (H, M, S, m, u, n). Returns nanoseconds, or nil when malformed.
public func parseGRPCTimeout(_ text: String) -> UInt64? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 2, bytes.count <= 9 else { return nil }
    var amount: UInt64 = 0
    for digit in bytes.dropLast() {
        guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
        amount = amount * 10 + UInt64(digit - UInt8(ascii: "0"))
    }
    let nanosecondsPerUnit: UInt64
    switch bytes.last! {
    case UInt8(ascii: "H"): nanosecondsPerUnit = 3_600_000_000_000
    case UInt8(ascii: "M"): nanosecondsPerUnit = 60_000_000_000
    case UInt8(ascii: "S"): nanosecondsPerUnit = 1_000_000_000
    case UInt8(ascii: "m"): nanosecondsPerUnit = 1_000_000
    case UInt8(ascii: "u"): nanosecondsPerUnit = 1_000
    case UInt8(ascii: "n"): nanosecondsPerUnit = 1
    default: return nil
    }
    let (product, overflow) = amount.multipliedReportingOverflow(by: nanosecondsPerUnit)
    return overflow ? UInt64.max : product
}

/// Formats a timeout for the `grpc-timeout` header, in the finest unit that fits 8 digits.
public func formatGRPCTimeout(nanoseconds: UInt64) -> String {
    let units: [(UInt64, Character)] = [(1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"), (3_600_000_000_000, "H")]
    for (scale, unit) in units {
        // Rounded up, so the deadline the peer sees is never shorter.
        let amount = nanoseconds / scale + (nanoseconds % scale == 0 ? 0 : 1)
        if amount <= 99_999_999 {
            return "\(amount)\(unit)"
        }
    }
    return "99999999H"
}
