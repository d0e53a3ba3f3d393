#!/usr/bin/env python3
"""Generate a synthetic Alpaca-like NDJSON corpus for benchmarking gra.

One JSON object per line:

  {"id": "rec-123", "domain": "math|code|reasoning|general",
   "instruction": "...", "input": "...", "output": "...",
   "source": "...", "meta": {"tokens": 123, "score": 7.25, "tags": [...],
   "big": 12345678901234567890123, ...}, "lang": "en", ...}

i.e. Alpaca's instruction/input/output plus id and domain, and unknown
fields (strings, nested objects, arrays, floats, integers too big for 64
bits, booleans, null) that a converter has to carry through untouched.
About 20% of records put the unknown fields first.

Text content: mostly English words with punctuation and newlines (written
as "\\n" escapes), Python code fences in many code records, ~5% of records
with CJK or accented text, ~2% with escaped quotes, backslashes, tabs and
emoji. instruction is 50-300 bytes, output 200-1500 bytes (skewed short);
the average line is ~800 bytes.

The output is deterministic for a given --seed and --mb (whatever --jobs):
a fixed seed drives everything, and generation stops at the first record
boundary at or past the requested size (MB = 10^6 bytes). Texts are
windows cut from corpora pre-generated at start-up, records are made in
chunks on all CPUs and written in big blocks, so 1 GB takes well under a
minute.

Usage: gen_ndjson.py --mb 1000 -o out.ndjson   (default: write to stdout)
"""

import argparse
import bisect
import itertools
import json
import multiprocessing
import os
import random
import sys

WORDS = """
the of and to in is that it for as with was on be by this are from or an at
which not have has but can all one more when there their what will about if
would so other into time only some could them these than then two first may
way like also over such new after most use very where through just because
how data model value function number result system example order process
value list string input output method problem answer question table point
line graph set case step rule form term area rate error test code memory
performance network language query record field file stream buffer parser
token sentence paragraph summary reason evidence argument claim analysis
simple complex quick careful large small early late common rare strong weak
explain describe compute derive prove estimate compare classify translate
rewrite summarize list identify evaluate improve design implement optimize
because therefore however although moreover meanwhile instead otherwise
student teacher author reader user customer engineer doctor city country
river mountain history science music energy water light sound color planet
apple river garden window morning evening winter summer market budget plan
""".split()

CAPITALIZED = [w.capitalize() for w in WORDS]

ACCENTED_WORDS = """
café naïve über señor Straße garçon déjà résumé Ångström façade crème brûlée
piñata jalapeño smörgåsbord Zürich São Paulo Málaga Kraków Dvořák Gödel Erdős
élève très à où français être schön Mädchen Größe año niño corazón canción
""".split()

CJK_CHARS = (
    "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得"
    "可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无"
    "同么经法当起与好看学进种将还分此心前面又定见只主没公从数据模型问题答案函数"
    "ひらがなカタカナ日本語の文章です東京大阪한국어문장서울부산"
)
CJK_PUNCT = ["，", "。", "！", "？", "、", "：", "；"]

EMOJI = ["😀", "🚀", "👍🏽", "🎉", "🔥", "✅", "❤️", "🤖", "📈", "🇫🇷", "👨‍👩‍👧"]

DOMAINS = ["math", "code", "reasoning", "general"]

SOURCES = [
    "alpaca", "self-instruct", "sharegpt-clean", "synthetic/v2",
    "dolly-15k", "https://example.com/datasets/part-0007.jsonl",
]
TAGS = ["easy", "medium", "hard", "qa", "cot", "multi-turn", "verified",
        "needs-review", "stem", "creative", "translation", "a", "b"]
# Tag lists are drawn from a fixed set of combinations (cheap to pick).
_tag_rng = random.Random(7)
TAG_SETS = [_tag_rng.sample(TAGS, _tag_rng.randint(0, 3)) for _ in range(200)]

