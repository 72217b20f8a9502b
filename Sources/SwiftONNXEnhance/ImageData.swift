import CImageIO
import Foundation

// PNG and JPEG in memory (`Data`) and at file URLs: the same decoders, limits and errors as the
// path-based functions of `ImageFile`. Errors name the source "<data>".
extension ImageFile {
    /// The name errors give an image decoded from memory.
    static let dataSource = "<data>"

    /// The format of an image held in memory, from its first bytes (never from a name). Bytes of
    /// another format throw ``EnhanceError/unsupportedFormat(path:reason:)``, no bytes or a cut
    /// signature ``EnhanceError/corruptFile(path:reason:)``.
    ///
    /// - Parameter data: The bytes of a PNG or JPEG file.
    public static func format(of data: Data) throws(EnhanceError) -> ImageFormat {
        try sniff(head: [UInt8](data.prefix(16)), path: dataSource)
    }

    /// Reads the header of an image held in memory: format, displayed size, channels, depth,
    /// EXIF orientation. No pixel memory is allocated.
    ///
    /// - Parameter data: The bytes of a PNG or JPEG file.
    public static func header(of data: Data) throws(EnhanceError) -> ImageHeader {
        let format = try format(of: data)
        var info = sio_info()
        let (rc, msg) = data.withUnsafeBytes { bytes in
            call(dataSource) { buf, n in
                format == .png ? sio_png_info_mem(bytes.baseAddress, bytes.count, &info, buf, n)
                    : sio_jpeg_info_mem(bytes.baseAddress, bytes.count, &info, buf, n)
            }
        }
        guard rc == SIO_OK else { throw fail(rc, msg, path: dataSource) }
        return displayed(format, info, orientation: format == .jpeg ? exifOrientation(jpegHead: [UInt8](data.prefix(1 << 20))) : 1)
    }

    /// Decodes a PNG or JPEG held in memory (a download, a photo library's bytes), in display
    /// orientation, with the decoders and errors of ``read(path:pixelCeiling:)``; errors name the
    /// source `<data>`. The ceiling is checked from the header before the pixel buffer is allocated.
    ///
    /// - Parameters:
    ///   - data: The bytes of a PNG or JPEG file.
    ///   - pixelCeiling: The most pixels (width x height) to accept; 0 for no ceiling.
    public static func read(data: Data, pixelCeiling: Int = defaultPixelCeiling) throws(EnhanceError) -> ImageBuffer {
        let h = try header(of: data)
        let result = data.withUnsafeBytes { bytes in
            Result { () throws(EnhanceError) -> ImageBuffer in
                try decode(h, source: dataSource, pixelCeiling: pixelCeiling) { pixels, capacity, expected, buf, n in
                    h.format == .png
                        ? sio_png_read_mem(bytes.baseAddress, bytes.count, pixels, capacity, expected, buf, n)
                        : sio_jpeg_read_mem(bytes.baseAddress, bytes.count, pixels.assumingMemoryBound(to: UInt8.self),
                                            capacity, expected, buf, n)
                }
            }
        }
        return try result.get()
    }

    /// Encodes an image as PNG or JPEG bytes, the same bytes ``write(_:path:format:jpegQuality:threads:)``
    /// writes to a file. JPEG keeps 8-bit gray or RGB: alpha is dropped and 16-bit samples are
    /// rounded to 8 bits.
    ///
    /// - Parameters:
    ///   - image: The image to encode.
    ///   - format: PNG (lossless, keeps depth and alpha) or JPEG.
    ///   - jpegQuality: The JPEG quality, 1...100 (ignored for PNG).
    ///   - threads: PNG only: how many threads compress strips of rows (1...16; values outside are
    ///     clamped). The bytes do not depend on it.
    public static func encode(_ image: ImageBuffer, format: ImageFormat, jpegQuality: Int = 95,
                              threads: Int = 1) throws(EnhanceError) -> Data {
        var out: UnsafeMutableRawPointer? = nil
        var count = 0
        let (rc, msg): (Int32, String)
        switch format {
        case .png:
            (rc, msg) = call(dataSource) { buf, n in
                sio_png_write_mem(image.data, Int32(image.width), Int32(image.height), Int32(image.channels),
                                  Int32(image.bitDepth), Int32(min(max(threads, 1), 16)), &out, &count, buf, n)
            }
        case .jpeg:
            let img = (image.bitDepth == 8 && !image.hasAlpha) ? image : try image.converted(channels: image.colorChannels, bitDepth: 8)
            (rc, msg) = call(dataSource) { buf, n in
                sio_jpeg_write_mem(img.data.assumingMemoryBound(to: UInt8.self), Int32(img.width), Int32(img.height),
                                   Int32(img.channels), Int32(jpegQuality), &out, &count, buf, n)
            }
        }
        guard rc == SIO_OK, let out else { throw fail(rc == SIO_OK ? Int32(SIO_IO) : rc, msg, path: dataSource) }
        return Data(bytesNoCopy: out, count: count, deallocator: .free)
    }

    /// Reads the image at a file URL, as ``read(path:pixelCeiling:)`` reads a path. Other URLs
    /// throw ``EnhanceError/io(path:reason:)``.
    ///
    /// - Parameters:
    ///   - url: A file URL of a PNG or JPEG file.
    ///   - pixelCeiling: The most pixels (width x height) to accept; 0 for no ceiling.
    public static func read(contentsOf url: URL, pixelCeiling: Int = defaultPixelCeiling) throws(EnhanceError) -> ImageBuffer {
        guard url.isFileURL else { throw EnhanceError.io(path: url.absoluteString, reason: "only file URLs are supported") }
        return try read(path: url.path, pixelCeiling: pixelCeiling)
    }

    /// Writes an image to a file URL, as ``write(_:path:format:jpegQuality:threads:)`` writes to a path.
    /// Other URLs throw ``EnhanceError/io(path:reason:)``.
    ///
    /// - Parameters:
    ///   - image: The image to write.
    ///   - url: A file URL; its extension gives the format unless `format` is given.
    ///   - format: PNG or JPEG; nil takes it from the URL's extension.
    ///   - jpegQuality: The JPEG quality, 1...100 (ignored for PNG).
    ///   - threads: PNG only: how many threads compress strips of rows (1...16); the file's bytes do
    ///     not depend on it.
    public static func write(_ image: ImageBuffer, to url: URL, format: ImageFormat? = nil, jpegQuality: Int = 95,
                             threads: Int = 1) throws(EnhanceError) {
        guard url.isFileURL else { throw EnhanceError.io(path: url.absoluteString, reason: "only file URLs are supported") }
        try write(image, path: url.path, format: format, jpegQuality: jpegQuality, threads: threads)
    }
}
