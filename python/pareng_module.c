/*
 * pareng_module.c - the `pareng._pareng` extension module (the `pareng` package, pareng/, says
 * what users see): the fib workload (workloads/) on libpareng, one call at a time (pareng.fib,
 * pareng.map("fib", ...)) or on an engine kept for many calls (pareng.Engine); the shared
 * configuration, error and ^C helpers (module.h). The user's own Python functions as tasks
 * are tasks.c's.
 *
 * Only C runs in the workers of these engines: Python passes numbers in and gets numbers back. The GIL
 * is released while an engine starts, runs and stops, so other Python threads go on meanwhile.
 * Every engine call of an Engine is serialized by a lock of its own (libpareng's engines are
 * not meant for concurrent runs). docs/python.md describes the API.
 *
 * The texts of cores= and cutoff=, and the PARENG_* environment, are the library's to parse
 * (pareng_config_set_cores, pareng_config_set_cutoff, pareng_config_default): this module
 * only turns Python objects into those texts and the library's messages into exceptions.
 * ^C is the library's too (pareng_cancel_on_signal).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pareng.h>
#include <workloads.h>

#include "module.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Items of one workload_fib_map call: 12 bytes each in the engine's shared memory (8 MiB). */
#define MAP_CHUNK ((size_t)1 << 16)
#define CORES_HELP "cores must be None, \"auto\", a number of workers or a CPU list string " \
                   "such as \"0,2-3\" or \"core:0-1\""
#define CUTOFF_HELP "cutoff must be None, \"auto\", \"none\" or an int depth"

/* ---- arguments ------------------------------------------------------------------------------ */

/* An int argument (anything with __index__, bool excepted) as a C long long; -1 with an
 * exception set when it is none; *overflow set when it does not fit. */
