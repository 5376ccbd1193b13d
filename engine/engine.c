/*
 * engine.c - the scheduler seen from outside: pareng_start maps the arena and forks the workers,
 * pareng__run_root hands them a root task and watches them, pareng_stop ends them.
 *
 * The caller's process is the coordinator, not a worker: while a root task runs it sleeps in
 * poll() on one eventfd (the root is done, or pareng_cancel was called) and on one pidfd per
 * worker (a worker died). That is what lets a crash anywhere be reported within milliseconds,
 * with every process reaped, instead of leaving a joiner waiting forever for a dead thief.
 */
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_DEQUE_CAPACITY (1u << 24)
#define STOP_GRACE_MS 1000
/* While a run is in progress, the coordinator looks this often whether a worker is stopped,
 * and says so after this many looks in a row. */
#define STOPPED_CHECK_MS 1000
#define STOPPED_WARN_CHECKS 3

/* The objects (the program, its libraries) loaded in this process, from dl_iterate_phdr:
 * how many, and the counts of loads and unloads since the process began. */
typedef struct loaded_objects {
    unsigned count;
    unsigned long long adds, subs;
} loaded_objects;

static int count_objects(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    loaded_objects *seen = data;
    seen->count++;
    seen->adds = info->dlpi_adds;
    seen->subs = info->dlpi_subs;
    return 0;
}

/* The counts of loads and unloads alone: every object carries them, the first is enough. */
static int count_loads(struct dl_phdr_info *info, size_t size, void *data)
{
    count_objects(info, size, data);
    return 1;
}

struct pareng_engine {
    pareng__segment segment;
    pareng_plan *plan;
    unsigned n_workers;
    pid_t *pids;     /* 0 once reaped */
    unsigned char *stopped_checks; /* looks in a row that found each worker stopped */
    int *pidfds;
    int done_fd;     /* eventfd: root finished, or cancel */
    int life[2];     /* the life pipe: workers die when its write end closes (worker.c) */
    pareng__cancel_slot *cancel_slot; /* pareng_cancel_on_signal's way in (signal.c) */
    unsigned cutoff; /* pareng_config.cutoff_depth */
    void (*after_fork)(pareng_engine *engine, unsigned worker, void *arg); /* pareng_config's */
    void *after_fork_arg;
    /* The workers are gone; only pareng_stop remains. Atomic: a post or collect of another
     * thread reads it while a serve's failure sets it (sequentially consistent, the default:
     * it publishes nothing, a post that misses it fills a slot no worker will run). */
    atomic_bool failed;
    bool share_globals; /* pareng_config.globals: PARENG_GLOBALS_SHARED */
    pareng__globals_follow *globals_follow; /* PARENG_GLOBALS_PRIVATE's, or NULL */
    pareng__dist *dist; /* runs are collective over ranks (remote.c), or NULL */
    /* pareng_post and pareng_collect may come from any thread of this process, several at
     * once: the slot each takes, its frame and its tag are theirs while they hold it. */
    pthread_mutex_t inbox_lock;
    uint64_t posted_tag[PARENG__INBOX_SLOTS]; /* pareng_post's tag of each inbox slot */
    char failure[PARENG_ERROR_MAX];
    pid_t coordinator;  /* the process that started it: a forked copy of this handle is not */
    atomic_bool in_run; /* a root or a serve runs: one at a time */
    const pareng__task_info *tasks_at_start; /* the workers have the code of these */
    loaded_objects objects_at_start;          /* ... and of these objects' functions */
    bool stop_after_run; /* pareng_stop came during a run (a serve's callback): at its end */
    /* pareng_start's frame, thread and that thread's stack: below the frame, the stack held only
     * the start's own frames, so a variable there now is one the workers never had
     * (pareng__caller_local, which finds the stack's low end, 0 until then, on its first
     * call: pthread_getattr_np reads /proc/self/maps for the main thread). */
    uintptr_t start_frame, start_stack_low;
    pthread_t starter;
};

/* A NULL handle (an unchecked failed pareng_start) has nothing: 0, NULL, -EINVAL. */
unsigned pareng_engine_workers(const pareng_engine *e) { return e ? e->n_workers : 0; }
unsigned pareng_engine_io_depth(const pareng_engine *e)
{
    return e ? e->segment.arena->io_depth : 0;
}
const char *pareng_engine_segment(const pareng_engine *e) { return e ? e->segment.name : NULL; }
const pareng_plan *pareng_engine_plan(const pareng_engine *e) { return e ? e->plan : NULL; }
pareng__arena *pareng__engine_arena(const pareng_engine *e) { return e->segment.arena; }
pareng__dist *pareng__engine_dist(const pareng_engine *e) { return e->dist; }
void pareng__engine_set_dist(pareng_engine *e, pareng__dist *d) { e->dist = d; }

/* The low end of the starting thread's stack, from that thread (unknown: the start frame,
 * below which nothing is then refused). */
static uintptr_t start_stack_low(pareng_engine *e)
{
    if (!e->start_stack_low) {
        pthread_attr_t attributes;
        void *low = NULL;
        size_t bytes;
        if (pthread_getattr_np(e->starter, &attributes) == 0) {
            if (pthread_attr_getstack(&attributes, &low, &bytes) != 0)
                low = NULL;
            pthread_attr_destroy(&attributes);
        }
        e->start_stack_low = low ? (uintptr_t)low : e->start_frame;
    }
    return e->start_stack_low;
}

int pareng_engine_worker_pid(const pareng_engine *e, unsigned worker)
{
    return e && worker < e->n_workers ? (int)e->pids[worker] : -EINVAL;
}

/* What this process is, in a page of its own (MAP_PRIVATE): a program's globals may be shared
 * with its workers (PARENG_GLOBALS_SHARED, globals.c), and this library's statics with them
 * where it is linked into the program; what one process writes here, no other sees. */
static struct process_identity {
    /* getpid is a system call (135 ns here), and pareng_alloc, pareng_free and pareng_collect
     * ask on every call (forked_copy): kept, refreshed in each fork's child (pthread_atfork);
     * 0 where that could not be registered, and getpid is asked each time */
    pid_t pid;
    /* In a worker: the arena of the engine it was forked for, and its index there.
     * Process-wide, not per thread: a thread that a task starts is in that engine too, and so
     * is the after_fork callback. */
    const pareng__arena *worker_of;
    unsigned worker_index;
} *identity, identity_in_globals; /* the latter where no page could be had */
static pthread_once_t identity_made = PTHREAD_ONCE_INIT;

static void identity_refresh_pid(void)
{
    identity->pid = getpid();
}

/* A fork from a task: the task runs on a stack in the arena, shared memory, which the child
 * would go on sharing with the worker, both writing the same frames from the moment the
 * fork returns (a wrong pid in one of them, a smashed stack, a child that falls into the
 * worker's loop). Nothing can take that back after the fork, and fork cannot be made to fail:
 * the worker ends here, with a status that reap() names, and the run fails. A thread of the
 * worker's own has a private stack, and posix_spawn, vfork and system do not call this. */
static void refuse_fork_on_a_task_stack(void)
{
    const pareng__arena *a = identity->worker_of;
    if (a && pareng__arena_holds(a, (uintptr_t)__builtin_frame_address(0)))
        pareng__worker_exit(pareng__lane((pareng__arena *)a, identity->worker_index, 0),
                            PARENG__EXIT_FORKED, ENOTSUP);
}

