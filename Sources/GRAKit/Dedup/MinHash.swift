#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MinHash signatures: `numPerm` hash functions, each keeping its smallest value over a
/// record's shingle hashes; two records' signatures agree in a position with probability
/// equal to the Jaccard similarity of their shingle sets.
///
/// The hash functions are multiply-add-shift (Dietzfelbinger):
/// `h_i(x) = ((a_i · x + b_i) mod 2^64) >> 32`, with `a_i` (forced odd) and `b_i` drawn in
/// turn from a splitmix64 stream started at `seed`. `x` is a shingle's 64-bit hash
/// (`ShingleSpec`), already well mixed. Fixed constants make signatures the same on every
/// machine and in every run.
public struct MinHasher: Sendable {
    public let numPerm: Int
    let a: [UInt64]
    let b: [UInt64]

    /// The splitmix64 seed of the `a_i, b_i` stream ("gra-dedu" in ASCII).
    public static let seed: UInt64 = 0x6772_612D_6465_6475

    public init(numPerm: Int) {
        self.numPerm = numPerm
        var state = MinHasher.seed
        var a: [UInt64] = []
        var b: [UInt64] = []
        for _ in 0..<numPerm {
            a.append(StableHash.next(&state) | 1)
            b.append(StableHash.next(&state))
        }
        self.a = a
        self.b = b
    }

    /// Writes the `numPerm` minima over `shingles` to `mins` (all `UInt32.max` when there are
    /// no shingles).
    public func signature(_ shingles: UnsafeBufferPointer<UInt64>, into mins: UnsafeMutablePointer<UInt32>) {
        let n = numPerm
        mins.update(repeating: .max, count: n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for x in shingles {
                    for i in 0..<n {
                        let h = UInt32(truncatingIfNeeded: (a[i] &* x &+ b[i]) >> 32)
                        mins[i] = Swift.min(mins[i], h)
                    }
                }
            }
        }
    }

    /// The signature of `shingles`, as full 32-bit minima.
    public func signature(_ shingles: [UInt64]) -> [UInt32] {
        var mins = [UInt32](repeating: 0, count: numPerm)
        shingles.withUnsafeBufferPointer { s in
            mins.withUnsafeMutableBufferPointer { signature(s, into: $0.baseAddress!) }
        }
        return mins
    }
}

/// How a signature is stored and compared: the low 8 bits of each minimum ("b-bit minwise
/// hashing", Li and König), 1 byte a position instead of 4.
///
/// Two different minima agree in their low byte with probability 1/256, so the share `m` of
/// agreeing bytes estimates `J + (1 − J)/256`; `similarity` corrects for it:
/// `J ≈ (m − 1/256) / (1 − 1/256)`, clamped to [0, 1]. At the similarities dedup cares about
/// the estimate's spread is that of full-width signatures.
public enum CompactSignature {
    @inline(__always)
    public static func byte(_ minimum: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: minimum) }

    /// Estimated Jaccard similarity of two stored signatures of `count` bytes.
    @inline(__always)
    public static func similarity(_ x: UnsafePointer<UInt8>, _ y: UnsafePointer<UInt8>, count: Int) -> Double {
        var same = 0
        for i in 0..<count where x[i] == y[i] { same += 1 }
        let chance = 1.0 / 256
        let j = (Double(same) / Double(count) - chance) / (1 - chance)
        return Swift.min(1, Swift.max(0, j))
    }
}

/// The LSH banding of signatures: `bands` groups of `rows` positions; two records become a
/// candidate pair when all rows of at least one band agree, which happens with probability
/// `1 − (1 − J^rows)^bands` for Jaccard similarity `J`.
public struct LSHBanding: Sendable, Equatable, CustomStringConvertible {
    public var bands: Int
    public var rows: Int

    public init(bands: Int, rows: Int) {
        self.bands = bands
        self.rows = rows
    }

    /// The smallest chance, at exactly the threshold, of a pair becoming a candidate that the
    /// automatic choice accepts.
    public static let targetRecallAtThreshold = 0.98

