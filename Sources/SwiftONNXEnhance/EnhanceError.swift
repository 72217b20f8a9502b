import Foundation
import SwiftONNX

/// What went wrong in an enhancement: each case says what and where, for a person to read. Every
/// public function of SwiftONNXEnhance throws this type (`throws(EnhanceError)`); errors of the
/// runtime underneath (a model that cannot be read or run) come as `.model`.
public enum EnhanceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is not a PNG or JPEG, or a PNG/JPEG variant this code cannot handle.
    case unsupportedFormat(path: String, reason: String)
    /// The decoder rejected the data: corrupt or truncated.
    case corruptFile(path: String, reason: String)
    /// The image has more pixels than the configured ceiling (checked from the header, before decoding).
    case imageTooLarge(path: String, width: Int, height: Int, ceiling: Int)
    /// The output path names the input file (the command line refuses to overwrite its input).
    case outputIsInput(path: String)
    /// The caller cancelled the work (a ``CancellationToken`` or the calling Task) before it finished.
    case cancelled
    /// The file could not be opened, read or written.
    case io(path: String, reason: String)
    /// The model does not follow the enhancement model contract (inputs, outputs, shapes).
    case modelContract(String)
    /// A setting or argument is out of range.
    case invalidArgument(String)
    /// A buffer of this many bytes could not be allocated.
    case outOfMemory(bytes: Int)
    /// The model could not be loaded or run; the runtime's error says why and where.
    case model(ONNXError)

    /// What went wrong and where, as a sentence for a person; for ``model(_:)`` the runtime error's
    /// own description. The same text as `localizedDescription`.
    public var description: String {
        switch self {
        case let .unsupportedFormat(path, reason): return "'\(path)': unsupported image format: \(reason)"
        case let .corruptFile(path, reason): return "'\(path)': corrupt or truncated image: \(reason)"
        case let .imageTooLarge(path, w, h, ceiling):
            let mp = Double(w) * Double(h) / 1e6
            return "'\(path)': image is \(w)x\(h) (\(String(format: "%.1f", mp)) megapixels), over the ceiling of "
                + "\(String(format: "%.1f", Double(ceiling) / 1e6)) megapixels"
        case let .outputIsInput(path): return "output '\(path)' is the input file; refusing to overwrite it"
        case .cancelled: return "cancelled"
        case let .io(path, reason): return "'\(path)': \(reason)"
        case let .modelContract(m): return "model: \(m)"
        case let .invalidArgument(m): return m
        case let .outOfMemory(bytes): return "cannot allocate \(bytes) bytes for the image"
        case let .model(e): return e.description
        }
    }
}

/// `error.localizedDescription` says what was wrong (Foundation's default names only the type and case number).
extension EnhanceError: LocalizedError {
    /// The error's ``description``, so that `localizedDescription` says what went wrong.
    public var errorDescription: String? { description }
}

extension EnhanceError {
    /// An error from inside the module as its public API throws it: EnhanceError as is, the
    /// runtime's ONNXError as `.model`.
    init(wrapping error: any Error) {
        if let e = error as? EnhanceError { self = e } else if let e = error as? ONNXError { self = .model(e) }
        else { self = .invalidArgument(String(describing: error)) }
    }
}

/// Runs `body`, throwing what it throws as an EnhanceError (see `init(wrapping:)`).
func typedEnhance<T>(_ body: () throws -> T) throws(EnhanceError) -> T {
    do { return try body() } catch { throw EnhanceError(wrapping: error) }
}
