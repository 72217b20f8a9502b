import ArgumentParser
import Foundation
import SwiftONNX

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line error for the user; `swift-onnx` prints it and exits with status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs `body`, turning any error into "error: <message>" on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Reads an input the model declares as `kind`: a tensor from a .npy or TensorProto .pb file, a
/// sequence from a SequenceProto .pb file, an optional from an OptionalProto .pb file.
func readInputFile(_ path: String, as info: ValueInfo) throws -> Tensor {
    guard info.kind != .tensor else { return try readTensorFile(path) }
    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("input file '\(path)' does not exist") }
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read input file '\(path)'") }
    switch info.kind {
    case .sequence: return try TensorProto.decodeSequence([UInt8](data), elementType: info.type, path: path).value
    case .optional: return try TensorProto.decodeOptional([UInt8](data), elementType: info.type, path: path).value
    default: throw CLIError("input '\(info.name)' is a \(info.kind) value, which the command line cannot read")
    }
}

/// Reads a tensor from a .npy file or a serialized TensorProto (.pb).
func readTensorFile(_ path: String) throws -> Tensor {
    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("input file '\(path)' does not exist") }
    let lower = path.lowercased()
    if lower.hasSuffix(".npy") { return try NPY.read(path: path) }
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read input file '\(path)'") }
    let bytes = [UInt8](data)
    if bytes.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) { return try NPY.decode(bytes, path: path) }
    if lower.hasSuffix(".pb") || lower.hasSuffix(".tensor") || lower.hasSuffix(".tpb") {
        return try TensorProto.decode(bytes, path: path).tensor
    }
    throw CLIError("input file '\(path)': expected a .npy file or a serialized TensorProto .pb file")
}

/// Parses NAME=VALUE, splitting at the first '=' (paths may hold '=', input names practically never do).
/// `form` is how the option's help spells it: NAME=FILE when the value is a file, else NAME=VALUE.
func splitAssignment(_ s: String, what: String, form: String = "NAME=VALUE") throws -> (String, String) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
        throw CLIError("\(what) '\(s)' must look like \(form)")
    }
    return (String(s[..<eq]), String(s[s.index(after: eq)...]))
}

/// A file name for an output: every character outside [A-Za-z0-9._-] becomes '_'.
func safeFileName(_ name: String) -> String {
    let mapped = String(name.unicodeScalars.map { c -> Character in
        let ok = (c >= "A" && c <= "Z") || (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
        return ok ? Character(c) : "_"
    })
    if mapped.isEmpty || mapped == "." || mapped == ".." { return "_" + mapped }
    return mapped
}

func describe(_ info: ValueInfo) -> String {
    let t = info.type.map { "\($0)" } ?? "?"
    if info.kind != .tensor { return "\(info.name): \(info.kind) of \(t)" }
    let s = info.shape.map { shapeText($0) } ?? "(unknown rank)"
    return "\(info.name): \(t) \(s)"
}

struct SwiftONNXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-onnx",
        abstract: "Run and inspect ONNX models with SwiftONNX.",
        version: swiftONNXVersion,
        subcommands: [Run.self, Inspect.self, Identify.self, Enhance.self, Embed.self]
    )

    /// argument-parser's `main()` with one difference: its messages start with "error: " (lowercase), as
    /// the ones `reportingErrors` prints do. Help and --version go to stdout with status 0; usage errors
    /// keep status 64 and their usage lines, other errors status 1 (argument-parser's codes).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let status = exitCode(for: error)
            var text = fullMessage(for: error)
            if status == .success {
                if !text.isEmpty { print(text) }
            } else {
                let upper = "Error: "
                if text.hasPrefix(upper) { text = "error: " + text.dropFirst(upper.count) }
                if !text.isEmpty {
                    if !text.hasSuffix("\n") { text += "\n" }
                    FileHandle.standardError.write(Data(text.utf8))
                }
            }
            Foundation.exit(status.rawValue)
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case npy, pb
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on tensors read from .npy or TensorProto .pb files.",
        discussion: "Each output is written to DIR/<output name>.npy (or .pb), with every character of the name "
            + "outside [A-Za-z0-9._-] replaced by '_'. TensorProto .pb files carry types .npy cannot "
            + "(bfloat16, strings, float8...). An input the model declares as a sequence is read from a "
            + "SequenceProto .pb file, an optional from an OptionalProto .pb file; a sequence output is written "
            + "as a folder DIR/<output name>/ of its tensors (0.npy, 1.npy, ...), an optional output as its "
            + "element (an empty one writes nothing)."
    )

    @Argument(help: "The .onnx model file.")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("An input as NAME=FILE (.npy or .pb); repeat for each input.", valueName: "NAME=FILE"))
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: ArgumentHelp("Folder for the outputs (created if missing).", valueName: "DIR"))
    var outputDir: String

    @Option(name: .customLong("output-format"), help: "npy or pb.")
    var outputFormat: OutputFormat = .npy

    @Option(help: "Threads for the kernels.")
    var threads: Int = 1

    @Option(name: .customLong("memory-limit"),
            help: ArgumentHelp("Most memory the model may take for weights and tensors, in bytes or with K, M, G (default: 3/4 of physical memory).", valueName: "SIZE"))
    var memoryLimit: String?

    func run() throws {
        try reportingErrors {
            guard threads >= 1 else { throw CLIError("--threads must be at least 1") }
            var options = SessionOptions(threads: threads)
            if let memoryLimit { options.memoryLimit = try parseByteSize(memoryLimit, what: "--memory-limit") }
            var files: [(name: String, file: String)] = []
            for spec in inputs {
                let (name, file) = try splitAssignment(spec, what: "--input", form: "NAME=FILE")
                guard !files.contains(where: { $0.name == name }) else { throw CLIError("input '\(name)' is given twice") }
                files.append((name, file))
            }
            // Checked before the model loads; created (with the folders missing above it) only once
            // there are outputs to write.
            try OutputFolders.checkCreatable(outputDir, option: "--output-dir")
            let session = try InferenceSession(path: model, options: options)
            var feeds: [String: Tensor] = [:]
            for (name, file) in files {
                guard let info = session.input(named: name) else { throw ONNXError.unknownInput(name) }
                feeds[name] = try readInputFile(file, as: info)
            }
            let results = try session.run(feeds)
            try OutputFolders.create(outputDir, option: "--output-dir")
            var used = Set<String>()
            for info in session.outputs {
                guard let t = results[info.name] else { continue }
                var base = safeFileName(info.name)
                // Two names may map to one file name: keep both.
                var k = 1
                while used.contains(base) { k += 1; base = safeFileName(info.name) + "_\(k)" }
                used.insert(base)
                // An optional output is its element, or nothing; a sequence becomes a folder of its
                // tensors, 0.npy, 1.npy, ...
                var value = t
                if t.isOptional {
                    guard let e = t.optionalElement else { print("\(info.name): empty optional (no file)"); continue }
                    value = e
                }
                if let elements = value.sequenceElements {
                    let dir = (outputDir as NSString).appendingPathComponent(base)
                    try OutputFolders.create(dir, option: "--output-dir")
                    for (i, e) in elements.enumerated() {
                        try write(e, name: "\(info.name)[\(i)]", to: (dir as NSString).appendingPathComponent("\(i).\(outputFormat.rawValue)"))
                    }
                    print("\(info.name): sequence of \(elements.count) \(value.dtype) tensor\(elements.count == 1 ? "" : "s") -> \(dir)/")
                    continue
                }
                let path = (outputDir as NSString).appendingPathComponent(base + "." + outputFormat.rawValue)
                try write(value, name: info.name, to: path)
                print("\(info.name): \(value.dtype) \(shapeText(value.shape)) -> \(path)")
            }
        }
    }
}

