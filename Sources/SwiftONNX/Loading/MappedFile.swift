import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory-mapped file. Tensors may alias it; it is unmapped when the last user goes.
final class MappedFile: @unchecked Sendable {
    let path: String
    let base: UnsafeMutableRawPointer?
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ONNXError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ONNXError.io(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ONNXError.io(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw ONNXError.io(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        base = p
    }

    /// Gives back the whole pages of `range` (inside this mapping) that this process has read:
    /// they leave its resident memory and are read again from the page cache if touched. For
    /// bytes just copied out (weights too misaligned to alias).
    func dropPages(_ range: UnsafeRawBufferPointer) {
        guard let base, let start = range.baseAddress, start >= UnsafeRawPointer(base),
              start + range.count <= UnsafeRawPointer(base) + size else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let lo = (Int(bitPattern: start) + page - 1) / page * page
        let hi = (Int(bitPattern: start) + range.count) / page * page
        if hi > lo { _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, MADV_DONTNEED) }
    }

    deinit {
        if let base { munmap(base, size) }
    }
}
