import ArgumentParser
import Foundation
import SwiftONNX

/// `swift-onnx identify FILE...`: tells the content type of files with Google's Magika model
/// (standard_v3_3, from the pinned magika wheel), entirely on this machine.
struct Identify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Identify the content type of files with the Magika model (runs locally).",
        discussion: """
            By default the model and its config are Models/cache/\(modelFile) and \
            Models/cache/\(configFile), looked for in this order under: $\(ModelLocation.environmentVariable) \
            (a folder laid out like the repository's Models/), the repository this executable was built \
            in, and the current folder. scripts/setup.sh fetches them.
            """)

    static let modelFile = "magika__standard_v3_3.onnx"
    static let configFile = "magika__standard_v3_3.config.min.json"

    @Option(name: .long, help: ArgumentHelp("The Magika model (model.onnx of standard_v3_3; default: found as described above).", valueName: "PATH"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("The model's config.min.json (labels and feature sizes; default: found as described above).", valueName: "PATH"))
    var config: String?

    @Option(name: .long, help: "How many candidate labels to show per file.")
    var top: Int = 3

    @Argument(help: "Files to identify.")
    var files: [String]

    struct MagikaConfig: Decodable {
        let beg_size: Int
        let mid_size: Int
        let end_size: Int
        let padding_token: Int
        let block_size: Int
        let min_file_size_for_dl: Int
        let medium_confidence_threshold: Double
        let target_labels_space: [String]
        let thresholds: [String: Double]
        let overwrite_map: [String: String]
    }

    func run() throws {
        try reportingErrors { try identify() }
    }

    private func identify() throws {
        let modelPath = try ModelLocation.resolve(explicit: model, option: "--model",
                                                  relative: "cache/" + Self.modelFile, what: "Magika model")
        let configPath = try ModelLocation.resolve(explicit: config, option: "--config",
                                                   relative: "cache/" + Self.configFile, what: "Magika config")
        let cfg: MagikaConfig
        do {
            cfg = try JSONDecoder().decode(MagikaConfig.self, from: Data(contentsOf: URL(fileURLWithPath: configPath)))
        } catch {
            throw CLIError("cannot read the Magika config '\(configPath)': \(error.localizedDescription)")
        }
        guard cfg.mid_size == 0 else { throw CLIError("Magika configs with mid_size > 0 are not supported") }
        let session = try InferenceSession(path: modelPath)
        guard let input = session.inputs.first, let output = session.outputs.first else {
            throw CLIError("'\(modelPath)' does not look like a Magika model")
        }
        let width = cfg.beg_size + cfg.end_size
        for file in files {
            guard !ModelLocation.isDirectory(file) else { throw CLIError("'\(file)' is a folder") }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CLIError(FileManager.default.fileExists(atPath: file) ? "cannot read '\(file)'" : "'\(file)' does not exist")
            }
            let bytes = [UInt8](data)
            if bytes.count < cfg.min_file_size_for_dl {
                print("\(file): \(bytes.isEmpty ? "empty" : "too small to tell (\(bytes.count) bytes)")")
                continue
            }
            let features = Self.features(bytes, cfg)
            precondition(features.count == width)
            let x = try Tensor(shape: [1, width], scalars: features)
            let probs: [Float] = try session.run([input.name: x])[output.name]!.scalars()
            let ranked = probs.enumerated().sorted { $0.element > $1.element }.prefix(max(1, top))
            let best = ranked.first!
            var label = cfg.target_labels_space[best.offset]
            let threshold = cfg.thresholds[label] ?? cfg.medium_confidence_threshold
            if Double(best.element) < threshold { label = "unknown (low confidence: \(label)?)" }
            label = cfg.overwrite_map[label] ?? label
            let others = ranked.map { "\(cfg.target_labels_space[$0.offset]) \(String(format: "%.3f", $0.element))" }
            print("\(file): \(label)  [\(others.joined(separator: ", "))]")
        }
    }

    /// Magika's features: the first `beg_size` bytes after leading whitespace and the last `end_size`
    /// bytes before trailing whitespace, each taken from a `block_size` window and padded with the padding token.
    static func features(_ bytes: [UInt8], _ cfg: MagikaConfig) -> [Int32] {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }
        let head = bytes.prefix(cfg.block_size)
        let tail = bytes.suffix(cfg.block_size)
        let begin = head.drop(while: isSpace).prefix(cfg.beg_size)
        var endPart = Array(tail)
        while let l = endPart.last, isSpace(l) { endPart.removeLast() }
        let end = endPart.suffix(cfg.end_size)
        let pad = Int32(cfg.padding_token)
        var out = begin.map { Int32($0) }
        out += [Int32](repeating: pad, count: cfg.beg_size - begin.count)
        out += [Int32](repeating: pad, count: cfg.end_size - end.count)
        out += end.map { Int32($0) }
        return out
    }
}
