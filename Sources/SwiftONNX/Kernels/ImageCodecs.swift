import CImageIO

/// Decoded 8-bit pixels: `height` rows of `width` pixels of `channels` interleaved samples
/// (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
struct DecodedImage {
    var width: Int
    var height: Int
    var channels: Int
    var pixels: [UInt8]
}

/// Why an image could not be decoded.
struct ImageCodecError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// The most pixels an image may declare (a small file can claim a huge size).
let maxDecodedPixels = 1 << 28

/// Decodes a PNG, JPEG, BMP or PNM (P2, P3, P5, P6) file's bytes to 8-bit samples (16-bit
/// samples keep their high byte). Formats are told by their leading bytes; others throw.
func decodeImage(_ bytes: UnsafeRawBufferPointer) throws -> DecodedImage {
    let b = bytes.bindMemory(to: UInt8.self)
    func starts(_ magic: [UInt8]) -> Bool { b.count >= magic.count && zip(b, magic).allSatisfy { $0 == $1 } }
    if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try decodePNG(bytes) }
    if starts([0xFF, 0xD8, 0xFF]) { return try decodeJPEG(bytes) }
    if starts([0x42, 0x4D]) { return try decodeBMP(b) }
    if b.count >= 2 && b[0] == 0x50 && [0x32, 0x33, 0x35, 0x36].contains(b[1]) { return try decodePNM(b) }
    if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) {
        throw ImageCodecError("TIFF images are not supported (PNG, JPEG, BMP and PNM are)")
    }
    if starts([0x52, 0x49, 0x46, 0x46]) && b.count >= 12 && b[8] == 0x57 && b[9] == 0x45 && b[10] == 0x42 && b[11] == 0x50 {
        throw ImageCodecError("WebP images are not supported (PNG, JPEG, BMP and PNM are)")
    }
    if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]) || starts([0xFF, 0x4F, 0xFF, 0x51]) {
        throw ImageCodecError("JPEG 2000 images are not supported (PNG, JPEG, BMP and PNM are)")
    }
    throw ImageCodecError("the \(b.count) bytes are not an image of a known format (PNG, JPEG, BMP, PNM)")
}

private func checkSize(_ w: Int, _ h: Int, _ format: String) throws {
    guard w > 0, h > 0 else { throw ImageCodecError("the \(format) image is \(w)x\(h)") }
    guard w <= maxDecodedPixels / h else {
        throw ImageCodecError("the \(format) image is \(w)x\(h), more than \(maxDecodedPixels) pixels")
    }
}

