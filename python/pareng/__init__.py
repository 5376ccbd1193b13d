"""pareng: a work-stealing engine whose workers are processes, from Python.

Your own functions on pareng's workers, as multiprocessing does it but without its pipes,
chunk sizes and hangs:

    import pareng

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    pareng.map(fib, [38, 37, 36, 35, 34, 33])     # uneven items balanced

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
import collections
import concurrent.futures
import errno
import gc
import itertools
import operator
import os
import pickle
import signal
import time
import sys
import threading
import traceback
import weakref

from . import _pareng
from ._pareng import FIB_MAX, MAX_WORKERS, WORKLOADS, Engine, WorkerCrashed, __version__, fib

__all__ = ["map", "starmap", "run", "spawn", "Task", "Pool", "AsyncResult", "Executor",
           "WorkerCrashed", "FunctionNotFound", "RemoteTraceback", "fib", "Engine", "FIB_MAX",
           "MAX_WORKERS", "WORKLOADS", "__version__"]

# Blocks of a map per worker: enough for idle workers to even out uneven items, few enough
# that the per-block cost (a task, a pickle, a message) stays small next to a million tiny
# items.
BLOCKS_PER_WORKER = 64
# Blocks or calls handed to the workers ahead, per worker, while a map or a pool serves
# them: enough that a worker finds the next one waiting, few enough that the rest stays
# queued in the caller (imap's order, an Executor's cancel_futures).
POSTED_PER_WORKER = 4
# A worker keeps the functions of this many maps loaded (_Function).
FUNCTIONS_KEPT = 2
# A task's traceback keeps this many characters at its start and at its end (_error).
TRACEBACK_KEPT = 1 << 15
# Buffers at least this large travel out of band (their own segment of shared memory).
OUT_OF_BAND_BYTES = 1 << 16
# imap's first wave of items per worker, and its largest wave, for an iterable that is not a
# list, tuple or range: read as the workers need it, in waves that grow so that the first
# results come soon and the cost per wave fades.
IMAP_FIRST_WAVE = 4
IMAP_LARGEST_WAVE = 1 << 16


_timeout_error = None
_timeout_error_made = threading.Lock()


def _timeout_class():
    """pareng.TimeoutError: a result that did not come within the time asked for, both
    multiprocessing's TimeoutError (AsyncResult.get) and the built-in one (concurrent.futures').
    Made at its first use: importing multiprocessing costs `import pareng` about half of its
    time."""
    global _timeout_error
    with _timeout_error_made:
        if _timeout_error is None:
            import multiprocessing
            _timeout_error = type("TimeoutError", (multiprocessing.TimeoutError, TimeoutError),
                                  {"__module__": __name__, "__doc__": _timeout_class.__doc__})
    return _timeout_error


def _timeout(text):
    return _timeout_class()(text)


def __getattr__(name):
    if name == "TimeoutError":
        return _timeout_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _load(engine, address):
    """The object of a message, copied out of shared memory."""
    segments = engine.get(address)
    try:
        return pickle.loads(segments[0], buffers=[bytearray(b) for b in segments[1:]])
    finally:
        for s in segments:
            s.release()


def _take(engine, address):
    """The object of a message, copied out of shared memory; the message freed."""
    try:
        return _load(engine, address)
    finally:
        engine.free(address)


class _Function:
    """A map's function as its blocks carry it: pickled once into the engine's memory for the
    whole map, and loaded once by each worker. A bound method's object or a partial's arguments
    (20 MiB, say) were pickled, copied and loaded again for each of a map's 128 blocks."""

    def __init__(self, address, serial):
        self.address, self.serial = address, serial

    def __reduce__(self):
        return (_function_at, (self.address, self.serial))


_function_serials = itertools.count(1)
_functions_loaded = collections.OrderedDict()  # in a worker: (address, serial) -> function


def _function_at(address, serial):
    """In a worker: the function of the map numbered serial, whose message is at address
    (serial tells it from a later map's at the same address)."""
    key = (address, serial)
    fn = _functions_loaded.get(key)
    if fn is None:
        fn = _functions_loaded[key] = _load(_pareng.worker_engine(), address)
        while len(_functions_loaded) > FUNCTIONS_KEPT:
            _functions_loaded.popitem(last=False)
    return fn


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
    """exc raised again here; tb: the worker's traceback, its __cause__ (None: raised in this
    process, where exc keeps its own)."""
    if tb is not None:
        exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')
    raise exc


class _RemoteError(Exception):
    """A task's exception that could not be pickled: its text."""


