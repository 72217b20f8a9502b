import CKernels
import Foundation

// Scaled dot-product attention over float32 tensors given by pointers and strides, and rotary
// position embedding. Nothing here knows a graph: the Attention / RotaryEmbedding ops (and the
// fused attention pattern) describe their tensors with the views below.

/// Where one (batch, head) matrix of rows starts in a float32 buffer: element (b, h, row, col) is at
/// `base + b * batch + h * head + row * row + col` (columns are contiguous).
struct AttentionView {
    var base: UnsafePointer<Float>
    var batch: Int
    var head: Int
    var row: Int
    @inline(__always) func at(_ b: Int, _ h: Int) -> UnsafePointer<Float> { base + b * batch + h * head }
}

/// The same for an output.
struct AttentionOutView {
    var base: UnsafeMutablePointer<Float>
    var batch: Int
    var head: Int
    var row: Int
    @inline(__always) func at(_ b: Int, _ h: Int) -> UnsafeMutablePointer<Float> { base + b * batch + h * head }
}

/// The additive bias of the scores: an optional float mask (0 or -inf for boolean masks, already
/// converted) broadcast over (batch, head, query row), whose columns beyond its length count as
/// -inf; a causal frontier (key j is seen by query i when j <= i + offset); a sliding window
/// around the same frontier; and a per-batch count of valid keys.
struct AttentionBias {
    /// The mask's values, element (b, h, i, j) at `mask + b * maskStride.b + h * maskStride.h + i * maskStride.i + j`.
    var mask: UnsafePointer<Float>? = nil
    var maskStride: (b: Int, h: Int, i: Int) = (0, 0, 0)
    /// The mask's last dimension (columns at or beyond it are masked).
    var maskLength = 0
    var causal = false
    /// -1 for an unbounded side.
    var leftWindow = -1
    var rightWindow = -1
    /// The frontier offset of each batch (causal and window): query i sits at key position i + offset.
    var offsets: [Int] = []
    /// Valid keys per batch (keys at or beyond are masked); empty when every key is valid.
    var validKeys: [Int] = []

    var isEmpty: Bool { mask == nil && !causal && leftWindow < 0 && rightWindow < 0 && validKeys.isEmpty }
    /// The same bias for every query row of a (batch, head): a padding mask, valid key counts.
    var sameForEveryRow: Bool { (mask == nil || maskStride.i == 0) && !causal && leftWindow < 0 && rightWindow < 0 }

    /// Whether every masked key of a row lies in a tail the row's key range describes, beyond the mask's
    /// own -inf entries (no left window): the key-limited path's condition.
    var tailOnly: Bool { leftWindow < 0 }

    /// The mask row of (b, h, i), or nil without a mask.
    @inline(__always) func maskRow(_ b: Int, _ h: Int, _ i: Int) -> UnsafePointer<Float>? {
        mask.map { $0 + b * maskStride.b + h * maskStride.h + i * maskStride.i }
    }

    /// Keys [0, limit) of query row i hold every key the row sees (beyond them all are masked), and
    /// `first` is the first key the mask leaves visible (n when none): the row is fully masked when
    /// first >= limit. The causal frontier, the right window and the valid-key count cut the tail;
    /// so do the mask's trailing -inf entries. (Requires `tailOnly`.)
    /// `span` is the row's ``maskSpan`` when the caller has it (rows that share a mask row share it).
    func keyRange(_ b: Int, _ h: Int, _ i: Int, n: Int, span: (first: Int, limit: Int)? = nil) -> (first: Int, limit: Int) {
        var first = 0, limit = n
        if mask != nil {
            (first, limit) = span ?? maskSpan(b, h, i, n: n)
            if first >= limit { return (n, 0) }
        }
        let off = offsets.isEmpty ? 0 : offsets[b]
        if causal { limit = min(limit, max(0, i + off + 1)) }
        if rightWindow >= 0 { limit = min(limit, max(0, i + off + rightWindow + 1)) }
        if !validKeys.isEmpty { limit = min(limit, max(0, validKeys[b])) }
        return (first, limit)
    }

