/// Pooling of token vectors into one vector per text, and the vector arithmetic of embeddings.
public enum Pooling {
    /// The mean of the token vectors a text's attention mask keeps (1), for each text of a batch.
    ///
    /// - Parameters:
    ///   - hidden: The model's token vectors, [batch, tokens, dimension] row-major.
    ///   - mask: The attention masks, [batch, tokens] row-major.
    ///   - batch: The number of texts.
    ///   - tokens: The tokens per text (padding included).
    ///   - dimension: The length of each vector.
    /// - Returns: `batch` vectors of `dimension` values (all zero for a text with no token kept).
    public static func mean(hidden: UnsafeBufferPointer<Float>, mask: [Int], batch: Int, tokens: Int,
                            dimension: Int) -> [[Float]] {
        precondition(hidden.count == batch * tokens * dimension && mask.count == batch * tokens,
                     "mean pooling: sizes do not match")
        var out: [[Float]] = []
        out.reserveCapacity(batch)
        var sum = [Double](repeating: 0, count: dimension)
        for b in 0..<batch {
            for k in 0..<dimension { sum[k] = 0 }
            var kept = 0
            for t in 0..<tokens where mask[b * tokens + t] != 0 {
                kept += 1
                let row = (b * tokens + t) * dimension
                for k in 0..<dimension { sum[k] += Double(hidden[row + k]) }
            }
            // sentence-transformers divides by the count clamped to at least 1e-9
            let count = max(Double(kept), 1e-9)
            out.append(sum.map { Float($0 / count) })
        }
        return out
    }

    /// `v` divided by its Euclidean length (unchanged when the length is under 1e-12, as PyTorch's
    /// `normalize` clamps it).
    ///
    /// - Parameter v: The vector.
    public static func l2Normalized(_ v: [Float]) -> [Float] {
        let n = max(norm(v), 1e-12)
        return v.map { Float(Double($0) / n) }
    }

    /// The Euclidean length of `v`, accumulated in double precision.
    ///
    /// - Parameter v: The vector.
    public static func norm(_ v: [Float]) -> Double {
        v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }

    /// The cosine of the angle between `a` and `b`: their dot product over the product of their
    /// lengths (0 when either is all zeros). For L2-normalized vectors, their dot product.
    ///
    /// - Parameters:
    ///   - a: A vector.
    ///   - b: A vector of the same length.
    /// - Precondition: `a` and `b` have the same length.
    public static func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "cosine similarity of vectors of lengths \(a.count) and \(b.count)")
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in 0..<a.count {
            dot += Double(a[i]) * Double(b[i])
            na += Double(a[i]) * Double(a[i])
            nb += Double(b[i]) * Double(b[i])
        }
        let denominator = (na * nb).squareRoot()
        return denominator > 0 ? Float(dot / denominator) : 0
    }
}
