import Foundation

/// The signal family: DFT (opsets 17 and 20: forward and inverse, full or one-sided, dft_length
/// padding or truncating the signal) and STFT (opset 17). Values are computed in Double by
/// ``FFTPlan`` (O(n log n) per transformed line, any length: mixed radix for lengths whose prime
/// factors are small, Bluestein's chirp z-transform otherwise), one plan per op call reused for every
/// line or frame, and returned in the input's float type. The last dimension of a signal is 1 (real)
/// or 2 (real, imaginary). Transforms are limited to ``maxTransformLength`` points.
func registerSignalOps(_ r: inout OpRegistry) {
    r.register("DFT", infer: Inference { ctx, ins in try inferDFT(ctx, ins) }, closure: makeDFT)
    r.register("STFT", infer: Inference { ctx, ins in try inferSTFT(ctx, ins) }, closure: makeSTFT)
}

/// The DFT's axis: the attribute (opsets 17-19, default 1) or the third input (opset 20, default -2),
/// negative counting from the back of the whole shape; never the last (real/imaginary) dimension.
private func dftAxis(_ ctx: OpContext, _ axisInput: Int?, rank: Int) throws -> Int {
    try dftAxis(opset: ctx.opset, attribute: try ctx.int("axis", default: 1), axisInput, rank: rank)
}

private func dftAxis(opset: Int, attribute: Int, _ axisInput: Int?, rank: Int) throws -> Int {
    let raw = opset >= 20 ? (axisInput ?? -2) : attribute
    let a = raw < 0 ? raw + rank : raw
    guard a >= 0, a < rank - 1 else {
        throw OpError("DFT: axis \(raw) is outside the signal dimensions of a rank-\(rank) input (the last holds real and imaginary parts)")
    }
    return a
}

private func inferDFT(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let x = ins.at(0).type
    guard let s = x.shape, s.count >= 2 else { return [TypeInfo(dtype: x.dtype, shape: nil)] }
    let axisConst = ctx.opset >= 20 && ctx.hasInput(2) ? ins.ints(2)?.first : nil
    if ctx.opset >= 20 && ctx.hasInput(2) && axisConst == nil { return [TypeInfo(dtype: x.dtype, shape: nil)] }
    let axis = try dftAxis(ctx, axisConst, rank: s.count)
    let inverse = try ctx.int("inverse", default: 0) != 0, onesided = try ctx.int("onesided", default: 0) != 0
    var n: Dim = s[axis]
    if ctx.hasInput(1) {
        guard let l = ins.ints(1)?.first else { return [TypeInfo(dtype: x.dtype, shape: nil)] }
        n = .known(l)
    }
    var out = s
    if onesided && inverse {
        // the one-sided spectrum's full length: dft_length, else 2 (m - 1)
        out[axis] = ctx.hasInput(1) ? n : (s[axis].value.map { .known(2 * ($0 - 1)) } ?? .unknown)
        out[s.count - 1] = .known(1)
    } else {
        out[axis] = onesided ? (n.value.map { .known($0 / 2 + 1) } ?? .unknown) : n
        out[s.count - 1] = .known(2)
    }
    return [TypeInfo(dtype: x.dtype, shape: out)]
}

/// The longest transform the ops run: the plan's tables and scratch take about 50 bytes per point
/// (Bluestein's, for a length with a large prime factor, up to about 300), so a hostile dft_length is
/// refused before anything of its size is allocated.
let maxTransformLength = 1 << 19

/// Refuses a transform whose output is too large or whose length exceeds ``maxTransformLength``,
/// before anything is allocated.
private func checkTransformSize(_ op: String, n: Int, output: [Int]) throws {
    do { _ = try checkedElementCount(output, what: op) } catch { throw OpError("\(op): output \(describeShape(output)) is too large") }
    guard n <= maxTransformLength else {
        throw OpError("\(op): transforms of more than \(maxTransformLength) points are not supported (length \(n))")
    }
}

