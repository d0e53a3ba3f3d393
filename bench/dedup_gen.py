#!/usr/bin/env python3
"""Deterministic Alpaca-like corpus with known injected near-duplicates, for bench/dedup.

Writes N NDJSON records {"id","instruction","input","response","domain"} (~600 bytes a line)
and a ground-truth TSV with one row per injected duplicate:

    dup_id  orig_id  kind  jaccard

where jaccard is the exact Jaccard similarity of the two records' shingle sets (same text,
fields and shingles as the tools compare: see dedup_common.py).

Texts are made of a large synthetic vocabulary (~40k pseudo-words, Zipf-weighted, plus common
English function words), so unrelated records share almost no 5-word shingles. About
--dup-rate of the records are injected near-duplicates of an earlier base record (chosen
uniformly among all earlier positions), made by one of:

    exact       a verbatim copy
    surface     case and whitespace changes only (equal after normalization)
    edit1       one word edit (substitute, insert, delete, typo)
    swap        two adjacent words swapped
    synonym1    one word replaced by a "synonym" (a word of the same vocabulary cluster)
    reorder     two sentences of the response swapped
    edit2-3     two or three word edits
    paraphrase  5-10 synonym replacements plus a reorder (a hard negative, usually J < 0.6)

so the true Jaccard spans 0.3-1.0 and those >= 0.85 (the recall set) are mostly 0-1 edits.

Every record is a pure function of (seed, position): the first P records of an N-record
corpus are the P-record corpus, and every duplicate's original lies before it, so a prefix
is a valid smaller benchmark (its truth rows are those whose dup lies in the prefix).
Generation runs on all CPUs in chunks; the output does not depend on --jobs.

Usage: dedup_gen.py -n 1000000 --seed 1 -o corpus.ndjson --truth truth.tsv
                    [--fields instruction,input,response] [--shingle word:5]
"""

import argparse
import json
import multiprocessing
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dedup_common as dc  # noqa: E402

FUNCTION_WORDS = """the of and to in is that it for as with was on be by this are from or an
at which not have has but can all one more when there their what will about if would so other
into time only some could them these than then two first may way like also over such new after
most use very where through just because how""".split()

INSTRUCTION_VERBS = ["Explain", "Describe", "Write", "Summarize", "List", "Compare", "Classify",
                     "Translate", "Rewrite", "Evaluate", "Design", "Outline", "Suggest", "Identify",
                     "Analyze", "Give", "Create", "Find", "Estimate", "Propose"]

KINDS = [("exact", 0.07), ("surface", 0.08), ("edit1", 0.22), ("swap", 0.10), ("synonym1", 0.10),
         ("reorder", 0.15), ("edit2-3", 0.16), ("paraphrase", 0.12)]

CLUSTER = 4  # vocabulary words i and j are "synonyms" when i // CLUSTER == j // CLUSTER


class Vocab:
    def __init__(self, seed):
        rng = random.Random(f"dedup-vocab-{seed}")
        onsets = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
                  "v", "w", "z", "br", "ch", "cl", "cr", "dr", "fl", "gr", "kr", "pl", "pr", "sh",
                  "sk", "sl", "sp", "st", "str", "th", "tr"]
        vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y"]
        codas = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "rk", "st", "x"]
        words, seen = [], set(FUNCTION_WORDS)
        while len(words) < 40000:
            w = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                        for _ in range(rng.choice((1, 2, 2, 2, 3))))
            if 3 <= len(w) <= 12 and w not in seen:
                seen.add(w)
                words.append(w)
        self.content = words
        # Zipf-like weights over content words; function words take ~30% of all tokens.
        weights = [1.0 / (r + 10) ** 0.9 for r in range(len(words))]
        total = sum(weights)
        content_share = 0.70
        self.all = FUNCTION_WORDS + words
        acc, cum = 0.0, []
        for _ in FUNCTION_WORDS:
            acc += (1 - content_share) / len(FUNCTION_WORDS)
            cum.append(acc)
        for w in weights:
            acc += content_share * w / total
            cum.append(acc)
        self.cum = cum
        self.index = {w: i for i, w in enumerate(words)}

    def words(self, rng, k):
        return rng.choices(self.all, cum_weights=self.cum, k=k)

    def synonym(self, rng, word):
        i = self.index.get(word.lower())
        if i is None:
            return None
        base = i - i % CLUSTER
        j = base + rng.randrange(CLUSTER - 1)
        if j >= i:
            j += 1
        if j >= len(self.content):
            return None
        w = self.content[j]
        return w.capitalize() if word[:1].isupper() else w


