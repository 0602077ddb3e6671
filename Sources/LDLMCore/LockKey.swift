/// The secret a holder needs to unlock or renew its hold on a lock.
///
/// 122 random bits from the kernel's cryptographic generator (see
/// ``LockKeyGenerator``), shown in the UUID version 4 text form the Go
/// `ldlm-server` uses, so clients that store or log keys see the shape they
/// expect. Held as two words, not as text, to keep the
/// per-lock memory small.
public struct LockKey: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A version 4 UUID from 128 random bits: 6 of them become the version
    /// (`4`) and the RFC 4122 variant (`10` in binary).
    init(randomHigh: UInt64, randomLow: UInt64) {
        self.init(
            high: (randomHigh & ~UInt64(0xF000)) | 0x4000,
            low: (randomLow & ~(UInt64(0xC) << 60)) | (UInt64(0x8) << 60)
        )
    }

    /// Parses the 36-character `8-4-4-4-12` hexadecimal form; `nil` for anything else.
    public init?(_ text: String) {
        var text = text
        guard let key = text.withUTF8({ LockKey.parse($0) }) else { return nil }
        self = key
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> LockKey? {
        let dash = UInt8(ascii: "-")
        guard bytes.count == 36, let base = bytes.baseAddress,
              base[8] == dash, base[13] == dash, base[18] == dash, base[23] == dash
        else { return nil }
        // Every Unlock and Renew parses a key: the groups are read where they
        // lie, without checking each position for a dash.
        func readDigits(_ offsets: Range<Int>, into word: inout UInt64) -> Bool {
            for offset in offsets {
                guard let value = hexValue(base[offset]) else { return false }
                word = word << 4 | UInt64(value)
            }
            return true
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        guard readDigits(0..<8, into: &high), readDigits(9..<13, into: &high), readDigits(14..<18, into: &high),
              readDigits(19..<23, into: &low), readDigits(24..<36, into: &low)
        else { return nil }
        return LockKey(high: high, low: low)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        let digit = byte &- UInt8(ascii: "0")
        if digit < 10 { return digit }
        // Setting bit 5 folds "A"..."F" onto "a"..."f" and no other byte onto them.
        let letter = (byte | 0x20) &- UInt8(ascii: "a")
        return letter < 6 ? letter &+ 10 : nil
    }

    public var description: String {
        // Every answer to a Lock carries its key: digits are computed, not
        // looked up in an array built for the purpose.
        func hexDigit(_ value: UInt64) -> UInt8 {
            value < 10 ? UInt8(ascii: "0") + UInt8(value) : UInt8(ascii: "a") + UInt8(value - 10)
        }
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            func put(_ word: UInt64, nibbleCount: Int, startingAt shift: Int) {
                for nibble in 0..<nibbleCount {
                    buffer[position] = hexDigit((word >> UInt64(shift - 4 * nibble)) & 0xF)
                    position += 1
                }
            }
            func dash() {
                buffer[position] = UInt8(ascii: "-")
                position += 1
            }
            put(high, nibbleCount: 8, startingAt: 60)
            dash()
            put(high, nibbleCount: 4, startingAt: 28)
            dash()
            put(high, nibbleCount: 4, startingAt: 12)
            dash()
            put(low, nibbleCount: 4, startingAt: 60)
            dash()
            put(low, nibbleCount: 12, startingAt: 44)
            return position
        }
    }
}
