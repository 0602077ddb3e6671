#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import LDLMGRPC
import XCTest

final class GRPCTimeoutTests: XCTestCase {
    func testEveryUnitIsParsedToNanoseconds() {
        XCTAssertEqual(parseGRPCTimeout("2H"), 7_200_000_000_000)
        XCTAssertEqual(parseGRPCTimeout("3M"), 180_000_000_000)
        XCTAssertEqual(parseGRPCTimeout("4S"), 4_000_000_000)
        XCTAssertEqual(parseGRPCTimeout("5m"), 5_000_000)
        XCTAssertEqual(parseGRPCTimeout("6u"), 6_000)
        XCTAssertEqual(parseGRPCTimeout("7n"), 7)
        XCTAssertEqual(parseGRPCTimeout("0S"), 0)
    }

    func testEightDigitsAreTheMostAllowed() {
        XCTAssertEqual(parseGRPCTimeout("99999999n"), 99_999_999)
        XCTAssertEqual(parseGRPCTimeout("00000001S"), 1_000_000_000)
        XCTAssertNil(parseGRPCTimeout("123456789n"))
        XCTAssertNil(parseGRPCTimeout("000000001S"))
    }

    func testTimeoutTooLongForNanosecondsSaturates() {
        XCTAssertEqual(parseGRPCTimeout("99999999H"), UInt64.max)
    }

    func testMalformedTimeoutsAreRejected() {
        for text in ["", "S", "1", "10", "1s", "1h", "1X", "-1S", "+1S", " 1S", "1S ", "1.5S", "1e3n", "１S", "1SS", "S1"] {
            XCTAssertNil(parseGRPCTimeout(text), "\"\(text)\"")
        }
    }

    func testFormatUsesTheFinestUnitThatFitsEightDigits() {
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 0), "0n")
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 99_999_999), "99999999n")
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 100_000_000), "100000u")
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 30_000_000_000), "30000000u")
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 300_000_000_000), "300000m")
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 3_600_000_000_000), "3600000m")
    }

    func testFormatRoundsUpSoTheDeadlineIsNeverShortened() {
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 100_000_001), "100001u")
        XCTAssertEqual(formatGRPCTimeout(nanoseconds: 100_000_000_001), "100001m")
    }

    func testFormatThenParseRoundTripsWithinOneUnit() throws {
        let samples: [UInt64] = [
            0, 1, 999, 99_999_999, 100_000_000, 123_456_789, 1_000_000_000, 59_999_999_999,
            86_400_000_000_000, 7 * 86_400_000_000_000, 6_000_000_000_000_000_000, 9_000_000_000_000_000_000,
        ]
        let scales: [Character: UInt64] = ["n": 1, "u": 1_000, "m": 1_000_000, "S": 1_000_000_000, "M": 60_000_000_000, "H": 3_600_000_000_000]
        for nanoseconds in samples {
            let text = formatGRPCTimeout(nanoseconds: nanoseconds)
            XCTAssertLessThanOrEqual(text.count, 9, text)
            let parsed = try XCTUnwrap(parseGRPCTimeout(text), text)
            let scale = try XCTUnwrap(scales[text.last!])
            XCTAssertGreaterThanOrEqual(parsed, nanoseconds, text)
            XCTAssertLessThan(parsed - nanoseconds, scale, text)
        }
    }

    func testFormatOfTheLargestTimeoutDoesNotCrash() {
        // Runs in a child process: an arithmetic overflow traps and would end the whole test run.
        let status = statusOfChildProcess {
            formatGRPCTimeout(nanoseconds: .max) == "5124096H" ? 0 : 1
        }
        XCTAssertEqual(status, .exited(0), "formatGRPCTimeout(nanoseconds: UInt64.max) should return \"5124096H\"")

        let saturated = parseGRPCTimeout("99999999H")!
        XCTAssertEqual(statusOfChildProcess { _ = formatGRPCTimeout(nanoseconds: saturated); return 0 }, .exited(0),
                       "a timeout parsed from the largest header value formats again")
    }
}

enum ChildStatus: Equatable {
    case exited(Int32)
    case killedBySignal(Int32)
}