def _error(exc):
    """exc as it travels back: picklable, and its traceback's text. The text of a task that
    waited for nested spawns holds theirs (their __cause__), so a failure through a chain of n
    levels would cost n^2 text: it keeps its first and last TRACEBACK_KEPT characters. Too deep
    to format at all (a RecursionError raised near the limit), it is the exception alone."""
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except RecursionError:
        tb = f"{type(exc).__name__}: {exc} (too deep for its traceback to be formatted)\n"
    if len(tb) > 2 * TRACEBACK_KEPT:
        tb = (f"{tb[:TRACEBACK_KEPT]}\n... {len(tb) - 2 * TRACEBACK_KEPT} characters of nested "
              f"tracebacks left out ...\n{tb[-TRACEBACK_KEPT:]}")
    try:
        pickle.loads(pickle.dumps(exc, protocol=5))
    except Exception:
        exc = _RemoteError(f"{type(exc).__name__}: {exc}")
    return exc, tb


# ---- the worker's side ------------------------------------------------------------------------

_pending = {}  # in a worker: task serial -> its unsynced Task handles, oldest first


def _sync_next(stack):
    """Syncs the newest unsynced spawn of stack: its Task is done after, with its outcome, or
    with the error that kept it from coming (a RecursionError: too deep to send it)."""
    task = stack.pop()
    try:
        outcome = _pareng.task_sync()
    except Exception as e:
        task._finish_failed(e)
    else:
        task._finish(outcome)


def _sync_all(serial):
    stack = _pending.pop(serial, None)
    while stack:
        _sync_next(stack)


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
    """A block's values, or its first exception with the values before it: imap yields those
    first."""
    serial = _pareng.task_where()[0]
    values = []
    try:
        _pareng.call_each(fn, items, star, values)
        outcome = ("ok", values)
    except BaseException as e:
        outcome = ("error", values) + _error(e)
    _sync_all(serial)
    return outcome


def _execute(message):
    """Runs one task in a worker (called by tasks.c): the message of its outcome."""
    engine = _pareng.worker_engine()
    try:
        task = _load(engine, message)
    except (AttributeError, ImportError) as e:  # pickle's lookup of a function by reference
        task, outcome = None, ("missing", f"{type(e).__name__}: {e}")
    except Exception as e:  # an argument whose unpickling failed
        if hasattr(e, "add_note"):  # Python 3.11
            e.add_note("raised while a pareng worker unpickled the task's arguments")
        task, outcome = None, ("unreadable",) + _error(e)
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
        failed = ("error",) + (() if task[0] == "call" else ([],)) + _error(e)
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
                _sync_next(stack)
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

    def _finish_failed(self, exc):
        _pareng.worker_engine().free(self._message)
        self._error = (exc, None)
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
            t._error = (e, None)
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
    """Calls or blocks to run, pickled into the engine's memory as they are handed to the
    workers (the first go while the rest wait: a map's first blocks start at once; a Pool's
    engine may be a new one by then), and what to do with each outcome."""

    def __init__(self, tasks, arrive, fail, start=None):
        self.tasks = tasks        # ("block", fn, items, star) each
        self.arrive = arrive      # arrive(k, outcome): task k is done
        self.fail = fail          # fail(exception): the job's other tasks will not come
        self.start = start        # start() -> False when the job was cancelled before it ran
        self.cancelled = False    # its tasks not handed over yet are dropped
        self.function = None      # its blocks' _Function, while they run
        self.in_flight = 0        # tasks handed over, their outcomes not delivered
        self.handed_all = False   # no more tasks will be handed over


