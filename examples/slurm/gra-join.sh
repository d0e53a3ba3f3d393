#!/usr/bin/env bash
# examples/slurm/gra-join.sh — after gra-array.sh: join the shards, deduplicate across them,
# write the training files (see docs/OPERATING.md).
#
#   sbatch --dependency=afterany:$jid examples/slurm/gra-join.sh seeds.ndjson /shared/run
#SBATCH --job-name=gra-join
#SBATCH --cpus-per-task=2
set -euo pipefail
seeds=${1:?usage: gra-join.sh SEEDS RUN}
run=${2:?usage: gra-join.sh SEEDS RUN}
shards=("$run"/shard-*/)
for d in "${shards[@]}"; do
    [[ -e $d/accepted.ndjson ]] || { echo "gra-join: $d did not finish (no accepted.ndjson)" >&2; exit 1; }
done
cat "$run"/shard-*/accepted.ndjson \
    | gra-dedup --method exact,minhash --against "$seeds" --rejects "$run/dedup.rejects.ndjson" \
    > "$run/dataset.ndjson.partial"
mv "$run/dataset.ndjson.partial" "$run/dataset.ndjson"
gra-format --to sharegpt --strip-meta < "$run/dataset.ndjson" > "$run/train.sharegpt.jsonl"
echo "gra-join: $(wc -l < "$run/dataset.ndjson") samples from ${#shards[@]} shards in $run/dataset.ndjson" >&2
