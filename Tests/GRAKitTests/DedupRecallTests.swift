import Foundation
import Testing

@testable import GRAKit

/// MinHash + LSH against brute force on a generated set of 1,000 records: 400 unrelated
/// base texts and 600 near copies of them with 0–8 word substitutions, so true Jaccard
/// similarities spread over 0.5–1.0, with many pairs just under the threshold (3 edits:
/// ≈ 0.79). True similarities are computed here from word 5-gram string sets, independently
/// of gra's hashing.
@Suite("Dedup recall against brute force")
struct DedupRecallTests {
    struct Generated {
        var texts: [String] = []
        /// For a near copy: the base it was made from.
        var baseOf: [Int?] = []
    }

    /// A deterministic generator (splitmix64), so the test sees the same set every run.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 { StableHash.next(&state) }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static func generate() -> Generated {
        var rng = RNG(state: 2026)
        let vocabulary = (0..<3000).map { i -> String in
            let syllables = ["ka", "lo", "mi", "ne", "su", "tar", "vel", "qui", "dor", "phe", "rin", "zo"]
            var w = ""
            var x = i + 17
            repeat {
                w += syllables[x % syllables.count]
                x /= syllables.count
            } while x > 0
            return w
        }
        var g = Generated()
        var bases: [[String]] = []
        for _ in 0..<400 {
            let words = (0..<(100 + rng.below(60))).map { _ in vocabulary[rng.below(vocabulary.count)] }
            bases.append(words)
        }
        // Interleave: each base first, near copies of earlier bases after.
        var pending = Array(0..<400)
        var copies = 0
        while !pending.isEmpty || copies < 600 {
            if !pending.isEmpty && (copies >= 600 || rng.below(5) < 2) {
                let b = pending.removeFirst()
                g.texts.append(bases[b].joined(separator: " "))
                g.baseOf.append(nil)
                continue
            }
            let seen = 400 - pending.count
            guard seen > 0 else { continue }
            let b = rng.below(seen)
            var words = bases[b]
            for _ in 0..<rng.below(9) { words[rng.below(words.count)] = vocabulary[rng.below(vocabulary.count)] }
            g.texts.append(words.joined(separator: " "))
            g.baseOf.append(b)
            copies += 1
        }
        return g
    }

    static func shingleSet(_ text: String) -> Set<String> {
        let w = text.split(separator: " ")
        return Set((0...(w.count - 5)).map { w[$0..<($0 + 5)].joined(separator: " ") })
    }

    static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        Double(a.intersection(b).count) / Double(a.union(b).count)
    }

    static func prepare(_ texts: [String], methods: Set<DedupMethod>) -> PreparedBatch {
        var batch = LineBatch()
        for (i, t) in texts.enumerated() {
            let line = Array(#"{"id":"r\#(i)","instruction":"\#(t)"}"#.utf8)
            batch.lines.append(.text(number: i + 1, start: batch.bytes.count, count: line.count))
            batch.bytes.append(contentsOf: line)
        }
        let preparer = DedupPreparer(
            fields: ["instruction"], methods: methods, shingle: .default, hasher: MinHasher(numPerm: 128),
            banding: LSHBanding(bands: 18, rows: 7), skipBadInput: false,
            maxLineBytes: 1 << 20, shard: nil, wantScore: false)
        return preparer.prepare(batch)
    }

    @Test func lshFindsWhatBruteForceFindsAndVerificationKeepsPrecision() throws {
        let g = Self.generate()
        #expect(g.texts.count == 1000)
        let batch = Self.prepare(g.texts, methods: [.minhash])
        #expect(batch.records.count == 1000)
        let sets = g.texts.map(Self.shingleSet)

        // 1. Candidate recall of the LSH index against brute force over the signatures: every
        //    earlier record whose signature similarity reaches 0.8 must be a candidate.
        let index = MinHashIndex(numPerm: 128, banding: LSHBanding(bands: 18, rows: 7))
        var pairs = 0, found = 0
        batch.signatures.withUnsafeBufferPointer { sig in
            batch.bandKeys.withUnsafeBufferPointer { keys in
                for j in 0..<1000 {
                    var candidates = Set<Int>()
                    index.candidates(sig.baseAddress! + j * 128, keys: keys.baseAddress! + j * 18) { e, _ in
                        candidates.insert(e)
                    }
                    for i in 0..<j
                    where CompactSignature.similarity(
                        sig.baseAddress! + i * 128, sig.baseAddress! + j * 128, count: 128) >= 0.8
                    {
                        pairs += 1
                        if candidates.contains(i) { found += 1 }
                    }
                    index.insert(sig.baseAddress! + j * 128, keys: keys.baseAddress! + j * 18)
                }
            }
        }
        #expect(pairs > 250)
        let candidateRecall = Double(found) / Double(pairs)
        #expect(candidateRecall >= 0.98, "LSH candidate recall \(candidateRecall) over \(pairs) pairs")

        // 2. Keep-first dedup through the real index against the true Jaccard of each copy
        //    with its base.
        let dedup = DedupIndex(
            methods: [.minhash], numPerm: 128, banding: LSHBanding(bands: 18, rows: 7), threshold: 0.8, cosine: 0.9)
        var droppedAs: [Int: Int] = [:]
        for slot in 0..<1000 {
            if let m = try dedup.match(batch, slot: slot) {
                droppedAs[slot] = Int(dedup.id(m.entry).dropFirst())!
                #expect(m.similarity >= 0.8)
                // The reported similarity is the exact Jaccard, computed here from string sets.
                let exact = Self.jaccard(sets[slot], sets[droppedAs[slot]!])
                #expect(abs(m.similarity - exact) < 1e-12, "record \(slot): reported \(m.similarity), exact \(exact)")
            } else {
                try dedup.insert(batch, slot: slot)
            }
        }
        let recordOfBase = Dictionary(
            uniqueKeysWithValues: g.baseOf.enumerated().filter { $0.element == nil }.enumerated().map {
                ($0.offset, $0.element.offset)
            })
        var positives = 0, caught = 0
        for (i, b) in g.baseOf.enumerated() {
            guard let b else { continue }
            if Self.jaccard(sets[i], sets[recordOfBase[b]!]) >= 0.85 {
                positives += 1
                if droppedAs[i] != nil { caught += 1 }
            }
        }
        let recall = Double(caught) / Double(positives)
        #expect(positives > 150)
        #expect(recall >= 0.95, "recall \(recall) on \(positives) copies with Jaccard >= 0.85")

        // 3. Precision. Candidates are verified by their exact Jaccard similarity, so every drop
        //    truly reaches the threshold, also the copies just under it (3 edits, ≈ 0.79) whose
        //    128-position estimate (spread ±0.035) often does.
        var atThreshold = 0
        for (i, of) in droppedAs where Self.jaccard(sets[i], sets[of]) >= 0.8 { atThreshold += 1 }
        let precision = Double(atThreshold) / Double(max(1, droppedAs.count))
        #expect(precision == 1, "strict precision \(precision) (true Jaccard >= 0.8) over \(droppedAs.count) drops")
        print(
            """
            dedup recall test: candidate recall \(candidateRecall) over \(pairs) pairs; recall \(recall) on \
            \(positives) copies with J >= 0.85; precision \(precision) over \(droppedAs.count) drops
            """
        )
    }

    /// Unrelated texts are never dropped, and exact copies always are.
    @Test func exactCopiesAlwaysAndUnrelatedNever() throws {
        let g = Self.generate()
        let bases = g.texts.enumerated().filter { g.baseOf[$0.offset] == nil }.map(\.element)
        let texts = bases + bases.prefix(50).map { $0.uppercased() + "  " }
        let batch = Self.prepare(texts, methods: [.exact, .minhash])
        let dedup = DedupIndex(
            methods: [.exact, .minhash], numPerm: 128, banding: LSHBanding(bands: 18, rows: 7), threshold: 0.8,
            cosine: 0.9)
        var dropped: [Int: DedupMatch] = [:]
        for slot in 0..<texts.count {
            if let m = try dedup.match(batch, slot: slot) {
                dropped[slot] = m
            } else {
                try dedup.insert(batch, slot: slot)
            }
        }
        #expect(Set(dropped.keys) == Set(bases.count..<texts.count))
        #expect(dropped.values.allSatisfy { $0.method == .exact && $0.similarity == 1 })
        #expect(dropped.allSatisfy { $0.value.entry == $0.key - bases.count })
    }
}
