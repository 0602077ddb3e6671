import ArgumentParser
import Foundation
import LDLMClient
import LDLMProtocol
import NIOCore
import NIOPosix

@main
struct LDLMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ldlm-bench",
        abstract: "Closed-loop load against an LDLM server.",
        discussion: """
            Scenarios: pair (Lock+Unlock, distinct names), trylock (TryLock on a held name), \
            renew (Renew of leased locks), contended (all workers on one name: hand-off and fairness), \
            sized (one name of --size S), hold (take --locks locks and report server RSS per lock), \
            disconnect (one connection takes --locks locks and closes: time until another holds the last), \
            churn (connect, TryLock, close, repeat), idle (hold --connections open connections for \
            --duration and report the server's CPU use and RSS; needs --server-pid).
            """
    )

    @Option(help: "host:port of the server.") var address = "127.0.0.1:3144"
    @Option(help: "Password sent as authorization metadata.") var password: String?
    @Option(help: "The load to generate.") var scenario: ScenarioName = .pair
    @Option(help: "Connections (server sessions).") var connections = 16
    @Option(help: "Calls in flight per connection.") var streams = 1
    @Option(help: "Seconds measured.") var duration = 10.0
    @Option(help: "Seconds run before measuring.") var warmup = 2.0
    @Option(help: "Locks for hold and disconnect.") var locks = 100_000
    @Option(help: "Lock size for sized.") var size: Int32 = 4
    @Option(name: .customLong("server-pid"), help: "Server process to read RSS (hold, idle) and CPU over the measured window (closed-loop scenarios) from.") var serverPID: Int?
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard connections > 0, streams > 0, duration > 0, warmup >= 0, locks > 0, size > 0 else {
            throw ValidationError("connections, streams, duration, locks and size must be positive")
        }
        guard parseAddress() != nil else { throw ValidationError("--address must be host:port") }
    }

    private func parseAddress() -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        return (String(address[..<colon]), port)
    }

    func run() throws {
        let (host, port) = parseAddress()!
        let settings = BenchSettings(
            host: host, port: port, password: password, connections: connections, streams: streams,
            durationSeconds: duration, warmupSeconds: warmup, locks: locks, size: size,
            serverPID: serverPID, json: json
        )
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var report = Report()
        report.add("scenario", scenario.rawValue)
        report.add("connections", connections)
        report.add("streams", streams)
        try BenchRun(settings: settings, group: group).run(scenario, into: &report)
        print(json ? report.json() : report.text())
        if let errors = report.fields.first(where: { $0.0 == "errors" })?.1 as? [String: Int], !errors.isEmpty {
            throw ExitCode(1)
        }
    }
}

/// Connects, runs one scenario and fills in the report.
struct BenchRun {
    let settings: BenchSettings
    let group: EventLoopGroup

    private func connect(_ count: Int) throws -> [LDLMClientConnection] {
        try (0..<count).map { _ in
            try LDLMClientConnection.connect(host: settings.host, port: settings.port, password: settings.password, group: group).wait()
        }
    }

    func run(_ scenario: ScenarioName, into report: inout Report) throws {
        switch scenario {
        case .pair, .trylock, .renew, .contended, .sized:
            try closedLoop(scenario, into: &report)
        case .churn:
            try churn(into: &report)
        case .hold:
            try hold(into: &report)
        case .disconnect:
            try disconnect(into: &report)
        case .idle:
            try idle(into: &report)
        }
    }

