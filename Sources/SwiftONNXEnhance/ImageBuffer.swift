#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An interleaved 8- or 16-bit image: 1 gray, 2 gray+alpha, 3 RGB or 4 RGBA channels, rows packed.
/// 16-bit samples are in machine byte order. Pixel memory is allocated once and checked.
///
/// A value, like `Array`: copies share their pixels until one of them is written, which then takes
/// pixels of its own first (copy on write), so an image handed to another thread or task never
/// changes under it.
public struct ImageBuffer: Sendable, Equatable {
    /// Width in pixels, at least 1.
    public let width: Int
    /// Height in pixels, at least 1.
    public let height: Int
    /// Samples per pixel: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// Bits per sample: 8 (`UInt8` samples) or 16 (`UInt16` samples).
    public let bitDepth: Int
    /// Bytes of pixels: width x height x channels x bitDepth / 8.
    public var byteCount: Int { storage.byteCount }

    /// The pixels (shared by copies until one is written).
    private var storage: PixelStorage

    /// The pixels: rows top to bottom, each `width * channels` samples, no padding. Written only
    /// through `store...` on an image this module made and has not handed out yet.
    var data: UnsafeMutableRawPointer { storage.base }

    /// A zero-filled image. Throws instead of trapping when the size overflows or memory runs out
    /// (``EnhanceError/outOfMemory(bytes:)``), and ``EnhanceError/invalidArgument(_:)`` for an empty
    /// size, a channel count outside 1...4 or a bit depth other than 8 or 16.
    ///
    /// - Parameters:
    ///   - width: Width in pixels, at least 1.
    ///   - height: Height in pixels, at least 1.
    ///   - channels: 1 gray, 2 gray+alpha, 3 RGB or 4 RGBA.
    ///   - bitDepth: Bits per sample: 8 or 16.
    public init(width: Int, height: Int, channels: Int, bitDepth: Int) throws(EnhanceError) {
        guard width > 0, height > 0 else { throw EnhanceError.invalidArgument("image size \(width)x\(height) is empty") }
        guard (1...4).contains(channels) else { throw EnhanceError.invalidArgument("images have 1 to 4 channels, not \(channels)") }
        guard bitDepth == 8 || bitDepth == 16 else { throw EnhanceError.invalidArgument("bit depth must be 8 or 16, not \(bitDepth)") }
        let (a, o1) = width.multipliedReportingOverflow(by: height)
        let (b, o2) = a.multipliedReportingOverflow(by: channels * bitDepth / 8)
        guard !o1, !o2 else { throw EnhanceError.outOfMemory(bytes: Int.max) }
        guard let p = calloc(b, 1) else { throw EnhanceError.outOfMemory(bytes: b) }
        self.width = width
        self.height = height
        self.channels = channels
        self.bitDepth = bitDepth
        self.storage = PixelStorage(base: p, byteCount: b)
    }

