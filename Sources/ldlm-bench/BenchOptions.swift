import ArgumentParser

enum ScenarioName: String, ExpressibleByArgument, CaseIterable {
    case pair, trylock, renew, contended, sized, hold, disconnect, churn, idle
}

/// What one run is told to do; shared by every scenario.
struct BenchSettings {
    var host: String
    var port: Int
    var password: String?
    var connections: Int
    var streams: Int
    var durationSeconds: Double
    var warmupSeconds: Double
    var locks: Int
    var size: Int32
    var serverPID: Int?
    var json: Bool
}
