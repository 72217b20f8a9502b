/// Takes the large `raw_data` fields of a model file's main-graph initializers out of the bytes
/// protobuf-c unpacks, so the weights are not copied: protobuf-c copies every bytes field it
/// unpacks, which for a 25 MB model is 25 MB of fresh memory (page faults) and a memcpy, while the
/// file is already mapped. The rest of the message is copied as it is (a few kilobytes to a
/// few megabytes), with the length prefixes of the messages that lost a field re-encoded.
///
/// Only the protobuf wire format is read here: ModelProto.graph (field 7) -> GraphProto.initializer
/// (field 5, repeated, in order) -> TensorProto.raw_data (field 9). Anything unusual (a group wire
/// type, a malformed varint or length, a second graph field, a tensor with two raw_data fields)
/// gives nil, and the loader unpacks the file as it is, so protobuf-c remains the judge of
/// what is valid.
struct RawDataSplit {
    /// The ModelProto without the split-out raw_data fields.
    var message: [UInt8]
    /// Main-graph initializer index -> the byte range of its raw_data in the original buffer.
    var slices: [Int: Range<Int>]

    /// nil when there is nothing worth splitting (no raw_data of `minBytes` or more) or the bytes
    /// are not plain protobuf wire format.
    static func split(_ buf: UnsafeRawBufferPointer, minBytes: Int = 4096) -> RawDataSplit? {
        guard buf.count > 0 else { return nil }
        var reader = WireReader(buf)
        var slices: [Int: Range<Int>] = [:]
        var out: [UInt8] = []
        var sawGraph = false
        var copiedFrom = 0   // verbatim bytes not yet copied start here
        while !reader.atEnd {
            let fieldStart = reader.offset
            guard let (field, wire) = reader.tag() else { return nil }
            if field == 7 && wire == 2 {
                guard !sawGraph, let body = reader.lengthDelimited() else { return nil }
                sawGraph = true
                guard let graph = splitGraph(buf, body, minBytes: minBytes, slices: &slices) else { return nil }
                if slices.isEmpty { continue }   // nothing split: this field stays verbatim
                out.reserveCapacity(buf.count - slices.values.reduce(0) { $0 + $1.count } + 64)
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[copiedFrom..<fieldStart]))
                appendVarint(&out, UInt64(7 << 3 | 2))
                appendVarint(&out, UInt64(graph.count))
                out.append(contentsOf: graph)
                copiedFrom = reader.offset
            } else {
                guard reader.skip(wire) else { return nil }
            }
        }
        if slices.isEmpty { return nil }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[copiedFrom..<buf.count]))
        return RawDataSplit(message: out, slices: slices)
    }

    /// The GraphProto in `range` with its initializers' large raw_data taken out.
    private static func splitGraph(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, minBytes: Int,
                                   slices: inout [Int: Range<Int>]) -> [UInt8]? {
        var reader = WireReader(buf, range)
        var out: [UInt8] = []
        out.reserveCapacity(min(range.count, 1 << 20))
        var copiedFrom = range.lowerBound
        var index = 0
        while !reader.atEnd {
            let fieldStart = reader.offset
            guard let (field, wire) = reader.tag() else { return nil }
            guard field == 5 && wire == 2 else {
                guard reader.skip(wire) else { return nil }
                continue
            }
            guard let body = reader.lengthDelimited() else { return nil }
            defer { index += 1 }
            guard let (tensor, raw) = splitTensor(buf, body, minBytes: minBytes) else { continue }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[copiedFrom..<fieldStart]))
            appendVarint(&out, UInt64(5 << 3 | 2))
            appendVarint(&out, UInt64(tensor.count))
            out.append(contentsOf: tensor)
            copiedFrom = reader.offset
            slices[index] = raw
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[copiedFrom..<range.upperBound]))
        return out
    }

    /// The TensorProto in `range` without its raw_data, and where that was; nil to keep it as it is.
    private static func splitTensor(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>,
                                    minBytes: Int) -> ([UInt8], Range<Int>)? {
        var reader = WireReader(buf, range)
        var raw: (field: Range<Int>, data: Range<Int>)? = nil
        while !reader.atEnd {
            let fieldStart = reader.offset
            guard let (field, wire) = reader.tag() else { return nil }
            if field == 9 && wire == 2 {
                guard raw == nil, let data = reader.lengthDelimited() else { return nil }
                raw = (fieldStart..<reader.offset, data)
            } else {
                guard reader.skip(wire) else { return nil }
            }
        }
        guard let raw, raw.data.count >= minBytes else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(range.count - raw.field.count)
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[range.lowerBound..<raw.field.lowerBound]))
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[raw.field.upperBound..<range.upperBound]))
        return (out, raw.data)
    }
}

private func appendVarint(_ out: inout [UInt8], _ value: UInt64) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

/// Reads protobuf wire format within a range of a buffer; every read is bounds-checked.
struct WireReader {
    let buf: UnsafeRawBufferPointer
    let end: Int
    var offset: Int

    init(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>? = nil) {
        self.buf = buf
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? buf.count
    }

    var atEnd: Bool { offset >= end }

    mutating func varint() -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end && shift < 64 {
            let b = buf[offset]
            offset += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
        return nil
    }

    /// (field number, wire type); nil for field 0 or a malformed tag.
    mutating func tag() -> (Int, Int)? {
        guard let t = varint(), t >> 3 > 0, t >> 3 <= UInt64(Int32.max) else { return nil }
        return (Int(t >> 3), Int(t & 7))
    }

    /// The body of a length-delimited field, which is then skipped.
    mutating func lengthDelimited() -> Range<Int>? {
        guard let n = varint(), n <= UInt64(end - offset) else { return nil }
        let r = offset..<(offset + Int(n))
        offset += Int(n)
        return r
    }

    /// Skips the value of a field of wire type `wire`; false for groups (3, 4), unknown types, or truncation.
    mutating func skip(_ wire: Int) -> Bool {
        switch wire {
        case 0: return varint() != nil
        case 1: guard end - offset >= 8 else { return false }; offset += 8; return true
        case 2: return lengthDelimited() != nil
        case 5: guard end - offset >= 4 else { return false }; offset += 4; return true
        default: return false
        }
    }
}
