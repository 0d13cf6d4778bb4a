#!/usr/bin/env bash
# Submits a fairbits sweep to Slurm: the job array of deploy/slurm/sweep.sbatch (task I trains shard
# I/SHARDS of the grid into SWEEP_DIR), then the report job, which starts once every task has succeeded and
# writes results.csv, summary.csv, the plots and SWEEP_DIR/RESULTS.md (it is cancelled if a task fails).
#
# Settings, from the environment (defaults in brackets):
#   SWEEP      the grid: `fairbits sweep` flags but --out, --shard and --jobs
#              ["--dataset adult --gammas 0,0.1,0.5,1,2,5 --seeds 0,1,2,3,4"]
#   SWEEP_DIR  the sweep directory, on a filesystem every node sees; made absolute here [sweeps/adult]
#   SHARDS     the number of array tasks [8]
# Arguments go to both sbatch calls (--partition, --account, --time, ...; not --array: SHARDS sets it).
# Both jobs get this shell's environment (--export=ALL): `fairbits` must be on PATH here.
# Logs: SWEEP_DIR/logs/sweep-ARRAYID_TASK.out and SWEEP_DIR/logs/report-JOBID.out.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export SWEEP=${SWEEP:-"--dataset adult --gammas 0,0.1,0.5,1,2,5 --seeds 0,1,2,3,4"}
SWEEP_DIR=$(realpath -m -- "${SWEEP_DIR:-sweeps/adult}")
export SWEEP_DIR
export SHARDS=${SHARDS:-8}

fail() {
  echo "submit.sh: $*" >&2
  exit 2
}
[[ $SHARDS =~ ^[1-9][0-9]*$ ]] || fail "SHARDS must be a positive whole number, not '$SHARDS'"
command -v sbatch >/dev/null || fail "sbatch is not on PATH: run this on a Slurm submission host"
fairbits=$(command -v fairbits) ||
  fail "fairbits is not on PATH (cargo install --path ., or add a build's target/release to PATH): the jobs run it"

# Slurm opens a job's output file before the job starts and does not create its directory.
logs=$SWEEP_DIR/logs
mkdir -p "$logs"

array=$(sbatch --parsable --export=ALL --array="1-$SHARDS" --output="$logs/sweep-%A_%a.out" "$@" \
  "$here/sweep.sbatch")
array=${array%%;*} # --parsable prints ID or ID;CLUSTER
# afterok waits for every task of the array; a failed task cancels the report instead of leaving it
# pending forever (DependencyNeverSatisfied).
report=$(sbatch --parsable --export=ALL --job-name=fairbits-report --dependency="afterok:$array" \
  --kill-on-invalid-dep=yes --output="$logs/report-%j.out" "$@" \
  --wrap="fairbits report --from $(printf %q "$SWEEP_DIR") --merge $(printf %q "$SWEEP_DIR") --out $(printf %q "$SWEEP_DIR/RESULTS.md")")
report=${report%%;*}

echo "fairbits ($fairbits) sweep $SWEEP"
echo "  into $SWEEP_DIR: array job $array (tasks 1-$SHARDS), then report job $report ($SWEEP_DIR/RESULTS.md)"
echo "  logs in $logs; follow with: squeue -j $array,$report"
