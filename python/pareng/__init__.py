"""pareng: a work-stealing engine whose workers are processes, from Python.

Your own functions on pareng's workers, as multiprocessing does it but without its pipes,
chunk sizes and hangs:

    import pareng

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    pareng.map(fib, [38, 37, 36, 35, 34, 33])     # uneven items balanced by stealing

    def pfib(n):                                  # fork-join inside a task
        if n < 25:
            return fib(n)
        a = pareng.spawn(pfib, n - 1)
        return pfib(n - 2) + a.result()

    pareng.run(pfib, 32)
    with pareng.Pool() as pool: ...               # multiprocessing.Pool's interface
    with pareng.Executor() as ex: ...             # a concurrent.futures.Executor

The workers are forked from this process when an engine starts (pareng.map and pareng.run
start one per call; a Pool or an Executor keeps one): they know the functions and modules
that existed then. Functions travel by reference (module and name), as pickle sends them;
arguments and results are pickled (protocol 5) into shared memory, large buffers (NumPy
arrays) out of band. pareng.fib, pareng.map("fib", ...) and pareng.Engine run the built-in C
fib workload. docs/python.md says more, with the differences from multiprocessing.
"""

import atexit
import builtins
import concurrent.futures
import gc
import itertools
import os
import pickle
import re
import sys
import threading
import traceback
import weakref
from array import array

from . import _pareng
from ._pareng import FIB_MAX, MAX_WORKERS, WORKLOADS, Engine, WorkerCrashed, __version__, fib

__all__ = ["map", "starmap", "run", "spawn", "Task", "Pool", "AsyncResult", "Executor",
           "WorkerCrashed", "FunctionNotFound", "RemoteTraceback", "fib", "Engine", "FIB_MAX",
           "MAX_WORKERS", "WORKLOADS", "__version__"]

# Blocks of a map per worker: enough for stealing to even out uneven items, few enough that
# the per-block cost (a task, a pickle, a message) stays small next to a million tiny items.
BLOCKS_PER_WORKER = 64
# Buffers at least this large travel out of band (their own segment of shared memory).
OUT_OF_BAND_BYTES = 1 << 16
# imap's first wave of items per worker, and its largest wave: results come back a run at a
# time, and the waves grow so that the first come soon and the cost of a run fades.
IMAP_FIRST_WAVE = 4
IMAP_LARGEST_WAVE = 1 << 16


class FunctionNotFound(LookupError):
    """A function that pareng's workers cannot find: a lambda, a nested function, or one
    defined (or a module imported) after the engine started. Functions travel by reference,
    as pickle sends them; the workers are copies of this process from when the engine
    started."""


class RemoteTraceback(Exception):
    """The __cause__ of an exception re-raised from a task: the worker's traceback."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return self.tb


def _shared_bytes_default():
    """Shared memory of an engine: the machine's RAM (address space, taken as touched)."""
    try:
        return min(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), 1 << 40)
    except (ValueError, OSError):
        return 1 << 32


# ---- messages: pickles in shared memory ------------------------------------------------------

def _dumps(obj):
    """obj pickled: [data, out-of-band buffers...]."""
    buffers = []

    def out_of_band(buf):
        try:
            raw = buf.raw()
        except BufferError:  # not contiguous: in band
            return True
        if raw.nbytes < OUT_OF_BAND_BYTES:
            return True
        buffers.append(raw)
        return False

    return [pickle.dumps(obj, protocol=5, buffer_callback=out_of_band)] + buffers


def _put(engine, obj):
    return engine.put(_dumps(obj))


def _take(engine, address):
    """The object of a message, copied out of shared memory; the message freed."""
    segments = engine.get(address)
    try:
        return pickle.loads(segments[0], buffers=[bytearray(b) for b in segments[1:]])
    finally:
        for s in segments:
            s.release()
        engine.free(address)


def _describe(fn):
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{module}.{name}" if module and name else repr(fn)


