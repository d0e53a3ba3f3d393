#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exact verification of MinHash candidates: the Jaccard similarity of two records' shingle
/// sets, computed from their texts rather than estimated from their signatures.
///
/// The index keeps no text in memory, only where each entry's compared text can be read
/// again (16 bytes an entry):
/// - a record read from a regular file (NDJSON) is read again from that file: its byte
///   offset and length there (the descriptor stays open); the line is parsed again and its
///   fields normalized as when it was read;
/// - any other record (standard input from a pipe, a JSON array document, a reference set
///   read from a pipe, more input files than `maxFiles`) has its compared text appended to
///   an unlinked temporary spool file (`DedupSpool`), made on first use.
///
/// Each entry also keeps the low 32 bits of its exact hash, so a file changed while
/// gra-dedup reads it is an error, never a wrong verdict.
final class DedupTextStore {
    let fields: [String]
    let shingle: ShingleSpec
    private let spoolDirectory: String?
    private let environment: [String: String]
    private var spool: DedupSpool?
    /// Source 1, 2, …: input files read again by offset (a duplicate of their descriptor,
    /// closed at the end), and how messages name them.
    private var files: [(fd: Int32, label: String)] = []
    /// Per entry: source << 48 | offset (source 0 is the spool), then length | check << 32.
    private let locators = ChunkedRecords(recordSize: 16)
    /// Files kept open to be read again at most; later inputs are spooled.
    static let maxFiles = 128

    private var raw: [UInt8] = []
    private var text: [UInt8] = []
    private var tokens: [UInt64] = []

    init(fields: [String], shingle: ShingleSpec, spoolDirectory: String? = nil, environment: [String: String] = [:]) {
        self.fields = fields
        self.shingle = shingle
        self.spoolDirectory = spoolDirectory
        self.environment = environment
    }

    deinit { for f in files { close(f.fd) } }

    var count: Int { locators.count }

