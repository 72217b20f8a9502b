/// Image ops: ImageDecoder (opset 20).
func registerImageOps(_ r: inout OpRegistry) {
    r.register("ImageDecoder", infer: Inference { ctx, _ in
        let format = try ctx.string("pixel_format", default: "RGB")
        return [TypeInfo(dtype: .uint8, shape: [.unknown, .unknown, .known(format == "Grayscale" ? 1 : 3)])]
    }, closure: { ctx in
        let format = try ctx.string("pixel_format", default: "RGB")
        guard ["RGB", "BGR", "Grayscale"].contains(format) else {
            throw ctx.attributeError("pixel_format", "must be RGB, BGR or Grayscale, got \(format)")
        }
        return { inputs, _ in
            let x = try inputs.required(0, "encoded_stream")
            guard x.dtype == .uint8, x.rank == 1 else {
                throw OpError("encoded_stream must be a 1-D uint8 tensor, got \(x.dtype) \(describeShape(x.shape))")
            }
            let image: DecodedImage
            do {
                image = try decodeImage(UnsafeRawBufferPointer(start: x.raw, count: x.count))
            } catch let e as ImageCodecError {
                throw OpError(e.message)
            }
            return [try pixelsTensor(image, format: format)]
        }
    })
}

/// `image` as an [H, W, C] uint8 tensor: RGB or BGR (gray replicated, alpha dropped), or one
/// channel of luma, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2 weights, as PIL's
/// "L" conversion computes them).
private func pixelsTensor(_ image: DecodedImage, format: String) throws -> Tensor {
    let n = image.width * image.height
    let c = image.channels
    let gray = format == "Grayscale", bgr = format == "BGR"
    let out = try Tensor.uninitialized(.uint8, [image.height, image.width, gray ? 1 : 3])
    let d = out.pointer(UInt8.self)
    image.pixels.withUnsafeBufferPointer { p in
        for i in 0..<n {
            let s = i * c
            let (r, g, b): (UInt8, UInt8, UInt8) = c >= 3 ? (p[s], p[s + 1], p[s + 2]) : (p[s], p[s], p[s])
            if gray {
                let luma: Int = 19595 * Int(r) + 38470 * Int(g) + 7471 * Int(b) + 0x8000
                d[i] = c >= 3 ? UInt8(luma >> 16) : r
            } else if bgr {
                d[3 * i] = b; d[3 * i + 1] = g; d[3 * i + 2] = r
            } else {
                d[3 * i] = r; d[3 * i + 1] = g; d[3 * i + 2] = b
            }
        }
    }
    return out
}
