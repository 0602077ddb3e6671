import CFuzzerDriver

/// Runs libFuzzer on `testOneInput` with the process's arguments (its flags,
/// corpus directories or inputs to replay) and returns its exit code.
package func runFuzzerDriver(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}