    private func closedLoop(_ scenario: ScenarioName, into report: inout Report) throws {
        let connections = try connect(settings.connections)
        defer { connections.forEach { _ = $0.close() } }
        let workers = settings.connections * settings.streams
        let loop = ClosedLoop(eventLoop: connections[0].eventLoop, settings: settings)
        var handOff: HandOffScenario?
        let operation: Operation
        switch scenario {
        case .pair:
            operation = Scenarios.pair(connections, streams: settings.streams)
        case .trylock:
            let holder = try connect(1)[0]
            defer { _ = holder.close() }
            let name = lockName("trylock-held-", 0)
            let taken = try acquireAll([name], on: holder, window: 1).wait()
            guard taken.acquired == 1 else { throw ValidationError("could not take \(name) for the trylock scenario: \(taken.failures)") }
            operation = Scenarios.tryLock(connections, heldName: name)
            try runLoop(loop, workers: workers, operation: operation, into: &report)
            return
        case .renew:
            var keys: [String] = []
            for worker in 0..<workers {
                let connection = connections[worker % connections.count]
                let response = try connection.eventLoop.flatSubmit {
                    let promise = connection.eventLoop.makePromise(of: LockResponse.self)
                    connection.lock(LockRequest(name: lockName("renew-", worker), lockTimeoutSeconds: 300)) { result in
                        promise.completeWith(result.mapError { $0 as Error })
                    }
                    return promise.futureResult
                }.wait()
                guard response.locked else { throw ValidationError("could not lock for renew: \(String(describing: response.error))") }
                keys.append(response.key)
            }
            operation = Scenarios.renew(connections, keys: keys)
        case .contended, .sized:
            let size: Int32 = scenario == .sized ? settings.size : 1
            let scenarioState = HandOffScenario(connections: connections, workers: workers, name: lockName("\(scenario.rawValue)-", 0), size: size)
            loop.onMeasurementStart = { scenarioState.startMeasuring() }
            handOff = scenarioState
            operation = scenarioState.operation
            report.add("size", size)
        default:
            preconditionFailure("not a closed-loop scenario")
        }
        try runLoop(loop, workers: workers, operation: operation, into: &report)
        if let handOff {
            let (percentiles, sentToGrant, fairness) = try loop.eventLoop.submit {
                (handOff.handOff.percentiles, handOff.unlockSentToGrant.percentiles, handOff.fairness)
            }.wait()
            report.add("handoff_ms", percentiles)
            report.add("unlock_sent_to_grant_ms", sentToGrant)
            report.add("fairness", fairness)
        }
    }

    private func runLoop(_ loop: ClosedLoop, workers: Int, operation: @escaping Operation, into report: inout Report) throws {
        try loop.run(workers: workers, operation: operation).wait()
        let summary = try loop.eventLoop.submit {
            (
                loop.operationsPerSecond, loop.operations, loop.latency.percentiles, loop.errors, loop.clientCPUSeconds, loop.measuredSeconds,
                loop.serverCPUSeconds
            )
        }.wait()
        report.add("ops_per_second", summary.0)
        report.add("operations", summary.1)
        report.add("latency_ms", summary.2)
        report.add("errors", summary.3)
        report.add("client_cpu_seconds", summary.4)
        report.add("seconds", summary.5)
        if let serverCPU = summary.6 {
            report.add("server_cpu_seconds", serverCPU)
            // Per operation of the scenario (a Lock+Unlock pair in `pair`), server
            // only: the client's cost on the same machine stays out of it.
            report.add("server_cpu_us_per_operation", summary.1 > 0 ? serverCPU / Double(summary.1) * 1e6 : 0)
        }
    }

    /// Connect, TryLock, close, over and over, `connections × streams` at a time.
    private func churn(into report: inout Report) throws {
        let eventLoop = group.next()
        let loop = ClosedLoop(eventLoop: eventLoop, settings: settings)
        let settings = self.settings
        let group = self.group
        let operation: Operation = { worker, finish in
            LDLMClientConnection.connect(host: settings.host, port: settings.port, password: settings.password, group: group)
                .whenComplete { result in
                    switch result {
                    case .failure: eventLoop.execute { finish("connect") }
                    case .success(let connection):
                        connection.tryLock(TryLockRequest(name: lockName("churn-", worker))) { result in
                            let error: String?
                            switch result {
                            case .failure(let status): error = errorLabel(status)
                            case .success(let response): error = response.error.map(errorLabel) ?? (response.locked ? nil : "not-locked")
                            }
                            // The next connect may take the same name only once this session is gone.
                            connection.close().whenComplete { _ in
                                eventLoop.scheduleTask(in: .milliseconds(1)) { finish(error) }
                            }
                        }
                    }
                }
        }
        try runLoop(loop, workers: settings.connections * settings.streams, operation: operation, into: &report)
    }

