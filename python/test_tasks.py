"""Tests of the user's own Python functions on pareng's workers (pareng.map, starmap, run, spawn,
Pool, Executor), run by `meson test` with PYTHONPATH=<build>/python. Every result is compared
with serial Python. After every test no child process and no shared memory may be left.
"""
import asyncio
import concurrent.futures as cf
import gc
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import unittest

import test_pareng  # beside this file; it imports the built pareng (see there)
from test_pareng import ParengTest, alive, children, run_python

import pareng  # noqa: E402  (the built one: test_pareng dropped the sources' directory)

try:
    import numpy
except ImportError:
    numpy = None

CORES = 2


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def pfib(n):
    if n < 15:
        return fib(n)
    a = pareng.spawn(pfib, n - 1)
    b = pfib(n - 2)
    return a.result() + b


def add(a, b=0):
    return a + b


def square(x):
    return x * x


def identity(x):
    return x


class Count(int):
    """An int subclass: it must come back as itself."""


def spawn_many(k, order):
    """k spawns synced in the given order ("newest", "oldest", "shuffled", "none")."""
    tasks = [pareng.spawn(square, i) for i in range(k)]
    if order == "none":  # left to the end of the task: synced there
        return len(tasks)
    first = {"newest": tasks[::-1], "oldest": tasks,
             "shuffled": tasks[1::2] + tasks[0::2]}[order]
    for t in first:
        t.result()
    return [t.result() for t in tasks]


def nested_spawn_left(k):
    """Spawns whose handles are returned unsynced are synced at the task's end."""
    tasks = [pareng.spawn(square, i) for i in range(k)]
    return sum(t.done() for t in tasks)


