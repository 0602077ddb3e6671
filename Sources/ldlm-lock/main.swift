import Foundation
import LDLMLockTool

exit(await LDLMLockTool.run(Array(CommandLine.arguments.dropFirst())))
