/*
 * pareng.h - the one public header of libpareng, a shared-memory work-stealing engine whose
 * workers are processes.
 *
 * Conventions: every public name starts with pareng_ (internal ones, which appear here only
 * because the spawn/sync fast path is inline, with pareng__); functions return 0 or a
 * negative errno value; pareng_last_error() gives a one-line message for the last failure in
 * the calling thread; configuration is a plain struct filled by pareng_config_default(), in
 * which 0 means "choose for me".
 *
 * Life cycle:  pareng_config_default() -> pareng_start() -> PARENG_RUN(), pareng_for(),
 * pareng_reduce() ... -> pareng_stop().
 * Call pareng_start() before creating threads of your own and call start, run and stop from
 * the same thread: workers are forked from it and die with it (PR_SET_PDEATHSIG). Other
 * threads of the process may post and collect tasks (pareng_post, pareng_collect) and wake a
 * serve (pareng_serve_wake), until stop.
 *
 * What a worker sees (docs/memory.md): the program's global variables, shared as between
 * threads; the task stacks (a child may use its parent's locals until the parent syncs it);
 * pareng_alloc memory; what tasks malloc (shared, until pareng_stop); the task frames; and the
 * rest of the caller's memory (its heap, its stack, shared libraries' data) as it was at
 * pareng_start() (copy-on-write: writes after the fork are not seen, on either side).
 * Pointers into the caller's heap made after pareng_start() are meaningless in a worker.
 */
#ifndef PARENG_H
#define PARENG_H

#include <stddef.h>
#include <stdint.h>

/* The header is C11 with GNU extensions, and compiles as C++17 (g++, clang++) too: the few
 * constructs that differ are spelled through these. A frame's atomics are lock-free words in
 * both languages, with the same layout. */
#ifdef __cplusplus
#include <atomic>
#include <cerrno>
#include <type_traits>
#define PARENG__ATOMIC(T) std::atomic<T>
#define PARENG__ALIGNAS(N) alignas(N)
#define PARENG__STATIC_ASSERT(COND, WHY) static_assert(COND, WHY)
#define PARENG__LOAD_RELAXED(P) (P)->load(std::memory_order_relaxed)
#define PARENG__LITERAL(T) T
#else
#include <stdatomic.h>
#define PARENG__ATOMIC(T) _Atomic T
#define PARENG__ALIGNAS(N) _Alignas(N)
#define PARENG__STATIC_ASSERT(COND, WHY) _Static_assert(COND, WHY)
#define PARENG__LOAD_RELAXED(P) atomic_load_explicit(P, memory_order_relaxed)
#define PARENG__LITERAL(T) (T)
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PARENG_VERSION_MAJOR 0
#define PARENG_VERSION_MINOR 1
#define PARENG_VERSION_PATCH 0
#define PARENG_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define PARENG_API __attribute__((visibility("default")))
#define PARENG__LIKELY(x) __builtin_expect(!!(x), 1)
#define PARENG__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define PARENG_API
#define PARENG__LIKELY(x) (x)
#define PARENG__UNLIKELY(x) (x)
#endif

/* The most workers one engine may have (oversubscription included). */
#define PARENG_MAX_WORKERS 512
/* Bytes of arguments (and of result) one task frame carries. */
#define PARENG_FRAME_DATA_SIZE 48
/* Their alignment: data that want more go to a spill block, as larger data do. */
#define PARENG__FRAME_DATA_ALIGN 16

/* ------------------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------------- */

typedef struct pareng_engine pareng_engine;

typedef struct pareng_config {
    /* Number of workers; 0 = one per physical core this process may use (taskset and cgroup
     * cpusets respected). More workers than cores is allowed, up to PARENG_MAX_WORKERS. */
    unsigned workers;
    /* Where to pin workers, or NULL for automatic placement: a CPU list in the grammar of
     * pareng_config_set_cores ("0,2-3", "core:0-3", "package:0", "numa:1", "pu:all"), one
     * worker per CPU it names (per core for whole cores, packages and NUMA nodes). When set,
     * workers must be 0 or equal to the number of workers the list names. */
    const char *cpus;
    /* Task frames per worker deque; 0 = 1,048,576 (64 MiB of address space a worker, taken
     * as frames are first used). A spawn on a full deque runs inline at once (counted in
     * pareng_stats.overflows), while thieves still take the frames below it. */
    unsigned deque_capacity;
    /* An hwloc XML file to use instead of this machine (placement planning only: an engine
     * started on a foreign topology runs unpinned). NULL = this machine, or the topology
     * named by the HWLOC_SYNTHETIC / HWLOC_XMLFILE environment variables. */
    const char *topology_xml;
    /* Bytes of shared memory for pareng_alloc, visible to every worker at the same address.
     * 0 = grow as needed, up to the machine's memory and swap (at most 1 TiB); N = grow as
     * needed up to N, at most 1 TiB, and no further (a budget: pareng_alloc returns NULL past
     * it). Either way the heap starts at 8 MiB of the memfd and costs address space, not
     * memory, until it is touched (docs/memory.md, "Sizing"). */
    size_t shared_bytes;
    /* IO from tasks (PARENG_IO_*, docs/io.md). 0 = off: no ring, no fibers, CPU work only.
     * Non-zero: every worker owns an io_uring of io_depth entries and may hold up to io_depth
     * tasks suspended on IO at once (PARENG_IO_DEPTH_AUTO is a good value), at most
     * PARENG_IO_DEPTH_MAX; up to twice as many when all of them wait while other tasks are
     * runnable, which their IO may be waiting for (a pipe's writer: docs/io.md). */
    unsigned io_depth;
    /* Granularity of tasks written with PARENG_SPAWN (docs/design.md, "Automatic
     * granularity"): a task that many levels (of calls and inline syncs) below the root or a
     * stolen task runs as plain serial C, with everything below it. PARENG_CUTOFF_AUTO (0):
     * each worker adapts the depth by timing its serial runs, so that a user writes no
     * cutoff; N: a fixed depth; PARENG_CUTOFF_NONE: every spawn makes a task. IO engines
     * always make every spawn a task (a task may wait on IO anywhere): they take 0 or
     * PARENG_CUTOFF_NONE only. */
    unsigned cutoff_depth;
    /* Non-zero: pareng_start prints where each worker runs on stderr, one line a worker
     * (as OMP_DISPLAY_AFFINITY does). */
    unsigned display_affinity;
    /* Called in each worker process just after its fork, before it runs anything, with the
     * engine, the worker's index and after_fork_arg: what the caller's process carries and a
     * child must set up again lives here (Python's PyOS_AfterFork_Child: a Python caller
     * forks with PyOS_BeforeFork before pareng_start and PyOS_AfterFork_Parent after it).
     * Every signal is blocked while it runs, and the caller's handlers are reset already:
     * a handler it installs stays. NULL: nothing is called. */
    void (*after_fork)(pareng_engine *engine, unsigned worker, void *arg);
    void *after_fork_arg;
    /* Set by pareng_config_default when a PARENG_* environment variable is malformed:
     * pareng_start and pareng_plan_create then refuse the configuration with its message,
     * unless the caller has set that variable's field itself. */
    unsigned char pareng__bad_environment;
    /* This machine's topology (hwloc's discovery: 1.3 ms of a start here) is kept in a cache
     * of this user's, $XDG_CACHE_HOME/pareng or ~/.cache/pareng, keyed on the boot, the online
     * CPUs and hwloc's version; the CPUs this process may use are read at every start, never
     * cached (docs/design.md, "Placement"). PARENG_TOPOLOGY_CACHE_AUTO (0): use and refresh
     * it; PARENG_TOPOLOGY_CACHE_OFF: discover the machine at every start. */
    unsigned char topology_cache;
    /* The main program's global variables (docs/memory.md). PARENG_GLOBALS_PRIVATE (0): each
     * of this engine's workers has its own copy, which follows the caller's: what the caller
     * writes after the start, the tasks of its next run (or post) read, as threads would; what
     * a task writes is its worker's (the caller never sees it). A program linked statically
     * cannot have it (the C library's state is among its globals): pareng_start fails with
     * -ENOTSUP. PARENG_GLOBALS_FORKED: each worker's copy stays as it was at the fork, as
     * fork gives (an interpreter, whose globals are its state: the Python module). PARENG_
     * GLOBALS_SHARED: moved into shared memory before the first fork, shared by the caller and
     * the workers as between threads, for ports of thread code whose tasks write globals that
     * the caller reads; not for a program whose globals hold per-process state: a pointer to a
     * worker's malloc, an allocator linked statically, an interpreter (docs/memory.md,
     * "Globals"). */
    unsigned char globals;
    /* The caller's heap, the blocks it malloc'd and its stack, as the workers have them: a
     * copy made at their fork (docs/memory.md, "The caller's memory"). PARENG_CALLER_MEMORY_
     * READONLY (0): read-only for the program's code in the workers wherever tasks' malloc
     * is libpareng's (pareng_task_malloc_shared), so that a task's write there, which the
     * caller would never see, fails the run with a message naming it, instead of a wrong
     * result; the C library and the compilers' runtimes still write their own state there.
     * PARENG_CALLER_MEMORY_WRITABLE: each worker may write its own copy, as fork gives (for a
     * program that uses memory allocated before the start as per-worker scratch). */
    unsigned char caller_memory;
    /* Room to grow without breaking the ABI; keep zeroed. */
    unsigned char reserved[8];
} pareng_config;

#define PARENG_CUTOFF_AUTO 0u
#define PARENG_CUTOFF_NONE UINT32_MAX
#define PARENG_TOPOLOGY_CACHE_AUTO 0
#define PARENG_TOPOLOGY_CACHE_OFF 1
#define PARENG_GLOBALS_PRIVATE 0
#define PARENG_GLOBALS_SHARED 1
#define PARENG_GLOBALS_FORKED 2
#define PARENG_CALLER_MEMORY_READONLY 0
#define PARENG_CALLER_MEMORY_WRITABLE 1

/* The defaults, 0 (auto) everywhere, then the environment, as OpenMP programs read OMP_*
 * (docs/cli.md, "Environment"; a field the caller sets afterwards wins):
 *   PARENG_NUM_WORKERS=K          workers
 *   PARENG_PLACES=LIST            cpus (the grammar of pareng_config_set_cores)
 *   PARENG_CUTOFF=auto|none|N     cutoff_depth
 *   PARENG_DISPLAY_AFFINITY=true|false   display_affinity (also 1/0, yes/no, on/off)
 *   PARENG_TOPOLOGY_CACHE=true|false     topology_cache (false: PARENG_TOPOLOGY_CACHE_OFF)
 * Returns 0, or -EINVAL naming the malformed variable (that field keeps its default, and
 * pareng_start refuses the configuration while the caller has not set that field itself). */
PARENG_API int pareng_config_default(pareng_config *cfg);
/* Sets workers and cpus from one text, as the CLI's --cores, PARENG_PLACES and Python's
 * cores= take it: "auto" (one worker per core), a worker count K, or a CPU list. The list is
 * comma-separated items, each
 *   N or N-M          OS CPU numbers (P#), as taskset and /proc/cpuinfo number them
 *   TYPE:SPEC         hwloc logical indexes (L#, as lstopo and hwloc-calc): TYPE is pu, core,
 *                     package (or socket) or numa (or numanode, node); SPEC is all, N or N-M,
 *                     and plain numbers after it continue that type ("pu:0,2" = pu:0,pu:2)
 * A PU gets one worker; a core, package or NUMA node one per core inside that this process
 * may use. Not accepted (refused with a message): hwloc-calc's nested locations
 * (package:0.core:1), even/odd, bitmasks (0x3), exclusions (~), likwid's domain prefixes
 * (S0:, N:, M0:). The text is checked here for its form and kept by pointer (it must outlive
 * cfg); whether the CPUs exist is checked by pareng_plan_create and pareng_start. 0, or
 * -EINVAL with a message. */
PARENG_API int pareng_config_set_cores(pareng_config *cfg, const char *cores);
/* Sets cutoff_depth from "auto" (or "0"), "none" (every spawn a task) or a depth N, as the
 * CLI's --cutoff and PARENG_CUTOFF take it. 0, or -EINVAL with a message. */
PARENG_API int pareng_config_set_cutoff(pareng_config *cfg, const char *cutoff);

/* Message for the last call that failed in this thread ("" if none), at most
 * PARENG_ERROR_MAX bytes with its NUL: a longer one keeps its start and its end (the reason),
 * with an ellipsis between. A copy of it needs no more. */
PARENG_API const char *pareng_last_error(void);
#define PARENG_ERROR_MAX 512
PARENG_API const char *pareng_version(void);

/* ------------------------------------------------------------------------------------------
 * Placement plans: where the workers of a configuration would run, without starting them.
 * ---------------------------------------------------------------------------------------- */

typedef struct pareng_plan pareng_plan;

typedef struct pareng_placement {
    unsigned pu_os;      /* OS index of the PU the worker is pinned to (P#) */
    unsigned pu_logical; /* hwloc logical index of that PU (L#) */
    unsigned core_logical;    /* its core's L#; a topology without cores (some synthetic
                               * ones) makes each PU its own core: the PU's L# */
    unsigned package_logical; /* its package's L#, or PARENG_NO_PACKAGE on a topology without
                               * packages (some synthetic ones) */
    int shared_core;     /* another worker of this plan is on the same core */
    int shared_pu;       /* another worker of this plan is on the same PU */
} pareng_placement;
#define PARENG_NO_PACKAGE (~0u)

/* Builds the plan of cfg: loads the topology with hwloc (the caller's environment is left as
 * it is: HWLOC_PLUGINS_BLACKLIST=hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml, set by the
 * caller, saves hwloc about 3 ms of plugin loading, as the CLI does). Returns 0; -EINVAL (bad list,
 * workers out of range) or -ERANGE (a CPU outside the allowed set) for the placement;
 * -ENOENT (no such topology file) or -EIO (any other topology failure) for the topology;
 * -ENOMEM. */
PARENG_API int pareng_plan_create(pareng_plan **plan, const pareng_config *cfg);
PARENG_API void pareng_plan_destroy(pareng_plan *plan);
PARENG_API unsigned pareng_plan_workers(const pareng_plan *plan);
/* Physical cores in the allowed set, and PUs. */
PARENG_API unsigned pareng_plan_cores(const pareng_plan *plan);
PARENG_API unsigned pareng_plan_pus(const pareng_plan *plan);
PARENG_API int pareng_plan_placement(const pareng_plan *plan, unsigned worker,
                                     pareng_placement *out);
/* Victims of `worker`, nearest first (fills at most max entries, returns how many there are):
 * ordered by the depth of the first object of hwloc's tree that holds both workers' PUs
 * (deeper is nearer), and among equally near ones from worker + 1 upwards, wrapping. levels[]
 * (when not NULL) says what each victim shares with `worker`: 0 the core, 1 an L2, 2 an L3,
 * 3 a NUMA node, 4 the package, 5 only the machine (see pareng_plan_level_name). */
PARENG_API int pareng_plan_victims(const pareng_plan *plan, unsigned worker, unsigned *victims,
                                   unsigned *levels, unsigned max);
/* The group of each of `worker`'s victims, in pareng_plan_victims' order (fills at most max
 * entries, returns how many there are): victims of one group are equally near, and a steal
 * round starts each group at a random member; groups count from 0, the nearest. Two groups
 * may have one level: a die's or an hwloc group's victims come before the rest of the
 * package, and are named "package" too. */
PARENG_API int pareng_plan_victim_groups(const pareng_plan *plan, unsigned worker,
                                         unsigned *groups, unsigned max);
/* Name of a victim distance level ("core", "L2", "L3", "NUMA", "package", "machine"). */
PARENG_API const char *pareng_plan_level_name(unsigned level);