static int get_int(PyObject *obj, const char *what, long long *out, int *overflow)
{
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *index = PyNumber_Index(obj);
    if (!index)
        return -1;
    *out = PyLong_AsLongLongAndOverflow(index, overflow);
    Py_DECREF(index);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/* n of fib(n): an int in 0..WORKLOAD_FIB_MAX. */
static int parse_n(PyObject *obj, const char *what, unsigned *n)
{
    long long v;
    int overflow;
    if (get_int(obj, what, &v, &overflow) < 0)
        return -1;
    if (overflow || v < 0 || v > WORKLOAD_FIB_MAX) {
        PyObject *r = PyObject_Repr(obj);
        PyErr_Format(PyExc_ValueError,
                     "%s must be in 0..%d (fib(%d) is the largest that fits in 64 bits), not %S",
                     what, WORKLOAD_FIB_MAX, WORKLOAD_FIB_MAX, r ? r : Py_None);
        Py_XDECREF(r);
        return -1;
    }
    *n = (unsigned)v;
    return 0;
}

/* grain: fib's own cutoff. None or 0: none of its own (every call is written as a task and the
 * engine's cutoff decides which run as serial C); G > 0: calls with n < G run as serial C and
 * every call above them is a task. Values above WORKLOAD_FIB_MAX + 1 all mean "all serial". */
static int parse_grain(PyObject *obj, unsigned *grain)
{
    if (!obj || obj == Py_None) {
        *grain = 0;
        return 0;
    }
    long long v;
    int overflow;
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "grain must be None or an int >= 0, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (get_int(obj, "grain", &v, &overflow) < 0)
        return -1;
    if (overflow < 0 || (!overflow && v < 0)) {
        PyErr_Format(PyExc_ValueError,
                     "grain must be None or an int >= 0 (None or 0: fib has no grain of its "
                     "own and the engine's cutoff decides), not %S", obj);
        return -1;
    }
    *grain = overflow || v > WORKLOAD_FIB_MAX + 1 ? WORKLOAD_FIB_MAX + 1 : (unsigned)v;
    return 0;
}

/* obj as the text the library parses, in *text (PyMem_Free it): a str as it is, an int
 * (anything with __index__, bool excepted) in decimal. TypeError for any other type. */
static int argument_text(PyObject *obj, const char *name, const char *help, char **text)
{
    *text = NULL;
    PyObject *str;
    if (PyBool_Check(obj) || (!PyUnicode_Check(obj) && !PyIndex_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s, not %.100s", help, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyUnicode_Check(obj)) {
        str = Py_NewRef(obj);
    } else {
        PyObject *index = PyNumber_Index(obj);
        if (!index)
            return -1;
        str = PyObject_Str(index);
        Py_DECREF(index);
        if (!str)
            return -1;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(str, &len);
    if (s && strlen(s) != (size_t)len) {
        PyErr_Format(PyExc_ValueError, "%s=%R: a NUL character in the text", name, obj);
        s = NULL;
    }
    if (s && !(*text = PyMem_Malloc((size_t)len + 1)))
        PyErr_NoMemory();
    if (*text)
        memcpy(*text, s, (size_t)len + 1);
    Py_DECREF(str);
    return *text ? 0 : -1;
}

void config_free(config *c)
{
    PyMem_Free(c->cpus);
    c->cpus = NULL;
}

/* ValueError for a malformed environment or a cores/cutoff text the library refuses, with
 * its message; TypeError for an argument of another type. */
int make_config(PyObject *cores, PyObject *cutoff, config *c)
{
    memset(c, 0, sizeof *c);
    if (pareng_config_default(&c->cfg) < 0) {
        PyErr_SetString(PyExc_ValueError, pareng_last_error());
        return -1;
    }
    /* The interpreter keeps its state in the python executable's globals, and workers run
     * Python: each must have its own copy, as after os.fork, which the caller's writes never
     * reach. */
    c->cfg.globals = PARENG_GLOBALS_FORKED;
    /* and every task writes the objects the caller made (their reference counts), in its
     * worker's copy, as after os.fork: that memory must stay writable there. */
    c->cfg.caller_memory = PARENG_CALLER_MEMORY_WRITABLE;
    if (cores && cores != Py_None) {
        if (argument_text(cores, "cores", CORES_HELP, &c->cpus) < 0)
            return -1;
        if (!PyUnicode_Check(cores) && c->cpus[0] == '-') {
            /* a negative int, whose text would read as a malformed CPU list */
            PyErr_Format(PyExc_ValueError, "cores=%R: a worker count is 1 to %d", cores,
                         PARENG_MAX_WORKERS);
            config_free(c);
            return -1;
        }
        if (pareng_config_set_cores(&c->cfg, c->cpus) < 0) {
            PyErr_Format(PyExc_ValueError, "cores=%R: %s", cores, pareng_last_error());
            config_free(c);
            return -1;
        }
    }
    if (cutoff && cutoff != Py_None) {
        char *text;
        if (argument_text(cutoff, "cutoff", CUTOFF_HELP, &text) < 0) {
            config_free(c);
            return -1;
        }
        int rc = pareng_config_set_cutoff(&c->cfg, text);
        PyMem_Free(text);
        if (rc < 0) {
            PyErr_Format(PyExc_ValueError, "cutoff=%R: %s", cutoff, pareng_last_error());
            config_free(c);
            return -1;
        }
        c->cutoff_given = true;
    }
    return 0;
}

/* fib's grain replaces the engine's cutoff: the two are not given together. whose: "" for
 * a cutoff= of the same call, or "this Engine's ". */
static int check_grain_and_cutoff(unsigned grain, PyObject *grain_obj, PyObject *cutoff,
                                  const char *whose)
{
    if (grain == 0 || !cutoff || cutoff == Py_None)
        return 0;
    PyErr_Format(PyExc_ValueError,
                 "grain=%R and %scutoff=%R do not go together: fib's grain replaces the "
                 "engine's cutoff (give grain=None to use the cutoff)", grain_obj, whose, cutoff);
    return -1;
}

/* cutoff_depth as Python shows it: "auto", "none" or the depth. */
static PyObject *cutoff_value(unsigned depth)
{
    if (depth == PARENG_CUTOFF_AUTO)
        return PyUnicode_FromString("auto");
    if (depth == PARENG_CUTOFF_NONE)
        return PyUnicode_FromString("none");
    return PyLong_FromUnsignedLong(depth);
}

static int check_workload(PyObject *workload)
{
    if (!PyUnicode_Check(workload)) {
        PyErr_Format(PyExc_TypeError, "the workload must be a str (\"fib\"), not %.100s",
                     Py_TYPE(workload)->tp_name);
        return -1;
    }
    if (PyUnicode_CompareWithASCIIString(workload, "fib") != 0) {
        PyErr_Format(PyExc_ValueError, "unknown workload %R: the workloads are: \"fib\"",
                     workload);
        return -1;
    }
    return 0;
}

/* items: an iterable of ints in 0..WORKLOAD_FIB_MAX, as a PyMem array. */
static int parse_items(PyObject *items, unsigned **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (PyUnicode_Check(items) || PyBytes_Check(items) || PyByteArray_Check(items)) {
        PyErr_Format(PyExc_TypeError, "items must be an iterable of ints, not %.100s",
                     Py_TYPE(items)->tp_name);
        return -1;
    }
    PyObject *it = PyObject_GetIter(items);
    if (!it) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "items must be an iterable of ints, not %.100s",
                         Py_TYPE(items)->tp_name);
        }
        return -1;
    }
    Py_ssize_t hint = PyObject_LengthHint(items, 16);
    if (hint < 0) {
        Py_DECREF(it);
        return -1;
    }
    /* Only a hint: a huge one (range(2**62), or any __length_hint__) must neither overflow
     * capacity * sizeof *ns nor reserve memory for items that may never come; the array grows
     * as the items do. */
    size_t capacity = hint < 16 ? 16 : hint > (Py_ssize_t)MAP_CHUNK ? MAP_CHUNK : (size_t)hint;
    size_t n = 0;
    unsigned *ns = PyMem_Malloc(capacity * sizeof *ns);
    if (!ns) {
        Py_DECREF(it);
        PyErr_NoMemory();
        return -1;
    }
    PyObject *item;
    while ((item = PyIter_Next(it))) {
        char what[64];
        snprintf(what, sizeof what, "items[%zu]", n);
        if (n == capacity) {
            unsigned *bigger = capacity < PY_SSIZE_T_MAX / 2 / sizeof *ns
                                   ? PyMem_Realloc(ns, 2 * capacity * sizeof *ns)
                                   : NULL;
            if (!bigger) {
                Py_DECREF(item);
                PyErr_NoMemory();
                break;
            }
            ns = bigger;
            capacity *= 2;
        }
        int rc = parse_n(item, what, &ns[n]);
        Py_DECREF(item);
        if (rc < 0)
            break;
        n++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        PyMem_Free(ns);
        return -1;
    }
    *out = ns;
    *count = n;
    return 0;
}

