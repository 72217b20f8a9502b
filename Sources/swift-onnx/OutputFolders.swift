import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks on the folders commands write into, made before any work so that a bad path fails at
/// once, with a message naming the path the user gave (not a temporary file's).
enum OutputFolders {
    /// The folder a file path writes into ("." for a bare file name).
    static func folder(of file: String) -> String {
        let parent = (file as NSString).deletingLastPathComponent
        return parent.isEmpty ? "." : parent
    }

    /// The output file `file` (an argument named `what`) can be written: its folder exists, is a
    /// folder and is writable, and `file` itself is not a folder.
    static func checkFileTarget(_ file: String, what: String = "output") throws {
        let dir = folder(of: file)
        guard FileManager.default.fileExists(atPath: dir) else {
            throw CLIError("the folder '\(dir)' of \(what) '\(file)' does not exist (create it first)")
        }
        guard ModelLocation.isDirectory(dir) else {
            throw CLIError("the folder '\(dir)' of \(what) '\(file)' is not a folder")
        }
        guard access(dir, W_OK) == 0 else {
            throw CLIError("the folder '\(dir)' of \(what) '\(file)' is not writable: \(String(cString: strerror(errno)))")
        }
        guard !ModelLocation.isDirectory(file) else { throw CLIError("\(what) '\(file)' is a folder") }
    }

    /// The folder `dir` (the value of `option`) is usable or can be created: it is a writable
    /// folder, or the nearest path above it that exists is a writable folder.
    static func checkCreatable(_ dir: String, option: String) throws {
        if FileManager.default.fileExists(atPath: dir) {
            guard ModelLocation.isDirectory(dir) else { throw CLIError("\(option) '\(dir)' exists and is not a folder") }
            guard access(dir, W_OK) == 0 else {
                throw CLIError("\(option) '\(dir)' is not writable: \(String(cString: strerror(errno)))")
            }
            return
        }
        var above = dir
        repeat {
            above = folder(of: above)
        } while !FileManager.default.fileExists(atPath: above) && above != "." && above != "/"
        guard ModelLocation.isDirectory(above) else {
            throw CLIError("cannot create \(option) '\(dir)': '\(above)' is not a folder")
        }
        guard access(above, W_OK) == 0 else {
            throw CLIError("cannot create \(option) '\(dir)': '\(above)' is not writable: \(String(cString: strerror(errno)))")
        }
    }

    /// Creates `dir` (the value of `option`) and the folders missing above it, one level at a time,
    /// so that a failure names the level that failed and its reason.
    static func create(_ dir: String, option: String) throws {
        if ModelLocation.isDirectory(dir) { return }
        var missing: [String] = []
        var path = dir
        while !FileManager.default.fileExists(atPath: path) && path != "." && path != "/" {
            missing.append(path)
            path = folder(of: path)
        }
        for level in missing.reversed() {
            guard mkdir(level, 0o777) == 0 || errno == EEXIST else {
                let reason = String(cString: strerror(errno))
                throw CLIError("cannot create \(option) '\(dir)': " + (level == dir ? reason : "'\(level)': \(reason)"))
            }
        }
        guard ModelLocation.isDirectory(dir) else { throw CLIError("\(option) '\(dir)' exists and is not a folder") }
    }
}