/* One object of the plan's topology, for printing it (pareng topo). */
typedef struct pareng_topo_object {
    char type[24];       /* hwloc's name: "Machine", "Package", "NUMANode", "L3", "L2", "Core", "PU", ... */
    char model[64];      /* Packages: the CPU model hwloc reports; else "" */
    unsigned nesting;    /* 0 for the machine, 1 for its children, ... (NUMA nodes nest under the
                          * object they are attached to) */
    unsigned logical;    /* L# */
    int os;              /* P#, or -1 when the object has none */
    uint64_t bytes;      /* cache size, or NUMA node memory; 0 otherwise */
    int allowed;         /* this process may run here (for PUs; for others: any PU inside) */
    int worker;          /* PUs: the first worker of the plan pinned here, or -1 */
} pareng_topo_object;

/* The plan's topology in pre-order (a parent before its children): the machine, groups,
 * packages, dies, NUMA nodes, L3 and L2 caches, cores, PUs. Fills at most max entries and
 * returns how many there are. */
PARENG_API int pareng_plan_topology(const pareng_plan *plan, pareng_topo_object *out,
                                    unsigned max);
/* Does the plan describe the machine this process runs on (not a synthetic or XML one)? */
PARENG_API int pareng_plan_is_this_system(const pareng_plan *plan);

/* ------------------------------------------------------------------------------------------
 * Engines
 * ---------------------------------------------------------------------------------------- */

/* Maps the arena, forks the workers and pins them. -EINVAL / -ERANGE for a bad
 * configuration (nothing started), -ENOMEM when the arena cannot be mapped (the message names
 * an address-space limit), -ECANCELED when a signal came through pareng_cancel_on_signal's
 * handler (then nothing is started). */
PARENG_API int pareng_start(pareng_engine **engine, const pareng_config *cfg);
/* Stops and reaps every worker, unmaps the arena and frees the engine. Always succeeds. The
 * handle is gone after it: other threads that post or collect must be done first (joined).
 * From a pareng_serve callback it cancels the serve, and the engine stops as the serve
 * returns. From a task (or a thread a task started) it cannot stop the engine, on whose
 * memory the task runs: it cancels the task's run as pareng_cancel does (the run returns
 * -ECANCELED, saying a task's pareng_stop did it), and the caller still stops the engine. */
PARENG_API void pareng_stop(pareng_engine *engine);
PARENG_API unsigned pareng_engine_workers(const pareng_engine *engine);
/* The engine's io_depth: 0 when it was started without IO. */
PARENG_API unsigned pareng_engine_io_depth(const pareng_engine *engine);
/* Where a tool of the same user attaches to the engine's shared memory while it runs:
 * "/proc/PID/fd/N", the coordinator's descriptor of it (the memory has no name of its own, so
 * nobody else can open it, and it cannot outlive the engine). */
PARENG_API const char *pareng_engine_segment(const pareng_engine *engine);
/* The placement the engine runs with (valid until pareng_stop). */
PARENG_API const pareng_plan *pareng_engine_plan(const pareng_engine *engine);
/* Process id of a worker (for tests and tools; < 0 if out of range). */
PARENG_API int pareng_engine_worker_pid(const pareng_engine *engine, unsigned worker);
/* Asks a run in progress (PARENG_RUN, pareng_for, a serve, ...) to stop: its workers are
 * killed and it returns -ECANCELED; the engine is then failed (later runs -EPIPE, only
 * pareng_stop remains). Called by the caller's program (any thread; async-signal-safe, for
 * a SIGINT/SIGTERM handler), or by a task of the run with PARENG_ENGINE() or a handle kept
 * in a global: a search that found what it looks for ends its run, which says "run
 * cancelled by a task". NULL in a task (a global set after pareng_start is NULL in the
 * workers) is the task's engine. Between runs, it cancels the next. In a process forked from
 * the coordinator it does nothing. */
PARENG_API void pareng_cancel(pareng_engine *engine);
/* ^C for programs that run engines, one protocol for the CLI, the benchmarks and the Python
 * module: installs a handler for sig (SIGINT, SIGTERM, ...) that cancels the run in progress
 * of every engine of this process (it returns -ECANCELED, its workers killed), remembers the
 * signal for pareng_cancel_signal(), and then calls the handler that was there before when it
 * was a function (Python's, which raises KeyboardInterrupt). It does not end the process: the
 * program decides, usually exit(128 + sig) once its engines are stopped. A signal this
 * process ignores stays ignored. Install it before creating threads of your own. 0, or
 * -EINVAL for a signal that cannot be caught. */
PARENG_API int pareng_cancel_on_signal(int sig);
/* The signal that last came through pareng_cancel_on_signal's handler, or 0. While one is
 * remembered, every run starts cancelled; clear (non-zero) forgets it, for a program that
 * goes on after an interruption (an interactive Python session). */
PARENG_API int pareng_cancel_signal(int clear);

typedef struct pareng_stats {
    uint64_t tasks;        /* tasks run: inline syncs are not counted, see docs/design.md */
    uint64_t spawns;       /* spawns that made a stealable frame (not counted on the fast path) */
    uint64_t steals;       /* tasks this worker took from another */
    uint64_t steal_fails;  /* steal attempts that found nothing or lost a race */
    uint64_t leapfrogs;    /* steals made while waiting for a stolen child */
    uint64_t stolen_from;  /* syncs that found their child stolen */
    uint64_t shares;       /* times the owner moved its split to feed thieves */
    uint64_t overflows;    /* spawns run inline because the deque was full: serial work (a
                            * loop of more spawns than deque_capacity); none is the rule */
    uint64_t sleeps;       /* futex sleeps */
    uint64_t busy_ns;      /* time spent running tasks */
    uint64_t idle_ns;      /* time spent looking for work or asleep */
    uint64_t near_steals;  /* of steals + leapfrogs: from a worker sharing at least an L3 */
    uint64_t io_ops;       /* IO operations completed (PARENG_IO_*) */
    uint64_t io_peak;      /* most IO operations in flight at once on this worker */
    uint64_t io_suspends;  /* times a task was suspended on IO while the worker went on */
    uint64_t serial_runs;  /* tasks run as plain serial C with everything below them (cutoff) */
    uint64_t splits;       /* serial runs split for a thief: a task of one went on as a task
                            * tree in another lane, where thieves take its children */
} pareng_stats;

PARENG_API int pareng_engine_stats(const pareng_engine *engine, unsigned worker,
                                   pareng_stats *out);

/* ------------------------------------------------------------------------------------------
 * Watching engines (docs/library.md, "Watching engines"): a read-only view of an engine that
 * runs in another process of the same user (what pareng top shows), a trace of the runs of
 * an engine of this process, and the work and span of a task tree (as Cilkscale measures).
 * ---------------------------------------------------------------------------------------- */

/* What a worker does now. */
enum pareng_state {
    PARENG_STATE_STARTING, /* forked, not yet looking for work */
    PARENG_STATE_RUNNING,  /* running a task */
    PARENG_STATE_STEALING, /* looking for work, or for a stolen child's thief to help */
    PARENG_STATE_SLEEPING, /* asleep until work appears */
    PARENG_STATE_IO,       /* waiting in its io_uring: every task it holds waits on IO */
};
#define PARENG_STATES 5
/* "starting", "running", "stealing", "sleeping", "io"; "?" for anything else. */
PARENG_API const char *pareng_state_name(unsigned state);

/* An engine running now: its coordinator's pid and where its memory is attached. */
typedef struct pareng_engine_ref {
    int pid;
    char segment[48]; /* "/proc/PID/fd/N" */
} pareng_engine_ref;

/* Engines of this user running now, in processes of pid (0: every process), found by their
 * coordinators' descriptors of the engines' memory: fills at most max entries and returns how
 * many there are, or -errno. */
PARENG_API int pareng_engines_find(int pid, pareng_engine_ref *out, unsigned max);

typedef struct pareng_attached pareng_attached;

/* Attaches read-only to a running engine: target is a coordinator's pid ("4242": its first
 * engine) or a segment ("/proc/4242/fd/5"). Nothing is ever written into the engine, and
 * reading it slows none of its workers. 0; -ESRCH (no such process), -EACCES (another user's
 * process or memory), -ENOENT (the process runs no engine), -EPROTO (the memory is not an
 * engine's of this version: checked before anything in it is trusted), -EINVAL (a target of
 * neither form), each with a message. */
PARENG_API int pareng_attach(pareng_attached **out, const char *target);
PARENG_API void pareng_detach(pareng_attached *att);

typedef struct pareng_engine_view {
    int pid;                /* the coordinator */
    char segment[48];
    char command[128];      /* the coordinator's command line, its arguments joined by spaces */
    unsigned workers, io_depth;
    double age_seconds;     /* since pareng_start */
    uint64_t runs;          /* root tasks begun (PARENG_RUN, pareng_for, ...) */
    int running;            /* a root task runs now */
    double run_seconds;     /* of the run in progress, else of the last one */
} pareng_engine_view;

typedef struct pareng_worker_view {
    int pid;
    int pu_os;              /* the PU it is pinned to (P#), or -1 when not pinned */
    int core_logical;       /* that PU's core (L#), or -1 */
    unsigned state;         /* enum pareng_state */
    pareng_stats stats;     /* as pareng_engine_stats gives them */
    uint64_t shared_frames; /* frames in its deques that thieves may take now (private frames,
                             * which the owner alone pops, are not visible: it would cost a
                             * store on every spawn) */
    uint64_t io_in_flight;  /* IO operations submitted and not completed */
    double cpu_percent;     /* CPU time over wall time since the previous snapshot (the first:
                             * since the worker started); 100 is one CPU */
} pareng_worker_view;

/* A snapshot of the engine and of up to max workers; returns the engine's worker count (as
 * it was at the attach), -ESRCH when the engine has stopped since (a snapshot is then
 * meaningless), or -EPROTO when its memory shrank below what the attach mapped (no engine's
 * does: a process posing as one). */
PARENG_API int pareng_snapshot(pareng_attached *att, pareng_engine_view *engine,
                               pareng_worker_view *workers, unsigned max);

/* One event of a trace: a worker entered a state, or stole a frame. */
enum pareng_trace_kind { PARENG_TRACE_STATE, PARENG_TRACE_STEAL };
typedef struct pareng_trace_event {
    uint64_t ns;    /* CLOCK_MONOTONIC */
    uint32_t kind;  /* enum pareng_trace_kind */
    uint32_t value; /* STATE: the state entered; STEAL: the worker stolen from */
} pareng_trace_event;

/* Starts recording the events of every worker of engine, events_per_worker each at most (the
 * buffers come from the engine's shared memory, shared_bytes; later events are counted as
 * dropped). Call between runs. 0; -EBUSY when a trace is on; -ENOMEM (the message says how
 * many bytes it needs). Off, tracing costs a test of one word on each change of state. */
PARENG_API int pareng_trace_begin(pareng_engine *engine, size_t events_per_worker);
/* The events of worker recorded so far, in time order (valid until pareng_trace_end); *dropped
 * (when not NULL) the events that did not fit. 0, or -EINVAL (no trace, no such worker). */
PARENG_API int pareng_trace_events(const pareng_engine *engine, unsigned worker,
                                   const pareng_trace_event **events, size_t *count,
                                   uint64_t *dropped);
/* Stops recording and gives the buffers back. Call between runs. */
PARENG_API void pareng_trace_end(pareng_engine *engine);

/* How parallel a task tree is (Cilkscale's figures), measured on one worker that runs every
 * spawn as a task and times the strands between spawns and syncs. Times exclude the
 * measurement's own cost, as far as the clock can tell. */
typedef struct pareng_scale {
    uint64_t work_ns;          /* T1: every strand's time, added up */
    uint64_t span_ns;          /* T-infinity: the longest path through the spawns and syncs */
    uint64_t burdened_span_ns; /* the span with burden_ns added for every spawned task on the
                                * path (what a steal of it would cost) */
    uint64_t tasks;            /* the root and every spawned task (PARENG_CALL is not a task) */
    uint64_t span_tasks;       /* tasks on the path with the most of them: the tree's depth */
} pareng_scale;

/* The next runs of engine (which must have one worker and no IO) are measured: each root
 * makes every spawn a task (its cutoff is ignored) and takes the slow path at every spawn and
 * sync, several times slower than a normal run. 0, or -EINVAL. */
PARENG_API int pareng_scale_begin(pareng_engine *engine, uint64_t burden_ns);
/* The figures of the last run measured, and back to normal runs. 0, or -EINVAL when no run
 * was measured. */
PARENG_API int pareng_scale_end(pareng_engine *engine, pareng_scale *out);

/* ------------------------------------------------------------------------------------------
 * Tasks: frames, workers and the inline spawn/sync fast path.
 *
 * Write tasks with the PARENG_TASK_n macros, Lace style:
 *
 *   PARENG_TASK_1(uint64_t, fib, unsigned, n) {
 *       if (n < 2) return n;
 *       PARENG_SPAWN(fib, n - 1);
 *       uint64_t b = PARENG_CALL(fib, n - 2);
 *       uint64_t a = PARENG_SYNC(fib);
 *       return a + b;
 *   }
 *   uint64_t r; int rc = PARENG_RUN(engine, fib, &r, 30);
 *
 * Spawns must be synced in reverse order, inside the task that spawned them, before it
 * returns: there is no implicit sync at a task's end, and a task that leaves a spawn unsynced
 * (or syncs more than it spawned) fails the run with -ECHILD, naming it. Arguments and
 * results are copied by value into the task's 48-byte frame; when they take more (sizeof,
 * at compile time), they are copied into a block of the spawning worker's spill stack in
 * shared memory instead and the frame points there (a copy more per spawn; tasks that fit
 * pay nothing). Large data may also go by pointer to the parent's locals. RT may be void. A
 * task used above its definition is declared first with PARENG_DECLARE_TASK_n. No cutoff is
 * needed: a task deep enough below the root or a stolen task runs as plain serial C, spawns
 * included (pareng_config.cutoff_depth). A task's result must depend only on its arguments
 * and the memory it reads, not on which clone runs it (PARENG_WORKER_INDEX() aside).
 * ---------------------------------------------------------------------------------------- */

typedef struct pareng_worker pareng_worker;
typedef struct pareng_frame pareng_frame;
/* Runs the task stored in `task` on worker w, whose deque top is h, and stores the result in
 * the frame. */
typedef void (*pareng_task_fn)(pareng_worker *w, pareng_frame *h, pareng_frame *task);

struct pareng_frame {
    pareng_task_fn pareng__run;
    /* 0 while nobody stole the frame; then the thief's index + 1; then PARENG__DONE. Written
     * by the thief, read by the owner; the owner puts it back to 0 after a stolen child. */
    PARENG__ATOMIC(uint32_t) pareng__thief;
    uint32_t pareng__pad;
    PARENG__ALIGNAS(PARENG__FRAME_DATA_ALIGN) unsigned char pareng__data[PARENG_FRAME_DATA_SIZE];
} __attribute__((aligned(64)));

#define PARENG__DONE UINT32_MAX
/* Stored in a worker's private floor by a thief that wants the owner to share work. */
#define PARENG__SHARE_REQUEST UINTPTR_MAX
/* The owner's floor while spawns overflow: above every frame, so every sync is slow. */
#define PARENG__FLOOR_BLOCKED (UINTPTR_MAX - 1)

/* The part of a worker that the inline fast path reads; the engine's own state follows it in
 * the arena. Each field has one writer, named beside it. */
