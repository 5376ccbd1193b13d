"""Tests of the pareng Python module (run by `meson test`, PYTHONPATH=<build>/python).

Plain unittest: the program exits non-zero when a test fails. After every test no child process
of this Python process and no /dev/shm/pareng-<pid>-* segment may be left.
"""
import errno
import gc
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

# The package's sources (pareng/, without its extension) sit beside this file: the one to test
# is the built one, from PYTHONPATH.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import pareng  # noqa: E402


def py_fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def children(pid=None):
    """Process ids of the children of every thread of process pid (zombies included)."""
    pid = os.getpid() if pid is None else pid
    found = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(p) for p in f.read().split())
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return found


def segments(pid=None):
    """Engine memory that process pid still holds: descriptors or mappings of the memfds
    engines make ("memfd:pareng-arena"); a process that is gone holds none."""
    pid = os.getpid() if pid is None else pid
    held = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            held += [line for line in f if "memfd:pareng-arena" in line]
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if "memfd:pareng-arena" in target:
                held.append(target)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return held


def alive(pid):
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or the read
        return False


def two_cpus():
    """A CPU list naming two CPUs this process may use ("0,1"), or None."""
    cpus = sorted(os.sched_getaffinity(0))
    return f"{cpus[0]},{cpus[1]}" if len(cpus) >= 2 else None


