/*
 * tasks.c - the user's own Python functions as pareng tasks (pareng._pareng.TaskEngine): an
 * engine whose workers carry the interpreter, messages in its shared heap, the task that runs
 * one call or block of a map (handed to the workers one by one through pareng_serve), and
 * spawn and sync called from Python inside a task. What the messages hold (pickles), how
 * items are cut into blocks, and the interfaces (map, spawn, Pool, Executor) are Python's:
 * pareng/__init__.py.
 *
 * The workers are forked by pareng_start from the thread that holds the GIL, between
 * PyOS_BeforeFork and PyOS_AfterFork_Parent, and each calls PyOS_AfterFork_Child first
 * (pareng_config.after_fork), as os.fork does. A worker is then a one-thread copy of the
 * interpreter that holds its GIL for good: its tasks call Python directly. The caller computes
 * no task while it serves the engine (libpareng's coordinator watches the workers): it holds
 * the GIL only to hand tasks over and take their outcomes.
 */
#define PY_SSIZE_T_CLEAN
#include "module.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Segments of a message start at multiples of this: out-of-band buffers (NumPy arrays) keep
 * the alignment their element types want. */
#define SEGMENT_ALIGN ((size_t)64)

/* ---- the engine object ------------------------------------------------------------------ */

typedef struct TaskEngineObject {
    PyObject_HEAD
    pareng_engine *engine; /* NULL once closed; in a worker, the engine it belongs to */
    pid_t owner;           /* the process that started it */
    pid_t worker_pid;      /* in a worker of this engine: its pid (0 elsewhere) */
    unsigned worker;       /* in a worker: its index */
    unsigned workers;
    unsigned posted;       /* tasks posted and not collected (read and written with the GIL) */
    bool busy;             /* a serve is in progress (read and written with the GIL) */
} TaskEngineObject;

static PyTypeObject TaskEngineType;
PyObject *WorkerCrashed;
/* In a worker: the engine it belongs to (after_fork sets it; NULL elsewhere). */
static TaskEngineObject *worker_self;
/* pareng's Python side, which runs one task: executor(message) -> the message of its
 * outcome (set by set_executor before any fork). */
static PyObject *executor;

static void after_fork(pareng_engine *engine, unsigned worker, void *arg)
{
    PyOS_AfterFork_Child();
    TaskEngineObject *self = arg;
    self->engine = engine;
    self->worker = worker;
    self->worker_pid = getpid();
    worker_self = self;
}

/* The engine usable from this process: the caller's own, or the one a worker belongs to
 * (a worker's copies of other engines' objects point to memory it does not have). */
static pareng_engine *usable(TaskEngineObject *self)
{
    pid_t me = getpid();
    if (self->engine && (self->owner == me || self->worker_pid == me))
        return self->engine;
    PyErr_SetString(PyExc_ValueError, self->engine ? "this pareng engine belongs to another "
                                                     "process" : "the pareng engine is closed");
    return NULL;
}

static PyObject *TaskEngine_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"cores", "shared_bytes", NULL};
    PyObject *cores = NULL, *shared = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO!:TaskEngine", kwlist, &cores,
                                     &PyLong_Type, &shared))
        return NULL;
    /* checked, where "K" took -1 or 2**64 + 1 modulo 2**64 (pareng._start says it first) */
    unsigned long long shared_bytes = shared ? PyLong_AsUnsignedLongLong(shared) : 0;
    if (PyErr_Occurred())
        return NULL;
    if (worker_self) {
        PyErr_SetString(PyExc_RuntimeError, "a pareng task cannot start an engine of its own: "
                        "spawn its work (pareng.spawn) on the engine it runs on");
        return NULL;
    }
    if (!executor) {
        PyErr_SetString(PyExc_RuntimeError, "import pareng (its Python side runs the tasks)");
        return NULL;
    }
    config c;
    if (make_config(cores, NULL, &c) < 0)
        return NULL;
    TaskEngineObject *self = (TaskEngineObject *)type->tp_alloc(type, 0);
    if (!self || sigint_prepare() < 0) {
        Py_XDECREF(self);
        config_free(&c);
        return NULL;
    }
    c.cfg.shared_bytes = shared_bytes;
    c.cfg.after_fork = after_fork;
    c.cfg.after_fork_arg = self;
    /* With the GIL, as os.fork: the workers start holding it. */
    pareng_engine *e;
    PyOS_BeforeFork();
    int rc = pareng_start(&e, &c.cfg);
    PyOS_AfterFork_Parent();
    if (rc < 0) {
        raise_failure(rc, pareng_last_error(), true, cores);
        config_free(&c);
        Py_DECREF(self);
        return NULL;
    }
    config_free(&c);
    self->engine = e;
    self->owner = getpid();
    self->workers = pareng_engine_workers(e);
    return (PyObject *)self;
}

