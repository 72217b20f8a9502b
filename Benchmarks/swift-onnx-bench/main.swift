import ArgumentParser
import Foundation
import SwiftONNX

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Times SwiftONNX on models: session creation, warm-up runs (at least one; more, up to 30 ms, for
/// small models), then N timed runs.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-onnx-bench",
        abstract: "Benchmark SwiftONNX: load time, median and p90 run time, peak RSS.",
        discussion: "Inputs not given with --input are seeded random tensors of the declared shape; symbolic "
            + "dimensions need --dim SYMBOL=VALUE (an unnamed dimension: --dim INPUT:AXIS=VALUE). "
            + "peak_rss_mb is the process's peak so far (VmHWM on Linux), so with several models it "
            + "includes the ones before; run one model per process for per-model numbers."
    )

    @Argument(help: "The .onnx model files.")
    var models: [String]

    @Option(help: "Timed runs per model (after warm-up runs: at least one, up to 30 ms).")
    var runs: Int = 10

    @Option(help: "Threads for the kernels.")
    var threads: Int = 1

    @Option(name: .customLong("input"), help: ArgumentHelp("An input as NAME=FILE (.npy or TensorProto .pb).", valueName: "NAME=FILE"))
    var inputs: [String] = []

    @Option(name: .customLong("dim"), help: ArgumentHelp("A symbolic dimension's size, SYMBOL=VALUE or INPUT:AXIS=VALUE.", valueName: "NAME=VALUE"))
    var dims: [String] = []

    @Flag(help: "One JSON object per model and line.")
    var json = false

    @Flag(name: .customLong("raw-times"), help: "With --json, add every timed run as \"times_ms\" (used by Benchmarks/compare.py).")
    var rawTimes = false

    @Flag(name: .customLong("second-load"), help: ArgumentHelp(
        "After the timed runs (and the peak-RSS reading), time creating a second session of the model while the "
        + "first is still alive, as \"second_load_ms\": session creation in a process that has used the library "
        + "already, as ONNX Runtime's rounds in Benchmarks/compare.py are."))
    var secondLoad = false

    @Option(help: "Seed of the random inputs.")
    var seed: UInt64 = 0

    func run() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        var dimValues: [String: Int] = [:]
        for d in dims {
            guard let eq = d.lastIndex(of: "="), let v = Int(d[d.index(after: eq)...]), v >= 0 else {
                throw ValidationError("--dim '\(d)' must look like NAME=VALUE with VALUE >= 0")
            }
            dimValues[String(d[..<eq])] = v
        }
        var files: [String: Tensor] = [:]
        for spec in inputs {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
                throw ValidationError("--input '\(spec)' must look like NAME=FILE")
            }
            let name = String(spec[..<eq]), path = String(spec[spec.index(after: eq)...])
            do {
                files[name] = try readTensorFile(path)
            } catch {
                fail("error: --input \(name): \(error)")
                throw ExitCode(1)
            }
        }
        var failures = 0
        var usedInputs = Set<String>()
        for model in models {
            do {
                let r = try benchmark(model, files: files, dims: dimValues, used: &usedInputs)
                if json {
                    var line = r.json
                    if rawTimes {
                        line.removeLast()
                        line += ",\"times_ms\":[" + r.times.map { String(format: "%.4f", $0) }.joined(separator: ",") + "]}"
                    }
                    print(line)
                } else {
                    print(String(format: "%@  load_ms=%.2f  median_ms=%.3f  p90_ms=%.3f  runs=%d  threads=%d  peak_rss_mb=%.1f  isa=%@",
                                 model, r.loadMs, r.medianMs, r.p90Ms, runs, threads, r.peakRSSMB, InferenceSession.kernelISA)
                          + (r.secondLoadMs.map { String(format: "  second_load_ms=%.2f", $0) } ?? ""))
                }
            } catch {
                failures += 1
                if json {
                    print("{\"model\":\(jsonString(model)),\"error\":\(jsonString("\(error)"))}")
                } else {
                    fail("error: \(model): \(error)")
                }
            }
            fflush(nil)   // all streams (the stdout global is not concurrency-safe in Swift 6)
        }
        for name in files.keys where !usedInputs.contains(name) {
            fail("warning: --input \(name) is not an input of any model")
        }
        if failures > 0 { throw ExitCode(1) }
    }

    struct Result {
        var model: String, loadMs: Double, medianMs: Double, p90Ms: Double, runs: Int, threads: Int, peakRSSMB: Double
        /// The process's peak RSS before the model was loaded (runtime, libraries, inputs).
        var startRSSMB: Double
        var times: [Double] = []
        /// With --second-load: creating a second session while the first is alive.
        var secondLoadMs: Double? = nil
        var json: String {
            func num(_ x: Double) -> String { String(format: "%.4f", x) }
            return "{\"model\":\(jsonString(model)),\"load_ms\":\(num(loadMs)),\"median_ms\":\(num(medianMs)),"
                + "\"p90_ms\":\(num(p90Ms)),\"runs\":\(runs),\"threads\":\(threads),\"peak_rss_mb\":\(num(peakRSSMB)),"
                + "\"start_rss_mb\":\(num(startRSSMB)),"
                + (secondLoadMs.map { "\"second_load_ms\":\(num($0))," } ?? "")
                + "\"isa\":\(jsonString(InferenceSession.kernelISA))}"
        }
    }

    func benchmark(_ model: String, files: [String: Tensor], dims: [String: Int], used: inout Set<String>) throws -> Result {
        let t0 = now()
        let startRSS = peakRSSMB()
        let session = try InferenceSession(path: model, options: SessionOptions(threads: threads))
        let loadMs = (now() - t0) * 1000
        var rng = SplitMix64(seed: seed)
        var feeds: [String: Tensor] = [:]
        for info in session.inputs {
            if let t = files[info.name] {
                feeds[info.name] = t
                used.insert(info.name)
            } else {
                feeds[info.name] = try randomInput(info, dims: dims, rng: &rng)
            }
        }
        // Warm-up: at least one run, and for small models more, until 30 ms have passed (at most 100
        // runs): this process is fresh, so its first runs fault in code pages and grow the arena, which
        // a runtime inside a long-lived process (as ONNX Runtime is in compare.py) has already done.
        let warmStart = now()
        var warmRuns = 0
        repeat {
            _ = try session.run(feeds)
            warmRuns += 1
        } while warmRuns < 100 && now() - warmStart < 0.030
        var times: [Double] = []
        times.reserveCapacity(runs)
        for _ in 0..<runs {
            let s = now()
            _ = try session.run(feeds)
            times.append((now() - s) * 1000)
        }
        let inOrder = times
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2]
                                          : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        let p90 = times[min(times.count - 1, Int((0.9 * Double(times.count)).rounded(.up)) - 1)]
        let peak = peakRSSMB()
        var secondLoadMs: Double? = nil
        if secondLoad {
            let s = now()
            let second = try InferenceSession(path: model, options: SessionOptions(threads: threads))
            secondLoadMs = (now() - s) * 1000
            withExtendedLifetime((session, second)) {}
        }
        return Result(model: model, loadMs: loadMs, medianMs: median, p90Ms: p90, runs: runs, threads: threads,
                      peakRSSMB: peak, startRSSMB: startRSS, times: inOrder, secondLoadMs: secondLoadMs)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
}

