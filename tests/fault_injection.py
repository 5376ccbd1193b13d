#!/usr/bin/env python3
"""fault_injection.py - random signals to engines at work, and what they leave behind.

Each round starts one job in a session of its own: `pareng run fib` (CPU), `pareng map fib`,
`pareng run fib --io-latency` (IO engine, fibers, io_uring) or, when the Python module can be
imported, `pareng.fib(..., cores=2)` in a Python interpreter; in a short size (the job ends in
a few ms, so the signal often lands in start-up or tear-down) or a long one (it lands
mid-run). After a random delay of 0-200 ms (in half the rounds 0-30 ms) it sends one random signal (SIGKILL, SIGTERM,
SIGINT, SIGHUP, SIGQUIT, SIGSEGV, or SIGSTOP and SIGCONT 300 ms later) to a random process of
the job: the coordinator, or one of its workers (the coordinator's children). Then it counts
what must never happen:

  HANG      the coordinator did not end within 30 s (the whole session is then killed)
  ORPHAN    a process of the job's session still alive 1 s after the coordinator ended
  LEFTOVER  a new /dev/shm/pareng-* name of the job, or engine memory (memfd pareng-arena)
            still held by a process of the session
  WRONG     exit status 0 with a result that is not fib's
  UNCLEAR   a non-zero exit status with nothing on stderr (warnings aside), unless the
            coordinator was killed by the signal (or exited 128 + the signal it was sent,
            the shell's convention)

One line per round, then `N passed, M failed`; exit status 1 when any round failed. The
environment: PARENG_BIN (the CLI; the test is skipped without it), PARENG_FAULT_ROUNDS
(default 60), PARENG_FAULT_SEED (default: random, printed), PARENG_FAULT_ROUND (run that one
round of the seed only, to reproduce it), PARENG_FAULT_BUDGET (seconds, default 240: no
round starts after it), PARENG_PYTHON (the interpreter the module was built for; PYTHONPATH
must lead to the module).
"""

import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time

from procs import children, proc_stat, session_members

SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
           signal.SIGSEGV, signal.SIGSTOP]
# In a sanitized build, the sanitizer's runtime must stay out of the way. A SIGSEGV that kill()
# sends is no fault of the program, and AddressSanitizer's report of it is not
# async-signal-safe (one that lands while the runtime initialises, before main, spins forever on
# the runtime's allocator lock): the default action, as in a release build, is what is tested.
# And LeakSanitizer's check at exit runs in a helper process, a child of the coordinator that
# this test would take for a worker (killing it leaves the coordinator waiting for it forever).
JOB_ENV = dict(os.environ)
JOB_ENV["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "handle_segv=0", "detect_leaks=0"]))
JOB_ENV["UBSAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("UBSAN_OPTIONS"),
                                                  "handle_segv=0"]))
HANG_S = 30
ORPHAN_S = 1.0
MAX_DELAY_S = 0.2
STOP_S = 0.3


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def jobs(pareng, python):
    """(name, argv, expected results) of every job this machine can run: a short and a long
    size of each kind."""
    out = []
    for size, n in (("short", 30), ("long", 43)):
        out.append((f"run/{size}", [pareng, "run", "fib", str(n), "--cores", "3"], [fib(n)]))
    for size, ns in (("short", (25, 24, 26)), ("long", (41, 40, 42))):
        out.append((f"map/{size}", [pareng, "map", "fib", *map(str, ns), "--cores", "2"],
                    [fib(n) for n in ns]))
    for size, n in (("short", 16), ("long", 27)):
        out.append((f"io/{size}",
                    [pareng, "run", "fib", str(n), "--io-latency", "1ms", "--cores", "2"],
                    [fib(n)]))
    if python:
        for size, n in (("short", 28), ("long", 43)):
            out.append((f"python/{size}",
                        [python, "-c", f"import pareng; print(pareng.fib({n}, cores=2))"],
                        [fib(n)]))
    return out