/// Runs `body` in a forked child with its output silenced and reports how it ended.
func statusOfChildProcess(_ body: () -> Int32) -> ChildStatus {
    let pid = fork()
    if pid == 0 {
        let devNull = open("/dev/null", O_WRONLY)
        dup2(devNull, 1)
        dup2(devNull, 2)
        _exit(body())
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1, errno == EINTR {}
    let signal = status & 0x7F
    return signal == 0 ? .exited((status >> 8) & 0xFF) : .killedBySignal(signal)
}

final class GRPCPercentEncodingTests: XCTestCase {
    func testPrintableASCIIIsLeftAlone() {
        let text = "lock \"name\" not found: key=abc-123 (see ~/docs)"
        XCTAssertEqual(GRPCPercentEncoding.encode(text), text)
    }

    func testPercentControlAndNonASCIIBytesAreEscaped() {
        XCTAssertEqual(GRPCPercentEncoding.encode("100%"), "100%25")
        XCTAssertEqual(GRPCPercentEncoding.encode("a\nb\tc"), "a%0Ab%09c")
        XCTAssertEqual(GRPCPercentEncoding.encode("été"), "%C3%A9t%C3%A9")
        XCTAssertEqual(GRPCPercentEncoding.encode("\u{7F}"), "%7F")
    }

    func testRoundTripPreservesAnyText() {
        for text in ["", "plain", "100% sure", "%41 is not A", "%%", "日本語のロック", "🔒 held", "line1\r\nline2", "nul\u{0}inside", "trailing %"] {
            let encoded = GRPCPercentEncoding.encode(text)
            XCTAssertTrue(encoded.utf8.allSatisfy { (0x20...0x7E).contains($0) }, encoded)
            XCTAssertEqual(GRPCPercentEncoding.decode(encoded), text)
        }
    }

    func testDecodeAcceptsLowercaseHexAndKeepsBrokenEscapes() {
        XCTAssertEqual(GRPCPercentEncoding.decode("%c3%a9"), "é")
        XCTAssertEqual(GRPCPercentEncoding.decode("50%"), "50%")
        XCTAssertEqual(GRPCPercentEncoding.decode("%4"), "%4")
        XCTAssertEqual(GRPCPercentEncoding.decode("%zz%41"), "%zzA")
    }
}

final class GRPCMessageFramingTests: XCTestCase {
    func testWritePrefixFillsInTheFlagAndLengthWhateverWasThere() {
        for reserved: [UInt8] in [[0, 0, 0, 0, 0], [0, 0, 0, 0, 3], [1, 0, 0, 0, 3], [0, 9, 9, 9, 9]] {
            var framed = reserved + [7, 8, 9]
            GRPCMessageFraming.writePrefix(into: &framed)
            XCTAssertEqual(framed, [0, 0, 0, 0, 3, 7, 8, 9], "reserved \(reserved)")
        }
    }

    func testFramePrefixesFlagAndBigEndianLength() {
        XCTAssertEqual(GRPCMessageFraming.frame([]), [0, 0, 0, 0, 0])
        XCTAssertEqual(GRPCMessageFraming.frame([0xAA, 0xBB]), [0, 0, 0, 0, 2, 0xAA, 0xBB])
        XCTAssertEqual(Array(GRPCMessageFraming.frame(Array(repeating: 0, count: 0x010203)).prefix(5)), [0, 0, 0x01, 0x02, 0x03])
    }

    func testAccumulatorReassemblesAMessageFedByteByByte() throws {
        var accumulator = UnaryMessageAccumulator(maxMessageBytes: 100)
        let message = Array("hello, lock".utf8)
        for byte in GRPCMessageFraming.frame(message) {
            try accumulator.append([byte])
        }
        XCTAssertEqual(Array(try accumulator.message()), message)
    }

    func testAccumulatorRejectsOversizeAsSoonAsTheLengthIsKnown() throws {
        var accumulator = UnaryMessageAccumulator(maxMessageBytes: 100)
        try accumulator.append([0, 0, 0, 0])
        XCTAssertThrowsError(try accumulator.append([101])) { error in
            XCTAssertEqual((error as? GRPCStatus)?.code, .resourceExhausted)
        }
    }

    func testAccumulatorRejectsTheFirstByteOfASecondMessage() throws {
        var accumulator = UnaryMessageAccumulator(maxMessageBytes: 100)
        try accumulator.append(GRPCMessageFraming.frame([1, 2]))
        XCTAssertThrowsError(try accumulator.append([0])) { error in
            XCTAssertEqual((error as? GRPCStatus)?.code, .invalidArgument)
        }
    }

    func testAccumulatorRejectsIncompleteBodies() {
        for body: [UInt8] in [[], [0, 0], [0, 0, 0, 0, 3, 1]] {
            var accumulator = UnaryMessageAccumulator(maxMessageBytes: 100)
            XCTAssertNoThrow(try accumulator.append(body))
            XCTAssertThrowsError(try accumulator.message(), "\(body)") { error in
                XCTAssertEqual((error as? GRPCStatus)?.code, .invalidArgument)
            }
        }
    }
}