struct pareng_worker {
    /* owner, and thieves: a spawn at or above this frame takes the slow path (everything
     * below was stolen and the next frame must be published; or a thief asked for work: it
     * lowers the limit as it asks, so that a loop that spawns and does not sync yet shares
     * at its next spawn; else the deque's pages mapped so far end there, and the slow path
     * maps the next ones). Both write it with relaxed atomic stores (engine/deque.c); the
     * spawn below reads it with a plain load, a deliberate race: an atomic load is not folded
     * into the compare, which costs fib's every-spawn clone 6%, and a plain one is made again
     * at every spawn all the same (the slow path it guards is a call). A thief's store is a
     * hint: one that a spawn misses stays pending in the floor, for the next sync. */
    pareng_frame *pareng__spawn_limit;
    /* owner and thieves: frames at or above this address are private to the owner, so sync
     * pops them with no atomic read-modify-write. A thief stores PARENG__SHARE_REQUEST here
     * to ask the owner to share; the owner's next sync sees it on its slow path. */
    PARENG__ATOMIC(uintptr_t) pareng__private_floor;
    /* owner: the end of the deque (the serial clone's spawns check it: past it they overflow) */
    pareng_frame *pareng__end;
    /* owner: a task this many call levels below the root or a stolen task runs serially
     * (UINT32_MAX: never; 0 under the automatic cutoff once every spawn is to be a task: the
     * parallel clone's calls then go where that is done); set for each run and, when
     * automatic, adapted (engine/cutoff.c). */
    unsigned pareng__cutoff;
    /* owner: calls of the splittable serial clone left before the engine looks at the clock
     * (engine/cutoff.c learns from it what a call of a task costs, and may split the run from
     * there on; in the word the cutoff's alignment left) */
    unsigned pareng__splittable_left;
    /* owner: the lane's spill stack, where the data of tasks too large for a frame lie while
     * they are spawned (their frame points there): its next free byte and the end of the
     * region it is in, the lane's own in the arena or, past that, a chunk from the shared heap
     * (engine/spill.c); and the first block of that chunk, whose pop goes back to the region
     * below (NULL in the lane's own, which has none). Spawns push, syncs pop, in the same
     * order as the deque. */
    unsigned char *pareng__spill_top;
    unsigned char *pareng__spill_end;
    unsigned char *pareng__spill_first;
};

/* Slow paths of the inline functions below (engine/deque.c, engine/worker.c, engine/spill.c). */
PARENG_API pareng_frame *pareng__spawn_slow(pareng_worker *w, pareng_frame *h, pareng_task_fn run,
                                            const void *args, size_t size);
/* t: the frame being synced (the head after the pop). Returns NULL when the caller must run t
 * inline, else the frame that holds the finished result. */
PARENG_API pareng_frame *pareng__sync_slow(pareng_worker *w, pareng_frame *t);
/* A task returned with spawns it did not sync (or synced more than it spawned): its head was
 * `entry` when it began and `exit` at its return, and `kept` results were left in its local
 * slots (a serial clone's). Ends the worker, and the run fails naming the task
 * (engine/worker.c). */
PARENG_API __attribute__((noreturn, cold)) void pareng__unsynced(pareng_worker *w,
                                                                 const char *task,
                                                                 pareng_frame *entry,
                                                                 pareng_frame *exit, long kept);
/* A serial clone was about to sync with none of its task's spawns left, in `function`
 * (__func__: NAME__body, or a helper of the task): as pareng__unsynced. */
PARENG_API __attribute__((noreturn, cold)) void pareng__synced_too_many(pareng_worker *w,
                                                                        const char *function);
/* PARENG_SYNC(synced) in `function` found its task's most recent unsynced spawn to be of
 * another task, whose frame runs `spawned`: as pareng__unsynced. */
PARENG_API __attribute__((noreturn, cold)) void pareng__synced_other_task(pareng_worker *w,
                                                                          const char *function,
                                                                          const char *synced,
                                                                          pareng_task_fn spawned);
/* A spill block that does not fit the region in use (a deep pile of spawns of large tasks):
 * from a new chunk of the shared heap; the worker exits with a message when that is exhausted
 * too. And the pop of a chunk's first block, which leaves the chunk. */
PARENG_API void *pareng__spill_push_slow(pareng_worker *w, size_t bytes);
PARENG_API void pareng__spill_pop_slow(pareng_worker *w, void *first);
/* Runs `task`, of the task `info` describes, with its serial clone, `run`, or with its
 * splittable one (marked PARENG_TASK_SPLITTABLE, or chosen by the automatic cutoff), and
 * times it, to adapt the cutoff. */
struct pareng__task_info;
PARENG_API void pareng__run_serial(pareng_worker *w, pareng_frame *h, pareng_task_fn run,
                                   struct pareng__task_info *info, pareng_frame *task);
/* A thief asked lane w for work while it runs the splittable serial clone, or the clone counted
 * its calls down (engine/cutoff.c): the lane where the task about to run, of `task`, goes on
 * as a task tree, its head in *lane_h; NULL when there is none (the task then runs in the
 * serial run). pareng__split_end after the task. */
PARENG_API pareng_worker *pareng__split_begin(pareng_worker *w, pareng_frame **lane_h,
                                              const struct pareng__task_info *task);
PARENG_API void pareng__split_end(pareng_worker *lane);
/* PARENG_SERIAL() in a splittable serial run: true, and the run's task may switch to other
 * code there, which the automatic cutoff must not take from it (engine/cutoff.c). */
PARENG_API int pareng__serial_asked(pareng_worker *w);
/* The counted clone (PARENG__CLONE_COUNTED) counted its calls down (engine/cutoff.c): false
 * once its sample is over, and the call then runs as a task below the cutoff does (a serial
 * run, a new sample, or every spawn a task, as the task is learned), as do all of the clone's
 * calls after it (each comes here). */
PARENG_API int pareng__sample_counted(pareng_worker *w);
/* cutoff: as pareng_config.cutoff_depth, or PARENG__CUTOFF_OF_ENGINE for the engine's. */
PARENG_API int pareng__run_root(pareng_engine *engine, pareng_task_fn run, void *data,
                                size_t size, unsigned cutoff);
#define PARENG__CUTOFF_OF_ENGINE (UINT32_MAX - 1)
PARENG_API unsigned pareng__worker_index(const pareng_worker *w);
PARENG_API unsigned pareng__worker_count(const pareng_worker *w);

/* Relaxed: the owner is the only writer of private values, and a share request only needs to
 * be seen eventually (the thief keeps asking until it is served). */
static inline int pareng__is_private(pareng_worker *w, pareng_frame *t)
{
    return (uintptr_t)t >=
           PARENG__LOAD_RELAXED(&w->pareng__private_floor);
}

/* The data of a spilled task (one whose arguments or result exceed a frame, below) come in
 * blocks of whole cache lines: a thief writing one result shares no line with its neighbours,
 * and any type aligned to 64 bytes or less fits. */
#define PARENG__SPILL_BYTES(SIZE) (((SIZE) + 63) / 64 * 64)
static inline void *pareng__spill_push(pareng_worker *w, size_t bytes)
{
    unsigned char *block = w->pareng__spill_top;
    if (PARENG__UNLIKELY((size_t)(w->pareng__spill_end - block) < bytes))
        return pareng__spill_push_slow(w, bytes);
    w->pareng__spill_top = block + bytes;
    return block;
}
/* Blocks go back in the reverse order of their pushes: the pop of a chunk's first block is
 * the last of that chunk's. */
static inline void pareng__spill_pop(pareng_worker *w, void *block)
{
    if (PARENG__UNLIKELY((unsigned char *)block == w->pareng__spill_first))
        pareng__spill_pop_slow(w, block);
    else
        w->pareng__spill_top = (unsigned char *)block;
}

/* Every task of a program, registered at load time (a constructor per PARENG_TASK_n): how a
 * frame stolen for another rank is named there, whose executable is mapped elsewhere, and
 * whether its data may go (engine/remote.c). */
typedef struct pareng__task_info {
    pareng_task_fn run;
    const char *name;
    unsigned kinds;          /* PARENG__KIND_* of its arguments and result, or'd */
    unsigned crosses_ranks;  /* set by PARENG_TASK_CROSSES_RANKS */
    unsigned args_bytes;     /* what a spawn writes of the frame's data (a spilled task's: the
                              * pointer to its block); the rest is left over */
    pareng_task_fn run_splittable; /* its serial runs in the splittable clone */
    struct pareng__task_info *next;
    /* What the automatic cutoff learned of its calls (PARENG__SPLIT_*), and how many windows of
     * its serial runs it timed so far: per process, so per worker (engine/cutoff.c). */
    unsigned split;
    unsigned sampled_runs;
    unsigned marked;       /* PARENG_TASK_SPLITTABLE */
    unsigned serial_asked; /* a sampled serial run asked PARENG_SERIAL() (engine/cutoff.c) */
    pareng_task_fn run_counted; /* its serial runs making every spawn a task, calls counted */
    /* the cheapest a call so far of its sampled serial runs, and of its samples with every
     * spawn a task (engine/cutoff.c) */
    uint64_t serial_ns, serial_calls, every_ns, every_calls;
    unsigned every_samples, every_left_out;
} pareng__task_info;
#define PARENG__SPLIT_LEARNING 0 /* automatic cutoff: measuring what a call costs */
#define PARENG__SPLIT_YES 1      /* automatic cutoff: its calls are long enough */
#define PARENG__SPLIT_NO 2       /* automatic cutoff: its calls are too short (fib's) */
#define PARENG__SPLIT_SAMPLING 3 /* automatic cutoff: short; measuring them as tasks */
PARENG_API void pareng__task_register(pareng__task_info *info);

#define PARENG__EXPAND(...) __VA_ARGS__

/* Results of a serial clone's first unsynced spawns, local to the spawning task so that the
 * compiler keeps them in registers, as it keeps `a` in a = fib(n - 1); b = fib(n - 2) (a
 * spilled task's slot holds the address of its block). The helpers that touch them are
 * always inlined: before that, the compiler sees memory. */
#define PARENG__LOCAL_SLOTS 4
typedef struct pareng__slots {
    PARENG__ALIGNAS(PARENG__FRAME_DATA_ALIGN)
    unsigned char slot[PARENG__LOCAL_SLOTS][PARENG_FRAME_DATA_SIZE];
    pareng_task_fn task[PARENG__LOCAL_SLOTS]; /* whose result each holds: a sync checks it */
} pareng__slots;

/* One task definition. The user's body is written once and inlined into three clones:
 *   - CUT, whose spawns push frames that thieves may take, and whose children run their
 *     serial clone when they are pareng__cutoff or more call levels below the root or a
 *     stolen task (docs/design.md, "Automatic granularity");
 *   - SERIAL, whose spawns are plain calls: the code of plain C, and its speed;
 *   - EVERY, for runs that make every spawn a task (PARENG_CUTOFF_NONE): CUT without the
 *     depth test, which costs a third of the time of a task as small as fib's.
 * The clone is a constant argument of the always-inlined body, so each is compiled alone. */
#define PARENG__CLONE_CUT 0
#define PARENG__CLONE_SERIAL 1
#define PARENG__CLONE_EVERY 2
/* SERIAL that looks, at the entry of each call, whether a thief asked the running lane for
 * work, and then splits the run there (docs/design.md, "Splitting a serial run"): for tasks
 * marked PARENG_TASK_SPLITTABLE, and, under the automatic cutoff, while it learns what a
 * task's calls cost and for tasks whose calls are long beside the look (it costs fib's serial
 * clone 1.4 times its time) that asked PARENG_SERIAL(). Both serial clones are odd. */
#define PARENG__CLONE_SPLITTABLE 3
/* EVERY that counts its calls down in pareng_worker.pareng__splittable_left: the automatic
 * cutoff's samples of what a task's calls cost when every spawn is a task, beside what they
 * cost in a serial run (engine/cutoff.c). Even: a parallel clone. */
#define PARENG__CLONE_COUNTED 4
#define PARENG__IS_SERIAL(CLONE) ((CLONE) & 1)

/* Tasks that return nothing: RT void is told apart by the preprocessor (a void result has no
 * storage, and cannot be assigned), from the first token of RT, which must be a word (void,
 * int, struct, a type's name: not "::ns::type"). */
#define PARENG__CAT(A, B) PARENG__CAT_(A, B)
#define PARENG__CAT_(A, B) A##B
#define PARENG__VOID_void
#define PARENG__PROBE_EMPTY() ~, 1
#define PARENG__SECOND(...) PARENG__SECOND_I(__VA_ARGS__)
#define PARENG__SECOND_I(...) PARENG__SECOND_(__VA_ARGS__)
#define PARENG__SECOND_(A, B, ...) B
#define PARENG__IS_VOID(RT)                                                                   \
    PARENG__SECOND(PARENG__PROBE_EMPTY PARENG__CAT_(PARENG__VOID_, RT) (), 0, ~)
#define PARENG__IF_VOID(RT, YES, NO) PARENG__CAT(PARENG__IF_VOID_, PARENG__IS_VOID(RT))(YES, NO)
#define PARENG__IF_VOID_1(YES, NO) YES
#define PARENG__IF_VOID_0(YES, NO) NO
/* The frame's room for the result, storing one, returning one. */
#define PARENG__RESULT_T(RT) PARENG__IF_VOID(RT, unsigned char, PARENG__FIELD(RT))
/* Where PARENG_RUN stores the result: RT less const or volatile, as a function call's value */
#define PARENG__OUT_T(RT) PARENG__IF_VOID(RT, void, PARENG__FIELD(RT))
#define PARENG__STORE(RT, LVALUE, EXPR) PARENG__IF_VOID(RT, (void)(EXPR), (LVALUE) = (EXPR))
#define PARENG__RETURN(RT, EXPR)                                                              \
    PARENG__IF_VOID(RT, do { EXPR; return; } while (0), return EXPR)
#define PARENG__RETURN_RESULT(RT, LVALUE)                                                     \
    PARENG__IF_VOID(RT, do { (void)(LVALUE); return; } while (0), return (LVALUE))
/* A clone's wrapper: runs the task's body in clone CLONE from deque head HEAD and DEPTH (a
 * parallel clone's call depth, a serial clone's count of results in its local slots), returns
 * its result, and refuses the run when the body did not leave both as it found them: a spawn
 * it did not sync (a parallel clone would never run it, and a thief could be running it while
 * the next spawn reuses its frame), or a sync of a spawn it did not make. The body moves HEAD
 * and DEPTH through pointers, which its inlining makes registers again. A spawn moves the
 * head by one frame whatever its path, so that in straight code (fib's) the compiler sees
 * the head and the counter come back and drops the test early enough to keep its tail-call
 * optimizations; a loop of spawns pays a compare. The head is compared as an integer: as
 * pointers, gcc's loop analysis took a loop that spawns large tasks for an out-of-bounds walk
 * ("iteration 3 invokes undefined behavior", tests/test_large_tasks.c). */
#define PARENG__RETURN_SYNCED(RT, NAME, NAMES, HEAD, DEPTH, CLONE, H0, SLOTS)                 \
    pareng_frame *pareng__top = (HEAD);                                                       \
    unsigned pareng__level = (DEPTH);                                                         \
    PARENG__IF_VOID(                                                                          \
        RT,                                                                                   \
        do {                                                                                  \
            NAME##__body(pareng__w, &pareng__top, (CLONE), &pareng__level, (H0), (SLOTS),     \
                         PARENG__EXPAND NAMES);                                               \
            PARENG__CHECK_SYNCED(NAME, HEAD, DEPTH);                                          \
            return;                                                                           \
        } while (0),                                                                          \
        do {                                                                                  \
            RT pareng__r = NAME##__body(pareng__w, &pareng__top, (CLONE), &pareng__level,     \
                                        (H0), (SLOTS), PARENG__EXPAND NAMES);                 \
            PARENG__CHECK_SYNCED(NAME, HEAD, DEPTH);                                          \
            return pareng__r;                                                                 \
        } while (0))
