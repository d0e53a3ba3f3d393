/// The ways gra-dedup finds duplicates.
public enum DedupMethod: String, CaseIterable, Sendable, Comparable {
    /// Equal normalized text (a 64-bit hash of it).
    case exact
    /// Near duplicates: MinHash + LSH over shingles propose candidates, verified by the exact
    /// Jaccard similarity of the shingle sets.
    case minhash
    /// Embeddings whose cosine similarity reaches `--cosine`.
    case semantic

    public static func < (a: DedupMethod, b: DedupMethod) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses a comma-separated list ("exact,minhash").
    public static func list(_ text: String) throws(GRAError) -> Set<DedupMethod> {
        var methods: Set<DedupMethod> = []
        for part in text.split(separator: ",") {
            let name = part.trimmingWhitespace()
            guard let m = DedupMethod(rawValue: name) else {
                throw GRAError.usage("--method: unknown method '\(name)' (expected exact, minhash, semantic)")
            }
            methods.insert(m)
        }
        guard !methods.isEmpty else { throw GRAError.usage("--method: name at least one of exact, minhash, semantic") }
        return methods
    }
}

/// A record found to duplicate an entry of the index.
struct DedupMatch {
    var entry: Int
    var method: DedupMethod
    var similarity: Double
}

/// Everything gra-dedup remembers of the records it compares against: the reference sets
/// (entries `0..<referenceCount`) and then every kept record, each with its id and, per
/// method, its exact hash, compact MinHash signature (with where its text can be read again:
/// `DedupTextStore`) and embedding. Never the text in memory: memory grows with the number
/// of entries times the size of a signature.
///
/// MinHash verification: LSH banding proposes candidates; a candidate whose estimated
/// similarity (from the signatures) is at least `threshold − verifyMargin` has its text
/// read again and the exact Jaccard similarity of the two shingle sets computed; it is a
/// duplicate when that reaches `threshold`, and that exact value is its similarity.
final class DedupIndex {
    let methods: Set<DedupMethod>
    let threshold: Double
    let cosine: Double
    private(set) var exact: ExactIndex?
    private(set) var minhash: MinHashIndex?
    private(set) var semantic: SemanticIndex?
    /// Where each entry's compared text can be read again (`minhash`).
    let texts: DedupTextStore?
    /// Candidates estimated below `threshold − verifyMargin` are not verified.
    let verifyMargin: Double
    /// Candidate pairs proposed by LSH, and those verified exactly (for benchmarks).
    private(set) var candidatePairs = 0
    private(set) var verifiedPairs = 0
    private var found: [Int] = []
    private var queryShingles: [UInt64] = []
    private var entryShingles: [UInt64] = []
    private var idBytes: [UInt8] = []
    private var idEnds: [Int] = []
    private(set) var referenceCount = 0
    /// The reference file of each reference entry (an index into `referenceFiles`).
    private var referenceFileOf: [Int32] = []
    var referenceFiles: [String] = []

    /// `texts` defaults to a store for the default fields and shingles.
    init(
        methods: Set<DedupMethod>, numPerm: Int, banding: LSHBanding, threshold: Double, cosine: Double,
        lsh: HyperplaneLSH? = nil,
        texts: DedupTextStore? = nil
    ) {
        self.methods = methods
        self.threshold = threshold
        self.cosine = cosine
        verifyMargin = Self.verifyMargin(threshold: threshold, numPerm: numPerm)
        if methods.contains(.exact) { exact = ExactIndex() }
        if methods.contains(.minhash) {
            minhash = MinHashIndex(numPerm: numPerm, banding: banding)
            self.texts = texts ?? DedupTextStore(fields: DedupOptions().fields, shingle: .default)
        } else {
            self.texts = nil
        }
        if methods.contains(.semantic) { semantic = SemanticIndex(lsh: lsh ?? HyperplaneLSH(cosine: cosine)) }
    }

    var count: Int { idEnds.count }

    /// How far under the threshold an estimate may be for the pair to be verified: 4.5
    /// standard deviations of a `numPerm`-position estimate at the threshold (the widest at
    /// similarities ≥ threshold), at least 0.02; 0.16 for 128 positions at 0.8. A pair at the
    /// threshold is estimated that far under it about once in 300,000.
    static func verifyMargin(threshold t: Double, numPerm: Int) -> Double {
        let variance = t <= 0.5 ? 0.25 : t * (1 - t)
        return Swift.max(0.02, 4.5 * (variance / Double(numPerm)).squareRoot())
    }

    func id(_ entry: Int) -> String {
        let start = entry == 0 ? 0 : idEnds[entry - 1]
        return String(decoding: idBytes[start..<idEnds[entry]], as: UTF8.self)
    }

    func isReference(_ entry: Int) -> Bool { entry < referenceCount }

    func referenceFile(_ entry: Int) -> String { referenceFiles[Int(referenceFileOf[entry])] }