def _check_function(fn):
    """A function the workers can look up, or FunctionNotFound now (before any work)."""
    if isinstance(fn, _Call):
        return
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    try:
        pickle.dumps(fn, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise FunctionNotFound(
            f"pareng cannot send {_describe(fn)} to its workers: {e}. Functions travel by "
            "reference (module and qualified name), as pickle sends them: a lambda or a "
            "function defined inside another has no such name; define it at the top level "
            "of a module") from None


def _not_found(fn, text):
    return FunctionNotFound(
        f"pareng's workers cannot load {_describe(fn)} or its arguments: {text}. The workers "
        "are copies of this process from when the engine started: a function or class "
        "defined, or a module imported, after that is unknown to them (start the Pool or "
        "Executor after defining it)")


def _reraise(exc, tb):
    exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')
    raise exc


class _RemoteError(Exception):
    """A task's exception that could not be pickled: its text."""


def _error(exc):
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(pickle.dumps(exc, protocol=5))
    except Exception:
        exc = _RemoteError(f"{type(exc).__name__}: {exc}")
    return exc, tb


# ---- the worker's side ------------------------------------------------------------------------

_pending = {}  # in a worker: task serial -> its unsynced Task handles, oldest first


def _sync_all(serial):
    stack = _pending.pop(serial, None)
    while stack:
        stack.pop()._finish(_pareng.task_sync())


def _outcome_of_call(fn, args, kwargs):
    serial = _pareng.task_where()[0]
    try:
        value = fn(*args, **kwargs)
        outcome = ("ok", value)
    except BaseException as e:  # a task's SystemExit too: the caller decides
        outcome = ("error",) + _error(e)
    _sync_all(serial)
    return outcome


def _outcome_of_block(fn, items, star):
    """A block's values (map's C loop), or its first exception: that ends the whole map, so
    the values before it are not needed."""
    serial = _pareng.task_where()[0]
    try:
        outcome = ("ok", list(itertools.starmap(fn, items) if star else builtins.map(fn, items)))
    except BaseException as e:
        outcome = ("error", 0) + _error(e)
    _sync_all(serial)
    return outcome


def _execute(message):
    """Runs one task in a worker (called by tasks.c): the message of its outcome."""
    engine = _pareng.worker_engine()
    try:
        segments = engine.get(message)
        try:
            task = pickle.loads(segments[0], buffers=[bytearray(b) for b in segments[1:]])
        finally:
            for s in segments:
                s.release()
    except Exception as e:
        task, outcome = None, ("missing", f"{type(e).__name__}: {e}")
    else:
        if task[0] == "call":
            outcome = _outcome_of_call(*task[1:])
        else:
            outcome = _outcome_of_block(*task[1:])
    _flush_std_streams()  # a worker ends with _exit: nothing flushes later
    try:
        return _put(engine, outcome)
    except Exception as e:  # an unpicklable result, or no shared memory left
        if outcome[0] == "ok" and isinstance(e, (pickle.PicklingError, TypeError,
                                                 AttributeError)):
            what = "the result" if task[0] == "call" else "a result"
            e = type(e)(f"{what} of {_describe(task[1])} cannot be sent back: {e}")
        failed = ("error",) + (() if task[0] == "call" else (0,)) + _error(e)
        return _put(engine, failed)


_pareng.set_executor(_execute)


class Task:
    """A spawned call (pareng.spawn): result() waits for it, running other tasks meanwhile."""

    __slots__ = ("_serial", "_fn", "_message", "_done", "_value", "_error")

    def __init__(self, fn):
        self._fn = fn
        self._done = False
        self._error = None

    def result(self):
        """The call's value, or its exception re-raised (with the worker's traceback as its
        __cause__). Waiting never leaves the worker idle: it runs the call itself when
        nobody took it, else other tasks, until the thief is done. Handles may be waited for
        in any order (more recent spawns of the same task are synced first). The value is a
        copy (unpickled), whichever worker ran the call."""
        if not self._done:
            if _pareng.task_where()[0] != self._serial:
                raise RuntimeError("a pareng.spawn is waited for by the task that spawned it")
            stack = _pending[self._serial]
            while not self._done:
                stack.pop()._finish(_pareng.task_sync())
        if self._error:
            _reraise(*self._error)
        return self._value

    def done(self):
        return self._done

    def _finish(self, outcome_message):
        engine = _pareng.worker_engine()
        outcome = _take(engine, outcome_message)
        engine.free(self._message)
        if outcome[0] == "ok":
            self._value = outcome[1]
        elif outcome[0] == "missing":
            self._error = (_not_found(self._fn, outcome[1]), "")
        else:
            self._error = (outcome[1], outcome[2])
        self._done = True

    def __reduce__(self):
        raise TypeError("a pareng.Task handle stays in the task that spawned it")


def spawn(fn, /, *args, **kwargs):
    """spawn(fn, /, *args, **kwargs) -> Task

    Inside a task (a function run by pareng.map, pareng.run, a Pool or an Executor): pushes
    fn(*args, **kwargs) on this worker's deque, where an idle worker may steal it; returns a
    Task whose result() gives its value. Outside any task, runs fn now and returns a Task
    that holds its value (the serial meaning of the program). Nested to any depth."""
    t = Task(fn)
    if _pareng.task_where()[0] == 0:
        try:
            t._value = fn(*args, **kwargs)
        except BaseException as e:
            t._error = (e, "".join(traceback.format_exception(type(e), e, e.__traceback__)))
        t._done = True
        return t
    _check_function(fn)
    engine = _pareng.worker_engine()
    t._message = _put(engine, ("call", fn, args, kwargs))
    try:
        t._serial = _pareng.task_spawn(t._message)
    except BaseException:
        engine.free(t._message)
        raise
    _pending.setdefault(t._serial, []).append(t)
    return t


# ---- the caller's side: blocks, runs, outcomes -------------------------------------------------

class _Job:
    """Pickled calls or blocks to run (put into the engine's memory by the run that takes
    them: a Pool's engine may be a new one by then), and what to do with their outcomes."""

    def __init__(self, payloads, deliver, start=None):
        self.payloads = payloads  # each a list of segments (_dumps)
        self.deliver = deliver    # deliver(outcomes or None, exception or None)
        self.start = start        # start() -> False when the job was cancelled before its run


def _blocks(workers, fn, items, star):
    """items cut into blocks: one item a block up to BLOCKS_PER_WORKER per worker, else about
    that many blocks a worker. Returns the blocks' pickles."""
    n = len(items)
    per = max(1, n // (BLOCKS_PER_WORKER * workers))
    return [_dumps(("block", fn, items[lo:lo + per], star)) for lo in range(0, n, per)]


def _run(engine, jobs):
    """Runs every job in one run of the engine and delivers each job's outcomes. The
    exception of a failed run (a crash, ^C) is delivered to every job and raised."""
    messages = []
    try:
        for job in jobs:
            for payload in job.payloads:
                messages.append(engine.put(payload))
        slots = array("Q", [0]) * (2 * len(messages))
        slots[0::2] = array("Q", messages)
        address = engine.put([slots])
    except BaseException as e:
        for m in messages:
            engine.free(m)
        for job in jobs:
            job.deliver(None, e)
        raise
    try:
        engine.run(address, len(messages))
    except BaseException as e:
        # The engine is failed: its memory goes with it, nothing to free.
        for job in jobs:
            job.deliver(None, e)
        raise
    view = engine.get(address)[0].cast("Q")
    at = 0
    for job in jobs:
        outcomes = []
        for k in range(at, at + len(job.payloads)):
            engine.free(view[2 * k])
            r = view[2 * k + 1]
            outcomes.append(_take(engine, r) if r else
                            ("error", 0, RuntimeError("a task failed in pareng's own code (its "
                                                      "worker printed why on stderr)"), ""))
        at += len(job.payloads)
        job.deliver(outcomes, None)
    view.release()
    engine.free(address)


def _block_results(fn, outcomes):
    """The values of a map's blocks, in order; the first failure in item order raised."""
    results = []
    for outcome in outcomes:
        if outcome[0] == "ok":
            results.extend(outcome[1])
        elif outcome[0] == "missing":
            raise _not_found(fn, outcome[1])
        else:
            _reraise(outcome[2], outcome[3])
    return results


def _items(iterable):
    if isinstance(iterable, (list, tuple, range)):
        return iterable
    return list(iterable)


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # closed, or None
            pass


def _start(cores, shared_bytes):
    # What this process buffered must not be written again by the workers, its copies
    _flush_std_streams()
    # The objects of the moment out of the collector's reach in the workers: its passes would
    # write to every one of them, copying the pages they share with this process
    gc.freeze()
    try:
        return _pareng.TaskEngine(cores, shared_bytes or _shared_bytes_default())
    finally:
        gc.unfreeze()


def _map_once(fn, iterable, cores, shared_bytes, star):
    _check_function(fn)
    items = _items(iterable)
    if not items:
        return []
    engine = _start(cores, shared_bytes)
    try:
        got = []
        job = _Job(_blocks(engine.workers, fn, items, star), lambda o, e: got.append(o))
        _run(engine, [job])
        return _block_results(fn, got[0])
    finally:
        engine.close()


_builtin_map = _pareng.map


def map(fn, items, cores=None, grain=None, *, cutoff=None, shared_bytes=0):
    """map(fn, items, cores=None, *, shared_bytes=0) -> list

    [fn(x) for x in items], computed by pareng's workers: an engine is started for this
    call (its workers are forked now, so they know every function defined so far) and
    stopped after it. The items are cut into blocks, about 64 per worker (one item each when
    there are fewer), taken by idle workers in order and balanced by stealing: no chunk size
    to choose. An exception of fn is re-raised here with the worker's traceback as its
    __cause__ (the first in item order); a worker that dies raises WorkerCrashed; ^C raises
    KeyboardInterrupt with every worker stopped.

    fn      a function the workers find by reference (module and name, as pickle sends it):
            not a lambda (FunctionNotFound). Inside it, pareng.spawn forks more tasks.
    cores   as for pareng.fib: None (PARENG_NUM_WORKERS / PARENG_PLACES, else "auto"), "auto"
            (a worker per core), a number of workers, or a CPU list ("0,2-3", "core:0-1").
    shared_bytes  shared memory for arguments and results; 0: the machine's RAM (address
            space only; memory is taken as it is touched).

    map("fib", items, cores=None, grain=None, *, cutoff=None): the built-in C fib workload
    (a str first argument), as before: see pareng._pareng.map."""
    if isinstance(fn, str):
        return _builtin_map(fn, items, cores, grain, cutoff=cutoff)
    if not callable(fn):
        raise TypeError(f"fn must be a function or a built-in workload's name (\"fib\"), not "
                        f"{type(fn).__name__}")
    if grain is not None or cutoff is not None:
        raise TypeError("grain and cutoff are the built-in workload's (map(\"fib\", ...)); a "
                        "Python function's items are blocked automatically")
    return _map_once(fn, items, cores, shared_bytes, False)


def starmap(fn, iterable, cores=None, *, shared_bytes=0):
    """starmap(fn, iterable, cores=None, *, shared_bytes=0) -> list

    [fn(*args) for args in iterable], as pareng.map."""
    return _map_once(fn, iterable, cores, shared_bytes, True)


def run(fn, /, *args, cores=None, shared_bytes=0, **kwargs):
    """run(fn, /, *args, cores=None, shared_bytes=0, **kwargs) -> fn(*args, **kwargs)

    One call as the root task of an engine started for it: for fork-join programs whose
    tasks pareng.spawn their children (pareng.run(pfib, 32))."""
    call = _Call(fn, kwargs) if kwargs else fn
    return _map_once(call, [args], cores, shared_bytes, True)[0]


class _Call:
    """fn with keyword arguments, picklable when fn is."""

    def __init__(self, fn, kwargs):
        _check_function(fn)
        self.fn, self.kwargs = fn, kwargs

    def __call__(self, *args):
        return self.fn(*args, **self.kwargs)

    def __repr__(self):
        return _describe(self.fn)


# ---- Pool and Executor: an engine kept in a thread of its own ----------------------------------

class _Driver:
    """An engine and the thread that starts, runs and stops it (libpareng's workers die with
    the thread that forked them). Jobs queued while a run is in progress are run together in
    the next run: a run cannot take new tasks from outside once it started."""

    def __init__(self, cores, shared_bytes):
        self._cores = cores
        self._shared_bytes = shared_bytes
        self._cv = threading.Condition()
        self._queue = []
        self._closing = False
        self._cancelled = False
        self._engine = None
        self.workers = 0
        self.pid = os.getpid()
        started = []
        self._thread = threading.Thread(target=self._loop, args=(started,), daemon=True,
                                        name="pareng-driver")
        with self._cv:
            self._thread.start()
            while not started:
                self._cv.wait()
        if isinstance(started[0], BaseException):
            self._thread.join()
            raise started[0]
        _drivers.add(self)

    def check(self):
        """A Pool's or Executor's copy in a forked process (a task's worker) has no driver."""
        if os.getpid() != self.pid:
            raise RuntimeError("a pareng Pool or Executor works in the process that made it: "
                               "a task spawns its work with pareng.spawn")

    def _loop(self, started):
        try:
            self._engine = _start(self._cores, self._shared_bytes)
            self.workers = self._engine.workers
            started.append(True)
        except BaseException as e:
            started.append(e)
        with self._cv:
            self._cv.notify_all()
        if self._engine is None:
            return
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                jobs, self._queue = self._queue, []
                if not jobs and self._closing:
                    break
            self._run([job for job in jobs if job.start is None or job.start()])
        self._engine.close()

    def _run(self, jobs):
        if not jobs:
            return
        # A cancel that came while no run was in progress would cancel this one: libpareng
        # keeps it. Such an engine, or one the last run broke, is replaced by a new one.
        if self._engine.closed or self._cancelled:
            self._engine.close()
            self._cancelled = False
            try:
                self._engine = _start(self._cores, self._shared_bytes)
            except BaseException as e:
                for job in jobs:
                    job.deliver(None, e)
                return
        try:
            _run(self._engine, jobs)
        except BaseException:
            self._engine.close()

    def submit(self, job):
        with self._cv:
            if self._closing:
                raise ValueError("the pareng Pool or Executor is closed")
            self._queue.append(job)
            self._cv.notify_all()

    def cancel_queued(self):
        """The jobs not started yet get CancelledError."""
        with self._cv:
            jobs, self._queue = self._queue, []
        for job in jobs:
            job.deliver(None, concurrent.futures.CancelledError("the pareng Pool or Executor "
                                                                "was terminated"))

    def cancel_run(self):
        """Ends the run in progress: its workers are killed, its jobs get the exception."""
        self._cancelled = True
        engine = self._engine
        if engine is not None:
            engine.cancel()

    def close(self, wait=True):
        """Runs what is queued, then stops the workers (wait: returns once they are)."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        _drivers.discard(self)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()


_drivers = set()  # open drivers, closed at exit


@atexit.register
def _close_all():
    for driver in list(_drivers):
        driver.cancel_queued()
        driver.cancel_run()
        driver.close(wait=True)


class _Waiter:
    """One job's outcomes, waited for by the caller (interruptibly: ^C cancels the run)."""

    def __init__(self, driver):
        self._driver = driver
        self._event = threading.Event()
        self.outcomes = None
        self.exception = None

    def deliver(self, outcomes, exception):
        self.outcomes, self.exception = outcomes, exception
        self._event.set()

    def wait(self, timeout=None):
        try:
            if not self._event.wait(timeout):
                raise TimeoutError("the pareng job did not finish in time")
        except KeyboardInterrupt:
            self._driver.cancel_run()
            self._event.wait(5)
            raise
        if self.exception is not None:
            e = self.exception
            if isinstance(e, OSError) and e.errno == 125:  # ECANCELED: another thread's ^C
                raise KeyboardInterrupt("the pareng run was cancelled") from e
            raise e
        return self.outcomes


def _submit_map(driver, fn, items, star):
    """Queues a map on the driver's engine; returns its waiter."""
    waiter = _Waiter(driver)
    driver.submit(_Job(_blocks(driver.workers, fn, items, star), waiter.deliver))
    return waiter


def _submit_call(driver, fn, args, kwargs, deliver=None, start=None):
    """Queues one call; returns its waiter (or None with a deliver of the caller's)."""
    waiter = None if deliver else _Waiter(driver)
    payload = _dumps(("block", _Call(fn, kwargs) if kwargs else fn, [args], True))
    driver.submit(_Job([payload], deliver or waiter.deliver, start))
    return waiter


class AsyncResult:
    """multiprocessing.pool.AsyncResult: the result of Pool.apply_async and map_async."""

    def __init__(self, finish, waiter, callback, error_callback):
        self._finish = finish
        self._waiter = waiter
        self._callback = callback
        self._error_callback = error_callback
        self._lock = threading.Lock()
        self._value = None
        self._exception = None
        self._settled = False
        if callback or error_callback:
            threading.Thread(target=self._callbacks, daemon=True).start()

    def _settle(self, timeout=None):
        with self._lock:
            if not self._settled:
                outcomes = self._waiter.wait(timeout)
                try:
                    self._value = self._finish(outcomes)
                except BaseException as e:
                    self._exception = e
                self._settled = True

    def _callbacks(self):
        try:
            self._settle()
        except BaseException as e:
            self._exception, self._settled = e, True
        if self._exception is None and self._callback:
            self._callback(self._value)
        elif self._exception is not None and self._error_callback:
            self._error_callback(self._exception)

    def get(self, timeout=None):
        self._settle(timeout)
        if self._exception is not None:
            raise self._exception
        return self._value

    def wait(self, timeout=None):
        try:
            self._settle(timeout)
        except TimeoutError:
            pass

    def ready(self):
        return self._settled or self._waiter._event.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        self._settle()
        return self._exception is None


def _call_result(fn):
    def finish(outcomes):
        outcome = outcomes[0]
        if outcome[0] == "ok":
            return outcome[1][0]
        if outcome[0] == "missing":
            raise _not_found(fn, outcome[1])
        _reraise(outcome[2], outcome[3])
    return finish


class Pool:
    """Pool(processes=None, initializer=None, initargs=(), *, cores=None, shared_bytes=0)

    multiprocessing.Pool's interface on a pareng engine kept for the pool's life: map,
    starmap, imap, imap_unordered, apply, apply_async, map_async, starmap_async, close, join,
    terminate, and the context manager (whose exit terminates, as multiprocessing's does).
    processes or cores: the workers (cores takes pareng's CPU lists too; None: one per core).
    Items are blocked automatically: chunksize is accepted and ignored. A worker's crash
    raises WorkerCrashed from the calls it hits; the pool starts new workers for the next
    call (they know the functions defined by then). initializer(*initargs) runs here, in
    this process, before the workers are forked: they inherit what it set up."""

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 *, cores=None, shared_bytes=0):
        if processes is not None and cores is not None:
            raise TypeError("give processes or cores, not both")
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            raise ValueError("maxtasksperchild: pareng's workers live as long as the pool")
        if initializer is not None:
            initializer(*initargs)
        self._driver = _Driver(processes if processes is not None else cores, shared_bytes)
        self._state = "RUN"
        # Collected unclosed: its workers stop once what it queued has run
        weakref.finalize(self, self._driver.close, False)

    @property
    def workers(self):
        """Number of worker processes."""
        return self._driver.workers

    def _check(self):
        self._driver.check()
        if self._state != "RUN":
            raise ValueError("Pool not running")

    def _map_async(self, fn, iterable, star, callback=None, error_callback=None):
        self._check()
        _check_function(fn)
        items = _items(iterable)
        if not items:
            waiter = _Waiter(self._driver)
            waiter.deliver([], None)
            return AsyncResult(lambda o: [], waiter, callback, error_callback)
        waiter = _submit_map(self._driver, fn, items, star)
        return AsyncResult(lambda outcomes: _block_results(fn, outcomes), waiter,
                           callback, error_callback)

    def map(self, func, iterable, chunksize=None):
        """[func(x) for x in iterable] on the pool's workers (see pareng.map)."""
        return self._map_async(func, iterable, False).get()

    def starmap(self, func, iterable, chunksize=None):
        """[func(*args) for args in iterable]."""
        return self._map_async(func, iterable, True).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, False, callback, error_callback)

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        return self._map_async(func, iterable, True, callback, error_callback)

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        """func(*args, **kwds) as an AsyncResult. Calls submitted while a run is in progress
        start together in the next run."""
        self._check()
        _check_function(func)
        waiter = _submit_call(self._driver, func, args, kwds)
        return AsyncResult(_call_result(func), waiter, callback, error_callback)

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def _imap(self, func, iterable, star):
        self._check()
        _check_function(func)
        it = iter(iterable)
        size = IMAP_FIRST_WAVE * self.workers
        pending = []
        while True:
            while len(pending) < 2:  # one wave runs while the last one's results are read
                wave = list(itertools.islice(it, size))
                if not wave:
                    break
                size = min(2 * size, IMAP_LARGEST_WAVE)
                pending.append((wave, self._map_async(func, wave, star)))
            if not pending:
                return
            yield from pending.pop(0)[1].get()

    def imap(self, func, iterable, chunksize=1):
        """func(x) for x in iterable, lazily and in order. The items run in waves (each
        wave a run, the next running while this one's results are read): results come a
        wave at a time, the waves growing from a few items per worker."""
        return self._imap(func, iterable, False)

    def imap_unordered(self, func, iterable, chunksize=1):
        """As imap: results of a wave come together, so in the items' order."""
        return self._imap(func, iterable, False)

    def close(self):
        """No more work; join() then waits for what was submitted."""
        self._state = "CLOSE"
        self._driver.close(wait=False)

    def terminate(self):
        """Stops the workers now; pending results get an exception."""
        self._shutdown(wait=True, cancel=True)

    def join(self):
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        self._driver.close(wait=True)

    def _shutdown(self, wait, cancel):
        self._state = "TERMINATE" if cancel else "CLOSE"
        if cancel:
            self._driver.cancel_queued()
            self._driver.cancel_run()
        self._driver.close(wait=wait)

    def __enter__(self):
        self._check()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __repr__(self):
        return f"<pareng.Pool state={self._state} workers={self.workers}>"

    def __reduce__(self):
        raise TypeError("a pareng Pool cannot be sent to a worker")


