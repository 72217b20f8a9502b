// Fuzz targets: untrusted bytes into the loader, the input decoders and the image decoders.
//
//   swift-onnx-fuzz TARGET FILE|DIR ...        replays inputs (a plain build; used by the tests and CI)
//   swift-onnx-fuzz TARGET [libFuzzer flags]   fuzzes (built by Fuzz/run.sh with -DFUZZING and
//                                              -sanitize=fuzzer,address)
//
// TARGET is model (InferenceSession(modelBytes:) and a run on small inputs of the declared shapes),
// npy (NPY.decode), pb (TensorProto.decode) or image (ImageFile.read of a PNG or JPEG, from memory and from a file). Every input
// must end in a value or a thrown error: a crash, a sanitizer report, a hang or runaway memory is
// a finding, and each finding becomes a file in Fuzz/regressions/TARGET and a test.
import CFuzz
import Foundation
import SwiftONNX
import SwiftONNXEnhance

enum FuzzTarget: String, CaseIterable {
    case model, npy, pb, image
}

/// Elements per input tensor fed to a fuzzed model: beyond this the run is skipped, not attempted.
let maxInputElements = 1 << 16

/// The session's memory ceiling: a model that would need more must fail with a typed error, well
/// inside libFuzzer's 2 GB limit (which would report it as a finding).
let sessionMemoryLimit = 1 << 30

func runModel(_ bytes: [UInt8]) {
    guard let session = try? InferenceSession(modelBytes: bytes, options: SessionOptions(memoryLimit: sessionMemoryLimit)) else { return }
    var feeds: [String: Tensor] = [:]
    for input in session.inputs {
        guard let dtype = input.type, let dims = input.shape else { return }
        // Symbolic and unknown dims get 1, known ones their size.
        let shape = dims.map { $0.value ?? 1 }
        var count = 1
        for d in shape {
            guard d >= 0 else { return }
            let (p, o) = count.multipliedReportingOverflow(by: d)
            if o || p > maxInputElements { return }
            count = p
        }
        if dtype == .string {
            guard let t = try? Tensor(shape: shape, strings: Array(repeating: "", count: count)) else { return }
            feeds[input.name] = t
        } else {
            let size = max(dtype.byteSize, 1)
            guard let t = try? Tensor(dtype: dtype, shape: shape, bytes: Array(repeating: 0, count: count * size)) else { return }
            feeds[input.name] = t
        }
    }
    _ = try? session.run(feeds)
}

/// The image decoders read files: the bytes go to a file of this process in /dev/shm (or /tmp).
let imagePath: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(dir)/swift-onnx-fuzz-\(getpid())"
}()

func runImage(_ bytes: [UInt8]) {
    // The format comes from the file's signature; the name's extension only has to be one ImageFile knows.
    let path = imagePath + (bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) ? ".png" : ".jpg")
    let data = Data(bytes)
    // The same bytes from memory (fmemopen) and from a file.
    _ = try? ImageFile.read(data: data, pixelCeiling: 1 << 22)
    guard FileManager.default.createFile(atPath: path, contents: data) else { return }
    defer { unlink(path) }
    _ = try? ImageFile.read(path: path, pixelCeiling: 1 << 22)
}

func fuzzOne(_ target: FuzzTarget, _ bytes: [UInt8]) {
    switch target {
    case .model: runModel(bytes)
    case .npy: _ = try? NPY.decode(bytes)
    case .pb: _ = try? TensorProto.decode(bytes)
    case .image: runImage(bytes)
    }
}

func usage() -> Never {
    FileHandle.standardError.write(Data("""
        usage: swift-onnx-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE|DIR ...   (replay)
               swift-onnx-fuzz TARGET [libFuzzer flags] [CORPUS_DIR ...]                (a -DFUZZING build)

        """.utf8))
    exit(2)
}

var args = CommandLine.arguments
guard args.count >= 2, let target = FuzzTarget(rawValue: args[1]) else { usage() }

#if FUZZING
nonisolated(unsafe) var fuzzTarget = target
args.remove(at: 1)
var argc = Int32(args.count)
var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
let status = cargs.withUnsafeMutableBufferPointer { buf -> Int32 in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buf.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        fuzzOne(fuzzTarget, size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
exit(status)
#else
// Replay: every file given, and every file inside the directories given.
var files: [String] = []
for path in args.dropFirst(2) {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        FileHandle.standardError.write(Data("error: \(path) does not exist\n".utf8))
        exit(1)
    }
    if isDir.boolValue {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        files += names.sorted().filter { !$0.hasPrefix(".") }.map { "\(path)/\($0)" }
    } else {
        files.append(path)
    }
}
if files.isEmpty { usage() }
let start = Date()
// With SWIFT_ONNX_FUZZ_TRACE set, each file's name goes to stderr before it runs (to find the one that crashed).
let trace = ProcessInfo.processInfo.environment["SWIFT_ONNX_FUZZ_TRACE"] != nil
for f in files {
    guard let data = FileManager.default.contents(atPath: f) else { continue }
    if trace { FileHandle.standardError.write(Data("\(f)\n".utf8)) }
    fuzzOne(target, [UInt8](data))
}
print("replayed \(files.count) \(target.rawValue) inputs in \(String(format: "%.1f", Date().timeIntervalSince(start))) s, no crash")
#endif