extension Run {
    func write(_ t: Tensor, name: String, to path: String) throws {
        switch outputFormat {
        case .npy:
            try NPY.write(t, path: path)
        case .pb:
            let bytes = try TensorProto.encode(t, name: name)
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                throw CLIError("cannot write '\(path)'")
            }
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's metadata, opsets, inputs, outputs and operator histogram.",
        discussion: "Works on models with operators SwiftONNX cannot run (it then lists them)."
    )

    @Argument(help: "The .onnx model file.")
    var model: String

    func run() throws {
        try reportingErrors {
            // The file as written (works even when the model cannot be planned).
            let summary = try ModelSummary(path: model)
            var sessionError: String?
            var session: InferenceSession?
            do {
                session = try InferenceSession(path: model)
            } catch {
                sessionError = "\(error)"
            }
            let m = summary.metadata
            print("model: \(model)")
            print("ir_version: \(m.irVersion)")
            let producer = [m.producerName, m.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
            print("producer: \(producer.isEmpty ? "(none)" : producer)")
            if !m.domain.isEmpty { print("domain: \(m.domain)") }
            if m.modelVersion != 0 { print("model_version: \(m.modelVersion)") }
            let opsets = m.opsets.sorted { $0.key < $1.key }
                .map { "\($0.key.isEmpty ? "ai.onnx" : $0.key) \($0.value)" }.joined(separator: ", ")
            print("opsets: \(opsets)")
            print("inputs:")
            for i in session?.inputs ?? summary.inputs { print("  " + describe(i)) }
            print("outputs:")
            for o in session?.outputs ?? summary.outputs { print("  " + describe(o)) }
            print("initializers: \(summary.initializerCount) (\(summary.parameterCount) elements)")
            func histogram(_ h: [String: Int]) {
                for (op, n) in h.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
                    print("  \(op) \(n)")
                }
            }
            print("nodes: \(m.nodeCount)")
            histogram(m.opHistogram)
            if let s = session, s.metadata.opHistogram != m.opHistogram {
                print("nodes after optimization: \(s.metadata.nodeCount)")
                histogram(s.metadata.opHistogram)
            }
            if !summary.unsupportedOperators.isEmpty {
                print("unsupported operators: \(summary.unsupportedOperators.joined(separator: ", "))")
            }
            if let e = sessionError {
                print("runnable: no (\(e))")
            } else {
                print("runnable: yes")
            }
        }
    }
}

SwiftONNXCommand.main()

/// "4096", "512K", "300M", "2G" (powers of 1024) as bytes.
func parseByteSize(_ text: String, what: String) throws -> Int {
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
    var digits = text.uppercased()
    var scale = 1
    if digits.hasSuffix("B") { digits.removeLast() }
    if let last = digits.last, let u = units[last] { scale = u; digits.removeLast() }
    guard let n = Int(digits), n > 0 else { throw CLIError("\(what) '\(text)' is not a size (bytes, or a number with K, M, G or T)") }
    let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
    guard !overflow else { throw CLIError("\(what) '\(text)' is too large") }
    return bytes
}

/// "[1, 3, \"h\", \"w\"]" for a declared shape, "[1, 3, 224, 224]" for a tensor's.
func shapeText(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }
func shapeText(_ dims: [Int]) -> String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