#define PARENG__CHECK_SYNCED(NAME, HEAD, DEPTH)                                               \
    if (PARENG__UNLIKELY((uintptr_t)pareng__top != (uintptr_t)(HEAD) ||                      \
                         pareng__level != (DEPTH)))                                           \
    pareng__unsynced(pareng__w, #NAME, (HEAD), pareng__top, (long)(int)(pareng__level - (DEPTH)))
/* A task's parallel clones, EVERY, CUT and COUNTED, named with ENTRY after the clone: functions
 * whose last parameters are the variadic ones, from which the body's arguments are ARGS (and
 * ARGS_T, all of them as the task's argument struct). A task whose arguments take 16 bytes or
 * less enters them with each argument a parameter; a larger one with a pointer to them (to the
 * frame's data, or a copy), from which the body reads them when it begins. The size is a rule
 * of thumb, not the ABI's, from what was measured: a struct argument of more than 16 bytes,
 * which a call passes in memory, copied out of the frame to the stack at every call and again
 * into the callee's locals; three 8-byte scalars, faster through the pointer; fib's 4 bytes and
 * four 4-byte scalars, faster as values (docs/design.md, *How a parallel clone gets its
 * arguments*). */
/* The two clones whose calls the automatic cutoff times, the splittable one and the counted one
 * (engine/cutoff.c), are never inlined, not into themselves either: each of their calls is a
 * call, so that what the cutoff weighs is a spawn against a call, not one clone's inlining
 * against another's; and the counted clone, seldom run, takes nothing from the inlining that
 * the compiler allows a file (gcc's growth limits), which inlined the cut clone of the fib
 * workload into itself only without it. */
#define PARENG__TIMED_CLONE __attribute__((unused, noinline))
#define PARENG__PARALLEL_CLONES(RT, NAME, ENTRY, ARGS, ARGS_T, ...)                             \
    __attribute__((unused)) static inline RT NAME##__every##ENTRY(                             \
        pareng_worker *pareng__w, pareng_frame *pareng__h, __VA_ARGS__)                        \
    {                                                                                          \
        PARENG__RETURN_SYNCED(RT, NAME, ARGS, pareng__h, 0, PARENG__CLONE_EVERY, NULL, NULL);  \
    }                                                                                          \
    __attribute__((unused)) static inline RT NAME##__cut##ENTRY(                               \
        pareng_worker *pareng__w, pareng_frame *pareng__h, unsigned pareng__depth,             \
        __VA_ARGS__)                                                                           \
    {                                                                                          \
        PARENG__RETURN_SYNCED(RT, NAME, ARGS, pareng__h, pareng__depth, PARENG__CLONE_CUT,     \
                              NULL, NULL);                                                     \
    }                                                                                          \
    PARENG__TIMED_CLONE static RT NAME##__counted##ENTRY(                                      \
        pareng_worker *pareng__w, pareng_frame *pareng__h, __VA_ARGS__)                        \
    {                                                                                          \
        if (PARENG__UNLIKELY(--pareng__w->pareng__splittable_left == 0) &&                     \
            !pareng__sample_counted(pareng__w))                                                \
            PARENG__RETURN(RT, NAME##__run_below_cutoff(pareng__w, pareng__h, ARGS_T));       \
        PARENG__RETURN_SYNCED(RT, NAME, ARGS, pareng__h, 0, PARENG__CLONE_COUNTED, NULL,       \
                              NULL);                                                           \
    }

/* An argument of an array type (a typedef'd array) would be a pointer in the task's functions,
 * as every C parameter of array type is, and could not initialize the frame's copy: refused at
 * compile time, one check per argument. An argument's field in the frame's data drops the
 * argument type's const or volatile, which would make the data unassignable (and in C++
 * without a default constructor). */
#ifdef __cplusplus
#define PARENG__IS_ARRAY_FIELD(ARGS_T, A) std::is_array<decltype(ARGS_T::A)>::value
/* A reference argument would be a reference member of the frame's data, never assignable,
 * and a reference to the caller's object is what the frame must not carry. */
#define PARENG__NOT_REFERENCE(NAME, A)                                                        \
    static_assert(!std::is_reference<decltype(NAME##__args_t::A)>::value,                     \
                  "argument " #A " of task " #NAME " is a reference: arguments are copied "   \
                  "into frames by value (pass the value, or a pointer into shared memory)");
#define PARENG__FIELD(T) std::remove_cv<T>::type
/* A union of members without trivial constructors (std::complex, a struct with default
 * member initializers) has none unless given one. */
#define PARENG__DATA_CONSTRUCTOR(UNION) \
    UNION() {}
/* Frames, spill blocks and messages are copied as bytes, between processes; the arguments
 * and the result are assigned into them, and a result is declared before it is stored. Said
 * before the errors a type without these would cause further down the header. */
#define PARENG__COPIED_AS_BYTES(NAME)                                                          \
    static_assert(std::is_trivially_copyable<NAME##__data_t>::value,                          \
                  "task " #NAME ": its arguments and result are copied as bytes between "     \
                  "processes, so their types must be trivially copyable (pass a pointer to "  \
                  "pareng_alloc memory for others)");                                          \
    static_assert(std::is_copy_assignable<NAME##__args_t>::value &&                           \
                      std::is_copy_assignable<decltype(NAME##__data_t::result)>::value,       \
                  "task " #NAME ": its arguments and result are assigned into frames, so "     \
                  "their types must be assignable (a struct with a const member is not)");    \
    static_assert(std::is_default_constructible<decltype(NAME##__data_t::result)>::value,     \
                  "task " #NAME ": its result type needs a default constructor (the result "   \
                  "is declared before a sync stores it)");
#else
#define PARENG__IS_ARRAY_FIELD(ARGS_T, A)                                                     \
    (!__builtin_types_compatible_p(__typeof__(((ARGS_T *)0)->A),                              \
                                   __typeof__(((void)0, ((ARGS_T *)0)->A))))
#define PARENG__NOT_REFERENCE(NAME, A) /* C has none */
#define PARENG__DATA_CONSTRUCTOR(UNION)
#define PARENG__COPIED_AS_BYTES(NAME)
/* T's value after lvalue conversion: T without const or volatile (an array type is kept) */
#define PARENG__VALUE_OF(T) ((void)0, *(__typeof__(T) *)0)
#define PARENG__FIELD(T)                                                                      \
    __typeof__(__builtin_choose_expr(                                                         \
        __builtin_types_compatible_p(T, __typeof__(PARENG__VALUE_OF(T))), PARENG__VALUE_OF(T), \
        *(__typeof__(T) *)0))
#endif
#define PARENG__NOT_ARRAY(NAME, A)                                                            \
    PARENG__STATIC_ASSERT(!PARENG__IS_ARRAY_FIELD(NAME##__args_t, A),                         \
                          "argument " #A " of task " #NAME " has an array type: pass a "      \
                          "pointer, or wrap the array in a struct to copy it");
/* What may cross ranks (docs/distributed.md): each argument and the result is a plain value
 * (a number, an enum), an aggregate (a struct or union, which may hold pointers: the task's
 * author says whether it does, PARENG_TASK_CROSSES_RANKS) or a pointer (never crosses). */
#define PARENG__KIND_PLAIN 1u
#define PARENG__KIND_AGGREGATE 2u
#define PARENG__KIND_POINTER 4u
#ifdef __cplusplus
#define PARENG__KIND_OF_TYPE(T)                                                               \
    (std::is_pointer<T>::value || std::is_member_pointer<T>::value ? PARENG__KIND_POINTER     \
     : std::is_arithmetic<T>::value || std::is_enum<T>::value      ? PARENG__KIND_PLAIN       \
                                                                   : PARENG__KIND_AGGREGATE)
#define PARENG__KIND_OF_FIELD(ARGS_T, A) PARENG__KIND_OF_TYPE(decltype(ARGS_T::A))
#else
/* GCC's and Clang's type classes: 5 pointer, 12 struct, 13 union; the rest are numbers. */
#define PARENG__KIND_OF_CLASS(C)                                                              \
    ((C) == 5 ? PARENG__KIND_POINTER : (C) == 12 || (C) == 13 ? PARENG__KIND_AGGREGATE        \
                                                              : PARENG__KIND_PLAIN)
#define PARENG__KIND_OF_FIELD(ARGS_T, A)                                                      \
    PARENG__KIND_OF_CLASS(__builtin_classify_type(((ARGS_T *)0)->A))
#endif
#define PARENG__KIND_BIT(NAME, A) | PARENG__KIND_OF_FIELD(NAME##__args_t, A)
#define PARENG__EACH_1(M, X, A) M(X, A)
#define PARENG__EACH_2(M, X, A, ...) M(X, A) PARENG__EACH_1(M, X, __VA_ARGS__)
#define PARENG__EACH_3(M, X, A, ...) M(X, A) PARENG__EACH_2(M, X, __VA_ARGS__)
#define PARENG__EACH_4(M, X, A, ...) M(X, A) PARENG__EACH_3(M, X, __VA_ARGS__)
#define PARENG__EACH_5(M, X, A, ...) M(X, A) PARENG__EACH_4(M, X, __VA_ARGS__)
#define PARENG__EACH_6(M, X, A, ...) M(X, A) PARENG__EACH_5(M, X, __VA_ARGS__)
#define PARENG__COUNT(...) PARENG__COUNT_(__VA_ARGS__, 6, 5, 4, 3, 2, 1, 0)
#define PARENG__COUNT_(A, B, C, D, E, F, N, ...) N
#define PARENG__EACH(M, X, ...)                                                               \
    PARENG__CAT(PARENG__EACH_, PARENG__COUNT(__VA_ARGS__))(M, X, __VA_ARGS__)

/* What PARENG_SPAWN, PARENG_SYNC, PARENG_CALL and PARENG_RUN call: the prototypes of a task,
 * in its parameters' types and its result's alone, so that a task may use another defined
 * below it (PARENG_DECLARE_TASK_n). */
#define PARENG__TASK_DECLARE(RT, NAME, PARAMS)                                                \
    static RT NAME##__serial(pareng_worker *, pareng_frame *, PARENG__EXPAND PARAMS);         \
    static RT NAME##__splittable(pareng_worker *, pareng_frame *, PARENG__EXPAND PARAMS);     \
    static inline void NAME##__spawn(pareng_worker *, pareng_frame *, PARENG__EXPAND PARAMS); \
    static inline __attribute__((always_inline)) void NAME##__serial_keep(                    \
        unsigned char *, pareng_worker *, pareng_frame *, const int, PARENG__EXPAND PARAMS);  \
    static inline __attribute__((always_inline)) void NAME##__spawn_serial(                   \
        pareng_worker *, pareng_frame *, const int, PARENG__EXPAND PARAMS);                   \
    static inline __attribute__((always_inline)) RT NAME##__sync(                             \
        pareng_worker *, pareng_frame **, const int, unsigned, const char *);                 \
    static inline __attribute__((always_inline)) RT NAME##__sync_serial(                      \
        pareng_worker *, pareng_frame **, const char *);                                      \
    static inline __attribute__((always_inline)) RT NAME##__kept(pareng_worker *,            \
                                                                 const unsigned char *);      \
    static inline __attribute__((always_inline)) RT NAME##__call(                             \
        pareng_worker *, pareng_frame *, const int, unsigned, PARENG__EXPAND PARAMS);         \
    static inline __attribute__((always_inline)) void NAME##__spawn_at(                       \
        pareng_worker *, pareng_frame **, unsigned *, pareng__slots *, const int,             \
        PARENG__EXPAND PARAMS);                                                               \
    static inline __attribute__((always_inline)) RT NAME##__sync_at(                          \
        pareng_worker *, pareng_frame **, unsigned *, pareng__slots *, pareng_frame *,        \
        const int, const char *);                                                             \
    static inline __attribute__((always_inline)) RT NAME##__call_at(                          \
        pareng_worker *, pareng_frame **, unsigned *, const int, PARENG__EXPAND PARAMS);      \
    static inline int NAME##__root(pareng_engine *, unsigned, PARENG__OUT_T(RT) *,            \
                                   PARENG__EXPAND PARAMS);                                    \
    static inline int NAME##__post(pareng_engine *, uint64_t, PARENG__EXPAND PARAMS)