    /// Takes `locks` locks over the connections and reports the server's RSS growth per lock.
    private func hold(into report: inout Report) throws {
        let rssIdle = settings.serverPID.flatMap(residentBytes)
        let connections = try connect(settings.connections)
        defer { connections.forEach { _ = $0.close() } }
        let started = monotonicNanoseconds()
        let perConnection = (settings.locks + connections.count - 1) / connections.count
        let futures = connections.enumerated().map { index, connection in
            let range = (index * perConnection)..<min(settings.locks, (index + 1) * perConnection)
            return acquireAll(range.map { lockName("hold-", $0) }, on: connection, window: max(settings.streams, 64))
        }
        var acquired = 0
        var failures: [String: Int] = [:]
        for future in futures {
            let result = try future.wait()
            acquired += result.acquired
            failures.merge(result.failures, uniquingKeysWith: +)
        }
        let seconds = Double(monotonicNanoseconds() - started) / 1e9
        // Let the server settle (allocator, buffers) before reading memory.
        Thread.sleep(forTimeInterval: 0.5)
        let rssHeld = settings.serverPID.flatMap(residentBytes)
        report.add("locks_held", acquired)
        report.add("acquire_seconds", seconds)
        report.add("ops_per_second", Double(acquired) / seconds)
        report.add("errors", failures)
        if let rssIdle, let rssHeld {
            report.add("server_rss_idle_bytes", rssIdle)
            report.add("server_rss_held_bytes", rssHeld)
            report.add("server_rss_bytes_per_lock", Double(rssHeld - rssIdle) / Double(max(acquired, 1)))
        }
    }

    /// Opens `connections` connections that only answer keepalive PINGs.
    private func idle(into report: inout Report) throws {
        guard let pid = settings.serverPID else { throw ValidationError("the idle scenario needs --server-pid") }
        let rssBefore = residentBytes(pid: pid)
        let connections = try connect(settings.connections)
        defer { connections.forEach { _ = $0.close() } }
        Thread.sleep(forTimeInterval: settings.warmupSeconds)
        let cpuStart = processCPUSeconds(pid: pid)
        Thread.sleep(forTimeInterval: settings.durationSeconds)
        let cpuEnd = processCPUSeconds(pid: pid)
        let rssAfter = residentBytes(pid: pid)
        report.add("idle_connections", connections.count)
        if let cpuStart, let cpuEnd {
            report.add("server_cores_used", (cpuEnd - cpuStart) / settings.durationSeconds)
        }
        if let rssBefore, let rssAfter {
            report.add("server_rss_bytes", rssAfter)
            report.add("server_rss_bytes_per_connection", Double(rssAfter - rssBefore) / Double(connections.count))
        }
        report.add("errors", [String: Int]())
    }

    /// One connection takes `locks` locks; another queues on the last one; the
    /// first closes. Reports the time from the close until the waiter holds it.
    private func disconnect(into report: inout Report) throws {
        let owner = try connect(1)[0]
        let waiter = try connect(1)[0]
        defer { _ = waiter.close() }
        let names = (0..<settings.locks).map { lockName("disconnect-", $0) }
        let taken = try acquireAll(names, on: owner, window: max(settings.streams, 64)).wait()
        guard taken.acquired == names.count else {
            throw ValidationError("took only \(taken.acquired) of \(names.count) locks: \(taken.failures)")
        }
        let eventLoop = waiter.eventLoop
        let granted = eventLoop.makePromise(of: UInt64.self)
        let queued = eventLoop.makePromise(of: Void.self)
        eventLoop.execute {
            waiter.lock(LockRequest(name: names.last!)) { result in
                if case .success(let response) = result, response.locked {
                    granted.succeed(monotonicNanoseconds())
                } else {
                    granted.fail(ValidationError("waiter was not granted: \(result)"))
                }
            }
            // A TryLock behind the Lock on the same connection confirms the Lock reached the server.
            waiter.tryLock(TryLockRequest(name: names.last!)) { _ in queued.succeed(()) }
        }
        try queued.futureResult.wait()
        let closedAt = monotonicNanoseconds()
        try owner.close().wait()
        let grantedAt = try granted.futureResult.wait()
        // Every other lock must be free now: count those the waiter can take.
        let retaken = try acquireAll(names.dropLast(), on: waiter, window: max(settings.streams, 64)).wait()
        report.add("locks_released", retaken.acquired + 1)
        report.add("release_ms", Double(grantedAt - closedAt) / 1e6)
        report.add("errors", retaken.failures)
    }
}
