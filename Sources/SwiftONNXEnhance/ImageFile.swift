import CImageIO
import Foundation

/// The image file formats ``ImageFile`` reads and writes.
public enum ImageFormat: String, Sendable {
    case png, jpeg

    /// The format a file name asks for by its extension (.png, .jpg, .jpeg), or nil.
    ///
    /// - Parameter path: A file name or path; only its extension counts, in any case.
    public init?(pathExtension path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg", "jpe": self = .jpeg
        default: return nil
        }
    }
}

/// What a file's header says, read without decoding the pixels.
public struct ImageHeader: Sendable, Equatable {
    /// The format, from the file's first bytes.
    public var format: ImageFormat
    /// The size as displayed (after EXIF orientation).
    public var width: Int
    /// The height as displayed (after EXIF orientation).
    public var height: Int
    /// Channels the decoded image will have: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public var channels: Int
    /// Bits per sample of the decoded image: 8 or 16.
    public var bitDepth: Int
    /// EXIF orientation, 1 (as stored) ... 8.
    public var orientation: Int
    /// ``width`` x ``height``: what the pixel ceiling is compared with.
    public var pixelCount: Int { width * height }
}

/// Reading and writing PNG and JPEG files.
public enum ImageFile {
    /// The default pixel ceiling: 64 megapixels.
    public static let defaultPixelCeiling = 64_000_000

    static func call(_ path: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> (Int32, String) {
        var buf = [CChar](repeating: 0, count: 512)
        let rc = buf.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        return (rc, String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    static func fail(_ rc: Int32, _ message: String, path: String) -> EnhanceError {
        switch Int(rc) {
        case Int(SIO_IO): return .io(path: path, reason: message)
        case Int(SIO_UNSUPPORTED): return .unsupportedFormat(path: path, reason: message)
        default: return .corruptFile(path: path, reason: message)
        }
    }

    /// Sniffs the format from the first bytes (never from the name). Throws ``EnhanceError/io(path:reason:)``
    /// when the file cannot be opened, ``EnhanceError/corruptFile(path:reason:)`` when it is empty or
    /// ends inside a signature, and ``EnhanceError/unsupportedFormat(path:reason:)`` naming GIF, BMP,
    /// WebP or TIFF when it is one of those.
    ///
    /// - Parameter path: The path of the file.
    public static func sniff(path: String) throws(EnhanceError) -> ImageFormat {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw EnhanceError.io(path: path, reason: isDir.boolValue ? "is a directory" : "cannot be opened for reading")
            }
            throw EnhanceError.io(path: path, reason: "no such file")
        }
        defer { try? fh.close() }
        return try sniff(head: [UInt8](fh.readData(ofLength: 16)), path: path)
    }

    /// The format from a file's first bytes (at least 16 when there are that many); `path` names
    /// the source in errors.
    static func sniff(head: [UInt8], path: String) throws(EnhanceError) -> ImageFormat {
        if head.isEmpty { throw EnhanceError.corruptFile(path: path, reason: "the file is empty") }
        let pngSig: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if head.count >= 8, Array(head[0..<8]) == pngSig { return .png }
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        if head.count < 8, pngSig.starts(with: head) || [0xFF, 0xD8, 0xFF].starts(with: head.prefix(3)) {
            throw EnhanceError.corruptFile(path: path, reason: "the file ends inside its signature")
        }
        var what = "not a PNG or JPEG file"
        if head.starts(with: Array("GIF8".utf8)) { what = "GIF images are not supported (PNG or JPEG only)" }
        else if head.starts(with: Array("BM".utf8)) { what = "BMP images are not supported (PNG or JPEG only)" }
        else if head.starts(with: Array("RIFF".utf8)) { what = "WebP/RIFF files are not supported (PNG or JPEG only)" }
        else if head.starts(with: [0x49, 0x49, 0x2A, 0x00]) || head.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) {
            what = "TIFF images are not supported (PNG or JPEG only)"
        }
        throw EnhanceError.unsupportedFormat(path: path, reason: what)
    }

