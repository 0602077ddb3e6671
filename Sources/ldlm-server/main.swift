import Foundation
import LDLMServer

exit(await ServerMain.run(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment))