#define PARENG__TASK(RT, NAME, PARAMS, NAMES, UNPACK, FIELDS)                                      \
    PARENG__TASK_DECLARE(RT, NAME, PARAMS);                                                        \
    typedef struct { FIELDS } NAME##__args_t;                                                      \
    typedef union NAME##__data_u {                                                                 \
        NAME##__args_t args;                                                                       \
        PARENG__RESULT_T(RT) result;                                                               \
        PARENG__DATA_CONSTRUCTOR(NAME##__data_u)                                                   \
    } NAME##__data_t;                                                                              \
    PARENG__EACH(PARENG__NOT_ARRAY, NAME, PARENG__EXPAND NAMES)                                    \
    PARENG__EACH(PARENG__NOT_REFERENCE, NAME, PARENG__EXPAND NAMES)                                \
    PARENG__COPIED_AS_BYTES(NAME)                                                                  \
    /* Data larger than a frame, or aligned to more than its data (a __m256d), are spilled: they   \
     * lie in a block of the spawning lane's spill stack (in the arena, at the same address in     \
     * every process) and the frame holds a pointer to it. Chosen at compile time: a task that     \
     * fits pays nothing. */                                                                       \
    enum {                                                                                         \
        NAME##__spilled = sizeof(NAME##__data_t) > PARENG_FRAME_DATA_SIZE ||                       \
                          __alignof__(NAME##__data_t) > PARENG__FRAME_DATA_ALIGN                   \
    };                                                                                             \
    PARENG__STATIC_ASSERT(!NAME##__spilled || __alignof__(NAME##__data_t) <= 64,                   \
                          "task " #NAME ": data that do not fit a frame go to a spill block, "     \
                          "aligned to 64 bytes, and these are aligned to more");                   \
    /* The task data of a frame's data area (or of a serial clone's slot). */                      \
    static inline __attribute__((always_inline)) NAME##__data_t *NAME##__data(                     \
        const unsigned char *pareng__cell)                                                         \
    {                                                                                              \
        NAME##__data_t *pareng__d = (NAME##__data_t *)(void *)pareng__cell;                        \
        if (NAME##__spilled)                                                                       \
            __builtin_memcpy(&pareng__d, pareng__cell, sizeof pareng__d);                          \
        return pareng__d;                                                                          \
    }                                                                                              \
    /* Where the data of a task about to be spawned go: the data area itself, or (spilled)         \
     * `storage`, which the area then points to. */                                                \
    static inline __attribute__((always_inline)) NAME##__data_t *NAME##__attach(                   \
        unsigned char *pareng__cell, NAME##__data_t *pareng__storage)                              \
    {                                                                                              \
        if (!NAME##__spilled)                                                                      \
            return (NAME##__data_t *)(void *)pareng__cell;                                         \
        __builtin_memcpy(pareng__cell, &pareng__storage, sizeof pareng__storage);                  \
        return pareng__storage;                                                                    \
    }                                                                                              \
    /* attach with a block of the lane's spill stack, which the matching sync gives back. */       \
    static inline __attribute__((always_inline)) NAME##__data_t *NAME##__place(                    \
        pareng_worker *pareng__w, unsigned char *pareng__cell)                                     \
    {                                                                                              \
        return NAME##__attach(pareng__cell,                                                        \
                              NAME##__spilled                                                      \
                                  ? (NAME##__data_t *)pareng__spill_push(                          \
                                        pareng__w, PARENG__SPILL_BYTES(sizeof(NAME##__data_t)))    \
                                  : (NAME##__data_t *)0);                                          \
    }                                                                                              \
    /* The data of a task done with, to be read through the pointer returned: a frame's own in     \
     * place; a spilled task's copied to `copy` first, then its block given back (the next push    \
     * takes its place, and a chunk of the shared heap, once freed, may be another process's       \
     * allocation). */                                                                             \
    static inline __attribute__((always_inline)) NAME##__data_t *NAME##__unspill(                  \
        pareng_worker *pareng__w, NAME##__data_t *pareng__d, NAME##__data_t *pareng__copy)         \
    {                                                                                              \
        if (!NAME##__spilled)                                                                      \
            return pareng__d;                                                                      \
        __builtin_memcpy(pareng__copy, pareng__d, sizeof *pareng__copy);                           \
        pareng__spill_pop(pareng__w, pareng__d);                                                   \
        return pareng__copy;                                                                       \
    }                                                                                              \
    /* A call's arguments, converted as a function call converts them (in C++ too, where a         \
     * braced list would refuse a narrowing). */                                                   \
    __attribute__((unused)) static inline NAME##__args_t NAME##__args(PARENG__EXPAND PARAMS)       \
    {                                                                                              \
        NAME##__args_t pareng__a = {PARENG__EXPAND NAMES};                                         \
        return pareng__a;                                                                          \
    }                                                                                              \
    static inline __attribute__((always_inline)) RT NAME##__body(                                  \
        pareng_worker *pareng__w, pareng_frame **pareng__hp, const int pareng__clone,              \
        unsigned *pareng__dp, pareng_frame *pareng__h0, pareng__slots *pareng__s,                  \
        PARENG__EXPAND PARAMS);                                                                    \
    /* the clones, the parallel ones with two entries: __start calls one, and only that one is     \
     * emitted */                                                                                  \
    static RT NAME##__run_below_cutoff(pareng_worker *, pareng_frame *, NAME##__args_t);           \
    PARENG__PARALLEL_CLONES(RT, NAME, _values, NAMES, NAME##__args(PARENG__EXPAND NAMES),          \
                            PARENG__EXPAND PARAMS)                                                 \
    PARENG__PARALLEL_CLONES(RT, NAME, _pointer, UNPACK, *pareng__a, NAME##__args_t *pareng__a)     \
    enum { NAME##__by_pointer = sizeof(NAME##__args_t) > 16 };                                     \
    __attribute__((unused)) static inline RT NAME##__serial(                                       \
        pareng_worker *pareng__w, pareng_frame *pareng__h, PARENG__EXPAND PARAMS)                  \
    {                                                                                              \
        pareng__slots pareng__s;                                                                   \
        PARENG__RETURN_SYNCED(RT, NAME, NAMES, pareng__h, 0, PARENG__CLONE_SERIAL, pareng__h,      \
                              &pareng__s);                                                         \
    }                                                                                              \
    /* The serial clone CLONE names (both are odd). */                                             \
    static inline __attribute__((always_inline)) RT NAME##__serial_clone(                          \
        pareng_worker *pareng__w, pareng_frame *pareng__h, const int pareng__clone,                \
        PARENG__EXPAND PARAMS)                                                                     \
    {                                                                                              \
        if (pareng__clone == PARENG__CLONE_SPLITTABLE)                                             \
            PARENG__RETURN(RT, NAME##__splittable(pareng__w, pareng__h, PARENG__EXPAND NAMES));    \
        PARENG__RETURN(RT, NAME##__serial(pareng__w, pareng__h, PARENG__EXPAND NAMES));            \
    }                                                                                              \
    /* A serial run's task (pareng__run_serial): in the serial clone CLONE names. */               \
    static inline __attribute__((always_inline)) void NAME##__run_clone(                           \
        pareng_worker *pareng__w, pareng_frame *pareng__h, pareng_frame *pareng__t,                \
        const int pareng__clone)                                                                   \
    {                                                                                              \
        NAME##__data_t *pareng__d = NAME##__data(pareng__t->pareng__data);                         \
        NAME##__args_t *pareng__a = &pareng__d->args;                                              \
        PARENG__STORE(RT, pareng__d->result,                                                       \
                      NAME##__serial_clone(pareng__w, pareng__h, pareng__clone,                    \
                                           PARENG__EXPAND UNPACK));                                \
    }                                                                                              \
    static void NAME##__run_serial(pareng_worker *pareng__w, pareng_frame *pareng__h,              \
                                   pareng_frame *pareng__t)                                        \
    {                                                                                              \
        NAME##__run_clone(pareng__w, pareng__h, pareng__t, PARENG__CLONE_SERIAL);                  \
    }                                                                                              \
    static void NAME##__run_splittable(                                                            \
        pareng_worker *pareng__w, pareng_frame *pareng__h, pareng_frame *pareng__t)                \
    {                                                                                              \
        NAME##__run_clone(pareng__w, pareng__h, pareng__t, PARENG__CLONE_SPLITTABLE);              \
    }                                                                                              \
    static void NAME##__run(pareng_worker *, pareng_frame *, pareng_frame *);                      \
    static void NAME##__run_counted(pareng_worker *, pareng_frame *, pareng_frame *);              \
    enum { NAME##__kinds = PARENG__KIND_OF_FIELD(NAME##__data_t, result)                           \
               PARENG__EACH(PARENG__KIND_BIT, NAME, PARENG__EXPAND NAMES) };                       \
    static pareng__task_info NAME##__info = {                                                      \
        NAME##__run, #NAME, NAME##__kinds, 0,                                                      \
        NAME##__spilled ? sizeof(void *) : sizeof(NAME##__args_t), NAME##__run_splittable, 0,      \
        PARENG__SPLIT_LEARNING, 0, 0, 0, NAME##__run_counted, 0, 0, 0, 0, 0, 0};                   \
    __attribute__((noinline, cold)) static RT NAME##__run_below_cutoff(                            \
        pareng_worker *pareng__w, pareng_frame *pareng__h, NAME##__args_t pareng__a)               \
    {                                                                                              \
        pareng_frame pareng__f;                                                                    \
        NAME##__data_t pareng__spilled_data; /* this worker's alone: a serial run is not stolen */ \
        NAME##__data_t *pareng__d = NAME##__attach(pareng__f.pareng__data, &pareng__spilled_data); \
        pareng__d->args = pareng__a;                                                               \
        pareng__run_serial(pareng__w, pareng__h, NAME##__run_serial, &NAME##__info, &pareng__f);   \
        PARENG__RETURN_RESULT(RT, pareng__d->result);                                              \
    }                                                                                              \
    /* A task about to run in a parallel clone: at its depth, which clone runs it. */              \
    static inline __attribute__((always_inline)) RT NAME##__start(                                 \
        pareng_worker *pareng__w, pareng_frame *pareng__h, const int pareng__clone,                \
        unsigned pareng__depth, NAME##__args_t *pareng__a)                                         \
    {                                                                                              \
        if (pareng__clone == PARENG__CLONE_EVERY) {                                                \
            if (NAME##__by_pointer)                                                                \
                PARENG__RETURN(RT, NAME##__every_pointer(pareng__w, pareng__h, pareng__a));        \
            PARENG__RETURN(RT, NAME##__every_values(pareng__w, pareng__h, PARENG__EXPAND UNPACK)); \
        }                                                                                          \
        if (pareng__clone == PARENG__CLONE_COUNTED) {                                              \
            if (NAME##__by_pointer)                                                                \
                PARENG__RETURN(RT, NAME##__counted_pointer(pareng__w, pareng__h, pareng__a));      \
            PARENG__RETURN(RT,                                                                     \
                           NAME##__counted_values(pareng__w, pareng__h, PARENG__EXPAND UNPACK));   \
        }                                                                                          \
        if (PARENG__UNLIKELY(pareng__depth >= pareng__w->pareng__cutoff))                          \
            PARENG__RETURN(RT, NAME##__run_below_cutoff(pareng__w, pareng__h, *pareng__a));        \
        if (NAME##__by_pointer)                                                                    \
            PARENG__RETURN(RT,                                                                     \
                           NAME##__cut_pointer(pareng__w, pareng__h, pareng__depth, pareng__a));   \
        PARENG__RETURN(RT, NAME##__cut_values(pareng__w, pareng__h, pareng__depth,                 \
                                              PARENG__EXPAND UNPACK));                             \
    }                                                                                              \
    /* PARENG_CALL: a serial clone calls itself, the others start a task. */                       \
    __attribute__((unused)) static inline __attribute__((always_inline)) RT NAME##__call(          \
        pareng_worker *pareng__w, pareng_frame *pareng__h, const int pareng__clone,                \
        unsigned pareng__depth, PARENG__EXPAND PARAMS)                                             \
    {                                                                                              \
        if (PARENG__IS_SERIAL(pareng__clone))                                                      \
            PARENG__RETURN(RT, NAME##__serial_clone(pareng__w, pareng__h, pareng__clone,           \
                                                    PARENG__EXPAND NAMES));                        \
        NAME##__args_t pareng__a = NAME##__args(PARENG__EXPAND NAMES);                             \
        PARENG__RETURN(RT, NAME##__start(pareng__w, pareng__h, pareng__clone, pareng__depth,       \
                                         &pareng__a));                                             \
    }                                                                                              \
    /* A task of a serial run about to run while a thief waits for this lane: it goes on as the    \
     * root of a task tree in another lane, whose children thieves take (engine/cutoff.c), and     \
     * its result is stored in *out. False when it did not (the thief was served otherwise, or     \
     * no lane is left): the caller runs it. */                                                    \
    __attribute__((noinline, cold)) static int NAME##__split(                                      \
        pareng_worker *pareng__w, __attribute__((unused)) /* void tasks */                         \
        PARENG__RESULT_T(RT) *pareng__out, NAME##__args_t pareng__a)                               \
    {                                                                                              \
        pareng_frame *pareng__lane_h;                                                              \
        pareng_worker *pareng__lane = pareng__split_begin(pareng__w, &pareng__lane_h,              \
                                                          &NAME##__info);                          \
        if (!pareng__lane)                                                                         \
            return 0;                                                                              \
        PARENG__STORE(RT, *pareng__out,                                                            \
                      NAME##__start(pareng__lane, pareng__lane_h, PARENG__CLONE_CUT, 0,            \
                                    &pareng__a));                                                  \
        pareng__split_end(pareng__lane);                                                           \
        return 1;                                                                                  \
    }                                                                                              \
    PARENG__TIMED_CLONE static RT NAME##__splittable(                                              \
        pareng_worker *pareng__w, pareng_frame *pareng__h, PARENG__EXPAND PARAMS)                  \
    {                                                                                              \
        /* Relaxed, as every read of the floor: a request is a hint (engine/deque.c) */            \
        if (PARENG__UNLIKELY(--pareng__w->pareng__splittable_left == 0 ||                          \
                             PARENG__LOAD_RELAXED(&pareng__w->pareng__private_floor) ==            \
                                 PARENG__SHARE_REQUEST)) {                                         \
            PARENG__RESULT_T(RT) pareng__r;                                                        \
            if (NAME##__split(pareng__w, &pareng__r, NAME##__args(PARENG__EXPAND NAMES)))          \
                PARENG__RETURN_RESULT(RT, pareng__r);                                              \
        }                                                                                          \
        pareng__slots pareng__s;                                                                   \
        PARENG__RETURN_SYNCED(RT, NAME, NAMES, pareng__h, 0, PARENG__CLONE_SPLITTABLE, pareng__h,  \
                              &pareng__s);                                                         \
    }                                                                                              \
    /* A frame's task, in parallel clone CLONE from depth 0. */                                    \
    static inline __attribute__((always_inline)) void NAME##__run_parallel(                        \
        pareng_worker *pareng__w, pareng_frame *pareng__h, pareng_frame *pareng__t,                \
        const int pareng__clone)                                                                   \
    {                                                                                              \
        NAME##__data_t *pareng__d = NAME##__data(pareng__t->pareng__data);                         \
        PARENG__STORE(RT, pareng__d->result,                                                       \
                      NAME##__start(pareng__w, pareng__h, pareng__clone, 0, &pareng__d->args));    \
    }                                                                                              \
    /* A stolen task, the root, or an overflowed spawn: depth 0 again (a thief cuts what it took   \
     * as finely as the root was cut). */                                                          \
    static void NAME##__run(pareng_worker *pareng__w, pareng_frame *pareng__h,                     \
                            pareng_frame *pareng__t)                                               \
    {                                                                                              \
        if (pareng__w->pareng__cutoff == PARENG_CUTOFF_NONE)                                       \
            NAME##__run_parallel(pareng__w, pareng__h, pareng__t, PARENG__CLONE_EVERY);            \
        else                                                                                       \
            NAME##__run_parallel(pareng__w, pareng__h, pareng__t, PARENG__CLONE_CUT);              \
    }                                                                                              \
    static void NAME##__run_counted(pareng_worker *pareng__w, pareng_frame *pareng__h,             \
                                    pareng_frame *pareng__t)                                       \
    {                                                                                              \
        NAME##__run_parallel(pareng__w, pareng__h, pareng__t, PARENG__CLONE_COUNTED);              \
    }                                                                                              \
    __attribute__((constructor)) static void NAME##__register(void)                                \
    {                                                                                              \
        pareng__task_register(&NAME##__info);                                                      \
    }                                                                                              \
    __attribute__((noinline, cold)) static void NAME##__spawn_slow(                                \
        pareng_worker *pareng__w, pareng_frame *pareng__h, PARENG__EXPAND PARAMS)                  \
    {                                                                                              \
        PARENG__ALIGNAS(PARENG__FRAME_DATA_ALIGN) unsigned char pareng__cell[PARENG_FRAME_DATA_SIZE]; \
        NAME##__place(pareng__w, pareng__cell)->args = NAME##__args(PARENG__EXPAND NAMES);         \
        (void)pareng__spawn_slow(pareng__w, pareng__h, NAME##__run, pareng__cell,                  \
                                 NAME##__spilled ? sizeof(void *) : sizeof(NAME##__args_t));       \
    }                                                                                              \
    /* Fills frame h; the caller's head then moves to h + 1 (PARENG_SPAWN), whichever path. */     \
    __attribute__((unused)) static inline void NAME##__spawn(                                      \
        pareng_worker *pareng__w, pareng_frame *pareng__h, PARENG__EXPAND PARAMS)                  \
    {                                                                                              \
        if (PARENG__UNLIKELY(pareng__h >= pareng__w->pareng__spawn_limit)) {                       \
            NAME##__spawn_slow(pareng__w, pareng__h, PARENG__EXPAND NAMES);                        \
            return;                                                                                \
        }                                                                                          \
        pareng__h->pareng__run = NAME##__run;                                                      \
        NAME##__place(pareng__w, pareng__h->pareng__data)->args =                                  \
            PARENG__LITERAL(NAME##__args_t){PARENG__EXPAND NAMES};                                 \
    }                                                                                              \
    /* A popped frame that nobody stole: its task runs here, its data copied out of its spill      \
     * block and the block given back first, before the child runs and spills its own. */          \
    static inline __attribute__((always_inline)) RT NAME##__run_popped(                            \
        pareng_worker *pareng__w, pareng_frame *pareng__t, const int pareng__clone,                \
        unsigned pareng__depth)                                                                    \
    {                                                                                              \
        NAME##__data_t *pareng__d = NAME##__data(pareng__t->pareng__data);                         \
        NAME##__data_t pareng__copy;                                                               \
        pareng__d = NAME##__unspill(pareng__w, pareng__d, &pareng__copy);                          \
        PARENG__RETURN(RT, NAME##__start(pareng__w, pareng__t, pareng__clone, pareng__depth,       \
                                         &pareng__d->args));                                       \
    }                                                                                              \
    /* What a sync of NAME in `function` took, a frame's or a local slot's, must come from a       \
     * spawn of NAME (`spawned`: the task it holds): syncs take a task's spawns in the reverse     \
     * order (a task that spawns f then g and syncs f first would get g's result, or run g's       \
     * arguments as f's). */                                                                       \
    static inline __attribute__((always_inline)) void NAME##__check_synced(                        \
        pareng_worker *pareng__w, pareng_task_fn pareng__spawned, const char *pareng__function)    \
    {                                                                                              \
        if (PARENG__UNLIKELY(pareng__spawned != NAME##__run))                                      \
            pareng__synced_other_task(pareng__w, pareng__function, #NAME, pareng__spawned);        \
    }                                                                                              \
    __attribute__((unused)) static inline __attribute__((always_inline)) RT NAME##__sync(          \
        pareng_worker *pareng__w, pareng_frame **pareng__hp, const int pareng__clone,              \
        unsigned pareng__depth, const char *pareng__function)                                      \
    {                                                                                              \
        pareng_frame *pareng__t = *pareng__hp - 1;                                                 \
        *pareng__hp = pareng__t;                                                                   \
        if (PARENG__LIKELY(pareng__is_private(pareng__w, pareng__t) &&                             \
                           pareng__t->pareng__run == NAME##__run))                                 \
            PARENG__RETURN(RT, NAME##__run_popped(pareng__w, pareng__t, pareng__clone,             \
                                                  pareng__depth));                                 \
        if (pareng__is_private(pareng__w, pareng__t))                                              \
            NAME##__check_synced(pareng__w, pareng__t->pareng__run, pareng__function);             \
        pareng_frame *pareng__done = pareng__sync_slow(pareng__w, pareng__t);                      \
        NAME##__check_synced(pareng__w, (pareng__done ? pareng__done : pareng__t)->pareng__run,    \
                             pareng__function);                                                    \
        if (!pareng__done) /* not stolen after all: run it here */                                 \
            PARENG__RETURN(RT, NAME##__run_popped(pareng__w, pareng__t, pareng__clone,             \
                                                  pareng__depth));                                 \
        /* pareng__t may lie past the deque's end (an overflowed spawn): only done is read */      \
        NAME##__data_t *pareng__d = NAME##__data(pareng__done->pareng__data);                      \
        NAME##__data_t pareng__copy;                                                               \
        pareng__d = NAME##__unspill(pareng__w, pareng__d, &pareng__copy);                          \
        PARENG__RETURN_RESULT(RT, pareng__d->result);                                              \
    }                                                                                              \
    /* Serial clone: the child runs now. The results of a task's first PARENG__LOCAL_SLOTS         \
     * unsynced spawns wait in its local slots (PARENG_SPAWN and PARENG_SYNC count them in the     \
     * clone's otherwise unused depth, a constant the compiler folds); later ones in the frame     \
     * slot the spawn would have used, so that h moves only for those (past the deque's end, in    \
     * an overflow slot of pareng__spawn_slow). Frames above the head are the owner's alone. */    \
    __attribute__((unused)) static inline __attribute__((always_inline)) void                      \
        NAME##__serial_keep(unsigned char *pareng__slot, pareng_worker *pareng__w,                 \
                            pareng_frame *pareng__h, const int pareng__clone,                      \
                            PARENG__EXPAND PARAMS)                                                 \
    {                                                                                              \
        if (NAME##__spilled) { /* the slot points to the result's block */                         \
            __attribute__((unused)) /* void tasks */                                               \
            NAME##__data_t *pareng__d = NAME##__place(pareng__w, pareng__slot);                    \
            PARENG__STORE(RT, pareng__d->result,                                                   \
                          NAME##__serial_clone(pareng__w, pareng__h, pareng__clone,                \
                                               PARENG__EXPAND NAMES));                             \
            return;                                                                                \
        }                                                                                          \
        PARENG__IF_VOID(RT, (void)pareng__slot;                                                    \
                        NAME##__serial_clone(pareng__w, pareng__h, pareng__clone,                  \
                                             PARENG__EXPAND NAMES),                                \
                        RT pareng__r = NAME##__serial_clone(pareng__w, pareng__h, pareng__clone,   \
                                                            PARENG__EXPAND NAMES);                 \
                        __builtin_memcpy(pareng__slot, &pareng__r, sizeof pareng__r));             \
    }                                                                                              \
    __attribute__((unused)) static inline __attribute__((always_inline)) RT NAME##__kept(          \
        pareng_worker *pareng__w, const unsigned char *pareng__slot)                               \
    {                                                                                              \
        if (NAME##__spilled) {                                                                     \
            NAME##__data_t *pareng__d = NAME##__data(pareng__slot);                                \
            NAME##__data_t pareng__copy;                                                           \
            pareng__d = NAME##__unspill(pareng__w, pareng__d, &pareng__copy);                      \
            PARENG__RETURN_RESULT(RT, pareng__d->result);                                          \
        }                                                                                          \
        PARENG__IF_VOID(RT, (void)pareng__slot,                                                    \
                        PARENG__RESULT_T(RT) pareng__r;                                            \
                        __builtin_memcpy(&pareng__r, pareng__slot, sizeof pareng__r);              \
                        return pareng__r);                                                         \
    }                                                                                              \
    __attribute__((unused)) static inline __attribute__((always_inline)) void                      \
        NAME##__spawn_serial(pareng_worker *pareng__w, pareng_frame *pareng__h,                    \
                             const int pareng__clone, PARENG__EXPAND PARAMS)                       \
    {                                                                                              \
        if (PARENG__UNLIKELY(pareng__h >= pareng__w->pareng__end)) {                               \
            NAME##__spawn_slow(pareng__w, pareng__h, PARENG__EXPAND NAMES);                        \
            return;                                                                                \
        }                                                                                          \
        pareng__h->pareng__run = NAME##__run; /* whose result it holds: a sync checks it */        \
        __attribute__((unused)) /* void tasks */                                                   \
        NAME##__data_t *pareng__d = NAME##__place(pareng__w, pareng__h->pareng__data);             \
        PARENG__STORE(RT, pareng__d->result,                                                       \
                      NAME##__serial_clone(pareng__w, pareng__h + 1, pareng__clone,                \
                                           PARENG__EXPAND NAMES));                                 \
    }                                                                                              \
    __attribute__((unused)) static inline __attribute__((always_inline)) RT NAME##__sync_serial(   \
        pareng_worker *pareng__w, pareng_frame **pareng__hp, const char *pareng__function)         \
    {                                                                                              \
        pareng_frame *pareng__t = *pareng__hp - 1;                                                 \
        *pareng__hp = pareng__t;                                                                   \
        if (PARENG__UNLIKELY(pareng__t >= pareng__w->pareng__end))                                 \
            pareng__t = pareng__sync_slow(pareng__w, pareng__t);                                   \
        NAME##__check_synced(pareng__w, pareng__t->pareng__run, pareng__function);                 \
        NAME##__data_t *pareng__d = NAME##__data(pareng__t->pareng__data);                         \
        NAME##__data_t pareng__copy;                                                               \
        pareng__d = NAME##__unspill(pareng__w, pareng__d, &pareng__copy);                          \
        PARENG__RETURN_RESULT(RT, pareng__d->result);                                              \
    }                                                                                              \
    /* What PARENG_SPAWN, PARENG_SYNC and PARENG_CALL do, as functions: the task's arguments,      \
     * which may themselves sync (PARENG_SPAWN(f, PARENG_SYNC(f))) or call, are evaluated          \
     * before the head and the depth are read, and one sync's moves are not unsequenced with       \
     * another's in the same expression (PARENG_SYNC(f) + PARENG_SYNC(f)): as macros, the          \
     * compiler may read the head before a sync in an argument moved it (clang did: the child      \
     * went into the frame the sync had just popped). */                                           \
    __attribute__((unused)) static inline __attribute__((always_inline)) void NAME##__spawn_at(    \
        pareng_worker *pareng__w, pareng_frame **pareng__hp, unsigned *pareng__dp,                 \
        pareng__slots *pareng__s, const int pareng__clone, PARENG__EXPAND PARAMS)                  \
    {                                                                                              \
        if (!PARENG__IS_SERIAL(pareng__clone)) {                                                   \
            NAME##__spawn(pareng__w, *pareng__hp, PARENG__EXPAND NAMES);                           \
            ++*pareng__hp;                                                                         \
        } else if (*pareng__dp < PARENG__LOCAL_SLOTS) {                                            \
            pareng__s->task[*pareng__dp] = NAME##__run;                                            \
            NAME##__serial_keep(pareng__s->slot[(*pareng__dp)++], pareng__w, *pareng__hp,          \
                                pareng__clone, PARENG__EXPAND NAMES);                              \
        } else {                                                                                   \
            NAME##__spawn_serial(pareng__w, *pareng__hp, pareng__clone, PARENG__EXPAND NAMES);     \
            ++*pareng__hp;                                                                         \
        }                                                                                          \
    }                                                                                              \
    /* In a serial clone, a sync with none of the task's own spawns left would read past its       \
     * local slots: it ends the run first, naming `function` (the compiler folds the test away     \
     * in straight code). */                                                                       \
    __attribute__((unused)) static inline __attribute__((always_inline)) RT NAME##__sync_at(       \
        pareng_worker *pareng__w, pareng_frame **pareng__hp, unsigned *pareng__dp,                 \
        pareng__slots *pareng__s, pareng_frame *pareng__h0, const int pareng__clone,               \
        const char *pareng__function)                                                              \
    {                                                                                              \
        if (!PARENG__IS_SERIAL(pareng__clone))                                                     \
            PARENG__RETURN(RT, NAME##__sync(pareng__w, pareng__hp, pareng__clone,                  \
                                            *pareng__dp + 1, pareng__function));                   \
        if (*pareng__hp != pareng__h0)                                                             \
            PARENG__RETURN(RT, NAME##__sync_serial(pareng__w, pareng__hp, pareng__function));      \
        if (PARENG__UNLIKELY(*pareng__dp == 0))                                                    \
            pareng__synced_too_many(pareng__w, pareng__function);                                  \
        --*pareng__dp;                                                                             \
        NAME##__check_synced(pareng__w, pareng__s->task[*pareng__dp], pareng__function);           \
        PARENG__RETURN(RT, NAME##__kept(pareng__w, pareng__s->slot[*pareng__dp]));                 \
    }                                                                                              \
    __attribute__((unused)) static inline __attribute__((always_inline)) RT NAME##__call_at(       \
        pareng_worker *pareng__w, pareng_frame **pareng__hp, unsigned *pareng__dp,                 \
        const int pareng__clone, PARENG__EXPAND PARAMS)                                            \
    {                                                                                              \
        PARENG__RETURN(RT, NAME##__call(pareng__w, *pareng__hp, pareng__clone, *pareng__dp + 1,    \
                                        PARENG__EXPAND NAMES));                                    \
    }                                                                                              \
    /* A root's or a posted task's data, in `buffer`, and their size as the engine takes them:     \
     * more than a frame's bytes exactly when spilled (the engine then copies them into its        \
     * heap for the run and hands the task a pointer; a post refuses them). */                     \
    typedef struct NAME##__handed {                                                                \
        PARENG__ALIGNAS(__alignof__(NAME##__data_t))                                               \
        unsigned char buffer[NAME##__spilled && sizeof(NAME##__data_t) <= PARENG_FRAME_DATA_SIZE   \
                                 ? PARENG_FRAME_DATA_SIZE + 1                                      \
                                 : sizeof(NAME##__data_t)];                                        \
    } NAME##__handed_t;                                                                            \
    static inline NAME##__data_t *NAME##__hand(NAME##__handed_t *pareng__x,                        \
                                               PARENG__EXPAND PARAMS)                              \
    {                                                                                              \
        __builtin_memset(pareng__x, 0, sizeof *pareng__x);                                         \
        NAME##__data_t *pareng__d = (NAME##__data_t *)(void *)pareng__x->buffer;                   \
        pareng__d->args = PARENG__LITERAL(NAME##__args_t){PARENG__EXPAND NAMES};                   \
        return pareng__d;                                                                          \
    }                                                                                              \
    __attribute__((unused)) static inline int NAME##__root(                                        \
        pareng_engine *pareng__e, unsigned pareng__cutoff, PARENG__OUT_T(RT) *pareng__out,         \
        PARENG__EXPAND PARAMS)                                                                     \
    {                                                                                              \
        NAME##__handed_t pareng__x;                                                                \
        NAME##__data_t *pareng__d = NAME##__hand(&pareng__x, PARENG__EXPAND NAMES);                \
        int pareng__rc = pareng__run_root(pareng__e, NAME##__run, pareng__x.buffer,                \
                                          NAME##__spilled ? sizeof pareng__x                       \
                                                          : sizeof(NAME##__data_t),                \
                                          pareng__cutoff);                                         \
        if (pareng__rc == 0 && pareng__out)                                                        \
            PARENG__STORE(RT, *pareng__out, pareng__d->result);                                    \
        return pareng__rc;                                                                         \
    }                                                                                              \
    __attribute__((unused)) static inline int NAME##__post(                                        \
        pareng_engine *pareng__e, uint64_t pareng__tag, PARENG__EXPAND PARAMS)                     \
    {                                                                                              \
        NAME##__handed_t pareng__x;                                                                \
        NAME##__hand(&pareng__x, PARENG__EXPAND NAMES);                                            \
        return pareng_post(pareng__e, NAME##__run, pareng__x.buffer,                               \
                           NAME##__spilled ? sizeof pareng__x : sizeof(NAME##__data_t),            \
                           pareng__tag);                                                           \
    }                                                                                              \
    static inline __attribute__((always_inline)) RT NAME##__body(                                  \
        __attribute__((unused)) pareng_worker *pareng__w,                                          \
        __attribute__((unused)) pareng_frame **pareng__hp,                                         \
        __attribute__((unused)) const int pareng__clone,                                           \
        __attribute__((unused)) unsigned *pareng__dp,                                              \
        __attribute__((unused)) pareng_frame *pareng__h0,                                          \
        __attribute__((unused)) pareng__slots *pareng__s, PARENG__EXPAND PARAMS)

/* A task used above its definition (mutual recursion): declared first, with the same
 * arguments as its PARENG_TASK_n, which must follow in the same file. */
#define PARENG_DECLARE_TASK_1(RT, NAME, T1, A1) PARENG__TASK_DECLARE(RT, NAME, (T1 A1))
#define PARENG_DECLARE_TASK_2(RT, NAME, T1, A1, T2, A2) \
    PARENG__TASK_DECLARE(RT, NAME, (T1 A1, T2 A2))
#define PARENG_DECLARE_TASK_3(RT, NAME, T1, A1, T2, A2, T3, A3) \
    PARENG__TASK_DECLARE(RT, NAME, (T1 A1, T2 A2, T3 A3))
#define PARENG_DECLARE_TASK_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4) \
    PARENG__TASK_DECLARE(RT, NAME, (T1 A1, T2 A2, T3 A3, T4 A4))
#define PARENG_DECLARE_TASK_5(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4, T5, A5) \
    PARENG__TASK_DECLARE(RT, NAME, (T1 A1, T2 A2, T3 A3, T4 A4, T5 A5))
#define PARENG_DECLARE_TASK_6(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4, T5, A5, T6, A6) \
    PARENG__TASK_DECLARE(RT, NAME, (T1 A1, T2 A2, T3 A3, T4 A4, T5 A5, T6 A6))

#define PARENG_TASK_1(RT, NAME, T1, A1) \
    PARENG__TASK(RT, NAME, (T1 A1), (A1), (pareng__a->A1), PARENG__FIELD(T1) A1;)
#define PARENG_TASK_2(RT, NAME, T1, A1, T2, A2)                                              \
    PARENG__TASK(RT, NAME, (T1 A1, T2 A2), (A1, A2), (pareng__a->A1, pareng__a->A2),         \
                 PARENG__FIELD(T1) A1; PARENG__FIELD(T2) A2;)
#define PARENG_TASK_3(RT, NAME, T1, A1, T2, A2, T3, A3)                                      \
    PARENG__TASK(RT, NAME, (T1 A1, T2 A2, T3 A3), (A1, A2, A3),                              \
                 (pareng__a->A1, pareng__a->A2, pareng__a->A3),                              \
                 PARENG__FIELD(T1) A1; PARENG__FIELD(T2) A2; PARENG__FIELD(T3) A3;)
#define PARENG_TASK_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4)                              \
    PARENG__TASK(RT, NAME, (T1 A1, T2 A2, T3 A3, T4 A4), (A1, A2, A3, A4),                   \
                 (pareng__a->A1, pareng__a->A2, pareng__a->A3, pareng__a->A4),               \
                 PARENG__FIELD(T1) A1; PARENG__FIELD(T2) A2; PARENG__FIELD(T3) A3;           \
                 PARENG__FIELD(T4) A4;)

#define PARENG_TASK_5(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4, T5, A5)                      \
    PARENG__TASK(RT, NAME, (T1 A1, T2 A2, T3 A3, T4 A4, T5 A5), (A1, A2, A3, A4, A5),        \
                 (pareng__a->A1, pareng__a->A2, pareng__a->A3, pareng__a->A4,                \
                  pareng__a->A5),                                                            \
                 PARENG__FIELD(T1) A1; PARENG__FIELD(T2) A2; PARENG__FIELD(T3) A3;           \
                 PARENG__FIELD(T4) A4; PARENG__FIELD(T5) A5;)
#define PARENG_TASK_6(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4, T5, A5, T6, A6)              \
    PARENG__TASK(RT, NAME, (T1 A1, T2 A2, T3 A3, T4 A4, T5 A5, T6 A6),                       \
                 (A1, A2, A3, A4, A5, A6),                                                   \
                 (pareng__a->A1, pareng__a->A2, pareng__a->A3, pareng__a->A4, pareng__a->A5, \
                  pareng__a->A6),                                                            \
                 PARENG__FIELD(T1) A1; PARENG__FIELD(T2) A2; PARENG__FIELD(T3) A3;           \
                 PARENG__FIELD(T4) A4; PARENG__FIELD(T5) A5; PARENG__FIELD(T6) A6;)

/* After a task: says that the task may run on another rank of an engine started by
 * pareng_mpi_start (docs/distributed.md): what it does is its result, computed from its
 * arguments (and memory that is the same on every rank: code, constants), and its arguments
 * and result hold no pointer nor anything else that means something in one process only. A
 * task that writes memory for others to read (a global, pareng_alloc's memory, a caller's
 * array) must not be marked: those writes would happen on another machine. Unmarked tasks
 * run on the rank that spawned them. A task that takes or returns a pointer is refused here
 * at compile time. */
#define PARENG_TASK_CROSSES_RANKS(NAME)                                                       \
    PARENG__STATIC_ASSERT(!(NAME##__kinds & PARENG__KIND_POINTER),                            \
                          "task " #NAME " takes or returns a pointer, which means nothing on "  \
                          "another rank: it runs where it was spawned");                       \
    PARENG__STATIC_ASSERT(!NAME##__spilled,                                                   \
                          "arguments or result of task " #NAME " do not fit a frame (more "     \
                          "than 48 bytes, or aligned to more than 16): they lie in this "       \
                          "rank's memory, and the task runs where it was spawned");             \
    __attribute__((constructor)) static void NAME##__crosses_ranks(void)                      \
    {                                                                                         \
        NAME##__info.crosses_ranks = 1;                                                       \
    }

/* After a task: its serial runs (the subtrees below the cutoff, docs/design.md) look, at each
 * call of the task, whether a thief asked for work, and then split: the call goes on as the
 * root of a task tree in another lane of the worker, whose children the thief takes. For
 * irregular trees, where one subtree below any depth may hold most of the work (UTS's
 * binomial trees, branch and bound): without it such a serial run holds that work to its end.
 * The automatic cutoff does so on its own while it learns what a task's calls cost, and then
 * makes every spawn of a task whose calls are long a task instead (engine/cutoff.c); the mark
 * makes the serial runs look whatever the calls and the cutoff, a fixed one too (the look, a
 * load and a branch at each call, makes a task as small as fib's 1.4 times slower). */
#define PARENG_TASK_SPLITTABLE(NAME)                                                          \
    __attribute__((constructor)) static void NAME##__splittable_runs(void)                    \
    {                                                                                         \
        NAME##__info.marked = 1;                                                              \
    }

/* A task's deque head and its depth (pareng__body's, through the pointers its wrapper
 * passes: PARENG__RETURN_SYNCED). */
#define PARENG__H (*pareng__hp)
#define PARENG__DEPTH (*pareng__dp)
/* Inside a task: push a child that a thief may take. */
#define PARENG_SPAWN(NAME, ...)                                                               \
    NAME##__spawn_at(pareng__w, pareng__hp, pareng__dp, pareng__s, pareng__clone, __VA_ARGS__)
/* Inside a task: the result of the most recent unsynced spawn of NAME (run inline if nobody
 * stole it; otherwise leapfrog on the thief until it is done). Two syncs in one expression
 * take their results in an unspecified order, as two calls do. In a serial clone, a sync with
 * none of the task's own spawns left ends the run, naming the task by its body (__func__:
 * NAME__body, or a helper's name). A parallel clone's sync too many takes its parent's child,
 * and the task's end refuses the run (PARENG__RETURN_SYNCED): the same test at each of its
 * syncs cost nqueens' loop of syncs 3 to 4%. */
#define PARENG_SYNC(NAME)                                                                     \
    NAME##__sync_at(pareng__w, pareng__hp, pareng__dp, pareng__s, pareng__h0, pareng__clone,  \
                    __func__)
/* Inside a task: a plain call that keeps the hidden worker arguments. */
#define PARENG_CALL(NAME, ...)                                                                \
    NAME##__call_at(pareng__w, pareng__hp, pareng__dp, pareng__clone, __VA_ARGS__)
/* Outside: run NAME(args) as the root task of engine E, store its result in *OUT. Blocks the
 * caller (which does not compute; it watches the workers). Returns 0, -ECHILD when a worker
 * died (see pareng_last_error(): the signal, and "task stack overflow" with the stack's size
 * when a task overflowed its stack) or a task returned with spawns it did not sync (the
 * message names it), -ECANCELED after pareng_cancel(), -EPIPE if the engine already
 * failed. */
#define PARENG_RUN(E, NAME, OUT, ...) \
    NAME##__root((E), PARENG__CUTOFF_OF_ENGINE, (OUT), __VA_ARGS__)
/* PARENG_RUN with the granularity of this run given rather than the engine's: CUTOFF as
 * pareng_config.cutoff_depth (PARENG_CUTOFF_AUTO, a depth, or PARENG_CUTOFF_NONE for a task
 * that controls its granularity itself). An IO engine makes every spawn a task whatever it
 * is given. */
#define PARENG_RUN_CUTOFF(E, CUTOFF, NAME, OUT, ...) \
    NAME##__root((E), (CUTOFF), (OUT), __VA_ARGS__)
/* Outside (pareng_serve's callback, or any thread of the caller's process): hands NAME(args)
 * to engine E's idle workers, tagged TAG for pareng_collect. Returns as pareng_post. */
#define PARENG_POST(E, TAG, NAME, ...) NAME##__post((E), (TAG), __VA_ARGS__)

/* Serving: tasks handed to a running engine one by one, each done on its own, for pools and
 * executors (a run takes one root task and ends with it). pareng_serve watches the workers
 * as a run does, with no root: it calls serve(engine, ctx) in the calling thread at the
 * start, whenever a posted task finishes or pareng_serve_wake is called, and at least once a
 * second; serve posts tasks (PARENG_POST), collects the finished ones (pareng_collect) and
 * returns > 0 to go on, 0 to end the serve, or a negative errno to fail it (the engine then
 * fails as after a crash). An idle worker takes each posted task, in about the order posted,
 * and runs it as the root of a tree of its own: it may spawn and sync, and thieves share its
 * work. Posted tasks still running when serve ends go on, and a later serve collects them.
 * cutoff: as PARENG_RUN_CUTOFF's. Returns 0 when serve ended it, else what a run returns
 * (-ECHILD, -ECANCELED, -EPIPE), or -EOPNOTSUPP for an engine of pareng_mpi_start or one
 * with IO (io_depth). */
typedef int (*pareng_serve_fn)(pareng_engine *engine, void *ctx);
/* Posted tasks unfinished or uncollected at once, at most. */
#define PARENG_SERVE_SLOTS 256
PARENG_API int pareng_serve(pareng_engine *engine, unsigned cutoff, pareng_serve_fn serve,
                            void *ctx);
/* What PARENG_POST calls: run's frame data (size bytes), tagged with the caller's tag. From
 * any thread of the process that started the engine, several at once (each post takes a slot
 * of its own; -EDEADLK in a task, -EPERM in a forked process). 0; -EAGAIN when
 * PARENG_SERVE_SLOTS posted tasks are unfinished or uncollected (post it after a collect);
 * -EPIPE on a failed engine; -EINVAL when the data exceed a frame (PARENG_FRAME_DATA_SIZE: post
 * a pointer to them). A post in the instant the engine fails (a crash, a cancel, a failed
 * serve callback, in the serving thread) may return 0: its task never runs, and the serve
 * returns the failure. */
PARENG_API int pareng_post(pareng_engine *engine, pareng_task_fn run, const void *data,
                           size_t size, uint64_t tag);
/* One finished posted task: its tag, and the first size bytes of its result (sizeof the
 * task's result type) copied to *result. 1, or 0 when none is finished yet; -EPIPE when none
 * is and the engine failed (tasks finished before the failure are still collected first);
 * -EINVAL when size exceeds a frame (PARENG_FRAME_DATA_SIZE); -EOPNOTSUPP where posts are
 * refused (an engine of pareng_mpi_start, whose inbox holds other ranks' tasks, or with IO).
 * From any thread of the
 * process that started the engine, several at once: each finished task is collected once,
 * by one of them, with its own tag. */
PARENG_API int pareng_collect(pareng_engine *engine, uint64_t *tag, void *result, size_t size);
/* Makes pareng_serve call serve soon; from any thread, async-signal-safe. Harmless when no
 * serve is in progress (the next run or serve wakes once for nothing). */
PARENG_API void pareng_serve_wake(pareng_engine *engine);

/* A helper function that spawns, syncs, calls tasks or does IO on behalf of the task that
 * calls it takes the task's hidden context: declare it with PARENG_CONTEXT_PARAMS first, and
 * call it from a task (or from another such helper) with PARENG_CONTEXT:
 *
 *   static int send_all(PARENG_CONTEXT_PARAMS, int fd, const char *p, size_t n) {
 *       ... PARENG_IO_SEND(fd, p, n, 0) ...
 *   }
 *   PARENG_TASK_1(int, serve, int, fd) { return send_all(PARENG_CONTEXT, fd, "hi", 2); }
 *
 * A helper's spawns are its task's: it or the task syncs them, before the task returns.
 * Declared static inline, the helper is compiled into each clone of its caller. */
#define PARENG_CONTEXT_PARAMS                                                                 \
    __attribute__((unused)) pareng_worker *pareng__w,                                         \
        __attribute__((unused)) pareng_frame **pareng__hp,                                    \
        __attribute__((unused)) const int pareng__clone,                                      \
        __attribute__((unused)) unsigned *pareng__dp,                                         \
        __attribute__((unused)) pareng_frame *pareng__h0,                                     \
        __attribute__((unused)) pareng__slots *pareng__s
#define PARENG_CONTEXT pareng__w, pareng__hp, pareng__clone, pareng__dp, pareng__h0, pareng__s
/* Inside a task: true when this call runs as serial C, with everything below it (the cutoff
 * chose it, docs/design.md). OpenMP's omp_in_final(): a task with a faster serial algorithm
 * than its own recursion may switch to it here. A task that asks it keeps its serial runs
 * under the automatic cutoff, whatever its calls cost. */
#define PARENG_SERIAL()                                                                       \
    (pareng__clone == PARENG__CLONE_SPLITTABLE ? pareng__serial_asked(pareng__w)              \
                                               : PARENG__IS_SERIAL(pareng__clone))
/* Inside a task: the running worker's index (0-based) and the engine's worker count. */
#define PARENG_WORKER_INDEX() pareng__worker_index(pareng__w)
#define PARENG_WORKER_COUNT() pareng__worker_count(pareng__w)
/* Inside a task about to run long without spawning or syncing (a call into an interpreter, a
 * blocking library call, a long loop): makes every frame it spawned and has not synced
 * stealable now. Frames are shared lazily otherwise, when a thief asks and the task next
 * spawns or syncs, which such a call delays by its whole length while the thief waits. Nothing
 * in a serial run (its frames hold results, not tasks). */
#define PARENG_SHARE() ((void)(PARENG_SERIAL() || (pareng__share_now(pareng__w, PARENG__H), 0)))
PARENG_API void pareng__share_now(pareng_worker *w, pareng_frame *h);

/* ------------------------------------------------------------------------------------------
 * IO from inside a task (engine started with io_depth != 0; docs/io.md)
 *
 * Each call submits one operation to the worker's io_uring and returns its result: >= 0 as the
 * system call would return it, or -errno (a closed connection, a full ring, -ETIMEDOUT when
 * timeout_ns passed first: values, never a crash). While the operation is in flight the task
 * is suspended on its own stack (a fiber) and the worker goes on running other tasks: its own
 * frames, stolen ones, or other suspended tasks whose IO completed. A worker sleeps only when
 * no task anywhere is runnable. Buffers may live on the task's stack. Outside an engine with
 * IO, every call returns -ENOTSUP.
 *
 *   PARENG_TASK_1(int, echo, int, fd) {
 *       char buf[512];
 *       int n = PARENG_IO_RECV(fd, buf, sizeof buf, 0);    // no timeout
 *       return n <= 0 ? n : PARENG_IO_SEND(fd, buf, (size_t)n, 0);
 *   }
 *
 * timeout_ns 0 means none. Sockets and files are opened by the task with the usual calls
 * (socket(), open()); they belong to the worker process that opened them.
 * ---------------------------------------------------------------------------------------- */

/* A good io_depth for IO work: suspended tasks per worker (and io_uring entries). */
#define PARENG_IO_DEPTH_AUTO 256u
/* The largest io_depth pareng_start takes. */
#define PARENG_IO_DEPTH_MAX 4096u

enum pareng_io_opcode {
    PARENG_IO_OP_SLEEP, PARENG_IO_OP_READ, PARENG_IO_OP_WRITE, PARENG_IO_OP_FSYNC,
    PARENG_IO_OP_CONNECT, PARENG_IO_OP_ACCEPT, PARENG_IO_OP_SEND, PARENG_IO_OP_RECV,
    PARENG_IO_OP_CLOSE,
};
/* One operation; fields a given opcode does not use are ignored. */
typedef struct pareng_io_request {
    enum pareng_io_opcode op;
    int fd;
    void *buf;            /* READ/WRITE/SEND/RECV data; CONNECT/ACCEPT: struct sockaddr * */
    size_t len;           /* bytes; CONNECT: the address length */
    uint64_t offset;      /* READ/WRITE: the file offset (above INT64_MAX: -EINVAL) */
    void *addrlen;        /* ACCEPT: socklen_t * (may be NULL with buf NULL) */
    uint64_t timeout_ns;  /* SLEEP: how long; others: give up after (0 = never) */
} pareng_io_request;
/* Submits req from the task running on worker w with deque head h and returns its result. */
PARENG_API int pareng_io(pareng_worker *w, pareng_frame *h, const pareng_io_request *req);

#define PARENG__IO(...)                                                                       \
    ({                                                                                        \
        _Pragma("GCC diagnostic push")                                                        \
        _Pragma("GCC diagnostic ignored \"-Wmissing-field-initializers\"")                    \
        const pareng_io_request pareng__request = {__VA_ARGS__};                              \
        _Pragma("GCC diagnostic pop")                                                         \
        pareng_io(pareng__w, PARENG__H, &pareng__request);                                    \
    })
/* Macro parameters are upper case: they must not match the request's field names. Fields a
 * request leaves out are zero (C++ warns of them: not here). */
/* Waits NS nanoseconds (an io_uring timeout): 0 once they passed. */
#define PARENG_IO_SLEEP(NS) PARENG__IO(.op = PARENG_IO_OP_SLEEP, .timeout_ns = (uint64_t)(NS))
#define PARENG_IO_READ(FD, BUF, LEN, OFFSET)                                                    \
    PARENG__IO(.op = PARENG_IO_OP_READ, .fd = (int)(FD), .buf = (BUF), .len = (size_t)(LEN),                  \
               .offset = (uint64_t)(OFFSET))
#define PARENG_IO_WRITE(FD, BUF, LEN, OFFSET)                                                   \
    PARENG__IO(.op = PARENG_IO_OP_WRITE, .fd = (int)(FD), .buf = (void *)(BUF), .len = (size_t)(LEN),         \
               .offset = (uint64_t)(OFFSET))
#define PARENG_IO_FSYNC(FD) PARENG__IO(.op = PARENG_IO_OP_FSYNC, .fd = (int)(FD))
#define PARENG_IO_CONNECT(FD, ADDR, ADDRLEN, TIMEOUT_NS)                                        \
    PARENG__IO(.op = PARENG_IO_OP_CONNECT, .fd = (int)(FD), .buf = (void *)(ADDR), .len = (size_t)(ADDRLEN),  \
               .timeout_ns = (uint64_t)(TIMEOUT_NS))
#define PARENG_IO_ACCEPT(FD, ADDR, ADDRLENP, TIMEOUT_NS)                                        \
    PARENG__IO(.op = PARENG_IO_OP_ACCEPT, .fd = (int)(FD), .buf = (ADDR), .addrlen = (ADDRLENP),      \
               .timeout_ns = (uint64_t)(TIMEOUT_NS))
#define PARENG_IO_SEND(FD, BUF, LEN, TIMEOUT_NS)                                                \
    PARENG__IO(.op = PARENG_IO_OP_SEND, .fd = (int)(FD), .buf = (void *)(BUF), .len = (size_t)(LEN),          \
               .timeout_ns = (uint64_t)(TIMEOUT_NS))
#define PARENG_IO_RECV(FD, BUF, LEN, TIMEOUT_NS)                                                \
    PARENG__IO(.op = PARENG_IO_OP_RECV, .fd = (int)(FD), .buf = (BUF), .len = (size_t)(LEN),                  \
               .timeout_ns = (uint64_t)(TIMEOUT_NS))
#define PARENG_IO_CLOSE(FD) PARENG__IO(.op = PARENG_IO_OP_CLOSE, .fd = (int)(FD))

/* ------------------------------------------------------------------------------------------
 * Shared memory and data-parallel loops
 *
 * Worker processes see the caller's heap only as it was at pareng_start (copy-on-write), so
 * arrays that the caller fills afterwards, or that workers write for the caller, must live in
 * the arena (or be globals): pareng_alloc returns such memory, at the same address in every
 * process.
 * ---------------------------------------------------------------------------------------- */

/* size bytes (64-byte aligned) of shared memory, growing it when no free block holds them
 * (every process sees the new memory at once), or NULL when it cannot grow:
 * pareng_last_error() names the sizes and the limit reached (shared_bytes, the machine's
 * memory and swap, the file-size limit RLIMIT_FSIZE), and errno is ENOMEM. NULL too, with
 * errno as the other calls' codes, for no engine (EINVAL), a process forked from the
 * coordinator (EPERM) and an engine that failed (EPIPE). Callable from the caller and from
 * inside tasks. */
PARENG_API void *pareng_alloc(pareng_engine *engine, size_t size);
/* Gives back memory of pareng_alloc: 0 (NULL too), or -EINVAL with a message, the heap left
 * as it was, for an address pareng_alloc did not return or a block freed already. */
PARENG_API int pareng_free(pareng_engine *engine, void *ptr);

/* 1 when what tasks malloc (calloc, realloc, the aligned ones, C++'s new) is memory of the
 * engine's shared heap, seen at the same address by the caller and every worker until
 * pareng_stop, as between threads: libpareng's malloc is the one the program calls. 0 when
 * another comes first (AddressSanitizer, ThreadSanitizer, valgrind, an allocator the program
 * links or preloads): a task's malloc is then its worker's alone, as the caller's after
 * pareng_start (docs/memory.md, "A task's malloc"). */
PARENG_API int pareng_task_malloc_shared(void);

/* Runs body(ctx, i, j) over [begin, end) cut into pieces of at most grain indexes, in
 * parallel; grain 0 lets the engine choose (halves down to at most ceil((end - begin) / (8 x
 * workers)) indexes: at most 16 pieces per worker, 8 to 16 on a large range). ctx
 * must point into shared memory (pareng_alloc) or to data that existed before pareng_start: a
 * local variable on the main thread's stack below the frame of pareng_start (of a function
 * called after it by the one that started the engine) is refused (-EINVAL), since workers never
 * had it (docs/memory.md, "The caller's memory"). Returns as PARENG_RUN. */
typedef void (*pareng_range_fn)(void *ctx, size_t begin, size_t end);
PARENG_API int pareng_for(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                          pareng_range_fn body, void *ctx);

/* A loop body that may spawn, sync and call tasks (and use PARENG_ENGINE(), PARENG_FOR):
 * declare it with the hidden context first, as a helper of a task,
 *   static void body(PARENG_CONTEXT_PARAMS, void *ctx, size_t begin, size_t end) { ... }
 * and it syncs what it spawned before it returns (the run fails otherwise, naming the task
 * pareng_for_tasks_body). */
typedef struct pareng__slots pareng__slots;
typedef void (*pareng_range_task_fn)(pareng_worker *, pareng_frame **, int, unsigned *,
                                     pareng_frame *, pareng__slots *, void *ctx, size_t begin,
                                     size_t end);
/* pareng_for with a body that spawns tasks of its own. Returns as PARENG_RUN. */
PARENG_API int pareng_for_tasks(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                                pareng_range_task_fn body, void *ctx);

/* One 64-bit value of a reduction: use the member that fits your data. */
typedef union pareng_value {
    int64_t i;
    uint64_t u;
    double d;
} pareng_value;
typedef pareng_value (*pareng_map_fn)(void *ctx, size_t begin, size_t end);
typedef pareng_value (*pareng_combine_fn)(pareng_value left, pareng_value right);

/* *result = combine over [begin, end): map(ctx, i, j) on pieces, combined pairwise. The pieces
 * and the order of every combine depend only on begin, end and grain — never on the workers
 * or on who stole what — so the result is the same on 1 and on 8 workers, for floating point
 * too (docs/design.md). grain 0 = (end - begin) / 1024, at least 1: independent of the
 * workers. An empty range gives -EINVAL. */
PARENG_API int pareng_reduce(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                             pareng_map_fn map, pareng_combine_fn combine, void *ctx,
                             pareng_value *result);

/* pareng_reduce for results of any size up to PARENG_REDUCE_INTO_MAX bytes (a struct, an array,
 * as TBB's parallel_reduce and Cilk's reducers take): map(ctx, i, j, out) writes the result of
 * [i, j) to out; combine(left, right) makes left the combination of left with right, in place.
 * The pieces and the order of every combine are those of pareng_reduce: the same bits on any
 * number of workers. *result (size bytes) gets the combination of [begin, end). The out,
 * left and right that map and combine get are aligned to 64 bytes (any type's alignment up to
 * a cache line, as a task's frame). Returns as PARENG_RUN; -EINVAL for an empty range or a
 * size of 0 or above the limit, -ENOMEM when the engine's shared memory has no room for the
 * size (it takes at most size + 192 bytes while it runs). */
/* Each level of the split holds one result on its task's stack: 4 KiB keeps 20 levels within
 * the 256 KiB of an IO engine's fiber stack. */
#define PARENG_REDUCE_INTO_MAX 4096u
typedef void (*pareng_map_into_fn)(void *ctx, size_t begin, size_t end, void *out);
typedef void (*pareng_combine_into_fn)(void *left, const void *right);
PARENG_API int pareng_reduce_into(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                                  pareng_map_into_fn map, pareng_combine_into_fn combine,
                                  void *ctx, void *result, size_t size);

/* The engine from inside a task (tasks, PARENG_CONTEXT helpers, pareng_for_tasks bodies):
 *   PARENG_ENGINE()        the engine running the task: pareng_alloc and pareng_free take it
 *                          (a handle kept in a global works as well: pareng_start stores
 *                          it before the workers are forked)
 *   PARENG_FOR(...)        pareng_for's arguments after the engine: the pieces are spawned
 *                          from the task, so idle workers share them; returns 0 when they
 *                          are all done
 *   PARENG_REDUCE(...)     the same for pareng_reduce (the same bits as pareng_reduce)
 * pareng_for and pareng_reduce called by a task run their pieces in that task, one after
 * another (the task has no root to hand them to); PARENG_RUN, pareng_for_tasks and
 * pareng_reduce_into called by a task fail with -EDEADLK. */
#define PARENG_ENGINE() pareng__worker_engine(pareng__w)
#define PARENG_FOR(BEGIN, END, GRAIN, BODY, CTX)                                              \
    pareng__for_at(pareng__w, pareng__hp, pareng__clone, pareng__dp, (BEGIN), (END), (GRAIN), \
                   (BODY), (CTX))
#define PARENG_REDUCE(BEGIN, END, GRAIN, MAP, COMBINE, CTX, RESULT)                           \
    pareng__reduce_at(pareng__w, pareng__hp, pareng__clone, pareng__dp, (BEGIN), (END),       \
                      (GRAIN), (MAP), (COMBINE), (CTX), (RESULT))
PARENG_API pareng_engine *pareng__worker_engine(const pareng_worker *w);
PARENG_API int pareng__for_nested(pareng_worker *w, pareng_frame *h, int clone, unsigned depth,
                                  size_t begin, size_t end, size_t grain, pareng_range_fn body,
                                  void *ctx);
PARENG_API int pareng__reduce_nested(pareng_worker *w, pareng_frame *h, int clone,
                                     unsigned depth, size_t begin, size_t end, size_t grain,
                                     pareng_map_fn map, pareng_combine_fn combine, void *ctx,
                                     pareng_value *result);
/* The head and depth read after the arguments, which may sync (as NAME##__spawn_at). */
static inline __attribute__((always_inline)) int
pareng__for_at(pareng_worker *w, pareng_frame **hp, int clone, unsigned *dp, size_t begin,
               size_t end, size_t grain, pareng_range_fn body, void *ctx)
{
    return pareng__for_nested(w, *hp, clone, *dp, begin, end, grain, body, ctx);
}
static inline __attribute__((always_inline)) int
pareng__reduce_at(pareng_worker *w, pareng_frame **hp, int clone, unsigned *dp, size_t begin,
                  size_t end, size_t grain, pareng_map_fn map, pareng_combine_fn combine,
                  void *ctx, pareng_value *result)
{
    return pareng__reduce_nested(w, *hp, clone, *dp, begin, end, grain, map, combine, ctx,
                                 result);
}

/* ------------------------------------------------------------------------------------------
 * Across machines: MPI ranks (libpareng-mpi: pkg-config pareng-mpi; docs/distributed.md)
 *
 *   pareng_engine *e;
 *   pareng_mpi_start(&e, &cfg, &argc, &argv, PARENG_MPI_SHARE_WORK);  // on every rank
 *   PARENG_RUN(e, fib, &r, 48);     // every rank calls it: one tree, on all of them
 *   pareng_mpi_stop(e);
 *
 * pareng_mpi_start forks this rank's workers first and then initializes MPI
 * (MPI_Init_thread, MPI_THREAD_FUNNELED): workers never call MPI, and no process forks after
 * MPI_Init (unsafe on RDMA networks). Only the calling thread may call MPI afterwards. With
 * PARENG_MPI_SHARE_WORK a run is collective: every rank calls it with the same task, rank 0's
 * arguments start the tree, its tasks are balanced over all ranks (lifeline-based global
 * load balancing) and every rank gets rank 0's result. Only tasks marked with
 * PARENG_TASK_CROSSES_RANKS leave their rank, by value. A run whose root task is not marked
 * (pareng_for, pareng_reduce, a task of pointers) is not shared: every rank runs its own, as
 * it would without MPI. Memory is never shared between ranks (pareng_alloc's is node-local).
 * Without the flag every rank's runs are its own, and MPI is the caller's to use
 * (docs/examples/ring.c). Without MPI (not launched by mpirun, or -np 1) both behave as
 * pareng_start, at its speed.
 * ---------------------------------------------------------------------------------------- */

#define PARENG_MPI_SHARE_WORK 1u

/* 0 or -errno with a message. A refusal of a bad call (a task's, a second engine, unknown
 * flags, MPI initialized or finalized already) leaves MPI as it was; every other failure on a
 * rank of a job of several finalizes MPI (after telling the other ranks, whose starts fail
 * too), and alone leaves it as it was. argc and argv may be NULL. */
PARENG_API int pareng_mpi_start(pareng_engine **engine, const pareng_config *cfg, int *argc,
                                char ***argv, unsigned flags);
/* This process's rank and the number of ranks (0 and 1 for an engine of pareng_start). */
PARENG_API unsigned pareng_mpi_rank(const pareng_engine *engine);
PARENG_API unsigned pareng_mpi_ranks(const pareng_engine *engine);

/* One rank's part in the runs so far. */
typedef struct pareng_rank_stats {
    uint64_t tasks;           /* tasks its workers ran (as pareng_stats.tasks) */
    uint64_t tasks_sent;      /* frames it gave other ranks */
    uint64_t tasks_received;  /* frames other ranks gave it */
    uint64_t steal_requests;  /* random steal requests it sent */
    uint64_t steals_refused;  /* of those, answered with no work */
    uint64_t lifeline_pushes; /* frames it received through a lifeline (it was quiet) */
    uint64_t messages;        /* messages it sent */
    uint64_t bytes;           /* bytes it sent and received */
    uint64_t busy_ns, idle_ns; /* its workers', summed, during the shared runs */
    uint64_t coordinator_cpu_ns; /* CPU time of its coordinator (the MPI loop) during runs */
} pareng_rank_stats;
/* Collective: every rank calls it; rank 0 gets one row per rank in rows[0 .. ranks-1] (other
 * ranks' rows are left alone, and may be NULL). 0 or -errno. */
PARENG_API int pareng_mpi_stats(pareng_engine *engine, pareng_rank_stats *rows);
/* Stops the engine, then finalizes MPI (when pareng_mpi_start initialized it). */
PARENG_API void pareng_mpi_stop(pareng_engine *engine);
/* In libpareng: 1 if this process was started by an MPI launcher (mpirun, mpiexec, srun) as one
 * of several ranks, else 0. What pareng run asks before it loads libpareng-mpi. */
PARENG_API int pareng_mpi_launched(void);

/* ------------------------------------------------------------------------------------------
 * Housekeeping
 * ---------------------------------------------------------------------------------------- */

/* Removes the named segments /dev/shm/pareng-PID-* that engines of pareng 0.1 left when their
 * owner was killed (engines now leave none: their memory has no name); only regular files of
 * this user whose owner process is gone, opened without blocking or following links. Returns
 * how many, or -errno. */
PARENG_API int pareng_clean(void);

#ifdef __cplusplus
}