static PyObject *TaskEngine_close(TaskEngineObject *self, PyObject *Py_UNUSED(ignored))
{
    pareng_engine *e = self->engine;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the pareng engine is running: cancel() it first");
        return NULL;
    }
    self->engine = NULL;
    if (e && self->owner == getpid()) {
        Py_BEGIN_ALLOW_THREADS
        pareng_stop(e);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static void TaskEngine_dealloc(TaskEngineObject *self)
{
    /* No run holds it: a run holds a reference. */
    if (self->engine && self->owner == getpid())
        pareng_stop(self->engine);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- messages ----------------------------------------------------------------------------- */

/* A message in the shared heap: the count of its segments, their lengths, then the segments,
 * each at a multiple of SEGMENT_ALIGN. Its address is its name in every process. */
static size_t aligned(size_t n)
{
    return (n + SEGMENT_ALIGN - 1) & ~(SEGMENT_ALIGN - 1);
}

static PyObject *TaskEngine_put(TaskEngineObject *self, PyObject *segments)
{
    pareng_engine *e = usable(self);
    if (!e)
        return NULL;
    PyObject *seq = PySequence_Fast(segments, "put() takes a sequence of buffers");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0;
    Py_buffer *views = PyMem_Calloc((size_t)n + 1, sizeof *views);
    size_t head = aligned(((size_t)n + 1) * sizeof(uint64_t)), total = head;
    PyObject *address = NULL;
    if (!views) {
        PyErr_NoMemory();
        goto out;
    }
    for (; got < n; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got],
                               PyBUF_C_CONTIGUOUS) < 0)
            goto out;
        total += aligned((size_t)views[got].len);
    }
    uint64_t *m = pareng_alloc(e, total);
    if (!m) {
        PyErr_Format(PyExc_MemoryError, "%s (a message of %zu bytes; a larger shared_bytes= "
                     "makes room)", pareng_last_error(), total);
        goto out;
    }
    m[0] = (uint64_t)n;
    char *at = (char *)m + head;
    for (Py_ssize_t k = 0; k < n; k++) {
        m[k + 1] = (uint64_t)views[k].len;
        memcpy(at, views[k].buf, (size_t)views[k].len);
        at += aligned((size_t)views[k].len);
    }
    address = PyLong_FromUnsignedLongLong((uint64_t)(uintptr_t)m);
    if (!address)
        pareng_free(e, m);
out:
    for (Py_ssize_t k = 0; k < got; k++)
        PyBuffer_Release(&views[k]);
    PyMem_Free(views);
    Py_DECREF(seq);
    return address;
}

static char *first_segment(uint64_t *m)
{
    return (char *)m + aligned(((size_t)m[0] + 1) * sizeof(uint64_t));
}

