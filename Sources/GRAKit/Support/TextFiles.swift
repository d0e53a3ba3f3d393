#if canImport(Glibc)
import Glibc
#endif

/// The whole content of a file, or nil when it cannot be read (errno says why).
public func readFileBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            bytes.append(contentsOf: chunk[0..<n])
        } else if n == 0 {
            return bytes
        } else if errno != EINTR {
            return nil
        }
    }
}

/// The whole content of a text file, or nil when it cannot be read.
public func readTextFile(_ path: String) -> String? {
    readFileBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

/// True when `path` names a directory.
public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

extension StringProtocol {
    /// The text without leading and trailing whitespace (Unicode's, newlines included).
    func trimmingWhitespace() -> String {
        // Strip ASCII spaces byte by byte; when the bytes left at both ends are ASCII, that is
        // the answer (an ASCII character never joins a whitespace character's cluster), and
        // grapheme clusters need walking only for texts with non-ASCII ends.
        let fast = utf8.withContiguousStorageIfAvailable { u -> Range<Int>? in
            var i = 0, j = u.count
            while i < j && TextBytes.isASCIISpace(u[i]) { i += 1 }
            while j > i && TextBytes.isASCIISpace(u[j - 1]) { j -= 1 }
            if i == j || (u[i] < 0x80 && u[j - 1] < 0x80) { return i..<j }
            return nil
        }
        if let kept = fast ?? nil {
            if kept.count == utf8.count { return String(self) }
            return utf8.withContiguousStorageIfAvailable {
                String(decoding: UnsafeBufferPointer(rebasing: $0[kept]), as: UTF8.self)
            }!
        }
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// Byte-level helpers for text.
enum TextBytes {
    /// Space, tab, newline, vertical tab, form feed, carriage return.
    @inline(__always)
    static func isASCIISpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    /// The offset of the first occurrence of `needle` in `hay` (nil for an empty needle).
    static func find(_ needle: UnsafeBufferPointer<UInt8>, in hay: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let n = needle.baseAddress, let h = hay.baseAddress, needle.count > 0, hay.count >= needle.count else {
            return nil
        }
        let last = hay.count - needle.count
        var i = 0
        while i <= last {
            guard let p = memchr(h + i, Int32(n[0]), last - i + 1) else { return nil }
            i = h.distance(to: p.assumingMemoryBound(to: UInt8.self))
            if memcmp(h + i, n, needle.count) == 0 { return i }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// The first occurrence of `needle`, compared byte for byte (no locale, no Unicode
    /// equivalence): what a tag search in a model reply needs, without Foundation's cost.
    func rangeOfBytes(_ needle: String) -> Range<Index>? {
        var n = needle
        let offset: Int? = n.withUTF8 { nd in
            // Bridged text has no contiguous UTF-8: search a copy of its bytes.
            utf8.withContiguousStorageIfAvailable { TextBytes.find(nd, in: $0) }
                ?? Array(utf8).withUnsafeBufferPointer { TextBytes.find(nd, in: $0) }
        }
        guard let offset else { return nil }
        let start = utf8.index(utf8.startIndex, offsetBy: offset)
        return start..<utf8.index(start, offsetBy: n.utf8.count)
    }
}
