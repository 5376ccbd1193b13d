"""python-user-functions - the user's own Python functions on pareng's workers, against serial
Python, multiprocessing.Pool, concurrent.futures.ProcessPoolExecutor and (when installed,
Debian: python3-joblib) joblib.

What it measures: whole calls, wall time (time.perf_counter), the engine's or pool's start and
stop included, medians of runs in which the configurations alternate (serial, pareng, Pool,
...; then again). Every parallel result is checked against serial Python.

  seed    [fib(n) for n in ITEMS] with the pure-Python recursive fib below, ITEMS the seed's
          list (--items, default 38 37 36 35 34 33): serial; pareng.map(fib, items); Pool.map;
          ProcessPoolExecutor.map; joblib.Parallel. Speed-ups over serial.
  tiny    map(f, range(--tiny)) with f(x) = x + 1: pareng.map; Pool.map (its default
          chunksize); ProcessPoolExecutor.map with chunksize=len/(4 workers) (its default, 1,
          takes minutes); joblib.Parallel (its automatic batches). Times, and pareng's over
          each. Beside them the floor of any parallel map whose results come back to the
          caller: serial list(map(f, range(n))) over the workers, plus the caller's making
          of n result objects (list(range(1, n + 1))), both measured in the same rounds.
  pfib    pfib(--pfib) below (pareng.spawn above n = 25, serial fib under it): serial pfib
          (a spawn outside a task runs at once) against pareng.run(pfib, n). No Pool can
          run it: a Pool's task cannot submit to its own pool and wait.
  floor   (in seed and pfib) the speed-up no K processes can pass on this machine: K forked
          copies of the serial call run at once, each timing its own call; their mean time
          over K is what a perfect split would take at the speed Python runs while K processes
          compute. Speed-ups are printed as ratios of medians and as the median of each
          round's own ratio ("paired"), which a slow phase of the machine shifts less.
  start   an engine's start and stop (pareng.Pool(...) then terminate) against
          multiprocessing.Pool's (Pool(...) then terminate and join), no work.

--cores K (default 2) workers everywhere: pareng's cores=K, Pool(K), max_workers=K, n_jobs=K.

  PYTHONPATH=build/python python3 benchmarks/python-user-functions.py --runs 5
  PYTHONPATH=build/python python3 benchmarks/python-user-functions.py --only seed --items 32 31 30
"""
import argparse
import ast
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import time

import pareng

try:
    import joblib
except ImportError:
    joblib = None


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def pfib(n):
    if n < 25:
        return fib(n)
    a = pareng.spawn(pfib, n - 1)
    b = pfib(n - 2)
    return a.result() + b


def f(x):
    return x + 1


def timed(call):
    t0 = time.perf_counter()
    value = call()
    return time.perf_counter() - t0, value


class Measured:
    """A configuration's value with the seconds it measured itself (at_once)."""

    def __init__(self, seconds, value):
        self.seconds, self.value = seconds, value


def at_once(k, call):
    """What a perfect k-way split of call would take at the speed Python runs while k
    processes compute at once: k forked copies of call run together, each times its own call
    (fork and exit left out), and the mean over k is returned, Measured, with the first
    copy's result. The ceiling of any k-process speed-up on this machine, as the workers of
    pareng, Pool and ProcessPoolExecutor are such copies."""
    r, w = os.pipe()
    pids = []
    for _ in range(k):
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.close(r)
                seconds, value = timed(call)
                os.write(w, f"{seconds} {value!r}\n".encode())
                status = 0
            finally:
                os._exit(status)
        pids.append(pid)
    os.close(w)
    with os.fdopen(r) as f:
        lines = f.read().split("\n")[:k]
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    if failed or len(lines) != k:
        sys.exit(f"a copy of the serial run failed ({len(failed)} of {k})")
    seconds = [float(line.split(" ", 1)[0]) for line in lines]
    return Measured(sum(seconds) / k / k, ast.literal_eval(lines[0].split(" ", 1)[1]))


def alternate(configs, runs, check):
    """{name: [seconds...]}: each run times every configuration once, in turn."""
    times = {name: [] for name, _ in configs}
    for _ in range(runs):
        for name, call in configs:
            seconds, value = timed(call)
            if isinstance(value, Measured):
                seconds, value = value.seconds, value.value
            if not check(value):
                sys.exit(f"{name}: a wrong result")
            times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}, times


