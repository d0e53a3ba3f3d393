"""Shared by bench/dedup_gen.py, dedup_peers.py and dedup_score.py: the text a record is
compared on and its shingles, mirroring gra-dedup's (Sources/GRAKit/Dedup/DedupText.swift) so that
all tools hash the same sets.

Text: the chosen fields (default instruction,input,response), each normalized, the non-empty
ones joined with one space. Normalizing: ASCII text is lowercased (A-Z) with runs of ASCII
whitespace (space, TAB, LF, VT, FF, CR) collapsed to one space and trimmed; other text goes
through NFKC, full case folding and NFKC again, then whitespace (Unicode) collapses the same way.
Shingles: "word:K" = every run of K consecutive words, a word being a space-separated token
except that every CJK ideograph, kana or CJK punctuation mark is a word of its own;
"char:K" = every run of K characters (code points, spaces included). A text shorter than K
words (characters) is one shingle; an empty text has none.
"""

import re
import unicodedata

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


_ASCII_WS = re.compile(r"[ \t\n\v\f\r]+")
# The CJK ranges gra-dedup cuts per character (DedupText.isWordPerCharacter).
_CJK = re.compile("([\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0003ffff])")


_PY_ONLY_WS = re.compile("[\x1c-\x1f]")  # whitespace to str.split() but not to gra-dedup


def normalize(v):
    if v.isascii():
        if _PY_ONLY_WS.search(v) is None:
            return " ".join(v.lower().split())  # the fast path: the same result
        return " ".join(w for w in _ASCII_WS.split(v.lower()) if w)
    v = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", v).casefold())
    return " ".join(v.split())


def record_text(rec, fields):
    parts = []
    for f in fields:
        v = rec.get(f)
        if isinstance(v, str):
            t = normalize(v)
            if t:
                parts.append(t)
    return " ".join(parts)


def tokens(text, kind):
    if kind == "char":
        return list(text)
    if not text:
        return []
    if text.isascii():
        return text.split(" ")
    return [t for t in _CJK.split(text.replace(" ", "\0")) for t in t.split("\0") if t]


def shingle_list(text, kind, k):
    """The shingles of a normalized text, as a list of str (repeats possible: a MinHash
    ignores them). A shingle is its tokens joined by one space (char: by nothing)."""
    t = tokens(text, kind)
    n = len(t)
    if n == 0:
        return []
    sep = " " if kind == "word" else ""
    if n <= k:
        return [sep.join(t)]
    return [sep.join(t[i:i + k]) for i in range(n - k + 1)]


def shingles(text, kind, k):
    """The shingle set of a normalized text."""
    return set(shingle_list(text, kind, k))


def jaccard(a, b):
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