/* A message's address from Python: only pareng's own code makes them. */
static uint64_t *message_at(PyObject *address)
{
    unsigned long long a = PyLong_AsUnsignedLongLong(address);
    if (a == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (a == 0 || a % SEGMENT_ALIGN) {
        PyErr_Format(PyExc_ValueError, "%#llx is not the address of a message", a);
        return NULL;
    }
    return (uint64_t *)(uintptr_t)a;
}

/* The segments as read-only memoryviews of the shared memory: valid until free(). */
static PyObject *TaskEngine_get(TaskEngineObject *self, PyObject *address)
{
    uint64_t *m;
    if (!usable(self) || !(m = message_at(address)))
        return NULL;
    Py_ssize_t n = (Py_ssize_t)m[0];
    PyObject *list = PyList_New(n);
    char *at = first_segment(m);
    for (Py_ssize_t k = 0; list && k < n; k++) {
        PyObject *view = PyMemoryView_FromMemory(at, (Py_ssize_t)m[k + 1], PyBUF_READ);
        if (!view) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, k, view);
        at += aligned((size_t)m[k + 1]);
    }
    return list;
}

static PyObject *TaskEngine_free(TaskEngineObject *self, PyObject *address)
{
    pareng_engine *e = usable(self);
    uint64_t *m;
    if (!e || !(m = message_at(address)))
        return NULL;
    if (pareng_free(e, m) < 0) {
        PyErr_SetString(PyExc_ValueError, pareng_last_error());
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- tasks ---------------------------------------------------------------------------------- */

/* A Python task as its worker runs it: spawn and sync, called from Python, move its deque head
 * as PARENG_SPAWN and PARENG_SYNC would in its body. */
typedef struct task_context {
    pareng_worker *w;
    pareng_frame **h;          /* the task's deque head */
    pareng_frame *base;        /* the head when it began: frames above are its spawns */
    unsigned long long serial; /* which task this is, for the handles of its spawns */
    struct task_context *outer;
} task_context;

/* The innermost task this worker runs (others wait below it, in syncs). */
static task_context *current_task;
static unsigned long long task_serial;

/* A task's outcome when its Python went past the recursion limit (each level of nested spawns
 * adds a few of pareng's calls to the user's): no message's address, which is never 1. The
 * task that waits for it gets a RecursionError, as plain Python would, and has more room. */
#define OUTCOME_TOO_DEEP 1

/* One call or block, pickled in the message; returns its outcome's message, OUTCOME_TOO_DEEP,
 * or 0 when pareng's own Python failed (it printed why). Arguments and results are copies whoever runs the task,
 * its spawner's worker or a thief: a program's answer never depends on who stole what. */
PARENG_TASK_1(uint64_t, pytask, uint64_t, message)
{
    task_context ctx = {pareng__w, pareng__hp, PARENG__H, ++task_serial, current_task};
    current_task = &ctx;
    PyObject *r = PyObject_CallFunction(executor, "K", (unsigned long long)message);
    /* The executor syncs its spawns; only a failure of its own leaves some. */
    while (PARENG__H > ctx.base)
        (void)pytask__sync(pareng__w, pareng__hp, PARENG__CLONE_EVERY, 0, __func__);
    current_task = ctx.outer;
    uint64_t out = r ? PyLong_AsUnsignedLongLong(r) : 0;
    Py_XDECREF(r);
    if (PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear(); /* too deep to print it, as to report it */
        out = OUTCOME_TOO_DEEP;
    } else if (PyErr_Occurred()) {
        PyErr_Print();
        out = 0;
    }
    return out;
}

/* serve(step): what pareng.map and a Pool or an Executor run while they have work
 * (pareng_serve). */
typedef struct serving {
    TaskEngineObject *self;
    PyObject *step;
    PyThreadState *thread; /* the serving thread's state while the GIL is released */
    bool python_failed;    /* step raised: its exception is pending */
} serving;

/* With the GIL: the outcomes collected to step, which posts (post()) and says whether to go
 * on; with no room when the engine failed (only what finished before is delivered). -EIO when
 * step raised. */
static int serve_with_gil(pareng_engine *e, serving *s, bool failed)
{
    PyObject *done = PyList_New(0), *go_on = NULL;
    uint64_t tag, outcome;
    while (done && pareng_collect(e, &tag, &outcome, sizeof outcome) > 0) {
        s->self->posted--;
        PyObject *pair = Py_BuildValue("KK", (unsigned long long)tag,
                                       (unsigned long long)outcome);
        if (!pair || PyList_Append(done, pair) < 0)
            Py_CLEAR(done);
        Py_XDECREF(pair);
    }
    if (done)
        go_on = PyObject_CallFunction(s->step, "OI", done,
                                      failed ? 0u : PARENG_SERVE_SLOTS - s->self->posted);
    Py_XDECREF(done);
    int rc = go_on ? PyObject_IsTrue(go_on) : -1;
    Py_XDECREF(go_on);
    if (rc < 0) {
        s->python_failed = true;
        return -EIO;
    }
    return rc;
}

static int serve_step(pareng_engine *e, void *arg)
{
    serving *s = arg;
    PyEval_RestoreThread(s->thread);
    int rc = serve_with_gil(e, s, false);
    s->thread = PyEval_SaveThread();
    return rc;
}

/* serve(step): serves the engine (pareng_serve) while step returns true. step(done, room)
 * gets the (tag, outcome message) of each finished task, and may post() room more. Runs in
 * the thread that started the engine. Raises
 * WorkerCrashed when a worker died, KeyboardInterrupt after ^C, OSError (BrokenPipeError)
 * on an engine that failed before, or step's exception (the engine is then failed). */
static PyObject *TaskEngine_serve(TaskEngineObject *self, PyObject *step)
{
    if (!usable(self))
        return NULL;
    if (self->worker_pid)
        return PyErr_Format(PyExc_RuntimeError, "a pareng task cannot serve an engine");
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the pareng engine is already running");
        return NULL;
    }
    if (sigint_prepare() < 0)
        return NULL;
    serving s = {.self = self, .step = step};
    pareng_engine *e = self->engine;
    char message[PARENG_ERROR_MAX];
    self->busy = true;
    Py_INCREF(self);
    s.thread = PyEval_SaveThread();
    int rc = pareng_serve(e, PARENG_CUTOFF_NONE, serve_step, &s);
    snprintf(message, sizeof message, "%s", rc < 0 ? pareng_last_error() : "");
    PyEval_RestoreThread(s.thread);
    self->busy = false;
    Py_DECREF(self);
    if (s.python_failed)
        return NULL; /* step's exception */
    if (rc < 0) {
        /* The tasks that finished before a worker died or ^C: their outcomes are delivered
         * (pareng_collect gives them on a failed engine), and only the others fail: a call
         * that ran to its end is not reported as crashed, to be run again. */
        if (serve_with_gil(e, &s, true) < 0)
            return NULL;
        raise_failure(rc, message, false, NULL);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* post(tag, message): the message's call or block to the workers now, from serve's step
 * (which is given the room there is). */
static PyObject *TaskEngine_post(TaskEngineObject *self, PyObject *args)
{
    unsigned long long tag, message;
    if (!PyArg_ParseTuple(args, "KK:post", &tag, &message))
        return NULL;
    if (!self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "post() is serve()'s step's");
        return NULL;
    }
    if (PARENG_POST(self->engine, tag, pytask, (uint64_t)message) < 0)
        return PyErr_Format(PyExc_OSError, "pareng_post: %s", pareng_last_error());
    self->posted++;
    Py_RETURN_NONE;
}

static PyObject *TaskEngine_wake(TaskEngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->engine && self->owner == getpid() && !self->worker_pid)
        pareng_serve_wake(self->engine);
    Py_RETURN_NONE;
}

static PyObject *TaskEngine_cancel(TaskEngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->engine && self->owner == getpid() && !self->worker_pid)
        pareng_cancel(self->engine);
    Py_RETURN_NONE;
}

