#!/usr/bin/env python3
"""The programs of benchmarks/hpc at small sizes: every pareng run (1 and 2 workers; the
automatic cutoff, every spawn a task, a fixed depth) gives exactly the serial version's result,
each program's own check of its output passes (nqueens against the known counts, UTS against
the node counts UTS publishes, cilksort sorted, matmul's sampled dot products), and bad
arguments are refused with status 2 and a message. Usage: hpc_programs.py DIR (the build's
benchmarks/hpc)."""
import json, os, subprocess, sys

SMALL = {"nqueens": "9", "cilksort": "300000", "matmul": "128", "spawnloop": "100000",
         "integrate": "10", "uts": "T3"}
failures = 0


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print(f"FAIL: {what}")


directory = sys.argv[1]
for program, size in SMALL.items():
    exe = os.path.join(directory, program)
    serial = run([exe, "serial", size])
    check(serial.returncode == 0, f"{program} serial {size}: {serial.stderr.strip()}")
    if serial.returncode:
        continue
    expected = json.loads(serial.stdout)["result"]
    for workers in ("1", "2"):
        for cutoff in ("auto", "none", "2"):
            r = run([exe, "pareng", size, workers, cutoff])
            got = json.loads(r.stdout)["result"] if r.returncode == 0 else r.stderr.strip()
            check(got == expected,
                  f"{program} {size} on {workers} workers, cutoff {cutoff}: {got}, serial {expected}")
# The other shape of UTS (geometric), exactly
r = run([os.path.join(directory, "uts"), "pareng", "T1", "2"])
check(r.returncode == 0 and json.loads(r.stdout)["result"] == 4130071, f"uts T1: {r.stdout}{r.stderr}")

for cmd in (["nqueens", "pareng", "17", "2"], ["nqueens", "serial", "x"], ["matmul", "serial", "100"],
            ["uts", "serial", "T9"], ["cilksort", "pareng", "1000", "0"],
            ["integrate", "pareng", "10", "2", "sometimes"], ["spawnloop", "fast", "10"]):
    r = run([os.path.join(directory, cmd[0])] + cmd[1:])
    check(r.returncode == 2 and r.stderr.strip() and not r.stdout, f"{' '.join(cmd)}: status "
          f"{r.returncode}, stderr {r.stderr.strip()!r}")
print(f"{failures} failures")
sys.exit(1 if failures else 0)