/* ---- jobs: what runs with the GIL released --------------------------------------------------- */

typedef struct job {
    bool map;
    unsigned n, grain;       /* fib(n) */
    const unsigned *ns;      /* map: count items */
    size_t count;
    uint64_t result;         /* fib(n) */
    uint64_t *results;       /* map: count results */
    int rc;                  /* 0 or a negative errno */
    bool at_start;           /* rc came from pareng_start */
    char message[PARENG_ERROR_MAX];       /* the message of the failure */
} job;

/* ^C, before each job (with the GIL: Python's signal.signal changes the handler with it held
 * too): (re)installs libpareng's SIGINT handler, which cancels the runs in progress of every
 * engine of the process and then calls the handler it replaced (Python's, so that
 * KeyboardInterrupt follows), and forgets a ^C left from before. A SIGINT with its default
 * action (the process ends, and the workers with it) or ignored is left as it is. Returns -1
 * with the exception of a ^C that came before the job (Python's handler already ran). */
int sigint_prepare(void)
{
    struct sigaction current;
    if (sigaction(SIGINT, NULL, &current) == 0 &&
        ((current.sa_flags & SA_SIGINFO) ||
         (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN)))
        pareng_cancel_on_signal(SIGINT); /* idempotent; chains to a handler set since */
    pareng_cancel_signal(1);
    return PyErr_CheckSignals();
}

static void job_fail(job *j, int rc, const char *message)
{
    j->rc = rc;
    snprintf(j->message, sizeof j->message, "%s", message);
}

