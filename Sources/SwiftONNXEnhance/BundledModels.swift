import Foundation
import SwiftONNX

/// The enhancement models trained for this library ship with it as package resources (the
/// `Models` folder of the SwiftONNXEnhance target): sr_x2.onnx, sr_x4.onnx, restore.onnx,
/// deblur.onnx, colorize.onnx.
extension EnhancePipeline {
    /// The file name of the bundled model for `task` (upscale: `scale` 2 or 4).
    ///
    /// - Parameters:
    ///   - task: The task.
    ///   - scale: Upscale only: 2 or 4; ignored for the other tasks.
    public static func bundledModelName(task: EnhanceTask, scale: Int = 2) -> String {
        switch task {
        case .upscale: return "sr_x\(scale).onnx"
        case .restore: return "restore.onnx"
        case .deblur: return "deblur.onnx"
        case .colorize: return "colorize.onnx"
        }
    }

    /// Where the bundled model for `task` is, from any working directory: the resource bundle that
    /// SwiftPM puts beside the executable (`<package>_SwiftONNXEnhance.resources` or `.bundle`),
    /// else the library's source checkout (a package built from source, a dependency's checkout).
    /// Throws `EnhanceError.io` naming every place looked in when none holds it, and
    /// `.invalidArgument` for an upscale scale other than 2 or 4.
    ///
    /// - Parameters:
    ///   - task: The task.
    ///   - scale: Upscale only: 2 or 4; ignored for the other tasks.
    public static func bundledModelURL(task: EnhanceTask, scale: Int = 2) throws(EnhanceError) -> URL {
        if task == .upscale && scale != 2 && scale != 4 {
            throw .invalidArgument("the bundled upscale models are x2 and x4, not x\(scale)")
        }
        let name = bundledModelName(task: task, scale: scale)
        let candidates = modelDirectories().map { $0.appendingPathComponent(name) }
        if let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0.path) }) { return found }
        throw .io(path: name, reason: "the bundled model was not found; looked in "
                  + candidates.map(\.path).joined(separator: ", "))
    }

    /// A pipeline for `task` on its bundled model, with the task's default configuration
    /// (`EnhanceConfiguration.defaults(for:scale:)`).
    ///
    /// - Parameters:
    ///   - task: The task, and so the bundled model.
    ///   - scale: Upscale only: 2 or 4; ignored for the other tasks.
    ///   - threads: Threads for each run of the model (`SessionOptions.threads`); by default two
    ///     where the machine has them (``EnhancePipeline/defaultThreads``).
    public convenience init(task: EnhanceTask, scale: Int = 2, threads: Int = EnhancePipeline.defaultThreads) throws(EnhanceError) {
        let url = try Self.bundledModelURL(task: task, scale: scale)
        try self.init(modelPath: url.path, configuration: .defaults(for: task, scale: scale), threads: threads)
    }

    /// Folders that may hold the bundled models, most specific first.
    private static func modelDirectories() -> [URL] {
        var dirs: [URL] = []
        let fm = FileManager.default
        // Resource bundles beside the executable (SwiftPM names them <package>_<target>).
        var places = [Bundle.main.bundleURL]
        if let r = Bundle.main.resourceURL, r != Bundle.main.bundleURL { places.append(r) }
        for place in places {
            let entries = (try? fm.contentsOfDirectory(atPath: place.path)) ?? []
            for e in entries.sorted() where e.hasSuffix("_SwiftONNXEnhance.resources") || e.hasSuffix("_SwiftONNXEnhance.bundle") {
                let b = place.appendingPathComponent(e)
                dirs.append(b.appendingPathComponent("Models"))
                dirs.append(b.appendingPathComponent("Contents/Resources/Models"))
            }
        }
        // The source checkout this library was built from.
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        dirs.append(source.appendingPathComponent("Models"))
        return dirs
    }
}
