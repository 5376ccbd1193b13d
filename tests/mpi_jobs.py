#!/usr/bin/env python3
"""mpi_jobs.py - pareng across the ranks of an MPI job, launched by mpirun as a user launches
it. One group of checks per invocation, each a meson test of its own (tests/meson.build):

  exact      `pareng run fib 32` and `pareng run uts T1|T3` on 1 to 4 ranks of 1 and 2
             workers: the one answer, printed once (rank 0), exactly
  library    tests/mpi_trees.c (collective runs of fib and small T1- and T3-shaped trees
             through libpareng-mpi, every rank against the serial answer) on 1 to 4 ranks
  stats      --json on 2 ranks: a row per rank, every frame sent is received, and a run long
             enough that the idle rank surely steals makes tasks cross
  refusals   tests/mpi_init_first.c (pareng_mpi_start after MPI_Init: -EALREADY; ranks that
             pass different flags: -EPROTO on each; one rank's engine that cannot start: its
             message, -ECONNABORTED on the others; where ranks waited for ever), and a map
             whose items are a task of pointers (which stays on its rank) gives the list
             that the same map gives without mpirun
  faults     a rank's coordinator or one of its workers killed (SIGKILL) mid-run, and Ctrl-C
             (SIGINT) to mpirun: the job ends within FAULT_END_S with a non-zero status and a
             message naming the rank, and leaves no process and no /dev/shm file of its own
             (the files its processes mapped mid-run, Open MPI's vader segments, and any
             pareng-*: not a diff of /dev/shm, which other jobs of the machine change)
  ring       docs/examples/ring.c on 3 ranks ("P0P1P2" and every rank's result), and on 1
             and 4

Usage: mpi_jobs.py GROUP [PROGRAM] (library: mpi_trees, refusals: mpi_init_first, ring: ring);
the environment gives MPIRUN (the launcher) and PARENG_BIN (the CLI). Exit status 0 when every
check passed, 1 otherwise, 77 (skipped) without a launcher that answers --version.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from procs import children, proc_stat, session_members

RANKS = (1, 2, 3, 4)
WORKERS = (1, 2)
RUN_TIMEOUT_S = 120
FAULT_END_S = 20
START_S = 60
REFUSED_START_S = 30  # a refusal at start, where a hang was
LEFTOVER_S = 3.0
failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print(f"FAIL: {what}", flush=True)
    return ok


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def launcher():
    """The launcher's command line before the rank count: Open MPI's mpirun takes more ranks
    than cores only with --oversubscribe (MPICH's mpiexec needs no flag)."""
    mpirun = os.environ.get("MPIRUN", "mpirun")
    try:
        version = subprocess.run([mpirun, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [mpirun, "--oversubscribe"] if "Open MPI" in version else [mpirun]


# LeakSanitizer's own crash at a rank's exit (its tracer thread, stopping Open MPI's threads,
# died of SIGSEGV once in a CI run under load, 6 runs of the same job after it passing; and
# twice in a row in another CI run under load, 6 runs alone after it passing): not a leak,
# which LeakSanitizer reports as "detected memory leaks", and not pareng's.
LSAN_CRASHED = "LeakSanitizer has encountered a fatal error"
LSAN_CRASH_RETRIES = 3


def mpirun(ranks, argv, timeout=RUN_TIMEOUT_S):
    """(exit status or None on timeout, stdout, stderr) of argv on `ranks` ranks, run again
    (and said so), up to LSAN_CRASH_RETRIES times, when LeakSanitizer itself crashed."""
    status, out, err = mpirun_once(ranks, argv, timeout)
    for _ in range(LSAN_CRASH_RETRIES):
        if status == 0 or LSAN_CRASHED not in err:
            break
        print(f"note: LeakSanitizer crashed in {' '.join(argv)} on {ranks} ranks; once more",
              flush=True)
        status, out, err = mpirun_once(ranks, argv, timeout)
    return status, out, err


def mpirun_once(ranks, argv, timeout):
    """(exit status or None on timeout, stdout, stderr) of argv on `ranks` ranks. The job
    gets a session of its own, killed whole on timeout: a hung rank's workers would otherwise
    keep the pipes open."""
    cmd = LAUNCHER + ["-np", str(ranks)] + argv
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, start_new_session=True) as p:
        jobs_started.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
            return p.returncode, out, err
        except subprocess.TimeoutExpired:
            end_job(p)
            out, err = p.communicate()
            return None, out, err + f"\n(killed after {timeout} s)"


# Every job this script started: meson ends an overrunning test with SIGTERM, and a job (a
# session of its own) would outlive the script, its ranks spinning for ever (a rank waiting
# in a collective polls).
jobs_started = []


def end_jobs_and_exit(signum, frame):
    """meson's SIGTERM: meson sends SIGKILL half a second later, so the launchers get
    SIGTERM and 0.3 s, and then their sessions SIGKILL (not end_job, which may wait 5 s).
    Only jobs not reaped before it (a pid reaped long ago may be another process's now); one
    whose launcher is gone may still have processes in its session."""
    live = [job for job in jobs_started if job.returncode is None]
    for job in live:
        job.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline and any(job.poll() is None for job in live):
        time.sleep(0.02)
    for job in live:
        for pid in session_members(job.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    sys.exit(128 + signum)


def end_job(job):
    """Ends a job that overran, or that a failed check left running: SIGTERM to the launcher
    first, which ends its ranks and removes its files in /dev/shm (Open MPI leaves them when
    it is killed outright), then SIGKILL to whatever is left of its session (the ranks have
    process groups of their own)."""
    if job.poll() is None:
        job.terminate()
        try:
            job.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    for _ in range(3):
        for pid in session_members(job.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    job.wait()


def described(rc, out, err):
    status = "timed out" if rc is None else f"status {rc}"
    return f"{status}; stdout {out.strip()[:600]!r}; stderr {err.strip()[-1500:]!r}"


# ---- exact: the CLI's answers on any number of ranks and workers -------------------------

UTS_PUBLISHED = {"T1": 4130071, "T3": 4112897}


def group_exact(pareng, _):
    for ranks in RANKS:
        for workers in WORKERS:
            where = f"{ranks} ranks x {workers} workers"
            rc, out, err = mpirun(ranks, [pareng, "run", "fib", "32", "--cores", str(workers)])
            lines = out.splitlines()
            check(rc == 0 and lines and lines[0] == f"fib(32) = {fib(32)}",
                  f"fib 32 on {where}: {described(rc, out, err)}")
            # Only rank 0 prints: one answer, whatever the number of ranks
            check(out.count("fib(32) =") == 1, f"fib 32 on {where}: answers printed: {out!r}")
            if rc == 0 and ranks > 1:
                check(f"on each of {ranks} ranks" in out,
                      f"fib 32 on {where}: the time line does not say {ranks} ranks: {out!r}")
            for tree, nodes in UTS_PUBLISHED.items():
                rc, out, err = mpirun(ranks, [pareng, "run", "uts", tree, "--cores",
                                              str(workers)])
                lines = out.splitlines()
                check(rc == 0 and lines and lines[0] == f"uts({tree}) = {nodes} nodes" and
                      "(as UTS publishes)" in out,
                      f"uts {tree} on {where}: {described(rc, out, err)}")
            print(f"ok: fib 32, uts T1, uts T3 on {where}", flush=True)


# ---- library: collective runs through libpareng-mpi --------------------------------------

def group_library(_, program):
    for ranks in RANKS:
        for workers in WORKERS:
            rc, out, err = mpirun(ranks, [program, str(workers)])
            if check(rc == 0 and f"every answer right on {ranks} ranks" in out,
                     f"mpi_trees on {ranks} ranks x {workers} workers: "
                     f"{described(rc, out, err)}"):
                print(f"ok: {ranks} ranks x {workers} workers: " +
                      out.strip().replace("\n", "; "), flush=True)


# ---- stats: the rank table of --json ------------------------------------------------------

def group_stats(pareng, _):
    # fib(42): tenths of a second of work on rank 0's one worker, a hundred times what the
    # idle rank needs to ask for some of it
    n = 42
    rc, out, err = mpirun(2, [pareng, "run", "fib", str(n), "--cores", "1", "--json"])
    if not check(rc == 0, f"fib {n} --json on 2 ranks: {described(rc, out, err)}"):
        return
    try:
        doc = json.loads(out)
    except json.JSONDecodeError as e:
        check(False, f"fib {n} --json on 2 ranks: not JSON ({e}): {out!r}")
        return
    rows = doc.get("rank_stats", [])
    check(doc.get("result") == fib(n), f"--json result {doc.get('result')}, want {fib(n)}")
    check(doc.get("ranks") == 2, f"--json ranks: {doc.get('ranks')}")
    if not check(len(rows) == 2 and [r.get("rank") for r in rows] == [0, 1],
                 f"--json rank_stats: {rows}"):
        return
    fields = ("tasks", "tasks_sent", "tasks_received", "steal_requests", "steals_refused",
              "lifeline_pushes", "messages", "bytes", "busy_s", "idle_s", "coordinator_cpu_s")
    for row in rows:
        check(all(isinstance(row.get(f), (int, float)) and row[f] >= 0 for f in fields),
              f"rank_stats row without every field, or one negative: {row}")
    sent = sum(r["tasks_sent"] for r in rows)
    received = sum(r["tasks_received"] for r in rows)
    check(sent == received, f"tasks sent {sent} but received {received}: {rows}")
    check(sent > 0, f"no task crossed ranks in fib {n} on 2 ranks of 1 worker: {rows}")
    check(rows[1]["tasks"] > 0 and rows[1]["busy_s"] > 0,
          f"rank 1 ran nothing of fib {n}: {rows[1]}")
    check(all(r["messages"] > 0 and r["bytes"] > 0 for r in rows),
          f"a rank sent no message: {rows}")
    print(f"ok: fib {n} on 2 ranks: {sent} tasks crossed, rows {rows}", flush=True)

    rc, out, err = mpirun(2, [pareng, "run", "uts", "T1", "--cores", "1", "--stats"])
    check(rc == 0 and re.search(r"^\s+rank\s+tasks\s+tasks_sent", out, re.M) and
          re.search(r"^\s+1\s+\d+", out, re.M),
          f"uts T1 --stats on 2 ranks: no table with a row per rank: {described(rc, out, err)}")


# ---- refusals ---------------------------------------------------------------------------

def group_refusals(pareng, program):
    for ranks in (1, 2):
        rc, out, err = mpirun(ranks, [program])
        check(rc == 0 and out.count("after MPI_Init: refused") == ranks,
              f"mpi_init_first on {ranks} ranks: {described(rc, out, err)}")
    rc, out, err = mpirun(2, [program, "mixed-flags"], timeout=REFUSED_START_S)
    check(rc == 0 and out.count("mixed flags: refused") == 2,
          f"ranks that pass different flags to pareng_mpi_start: {described(rc, out, err)}")
    rc, out, err = mpirun(3, [program, "one-fails"], timeout=REFUSED_START_S)
    check(rc == 0 and out.count("this rank failed: refused") == 1 and
          out.count("another rank failed: refused") == 2,
          f"rank 1's engine cannot start: {described(rc, out, err)}")
    ns = ["20", "21", "22", "30", "18"]
    alone = subprocess.run([pareng, "map", "fib", *ns, "--cores", "2"], capture_output=True,
                           text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    want = "[" + ", ".join(str(fib(int(n))) for n in ns) + "]"
    check(alone.returncode == 0 and alone.stdout.splitlines()[:1] == [want],
          f"map fib without mpirun: {alone.stdout!r} {alone.stderr!r}")
    for ranks in (2, 3):
        rc, out, err = mpirun(ranks, [pareng, "map", "fib", *ns, "--cores", "1"])
        check(rc == 0 and out.splitlines()[:1] == [want],
              f"map fib on {ranks} ranks: want {want}: {described(rc, out, err)}")
    # One rank refuses its engine (IO does not share work across ranks), the other starts one:
    # both end, saying why, where the other waited for it in a collective for ever
    rc, out, err = mpirun(1, [pareng, "run", "fib", "20", "--cores", "1", ":", "-np", "1",
                              pareng, "run", "fib", "20", "--io-latency", "1ms", "--cores", "1"],
                          timeout=60)
    check(rc not in (0, None) and "does not share work across ranks" in err and
          "another rank could not start its engine" in err,
          f"one rank's engine refused: {described(rc, out, err)}")
    # A launcher's variables in a shell no launcher started: MPI starts one rank, which the
    # variables had silenced (no answer, exit status 0); now it says so and fails
    for stray in ({"PMI_SIZE": "2", "PMI_RANK": "1"},
                  {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM", "PMI"))}
        env.update(stray)
        alone = subprocess.run([pareng, "run", "fib", "20", "--cores", "1"], env=env,
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
        check(alone.returncode == 2 and "ranks (" in alone.stderr and
              "but MPI started 1:" in alone.stderr,
              f"stray {stray}: {alone.returncode} {alone.stdout!r} {alone.stderr!r}")
    # Ranks that run different tasks (MPMD): a rank took rank 0's fib for its uts and failed
    # on the count; now the run is refused as not rank 0's
    rc, out, err = mpirun(1, [pareng, "run", "fib", "25", "--cores", "1", ":", "-np", "1",
                              pareng, "run", "uts", "T1", "--cores", "1"], timeout=60)
    check(rc not in (0, None) and "rank 1's run 1 is not rank 0's" in err,
          f"different tasks on the ranks: {described(rc, out, err)}")
    # A rank whose variable says another rank than MPI's: MPI's rank 0 prints the answer
    rc, out, err = mpirun(2, ["sh", "-c", f"OMPI_COMM_WORLD_RANK=1 PMI_RANK=1 exec {pareng} run "
                              "fib 25 --cores 1"])
    check(rc == 0 and out.startswith("fib(25) = 75025"),
          f"a rank's variable overridden: {described(rc, out, err)}")
    print("ok: refusals", flush=True)


# ---- faults: a rank that dies, Ctrl-C ----------------------------------------------------

def shm_files_of(pid):
    """The /dev/shm files a process maps or holds open, by name (unlinked ones have none)."""
    names = set()
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                path = fields[5].strip() if len(fields) == 6 else ""
                if path.startswith("/dev/shm/") and not path.endswith("(deleted)"):
                    names.add(path)
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/shm/") and not target.endswith("(deleted)"):
                names.add(target)
    except OSError:
        pass
    return names


def session_directories(launcher_pid):
    """Open MPI's session directory of the mpirun of that pid (its files, and the ranks'
    when their segments are not in /dev/shm), which mpirun removes when it ends."""
    return glob.glob(os.path.join(tempfile.gettempdir(), "ompi.*", f"pid.{launcher_pid}"))


def pareng_shm_names():
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("pareng-")}
    except OSError:
        return set()


def cpu_seconds(pid):
    """User and system time of a process so far, or 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def running_job(pareng, ranks, workdir, command):
    """Starts `pareng COMMAND` (minutes of work) on `ranks` ranks of 1 worker and waits until
    every rank takes part in the run (each rank's worker has computed for a while): (mpirun's
    Popen, {rank: pid}, {rank: [worker pids]}), or (None, the reason)."""
    rank_var = "${OMPI_COMM_WORLD_RANK:-$PMI_RANK}"
    script = (f'echo $$ > "{workdir}/pid.{rank_var}.tmp" && '
              f'mv "{workdir}/pid.{rank_var}.tmp" "{workdir}/pid.{rank_var}" && '
              f'exec "{pareng}" {command} --cores 1')
    out = open(os.path.join(workdir, "out"), "w+")
    job = subprocess.Popen(LAUNCHER + ["-np", str(ranks), "sh", "-c", script], stdout=out,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           start_new_session=True)
    jobs_started.append(job)
    job.output = out
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and job.poll() is None:
        pids = {}
        for r in range(ranks):
            try:
                with open(os.path.join(workdir, f"pid.{r}")) as f:
                    pids[r] = int(f.read())
            except (OSError, ValueError):
                break
        workers = {r: children(pid) for r, pid in pids.items()}
        if len(pids) == ranks and all(workers.values()) and \
                all(cpu_seconds(w[0]) >= 0.1 for w in workers.values()):
            return job, pids, workers
        time.sleep(0.05)
    end_job(job)
    return None, (f"not every rank's worker computed within {START_S} s (status "
                  f"{job.returncode}): {output_of(job)}")


def output_of(job):
    job.output.seek(0)
    return job.output.read()


def one_fault(pareng, ranks, victim, workdir, command="run fib 60"):
    """Sends one fault to a running job of `pareng COMMAND` and checks its end. victim:
    ("rank", r), ("worker", r) or ("mpirun",). A launcher that itself dies of SIGSEGV gets one more try: Open MPI
    4.1.4's mpirun does, now and then, while it logs the report of a rank's MPI_Abort
    (pmix_server_log_fn -> orte_rml_oob_send_buffer_nb; a fault of its own, which leaves its
    vader segments and its session directory behind, removed here). A second crash fails
    the test."""
    global failures
    name = " ".join(map(str, victim)) + f" ({command})"
    for attempt in (1, 2):
        failures_before = failures
        for f in os.listdir(workdir):
            os.unlink(os.path.join(workdir, f))
        pareng_shm_before = pareng_shm_names()
        started = running_job(pareng, ranks, workdir, command)
        if not started[0]:
            check(False, f"{name}: {started[1]}")
            return
        job = started[0]
        try:
            launcher_crashed = observe_fault(ranks, victim, name, job, *started[1:],
                                             pareng_shm_before)
        finally:
            end_job(job)
            job.output.close()
        if not (launcher_crashed and attempt == 1):
            break
        print(f"note: {name}: mpirun itself crashed (Open MPI's fault, above); once more",
              flush=True)
        failures = failures_before
    print(f"{'ok' if failures == failures_before else 'FAIL'}: {name} of {ranks} ranks",
          flush=True)


def observe_fault(ranks, victim, name, job, pids, workers, pareng_shm_before):
    """Sends the fault to the running job and checks how it ends and what it leaves."""
    sid = job.pid
    members = {pid: st[3] for pid, st in session_members(sid).items()}
    for r, pid in pids.items():
        st = proc_stat(pid)
        members.setdefault(pid, st[3] if st else 0)
        for w in workers[r]:
            st = proc_stat(w)
            if st:
                members.setdefault(w, st[3])
    shm_of_job = set()
    for pid in members:
        shm_of_job |= shm_files_of(pid)

    if victim[0] == "mpirun":
        target, sig = job.pid, signal.SIGINT
    elif victim[0] == "rank":
        target, sig = pids[victim[1]], signal.SIGKILL
    else:
        target, sig = workers[victim[1]][0], signal.SIGKILL
    t0 = time.monotonic()
    os.kill(target, sig)
    try:
        rc = job.wait(timeout=FAULT_END_S)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    if rc is None:
        end_job(job)
    out = output_of(job)
    check(rc is not None, f"{name}: mpirun did not end within {FAULT_END_S} s: {out[-2000:]!r}")
    check(rc != 0, f"{name}: mpirun ended with status 0 after the fault: {out[-2000:]!r}")
    # The launcher's own end: mpirun removes the ranks' segments, and a crashed one does not
    launcher_crashed = rc is not None and rc < 0 and victim[0] != "mpirun"
    check(not launcher_crashed,
          f"{name}: mpirun itself ended by signal {-rc if launcher_crashed else 0}: "
          f"{out[-2500:]!r}")

    if victim[0] == "rank":
        # Open MPI: "process rank 1 with PID 0 on node vm exited on signal 9 (Killed)";
        # MPICH names the process by its PID and its exit code
        r = victim[1]
        check(re.search(rf"\brank {r}\b[^\n]*signal 9", out) or
              re.search(rf"\bPID {target}\b", out),
              f"{name}: the output does not name rank {r} (pid {target}): {out[-2000:]!r}")
    elif victim[0] == "worker":
        r = victim[1]
        check(re.search(rf"^pareng: rank {r} of {ranks}: worker \d+ \(pid {target}\) was "
                        rf"killed by signal 9[^\n]*; ending the job$", out, re.M),
              f"{name}: no message of rank {r} about its worker {target}: {out[-2000:]!r}")

    # Nothing left: no process of the job (its session, and the ranks and workers seen
    # mid-run, should one have left the session) and no file of its in /dev/shm
    deadline = time.monotonic() + LEFTOVER_S
    while True:
        alive = {pid: start for pid, start in members.items()
                 if (st := proc_stat(pid)) and st[3] == start and st[0] not in "ZX"}
        alive.update({pid: st[3] for pid, st in session_members(sid).items()})
        shm_left = {p for p in shm_of_job if os.path.exists(p)}
        pareng_left = pareng_shm_names() - pareng_shm_before
        session_dirs = session_directories(job.pid)
        if not (alive or shm_left or pareng_left or session_dirs) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(not alive, f"{name}: processes of the job alive {LEFTOVER_S:.0f} s after mpirun "
          f"ended: {sorted(alive)}")
    check(not shm_left, f"{name}: files of the job left in /dev/shm: {sorted(shm_left)}")
    check(not pareng_left, f"{name}: new /dev/shm/pareng-* files: {sorted(pareng_left)}")
    check(not session_dirs, f"{name}: the launcher's session directory is left: {session_dirs}")
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    print(f"{name} of {ranks} ranks: mpirun status {rc} after {took:.2f} s; /dev/shm files of "
          f"the job mid-run: {len(shm_of_job)}, left: {len(shm_left)}", flush=True)
    # Found and said: the test itself leaves nothing behind
    for path in shm_left:
        try:
            os.unlink(path)
        except OSError:
            pass
    for path in session_dirs:
        shutil.rmtree(path, ignore_errors=True)
    return launcher_crashed


def group_faults(pareng, _):
    with tempfile.TemporaryDirectory(prefix="pareng-mpi-fault-") as workdir:
        for ranks, victim in ((2, ("rank", 1)), (3, ("rank", 0)), (2, ("worker", 1)),
                              (2, ("mpirun",)), (3, ("mpirun",))):
            one_fault(pareng, ranks, victim, workdir)
        # A map's items run on their ranks without crossing: its failed rank waited in the
        # stop's barrier until the others had finished the whole map
        one_fault(pareng, 2, ("worker", 1), workdir, "map fib 60 60")


# ---- ring: docs/examples/ring.c ----------------------------------------------------------

def group_ring(_, program):
    for ranks in (3, 1, 4):
        rc, out, err = mpirun(ranks, [program])
        message = "".join(f"P{r}" for r in range(ranks))
        want = [f"ring of {ranks} ranks: {message}"] + \
               [f"rank {r}: fib({25 + r % 8}) = {fib(25 + r % 8)}" for r in range(ranks)]
        check(rc == 0 and out.splitlines() == want,
              f"ring on {ranks} ranks: want {want}: {described(rc, out, err)}")
    print("ok: ring", flush=True)


GROUPS = {"exact": group_exact, "library": group_library, "stats": group_stats,
          "refusals": group_refusals, "faults": group_faults, "ring": group_ring}
LAUNCHER = None


def main():
    global LAUNCHER
    if len(sys.argv) < 2 or sys.argv[1] not in GROUPS:
        print(f"usage: mpi_jobs.py {'|'.join(GROUPS)} [PROGRAM]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, end_jobs_and_exit)
    LAUNCHER = launcher()
    if not LAUNCHER:
        print("no MPI launcher (MPIRUN): skipped")
        return 77
    GROUPS[sys.argv[1]](os.environ.get("PARENG_BIN", ""), sys.argv[2] if len(sys.argv) > 2
                        else None)
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