def _blocks(workers, fn, items, star):
    """items cut into blocks: one item a block up to BLOCKS_PER_WORKER per worker, else about
    that many blocks a worker. Returns the blocks' tasks and their sizes."""
    n = len(items)
    per = max(1, n // (BLOCKS_PER_WORKER * workers))
    starts = range(0, n, per)
    return ([("block", fn, items[lo:lo + per], star) for lo in starts],
            [min(per, n - lo) for lo in starts])


_TOO_DEEP = ("error", [], RecursionError("maximum recursion depth exceeded in a task"), None)
_LOST = ("error", [], RuntimeError("a task failed in pareng's own code (its worker printed why "
                                   "on stderr)"), "")


class _Server:
    """An engine served (pareng_serve) by the calling thread until its jobs are done: each
    task of its jobs is handed to an idle worker, pickled then, and its outcome delivered
    (job.arrive) as soon as it is done, in this thread, while the others run. next_job()
    gives the next job to start, or None; a job is started (job.start) when its first task
    is handed over. POSTED_PER_WORKER tasks a worker are handed over ahead: the workers
    never wait for this thread, and the rest stays where it can be cancelled."""

    def __init__(self, engine, next_job):
        self.engine = engine
        self._next_job = next_job
        self._depth = POSTED_PER_WORKER * engine.workers
        self._feeding = None   # [job, next task] of a job not all handed over
        self._in_flight = {}   # tag -> (job, task index, message)
        self._tags = itertools.count(1)

    def serve(self):
        """Delivers every outcome of the jobs; a failure (a crash, ^C) goes to each job not
        done (job.fail), then is raised. The engine is failed then."""
        try:
            self.engine.serve(self._step)
        except BaseException as e:
            jobs = {id(job): job for job, _, _ in self._in_flight.values()}
            if self._feeding:
                jobs[id(self._feeding[0])] = self._feeding[0]
            self._feeding = None
            self._in_flight.clear()
            for job in jobs.values():
                job.fail(e)
            raise

    def _step(self, done, room):
        """pareng_serve's callback: new tasks handed over first (at most room), so that no
        worker waits while this thread takes the outcomes in; then the outcomes delivered.
        False when nothing is left, which ends the serve."""
        engine = self.engine
        room = min(room, self._depth - (len(self._in_flight) - len(done)))
        while room > 0:
            if self._feeding is None:
                job = self._next_job()
                if job is None:
                    break
                if not job.cancelled and (job.start is None or job.start()):
                    self._feeding = [job, 0]
                continue
            job, k = self._feeding
            if job.cancelled:
                self._stop_feeding(job)
                continue
            try:
                if k == 0 and len(job.tasks) > 1:
                    job.function = _Function(engine.put(_dumps(job.tasks[0][1])),
                                             next(_function_serials))
                task = job.tasks[k]
                if job.function:
                    task = (task[0], job.function) + task[2:]
                message = engine.put(_dumps(task))
            except Exception as e:  # unpicklable, or no room: this job fails, not the others
                # as the outcome of this task and of those after it, none of which go: the
                # outcomes before it still come, in item order first (imap yields the values
                # of the blocks before it, then raises; a map raises an earlier task's error)
                self._stop_feeding(job)
                for rest in range(k, len(job.tasks)):
                    job.arrive(rest, ("error", [], e, None))
                continue
            tag = next(self._tags)
            self._in_flight[tag] = (job, k, message)
            engine.post(tag, message)
            job.in_flight += 1
            room -= 1
            self._feeding[1] += 1
            if self._feeding[1] == len(job.tasks):
                self._stop_feeding(job)
        for tag, outcome in done:
            job, k, message = self._in_flight.pop(tag)
            engine.free(message)
            job.in_flight -= 1
            self._free_function_when_done(job)
            try:
                outcome = (_take(engine, outcome) if outcome > _pareng.OUTCOME_TOO_DEEP else
                           _TOO_DEEP if outcome else _LOST)
            except Exception as e:  # a result this process cannot unpickle
                outcome = ("error", [], e, None)  # raised here: no worker's traceback
            job.arrive(k, outcome)
        return bool(self._in_flight)

    def _stop_feeding(self, job):
        self._feeding = None
        job.handed_all = True
        self._free_function_when_done(job)

    def _free_function_when_done(self, job):
        if job.function and job.handed_all and job.in_flight == 0:
            self.engine.free(job.function.address)
            job.function = None


# A block's outcome: ("ok", values), ("error", the values before the failure, exception,
# traceback), ("missing", why) or ("unreadable", exception, traceback): its arguments could not
# be unpickled (a call's outcome: ("ok", value) and ("error", exception, traceback) instead).

def _raise_failure(fn, outcome):
    if outcome[0] == "missing":
        raise _not_found(fn, outcome[1])
    if outcome[0] == "unreadable":
        _reraise(outcome[1], outcome[2])
    _reraise(outcome[2], outcome[3])


class _Gather:
    """A job's values, each block's put in place as it arrives (while the others still run),
    and its first failure in item order. It is finished once every block arrived or the job
    failed (exception), and done is set then, unless on_done takes it over."""

    def __init__(self, sizes):
        self._values = None  # made at the first arrival, while the workers compute
        self._at = list(itertools.accumulate(sizes, initial=0))
        self._left = len(sizes)
        self._failure = None  # (block, outcome)
        self.exception = None
        self.finished = False
        self.done = threading.Event()
        self.on_done = None  # called once finished, instead of setting done (it sets it later)

    def arrive(self, k, outcome):
        if outcome[0] == "ok":
            if self._values is None:
                self._values = [None] * self._at[-1]
            self._values[self._at[k]:self._at[k + 1]] = outcome[1]
        elif self._failure is None or k < self._failure[0]:
            self._failure = (k, outcome)
        self._left -= 1
        if self._left == 0:
            self.finish()

    def fail(self, exception):
        if not self.finished:
            self.exception = exception
            self.finish()

    def finish(self):
        """Once the job is done (its owner calls it for a job of no blocks)."""
        if not self.finished:
            self.finished = True
            if self.on_done:
                self.on_done()
            else:
                self.done.set()

    def result(self, fn):
        """The values, or the job's failure (a block that could not be handed over), or the
        first failure in item order, raised."""
        if self.exception is not None:
            raise self.exception
        if self._failure is not None:
            _raise_failure(fn, self._failure[1])
        return self._values if self._values is not None else []


def _block_stream(fn, outcome):
    """A block's values one by one; its failure raised after the values before it."""
    if outcome[0] not in ("missing", "unreadable"):
        yield from outcome[1]
    if outcome[0] != "ok":
        _raise_failure(fn, outcome)


def _sliceable(iterable):
    """Sliced as it is, not iterated: a list, tuple or range itself. A subclass may iterate
    otherwise than its slices (its own __iter__), which map must follow, as Python's does."""
    return type(iterable) in (list, tuple, range)


def _items(iterable):
    if _sliceable(iterable):
        return iterable
    return list(iterable)


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # closed, or None
            pass


def _start(cores, shared_bytes):
    # An int of bytes: the C side would take a negative number, or 2**64 + 1, modulo 2**64
    if isinstance(shared_bytes, bool) or not isinstance(shared_bytes, int):
        raise TypeError(f"shared_bytes: a number of bytes (an int, 0 for the default), "
                        f"not {type(shared_bytes).__name__}")
    if not 0 <= shared_bytes < 1 << 64:
        raise ValueError(f"shared_bytes: a number of bytes from 0 (the default) to 2**64 - 1, "
                         f"not {shared_bytes}")
    # What this process buffered must not be written again by the workers, its copies
    _flush_std_streams()
    # The objects of the moment out of the collector's reach in the workers: its passes would
    # write to every one of them, copying the pages they share with this process. gc.unfreeze
    # thaws every frozen object: a program that froze its own keeps them frozen, and with them
    # these (the gc module cannot thaw only these).
    thaw = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        return _pareng.TaskEngine(cores, shared_bytes or _shared_bytes_default())
    finally:
        if thaw:
            gc.unfreeze()


def _map_once(fn, iterable, cores, shared_bytes, star):
    _check_function(fn)
    items = _items(iterable)
    if not items:
        return []
    engine = _start(cores, shared_bytes)
    try:
        tasks, sizes = _blocks(engine.workers, fn, items, star)
        gather = _Gather(sizes)
        jobs = [_Job(tasks, gather.arrive, gather.fail)]
        _Server(engine, lambda: jobs.pop() if jobs else None).serve()
        return gather.result(fn)
    finally:
        engine.close()


_builtin_map = _pareng.map


def map(fn, items, cores=None, grain=None, *, cutoff=None, shared_bytes=0):
    """map(fn, items, cores=None, *, shared_bytes=0) -> list

    [fn(x) for x in items], computed by pareng's workers: an engine is started for this
    call (its workers are forked now, so they know every function defined so far) and
    stopped after it. The items are cut into blocks, about 64 per worker (one item each when
    there are fewer), each taken by the next idle worker, in order, as from a shared queue
    (and the tasks a block spawns balanced by stealing): no chunk size to choose. An
    exception of fn is re-raised here with the worker's traceback as its __cause__ (the first
    in item order); a worker that dies raises WorkerCrashed; ^C raises KeyboardInterrupt with
    every worker stopped.

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
    """An engine and the thread that starts, serves and stops it (libpareng's workers die with
    the thread that forked them). While it has work, the thread serves the engine
    (pareng_serve): each block or call is handed to an idle worker as a task of its own, as
    soon as it is submitted, and its outcome delivered as soon as it is done."""

    def __init__(self, cores, shared_bytes, finish_at_exit, stopped=None):
        self._cores = cores
        self._stopped = stopped  # called by the thread once every job is done
        self.finish_at_exit = finish_at_exit  # else what runs at the interpreter's exit is cancelled
        self._shared_bytes = shared_bytes
        self._cv = threading.Condition()
        self._queue = collections.deque()  # jobs submitted, not started yet
        self._closing = False
        self._cancelled = False
        self.terminated = False  # by Pool.terminate: what it cancels gets CancelledError
        self._streams = weakref.WeakSet()  # imaps with items not read yet (under _cv)
        self._feeders = 0  # threads that read the rest of an imap's items after close()
        self._engine = None
        self.workers = 0
        self.pid = os.getpid()
        started = []
        self._thread = threading.Thread(target=self._loop, args=(started,), daemon=True,
                                        name="pareng-driver")
        try:
            with self._cv:
                self._thread.start()
                while not started:
                    self._cv.wait()
        except BaseException:  # ^C: the engine the thread starts is stopped again
            if self._thread.ident is not None:
                self.close(wait=True)
            raise
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
                while not self._queue and (not self._closing or
                                           (self._feeders and not self.terminated)):
                    self._cv.wait()
                if not self._queue:
                    break
            self._serve()
        self._engine.close()
        _drivers.discard(self)
        if self._stopped:
            self._stopped()

    def _serve(self):
        # A cancel that came while nothing was served would cancel this serve: libpareng
        # keeps it. Such an engine, or one that failed, is replaced by a new one.
        if self._engine.closed or self._cancelled:
            self._engine.close()
            self._cancelled = False
            try:
                self._engine = _start(self._cores, self._shared_bytes)
            except BaseException as e:
                with self._cv:
                    jobs, self._queue = self._queue, collections.deque()
                for job in jobs:
                    job.fail(e)
                return
        try:
            _Server(self._engine, self._next_queued).serve()
        except BaseException:
            self._engine.close()  # failed: its memory goes with it

    def _next_queued(self):
        with self._cv:
            return self._queue.popleft() if self._queue else None

    def submit(self, job, stream=False):
        """Queues job; after close() only an imap's (stream) may, until terminate()."""
        with self._cv:
            if self._closing and (not stream or self.terminated):
                raise ValueError("the pareng Pool or Executor is closed")
            self._queue.append(job)
            self._cv.notify_all()
            engine = self._engine
        engine.wake()  # a serve in progress takes it now

    def cancel_queued(self):
        """The jobs not started yet (none of their tasks handed to the workers) get
        CancelledError."""
        with self._cv:
            jobs, self._queue = self._queue, collections.deque()
        for job in jobs:
            job.fail(concurrent.futures.CancelledError("the pareng Pool or Executor was "
                                                       "terminated"))

    def terminate(self):
        """Cancels what is queued and what runs (Pool.terminate)."""
        self.terminated = True
        self.cancel_queued()
        self.cancel_run()

    def cancel_run(self):
        """Ends the serve in progress: its workers are killed, its jobs get the exception."""
        self._cancelled = True
        engine = self._engine
        if engine is not None:
            engine.cancel()

    def add_stream(self, stream):
        with self._cv:
            self._streams.add(stream)

    def forget_stream(self, stream):
        with self._cv:
            self._streams.discard(stream)

    def close(self, wait=True):
        """Runs what is queued, then stops the workers (wait: returns once they are). The items
        an imap has not read yet are read by a thread of their own, as multiprocessing's task
        handler reads them, and run before the workers stop (unless terminated): close() does
        not wait for an iterator that may block."""
        with self._cv:
            if not self._closing and not self.terminated:
                for stream in list(self._streams):
                    self._feeders += 1
                    threading.Thread(target=self._feed_after_close, args=(stream,), daemon=True,
                                     name="pareng-imap-feeder").start()
            self._closing = True
            self._cv.notify_all()
        if wait and self._thread is not threading.current_thread():
            self._thread.join()


    def _feed_after_close(self, stream):
        try:
            stream.feed_rest()
        except Exception as e:  # terminated meanwhile: the imap's reader hears of it
            stream.fail(e)
        finally:
            with self._cv:
                self._feeders -= 1
                self._cv.notify_all()


_drivers = set()  # drivers whose thread runs, closed at exit


@atexit.register
def _close_all():
    """At the interpreter's exit, as multiprocessing and concurrent.futures do: a Pool is
    terminated (its work cancelled), an Executor's work is done first."""
    for driver in list(_drivers):
        if not driver.finish_at_exit:
            driver.terminate()
        driver.close(wait=True)


def _interruptible(driver, wait):
    """wait() (a lock's or a condition's, which ^C interrupts); ^C cancels the driver's
    serve, whose workers are killed."""
    try:
        return wait()
    except KeyboardInterrupt:
        driver.cancel_run()
        raise


def _raise_run_failure(e, driver):
    """A job's failure, raised in a thread that waits for it. A cancelled run (ECANCELED):
    the Pool's terminate gives CancelledError. Else it was ^C, which becomes the main
    thread's KeyboardInterrupt (its SIGINT handler raises one as soon as the call returns: not
    after an OSError first), and another thread's OSError ECANCELED, as pareng.map's; so is
    the main thread's where the program's SIGINT handler does not raise (docs/python.md)."""
    if isinstance(e, OSError) and e.errno == errno.ECANCELED:
        if driver.terminated:
            raise concurrent.futures.CancelledError("the pareng Pool was terminated") from e
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            raise KeyboardInterrupt("the pareng run was cancelled") from e
    raise e


class _Waiter(_Gather):
    """A job's values, waited for by the caller (an AsyncResult)."""

    def __init__(self, driver, sizes):
        super().__init__(sizes)
        self.driver = driver

    def raise_failure(self):
        """The job's failure (not a block's), if it failed, raised in this thread."""
        if self.exception is not None:
            _raise_run_failure(self.exception, self.driver)


def _submit_call(driver, fn, args, kwargs, arrive, fail, start=None):
    """Queues one call: arrive(0, outcome) when it is done."""
    task = ("block", _Call(fn, kwargs) if kwargs else fn, [args], True)
    driver.submit(_Job([task], arrive, fail, start))


class _Stream:
    """The blocks of a map as they finish, in the items' order (ordered) or as they come:
    what imap, imap_unordered and Executor.map yield from. An iterable that is not sized is
    read in waves of blocks, a new wave when few blocks are left in flight."""

    def __init__(self, driver, fn, iterable, star, ordered, cancel_when_left=False):
        self._driver = driver
        self._cancel_when_left = cancel_when_left  # concurrent.futures': Pool.imap's run on
        self._jobs = []
        self._fn = fn
        self._star = star
        self._ordered = ordered
        self._cv = threading.Condition()
        self._arrived = collections.deque()  # (block number, outcome)
        self._exception = None
        self._source_error = None  # the items' iterator raised: after the items before it
        self._submitted = 0
        self._received = 0
        self._feeding = threading.Lock()  # the items are read by the consumer, or by close
        self._wave = IMAP_FIRST_WAVE * driver.workers
        if _sliceable(iterable):  # all at once, as Pool.map
            self._items = None
            self._submit(iterable)
        else:
            self._items = iter(iterable)
            driver.add_stream(self)

    def _submit(self, items):
        tasks, _ = _blocks(self._driver.workers, self._fn, items, self._star)
        first = self._submitted
        self._submitted += len(tasks)
        job = _Job(tasks, lambda k, o: self._arrive(first + k, o), self.fail)
        self._jobs.append(job)
        self._driver.submit(job, stream=True)

    def _feed(self, waves):
        """Hands over up to `waves` waves of the items not read yet (None: all of them). An
        exception of the items' iterator ends them, kept for after the results of the items
        before it (list.extend keeps what it took before the iterator raised)."""
        with self._feeding:
            while self._items is not None and (waves is None or waves > 0):
                wave = []
                try:
                    wave.extend(itertools.islice(self._items, self._wave))
                except Exception as e:
                    self._source_error = e
                if not wave or self._source_error is not None:
                    self._items = None
                    self._driver.forget_stream(self)
                if wave:
                    self._wave = min(2 * self._wave, IMAP_LARGEST_WAVE)
                    self._submit(wave)
                waves = None if waves is None else waves - 1

    def feed_rest(self):
        self._feed(None)

    def _arrive(self, number, outcome):
        with self._cv:
            self._arrived.append((number, outcome))
            self._cv.notify()

    def fail(self, exception):
        with self._cv:
            if self._exception is None:
                self._exception = exception
            self._cv.notify()

    def _next_block(self, deadline):
        def wait():
            with self._cv:
                while not self._arrived and self._exception is None:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise _timeout("the pareng results did not come in time")
                    self._cv.wait(left)
                if self._arrived:
                    return self._arrived.popleft()
                _raise_run_failure(self._exception, self._driver)
        return _interruptible(self._driver, wait)

    def results(self, deadline=None):
        """The values; TimeoutError when one is not there by deadline (time.monotonic()). Left
        before its end (closed, collected, or a timeout), with cancel_when_left, its tasks not
        handed to the workers yet are dropped, as concurrent.futures' map cancels its futures."""
        try:
            yield from self._results(deadline)
        finally:
            if self._cancel_when_left:
                for job in self._jobs:
                    job.cancelled = True

    def _results(self, deadline):
        waiting = {}
        wanted = 0
        while True:
            # the workers are kept busy: the next wave goes in while this one is read
            while self._items is not None and \
                    self._submitted - self._received < 2 * self._driver.workers:
                self._feed(1)
            if self._received == self._submitted and self._items is None:
                if self._source_error is not None:
                    raise self._source_error
                return
            number, outcome = self._next_block(deadline)
            self._received += 1
            if not self._ordered:
                yield from _block_stream(self._fn, outcome)
                continue
            waiting[number] = outcome
            while wanted in waiting:
                yield from _block_stream(self._fn, waiting.pop(wanted))
                wanted += 1


class _Callbacks:
    """A Pool's callbacks, run one at a time in the order their results are done, in a thread
    of their own (as multiprocessing's result handler runs them): started at the first,
    ended once the pool's driver stopped and none is left. The driver's thread only queues
    them: a slow callback does not keep the workers waiting."""

    def __init__(self):
        self._cv = threading.Condition()
        self._queue = collections.deque()  # AsyncResults done, their callback not run yet
        self._thread = None
        self._closed = False

    def put(self, result):
        with self._cv:
            self._queue.append(result)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="pareng-callbacks")
                self._thread.start()
            self._cv.notify()

    def close(self):
        """No more results will come (the driver stopped): the thread ends once it ran the
        callbacks queued."""
        with self._cv:
            self._closed = True
            self._cv.notify()

    def join(self):
        """Until every callback queued ran (not from a callback, which would wait for itself)."""
        with self._cv:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _loop(self):
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    self._thread = None
                    return
                result = self._queue.popleft()
            result._run_callback()