    /// The keys [first, limit) between the mask row's first and last entries that are not -inf (its
    /// columns beyond `maskLength` count as -inf); (n, 0) when every entry is -inf. Requires a mask.
    func maskSpan(_ b: Int, _ h: Int, _ i: Int, n: Int) -> (first: Int, limit: Int) {
        guard let mr = maskRow(b, h, i) else { return (0, n) }
        let ninf = -Float.infinity
        var first = 0, limit = min(maskLength, n)
        while limit > 0 && mr[limit - 1] == ninf { limit -= 1 }
        while first < limit && mr[first] == ninf { first += 1 }
        return first < limit ? (first, limit) : (n, 0)
    }

    /// Writes the bias of query row i (batch b, head h) over n keys; returns false when every key is masked.
    func row(_ b: Int, _ h: Int, _ i: Int, n: Int, into out: UnsafeMutablePointer<Float>) -> Bool {
        let ninf = -Float.infinity
        if let m = mask {
            let mr = m + b * maskStride.b + h * maskStride.h + i * maskStride.i
            let l = min(maskLength, n)
            for j in 0..<l { out[j] = mr[j] }
            for j in l..<n { out[j] = ninf }
        } else {
            out.update(repeating: 0, count: n)
        }
        let off = offsets.isEmpty ? 0 : offsets[b]
        if causal {
            let first = max(0, i + off + 1)
            if first < n { for j in first..<n { out[j] = ninf } }
        }
        if leftWindow >= 0 || rightWindow >= 0 {
            // diff = (i + off) - j: keys with diff > left or -diff > right are outside the window.
            for j in 0..<n {
                let diff = i + off - j
                if (leftWindow >= 0 && diff > leftWindow) || (rightWindow >= 0 && -diff > rightWindow) { out[j] = ninf }
            }
        }
        if !validKeys.isEmpty {
            let v = max(0, validKeys[b])
            if v < n { for j in v..<n { out[j] = ninf } }
        }
        for j in 0..<n where out[j] != ninf { return true }
        return false
    }
}

/// Which intermediate the optional scores output holds (ONNX Attention's qk_matmul_output_mode).
enum AttentionScoresStage: Int { case product = 0, productAgain = 1, biased = 2, probabilities = 3 }

/// Geometry and parameters of one attention call.
struct AttentionProblem {
    var batch: Int
    var qHeads: Int
    var kvHeads: Int
    var qLength: Int
    var kvLength: Int
    var headSize: Int
    var valueHeadSize: Int
    /// Multiplies Q·Kᵀ.
    var scale: Float
    /// When > 0, scores become softcap * tanh(scores / softcap) before the bias.
    var softcap: Float = 0
}

/// Query rows per task: a multiple of 24 (whole row tiles of the 6- and 8-row GEMM kernels) whose
/// scores (rows x kvLength floats) take about 64 KB, at least 48 and at most 240 rows: all the memory
/// a task needs grows with the sequence length, not with its square; short sequences take more rows
/// per task (larger, faster GEMMs).
private func attentionRowBlock(keys: Int) -> Int { min(240, max(48, 16_384 / max(keys, 1) / 24 * 24)) }