    /// Bands × rows for `threshold`, favouring recall: the most rows per band (fewest chance
    /// candidates) for which a pair at exactly the threshold still becomes a candidate with
    /// probability ≥ `targetRecallAtThreshold`, with as many bands as `numPerm` allows.
    /// For 128 permutations at 0.8 that is 18 bands × 7 rows (0.986 at J = 0.8, 0.999 at
    /// 0.85, 0.13 at 0.5). `bands` or `rows` given alone fix one and fill the other;
    /// both given must fit in `numPerm`.
    public static func choose(threshold: Double, numPerm: Int, bands: Int? = nil, rows: Int? = nil) throws(GRAError)
        -> LSHBanding
    {
        switch (bands, rows) {
        case let (b?, r?):
            guard b > 0, r > 0, b * r <= numPerm else {
                throw GRAError.usage(
                    "--bands \(b) × --rows \(r) must be positive and use at most --num-perm \(numPerm) positions")
            }
            return LSHBanding(bands: b, rows: r)
        case let (b?, nil):
            guard b > 0, b <= numPerm else { throw GRAError.usage("--bands must be 1...\(numPerm) (--num-perm)") }
            return LSHBanding(bands: b, rows: numPerm / b)
        case let (nil, r?):
            guard r > 0, r <= numPerm else { throw GRAError.usage("--rows must be 1...\(numPerm) (--num-perm)") }
            return LSHBanding(bands: numPerm / r, rows: r)
        case (nil, nil):
            var best = LSHBanding(bands: numPerm, rows: 1)
            for r in 1...numPerm {
                let candidate = LSHBanding(bands: numPerm / r, rows: r)
                if candidate.candidateProbability(threshold) >= targetRecallAtThreshold { best = candidate }
            }
            return best
        }
    }

    /// The chance that a pair with Jaccard similarity `j` becomes a candidate.
    public func candidateProbability(_ j: Double) -> Double {
        1 - pow(1 - pow(j, Double(rows)), Double(bands))
    }

    public var description: String { "\(bands) bands × \(rows) rows" }
}

/// Large zero-filled blocks straight from the kernel (mmap), returned with munmap. The
/// index's tables and signature chunks live here rather than in malloc's heap, which the
/// tools tune to keep freed memory (for the client's many small buffers): a table freed
/// when it grows would otherwise stay resident.
enum PageMemory {
    static func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let bytes = Swift.max(1, count * MemoryLayout<T>.stride)
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED
        else {
            fatalError("out of memory: cannot map \(bytes) bytes")
        }
        return p.bindMemory(to: T.self, capacity: count)
    }

    static func free<T>(_ p: UnsafeMutablePointer<T>, count: Int) {
        munmap(UnsafeMutableRawPointer(p), Swift.max(1, count * MemoryLayout<T>.stride))
    }
}

/// An open-addressing multimap from 64-bit hashes to entry numbers, 4 bytes a slot: a
/// 4-bit tag from the hash (so most foreign slots are passed over without looking at the
/// entry) and the entry number + 1 in 28 bits; 0 marks an empty slot. Linear probing from
/// the slot the hash's high 32 bits pick (multiply-shift, so any table size works); the owner
/// grows the table by half at 75% load and adds its entries again.
final class SlotTable {
    private var slots: UnsafeMutablePointer<UInt32>
    private var capacity: Int
    private(set) var count = 0

    /// Entry numbers must stay below this (2^28 − 1).
    static let maxEntries = (1 << 28) - 1

    init(capacity: Int = 1024) {
        self.capacity = capacity
        slots = PageMemory.allocate(UInt32.self, count: capacity)
    }

    deinit { PageMemory.free(slots, count: capacity) }

    @inline(__always) private static func tag(_ hash: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: hash & 0xF) << 28 }
    @inline(__always) private func position(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: ((hash >> 32) &* UInt64(capacity)) >> 32)
    }

    /// True when one more entry would pass 75% load.
    var isFull: Bool { (count + 1) * 4 > capacity * 3 }

    /// Adds an entry (the caller grows the table first when `isFull`).
    @inline(__always)
    func add(_ hash: UInt64, entry: Int) {
        var i = position(hash)
        while slots[i] != 0 {
            i += 1
            if i == capacity { i = 0 }
        }
        slots[i] = SlotTable.tag(hash) | UInt32(entry + 1)
        count += 1
    }

    /// Grows the table by half and empties it: the caller adds every entry again, in entry
    /// order (reading the entries' data sequentially, which is much faster than following
    /// the old slots to entries scattered in memory).
    func growAndClear() {
        PageMemory.free(slots, count: capacity)
        capacity += capacity / 2
        slots = PageMemory.allocate(UInt32.self, count: capacity)
        count = 0
    }

    /// Calls `body` with every entry inserted under a hash with the same position and tag as
    /// `hash` (the caller confirms the match).
    @inline(__always)
    func lookup(_ hash: UInt64, _ body: (Int) -> Void) {
        let tag = SlotTable.tag(hash)
        var i = position(hash)
        while true {
            let v = slots[i]
            if v == 0 { return }
            if v & 0xF000_0000 == tag { body(Int(v & 0x0FFF_FFFF) - 1) }
            i += 1
            if i == capacity { i = 0 }
        }
    }

    /// Bytes held.
    var memoryBytes: Int { capacity * 4 }
}

