import Foundation
import Histogram

/// Latencies in nanoseconds, reported as percentiles in milliseconds.
struct LatencyHistogram {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three)

    var count: UInt64 { histogram.totalCount }

    mutating func record(nanoseconds: UInt64) {
        _ = histogram.record(max(nanoseconds, 1))
    }

    mutating func reset() {
        histogram.reset()
    }

    func milliseconds(at percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1e6
    }

    var percentiles: [String: Double] {
        ["p50": milliseconds(at: 50), "p90": milliseconds(at: 90), "p99": milliseconds(at: 99), "p999": milliseconds(at: 99.9)]
    }
}

/// CPU time this process has used, user plus system.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Resident memory of a process, from `/proc/<pid>/status`.
func residentBytes(pid: Int) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        return kilobytes.map { $0 * 1024 }
    }
    return nil
}

/// A lock name of exactly 32 bytes, as the memory target specifies.
func lockName(_ prefix: String, _ index: Int) -> String {
    let digits = String(index)
    let padding = max(0, 32 - prefix.count - digits.count)
    return prefix + String(repeating: "0", count: padding) + digits
}

func monotonicNanoseconds() -> UInt64 {
    DispatchTime.now().uptimeNanoseconds
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
func processCPUSeconds(pid: Int) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let afterName = stat.lastIndex(of: ")")
    else { return nil }
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: afterName)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
