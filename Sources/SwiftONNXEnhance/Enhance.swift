import SwiftONNX
/// Image-enhancement pipelines built on the public SwiftONNX API.
public enum Enhance {}