def run_python(code, timeout=60, env=None, **kwargs):
    """Runs code in a fresh interpreter (the same one, the same PYTHONPATH); env: variables
    to set (a value None removes the variable) over this process's environment, from which
    the PARENG_* and HWLOC_* variables are removed first."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PARENG_", "HWLOC_"))}
    for k, v in (env or {}).items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=full, **kwargs)


class ParengTest(unittest.TestCase):
    def tearDown(self):
        gc.collect()
        self.assertEqual(children(), set(), "worker processes left behind")
        self.assertEqual(segments(), [], "shared-memory segments left behind")


class Results(ParengTest):
    def test_fib_exact(self):
        for n in range(31):
            self.assertEqual(pareng.fib(n), py_fib(n), f"fib({n})")

    def test_fib_max(self):
        # fib(93) is the largest that fits in 64 bits; it is accepted (Exit runs fib(80) and
        # interrupts it), 94 is not (Errors.test_bad_n).
        self.assertEqual(pareng.FIB_MAX, 93)

    def test_fib_keywords_cores_and_grains(self):
        expected = py_fib(27)
        self.assertEqual(pareng.fib(n=27), expected)
        for cores in ("auto", None, 1, 2, "1", "core:0", "core:0-0", "core:all", "package:0",
                      "pu:all", "numa:0"):
            self.assertEqual(pareng.fib(27, cores=cores), expected, f"cores={cores!r}")
        if two_cpus():
            self.assertEqual(pareng.fib(27, cores=two_cpus()), expected)
            self.assertEqual(pareng.fib(27, cores="core:0-1"), expected)
        for grain in (None, 0, 1, 2, 3, 10, 27, 28, 93, 10**30):
            self.assertEqual(pareng.fib(27, grain=grain), expected, f"grain={grain!r}")

    def test_cutoff(self):
        # "none": every call a task; N: a fixed depth; "auto" (and None, 0, "0"): adaptive.
        items = [25, 24, 23, 22, 21, 20, 1, 0]
        for cutoff in ("none", 3, 1, 40, "3", "auto", None, 0, "0"):
            with self.subTest(cutoff=cutoff):
                self.assertEqual(pareng.fib(27, cutoff=cutoff), py_fib(27))
                self.assertEqual(pareng.fib(27, cores=2, cutoff=cutoff, grain=0), py_fib(27))
                self.assertEqual(pareng.map("fib", items, cutoff=cutoff),
                                 [py_fib(n) for n in items])
                with pareng.Engine(cores=2, cutoff=cutoff) as e:
                    shown = {None: "auto", 0: "auto", "0": "auto", "3": 3}.get(cutoff, cutoff)
                    self.assertEqual(e.cutoff, shown)
                    self.assertEqual(e.fib(27), py_fib(27))
                    self.assertEqual(e.fib(26, grain=None), py_fib(26))
                    self.assertEqual(e.map("fib", items, grain=0), [py_fib(n) for n in items])

    def test_cpu_sets_of_a_synthetic_machine(self):
        # Two packages of two cores of two PUs: the grammar is libpareng's (an engine on a
        # synthetic topology runs unpinned, with the workers the list names).
        r = run_python("""
            import pareng
            for cores in ("package:0", "package:1", "core:all", "pu:all", "numa:0",
                          "core:1-2", "pu:0,3"):
                with pareng.Engine(cores) as e:
                    print(cores, e.workers, e.fib(30), pareng.fib(25, cores=cores),
                          pareng.map("fib", [20, 21], cores=cores))
        """, env={"HWLOC_SYNTHETIC": "package:2 core:2 pu:2"})
        self.assertEqual(r.returncode, 0, r.stderr)
        workers = {"package:0": 2, "package:1": 2, "core:all": 4, "pu:all": 8, "numa:0": 4,
                   "core:1-2": 2, "pu:0,3": 2}
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), len(workers), r.stdout)
        for line in lines:
            cores, k, rest = line.split(" ", 2)
            self.assertEqual(int(k), workers[cores], line)
            self.assertEqual(rest, f"{py_fib(30)} {py_fib(25)} [{py_fib(20)}, {py_fib(21)}]")

    def test_map_small(self):
        items = [25, 24, 23, 22, 21, 20]
        self.assertEqual(pareng.map("fib", items), [py_fib(n) for n in items])
        self.assertEqual(pareng.map("fib", items, cores=1, grain=0), [py_fib(n) for n in items])
        self.assertEqual(pareng.map("fib", items, cores=2, grain=12), [py_fib(n) for n in items])
        self.assertEqual(pareng.map("fib", items, cores=1, cutoff="none"),
                         [py_fib(n) for n in items])

    def test_map_issue_list(self):
        items = [38, 37, 36, 35, 34, 33]
        self.assertEqual(pareng.map("fib", items, cores="auto"), [py_fib(n) for n in items])

    def test_map_iterables(self):
        self.assertEqual(pareng.map("fib", []), [])
        self.assertEqual(pareng.map("fib", (3, 4)), [2, 3])
        self.assertEqual(pareng.map("fib", range(10)), [py_fib(n) for n in range(10)])
        self.assertEqual(pareng.map("fib", (n for n in [5, 6])), [5, 8])
        self.assertEqual(pareng.map("fib", items=[7], cores=1), [13])

    def test_map_more_items_than_one_run_takes(self):
        items = [n % 20 for n in range(200_003)]
        self.assertEqual(pareng.map("fib", items), [py_fib(n) for n in items])


class GilRelease(ParengTest):
    def check_other_thread_runs(self, call):
        stamps = []
        stop = threading.Event()

        def tick():
            while not stop.is_set():
                stamps.append(time.monotonic())
                time.sleep(0.001)

        t = threading.Thread(target=tick)
        t.start()
        try:
            while not stamps:
                time.sleep(0.001)
            before = len(stamps)
            t0 = time.monotonic()
            result = call()
            t1 = time.monotonic()
            after = len(stamps)
        finally:
            stop.set()
            t.join()
        self.assertEqual(result, py_fib(42))
        self.assertGreater(t1 - t0, 0.05, "the call was too short to tell")
        during = [s for s in stamps if t0 < s < t1]
        # Sleeping 1 ms per tick, the thread ticks hundreds of times during a 0.3 s call; with
        # the GIL held it could not tick at all.
        self.assertGreater(after - before, 10)
        self.assertGreater(len(during), 10, f"{len(during)} ticks during {t1 - t0:.3f} s")
        self.assertGreater(max(during) - min(during), 0.5 * (t1 - t0))

    def test_fib_releases_the_gil(self):
        self.check_other_thread_runs(lambda: pareng.fib(42, cutoff="none"))

    def test_engine_fib_releases_the_gil(self):
        with pareng.Engine(cutoff="none") as e:
            self.check_other_thread_runs(lambda: e.fib(42))

    def test_map_releases_the_gil(self):
        self.check_other_thread_runs(lambda: pareng.map("fib", [42], cutoff="none")[0])


class EngineReuse(ParengTest):
    def test_many_calls(self):
        with pareng.Engine(cores=2) as e:
            self.assertEqual(e.workers, 2)
            pids = e.worker_pids
            self.assertIsInstance(pids, tuple)
            self.assertEqual(len(pids), 2)
            self.assertEqual(set(pids), children())
            for k in range(100):
                n = k % 31
                self.assertEqual(e.fib(n), py_fib(n))
                self.assertEqual(e.fib(n, grain=0), py_fib(n))
                self.assertEqual(e.fib(n, grain=5), py_fib(n))
            for _ in range(20):
                self.assertEqual(e.map("fib", [25, 24, 23, 22, 21, 20]),
                                 [py_fib(n) for n in [25, 24, 23, 22, 21, 20]])
            self.assertEqual(e.map("fib", [38, 37, 36, 35, 34, 33], grain=None),
                             [py_fib(n) for n in [38, 37, 36, 35, 34, 33]])
            self.assertEqual(e.worker_pids, pids, "the same workers serve every call")
            self.assertFalse(e.closed)
            self.assertIn("workers=2", repr(e))
            self.assertEqual(e.cutoff, "auto")
        self.assertTrue(e.closed)
        self.assertFalse(any(alive(p) for p in pids))

    def test_auto_and_lists(self):
        with pareng.Engine("core:all") as e:  # one worker per core this process may use
            cores = e.workers
        self.assertTrue(1 <= cores <= len(os.sched_getaffinity(0)))
        with pareng.Engine() as e:
            self.assertEqual(e.workers, cores, "auto is one worker per core")
        with pareng.Engine("core:0") as e:
            self.assertEqual(e.workers, 1)
            self.assertEqual(e.fib(30), py_fib(30))
        if two_cpus():
            with pareng.Engine(cores=two_cpus()) as e:
                self.assertEqual(e.workers, 2)
                self.assertEqual(e.fib(30), py_fib(30))

    def test_close_and_collection(self):
        e = pareng.Engine(cores=2)
        pids = e.worker_pids
        e.close()
        e.close()  # twice is fine
        self.assertFalse(any(alive(p) for p in pids))
        e = pareng.Engine(cores=2)
        pids = e.worker_pids
        del e  # garbage: the workers stop
        self.assertFalse(any(alive(p) for p in pids))

    def test_closed_engine(self):
        e = pareng.Engine(cores=1)
        e.close()
        self.assertEqual(repr(e), "<pareng.Engine closed>")
        for call in (lambda: e.fib(10), lambda: e.map("fib", [1]), lambda: e.workers,
                     lambda: e.worker_pids, lambda: e.cutoff, e.__enter__):
            with self.assertRaisesRegex(ValueError, "closed"):
                call()
        with pareng.Engine(cores=1) as e:
            pass
        with self.assertRaisesRegex(ValueError, "closed"):
            e.fib(3)

    def test_threads_share_one_engine(self):
        results, errors = {}, []
        with pareng.Engine(cores=2) as e:
            def work(k):
                try:
                    results[k] = [e.fib(20 + (k + j) % 10) for j in range(20)]
                except Exception as x:  # pragma: no cover - reported below
                    errors.append(x)
            threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        for k in range(4):
            self.assertEqual(results[k], [py_fib(20 + (k + j) % 10) for j in range(20)])

    def test_calls_from_other_threads(self):
        out = []
        t = threading.Thread(target=lambda: out.append(pareng.fib(30, cores=2)))
        t.start()
        t.join()
        self.assertEqual(out, [py_fib(30)])

    def test_close_waits_for_a_running_call(self):
        e = pareng.Engine(cores=2, cutoff="none")
        out = []
        t = threading.Thread(target=lambda: out.append(e.fib(38)))
        t.start()
        time.sleep(0.05)
        e.close()  # waits for the call of the other thread
        t.join()
        self.assertEqual(out, [py_fib(38)])
        self.assertTrue(e.closed)


class Errors(ParengTest):
    def check(self, exc, pattern, call):
        with self.assertRaisesRegex(exc, pattern):
            call()

    def test_bad_n(self):
        self.check(ValueError, r"0\.\.93", lambda: pareng.fib(-1))
        self.check(ValueError, r"0\.\.93", lambda: pareng.fib(94))
        self.check(ValueError, r"0\.\.93", lambda: pareng.fib(2**80))
        self.check(TypeError, "must be an int, not float", lambda: pareng.fib(3.0))
        self.check(TypeError, "must be an int, not str", lambda: pareng.fib("3"))
        self.check(TypeError, "must be an int, not bool", lambda: pareng.fib(True))
        self.check(TypeError, "must be an int, not NoneType", lambda: pareng.fib(None))
        self.check(TypeError, "argument", lambda: pareng.fib())
        self.check(TypeError, "argument", lambda: pareng.fib(3, 1, None, 4))

    def test_bad_grain(self):
        self.check(ValueError, "grain must be None or an int >= 0 .*, not -1",
                   lambda: pareng.fib(10, grain=-1))
        self.check(TypeError, "grain .* not bool", lambda: pareng.fib(10, grain=True))
        self.check(TypeError, "grain .* not float", lambda: pareng.fib(10, grain=1.5))
        self.check(TypeError, "grain .* not str", lambda: pareng.fib(10, grain="auto"))

    def test_bad_cutoff(self):
        for bad in ("x", "-1", -1, 10**9, "", "3.5", " 3", "AUTO"):
            with self.subTest(cutoff=bad):
                # libpareng's message (pareng_config_set_cutoff), after the argument
                self.check(ValueError, rf"^cutoff={re.escape(repr(bad))}: cutoff '.*': auto, "
                           "none .* or a depth from 1 to",
                           lambda: pareng.fib(10, cutoff=bad))
        self.check(ValueError, "cutoff='x'", lambda: pareng.map("fib", [1], cutoff="x"))
        self.check(ValueError, "cutoff=-1", lambda: pareng.Engine(cutoff=-1))
        self.check(TypeError, "cutoff must be .*, not bool", lambda: pareng.fib(10, cutoff=True))
        self.check(TypeError, "cutoff must be .*, not float", lambda: pareng.fib(10, cutoff=3.0))
        self.check(TypeError, "cutoff must be .*, not bool", lambda: pareng.Engine(cutoff=False))
        self.check(ValueError, "NUL", lambda: pareng.fib(10, cutoff="no\0ne"))
        self.check(TypeError, "positional", lambda: pareng.fib(10, 1, None, "none"))
        self.check(TypeError, "positional", lambda: pareng.Engine(1, "none"))
        self.check(TypeError, "cutoff", lambda: pareng.Engine(cores=1).fib(10, cutoff="none"))

    def test_grain_with_cutoff_refused(self):
        # fib's grain replaces the engine's cutoff: giving both is a mistake, not a choice.
        for cutoff in ("none", 3, "auto", 0):
            with self.subTest(cutoff=cutoff):
                self.check(ValueError, rf"grain=5 and cutoff={re.escape(repr(cutoff))} do not go "
                           "together: fib's grain replaces the engine's cutoff",
                           lambda: pareng.fib(20, grain=5, cutoff=cutoff))
                self.check(ValueError, "do not go together",
                           lambda: pareng.map("fib", [20], grain=5, cutoff=cutoff))
        with pareng.Engine(cores=1, cutoff=4) as e:
            self.check(ValueError, "grain=7 and this Engine's cutoff=4 do not go together",
                       lambda: e.fib(20, grain=7))
            self.check(ValueError, "do not go together", lambda: e.map("fib", [20], grain=7))
            self.assertEqual(e.fib(20), py_fib(20))
            self.assertEqual(e.fib(20, grain=0), py_fib(20), "grain 0 is no grain of fib's own")
        # a grain of 0 (or None) is no grain of fib's own: it goes with any cutoff
        self.assertEqual(pareng.fib(20, grain=0, cutoff="none"), py_fib(20))
        self.assertEqual(pareng.map("fib", [20, 3], grain=None, cutoff=2), [py_fib(20), 2])

    def test_bad_cores(self):
        self.check(ValueError, r"^cores=0: 0 workers: a worker count is 1 to 512$",
                   lambda: pareng.fib(10, cores=0))
        self.check(ValueError, r"^cores='0': 0 workers: a worker count is 1 to 512$",
                   lambda: pareng.fib(10, cores="0"))
        self.check(ValueError, r"cores=-2: a worker count is 1 to 512",
                   lambda: pareng.fib(10, cores=-2))
        self.check(ValueError, r"cores=513: .*1 to 512", lambda: pareng.fib(10, cores=513))
        self.check(ValueError, r"^cores='-2': CPU list '-2'", lambda: pareng.fib(10, cores="-2"))
        self.check(ValueError, r"1 to 512", lambda: pareng.fib(10, cores=2**70))
        self.check(TypeError, "not bool", lambda: pareng.fib(10, cores=True))
        self.check(TypeError, "not float", lambda: pareng.fib(10, cores=2.0))
        self.check(TypeError, "not list", lambda: pareng.fib(10, cores=[0, 1]))
        self.check(ValueError, "^cores='': empty CPU list", lambda: pareng.fib(10, cores=""))
        self.check(ValueError, "NUL", lambda: pareng.fib(10, cores="0\0"))
        self.check(ValueError, "^cores='nonsense': CPU list 'nonsense'",
                   lambda: pareng.fib(10, cores="nonsense"))
        self.check(ValueError, "cores='0-9999': CPU .* is not one this process may use",
                   lambda: pareng.fib(10, cores="0-9999"))
        self.check(ValueError, "cores='core:7-99': there is no core L#7",
                   lambda: pareng.fib(10, cores="core:7-99"))
        self.check(ValueError, "cores=0", lambda: pareng.Engine(cores=0))
        self.check(ValueError, "cores='x'", lambda: pareng.Engine("x"))
        self.check(TypeError, "not bool", lambda: pareng.Engine(False))
        self.check(ValueError, "cores=0", lambda: pareng.map("fib", [1], cores=0))
        # a long value keeps the reason at the end of the message (it was cut off at 256 bytes)
        self.check(ValueError, r"\u2026.*a worker count is 1 to 512$",
                   lambda: pareng.fib(10, cores="0" * 600))

    def test_cpu_list_grammar_is_the_librarys(self):
        # What the library refuses, with its message: nothing of the module's own.
        cases = {
            "package:0.core:1": "nested locations",
            "even": "CPU list 'even'",
            "0x3": "CPU list '0x3'",
            "~0": "CPU list '~0'",
            "S0:0-1": "CPU list 'S0:0-1'",
            "core:": "CPU list 'core:'",
            "0,,1": "empty item",
        }
        for cores, message in cases.items():
            with self.subTest(cores=cores):
                for call in (lambda: pareng.fib(10, cores=cores),
                             lambda: pareng.map("fib", iter([1]), cores=cores),
                             lambda: pareng.Engine(cores)):
                    with self.assertRaises(ValueError) as caught:
                        call()
                    self.assertTrue(str(caught.exception).startswith(f"cores={cores!r}: "),
                                    str(caught.exception))
                    self.assertIn(message, str(caught.exception))

    def test_bad_map(self):
        self.check(ValueError, "unknown workload 'fob'", lambda: pareng.map("fob", [1]))
        self.check(TypeError, "a function or a built-in workload", lambda: pareng.map(3, [1]))
        self.check(TypeError, "iterable of ints, not int", lambda: pareng.map("fib", 5))
        self.check(TypeError, "iterable of ints, not str", lambda: pareng.map("fib", "123"))
        self.check(TypeError, "iterable of ints, not NoneType",
                   lambda: pareng.map("fib", None))
        self.check(TypeError, r"items\[1\] must be an int, not str",
                   lambda: pareng.map("fib", [1, "2"]))
        self.check(TypeError, r"items\[0\] must be an int, not bool",
                   lambda: pareng.map("fib", [True]))
        self.check(TypeError, r"items\[0\] must be an int, not float",
                   lambda: pareng.map("fib", [1.0]))
        self.check(ValueError, r"items\[1\] must be in 0\.\.93", lambda: pareng.map("fib", [1, -1]))
        self.check(ValueError, r"items\[2\] must be in 0\.\.93",
                   lambda: pareng.map("fib", [1, 2, 94]))

        def failing():
            yield 1
            raise KeyError("from the generator")
        self.check(KeyError, "from the generator", lambda: pareng.map("fib", failing()))

    def test_signatures(self):
        # help() and inspect show what the calls take (text signatures in the docstrings)
        import inspect
        self.assertEqual(str(inspect.signature(pareng.fib)),
                         "(n, cores=None, grain=None, *, cutoff=None)")
        self.assertEqual(str(inspect.signature(pareng.map)),
                         "(fn, items, cores=None, grain=None, *, cutoff=None, shared_bytes=0)")
        self.assertEqual(str(inspect.signature(pareng.Engine)), "(cores=None, *, cutoff=None)")
        self.assertEqual(str(inspect.signature(pareng.Engine.fib)), "(self, /, n, grain=None)")
        self.assertEqual(str(inspect.signature(pareng.Engine.map)),
                         "(self, /, workload, items, grain=None)")
        for word in ("PARENG_NUM_WORKERS", "PARENG_CUTOFF", '"core:all"', '"none"'):
            self.assertIn(word, pareng.fib.__doc__)

    def test_map_huge_length_hint(self):
        # A length hint is only a hint: 2**62 items of 4 bytes once wrapped the array's size
        # to 0 bytes, and the items then overflowed the heap.
        class Liar:
            def __iter__(self):
                return iter([3, 4] * 1000)

            def __length_hint__(self):
                return 2**62
        self.assertEqual(pareng.map("fib", Liar(), cores=1), [2, 3] * 1000)
        self.check(ValueError, r"items\[94\] must be in 0\.\.93",
                   lambda: pareng.map("fib", range(2**62)))

    def test_bad_engine_calls(self):
        with pareng.Engine(cores=1) as e:
            self.check(ValueError, r"0\.\.93", lambda: e.fib(94))
            self.check(TypeError, "not bool", lambda: e.fib(False))
            self.check(ValueError, "grain", lambda: e.fib(3, grain=-5))
            self.check(ValueError, "unknown workload", lambda: e.map("fab", [1]))
            self.check(TypeError, r"items\[0\]", lambda: e.map("fib", [None]))
            self.check(TypeError, "iterable", lambda: e.map("fib", 3))
            self.check(AttributeError, "", lambda: setattr(e, "workers", 3))
            self.check(AttributeError, "", lambda: setattr(e, "worker_pids", ()))
            self.assertEqual(e.fib(20), py_fib(20), "still usable after bad arguments")


class Failures(ParengTest):
    def test_killed_worker(self):
        with pareng.Engine(cores=2) as e:
            victim = e.worker_pids[1]
            killer = threading.Thread(target=lambda: (time.sleep(0.1),
                                                      os.kill(victim, signal.SIGKILL)))
            killer.start()
            try:
                with self.assertRaises(OSError) as caught:
                    e.fib(60)  # hours of work: only the kill ends it
            finally:
                killer.join()
            self.assertEqual(caught.exception.errno, errno.ECHILD)
            self.assertIsInstance(caught.exception, ChildProcessError)
            self.assertRegex(str(caught.exception), rf"pid {victim}\) was killed by signal 9")
            # the engine is gone: further calls say so
            with self.assertRaises(OSError) as again:
                e.fib(10)
            self.assertEqual(again.exception.errno, errno.EPIPE)
            self.assertRegex(str(again.exception), "failed earlier")
        self.assertTrue(e.closed)

    def test_worker_killed_between_calls(self):
        e = pareng.Engine(cores=2)
        self.assertEqual(e.fib(25), py_fib(25))
        victim = e.worker_pids[0]
        os.kill(victim, signal.SIGKILL)
        # until it has exited (a zombie): the exit of a large process (AddressSanitizer's
        # shadow memory) takes longer than the next call on a loaded machine
        for _ in range(500):
            with open(f"/proc/{victim}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        with self.assertRaises(OSError) as caught:
            e.fib(25)
        self.assertEqual(caught.exception.errno, errno.ECHILD)
        e.close()

    def test_forked_child_cannot_use_the_engine(self):
        with pareng.Engine(cores=2) as e:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: report, never stop the parent's workers
                code = 0
                try:
                    e.fib(10)
                    code = 1
                except RuntimeError:
                    pass
                e.close()
                os.write(w, b"ok")
                os._exit(code)
            os.close(w)
            self.assertEqual(os.read(r, 2), b"ok")
            os.close(r)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertEqual(e.fib(30), py_fib(30), "the parent's engine still works")


class Exit(ParengTest):
    def check_clean(self, out):
        pid, *workers = (int(x) for x in out.split())
        self.assertTrue(workers)
        self.assertFalse(any(alive(p) for p in workers), "workers outlived the interpreter")
        self.assertEqual(segments(pid), [])

    def test_open_engine_at_exit(self):
        r = run_python("""
            import os, pareng
            e = pareng.Engine(cores=2)
            assert e.fib(20) == 6765
            keep = [pareng.Engine(cores=1)]
            print(os.getpid(), *e.worker_pids, *keep[0].worker_pids)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_clean(r.stdout)

    def test_exec_with_an_engine_open(self):
        # os.execv left the old image's workers alive (8 after 3 execs): they now die with it.
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import os, sys, pareng
            e = pareng.Engine(cores=2)
            assert e.fib(20) == 6765
            print(*e.worker_pids, flush=True)
            os.execv("/bin/sleep", ["sleep", "5"])
        """)], stdout=subprocess.PIPE, text=True)
        try:
            workers = [int(x) for x in p.stdout.readline().split()]
            self.assertEqual(len(workers), 2)
            deadline = time.monotonic() + 2
            while any(alive(w) for w in workers) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertFalse(any(alive(w) for w in workers), "workers outlived the exec")
        finally:
            p.kill()
            p.wait()

    def test_daemon_thread_running_at_exit(self):
        r = run_python("""
            import os, sys, threading, time, pareng
            e = pareng.Engine(cores=2)
            threading.Thread(target=lambda: e.fib(80), daemon=True).start()
            time.sleep(0.2)
            print(os.getpid(), *e.worker_pids, flush=True)
        """, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_clean(r.stdout)

    def test_engine_freed_by_its_daemon_thread_at_exit(self):
        # At exit, _close_all cancels the job and waits for the engine's lock with the GIL
        # released; the job's thread then drops the only other reference. Python's debug
        # allocator fills freed memory, so a use after free crashes instead of passing by luck.
        env = dict(os.environ)
        env.setdefault("PYTHONMALLOC", "debug")
        for _ in range(3):
            r = run_python("""
                import os, threading, time, pareng
                def work():
                    e = pareng.Engine(cores=2)
                    print(*e.worker_pids, flush=True)
                    try:
                        e.fib(80)
                    except OSError:
                        pass
                threading.Thread(target=work, daemon=True).start()
                time.sleep(0.3)
                print(os.getpid(), flush=True)
            """, timeout=30, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            workers, pid = r.stdout.split("\n", 1)
            self.check_clean(pid + " " + workers)

    def interrupt(self, code, workers=1):
        """Runs code in a fresh interpreter; once it prints "ready" and that many of its
        workers started, sends it SIGINT (^C) as a terminal would. Returns its output, its
        process id, the workers that ran when SIGINT was sent, and how long after SIGINT its
        next line came."""
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(30, p.kill)
        watchdog.start()
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            deadline = time.monotonic() + 10
            while len(children(p.pid)) < workers and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # well into the run
            started = children(p.pid)
            self.assertGreaterEqual(len(started), workers, "the workers did not start")
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            first = p.stdout.readline()
            latency = time.monotonic() - t0
            # not communicate(): it would miss what readline() already buffered
            out, err = p.stdout.read(), p.stderr.read()
            p.wait()
        finally:
            watchdog.cancel()
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(p.returncode, 0, err)
        return first + out, p.pid, started, latency

    def test_ctrl_c_interrupts_a_call(self):
        code = """
            import os, sys, time, pareng
            {setup}
            try:
                print("ready", flush=True)
                {call}
                print("finished?!")
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            {after}
            print("next", pareng.fib(25, cores=2))
        """
        cases = [
            ("", "pareng.fib(80, cores=2, cutoff='none')", ""),
            ("", "pareng.map('fib', [80, 79], cores=2)", ""),
            ("e = pareng.Engine(cores=2)", "e.fib(80)",
             "try:\n                e.fib(3)\n"
             "            except OSError as x:\n                print('then', x.errno, x)\n"
             "            e.close()"),
        ]
        for setup, call, after in cases:
            with self.subTest(call=call):
                out, pid, workers, latency = self.interrupt(
                    code.format(setup=setup, call=call, after=after))
                lines = out.splitlines()
                self.assertEqual(lines[0], "interrupted", out)
                self.assertLess(latency, 1.0, "KeyboardInterrupt came late")
                self.assertFalse(any(alive(w) for w in workers), "workers outlived the ^C")
                if setup:  # a cancelled Engine says so on its next call
                    self.assertRegex(lines[1], rf"^then {errno.EPIPE} .*failed earlier.*cancel")
                # a ^C is forgotten once it raised: the next call runs
                self.assertEqual(lines[-1], f"next {py_fib(25)}")
                self.assertEqual(segments(pid), [])

    def test_ctrl_c_cancels_calls_of_other_threads(self):
        # ^C cancels every run of the process: a call in another thread raises OSError
        # ECANCELED saying why, while the main thread gets its KeyboardInterrupt.
        out, pid, workers, latency = self.interrupt("""
            import errno, threading, pareng
            e = pareng.Engine(cores=1)
            got = []
            def other():
                try:
                    pareng.fib(80, cores=1)
                except OSError as x:
                    got.append(x)
            t = threading.Thread(target=other)
            t.start()
            try:
                print("ready", flush=True)
                e.fib(80)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            t.join()
            x, = got
            print("other", x.errno == errno.ECANCELED, x.strerror, flush=True)
            e.close()
        """, workers=2)
        self.assertLess(latency, 1.0)
        self.assertEqual(out.splitlines(), [
            "interrupted", "other True interrupted by SIGINT (^C): the run was cancelled"])
        self.assertEqual(len(workers), 2)
        self.assertFalse(any(alive(w) for w in workers))
        self.assertEqual(segments(pid), [])

    def test_ctrl_c_with_a_handler_of_the_program(self):
        # The program's own handler runs (it is chained, not replaced, also when set after
        # the module was imported); one that does not raise leaves OSError ECANCELED.
        out, pid, workers, latency = self.interrupt("""
            import errno, signal, pareng
            assert pareng.fib(20, cores=1) == 6765   # the library's handler is installed
            seen = []
            signal.signal(signal.SIGINT, lambda sig, frame: seen.append(sig))
            try:
                print("ready", flush=True)
                pareng.fib(80, cores=2)
            except OSError as x:
                print("cancelled", x.errno == errno.ECANCELED, seen == [signal.SIGINT],
                      flush=True)
        """)
        self.assertEqual(out.splitlines(), ["cancelled True True"])
        self.assertLess(latency, 1.0)
        self.assertFalse(any(alive(w) for w in workers))
        self.assertEqual(segments(pid), [])

    def test_ctrl_c_with_the_default_action_ends_the_process(self):
        # SIGINT at SIG_DFL (as the program chose): the process ends, its workers with it.
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
            import signal, pareng
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            print("ready", flush=True)
            pareng.fib(80, cores=2)
        """)], stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            while not children(p.pid):
                time.sleep(0.01)
            workers = children(p.pid)
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(timeout=10), -signal.SIGINT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
        deadline = time.monotonic() + 5
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(any(alive(w) for w in workers))