def report(title, medians, times, base=None):
    """With base: each configuration's speed-up over it, as the ratio of the medians and as
    the median of each round's own ratio (a round's configurations ran one after another, so
    a slow phase of the machine hits them alike)."""
    print(f"\n{title}")
    for name, m in medians.items():
        extra = ""
        if base and name != base:
            paired = statistics.median(b / t for b, t in zip(times[base], times[name]))
            extra = f"   {medians[base] / m:5.2f}x of {base} (paired {paired:.2f}x)"
        spread = ", ".join(f"{t:.3f}" for t in times[name])
        print(f"  {name:28s} median {m:8.3f} s{extra}   (runs: {spread})")


def pool_map(k, fn, items, **kw):
    with multiprocessing.Pool(k) as pool:
        return pool.map(fn, items, **kw)


def executor_map(k, fn, items, chunksize=1):
    with concurrent.futures.ProcessPoolExecutor(k) as ex:
        return list(ex.map(fn, items, chunksize=chunksize))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--items", type=int, nargs="+", default=[38, 37, 36, 35, 34, 33])
    ap.add_argument("--tiny", type=int, default=10**6)
    ap.add_argument("--pfib", type=int, default=32)
    ap.add_argument("--only", choices=["seed", "tiny", "pfib", "start"], nargs="+")
    a = ap.parse_args()
    k = a.cores
    only = set(a.only or ["seed", "tiny", "pfib", "start"])
    print(f"pareng {pareng.__version__}, Python {sys.version.split()[0]}, {k} workers, "
          f"{a.runs} alternating runs, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}; joblib: {joblib.__version__ if joblib else 'not installed'}")

    if "seed" in only:
        items = a.items
        expected = [fib(n) for n in items]
        configs = [("serial Python", lambda: [fib(n) for n in items]),
                   (f"floor: {k} copies at once", lambda: at_once(k, lambda: [
                       fib(n) for n in items])),
                   ("pareng.map", lambda: pareng.map(fib, items, cores=k)),
                   ("multiprocessing.Pool.map", lambda: pool_map(k, fib, items)),
                   ("ProcessPoolExecutor.map", lambda: executor_map(k, fib, items))]
        if joblib:
            configs.append(("joblib.Parallel", lambda: joblib.Parallel(n_jobs=k)(
                joblib.delayed(fib)(n) for n in items)))
        medians, times = alternate(configs, a.runs, lambda v: list(v) == expected)
        report(f"seed: fib over {items}, speed-up over serial Python", medians, times,
               base="serial Python")

    if "tiny" in only:
        n = a.tiny
        expected = [x + 1 for x in range(n)]
        chunk = max(1, n // (4 * k))
        configs = [("serial list(map(f, ...))", lambda: list(map(f, range(n)))),
                   ("result build", lambda: list(range(1, n + 1))),
                   ("pareng.map", lambda: pareng.map(f, range(n), cores=k)),
                   ("multiprocessing.Pool.map", lambda: pool_map(k, f, range(n))),
                   (f"ProcessPoolExecutor.map/{chunk}",
                    lambda: executor_map(k, f, range(n), chunksize=chunk))]
        if joblib:
            configs.append(("joblib.Parallel", lambda: joblib.Parallel(n_jobs=k)(
                joblib.delayed(f)(x) for x in range(n))))
        medians, times = alternate(configs, a.runs, lambda v: v == expected)
        report(f"tiny: f(x) = x + 1 over range({n}); pareng's time as a fraction of each",
               medians, times)
        floor = medians["serial list(map(f, ...))"] / k + medians["result build"]
        print(f"  floor (serial / {k} + result build): {floor:.3f} s; pareng.map / floor: "
              f"{medians['pareng.map'] / floor:.2f}")
        for name, m in medians.items():
            if name not in ("pareng.map", "serial list(map(f, ...))", "result build"):
                print(f"  pareng.map / {name}: {medians['pareng.map'] / m:.3f}")

    if "pfib" in only:
        n = a.pfib
        expected = fib(n)
        configs = [("serial pfib", lambda: pfib(n)),
                   (f"floor: {k} copies at once", lambda: at_once(k, lambda: pfib(n))),
                   ("pareng.run(pfib)", lambda: pareng.run(pfib, n, cores=k))]
        medians, times = alternate(configs, a.runs, lambda v: v == expected)
        report(f"pfib({n}): nested spawn, speed-up over serial Python", medians, times,
               base="serial pfib")

    if "start" in only:
        def pareng_start():
            p = pareng.Pool(k)
            p.terminate()
            return True

        def pool_start():
            p = multiprocessing.Pool(k)
            p.terminate()
            p.join()
            return True
        medians, times = alternate([("pareng.Pool start+stop", pareng_start),
                                    ("multiprocessing.Pool start+stop", pool_start)],
                                   max(a.runs, 10), bool)
        report("start: an engine (pool) started and stopped, no work", medians, times)


if __name__ == "__main__":
    main()
