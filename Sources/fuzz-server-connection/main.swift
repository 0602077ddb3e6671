import Glibc
import LDLMFuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ServerConnectionFuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

exit(runFuzzerDriver(testOneInput))
