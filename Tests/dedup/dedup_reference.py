#!/usr/bin/env python3
"""Independent reference for gra-dedup's hashes (see man gra-dedup, HASHING).

Run once to derive the expected values in Tests/GRAKitTests/DedupHashTests.swift:
    python3 Tests/dedup/dedup_reference.py
It implements the documented algorithms from their description, in plain Python (ASCII
text only: lower-casing and whitespace collapsing), without sharing code with gra.
"""
import unicodedata

M64 = (1 << 64) - 1


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def splitmix_stream(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & M64
        yield mix(state)


def hash_bytes(b, seed):
    h = seed
    for i in range(0, len(b), 8):
        w = int.from_bytes(b[i:i + 8].ljust(8, b"\0"), "little")
        h = mix(h ^ w)
    return mix(h ^ len(b))


TOKEN_SEED = 0x9E3779B97F4A7C15
SHINGLE_SEED = 0xC2B2AE3D27D4EB4F
EXACT_SEED = 0x165667B19E3779F9
MINHASH_SEED = 0x6772612D64656475


def normalize(fields):
    parts = []
    for f in fields:
        t = unicodedata.normalize("NFKC", f).casefold()
        t = unicodedata.normalize("NFKC", t)
        t = " ".join(t.split())
        if t:
            parts.append(t)
    return " ".join(parts)


def shingles(text, unit, k):
    if unit == "word":
        toks = [hash_bytes(w.encode(), TOKEN_SEED) for w in text.split(" ") if w]
    else:
        toks = [ord(c) for c in text]
    if not toks:
        return []
    k = min(k, len(toks))
    out = []
    for s in range(len(toks) - k + 1):
        h = SHINGLE_SEED
        for t in toks[s:s + k]:
            h = mix(h ^ t)
        out.append(h)
    return out


def minhash(sh, num_perm):
    st = splitmix_stream(MINHASH_SEED)
    ab = []
    for _ in range(num_perm):
        a = next(st) | 1
        b = next(st)
        ab.append((a, b))
    return [min((((a * x + b) & M64) >> 32) for x in sh) for a, b in ab]


if __name__ == "__main__":
    print("mix(0) = 0x%016x, mix(1) = 0x%016x" % (mix(0), mix(1)))
    for s in [b"", b"a", b"abcdefgh", b"hello world, dedup!"]:
        print("bytes(%r, exact) = 0x%016x" % (s, hash_bytes(s, EXACT_SEED)))
    text = normalize(["  The QUICK brown\tfox ", "", "jumps over the lazy dog.\n"])
    print("normalized:", repr(text))
    print("exact hash: 0x%016x" % hash_bytes(text.encode(), EXACT_SEED))
    sh = shingles(text, "word", 5)
    print("word:5 shingles:", len(sh), ["0x%016x" % h for h in sh[:2]])
    sig = minhash(sh, 8)
    print("minhash word:5 num_perm 8:", ["0x%08x" % v for v in sig])
    sig = minhash(shingles(text, "char", 5), 4)
    print("minhash char:5 num_perm 4:", ["0x%08x" % v for v in sig])
    print("unicode normalized:", repr(normalize(["Ｓtraße ﬁne\u00a0CAFÉ"])))
