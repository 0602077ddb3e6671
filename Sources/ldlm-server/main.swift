import Dispatch
import Foundation
import LDLMServer

// The main thread waits in a plain blocking call rather than serving as the
// main actor's run loop (`dispatch_main`): nothing here needs the main actor,
// and valgrind, which the instruction benchmarks run under, crashes on the
// signal-suspended main thread that an async `main` leaves behind.
let finished = DispatchSemaphore(value: 0)
nonisolated(unsafe) var exitStatus: Int32 = 0
Task {
    exitStatus = await ServerMain.run(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
    finished.signal()
}
finished.wait()
exit(exitStatus)
