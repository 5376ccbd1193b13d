/*
 * pareng_module.c - the `pareng` Python extension module: the built-in fib workload of libpareng,
 * one call at a time (pareng.fib, pareng.map) or on an engine kept for many calls
 * (pareng.Engine).
 *
 * Only C runs in the worker processes: Python passes numbers in and gets numbers back. The GIL
 * is released while an engine starts, runs and stops, so other Python threads go on meanwhile.
 * Every engine call of an Engine is serialized by a lock of its own (libpareng's engines are
 * not meant for concurrent runs). docs/python.md describes the API.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pareng.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Items of one pareng_fib_map call: 12 bytes each in the engine's shared memory (8 MiB). */
#define MAP_CHUNK ((size_t)1 << 16)
#define CORES_HELP "cores must be \"auto\", a number of workers (1..%d) or a CPU list string " \
                   "such as \"0,2-3\" or \"core:0-1\""

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

/* n of fib(n): an int in 0..PARENG_FIB_MAX. */
static int parse_n(PyObject *obj, const char *what, unsigned *n)
{
    long long v;
    int overflow;
    if (get_int(obj, what, &v, &overflow) < 0)
        return -1;
    if (overflow || v < 0 || v > PARENG_FIB_MAX) {
        PyObject *r = PyObject_Repr(obj);
        PyErr_Format(PyExc_ValueError,
                     "%s must be in 0..%d (fib(%d) is the largest that fits in 64 bits), not %S",
                     what, PARENG_FIB_MAX, PARENG_FIB_MAX, r ? r : Py_None);
        Py_XDECREF(r);
        return -1;
    }
    *n = (unsigned)v;
    return 0;
}

/* grain: None (automatic) or an int >= 0; values above PARENG_FIB_MAX + 1 all mean "serial". */
static int parse_grain(PyObject *obj, unsigned *grain)
{
    if (!obj || obj == Py_None) {
        *grain = PARENG_GRAIN_AUTO;
        return 0;
    }
    long long v;
    int overflow;
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "grain must be None (automatic) or an int >= 0, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (get_int(obj, "grain", &v, &overflow) < 0)
        return -1;
    if (overflow < 0 || (!overflow && v < 0)) {
        PyErr_Format(PyExc_ValueError, "grain must be None (automatic) or an int >= 0, not %S",
                     obj);
        return -1;
    }
    *grain = overflow || v > PARENG_FIB_MAX + 1 ? PARENG_FIB_MAX + 1 : (unsigned)v;
    return 0;
}

static int check_workers(long long k, int overflow, PyObject *shown)
{
    if (!overflow && k == 0) {
        PyErr_Format(PyExc_ValueError, "cores=%R: at least one worker is needed", shown);
        return -1;
    }
    if (overflow || k < 0 || k > PARENG_MAX_WORKERS) {
        PyErr_Format(PyExc_ValueError, "cores=%R: the number of workers must be in 1..%d", shown,
                     PARENG_MAX_WORKERS);
        return -1;
    }
    return 0;
}

/* cores as the CLI's --cores takes it: "auto", a count, or a CPU list (pareng_config.cpus).
 * A list is copied to *cpus (PyMem_Free it); whether it names usable CPUs is pareng_start's to
 * say. */
