"""Write a JSON array document and the same records as NDJSON, with Python's own json module
(a writer nobody here wrote), for the input tests.

usage: make_arrays.py MEGABYTES LAYOUT SEED ARRAY_OUT NDJSON_OUT
LAYOUT: compact | indent | crlf (indent=2 with CRLF line ends) | ascii (\\u escapes for every
non-ASCII character, indent=1)
"""
import json
import random
import sys

megabytes, layout, seed, array_out, ndjson_out = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
rng = random.Random(seed)
words = ("the a model data review score 数据 模型 café naïve 😀 \"quoted\" back\\slash [bracket] {brace} comma, "
         "tab\there new\nline code \n```python\nprint(1)\n```\n x y z").split(" ")


def text(n):
    return " ".join(rng.choice(words) for _ in range(n))


records, size, i = [], 0, 0
while size < megabytes * 1_000_000:
    r = {"id": f"r{i}", "instruction": text(rng.randint(3, 40)), "input": text(rng.randint(0, 10)) if rng.random() < 0.3 else "",
         "output": text(rng.randint(5, 400)), "meta": {"n": i, "tags": [text(1), text(2)], "score": rng.random()}}
    records.append(r)
    size += len(json.dumps(r, ensure_ascii=False)) + 4
    i += 1

with open(array_out, "w", encoding="utf-8", newline="") as f:
    if layout == "compact":
        f.write(json.dumps(records, ensure_ascii=False, separators=(",", ":")))
    elif layout == "indent":
        f.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    elif layout == "crlf":
        f.write(json.dumps(records, ensure_ascii=False, indent=2).replace("\n", "\r\n") + "\r\n")
    elif layout == "ascii":
        f.write(json.dumps(records, ensure_ascii=True, indent=1))
    else:
        raise SystemExit(f"unknown layout {layout}")
with open(ndjson_out, "w", encoding="utf-8") as f:
    for r in records:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(records))