class AsyncResult:
    """multiprocessing.pool.AsyncResult: the result of Pool.apply_async and map_async. With a
    callback or error_callback, it is ready (get, wait, ready, successful) once that ran."""

    def __init__(self, finish, waiter, callback, error_callback, callbacks):
        self._finish = finish
        self._waiter = waiter
        self._callback = callback
        self._error_callback = error_callback
        self._lock = threading.Lock()
        self._value = None
        self._exception = None
        self._settled = False
        if callback or error_callback:  # ready (waiter.done) once the callback ran
            waiter.on_done = lambda: callbacks.put(self)

    def _settle(self):
        """Keeps the job's value or a block's exception, once; the job is done. The job's own
        failure is raised by each thread that asks (_raise_run_failure: a ^C in the main
        thread's)."""
        with self._lock:
            if not self._settled:
                if self._waiter.exception is None:
                    try:
                        self._value = self._finish(self._waiter)
                    except BaseException as e:
                        self._exception = e
                self._settled = True

    def _outcome(self):
        """The value, or the exception raised; the job is done."""
        self._settle()
        self._waiter.raise_failure()
        if self._exception is not None:
            raise self._exception
        return self._value

    def _wait(self, timeout):
        """Until ready, or False past timeout; ^C raises."""
        return _interruptible(self._waiter.driver, lambda: self._waiter.done.wait(timeout))

    def _run_callback(self):
        """In the pool's callback thread. A callback's exception is logged (the logger
        "pareng", as concurrent.futures logs a future's): the result is ready all the same,
        and the next callbacks run."""
        try:
            value = self._outcome()
        except BaseException as e:
            if self._error_callback:
                self._call(self._error_callback, e)
        else:
            if self._callback:
                self._call(self._callback, value)
        self._waiter.done.set()

    def _call(self, callback, argument):
        try:
            callback(argument)
        except BaseException:
            import logging  # here: it would add to every `import pareng`
            logging.getLogger(__name__).exception("exception calling %r for %r", callback, self)

    def get(self, timeout=None):
        if not self._wait(timeout):
            raise _timeout("the pareng job did not finish in time")
        return self._outcome()

    def wait(self, timeout=None):
        self._wait(timeout)

    def ready(self):
        return self._waiter.done.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        self._settle()
        return self._waiter.exception is None and self._exception is None