static int parse_cores(PyObject *obj, pareng_config *cfg, char **cpus)
{
    pareng_config_default(cfg);
    *cpus = NULL;
    if (!obj || obj == Py_None) /* None: "auto" */
        return 0;
    if (PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, CORES_HELP ", not bool", PARENG_MAX_WORKERS);
        return -1;
    }
    if (PyLong_Check(obj)) {
        int overflow;
        long long k = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (k == -1 && PyErr_Occurred())
            return -1;
        if (check_workers(k, overflow, obj) < 0)
            return -1;
        cfg->workers = (unsigned)k;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, CORES_HELP ", not %.100s", PARENG_MAX_WORKERS,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
    if (!s)
        return -1;
    if (len == 0 || strlen(s) != (size_t)len) {
        PyErr_Format(PyExc_ValueError, CORES_HELP ", not %R", PARENG_MAX_WORKERS, obj);
        return -1;
    }
    if (strcmp(s, "auto") == 0)
        return 0;
    if (strspn(s, "0123456789") == (size_t)len) {
        PyObject *k_obj = PyLong_FromString(s, NULL, 10);
        if (!k_obj)
            return -1;
        int overflow;
        long long k = PyLong_AsLongLongAndOverflow(k_obj, &overflow);
        Py_DECREF(k_obj);
        if (check_workers(k, overflow, obj) < 0)
            return -1;
        cfg->workers = (unsigned)k;
        return 0;
    }
    *cpus = PyMem_Malloc((size_t)len + 1);
    if (!*cpus) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(*cpus, s, (size_t)len + 1);
    cfg->cpus = *cpus;
    return 0;
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

/* items: an iterable of ints in 0..PARENG_FIB_MAX, as a PyMem array. */
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
    bool sigint;             /* on_sigint is installed for this job */
    bool interrupted;        /* a SIGINT arrived during the job */
    char message[256];       /* pareng_last_error() of the failure */
} job;

/* ^C during a job on Python's main thread: cancel the run (its workers are killed) and let
 * Python's own handler see the signal too, so that KeyboardInterrupt follows. Only the
 * process's main thread installs the handler (and touches these), one job at a time. */
static pareng_engine *_Atomic sigint_engine;
static atomic_int sigint_in_handler;
static volatile sig_atomic_t sigint_seen;
static struct sigaction sigint_saved;

static void on_sigint(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    atomic_fetch_add(&sigint_in_handler, 1);
    sigint_seen = 1;
    pareng_engine *e = atomic_load(&sigint_engine);
    if (e)
        pareng_cancel(e);
    atomic_fetch_sub(&sigint_in_handler, 1);
    errno = saved_errno;
    if (sigint_saved.sa_flags & SA_SIGINFO)
        sigint_saved.sa_sigaction(sig, info, context);
    else if (sigint_saved.sa_handler != SIG_DFL && sigint_saved.sa_handler != SIG_IGN)
        sigint_saved.sa_handler(sig);
}

/* Installs on_sigint for a job of the main thread; false elsewhere. */
static bool sigint_install(void)
{
    if (syscall(SYS_gettid) != getpid())
        return false;
    struct sigaction current;
    if (sigaction(SIGINT, NULL, &current) < 0)
        return false;
    /* SIG_DFL ends the process anyway (the workers die with it), SIG_IGN means "ignore". */
    if (!(current.sa_flags & SA_SIGINFO) &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN))
        return false;
    sigint_seen = 0;
    sigint_saved = current;
    struct sigaction mine = {.sa_sigaction = on_sigint, .sa_mask = current.sa_mask,
                             .sa_flags = SA_SIGINFO | (current.sa_flags & (SA_ONSTACK | SA_RESTART))};
    return sigaction(SIGINT, &mine, NULL) == 0;
}

static void sigint_target(bool installed, pareng_engine *e)
{
    if (!installed)
        return;
    atomic_store(&sigint_engine, e);
    if (!e) /* a handler still using the engine finishes before the engine may be stopped */
        while (atomic_load(&sigint_in_handler))
            ;
}