static void identity_make(void)
{
    void *page = mmap(NULL, sizeof *identity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    identity = page != MAP_FAILED ? page : &identity_in_globals;
    identity_refresh_pid();
    if (pthread_atfork(refuse_fork_on_a_task_stack, NULL, identity_refresh_pid) != 0)
        identity->pid = 0;
}

/* A handle copied into a process forked from the coordinator, other than the engine's own
 * workers (another engine's worker is such a process): the engine's memory is not there
 * (MADV_DONTFORK), nor are its workers that process's. It may only be stopped, which releases
 * the copy. */
static bool forked_copy(const pareng_engine *e)
{
    return identity->worker_of != e->segment.arena &&
           (identity->pid ? identity->pid : getpid()) != e->coordinator;
}

/* Per process, not per thread: a thread that a task starts is in the worker too, and its
 * loops run in it as the task's would (a thread-local mark let such a thread hand a second
 * root to the engine over the running one: a wrong result, or a hang). */
bool pareng__in_worker(void)
{
    return identity && identity->worker_of;
}

/* Plain reads of this process's own page: a signal handler may ask (worker.c). */
pareng__worker *pareng__worker_lane0(void)
{
    const pareng__arena *a = identity ? identity->worker_of : NULL;
    return a ? pareng__lane((pareng__arena *)a, identity->worker_index, 0) : NULL;
}

int pareng__caller_local(pareng_engine *e, const void *p, const char *function)
{
    uintptr_t at = (uintptr_t)p, here = (uintptr_t)__builtin_frame_address(0);
    /* on that stack still, not a coroutine's or a signal stack's; not in a forked copy, which
     * has not the engine's memory (its run refuses it, -EPERM) */
    if (!e || forked_copy(e) || !pthread_equal(pthread_self(), e->starter) || at <= here ||
        at >= e->start_frame || here >= e->start_frame || here < start_stack_low(e))
        return 0;
    return pareng__fail(EINVAL, "%s: ctx (%p) is a local variable of a function called after "
                        "pareng_start (on the caller's stack, below the function that started "
                        "the engine): workers have the caller's stack as it was at the start, "
                        "when it did not exist. Give tasks such data in pareng_alloc memory, or "
                        "make it before the start (docs/memory.md, \"The caller's memory\")",
                        function, p);
}

static int refuse_forked_copy(const pareng_engine *e)
{
    return pareng__fail(EPERM, "this engine belongs to process %d, which started it: a process "
                        "forked from it cannot use it (start an engine of its own)",
                        (int)e->coordinator);
}

/* An engine that failed (fail_engine: its workers are gone) runs nothing more. */
static int refuse_failed(const pareng_engine *e)
{
    return pareng__fail(EPIPE, "the engine failed earlier: %s", e->failure);
}

/* A handle this process may not use: NULL (an unchecked failed pareng_start) gives -EINVAL,
 * a forked copy of the coordinator's -EPERM, each said; 0 for a usable one. */
static int refuse_unusable(const pareng_engine *e)
{
    if (!e && pareng__in_worker()) /* a global the program set after pareng_start forked */
        return pareng__fail(EINVAL, "no engine (NULL) in a task: a handle stored after "
                            "pareng_start is not in the workers' copies of the program's "
                            "memory; a task gets its engine with PARENG_ENGINE()");
    if (!e) /* pareng_start failed (its handle is NULL then) and its return was not looked at */
        return pareng__fail(EINVAL, "no engine (NULL): pareng_start failed, or was not called");
    return forked_copy(e) ? refuse_forked_copy(e) : 0;
}

int pareng_engine_stats(const pareng_engine *e, unsigned worker, pareng_stats *out)
{
    int unusable = refuse_unusable(e);
    if (unusable)
        return unusable;
    if (worker >= e->n_workers)
        return pareng__fail(EINVAL, "no worker %u (the engine has %u)", worker, e->n_workers);
    pareng__stats_of(e->segment.arena, worker, out);
    return 0;
}

static int pidfd_open(pid_t pid)
{
    return pareng__fd_above_stdio((int)syscall(SYS_pidfd_open, pid, 0));
}

/* Whether this process (the caller) has a mapping at `at`: mincore fails with ENOMEM where
 * none is. */
static bool mapped_here(uint64_t at)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    unsigned char in_core;
    return at && mincore((void *)((uintptr_t)at & ~(page - 1)), page, &in_core) == 0;
}

