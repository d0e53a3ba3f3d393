/// What gra-dedup computes for each record before comparing it: done for a whole batch at
/// once on a pool thread (parse, fields, normalization, exact hash, shingles, signature, band
/// keys), so that the in-order comparison step only looks things up.
struct PreparedRecord {
    enum Status {
        /// A record with text to compare.
        case record
        /// A record whose chosen fields are all empty: passed through unchanged.
        case noText
        /// Left to another shard (`--shard`).
        case otherShard
        /// Malformed (with `--skip-bad-input`): reported, not written.
        case bad(String)
    }
    var status: Status
    var line: Int
    /// 1-based element number when the input was a JSON array.
    var element: Int?
    /// The record's JSON text, as read (or re-serialized for array elements), in the batch's bytes.
    var rawStart: Int
    var rawCount: Int
    /// The record's id (its `id` string or number; else the content hash id).
    var id: String
    /// True when `id` is the text of a JSON number (written back as a number).
    var idIsNumber = false
    /// False when the record has no `id` field and `id` is its content hash: reports then
    /// name it by its place, since a duplicate's content hash is the same.
    var hasOwnID = true
    var exactHash: UInt64 = 0
    /// `--keep best`: the record's review score (−∞ without one).
    var score = -Double.infinity
    /// The text sent for an embedding (`semantic`).
    var semanticText: String?
    /// Where the record's line starts in its input file (when the batch has a `textSource`);
    /// −1 when it cannot be read there again.
    var fileOffset = -1
    /// `minhash`: the compared text in the batch's `texts` (kept only when there is no
    /// `textSource`) and the shingle hashes in its `shingles` (as made, unsorted).
    var textStart = 0
    var textCount = 0
    var shingleStart = 0
    var shingleCount = 0
}

/// One batch's prepared records; signatures and band keys are stored flat, one slot per
/// record (unused for records that are not `.record`).
final class PreparedBatch: @unchecked Sendable {
    var bytes: [UInt8] = []
    var records: [PreparedRecord] = []
    var signatures: [UInt8] = []
    var bandKeys: [UInt64] = []
    /// `minhash`: compared texts and shingle hashes (see `PreparedRecord`), for verification.
    var texts: [UInt8] = []
    var shingles: [UInt64] = []
    /// The `DedupTextStore` source the records' lines can be read again from, if any.
    var textSource: Int?
    /// One unit vector per record (`semantic`; empty for records without text) and its LSH
    /// codes (`HyperplaneLSH.tables` per record).
    var vectors: [[Float]] = []
    var semanticCodes: [UInt32] = []
    /// Why the embeddings of this batch could not be had (`semantic`).
    var embeddingFailure: RequestFailure?
    /// Malformed input that stops the run (after the records before it): where and what.
    var fatal: (line: Int, element: Int?, message: String)?
}

/// Turns input lines into `PreparedRecord`s; holds no state between batches, so several
/// batches can be prepared at once.
struct DedupPreparer: Sendable {
    let fields: [String]
    let methods: Set<DedupMethod>
    let shingle: ShingleSpec
    let hasher: MinHasher
    let banding: LSHBanding
    let skipBadInput: Bool
    let maxLineBytes: Int
    /// Nil for reference sets, which are never sharded.
    let shard: Shard?
    let wantScore: Bool

    static let exactSeed: UInt64 = 0x1656_67B1_9E37_79F9