/// Attention: Y(b, h) = softmax(scale * Q(b, h) K(b, g)ᵀ [softcapped] + bias) V(b, g), with g the
/// key/value head of query head h (h / (qHeads / kvHeads)). A query row whose keys are all masked
/// gets zero probabilities and a zero output. `scores` (b, h, i, j), when given, receives the stage
/// asked for. Work is split over (batch, head, block of query rows).
///
/// Both products run on the packed GEMM microkernels: every key/value head's Kᵀ and V are packed once
/// into column panels, each task packs its block of query rows (times the scale) as row panels and
/// reads its probabilities in place. The bias is added by the GEMM's epilogue while the scores are in
/// registers (one shared row for padding masks, a block for causal and per-row masks) unless a softcap
/// has to come first.
func f32Attention(_ p: AttentionProblem, q: AttentionView, k: AttentionView, v: AttentionView, y: AttentionOutView,
                  bias: AttentionBias, scores: (view: AttentionOutView, stage: AttentionScoresStage)?, threads: Int) {
    let n = p.kvLength
    guard p.batch > 0, p.qHeads > 0, p.qLength > 0, p.valueHeadSize > 0 else { return }
    let kvHeads = max(p.kvHeads, 1)
    let group = max(1, p.qHeads / kvHeads)
    let rowBlock = attentionRowBlock(keys: n)
    let blocks = (p.qLength + rowBlock - 1) / rowBlock
    let tasks = p.batch * p.qHeads * blocks
    let work = p.batch * p.qHeads * p.qLength * max(n, 1) * (p.headSize + p.valueHeadSize)
    let useThreads = work >= 1 << 16 ? threads : 1
    let hasBias = !bias.isEmpty
    if n == 0 {   // no keys: every row is fully masked (a zero output)
        for b in 0..<p.batch {
            for h in 0..<p.qHeads {
                let yr = y.at(b, h)
                for r in 0..<p.qLength { (yr + r * y.row).update(repeating: 0, count: p.valueHeadSize) }
            }
        }
        return
    }
    let gemm = f32Gemm
    let mr = Int(gemm.pointee.mr), nr = Int32(gemm.pointee.nr)
    let kPanels = so_f32_gemm_packed_b_floats(nr, max(p.headSize, 1), n)
    let vPanels = so_f32_gemm_packed_b_floats(nr, n, p.valueHeadSize)
    ScratchPool.shared.withFloats(p.batch * kvHeads * (kPanels + vPanels)) { packedK in
        let packedV = packedK + p.batch * kvHeads * kPanels
        parallelFor(p.batch * kvHeads, threads: useThreads) { t in
            let b = t / kvHeads, g = t % kvHeads
            if p.headSize > 0 { gemm.pointee.pack_b(p.headSize, n, k.at(b, g), 1, k.row, packedK + t * kPanels) }
            gemm.pointee.pack_b(n, p.valueHeadSize, v.at(b, g), v.row, 1, packedV + t * vPanels)
        }
        let qFloats = so_f32_gemm_packed_a_floats(Int32(mr), rowBlock, max(p.headSize, 1))
        let perRowBias = hasBias && !bias.sameForEveryRow
        let epilogueTakesBias = hasBias && p.softcap == 0 && scores == nil && p.headSize > 0
        // Masks that only hide tails of keys (causal, padding, valid-key counts, a mask's trailing -inf)
        // take the key-limited path: no bias rows are copied, and each group of query rows multiplies,
        // exponentiates and sums only the keys its rows can see.
        let keyLimited = epilogueTakesBias && bias.tailOnly
        let maskHeads = bias.mask != nil && bias.maskStride.h != 0 ? p.qHeads : 1
        // once per call with a mask (the heads share them when the mask does; a mask row shared by the
        // query rows is scanned once)
        let ranges: [(first: Int, limit: Int)] = !keyLimited || bias.mask == nil ? [] : (0..<p.batch).flatMap { b in
            (0..<maskHeads).flatMap { h in
                let shared = bias.maskStride.i == 0 ? bias.maskSpan(b, h, 0, n: n) : nil
                return (0..<p.qLength).map { i in bias.keyRange(b, h, i, n: n, span: shared ?? bias.maskSpan(b, h, i, n: n)) }
            }
        }
        parallelFor(tasks, threads: useThreads) { task in
            let blk = task % blocks, bh = task / blocks
            let h = bh % p.qHeads, b = bh / p.qHeads, g = h / group
            let i0 = blk * rowBlock, rows = min(rowBlock, p.qLength - i0)
            let yr = y.at(b, h) + i0 * y.row
            if keyLimited {
                let rangeBase = (b * maskHeads + (maskHeads == 1 ? 0 : h)) * p.qLength + i0
                ranges.withUnsafeBufferPointer { table in
                    f32AttentionKeyLimitedBlock(p, rows: rows, n: n, q: q.at(b, h) + i0 * q.row, qRow: q.row,
                                                packedK: packedK + (b * kvHeads + g) * kPanels,
                                                packedV: packedV + (b * kvHeads + g) * vPanels,
                                                y: yr, yRow: y.row, mask: bias.maskRow(b, h, i0),
                                                maskRowStride: bias.maskStride.i, gemm: gemm, qFloats: qFloats) { r in
                        table.isEmpty ? bias.keyRange(b, h, i0 + r, n: n) : table[rangeBase + r]
                    }
                }
                return
            }
            // scores (rows x n) | bias row (n) or block (rows x n) | packed Q
            let biasFloats = perRowBias ? rows * n : n
            ScratchPool.shared.withFloats(rows * n + biasFloats + qFloats) { s in
                let biasArea = s + rows * n
                let qArea = biasArea + biasFloats
                var masked = [Bool](repeating: false, count: rows)
                var anyMasked = false
                var epilogue = F32GemmEpilogue()
                if hasBias {
                    if bias.sameForEveryRow {
                        if !bias.row(b, h, i0, n: n, into: biasArea) { masked = .init(repeating: true, count: rows); anyMasked = true }
                    } else {
                        for r in 0..<rows where !bias.row(b, h, i0 + r, n: n, into: biasArea + r * n) {
                            masked[r] = true
                            anyMasked = true
                        }
                    }
                    if epilogueTakesBias {
                        if bias.sameForEveryRow { epilogue.columnBias = UnsafePointer(biasArea) }
                        else { epilogue.z = UnsafePointer(biasArea); epilogue.ldz = n }
                    }
                }
                func copyScores(_ stage: AttentionScoresStage) {
                    guard let sc = scores, sc.stage == stage || (stage == .product && sc.stage == .productAgain) else { return }
                    let dst = sc.view.at(b, h) + i0 * sc.view.row
                    for r in 0..<rows { (dst + r * sc.view.row).update(from: s + r * n, count: n) }
                }
                // The scale multiplies the packed Q block (once per query element, not per score).
                if p.headSize == 0 {
                    s.update(repeating: 0, count: rows * n)
                } else {
                    let packedQ = F32PackedMatrix(packedStorageAt: qArea, m: rows, k: p.headSize, owner: ScratchPool.shared,
                                                  gemm: gemm)
                    gemm.pointee.pack_a(rows, p.headSize, q.at(b, h) + i0 * q.row, q.row, 1, qArea)
                    if p.scale != 1 {
                        let count = so_f32_gemm_packed_a_floats(Int32(mr), rows, p.headSize)
                        for t in 0..<count { qArea[t] *= p.scale }
                    }
                    f32PackedGemmPanels(packedQ, pb: packedK + (b * kvHeads + g) * kPanels, n: n, c: s, ldc: n,
                                        epilogue: epilogue)
                }
                let biasPending = hasBias && !epilogueTakesBias
                if p.softcap > 0 {
                    let c = p.softcap, inv = 1 / p.softcap
                    for t in 0..<(rows * n) { s[t] = c * Foundation.tanh(s[t] * inv) }
                }
                copyScores(.product)
                if biasPending {
                    for r in 0..<rows {
                        let sr = s + r * n, br = perRowBias ? biasArea + r * n : biasArea
                        for j in 0..<n { sr[j] += br[j] }
                    }
                }
                copyScores(.biased)
                if anyMasked {
                    for r in 0..<rows {
                        let sr = s + r * n
                        if masked[r] { sr.update(repeating: 0, count: n) } else { f32SoftmaxRows(sr, sr, rows: 1, n: n, kind: .softmax) }
                    }
                } else {
                    f32SoftmaxRows(s, s, rows: rows, n: n, kind: .softmax)
                }
                copyScores(.probabilities)
                // the probabilities read in place (packing them cost 9% of BERT at 512 tokens, Zen 1)
                f32RowAGemmPanels(m: rows, a: s, lda: n, gemm: gemm, pb: packedV + (b * kvHeads + g) * vPanels, k: n,
                                  n: p.valueHeadSize, c: yr, ldc: y.row, epilogue: .init())
            }
        }
    }
}