/* Puts the program's handler back; true if a SIGINT arrived meanwhile. */
static bool sigint_uninstall(bool installed)
{
    if (!installed)
        return false;
    struct sigaction current;
    if (sigaction(SIGINT, NULL, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
        current.sa_sigaction == on_sigint)
        sigaction(SIGINT, &sigint_saved, NULL);
    return sigint_seen != 0;
}

static void job_fail(job *j, int rc)
{
    j->rc = rc;
    snprintf(j->message, sizeof j->message, "%s", pareng_last_error());
}

/* Runs the job on a started engine. No GIL. */
static void job_run(pareng_engine *e, job *j)
{
    int rc = 0;
    sigint_target(j->sigint, e);
    if (j->sigint && sigint_seen) {
        rc = -ECANCELED;
        snprintf(j->message, sizeof j->message, "interrupted");
    } else if (!j->map) {
        rc = pareng_fib(e, j->n, j->grain, &j->result);
    } else {
        for (size_t at = 0; at < j->count && rc == 0; at += MAP_CHUNK) {
            size_t k = j->count - at < MAP_CHUNK ? j->count - at : MAP_CHUNK;
            rc = pareng_fib_map(e, j->ns + at, k, j->grain, j->results + at);
        }
    }
    sigint_target(j->sigint, NULL);
    if (rc < 0 && !j->message[0])
        job_fail(j, rc);
    j->rc = rc;
}

/* Sets the Python exception of a failed job. */
static void job_raise(const job *j, PyObject *cores)
{
    if (j->interrupted && PyErr_CheckSignals() < 0)
        return; /* KeyboardInterrupt, or whatever the program's SIGINT handler raised */
    int err = -j->rc;
    if (j->at_start && (err == EINVAL || err == ERANGE)) {
        if (cores)
            PyErr_Format(PyExc_ValueError, "cores=%R: %s", cores, j->message);
        else
            PyErr_Format(PyExc_ValueError, "%s", j->message);
        return;
    }
    if (err == EINVAL) {
        PyErr_SetString(PyExc_ValueError, j->message);
        return;
    }
    /* OSError(errno, message): OSError picks the subclass (ECHILD: ChildProcessError). */
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", err,
                                          j->message[0] ? j->message : strerror(err));
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
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

/* pareng.fib / pareng.map: an engine for one job. */
static PyObject *run_once(job *j, PyObject *cores_obj)
{
    pareng_config cfg;
    char *cpus;
    if (parse_cores(cores_obj, &cfg, &cpus) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    j->sigint = sigint_install();
    pareng_engine *e;
    int rc = pareng_start(&e, &cfg);
    if (rc < 0) {
        job_fail(j, rc);
        j->at_start = true;
    } else {
        job_run(e, j);
        pareng_stop(e);
    }
    j->interrupted = sigint_uninstall(j->sigint);
    Py_END_ALLOW_THREADS
    PyMem_Free(cpus);
    if (j->rc < 0) {
        job_raise(j, cores_obj);
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
    unsigned workers;
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
    pareng_engine *e = self->engine;
    self->busy = true;
    Py_BEGIN_ALLOW_THREADS
    j->sigint = sigint_install();
    job_run(e, j);
    j->interrupted = sigint_uninstall(j->sigint);
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
    static char *kwlist[] = {"cores", NULL};
    PyObject *cores = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Engine", kwlist, &cores))
        return NULL;
    pareng_config cfg;
    char *cpus;
    if (parse_cores(cores, &cfg, &cpus) < 0)
        return NULL;
    EngineObject *self = (EngineObject *)type->tp_alloc(type, 0);
    if (!self) {
        PyMem_Free(cpus);
        return NULL;
    }
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        PyMem_Free(cpus);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    job j = {.at_start = true};
    pareng_engine *e = NULL;
    Py_BEGIN_ALLOW_THREADS
    int rc = pareng_start(&e, &cfg);
    if (rc < 0)
        job_fail(&j, rc);
    Py_END_ALLOW_THREADS
    PyMem_Free(cpus);
    if (j.rc < 0) {
        job_raise(&j, cores);
        Py_DECREF(self);
        return NULL;
    }
    self->engine = e;
    self->owner = getpid();
    self->workers = pareng_engine_workers(e);
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

static PyObject *Engine_fib(EngineObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "grain", NULL};
    PyObject *n_obj, *grain_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:fib", kwlist, &n_obj, &grain_obj))
        return NULL;
    if (check_open(self) < 0)
        return NULL;
    job j = {0};
    if (parse_n(n_obj, "n", &j.n) < 0 || parse_grain(grain_obj, &j.grain) < 0)
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
        parse_items(items, &ns, &j.count) < 0)
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
     "fib(n, grain=None) -> int\n\nfib(n) on this engine's workers (0 <= n <= 93)."},
    {"map", (PyCFunction)(void (*)(void))Engine_map, METH_VARARGS | METH_KEYWORDS,
     "map(workload, items, grain=None) -> list\n\n"
     "[fib(n) for n in items] on this engine's workers, each item a task (workload \"fib\")."},
    {"close", (PyCFunction)Engine_close, METH_NOARGS,
     "close()\n\nStops the workers and removes the shared memory; waits for a call of another "
     "thread to end. Closing twice is allowed."},
    {"__enter__", (PyCFunction)Engine_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Engine_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"workers", (getter)Engine_get_workers, NULL, "Number of worker processes.", NULL},
    {"worker_pids", (getter)Engine_get_worker_pids, NULL,
     "Process ids of the workers, a tuple (0 for a worker already reaped).", NULL},
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
    .tp_doc = "Engine(cores=\"auto\")\n\n"
              "A pareng engine kept for many calls: its worker processes are started here and "
              "stopped by close(), at the end of a with-block, when the object is collected, or "
              "at interpreter exit. Use it from threads that outlive it: the workers die with the "
              "thread that opened it.",
    .tp_weaklistoffset = offsetof(EngineObject, weakrefs),
    .tp_methods = Engine_methods,
    .tp_getset = Engine_getset,
    .tp_new = Engine_new,
};

/* ---- module functions ------------------------------------------------------------------------- */

static PyObject *mod_fib(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "cores", "grain", NULL};
    PyObject *n_obj, *cores = NULL, *grain_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:fib", kwlist, &n_obj, &cores, &grain_obj))
        return NULL;
    job j = {0};
    if (parse_n(n_obj, "n", &j.n) < 0 || parse_grain(grain_obj, &j.grain) < 0)
        return NULL;
    return run_once(&j, cores);
}