V = None  # set in each worker


def sentence(rng, lo, hi, end=None):
    ws = V.words(rng, rng.randint(lo, hi))
    ws[0] = ws[0].capitalize()
    if len(ws) > 8 and rng.random() < 0.3:
        ws[rng.randrange(3, len(ws) - 3)] += ","
    return " ".join(ws) + (end or rng.choice((".", ".", ".", "?", "!")))


def base_record(seed, i):
    rng = random.Random(seed * 1_000_003 + i * 2 + 1)
    domain = rng.choice(("general", "reasoning", "code", "math", "writing"))
    instr = rng.choice(INSTRUCTION_VERBS) + " " + " ".join(V.words(rng, rng.randint(5, 14))) + "."
    if rng.random() < 0.3:
        instr += " " + sentence(rng, 4, 10)
    inp = ""
    if rng.random() < 0.45:
        inp = " ".join(sentence(rng, 5, 14) for _ in range(rng.randint(1, 2)))
    nresp = rng.randint(3, 6) if inp else rng.randint(4, 7)
    resp = [sentence(rng, 6, 14) for _ in range(nresp)]
    if rng.random() < 0.25:
        resp.insert(rng.randint(1, len(resp)), "\n")
    return {"instruction": instr, "input": inp, "response": " ".join(resp).replace(" \n ", "\n\n"),
            "domain": domain}


def plan(seed, i, rate):
    """None for a base record, else (original position, kind, rng) for an injected duplicate."""
    if i == 0:
        return None
    rng = random.Random(seed * 1_000_003 + i * 2)
    if rng.random() >= rate:
        return None
    j = rng.randrange(i)
    p = plan(seed, j, rate)
    if p is not None:
        j = p[0]  # a duplicate of a duplicate is a duplicate of its base record
    r, acc = rng.random(), 0.0
    kind = KINDS[-1][0]
    for name, w in KINDS:
        acc += w
        if r < acc:
            kind = name
            break
    return j, kind, rng


# --- the edits -------------------------------------------------------------------------------
TEXT_FIELDS = ("instruction", "input", "response")


def pick_field(rng, rec):
    fields = [f for f in TEXT_FIELDS if rec[f].strip()]
    return rng.choices(fields, weights=[len(rec[f]) for f in fields])[0]


def word_edit(rng, rec, op=None):
    f = pick_field(rng, rec)
    toks = rec[f].split(" ")
    op = op or rng.choice(("sub", "ins", "del", "typo"))
    k = rng.randrange(len(toks))
    if op == "sub":
        toks[k] = V.words(rng, 1)[0]
    elif op == "ins":
        toks.insert(k, V.words(rng, 1)[0])
    elif op == "del" and len(toks) > 3:
        del toks[k]
    elif op == "typo" or op == "del":
        w = toks[k]
        if len(w) > 2:
            p = rng.randrange(len(w) - 1)
            w = w[:p] + w[p + 1] + w[p] + w[p + 2:] if rng.random() < 0.5 else w[:p] + w[p + 1:]
        else:
            w = w + rng.choice("aeiou")
        toks[k] = w
    elif op == "swap" and len(toks) > 1:
        k = min(k, len(toks) - 2)
        toks[k], toks[k + 1] = toks[k + 1], toks[k]
    rec[f] = " ".join(toks)


def synonym_edit(rng, rec, tries=20):
    for _ in range(tries):
        f = pick_field(rng, rec)
        toks = rec[f].split(" ")
        k = rng.randrange(len(toks))
        w = toks[k]
        core = w.rstrip(".,?!\n")
        s = V.synonym(rng, core)
        if s:
            toks[k] = s + w[len(core):]
            rec[f] = " ".join(toks)
            return


