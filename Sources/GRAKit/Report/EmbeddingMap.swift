import Foundation

/// The paper's coverage figure: the instructions of the seeds, the generated samples and the
/// dataset, embedded by a model and projected onto their first two principal components, so
/// that one can see whether the new data covers the seeds' ground or clumps in a corner.
public struct EmbeddingMap: Sendable, Equatable {
    /// One named set of points on the map.
    public struct PointSet: Sendable, Equatable {
        public var name: String
        public var x: [Double]
        public var y: [Double]
    }

    public var model: String
    public var sets: [PointSet]
    /// The share of the total variance on each axis (PC1, PC2).
    public var explained: [Double]

    /// Embeds each set's texts with `model` and projects all of them together.
    public static func make(
        sets: [(name: String, texts: [String])], model: ModelEndpoint, client: LLMClient
    ) throws(GRAError) -> EmbeddingMap {
        var rows: [[Float]] = []
        var counts: [Int] = []
        for set in sets {
            let vectors = try embed(set.texts, model: model, client: client)
            rows += vectors
            counts.append(vectors.count)
        }
        let (projected, explained) = principalComponents(rows)
        var result: [PointSet] = []
        var start = 0
        for (set, n) in zip(sets, counts) {
            let part = projected[start..<(start + n)]
            result.append(PointSet(name: set.name, x: part.map { $0.0 }, y: part.map { $0.1 }))
            start += n
        }
        return EmbeddingMap(model: model.name, sets: result, explained: explained)
    }

    /// The vectors of `texts`, waiting for the client (which caches them like every request).
    static func embed(
        _ texts: [String], model: ModelEndpoint, client: LLMClient, for purpose: String = "the map"
    ) throws(GRAError) -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let result = ResultBox<Result<[[Float]], RequestFailure>>.wait { done in
            client.embeddings(model: model, inputs: texts, completion: done)
        }
        switch result {
        case .success(let vectors): return vectors
        case .failure(let f):
            throw GRAError.unavailable("embeddings from \(model.name) for \(purpose): \(f.message)")
        }
    }

    /// Projects `rows` (one vector each, all of one length) onto their first two principal
    /// components: the rows are centred, each component is found by power iteration on XᵀX
    /// without forming it (X(Xᵀv): O(rows × dimensions) a step), the second kept orthogonal
    /// to the first. Deterministic: a fixed start vector, and each axis signed so that its
    /// largest coordinate is positive. Returns the points and each axis's share of the variance.
    public static func principalComponents(_ rows: [[Float]], iterations: Int = 200) -> (
        points: [(Double, Double)], explained: [Double]
    ) {
        guard let d = rows.first?.count, d > 0, rows.allSatisfy({ $0.count == d }) else {
            return (rows.map { _ in (0, 0) }, [0, 0])
        }
        let n = rows.count
        var mean = [Double](repeating: 0, count: d)
        for r in rows { for j in 0..<d { mean[j] += Double(r[j]) } }
        for j in 0..<d { mean[j] /= Double(n) }
        let x: [[Double]] = rows.map { r in (0..<d).map { Double(r[$0]) - mean[$0] } }
        let total = x.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }

        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        func normalized(_ v: [Double]) -> [Double] {
            let norm = dot(v, v).squareRoot()
            return norm > 0 ? v.map { $0 / norm } : v
        }
        /// Xᵀ(Xv).
        func covarianceTimes(_ v: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: d)
            for row in x {
                let s = dot(row, v)
                if s != 0 { for j in 0..<d { out[j] += s * row[j] } }
            }
            return out
        }
        var components: [[Double]] = []
        var explained: [Double] = []
        for k in 0..<2 {
            var v = normalized((0..<d).map { 1 / Double($0 + 1 + k) + Double(($0 * 7 + k * 3) % 5) / 10 })
            for _ in 0..<iterations {
                var w = covarianceTimes(v)
                for c in components {
                    let p = dot(w, c)
                    w = zip(w, c).map { $0 - p * $1 }
                }
                let next = normalized(w)
                if dot(next, next) == 0 { break }
                let change = zip(next, v).reduce(0) { max($0, abs($1.0 - $1.1)) }
                v = next
                if change < 1e-12 { break }
            }
            if let largest = v.indices.max(by: { abs(v[$0]) < abs(v[$1]) }), v[largest] < 0 { v = v.map { -$0 } }
            components.append(v)
            let variance = x.reduce(0) {
                let s = dot($1, v)
                return $0 + s * s
            }
            explained.append(total > 0 ? variance / total : 0)
        }
        let points = x.map { (dot($0, components[0]), dot($0, components[1])) }
        return (points, explained)
    }
}

/// A uniform sample of at most `limit` texts from a stream (reservoir sampling with a fixed
/// seed, so the same run gives the same map).
public struct TextSample: Sendable, Equatable {
    public let limit: Int
    public private(set) var texts: [String] = []
    public private(set) var seen = 0
    private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    public init(limit: Int) { self.limit = max(0, limit) }

    public mutating func add(_ text: String) {
        seen += 1
        if texts.count < limit {
            texts.append(text)
            return
        }
        // xorshift64*: a slot in 0..<seen; the text replaces a kept one when it is below limit.
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        let slot = Int((state &* 0x2545_F491_4F6C_DD1D) % UInt64(seen))
        if slot < limit { texts[slot] = text }
    }
}
