#!/usr/bin/env python3
"""benchmarks/glb-sim at small sizes: every node of the tree run exactly once on any number of
ranks (fib's calls counted here, UTS's published and computed sizes), efficiency in (0, 1],
one rank alone sends nothing and loses nothing, several ranks balance through glb.c's messages,
the same seed gives the same output, and bad arguments are refused. Usage: glb_sim.py GLB_SIM"""
import functools, json, subprocess, sys

SIM = sys.argv[1]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


@functools.lru_cache(maxsize=None)
def fib_calls(n):
    """fib_task's calls in fib(n): n <= 2 returns at once (workloads/fib.c)"""
    return 1 if n <= 2 else 1 + fib_calls(n - 1) + fib_calls(n - 2)


def simulate(*args):
    r = subprocess.run([SIM, *args, "--json"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        check(False, f"glb-sim {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return [], ""
    return [json.loads(line) for line in r.stdout.splitlines()], r.stdout


def rows_sane(rows, nodes, what):
    for o in rows:
        at = f"{what}, {o['ranks']} ranks x {o['workers']}"
        check(o["tree_nodes"] == nodes and o["nodes_run"] == nodes,
              f"{at}: {o['nodes_run']} nodes run, tree of {nodes}")
        check(0 < o["efficiency"] <= 1, f"{at}: efficiency {o['efficiency']} in (0, 1]")
        check(o["steals_refused"] <= o["steal_requests"],
              f"{at}: {o['steals_refused']} refusals of {o['steal_requests']} requests")
        if o["ranks"] == 1:
            check(o["messages_per_rank"] == 0 and o["steal_requests"] == 0,
                  f"{at}: alone, no message ({o['messages_per_rank']})")
        else:
            check(o["tasks_moved"] > 0 and o["steal_requests"] > 0,
                  f"{at}: work crossed ranks ({o['tasks_moved']} tasks, "
                  f"{o['steal_requests']} requests)")


rows, first = simulate("fib", "32", "--ranks", "1-16")
check(len(rows) == 16, f"fib 32: a row per rank count ({len(rows)})")
rows_sane(rows, fib_calls(32), "fib 32")
check(rows and rows[0]["efficiency"] > 0.99, "fib 32, one rank of one worker: efficiency ~1")
_, again = simulate("fib", "32", "--ranks", "1-16")
check(first == again, "fib 32: the same output for the same seed")

rows, _ = simulate("fib", "34", "--ranks", "1,2,5,16", "--workers", "3", "--seed", "9")
rows_sane(rows, fib_calls(34), "fib 34, 3 workers")

# A small binomial tree whose size the workload's own serial walk gives to the simulator
rows, _ = simulate("uts", "binomial:200:8:0.12:7", "--ranks", "1-16", "--workers", "2")
sizes = {o["tree_nodes"] for o in rows}
check(len(sizes) == 1 and sizes.pop() > 1000, "uts binomial:200:8:0.12:7: one size, >1000")
rows_sane(rows, rows[0]["tree_nodes"] if rows else 0, "uts binomial")

# UTS's T1 as published: 4,130,071 nodes
rows, _ = simulate("uts", "T1", "--ranks", "1,2,7,16")
rows_sane(rows, 4130071, "uts T1")

for bad in (["fib", "x"], ["fib", "30", "--ranks", "0"], ["fib", "30", "--ranks", "2-1"],
            ["uts", "T9"], ["fib", "30", "--workers"], ["fib", "30", "--latency-ns", "-1"]):
    r = subprocess.run([SIM, *bad], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and r.stderr.startswith("glb-sim: "),
          f"glb-sim {' '.join(bad)}: refused ({r.returncode}: {r.stderr.strip().splitlines()[0][:70]})")

sys.exit(1 if failures else 0)
