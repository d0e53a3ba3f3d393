import Foundation
import Testing

@testable import GRAKit

/// Random-hyperplane LSH against brute force (exact all-pairs cosine) on generated vectors.
@Suite("Dedup semantic index")
struct SemanticIndexTests {
    @Test func tableCountFollowsTheThreshold() {
        #expect(HyperplaneLSH.tables(cosine: 0.9, bits: 16) == 53)
        let lsh = HyperplaneLSH(cosine: 0.9)
        #expect(lsh.candidateProbability(0.9) >= 0.99)
        #expect(lsh.candidateProbability(0.5) < 0.1)
        #expect(lsh.candidateProbability(0.3) < 0.02)
        #expect(HyperplaneLSH.tables(cosine: 0.95, bits: 16) < HyperplaneLSH.tables(cosine: 0.9, bits: 16))
    }

    @Test func codesAreStableAcrossInstances() {
        let v = unitVector((0..<48).map { Float(($0 * 37) % 11) - 5 })
        var a: [UInt32] = [], b: [UInt32] = []
        HyperplaneLSH(cosine: 0.9).appendCodes(v, to: &a)
        HyperplaneLSH(cosine: 0.9).appendCodes(v, to: &b)
        #expect(a == b && a.count == 53)
        #expect(Set(a).count > 40)
    }

    /// 1,000 vectors of dimension 64: 200 random directions and 800 noisy copies of them at
    /// cosines spread over 0.75–1. Every pair at cosine ≥ 0.9 must come out of the index as a
    /// candidate in at least 99% of cases; the cosines it reports are the exact ones.
    @Test func recallAgainstAllPairs() {
        var state: UInt64 = 7
        func gaussian() -> Float {
            let u1 = (Double(StableHash.next(&state) >> 11) + 1) / 9_007_199_254_740_992.0
            let u2 = Double(StableHash.next(&state) >> 11) / 9_007_199_254_740_992.0
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        let d = 64
        var vectors: [[Float]] = []
        var bases: [[Float]] = []
        for i in 0..<1000 {
            if i % 5 == 0 || bases.isEmpty {
                let b = unitVector((0..<d).map { _ in gaussian() })
                bases.append(b)
                vectors.append(b)
            } else {
                let base = bases[Int(StableHash.next(&state) % UInt64(bases.count))]
                let noise = Float(Double(StableHash.next(&state) % 1000) / 1000 * 0.12)
                vectors.append(unitVector(base.map { $0 + noise * gaussian() }))
            }
        }
        let lsh = HyperplaneLSH(cosine: 0.9)
        let index = SemanticIndex(lsh: lsh)
        var pairs = 0, found = 0
        for (j, v) in vectors.enumerated() {
            var codes: [UInt32] = []
            lsh.appendCodes(v, to: &codes)
            var candidates: [Int: Double] = [:]
            index.candidates(v, codes: codes[...]) { e, c in candidates[e] = c }
            for i in 0..<j {
                let exact = Double(zip(vectors[i], v).reduce(Float(0)) { $0 + $1.0 * $1.1 })
                if let c = candidates[i] { #expect(abs(c - exact) < 0.002) }
                if exact >= 0.9 {
                    pairs += 1
                    if candidates[i] != nil { found += 1 }
                }
            }
            index.insert(v, codes: codes[...])
        }
        let recall = Double(found) / Double(pairs)
        #expect(pairs > 500)
        #expect(recall >= 0.99, "semantic LSH recall \(recall) over \(pairs) pairs at cosine >= 0.9")
        print("semantic index test: recall \(recall) over \(pairs) pairs at cosine >= 0.9")
    }
}
