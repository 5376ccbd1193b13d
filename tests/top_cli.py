#!/usr/bin/env python3
"""The watching commands from outside, as a user runs them: `pareng top --once --json`
against a running engine (counters that grow, never past what the run's --stats says at its
end), top ending when the process it watches has ended, top's refusals, `run --trace` and
`--timeline` files for a small fib, and `run --scale` counting fib's tasks and depth.
Usage: top_cli.py (PARENG_BIN names the program)."""
import json, os, signal, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET

PARENG = os.environ.get("PARENG_BIN", "build/tools/pareng")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


def pareng(*args, timeout=60):
    return subprocess.run([PARENG, *args], capture_output=True, text=True, timeout=timeout)


def top_json(target, delay="50ms"):
    r = pareng("top", target, "--once", "--delay", delay, "--json")
    if r.returncode != 0:
        return None
    doc = json.loads(r.stdout)
    return doc["engines"][0] if doc["engines"] else None


def activity(engine):
    """What only grows while a run goes on: every worker's counted events and times."""
    return sum(w["tasks"] + w["steals"] + w["steal_fails"] + w["sleeps"] + w["leapfrogs"]
               + w["serial_runs"] + w["busy_seconds"] + w["idle_seconds"]
               for w in engine["worker_stats"])


def test_top_against_a_running_engine():
    # the automatic cutoff runs subtrees as serial C all along, and counts each
    # fib(46): about a second on a fast host, several under the sanitizers (fib(44) ended
    # after one look of top there)
    run = subprocess.Popen([PARENG, "run", "fib", "46", "-c", "2", "--stats", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    snapshots = []
    deadline = time.time() + 20
    while time.time() < deadline and run.poll() is None and len(snapshots) < 3:
        engine = top_json(str(run.pid))
        if engine and engine["running"]:
            snapshots.append(engine)
            time.sleep(0.2)
        else:
            time.sleep(0.02)
    out, err = run.communicate(timeout=120)
    check(run.returncode == 0, f"fib ran ({err.strip()})")
    check(len(snapshots) >= 2, f"top saw the engine running {len(snapshots)} times")
    if len(snapshots) < 2:
        return
    first, last = snapshots[0], snapshots[-1]
    check(first["pid"] == run.pid and first["workers"] == 2 and first["runs"] == 1,
          "top names the engine: pid, 2 workers, 1 run")
    check("run fib 46" in first["command"], "top shows the command")
    check(activity(last) > activity(first), "the counters grow between snapshots")
    check(all(w["state"] in ("running", "stealing", "sleeping", "io")
              for w in last["worker_stats"]), "each worker has a state")
    final = json.loads(out)["stats"]
    fields = ["tasks", "spawns", "steals", "steal_fails", "leapfrogs", "stolen_from", "shares",
              "overflows", "sleeps", "near_steals", "serial_runs"]
    within = all(last["worker_stats"][i][f] <= final[i][f]
                 for i in range(2) for f in fields)
    check(within, "every counter top saw is at most what --stats says at the end")
    check(sum(w["serial_runs"] for w in last["worker_stats"]) > 0, "top counted serial runs")


def test_top_refusals():
    r = pareng("top", "99999999", "--once")
    check(r.returncode == 1 and "no process 99999999" in r.stderr, "top refuses a dead pid")
    r = pareng("top", str(os.getpid()), "--once")
    check(r.returncode == 1 and "runs no pareng engine" in r.stderr,
          "top refuses a process without an engine")
    r = pareng("top", "/proc/%d/fd/0" % os.getpid(), "--once")
    check(r.returncode == 1 and "not a pareng engine" in r.stderr, "top refuses garbage")
    for malformed in ("nonsense", "/proc/x", "/proc/%d/fd/" % os.getpid(), "/proc/-1/fd/3",
                      "/proc/4294967297/fd/3"):
        r = pareng("top", malformed, "--once")
        check(r.returncode == 2 and "process id" in r.stderr,
              f"top refuses a malformed target: {malformed}")
    if os.geteuid() != 0:
        r = pareng("top", "1", "--once")
        check(r.returncode == 1 and "another user" in r.stderr, "top refuses another user's")
    # Other tests run engines of this user at the same time (meson runs tests in parallel):
    # "none" is only sure in a PID namespace of this command's own, where root can make one.
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", PARENG, "top", "--once",
                        "--json"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and ("Operation not permitted" in r.stderr or
                              "unshare failed" in r.stderr):
        print("skip top with no engine: no PID namespace of its own here (%s)" %
              r.stderr.strip())
    else:
        check(r.returncode == 0 and json.loads(r.stdout) == {"engines": []},
              "top with no engine: an empty list")


def test_top_once_measures_rates():
    """--once shows the rates of one delay, not 0: its one refresh comes one delay after a
    first snapshot. An IO-bound fib counts tens of thousands of tasks a second."""
    run = subprocess.Popen([PARENG, "run", "fib", "30", "--io-latency", "1ms", "-c", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        engine = None
        while time.time() < deadline and run.poll() is None and not (engine and
                                                                     engine["running"]):
            engine = top_json(str(run.pid), delay="300ms")
        check(engine is not None and engine["running"], "top --once saw the IO-bound run")
        if engine:
            rates = [w["tasks_per_second"] for w in engine["worker_stats"]]
            check(sum(rates) > 0, f"top --once shows tasks per second ({rates})")
        start = time.time()
        r = pareng("top", str(run.pid), "--once", "--delay", "500ms")
        check(r.returncode == 0 and time.time() - start >= 0.5,
              "top --once takes one delay")
    finally:
        run.kill()
        run.wait()


def test_top_until_the_process_ends():
    """top PID ends with status 0 when the process has ended and been reaped, as for a
    segment: the engine has stopped (it said "no process PID" and exited 1)."""
    run = subprocess.Popen([PARENG, "run", "fib", "60", "-c", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline and run.poll() is None and not top_json(str(run.pid)):
        time.sleep(0.02)
    top = subprocess.Popen([PARENG, "top", str(run.pid), "-d", "50ms"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check(top.stdout.readline().startswith("engine %d " % run.pid), "top sees the run")
        # top held still while the run ends and is reaped: its next refresh finds no process,
        # not a zombie that still has a /proc entry
        top.send_signal(signal.SIGSTOP)
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
        top.send_signal(signal.SIGCONT)
        out, err = top.communicate(timeout=60)
        check(top.returncode == 0 and "the engine has stopped" in out and not err,
              f"top ends with status 0 when the process has ended ({err.strip()})")
    finally:
        for p in (top, run):
            if p.poll() is None:
                p.kill()
                p.wait()


def failed_run_keeps(trace, svg):
    """Runs with --trace and --timeline and kills a worker: True for status 1, None where the
    workers cannot be found (a kernel without /proc/PID/task/TID/children). A failed run
    writes neither file (the files were emptied as the run started, and lost)."""
    run = subprocess.Popen([PARENG, "run", "fib", "50", "-c", "2", "--trace", trace,
                            "--timeline", svg], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children = f"/proc/{run.pid}/task/{run.pid}/children"
    workers = []
    for _ in range(500):
        try:
            with open(children) as f:
                workers = f.read().split()
        except FileNotFoundError:
            if os.path.exists(f"/proc/{run.pid}"):
                run.kill()
                run.communicate()
                return None
            break
        except OSError:
            break
        if len(workers) == 2:
            break
        time.sleep(0.01)
    if len(workers) != 2:
        run.kill()
        run.communicate()
        return False
    time.sleep(0.1)
    os.kill(int(workers[1]), 9)
    run.communicate(timeout=30)
    return run.returncode == 1


def test_trace_and_timeline():
    with tempfile.TemporaryDirectory() as d:
        trace, svg = os.path.join(d, "t.json"), os.path.join(d, "t.svg")
        # On a loaded machine one worker may not be scheduled during a whole run, which then
        # has no steal to trace: up to 5 runs, for one that has steals.
        for attempt in range(5):
            r = pareng("run", "fib", "30", "--cutoff", "none", "-c", "2", "--trace", trace,
                       "--timeline", svg, "--stats", "--json")
            if r.returncode or any(s["steals"] + s["leapfrogs"]
                                   for s in json.loads(r.stdout)["stats"]):
                break
        check(r.returncode == 0, f"run --trace ({r.stderr.strip()})")
        if r.returncode:
            return
        stats = json.loads(r.stdout)["stats"]
        with open(trace) as f:
            doc = json.load(f)
        events = doc["traceEvents"]
        names = {(e["ph"], e["name"]) for e in events}
        check(("M", "process_name") in names and ("M", "thread_name") in names,
              "the trace names the process and its workers")
        spans = [e for e in events if e["ph"] == "X"]
        check(any(e["name"] == "running" for e in spans), "the trace has running spans")
        check(all(e["name"] in ("running", "stealing", "sleeping", "io", "starting")
                  and e["dur"] >= 0 and e["tid"] in (0, 1) for e in spans),
              "every span is a state of a worker")
        steals = [e for e in events if e["name"] == "steal"]
        check(all(e["args"]["thief"] == e["tid"] and e["args"]["victim"] in (0, 1)
                  for e in steals), "every steal names its victim and thief")
        counted = sum(s["steals"] + s["leapfrogs"] for s in stats)
        check(len(steals) == counted > 0, f"{len(steals)} steal events, {counted} counted")
        root = ET.parse(svg).getroot()
        rows = [g for g in root.iter("{http://www.w3.org/2000/svg}g")
                if g.get("data-worker") is not None]
        check(len(rows) == 2, "the timeline has a row per worker")
        with open(trace, "rb") as f:
            kept = f.read()
        with open(svg, "rb") as f:
            kept_svg = f.read()
        failed = failed_run_keeps(trace, svg)
        if failed is None:
            print("skip a failed run's files: no /proc/PID/task/TID/children here")
        else:
            check(failed, "a run whose worker was killed fails")
            with open(trace, "rb") as f, open(svg, "rb") as g:
                check(f.read() == kept and g.read() == kept_svg,
                      "the trace and timeline of the run before are kept whole")
        # one worker: fewer events than any run of two (on a loaded machine the run above
        # may have had few steals, and two workers' fib 5 once wrote more)
        r = pareng("run", "fib", "5", "-c", "1", "--trace", trace)
        with open(trace) as f:
            shorter = f.read()
        check(r.returncode == 0 and len(shorter) < len(kept) and json.loads(shorter),
              "a shorter trace written over a longer one is cut to its own length")
        # docs/cli.md names the workloads they work for: uts is one
        r = pareng("run", "uts", "T1", "-c", "2", "--trace", trace, "--timeline", svg)
        with open(trace) as f:
            check(r.returncode == 0 and json.load(f)["traceEvents"] and
                  ET.parse(svg).getroot().tag.endswith("svg"), "run uts --trace --timeline")
        r = pareng("run", "fib", "10", "--trace", "-")
        check(r.returncode == 2, "--trace - is refused (stdout has the result)")
        r = pareng("run", "fib", "10", "--trace", os.path.join(d, "no", "such", "dir"))
        check(r.returncode == 1 and "--trace" in r.stderr, "an unwritable --trace fails first")


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_scale():
    for n in (3, 10, 18):
        r = pareng("run", "fib", str(n), "--scale", "-c", "2", "--json")
        check(r.returncode == 0, f"run fib {n} --scale ({r.stderr.strip()})")
        if r.returncode:
            continue
        doc = json.loads(r.stdout)
        s = doc["scale"]
        # fib(n) spawns fib(n-1) and calls fib(n-2): the root and the spawns are fib(n) tasks,
        # and the longest chain of spawns is n - 1 tasks
        check(doc["result"] == fib(n), f"fib({n}) exact under --scale")
        check(s["tasks"] == fib(n) and s["span_tasks"] == n - 1,
              f"fib({n}): {s['tasks']} tasks, {s['span_tasks']} on the span")
        check(s["work_seconds"] >= s["span_seconds"] > 0, "work >= span")
        check([b["workers"] for b in s["bounds"]] == [1, 2], "bounds for 1 and 2 workers")
        check(all(b["speedup_at_least"] <= b["speedup_at_most"] <= b["workers"]
                  for b in s["bounds"]), "lower bound <= upper bound <= workers")
    with tempfile.TemporaryDirectory() as d:
        plot = os.path.join(d, "scale.svg")
        r = pareng("run", "fib", "15", "--scale", "--plot", plot, "-c", "2")
        check(r.returncode == 0 and "parallelism" in r.stdout and
              ET.parse(plot).getroot().tag.endswith("svg"), "--scale --plot writes an SVG")
    for bad in (["--cutoff", "none"], ["--trace", "x"], ["--serial"]):
        r = pareng("run", "fib", "10", "--scale", *bad)
        check(r.returncode == 2 and "do not go together" in r.stderr, f"--scale refuses {bad[0]}")
    r = pareng("run", "fib", "10", "--burden", "1us")
    check(r.returncode == 2 and "is for --scale" in r.stderr, "--burden needs --scale")


test_top_refusals()
test_top_against_a_running_engine()
test_top_once_measures_rates()
test_top_until_the_process_ends()
test_trace_and_timeline()
test_scale()
sys.exit(1 if failures else 0)