def _count(name, n):
    """n as an int (an int, or what has __index__), else TypeError naming its type."""
    try:
        return operator.index(n)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(n).__name__}") from None


class Pool:
    """Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None, *, cores=None,
         shared_bytes=0)

    multiprocessing.Pool's interface on a pareng engine kept for the pool's life: map,
    starmap, imap, imap_unordered, apply, apply_async, map_async, starmap_async, close, join,
    terminate, and the context manager (whose exit terminates, as multiprocessing's does).
    processes or cores: the workers (cores takes pareng's CPU lists too; None: one per core).
    Items are blocked automatically: chunksize is accepted and ignored. A worker's crash
    raises WorkerCrashed from the calls it hits; the pool starts new workers for the next
    call (they know the functions defined by then). initializer(*initargs) runs here, in
    this process, before the workers are forked: they inherit what it set up.
    maxtasksperchild: None only (the workers live as long as the pool). Callbacks run
    one at a time in a thread of the pool's, in the order their results are done; a result
    is ready once its callback ran, and join() returns once every callback ran."""

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 *, cores=None, shared_bytes=0):
        if processes is not None and cores is not None:
            raise TypeError("give processes or cores, not both")
        if processes is not None:
            processes = _count("processes", processes)
            if processes < 1:
                raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            raise ValueError("maxtasksperchild: pareng's workers live as long as the pool")
        if initializer is not None:
            initializer(*initargs)
        self._callbacks = _Callbacks()
        self._driver = _Driver(processes if processes is not None else cores, shared_bytes,
                               finish_at_exit=False, stopped=self._callbacks.close)
        self._state = "RUN"
        # Collected unclosed: its workers stop once what it queued has run. Not at exit, where
        # _close_all terminates it (a finalizer runs first, and would wait for its work)
        weakref.finalize(self, self._driver.close, False).atexit = False

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
        tasks, sizes = _blocks(self._driver.workers, fn, _items(iterable), star)
        waiter = _Waiter(self._driver, sizes)
        # made before the job is queued: its callback is queued when the job is done
        result = AsyncResult(lambda w: w.result(fn), waiter, callback, error_callback,
                             self._callbacks)
        if tasks:
            self._driver.submit(_Job(tasks, waiter.arrive, waiter.fail))
        else:
            waiter.finish()
        return result

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
        """func(*args, **kwds) as an AsyncResult, ready as soon as the call is done."""
        self._check()
        _check_function(func)
        waiter = _Waiter(self._driver, [1])
        result = AsyncResult(lambda w: w.result(func)[0], waiter, callback, error_callback,
                             self._callbacks)
        _submit_call(self._driver, func, args, kwds, waiter.arrive, waiter.fail)
        return result

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def _imap(self, func, iterable, ordered):
        self._check()
        _check_function(func)
        return _Stream(self._driver, func, iterable, False, ordered).results()

    def imap(self, func, iterable, chunksize=1):
        """func(x) for x in iterable, lazily and in order: each result as soon as it and
        those before it are done. A list, tuple or range is handed to the workers at once;
        another iterable is read in waves, growing from a few items per worker."""
        return self._imap(func, iterable, True)

    def imap_unordered(self, func, iterable, chunksize=1):
        """As imap, but each result as soon as it is done, in the order they finish."""
        return self._imap(func, iterable, False)

    def close(self):
        """No more work; join() then waits for what was submitted."""
        self._state = "CLOSE"
        self._driver.close(wait=False)

    def terminate(self):
        """Stops the workers now; pending results get an exception, and their error_callback
        has run when it returns."""
        self._shutdown(wait=True, cancel=True)
        self._callbacks.join()

    def join(self):
        """Waits for the workers to stop and every callback to have run."""
        if self._state == "RUN":
            raise ValueError("Pool is still running")
        self._driver.close(wait=True)
        self._callbacks.join()

    def _shutdown(self, wait, cancel):
        self._state = "TERMINATE" if cancel else "CLOSE"
        if cancel:
            self._driver.terminate()
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
    as_completed, wait and asyncio's run_in_executor. Each call is handed to an idle worker
    as soon as it is submitted, and its future completes as soon as it is done. A worker's
    crash fails the futures still running with WorkerCrashed; the next call starts new
    workers."""

    def __init__(self, max_workers=None, *, cores=None, shared_bytes=0):
        if max_workers is not None and cores is not None:
            raise TypeError("give max_workers or cores, not both")
        if max_workers is not None:
            max_workers = _count("max_workers", max_workers)
            if max_workers <= 0:
                raise ValueError("max_workers must be greater than 0")
        self._driver = _Driver(max_workers if max_workers is not None else cores, shared_bytes,
                               finish_at_exit=True)
        self._closed = False
        weakref.finalize(self, self._driver.close, False).atexit = False  # _close_all's

    def _check(self):
        self._driver.check()
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def submit(self, fn, /, *args, **kwargs):
        self._check()
        _check_function(fn)
        future = concurrent.futures.Future()

        def arrive(k, outcome):
            try:
                if outcome[0] != "ok":
                    _raise_failure(fn, outcome)
                future.set_result(outcome[1][0])
            except BaseException as e:
                future.set_exception(e)

        def fail(exception):
            if future.done():
                return
            if isinstance(exception, concurrent.futures.CancelledError) and \
                    not future.running():  # shut down with cancel_futures before its run
                future.cancel()
                return
            if not future.running() and not future.set_running_or_notify_cancel():
                return
            future.set_exception(exception)

        _submit_call(self._driver, fn, args, kwargs, arrive, fail,
                     future.set_running_or_notify_cancel)
        return future

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """fn over the iterables' items (zip), in order, each result as soon as it and those
        before it are done; all are handed to the workers now (as concurrent.futures does).
        The iterator raises TimeoutError when a result is not there within timeout of this
        call."""
        self._check()
        _check_function(fn)
        deadline = None if timeout is None else time.monotonic() + timeout
        return _Stream(self._driver, fn, list(zip(*iterables)), True, True,
                       cancel_when_left=True).results(deadline)

    def shutdown(self, wait=True, *, cancel_futures=False):
        """As concurrent.futures': cancel_futures cancels the calls not handed to the workers
        yet (those running, and a few per worker handed over ahead, go on)."""
        self._closed = True
        if cancel_futures:
            self._driver.cancel_queued()
        self._driver.close(wait=wait)

    @property
    def workers(self):
        return self._driver.workers