    /// The lines of `batch`; `offsets` (one per line, when the input is a regular file) say
    /// where each starts in the file, and the batch then keeps no compared texts.
    func prepare(_ batch: LineBatch, offsets: [Int]? = nil) -> PreparedBatch {
        let out = PreparedBatch()
        var scratch = Scratch()
        out.bytes = batch.bytes
        reserve(out, batch.lines.count)
        let element = ByteBuffer(capacity: 1 << 12)
        let keepTexts = offsets == nil
        batch.bytes.withUnsafeBufferPointer { all in
            for (i, line) in batch.lines.enumerated() {
                if out.fatal != nil { return }
                switch line {
                case .tooLong(let number, let bytes, let element):
                    bad(
                        out, line: number, element: element.map { $0 + 1 },
                        InputLine.tooLongMessage(bytes: bytes, element: element, limit: maxLineBytes), start: 0,
                        count: 0)
                case .text(let number, let start, var count):
                    let sorted = InputLine.classify(UnsafeBufferPointer(rebasing: all[start..<(start + count)]))
                    if case .blank = sorted { continue }
                    while count > 0 && all[start + count - 1] == 0x0D { count -= 1 }
                    switch sorted {
                    case .blank:
                        continue
                    case .bad(let problem, _):
                        bad(out, line: number, element: nil, problem, start: start, count: count)
                    case .record(let record):
                        let before = out.records.count
                        add(
                            out, record, line: number, element: nil, start: start, count: count, scratch: &scratch,
                            keepText: keepTexts)
                        if let offsets, out.records.count > before { out.records[before].fileOffset = offsets[i] }
                    }
                case .element(let index, let number, let start, let count):
                    // An element may span lines: its record text (and a bad element's, for the
                    // rejects file) is the value re-serialized on one line, after the batch's
                    // input bytes.
                    let sorted = InputLine.classify(
                        UnsafeBufferPointer(rebasing: all[start..<(start + count)]), isElement: true)
                    let value: JSONValue
                    switch sorted {
                    case .record(let record): value = .object(record)
                    case .bad(_, let notAnObject?): value = notAnObject
                    case .bad(let problem, nil):
                        bad(out, line: number, element: index + 1, problem, start: 0, count: 0)
                        continue
                    case .blank: continue
                    }
                    element.removeAll()
                    JSONWriter.write(value, to: element)
                    let rawStart = out.bytes.count
                    out.bytes.append(contentsOf: element.bytes)
                    if case .record(let record) = sorted {
                        add(
                            out, record, line: number, element: index + 1, start: rawStart, count: element.count,
                            scratch: &scratch, keepText: true)
                    } else if case .bad(let problem, _) = sorted {
                        bad(out, line: number, element: index + 1, problem, start: rawStart, count: element.count)
                    }
                }
            }
        }
        return out
    }

    private func reserve(_ out: PreparedBatch, _ n: Int) {
        out.records.reserveCapacity(n)
        if methods.contains(.minhash) {
            out.signatures = [UInt8](repeating: 0, count: n * hasher.numPerm)
            out.bandKeys = [UInt64](repeating: 0, count: n * banding.bands)
        }
    }

    /// Working buffers reused from record to record.
    struct Scratch {
        var text: [UInt8] = []
        var tokens: [UInt64] = []
        var shingles: [UInt64] = []
        var mins: [UInt32] = []
    }

    private func bad(_ out: PreparedBatch, line: Int, element: Int?, _ message: String, start: Int, count: Int) {
        if !skipBadInput {
            out.fatal = (line, element, message)
            return
        }
        out.records.append(
            PreparedRecord(
                status: .bad(message), line: line, element: element, rawStart: start, rawCount: count, id: ""))
    }

