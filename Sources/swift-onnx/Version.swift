/// The version `swift-onnx --version` prints (the root command's `CommandConfiguration.version`).
let swiftONNXVersion = "0.2.0"