static PyObject *TaskEngine_get_workers(TaskEngineObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLong(self->workers);
}

static PyObject *TaskEngine_get_worker_pids(TaskEngineObject *self, void *Py_UNUSED(closure))
{
    pareng_engine *e = usable(self);
    if (!e)
        return NULL;
    PyObject *t = PyTuple_New(self->workers);
    for (unsigned i = 0; t && i < self->workers; i++) {
        PyObject *pid = PyLong_FromLong(pareng_engine_worker_pid(e, i));
        if (!pid) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, pid);
    }
    return t;
}

static PyObject *TaskEngine_get_closed(TaskEngineObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->engine == NULL);
}

static PyMethodDef TaskEngine_methods[] = {
    {"put", (PyCFunction)TaskEngine_put, METH_O,
     "put($self, segments, /)\n--\n\n"
     "Copies the buffers into one message of the shared memory; returns its address."},
    {"get", (PyCFunction)TaskEngine_get, METH_O,
     "get($self, address, /)\n--\n\n"
     "The segments of a message, read-only memoryviews valid until free()."},
    {"free", (PyCFunction)TaskEngine_free, METH_O, "free($self, address, /)\n--\n\n"},
    {"serve", (PyCFunction)TaskEngine_serve, METH_O,
     "serve($self, step, /)\n--\n\n"
     "Serves tasks while step(done, room) returns true: done the (tag, outcome) of each\n"
     "finished task; step may post() room more."},
    {"post", (PyCFunction)TaskEngine_post, METH_VARARGS,
     "post($self, tag, message, /)\n--\n\nThe message's task to the workers (in serve's step)."},
    {"wake", (PyCFunction)TaskEngine_wake, METH_NOARGS,
     "wake($self, /)\n--\n\nMakes serve() call its step soon (from any thread)."},
    {"cancel", (PyCFunction)TaskEngine_cancel, METH_NOARGS,
     "cancel($self, /)\n--\n\nCancels the serve in progress (from any thread)."},
    {"close", (PyCFunction)TaskEngine_close, METH_NOARGS,
     "close($self, /)\n--\n\nStops the workers."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef TaskEngine_getset[] = {
    {"workers", (getter)TaskEngine_get_workers, NULL, "Number of worker processes.", NULL},
    {"worker_pids", (getter)TaskEngine_get_worker_pids, NULL, "Their process ids.", NULL},
    {"closed", (getter)TaskEngine_get_closed, NULL, "True once closed.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TaskEngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pareng._pareng.TaskEngine",
    .tp_basicsize = sizeof(TaskEngineObject),
    .tp_dealloc = (destructor)TaskEngine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TaskEngine(cores=None, shared_bytes=0)\n--\n\n"
              "An engine whose workers run Python (pareng.Pool's); its messages and runs are\n"
              "pareng's own plumbing, not an interface.",
    .tp_methods = TaskEngine_methods,
    .tp_getset = TaskEngine_getset,
    .tp_new = TaskEngine_new,
};

/* ---- spawn and sync from Python ------------------------------------------------------------- */

static task_context *inside_task(void)
{
    if (!current_task)
        PyErr_SetString(PyExc_RuntimeError, "pareng.spawn works inside a task (a function that "
                        "pareng.map, pareng.run, a Pool or an Executor runs)");
    return current_task;
}

static PyObject *task_spawn(PyObject *Py_UNUSED(module), PyObject *args)
{
    unsigned long long message;
    task_context *c = inside_task();
    if (!c || !PyArg_ParseTuple(args, "K:task_spawn", &message))
        return NULL;
    pytask__spawn(c->w, *c->h, message);
    ++*c->h;
    /* what PARENG_SHARE() does in a C task: the spawner goes on in Python, which makes no
     * spawn or sync that would share it when a thief asks */
    pareng__share_now(c->w, *c->h);
    return PyLong_FromUnsignedLongLong(c->serial);
}

/* The message of the outcome of the current task's most recent unsynced spawn (run here if
 * nobody stole it; else the worker runs other tasks until the thief is done). */
static PyObject *task_sync(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    task_context *c = inside_task();
    if (!c)
        return NULL;
    if (*c->h <= c->base) {
        PyErr_SetString(PyExc_RuntimeError, "pareng: nothing left to sync in this task");
        return NULL;
    }
    uint64_t outcome = pytask__sync(c->w, c->h, PARENG__CLONE_EVERY, 0, __func__);
    if (outcome == OUTCOME_TOO_DEEP) {
        PyErr_SetString(PyExc_RecursionError, "maximum recursion depth exceeded in a spawned "
                        "task (each level of pareng.spawn nests a few of pareng's own calls)");
        return NULL;
    }
    if (outcome)
        return PyLong_FromUnsignedLongLong(outcome);
    PyErr_SetString(PyExc_RuntimeError, "pareng: a spawned task failed in pareng's own code "
                    "(its worker printed why on stderr)");
    return NULL;
}

/* (serial of the running task or 0, worker index or -1) */
static PyObject *task_where(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("Ki", current_task ? current_task->serial : 0ull,
                         worker_self ? (int)worker_self->worker : -1);
}

static PyObject *worker_engine(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(worker_self ? (PyObject *)worker_self : Py_None);
}

static PyObject *set_executor(PyObject *Py_UNUSED(module), PyObject *fn)
{
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "the executor must be callable");
        return NULL;
    }
    Py_XSETREF(executor, Py_NewRef(fn));
    Py_RETURN_NONE;
}

/* values.append(fn(item)) for each item (fn(*item) with star), in a C loop as fast as
 * map's. An exception of fn ends it as it is, with the values before it in place: map's
 * iteration would take a StopIteration of fn for its own end and drop the item. */
static PyObject *call_each(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *fn, *items, *values;
    int star;
    if (!PyArg_ParseTuple(args, "OOpO!:call_each", &fn, &items, &star, &PyList_Type, &values))
        return NULL;
    PyObject *it = PyObject_GetIter(items);
    if (!it)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it))) {
        PyObject *value;
        if (star) {
            PyObject *positional = PySequence_Tuple(item);
            value = positional ? PyObject_Call(fn, positional, NULL) : NULL;
            Py_XDECREF(positional);
        } else {
            value = PyObject_CallOneArg(fn, item);
        }
        Py_DECREF(item);
        int appended = value ? PyList_Append(values, value) : -1;
        Py_XDECREF(value);
        if (appended < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef task_functions[] = {
    {"call_each", (PyCFunction)call_each, METH_VARARGS,
     "call_each(fn, items, star, values, /)\n--\n\n"
     "values.append(fn(item)), or fn(*item) with star, for each item; an exception of fn\n"
     "(StopIteration too) is raised as it is, the values before it appended."},
    {"task_spawn", (PyCFunction)task_spawn, METH_VARARGS,
     "task_spawn(message, /)\n--\n\n"
     "Pushes a task of the message on this worker's deque; returns the task's serial."},
    {"task_sync", (PyCFunction)task_sync, METH_NOARGS,
     "task_sync()\n--\n\nThe outcome of the most recent unsynced spawn."},
    {"task_where", (PyCFunction)task_where, METH_NOARGS,
     "task_where()\n--\n\n(serial of the running task or 0, worker index or -1)."},
    {"worker_engine", (PyCFunction)worker_engine, METH_NOARGS,
     "worker_engine()\n--\n\nIn a worker: the TaskEngine it belongs to; else None."},
    {"set_executor", (PyCFunction)set_executor, METH_O,
     "set_executor(fn, /)\n--\n\nfn(message) runs each task."},
    {NULL, NULL, 0, NULL},
};

int tasks_init(PyObject *module)
{
    if (PyType_Ready(&TaskEngineType) < 0 || PyModule_AddType(module, &TaskEngineType) < 0 ||
        PyModule_AddFunctions(module, task_functions) < 0)
        return -1;
    WorkerCrashed = PyErr_NewExceptionWithDoc(
        "pareng.WorkerCrashed",
        "A worker process died during a run (a segfault, os._exit, a signal such as the OOM\n"
        "killer's SIGKILL); the message names the worker and how it ended. The engine's\n"
        "other workers are stopped; a Pool starts new ones for its next call.",
        PyExc_ChildProcessError, NULL);
    if (!WorkerCrashed || PyModule_AddIntConstant(module, "OUTCOME_TOO_DEEP", OUTCOME_TOO_DEEP) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "WorkerCrashed", WorkerCrashed);
}
