import Foundation
import MorpheusCore

/// The input callback: every input goes through the parser and every validator; a broken
/// promise aborts, so libFuzzer keeps the input as a crash artifact. Hangs and oversized
/// allocations are caught by libFuzzer itself (`-timeout`, `-malloc_limit_mb`, see fuzz.sh).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzValidation(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let payload = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let broken = ValidationInvariants.violations(payload)
    if !broken.isEmpty { fatalError("broken promises: \(broken)") }
    return 0
}

/// libFuzzer's own driver (linked in by `-sanitize=fuzzer`).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM gives every executable a `main` of its own, so libFuzzer's `main` is not used:
/// this one hands the command line to libFuzzer's driver instead.
@main
enum FuzzValidation {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzValidation))
    }
}
