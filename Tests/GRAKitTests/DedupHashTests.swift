import Testing

@testable import GRAKit

/// gra-dedup's normalization and hashes must not drift: reruns, other machines and other
/// tools (see man gra-dedup, HASHING) depend on the exact values.
///
/// The expected values were computed once, independently of gra, by
/// `python3 Tests/dedup/dedup_reference.py`, a plain-Python implementation of
/// the documented algorithms.
@Suite("Dedup hashing")
struct DedupHashTests {
    /// FNV-1a 64 (what --shard places records by): the published reference values.
    @Test func fnv1aMatchesTheReferenceValues() {
        #expect(StableHash.fnv1a("") == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a("foobar") == 0x8594_4171_f739_67e8)
    }

    @Test func splitmixAndByteHashMatchReference() {
        #expect(StableHash.mix(1) == 0x5692_161d_100b_05e5)
        let seed = DedupPreparer.exactSeed
        #expect(StableHash.string("", seed: seed) == 0xb393_62cb_9460_13e3)
        #expect(StableHash.string("a", seed: seed) == 0xcdf3_cc7a_2c2e_f6ff)
        #expect(StableHash.string("abcdefgh", seed: seed) == 0x13b3_c72f_0bc5_49b4)
        #expect(StableHash.string("hello world, dedup!", seed: seed) == 0x5067_edec_464f_6772)
    }

    static let fields = ["  The QUICK brown\tfox ", "", "jumps over the lazy dog.\n"]

    @Test func normalizationCollapsesCaseWhitespaceAndCompatibilityForms() {
        #expect(
            String(decoding: DedupText.normalized(Self.fields), as: UTF8.self)
                == "the quick brown fox jumps over the lazy dog.")
        // NFKC (fullwidth Ｓ, the ﬁ ligature, a no-break space) and full case folding (ß → ss).
        #expect(
            String(decoding: DedupText.normalized(["Ｓtraße ﬁne\u{00A0}CAFÉ"]), as: UTF8.self) == "strasse fine café")
        #expect(DedupText.normalized(["", "  \n "]).isEmpty)
        #expect(String(decoding: DedupText.normalized(["\u{3000}全角\u{3000}SPACE "]), as: UTF8.self) == "全角 space")
    }

    @Test func exactHashAndSignaturesMatchReference() {
        let text = DedupText.normalized(Self.fields)
        #expect(
            text.withUnsafeBufferPointer { StableHash.bytes($0, seed: DedupPreparer.exactSeed) }
                == 0x01ce_a129_1c8d_6b03)

        let words = shingles(text, .default)
        #expect(words.count == 5)
        #expect(Array(words.prefix(2)) == [0xebab_5e74_8784_d139, 0xba47_54bd_d38c_36a7])
        #expect(
            MinHasher(numPerm: 8).signature(words) == [
                0x4820_f380, 0x008d_8fdc, 0x1e2c_2d61, 0x4348_717f,
                0x127e_e053, 0x169a_e2a0, 0x10a1_e4ea, 0x07f7_f5a6
            ])
        let chars = shingles(text, ShingleSpec(unit: .char, size: 5))
        #expect(MinHasher(numPerm: 4).signature(chars) == [0x03f1_84bb, 0x0b72_773d, 0x08fb_8ab1, 0x03cb_b414])
    }

    func shingles(_ text: [UInt8], _ spec: ShingleSpec) -> [UInt64] {
        var tokens: [UInt64] = []
        var out: [UInt64] = []
        text.withUnsafeBufferPointer { spec.appendShingleHashes(of: $0, tokens: &tokens, to: &out) }
        return out
    }

    @Test func shortTextsAreOneShingleAndCJKCharactersAreWords() {
        #expect(shingles(Array("two words".utf8), .default).count == 1)
        #expect(shingles([], .default).isEmpty)
        // Seven ideographs (and one ASCII word between them) make 8 words: 4 five-word shingles.
        #expect(shingles(Array("去重是数据ok清洗".utf8), .default).count == 4)
        // The same ideographs with or without spaces between them are the same words.
        #expect(shingles(Array("去 重 是 数 据".utf8), .default) == shingles(Array("去重是数据".utf8), .default))
    }

    @Test func shingleSpecParses() throws {
        #expect(try ShingleSpec("char:3") == ShingleSpec(unit: .char, size: 3))
        #expect(throws: GRAError.self) { try ShingleSpec("word") }
        #expect(throws: GRAError.self) { try ShingleSpec("line:5") }
        #expect(throws: GRAError.self) { try ShingleSpec("word:0") }
    }

    @Test func compactSimilarityCorrectsForChanceAgreement() {
        let a = [UInt8](0..<128)
        var b = a
        #expect(CompactSignature.similarity(a, b, count: 128) == 1)
        for i in 0..<64 { b[i] &+= 1 }
        // 64 of 128 agree: (0.5 − 1/256) / (1 − 1/256).
        #expect(abs(CompactSignature.similarity(a, b, count: 128) - (0.5 - 1.0 / 256) / (1 - 1.0 / 256)) < 1e-12)
        #expect(CompactSignature.similarity(a, a.map { $0 &+ 1 }, count: 128) == 0)
    }
}

@Suite("LSH banding")
struct LSHBandingTests {
    @Test func defaultChoiceFavoursRecall() throws {
        let b = try LSHBanding.choose(threshold: 0.8, numPerm: 128)
        #expect(b == LSHBanding(bands: 18, rows: 7))
        #expect(b.candidateProbability(0.8) >= 0.98)
        #expect(b.candidateProbability(0.85) >= 0.999)
        #expect(b.candidateProbability(0.3) < 0.005)
        #expect(b.candidateProbability(0.5) < 0.15)
        // One more row per band would miss more than 2% of the pairs at the threshold.
        #expect(LSHBanding(bands: 128 / 8, rows: 8).candidateProbability(0.8) < 0.98)
    }

    @Test(arguments: [(0.5, 3), (0.7, 5), (0.9, 11), (0.95, 16)])
    func choiceAtOtherThresholds(_ threshold: Double, _ rows: Int) throws {
        let b = try LSHBanding.choose(threshold: threshold, numPerm: 128)
        #expect(b.rows == rows)
        #expect(b.bands == 128 / rows)
        #expect(b.candidateProbability(threshold) >= LSHBanding.targetRecallAtThreshold)
    }

    @Test func overrides() throws {
        #expect(try LSHBanding.choose(threshold: 0.8, numPerm: 128, bands: 16) == LSHBanding(bands: 16, rows: 8))
        #expect(try LSHBanding.choose(threshold: 0.8, numPerm: 128, rows: 4) == LSHBanding(bands: 32, rows: 4))
        #expect(
            try LSHBanding.choose(threshold: 0.8, numPerm: 128, bands: 10, rows: 10) == LSHBanding(bands: 10, rows: 10))
        #expect(throws: GRAError.self) { try LSHBanding.choose(threshold: 0.8, numPerm: 128, bands: 20, rows: 7) }
        #expect(throws: GRAError.self) { try LSHBanding.choose(threshold: 0.8, numPerm: 128, bands: 0) }
    }
}