    /// The pixels' bytes (rows top to bottom, no padding; 16-bit samples in machine byte order),
    /// valid only inside `body`; no copy.
    ///
    /// - Parameter body: A closure given the bytes.
    /// - Returns: What `body` returns.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage.base, count: storage.byteCount))
    }

    /// The pixels' bytes for writing, valid only inside `body`; in place when this image alone holds
    /// its pixels, else after it takes a copy of its own (copies never see each other's writes).
    ///
    /// - Parameter body: A closure given the bytes.
    /// - Returns: What `body` returns.
    public mutating func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        makeUnique()
        return try body(UnsafeMutableRawBufferPointer(start: storage.base, count: storage.byteCount))
    }

    /// Gives this image pixels only it holds.
    private mutating func makeUnique() {
        if isKnownUniquelyReferenced(&storage) { return }
        guard let p = malloc(max(storage.byteCount, 1)) else { fatalError("out of memory copying an image of \(storage.byteCount) bytes") }
        memcpy(p, storage.base, storage.byteCount)
        storage = PixelStorage(base: p, byteCount: storage.byteCount)
    }

    /// Whether two images have the same size, layout and samples.
    ///
    /// - Parameters:
    ///   - a: An image.
    ///   - b: Another image.
    public static func == (a: ImageBuffer, b: ImageBuffer) -> Bool {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels, a.bitDepth == b.bitDepth else { return false }
        return a.storage === b.storage || memcmp(a.storage.base, b.storage.base, a.storage.byteCount) == 0
    }

    /// Whether the last channel is alpha (2 or 4 channels).
    public var hasAlpha: Bool { channels == 2 || channels == 4 }
    /// 1 for gray images, 3 for color ones.
    public var colorChannels: Int { channels <= 2 ? 1 : 3 }
    /// The largest sample value: 255 for 8-bit images, 65535 for 16-bit ones.
    public var maxValue: Float { bitDepth == 8 ? 255 : 65535 }

    /// The raw integer sample of channel `c` at column `x`, row `y` (0...``maxValue``). The
    /// coordinates are not checked: they must be inside the image.
    ///
    /// - Parameters:
    ///   - x: Column, 0..<``width``.
    ///   - y: Row, 0..<``height``.
    ///   - c: Channel, 0..<``channels``.
    @inline(__always) public func raw(_ x: Int, _ y: Int, _ c: Int) -> Int {
        let i = (y * width + x) * channels + c
        return bitDepth == 8 ? Int(data.assumingMemoryBound(to: UInt8.self)[i]) : Int(data.assumingMemoryBound(to: UInt16.self)[i])
    }

    /// Stores a raw integer sample at column `x`, row `y`, channel `c`, truncated to the bit depth.
    /// The coordinates are not checked: they must be inside the image.
    ///
    /// - Parameters:
    ///   - x: Column, 0..<``width``.
    ///   - y: Row, 0..<``height``.
    ///   - c: Channel, 0..<``channels``.
    ///   - v: The sample, 0...``maxValue``.
    ///
    /// The pixels are copied first if another copy of the image shares them.
    @inline(__always) public mutating func setRaw(_ x: Int, _ y: Int, _ c: Int, _ v: Int) {
        makeUnique()
        storeRaw(x, y, c, v)
    }

    /// The sample of channel `c` at column `x`, row `y`, scaled to [0, 1]. The coordinates are
    /// not checked: they must be inside the image.
    ///
    /// - Parameters:
    ///   - x: Column, 0..<``width``.
    ///   - y: Row, 0..<``height``.
    ///   - c: Channel, 0..<``channels``.
    @inline(__always) public func sample(_ x: Int, _ y: Int, _ c: Int) -> Float {
        Float(raw(x, y, c)) / maxValue
    }

    /// Stores a [0, 1] value: clamped, then rounded to the nearest integer level (NaN becomes 0),
    /// copying the pixels first if another copy of the image shares them.
    ///
    /// - Parameters:
    ///   - x: Column, 0..<width.
    ///   - y: Row, 0..<height.
    ///   - c: Channel, 0..<channels.
    ///   - v: The value, 0 (black) to 1 (full).
    @inline(__always) public mutating func setSample(_ x: Int, _ y: Int, _ c: Int, _ v: Float) {
        makeUnique()
        storeSample(x, y, c, v)
    }

    /// `setRaw` without the uniqueness check, for an image this module just made.
    @inline(__always) func storeRaw(_ x: Int, _ y: Int, _ c: Int, _ v: Int) {
        let i = (y * width + x) * channels + c
        if bitDepth == 8 { data.assumingMemoryBound(to: UInt8.self)[i] = UInt8(truncatingIfNeeded: v) }
        else { data.assumingMemoryBound(to: UInt16.self)[i] = UInt16(truncatingIfNeeded: v) }
    }

    /// `setSample` without the uniqueness check, for an image this module just made.
    @inline(__always) func storeSample(_ x: Int, _ y: Int, _ c: Int, _ v: Float) {
        let m = maxValue
        let clamped = v.isNaN ? 0 : min(max(v, 0), 1)
        storeRaw(x, y, c, Int((clamped * m).rounded()))
    }

    /// A copy converted to another layout: gray <-> RGB, alpha dropped or added (opaque), depth changed.
    /// RGB becomes gray as 0.299 R + 0.587 G + 0.114 B; samples are rescaled to the new depth and
    /// rounded. Throws as ``init(width:height:channels:bitDepth:)`` does for the new layout.
    ///
    /// - Parameters:
    ///   - newChannels: The channel count of the copy, 1...4.
    ///   - newDepth: The bit depth of the copy, 8 or 16.
    public func converted(channels newChannels: Int, bitDepth newDepth: Int) throws(EnhanceError) -> ImageBuffer {
        let out = try ImageBuffer(width: width, height: height, channels: newChannels, bitDepth: newDepth)
        let newColor = newChannels <= 2 ? 1 : 3
        let newAlpha = newChannels == 2 || newChannels == 4
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<newColor {
                    let v: Float
                    if newColor == colorChannels { v = sample(x, y, c) }
                    else if colorChannels == 1 { v = sample(x, y, 0) }
                    else { v = 0.299 * sample(x, y, 0) + 0.587 * sample(x, y, 1) + 0.114 * sample(x, y, 2) }
                    out.storeSample(x, y, c, v)
                }
                if newAlpha { out.storeSample(x, y, newChannels - 1, hasAlpha ? sample(x, y, channels - 1) : 1) }
            }
        }
        return out
    }

    /// The image turned by an EXIF orientation (1...8) into its display orientation: a new image for
    /// 2...8 (5...8 swap width and height), this image itself for 1 or any other value.
    ///
    /// - Parameter orientation: The EXIF orientation tag's value, 1 (as stored) ... 8.
    public func oriented(_ orientation: Int) throws(EnhanceError) -> ImageBuffer {
        guard (2...8).contains(orientation) else { return self }
        let swap = orientation >= 5
        let ow = swap ? height : width, oh = swap ? width : height
        let out = try ImageBuffer(width: ow, height: oh, channels: channels, bitDepth: bitDepth)
        let bpp = channels * bitDepth / 8
        for yo in 0..<oh {
            for xo in 0..<ow {
                let sx: Int, sy: Int
                switch orientation {
                case 2: (sx, sy) = (width - 1 - xo, yo)
                case 3: (sx, sy) = (width - 1 - xo, height - 1 - yo)
                case 4: (sx, sy) = (xo, height - 1 - yo)
                case 5: (sx, sy) = (yo, xo)
                case 6: (sx, sy) = (yo, height - 1 - xo)
                case 7: (sx, sy) = (width - 1 - yo, height - 1 - xo)
                default: (sx, sy) = (width - 1 - yo, xo)  // 8
                }
                memcpy(out.data + (yo * ow + xo) * bpp, data + (sy * width + sx) * bpp, bpp)
            }
        }
        return out
    }
}

/// An image's pixel memory (calloc'd or malloc'd), freed with the last image holding it.
final class PixelStorage: @unchecked Sendable {   // @unchecked: a raw pointer, written only while one image holds it
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    init(base: UnsafeMutableRawPointer, byteCount: Int) {
        self.base = base
        self.byteCount = byteCount
    }
    deinit { free(base) }
}