/* Runs the job on a started engine. No GIL. */
static void job_run(pareng_engine *e, job *j)
{
    int rc;
    if (!j->map) {
        rc = workload_fib(e, j->n, j->grain, &j->result);
    } else {
        rc = 0;
        for (size_t at = 0; at < j->count && rc == 0; at += MAP_CHUNK) {
            size_t k = j->count - at < MAP_CHUNK ? j->count - at : MAP_CHUNK;
            rc = workload_fib_map(e, j->ns + at, k, j->grain, j->results + at);
        }
    }
    if (rc < 0)
        job_fail(j, rc, workload_error());
}

static void raise_oserror(int err, const char *message)
{
    /* OSError(errno, message): OSError picks the subclass (EPIPE: BrokenPipeError), but for a
     * dead worker's ECHILD, pareng's own. */
    PyObject *exc = PyObject_CallFunction(err == ECHILD ? WorkerCrashed : PyExc_OSError, "is",
                                          err, message[0] ? message : strerror(err));
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

void raise_failure(int rc, const char *message, bool at_start, PyObject *cores)
{
    int err = -rc;
    if (err == ECANCELED) {
        /* On the main thread, Python's handler ran during the job: KeyboardInterrupt, or
         * whatever the program's SIGINT handler raises (elsewhere this does nothing). */
        if (PyErr_CheckSignals() < 0)
            return;
        int sig = pareng_cancel_signal(0);
        if (sig) {
            char text[128];
            snprintf(text, sizeof text, "interrupted by %s: the run was cancelled",
                     sig == SIGINT ? "SIGINT (^C)" : "a signal");
            raise_oserror(err, text);
            return;
        }
    }
    if (at_start && (err == EINVAL || err == ERANGE)) {
        /* the placement was refused: say where it came from */
        const char *places = getenv("PARENG_PLACES");
        if (cores && cores != Py_None)
            PyErr_Format(PyExc_ValueError, "cores=%R: %s", cores, message);
        else if (places)
            PyErr_Format(PyExc_ValueError, "PARENG_PLACES='%s': %s", places, message);
        else
            PyErr_SetString(PyExc_ValueError, message);
        return;
    }
    if (err == EINVAL) {
        PyErr_SetString(PyExc_ValueError, message);
        return;
    }
    raise_oserror(err, message);
}

/* Sets the Python exception of a failed job. */
static void job_raise(const job *j, PyObject *cores)
{
    raise_failure(j->rc, j->message, j->at_start, cores);
}

static PyObject *job_value(const job *j)
{
    if (!j->map)
        return PyLong_FromUnsignedLongLong(j->result);
    PyObject *list = PyList_New((Py_ssize_t)j->count);
    for (size_t k = 0; list && k < j->count; k++) {
        PyObject *v = PyLong_FromUnsignedLongLong(j->results[k]);
        if (!v) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)k, v);
    }
    return list;
}

