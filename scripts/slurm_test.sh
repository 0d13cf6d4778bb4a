#!/usr/bin/env bash
# The README's "Sweeps on a cluster" section on a real Slurm. Installs slurm-wlm and munge (Debian packages)
# where they are missing, brings up a one-node cluster on localhost (its configuration, state, logs and
# munge key in a temporary directory; ports chosen free), runs the section's Slurm block word for word in a
# fresh clone of this repository, waits for the job array and the report job (printing their states),
# and compares the merged results.csv with a local `fairbits sweep` of the same grid, cell for cell
# (wall-clock seconds aside). Stops the daemons it started and removes everything it made.
# Skips, with the reason and exit status 0, where it cannot run: not root, no apt-get, the packages cannot
# be installed, a Slurm controller already running here.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$SECONDS

say() { echo "slurm_test: $*"; }
skip() {
  echo "slurm_test: SKIPPED: $*"
  exit 0
}
fail() {
  if [ -n "${logs:-}" ]; then
    for f in "$logs"/*.out "$tmp/slurmd.log" "$tmp/slurmctld.log"; do
      [ -f "$f" ] && { echo "--- the end of $f"; tail -n 15 "$f"; }
    done
  fi
  echo "slurm_test: FAILED: $*" >&2
  exit 1
}
last_lap=$start
lap() { # sets the variable named $1 to the seconds since the last lap
  printf -v "$1" %d $((SECONDS - last_lap))
  last_lap=$SECONDS
}

[ "$(id -u)" = 0 ] || skip "needs root (to install slurm-wlm and munge, and run slurmd)"
# (Not pgrep: slim images lack procps.)
for comm in /proc/[0-9]*/comm; do
  if [ "$(cat "$comm" 2>/dev/null)" = slurmctld ]; then
    skip "a slurmctld is already running on this machine; not bringing up a second cluster beside it"
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fairbits-slurm.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] && [ ${#pids[@]} -gt 0 ]; then
    # Jobs left by a failure end before the daemons do, so no slurmstepd outlives the test.
    scancel --quiet --user=root 2>/dev/null || true
    for _ in $(seq 20); do
      [ -z "$(squeue -h 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  [ -n "${made_policy:-}" ] && rm -f "$policy"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Packages -----------------------------------------------------------------------------------------
apt_seconds=0
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must not start system daemons: the test runs its own, and stops them.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    made_policy=1
  fi
  apt_install() { apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$tmp/apt.log" 2>&1; }
  installed=0
  # The package lists are refreshed only when the install fails without it.
  if apt_install || { apt-get update -q >>"$tmp/apt.log" 2>&1 && apt_install; }; then
    installed=1
  fi
  if [ -n "${made_policy:-}" ]; then
    rm -f "$policy"
    made_policy=
  fi
  if [ "$installed" = 0 ]; then
    tail -n 20 "$tmp/apt.log"
    skip "apt-get could not install slurm-wlm and munge (log above)"
  fi
  lap apt_seconds
  say "installed $(dpkg-query -W -f='slurm-wlm ${Version}, ' slurm-wlm)$(dpkg-query -W -f='munge ${Version}' munge) in ${apt_seconds} s"
else
  lap apt_seconds
  say "slurm-wlm and munge already installed: $(slurmctld -V), munge $(dpkg-query -W -f='${Version}' munge 2>/dev/null || echo '?')"
fi

# --- 2. A one-node cluster on localhost --------------------------------------------------------------------
# munged wants its key private and its socket's directory open to every user (execute permission).
chmod 755 "$tmp"
mkdir -m 700 "$tmp/munge" "$tmp/state" "$tmp/spool"
mkdir -m 755 "$tmp/socket"
socket=$tmp/socket/munge
head -c 1024 /dev/urandom >"$tmp/munge/munge.key"
chmod 400 "$tmp/munge/munge.key"
munged --foreground --key-file="$tmp/munge/munge.key" --socket="$socket" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/seed" \
  >"$tmp/munge/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  [ -S "$socket" ] && break
  sleep 0.1
done
munge --socket="$socket" -n 2>/dev/null | unmunge --socket="$socket" >/dev/null 2>&1 ||
  { cat "$tmp/munge/munged.out" 2>/dev/null; fail "munged does not answer (its log above)"; }

# Two free ports (another cluster or test on this machine may hold Slurm's defaults).
read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
cpus=$(nproc)
# sweep.sbatch asks 2 CPUs per task; config_overrides lets a 1-CPU machine advertise 2.
[ "$cpus" -ge 2 ] || cpus=2
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=fairbits-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
# No cgroups: this runs in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
# No accounting database (sacct needs slurmdbd): finished jobs stay in squeue --states=all for an hour,
# and each job's final state is written to the completion log.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$tmp/jobcomp.log
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -i -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 &
pids+=($!)
node_state=
for _ in $(seq 120); do
  node_state=$(sinfo -h -N -o %T 2>/dev/null || true)
  [ "$node_state" = idle ] && break
  sleep 0.5
done
if [ "$node_state" != idle ]; then
  tail -n 30 "$tmp/slurmctld.out" "$tmp/slurmctld.log" "$tmp/slurmd.out" "$tmp/slurmd.log" 2>/dev/null || true
  fail "the node is '${node_state:-not reported}', not idle, after 60 s (daemon logs above)"
fi
lap bringup_seconds
say "cluster up in ${bringup_seconds} s: $(sinfo -h -N -o '%N %T, %c CPUs, %m MB') (ports $ctld_port, $slurmd_port)"

# --- 3. The README's block, word for word, in a fresh clone ----------------------------------------------
if [ -n "$(git status --porcelain)" ]; then
  say "note: the clone is the last commit; uncommitted changes here are not part of this test"
fi
git clone --quiet "$repo" "$tmp/clone"
if [ -d "$repo/target/release" ]; then
  # The block builds the clone; its dependencies compiled here spare a build from nothing.
  mkdir "$tmp/clone/target"
  cp -a "$repo/target/release" "$tmp/clone/target/release"
fi
lap clone_seconds
block=$(awk '
  /^<!-- slurm_test\.sh runs this block/ { marked = 1; next }
  marked && /^```/ { if (inside) exit; inside = 1; next }
  inside { print }' "$tmp/clone/README.md")
[ -n "$block" ] || fail "no block after '<!-- slurm_test.sh runs this block' in README.md"
say "running the README's block in $tmp/clone:"
sed 's/^/    /' <<<"$block"
# The block runs as written; its settings are read back afterwards for the comparison.
(cd "$tmp/clone" && bash -c 'set -euo pipefail; eval "$1"; declare -p SWEEP SWEEP_DIR SHARDS >"$2"' \
  _ "$block" "$tmp/settings") || fail "the README's block failed"
# shellcheck disable=SC1091 # written just above
source "$tmp/settings"
SWEEP_DIR=$(cd "$tmp/clone" && realpath -m -- "$SWEEP_DIR")
logs=$SWEEP_DIR/logs
lap block_seconds

# --- 4. Wait for the array and the report ------------------------------------------------------------------
states() { squeue -h --states=all -o '%i %j %T %r' | sort; }
seen=
for _ in $(seq 1800); do
  now=$(states)
  if [ "$now" != "$seen" ]; then
    say "jobs at $((SECONDS - last_lap)) s:"
    sed 's/^/    /' <<<"$now"
    seen=$now
  fi
  if grep -q 'PENDING DependencyNeverSatisfied' <<<"$now"; then
    fail "a job waits on a dependency that can never be satisfied"
  fi
  [ -n "$now" ] && [ -z "$(squeue -h)" ] && break
  sleep 0.5
done
[ -z "$(squeue -h)" ] || fail "jobs still queued or running after 15 minutes"
seen=$(states)
lap jobs_seconds
say "final job states (squeue --states=all; no accounting database here, so no sacct):"
squeue --states=all -o '%.10i %.16j %.10T %.8M %R' | sed 's/^/    /'
say "completion log:"
[ -f "$tmp/jobcomp.log" ] && sed -E 's/.*(JobId=[^ ]+).*(Name=[^ ]+).*(JobState=[^ ]+).*/    \1 \2 \3/' "$tmp/jobcomp.log"
n_jobs=$(grep -c . <<<"$seen")
n_done=$(grep -c ' COMPLETED ' <<<"$seen" || true)
[ "$n_jobs" = $((SHARDS + 1)) ] || fail "$n_jobs jobs, expected $SHARDS array tasks and one report"
[ "$n_done" = "$n_jobs" ] || fail "$((n_jobs - n_done)) of $n_jobs jobs did not complete (logs above)"
n_logs=$(find "$logs" -name 'sweep-*.out' | wc -l)
[ "$n_logs" = "$SHARDS" ] || fail "$n_logs array task logs in $logs, expected $SHARDS"
grep -q "fairbits results" "$SWEEP_DIR/RESULTS.md" || fail "the report job wrote no $SWEEP_DIR/RESULTS.md"

# --- 5. The merged results equal a local sweep of the same grid ---------------------------------------
# shellcheck disable=SC2086 # SWEEP is a list of flags
"$tmp/clone/target/release/fairbits" sweep $SWEEP --out "$tmp/local" --jobs "$(nproc)" --quiet \
  >/dev/null 2>"$tmp/local.err" || { cat "$tmp/local.err"; fail "the local sweep failed"; }
python3 - "$SWEEP_DIR/results.csv" "$tmp/local/results.csv" <<'EOF'
import csv, sys

def table(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if "seconds" not in name]  # wall-clock time differs
    return [rows[0][i] for i in keep], sorted([r[i] for i in keep] for r in rows[1:])

(h1, r1), (h2, r2) = table(sys.argv[1]), table(sys.argv[2])
if h1 != h2:
    sys.exit(f"slurm_test: FAILED: columns differ: {sorted(set(h1) ^ set(h2))}")
if len(r1) != len(r2):
    sys.exit(f"slurm_test: FAILED: {len(r1)} runs from Slurm, {len(r2)} from the local sweep")
bad = [(a[:4], h1[j], x, y) for a, b in zip(r1, r2) for j, (x, y) in enumerate(zip(a, b)) if x != y]
if bad:
    sys.exit(f"slurm_test: FAILED: {len(bad)} cells differ, first: {bad[:3]}")
print(f"slurm_test: the merged results.csv equals the local sweep's: {len(r1)} runs x {len(h1)} columns, "
      "cell for cell (wall-clock seconds aside)")
EOF
lap compare_seconds
say "passed in $((SECONDS - start)) s: packages ${apt_seconds} s, cluster up ${bringup_seconds} s, clone (and" \
  "copy of target/release) ${clone_seconds} s, the README's block (build, submit) ${block_seconds} s, jobs" \
  "${jobs_seconds} s, local sweep and comparison ${compare_seconds} s"