def boom(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def raise_in_child(x):
    return pareng.spawn(boom, x).result()


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no")


def raise_unpicklable(x):
    raise Unpicklable(f"x={x}")


def return_generator(x):
    return (i for i in range(x))


def die(x, how):
    """Kills its worker when x == 5."""
    if x == 5:
        if how == "exit":
            os._exit(7)
        os.kill(os.getpid(), {"segv": signal.SIGSEGV, "kill": signal.SIGKILL}[how])
    return x


POOL = None


def use_pool():
    return POOL.map(square, [1])


def array_stats(a):
    return a.sum(), a * 2


def stop_at_3(x):
    """A StopIteration out of the user's function: the end of nothing but that call."""
    if x == 3:
        raise StopIteration
    return x


class ReadsBadly:
    """Pickled fine here; its unpickling raises ValueError in the worker."""

    def __reduce__(self):
        return (int, ("not a number",))


def chain(n):
    """n nested spawns, each waiting for the next."""
    return 0 if n == 0 else pareng.spawn(chain, n - 1).result() + 1


def fail_at_the_bottom(n):
    if n == 0:
        raise ValueError("the bottom")
    return pareng.spawn(fail_at_the_bottom, n - 1).result()


class CountsItsPickling:
    """A callable object whose state travels with it, counting how often this process pickles
    it; `state` bytes of it."""
    pickled = 0

    def __init__(self, state=0):
        self.state = bytes(state)

    def __reduce__(self):
        CountsItsPickling.pickled += 1
        return (CountsItsPickling, (len(self.state),))

    def add(self, x):
        return x + 1 + len(self.state)


def sleep_then(x):
    time.sleep(x)
    return x


def fail_at_3(x):
    if x == 3:
        raise ValueError("three")
    return x


CALLER = os.getpid()


def rebuilt_in_a_worker_only(x):
    if os.getpid() == CALLER:
        raise ValueError("not rebuilt in the caller")
    return x


class RebuiltInAWorkerOnly:
    def __reduce__(self):
        return (rebuilt_in_a_worker_only, (1,))


def result_the_caller_cannot_unpickle(x):
    return RebuiltInAWorkerOnly()


class Results(ParengTest):
    def test_map(self):
        cases = [[38 - 5 - k for k in range(6)], list(range(100)), range(3000), tuple(range(5)),
                 [], [7]]
        for items in cases:
            with self.subTest(items=items):
                self.assertEqual(pareng.map(fib_mod20, items, cores=CORES),
                                 [fib(x % 20) for x in items])
        self.assertEqual(pareng.map(fib_mod20, (x for x in range(50)), cores=CORES),
                         [fib(x % 20) for x in range(50)])

    def test_a_subclass_iterates_its_own_way(self):
        # A list or tuple subclass with its own __iter__ was sliced as a list: other items
        # than Python's map and multiprocessing's take, silently.
        class Hundreds(list):
            def __iter__(self):
                return (x * 100 for x in list.__iter__(self))

        class Letters(tuple):
            def __iter__(self):
                return iter("ab")

        want = [100, 200, 300]
        self.assertEqual(pareng.map(identity, Hundreds([1, 2, 3]), cores=CORES), want)
        self.assertEqual(pareng.map(identity, Letters((1, 2)), cores=CORES), ["a", "b"])
        with pareng.Pool(CORES) as pool:
            self.assertEqual(pool.map(identity, Hundreds([1, 2, 3])), want)
            self.assertEqual(list(pool.imap(identity, Hundreds([1, 2, 3]))), want)

    def test_map_a_million_tiny_items(self):
        self.assertEqual(pareng.map(square, range(10**6), cores=CORES),
                         [x * x for x in range(10**6)])

    def test_results_keep_their_types(self):
        # each block's values land in place, whatever their types
        items = list(range(-5000, 5000))
        odd = {100: True, 2000: 2**63 - 1, 3000: -2**63, 4000: 2**63, 5000: -2**64, 6000: 2.0,
               7000: Count(7), 8000: False}
        for at, v in odd.items():
            items[at] = v
        for pool in (None, pareng.Pool(CORES)):
            got = pool.map(identity, items) if pool else pareng.map(identity, items, cores=CORES)
            self.assertEqual(got, items)
            self.assertEqual([type(v) for v in got], [type(v) for v in items])
            if pool:
                self.assertEqual(list(pool.imap(identity, iter(items))), items)
                self.assertIs(pool.apply(identity, (True,)), True)
                pool.terminate()

    def test_starmap_and_run(self):
        pairs = [(i, i + 1) for i in range(100)]
        self.assertEqual(pareng.starmap(add, pairs, cores=CORES), [a + b for a, b in pairs])
        self.assertEqual(pareng.run(add, 2, b=3, cores=CORES), 5)
        self.assertEqual(pareng.run(pfib, 22, cores=CORES), fib(22))

    def test_spawn_any_order(self):
        for order in ("newest", "oldest", "shuffled"):
            with self.subTest(order=order):
                self.assertEqual(pareng.run(spawn_many, 40, order, cores=CORES),
                                 [i * i for i in range(40)])
        self.assertEqual(pareng.run(spawn_many, 40, "none", cores=CORES), 40)
        self.assertEqual(pareng.run(nested_spawn_left, 10, cores=CORES), 0)

    def test_spawn_outside_a_task_runs_now(self):
        self.assertEqual(pfib(20), fib(20))
        t = pareng.spawn(boom, 3)
        self.assertTrue(t.done())
        self.assertRaisesRegex(ValueError, "bad item 3", t.result)

    def test_printed_once(self):
        # stdout a pipe (block-buffered): what the caller buffered before the workers were
        # forked is not written again by them, and what tasks print is not lost at their end
        r = run_python("""
            import sys, pareng
            def say(x):
                sys.stdout.write(f"task {x}\\n")  # one write: workers print at once
            print("before")
            pareng.map(say, range(3), cores=2)
            with pareng.Pool(2) as pool:
                print("pool")
                pool.map(say, range(3, 5))
        """, env={"PYTHONUNBUFFERED": None})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(sorted(lines), sorted(["before", "pool"] +
                                               [f"task {i}" for i in range(5)]), r.stdout)

    def test_stealing_uses_every_worker(self):
        pids = set(pareng.map(worker_pid_slow, range(8), cores=CORES))
        self.assertEqual(len(pids), CORES)

    def test_the_programs_gc_freeze_stays(self):
        # pareng freezes the objects of the moment while it forks the workers, and thaws them
        # after, unless the program had frozen some itself
        self.assertEqual(gc.get_freeze_count(), 0)
        self.assertEqual(pareng.map(square, range(4), cores=CORES), [0, 1, 4, 9])
        self.assertEqual(gc.get_freeze_count(), 0)
        gc.freeze()
        try:
            frozen = gc.get_freeze_count()
            self.assertGreater(frozen, 0)
            self.assertEqual(pareng.map(square, range(4), cores=CORES), [0, 1, 4, 9])
            self.assertGreaterEqual(gc.get_freeze_count(), frozen)
            with pareng.Pool(CORES) as pool:
                self.assertEqual(pool.apply(square, (3,)), 9)
            self.assertGreaterEqual(gc.get_freeze_count(), frozen)
        finally:
            gc.unfreeze()

    def test_pool(self):
        with pareng.Pool(CORES) as pool:
            self.assertEqual(pool.workers, CORES)
            self.assertEqual(pool.map(fib, range(22)), [fib(n) for n in range(22)])
            self.assertEqual(pool.starmap(add, [(1, 2), (3, 4)]), [3, 7])
            self.assertEqual(list(pool.imap(square, range(1000))), [x * x for x in range(1000)])
            self.assertEqual(sorted(pool.imap_unordered(square, iter(range(100)))),
                             [x * x for x in range(100)])
            self.assertEqual(pool.apply(add, (1,), {"b": 5}), 6)
            results = [pool.apply_async(fib, (n,)) for n in range(15)]
            self.assertEqual([r.get(timeout=30) for r in results], [fib(n) for n in range(15)])
            self.assertTrue(all(r.ready() and r.successful() for r in results))
            got = []
            r = pool.map_async(square, range(10), callback=got.append)
            r.wait(30)
            self.assertEqual(r.get(), [x * x for x in range(10)])
            self.assertEqual(got, [[x * x for x in range(10)]])  # ready after its callback
            self.assertEqual(pool.starmap_async(add, [(1, 1)]).get(), [2])
            self.assertEqual(pool.apply(pfib, (20,)), fib(20))
        self.assertRaisesRegex(ValueError, "Pool not running", pool.map, fib, [1])

    def test_pool_close_join(self):
        pool = pareng.Pool(cores=CORES)
        r = pool.map_async(fib, [20, 21])
        pool.close()
        self.assertRaisesRegex(ValueError, "Pool not running", pool.apply, fib, (1,))
        pool.join()
        self.assertEqual(r.get(), [fib(20), fib(21)])

    def test_executor(self):
        with pareng.Executor(max_workers=CORES) as ex:
            self.assertIsInstance(ex, cf.Executor)
            futures = {ex.submit(fib, n): n for n in range(20)}
            done = {futures[f]: f.result() for f in cf.as_completed(futures, timeout=60)}
            self.assertEqual(done, {n: fib(n) for n in range(20)})
            f = ex.submit(add, 1, b=2)
            finished, _ = cf.wait([f], timeout=30)
            self.assertEqual(finished, {f})
            self.assertEqual(f.result(), 3)
            self.assertEqual(list(ex.map(add, [1, 2, 3], [10, 20, 30])), [11, 22, 33])

            async def gather():
                loop = asyncio.get_running_loop()
                return await asyncio.gather(*(loop.run_in_executor(ex, fib, n)
                                              for n in (10, 15, 20)))
            self.assertEqual(asyncio.run(gather()), [fib(10), fib(15), fib(20)])
        self.assertRaises(RuntimeError, ex.submit, fib, 1)


def fib_mod20(x):
    return fib(x % 20)


def worker_pid_slow(x):
    time.sleep(0.05)
    return os.getpid()


class Errors(ParengTest):
    def test_sizes_of_other_types(self):
        # a TypeError naming the type, as multiprocessing's and concurrent.futures' (theirs
        # from deeper down); an integer of another type (__index__) is one
        self.assertRaisesRegex(TypeError, "processes must be an integer, not float",
                               pareng.Pool, 3.0)
        self.assertRaisesRegex(TypeError, "max_workers must be an integer, not str",
                               pareng.Executor, "2")
        self.assertRaisesRegex(ValueError, "at least 1", pareng.Pool, 0)
        with pareng.Pool(Count(2)) as pool:
            self.assertEqual(pool.workers, 2)

    def test_exception_with_remote_traceback(self):
        with self.assertRaisesRegex(ValueError, "bad item 3") as cm:
            pareng.map(boom, range(10), cores=CORES)
        self.assertIsInstance(cm.exception.__cause__, pareng.RemoteTraceback)
        self.assertIn('in boom\n    raise ValueError(f"bad item {x}")', str(cm.exception.__cause__))
        with self.assertRaisesRegex(ValueError, "bad item 3"):
            pareng.run(raise_in_child, 3, cores=CORES)
        with pareng.Executor(CORES) as ex:
            f = ex.submit(boom, 3)
            self.assertIsInstance(f.exception(timeout=30), ValueError)
            self.assertIn("in boom", str(f.exception().__cause__))
        with pareng.Pool(CORES) as pool:
            errors = []
            r = pool.apply_async(boom, (3,), error_callback=errors.append)
            self.assertRaisesRegex(ValueError, "bad item 3", r.get, 30)
            self.assertFalse(r.successful())
            self.assertRaisesRegex(ValueError, "bad item 3", pool.map, boom, range(5))
            self.assertEqual(pool.map(boom, [1, 2]), [1, 2])  # the pool goes on

    def test_unpicklable_exception_and_result(self):
        with self.assertRaisesRegex(Exception, "Unpicklable: x=1") as cm:
            pareng.map(raise_unpicklable, [1], cores=CORES)
        self.assertIn("raise Unpicklable", str(cm.exception.__cause__))
        self.assertRaisesRegex(TypeError, "result of .*return_generator cannot be sent back",
                               pareng.map, return_generator, [3], cores=CORES)

    def test_a_result_the_caller_cannot_unpickle(self):
        # raised in the caller: its own traceback, no empty worker's one as its cause
        e = cm_exception(lambda: pareng.map(result_the_caller_cannot_unpickle, [1], cores=CORES))
        self.assertEqual(str(e), "not rebuilt in the caller")
        self.assertIsNone(e.__cause__)

    def test_functions_the_workers_cannot_find(self):
        self.assertRaisesRegex(pareng.FunctionNotFound, "cannot send .*<lambda>.* top level",
                               pareng.map, lambda x: x, [1], cores=CORES)

        def inner(x):
            return x
        self.assertRaisesRegex(pareng.FunctionNotFound, "inner", pareng.map, inner, [1],
                               cores=CORES)
        with pareng.Pool(CORES) as pool:
            global defined_later

            def defined_later(x):
                return x
            defined_later.__qualname__ = "defined_later"
            with self.assertRaisesRegex(pareng.FunctionNotFound,
                                        "__main__.defined_later.*from when the engine started"):
                pool.map(defined_later, [1, 2])
            self.assertEqual(pool.map(square, [3]), [9])
        del defined_later
        self.assertRaises(TypeError, pareng.map, 3, [1])

    def test_shared_bytes_out_of_range_refused(self):
        # where the C side took them modulo 2**64: -1 as 2**64 - 1, 2**64 + 1 as one byte
        for bad in (-1, 1 << 64, (1 << 64) + 1, 1 << 70):
            self.assertRaisesRegex(ValueError, "shared_bytes: a number of bytes from 0",
                                   pareng.map, square, [1], cores=CORES, shared_bytes=bad)
        for bad in (True, 1.5, "8M"):
            self.assertRaisesRegex(TypeError, "shared_bytes: a number of bytes", pareng.map,
                                   square, [1], cores=CORES, shared_bytes=bad)
        self.assertEqual(pareng.map(square, [3], cores=CORES, shared_bytes=1 << 24), [9])

    def test_an_item_that_cannot_be_sent_comes_in_its_place(self):
        # after the values before it, as its task's outcome (imap's got 3 or 4 of them and
        # raised), and after a failure of an item before it (a map raised the pickling error)
        items = [x if x != 50 else threading.Lock() for x in range(100)]
        with pareng.Pool(CORES) as pool:
            for source in (items, iter(items)):
                got = []
                with self.assertRaisesRegex(TypeError, "pickle"):
                    for value in pool.imap(square, source):
                        got.append(value)
                self.assertEqual(got, [x * x for x in range(50)])
            self.assertRaisesRegex(ValueError, "three", pool.map, fail_at_3, items)
        self.assertRaisesRegex(ValueError, "three", pareng.map, fail_at_3, items, cores=CORES)

    def test_an_item_that_cannot_be_sent_fails_the_map(self):
        # the map's other items are not returned as if that one had no result
        self.assertRaisesRegex(AttributeError, "pickle", pareng.map, square,
                               [1, 2, lambda: 3], cores=CORES)
        self.assertRaisesRegex(AttributeError, "pickle", pareng.map, square, [lambda: 3],
                               cores=CORES)
        self.assertRaisesRegex(AttributeError, "pickle", pareng.run, square, lambda: 1,
                               cores=CORES)
        self.assertRaisesRegex(MemoryError, "shared_bytes", pareng.map, len,
                               [b"x", bytes(2 << 20)], cores=CORES, shared_bytes=1 << 20)
        with pareng.Pool(CORES) as pool:
            self.assertRaisesRegex(AttributeError, "pickle", pool.map, square, [1, lambda: 3])

    def test_stop_iteration_is_an_exception_like_any_other(self):
        # map's own loop would take it for the end of the block and drop the item
        self.assertRaises(StopIteration, pareng.map, stop_at_3, range(10), cores=CORES)
        self.assertRaises(StopIteration, pareng.run, stop_at_3, 3, cores=CORES)
        self.assertEqual(pareng.map(stop_at_3, [1, 2, 4]), [1, 2, 4])
        with pareng.Pool(CORES) as pool:
            self.assertRaises(StopIteration, pool.map, stop_at_3, range(10))
            # a generator's rule (PEP 479): not a silent end
            self.assertRaises(RuntimeError, list, pool.imap(stop_at_3, range(10)))
        with pareng.Executor(CORES) as ex:
            self.assertRaises(StopIteration, ex.submit(stop_at_3, 3).result, 30)

    def test_an_argument_the_worker_cannot_unpickle(self):
        with self.assertRaisesRegex(ValueError, "not a number") as cm:
            pareng.map(identity, [ReadsBadly()], cores=CORES)
        self.assertNotIsInstance(cm.exception, pareng.FunctionNotFound)
        self.assertIn("pickle.loads", str(cm.exception.__cause__))

    def test_a_failure_through_serial_spawns_is_raised_at_once(self):
        # outside a task a spawn runs at once: its exception passes through as in plain
        # Python, not formatted again at each level (500 levels took minutes)
        started = time.monotonic()
        self.assertRaisesRegex(ValueError, "the bottom", fail_at_the_bottom, 400)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(pareng.run(chain, 100, cores=CORES), 100)

    def test_spawns_nested_too_deep_raise_recursion_error(self):
        # as plain Python does at its limit: it was a RuntimeError of "pareng's own code",
        # with hundreds of lines of tracebacks on the workers' stderr
        r = run_python("""
            import pareng
            def chain(n):
                return 0 if n == 0 else pareng.spawn(chain, n - 1).result() + 1
            try:
                pareng.run(chain, 2000, cores=2)
            except RecursionError:
                print("RecursionError")
            print(pareng.run(chain, 50, cores=2))
        """)
        self.assertEqual(r.stdout.split(), ["RecursionError", "50"], r.stderr)
        self.assertEqual(r.stderr, "")

    def test_a_crash_mid_map(self):
        for how, why in (("exit", "exited unexpectedly with status 7"),
                         ("segv", r"was killed by signal 11 \(SIGSEGV\)"),
                         ("kill", r"was killed by signal 9 \(SIGKILL\)")):
            with self.subTest(how=how):
                with self.assertRaisesRegex(pareng.WorkerCrashed, rf"worker \d \(pid \d+\) {why}"):
                    pareng.starmap(die, [(x, how) for x in range(10)], cores=CORES)
                with pareng.Pool(CORES) as pool:
                    before = set(pool.map(worker_pid_slow, range(4)))
                    self.assertRaisesRegex(pareng.WorkerCrashed, why, pool.starmap, die,
                                           [(x, how) for x in range(10)])
                    self.assertFalse(any(alive(p) for p in before))
                    # usable again, on new workers
                    self.assertEqual(pool.map(fib, range(15)), [fib(n) for n in range(15)])
                    self.assertTrue(set(pool.map(worker_pid_slow, range(4))).isdisjoint(before))

    def test_async_results_of_a_failed_job(self):
        # wait() returns and successful() says False, as multiprocessing's
        with pareng.Pool(CORES) as pool:
            r = pool.apply_async(die, (5, "exit"))
            r.wait(30)
            self.assertTrue(r.ready())
            self.assertFalse(r.successful())
            self.assertRaises(pareng.WorkerCrashed, r.get)
        # terminate cancels what runs: CancelledError, not a KeyboardInterrupt nobody made
        pool = pareng.Pool(CORES)
        r = pool.map_async(sleep_then, [2, 2])
        time.sleep(0.2)
        pool.terminate()
        self.assertRaisesRegex(cf.CancelledError, "terminated", r.get, 5)

    def test_get_with_a_timeout_and_a_callback(self):
        # a callback does not delay a get's TimeoutError
        with pareng.Pool(CORES) as pool:
            r = pool.apply_async(sleep_then, (3,), callback=lambda v: None)
            time.sleep(0.1)
            started = time.monotonic()
            self.assertRaises(multiprocessing.TimeoutError, r.get, 0.5)
            self.assertLess(time.monotonic() - started, 2)
            self.assertRaises(TimeoutError, r.get, 0.1)  # the built-in one too
            self.assertIs(pareng.TimeoutError, type(cm_exception(r.get, 0.1)))
            self.assertEqual(r.get(30), 3)

    def test_imap_of_an_iterator_outlives_its_pool_and_close(self):
        # as multiprocessing's feeder: what was asked before close() is done
        items = (x for x in range(1000))
        self.assertEqual(list(pareng.Pool(CORES).imap(square, items)),
                         [x * x for x in range(1000)])
        pool = pareng.Pool(CORES)
        it = pool.imap(square, iter(range(300)))
        self.assertEqual(next(it), 0)
        pool.close()
        pool.join()
        self.assertEqual(list(it), [x * x for x in range(1, 300)])

    def test_a_maps_function_travels_once(self):
        # a bound method's object went with each of the map's blocks (128 here): 6 times
        # multiprocessing's time for one of 20 MiB. It is sent once a map now (and pickled once
        # more before, to refuse what the workers could not find), and its memory given back:
        # a hundred maps of it fit in 1 MiB.
        with pareng.Pool(CORES, shared_bytes=1 << 20) as pool:
            f = CountsItsPickling(300 << 10)
            CountsItsPickling.pickled = 0
            self.assertEqual(pool.map(f.add, range(1000)), [x + 1 + (300 << 10) for x in range(1000)])
            self.assertEqual(CountsItsPickling.pickled, 2)  # checked, then sent
            for _ in range(100):
                self.assertEqual(pool.map(f.add, range(300)), [x + 1 + (300 << 10) for x in range(300)])
        self.assertEqual(pareng.map(CountsItsPickling().add, range(500), cores=CORES),
                         [x + 1 for x in range(500)])

    def test_close_does_not_wait_for_an_imaps_iterator(self):
        # close() returns at once, as multiprocessing's, though the items wait on a queue
        import queue
        q = queue.Queue()
        for x in range(50):
            q.put(x)
        pool = pareng.Pool(CORES)
        it = pool.imap(square, iter(q.get, None))
        self.assertEqual(next(it), 0)
        started = time.monotonic()
        pool.close()
        self.assertLess(time.monotonic() - started, 1)
        q.put(None)
        self.assertEqual(list(it), [x * x for x in range(1, 50)])
        pool.join()

    def test_an_imaps_iterator_that_fails(self):
        # its exception comes after the results of the items before it, also when close()
        # read them: not a shorter list and no error
        def items():
            yield from range(300)
            raise ValueError("the source failed")
        for close_early in (False, True):
            with self.subTest(close_early=close_early):
                pool = pareng.Pool(CORES)
                it = pool.imap(square, items())
                got = [next(it)]
                if close_early:
                    pool.close()
                with self.assertRaisesRegex(ValueError, "the source failed"):
                    for value in it:
                        got.append(value)
                self.assertEqual(got, [x * x for x in range(300)])
                pool.terminate()

    def test_executor_map_left_early_cancels_the_rest(self):
        with pareng.Executor(CORES) as ex:
            for _ in ex.map(sleep_then, [0.2] * 60):
                break
            started = time.monotonic()
            self.assertEqual(ex.submit(square, 3).result(30), 9)
            # those handed over ahead run on (0.2 s each); not the other 50 (5 s)
            self.assertLess(time.monotonic() - started, 2.5)

    def test_executor_finishes_its_work_at_exit(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "written")
            r = run_python(f"""
                import time, pareng
                def write(path):
                    time.sleep(0.5)
                    open(path, "w").write("done")
                ex = pareng.Executor(2)
                ex.submit(write, {out + '_1'!r})
                ex.shutdown(wait=False)
                pareng.Executor(2).submit(write, {out + '_2'!r})  # never shut down
            """)
            self.assertEqual(r.returncode, 0, r.stderr)
            for k in (1, 2):
                with open(f"{out}_{k}") as f:
                    self.assertEqual(f.read(), "done")

    def test_ctrl_c_while_a_pool_starts(self):
        # the engine the driver's thread was starting is stopped, not left running
        r = run_python("""
            import os, signal, threading, time, pareng
            start = pareng._start
            pareng._start = lambda *a: (time.sleep(0.5), start(*a))[1]  # a slow start
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            try:
                pareng.Pool(2)
            except KeyboardInterrupt:
                print("interrupted")
            time.sleep(1)
            print([c for t in os.listdir("/proc/self/task")
                   for c in open(f"/proc/self/task/{t}/children").read().split()])
        """)
        self.assertEqual(r.stdout.split("\n")[:2], ["interrupted", "[]"], r.stderr)

    def test_a_task_cannot_use_the_callers_pool(self):
        global POOL
        with pareng.Pool(CORES) as pool:
            POOL = pool  # known to the workers pareng.run forks next
            self.assertRaisesRegex(RuntimeError, "works in the process that made it",
                                   pareng.run, use_pool, cores=CORES)
            self.assertRaisesRegex(TypeError, "cannot be sent", pool.apply, len, (pool,))
            # a cancel that came between runs does not cancel the next one
            pool._driver.cancel_run()
            self.assertEqual(pool.map(square, range(5)), [x * x for x in range(5)])

    def test_collected_pool_stops_its_workers(self):
        pool = pareng.Pool(CORES)
        pids = pool.map(worker_pid_slow, range(4))
        del pool
        gc.collect()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(any(alive(p) for p in pids))

    def test_executor_shutdown_cancels_what_has_not_started(self):
        ex = pareng.Executor(CORES)
        first = ex.submit(time.sleep, 0.5)
        time.sleep(0.2)  # running
        later = [ex.submit(square, i) for i in range(50)]
        ex.shutdown(wait=True, cancel_futures=True)
        self.assertIsNone(first.result())
        # those handed to the workers ahead (a few per worker) run; the rest is cancelled
        ran = [(i, f.result()) for i, f in enumerate(later) if not f.cancelled()]
        self.assertEqual(ran, [(i, i * i) for i, _ in ran])
        self.assertLessEqual(len(ran), pareng.POSTED_PER_WORKER * CORES)

    def test_shared_memory_is_given_back(self):
        # 1 MiB of shared memory serves any number of maps and nested spawns if every
        # message is freed; one that cannot fit is refused, and the pool goes on
        with pareng.Pool(CORES, shared_bytes=1 << 20) as pool:
            for _ in range(100):
                self.assertEqual(pool.map(square, range(2000)), [x * x for x in range(2000)])
                self.assertEqual(pool.apply(pfib, (17,)), fib(17))
            pids = set(pool.map(worker_pid_slow, range(4)))
            self.assertRaisesRegex(MemoryError, "shared_bytes", pool.map, len, [bytes(2 << 20)])
            self.assertEqual(pool.map(square, [3]), [9])
            # only that map failed: the workers go on
            self.assertEqual(set(pool.map(worker_pid_slow, range(4))), pids)

    def test_a_task_cannot_start_an_engine(self):
        self.assertRaisesRegex(RuntimeError, "cannot start an engine of its own",
                               pareng.run, pareng.map, square, [1], cores=CORES)

    def test_ctrl_c_with_a_handler_that_does_not_raise(self):
        # OSError ECANCELED, as docs/python.md says, where a Pool raised KeyboardInterrupt
        out = run_python("""
            import errno, os, signal, threading, time
            import pareng
            def sleep_then(x):
                time.sleep(x)
                return x
            caught = []
            signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
            for name, call in (("map", lambda: pareng.map(sleep_then, [3, 3], cores=2)),
                               ("pool", lambda: pareng.Pool(2).map(sleep_then, [3, 3]))):
                threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
                try:
                    call()
                    print(name, "finished?!")
                except OSError as e:
                    print(name, errno.errorcode[e.errno], len(caught))
        """)
        self.assertEqual(out.stdout.splitlines(), ["map ECANCELED 1", "pool ECANCELED 2"],
                         out.stderr)

    def test_ctrl_c(self):
        cases = ["pareng.map(fib, [40, 40], cores=2)",
                 "pool.map(fib, [40, 40])",
                 "list(pool.imap_unordered(fib, [40, 40]))",
                 "ex.submit(fib, 40).result()"]
        for call in cases:
            with self.subTest(call=call):
                out, pid, workers, latency = test_pareng.Exit.interrupt(self, f"""
                    import pareng
                    def fib(n):
                        return n if n < 2 else fib(n - 1) + fib(n - 2)
                    pool = pareng.Pool(2)
                    ex = pareng.Executor(2)
                    try:
                        print("ready", flush=True)
                        {call}
                        print("finished?!")
                    except KeyboardInterrupt:
                        print("interrupted", flush=True)
                    print("next", {call.replace("40", "20")}, flush=True)
                    pool.terminate()
                    ex.shutdown()
                """, workers=2)
                lines = out.splitlines()
                self.assertEqual(lines[0], "interrupted", out)
                self.assertLess(latency, 1.0, "KeyboardInterrupt came late")
                self.assertEqual(lines[1], f"next {[fib(20)] * 2 if 'map' in call else fib(20)}")


def gated(item):
    """item = (x, gate): x at once when gate is None, else once the file gate exists (or
    "timed out" after 30 s: then a test waited for a result that only streaming gives)."""
    x, gate = item
    deadline = time.monotonic() + 30
    while gate is not None and not os.path.exists(gate):
        if time.monotonic() > deadline:
            return "timed out"
        time.sleep(0.002)
    return x


def die_at_5(x):
    return die(x, "kill")


def cm_exception(call, *args):
    """The exception call(*args) raises."""
    try:
        call(*args)
    except BaseException as e:
        return e
    raise AssertionError(f"{call} raised nothing")


class Gated(ParengTest):
    """Tests whose calls may wait (gated) for a file the test creates."""

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.gate = os.path.join(tmp.name, "gate")

    def open_gate(self):
        with open(self.gate, "w"):
            pass


class Streaming(Gated):
    """Each result as soon as its item is done: an item that waits for a file the test
    creates only after it got the others' results must not hold them back."""

    def items(self, slow, n):
        return [(x, self.gate if x == slow else None) for x in range(n)]

    def test_imap_unordered_yields_in_completion_order(self):
        with pareng.Pool(CORES) as pool:
            it = pool.imap_unordered(gated, self.items(0, 9))
            fast = [next(it) for _ in range(8)]  # while item 0 waits
            self.assertEqual(sorted(fast), list(range(1, 9)))
            self.open_gate()
            self.assertEqual(list(it), [0])
            # an iterator (read in waves) streams too
            os.unlink(self.gate)
            it = pool.imap_unordered(gated, iter(self.items(0, 30)))
            fast = [next(it) for _ in range(29)]
            self.assertEqual(sorted(fast), list(range(1, 30)))
            self.open_gate()
            self.assertEqual(list(it), [0])

    def test_imap_yields_each_item_once_those_before_it_are_done(self):
        with pareng.Pool(CORES) as pool:
            it = pool.imap(gated, self.items(4, 9))
            self.assertEqual([next(it) for _ in range(4)], [0, 1, 2, 3])  # while 4 waits
            self.open_gate()
            self.assertEqual(list(it), [4, 5, 6, 7, 8])

    def test_a_quick_future_is_done_while_a_long_one_runs(self):
        with pareng.Executor(CORES) as ex:
            slow = ex.submit(gated, (0, self.gate))
            time.sleep(0.05)  # running: the quick one comes while it is
            quick = ex.submit(square, 3)
            done, running = cf.wait([slow, quick], timeout=30, return_when=cf.FIRST_COMPLETED)
            self.assertEqual((done, running), ({quick}, {slow}))
            self.assertEqual(next(cf.as_completed([slow, quick], timeout=30)), quick)
            self.assertEqual(quick.result(), 9)
            self.open_gate()
            self.assertEqual(slow.result(timeout=30), 0)

    def test_apply_async_is_ready_on_its_own(self):
        with pareng.Pool(CORES) as pool:
            slow = pool.apply_async(gated, ((0, self.gate),))
            time.sleep(0.05)
            got = []
            quick = pool.apply_async(square, (4,), callback=got.append)
            self.assertEqual(quick.get(timeout=30), 16)
            self.assertEqual(got, [16])  # its callback too
            self.assertFalse(slow.ready())
            self.open_gate()
            self.assertEqual(slow.get(timeout=30), 0)

    def test_an_exception_mid_stream(self):
        with pareng.Pool(CORES) as pool:
            it = pool.imap(boom, range(10))
            self.assertEqual([next(it) for _ in range(3)], [0, 1, 2])
            with self.assertRaisesRegex(ValueError, "bad item 3") as cm:
                next(it)
            self.assertIn("in boom", str(cm.exception.__cause__))
            got = []
            with self.assertRaisesRegex(ValueError, "bad item 3"):
                for x in pool.imap_unordered(boom, range(10)):
                    got.append(x)
            self.assertLessEqual(set(got), set(range(10)) - {3})
            with pareng.Executor(CORES) as ex:
                it = ex.map(boom, range(10))
                self.assertEqual([next(it) for _ in range(3)], [0, 1, 2])
                self.assertRaisesRegex(ValueError, "bad item 3", next, it)

    def test_a_crash_mid_stream(self):
        with pareng.Pool(CORES) as pool:
            with self.assertRaisesRegex(pareng.WorkerCrashed, r"killed by signal 9"):
                for _ in pool.imap_unordered(die_at_5, range(10)):
                    pass
            self.assertEqual(list(pool.imap(square, range(300))), [x * x for x in range(300)])
        with pareng.Executor(CORES) as ex:
            futures = [ex.submit(die_at_5, x) for x in (5, 1)]
            self.assertIsInstance(futures[0].exception(timeout=30), pareng.WorkerCrashed)
            self.assertEqual(ex.submit(square, 5).result(timeout=30), 25)


class CallbackLog:
    """A callback that keeps its arguments, in the order of its calls, after a pause; and
    how many of its calls ran at once, at most."""

    def __init__(self, pause=0.0):
        self.got = []
        self.most_at_once = 0
        self._pause = pause
        self._running = 0
        self._lock = threading.Lock()

    def __call__(self, value):
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        time.sleep(self._pause)
        self.got.append(value)
        with self._lock:
            self._running -= 1


def raise_in_callback(value):
    raise RuntimeError(f"callback failed on {value}")


class Callbacks(Gated):
    """A Pool's callbacks run one at a time, in one thread of the pool's, as multiprocessing's
    result handler runs them; a result is ready once its callback ran, and join() returns
    once every callback ran. Each test fails on a module that ran each callback in a thread
    of its own."""

    def test_join_waits_for_every_callback(self):
        log, mapped = CallbackLog(pause=0.05), CallbackLog()
        pool = pareng.Pool(CORES)
        for x in range(10):
            pool.apply_async(boom, (x,), callback=log, error_callback=log)
        pool.map_async(square, range(5), callback=mapped)
        pool.close()
        pool.join()
        self.assertEqual(sorted(map(str, log.got)),
                         sorted([str(x) for x in range(10) if x != 3] + ["bad item 3"]))
        self.assertEqual(log.most_at_once, 1)
        self.assertEqual(mapped.got, [[x * x for x in range(5)]])

    def test_terminate_waits_for_the_error_callbacks(self):
        log = CallbackLog(pause=0.05)
        pool = pareng.Pool(CORES)
        for x in range(CORES + 2):  # running, and queued
            pool.apply_async(gated, ((x, self.gate),), error_callback=log)
        time.sleep(0.05)
        pool.terminate()
        self.assertEqual([type(e) for e in log.got], [cf.CancelledError] * (CORES + 2))

    def test_callbacks_before_the_exit(self):
        r = run_python("""
            import pareng, time
            def half(x):
                if x == 3:
                    raise ValueError(x)
                return x / 2
            def say(what):
                time.sleep(0.05)
                print(what)
            pool = pareng.Pool(2)
            for x in range(6):
                pool.apply_async(half, (x,), callback=lambda v: say(f"value {v}"),
                                 error_callback=lambda e: say(f"error {e}"))
            pool.close()
            pool.join()
            """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.splitlines()),
                         ["error 3"] + [f"value {x / 2}" for x in (0, 1, 2, 4, 5)])

    def test_a_result_is_ready_once_its_callback_ran(self):
        log = CallbackLog(pause=0.1)
        with pareng.Pool(CORES) as pool:
            self.assertEqual(pool.apply_async(square, (3,), callback=log).get(timeout=30), 9)
            self.assertEqual(log.got, [9])
            r = pool.apply_async(boom, (3,), error_callback=log)
            r.wait(30)
            self.assertEqual(len(log.got), 2)
            self.assertFalse(r.successful())
            r = pool.apply_async(square, (4,), callback=log)
            deadline = time.monotonic() + 30
            while not r.ready() and time.monotonic() < deadline:
                time.sleep(0.002)
            self.assertEqual(log.got[2:], [16])
            self.assertTrue(r.successful())
            self.assertEqual(pool.map_async(square, [], callback=log).get(timeout=30), [])
            self.assertEqual(log.got[3:], [[]])

    def test_one_thread_runs_them_one_at_a_time(self):
        threads = threading.active_count()
        log = CallbackLog(pause=0.001)
        with pareng.Pool(CORES) as pool:
            results = [pool.apply_async(gated, ((x, self.gate),), callback=log)
                       for x in range(CORES)]
            results += [pool.apply_async(square, (x,), callback=log) for x in range(300)]
            # pending (the gated calls hold the workers): the pool's driver and at most its
            # callback thread, not a thread a result
            self.assertLessEqual(threading.active_count(), threads + 2)
            self.open_gate()
            for r in results:
                r.get(timeout=30)
        self.assertEqual(sorted(log.got), sorted(list(range(CORES)) +
                                                 [x * x for x in range(300)]))
        self.assertEqual(log.most_at_once, 1)

    def test_a_callback_that_raises_is_logged(self):
        log = CallbackLog()
        with pareng.Pool(CORES) as pool, self.assertLogs("pareng", "ERROR") as logged:
            r = pool.apply_async(square, (2,), callback=raise_in_callback)
            self.assertEqual(r.get(timeout=30), 4)
            r = pool.apply_async(boom, (3,), error_callback=raise_in_callback)
            r.wait(30)
            self.assertTrue(r.ready())
            self.assertEqual(pool.apply_async(square, (3,), callback=log).get(timeout=30), 9)
            self.assertEqual(log.got, [9])  # the thread goes on
        self.assertEqual(len(logged.records), 2)
        self.assertIn("RuntimeError: callback failed on 4", logged.output[0])
        self.assertIn("RuntimeError: callback failed on bad item 3", logged.output[1])

    def test_executor_done_callbacks(self):
        # as concurrent.futures specifies: each once, a raising one logged and ignored; all
        # run when shutdown(wait=True) returns
        log = CallbackLog(pause=0.01)
        with self.assertLogs("concurrent.futures", "ERROR") as logged:
            with pareng.Executor(CORES) as ex:
                futures = [ex.submit(square, x) for x in range(10)]
                futures[0].add_done_callback(raise_in_callback)
                for f in futures:
                    f.add_done_callback(log)
        self.assertEqual(sorted(f.result() for f in log.got), [x * x for x in range(10)])
        self.assertEqual(len(logged.records), 1)