INSTRUCTION_PREFIX = {
    "math": ["Solve for x: {a}x + {b} = {c}. ", "Compute {a} * {b} + {c}. ",
             "What is the derivative of x^{a} + {b}x? ",
             "Prove that the sum of two even numbers is even. "],
    "code": ["Write a Python function that ", "Fix the bug in the following code. ",
             "Explain what this snippet does: ", "Implement a class that "],
    "reasoning": ["Read the passage and answer the question. ",
                  "If all A are B and some B are C, ", "Which option is correct? "],
    "general": ["Summarize the following text. ", "Give three tips for ",
                "Translate the sentence into French: ", "Describe "],
}


def make_english_segment(rng):
    """A sentence (sometimes a bullet or a line break) of plain English."""
    n = rng.randint(4, 18)
    words = rng.choices(WORDS, k=n)
    words[0] = words[0].capitalize()
    r = rng.random()
    if r < 0.10:
        words.insert(rng.randrange(1, n), str(rng.randint(0, 9999)))
    elif r < 0.15:
        words.insert(rng.randrange(1, n), "(%s)" % rng.choice(WORDS))
    elif r < 0.20:
        words.insert(rng.randrange(1, n), "it's")
    elif r < 0.23:
        words.insert(rng.randrange(1, n), "%d.%d%%" % (rng.randint(0, 99), rng.randint(0, 9)))
    s = " ".join(words)
    if rng.random() < 0.2:
        s += ", " + " ".join(rng.choices(WORDS, k=rng.randint(2, 8)))
    s += rng.choice([". ", ". ", ". ", "? ", "! ", ": ", "; "])
    r = rng.random()
    if r < 0.12:
        s += "\n"
    elif r < 0.18:
        s += "\n\n"
    elif r < 0.22:
        s = "- " + s.rstrip() + "\n"
    elif r < 0.25:
        s = "%d. %s\n" % (rng.randint(1, 9), s.rstrip())
    return s


def make_accented_segment(rng):
    words = rng.choices(WORDS, k=rng.randint(2, 8)) + rng.choices(ACCENTED_WORDS, k=rng.randint(2, 6))
    rng.shuffle(words)
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([". ", "! ", "? ", ".\n"])


def make_cjk_segment(rng):
    parts = []
    for _ in range(rng.randint(1, 4)):
        parts.append("".join(rng.choices(CJK_CHARS, k=rng.randint(4, 20))))
        parts.append(rng.choice(CJK_PUNCT))
    if rng.random() < 0.3:
        parts.append(" " + rng.choice(WORDS) + " ")
    if rng.random() < 0.15:
        parts.append("\n")
    return "".join(parts)


def make_special_segment(rng):
    """Quotes, backslashes, tabs, emoji: the characters that need escaping."""
    w = rng.choices(WORDS, k=4)
    return rng.choice([
        'He said "%s %s" and left. ' % (w[0], w[1]),
        'Set the path to "C:\\\\Users\\\\%s\\\\%s.txt". ' % (w[0], w[1]),
        "Use the regex \\d+\\s*\\w+ to match %s. " % w[2],
        "Column\t%s\tvalue\t%s\n" % (w[0], w[1]),
        "%s %s %s %s! " % (w[0].capitalize(), rng.choice(EMOJI), w[1], rng.choice(EMOJI)),
        'The JSON is {"key": "%s", "n": %d}. ' % (w[3], rng.randint(0, 99)),
        "Quote: \u201c%s %s\u201d \u2014 %s\u2026 " % (w[0], w[1], w[2]),
    ])


