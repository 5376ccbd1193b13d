"""python-map-vs-pool - pareng.map("fib", items) against multiprocessing.Pool().map(fib, items).

What it measures: whole calls, wall time (time.perf_counter), medians of alternating runs:

  pareng.map       pareng.map("fib", items): starts an engine (one worker process per core),
                   runs every item as a task of libpareng's C fib, stops and reaps the workers.
  Pool.map         `with multiprocessing.Pool() as pool: pool.map(fib, items)`: starts one
                   process per CPU (the default start method: fork on Linux), runs the
                   pure-Python recursive fib below on each item, terminates and joins them.

and, to separate the start-up of either from the computation, the same calls on an engine or a
pool that is already running (not timed: its start and stop):

  Engine.map       e.map("fib", items) on one pareng.Engine() kept open for all runs.
  open Pool.map    pool.map(fib, items) on one Pool() kept open for all runs.

pareng's side runs with its defaults (one worker per physical core, the automatic cutoff) unless
the PARENG_NUM_WORKERS, PARENG_PLACES or PARENG_CUTOFF environment variables say otherwise, as
they do for every pareng program (docs/python.md, "Environment"); the first lines of the output
say which workers and cutoff it ran with, and which of those variables were set.

The two sides do not run the same code: pareng's workers run C only (they never run Python),
the Pool's run the Python function. Most of the difference is therefore C against the Python
interpreter; the figures say what a Python program gains by calling the C workload, not how
the two schedulers compare. Both sides check their results against each other.

Run (after `meson setup build && ninja -C build`; the module is built for the Python that runs
meson, Debian's /usr/bin/python3):

  PYTHONPATH=build/python python3 benchmarks/python-map-vs-pool.py
  PYTHONPATH=build/python python3 benchmarks/python-map-vs-pool.py --runs 9 --items 30 29 28
"""
import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time

import pareng


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(call):
    t0 = time.perf_counter()
    result = call()
    return time.perf_counter() - t0, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each call (default 7)")
    parser.add_argument("--items", type=int, nargs="+", default=[38, 37, 36, 35, 34, 33],
                        help="the n of each fib(n) (default: 38 37 36 35 34 33)")
    parser.add_argument("--no-warm", action="store_true",
                        help="time only the whole calls, not those on a running engine/pool")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    items = args.items
    expected = pareng.map("fib", items, cores=1)  # every call below must return exactly this

    def pool_map():
        with multiprocessing.Pool() as pool:
            return pool.map(fib, items)

    calls = {"pareng.map": lambda: pareng.map("fib", items),
             "Pool.map": pool_map}
    engine = pool = None
    if not args.no_warm:
        engine = pareng.Engine()
        pool = multiprocessing.Pool()
        calls["Engine.map"] = lambda: engine.map("fib", items)
        calls["open Pool.map"] = lambda: pool.map(fib, items)

    with pareng.Engine() as probe:  # what pareng.map gets: the defaults and the environment
        workers, cutoff = probe.workers, probe.cutoff
    set_vars = [f"{k}={v}" for k, v in sorted(os.environ.items())
                if k in ("PARENG_NUM_WORKERS", "PARENG_PLACES", "PARENG_CUTOFF")]
    print(f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu_model()}; "
          f"Python {platform.python_version()} ({sys.executable}), pareng {pareng.__version__}, "
          f"start method {multiprocessing.get_start_method()}")
    print(f"pareng: {workers} workers, cutoff {cutoff}"
          f"{' (' + ', '.join(set_vars) + ')' if set_vars else ''}; "
          f"Pool: {os.cpu_count()} processes")
    print(f"items {items}, {args.runs} alternating runs (order reversed every other run)",
          flush=True)
    times = {name: [] for name in calls}
    try:
        for run in range(args.runs):
            order = list(calls) if run % 2 == 0 else list(reversed(calls))
            for name in order:
                seconds, result = timed(calls[name])
                if result != expected:
                    sys.exit(f"{name} returned {result}, expected {expected}")
                times[name].append(seconds)
    finally:
        if engine:
            engine.close()
        if pool:
            pool.terminate()
            pool.join()

    base = statistics.median(times["Pool.map"])
    print(f"{'call':<14} {'median s':>10} {'min s':>10} {'max s':>10} {'Pool.map / this':>16}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<14} {med:>10.4f} {min(ts):>10.4f} {max(ts):>10.4f} {base / med:>16.1f}")


if __name__ == "__main__":
    main()
