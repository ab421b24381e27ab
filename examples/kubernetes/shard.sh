#!/bin/sh
# One pod of the svadiff nightly Indexed Job (nightly.yaml; docs/nightly.md, "Shards").
#
# Runs shard $JOB_COMPLETION_INDEX of $SHARDS of the matrix in $CONFIG into
# $DATA/nights/$NIGHT/shard-<index>, with the svadiff cache and the history on the volume
# $DATA. The pod that finishes last merges the shards into $DATA/nights/$NIGHT/night and writes
# the night's summary there (summary.json, junit.xml, index.html); it exits with the night's
# status (0 no new bug, 1 new bugs, 2 the run failed), the other pods with 0 (a failed cell of
# theirs makes the night's status 2).
set -eu
: "${JOB_COMPLETION_INDEX:?set by Kubernetes in the pods of an Indexed Job}"
: "${SHARDS:?the Job's completions}"
: "${NIGHT:?one name for every shard of the night, e.g. the Job name}"
DATA=${DATA:-/data}
CONFIG=${CONFIG:-examples/nightly.json}
SRC=${SRC:-/src}
export SVADIFF_CACHE="${SVADIFF_CACHE:-$DATA/cache}"
dir="$DATA/nights/$NIGHT"
mkdir -p "$dir" "$DATA/history"
cd "$SRC"

# a pod started again (the Job retries a pod that was evicted or killed) continues its shard
status=0
npx svadiff nightly --config "$CONFIG" --shard "$JOB_COMPLETION_INDEX/$SHARDS" --night "$NIGHT" \
  --out "$dir/shard-$JOB_COMPLETION_INDEX" --history "$DATA/history" || status=$?
echo "$status" > "$dir/shard-$JOB_COMPLETION_INDEX.done"

# the last shard to finish reports; mkdir is atomic on the volume, so only one does
finished=$(find "$dir" -maxdepth 1 -name 'shard-*.done' | wc -l)
if [ "$finished" -lt "$SHARDS" ] || ! mkdir "$dir/report.lock" 2>/dev/null; then
  exit 0
fi
shards=""
i=0
while [ "$i" -lt "$SHARDS" ]; do
  shards="$shards $dir/shard-$i"
  i=$((i + 1))
done
# shellcheck disable=SC2086 # one argument per shard directory
npx svadiff merge --out "$dir/night" $shards
night_status=0
npx svadiff nightly --report "$dir/night" --history "$DATA/history" || night_status=$?
echo "$night_status" > "$dir/night/exit-status"
exit "$night_status"
