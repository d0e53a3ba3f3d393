import Foundation

#if os(macOS) && arch(x86_64)
/// How stored vectors keep their components (Float16 is unavailable on Intel Macs).
typealias StoredComponent = Float
#else
typealias StoredComponent = Float16
#endif

/// Random-hyperplane LSH for cosine similarity (Charikar's SimHash): each table's code is
/// the signs of a vector's dot products with `bits` random Gaussian hyperplanes; two vectors
/// at angle θ agree on one sign with probability 1 − θ/π, so vectors at cosine ≥ the
/// threshold share some table's code with high probability, and unrelated ones rarely do.
///
/// The hyperplanes come from a splitmix64 stream with a fixed seed (Box–Muller), so codes are
/// the same in every run. They are made when the first vector shows the dimension.
public final class HyperplaneLSH: @unchecked Sendable {
    public let bits = 16
    public let tables: Int
    private let lock = Mutex()
    private var planes: [Float] = []
    private var dimension = 0

    /// The smallest chance, at exactly the cosine threshold, that a pair becomes a candidate.
    public static let targetRecallAtThreshold = 0.99

    public init(cosine: Double) {
        tables = HyperplaneLSH.tables(cosine: cosine, bits: bits)
    }

    /// Tables of `bits`-bit codes needed for a pair at cosine `cosine` to share a code in at
    /// least one table with probability ≥ `targetRecallAtThreshold` (53 at 0.9), at most 256.
    public static func tables(cosine: Double, bits: Int) -> Int {
        let c = Swift.min(1, Swift.max(-1, cosine))
        let agree = 1 - acos(c) / Double.pi
        let perTable = pow(agree, Double(bits))
        if perTable >= 1 { return 1 }
        let n = log(1 - targetRecallAtThreshold) / log(1 - perTable)
        return Swift.min(256, Swift.max(1, Int(n.rounded(.up))))
    }

    /// The chance that a pair at cosine `cosine` shares a code in some table.
    public func candidateProbability(_ cosine: Double) -> Double {
        1 - pow(1 - pow(1 - acos(Swift.min(1, Swift.max(-1, cosine))) / Double.pi, Double(bits)), Double(tables))
    }

    private func hyperplanes(dimension d: Int) -> [Float] {
        lock.locked {
            if dimension != d {
                var state: UInt64 = 0x6772_612D_7369_6D68  // "gra-simh"
                var p: [Float] = []
                p.reserveCapacity(tables * bits * d)
                while p.count < tables * bits * d {
                    // Box–Muller: two uniforms in (0, 1] → two standard normals.
                    let u1 = (Double(StableHash.next(&state) >> 11) + 1) / 9_007_199_254_740_992.0
                    let u2 = Double(StableHash.next(&state) >> 11) / 9_007_199_254_740_992.0
                    let r = (-2 * log(u1)).squareRoot()
                    p.append(Float(r * cos(2 * Double.pi * u2)))
                    p.append(Float(r * sin(2 * Double.pi * u2)))
                }
                planes = Array(p.prefix(tables * bits * d))
                dimension = d
            }
            return planes
        }
    }

    /// The `tables` codes of `vector`, appended to `codes`.
    public func appendCodes(_ vector: [Float], to codes: inout [UInt32]) {
        let d = vector.count
        guard d > 0 else {
            codes.append(contentsOf: repeatElement(0, count: tables))
            return
        }
        let planes = hyperplanes(dimension: d)
        planes.withUnsafeBufferPointer { p in
            vector.withUnsafeBufferPointer { v in
                for t in 0..<tables {
                    var code: UInt32 = 0
                    for b in 0..<bits where dot(p.baseAddress! + (t * bits + b) * d, v.baseAddress!, d) >= 0 {
                        code |= 1 << UInt32(b)
                    }
                    codes.append(code)
                }
            }
        }
    }
}

/// A dot product, eight lanes at a time.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        acc +=
            UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

