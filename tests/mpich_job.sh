#!/bin/sh
# pareng run under MPICH's mpiexec, handed over to pareng-mpi built against MPICH beside it
# (tests/mpich): exact answers on 2 and 3 ranks, and the rank table of 2.
# usage: mpich_job.sh MPIEXEC PARENG
set -eu
mpiexec=$1 pareng=$2
fail() { echo "mpich: $*" >&2; exit 1; }
for ranks in 2 3; do
  out=$(timeout 60 "$mpiexec" -np "$ranks" "$pareng" run fib 32 --cores 1) || fail "fib 32 on $ranks ranks failed"
  [ "$(echo "$out" | head -n 1)" = "fib(32) = 2178309" ] || fail "fib 32 on $ranks ranks: $out"
  echo "$out" | grep -q "on each of $ranks ranks" || fail "fib 32 did not run on $ranks ranks: $out"
  out=$(timeout 60 "$mpiexec" -np "$ranks" "$pareng" run uts T1 --cores 1) || fail "uts T1 on $ranks ranks failed"
  [ "$(echo "$out" | head -n 1)" = "uts(T1) = 4130071 nodes" ] || fail "uts T1 on $ranks ranks: $out"
done
json=$(timeout 60 "$mpiexec" -np 2 "$pareng" run fib 38 --cores 1 --json) || fail "fib 38 --json failed"
echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = d["rank_stats"]
assert d["ranks"] == 2 and len(rows) == 2, d
assert sum(r["tasks_sent"] for r in rows) == sum(r["tasks_received"] for r in rows), rows
' || fail "the rank table: $json"
echo "mpich: fib and uts exact on 2 and 3 ranks, the rank table of 2"
