import Foundation
import SwiftONNX

/// What went wrong in tokenizing or embedding text: each case says what and where, for a person to
/// read. Every public function of SwiftONNXText throws this type (`throws(TextError)`); errors of the
/// runtime underneath (a model that cannot be read or run) come as `.model`.
public enum TextError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file or folder that was needed does not exist (`what` says which: "tokenizer.json", "model").
    case fileNotFound(path: String, what: String)
    /// The file exists but could not be read.
    case io(path: String, reason: String)
    /// The tokenizer description is not valid JSON, or a field has the wrong type or is missing.
    case invalidTokenizer(path: String, reason: String)
    /// The tokenizer uses a component this module does not implement: `component` is "model",
    /// "normalizer", "pre_tokenizer", "post_processor", "truncation" or "padding", `type` its kind
    /// (for example a BPE or Unigram model).
    case unsupportedTokenizer(path: String, component: String, type: String)
    /// The model folder holds no `.onnx` file, or several without a `model.onnx` among them.
    case modelNotFound(directory: String, reason: String)
    /// The model does not take or give what a sentence encoder does (inputs `input_ids` and
    /// `attention_mask`, an output of shape [batch, tokens, hidden]).
    case modelContract(path: String, reason: String)
    /// A setting or argument is out of range.
    case invalidArgument(String)
    /// The model could not be loaded or run; the runtime's error says why and where.
    case model(ONNXError)

    /// What went wrong and where, as a sentence for a person; for ``model(_:)`` the runtime error's
    /// own description. The same text as `localizedDescription`.
    public var description: String {
        switch self {
        case let .fileNotFound(path, what): return "\(what) '\(path)' does not exist"
        case let .io(path, reason): return "'\(path)': \(reason)"
        case let .invalidTokenizer(path, reason): return "tokenizer '\(path)': \(reason)"
        case let .unsupportedTokenizer(path, component, type):
            return "tokenizer '\(path)': \(component) of type '\(type)' is not supported "
                + "(supported: a WordPiece model with BERT's normalizer and pre-tokenizer)"
        case let .modelNotFound(directory, reason): return "model folder '\(directory)': \(reason)"
        case let .modelContract(path, reason): return "model '\(path)': \(reason)"
        case let .invalidArgument(m): return m
        case let .model(e): return e.description
        }
    }
}

/// `error.localizedDescription` says what was wrong (Foundation's default names only the type and case number).
extension TextError: LocalizedError {
    /// The error's ``description``, so that `localizedDescription` says what went wrong.
    public var errorDescription: String? { description }
}