/* pareng.fib / pareng.map: an engine for one job, configured by c (freed here). */
static PyObject *run_once(job *j, config *c, PyObject *cores)
{
    if (sigint_prepare() < 0) {
        config_free(c);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    pareng_engine *e;
    int rc = pareng_start(&e, &c->cfg);
    if (rc < 0) {
        job_fail(j, rc, pareng_last_error());
        j->at_start = true;
    } else {
        job_run(e, j);
        pareng_stop(e);
    }
    Py_END_ALLOW_THREADS
    config_free(c);
    if (j->rc < 0) {
        job_raise(j, cores);
        return NULL;
    }
    return job_value(j);
}

/* ---- the Engine type -------------------------------------------------------------------------- */

typedef struct EngineObject {
    PyObject_HEAD
    pareng_engine *engine;     /* NULL once closed */
    PyThread_type_lock lock;   /* held for each engine call, and to close */
    pid_t owner;               /* the process that started it (a forked child must not stop it) */
    bool busy;                 /* a job runs (read and written with the GIL) */
    bool cutoff_given;         /* opened with a cutoff= (then the calls take no grain) */
    unsigned workers;
    unsigned cutoff_depth;     /* pareng_config.cutoff_depth it was started with */
    PyObject *weakrefs;
    struct EngineObject *prev, *next; /* the registry of open engines, closed at exit */
} EngineObject;

static EngineObject *registry; /* changed with the GIL held */

static void registry_add(EngineObject *self)
{
    self->prev = NULL;
    self->next = registry;
    if (registry)
        registry->prev = self;
    registry = self;
}

static void registry_remove(EngineObject *self)
{
    if (self->prev)
        self->prev->next = self->next;
    else if (registry == self)
        registry = self->next;
    if (self->next)
        self->next->prev = self->prev;
    self->prev = self->next = NULL;
}

static PyTypeObject EngineType;

static int check_open(EngineObject *self)
{
    if (!self->engine) {
        PyErr_SetString(PyExc_ValueError, "operation on a closed pareng.Engine");
        return -1;
    }
    if (self->owner != getpid()) {
        PyErr_Format(PyExc_RuntimeError,
                     "this pareng.Engine belongs to process %d; a forked child cannot use it",
                     (int)self->owner);
        return -1;
    }
    return 0;
}

/* Takes the engine's lock, waiting (GIL released) for a job of another thread to end. Returns
 * -1 with ValueError if the engine was closed meanwhile (the lock is then not held). */
static int engine_acquire(EngineObject *self)
{
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    if (check_open(self) < 0) {
        PyThread_release_lock(self->lock);
        return -1;
    }
    return 0;
}

static PyObject *engine_job(EngineObject *self, job *j)
{
    if (engine_acquire(self) < 0)
        return NULL;
    if (sigint_prepare() < 0) {
        PyThread_release_lock(self->lock);
        return NULL;
    }
    pareng_engine *e = self->engine;
    self->busy = true;
    Py_BEGIN_ALLOW_THREADS
    job_run(e, j);
    Py_END_ALLOW_THREADS
    self->busy = false;
    PyThread_release_lock(self->lock);
    if (j->rc < 0) {
        job_raise(j, NULL);
        return NULL;
    }
    return job_value(j);
}

static PyObject *Engine_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"cores", "cutoff", NULL};
    PyObject *cores = NULL, *cutoff = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O$O:Engine", kwlist, &cores, &cutoff))
        return NULL;
    config c;
    if (make_config(cores, cutoff, &c) < 0)
        return NULL;
    EngineObject *self = (EngineObject *)type->tp_alloc(type, 0);
    if (!self) {
        config_free(&c);
        return NULL;
    }
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        config_free(&c);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    job j = {.at_start = true};
    pareng_engine *e = NULL;
    Py_BEGIN_ALLOW_THREADS
    int rc = pareng_start(&e, &c.cfg);
    if (rc < 0)
        job_fail(&j, rc, pareng_last_error());
    Py_END_ALLOW_THREADS
    config_free(&c);
    if (j.rc < 0) {
        job_raise(&j, cores);
        Py_DECREF(self);
        return NULL;
    }
    self->engine = e;
    self->owner = getpid();
    self->workers = pareng_engine_workers(e);
    self->cutoff_given = c.cutoff_given;
    self->cutoff_depth = c.cfg.cutoff_depth;
    registry_add(self);
    return (PyObject *)self;
}

/* Stops the workers and removes the segment (only in the process that started them). The
 * caller holds the GIL and the engine's lock. */
static void engine_stop_locked(EngineObject *self, bool release_gil)
{
    pareng_engine *e = self->engine;
    self->engine = NULL;
    registry_remove(self);
    if (!e || self->owner != getpid())
        return; /* a forked child's copy: the workers are not its own */
    if (release_gil) {
        Py_BEGIN_ALLOW_THREADS
        pareng_stop(e);
        Py_END_ALLOW_THREADS
    } else {
        pareng_stop(e);
    }
}

static PyObject *Engine_close(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->engine && self->owner == getpid()) {
        if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
            Py_BEGIN_ALLOW_THREADS
            PyThread_acquire_lock(self->lock, WAIT_LOCK);
            Py_END_ALLOW_THREADS
        }
        engine_stop_locked(self, true);
        PyThread_release_lock(self->lock);
    } else {
        engine_stop_locked(self, false);
    }
    Py_RETURN_NONE;
}

