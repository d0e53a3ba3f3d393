#!/usr/bin/env bash
# examples/slurm/gra-array.sh — a GRA round as a Slurm job array (see docs/OPERATING.md).
#
#   jid=$(sbatch --parsable --array=0-7 examples/slurm/gra-array.sh seeds.ndjson /shared/run)
#   sbatch --dependency=afterany:$jid examples/slurm/gra-join.sh seeds.ndjson /shared/run
#
# Each array task runs generate -> review -> adjudicate on its shard of the seeds
# (gra-generate --shard i/n: a stable hash of each seed's id) with a cache on the node's local
# disk, and writes /shared/run/shard-i/. gra-join.sh, once the whole array has ended, joins the
# shards, runs gra-dedup over the joined set (duplicates cross shards) and writes the training
# files. Put the pool in POOL (a config file) and gra's tools on PATH on every node.
#SBATCH --job-name=gra
#SBATCH --cpus-per-task=2
#SBATCH --time=12:00:00
set -euo pipefail
seeds=${1:?usage: sbatch --array=0-N gra-array.sh SEEDS RUN}
run=${2:?usage: sbatch --array=0-N gra-array.sh SEEDS RUN}
pool=${POOL:-pool.json}
n=${SLURM_ARRAY_TASK_COUNT:?run it with sbatch --array}
i=${SLURM_ARRAY_TASK_ID:?run it with sbatch --array}
dir=$run/shard-$i
mkdir -p "$dir"
# The cache on local disk: SQLite's locks do not hold on NFS.
cache=${TMPDIR:-/tmp}/gra-cache-$SLURM_ARRAY_JOB_ID-$i
args=(--config "$pool" --cache "$cache")

# A shard whose records partly failed (exit 75) still counts: its errors files say which.
set +e
gra-generate --shard "$i/$n" --errors "$dir/errors-generate.ndjson" "${args[@]}" < "$seeds" \
    | tee "$dir/generated.ndjson" \
    | gra-review --errors "$dir/errors-review.ndjson" "${args[@]}" \
    | tee "$dir/reviewed.ndjson" \
    | gra-adjudicate --rejects "$dir/rejects.ndjson" --errors "$dir/errors-adjudicate.ndjson" "${args[@]}" \
    > "$dir/accepted.ndjson.partial"
codes=("${PIPESTATUS[@]}")
set -e
for c in "${codes[@]}"; do
    if [[ $c != 0 && $c != 75 ]]; then
        echo "gra-array: shard $i: a stage failed (${codes[*]})" >&2
        exit 1
    fi
done
mv "$dir/accepted.ndjson.partial" "$dir/accepted.ndjson"
# Keep the cache with the run (merge them later: docs/OPERATING.md).
cp "$cache"/responses.sqlite3* "$dir/" 2> /dev/null || true
