import Foundation

/// The samples a reviewer is shown next to the one it judges (`gra-review --neighbours`): the
/// records of the neighbour files (the seeds, samples kept in earlier rounds), and for any
/// sample its `k` nearest among them by estimated Jaccard similarity of their MinHash
/// signatures, over the text gra-dedup compares (instruction and input, normalized, with
/// gra-dedup's shingles, hash family and 1-byte signature positions).
///
/// Nearest is exact over the estimates: every stored signature is compared (128 bytes each), so
/// a sample with no near copy still gets its closest ones, which LSH would not find. At 50,000
/// neighbours that is about 1.5 ms a sample, against seconds for its reviews. With an embeddings
/// model (`setVectors`), nearest is by exact cosine of the entries' unit vectors instead, over
/// the text gra-dedup --method semantic embeds. One thread at a time (it keeps scratch
/// buffers): a stage's handlers run on one thread.
public final class NeighbourIndex: @unchecked Sendable {
    /// One neighbour as the prompt shows it.
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var instruction: String
        public var input: String
        public var response: String
    }

    public private(set) var entries: [Entry] = []
    public let shingle: ShingleSpec
    private let hasher: MinHasher
    /// `hasher.numPerm` bytes per entry.
    private var signatures: [UInt8] = []
    private var tokens: [UInt64] = []
    /// `dimension` floats per entry, unit length, once `setVectors` was called.
    private var vectors: [Float] = []
    public private(set) var dimension = 0
    /// Nearest by embeddings (`setVectors` was called) rather than by MinHash.
    public var usesEmbeddings: Bool { dimension > 0 }
    /// What an embeddings model is given for each entry: gra-dedup's semantic text.
    public var texts: [String] { entries.map { DedupText.semanticText([$0.instruction, $0.input]) } }
    private var shingles: [UInt64] = []

    /// The default shingles: single words, so that samples on the same topic are near even
    /// when no phrase repeats (gra-dedup's 5-word shingles find copies, not topics).
    public static let defaultShingle = ShingleSpec(unit: .word, size: 1)

    public init(shingle: ShingleSpec = NeighbourIndex.defaultShingle, numPerm: Int = 128) {
        self.shingle = shingle
        hasher = MinHasher(numPerm: numPerm)
    }

    /// Reads gra NDJSON files (a file that does not exist is an error: it was named).
    public static func load(
        _ paths: [String], shingle: ShingleSpec = NeighbourIndex.defaultShingle
    ) throws(GRAError) -> NeighbourIndex {
        let index = NeighbourIndex(shingle: shingle)
        for path in paths {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw GRAError.noInput("cannot read --neighbours \(path)")
            }
            try InputFile.forEachRecord(path) { (o: JSONObject) throws(GRAError) in index.add(o) }
        }
        return index
    }

    /// Adds a record with an instruction; others (no text to compare) are left out.
    public func add(_ record: JSONObject) {
        guard let instruction = record["instruction"]?.stringValue else { return }
        let input = record["input"]?.stringValue ?? ""
        guard let signature = signature(instruction: instruction, input: input) else { return }
        let response = (record["response"] ?? record["output"])?.stringValue ?? ""
        let id = record["id"]?.stringValue ?? record["id"].map { JSONWriter.string($0) } ?? ""
        entries.append(Entry(id: id, instruction: instruction, input: input, response: response))
        signatures.append(contentsOf: signature)
    }

    /// The `k` nearest entries to a sample, most similar first (ties: the earlier entry), leaving
    /// out entries with the sample's own id.
    public func nearest(instruction: String, input: String, id: String?, k: Int) -> [(entry: Int, similarity: Double)] {
        guard k > 0, let signature = signature(instruction: instruction, input: input) else { return [] }
        let n = hasher.numPerm
        var best: [(entry: Int, similarity: Double)] = []
        signature.withUnsafeBufferPointer { q in
            signatures.withUnsafeBufferPointer { all in
                for e in entries.indices {
                    if let id, entries[e].id == id { continue }
                    NeighbourIndex.keep(
                        e, CompactSignature.similarity(q.baseAddress!, all.baseAddress! + e * n, count: n), in: &best,
                        k: k)
                }
            }
        }
        return best
    }

    /// Switches to embeddings: one vector per entry (of `texts`), all of one length; stored
    /// normalized.
    public func setVectors(_ v: [[Float]]) throws(GRAError) {
        guard v.count == entries.count, let d = v.first?.count, d > 0, v.allSatisfy({ $0.count == d }) else {
            throw GRAError.unavailable("the neighbours' embeddings are not \(entries.count) vectors of one length")
        }
        vectors.removeAll(keepingCapacity: true)
        vectors.reserveCapacity(v.count * d)
        for x in v { vectors.append(contentsOf: NeighbourIndex.unit(x)) }
        dimension = d
    }

    /// Embeds every entry with `model` (through the client's cache) and switches to embeddings;
    /// waits for the vectors.
    public func embed(model: ModelEndpoint, client: LLMClient) throws(GRAError) {
        guard !entries.isEmpty else { return }
        try setVectors(EmbeddingMap.embed(texts, model: model, client: client, for: "the neighbours"))
    }

    /// The `k` entries nearest to a sample's vector by cosine, most similar first (ties: the
    /// earlier entry), leaving out entries with the sample's own id.
    public func nearest(vector: [Float], id: String?, k: Int) -> [(entry: Int, similarity: Double)] {
        guard k > 0, vector.count == dimension else { return [] }
        let q = NeighbourIndex.unit(vector)
        var best: [(entry: Int, similarity: Double)] = []
        vectors.withUnsafeBufferPointer { all in
            for e in entries.indices {
                if let id, entries[e].id == id { continue }
                var dot: Float = 0
                let row = all.baseAddress! + e * dimension
                for j in 0..<dimension { dot += q[j] * row[j] }
                NeighbourIndex.keep(e, Double(dot), in: &best, k: k)
            }
        }
        return best
    }

    /// Keeps `best` the `k` most similar so far, most similar first; an entry seen later does not
    /// pass one with the same similarity.
    @inline(__always)
    static func keep(_ entry: Int, _ similarity: Double, in best: inout [(entry: Int, similarity: Double)], k: Int) {
        if best.count == k && similarity <= best[k - 1].similarity { return }
        var i = best.count
        while i > 0 && best[i - 1].similarity < similarity { i -= 1 }
        best.insert((entry, similarity), at: i)
        if best.count > k { best.removeLast() }
    }

    static func unit(_ x: [Float]) -> [Float] {
        let norm = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? x.map { $0 / norm } : x
    }

    /// The stored signature of a text (gra-dedup's text of the two fields), or nil when it has
    /// no shingle.
    private func signature(instruction: String, input: String) -> [UInt8]? {
        var text: [UInt8] = []
        DedupText.appendField(instruction, to: &text)
        DedupText.appendField(input, to: &text)
        shingles.removeAll(keepingCapacity: true)
        text.withUnsafeBufferPointer { shingle.appendShingleHashes(of: $0, tokens: &tokens, to: &shingles) }
        guard !shingles.isEmpty else { return nil }
        return hasher.signature(shingles).map(CompactSignature.byte)
    }
}
