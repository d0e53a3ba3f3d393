import Foundation
import Testing

@testable import GRAKit

/// MinHash candidates are verified by their exact Jaccard similarity: pairs just under the
/// threshold, which the signature estimate (±0.035 at 128 positions) often puts over it,
/// are never dropped; pairs over it still are, with their exact similarity.
@Suite("Dedup exact verification")
struct DedupVerifyTests {
    /// Pairs of a 150-word text and a copy with word substitutions, the copy right after its
    /// base: `under` pairs with true Jaccard in [0.70, 0.80) (3–5 substitutions) and `over`
    /// pairs with Jaccard ≥ 0.85 (0–2). Deterministic; the similarities are computed from
    /// word 5-gram string sets.
    struct Pairs {
        var texts: [String] = []
        /// Index in `texts` of each pair's copy (its base is just before it), and its Jaccard.
        var under: [(copy: Int, jaccard: Double)] = []
        var over: [(copy: Int, jaccard: Double)] = []
    }

    static func pairs(under: Int, over: Int, seed: UInt64 = 77) -> Pairs {
        var rng = DedupRecallTests.RNG(state: seed)
        let syllables = ["ka", "lo", "mi", "ne", "su", "tar", "vel", "qui", "dor", "phe", "rin", "zo", "bex", "ul"]
        let vocabulary = (0..<5000).map { i -> String in
            var w = ""
            var x = i + 31
            repeat {
                w += syllables[x % syllables.count]
                x /= syllables.count
            } while x > 0
            return w
        }
        var p = Pairs()
        while p.under.count < under || p.over.count < over {
            let base = (0..<150).map { _ in vocabulary[rng.below(vocabulary.count)] }
            let wantUnder = p.under.count < under && (p.over.count >= over || rng.below(4) != 0)
            var copy = base
            for _ in 0..<(wantUnder ? 3 + rng.below(3) : rng.below(3)) {
                copy[rng.below(copy.count)] = vocabulary[rng.below(vocabulary.count)]
            }
            let a = base.joined(separator: " "), b = copy.joined(separator: " ")
            let j = DedupRecallTests.jaccard(DedupRecallTests.shingleSet(a), DedupRecallTests.shingleSet(b))
            if wantUnder ? !(j >= 0.70 && j < 0.80) : j < 0.85 { continue }
            p.texts.append(a)
            p.texts.append(b)
            if wantUnder { p.under.append((p.texts.count - 1, j)) } else { p.over.append((p.texts.count - 1, j)) }
        }
        return p
    }

    @Test func pairsJustUnderTheThresholdAreNeverDropped() throws {
        let p = Self.pairs(under: 300, over: 100)
        let batch = DedupRecallTests.prepare(p.texts, methods: [.minhash])
        #expect(batch.records.count == p.texts.count)

        // The signature estimate alone would drop some of them: the test can tell.
        var estimatedOver = 0
        batch.signatures.withUnsafeBufferPointer { sig in
            for (copy, _) in p.under
            where CompactSignature.similarity(
                sig.baseAddress! + (copy - 1) * 128, sig.baseAddress! + copy * 128, count: 128) >= 0.8
            {
                estimatedOver += 1
            }
        }
        #expect(
            estimatedOver >= 10, "only \(estimatedOver) of \(p.under.count) pairs under 0.8 are estimated at >= 0.8")