    /// Reads the header only: format, displayed size, channels, depth, EXIF orientation. Throws as
    /// ``sniff(path:)`` does, and when the decoder rejects the header.
    ///
    /// - Parameter path: The path of a PNG or JPEG file.
    public static func header(path: String) throws(EnhanceError) -> ImageHeader {
        let format = try sniff(path: path)
        var info = sio_info()
        let (rc, msg) = call(path) { buf, n in
            format == .png ? sio_png_info(path, &info, buf, n) : sio_jpeg_info(path, &info, buf, n)
        }
        guard rc == SIO_OK else { throw fail(rc, msg, path: path) }
        return displayed(format, info, orientation: format == .jpeg ? exifOrientation(path: path) : 1)
    }

    /// The header of a decoder's stored layout `info` as displayed after the EXIF `orientation`.
    static func displayed(_ format: ImageFormat, _ info: sio_info, orientation: Int) -> ImageHeader {
        let swap = orientation >= 5
        return ImageHeader(format: format, width: Int(swap ? info.height : info.width), height: Int(swap ? info.width : info.height),
                           channels: Int(info.channels), bitDepth: Int(info.bit_depth), orientation: orientation)
    }

    /// Reads an image in display orientation. The ceiling is checked from the header, before the
    /// pixel buffer is allocated: an image over `pixelCeiling` pixels (0: no ceiling) throws
    /// ``EnhanceError/imageTooLarge(path:width:height:ceiling:)``. Corrupt or truncated data throws
    /// ``EnhanceError/corruptFile(path:reason:)``; a variant the decoders cannot handle,
    /// ``EnhanceError/unsupportedFormat(path:reason:)``.
    ///
    /// - Parameters:
    ///   - path: The path of a PNG or JPEG file.
    ///   - pixelCeiling: The most pixels (width x height) to accept; 0 for no ceiling.
    public static func read(path: String, pixelCeiling: Int = defaultPixelCeiling) throws(EnhanceError) -> ImageBuffer {
        let h = try header(path: path)
        return try decode(h, source: path, pixelCeiling: pixelCeiling) { pixels, capacity, expected, buf, n in
            h.format == .png
                ? sio_png_read(path, pixels, capacity, expected, buf, n)
                : sio_jpeg_read(path, pixels.assumingMemoryBound(to: UInt8.self), capacity, expected, buf, n)
        }
    }

    /// The pixels of an image whose header is `h`, read by `readPixels` (into the stored layout,
    /// with the expected size) after the size and the ceiling are checked; in display orientation.
    static func decode(_ h: ImageHeader, source: String, pixelCeiling: Int,
                       readPixels: (UnsafeMutableRawPointer, Int, UnsafePointer<sio_info>, UnsafeMutablePointer<CChar>, Int) -> Int32)
        throws(EnhanceError) -> ImageBuffer {
        guard h.width > 0, h.height > 0 else { throw EnhanceError.corruptFile(path: source, reason: "image size is \(h.width)x\(h.height)") }
        if pixelCeiling > 0, h.width.multipliedReportingOverflow(by: h.height).overflow || h.pixelCount > pixelCeiling {
            throw EnhanceError.imageTooLarge(path: source, width: h.width, height: h.height, ceiling: pixelCeiling)
        }
        let swap = h.orientation >= 5
        let storedW = swap ? h.height : h.width, storedH = swap ? h.width : h.height
        let img = try ImageBuffer(width: storedW, height: storedH, channels: h.channels, bitDepth: h.bitDepth)
        var expected = sio_info(width: Int32(storedW), height: Int32(storedH), channels: Int32(h.channels), bit_depth: Int32(h.bitDepth))
        let (rc, msg) = call(source) { buf, n in readPixels(img.data, img.byteCount, &expected, buf, n) }
        guard rc == SIO_OK else { throw fail(rc, msg, path: source) }
        return try img.oriented(h.orientation)
    }

