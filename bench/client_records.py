#!/usr/bin/env python3
"""Writes N records {"id": "r1".."rN", "instruction": "..."} to PATH for bench/client,
bench/latency and bench/memory (ids as bench/client_check.py expects them).

usage: client_records.py N PATH [--review]   (--review adds a "response" for gra-review)"""

import json
import sys

TOPICS = ["the water cycle", "binary search", "photosynthesis", "TCP slow start", "the French Revolution",
          "compound interest", "plate tectonics", "hash tables", "the immune system", "Unix pipes"]


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--review"):
        sys.exit(__doc__.splitlines()[-1].strip())
    n, path, review = int(sys.argv[1]), sys.argv[2], len(sys.argv) == 4
    with open(path, "w", buffering=1 << 20) as f:
        for i in range(1, n + 1):
            topic = TOPICS[i % len(TOPICS)]
            record = {"id": f"r{i}",
                      "instruction": f"Question {i}: in two sentences, explain {topic} to a curious twelve-year-old."}
            if review:
                record["response"] = f"Answer {i}: {topic} is explained here in two short sentences for a child."
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
