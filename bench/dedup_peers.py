#!/usr/bin/env python3
"""The peers of gra-dedup --method minhash for bench/dedup: datasketch MinHashLSH and rensa
(RMinHash + RMinHashLSH), run with gra-dedup's keep-first semantics in input order.

For each record: read its JSON line, take its text and shingles (dedup_common.py: the same
fields, normalization and shingles as gra-dedup), build a MinHash (num_perm, default 128),
query the LSH index, verify the candidates by their estimated Jaccard (signature agreement);
if one is >= the threshold the record is dropped as a duplicate of the best one, otherwise
its MinHash is kept and inserted into the index. Everything is timed, JSON reading and
shingling included.

datasketch: MinHash(num_perm) per record, the documented way (it draws the permutations for
every record); --shared-permutations hands one set to all instead, the same values (so the
same drops), faster.

Banding: datasketch uses its own optimum for the threshold (MinHashLSH(threshold, num_perm):
9 bands x 13 rows for 0.8/128) unless --bands is given; rensa's RMinHashLSH needs a band count
that divides num_perm, default 16 (8 rows; 8 bands x 16 rows, the other neighbour of
datasketch's choice, finds under half of the pairs at Jaccard 0.85).
rensa's MinHash is built per record with RMinHash(num_perm, seed).update(shingles): its bulk
RMinHash.from_token_sets was no faster here (Python's JSON and shingling dominate).

Writes the dropped records to --drops as TSV (id, duplicate_of, estimated similarity) and a
one-line JSON summary to stdout.

Usage: dedup_peers.py datasketch|rensa --input corpus.ndjson --drops drops.tsv
                      [--fields instruction,input,response] [--shingle word:5]
                      [--num-perm 128] [--threshold 0.8] [--bands B] [--limit N]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dedup_common as dc  # noqa: E402


def lines_of(path, limit):
    with open(path, "rb") as f:
        for n, line in enumerate(f):
            if limit is not None and n >= limit:
                break
            yield line


def run_datasketch(a, fields, kind, k, drops):
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    if a.bands:
        if a.num_perm % a.bands:
            raise SystemExit("--bands must divide --num-perm")
        lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm, params=(a.bands, a.num_perm // a.bands))
    else:
        lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm)
    # By default a MinHash per record as datasketch documents it, MinHash(num_perm=128), which
    # draws its permutations anew each time (seed 1). --shared-permutations passes one set to
    # all (the same values, so the same signatures and drops): much faster.
    proto = MinHash(num_perm=a.num_perm, seed=1)
    perms, scheme = proto.permutations, proto.scheme
    shared = a.shared_permutations
    kept = {}
    n = ndrop = 0
    thr = a.threshold
    for line in lines_of(a.input, a.limit):
        rec = json.loads(line)
        rid = rec["id"]
        if shared:
            m = MinHash(num_perm=a.num_perm, permutations=perms, scheme=scheme)
        else:
            m = MinHash(num_perm=a.num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in dc.shingle_list(dc.record_text(rec, fields), kind, k)])
        best, best_sim = None, -1.0
        for c in lsh.query(m):
            s = m.jaccard(kept[c])
            if s > best_sim:
                best, best_sim = c, s
        if best is not None and best_sim >= thr:
            drops.write("%s\t%s\t%.4f\n" % (rid, best, best_sim))
            ndrop += 1
        else:
            lsh.insert(rid, m, check_duplication=False)
            kept[rid] = m
        n += 1
    return n, ndrop, {"bands": lsh.b, "rows": lsh.r, "shared_permutations": shared}


def run_rensa(a, fields, kind, k, drops):
    from rensa import RMinHash, RMinHashLSH

    bands = a.bands or 16
    if a.num_perm % bands:
        raise SystemExit("rensa needs --bands to divide --num-perm")
    lsh = RMinHashLSH(a.threshold, a.num_perm, bands)
    kept = []     # position -> MinHash (None when dropped)
    ids = []      # position -> id
    n = ndrop = 0
    thr = a.threshold
    for line in lines_of(a.input, a.limit):
        rec = json.loads(line)
        rid = rec["id"]
        m = RMinHash(a.num_perm, a.seed)
        m.update(dc.shingle_list(dc.record_text(rec, fields), kind, k))
        best, best_sim = None, -1.0
        for c in lsh.query(m):
            s = m.jaccard(kept[c])
            if s > best_sim:
                best, best_sim = c, s
        if best is not None and best_sim >= thr:
            drops.write("%s\t%s\t%.4f\n" % (rid, ids[best], best_sim))
            ndrop += 1
            kept.append(None)
        else:
            lsh.insert(n, m)
            kept.append(m)
        ids.append(rid)
        n += 1
    return n, ndrop, {"bands": bands, "rows": a.num_perm // bands}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tool", choices=("datasketch", "rensa"))
    ap.add_argument("--input", required=True)
    ap.add_argument("--drops", required=True, help="TSV of dropped ids (id, duplicate_of, similarity)")
    ap.add_argument("--fields", default=",".join(dc.FIELDS))
    ap.add_argument("--shingle", default="word:5")
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--bands", type=int, default=0, help="LSH bands (default: see above)")
    ap.add_argument("--seed", type=int, default=42, help="rensa's MinHash seed")
    ap.add_argument("--shared-permutations", action="store_true",
                    help="datasketch: one set of permutations for all MinHashes (faster; same results)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N records")
    a = ap.parse_args()
    fields = dc.parse_fields(a.fields)
    kind, k = dc.parse_shingle(a.shingle)
    t0 = time.perf_counter()
    with open(a.drops, "w") as drops:
        run = run_datasketch if a.tool == "datasketch" else run_rensa
        n, ndrop, info = run(a, fields, kind, k, drops)
    dt = time.perf_counter() - t0
    if a.tool == "datasketch":
        import datasketch
        version = datasketch.__version__
    else:
        from importlib.metadata import version as v
        version = v("rensa")
    summary = {"tool": a.tool, "version": version, "records": n, "dropped": ndrop, "seconds": round(dt, 3),
               "docs_per_s": round(n / dt, 1) if dt > 0 else None, **info}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
