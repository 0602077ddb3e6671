#if canImport(Glibc)
import CSysRandom
import Glibc
#endif

/// Makes ``LockKey``s from the kernel's cryptographic generator without a
/// system call per key.
///
/// `SystemRandomNumberGenerator` calls `getrandom(2)` for every 8 bytes, so a
/// key cost a system call. This reads ``keysPerRefill`` keys' worth of bytes
/// per call instead and hands out 16 fresh ones per key; no byte is handed out
/// twice. If `getrandom(2)` fails, the rest of the buffer comes from
/// `SystemRandomNumberGenerator`, which has its own fallbacks.
///
/// A class, so that no copy can hand out the same keys again. Not thread-safe:
/// its one owner (a ``LockTable``) calls it from one thread.
public final class LockKeyGenerator {
    /// Keys per `getrandom(2)` call: 4 KiB of randomness.
    public static let keysPerRefill = 256

    /// Two words per key; the words from `nextWord` on are unused.
    @exclusivity(unchecked)
    private var words: [UInt64]
    @exclusivity(unchecked)
    private var nextWord: Int

    public init() {
        words = [UInt64](repeating: 0, count: 2 * Self.keysPerRefill)
        // Empty: the first key fills it, so a table that never grants makes no call.
        nextWord = words.count
    }

    public func next() -> LockKey {
        if nextWord == words.count {
            refill()
        }
        defer { nextWord += 2 }
        return LockKey(randomHigh: words[nextWord], randomLow: words[nextWord + 1])
    }

    private func refill() {
        let filledBytes = words.withUnsafeMutableBytes { Self.fillFromKernel($0) }
        var fallback = SystemRandomNumberGenerator()
        // A partly filled word is overwritten whole.
        for index in (filledBytes / 8)..<words.count {
            words[index] = fallback.next()
        }
        nextWord = 0
    }

    /// Fills `buffer` with `getrandom(2)`, retrying short reads and `EINTR`.
    /// Returns the number of bytes filled: all of them unless a call failed.
    private static func fillFromKernel(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        #if canImport(Glibc)
        guard let base = buffer.baseAddress else { return 0 }
        var filled = 0
        while filled < buffer.count {
            let result = getrandom(base + filled, buffer.count - filled, 0)
            if result > 0 {
                filled += result
            } else if result < 0, errno == EINTR {
                continue
            } else {
                break
            }
        }
        return filled
        #else
        return 0
        #endif
    }
}
