// swift-tools-version: 6.2
// The libFuzzer target for the strict JSON parser and the validators. Not part of the main
// build: `bash scripts/fuzz.sh [seconds]` builds it with -sanitize=fuzzer,address and runs it
// on the committed seed corpus (Tests/Fuzz/corpus).
import PackageDescription

let package = Package(
    name: "morpheus-fuzz",
    dependencies: [.package(name: "morpheus-feedback", path: "../..")],
    targets: [
        .executableTarget(
            name: "FuzzValidation",
            dependencies: [.product(name: "MorpheusCore", package: "morpheus-feedback")],
            swiftSettings: [.swiftLanguageMode(.v6), .treatAllWarnings(as: .error)]
        ),
    ]
)
