/// 64-bit hashing that gives the same value on every machine, in every run and process
/// (unlike Swift's `Hasher`, which is seeded per process). gra-dedup's exact and MinHash
/// hashes are built from these two functions, so they can be recomputed outside gra (see
/// `man gra-dedup`, "HASHING", and the reference values in the unit tests).
public enum StableHash {
    /// The splitmix64 finalizer (Steele, Lea and Flood): a bijection of 64-bit words that
    /// spreads every input bit over every output bit.
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next value of a splitmix64 stream: adds the golden-ratio increment to `state` and
    /// returns the mixed result.
    @inline(__always)
    public static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix(state)
    }

    /// Hash of a byte string: `h = seed`; for each 8-byte little-endian word `w` (the last
    /// one zero-padded) `h = mix(h ^ w)`; the result is `mix(h ^ count)`.
    @inline(__always)
    public static func bytes(_ p: UnsafePointer<UInt8>, count n: Int, seed: UInt64) -> UInt64 {
        var h = seed
        var i = 0
        while i + 8 <= n {
            h = mix(h ^ UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self).littleEndian)
            i += 8
        }
        if i < n {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                w |= UInt64(p[i]) << shift
                shift += 8
                i += 1
            }
            h = mix(h ^ w)
        }
        return mix(h ^ UInt64(n))
    }

    /// `bytes` over a buffer.
    public static func bytes(_ buffer: UnsafeBufferPointer<UInt8>, seed: UInt64) -> UInt64 {
        guard let base = buffer.baseAddress else { return mix(seed ^ 0) }
        return bytes(base, count: buffer.count, seed: seed)
    }

    /// FNV-1a, 64-bit, over a string's UTF-8: what `--shard` places records by (and the test
    /// server seeds its embeddings with). Simple enough to recompute anywhere.
    public static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }

    /// `bytes` over a string's UTF-8.
    public static func string(_ s: String, seed: UInt64) -> UInt64 {
        var s = s
        return s.withUTF8 { bytes($0, seed: seed) }
    }
}
