#!/usr/bin/env python3
"""Checks a bench/client output: exactly N lines, each a JSON object with a non-empty string
at the dotted FIELD, and the ids r1..rN each exactly once. Exits 1 with the reason otherwise."""

import json
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: client_check.py OUTPUT N FIELD")
    path, n, field = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(".")
    seen = set()
    lines = 0
    problems = []
    with open(path, "rb") as f:
        for lines, line in enumerate(f, 1):
            try:
                value = record = json.loads(line)
                for part in field:
                    value = value[part]
                if not isinstance(value, str) or not value:
                    raise ValueError("empty reply")
                rid = record["id"]
                if rid in seen:
                    raise ValueError(f"duplicate id {rid}")
                seen.add(rid)
            except Exception as e:
                problems.append(f"line {lines}: {type(e).__name__}: {e}")
    expected = {f"r{i}" for i in range(1, n + 1)}
    if lines != n:
        problems.insert(0, f"{lines} lines, expected {n}")
    missing = expected - seen
    if missing:
        problems.insert(0, f"{len(missing)} ids missing (e.g. {sorted(missing)[:3]})")
    if problems:
        print(f"client_check: {path}: " + "; ".join(problems[:5]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
