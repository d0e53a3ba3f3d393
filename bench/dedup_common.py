"""Shared by bench/dedup_gen.py, dedup_peers.py and dedup_score.py: the text a record is
compared on and its shingles, mirroring gra-dedup's so that all tools hash the same sets.

Text: the chosen fields (default instruction,input,response), each lowercased with runs of
whitespace collapsed to one space and trimmed, non-empty ones joined with one space.
Shingles: "word:K" = every run of K consecutive words (joined by one space), or the whole
text when it has fewer than K words; "char:K" = every K-character substring of the text
(the whole text when shorter). An empty text has no shingles.
"""

FIELDS = ("instruction", "input", "response")


def parse_fields(spec):
    fields = tuple(f.strip() for f in spec.split(",") if f.strip())
    if not fields:
        raise SystemExit("no fields in %r" % spec)
    return fields


def parse_shingle(spec):
    """'word:5' -> ('word', 5)."""
    kind, _, k = spec.partition(":")
    if kind not in ("word", "char") or not k.isdigit() or int(k) < 1:
        raise SystemExit("bad shingle spec %r (want word:K or char:K)" % spec)
    return kind, int(k)


def record_text(rec, fields):
    parts = []
    for f in fields:
        v = rec.get(f)
        if isinstance(v, str):
            words = v.lower().split()
            if words:
                parts.append(" ".join(words))
    return " ".join(parts)


def shingles(text, kind, k):
    """The shingle set of a normalized text, as a set of str."""
    if kind == "word":
        w = text.split(" ") if text else []
        n = len(w)
        if n == 0:
            return set()
        if n <= k:
            return {text}
        return {" ".join(w[i:i + k]) for i in range(n - k + 1)}
    n = len(text)
    if n == 0:
        return set()
    if n <= k:
        return {text}
    return {text[i:i + k] for i in range(n - k + 1)}


def shingle_list(text, kind, k):
    """Like shingles() but a list (duplicates possible): cheaper when the consumer hashes
    into a MinHash, which ignores repeats anyway."""
    if kind == "word":
        w = text.split(" ") if text else []
        n = len(w)
        if n == 0:
            return []
        if n <= k:
            return [text]
        return [" ".join(w[i:i + k]) for i in range(n - k + 1)]
    n = len(text)
    if n == 0:
        return []
    if n <= k:
        return [text]
    return [text[i:i + k] for i in range(n - k + 1)]


def jaccard(a, b):
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
