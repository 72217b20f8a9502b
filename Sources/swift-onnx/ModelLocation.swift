import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds the files a command uses by default (models and their configs) without depending on the
/// folder the command was started from. A default is a path inside a folder laid out like the
/// repository's `Models/`; such folders are tried in this order:
/// 1. `$SWIFTONNX_MODELS_DIR`;
/// 2. the repository the executable was built in (its `.build/...` folder lies inside it);
/// 3. `Models/` in the current folder.
/// An option naming the file explicitly wins over all of them.
enum ModelLocation {
    /// The environment variable that names a folder laid out like the repository's `Models/`.
    static let environmentVariable = "SWIFTONNX_MODELS_DIR"

    /// A folder standing for `Models/`, and why it is tried (for error messages).
    struct ModelsFolder {
        let path: String
        let origin: String
    }

    /// The folders tried for a default, in order, without repeats.
    static func modelsFolders() -> [ModelsFolder] {
        var folders: [ModelsFolder] = []
        if let dir = ProcessInfo.processInfo.environment[environmentVariable], !dir.isEmpty {
            folders.append(ModelsFolder(path: dir, origin: "$\(environmentVariable)"))
        }
        if let repo = repositoryOfExecutable() {
            folders.append(ModelsFolder(path: (repo as NSString).appendingPathComponent("Models"),
                                        origin: "the repository of this executable"))
        }
        let here = FileManager.default.currentDirectoryPath
        folders.append(ModelsFolder(path: (here as NSString).appendingPathComponent("Models"), origin: "the current folder"))
        var seen = Set<String>()
        return folders.filter { seen.insert(($0.path as NSString).standardizingPath).inserted }
    }

    /// The file to use: `explicit` (the value of `option`) when given, else the first existing
    /// `relative` (a path inside `Models/`) under `modelsFolders()`. Throws a `CLIError` naming every
    /// path tried and how to set it when there is none.
    static func resolve(explicit: String?, option: String, relative: String, what: String) throws -> String {
        if let explicit {
            guard isFile(explicit) else {
                throw CLIError(isDirectory(explicit) ? "\(option) '\(explicit)' is a folder, not the \(what)"
                                                     : "\(option) '\(explicit)' does not exist")
            }
            return explicit
        }
        let tried = modelsFolders().map { (path: ($0.path as NSString).appendingPathComponent(relative), origin: $0.origin) }
        if let found = tried.first(where: { isFile($0.path) }) { return found.path }
        var message = "the \(what) was not found; tried:\n"
        for t in tried { message += "  \(t.path)  (\(t.origin))\n" }
        message += "give its path with \(option) PATH, or set \(environmentVariable) to a folder laid out like the "
            + "repository's Models/ (scripts/setup.sh fetches the models into Models/cache)"
        throw CLIError(message)
    }

    /// The repository holding this executable: from `CommandLine.arguments[0]` (looked up in `$PATH`
    /// when it has no '/'), resolved through symbolic links, the nearest folder above it holding both
    /// `Package.swift` and `Models/`. A build lives in `<repo>/.build/<triple>/<config>/` or
    /// `<repo>/.build/<config>/`.
    static func repositoryOfExecutable() -> String? {
        guard let first = CommandLine.arguments.first, !first.isEmpty else { return nil }
        var launched = first
        if !first.contains("/") {
            let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? ""
            let hits = searchPath.split(separator: ":").map { ($0.isEmpty ? "." : String($0)) + "/" + first }
            guard let hit = hits.first(where: { access($0, X_OK) == 0 && isFile($0) }) else { return nil }
            launched = hit
        }
        guard let resolved = realpath(launched, nil) else { return nil }
        var dir = (String(cString: resolved) as NSString).deletingLastPathComponent
        free(resolved)
        while true {
            let package = (dir as NSString).appendingPathComponent("Package.swift")
            let models = (dir as NSString).appendingPathComponent("Models")
            if isFile(package) && isDirectory(models) { return dir }
            let parent = (dir as NSString).deletingLastPathComponent
            if parent == dir || parent.isEmpty { return nil }
            dir = parent
        }
    }

    static func isFile(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && !dir.boolValue
    }

    static func isDirectory(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
    }
}