static void Engine_dealloc(EngineObject *self)
{
    /* Out of the registry first: the weakref callbacks below run Python code, which may let
     * another thread run mod_close_all, and that must not find (and take a reference to) an
     * object being freed. */
    registry_remove(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* Nobody else can hold the lock: every job holds a reference to the engine. */
    engine_stop_locked(self, false);
    if (self->lock)
        PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A grain of fib's own on an Engine opened with a cutoff= is refused, as in one call. */
static int engine_check_grain(EngineObject *self, unsigned grain, PyObject *grain_obj)
{
    if (!self->cutoff_given)
        return 0;
    PyObject *cutoff = cutoff_value(self->cutoff_depth);
    if (!cutoff)
        return -1;
    int rc = check_grain_and_cutoff(grain, grain_obj, cutoff, "this Engine's ");
    Py_DECREF(cutoff);
    return rc;
}

static PyObject *Engine_fib(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "grain", NULL};
    PyObject *n_obj, *grain_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:fib", kwlist, &n_obj, &grain_obj))
        return NULL;
    if (check_open(self) < 0)
        return NULL;
    job j = {0};
    if (parse_n(n_obj, "n", &j.n) < 0 || parse_grain(grain_obj, &j.grain) < 0 ||
        engine_check_grain(self, j.grain, grain_obj) < 0)
        return NULL;
    return engine_job(self, &j);
}

static PyObject *Engine_map(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"workload", "items", "grain", NULL};
    PyObject *workload, *items, *grain_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:map", kwlist, &workload, &items,
                                     &grain_obj))
        return NULL;
    if (check_open(self) < 0)
        return NULL;
    job j = {.map = true};
    unsigned *ns;
    if (check_workload(workload) < 0 || parse_grain(grain_obj, &j.grain) < 0 ||
        engine_check_grain(self, j.grain, grain_obj) < 0 || parse_items(items, &ns, &j.count) < 0)
        return NULL;
    j.ns = ns;
    j.results = PyMem_Malloc((j.count ? j.count : 1) * sizeof *j.results);
    PyObject *r = j.results ? engine_job(self, &j) : PyErr_NoMemory();
    PyMem_Free(j.results);
    PyMem_Free(ns);
    return r;
}

static PyObject *Engine_enter(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_open(self) < 0)
        return NULL;
    return Py_NewRef(self);
}

static PyObject *Engine_exit(EngineObject *self, PyObject *Py_UNUSED(args))
{
    PyObject *r = Engine_close(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *Engine_get_workers(EngineObject *self, void *Py_UNUSED(closure))
{
    if (check_open(self) < 0)
        return NULL;
    return PyLong_FromUnsignedLong(self->workers);
}

static PyObject *Engine_get_worker_pids(EngineObject *self, void *Py_UNUSED(closure))
{
    if (check_open(self) < 0)
        return NULL;
    PyObject *t = PyTuple_New(self->workers);
    for (unsigned i = 0; t && i < self->workers; i++) {
        PyObject *pid = PyLong_FromLong(pareng_engine_worker_pid(self->engine, i));
        if (!pid) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, pid);
    }
    return t;
}

static PyObject *Engine_get_cutoff(EngineObject *self, void *Py_UNUSED(closure))
{
    if (check_open(self) < 0)
        return NULL;
    return cutoff_value(self->cutoff_depth);
}

static PyObject *Engine_get_closed(EngineObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->engine == NULL);
}

static PyObject *Engine_repr(EngineObject *self)
{
    if (!self->engine)
        return PyUnicode_FromString("<pareng.Engine closed>");
    return PyUnicode_FromFormat("<pareng.Engine workers=%u%s>", self->workers,
                                self->busy ? " running" : "");
}