class Executor(concurrent.futures.Executor):
    """Executor(max_workers=None, *, cores=None, shared_bytes=0)

    A concurrent.futures.Executor on a pareng engine: submit, map, shutdown, with
    as_completed, wait and asyncio's run_in_executor. Calls submitted while a run is in
    progress start together in the next run, and their futures complete when that run ends.
    A worker's crash fails the futures of its run with WorkerCrashed; the next run starts new
    workers."""

    def __init__(self, max_workers=None, *, cores=None, shared_bytes=0):
        if max_workers is not None and cores is not None:
            raise TypeError("give max_workers or cores, not both")
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._driver = _Driver(max_workers if max_workers is not None else cores, shared_bytes)
        self._closed = False
        weakref.finalize(self, self._driver.close, False)

    def _check(self):
        self._driver.check()
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def submit(self, fn, /, *args, **kwargs):
        self._check()
        _check_function(fn)
        future = concurrent.futures.Future()
        finish = _call_result(fn)

        def deliver(outcomes, exception):
            if future.done():
                return
            if isinstance(exception, concurrent.futures.CancelledError) and \
                    not future.running():  # shut down with cancel_futures before its run
                future.cancel()
                return
            if not future.running() and not future.set_running_or_notify_cancel():
                return
            if exception is not None:
                future.set_exception(exception)
                return
            try:
                future.set_result(finish(outcomes))
            except BaseException as e:
                future.set_exception(e)

        _submit_call(self._driver, fn, args, kwargs, deliver, future.set_running_or_notify_cancel)
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """fn over the iterables' items (zip), in order, in one run cut into blocks; the
        iterator raises TimeoutError when the results are not there within timeout."""
        self._check()
        _check_function(fn)
        items = list(zip(*iterables))
        if not items:
            return iter(())
        waiter = _submit_map(self._driver, fn, items, True)

        def results():
            yield from _block_results(fn, waiter.wait(timeout))
        return results()

    def shutdown(self, wait=True, *, cancel_futures=False):
        """As concurrent.futures': cancel_futures cancels the calls not started yet (a run
        in progress goes on)."""
        self._closed = True
        if cancel_futures:
            self._driver.cancel_queued()
        self._driver.close(wait=wait)

    @property
    def workers(self):
        return self._driver.workers