def make_code_block(rng):
    name = "_".join(rng.choices(WORDS, k=2))
    arg = rng.choice(["items", "xs", "text", "n", "data"])
    body = rng.choice([
        "    result = []\n    for x in {a}:\n        if x % 2 == 0:\n            result.append(x * x)\n    return result\n",
        "    if {a} <= 1:\n        return {a}\n    return {n}({a} - 1) + {n}({a} - 2)\n",
        "    counts = {{}}\n    for word in {a}.split():\n        counts[word] = counts.get(word, 0) + 1\n    return counts\n",
        "    # strip whitespace and \"quotes\"\n    return {a}.strip().strip('\"')\n",
        "    total = sum({a})\n    return total / len({a}) if {a} else 0.0\n",
    ]).format(a=arg, n=name)
    lines = ["```python\n", "def %s(%s):\n" % (name, arg), body]
    if rng.random() < 0.5:
        lines.append("\n\nprint(%s(%s))\n" % (name, rng.choice(["[1, 2, 3, 4]", "10", "'a b a'"])))
    lines.append("```\n")
    return "".join(lines)


class Corpus:
    """A long text built once from segments; texts are windows cut from it.

    Cutting a window (one random number, one slice) is far cheaper than
    assembling every text from many small pieces, which is what makes
    generating 1 GB fast. Windows start at a segment boundary.
    """

    def __init__(self, segments, max_window_bytes=2000):
        self.starts = []
        pos = 0
        for seg in segments:
            self.starts.append(pos)
            pos += len(seg)
        self.text = "".join(segments)
        self.ascii = self.text.isascii()
        # Only start windows where at least max_window_bytes characters follow.
        self.n_starts = bisect.bisect_right(self.starts, len(self.text) - max_window_bytes)

    def window(self, rng, nbytes):
        start = self.starts[int(rng.random() * self.n_starts)]
        s = self.text[start:start + nbytes]
        if not self.ascii:
            # Multi-byte text: cut to nbytes on a UTF-8 character boundary.
            s = s.encode("utf-8")[:nbytes].decode("utf-8", "ignore")
        return s.rstrip(" ")


class TextMaker:
    """The text corpora. Built from the seed alone, identically in every worker."""

    def __init__(self, seed):
        rng = random.Random(seed)
        en = [make_english_segment(rng) for _ in range(60000)]
        self.corpora = {None: Corpus(en)}
        # Flavored corpora: English interleaved with the flavor's segments.
        for flavor, maker in (("accented", make_accented_segment),
                              ("cjk", make_cjk_segment),
                              ("special", make_special_segment)):
            segs = [maker(rng) if rng.random() < 0.5 else en[k] for k in range(8000)]
            self.corpora[flavor] = Corpus(segs)
        self.code = [make_code_block(rng) for _ in range(500)]

    def text(self, rng, lo, hi, flavor=None):
        """lo..hi UTF-8 bytes of text (English, or mixed with a flavor)."""
        nbytes = lo + int(rng.random() * (hi - lo + 1))
        return self.corpora[flavor].window(rng, nbytes)