/// Scales `v` to unit length (a zero vector stays zero).
func unitVector(_ v: [Float]) -> [Float] {
    let norm = v.withUnsafeBufferPointer { dot($0.baseAddress!, $0.baseAddress!, v.count) }.squareRoot()
    guard norm > 0, norm.isFinite else { return v.map { _ in 0 } }
    return v.map { $0 / norm }
}

/// The semantic index: the entries' unit vectors in half precision, their LSH codes, and one
/// `SlotTable` per LSH table.
final class SemanticIndex {
    let lsh: HyperplaneLSH
    private(set) var dimension: Int?
    private var vectors: [StoredComponent] = []
    /// The norm of each stored (rounded) vector, so that cosines are not off by the rounding.
    private var norms: [Float] = []
    private var codes: [UInt32] = []
    private let tables: [SlotTable]
    private(set) var count = 0

    init(lsh: HyperplaneLSH) {
        self.lsh = lsh
        tables = (0..<lsh.tables).map { _ in SlotTable() }
    }

    @inline(__always)
    static func key(_ code: UInt32, table: Int) -> UInt64 {
        StableHash.mix(UInt64(code) | UInt64(table) << 32 | 0x5E3A_0000_0000_0000)
    }

    /// Adds an entry: its unit vector and codes (`lsh.tables` of them).
    func insert(_ vector: [Float], codes entryCodes: ArraySlice<UInt32>) {
        if dimension == nil { dimension = vector.count }
        let entry = count
        var squares: Float = 0
        for x in vector {
            let stored = StoredComponent(x)
            vectors.append(stored)
            squares += Float(stored) * Float(stored)
        }
        norms.append(squares.squareRoot())
        codes.append(contentsOf: entryCodes)
        count += 1
        if tables[0].isFull {
            for t in tables { t.growAndClear() }
            for e in 0..<entry {
                for j in 0..<lsh.tables { tables[j].add(Self.key(codes[e * lsh.tables + j], table: j), entry: e) }
            }
        }
        for j in 0..<lsh.tables { tables[j].add(Self.key(codes[entry * lsh.tables + j], table: j), entry: entry) }
    }

    /// Calls `body(entry, cosine)` once for every entry sharing a code with `vector`.
    func candidates(_ vector: [Float], codes query: ArraySlice<UInt32>, _ body: (Int, Double) -> Void) {
        guard let d = dimension, d == vector.count else { return }
        var seen: [Int] = []
        let first = query.startIndex
        for j in 0..<lsh.tables {
            let code = query[first + j]
            tables[j].lookup(Self.key(code, table: j)) { e in
                guard codes[e * lsh.tables + j] == code, !seen.contains(e) else { return }
                seen.append(e)
                body(e, cosine(vector, e))
            }
        }
    }

    /// The cosine of a unit vector with a stored entry.
    func cosine(_ vector: [Float], _ entry: Int) -> Double {
        guard let d = dimension else { return 0 }
        var s: Float = 0
        vectors.withUnsafeBufferPointer { all in
            let stored = all.baseAddress! + entry * d
            for i in 0..<d { s += vector[i] * Float(stored[i]) }
        }
        return norms[entry] > 0 ? Double(s / norms[entry]) : 0
    }

    var memoryBytes: Int {
        vectors.capacity * MemoryLayout<StoredComponent>.stride + codes.capacity * 4
            + tables.reduce(0) { $0 + $1.memoryBytes }
    }
}

/// Asks an embeddings endpoint for the vectors of a batch of texts (gra-dedup's `semantic`).
public struct DedupEmbedder: Sendable {
    public let client: LLMClient
    public let model: ModelEndpoint
    public var batchSize: Int

    public init(client: LLMClient, model: ModelEndpoint, batchSize: Int = 64) {
        self.client = client
        self.model = model
        self.batchSize = batchSize
    }

    func embed(_ texts: [String], completion: @escaping @Sendable (Result<[[Float]], RequestFailure>) -> Void) {
        client.embeddings(model: model, inputs: texts, batchSize: batchSize, completion: completion)
    }
}