    /// Adds the record in `slot` of `batch` as the next entry, named in reports by its id or
    /// by `name` (its place, for a record without an `id` field).
    func insert(_ batch: PreparedBatch, slot: Int, referenceFile: Int? = nil, name: String? = nil) throws(GRAError) {
        guard count < SlotTable.maxEntries else {
            throw GRAError.usage("more than \(SlotTable.maxEntries) records to remember: split the input (--shard)")
        }
        let r = batch.records[slot]
        if let referenceFile {
            precondition(referenceCount == count, "references come first")
            referenceCount += 1
            referenceFileOf.append(Int32(referenceFile))
        }
        idBytes.append(contentsOf: (name ?? r.id).utf8)
        idEnds.append(idBytes.count)
        exact?.insert(r.exactHash)
        if let minhash {
            try texts!.add(batch, slot: slot)
            batch.signatures.withUnsafeBufferPointer { s in
                batch.bandKeys.withUnsafeBufferPointer { k in
                    minhash.insert(
                        s.baseAddress! + slot * minhash.numPerm, keys: k.baseAddress! + slot * minhash.banding.bands)
                }
            }
        }
        if let semantic {
            let t = semantic.lsh.tables
            semantic.insert(batch.vectors[slot], codes: batch.semanticCodes[(slot * t)..<((slot + 1) * t)])
        }
    }

    /// The entry the record in `slot` duplicates, if any. A reference wins over a kept record
    /// (decontamination first); then exact over minhash over semantic; then the highest
    /// similarity; then the earliest entry.
    func match(_ batch: PreparedBatch, slot: Int) throws(GRAError) -> DedupMatch? {
        var bestReference: DedupMatch?
        var bestKept: DedupMatch?
        func consider(_ m: DedupMatch) {
            func better(_ a: DedupMatch, _ b: DedupMatch?) -> Bool {
                guard let b else { return true }
                if a.method != b.method { return a.method < b.method }
                if a.similarity != b.similarity { return a.similarity > b.similarity }
                return a.entry < b.entry
            }
            if isReference(m.entry) {
                if better(m, bestReference) { bestReference = m }
            } else if better(m, bestKept) {
                bestKept = m
            }
        }
        func settled() -> Bool { bestReference != nil || (bestKept != nil && referenceCount == 0) }

        let r = batch.records[slot]
        if let exact, let e = exact.first(r.exactHash) {
            consider(DedupMatch(entry: e, method: .exact, similarity: 1))
            // The first entry with the hash is a reference if any reference has it.
            if settled() { return bestReference ?? bestKept }
        }
        if let minhash, let texts {
            let least = threshold - verifyMargin
            found.removeAll(keepingCapacity: true)
            batch.signatures.withUnsafeBufferPointer { s in
                batch.bandKeys.withUnsafeBufferPointer { k in
                    minhash.candidates(
                        s.baseAddress! + slot * minhash.numPerm, keys: k.baseAddress! + slot * minhash.banding.bands
                    ) { e, estimate in
                        candidatePairs += 1
                        if estimate >= least { found.append(e) }
                    }
                }
            }
            if !found.isEmpty {
                // References (the lowest entries) first: once one is a duplicate, no kept record
                // can win, nor can a near duplicate beat an exact one.
                found.sort()
                queryShingles.removeAll(keepingCapacity: true)
                queryShingles.append(contentsOf: batch.shingles[r.shingleStart..<(r.shingleStart + r.shingleCount)])
                DedupTextStore.sortDistinct(&queryShingles)
                for e in found {
                    if isReference(e)
                        ? bestReference?.method == .exact : (bestReference != nil || bestKept?.method == .exact)
                    {
                        continue
                    }
                    try texts.shingles(of: e, into: &entryShingles)
                    verifiedPairs += 1
                    let similarity = DedupTextStore.jaccard(queryShingles, entryShingles)
                    if similarity >= threshold {
                        consider(DedupMatch(entry: e, method: .minhash, similarity: similarity))
                    }
                }
            }
            if settled() { return bestReference ?? bestKept }
        }
        if let semantic {
            let t = semantic.lsh.tables
            let cosine = self.cosine
            semantic.candidates(batch.vectors[slot], codes: batch.semanticCodes[(slot * t)..<((slot + 1) * t)]) {
                e, similarity in
                if similarity >= cosine { consider(DedupMatch(entry: e, method: .semantic, similarity: similarity)) }
            }
        }
        return bestReference ?? bestKept
    }

    /// Approximate bytes held by the index.
    var memoryBytes: Int {
        idBytes.capacity + idEnds.capacity * 8 + (exact?.memoryBytes ?? 0) + (minhash?.memoryBytes ?? 0)
            + (texts?.memoryBytes ?? 0)
            + (semantic?.memoryBytes ?? 0)
    }
}