/// One block of query rows of one (batch, head) on the key-limited path: the rows go in groups of 24
/// (whole row tiles of the 4-, 6- and 8-row kernels) or all at once when every row sees the same keys;
/// a group multiplies by the keys [0, limit) its rows can see (the largest row limit), the mask (read
/// in place: its row, or one shared row) added by the GEMM epilogue, the keys beyond a row's own limit
/// set to -inf, and its probabilities (rows `limit` floats apart) times the first `limit` rows of V.
/// A fully masked row gets a zero output. `range(r)` is row i0 + r's key range (AttentionBias.keyRange).
private func f32AttentionKeyLimitedBlock(_ p: AttentionProblem, rows: Int, n: Int, q: UnsafePointer<Float>, qRow: Int,
                                         packedK: UnsafePointer<Float>, packedV: UnsafePointer<Float>,
                                         y: UnsafeMutablePointer<Float>, yRow: Int, mask: UnsafePointer<Float>?,
                                         maskRowStride: Int, gemm: UnsafePointer<so_f32_gemm>, qFloats: Int,
                                         range: (Int) -> (first: Int, limit: Int)) {
    var sameLimit = true
    let limit0 = range(0).limit
    for r in 0..<rows where range(r).limit != limit0 { sameLimit = false; break }
    let group = sameLimit ? rows : 24
    ScratchPool.shared.withFloats(rows * n + qFloats) { s in
        let qArea = s + rows * n
        // The scale multiplies the packed Q block (once per query element, not per score).
        gemm.pointee.pack_a(rows, p.headSize, q, qRow, 1, qArea)
        if p.scale != 1 {
            let count = so_f32_gemm_packed_a_floats(gemm.pointee.mr, rows, p.headSize)
            for t in 0..<count { qArea[t] *= p.scale }
        }
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 + group)
            defer { r0 = r1 }
            var keys = 0
            for r in r0..<r1 {
                let rg = range(r)
                if rg.first < rg.limit { keys = max(keys, rg.limit) }
            }
            let yg = y + r0 * yRow
            if keys == 0 {
                for r in 0..<(r1 - r0) { (yg + r * yRow).update(repeating: 0, count: p.valueHeadSize) }
                continue
            }
            let sg = s + r0 * n   // the group's scores, rows `keys` apart
            var epilogue = F32GemmEpilogue()
            if let m = mask {
                if maskRowStride == 0 { epilogue.columnBias = m } else { epilogue.z = m + r0 * maskRowStride; epilogue.ldz = maskRowStride }
            }
            // the packed Q panels of rows r0 ..< r1 (r0 is a multiple of every kernel's row tile)
            let packedQ = F32PackedMatrix(packedStorageAt: qArea + r0 * p.headSize, m: r1 - r0, k: p.headSize,
                                          owner: ScratchPool.shared, gemm: gemm)
            f32PackedGemmPanels(packedQ, pb: packedK, n: keys, c: sg, ldc: keys, epilogue: epilogue)
            var anyMasked = false
            for r in r0..<r1 {
                let rg = range(r), row = sg + (r - r0) * keys
                if rg.first >= rg.limit { anyMasked = true; row.update(repeating: 0, count: keys) }
                else if rg.limit < keys { (row + rg.limit).update(repeating: -.infinity, count: keys - rg.limit) }
            }
            f32SoftmaxRows(sg, sg, rows: r1 - r0, n: keys, kind: .softmax)
            if anyMasked {
                for r in r0..<r1 where range(r).first >= range(r).limit { (sg + (r - r0) * keys).update(repeating: 0, count: keys) }
            }
            f32RowAGemmPanels(m: r1 - r0, a: sg, lda: keys, gemm: gemm, pb: packedV, k: keys, n: p.valueHeadSize,
                              c: yg, ldc: yRow, epilogue: .init(), panelK: n)
        }
    }
}

/// Rotary position embedding of one row of `dim` rotated values (the rest copied): pairs are
/// (x[t], x[t + dim/2]), or (x[2t], x[2t+1]) when interleaved, rotated by (cos[t], sin[t]).
@inline(__always)
func f32RotateRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, headSize: Int, dim: Int,
                  cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, interleaved: Bool) {
    let half = dim / 2
    if interleaved {
        for t in 0..<half {
            let a = x[2 * t], c = x[2 * t + 1]
            y[2 * t] = cos[t] * a - sin[t] * c
            y[2 * t + 1] = sin[t] * a + cos[t] * c
        }
    } else {
        for t in 0..<half {
            let a = x[t], c = x[t + half]
            y[t] = cos[t] * a - sin[t] * c
            y[t + half] = sin[t] * a + cos[t] * c
        }
    }
    if dim < headSize { (y + dim).update(from: x + dim, count: headSize - dim) }
}