func fail(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func peakRSSMB() -> Double {
    var usage = rusage()
    #if os(Linux)
    // VmHWM is this process image's own peak; ru_maxrss also counts, across exec, the RSS of the
    // process that forked us (a benchmark driver holding other runtimes' models).
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
        return kb / 1024
    }
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // kilobytes
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Double(usage.ru_maxrss) / (1024 * 1024)  // bytes
    #endif
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
        }
    }
    return out + "\""
}

/// Reads a tensor from a .npy file or a serialized TensorProto (.pb).
func readTensorFile(_ path: String) throws -> Tensor {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw BenchError(description: "cannot read '\(path)'")
    }
    let bytes = [UInt8](data)
    if bytes.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) { return try NPY.decode(bytes, path: path) }
    return try TensorProto.decode(bytes, path: path).tensor
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

/// A seeded random tensor of the declared shape: floats uniform in [-1, 1), integers in [0, 10), bools 50/50.
func randomInput(_ info: ValueInfo, dims: [String: Int], rng: inout SplitMix64) throws -> Tensor {
    guard let dtype = info.type else { throw BenchError(description: "input '\(info.name)' has no declared element type; give --input") }
    guard let declared = info.shape else { throw BenchError(description: "input '\(info.name)' has no declared shape; give --input") }
    var shape: [Int] = []
    for (axis, d) in declared.enumerated() {
        switch d {
        case .known(let v) where v >= 0:
            shape.append(v)
        case .symbolic(let name) where dims[name] != nil:
            shape.append(dims[name]!)
        default:
            if let v = dims["\(info.name):\(axis)"] {
                shape.append(v)
            } else if case .symbolic(let name) = d {
                throw BenchError(description: "input '\(info.name)' axis \(axis) is the symbolic dimension '\(name)': give --dim \(name)=VALUE or --input \(info.name)=FILE")
            } else {
                throw BenchError(description: "input '\(info.name)' axis \(axis) has no known size: give --dim \(info.name):\(axis)=VALUE or --input \(info.name)=FILE")
            }
        }
    }
    let n = shape.reduce(1, *)
    guard n <= 1 << 31 else { throw BenchError(description: "input '\(info.name)' shape \(shape) is too large") }
    switch dtype {
    case .float32: return try Tensor(shape: shape, scalars: (0..<n).map { _ in rng.unit() })
    case .float64: return try Tensor(shape: shape, scalars: (0..<n).map { _ in Double(rng.unit()) })
    case .float16:
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 * n)
        for _ in 0..<n {
            let b = Float16(rng.unit()).bitPattern
            bytes += [UInt8(b & 0xFF), UInt8(b >> 8)]
        }
        return try Tensor(dtype: .float16, shape: shape, bytes: bytes)
    case .bfloat16: return try Tensor(shape: shape, scalars: (0..<n).map { _ in BFloat16(rng.unit()) })
    case .int8: return try Tensor(shape: shape, scalars: (0..<n).map { _ in Int8(rng.next() % 10) })
    case .int16: return try Tensor(shape: shape, scalars: (0..<n).map { _ in Int16(rng.next() % 10) })
    case .int32: return try Tensor(shape: shape, scalars: (0..<n).map { _ in Int32(rng.next() % 10) })
    case .int64: return try Tensor(shape: shape, scalars: (0..<n).map { _ in Int64(rng.next() % 10) })
    case .uint8: return try Tensor(shape: shape, scalars: (0..<n).map { _ in UInt8(rng.next() % 10) })
    case .uint16: return try Tensor(shape: shape, scalars: (0..<n).map { _ in UInt16(rng.next() % 10) })
    case .uint32: return try Tensor(shape: shape, scalars: (0..<n).map { _ in UInt32(rng.next() % 10) })
    case .uint64: return try Tensor(shape: shape, scalars: (0..<n).map { _ in rng.next() % 10 })
    case .bool: return try Tensor(shape: shape, scalars: (0..<n).map { _ in rng.next() & 1 == 1 })
    case .string: return try Tensor(shape: shape, strings: Array(repeating: "a", count: n))
    default: throw BenchError(description: "input '\(info.name)': cannot make random \(dtype) values; give --input")
    }
}

Bench.main()
