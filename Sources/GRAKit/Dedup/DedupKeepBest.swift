/// `--keep best` in two passes. Pass 1 (in input order, as in keep-first) puts each record
/// in a cluster: the first record of a cluster (its anchor) enters the index, and a later
/// record that duplicates an anchor joins that anchor's cluster; every record is spooled to
/// disk, and each cluster remembers its highest-scored member (ties: the first). Pass 2
/// reads the spool in input order and writes each cluster's best member; the others are
/// dropped (or marked) as duplicates of it, with their similarity to it.
///
/// Memory: the index (as in keep-first) plus about 17 bytes per record; the records
/// themselves wait on disk.
final class KeepBestState {
    let spool: DedupSpool
    /// Per record, in input order: its spool offset, its cluster (an index into `bestOrdinal`,
    /// or one of the markers below) and the method by which it joined its cluster.
    private(set) var offsets: [Int] = []
    private(set) var clusterOf: [UInt32] = []
    private(set) var joinedBy: [DedupMethod] = []
    /// Records too close to a reference, and the match.
    private(set) var against: [Int: DedupMatch] = [:]
    /// Per cluster: the record (input ordinal) that survives, and its score.
    private(set) var bestOrdinal: [Int] = []
    private var bestScore: [Double] = []

    static let passThrough = UInt32.max
    static let againstReference = UInt32.max - 1

    init(spool: DedupSpool) { self.spool = spool }

    /// A record without text: written unchanged in pass 2.
    func spoolPassThrough(_ raw: UnsafeBufferPointer<UInt8>) throws(GRAError) {
        offsets.append(
            try spool.append(
                raw: raw, id: "", idIsNumber: false, place: "", extra: UnsafeBufferPointer(start: nil, count: 0)))
        clusterOf.append(Self.passThrough)
        joinedBy.append(.exact)
    }

    /// A record with text, and what `index.match` found for it.
    func spool(
        _ batch: PreparedBatch, slot: Int, raw: UnsafeBufferPointer<UInt8>, place: String, match: DedupMatch?,
        index: DedupIndex
    ) throws(GRAError) {
        let r = batch.records[slot]
        var extra: [UInt8] = []
        withUnsafeBytes(of: r.exactHash.littleEndian) { extra.append(contentsOf: $0) }
        if let minhash = index.minhash {
            extra.append(contentsOf: batch.signatures[(slot * minhash.numPerm)..<((slot + 1) * minhash.numPerm)])
        }
        if index.semantic != nil {
            for x in batch.vectors[slot] {
                withUnsafeBytes(of: x.bitPattern.littleEndian) { extra.append(contentsOf: $0) }
            }
        }
        let ordinal = offsets.count
        offsets.append(
            try extra.withUnsafeBufferPointer { e throws(GRAError) in
                try spool.append(
                    raw: raw, id: r.id, idIsNumber: r.idIsNumber, hasOwnID: r.hasOwnID, place: place, extra: e)
            })
        if let m = match {
            joinedBy.append(m.method)
            if index.isReference(m.entry) {
                clusterOf.append(Self.againstReference)
                against[ordinal] = m
            } else {
                let c = m.entry - index.referenceCount
                clusterOf.append(UInt32(c))
                if r.score > bestScore[c] {
                    bestScore[c] = r.score
                    bestOrdinal[c] = ordinal
                }
            }
        } else {
            try index.insert(batch, slot: slot, name: r.hasOwnID ? nil : place)
            clusterOf.append(UInt32(bestOrdinal.count))
            joinedBy.append(.exact)
            bestOrdinal.append(ordinal)
            bestScore.append(r.score)
        }
    }
}

extension DedupStage {
    /// Pass 2 of `--keep best`: every record in input order, each cluster's best member
    /// written, the others reported as its duplicates.
    func writeBest() throws(GRAError) {
        guard let best = bestState else { return }
        try best.spool.flush()
        var cachedBest: (ordinal: Int, entry: DedupSpool.Entry)?
        for o in best.offsets.indices {
            if Signals.interrupted { throw GRAError.interrupted }
            let e = try best.spool.read(at: best.offsets[o])
            let cluster = best.clusterOf[o]
            switch cluster {
            case KeepBestState.passThrough:
                try e.raw.withUnsafeBufferPointer { (raw) throws(GRAError) in try write(raw) }
            case KeepBestState.againstReference:
                let d = report(best.against[o]!)
                try e.raw.withUnsafeBufferPointer { (raw) throws(GRAError) in
                    try duplicate(e.id, idIsNumber: e.idIsNumber, d, raw: raw, place: e.place)
                }
            default:
                let b = best.bestOrdinal[Int(cluster)]
                if b == o {
                    summary.kept += 1
                    try e.raw.withUnsafeBufferPointer { (raw) throws(GRAError) in try write(raw) }
                    continue
                }
                if cachedBest?.ordinal != b { cachedBest = (b, try best.spool.read(at: best.offsets[b])) }
                let survivor = cachedBest!.entry
                let (method, similarity) = compare(e, survivor, joinedBy: best.joinedBy[o])
                let d = report(method, of: survivor.name, similarity: similarity)
                try e.raw.withUnsafeBufferPointer { (raw) throws(GRAError) in
                    try duplicate(e.id, idIsNumber: e.idIsNumber, d, raw: raw, place: e.place)
                }
            }
        }
    }

    /// How close two spooled records are, by the first method whose threshold they reach
    /// (minhash: the exact Jaccard similarity of their shingle sets); for a record that joined
    /// its cluster through another member (a chain), the method it joined by, with the
    /// similarity measured to the survivor.
    private func compare(_ a: DedupSpool.Entry, _ b: DedupSpool.Entry, joinedBy: DedupMethod) -> (DedupMethod, Double) {
        let x = a.extra, y = b.extra
        func hash(_ b: [UInt8]) -> UInt64 {
            b.prefix(8).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
        let sameText = hash(x) == hash(y)
        if options.methods.contains(.exact) && sameText { return (.exact, 1) }
        var jaccard = sameText ? 1.0 : 0.0
        let vectorsStart = 8 + (index.minhash?.numPerm ?? 0)
        if index.minhash != nil, !sameText {
            // Both parsed once as records with string fields.
            if let u = DedupTextStore.shingles(ofRecord: a.raw, fields: options.fields, shingle: options.shingle),
                let v = DedupTextStore.shingles(ofRecord: b.raw, fields: options.fields, shingle: options.shingle)
            {
                jaccard = DedupTextStore.jaccard(u, v)
            }
        }
        if index.minhash != nil && jaccard >= options.threshold { return (.minhash, jaccard) }
        if index.semantic != nil {
            func vector(_ b: [UInt8]) -> [Float] {
                stride(from: vectorsStart, to: b.count, by: 4).map { i in
                    Float(
                        bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3])
                            << 24)
                }
            }
            let u = vector(x), v = vector(y)
            let cosine = u.count == v.count ? Double(zip(u, v).reduce(Float(0)) { $0 + $1.0 * $1.1 }) : 0
            if cosine >= options.cosine || joinedBy == .semantic { return (.semantic, cosine) }
        }
        return (joinedBy, jaccard)
    }
}
