#if canImport(Glibc)
import Glibc
#endif

/// The whole content of a text file, or nil when it cannot be read.
public func readTextFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 { bytes.append(contentsOf: chunk[0..<n]) } else if n == 0 { break } else if errno != EINTR { return nil }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// True when `path` names a directory.
public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

extension StringProtocol {
    /// The first occurrence of `needle`, compared byte for byte (no locale, no Unicode
    /// equivalence): what a tag search in a model reply needs, without Foundation's cost.
    func rangeOfBytes(_ needle: String) -> Range<Index>? {
        let n = Array(needle.utf8)
        guard let first = n.first else { return nil }
        let hay = utf8
        var i = hay.startIndex
        while let start = hay[i...].firstIndex(of: first) {
            var a = start, b = 0
            while b < n.count, a != hay.endIndex, hay[a] == n[b] {
                a = hay.index(after: a)
                b += 1
            }
            if b == n.count { return start..<a }
            i = hay.index(after: start)
        }
        return nil
    }
}
