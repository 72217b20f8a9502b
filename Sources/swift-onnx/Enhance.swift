import ArgumentParser
import Dispatch
import Foundation
import SwiftONNX
import SwiftONNXEnhance

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swift-onnx enhance TASK IN OUT`: one subcommand per task, each with its own help and options;
/// the arguments and options every task takes, and the work, are `Enhance.Common`.
struct Enhance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Enhance a photo: upscale, restore, deblur or colorize (PNG or JPEG).",
        discussion: """
            Each task is a subcommand: swift-onnx enhance TASK IN OUT [options]; \
            'swift-onnx enhance TASK --help' shows a task's options. The models \
            {sr_x2,sr_x4,restore,deblur,colorize}.onnx ship with SwiftONNXEnhance (from any folder); \
            --models-dir or $SWIFTONNX_ENHANCE_MODELS names another folder of them, --model one file.
            """,
        subcommands: [Upscale.self, Restore.self, Deblur.self, Colorize.self]
    )

    /// A task's help: its own paragraph, then what all tasks share (`tiled`: the task runs in tiles).
    static func discussion(_ task: String, model: String, tiled: Bool = true) -> String {
        let tiles = tiled ? "The image is processed in overlapping tiles blended with feathered edges, so memory "
            + "stays bounded; Ctrl-C cancels between tiles. " : ""
        return task + "\n\n" + """
            IN is a PNG or JPEG (EXIF orientation applied); an image over --max-megapixels is refused from \
            its header, before any pixel memory. \(tiles)OUT's folder must exist; OUT is written through a \
            temporary file there and renamed, never over IN; its format follows its extension (.png keeps \
            the input's bit depth and alpha; .jpg/.jpeg is 8-bit without alpha). The model is \(model) in \
            --models-dir, else $SWIFTONNX_ENHANCE_MODELS, else the one that ships with the library \
            (found from any folder); --model overrides.
            """
    }

    struct Upscale: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upscale a photo 2x or 4x (PNG or JPEG).",
            discussion: discussion("""
                Makes the image --scale times wider and taller with a model trained on bicubic-downscaled \
                photographs; an alpha channel is upscaled bicubic.
                """, model: "sr_x2.onnx (--scale 2) or sr_x4.onnx (--scale 4)"))

        @Option(help: "Upscale factor: 2 or 4.")
        var scale: Int = 2

        @OptionGroup var common: Common

        func run() throws { try common.perform(.upscale, scale: scale) }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove noise and JPEG artifacts from a photo (PNG or JPEG).",
            discussion: discussion("""
                Removes Gaussian-like noise and JPEG compression artifacts (blocks, ringing); the output \
                has the input's size.
                """, model: "restore.onnx"))

        @OptionGroup var common: Common

        func run() throws { try common.perform(.restore) }
    }

    struct Deblur: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sharpen a blurred photo (PNG or JPEG).",
            discussion: discussion("""
                Undoes defocus-like blur, tuned for a blur of about Pillow's GaussianBlur(2): milder blur \
                gains less, and a sharp photo is left nearly as it was. The output has the input's size. \
                Tiles read 48 pixels of overlap by default (the model's output depends on context that \
                far away).
                """, model: "deblur.onnx"))

        @OptionGroup var common: Common

        func run() throws { try common.perform(.deblur) }
    }

    struct Colorize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Colorize a grayscale photo (PNG or JPEG).",
            discussion: discussion("""
                Predicts colour for the photo's lightness. The model runs once on the lightness scaled \
                down to a long side of --colorize-side pixels, so the whole scene is its context; the \
                predicted chroma is scaled up and joined with the full-size lightness. A colour photo is \
                colorized from its lightness alone. --tile and --overlap apply only with \
                --colorize-side 0 (the full size, in tiles).
                """, model: "colorize.onnx", tiled: false))

        @Option(name: .customLong("colorize-side"),
                help: "Long side of the working size the model sees (0: full size, in tiles; not advised: each tile gets its own colour context).")
        var colorizeSide: Int = 512

        @OptionGroup var common: Common

        func run() throws { try common.perform(.colorize, colorizeSide: colorizeSide) }
    }

    /// The arguments and options every task takes.
    struct Common: ParsableArguments {
        @Argument(help: ArgumentHelp("Input image (PNG or JPEG).", valueName: "in"))
        var input: String

        @Argument(help: ArgumentHelp("Output image (.png, .jpg or .jpeg).", valueName: "out"))
        var output: String

        @Option(help: "Tile size in input pixels (0: the whole image at once; default 640 for upscale, 512 for the others).")
        var tile: Int?

        @Option(help: "Overlap in input pixels each tile reads beyond its edges (default 24 for upscale, 32 for restore and colorize, 48 for deblur).")
        var overlap: Int?

        @Option(help: ArgumentHelp("The model file (default: the task's model in the models folder).", valueName: "PATH"))
        var model: String?

        @Option(name: .customLong("models-dir"), help: ArgumentHelp("Folder of the task models.", valueName: "DIR"))
        var modelsDir: String?

        @Option(name: .customLong("max-megapixels"), help: "Reject input images with more pixels than this.")
        var maxMegapixels: Double = 64

        @Option(help: "Threads for the kernels (default: 2, or 1 on a single-core machine).")
        var threads: Int = EnhancePipeline.defaultThreads

        @Option(name: .customLong("jpeg-quality"), help: "JPEG output quality, 1-100.")
        var jpegQuality: Int = 95

        @Flag(help: "No progress bar (the summary line is still printed).")
        var quiet = false

        /// Runs `task` on IN and writes OUT, then prints the summary line.
        func perform(_ task: EnhanceTask, scale: Int = 1, colorizeSide: Int = 512) throws {
            try reportingErrors {
                try enhance(task, scale: scale, colorizeSide: colorizeSide)
            }
        }

        private func enhance(_ task: EnhanceTask, scale s: Int, colorizeSide: Int) throws {
            let start = Date()
            guard threads >= 1 else { throw CLIError("--threads must be at least 1") }
            guard (1...100).contains(jpegQuality) else { throw CLIError("--jpeg-quality must be 1...100") }
            guard maxMegapixels > 0 else { throw CLIError("--max-megapixels must be positive") }
            guard tile ?? 0 >= 0, overlap ?? 0 >= 0 else { throw CLIError("--tile and --overlap must not be negative") }
            if task == .upscale {
                guard s == 2 || s == 4 else { throw CLIError("--scale must be 2 or 4, not \(s)") }
            }
            guard let format = ImageFormat(pathExtension: output) else {
                throw EnhanceError.unsupportedFormat(path: output, reason: "cannot tell the output format from the name; use .png, .jpg or .jpeg")
            }
            if Enhance.sameFile(input, output) { throw EnhanceError.outputIsInput(path: output) }
            try OutputFolders.checkFileTarget(output)

            var config = EnhanceConfiguration.defaults(for: task, scale: s)
            if let tile { config.tileSize = tile }
            if let overlap { config.overlap = overlap }
            config.pixelCeiling = Int((maxMegapixels * 1e6).rounded())
            config.colorWorkingSide = colorizeSide

            let modelPath = try Enhance.modelPath(task: task, scale: s, model: model, modelsDir: modelsDir)

            // The header first: size, format and ceiling are checked before any pixel memory.
            let image = try ImageFile.read(path: input, pixelCeiling: config.pixelCeiling)
            let pipeline = try EnhancePipeline(modelPath: modelPath, configuration: config, threads: threads)

            // Ctrl-C cancels between tiles (and the temporary file is removed).
            let token = CancellationToken()
            signal(SIGINT, SIG_IGN)
            let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            sigint.setEventHandler { token.cancel() }
            sigint.resume()
            defer { sigint.cancel(); signal(SIGINT, SIG_DFL) }

            let bar = (!quiet && isatty(STDERR_FILENO) != 0) ? ProgressBar() : nil
            let result: ImageBuffer
            do {
                result = try pipeline.process(image, progress: { bar?.update($0) }, cancellation: token)
            } catch {
                bar?.finish()
                throw error
            }
            bar?.finish()

            let tmp = Enhance.temporaryPath(for: output)
            do {
                try ImageFile.write(result, path: tmp, format: format, jpegQuality: jpegQuality, threads: threads)
                guard rename(tmp, output) == 0 else {
                    throw EnhanceError.io(path: output, reason: "cannot rename the temporary file into place: \(String(cString: strerror(errno)))")
                }
            } catch EnhanceError.io(let path, let reason) where path == tmp {
                unlink(tmp)
                throw EnhanceError.io(path: output, reason: "cannot write its temporary file '\(tmp)': \(reason)")
            } catch {
                unlink(tmp)
                throw error
            }
            let secs = Date().timeIntervalSince(start)
            // The summary line, with or without --quiet (which hides only the progress bar).
            print("\(output): \(result.width)x\(result.height) (\(task.rawValue)\(s > 1 ? " x\(s)" : ""), "
                  + "\(pipeline.tileCount(width: image.width, height: image.height)) tiles, \(String(format: "%.1f", secs)) s)")
        }
    }

    /// The model file to run: `--model` when given, else the task's model in the models folder
    /// (`--models-dir`, else `$SWIFTONNX_ENHANCE_MODELS`), else the bundled one.
    /// A missing or unusable file or folder is a `CLIError` (status 1) that says which option sets it.
    static func modelPath(task: EnhanceTask, scale: Int, model: String?, modelsDir: String?) throws -> String {
        if let model {
            guard !ModelLocation.isDirectory(model) else { throw CLIError("--model '\(model)' is a folder, not a model file") }
            guard ModelLocation.isFile(model) else { throw CLIError("--model '\(model)' does not exist") }
            return model
        }
        let environment = ProcessInfo.processInfo.environment["SWIFTONNX_ENHANCE_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
        let dir: String, origin: String
        if let modelsDir {
            (dir, origin) = (modelsDir, "--models-dir")
        } else if let environment {
            (dir, origin) = (environment, "$SWIFTONNX_ENHANCE_MODELS")
        } else {
            do {
                return try EnhancePipeline.bundledModelURL(task: task, scale: scale).path
            } catch {
                throw CLIError("\(error); use --models-dir DIR or --model PATH")
            }
        }
        let hint = "use --models-dir DIR or --model PATH"
        guard ModelLocation.isDirectory(dir) else {
            let what = FileManager.default.fileExists(atPath: dir) ? "is not a folder" : "does not exist"
            throw CLIError("models folder '\(dir)' (\(origin)) \(what); \(hint)")
        }
        let path = EnhanceConfiguration.defaultModelPath(task: task, scale: scale, directory: dir)
        guard ModelLocation.isFile(path) else {
            throw CLIError("model '\(path)' not found in the models folder '\(dir)' (\(origin)); \(hint)")
        }
        return path
    }

    /// Whether two paths name the same file (same device and inode, or the same resolved path).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        let ra = URL(fileURLWithPath: a).standardizedFileURL.resolvingSymlinksInPath().path
        let rb = URL(fileURLWithPath: b).standardizedFileURL.resolvingSymlinksInPath().path
        return ra == rb
    }

    /// A hidden temporary file beside `path` (same folder, so the rename is atomic).
    static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let name = ".\(url.lastPathComponent).tmp-\(getpid())"
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }
}

/// A one-line progress bar on stderr, redrawn in place.
final class ProgressBar {
    private var lastDrawn = -1
    private let width = 30

    func update(_ p: EnhanceProgress) {
        let filled = p.total == 0 ? width : p.completed * width / p.total
        let percent = Int(p.fraction * 100)
        guard percent != lastDrawn || p.completed == p.total else { return }
        lastDrawn = percent
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            + "] \(p.completed)/\(p.total) tiles \(percent)%"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}