static PyMethodDef Engine_methods[] = {
    {"fib", (PyCFunction)(void (*)(void))Engine_fib, METH_VARARGS | METH_KEYWORDS,
     "fib($self, /, n, grain=None)\n--\n\n"
     "fib(n), 0 <= n <= 93, as an int, on this engine's workers. grain as for\n"
     "pareng.fib; a grain > 0 is refused when the engine was opened with a cutoff."},
    {"map", (PyCFunction)(void (*)(void))Engine_map, METH_VARARGS | METH_KEYWORDS,
     "map($self, /, workload, items, grain=None)\n--\n\n"
     "[fib(n) for n in items] (workload \"fib\") as a list, each item a task, on\n"
     "this engine's workers. grain as for Engine.fib."},
    {"close", (PyCFunction)Engine_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Stops the workers and removes the shared memory; waits for a call of\n"
     "another thread to end. Closing twice is allowed."},
    {"__enter__", (PyCFunction)Engine_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Engine_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"workers", (getter)Engine_get_workers, NULL, "Number of worker processes.", NULL},
    {"worker_pids", (getter)Engine_get_worker_pids, NULL,
     "Process ids of the workers, a tuple (0 for a worker already reaped).", NULL},
    {"cutoff", (getter)Engine_get_cutoff, NULL,
     "The engine's cutoff: \"auto\", \"none\" or a depth (from cutoff= or PARENG_CUTOFF).",
     NULL},
    {"closed", (getter)Engine_get_closed, NULL, "True once the engine is closed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pareng.Engine",
    .tp_basicsize = sizeof(EngineObject),
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_repr = (reprfunc)Engine_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Engine(cores=None, *, cutoff=None)\n--\n\n"
              "A pareng engine kept for many calls: its worker processes start here and\n"
              "stop at close(), at the end of a with-block, when the object is collected\n"
              "or at interpreter exit. cores and cutoff as for pareng.fib. The workers die\n"
              "with the thread that opened the engine: open it in one that outlives it.\n"
              "After a worker died or a call was interrupted (^C), the engine is failed:\n"
              "its calls raise BrokenPipeError; close it and open another.",
    .tp_weaklistoffset = offsetof(EngineObject, weakrefs),
    .tp_methods = Engine_methods,
    .tp_getset = Engine_getset,
    .tp_new = Engine_new,
};

/* ---- module functions ------------------------------------------------------------------------- */

static PyObject *mod_fib(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "cores", "grain", "cutoff", NULL};
    PyObject *n_obj, *cores = NULL, *grain_obj = NULL, *cutoff = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO$O:fib", kwlist, &n_obj, &cores,
                                     &grain_obj, &cutoff))
        return NULL;
    job j = {0};
    config c;
    if (parse_n(n_obj, "n", &j.n) < 0 || parse_grain(grain_obj, &j.grain) < 0 ||
        check_grain_and_cutoff(j.grain, grain_obj, cutoff, "") < 0 ||
        make_config(cores, cutoff, &c) < 0)
        return NULL;
    return run_once(&j, &c, cores);
}

static PyObject *mod_map(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"workload", "items", "cores", "grain", "cutoff", NULL};
    PyObject *workload, *items, *cores = NULL, *grain_obj = NULL, *cutoff = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO$O:map", kwlist, &workload, &items,
                                     &cores, &grain_obj, &cutoff))
        return NULL;
    job j = {.map = true};
    unsigned *ns;
    config c;
    /* everything else is checked before the items are consumed (they may be a generator) */
    if (check_workload(workload) < 0 || parse_grain(grain_obj, &j.grain) < 0 ||
        check_grain_and_cutoff(j.grain, grain_obj, cutoff, "") < 0 ||
        make_config(cores, cutoff, &c) < 0)
        return NULL;
    if (parse_items(items, &ns, &j.count) < 0) {
        config_free(&c);
        return NULL;
    }
    j.ns = ns;
    j.results = PyMem_Malloc((j.count ? j.count : 1) * sizeof *j.results);
    PyObject *r;
    if (j.results) {
        r = run_once(&j, &c, cores);
    } else {
        config_free(&c);
        r = PyErr_NoMemory();
    }
    PyMem_Free(j.results);
    PyMem_Free(ns);
    return r;
}

/* atexit: close every engine still open in this process. A job running in another (daemon)
 * thread is cancelled first; an engine that stays busy is left to die with the process. */