@unittest.skipIf(numpy is None, "NumPy is not installed (Debian: python3-numpy)")
class NumPy(ParengTest):
    def test_arrays_in_and_out(self):
        arrays = [numpy.arange(n, dtype=numpy.float64) for n in (0, 10, 1 << 20)]
        got = pareng.map(array_stats, arrays, cores=CORES)
        for a, (total, doubled) in zip(arrays, got):
            self.assertEqual(total, a.sum())
            self.assertTrue(numpy.array_equal(doubled, a * 2))
            doubled += 1  # writable, and the caller's own
        with pareng.Pool(CORES) as pool:
            big = numpy.ones((512, 1024), dtype=numpy.int32)
            total, doubled = pool.apply(array_stats, (big,))
            self.assertEqual(total, big.size)
            self.assertEqual(doubled.shape, big.shape)
            self.assertTrue((doubled == 2).all())

    def test_large_buffers_travel_out_of_band(self):
        big = numpy.zeros(1 << 20)
        segments = pareng._dumps(big)
        self.assertEqual(len(segments), 2)
        self.assertEqual(segments[1].nbytes, big.nbytes)
        self.assertLess(len(segments[0]), 1024)


class Installed(ParengTest):
    def test_help_explains(self):
        r = run_python("import pareng; help(pareng.map); help(pareng.Pool); "
                       "help(pareng.spawn)", env={"PAGER": "cat"})
        self.assertEqual(r.returncode, 0, r.stderr)
        for text in ("[fn(x) for x in items]", "multiprocessing.Pool's interface",
                     "pushes\n    fn(*args, **kwargs)"):
            self.assertIn(text, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