/* Reaps worker i (blocking) and describes how it ended. */
static void reap(pareng_engine *e, unsigned i, char *why, size_t len)
{
    int status = 0;
    pid_t pid = e->pids[i];
    if (!pid)
        return;
    pid_t reaped;
    while ((reaped = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    e->pids[i] = 0;
    if (!why)
        return;
    if (reaped < 0) { /* SIGCHLD ignored, or a handler's waitpid(-1) took it: its end is unknown */
        snprintf(why, len, "worker %u (pid %d) ended (how is unknown: this process ignores "
                 "SIGCHLD, or reaped the worker itself with waitpid)", i, (int)pid);
        return;
    }
    pareng__worker *lane0 = pareng__lane(e->segment.arena, i, 0);
    if (WIFSIGNALED(status)) {
        int n = snprintf(why, len, "worker %u (pid %d) was killed by signal %d (SIG%s)", i,
                         (int)pid, WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
        /* Relaxed: the handler stored it before the worker died, and the reap follows that */
        unsigned overflowed = atomic_load_explicit(&lane0->stack_overflowed,
                                                   memory_order_relaxed);
        uint32_t kind = atomic_load_explicit(&lane0->caller_fault_kind, memory_order_relaxed);
        uint64_t at = atomic_load_explicit(&lane0->caller_fault_at, memory_order_relaxed);
        if (kind == PARENG__CALLER_MAPPED_LATER && !mapped_here(at))
            kind = 0; /* a bad pointer, nobody's memory */
        if (WTERMSIG(status) == SIGSEGV && kind && n > 0 && (size_t)n < len)
            snprintf(why + n, len - (size_t)n,
                     PARENG__CALLER_NOTHING_YET(kind) || kind == PARENG__CALLER_MAPPED_LATER
                         ? ": a task used %#" PRIx64 ", in %s: workers have the caller's memory "
                           "as it was at the start, when that data did not exist. Give tasks "
                           "such data in pareng_alloc memory, or make it before the start "
                           "(docs/memory.md, \"The caller's memory\")"
                         : ": a task wrote to %#" PRIx64 ", in %s, which workers have as a copy "
                           "made at the start, read-only: the caller would never see the write. "
                           "Make what tasks write with pareng_alloc, or malloc it in a task; "
                           "per-worker scratch there wants PARENG_CALLER_MEMORY_WRITABLE "
                           "(docs/memory.md, \"The caller's memory\")",
                     at, pareng__caller_memory_name(kind));
        if (WTERMSIG(status) == SIGSEGV && overflowed &&
            overflowed <= e->segment.arena->lanes_per_worker && n > 0 && (size_t)n < len) {
            const pareng__worker *lane = pareng__lane(e->segment.arena, i, overflowed - 1);
            snprintf(why + n, len - (size_t)n, ": task stack overflow: the task stack is "
                     "%zu KiB (%s)", lane->stack_bytes >> 10,
                     pareng__stack_sizing(overflowed - 1));
        }
        return;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* Relaxed: the worker stored them before exiting, and the reap follows the exit; a task
     * of the program's own that exits with this status stored nothing */
    int32_t unsynced = atomic_load_explicit(&lane0->unsynced_spawns, memory_order_relaxed);
    const char *name = lane0->unsynced_name;
    if (code == PARENG__EXIT_UNSYNCED && unsynced == PARENG__SYNCED_OTHER_TASK) {
        const char *names[3]; /* the worker's pointers are ours too: it is our fork */
        memcpy(names, name, sizeof names);
        bool body;
        size_t function_len = pareng__synced_in(names[0], &body);
        snprintf(why, len, "PARENG_SYNC(%s) in %s %.*s took a spawn of %s%s (on worker %u, pid "
                 "%d): a sync takes its task's most recent unsynced spawn, so syncs go in the "
                 "reverse order of the spawns, each naming the task of its spawn",
                 names[1], body ? "task" : "helper", (int)function_len, names[0],
                 names[2] ? names[2] : "another task", names[2] ? "" : " (not a PARENG_TASK)", i,
                 (int)pid);
        return;
    }
    if (code == PARENG__EXIT_UNSYNCED && unsynced && name[0]) {
        if (unsynced > 0)
            snprintf(why, len, "task %.28s returned with %d spawn%s not synced (on worker %u, "
                     "pid %d): a task must PARENG_SYNC each of its PARENG_SPAWNs before it "
                     "returns; pareng has no implicit sync at a task's end",
                     name, (int)unsynced, unsynced == 1 ? "" : "s", i, (int)pid);
        else
            snprintf(why, len, "%s %.28s synced more than it spawned (on worker %u, pid %d): "
                     "each PARENG_SYNC takes the result of its task's own most recent "
                     "unsynced PARENG_SPAWN, and there was none left",
                     unsynced == PARENG__HELPER_SYNCED_TOO_MANY ? "helper" : "task", name, i,
                     (int)pid);
        return;
    }
    /* Relaxed: the worker stored it before exiting, and the reap above follows the exit */
    int err = atomic_load_explicit(&lane0->exit_errno, memory_order_relaxed);
    char cpu[48];
    snprintf(cpu, sizeof cpu, "be pinned to CPU P#%u", e->plan->placement[i].pu_os);
    const char *what = code == PARENG__EXIT_OUT_OF_MEMORY ? "get memory for overflowed or spilled spawns"
                       : code == PARENG__EXIT_NO_IO       ? "set up its io_uring or fibers"
                       : code == PARENG__EXIT_NOT_PINNED  ? cpu
                       : code == PARENG__EXIT_IO_FAILED   ? "submit to its io_uring"
                       : code == PARENG__EXIT_SETUP_FAILED ? "set up its link to this process"
                       : code == PARENG__EXIT_FORKED
                           ? "fork a process from a task, whose stack is the engine's shared "
                             "memory and would be the child's too (start programs with "
                             "posix_spawn or vfork, or system and popen with glibc 2.29 or "
                             "later; in Python, subprocess without preexec_fn, user, group or "
                             "extra_groups)"
                           : NULL;
    if (what && err)
        snprintf(why, len, "worker %u (pid %d) could not %s: %s", i, (int)pid, what,
                 strerror(err));
    else
        snprintf(why, len, "worker %u (pid %d) exited unexpectedly with status %d", i, (int)pid,
                 code);
}

/* Something went wrong: kill what is left and reap everything. */
static void fail_engine(pareng_engine *e)
{
    for (unsigned i = 0; i < e->n_workers; i++)
        if (e->pids[i])
            kill(e->pids[i], SIGKILL);
    for (unsigned i = 0; i < e->n_workers; i++)
        reap(e, i, NULL, 0);
    e->failed = true;
    if (e->segment.arena)
        pareng__heap_fail(&e->segment.arena->heap);
}

/* Descriptors of every engine of this process, + 1 (0: none), that its workers close after
 * their fork: the life pipe's write end (only the coordinator may hold it open, or an exec
 * would leave the workers running), the arena's memfd and the root's eventfd (a worker of a
 * later engine would keep an earlier engine's memory alive after it stopped). A worker keeps
 * its own engine's eventfd, which it writes when the root is done, and its memfd, which it
 * extends when its pareng_alloc grows the heap (heap.c). */
static struct {
    _Atomic int life_writer, arena, done;
} inherited[PARENG__MAX_ENGINES];

static int life_pipe_open(pareng_engine *e)
{
    if (pipe2(e->life, O_CLOEXEC) < 0)
        return e->life[0] = e->life[1] = -1, pareng__fail(errno, "pipe: %s", strerror(errno));
    int err = 0;
    for (int end = 0; end < 2; end++)
        if ((e->life[end] = pareng__fd_above_stdio(e->life[end])) < 0)
            err = errno;
    if (err) {
        for (int end = 0; end < 2; end++)
            if (e->life[end] >= 0)
                close(e->life[end]);
        e->life[0] = e->life[1] = -1;
        return pareng__fail(err, "pipe: %s", strerror(err));
    }
    for (int k = 0; k < PARENG__MAX_ENGINES; k++) {
        int empty = 0;
        if (atomic_compare_exchange_strong(&inherited[k].life_writer, &empty, e->life[1] + 1)) {
            atomic_store(&inherited[k].arena, e->segment.fd + 1);
            atomic_store(&inherited[k].done, e->done_fd + 1);
            return 0;
        }
    }
    return pareng__fail(EMFILE, "more than %d engines at once in one process",
                        PARENG__MAX_ENGINES);
}

static void life_pipe_close(pareng_engine *e)
{
    for (int k = 0; k < PARENG__MAX_ENGINES && e->life[1] >= 0; k++)
        if (atomic_load(&inherited[k].life_writer) == e->life[1] + 1) {
            atomic_store(&inherited[k].arena, 0);
            atomic_store(&inherited[k].done, 0);
            atomic_store(&inherited[k].life_writer, 0);
        }
    for (int end = 0; end < 2; end++)
        if (e->life[end] >= 0)
            close(e->life[end]);
}

/* In a worker just forked: close what it must not keep (above). */
static void close_inherited(const pareng_engine *e)
{
    for (int k = 0; k < PARENG__MAX_ENGINES; k++) {
        int fds[3] = {atomic_load(&inherited[k].life_writer), atomic_load(&inherited[k].arena),
                      atomic_load(&inherited[k].done)};
        for (int j = 0; j < 3; j++)
            if (fds[j] && fds[j] - 1 != e->done_fd && fds[j] - 1 != e->segment.fd)
                close(fds[j] - 1);
    }
}

static void release(pareng_engine *e)
{
    for (unsigned i = 0; i < e->n_workers; i++)
        if (e->pidfds && e->pidfds[i] >= 0)
            close(e->pidfds[i]);
    pareng__cancel_slot_release(e->cancel_slot);
    if (e->done_fd >= 0)
        close(e->done_fd);
    life_pipe_close(e);
    pareng__arena_destroy(&e->segment);
    pareng_plan_destroy(e->plan);
    free(e->pids);
    free(e->pidfds);
    free(e->stopped_checks);
    pareng__dist_free(e->dist);
    pareng__globals_follow_end(e->globals_follow);
    pthread_mutex_destroy(&e->inbox_lock);
    free(e);
}

static int fork_one(pareng_engine *e, unsigned i)
{
    pid_t pid = fork();
    if (pid < 0)
        return pareng__fail(errno, "cannot fork worker %u: %s", i, strerror(errno));
    if (pid == 0) {
        identity->worker_of = e->segment.arena;
        identity->worker_index = i;
        /* From the first: what after_fork and the worker allocate is out of the caller's
         * heap, which the worker seals (caller_memory.c). */
        pareng__malloc_in_worker(&e->segment.arena->heap);
        close_inherited(e);
        pareng__worker_take_signals();
        pareng__worker_catch_stack_overflow();
        if (e->after_fork)
            e->after_fork(e, i, e->after_fork_arg);
        pareng__worker_main(e->segment.arena, i, e->plan, e->life[0]);
    }
    e->pids[i] = pid;
    /* Relaxed: read by attached tools after the fork returned; it publishes nothing else */
    atomic_store_explicit(&pareng__lane(e->segment.arena, i, 0)->pid, pid, memory_order_relaxed);
    e->pidfds[i] = pidfd_open(pid);
    if (e->pidfds[i] < 0) {
        int err = errno;
        struct rlimit files;
        if (err == EMFILE && getrlimit(RLIMIT_NOFILE, &files) == 0)
            return pareng__fail(err, "no file descriptor left to watch worker %u: an engine "
                                "holds one per worker and a few more, and this process may "
                                "open %llu (ulimit -n)", i, (unsigned long long)files.rlim_cur);
        return pareng__fail(err, "pidfd_open (Linux 5.3 or later) failed: %s", strerror(err));
    }
    return 0;
}

/* GNU OpenMP keeps the threads that ran the calling thread's parallel regions in a pool, and a
 * fork copies the pool but not its threads: a task's first parallel region then waits forever
 * for them at the pool's barrier (GCC bug 60035, where a fix in libgomp was proposed and never
 * merged). Releasing that pool before the forks, with OpenMP 5.0's omp_pause_resource_all as
 * OpenBLAS does at its fork, lets each worker start a pool of its own at its first region and
 * the caller a new one at its next. LLVM's libomp makes a new pool in a forked child itself. */
static int find_libgomp(struct dl_phdr_info *object, size_t size, void *found)
{
    (void)size;
    /* By file name, wherever installed: a Python wheel's copy is libgomp-<hash>.so.1 */
    const char *slash = strrchr(object->dlpi_name, '/');
    if (!slash || strncmp(slash + 1, "libgomp", strlen("libgomp")) != 0)
        return 0;
    *(const char **)found = object->dlpi_name;
    return 1;
}

static void release_openmp_threads(void)
{
    const char *path = NULL;
    dl_iterate_phdr(find_libgomp, &path);
    /* Its own handle, in whichever namespace it was opened (RTLD_NOLOAD: it is loaded). Not
     * from find_libgomp: dlopen within dl_iterate_phdr waits for the lock the walk holds. */
    void *gomp = path ? dlopen(path, RTLD_LAZY | RTLD_NOLOAD) : NULL;
    if (!gomp)
        return;
    int (*pause_all)(int) = (int (*)(int))dlsym(gomp, "omp_pause_resource_all");
    if (pause_all)
        pause_all(1 /* omp_pause_soft: the threads go, the program's OpenMP state stays */);
    dlclose(gomp);
}

/* What the caller's streams hold and have not written yet is written now: before the forks,
 * or every worker that flushes its copy (worker.c flushes what tasks print) would write it
 * again; before each run, or the tasks' lines, which their workers write as each task ends,
 * would come out before what the caller printed earlier (with stdout a file or a pipe).
 * Not fflush(NULL): it locks every stream, and so waited for as long as another thread of
 * the caller's sat in fgets on stdin. Only a stream with output pending, and not in another
 * thread's hands at that moment (whose output is in that thread's order, not the run's), is
 * flushed: waiting for its lock under the list's could deadlock with a thread that holds it
 * and opens a file (fopen takes the list's lock). Before a run is claimed and once at a time
 * per thread: a stream whose own writing (fopencookie) runs a loop would otherwise have that
 * loop refused as a second run, or flush itself within its flush. */
static _Thread_local bool flushing_caller_streams;

static void flush_caller_streams(void)
{
    if (flushing_caller_streams)
        return;
    flushing_caller_streams = true;
#ifdef __GLIBC__
    _IO_list_lock();
    /* Not a stream without a lock of its own (_IO_USER_LOCK: the one dprintf makes on its
     * thread's stack, listed while it writes; no lock to try, and none to flush from here) */
    for (FILE *f = _IO_list_all; f; f = f->_chain)
        if (!(f->_flags & _IO_USER_LOCK) && f->_lock && __fpending(f) > 0 &&
            ftrylockfile(f) == 0) {
            fflush_unlocked(f);
            funlockfile(f);
        }
    _IO_list_unlock();
#else
    fflush(NULL);
#endif
    flushing_caller_streams = false;
}

static int fork_workers(pareng_engine *e)
{
    /* Every signal blocked across the forks: until a worker has reset the caller's handlers,
     * a ^C to the process group must not run the caller's handler in the worker (Python's
     * writes to a wakeup fd it shares with the caller). The worker unblocks them itself. */
    /* Before the signals are blocked: a pipe nobody reads may block this, and ^C must still
     * end it. */
    flush_caller_streams();
    release_openmp_threads();
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    /* A private engine's workers are forked as any other child: a copy of their own */
    pareng__globals_forking_workers(e->share_globals);
    for (unsigned i = 0; i < e->n_workers && rc == 0; i++)
        rc = fork_one(e, i);
    pareng__globals_forking_workers(false);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* PARENG_DISPLAY_AFFINITY: where each worker runs, one line a worker on stderr, as OpenMP's
 * OMP_DISPLAY_AFFINITY prints its threads. */
static void display_affinity(const pareng_engine *e)
{
    bool pinned = e->segment.arena->pin_workers && e->plan->this_system;
    for (unsigned i = 0; i < e->n_workers; i++) {
        const pareng_placement *pl = &e->plan->placement[i];
        char package[32] = ""; /* a machine without packages has none to say */
        if (pl->package_logical != PARENG_NO_PACKAGE)
            snprintf(package, sizeof package, ", package L#%u", pl->package_logical);
        if (pinned)
            fprintf(stderr, "pareng: engine %s worker %u pid %d bound to PU P#%u (L#%u, core "
                    "L#%u%s)\n", e->segment.name, i, (int)e->pids[i], pl->pu_os,
                    pl->pu_logical, pl->core_logical, package);
        else
            fprintf(stderr, "pareng: engine %s worker %u pid %d not bound (%s)\n",
                    e->segment.name, i, (int)e->pids[i],
                    e->plan->this_system ? "IO workers placed automatically float"
                                         : "the topology is not this machine's");
    }
}

/* A stopped worker (SIGSTOP, a debugger) makes a run wait, which may be what its user wants;
 * a run that waits in silence is not: past STOPPED_WARN_CHECKS checks in a row, say which
 * worker, once per stop. */
static void say_if_stopped(pareng_engine *e)
{
    for (unsigned i = 0; i < e->n_workers; i++) {
        char state = e->pids[i] ? pareng__process_state(e->pids[i]) : 0;
        bool stopped = state == 'T' || state == 't';
        e->stopped_checks[i] = stopped ? e->stopped_checks[i] + (e->stopped_checks[i] < 255) : 0;
        if (e->stopped_checks[i] == STOPPED_WARN_CHECKS)
            fprintf(stderr, "pareng: worker %u (pid %d) of engine %s is %s; the run waits "
                    "for it\n", i, (int)e->pids[i], e->segment.name,
                    state == 't' ? "stopped by a debugger" : "stopped (SIGSTOP?); SIGCONT resumes it");
    }
}

static bool root_done(const pareng__arena *a)
{
    /* Acquire pairs with the root worker's release of DONE: the result is in a->root */
    return atomic_load_explicit(&a->root_state, memory_order_acquire) == PARENG__ROOT_DONE;
}

static bool all_ready(const pareng__arena *a)
{
    /* Relaxed: a count; the last worker's eventfd write came after its increment */
    return atomic_load_explicit(&a->workers_ready, memory_order_relaxed) == a->n_workers;
}

/* Who cancelled a run (the arena's `cancelled`): what the run's failure says. */
enum { CANCELLED_BY_CALLER = 1, CANCELLED_BY_TASK, STOPPED_BY_TASK };

static uint32_t cancelled_by(const pareng__arena *a)
{
    /* Relaxed: it publishes nothing else, and the eventfd's write and read, between the
     * canceller's store and this load, order the two (the kernel takes the eventfd's lock) */
    return atomic_load_explicit(&a->cancelled, memory_order_relaxed);
}

static const char *cancelled_why(uint32_t by)
{
    return by == CANCELLED_BY_TASK ? "run cancelled by a task (pareng_cancel)"
           : by == STOPPED_BY_TASK ? "run cancelled by a task's pareng_stop (only the caller "
                                     "stops the engine, after the run)"
                                   : "run cancelled";
}

/* The run ends cancelled: its workers killed, the engine failed; -ECANCELED. */
static int end_cancelled(pareng_engine *e, uint32_t by)
{
    snprintf(e->failure, sizeof e->failure, "%s", cancelled_why(by));
    fail_engine(e);
    return pareng__fail(ECANCELED, "%s", e->failure);
}

/* Sleep until `finished` (checked when the eventfd rings: the root is done, or the last worker
 * is ready), a worker dies, or the run is cancelled. With `serve`, it decides instead, and is
 * called at every wake-up and after the timeout it asks for. */
static int watch(pareng_engine *e, bool (*finished)(const pareng__arena *),
                 pareng__serve_fn serve, void *ctx)
{
    pareng__arena *a = e->segment.arena;
    struct pollfd *fds = calloc(e->n_workers + 1, sizeof *fds);
    if (!fds) {
        fail_engine(e);
        return pareng__fail(ENOMEM, "out of memory");
    }
    fds[0] = (struct pollfd){.fd = e->done_fd, .events = POLLIN};
    for (unsigned i = 0; i < e->n_workers; i++)
        fds[i + 1] = (struct pollfd){.fd = e->pidfds[i], .events = POLLIN};
    int rc = 1;
    long timeout_ns = serve ? 0 : STOPPED_CHECK_MS * 1000000L; /* serve from the start */
    uint64_t stopped_checked_ns = pareng__now_ns();
    while (rc > 0) {
        struct timespec timeout = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
        int ready = ppoll(fds, e->n_workers + 1, &timeout, NULL);
        if (pareng__now_ns() - stopped_checked_ns >= STOPPED_CHECK_MS * 1000000ull) {
            say_if_stopped(e);
            stopped_checked_ns = pareng__now_ns();
        }
        /* A timeout looks too: a task may have closed its worker's descriptors, and with
         * them the eventfd that rings when the root is done or a task cancels. */
        if (ready == 0 && !serve && !finished(a) && !cancelled_by(a))
            continue;
        if (ready < 0 && errno != EINTR) {
            snprintf(e->failure, sizeof e->failure, "poll: %s", strerror(errno));
            rc = pareng__fail(errno, "%s", e->failure);
            fail_engine(e);
            break;
        }
        /* Drain the eventfd before looking at the flags, so that a cancel arriving in
         * between leaves its count for the next poll. */
        uint64_t count;
        ssize_t drained = read(e->done_fd, &count, sizeof count);
        (void)drained; /* nothing to drain is fine: finished() decides */
        /* A cancel first: a signal sent to the whole process group (a service manager's
         * SIGTERM) may kill a worker in the same instant, and that is not its failure. */
        uint32_t by = cancelled_by(a);
        if (by || pareng__cancel_slot_cancelled(e->cancel_slot))
            rc = end_cancelled(e, by);
        for (unsigned i = 0; i < e->n_workers && rc > 0; i++)
            if (fds[i + 1].revents) {
                reap(e, i, e->failure, sizeof e->failure);
                fail_engine(e);
                rc = pareng__fail(ECHILD, "%s", e->failure);
            }
        if (rc > 0 && serve) {
            rc = serve(ctx, &timeout_ns);
            if (rc < 0) { /* what later calls say: "the engine failed earlier: ..." */
                snprintf(e->failure, sizeof e->failure, "%s", pareng_last_error());
                fail_engine(e);
            }
        } else if (rc > 0 && finished(a)) {
            rc = 0;
        }
    }
    /* A cancel that came as the run ended (a task's, just before its root returned or while
     * the serve's callback ended the serve) is this run's: it says so, rather than leave the
     * flag to cancel the next run at its start. The acquire that saw the end orders the
     * canceller's store before this load. */
    uint32_t by = rc == 0 ? cancelled_by(a) : 0;
    if (by)
        rc = end_cancelled(e, by);
    free(fds);
    return rc;
}

int pareng_start(pareng_engine **out, const pareng_config *cfg)
{
    if (!out)
        return pareng__fail(EINVAL, "pareng_start needs somewhere for the engine's handle "
                            "(out is NULL)");
    *out = NULL;
    if (pareng__in_worker()) /* it would fork its workers from the task's stack */
        return pareng__fail(EPERM, "pareng_start called by a task: a task runs its work on "
                            "the engine it runs on (PARENG_SPAWN, PARENG_FOR)");
    pareng_config defaults;
    if (!cfg) {
        pareng_config_default(&defaults);
        cfg = &defaults;
    }
    /* Before the start allocates anything: where the caller's heap held nothing yet, which its
     * blocks after the start will take (caller_memory.c) */
    if (cfg->caller_memory == PARENG_CALLER_MEMORY_READONLY && pareng_task_malloc_shared())
        pareng__caller_memory_measure();
    if (pareng__config_check(cfg) < 0)
        return -EINVAL;
    unsigned capacity = cfg->deque_capacity ? cfg->deque_capacity : PARENG__DEFAULT_DEQUE_CAPACITY;
    if (capacity < 2 || capacity > MAX_DEQUE_CAPACITY)
        return pareng__fail(EINVAL, "deque capacity %u is outside 2..%u", capacity,
                            MAX_DEQUE_CAPACITY);
    if (cfg->globals > PARENG_GLOBALS_FORKED)
        return pareng__fail(EINVAL, "globals %u is none of PARENG_GLOBALS_PRIVATE, "
                            "PARENG_GLOBALS_SHARED and PARENG_GLOBALS_FORKED", cfg->globals);
    if (cfg->caller_memory > PARENG_CALLER_MEMORY_WRITABLE)
        return pareng__fail(EINVAL, "caller_memory %u is neither PARENG_CALLER_MEMORY_READONLY "
                            "nor PARENG_CALLER_MEMORY_WRITABLE", cfg->caller_memory);
    if (cfg->io_depth > PARENG_IO_DEPTH_MAX)
        return pareng__fail(EINVAL, "io_depth %u is outside 0..%u", cfg->io_depth,
                            PARENG_IO_DEPTH_MAX);
    if (cfg->cutoff_depth == PARENG__CUTOFF_OF_ENGINE)
        return pareng__fail(EINVAL, "cutoff_depth %u is not a depth, PARENG_CUTOFF_AUTO or "
                            "PARENG_CUTOFF_NONE", cfg->cutoff_depth);
    if (cfg->io_depth && cfg->cutoff_depth != PARENG_CUTOFF_AUTO &&
        cfg->cutoff_depth != PARENG_CUTOFF_NONE)
        return pareng__fail(EINVAL, "cutoff_depth %u: an engine with IO makes every spawn a "
                            "task (a task may wait on IO anywhere)", cfg->cutoff_depth);
    if (cfg->io_depth) {
        int rc = pareng__io_probe();
        if (rc < 0)
            return pareng__fail(-rc, "io_uring is not available here (%s%s): IO tasks need it; "
                                "CPU work runs without it",
                                strerror(-rc), rc == -EPERM ? ", see kernel.io_uring_disabled" : "");
    }
    pareng_engine *e = calloc(1, sizeof *e);
    if (!e)
        return pareng__fail(ENOMEM, "out of memory");
    e->done_fd = -1;
    e->life[0] = e->life[1] = -1;
    pthread_once(&identity_made, identity_make);
    e->coordinator = getpid();
    e->tasks_at_start = pareng__task_newest();
    dl_iterate_phdr(count_objects, &e->objects_at_start);
    atomic_init(&e->in_run, false);
    atomic_init(&e->failed, false);
    pthread_mutex_init(&e->inbox_lock, NULL); /* default attributes: it cannot fail */
    e->cutoff = cfg->cutoff_depth;
    e->after_fork = cfg->after_fork;
    e->share_globals = cfg->globals == PARENG_GLOBALS_SHARED;
    e->start_frame = (uintptr_t)__builtin_frame_address(0);
    e->starter = pthread_self();
    e->after_fork_arg = cfg->after_fork_arg;
    int rc = pareng_plan_create(&e->plan, cfg);
    /* The topology may take long to load: a ^C meanwhile ends the start, not a later run */
    int pending = rc == 0 ? pareng_cancel_signal(0) : 0;
    if (pending)
        rc = pareng__fail(ECANCELED, "start cancelled by signal %d (SIG%s)", pending,
                          sigabbrev_np(pending) ?: "?");
    if (rc < 0) {
        release(e);
        return rc;
    }
    e->n_workers = pareng_plan_workers(e->plan);
    e->pids = calloc(e->n_workers, sizeof *e->pids);
    e->pidfds = malloc(e->n_workers * sizeof *e->pidfds);
    e->stopped_checks = calloc(e->n_workers, 1);
    if (!e->pids || !e->pidfds || !e->stopped_checks) {
        release(e);
        return pareng__fail(ENOMEM, "out of memory");
    }
    memset(e->pidfds, -1, e->n_workers * sizeof *e->pidfds);
    rc = pareng__arena_create(&e->segment, e->n_workers, capacity, cfg->io_depth,
                              cfg->shared_bytes);
    if (rc == 0) {
        e->done_fd = pareng__fd_above_stdio(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (e->done_fd < 0)
            rc = pareng__fail(errno, "eventfd: %s", strerror(errno));
        else if (!(e->cancel_slot = pareng__cancel_slot_take(e->done_fd)))
            rc = -EMFILE;
        else
            rc = life_pipe_open(e);
    }
    if (rc == 0) {
        e->segment.arena->root_done_fd = e->done_fd;
        e->segment.arena->engine = e;
        /* Workers of a CPU engine, or placed on an explicit list, are pinned. Those of an IO
         * engine placed automatically are not: they mostly wait, and share the cores with the
         * processes they talk to, which the kernel then balances (measured on 2 vCPUs with a
         * local nginx: 77,000 requests/s pinned, 110,000 not). */
        e->segment.arena->pin_workers = !cfg->io_depth || cfg->cpus;
        /* Only where tasks' malloc is libpareng's: a worker's glibc malloc writes the heap. */
        if (cfg->caller_memory == PARENG_CALLER_MEMORY_READONLY && pareng_task_malloc_shared()) {
            pareng__caller_memory_prepare(e->start_frame);
            e->segment.arena->seal_caller_memory = 1;
        }
        pareng__observe_start(e->segment.arena, e->plan);
        /* Before the fork: the workers must inherit the shared globals (globals.c), and the
         * handle, wherever the caller keeps it (a global: the workers' copy has it too). */
        rc = e->share_globals ? pareng__globals_share() : 0;
        *out = e;
        /* After *out: what the workers have, the handle in a global included */
        if (rc == 0 && cfg->globals == PARENG_GLOBALS_PRIVATE) {
            rc = pareng__globals_follow_start(&e->globals_follow);
            e->segment.arena->globals_changes = pareng__globals_follow_changes(e->globals_follow);
        }
        if (rc == 0)
            rc = fork_workers(e);
        close(e->life[0]); /* the workers' end */
        e->life[0] = -1;
        /* Its own workers have the arena now; any later fork of this process (another
         * engine's workers, a user's child) does not: they would keep this engine's touched
         * memory alive after it stopped, and have no business in it. */
        if (rc == 0) {
            madvise(e->segment.arena, e->segment.size, MADV_DONTFORK);
            pareng__globals_follow_forked(e->globals_follow);
        }
        /* A worker that cannot start (not pinned, no io_uring) fails the start, named */
        if (rc == 0)
            rc = watch(e, all_ready, NULL, NULL);
        else {
            char message[PARENG_ERROR_MAX];
            snprintf(message, sizeof message, "%s", pareng_last_error());
            fail_engine(e);
            pareng__fail(-rc, "%s", message);
        }
    }
    if (rc < 0) {
        *out = NULL;
        release(e);
        return rc;
    }
    if (cfg->display_affinity)
        display_affinity(e);
    return 0;
}

/* The coordinator sleeps in watch() on done_fd; a write wakes it, from any thread or
 * process that has the descriptor (a worker keeps its engine's). Async-signal-safe. */
static void wake_coordinator(const pareng_engine *e)
{
    uint64_t one = 1;
    ssize_t ignored = write(e->done_fd, &one, sizeof one);
    (void)ignored;
}

/* The run ends, cancelled, as the coordinator wakes (watch). Async-signal-safe: a lock-free
 * atomic and a write. */
static void cancel_run(pareng_engine *e, uint32_t by)
{
    uint32_t none = 0;
    /* Relaxed: see cancelled_by; the first canceller's reason is kept */
    atomic_compare_exchange_strong_explicit(&e->segment.arena->cancelled, &none, by,
                                            memory_order_relaxed, memory_order_relaxed);
    wake_coordinator(e);
}

void pareng_cancel(pareng_engine *e)
{
    /* NULL in a task: a handle kept in a global set after the fork, where the task can mean
     * only the engine it runs in */
    if (!e && pareng__in_worker())
        e = identity->worker_of->engine;
    /* A forked copy has neither the engine's memory nor its workers: nothing to cancel */
    if (e && !forked_copy(e))
        cancel_run(e, pareng__in_worker() ? CANCELLED_BY_TASK : CANCELLED_BY_CALLER);
}

/* A root run or a serve, asked for by the program: refused inside a task, in a process
 * forked from the coordinator, and while another thread's runs (the root frame is the
 * engine's one), before anything of the run (a multi-rank run's state too) is touched. */
static int claim_the_run(pareng_engine *e)
{
    if (pareng__in_worker()) /* the coordinator alone hands roots over and watches them */
        return pareng__fail(EDEADLK, "a root run inside a task: a task runs others with "
                            "PARENG_CALL and PARENG_SPAWN, and loops with PARENG_FOR");
    int unusable = refuse_unusable(e);
    if (unusable)
        return unusable;
    if (e->failed)
        return refuse_failed(e);
    /* Acquire and release: what one thread's run left in the arena is seen by the next's. */
    if (atomic_exchange_explicit(&e->in_run, true, memory_order_acquire))
        return pareng__fail(EBUSY, "another thread is running a task on this engine: an engine "
                            "runs one root at a time (pareng_serve and pareng_post run many)");
    return 0;
}

static void end_the_run(pareng_engine *e)
{
    atomic_store_explicit(&e->in_run, false, memory_order_release);
    if (e->stop_after_run)
        pareng_stop(e);
}

/* The caller's side of a serve, asked for in a task: the worker has a copy of the handle,
 * and its posts and collects would go past the serve (a result under another tag). */
static int refuse_in_a_task(const char *call)
{
    return pareng__fail(EDEADLK, "%s called by a task: only the caller posts and collects "
                        "(a task spawns its work with PARENG_SPAWN)", call);
}

/* Why code of an object opened after the start cannot run, and what to do. */
#define LOADED_LATER                                                                          \
    "loaded after pareng_start (a library opened since): the workers, forked at the start, "  \
    "do not have its code; open the library before pareng_start"

/* Where a function lies: the index of its object in load order, and its name. */
typedef struct code_place {
    uintptr_t at;
    unsigned index, found;
    const char *name;
} code_place;

bool pareng__object_holds(const struct dl_phdr_info *info, uintptr_t at)
{
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        uintptr_t begin = info->dlpi_addr + segment->p_vaddr;
        if (segment->p_type == PT_LOAD && at >= begin && at < begin + segment->p_memsz)
            return true;
    }
    return false;
}

static int find_code(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    code_place *place = data;
    if (pareng__object_holds(info, place->at)) {
        place->found = place->index;
        place->name = info->dlpi_name;
        return 1;
    }
    place->index++;
    return 0;
}

int pareng__refuse_code_loaded_later(const pareng_engine *e, uintptr_t code, const char *call,
                                     const char *role)
{
    if (!e)
        return 0; /* the run refuses it */
    loaded_objects now = {0};
    dl_iterate_phdr(count_loads, &now);
    const loaded_objects *then = &e->objects_at_start;
    /* Objects are listed in load order, so one loaded since comes past the count at the start;
     * an unload since moves them (then nothing is said: the run shows) */
    if (now.adds == then->adds || now.subs != then->subs)
        return 0;
    code_place place = {.at = code, .found = UINT_MAX};
    dl_iterate_phdr(find_code, &place);
    if (place.found == UINT_MAX || place.found < then->count)
        return 0;
    return pareng__fail(EINVAL, "%s's %s (%#" PRIxPTR ") is in %s, " LOADED_LATER, call, role,
                        code, place.name && *place.name ? place.name : "an object");
}

/* A task of a library opened (dlopen) after the start: the workers, forked before, do not
 * have its code, and died of SIGSEGV at its first call. */
static int refuse_task_loaded_later(const pareng_engine *e, pareng_task_fn run)
{
    const pareng__task_info *t = pareng__task_registered_since(run, e->tasks_at_start);
    return t ? pareng__fail(EINVAL, "task %s was " LOADED_LATER, t->name) : 0;
}

int pareng__run_root(pareng_engine *e, pareng_task_fn run, void *data, size_t size,
                     unsigned cutoff)
{
    flush_caller_streams();
    int rc = claim_the_run(e);
    if (rc < 0)
        return rc;
    rc = refuse_task_loaded_later(e, run);
    if (rc == 0)
        rc = e->dist ? pareng__dist_run(e->dist, run, data, size, cutoff)
                     : pareng__engine_run(e, run, data, size, cutoff, NULL, NULL);
    end_the_run(e);
    return rc;
}

int pareng__engine_run(pareng_engine *e, pareng_task_fn run, void *data, size_t size,
                       unsigned cutoff, pareng__serve_fn serve, void *ctx)
{
    if (e->failed) /* a multi-rank run's later steps */
        return refuse_failed(e);
    pareng__arena *a = e->segment.arena;
    pareng__globals_publish(e->globals_follow);
    /* Data larger than a frame (pareng.h: spilled) go by pointer, and the caller's stack is
     * not in the arena: the root's are copied into the heap for the run. */
    void *spilled = NULL;
    if (run && size > PARENG_FRAME_DATA_SIZE) {
        spilled = pareng__heap_alloc(&a->heap, size);
        if (!spilled)
            return -ENOMEM;
        memcpy(spilled, data, size);
    }
    /* An IO engine makes every spawn a task, whoever asks: a task may wait on IO anywhere. */
    pareng__cutoff_begin_run(a, a->io_depth                            ? PARENG_CUTOFF_NONE
                                : cutoff == PARENG__CUTOFF_OF_ENGINE ? e->cutoff
                                                                     : cutoff);
    if (run) {
        a->root.pareng__run = run;
        if (spilled)
            memcpy(a->root.pareng__data, &spilled, sizeof spilled);
        else
            memcpy(a->root.pareng__data, data, size);
        /* Release: the frame is filled before a worker's acquire of READY. */
        atomic_store_explicit(&a->root_state, PARENG__ROOT_READY, memory_order_release);
        pareng__wake(a, true);
    }
    if (pareng__cancel_slot_enter(e->cancel_slot)) /* a ^C came before this run */
        pareng_cancel(e);
    int rc = watch(e, root_done, serve, ctx);
    pareng__cancel_slot_leave(e->cancel_slot);
    if (rc == 0 && run) {
        memcpy(data, spilled ? spilled : (void *)a->root.pareng__data, size);
        /* Relaxed: no worker acts on EMPTY; the next READY's release publishes the next frame */
        atomic_store_explicit(&a->root_state, PARENG__ROOT_EMPTY, memory_order_relaxed);
    }
    if (spilled && !e->failed) /* a killed worker may have held the heap's lock */
        pareng__heap_free(&a->heap, spilled);
    return rc;
}

/* pareng_post's tasks wait in the inbox */
_Static_assert(PARENG__INBOX_SLOTS == PARENG_SERVE_SLOTS, "a posted task is an inbox slot");

int pareng__inbox_free(const pareng__arena *a)
{
    for (unsigned k = 0; k < PARENG__INBOX_SLOTS; k++)
        /* Relaxed: a slot becomes EMPTY only by a collect of the coordinator's, which the
         * caller's lock (pareng_post) or thread (remote.c) orders before this look */
        if (atomic_load_explicit(&a->inbox[k].state, memory_order_relaxed) == PARENG__INBOX_EMPTY)
            return (int)k;
    return -1;
}

void pareng__inbox_put(pareng__arena *a, unsigned k, pareng_task_fn run, const void *data,
                       size_t size)
{
    pareng__inbox_slot *slot = &a->inbox[k];
    slot->frame.pareng__run = run;
    atomic_store_explicit(&slot->frame.pareng__thief, 0, memory_order_relaxed);
    memset(slot->frame.pareng__data, 0, sizeof slot->frame.pareng__data);
    memcpy(slot->frame.pareng__data, data, size);
    /* Counted first, so that a worker that takes the slot never makes the count wrap. */
    atomic_fetch_add_explicit(&a->inbox_ready, 1, memory_order_relaxed);
    /* Release: the frame is filled before a worker's acquire of READY. */
    atomic_store_explicit(&slot->state, PARENG__INBOX_READY, memory_order_release);
    pareng__wake(a, false);
}

/* pareng_serve's callback as watch calls it: also at least every STOPPED_CHECK_MS, so that a
 * stopped worker is still reported. */
typedef struct serving {
    pareng_engine *engine;
    pareng_serve_fn serve;
    void *ctx;
} serving;

static int serve_step(void *ctx, long *timeout_ns)
{
    serving *s = ctx;
    *timeout_ns = STOPPED_CHECK_MS * 1000000L;
    int rc = s->serve(s->engine, s->ctx);
    if (rc < 0 && rc != -ECANCELED)
        pareng__fail(-rc, "the serve callback failed: %s", strerror(-rc));
    return rc;
}

/* Posted tasks go through the inbox: an engine of pareng_mpi_start keeps it for other ranks,
 * and an IO engine's fibers never take from it. */
static int refuse_posts(const pareng_engine *e)
{
    if (e->dist)
        return pareng__fail(EOPNOTSUPP, "an engine whose runs span ranks takes no posted tasks: "
                            "its inbox is the other ranks'");
    if (e->segment.arena->io_depth)
        return pareng__fail(EOPNOTSUPP, "an engine with IO takes no posted tasks");
    return 0;
}

int pareng_serve(pareng_engine *e, unsigned cutoff, pareng_serve_fn serve, void *ctx)
{
    if (cutoff == PARENG__CUTOFF_OF_ENGINE)
        return pareng__fail(EINVAL, "cutoff %u is not a depth, PARENG_CUTOFF_AUTO or "
                            "PARENG_CUTOFF_NONE", cutoff);
    flush_caller_streams();
    int rc = claim_the_run(e);
    if (rc < 0)
        return rc;
    if ((rc = refuse_posts(e)) == 0) {
        serving s = {e, serve, ctx};
        rc = pareng__engine_run(e, NULL, NULL, 0, cutoff, serve_step, &s);
    }
    end_the_run(e);
    return rc;
}

int pareng_post(pareng_engine *e, pareng_task_fn run, const void *data, size_t size, uint64_t tag)
{
    if (pareng__in_worker())
        return refuse_in_a_task("pareng_post");
    int unusable = refuse_unusable(e);
    if (unusable)
        return unusable;
    if (e->failed)
        return refuse_failed(e);
    int refused = refuse_posts(e);
    if (refused == 0)
        refused = refuse_task_loaded_later(e, run);
    if (refused < 0)
        return refused;
    if (size > PARENG_FRAME_DATA_SIZE) /* pareng.h gives spilled data as larger */
        return pareng__fail(EINVAL,
                            "a posted task's arguments and result must fit a frame (%d bytes, "
                            "aligned to %d): post a pointer to larger or more aligned data",
                            PARENG_FRAME_DATA_SIZE, PARENG__FRAME_DATA_ALIGN);
    pareng__globals_publish(e->globals_follow);
    /* The slot is chosen, tagged and filled under the lock: two threads that found the same
     * one free would both fill it (one task lost, its tag never collected), and a collect
     * would take a result under the tag being written. An uncontended lock is two atomic
     * operations, next to a post's wake of a worker. */
    pthread_mutex_lock(&e->inbox_lock);
    int k = pareng__inbox_free(e->segment.arena);
    if (k >= 0) {
        e->posted_tag[k] = tag;
        pareng__inbox_put(e->segment.arena, (unsigned)k, run, data, size);
    }
    pthread_mutex_unlock(&e->inbox_lock);
    if (k < 0)
        return pareng__fail(EAGAIN, "%u tasks posted and not collected yet: collect one first",
                            PARENG_SERVE_SLOTS);
    return 0;
}

int pareng_collect(pareng_engine *e, uint64_t *tag, void *result, size_t size)
{
    if (size > PARENG_FRAME_DATA_SIZE) /* a serve that collects until 0 would never end */
        return pareng__fail(EINVAL, "pareng_collect: a result of %zu bytes, more than a "
                            "frame's %d (post a pointer to it)", size, PARENG_FRAME_DATA_SIZE);
    if (pareng__in_worker())
        return refuse_in_a_task("pareng_collect");
    int unusable = refuse_unusable(e);
    if (unusable)
        return unusable;
    int refused = refuse_posts(e); /* their inbox holds other ranks' tasks, or none */
    if (refused < 0)
        return refused;
    /* Read before the scan: a failure after it may follow a result finished during it, which
     * the next call collects before it says the engine failed. */
    bool failed_before = e->failed;
    pareng__arena *a = e->segment.arena;
    int collected = 0;
    /* Under the lock: two threads would take the same result, and a post would reuse the slot
     * while its result is copied out. */
    pthread_mutex_lock(&e->inbox_lock);
    for (unsigned k = 0; k < PARENG__INBOX_SLOTS && !collected; k++) {
        pareng__inbox_slot *slot = &a->inbox[k];
        /* Acquire pairs with the worker's release of DONE: the result is in the frame. */
        if (atomic_load_explicit(&slot->state, memory_order_acquire) != PARENG__INBOX_DONE)
            continue;
        *tag = e->posted_tag[k];
        memcpy(result, slot->frame.pareng__data, size);
        /* Relaxed: no worker acts on EMPTY, and the next post finds it under the lock */
        atomic_store_explicit(&slot->state, PARENG__INBOX_EMPTY, memory_order_relaxed);
        collected = 1;
    }
    pthread_mutex_unlock(&e->inbox_lock);
    /* Results finished before a failure are still in the arena, mapped until pareng_stop;
     * past them, nothing will ever finish, and a caller that collects until it gets one
     * would wait for ever on "none yet". */
    if (!collected && failed_before)
        return refuse_failed(e);
    return collected;
}

void pareng_serve_wake(pareng_engine *e)
{
    if (e)
        wake_coordinator(e);
}

void pareng_stop(pareng_engine *e)
{
    if (!e)
        return;
    bool copy = forked_copy(e);
    /* From a task, the worker has a copy of the handle, and runs on the engine's memory,
     * which stopping would unmap under it: the task's run ends (cancelled), and the caller,
     * whose run returns -ECANCELED, stops the engine. */
    if (!copy && pareng__in_worker()) {
        cancel_run(e, STOPPED_BY_TASK);
        return;
    }
    /* From a serve's callback, the serve and its run still use the engine: they end now
     * (cancelled), and the engine stops when they return. */
    if (!copy && atomic_load_explicit(&e->in_run, memory_order_acquire)) {
        e->stop_after_run = true;
        pareng_cancel(e);
        return;
    }
    if (!e->failed && e->segment.arena && !copy) {
        pareng__arena *a = e->segment.arena;
        /* Release pairs with the idle loop's acquire (worker.c) */
        atomic_store_explicit(&a->stop, 1, memory_order_release);
        pareng__wake(a, true);
        /* Idle workers see stop at once; give them a moment, then make sure. */
        for (unsigned i = 0; i < e->n_workers; i++) {
            struct pollfd p = {.fd = e->pidfds[i], .events = POLLIN};
            if (e->pids[i] && poll(&p, 1, STOP_GRACE_MS) == 0)
                kill(e->pids[i], SIGKILL);
            reap(e, i, NULL, 0);
        }
    }
    if (copy) {
        /* Its workers are the coordinator's, not to be killed; the arena's range is not mapped
         * here (MADV_DONTFORK), and this process's own memory may lie there now. */
        close(e->segment.fd);
        e->segment.arena = NULL;
        pareng__globals_follow_not_mapped(e->globals_follow);
    } else {
        fail_engine(e); /* reaps anything left; harmless when all are gone */
    }
    release(e);
}

void *pareng_alloc(pareng_engine *e, size_t size)
{
    int refused = refuse_unusable(e);
    if (!refused && e->failed) /* a killed worker may have held the heap's lock */
        refused = refuse_failed(e);
    if (refused) {
        errno = -refused; /* set last: the message's own calls may change it */
        return NULL;
    }
    void *block = pareng__heap_alloc(&e->segment.arena->heap, size ? size : 1);
    if (!block)
        errno = ENOMEM;
    return block;
}

int pareng_free(pareng_engine *e, void *ptr)
{
    if (!ptr)
        return 0;
    int unusable = refuse_unusable(e);
    if (unusable)
        return unusable;
    if (e->failed) /* a killed worker may have held the heap's lock; the memory goes anyway */
        return 0;
    return pareng__heap_free(&e->segment.arena->heap, ptr);
}