namespace pareng {
/* pareng_for with a C++ callable, as TBB's parallel_for(first, last, f): body(i) for each index
 * of [begin, end), in pieces of at most grain indexes (0: the engine's choice), in parallel.
 * The body is copied into the engine's shared memory for the run, so what it captured by
 * value is what the caller has now: a lambda whose own address went to pareng_for as its ctx
 * was read by the workers as it was at pareng_start, unseen once inlined into main
 * (docs/memory.md, "The caller's memory"). What it captures by reference it reads where it
 * lies (a local of main's written after the start: its value at the start). It must be
 * trivially copyable: values, and pointers into shared memory. An exception that leaves it
 * ends its worker (std::terminate), and the run returns -ECHILD: catch inside the body.
 * Returns as pareng_for, or -errno where pareng_alloc found no room. */
template <class Body> /* by value: a function's name is its pointer then */
inline int parallel_for(pareng_engine *engine, size_t begin, size_t end, Body body,
                        size_t grain = 0)
{
    static_assert(std::is_trivially_copyable<Body>::value,
                  "pareng::parallel_for: the body is copied into shared memory for the "
                  "workers, so it must be trivially copyable (capture values, and pointers "
                  "into pareng_alloc memory)");
    static_assert(alignof(Body) <= 64, "pareng::parallel_for: pareng_alloc aligns to 64 bytes");
    void *copy = pareng_alloc(engine, sizeof(Body));
    if (!copy)
        return -errno;
    __builtin_memcpy(copy, static_cast<const void *>(&body), sizeof(Body));
    int rc = pareng_for(
        engine, begin, end, grain,
        [](void *ctx, size_t first, size_t last) {
            const Body &f = *static_cast<const Body *>(ctx);
            for (size_t i = first; i < last; i++)
                f(i);
        },
        copy);
    pareng_free(engine, copy);
    return rc;
}
} // namespace pareng
#endif
#endif /* PARENG_H */