/// DFT(input, dft_length?, axis?) (opset 20; axis an attribute before).
private func makeDFT(_ ctx: OpContext) throws -> OpBody {
    let inverse = try ctx.int("inverse", default: 0) != 0, onesided = try ctx.int("onesided", default: 0) != 0
    let opset = ctx.opset, axisAttribute = try ctx.int("axis", default: 1)
    return { inputs, _ in
        let x = try inputs.required(0, "input")
        guard x.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("DFT: input has element type \(x.dtype) (expected a float type)") }
        let rank = x.rank
        guard rank >= 2, x.shape[rank - 1] == 1 || x.shape[rank - 1] == 2 else {
            throw OpError("DFT: the input's last dimension must be 1 (real) or 2 (complex), got \(describeShape(x.shape))")
        }
        let axis = try dftAxis(opset: opset, attribute: axisAttribute, try inputs.optional(2)?.readAsInts().first, rank: rank)
        let complexIn = x.shape[rank - 1] == 2
        let m = x.shape[axis]
        var n = m
        if let l = inputs.optional(1) {
            guard let v = try l.readAsInts().first, l.count == 1, v >= 1 else {
                throw OpError("DFT: dft_length must be one positive value, got \(describeShape(l.shape))")
            }
            n = v
        } else if onesided && inverse {
            n = 2 * (m - 1)
        }
        guard n >= 1 else { throw OpError("DFT: the transform length is \(n) (input \(describeShape(x.shape)), axis \(axis))") }
        if onesided && !inverse && complexIn {
            throw OpError("DFT: a one-sided forward transform takes a real input (last dimension 1), got \(describeShape(x.shape))")
        }
        // the lines along the axis: outer (dims before), inner (dims after, without the last)
        let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[(axis + 1)..<(rank - 1)].reduce(1, *)
        let bins = onesided && !inverse ? n / 2 + 1 : n
        let realOut = onesided && inverse
        var outShape = x.shape
        outShape[axis] = bins
        outShape[rank - 1] = realOut ? 1 : 2
        try checkTransformSize("DFT", n: n, output: outShape)
        let values = try x.doubles()
        let cin = complexIn ? 2 : 1, cout = realOut ? 1 : 2
        var out = [Double](repeating: 0, count: outShape.reduce(1, *))
        let plan = FFTPlan(count: n, inverse: inverse)
        var re = [Double](repeating: 0, count: n), im = re
        let scale = inverse ? 1 / Double(n) : 1
        for o in 0..<outer {
            for i in 0..<inner {
                for t in 0..<n { re[t] = 0; im[t] = 0 }
                if realOut {
                    // the full spectrum from the one-sided one: X[k] for k <= n / 2, conj(X[n - k]) above
                    for k in 0..<n {
                        let j = k <= n / 2 ? k : n - k
                        guard j < m else { continue }
                        let at = ((o * m + j) * inner + i) * cin
                        re[k] = values[at]
                        let v = complexIn ? values[at + 1] : 0
                        im[k] = k <= n / 2 ? v : -v
                    }
                } else {
                    for t in 0..<min(m, n) {
                        let at = ((o * m + t) * inner + i) * cin
                        re[t] = values[at]; im[t] = complexIn ? values[at + 1] : 0
                    }
                }
                plan.transform(re: &re, im: &im)
                for k in 0..<bins {
                    let at = ((o * bins + k) * inner + i) * cout
                    out[at] = re[k] * scale
                    if !realOut { out[at + 1] = im[k] * scale }
                }
            }
        }
        return [try Tensor(validShape: outShape, scalars: out).converted(to: x.dtype)]
    }
}

private func inferSTFT(_ ctx: OpContext, _ ins: [InferenceInput]) throws -> [TypeInfo] {
    let x = ins.at(0).type
    var t = TypeInfo(dtype: x.dtype, shape: nil)
    guard let s = x.shape, s.count == 3, let step = ins.ints(1)?.first, step > 0 else { return [t] }
    var length: Int? = ins.ints(3)?.first
    if length == nil, let w = ins.shape(2), w.count == 1 { length = w[0].value }
    guard let l = length, l > 0, let sl = s[1].value, sl >= l else { return [t] }
    let onesided = try ctx.int("onesided", default: 1) != 0
    t.shape = [s[0], .known((sl - l) / step + 1), .known(onesided ? l / 2 + 1 : l), .known(2)]
    return [t]
}

/// STFT(signal, frame_step, window?, frame_length?): signal (batch, length, 1 or 2) cut into frames
/// of frame_length (the window's length when given) every frame_step values, each multiplied by the
/// window and transformed; output (batch, frames, bins, 2), bins frame_length / 2 + 1 when onesided
/// (the default; real signals only).
private func makeSTFT(_ ctx: OpContext) throws -> OpBody {
    let onesided = try ctx.int("onesided", default: 1) != 0
    return { inputs, _ in
        let x = try inputs.required(0, "signal")
        guard x.dtype.isFloatingPoint else { throw ONNXError.unsupportedType("STFT: signal has element type \(x.dtype) (expected a float type)") }
        guard x.rank == 3, x.shape[2] == 1 || x.shape[2] == 2 else {
            throw OpError("STFT: signal must be (batch, length, 1 or 2), got \(describeShape(x.shape))")
        }
        guard let step = try inputs.required(1, "frame_step").readAsInts().first, step > 0 else {
            throw OpError("STFT: frame_step must be a positive value")
        }
        let window = try inputs.optional(2).map { try $0.doubles() }
        if let w = inputs.optional(2), w.rank != 1 { throw OpError("STFT: window must be 1-D, got \(describeShape(w.shape))") }
        var length = window?.count
        if let fl = inputs.optional(3) {
            guard let v = try fl.readAsInts().first, v > 0 else { throw OpError("STFT: frame_length must be a positive value") }
            if let l = length, l != v { throw OpError("STFT: frame_length \(v) differs from the window's length \(l)") }
            length = v
        }
        guard let l = length else { throw OpError("STFT: give a window or a frame_length") }
        let (batch, sl, c) = (x.shape[0], x.shape[1], x.shape[2])
        guard sl >= l else { throw OpError("STFT: the signal's \(sl) values are fewer than one frame of \(l)") }
        if onesided && c == 2 { throw OpError("STFT: a one-sided transform takes a real signal (last dimension 1)") }
        let frames = (sl - l) / step + 1, bins = onesided ? l / 2 + 1 : l
        try checkTransformSize("STFT", n: l, output: [batch, frames, bins, 2])
        let values = try x.doubles()
        var out = [Double](repeating: 0, count: batch * frames * bins * 2)
        let plan = FFTPlan(count: l, inverse: false)
        var re = [Double](repeating: 0, count: l), im = re
        for b in 0..<batch {
            for f in 0..<frames {
                for t in 0..<l {
                    let at = (b * sl + f * step + t) * c
                    let w = window?[t] ?? 1
                    re[t] = values[at] * w
                    im[t] = c == 2 ? values[at + 1] * w : 0
                }
                plan.transform(re: &re, im: &im)
                for k in 0..<bins {
                    let at = ((b * frames + f) * bins + k) * 2
                    out[at] = re[k]
                    out[at + 1] = im[k]
                }
            }
        }
        return [try Tensor(validShape: [batch, frames, bins, 2], scalars: out).converted(to: x.dtype)]
    }
}