/// Fixed-size records in chunks of 65,536 that never move: appending never copies what is
/// stored (a growing array would briefly hold its contents twice).
final class ChunkedRecords {
    let recordSize: Int
    private var chunks: [UnsafeMutablePointer<UInt8>] = []
    private(set) var count = 0
    static let chunkShift = 16

    init(recordSize: Int) { self.recordSize = recordSize }

    deinit { for c in chunks { PageMemory.free(c, count: recordSize << Self.chunkShift) } }

    func append(_ bytes: UnsafePointer<UInt8>) {
        if count >> Self.chunkShift == chunks.count {
            chunks.append(PageMemory.allocate(UInt8.self, count: recordSize << Self.chunkShift))
        }
        (chunks[count >> Self.chunkShift] + (count & 0xFFFF) * recordSize).update(from: bytes, count: recordSize)
        count += 1
    }

    @inline(__always)
    subscript(_ i: Int) -> UnsafePointer<UInt8> {
        UnsafePointer(chunks[i >> Self.chunkShift] + (i & 0xFFFF) * recordSize)
    }

    var memoryBytes: Int { chunks.count * (recordSize << Self.chunkShift) }
}

/// The near-duplicate index: the compact signatures of the entries (references and kept
/// records) and one `SlotTable` per LSH band. Entries are numbered in insertion order.
final class MinHashIndex {
    let numPerm: Int
    let banding: LSHBanding
    private let signatures: ChunkedRecords
    private let tables: [SlotTable]
    private(set) var count = 0

    init(numPerm: Int, banding: LSHBanding) {
        self.numPerm = numPerm
        self.banding = banding
        signatures = ChunkedRecords(recordSize: numPerm)
        tables = (0..<banding.bands).map { _ in SlotTable() }
    }

    /// The hash of band `band` of a stored signature (its `rows` bytes).
    @inline(__always)
    static func bandKey(_ signature: UnsafePointer<UInt8>, band: Int, rows: Int) -> UInt64 {
        StableHash.bytes(signature + band * rows, count: rows, seed: StableHash.mix(0x6261_6E64 &+ UInt64(band)))
    }

    /// Writes the band keys of `signature` to `keys` (`banding.bands` of them).
    static func bandKeys(
        _ signature: UnsafePointer<UInt8>, banding: LSHBanding, into keys: UnsafeMutablePointer<UInt64>
    ) {
        for j in 0..<banding.bands { keys[j] = bandKey(signature, band: j, rows: banding.rows) }
    }

    /// Adds an entry (number `count`).
    func insert(_ signature: UnsafePointer<UInt8>, keys: UnsafePointer<UInt64>) {
        let entry = count
        signatures.append(signature)
        count += 1
        if tables[0].isFull {
            // Every band table holds every entry: grow them all in one pass over the signatures.
            for t in tables { t.growAndClear() }
            let rows = banding.rows
            for e in 0..<entry {
                let sig = signatures[e]
                for j in 0..<banding.bands { tables[j].add(MinHashIndex.bandKey(sig, band: j, rows: rows), entry: e) }
            }
        }
        for j in 0..<banding.bands { tables[j].add(keys[j], entry: entry) }
    }

    /// Calls `body(entry, similarity)` once for every entry sharing at least one band with
    /// `signature`, with its estimated Jaccard similarity.
    func candidates(_ signature: UnsafePointer<UInt8>, keys: UnsafePointer<UInt64>, _ body: (Int, Double) -> Void) {
        var seen: [Int] = []
        let rows = banding.rows
        let n = numPerm
        for j in 0..<banding.bands {
            tables[j].lookup(keys[j]) { e in
                let other = signatures[e]
                guard memcmp(other + j * rows, signature + j * rows, rows) == 0, !seen.contains(e) else { return }
                seen.append(e)
                body(e, CompactSignature.similarity(signature, other, count: n))
            }
        }
    }

    /// The stored signature of `entry`.
    func withSignature<T>(_ entry: Int, _ body: (UnsafePointer<UInt8>) -> T) -> T {
        body(signatures[entry])
    }

    var memoryBytes: Int { signatures.memoryBytes + tables.reduce(0) { $0 + $1.memoryBytes } }
}
