/*
 * observe.c - what can be seen of an engine: each worker's state word, the trace buffers of
 * --trace, the measuring mode of --scale (work and span, as Cilkscale measures them), and
 * pareng_attach, the read-only view of an engine that runs in another process.
 *
 * Everything a worker publishes for observers is written by that worker alone with relaxed
 * stores, on its slow paths only (a steal, a sleep, a run's end): the spawn and sync fast
 * paths do not change. A tool of the same user finds an engine by its coordinator's
 * descriptor of the arena (a memfd, arena.c), maps it PROT_READ and checks its header before
 * it believes anything in it.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What /proc/PID/fd/N reads for the arena's memfd (arena.c names it). */
#define ARENA_LINK "/memfd:" PARENG__SEGMENT_PREFIX "arena (deleted)"

const char *pareng_state_name(unsigned state)
{
    static const char *const names[PARENG_STATES] = {"starting", "running", "stealing",
                                                     "sleeping", "io"};
    return state < PARENG_STATES ? names[state] : "?";
}

static uint64_t relaxed(const _Atomic uint64_t *p)
{
    /* Relaxed: figures with one writer each; a reader wants a recent value, not an order */
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* The sum over a worker's n lanes (the IO counters live in lane 0 alone). */
static void sum_counters(const pareng__worker *lanes, unsigned n, pareng_stats *out)
{
    uint64_t *fields = (uint64_t *)(void *)out;
    memset(out, 0, sizeof *out);
    for (unsigned lane = 0; lane < n; lane++) {
        const pareng__counters *c = &lanes[lane].counters;
        for (size_t k = 0; k < sizeof c->v / sizeof c->v[0]; k++)
            fields[k] += relaxed(&c->v[k]);
    }
}

void pareng__stats_of(pareng__arena *a, unsigned worker, pareng_stats *out)
{
    sum_counters(pareng__lane(a, worker, 0), a->lanes_per_worker, out);
}

void pareng__observe_start(pareng__arena *a, const pareng_plan *plan)
{
    bool pinned = a->pin_workers && plan->this_system;
    for (unsigned i = 0; i < a->n_workers; i++) {
        pareng__worker *w = pareng__lane(a, i, 0);
        w->pu_os = pinned ? (int32_t)plan->placement[i].pu_os : -1;
        w->core_logical = pinned ? (int32_t)plan->placement[i].core_logical : -1;
    }
    atomic_store_explicit(&a->started_ns, pareng__now_ns(), memory_order_relaxed);
}

/* ---- traces ----------------------------------------------------------------------------- */

/* In the shared heap: one head per worker (its own cache line: each is written by its worker
 * alone), then each worker's events. */
typedef struct trace_head {
    _Atomic uint64_t count, dropped;
} PARENG__ALIGNED trace_head;

typedef struct pareng__trace {
    uint64_t capacity; /* events per worker */
    uint32_t n_workers;
    trace_head heads[];
    /* pareng_trace_event events[n_workers][capacity] follow the heads */
} pareng__trace;

static pareng_trace_event *trace_events(pareng__trace *t, unsigned worker)
{
    return (pareng_trace_event *)(void *)&t->heads[t->n_workers] + (size_t)worker * t->capacity;
}

static void trace_record(pareng__arena *a, unsigned worker, uint32_t kind, uint32_t value)
{
    /* Acquire pairs with pareng_trace_begin's release: the buffers it set up are complete */
    pareng__trace *t = atomic_load_explicit(&a->trace, memory_order_acquire);
    if (!t)
        return;
    trace_head *head = &t->heads[worker];
    uint64_t n = relaxed(&head->count); /* this worker's own */
    if (n == t->capacity) {
        atomic_store_explicit(&head->dropped, relaxed(&head->dropped) + 1, memory_order_relaxed);
        return;
    }
    trace_events(t, worker)[n] = (pareng_trace_event){pareng__now_ns(), kind, value};
    /* Release: a reader that sees the count sees the event */
    atomic_store_explicit(&head->count, n + 1, memory_order_release);
}

void pareng__observe_state_changed(pareng__worker *lane0, unsigned state)
{
    atomic_store_explicit(&lane0->state, state, memory_order_relaxed);
    trace_record(lane0->arena, lane0->index, PARENG_TRACE_STATE, state);
}

void pareng__observe_steal(pareng__worker *thief, unsigned victim)
{
    trace_record(thief->arena, thief->index, PARENG_TRACE_STEAL, victim);
}

static bool between_runs(pareng__arena *a)
{
    /* Relaxed: the caller's own store of EMPTY, or the workers' DONE it has acquired */
    return atomic_load_explicit(&a->root_state, memory_order_relaxed) == PARENG__ROOT_EMPTY;
}

int pareng_trace_begin(pareng_engine *e, size_t events_per_worker)
{
    pareng__arena *a = pareng__engine_arena(e);
    if (atomic_load_explicit(&a->trace, memory_order_relaxed))
        return pareng__fail(EBUSY, "a trace is already being recorded");
    if (!between_runs(a))
        return pareng__fail(EBUSY, "a trace begins between runs");
    if (events_per_worker == 0 || events_per_worker > (SIZE_MAX / 2) / a->n_workers /
                                                          sizeof(pareng_trace_event))
        return pareng__fail(EINVAL, "%zu trace events per worker: from 1 to a size that fits "
                            "in memory", events_per_worker);
    size_t bytes = sizeof(pareng__trace) + a->n_workers * sizeof(trace_head) +
                   (size_t)a->n_workers * events_per_worker * sizeof(pareng_trace_event);
    pareng__trace *t = pareng__heap_alloc(&a->heap, bytes);
    if (!t) {
        char why[PARENG_ERROR_MAX];
        snprintf(why, sizeof why, "%s", pareng_last_error());
        return pareng__fail(ENOMEM, "a trace of %zu events per worker needs %zu bytes of the "
                            "engine's shared memory: %s", events_per_worker, bytes, why);
    }
    t->capacity = events_per_worker;
    t->n_workers = a->n_workers;
    for (unsigned i = 0; i < a->n_workers; i++) {
        atomic_init(&t->heads[i].count, 0);
        atomic_init(&t->heads[i].dropped, 0);
    }
    /* Release pairs with trace_record's acquire */
    atomic_store_explicit(&a->trace, t, memory_order_release);
    return 0;
}

int pareng_trace_events(const pareng_engine *e, unsigned worker,
                        const pareng_trace_event **events, size_t *count, uint64_t *dropped)
{
    pareng__arena *a = pareng__engine_arena(e);
    pareng__trace *t = atomic_load_explicit(&a->trace, memory_order_relaxed);
    if (!t)
        return pareng__fail(EINVAL, "no trace is being recorded (pareng_trace_begin)");
    if (worker >= t->n_workers)
        return pareng__fail(EINVAL, "no worker %u (the engine has %u)", worker, t->n_workers);
    /* Acquire pairs with trace_record's release: the events below the count are written */
    *count = atomic_load_explicit(&t->heads[worker].count, memory_order_acquire);
    *events = trace_events(t, worker);
    if (dropped)
        *dropped = relaxed(&t->heads[worker].dropped);
    return 0;
}

void pareng_trace_end(pareng_engine *e)
{
    pareng__arena *a = pareng__engine_arena(e);
    pareng__trace *t = atomic_load_explicit(&a->trace, memory_order_relaxed);
    if (!t || !between_runs(a))
        return;
    /* The buffers stay allocated until pareng_stop: a worker that read the pointer a moment
     * ago may still write its change to sleeping after the run, and freeing them under it
     * would corrupt what pareng_alloc hands out next. */
    atomic_store_explicit(&a->trace, NULL, memory_order_relaxed);
}

/* ---- runs and the measuring mode -------------------------------------------------------- */

/* The measured root's figures so far, in its worker's memory (one root at a time). The path
 * length is that of the strand running now, from the root's start; marks[i] is what it was
 * when the frame at index i of the deque was spawned, plus the burden. */
typedef struct measure_mark {
    uint64_t span, burdened, tasks;
} measure_mark;

/* Thread-local, as every per-process state of libpareng (fiber.c's sched): never in the data
 * segment, which globals.c shares between processes when libpareng is linked in. */
static _Thread_local struct {
    uint64_t last_ns;   /* the end of the last measurement: strands are timed from here */
    uint64_t clock_cost_ns;
    uint64_t work;
    measure_mark path;  /* the running strand's path */
    uint64_t tasks;
    measure_mark *marks;
    size_t capacity;
} measure;

/* The measuring worker's CPU time, not the wall clock's: a strand during which the worker was
 * preempted (other programs on a busy machine) must not look long, or the span would be the
 * longest preemption of the run. */
static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What reading that clock adds to a strand between two readings: the least of many back to
 * back (a CPU-time clock is a system call, hundreds of nanoseconds, which would otherwise
 * count as work several times over on small tasks). */
static uint64_t clock_cost_ns(void)
{
    uint64_t least = UINT64_MAX;
    for (int k = 0; k < 200; k++) {
        uint64_t a = cpu_now_ns(), b = cpu_now_ns();
        least = b - a < least ? b - a : least;
    }
    return least;
}

/* The strand since the last event ends now. */
static void measure_strand(void)
{
    uint64_t d = cpu_now_ns() - measure.last_ns;
    d = d > measure.clock_cost_ns ? d - measure.clock_cost_ns : 0;
    measure.work += d;
    measure.path.span += d;
    measure.path.burdened += d;
}

/* What follows is timed from here: the measurement's own cost is left out. */
static void measure_restart(void)
{
    measure.last_ns = cpu_now_ns();
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

void pareng__observe_root_begin(pareng__worker *w)
{
    pareng__arena *a = w->arena;
    /* Relaxed: figures for observers (a tool reads runs and times; nothing else) */
    atomic_store_explicit(&a->run_ended_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&a->run_began_ns, pareng__now_ns(), memory_order_relaxed);
    atomic_store_explicit(&a->runs, relaxed(&a->runs) + 1, memory_order_relaxed);
    /* measure was written by the caller before its release of READY, which this worker
     * acquired: a plain read is ordered */
    w->measuring = a->measure != 0;
    if (!w->measuring)
        return;
    size_t capacity = (size_t)(w->pub.pareng__end - w->base);
    if (measure.capacity < capacity) {
        free(measure.marks);
        measure.marks = malloc(capacity * sizeof *measure.marks);
        if (!measure.marks)
            pareng__worker_exit(w, PARENG__EXIT_OUT_OF_MEMORY, ENOMEM);
        measure.capacity = capacity;
    }
    /* Every spawn a task. The deque is as pareng__deque_reset leaves it (everything below
     * stolen): every spawn and every sync takes the slow path, which measures them, as long
     * as nothing is published. */
    w->pub.pareng__cutoff = PARENG_CUTOFF_NONE;
    w->cut.cutoff_adapts = false;
    measure.clock_cost_ns = clock_cost_ns();
    measure.work = 0;
    measure.path = (measure_mark){.tasks = 1};
    measure.tasks = 1;
    measure_restart();
}

void pareng__observe_root_end(pareng__worker *w)
{
    pareng__arena *a = w->arena;
    if (w->measuring) {
        measure_strand();
        /* published with the root's DONE (release) */
        a->scale = (pareng_scale){.work_ns = measure.work, .span_ns = measure.path.span,
                                  .burdened_span_ns = measure.path.burdened,
                                  .tasks = measure.tasks, .span_tasks = measure.path.tasks};
        w->measuring = false;
    }
    atomic_store_explicit(&a->run_ended_ns, pareng__now_ns(), memory_order_relaxed);
}

pareng_frame *pareng__measure_spawn(pareng__worker *w, pareng_frame *h, pareng_task_fn run,
                                    const void *args, size_t size)
{
    measure_strand();
    /* The child may start now: its path is the spawner's so far, and a steal of it (pareng's
     * thieves take the child, not the continuation) costs the burden. */
    measure.marks[h - w->base] = (measure_mark){
        .span = measure.path.span,
        .burdened = measure.path.burdened + w->arena->measure_burden_ns,
        .tasks = measure.path.tasks};
    h->pareng__run = run;
    memcpy(h->pareng__data, args, size);
    measure_restart();
    return h + 1;
}

pareng_frame *pareng__measure_sync(pareng__worker *w, pareng_frame *t)
{
    measure_strand();
    measure_mark continuation = measure.path;
    measure.path = measure.marks[t - w->base];
    measure.path.tasks++;
    measure.tasks++;
    measure_restart();
    /* The child runs here (its result stays in its frame, as a stolen child's does), so that
     * its end is seen; then the paths join. */
    t->pareng__run(&w->pub, t + 1, t);
    measure_strand();
    measure.path.span = max_u64(measure.path.span, continuation.span);
    measure.path.burdened = max_u64(measure.path.burdened, continuation.burdened);
    measure.path.tasks = max_u64(measure.path.tasks, continuation.tasks);
    measure_restart();
    return t;
}

int pareng_scale_begin(pareng_engine *e, uint64_t burden_ns)
{
    pareng__arena *a = pareng__engine_arena(e);
    if (a->n_workers != 1 || a->io_depth)
        return pareng__fail(EINVAL, "the measuring mode needs an engine of one worker without "
                            "IO (this one has %u worker%s%s)", a->n_workers,
                            a->n_workers == 1 ? "" : "s", a->io_depth ? " and IO" : "");
    if (!between_runs(a))
        return pareng__fail(EBUSY, "the measuring mode begins between runs");
    a->scale = (pareng_scale){0};
    a->measure_burden_ns = burden_ns;
    a->measure = 1; /* published by the next root's release of READY */
    return 0;
}

int pareng_scale_end(pareng_engine *e, pareng_scale *out)
{
    pareng__arena *a = pareng__engine_arena(e);
    bool measured = a->measure && a->scale.tasks;
    a->measure = 0;
    if (!measured)
        return pareng__fail(EINVAL, "no run was measured (pareng_scale_begin, then a run)");
    /* written by the root's worker before its release of DONE, which the run acquired */
    *out = a->scale;
    return 0;
}

/* ---- attaching from another process ---------------------------------------------------- */

struct pareng_attached {
    pareng__arena *arena; /* PROT_READ: the header and the lanes, not the deques or the heap */
    size_t mapped;
    /* As checked at the attach, never read again from the mapping: a process of this user
     * that poses as an engine may change its header afterwards */
    unsigned n_workers, lanes_per_worker;
    pareng_engine_ref ref;
    ino_t ino;              /* the memfd: the engine stopped when the descriptor names another */
    uint64_t owner_start;   /* the coordinator's start time: its pid may be reused */
    char command[128];
    struct cpu_sample {
        int64_t ticks;
        uint64_t ns;
    } *cpu;                 /* [n_workers]: the previous snapshot's */
};

/* Is pid a process, and this user's? 0, -ESRCH or -EACCES (with a message). */
static int check_process(int pid)
{
    char path[32];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    if (pid <= 0 || stat(path, &st) < 0)
        return pareng__fail(ESRCH, "no process %d", pid);
    if (st.st_uid != geteuid())
        return pareng__fail(EACCES, "process %d belongs to another user (uid %u): pareng "
                            "attaches only to engines of its own user", pid,
                            (unsigned)st.st_uid);
    return 0;
}

/* The header of the arena open at fd, checked: 0 (with *st), or -EACCES / -EPROTO with a
 * message. Nothing of it is believed before its magic, layout and size are. */
static int check_arena(int fd, const char *segment, int pid, struct stat *st,
                       pareng__arena *head)
{
    char link[64];
    ssize_t n = readlink(segment, link, sizeof link - 1);
    link[n < 0 ? 0 : n] = '\0';
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || strcmp(link, ARENA_LINK) != 0)
        return pareng__fail(EPROTO, "%s is not a pareng engine's memory", segment);
    /* An engine seals its memory against shrinking (arena.c); one that may shrink could end
     * this process with SIGBUS at a read of the mapping */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
        return pareng__fail(EPROTO, "%s is not a pareng engine's memory: it is not sealed "
                            "against shrinking", segment);
    if (st->st_uid != geteuid())
        return pareng__fail(EACCES, "%s belongs to another user (uid %u)", segment,
                            (unsigned)st->st_uid);
    if ((size_t)st->st_size < sizeof *head ||
        pread(fd, head, sizeof *head, 0) != (ssize_t)sizeof *head)
        return pareng__fail(EPROTO, "%s is too small to be a pareng engine's memory", segment);
    if (head->magic != PARENG__ARENA_MAGIC)
        return pareng__fail(EPROTO, "%s is not a pareng engine's memory (no magic number: "
                            "not set up yet, or not an engine)", segment);
    if (head->layout != PARENG__ARENA_LAYOUT)
        return pareng__fail(EPROTO, "%s is the memory of an engine of another pareng version "
                            "(layout %u, this one reads %u)", segment, head->layout,
                            PARENG__ARENA_LAYOUT);
    size_t lanes = (size_t)head->n_workers * head->lanes_per_worker;
    if (head->size > (uint64_t)st->st_size || head->n_workers == 0 ||
        head->n_workers > PARENG_MAX_WORKERS || head->io_depth > PARENG_IO_DEPTH_MAX ||
        head->lanes_per_worker != PARENG__LANES_PER_WORKER(head->io_depth) ||
        sizeof *head + lanes * sizeof(pareng__worker) > head->size)
        return pareng__fail(EPROTO, "%s holds an engine header that does not add up (size "
                            "%llu of %llu, %u workers, io_depth %u)", segment,
                            (unsigned long long)head->size, (unsigned long long)st->st_size,
                            head->n_workers, head->io_depth);
    if (head->owner_pid != pid)
        return pareng__fail(EPROTO, "%s is an engine of process %d, not of %d (an inherited "
                            "descriptor)", segment, head->owner_pid, pid);
    return 0;
}

/* Engines in process pid (already checked): adds to out from *count on. */
static void find_in_process(int pid, pareng_engine_ref *out, unsigned max, unsigned *count)
{
    char dir_path[32];
    snprintf(dir_path, sizeof dir_path, "/proc/%d/fd", pid);
    DIR *d = opendir(dir_path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char segment[48], link[64];
        if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
            snprintf(segment, sizeof segment, "%s/%s", dir_path, e->d_name) >= (int)sizeof segment)
            continue;
        ssize_t n = readlink(segment, link, sizeof link - 1);
        if (n < 0 || (link[n] = '\0', strcmp(link, ARENA_LINK) != 0))
            continue;
        /* O_NONBLOCK: the descriptor may have become a FIFO since its link was read */
        int fd = open(segment, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        pareng__arena head;
        bool engine = fd >= 0 && check_arena(fd, segment, pid, &st, &head) == 0;
        if (fd >= 0)
            close(fd);
        if (!engine)
            continue;
        if (*count < max) {
            out[*count].pid = pid;
            snprintf(out[*count].segment, sizeof out[*count].segment, "%s", segment);
        }
        ++*count;
    }
    closedir(d);
}

int pareng_engines_find(int pid, pareng_engine_ref *out, unsigned max)
{
    unsigned count = 0;
    if (pid) {
        int rc = check_process(pid);
        if (rc < 0)
            return rc;
        find_in_process(pid, out, max, &count);
        return (int)count;
    }
    DIR *d = opendir("/proc");
    if (!d)
        return pareng__fail(errno, "cannot read /proc: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        if (*end || p <= 0 || p > INT32_MAX || check_process((int)p) < 0)
            continue;
        find_in_process((int)p, out, max, &count);
    }
    closedir(d);
    return (int)count;
}

/* Moves *s past prefix: false, and *s unchanged, when it does not start with it. */
static bool skip_prefix(const char **s, const char *prefix)
{
    size_t len = strlen(prefix);
    if (strncmp(*s, prefix, len) != 0)
        return false;
    *s += len;
    return true;
}

/* The decimal number of digits alone (no sign, no space: strtol takes both) at *s, from min
 * to max, into *value and *s past it: false when there is none or it is out of range. */
static bool take_number(const char **s, long min, long max, long *value)
{
    if (**s < '0' || **s > '9')
        return false;
    char *end;
    errno = 0;
    *value = strtol(*s, &end, 10);
    *s = end;
    return errno == 0 && *value >= min && *value <= max;
}

/* target as a pid ("4242") or a segment ("/proc/4242/fd/5") into ref; 0, or -errno. */
static int parse_target(const char *target, pareng_engine_ref *ref)
{
    const char *s = target;
    long pid, fd;
    bool is_segment = skip_prefix(&s, "/proc/");
    if (!take_number(&s, 1, INT32_MAX, &pid) ||
        (is_segment && !(skip_prefix(&s, "/fd/") && take_number(&s, 0, INT32_MAX, &fd))) || *s)
        return pareng__fail(EINVAL, "'%s' is neither a process id nor an engine's segment "
                            "(/proc/PID/fd/N)", target);
    if (is_segment) {
        int rc = check_process((int)pid);
        if (rc < 0)
            return rc;
        ref->pid = (int)pid;
        snprintf(ref->segment, sizeof ref->segment, "/proc/%ld/fd/%ld", pid, fd);
        return 0;
    }
    int n = pareng_engines_find((int)pid, ref, 1);
    if (n < 0)
        return n;
    if (n == 0)
        return pareng__fail(ENOENT, "process %ld runs no pareng engine", pid);
    return 0;
}

static void read_command(int pid, char *out, size_t size)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    if (f)
        fclose(f);
    while (n > 0 && out[n - 1] == '\0')
        n--;
    out[n] = '\0';
    for (size_t k = 0; k < n; k++)
        out[k] = out[k] ? out[k] : ' ';
}

