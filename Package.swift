// swift-tools-version:6.0
import PackageDescription

// No unsafeFlags here: the library must stay importable as a versioned dependency.
// For speed, build the command line and benchmark with `--toolset toolset.json`
// (or `-Xswiftc -target-cpu -Xswiftc native`), as the README explains.
let package = Package(
    name: "SwiftONNX",
    platforms: [.macOS(.v15)],   // Synchronization's Mutex and Atomic
    products: [
        .library(name: "SwiftONNX", targets: ["SwiftONNX"]),
        .library(name: "SwiftONNXEnhance", targets: ["SwiftONNXEnhance"]),
        .library(name: "SwiftONNXText", targets: ["SwiftONNXText"]),
        .executable(name: "swift-onnx", targets: ["swift-onnx"]),
        .executable(name: "swift-onnx-bench", targets: ["swift-onnx-bench"]),
        .executable(name: "swift-onnx-fuzz", targets: ["swift-onnx-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CONNXProto",
            path: "Sources/CONNXProto",
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(
            name: "SwiftONNX",
            dependencies: ["CONNXProto", "COpenBLAS", "CKernels", "CImageIO"],
            path: "Sources/SwiftONNX"
        ),
        // Image I/O: libpng and libjpeg(-turbo) as system libraries; their setjmp/longjmp error handling
        // stays inside the C functions of CImageIO, so Swift never sees a longjmp.
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng"),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg"),
        .target(
            name: "CImageIO",
            dependencies: ["CPNG", "CJPEG"],
            path: "Sources/CImageIO",
            linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("z")]
        ),
        // The trained enhancement models ship with the library (Models/enhance links to them).
        .target(name: "SwiftONNXEnhance", dependencies: ["SwiftONNX", "CImageIO"], path: "Sources/SwiftONNXEnhance",
                resources: [.copy("Models")]),
        // Text: a WordPiece tokenizer reading tokenizer.json, and sentence embeddings (public API only).
        .target(name: "SwiftONNXText", dependencies: ["SwiftONNX"], path: "Sources/SwiftONNXText"),
        .executableTarget(
            name: "swift-onnx",
            dependencies: ["SwiftONNX", "SwiftONNXEnhance", "SwiftONNXText",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/swift-onnx"
        ),
        .executableTarget(
            name: "swift-onnx-bench",
            dependencies: ["SwiftONNX", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/swift-onnx-bench"
        ),
        // Fuzz targets (Fuzz/README.md): replays inputs in a plain build; Fuzz/run.sh builds it with
        // libFuzzer and AddressSanitizer.
        .target(name: "CFuzz", path: "Fuzz/CFuzz"),
        .executableTarget(
            name: "swift-onnx-fuzz",
            dependencies: ["SwiftONNX", "SwiftONNXEnhance", "CFuzz"],
            path: "Fuzz/swift-onnx-fuzz"
        ),
        .testTarget(name: "SwiftONNXTests", dependencies: ["SwiftONNX"], path: "Tests/SwiftONNXTests",
                    exclude: ["Resources"]),
        .testTarget(name: "ConformanceTests", dependencies: ["SwiftONNX"], path: "Tests/ConformanceTests"),
        .testTarget(name: "ModelTests", dependencies: ["SwiftONNX"], path: "Tests/ModelTests"),
        .testTarget(name: "EnhanceTests", dependencies: ["SwiftONNXEnhance", "SwiftONNX"], path: "Tests/EnhanceTests",
                    exclude: ["Resources", "README.md"]),
        .testTarget(name: "TextTests", dependencies: ["SwiftONNXText", "SwiftONNX"], path: "Tests/TextTests",
                    exclude: ["Resources"]),
    ]
)

// Documentation (scripts/docs.sh): the DocC plugin only when SWIFTONNX_DOCS is set, so that it never
// becomes a dependency of the packages that import SwiftONNX.
if Context.environment["SWIFTONNX_DOCS"] != nil {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"))
}