def reorder(rng, rec):
    text = rec["response"]
    sents, cur = [], []
    for tok in text.split(" "):
        cur.append(tok)
        if tok.endswith((".", "?", "!")):
            sents.append(" ".join(cur))
            cur = []
    if cur:
        sents.append(" ".join(cur))
    if len(sents) < 2:
        word_edit(rng, rec, "swap")
        return
    k = rng.randrange(len(sents) - 1)
    sents[k], sents[k + 1] = sents[k + 1], sents[k]
    rec["response"] = " ".join(sents)


def surface(rng, rec):
    for f in TEXT_FIELDS:
        t = rec[f]
        if not t:
            continue
        r = rng.random()
        if r < 0.3:
            t = t.upper()
        elif r < 0.6:
            t = "  " + t.replace(" ", "  ", 3) + " \n"
        elif r < 0.8:
            t = t.replace(". ", ".\n", 2)
        rec[f] = t


def make_dup(rec, kind, rng):
    rec = dict(rec)
    if kind == "surface":
        surface(rng, rec)
    elif kind == "edit1":
        word_edit(rng, rec)
    elif kind == "swap":
        word_edit(rng, rec, "swap")
    elif kind == "synonym1":
        synonym_edit(rng, rec)
    elif kind == "reorder":
        reorder(rng, rec)
    elif kind == "edit2-3":
        for _ in range(rng.randint(2, 3)):
            word_edit(rng, rec)
    elif kind == "paraphrase":
        for _ in range(rng.randint(5, 10)):
            synonym_edit(rng, rec)
        reorder(rng, rec)
    return rec


def rid(i):
    return "r%07d" % i


def out_record(i, rec):
    return json.dumps({"id": rid(i), "instruction": rec["instruction"], "input": rec["input"],
                       "response": rec["response"], "domain": rec["domain"]}) + "\n"


CFG = {}


def init(seed, rate, fields, kind, k):
    global V
    V = Vocab(seed)
    CFG.update(seed=seed, rate=rate, fields=fields, kind=kind, k=k)


def chunk(bounds):
    lo, hi = bounds
    seed, rate = CFG["seed"], CFG["rate"]
    lines, truth = [], []
    for i in range(lo, hi):
        p = plan(seed, i, rate)
        if p is None:
            lines.append(out_record(i, base_record(seed, i)))
            continue
        j, kind, rng = p
        orig = base_record(seed, j)
        dup = make_dup(orig, kind, rng)
        lines.append(out_record(i, dup))
        a = dc.shingles(dc.record_text(orig, CFG["fields"]), CFG["kind"], CFG["k"])
        b = dc.shingles(dc.record_text(dup, CFG["fields"]), CFG["kind"], CFG["k"])
        truth.append("%s\t%s\t%s\t%.6f\n" % (rid(i), rid(j), kind, dc.jaccard(a, b)))
    return "".join(lines), "".join(truth)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, required=True, help="records")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dup-rate", type=float, default=0.04, help="share of injected duplicates")
    ap.add_argument("-o", "--out", required=True, help="corpus NDJSON")
    ap.add_argument("--truth", required=True, help="ground-truth TSV")
    ap.add_argument("--fields", default=",".join(dc.FIELDS))
    ap.add_argument("--shingle", default="word:5")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    fields = dc.parse_fields(a.fields)
    kind, k = dc.parse_shingle(a.shingle)
    step = 5000
    bounds = [(lo, min(lo + step, a.n)) for lo in range(0, a.n, step)]
    init_args = (a.seed, a.dup_rate, fields, kind, k)
    ndup = 0
    with open(a.out, "w") as out, open(a.truth, "w") as tr:
        tr.write("dup_id\torig_id\tkind\tjaccard\n")
        if a.jobs > 1 and len(bounds) > 1:
            with multiprocessing.Pool(a.jobs, initializer=init, initargs=init_args) as pool:
                results = pool.imap(chunk, bounds)
                for lines, truth in results:
                    out.write(lines)
                    tr.write(truth)
                    ndup += truth.count("\n")
        else:
            init(*init_args)
            for b in bounds:
                lines, truth = chunk(b)
                out.write(lines)
                tr.write(truth)
                ndup += truth.count("\n")
    print("dedup_gen: %d records, %d injected duplicates -> %s, %s" % (a.n, ndup, a.out, a.truth),
          file=sys.stderr)


if __name__ == "__main__":
    main()
