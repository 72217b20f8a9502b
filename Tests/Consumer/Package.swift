// swift-tools-version:6.0
// A package that uses SwiftONNX as a new user would (scripts/consumer-test.sh builds and runs it):
// by version from a git URL (SWIFTONNX_URL set), or from a local folder (SWIFTONNX_PATH).
import PackageDescription

let dependency: Package.Dependency
if let url = Context.environment["SWIFTONNX_URL"] {
    dependency = .package(url: url, from: "0.2.0")
} else {
    dependency = .package(path: Context.environment["SWIFTONNX_PATH"] ?? "../SwiftONNX")
}

let package = Package(
    name: "consumer",
    platforms: [.macOS(.v15)],
    dependencies: [dependency],
    targets: [
        .executableTarget(
            name: "consumer",
            dependencies: [
                .product(name: "SwiftONNX", package: "SwiftONNX"),
                .product(name: "SwiftONNXEnhance", package: "SwiftONNX"),
            ]
        ),
    ]
)
