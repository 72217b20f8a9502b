import SwiftONNX
/// Image-enhancement pipelines built on the public SwiftONNX API.
///
/// - `ImageFile` reads and writes PNG (8/16-bit, gray, gray+alpha, RGB, RGBA) and JPEG, applying EXIF
///   orientation on read and checking a pixel ceiling from the header before any pixel memory is allocated.
/// - `EnhancePipeline` runs a model tile by tile with overlap and feathered blending
///   (see `TileLayout.swift`), with progress and cancellation.
public enum Enhance {}
