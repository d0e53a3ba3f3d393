#!/usr/bin/env python3
"""Generate a synthetic Alpaca-like NDJSON corpus for benchmarking gra.

One JSON object per line:

  {"id": "rec-123", "domain": "math|code|reasoning|general",
   "instruction": "...", "input": "...", "output": "...",
   "source": "...", "meta": {"tokens": 123, "score": 7.25, "tags": [...],
   "big": 12345678901234567890123, ...}, "lang": "en", ...}

i.e. the four fields gra knows plus unknown fields (strings, nested objects,
arrays, floats, integers too big for 64 bits, booleans, null) that a
converter has to carry through untouched.

Text content: mostly English words with punctuation and newlines (written
as "\\n" escapes), Python code fences in many code records, ~5% of records
with CJK or accented text, ~2% with escaped quotes, backslashes, tabs and
emoji. instruction is 50-300 bytes, output 200-1500 bytes (skewed short);
the average line is ~800 bytes.

The output is deterministic for a given --seed and --mb: a fixed seed
drives everything, and generation stops at the first record boundary at or
past the requested size (MB = 10^6 bytes). Text is assembled from
pre-generated segment pools and written in large chunks, so 1 GB takes
well under a minute.

Usage: gen_ndjson.py --mb 1000 -o out.ndjson   (default: write to stdout)
"""

import argparse
import json
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


def make_pool(rng, maker, size):
    """Pre-generate segments once; records are assembled from these."""
    pool = []
    for _ in range(size):
        s = maker(rng)
        pool.append((s, len(s.encode("utf-8"))))
    return pool


class TextMaker:
    def __init__(self, rng):
        self.rng = rng
        self.en = make_pool(rng, make_english_segment, 20000)
        self.accented = make_pool(rng, make_accented_segment, 2000)
        self.cjk = make_pool(rng, make_cjk_segment, 2000)
        self.special = make_pool(rng, make_special_segment, 1000)
        self.code = make_pool(rng, make_code_block, 500)

    def text(self, lo, hi, flavor=None):
        """lo..hi bytes of text: English, optionally mixed with a flavor pool."""
        rng = self.rng
        target = rng.randint(lo, hi)
        parts = []
        n = 0
        en = self.en
        alt = getattr(self, flavor) if flavor else None
        while n < target:
            if alt is not None and rng.random() < 0.5:
                s, b = alt[int(rng.random() * len(alt))]
            else:
                s, b = en[int(rng.random() * len(en))]
            if n + b > target:
                # Cut the last segment on a UTF-8 character boundary.
                s = s.encode("utf-8")[: target - n].decode("utf-8", "ignore")
                parts.append(s)
                break
            parts.append(s)
            n += b
        return "".join(parts).rstrip(" ")


def make_record(i, rng, tm):
    domain = DOMAINS[int(rng.random() * 4)]
    r = rng.random()
    if r < 0.03:
        flavor, lang = "cjk", rng.choice(["zh", "ja", "ko"])
    elif r < 0.05:
        flavor, lang = "accented", rng.choice(["fr", "de", "es"])
    elif r < 0.07:
        flavor, lang = "special", "en"
    else:
        flavor, lang = None, "en"

    prefix = rng.choice(INSTRUCTION_PREFIX[domain]).format(
        a=rng.randint(2, 99), b=rng.randint(1, 999), c=rng.randint(1, 9999))
    instruction = prefix + tm.text(max(0, 50 - len(prefix)), max(10, 300 - len(prefix) * 2), flavor)

    inp = "" if rng.random() < 0.6 else tm.text(20, 300, flavor)

    # Output length is skewed towards short answers (mean ~420 bytes).
    out_len = 200 + int(1300 * rng.random() ** 4.5)
    if domain == "code" and rng.random() < 0.7:
        code = tm.code[int(rng.random() * len(tm.code))][0]
        intro = tm.text(30, 120, flavor)
        rest = max(0, out_len - len(code) - len(intro))
        output = intro + "\n\n" + code + ("\n" + tm.text(0, rest, flavor) if rest > 20 else "")
    else:
        output = tm.text(out_len, out_len, flavor)

    meta = {
        "tokens": (len(instruction) + len(inp) + len(output)) // 4,
        "score": round(rng.random() * 10, 2),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "big": 10 ** 22 + rng.randrange(10 ** 22),
    }
    r = rng.random()
    if r < 0.15:
        meta["reviewed"] = rng.random() < 0.5
        meta["parent"] = None
    elif r < 0.25:
        meta["temperature"] = rng.choice([0.0, 0.7, 1.0, -0.5])
        meta["ppl"] = rng.choice([1.2e-05, 6.02e23, 3.5])
    elif r < 0.30:
        meta["history"] = [{"role": "user", "len": rng.randint(1, 500)},
                           {"role": "assistant", "len": rng.randint(1, 500)}]

    source = SOURCES[int(rng.random() * len(SOURCES))]
    rid = "rec-%d" % i
    if rng.random() < 0.2:
        # Unknown fields first: converters must not rely on key order.
        rec = {"source": source, "lang": lang, "id": rid, "domain": domain,
               "instruction": instruction, "input": inp, "output": output,
               "meta": meta}
    else:
        rec = {"id": rid, "domain": domain, "instruction": instruction,
               "input": inp, "output": output, "source": source, "meta": meta,
               "lang": lang}
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=1000, help="target size in MB (10^6 bytes), default 1000")
    ap.add_argument("--seed", type=int, default=20240601, help="random seed (fixed default: deterministic output)")
    ap.add_argument("-o", "--out", help="output file (default: stdout)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    tm = TextMaker(rng)
    target = int(args.mb * 1_000_000)
    dumps = json.JSONEncoder(ensure_ascii=False).encode

    out = open(args.out, "wb") if args.out else sys.stdout.buffer
    written = 0
    records = 0
    i = 0
    try:
        while written < target:
            lines = []
            for _ in range(4096):
                lines.append(dumps(make_record(i, rng, tm)))
                i += 1
            chunk = ("\n".join(lines) + "\n").encode("utf-8")
            if written + len(chunk) >= target:
                # Finish exactly at the first record boundary at/after target.
                cut = chunk.find(b"\n", target - written - 1) + 1
                chunk = chunk[:cut]
            out.write(chunk)
            written += len(chunk)
            records += chunk.count(b"\n")
    finally:
        if args.out:
            out.close()
    print("gen_ndjson: wrote %d bytes, %d records" % (written, records), file=sys.stderr)


if __name__ == "__main__":
    main()