    /// Writes an image; the format comes from `format` or else the path's extension.
    /// JPEG keeps 8-bit gray or RGB: alpha is dropped and 16-bit samples are rounded to 8 bits.
    /// `jpegQuality` is libjpeg's quality, clamped to 1...100. The file at `path` is replaced. Throws
    /// ``EnhanceError/unsupportedFormat(path:reason:)`` when no format is given and the extension is
    /// not .png, .jpg or .jpeg, and ``EnhanceError/io(path:reason:)`` when the file cannot be written.
    ///
    /// - Parameters:
    ///   - image: The image to write.
    ///   - path: Where to write it; an existing file is replaced.
    ///   - format: PNG or JPEG; nil to go by the extension of `path`.
    ///   - jpegQuality: JPEG only: the quality, 1...100 (values outside are clamped).
    ///   - threads: PNG only: how many threads compress strips of rows (1...16; values outside are
    ///     clamped). The file's bytes do not depend on it.
    public static func write(_ image: ImageBuffer, path: String, format: ImageFormat? = nil, jpegQuality: Int = 95,
                             threads: Int = 1) throws(EnhanceError) {
        guard let fmt = format ?? ImageFormat(pathExtension: path) else {
            throw EnhanceError.unsupportedFormat(path: path, reason: "cannot tell the output format from the name; use .png, .jpg or .jpeg")
        }
        let (rc, msg): (Int32, String)
        switch fmt {
        case .png:
            (rc, msg) = call(path) { buf, n in
                sio_png_write(path, image.data, Int32(image.width), Int32(image.height), Int32(image.channels), Int32(image.bitDepth),
                              Int32(min(max(threads, 1), 16)), buf, n)
            }
        case .jpeg:
            let img = (image.bitDepth == 8 && !image.hasAlpha) ? image : try image.converted(channels: image.colorChannels, bitDepth: 8)
            (rc, msg) = call(path) { buf, n in
                sio_jpeg_write(path, img.data.assumingMemoryBound(to: UInt8.self), Int32(img.width), Int32(img.height),
                               Int32(img.channels), Int32(jpegQuality), buf, n)
            }
        }
        guard rc == SIO_OK else { throw fail(rc, msg, path: path) }
    }

    /// The EXIF orientation (1...8) of a JPEG from its APP1 "Exif" segment, or 1.
    ///
    /// - Parameter path: The path of a JPEG file.
    public static func exifOrientation(path: String) -> Int {
        guard let fh = FileHandle(forReadingAtPath: path) else { return 1 }
        defer { try? fh.close() }
        // Markers before the first scan: APP segments are at most 64 KiB each and come first.
        return exifOrientation(jpegHead: [UInt8](fh.readData(ofLength: 1 << 20)))
    }

    /// The EXIF orientation from the first bytes of a JPEG file, or 1.
    ///
    /// - Parameter b: The file's first bytes (its markers before the first scan).
    public static func exifOrientation(jpegHead b: [UInt8]) -> Int {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return 1 }
        var i = 2
        while i + 4 <= b.count {
            guard b[i] == 0xFF else { return 1 }
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0xD8 || (0xD0...0xD7).contains(marker) || marker == 0x01 { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return 1 }  // start of scan / end: no EXIF before it
            let len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard len >= 2 else { return 1 }
            let start = i + 4, end = min(i + 2 + len, b.count)
            if marker == 0xE1, end - start >= 14, Array(b[start..<start + 6]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                if let o = tiffOrientation(Array(b[start + 6..<end])) { return o }
            }
            i += 2 + len
        }
        return 1
    }

    /// Orientation tag (0x0112) of IFD0 in a TIFF structure, if present and valid.
    static func tiffOrientation(_ t: [UInt8]) -> Int? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        if t[0] == 0x49, t[1] == 0x49 { little = true } else if t[0] == 0x4D, t[1] == 0x4D { little = false } else { return nil }
        func u16(_ o: Int) -> Int? {
            guard o >= 0, o + 2 <= t.count else { return nil }
            return little ? Int(t[o]) | Int(t[o + 1]) << 8 : Int(t[o]) << 8 | Int(t[o + 1])
        }
        func u32(_ o: Int) -> Int? {
            guard let a = u16(o), let b = u16(o + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd = u32(4), let n = u16(ifd) else { return nil }
        for k in 0..<n {
            let e = ifd + 2 + 12 * k
            guard let tag = u16(e) else { return nil }
            if tag == 0x0112 {
                guard u16(e + 2) == 3, let v = u16(e + 8), (1...8).contains(v) else { return nil }
                return v
            }
        }
        return nil
    }
}
