import Foundation
import LDLMClient
import LDLMGRPC
import LDLMProtocol
import NIOCore

/// One step of a closed-loop worker: runs an operation and calls `finish` with
/// nil on success or an error label ("grpc:UNAVAILABLE", "ldlm:LockWaitTimeout").
typealias Operation = (_ worker: Int, _ finish: @escaping (String?) -> Void) -> Void

/// Runs `connections × streams` workers, each repeating its operation as soon
/// as the previous one finished, for warmup + duration. Confined to one event
/// loop, so the counters need no locking.
final class ClosedLoop {
    let eventLoop: EventLoop
    let settings: BenchSettings
    private(set) var latency = LatencyHistogram()
    private(set) var errors: [String: Int] = [:]
    private(set) var operations = 0
    private(set) var measuring = false
    private var stopping = false
    private var inFlight = 0
    private var operationsThisSecond = 0
    private var measureStart: UInt64 = 0
    private var measureEnd: UInt64 = 0
    private var cpuAtStart = 0.0
    private var cpuAtEnd = 0.0
    private var serverCPUAtStart: Double?
    private var serverCPUAtEnd: Double?
    private var finished: EventLoopPromise<Void>
    /// Called when the warmup ends, to reset scenario-specific counters.
    var onMeasurementStart: () -> Void = {}

    init(eventLoop: EventLoop, settings: BenchSettings) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.finished = eventLoop.makePromise()
    }

    var measuredSeconds: Double { Double(measureEnd - measureStart) / 1e9 }
    var clientCPUSeconds: Double { cpuAtEnd - cpuAtStart }
    /// The server's CPU (user + system) over the measured window, read at its
    /// two ends, when the settings name the server's PID.
    var serverCPUSeconds: Double? {
        guard let start = serverCPUAtStart, let end = serverCPUAtEnd else { return nil }
        return end - start
    }
    var operationsPerSecond: Double { measuredSeconds > 0 ? Double(operations) / measuredSeconds : 0 }

    /// Starts `workers` workers and returns when all have stopped.
    func run(workers: Int, operation: @escaping Operation) -> EventLoopFuture<Void> {
        eventLoop.execute {
            let warmup = TimeAmount.nanoseconds(Int64(self.settings.warmupSeconds * 1e9))
            let total = warmup + .nanoseconds(Int64(self.settings.durationSeconds * 1e9))
            self.eventLoop.scheduleTask(in: warmup) { self.startMeasuring() }
            self.eventLoop.scheduleTask(in: total) { self.stop() }
            self.scheduleProgress(second: 1)
            for worker in 0..<workers {
                self.inFlight += 1
                self.step(worker: worker, operation: operation)
            }
        }
        return finished.futureResult
    }

    private func step(worker: Int, operation: @escaping Operation) {
        guard !stopping else {
            inFlight -= 1
            if inFlight == 0 { finished.succeed(()) }
            return
        }
        let started = monotonicNanoseconds()
        operation(worker) { error in
            let ended = monotonicNanoseconds()
            if self.measuring, !self.stopping {
                if let error {
                    self.errors[error, default: 0] += 1
                } else {
                    self.operations += 1
                    self.latency.record(nanoseconds: ended - started)
                }
            }
            self.operationsThisSecond += 1
            self.step(worker: worker, operation: operation)
        }
    }

    private func startMeasuring() {
        measuring = true
        latency.reset()
        errors.removeAll()
        operations = 0
        measureStart = monotonicNanoseconds()
        cpuAtStart = processCPUSeconds()
        serverCPUAtStart = settings.serverPID.flatMap(processCPUSeconds(pid:))
        onMeasurementStart()
    }

    private func stop() {
        measureEnd = monotonicNanoseconds()
        cpuAtEnd = processCPUSeconds()
        serverCPUAtEnd = settings.serverPID.flatMap(processCPUSeconds(pid:))
        stopping = true
    }

    private func scheduleProgress(second: Int) {
        eventLoop.scheduleTask(in: .seconds(1)) {
            guard !self.stopping else { return }
            let phase = self.measuring ? "" : " (warmup)"
            let errorCount = self.errors.values.reduce(0, +)
            FileHandle.standardError.write(Data("[\(second)s] \(self.operationsThisSecond) ops/s, errors \(errorCount)\(phase)\n".utf8))
            self.operationsThisSecond = 0
            self.scheduleProgress(second: second + 1)
        }
    }
}

/// The error label of a failed RPC or an LDLM error in its response.
func errorLabel(_ status: GRPCStatus) -> String {
    "grpc:\(status.code)"
}

func errorLabel(_ error: LDLMError) -> String {
    "ldlm:\(error.code)"
}
