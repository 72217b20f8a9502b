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

    deinit {
        if let base { munmap(base, size) }
    }
}
