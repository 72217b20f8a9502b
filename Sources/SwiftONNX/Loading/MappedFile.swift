import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory-mapped file. Tensors may alias it; it is unmapped when the last user goes.
final class MappedFile: @unchecked Sendable {   // @unchecked: the mapping's base is a raw pointer (read-only pages)
    let path: String
    let base: UnsafeMutableRawPointer?
    let size: Int

    /// Kept open while the model is being loaded (`read(_:into:)`), closed by `finishLoading()`.
    private let fd: Atomic<Int32>

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ONNXError.io(path: path, reason: String(cString: strerror(errno))) }
        var keep = false
        defer { if !keep { close(fd) } }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ONNXError.io(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ONNXError.io(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            self.fd = Atomic(-1)
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw ONNXError.io(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        base = p
        self.fd = Atomic(fd)
        keep = true
    }

    /// Copies the bytes of `range` (inside this mapping) to `dst` with pread, while the file is
    /// open: for weights too misaligned to alias, one copy from the page cache, without mapping the
    /// file's pages into this process first. False (nothing promised about `dst`) when it cannot.
    func read(_ range: UnsafeRawBufferPointer, into dst: UnsafeMutableRawPointer) -> Bool {
        let fd = self.fd.load(ordering: .acquiring)
        guard fd >= 0, let base, let start = range.baseAddress, start >= UnsafeRawPointer(base),
              start + range.count <= UnsafeRawPointer(base) + size else { return false }
        var offset = start - UnsafeRawPointer(base), done = 0
        while done < range.count {
            let n = pread(fd, dst + done, range.count - done, off_t(offset))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
            offset += n
        }
        return true
    }

    /// The load is over: no more `read(_:into:)`; the mapping stays for the weights that alias it.
    func finishLoading() {
        let old = fd.exchange(-1, ordering: .acquiringAndReleasing)
        if old >= 0 { close(old) }
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
        let fd = self.fd.load(ordering: .acquiring)
        if fd >= 0 { close(fd) }
        if let base { munmap(base, size) }
    }
}
