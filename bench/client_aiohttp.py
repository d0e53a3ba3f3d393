#!/usr/bin/env python3
"""The aiohttp peer for bench/client.

Reads NDJSON records ({"id", "instruction"}), sends one POST /v1/chat/completions per record
with at most CONCURRENCY requests in flight, parses each JSON reply and writes one line per
record ({"id", "reply"}) so that it does the same work as gra-map. Requests go through one
aiohttp.ClientSession with a TCPConnector(limit=CONCURRENCY), the way vLLM's benchmark client
sends them; a fixed pool of CONCURRENCY workers takes the records in turn (cheaper than one task
per record behind a semaphore, so the peer is not handicapped).

Prints "ok N failed M" to stderr; exits 1 if any request failed.
"""

import argparse
import asyncio
import json
import sys

import aiohttp


async def run(args):
    with open(args.records, "rb") as f:
        records = [json.loads(line) for line in f if line.strip()]
    url = args.base_url.rstrip("/") + "/chat/completions"
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    ok = 0
    failed = 0
    out = open(args.output, "w", encoding="utf-8", buffering=1 << 20)
    it = iter(records)

    async def worker(session):
        nonlocal ok, failed
        for record in it:
            payload = {
                "model": args.model,
                "messages": [{"role": "user", "content": record["instruction"]}],
            }
            try:
                async with session.post(url, json=payload) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                reply = json.loads(body)["choices"][0]["message"]["content"]
                if not isinstance(reply, str) or not reply:
                    raise RuntimeError("empty reply")
                out.write(json.dumps({"id": record["id"], "reply": reply}, ensure_ascii=False) + "\n")
                ok += 1
            except Exception as e:  # count it and go on, as a benchmark client does
                failed += 1
                if failed <= 5:
                    print(f"client_aiohttp: {record.get('id')}: {type(e).__name__}: {e}", file=sys.stderr)

    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(args.concurrency)))
    out.close()
    print(f"client_aiohttp: ok {ok} failed {failed}", file=sys.stderr)
    return 0 if failed == 0 and ok == len(records) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", required=True, help="NDJSON input with id and instruction")
    p.add_argument("--output", required=True, help="NDJSON output, one line per record")
    p.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:18790/v1")
    p.add_argument("--model", default="bench-model")
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    args = p.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