def make_record(i, rng, tm):
    rnd = rng.random
    domain = DOMAINS[int(rnd() * 4)]
    r = rnd()
    if r < 0.03:
        flavor, lang = "cjk", ("zh", "ja", "ko")[int(rnd() * 3)]
    elif r < 0.05:
        flavor, lang = "accented", ("fr", "de", "es")[int(rnd() * 3)]
    elif r < 0.07:
        flavor, lang = "special", "en"
    else:
        flavor, lang = None, "en"

    # instruction: 50..300 bytes, skewed short (mean ~130).
    prefixes = INSTRUCTION_PREFIX[domain]
    prefix = prefixes[int(rnd() * len(prefixes))]
    if "{" in prefix:
        prefix = prefix.format(a=int(rnd() * 98) + 2, b=int(rnd() * 999) + 1, c=int(rnd() * 9999) + 1)
    n = 50 + int(250 * rnd() ** 2) - len(prefix)
    instruction = prefix + tm.text(rng, max(n, 10), max(n, 10), flavor)

    # input: empty 60% of the time, else 20..250 bytes.
    inp = "" if rnd() < 0.6 else tm.text(rng, 20, 250, flavor)

    # output: 200..1500 bytes, skewed short (mean ~370).
    n = 200 + int(1300 * rnd() ** 6.6)
    if domain == "code" and rnd() < 0.7:
        code = tm.code[int(rnd() * len(tm.code))]
        intro = tm.text(rng, 30, 120, flavor)
        rest = n - len(code) - len(intro) - 3
        output = intro + "\n\n" + code
        if rest > 20:
            output += "\n" + tm.text(rng, rest, rest, flavor)
    else:
        output = tm.text(rng, n, n, flavor)

    meta = {
        "tokens": (len(instruction) + len(inp) + len(output)) // 4,
        "score": round(rnd() * 10, 2),
        "tags": TAG_SETS[int(rnd() * len(TAG_SETS))],
        "big": 10 ** 22 + rng.getrandbits(73),   # 23 digits: beyond 64-bit
    }
    r = rnd()
    if r < 0.15:
        meta["reviewed"] = r < 0.07
        meta["parent"] = None
    elif r < 0.25:
        meta["temperature"] = (0.0, 0.7, 1.0, -0.5)[int(rnd() * 4)]
        meta["ppl"] = (1.2e-05, 6.02e23, 3.5)[int(rnd() * 3)]
    elif r < 0.30:
        meta["history"] = [{"role": "user", "len": int(rnd() * 500)},
                           {"role": "assistant", "len": int(rnd() * 500)}]

    source = SOURCES[int(rnd() * len(SOURCES))]
    rid = "rec-%d" % i
    if rnd() < 0.2:
        # Unknown fields first: converters must not rely on key order.
        return {"source": source, "lang": lang, "id": rid, "domain": domain,
                "instruction": instruction, "input": inp, "output": output,
                "meta": meta}
    return {"id": rid, "domain": domain, "instruction": instruction,
            "input": inp, "output": output, "source": source, "meta": meta,
            "lang": lang}


# --- chunked, parallel generation ------------------------------------------
#
# Records are produced in chunks of CHUNK_RECORDS. Chunk k draws from its own
# generator seeded with (seed, k), so the output is the same whatever the
# number of worker processes; chunks are written in order.

CHUNK_RECORDS = 2048
_tm = None


def _init_worker(seed):
    global _tm
    _tm = TextMaker(seed)


def make_chunk(job):
    seed, k = job
    rng = random.Random("%d/%d" % (seed, k))
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    base = k * CHUNK_RECORDS
    # Encoding line by line keeps mostly-ASCII lines in Python's compact form.
    lines = [dumps(make_record(base + j, rng, _tm)).encode("utf-8")
             for j in range(CHUNK_RECORDS)]
    lines.append(b"")
    return b"\n".join(lines)


def chunks(seed, jobs):
    """Yield chunk 0, 1, 2, ... in order, computed by `jobs` processes."""
    if jobs <= 1:
        _init_worker(seed)
        for k in itertools.count():
            yield make_chunk((seed, k))
        return
    with multiprocessing.Pool(jobs, _init_worker, (seed,)) as pool:
        batch = 4 * jobs  # bounded look-ahead (the pool would drain an infinite iterator)
        for k0 in itertools.count(0, batch):
            yield from pool.imap(make_chunk, [(seed, k) for k in range(k0, k0 + batch)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=1000, help="target size in MB (10^6 bytes), default 1000")
    ap.add_argument("--seed", type=int, default=20240601, help="random seed (fixed default: deterministic output)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count); does not change the output")
    ap.add_argument("-o", "--out", help="output file (default: stdout)")
    args = ap.parse_args()

    target = int(args.mb * 1_000_000)
    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    written = records = 0
    try:
        gen = chunks(args.seed, args.jobs)
        for chunk in gen:
            if written + len(chunk) >= target:
                # Stop at the first record boundary at or after the target size.
                chunk = chunk[:chunk.find(b"\n", target - written - 1) + 1]
            out.write(chunk)
            written += len(chunk)
            records += chunk.count(b"\n")
            if written >= target:
                break
        gen.close()
    finally:
        if args.out:
            out.close()
    print("gen_ndjson: wrote %d bytes, %d records" % (written, records), file=sys.stderr)


if __name__ == "__main__":
    main()