static PyObject *mod_close_all(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    while (registry) {
        EngineObject *self = registry;
        registry_remove(self);
        if (!self->engine || self->owner != getpid())
            continue;
        /* The registry's pointers are borrowed. While the GIL is released below, the thread of
         * a cancelled job may drop the last other reference and free the engine, its lock
         * included: hold one of our own until we are done with it. */
        Py_INCREF(self);
        if (self->busy)
            pareng_cancel(self->engine);
        int locked;
        Py_BEGIN_ALLOW_THREADS
        locked = PyThread_acquire_lock_timed(self->lock, 5 * 1000 * 1000, 0) == PY_LOCK_ACQUIRED;
        Py_END_ALLOW_THREADS
        if (locked) {
            if (self->engine)
                engine_stop_locked(self, true);
            PyThread_release_lock(self->lock);
        }
        Py_DECREF(self);
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"fib", (PyCFunction)(void (*)(void))mod_fib, METH_VARARGS | METH_KEYWORDS,
     "fib($module, /, n, cores=None, grain=None, *, cutoff=None)\n--\n\n"
     "fib(n), 0 <= n <= 93, as an int, on an engine started for this call and\n"
     "stopped after it. The GIL is released meanwhile; ^C cancels the run and\n"
     "raises KeyboardInterrupt.\n\n"
     "cores   where the workers run. None (the default): PARENG_NUM_WORKERS or\n"
     "        PARENG_PLACES from the environment, else \"auto\". \"auto\": one\n"
     "        worker per physical core. An int K, or \"K\": K workers. Any other\n"
     "        str: a CPU list, one worker per CPU it names: \"0,2-3\" (OS numbers),\n"
     "        \"core:all\", \"package:0\", \"numa:0\", \"pu:0-3\" (hwloc logical).\n"
     "grain   fib's own cutoff. None or 0 (the default): none, the engine's\n"
     "        cutoff decides. G > 0: calls with n < G run as plain serial C and\n"
     "        every call above them is a task.\n"
     "cutoff  the engine's cutoff (keyword only). None (the default):\n"
     "        PARENG_CUTOFF from the environment, else \"auto\". \"auto\": the\n"
     "        engine adapts the depth below which tasks run as serial C.\n"
     "        \"none\": every call is a task. An int N: a fixed depth.\n"
     "        Not together with a grain > 0 (ValueError).\n\n"
     "A bad cores or cutoff, or a malformed PARENG_* variable, raises\n"
     "ValueError with libpareng's message."},
    {"map", (PyCFunction)(void (*)(void))mod_map, METH_VARARGS | METH_KEYWORDS,
     "map($module, /, workload, items, cores=None, grain=None, *, cutoff=None)\n--\n\n"
     "[fib(n) for n in items] (workload \"fib\") as a list, each item a task, on\n"
     "an engine started for this call and stopped after it. The GIL is released\n"
     "meanwhile. items: any iterable of ints in 0..93. cores, grain and cutoff\n"
     "as for pareng.fib."},
    {"_close_all", (PyCFunction)mod_close_all, METH_NOARGS,
     "Closes every open Engine (registered with atexit)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef pareng_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pareng._pareng",
    .m_doc = "pareng's C side: the built-in fib workload (fib, map, Engine) and the engine\n"
             "that runs Python tasks (TaskEngine). Use the pareng package; see docs/python.md.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__pareng(void)
{
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&pareng_module);
    if (!m)
        return NULL;
    PyObject *workloads = Py_BuildValue("(s)", "fib");
    if (tasks_init(m) < 0 || PyModule_AddType(m, &EngineType) < 0 ||
        PyModule_AddStringConstant(m, "__version__", pareng_version()) < 0 ||
        PyModule_AddIntConstant(m, "FIB_MAX", WORKLOAD_FIB_MAX) < 0 ||
        PyModule_AddIntConstant(m, "MAX_WORKERS", PARENG_MAX_WORKERS) < 0 || !workloads ||
        PyModule_AddObjectRef(m, "WORKLOADS", workloads) < 0)
        goto fail;
    Py_CLEAR(workloads);
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *close_all = atexit ? PyObject_GetAttrString(m, "_close_all") : NULL;
    PyObject *r = close_all ? PyObject_CallMethod(atexit, "register", "O", close_all) : NULL;
    Py_XDECREF(atexit);
    Py_XDECREF(close_all);
    if (!r)
        goto fail;
    Py_DECREF(r);
    return m;
fail:
    Py_XDECREF(workloads);
    Py_DECREF(m);
    return NULL;
}