    /// Makes the open input `fd` a source to read texts again from, when it is a regular
    /// file; returns its source number, or nil (then its records are spooled).
    func register(fd: Int32, label: String) -> Int? {
        guard files.count < Self.maxFiles else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return nil }
        files.append((copy, label))
        return files.count
    }

    /// Remembers where the compared text of the record in `slot` of `batch` can be read
    /// again, as the next entry.
    func add(_ batch: PreparedBatch, slot: Int) throws(GRAError) {
        let r = batch.records[slot]
        var location: UInt64
        var length: Int
        if let source = batch.textSource {
            precondition(r.fileOffset >= 0, "a record of a file-backed batch has its offset")
            location = UInt64(source) << 48 | UInt64(r.fileOffset)
            length = r.rawCount
        } else {
            if spool == nil {
                spool = try DedupSpool(
                    directory: spoolDirectory, environment: environment, purpose: "near-duplicate verification")
            }
            let offset = try batch.texts.withUnsafeBufferPointer { (t) throws(GRAError) in
                try spool!.append(UnsafeBufferPointer(rebasing: t[r.textStart..<(r.textStart + r.textCount)]))
            }
            location = UInt64(offset)
            length = r.textCount
        }
        guard length <= Int(UInt32.max) else {
            throw GRAError.usage("a record of \(length) bytes is too long to verify near duplicates (at most 4 GiB)")
        }
        var words: (UInt64, UInt64) = (
            location.littleEndian, (UInt64(length) | UInt64(UInt32(truncatingIfNeeded: r.exactHash)) << 32).littleEndian
        )
        withUnsafeBytes(of: &words) { locators.append($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// The distinct shingle hashes of `entry`'s compared text, sorted, into `out`.
    func shingles(of entry: Int, into out: inout [UInt64]) throws(GRAError) {
        let p = UnsafeRawPointer(locators[entry])
        let location = UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
        let second = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let source = Int(location >> 48), offset = Int(location & 0xFFFF_FFFF_FFFF)
        let length = Int(second & 0xFFFF_FFFF), check = UInt32(second >> 32)
        if source == 0 {
            try spool!.read(at: offset, count: length, into: &text)
        } else {
            let file = files[source - 1]
            try Self.readAgain(file, offset: offset, count: length, into: &raw)
            let parsed = raw.withUnsafeBufferPointer { JSONParser.parseResult($0) }
            guard case .success(.object(let record)) = parsed,
                Self.comparedText(of: record, fields: fields, into: &text)
            else {
                throw changed(file.label, offset)
            }
        }
        let hash = text.withUnsafeBufferPointer { StableHash.bytes($0, seed: DedupPreparer.exactSeed) }
        guard UInt32(truncatingIfNeeded: hash) == check else {
            if source == 0 {
                throw GRAError.io("the near-duplicate verification spool file was changed (entry \(entry))")
            }
            throw changed(files[source - 1].label, offset)
        }
        out.removeAll(keepingCapacity: true)
        text.withUnsafeBufferPointer { shingle.appendShingleHashes(of: $0, tokens: &tokens, to: &out) }
        Self.sortDistinct(&out)
    }

    private func changed(_ label: String, _ offset: Int) -> GRAError {
        GRAError.io(
            """
            \(label) changed while gra-dedup was reading it (the record at byte \(offset) is not the one read): \
            cannot verify near duplicates
            """
        )
    }

    private static func readAgain(_ file: (fd: Int32, label: String), offset: Int, count: Int, into out: inout [UInt8])
        throws(GRAError)
    {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: repeatElement(0, count: count))
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes {
                pread(file.fd, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw GRAError.io(
                    """
                    cannot read \(file.label) again to verify a near duplicate: \
                    \(n < 0 ? String(cString: strerror(errno)) : "the file is shorter than when it was read")
                    """
                )
            }
            done += n
        }
    }

    /// The compared text of `record` (as `DedupPreparer` makes it) into `out`; false when a
    /// compared field is not a string.
    static func comparedText(of record: JSONObject, fields: [String], into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        let reader = DedupFieldReader(record)
        for field in fields {
            guard case .success(let s) = reader.text(field) else { return false }
            DedupText.appendField(s, to: &out)
        }
        return true
    }

    /// The sorted distinct shingle hashes of a record given as JSON text; nil when it does not
    /// parse as an object with string fields.
    static func shingles(ofRecord json: [UInt8], fields: [String], shingle: ShingleSpec) -> [UInt64]? {
        guard case .success(.object(let record)) = json.withUnsafeBufferPointer({ JSONParser.parseResult($0) }) else {
            return nil
        }
        var text: [UInt8] = [], tokens: [UInt64] = [], out: [UInt64] = []
        guard comparedText(of: record, fields: fields, into: &text) else { return nil }
        text.withUnsafeBufferPointer { shingle.appendShingleHashes(of: $0, tokens: &tokens, to: &out) }
        sortDistinct(&out)
        return out
    }

    /// Sorts `x` and removes repeated values.
    static func sortDistinct(_ x: inout [UInt64]) {
        x.sort()
        guard x.count > 1 else { return }
        var n = 1
        x.withUnsafeMutableBufferPointer { p in
            for i in 1..<p.count where p[i] != p[n - 1] {
                p[n] = p[i]
                n += 1
            }
        }
        x.removeLast(x.count - n)
    }

    /// The Jaccard similarity |A ∩ B| / |A ∪ B| of two sorted sets of distinct values (1 for
    /// two empty sets).
    static func jaccard(_ a: UnsafeBufferPointer<UInt64>, _ b: UnsafeBufferPointer<UInt64>) -> Double {
        var i = 0, j = 0, common = 0
        while i < a.count && j < b.count {
            let x = a[i], y = b[j]
            if x == y {
                common += 1
                i += 1
                j += 1
            } else if x < y {
                i += 1
            } else {
                j += 1
            }
        }
        let union = a.count + b.count - common
        return union == 0 ? 1 : Double(common) / Double(union)
    }

    static func jaccard(_ a: [UInt64], _ b: [UInt64]) -> Double {
        a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in jaccard(x, y) } }
    }

    /// Bytes held in memory (the spool and the files are on disk).
    var memoryBytes: Int { locators.memoryBytes }
}