private func cError(_ err: [CChar]) -> String {
    String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func decodePNG(_ bytes: UnsafeRawBufferPointer) throws -> DecodedImage {
    var err = [CChar](repeating: 0, count: 256)
    var info = sio_info()
    guard sio_png_info_mem(bytes.baseAddress, bytes.count, &info, &err, err.count) == 0 else {
        throw ImageCodecError("PNG: " + cError(err))
    }
    let w = Int(info.width), h = Int(info.height), c = Int(info.channels), depth = Int(info.bit_depth)
    try checkSize(w, h, "PNG")
    var raw = [UInt8](repeating: 0, count: w * h * c * depth / 8)
    let rc = raw.withUnsafeMutableBytes { sio_png_read_mem(bytes.baseAddress, bytes.count, $0.baseAddress, $0.count, &info, &err, err.count) }
    guard rc == 0 else { throw ImageCodecError("PNG: " + cError(err)) }
    if depth == 16 {
        // Samples in the machine's byte order: keep the high byte.
        let n = w * h * c
        let narrowed = raw.withUnsafeBytes { r in (0..<n).map { UInt8(r.load(fromByteOffset: 2 * $0, as: UInt16.self) >> 8) } }
        return DecodedImage(width: w, height: h, channels: c, pixels: narrowed)
    }
    return DecodedImage(width: w, height: h, channels: c, pixels: raw)
}

private func decodeJPEG(_ bytes: UnsafeRawBufferPointer) throws -> DecodedImage {
    var err = [CChar](repeating: 0, count: 256)
    var info = sio_info()
    guard sio_jpeg_info_mem(bytes.baseAddress, bytes.count, &info, &err, err.count) == 0 else {
        throw ImageCodecError("JPEG: " + cError(err))
    }
    let w = Int(info.width), h = Int(info.height), c = Int(info.channels)
    try checkSize(w, h, "JPEG")
    var raw = [UInt8](repeating: 0, count: w * h * c)
    let rc = raw.withUnsafeMutableBufferPointer { sio_jpeg_read_mem(bytes.baseAddress, bytes.count, $0.baseAddress, $0.count, &info, &err, err.count) }
    guard rc == 0 else { throw ImageCodecError("JPEG: " + cError(err)) }
    return DecodedImage(width: w, height: h, channels: c, pixels: raw)
}

/// Windows bitmaps with a 40-byte or longer info header: uncompressed 24- and 32-bit pixels, or
/// 1-, 4- and 8-bit palette indices; rows bottom-up (or top-down for a negative height).
private func decodeBMP(_ b: UnsafeBufferPointer<UInt8>) throws -> DecodedImage {
    func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    func u32(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24 }
    guard b.count >= 54 else { throw ImageCodecError("BMP: \(b.count) bytes are too few for the headers") }
    let dataOffset = u32(10)
    let headerSize = u32(14)
    guard headerSize >= 40, 14 + headerSize <= b.count else {
        throw ImageCodecError("BMP: info header of \(headerSize) bytes is not supported (40 or more)")
    }
    let w = Int(Int32(truncatingIfNeeded: u32(18)))
    let hSigned = Int(Int32(truncatingIfNeeded: u32(22)))
    let bpp = u16(28)
    let compression = u32(30)
    let topDown = hSigned < 0
    let h = abs(hSigned)
    try checkSize(w, h, "BMP")
    // BI_RGB, or BI_BITFIELDS with the usual 32-bit masks (blue, green, red in bytes 0, 1, 2).
    let bitfields = compression == 3 && bpp == 32 && headerSize >= 52
        && u32(54) == 0x00FF_0000 && u32(58) == 0x0000_FF00 && u32(62) == 0x0000_00FF
    guard compression == 0 || bitfields else { throw ImageCodecError("BMP: compression \(compression) is not supported") }
    guard [1, 4, 8, 24, 32].contains(bpp) else { throw ImageCodecError("BMP: \(bpp) bits per pixel is not supported") }
    var palette: [(UInt8, UInt8, UInt8)] = []
    if bpp <= 8 {
        let colors = u32(46) == 0 ? 1 << bpp : u32(46)
        let start = 14 + headerSize
        guard colors <= 256, start + 4 * colors <= b.count else { throw ImageCodecError("BMP: the palette is truncated") }
        for i in 0..<colors { palette.append((b[start + 4 * i + 2], b[start + 4 * i + 1], b[start + 4 * i])) }
    }
    let stride = (w * bpp + 31) / 32 * 4
    guard dataOffset >= 0, dataOffset <= b.count, stride <= (b.count - dataOffset) / h else {
        throw ImageCodecError("BMP: \(w)x\(h) pixels at \(bpp) bits need \(stride * h) bytes from offset \(dataOffset); the file has \(b.count)")
    }
    var out = [UInt8](repeating: 0, count: w * h * 3)
    for y in 0..<h {
        let row = dataOffset + (topDown ? y : h - 1 - y) * stride
        for x in 0..<w {
            let o = (y * w + x) * 3
            switch bpp {
            case 24, 32:
                let p = row + x * bpp / 8
                out[o] = b[p + 2]; out[o + 1] = b[p + 1]; out[o + 2] = b[p]
            default:
                let bit = x * bpp
                let index = Int(b[row + bit / 8] >> UInt8(8 - bpp - bit % 8)) & ((1 << bpp) - 1)
                guard index < palette.count else { throw ImageCodecError("BMP: palette index \(index) of \(palette.count) colours") }
                (out[o], out[o + 1], out[o + 2]) = palette[index]
            }
        }
    }
    return DecodedImage(width: w, height: h, channels: 3, pixels: out)
}

/// Netpbm: P5 (gray) and P6 (RGB) binary, P2 and P3 plain text; samples up to 255, or up to
/// 65535 as two big-endian bytes (scaled to 8 bits).
private func decodePNM(_ b: UnsafeBufferPointer<UInt8>) throws -> DecodedImage {
    let kind = b[1]
    var i = 2
    func skipSpaceAndComments() {
        while i < b.count {
            if b[i] == 0x23 { while i < b.count && b[i] != 0x0A && b[i] != 0x0D { i += 1 } }
            else if [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains(b[i]) { i += 1 }
            else { break }
        }
    }
    func number(_ what: String) throws -> Int {
        skipSpaceAndComments()
        var v = 0, digits = 0
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
            v = v * 10 + Int(b[i] - 0x30)
            digits += 1
            i += 1
            guard v <= 1 << 30 else { throw ImageCodecError("PNM: \(what) is too large") }
        }
        guard digits > 0 else { throw ImageCodecError("PNM: expected \(what) at byte \(i)") }
        return v
    }
    let w = try number("the width"), h = try number("the height"), maxval = try number("the maximum value")
    try checkSize(w, h, "PNM")
    guard maxval >= 1 && maxval <= 65535 else { throw ImageCodecError("PNM: maximum value \(maxval) is not in 1...65535") }
    let c = (kind == 0x33 || kind == 0x36) ? 3 : 1
    let n = w * h * c
    var out = [UInt8](repeating: 0, count: n)
    func scaled(_ v: Int) throws -> UInt8 {
        guard v <= maxval else { throw ImageCodecError("PNM: sample \(v) exceeds the maximum value \(maxval)") }
        return maxval == 255 ? UInt8(v) : UInt8((v * 255 + maxval / 2) / maxval)
    }
    if kind == 0x35 || kind == 0x36 {
        i += 1   // one whitespace byte after the header
        let size = maxval < 256 ? 1 : 2
        guard i <= b.count, (b.count - i) / size >= n else {
            throw ImageCodecError("PNM: \(w)x\(h) pixels need \(n * size) bytes; \(max(b.count - i, 0)) follow the header")
        }
        for k in 0..<n {
            out[k] = try scaled(size == 1 ? Int(b[i + k]) : Int(b[i + 2 * k]) << 8 | Int(b[i + 2 * k + 1]))
        }
    } else {
        for k in 0..<n { out[k] = try scaled(try number("sample \(k)")) }
    }
    return DecodedImage(width: w, height: h, channels: c, pixels: out)
}
