import ArgumentParser
import GoDuration

/// A flag value in Go's duration syntax (`10s`, `1m30s`), as `ldlm-server`'s flags take.
struct DurationArgument: ExpressibleByArgument {
    let duration: Duration

    init?(argument: String) {
        guard let nanoseconds = parseGoDuration(argument), nanoseconds <= UInt64(Int64.max) else { return nil }
        duration = .nanoseconds(Int64(nanoseconds))
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