def results_of(name, stdout):
    """The fib values the job printed, or None when its output has none in the expected
    form."""
    if name.startswith("map/"):
        m = re.search(r"^\[([0-9, ]*)\]$", stdout, re.M)
        return [int(x) for x in m.group(1).split(",")] if m else None
    if name.startswith("python/"):
        m = re.search(r"^(\d+)$", stdout, re.M)
        return [int(m.group(1))] if m else None
    m = re.search(r"^fib\(\d+\) = (\d+)$", stdout, re.M)
    return [int(m.group(1))] if m else None


def python_with_module():
    """The interpreter that imports the module, or None."""
    python = os.environ.get("PARENG_PYTHON") or sys.executable
    try:
        r = subprocess.run([python, "-c", "import pareng"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return python if r.returncode == 0 else None


def holds_arena(pid):
    """Does pid hold engine memory (a descriptor or a mapping of a memfd pareng-arena)?"""
    try:
        with open(f"/proc/{pid}/maps") as f:
            if "memfd:pareng-arena" in f.read():
                return True
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if "memfd:pareng-arena" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def shm_names():
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("pareng-")}
    except OSError:
        return set()


def kill_session(sid):
    for _ in range(3):
        members = session_members(sid)
        if not members:
            return
        for pid in members:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        time.sleep(0.05)


def child_setup():
    """In the job, before exec: default dispositions for the signals we send (a test runner
    may have left SIGINT ignored, and an ignored signal stays ignored across exec), and no
    core files."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGSEGV):
        signal.signal(sig, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def one_round(seed, index, all_jobs, workdir):
    rng = random.Random(f"{seed}/{index}")
    name, argv, expected = rng.choice(all_jobs)
    sig = rng.choice(SIGNALS)
    # half the signals in the first 30 ms: start-up (the fork of the workers) and, for the
    # short jobs, the run and the tear-down
    delay = rng.uniform(0, MAX_DELAY_S if rng.random() < 0.5 else 0.03)
    want_worker = rng.random() < 0.5
    pick = rng.random()
    signame = signal.Signals(sig).name
    problems = []
    notes = []

    shm_before = shm_names()
    out = tempfile.TemporaryFile(dir=workdir)
    err = tempfile.TemporaryFile(dir=workdir)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                            cwd=workdir, env=JOB_ENV, start_new_session=True,
                            preexec_fn=child_setup)
    sid = proc.pid
    seen = {proc.pid}

    # the signal
    time.sleep(max(0.0, t0 + delay - time.monotonic()))
    target = None
    if proc.poll() is None:
        workers = children(proc.pid)
        seen.update(workers)
        if want_worker and workers:
            target = ("worker", workers[int(pick * len(workers)) % len(workers)])
        else:
            target = ("coordinator", proc.pid)
        try:
            os.kill(target[1], sig)
            if sig == signal.SIGSTOP:
                time.sleep(STOP_S)
                os.kill(target[1], signal.SIGCONT)
        except ProcessLookupError:
            target = None
    what = f"{signame} -> {target[0]} {target[1]}" if target else f"{signame} missed (ended)"
    what += f" at {delay * 1000:.0f} ms"

    # the end
    try:
        proc.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        members = session_members(sid)
        states = " ".join(f"{p}:{st[0]}" for p, st in sorted(members.items()))
        problems.append(f"HANG: no end after {HANG_S} s (session: {states})")
        kill_session(sid)
        proc.wait()
    elapsed = time.monotonic() - t0
    out.seek(0)
    err.seek(0)
    stdout = out.read().decode("utf-8", "replace")
    stderr = err.read().decode("utf-8", "replace")
    out.close()
    err.close()

    # what is left of the session
    deadline = time.monotonic() + ORPHAN_S
    members = session_members(sid)
    while members and time.monotonic() < deadline:
        time.sleep(0.02)
        members = session_members(sid)
    if members:
        described = []
        for pid, st in sorted(members.items()):
            comm = ""
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                pass
            described.append(f"{pid} {comm} state {st[0]} ppid {st[1]}")
            if holds_arena(pid):
                problems.append(f"LEFTOVER: process {pid} still holds a memfd pareng-arena")
        problems.append(f"ORPHAN: alive {ORPHAN_S:.0f} s after the coordinator ended: " +
                        "; ".join(described))
        kill_session(sid)
    for shm in sorted(shm_names() - shm_before):
        m = re.match(r"pareng-(\d+)", shm)
        owner = int(m.group(1)) if m else None
        st = proc_stat(owner) if owner else None
        if owner in seen or st is None or st[2] == sid:
            problems.append(f"LEFTOVER: /dev/shm/{shm}")
        else:
            notes.append(f"/dev/shm/{shm} appeared, of process {owner} (not this job's)")

    # the outcome
    rc = proc.returncode
    # what the job said about its end: its lines on stderr other than warnings (on a small
    # machine, `--cores 3` always warns that workers share cores), the last one (a Python
    # traceback ends with the exception)
    said = [line for line in stderr.splitlines()
            if line.strip() and not line.startswith("pareng: warning:")]
    last_line = said[-1] if said else ""
    if rc == 0:
        got = results_of(name, stdout)
        if got != expected:
            problems.append(f"WRONG: exit 0 with {got!r} (expected {expected!r}); "
                            f"stdout {stdout.strip()[:200]!r}")
        outcome = "exit 0, right"
    elif rc < 0:
        outcome = f"killed by {signal.Signals(-rc).name}"
    else:
        outcome = f"exit {rc}"
        said_by_exit = target and target[0] == "coordinator" and rc == 128 + sig
        if not said and not said_by_exit:
            problems.append(f"UNCLEAR: exit {rc} and nothing on stderr but warnings")
    if last_line:
        outcome += f": {last_line[:160]!r}"
    status = "FAIL" if problems else "ok"
    print(f"round {index:3d} [{status}] {name:12s} {what}: {outcome} ({elapsed:.2f} s)",
          flush=True)
    for p in problems:
        print(f"    {p}", flush=True)
    for n in notes:
        print(f"    note: {n}", flush=True)
    if problems and stderr.strip():
        print("    stderr: " + stderr.strip().replace("\n", "\n            ")[:2000], flush=True)
    return {"round": index, "job": name, "argv": argv, "what": what, "problems": problems,
            "missed": target is None}


def main():
    pareng = os.environ.get("PARENG_BIN")
    if not pareng or not os.access(pareng, os.X_OK):
        print("PARENG_BIN is not set to the pareng CLI: skipped")
        return 77
    rounds = int(os.environ.get("PARENG_FAULT_ROUNDS", "60"))
    seed = int(os.environ.get("PARENG_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    only = os.environ.get("PARENG_FAULT_ROUND")
    budget = float(os.environ.get("PARENG_FAULT_BUDGET", "240"))
    python = python_with_module()
    all_jobs = jobs(pareng, python)
    print(f"fault injection: seed {seed} (PARENG_FAULT_SEED={seed} repeats it), {rounds} rounds, "
          f"jobs: {', '.join(j[0] for j in all_jobs)}"
          + ("" if python else " (no Python job: the module cannot be imported)"), flush=True)
    indexes = [int(only)] if only else range(rounds)
    start = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="pareng-fault-") as workdir:
        for i in indexes:
            if time.monotonic() - start > budget:
                print(f"time budget of {budget:.0f} s spent: stopping after {len(results)} rounds")
                break
            results.append(one_round(seed, i, all_jobs, workdir))
    failed = [r for r in results if r["problems"]]
    kinds = {}
    for r in failed:
        for p in r["problems"]:
            kind = p.split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
    missed = sum(r["missed"] for r in results)
    print(f"signals delivered in {len(results) - missed} rounds, missed (job already ended) in "
          f"{missed}")
    if failed:
        print("failed rounds (PARENG_FAULT_SEED=%d PARENG_FAULT_ROUND=N repeats one):" % seed)
        for r in failed:
            print(f"  round {r['round']}: {r['job']} ({' '.join(r['argv'][1:])}): {r['what']}: "
                  + " | ".join(r["problems"]))
        print("problems: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