    private func add(
        _ out: PreparedBatch, _ record: JSONObject, line: Int, element: Int?, start: Int, count: Int,
        scratch: inout Scratch, keepText: Bool
    ) {
        var r = PreparedRecord(status: .record, line: line, element: element, rawStart: start, rawCount: count, id: "")
        if let shard, !shard.contains(record) {
            r.status = .otherShard
            out.records.append(r)
            return
        }
        let sample = DedupFieldReader(record)
        var texts: [String] = []
        for field in fields {
            switch sample.text(field) {
            case .success(let s): texts.append(s)
            case .failure(let problem):
                bad(out, line: line, element: element, problem.reason, start: start, count: count)
                return
            }
        }
        (r.id, r.idIsNumber, r.hasOwnID) = sample.id()
        scratch.text.removeAll(keepingCapacity: true)
        for t in texts { DedupText.appendField(t, to: &scratch.text) }
        if scratch.text.isEmpty {
            r.status = .noText
            out.records.append(r)
            return
        }
        if wantScore { r.score = DedupScore.of(record) }
        scratch.text.withUnsafeBufferPointer { text in
            r.exactHash = StableHash.bytes(text, seed: DedupPreparer.exactSeed)
            if methods.contains(.minhash) {
                scratch.shingles.removeAll(keepingCapacity: true)
                shingle.appendShingleHashes(of: text, tokens: &scratch.tokens, to: &scratch.shingles)
                r.shingleStart = out.shingles.count
                r.shingleCount = scratch.shingles.count
                out.shingles.append(contentsOf: scratch.shingles)
                if keepText {
                    r.textStart = out.texts.count
                    r.textCount = text.count
                    out.texts.append(contentsOf: text)
                }
                let n = hasher.numPerm
                if scratch.mins.count != n { scratch.mins = [UInt32](repeating: 0, count: n) }
                let slot = out.records.count
                scratch.shingles.withUnsafeBufferPointer { s in
                    scratch.mins.withUnsafeMutableBufferPointer { m in
                        hasher.signature(s, into: m.baseAddress!)
                        out.signatures.withUnsafeMutableBufferPointer { sig in
                            let dest = sig.baseAddress! + slot * n
                            for i in 0..<n { dest[i] = CompactSignature.byte(m[i]) }
                            out.bandKeys.withUnsafeMutableBufferPointer { keys in
                                MinHashIndex.bandKeys(
                                    dest, banding: banding, into: keys.baseAddress! + slot * banding.bands)
                            }
                        }
                    }
                }
            }
        }
        if methods.contains(.semantic) {
            r.semanticText = DedupText.semanticText(texts)
        }
        out.records.append(r)
    }
}

/// Reads the fields gra-dedup compares from one record: `instruction`, `input` and
/// `response` (`output` accepted for it) as gra and Alpaca records hold them, or as a
/// ShareGPT/OpenAI conversation's last turn; any other name is a top-level string field.
struct DedupFieldReader {
    let record: JSONObject
    /// The sample of a chat-format record (no `instruction` field), decoded once.
    private let chat: Sample?

    init(_ record: JSONObject) {
        self.record = record
        if record["instruction"] == nil, let format = RecordFormat.detect(record),
            format == .sharegpt || format == .openai
        {
            chat = try? FormatConverter.decode(record, as: format).0
        } else {
            chat = nil
        }
    }

    /// The field's text ("" when missing or null), or why the record cannot be compared.
    func text(_ field: String) -> Result<String, TaskFailure> {
        if let chat {
            switch field {
            case "instruction": return .success(chat.instruction)
            case "input": return .success(chat.input)
            case "response": return .success(chat.response)
            default: break
            }
        }
        var value = record[field]
        if field == "response", value == nil || value == .null { value = record["output"] }
        switch value {
        case nil, .null?: return .success("")
        case .string(let s)?: return .success(s)
        case let other?:
            let name = field == "response" && record["response"] == nil ? "output" : field
            return .failure(TaskFailure(reason: "field '\(name)' must be a string, not \(other.kindDescription)"))
        }
    }

    /// The record's id as text, whether it is a number, and whether it is the record's own;
    /// a content hash id (as the other stages give records without one) when it has none.
    func id() -> (String, isNumber: Bool, own: Bool) {
        switch record["id"] {
        case .string(let s)? where !s.isEmpty: return (s, false, true)
        case .number(let n)?: return (n, true, true)
        default:
            let instruction = chat?.instruction ?? record["instruction"]?.stringValue ?? ""
            let input = chat?.input ?? record["input"]?.stringValue ?? ""
            let response = chat?.response ?? record["response"]?.stringValue ?? record["output"]?.stringValue ?? ""
            return (SampleFields.contentID(instruction: instruction, input: input, response: response), false, false)
        }
    }
}

/// `--keep best`: a record's score is `gra.adjudication.score` when present, else the mean of
/// the round means in `gra.review.rounds`; −∞ without either.
public enum DedupScore {
    public static func of(_ record: JSONObject) -> Double {
        if let s = record.graSection("adjudication")?["score"]?.doubleValue, s.isFinite { return s }
        if let rounds = record.graSection("review")?["rounds"]?.arrayValue {
            let means = rounds.compactMap { $0.objectValue?["mean"]?.doubleValue }.filter(\.isFinite)
            if !means.isEmpty { return means.reduce(0, +) / Double(means.count) }
        }
        return -.infinity
    }
}