class Environment(ParengTest):
    """The PARENG_* variables, read by libpareng (pareng_config_default); an argument given
    overrides its variable."""

    def run_env(self, code, **env):
        r = run_python(code, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def test_num_workers(self):
        out = self.run_env("""
            import pareng
            def during(call):  # the workers of a pareng.fib while it runs
                import os, threading, time
                seen = set()
                def watch():
                    while not done:
                        for t in os.listdir(f"/proc/{os.getpid()}/task"):
                            with open(f"/proc/{os.getpid()}/task/{t}/children") as f:
                                seen.update(f.read().split())
                        time.sleep(0.001)
                done = False
                w = threading.Thread(target=watch)
                w.start()
                r = call()
                done = True
                w.join()
                return r, len(seen)
            with pareng.Engine() as e:
                print(e.workers, e.fib(30))
            with pareng.Engine(cores=2) as e:
                print(e.workers, e.fib(30))
            with pareng.Engine(cores="auto") as e:
                print(e.workers)
            with pareng.Engine("core:0") as e:
                print(e.workers)
            print(*during(lambda: pareng.fib(36, cutoff="none")))
            print(*during(lambda: pareng.fib(36, cores=1, cutoff="none")))
            print(pareng.map("fib", [30, 20]))
        """, PARENG_NUM_WORKERS="3")
        with pareng.Engine("core:all") as e:  # what "auto" gives: one worker per core
            auto = e.workers
        self.assertEqual(out, ["3", str(py_fib(30)), "2", str(py_fib(30)), str(auto), "1",
                               str(py_fib(36)), "3", str(py_fib(36)), "1",
                               f"[{py_fib(30)},", f"{py_fib(20)}]"])

    def test_places(self):
        out = self.run_env("""
            import pareng
            with pareng.Engine() as e:
                print(e.workers, e.fib(30))
            with pareng.Engine(cores=3) as e:
                print(e.workers)
        """, PARENG_PLACES="core:0", PARENG_NUM_WORKERS=None)
        self.assertEqual(out, ["1", str(py_fib(30)), "3"])

    def test_cutoff(self):
        out = self.run_env("""
            import pareng
            with pareng.Engine() as e:
                print(e.cutoff, e.fib(30))
            with pareng.Engine(cutoff="auto") as e:
                print(e.cutoff)
            with pareng.Engine(cutoff=4) as e:
                print(e.cutoff, e.fib(30))
            # fib's grain with a cutoff from the environment only: the grain decides
            print(pareng.fib(30, grain=10), pareng.map("fib", [30], grain=10))
        """, PARENG_CUTOFF="none")
        self.assertEqual(out, ["none", str(py_fib(30)), "auto", "4", str(py_fib(30)),
                               str(py_fib(30)), f"[{py_fib(30)}]"])

    def test_malformed_variables(self):
        # pareng_start refuses a configuration made from a malformed environment, explicit
        # arguments or not: every call says which variable, with libpareng's message.
        cases = {
            "PARENG_CUTOFF": ("sometimes", r"^PARENG_CUTOFF: cutoff 'sometimes': auto, none"),
            "PARENG_NUM_WORKERS": ("0", r"^PARENG_NUM_WORKERS='0': a worker count from 1"),
            "PARENG_PLACES": ("package:0.core:1", r"^PARENG_PLACES: .*nested locations"),
            "PARENG_DISPLAY_AFFINITY": ("perhaps", r"^PARENG_DISPLAY_AFFINITY='perhaps'"),
        }
        for variable, (value, message) in cases.items():
            with self.subTest(variable=variable):
                out = run_python("""
                    import pareng
                    for call in (lambda: pareng.fib(10), lambda: pareng.fib(10, cores=1),
                                 lambda: pareng.fib(10, cutoff="auto"),
                                 lambda: pareng.map("fib", [1]), lambda: pareng.Engine(),
                                 lambda: pareng.Engine(cores=1, cutoff=2)):
                        try:
                            call()
                            print("no error")
                        except ValueError as x:
                            print(x)
                """, env={variable: value})
                self.assertEqual(out.returncode, 0, out.stderr)
                lines = out.stdout.splitlines()
                self.assertEqual(len(lines), 6, out.stdout)
                for line in lines:
                    self.assertRegex(line, message)

    def test_places_outside_the_allowed_cpus(self):
        r = run_python("""
            import os, pareng
            try:
                pareng.fib(10)
            except ValueError as x:
                print(x)
            print(pareng.fib(10, cores=1))
        """, env={"PARENG_PLACES": f"{max(os.sched_getaffinity(0)) + 1}-4095"})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^PARENG_PLACES='\d+-4095': CPU \d+ is not one this "
                                   "process may use")
        self.assertEqual(lines[1], "55")


if __name__ == "__main__":
    unittest.main(verbosity=2)