static PyObject *mod_map(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"workload", "items", "cores", "grain", NULL};
    PyObject *workload, *items, *cores = NULL, *grain_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OO:map", kwlist, &workload, &items, &cores,
                                     &grain_obj))
        return NULL;
    job j = {.map = true};
    unsigned *ns;
    if (check_workload(workload) < 0 || parse_grain(grain_obj, &j.grain) < 0)
        return NULL;
    /* cores is checked before the items are consumed (they may be a generator) */
    pareng_config cfg;
    char *cpus;
    if (parse_cores(cores, &cfg, &cpus) < 0)
        return NULL;
    PyMem_Free(cpus);
    if (parse_items(items, &ns, &j.count) < 0)
        return NULL;
    j.ns = ns;
    j.results = PyMem_Malloc((j.count ? j.count : 1) * sizeof *j.results);
    PyObject *r = j.results ? run_once(&j, cores) : PyErr_NoMemory();
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
     "fib(n, cores=\"auto\", grain=None) -> int\n\n"
     "fib(n) (0 <= n <= 93) on an engine started for this call and stopped after it. The GIL "
     "is released meanwhile."},
    {"map", (PyCFunction)(void (*)(void))mod_map, METH_VARARGS | METH_KEYWORDS,
     "map(workload, items, cores=\"auto\", grain=None) -> list\n\n"
     "[fib(n) for n in items] (workload \"fib\"), each item a task, on an engine started for "
     "this call. The GIL is released meanwhile."},
    {"_close_all", (PyCFunction)mod_close_all, METH_NOARGS,
     "Closes every open Engine (registered with atexit)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef pareng_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pareng",
    .m_doc = "pareng: a work-stealing engine whose workers are processes.\n\n"
             "fib(n), map(\"fib\", items) and Engine run libpareng's built-in C workloads; the "
             "workers run C only, never Python code. See docs/python.md.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit_pareng(void)
{
    if (PyType_Ready(&EngineType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&pareng_module);
    if (!m)
        return NULL;
    PyObject *workloads = Py_BuildValue("(s)", "fib");
    if (PyModule_AddType(m, &EngineType) < 0 ||
        PyModule_AddStringConstant(m, "__version__", pareng_version()) < 0 ||
        PyModule_AddIntConstant(m, "FIB_MAX", PARENG_FIB_MAX) < 0 ||
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
