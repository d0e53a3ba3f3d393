#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An unlinked temporary file that records are appended to and read back from by offset.
///
/// `--keep best` cannot write a record until the whole input has been seen (a later copy
/// may score higher), so it keeps the records here, not in memory: per record, its text as
/// read, its id, its place and the data to compare it again (exact hash, signature)
/// (`append(raw:…)`, `read(at:)`). MinHash verification keeps here the compared text of the
/// kept records that cannot be read again from their input (standard input, pipes, JSON
/// arrays) (`append(_:)`, `read(at:count:into:)`).
final class DedupSpool {
    /// One record as spooled.
    struct Entry {
        var raw: [UInt8]
        var id: String
        var idIsNumber: Bool
        /// False when `id` is a content hash made for a record without an `id` field.
        var hasOwnID: Bool
        var place: String
        var extra: [UInt8]

        /// How reports name this record as the one another duplicates: its id, or its place
        /// when it has no `id` field (its content hash would be the duplicate's own).
        var name: String { hasOwnID ? id : place }
    }

    private let fd: Int32
    private let buffer = ByteBuffer(capacity: 1 << 20)
    /// File offset of the next entry.
    private(set) var size = 0
    /// Bytes handed to the file; the rest of `size` is still in `buffer`.
    private var written = 0
    /// What the file is for, in error messages ("--keep best").
    private let purpose: String

    /// Creates the file in `directory` (default `$TMPDIR`, else /tmp) and unlinks it at once,
    /// so it disappears with the process however that ends.
    init(directory: String?, environment: [String: String], purpose: String = "--keep best") throws(GRAError) {
        let dir = directory ?? environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((dir + "/gra-dedup-spool-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw GRAError.io(
                "cannot create a spool file in \(dir) (for \(purpose)): \(String(cString: strerror(errno)))")
        }
        unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        self.fd = fd
        self.purpose = purpose
    }

    deinit { close(fd) }

    /// Appends a record; returns its offset.
    func append(
        raw: UnsafeBufferPointer<UInt8>, id: String, idIsNumber: Bool, hasOwnID: Bool = true, place: String,
        extra: UnsafeBufferPointer<UInt8>
    ) throws(GRAError) -> Int {
        let offset = size
        let idCount = id.utf8.count, placeCount = place.utf8.count
        // The id's kind in one word: 0 a string, 1 a number, 2 a content hash.
        for n in [raw.count, idCount, placeCount, hasOwnID ? (idIsNumber ? 1 : 0) : 2, extra.count] { appendUInt32(n) }
        buffer.append(raw)
        buffer.append(id)
        buffer.append(place)
        buffer.append(extra)
        size += 20 + raw.count + idCount + placeCount + extra.count
        if buffer.count >= 1 << 20 { try flush() }
        return offset
    }

    /// Appends bytes as they are; returns their offset.
    func append(_ bytes: UnsafeBufferPointer<UInt8>) throws(GRAError) -> Int {
        let offset = size
        buffer.append(bytes)
        size += bytes.count
        if buffer.count >= 1 << 20 { try flush() }
        return offset
    }

    /// Reads `count` bytes appended at `offset` by `append(_:)` into `out` (replacing its
    /// contents); they may still be in the write buffer.
    func read(at offset: Int, count: Int, into out: inout [UInt8]) throws(GRAError) {
        out.removeAll(keepingCapacity: true)
        if offset >= written {
            // Appends are whole: what was appended after the last flush is all in the buffer.
            out.append(contentsOf: UnsafeBufferPointer(start: buffer.base + (offset - written), count: count))
            return
        }
        out.append(contentsOf: repeatElement(0, count: count))
        if let problem = out.withUnsafeMutableBytes({ readFully($0.baseAddress!, at: offset, count: count) }) {
            throw problem
        }
    }

    private func appendUInt32(_ n: Int) {
        var v = UInt32(n).littleEndian
        withUnsafeBytes(of: &v) { buffer.append($0.bindMemory(to: UInt8.self)) }
    }

    func flush() throws(GRAError) {
        var done = 0
        while done < buffer.count {
            let n = write(fd, buffer.base + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw GRAError.io("cannot write the \(purpose) spool file: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        written += done
        buffer.removeAll()
    }

    /// Reads the entry at `offset` (after `flush`).
    func read(at offset: Int) throws(GRAError) -> Entry {
        let header = try readBytes(at: offset, count: 20)
        let n = (0..<5).map { (i: Int) -> Int in
            var v = 0
            for k in 0..<4 { v |= Int(header[i * 4 + k]) << (8 * k) }
            return v
        }
        let body = try readBytes(at: offset + 20, count: n[0] + n[1] + n[2] + n[4])
        var i = 0
        func take(_ k: Int) -> ArraySlice<UInt8> {
            defer { i += k }
            return body[i..<(i + k)]
        }
        let raw = Array(take(n[0]))
        let id = String(decoding: take(n[1]), as: UTF8.self)
        let place = String(decoding: take(n[2]), as: UTF8.self)
        return Entry(
            raw: raw, id: id, idIsNumber: n[3] == 1, hasOwnID: n[3] != 2, place: place, extra: Array(take(n[4])))
    }

    private func readBytes(at offset: Int, count: Int) throws(GRAError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        if let problem = out.withUnsafeMutableBytes({ readFully($0.baseAddress!, at: offset, count: count) }) {
            throw problem
        }
        return out
    }

    /// Reads `count` bytes at `offset` into `p`; the error, if that fails.
    private func readFully(_ p: UnsafeMutableRawPointer, at offset: Int, count: Int) -> GRAError? {
        var done = 0
        while done < count {
            let n = pread(fd, p + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                return GRAError.io(
                    "cannot read the \(purpose) spool file: \(n < 0 ? String(cString: strerror(errno)) : "short read")")
            }
            done += n
        }
        return nil
    }
}
