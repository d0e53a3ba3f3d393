#!/usr/bin/env python3
"""Vectors for the semantic part of bench/dedup, and its exact reference (faiss IndexFlatIP).

  dedup_vectors.py gen   -n 100000 --dim 384 --seed 1 --out PREFIX
      Unit vectors: random (Gaussian, normalized: unrelated pairs have cosine ~N(0, 1/dim),
      far below 0.9) plus --dup-rate injected near-duplicates v_i = normalize(v_j + s*g) of an
      earlier base vector j, with s chosen for a target cosine uniform in [0.8, 0.995].
      Writes PREFIX.npy (float32, N x dim) and PREFIX.truth.tsv (dup, orig, cosine), ids are
      "v%07d" % position.
  dedup_vectors.py faiss --vectors PREFIX.npy --cosine 0.9 --drops DROPS.tsv
      Exact search: IndexFlatIP over all vectors, range_search of every vector at the cosine
      threshold, then keep-first in input order (a vector is dropped when an earlier kept one
      is >= the threshold; duplicate_of = the most similar such one). Prints a JSON summary
      (pairs found, dropped, seconds for index + search) and writes the drops as TSV
      (id, duplicate_of, cosine).
  dedup_vectors.py serve --vectors PREFIX.npy --port 18791 [--records PREFIX.records.ndjson]
      A local OpenAI-style embeddings server that hands out the given vectors: POST
      /v1/embeddings answers each input "v0001234" with vector 1234 (base64 float32, which
      gra's client decodes), GET /v1/models lists "bench-embed". With --records it first
      writes the records gra-dedup reads: {"id": "v0001234", "instruction": "v0001234"}.
      Runs until killed.
  dedup_vectors.py score --reference DROPS.tsv --drops NAME=PATH...
      Agreement of other drops (TSV or gra-dedup rejects NDJSON) with the exact ones: recall,
      precision, and whether the dropped-id sets are equal. TSV rows to stdout.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def vid(i):
    return "v%07d" % i


def gen(a):
    import numpy as np
    rng = np.random.default_rng(a.seed)
    x = rng.standard_normal((a.n, a.dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    is_dup = rng.random(a.n) < a.dup_rate
    is_dup[0] = False
    bases = np.flatnonzero(~is_dup)
    rows = []
    for i in np.flatnonzero(is_dup):
        j = int(bases[rng.integers(np.searchsorted(bases, i))])  # a base vector before i
        c = rng.uniform(0.8, 0.995)
        s = np.sqrt(1.0 / (c * c) - 1.0)
        g = rng.standard_normal(a.dim).astype(np.float32) / np.sqrt(a.dim)
        v = x[j] + s * g
        x[i] = v / np.linalg.norm(v)
        rows.append((int(i), j))
    np.save(a.out + ".npy", x)
    with open(a.out + ".truth.tsv", "w") as f:
        f.write("dup_id\torig_id\tcosine\n")
        for i, j in rows:
            f.write("%s\t%s\t%.6f\n" % (vid(i), vid(j), float(x[i] @ x[j])))
    print("dedup_vectors: %d vectors of dimension %d, %d injected near-duplicates -> %s.npy"
          % (a.n, a.dim, len(rows), a.out), file=sys.stderr)


def run_faiss(a):
    import faiss
    import numpy as np
    x = np.load(a.vectors, mmap_mode="r")
    x = np.ascontiguousarray(x, dtype=np.float32)
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, dist, idx = index.range_search(x, a.cosine)
    dt = time.perf_counter() - t0
    n = x.shape[0]
    kept = np.ones(n, dtype=bool)
    pairs = 0
    ndrop = 0
    with open(a.drops, "w") as f:
        for i in range(n):
            lo, hi = lims[i], lims[i + 1]
            best, best_c = -1, -2.0
            for j, c in zip(idx[lo:hi], dist[lo:hi]):
                if j < i:
                    pairs += 1
                    if kept[j] and c > best_c:
                        best, best_c = int(j), float(c)
            if best >= 0:
                kept[i] = False
                ndrop += 1
                f.write("%s\t%s\t%.5f\n" % (vid(i), vid(best), best_c))
    print(json.dumps({"tool": "faiss IndexFlatIP", "version": faiss.__version__, "vectors": n, "pairs": pairs,
                      "dropped": ndrop, "seconds": round(dt, 3), "threads": faiss.omp_get_max_threads()}))


def serve(a):
    import base64
    import http.server
    import numpy as np
    x = np.load(a.vectors, mmap_mode="r")
    n = x.shape[0]
    if a.records:
        with open(a.records, "w") as f:
            for i in range(n):
                f.write('{"id": "%s", "instruction": "%s"}\n' % (vid(i), vid(i)))
    le = np.ascontiguousarray(x, dtype="<f4")
    b64 = [base64.b64encode(le[i].tobytes()).decode("ascii") for i in range(n)]
    models = json.dumps({"object": "list", "data": [{"id": "bench-embed", "object": "model"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self.reply(200, models)
            elif self.path == "/health":
                self.reply(200, b"{}")
            else:
                self.reply(404, b'{"error": {"message": "not found"}}')

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                self.reply(404, b'{"error": {"message": "not found"}}')
                return
            try:
                req = json.loads(body)
                inputs = req["input"]
                if isinstance(inputs, str):
                    inputs = [inputs]
                idx = [int(t.strip()[1:]) for t in inputs]
                if any(i < 0 or i >= n for i in idx):
                    raise ValueError("no such vector")
            except (ValueError, KeyError, TypeError) as e:
                self.reply(400, json.dumps({"error": {"message": "bad request: %s" % e}}).encode())
                return
            parts = ['{"object":"embedding","index":%d,"embedding":"%s"}' % (k, b64[i]) for k, i in enumerate(idx)]
            out = '{"object":"list","model":"bench-embed","data":[%s],"usage":{"prompt_tokens":%d,"total_tokens":%d}}' % (
                ",".join(parts), len(idx), len(idx))
            self.reply(200, out.encode())

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 256
        daemon_threads = True

    srv = Server(("127.0.0.1", a.port), Handler)
    print("dedup_vectors: serving %d vectors on 127.0.0.1:%d" % (n, a.port), file=sys.stderr, flush=True)
    srv.serve_forever()


def score(a):
    from dedup_score import read_drops
    ref = read_drops(a.reference)
    print("tool\tdropped\trecall\tprecision\tsame_dropped_set\tsame_pairs")
    for spec in a.drops:
        name, _, path = spec.partition("=")
        d = read_drops(path)
        inter = len(ref.keys() & d.keys())
        recall = inter / len(ref) if ref else 1.0
        precision = inter / len(d) if d else 1.0
        same_pairs = sum(1 for k, v in d.items() if ref.get(k) == v)
        print("%s\t%d\t%.4f\t%.4f\t%s\t%d/%d" % (name, len(d), recall, precision,
                                               "yes" if ref.keys() == d.keys() else "no", same_pairs, len(ref)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("-n", type=int, default=100000)
    g.add_argument("--dim", type=int, default=384)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--dup-rate", type=float, default=0.02)
    g.add_argument("--out", required=True)
    f = sub.add_parser("faiss")
    f.add_argument("--vectors", required=True)
    f.add_argument("--cosine", type=float, default=0.9)
    f.add_argument("--drops", required=True)
    v = sub.add_parser("serve")
    v.add_argument("--vectors", required=True)
    v.add_argument("--port", type=int, default=18791)
    v.add_argument("--records")
    s = sub.add_parser("score")
    s.add_argument("--reference", required=True)
    s.add_argument("--drops", action="append", default=[], metavar="NAME=PATH")
    a = ap.parse_args()
    {"gen": gen, "faiss": run_faiss, "serve": serve, "score": score}[a.cmd](a)


if __name__ == "__main__":
    main()