int pareng_attach(pareng_attached **out, const char *target)
{
    *out = NULL;
    pareng_engine_ref ref;
    int rc = parse_target(target, &ref);
    if (rc < 0)
        return rc;
    /* O_NONBLOCK: the target may name a FIFO, whose open would wait for a writer */
    int fd = open(ref.segment, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? pareng__fail(ENOENT, "process %d has no %s", ref.pid,
                                              ref.segment)
                               : pareng__fail(errno, "%s: %s", ref.segment, strerror(errno));
    struct stat st;
    pareng__arena head;
    rc = check_arena(fd, ref.segment, ref.pid, &st, &head);
    size_t mapped = sizeof head + (size_t)head.n_workers * head.lanes_per_worker *
                                      sizeof(pareng__worker);
    void *map = rc < 0 ? MAP_FAILED : mmap(NULL, mapped, PROT_READ, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the memory */
    if (rc < 0)
        return rc;
    if (map == MAP_FAILED)
        return pareng__fail(errno, "cannot map %s: %s", ref.segment, strerror(errno));
    pareng_attached *att = calloc(1, sizeof *att);
    if (att)
        att->cpu = calloc(head.n_workers, sizeof *att->cpu);
    if (!att || !att->cpu) {
        munmap(map, mapped);
        free(att);
        return pareng__fail(ENOMEM, "out of memory");
    }
    att->arena = map;
    att->mapped = mapped;
    att->n_workers = head.n_workers;
    att->lanes_per_worker = head.lanes_per_worker;
    att->ref = ref;
    att->ino = st.st_ino;
    att->owner_start = pareng__process_start_time(ref.pid);
    read_command(ref.pid, att->command, sizeof att->command);
    *out = att;
    return 0;
}

void pareng_detach(pareng_attached *att)
{
    if (!att)
        return;
    munmap(att->arena, att->mapped);
    free(att->cpu);
    free(att);
}

/* CPU% of pid since *prev (or since it started), and the new sample in *prev. */
static double cpu_percent(int pid, struct cpu_sample *prev)
{
    static long ticks_per_second;
    if (!ticks_per_second)
        ticks_per_second = sysconf(_SC_CLK_TCK);
    int64_t ticks = pareng__process_cpu_ticks(pid);
    uint64_t now = pareng__now_ns();
    if (ticks < 0)
        return 0;
    struct cpu_sample before = *prev;
    if (!before.ns) { /* since it started: its start, in ticks since boot */
        struct timespec boot;
        clock_gettime(CLOCK_BOOTTIME, &boot);
        uint64_t boot_ns = (uint64_t)boot.tv_sec * 1000000000u + (uint64_t)boot.tv_nsec;
        uint64_t started = pareng__process_start_time(pid) * (1000000000u / ticks_per_second);
        before = (struct cpu_sample){0, now - (boot_ns > started ? boot_ns - started : 0)};
    }
    *prev = (struct cpu_sample){ticks, now};
    if (now <= before.ns)
        return 0;
    return 100.0 * (double)(ticks - before.ticks) / (double)ticks_per_second /
           ((double)(now - before.ns) * 1e-9);
}

int pareng_snapshot(pareng_attached *att, pareng_engine_view *engine, pareng_worker_view *workers,
                    unsigned max)
{
    pareng__arena *a = att->arena;
    struct stat st;
    if (stat(att->ref.segment, &st) < 0 || st.st_ino != att->ino ||
        pareng__process_start_time(att->ref.pid) != att->owner_start)
        return pareng__fail(ESRCH, "the engine of process %d has stopped", att->ref.pid);
    unsigned n_workers = att->n_workers, per_worker = att->lanes_per_worker;
    uint64_t now = pareng__now_ns();
    /* Relaxed, here and below: figures, each with one writer (observe.c's banner) */
    uint64_t began = relaxed(&a->run_began_ns), ended = relaxed(&a->run_ended_ns);
    uint64_t runs = relaxed(&a->runs);
    *engine = (pareng_engine_view){
        .pid = att->ref.pid, .workers = n_workers, .io_depth = a->io_depth,
        .age_seconds = (double)(now - relaxed(&a->started_ns)) * 1e-9, .runs = runs,
        .running = runs && !ended,
        .run_seconds = runs ? (double)((ended ? ended : now) - began) * 1e-9 : 0};
    snprintf(engine->segment, sizeof engine->segment, "%s", att->ref.segment);
    snprintf(engine->command, sizeof engine->command, "%s", att->command);
    for (unsigned i = 0; i < n_workers && i < max; i++) {
        pareng__worker *w = &a->lanes[(size_t)i * per_worker];
        pareng_worker_view *v = &workers[i];
        v->pid = atomic_load_explicit(&w->pid, memory_order_relaxed);
        v->pu_os = w->pu_os;
        v->core_logical = w->core_logical;
        v->state = atomic_load_explicit(&w->state, memory_order_relaxed);
        v->io_in_flight = atomic_load_explicit(&w->io_in_flight, memory_order_relaxed);
        sum_counters(w, per_worker, &v->stats);
        v->shared_frames = 0;
        unsigned used = atomic_load_explicit(&w->lanes_used, memory_order_relaxed);
        for (unsigned k = 0; k < used && k < per_worker; k++) {
            uint64_t ts = atomic_load_explicit(&w[k].tail_split, memory_order_relaxed);
            uint32_t tail = pareng__ts_tail(ts), split = pareng__ts_split(ts);
            v->shared_frames += split > tail ? split - tail : 0;
        }
        v->cpu_percent = cpu_percent(v->pid, &att->cpu[i]);
    }
    return (int)n_workers;
}
