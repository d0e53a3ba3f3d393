#!/usr/bin/env python3
"""Scores the drops of near-duplicate finders against bench/dedup's ground truth.

Each --drops NAME=PATH is either a TSV (id, duplicate_of[, similarity]; dedup_peers.py's
output) or gra-dedup's rejects NDJSON ({"id", "duplicate_of", ...} per line). Only the first
--limit records of the corpus count (the truth rows whose duplicate lies among them).

Per tool:
  recall     share of the injected duplicates with true Jaccard >= --recall-at (0.85) that
             were dropped (recall80: the same for >= --threshold)
  precision  share of dropped records that are true positives: the exact Jaccard of the
             dropped record's shingles with those of the record it was matched to, or with
             its injected original, is >= --threshold (0.8). Every dropped pair is checked
             exactly, so duplicates that occur naturally count as true too.
  agreement  with --reference (datasketch): Jaccard of the kept-id sets, and of the
             dropped-id sets (the sharper number: kept sets share ~96% of all ids anyway)

Writes one TSV row per tool to stdout (header first):
  tool dropped recall recall80 precision tp fp fp_min_j kept_agreement dropped_agreement
(fp_min_j: the smallest exact Jaccard among the false positives' pairs, "-" without any:
shows whether the wrong drops are near-misses just under the threshold or far off)
and, with -v, the false positives and missed duplicates to stderr.
"""

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dedup_common as dc  # noqa: E402


def read_drops(path):
    """{dropped id: duplicate_of}"""
    out = {}
    with open(path) as f:
        first = f.readline()
        f.seek(0)
        if first.lstrip().startswith("{"):
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    out[str(r["id"])] = None if r.get("duplicate_of") is None else str(r["duplicate_of"])
        else:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if parts and parts[0]:
                    out[parts[0]] = parts[1] if len(parts) > 1 and parts[1] else None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--limit", type=int, default=None, help="only the first N records of the corpus")
    ap.add_argument("--drops", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--reference", default="datasketch", help="tool the others' agreement is measured against")
    ap.add_argument("--fields", default=",".join(dc.FIELDS))
    ap.add_argument("--shingle", default="word:5")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--recall-at", type=float, default=0.85)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    fields = dc.parse_fields(a.fields)
    kind, k = dc.parse_shingle(a.shingle)

    # Ids of the corpus (prefix), in order.
    ids = []
    with open(a.corpus, "rb") as f:
        for n, line in enumerate(f):
            if a.limit is not None and n >= a.limit:
                break
            ids.append(json.loads(line)["id"])
    idset = set(ids)

    truth = {}  # dup id -> (orig id, kind, jaccard)
    with open(a.truth) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["dup_id"] in idset:
                truth[r["dup_id"]] = (r["orig_id"], r["kind"], float(r["jaccard"]))

    tools = []
    for spec in a.drops:
        name, _, path = spec.partition("=")
        tools.append((name, read_drops(path)))

    # Texts of every record in a dropped pair (and of injected originals), then exact Jaccard.
    need = set()
    for _, d in tools:
        for rid, of in d.items():
            need.add(rid)
            if of is not None:
                need.add(of)
            if rid in truth:
                need.add(truth[rid][0])
    sh = {}
    with open(a.corpus, "rb") as f:
        for n, line in enumerate(f):
            if a.limit is not None and n >= a.limit:
                break
            rec = json.loads(line)
            if rec["id"] in need:
                sh[rec["id"]] = dc.shingles(dc.record_text(rec, fields), kind, k)

    def exact(x, y):
        if x not in sh or y not in sh:
            return None
        return dc.jaccard(sh[x], sh[y])

    positives = [d for d, (_, _, j) in truth.items() if j >= a.recall_at]
    positives80 = [d for d, (_, _, j) in truth.items() if j >= a.threshold]
    ref = dict(tools).get(a.reference)
    all_ids = idset

    print("tool\tdropped\trecall\trecall80\tprecision\ttp\tfp\tfp_min_j\tkept_agreement\tdropped_agreement")
    for name, d in tools:
        unknown = [x for x in d if x not in idset]
        if unknown:
            sys.exit("dedup_score: %s drops %d ids not in the corpus prefix (e.g. %s)" % (name, len(unknown), unknown[0]))
        tp = fp = 0
        fps = []
        for rid, of in d.items():
            best = -1.0
            if of is not None:
                j = exact(rid, of)
                if j is not None:
                    best = j
            if rid in truth:
                j = exact(rid, truth[rid][0])
                if j is not None and j > best:
                    best = j
            if best >= a.threshold:
                tp += 1
            else:
                fp += 1
                fps.append((rid, of, best))
        recall = sum(1 for x in positives if x in d) / len(positives) if positives else float("nan")
        recall80 = sum(1 for x in positives80 if x in d) / len(positives80) if positives80 else float("nan")
        precision = tp / (tp + fp) if tp + fp else 1.0
        if ref is not None:
            kept, rkept = all_ids - d.keys(), all_ids - ref.keys()
            ka = len(kept & rkept) / len(kept | rkept) if kept | rkept else 1.0
            dset, rset = set(d), set(ref)
            da = len(dset & rset) / len(dset | rset) if dset | rset else 1.0
            kas, das = "%.5f" % ka, "%.4f" % da
        else:
            kas = das = "-"
        fpmin = "%.3f" % min(j for _, _, j in fps) if fps else "-"
        print("%s\t%d\t%.4f\t%.4f\t%.4f\t%d\t%d\t%s\t%s\t%s" % (name, len(d), recall, recall80, precision, tp, fp, fpmin, kas, das))
        if a.verbose:
            for rid, of, j in fps[:20]:
                print("dedup_score: %s false positive: %s dropped as duplicate of %s, exact Jaccard %.3f" % (name, rid, of, j),
                      file=sys.stderr)
            missed = [x for x in positives if x not in d]
            for x in missed[:20]:
                o, kd, j = truth[x]
                print("dedup_score: %s missed: %s (%s of %s, Jaccard %.3f)" % (name, x, kd, o, j), file=sys.stderr)
    print("dedup_score: %d records, %d injected duplicates, %d with Jaccard >= %g, %d >= %g"
          % (len(ids), len(truth), len(positives), a.recall_at, len(positives80), a.threshold), file=sys.stderr)


if __name__ == "__main__":
    main()