        let dedup = DedupIndex(
            methods: [.minhash], numPerm: 128, banding: LSHBanding(bands: 18, rows: 7), threshold: 0.8, cosine: 0.9)
        var dropped: [Int: DedupMatch] = [:]
        for slot in 0..<p.texts.count {
            if let m = try dedup.match(batch, slot: slot) {
                dropped[slot] = m
            } else {
                try dedup.insert(batch, slot: slot)
            }
        }
        let wronglyDropped = p.under.filter { dropped[$0.copy] != nil }
        #expect(wronglyDropped.isEmpty, "dropped under the threshold: \(wronglyDropped.map(\.jaccard))")
        for (copy, j) in p.over {
            let m = try #require(dropped[copy], "copy with Jaccard \(j) kept")
            // Entries are the kept records in order; the base of pair k is the 2k-th text.
            #expect(dedup.id(m.entry) == "r\(copy - 1)")
            #expect(m.method == .minhash)
            #expect(abs(m.similarity - j) < 1e-12, "reported \(m.similarity), exact \(j)")
        }
        #expect(dropped.count == p.over.count)
        #expect(dedup.verifiedPairs >= p.over.count)
        print(
            """
            dedup verify test: \(estimatedOver) of \(p.under.count) pairs in [0.70, 0.80) estimated >= 0.8, none \
            dropped; \(p.over.count) pairs >= 0.85 dropped; \(dedup.candidatePairs) candidates, \
            \(dedup.verifiedPairs) verified
            """
        )
    }

    /// A kept record read again from its file: a file changed meanwhile is an error, never a
    /// wrong verdict.
    @Test func changedFileIsAnError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gra-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("in.ndjson")
        let line = #"{"id":"a","instruction":"one two three four five six seven"}"#
        try Data((line + "\n").utf8).write(to: url)

        let fd = open(url.path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let store = DedupTextStore(fields: ["instruction", "input"], shingle: .default)
        let source = try #require(store.register(fd: fd, label: "in.ndjson"))
        var lines = LineBatch()
        lines.lines = [.text(number: 1, start: 0, count: line.utf8.count)]
        lines.bytes = Array(line.utf8)
        let preparer = DedupPreparer(
            fields: ["instruction", "input"], methods: [.minhash], shingle: .default, hasher: MinHasher(numPerm: 128),
            banding: LSHBanding(bands: 18, rows: 7), skipBadInput: false, maxLineBytes: 1 << 20, shard: nil,
            wantScore: false)
        let batch = preparer.prepare(lines, offsets: [0])
        batch.textSource = source
        #expect(batch.texts.isEmpty)
        try store.add(batch, slot: 0)

        var shingles: [UInt64] = []
        try store.shingles(of: 0, into: &shingles)
        var expected = Array(batch.shingles)
        DedupTextStore.sortDistinct(&expected)
        #expect(shingles == expected)
        #expect(shingles.count == 3)

        // Rewritten in place (the same file, as the kept descriptor sees it).
        func rewrite(_ text: String) {
            let w = open(url.path, O_WRONLY | O_TRUNC)
            #expect(w >= 0)
            _ = text.withCString { write(w, $0, strlen($0)) }
            close(w)
        }
        // Same length, other words.
        rewrite(line.replacingOccurrences(of: "seven", with: "eight") + "\n")
        #expect(throws: GRAError.self) { try store.shingles(of: 0, into: &shingles) }
        // Shorter than it was.
        rewrite("{}\n")
        #expect(throws: GRAError.self) { try store.shingles(of: 0, into: &shingles) }
    }

    @Test func jaccardOfSortedSets() {
        var a: [UInt64] = [5, 1, 3, 3, 9, 1]
        DedupTextStore.sortDistinct(&a)
        #expect(a == [1, 3, 5, 9])
        #expect(DedupTextStore.jaccard(a, [3, 9, 10]) == 2.0 / 5)
        #expect(DedupTextStore.jaccard([], []) == 1)
        #expect(DedupTextStore.jaccard(a, []) == 0)
    }

    @Test func marginCoversTheEstimateSpread() {
        #expect(abs(DedupIndex.verifyMargin(threshold: 0.8, numPerm: 128) - 0.159) < 0.001)
        #expect(DedupIndex.verifyMargin(threshold: 1, numPerm: 128) == 0.02)
        #expect(
            DedupIndex.verifyMargin(threshold: 0.3, numPerm: 64) == DedupIndex.verifyMargin(threshold: 0.5, numPerm: 64)
        )
    }
}
