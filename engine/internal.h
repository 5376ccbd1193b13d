/*
 * internal.h - what the engine's files share: the arena layout, the per-worker state that lives
 * in it, and the pareng__ functions each concern exports to the others.
 *
 * One file per concern:
 *   config.c    pareng_config: defaults, the PARENG_* environment, --cores and --cutoff texts
 *   places.c    the CPU-list grammar (parsed once, checked by config.c, resolved by topology.c)
 *   topology.c  hwloc: allowed CPUs, worker placement, victim order (pareng_plan)
 *   topology_cache.c  the per-user cache of this machine's topology (topology.c's only)
 *   arena.c     the shared memory (a memfd): create, map, header; pareng_clean
 *   heap.c      the arena's shared heap (pareng_alloc)
 *   spill.c     a lane's spill stack past its region of the arena: chunks of the heap
 *   globals.c   the program's global variables: the caller's writes copied into the workers'
 *               copies at each run, or shared with the workers as between threads
 *   deque.c     the split work-stealing deque: share, reclaim, publish, steal
 *   wake.c      the event count workers sleep on and publishers ring
 *   worker.c    a worker process: idle loop, stealing, sleeping, leapfrogging, overflow
 *   cutoff.c    automatic granularity: which tasks run as their serial clone
 *   fiber.c     a worker's fibers: stacks, switching, the ready queue (IO engines only)
 *   io.c        a worker's io_uring: pareng_io, completions, sleeping in the ring
 *   engine.c    the scheduler's outside: start, fork, run a root task, watch, stop
 *   observe.c   what tools see: worker states, traces, the measuring mode (--scale), and
 *               pareng_attach, the read-only view of another process's engine
 *   signal.c    ^C: the handler of pareng_cancel_on_signal and the engines' cancel slots
 *   parallel.c  data-parallel loops over index ranges (pareng_for, pareng_reduce)
 *   glb.c       which rank asks which for work: lifeline-based global load balancing, as
 *               rules over callbacks (no engine, no transport)
 *   remote.c    what crosses ranks: the task registry, frames taken for another rank and
 *               their results, the inbox, the coordinator's loop during a distributed run
 *   sys.c       the OS layer: futex, pidfd, clocks, random numbers, error messages
 *   mpi.c       libpareng-mpi, not libpareng: pareng_mpi_start and remote.c's transport
 *
 * Calls go one way, from engine.c, which drives them all, down to sys.c, which every file
 * uses (the list is by concern, not in that order: config.c calls places.c, arena.c sets up
 * heap.c's, deque.c's and cutoff.c's state), with one circle, a worker's own: worker.c runs
 * its fibers and its ring (fiber.c, io.c), and every fiber runs worker.c's idle loop. config,
 * places and topology know nothing of engines; deque and worker reach each other only
 * through wake.c. The built-in workloads (fib, http) are not here: workloads/, over
 * the public API alone.
 */
#ifndef PARENG_INTERNAL_H
#define PARENG_INTERNAL_H

#include "pareng.h"

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#ifdef __GLIBC__
/* glibc's list of open streams (libio) and the lock its own flush takes, exported since 2.2.5 */
extern struct _IO_FILE *_IO_list_all;
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);
#endif

#define PARENG__CACHE_LINE 64
#define PARENG__ALIGNED __attribute__((aligned(PARENG__CACHE_LINE)))
#define PARENG__INTERNAL __attribute__((visibility("hidden")))

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_POINTER_LOCK_FREE == 2,
               "64-bit atomics must be lock-free to be valid across processes");
_Static_assert(sizeof(pareng_frame) == 64, "a frame is one cache line");

#define PARENG__ARENA_MAGIC 0x676e657261706170ull /* "papareng" in memory */
#define PARENG__ARENA_LAYOUT 19 /* 19: globals_changes */
/* The last layout of pareng 0.1's named segments whose owner_start_time pareng_clean reads. */
#define PARENG__NAMED_SEGMENT_LAYOUT 3
/* 2^20 frames, 64 MiB of address space a worker: a flat loop of a million spawns fits (a full
 * deque runs spawns inline, which turns such a loop serial), and pages are taken only as
 * frames are first used, so a deque of a recursion that never goes deep costs a few pages. */
#define PARENG__DEFAULT_DEQUE_CAPACITY (1u << 20)
#define PARENG__SEGMENT_PREFIX "pareng-"
/* The most shared_bytes (pareng_alloc's heap) an engine takes: 1 TiB. */
#define PARENG__SHARED_BYTES_MAX (1ull << 40)
/* Frames of a fiber's lane (IO engines): a suspended task's spawns, not a whole computation's;
 * a spawn beyond them runs inline, as on any full deque. */
#define PARENG__LANE_CAPACITY 512u
/* Lanes of a CPU engine's worker: lane 0, and one for each split serial run that another
 * split one runs inside (cutoff.c); the deepest split runs its task serially instead. */
#define PARENG__SPLIT_LANES 4u
/* Lanes of an IO engine's worker, one per fiber: io_depth for the fibers made whenever one is
 * wanted, and as many again for the fibers made only when every other waits on IO or a join
 * while a task is runnable (fiber.c), which their waits may be waiting for. */
#define PARENG__IO_LANES(io_depth) (2u * (io_depth))
/* A worker's lanes: the arena's layout (arena.c), and what a tool that attaches checks of it */
#define PARENG__LANES_PER_WORKER(io_depth)                                                    \
    ((io_depth) ? PARENG__IO_LANES(io_depth) : PARENG__SPLIT_LANES)
/* Frames of a lane a serial run was split into (a task tree's frames above the cutoff), or
 * deque_capacity if that is less. */
#define PARENG__SPLIT_LANE_CAPACITY (1u << 14)
/* A fiber's stack (IO engines), in the arena like every task stack (docs/memory.md): room for
 * a task's own frames and whatever it calls; pages are taken only as used. */
#define PARENG__FIBER_STACK_BYTES (256u << 10)
/* Below every task stack (a worker's, a fiber's): a region without access, where a task that
 * overflows its stack dies of SIGSEGV, named as an overflow (worker.c), instead of writing
 * into whatever lies below. A worker's is 1 MiB, what Linux leaves below a program's main
 * stack (stack_guard_gap): a task with a large frame of its own (an array of 64 KiB) would
 * step over a page into the next worker's stack and write there. A fiber's, one of thousands,
 * is a page, as pthreads' guard. Address space only: no page of either is ever taken. */
#define PARENG__WORKER_GUARD_BYTES (1u << 20)
#define PARENG__FIBER_GUARD_BYTES 4096u

/* Exit statuses of a worker that could not go on; engine.c names them in its report. */
#define PARENG__EXIT_OUT_OF_MEMORY 71
#define PARENG__EXIT_NO_IO 72
#define PARENG__EXIT_NOT_PINNED 73
#define PARENG__EXIT_IO_FAILED 74
#define PARENG__EXIT_SETUP_FAILED 75
#define PARENG__EXIT_FORKED 76
#define PARENG__EXIT_UNSYNCED 77
#define PARENG__SYNCED_TOO_MANY (-1)
#define PARENG__HELPER_SYNCED_TOO_MANY (-2)
/* A sync took a spawn of another task: unsynced_name holds three pointers to names in the
 * program (the same in the coordinator, forked from it): the function, the task synced and
 * the task spawned (NULL when it is not a registered task's). */
#define PARENG__SYNCED_OTHER_TASK (-3)
/* How a refusal names the function that synced (__func__): a task's body, NAME__body, as task
 * NAME (*body true); any other function as a helper of its task. The length to print. */
static inline size_t pareng__synced_in(const char *function, bool *body)
{
    size_t len = strlen(function);
    *body = len > 6 && strcmp(function + len - 6, "__body") == 0;
    return *body ? len - 6 : len;
}
/* Engines one process may have at once (cancel slots, life pipes). */
#define PARENG__MAX_ENGINES 1024

/* ---- the deque's shared word ----------------------------------------------------------
 * Lace's split deque (van Dijk & van de Pol, 2014): frames [tail, split) are shared and may be
 * stolen, frames [split, head) are private to the owner. Thieves take the frame at tail by a
 * CAS on the whole word; the owner moves split by CAS as well, so every change of either half
 * is one read-modify-write of one 64-bit word. Indexes count frames from the deque's base. */
static inline uint64_t pareng__ts_pack(uint32_t tail, uint32_t split)
{
    return ((uint64_t)split << 32) | tail;
}
static inline uint32_t pareng__ts_tail(uint64_t ts) { return (uint32_t)ts; }
static inline uint32_t pareng__ts_split(uint64_t ts) { return (uint32_t)(ts >> 32); }

/* Per-worker counters in the arena: written only by their worker (relaxed load + store, no
 * read-modify-write), read by anyone attached. */
typedef struct pareng__counters {
    _Atomic uint64_t v[sizeof(pareng_stats) / sizeof(uint64_t)];
} pareng__counters;

enum pareng__counter {
    PARENG__TASKS, PARENG__SPAWNS, PARENG__STEALS, PARENG__STEAL_FAILS, PARENG__LEAPFROGS,
    PARENG__STOLEN_FROM, PARENG__SHARES, PARENG__OVERFLOWS, PARENG__SLEEPS, PARENG__BUSY_NS,
    PARENG__IDLE_NS, PARENG__NEAR_STEALS, PARENG__IO_OPS, PARENG__IO_PEAK, PARENG__IO_SUSPENDS,
    PARENG__SERIAL_RUNS, PARENG__SPLITS,
};

static inline void pareng__count(pareng__counters *c, enum pareng__counter k, uint64_t n)
{
    uint64_t v = atomic_load_explicit(&c->v[k], memory_order_relaxed);
    atomic_store_explicit(&c->v[k], v + n, memory_order_relaxed);
}

/* Results of spawns that found the deque full: such a spawn runs its task inline and moves the
 * head past the end as if it had pushed; the frame it would have used, end + k, is never
 * touched, and its result waits in slot k here for the matching sync. Owner only, in the
 * worker process's own heap. */
typedef struct pareng__overflow {
    pareng_frame *slots;
    size_t capacity;
} pareng__overflow;

/* What a lane's serial runs taught it (cutoff.c). A lane that a serial run was split into
 * starts from the splitting lane's and hands it back. */
typedef struct pareng__granularity {
    unsigned learned_cutoff; /* the automatic cutoff as adapted so far */
    unsigned short_runs;     /* serial runs in a row that were short */
    unsigned runs_since_long; /* serial runs since the last long one (at most a bound) */
    unsigned cutoff_before_deeper; /* learned_cutoff before it last went deeper */
    bool ran_serial;         /* a serial run since this lane took a task of this run */
    bool cutoff_adapts;      /* this run's cutoff is automatic */
    bool every_spawn;        /* ... and depth does not cut this run's tree, or its calls are
                              * long: every spawn a task for the rest of the run */
    bool serial_asked;       /* the serial run under way asked PARENG_SERIAL() */
    uint32_t run_seen;       /* the arena's run_seq when this lane last took a task */
    unsigned run_first_cutoff; /* learned_cutoff when this lane first took a task of it */
} pareng__granularity;

/* The calls of a splittable serial run since the clock was last read (cutoff.c): the run's
 * task, the calls counted down by pareng_worker.pareng__splittable_left from `armed`, those of
 * earlier parts of the window and of the run's earlier windows, and the clock and the lane's
 * split time at its start. */
typedef struct pareng__window {
    struct pareng__task_info *info;
    unsigned armed, calls, earlier_calls;
    bool split_every_call; /* its calls are long: each goes on as a task tree (cutoff.c) */
    /* the calls are the counted clone's, a sample of the task's with every spawn a task; timed
     * until long enough, or until the lane shares a frame (a thief's part of the work) */
    bool every_sample;
    uint64_t started_ns, split_ns;
} pareng__window;

/* One lane of a worker, in the arena: a deque and the state of its owner. A worker of a CPU
 * engine has PARENG__SPLIT_LANES: lane 0, and the lanes that serial runs are split into, one
 * above the other (cutoff.c). A worker of an IO engine has one lane per fiber (fiber.c): a task
 * suspended on IO keeps its frames in its own lane, stealable by everyone (the worker's other
 * fibers included), while the worker's next fiber pushes into another lane. This is the
 * "one deque per suspended task" of latency-hiding work stealing (Muller & Acar, SPAA 2016).
 * The public head (spawn limit, private floor) comes first; each group of fields that another
 * process writes has its own cache line. */
typedef struct pareng__worker {
    /* line 0, owner hot path; private_floor is also written by thieves (a share request) */
    pareng_worker pub;
    char pad0[PARENG__CACHE_LINE - sizeof(pareng_worker)];

    /* line 1: the word thieves CAS */
    PARENG__ALIGNED _Atomic uint64_t tail_split;

    /* line 2: owner-only state, set up before the fork or by the owner itself */
    PARENG__ALIGNED pareng_frame *base;       /* the deque: [base, pub.pareng__end) */
    uint32_t split;                           /* owner's copy of the split index */
    uint32_t populated; /* frames from base whose pages the owner has mapped (deque.c) */
    bool all_stolen;                          /* every frame below the head was stolen */
    bool overflowing; /* spawns past the deque's end wait for their syncs (the floor blocked) */
    bool measuring;                           /* the root runs in the measuring mode */
    unsigned index;                           /* the worker's index */
    unsigned lane_id;                         /* index in arena->lanes; thief marks hold it + 1 */
    struct pareng__arena *arena;
    const unsigned *victims; /* nearest first; inherited from the parent, read-only */
    const unsigned *victim_groups; /* equal numbers: equally near (nearest first) */
    const bool *near;              /* [n_workers]: shares at least an L3 with this worker */
    unsigned n_victims;
    uint64_t rng;
    pareng__overflow overflow;
    pareng__granularity cut;
    unsigned serial_runs_open; /* serial runs under way on this lane (cutoff.c) */
    /* lane 0: the caller's changes of the globals this process copied so far (globals.c) */
    uint64_t globals_seen;
    pareng_frame *serial_base; /* the head where the innermost of them began */
    /* the time this lane's serial runs spent split, so far (their calls' own time is the rest),
     * and, in a split lane, when its split began (cutoff.c) */
    uint64_t split_ns, split_began_ns;
    pareng__window window; /* the innermost serial run's, while it learns (cutoff.c) */
    pareng_task_fn base_task; /* the task begun at base (root, stolen, posted), or NULL */
    void *stack;             /* the stack of the lane's fiber in the arena (lowest usable byte) */
    size_t stack_bytes;
    struct pareng__spill_chunk *spill_spare; /* an empty chunk of the spill stack (spill.c) */

    /* line 3+: statistics, owner writes */
    PARENG__ALIGNED pareng__counters counters;

    /* process ids: written by the parent before any run, read by anyone */
    PARENG__ALIGNED _Atomic int pid;
    /* lane 0 only: lanes [0, lanes_used) of this worker may hold frames. Written by the
     * worker, read by thieves (relaxed: a frame in a new lane is published by tail_split). */
    _Atomic uint32_t lanes_used;
    /* lane 0 only: the errno behind an exit status of its own (PARENG__EXIT_*), stored by the
     * worker before it exits and read by the coordinator after reaping it (relaxed: the exit
     * and the reap order them). */
    _Atomic int exit_errno;
    /* lane 0 only, for attached tools (observe.c), written by the worker (relaxed stores: a
     * reader wants a recent value and nothing is published through them): what it does now
     * (enum pareng_state) and its IO operations in flight */
    _Atomic uint32_t state;
    _Atomic uint32_t io_in_flight;
    /* lane 0 only: where the worker runs (-1: not pinned), written before the fork */
    int32_t pu_os, core_logical;
    /* lane 0 only: k + 1 when a task overflowed the stack of the worker's lane k into its
     * guard page (0: none), stored by the worker's SIGSEGV handler before it dies and read by
     * the coordinator after reaping it (relaxed: the death and the reap order them). After
     * the fields attached tools read, so that those stay where they were. */
    _Atomic uint32_t stack_overflowed;
    /* lane 0 only: how many spawns a task left unsynced (PARENG__SYNCED_TOO_MANY: it synced
     * more than it spawned; PARENG__HELPER_SYNCED_TOO_MANY: a helper of it did), and the
     * task's or the helper's name, cut (ending "...") to fit the line that the fields above
     * leave, stored by the worker before it exits with PARENG__EXIT_UNSYNCED and read by the
     * coordinator after reaping it (worker.c's pareng__unsynced; PARENG__SYNCED_OTHER_TASK:
     * three pointers instead of the name). */
    _Atomic int32_t unsynced_spawns;
    char unsynced_name[28];
    /* lane 0 only: where a task wrote into the caller's memory that this worker sealed (or
     * touched its dead stack), and what memory it is (enum pareng__caller_memory_kind; 0:
     * none), stored by the worker's SIGSEGV handler before it dies and read by the
     * coordinator after reaping it (relaxed, as stack_overflowed). */
    _Atomic uint64_t caller_fault_at;
    _Atomic uint32_t caller_fault_kind;
} PARENG__ALIGNED pareng__worker;

static inline pareng__worker *pareng__self(pareng_worker *w)
{
    return (pareng__worker *)(void *)w;
}

/* The root task slot: the caller writes a frame, a worker runs it. */
enum pareng__root_state { PARENG__ROOT_EMPTY, PARENG__ROOT_READY, PARENG__ROOT_TAKEN,
                          PARENG__ROOT_DONE };

/* Tasks that another rank gave this one (remote.c): the coordinator fills a slot and makes it
 * READY, a worker takes it (an idle one, or one whose child runs on another rank), runs it and
 * makes it DONE, and the coordinator sends the result back. */
/* Every task a worker takes while it waits for a frame away keeps its slot until it returns,
 * and such waits nest: the slots must outnumber any nesting a run reaches, or the tasks that
 * would end them could not get in. */
#define PARENG__INBOX_SLOTS 256
/* A frame's thief mark while the frame runs on another rank (internal.h's lanes are + 1), and
 * the mark of one the coordinator took for another rank but could not send: its owner runs
 * it at its sync, as if it had never been stolen (remote.c). */
#define PARENG__THIEF_REMOTE (UINT32_MAX - 1)
#define PARENG__THIEF_RETURNED (UINT32_MAX - 2)
enum pareng__inbox_state { PARENG__INBOX_EMPTY, PARENG__INBOX_READY, PARENG__INBOX_TAKEN,
                           PARENG__INBOX_DONE };
typedef struct pareng__inbox_slot {
    _Atomic uint32_t state;
    pareng_frame frame;
} PARENG__ALIGNED pareng__inbox_slot;

/* The shared heap (heap.c), the arena's last part: the memfd holds its first `size` bytes,
 * and every process maps `limit` of them from the start, so growing it is only a matter of
 * extending the file (docs/memory.md, "Sizing"). All fields but fd under `lock`. */
typedef struct pareng__heap {
    _Atomic uint32_t lock;
    /* 1 once the engine failed (engine.c's fail_engine, after killing the workers): one may
     * have died holding the lock, so whoever waits for it gives up (heap.c). */
    _Atomic uint32_t failed;
    int fd;               /* the arena's memfd, open in the caller and in its workers */
    void *base;
    uint64_t file_offset; /* base's offset in the memfd */
    uint64_t size;        /* bytes the file holds now */
    uint64_t limit;       /* the most it grows to: shared_bytes, or the automatic bound */
    struct block *first_free; /* address-ordered */
} pareng__heap;

/* The arena header: at offset 0 of the segment. */
typedef struct pareng__arena {
    _Atomic uint64_t magic; /* written last by the creator (a tool that attaches reads it first) */
    uint32_t layout;
    uint32_t n_workers;
    uint64_t size;             /* the memfd's at the start; the heap's growth extends it */
    int32_t owner_pid;
    uint32_t deque_capacity;   /* frames of lane 0 of each worker */
    uint32_t lanes_per_worker; /* PARENG__SPLIT_LANES, or PARENG__IO_LANES (a fiber each) */
    uint32_t lane_capacity;    /* frames of every other lane */
    uint32_t io_depth;         /* 0: no IO */
    uint32_t pin_workers;      /* bind each worker to its PU (see pareng_start) */
    uint32_t seal_caller_memory; /* workers make the caller's memory read-only (caller_memory.c) */
    uint32_t run_cutoff;       /* the running root's cutoff: PARENG_CUTOFF_AUTO, a depth, or
                                * PARENG_CUTOFF_NONE; written before the root is READY */
    uint32_t run_seq;          /* counts the roots run; written with run_cutoff (cutoff.c) */
    /* The run_seq of the run that a worker found depth does not cut: every worker makes
     * every spawn a task for the rest of it (cutoff.c). Any worker writes it, relaxed. */
    _Atomic uint32_t every_spawn_run;
    uint64_t owner_start_time; /* 0.1's named segments: the owner's /proc/<pid>/stat
                                * starttime, which pareng_clean reads to tell pid reuse apart;
                                * unused since the arena has no name */

    /* wake-up protocol (wake.c): an event count. Sleepers announce themselves, re-check,
     * then futex-wait on epoch; anyone publishing work bumps epoch and wakes if needed. */
    PARENG__ALIGNED _Atomic uint32_t epoch;
    _Atomic uint32_t sleepers;
    _Atomic uint32_t stop;

    PARENG__ALIGNED _Atomic uint32_t root_state;
    int root_done_fd; /* eventfd the root's worker (and the last worker ready) writes */
    /* Who cancelled the run (engine.c's CANCELLED_BY_*), or 0: here, not in the handle,
     * since a task's pareng_cancel runs in a worker, whose copy of the handle the
     * coordinator never sees. The first to cancel writes it, then rings root_done_fd. */
    _Atomic uint32_t cancelled;
    _Atomic uint32_t workers_ready; /* workers in their idle loop, pinned: pareng_start waits */
    pareng_frame root;

    /* the inbox (above); remote: the coordinator serves other ranks, so a worker about to
     * sleep rings root_done_fd (its rank is hungry). Written before the first run. */
    PARENG__ALIGNED _Atomic uint32_t inbox_ready; /* slots READY: a worker's cheap test */
    uint32_t remote;
    pareng__inbox_slot inbox[PARENG__INBOX_SLOTS];

    PARENG__ALIGNED pareng__heap heap;
    struct pareng_engine *engine; /* PARENG_ENGINE(): the coordinator's handle, which a worker's
                                   * copy of the coordinator's memory holds as it was at the
                                   * fork (the arena and heap it names never move) */
    /* the globals the caller changed since the start (globals.c), or NULL; set before the
     * fork */
    struct pareng__globals_changes *globals_changes;

    /* observation (observe.c): for tools that attach and for the coordinator's --trace and
     * --scale. started_ns and the measuring fields are written by the coordinator between
     * runs; runs and the run's times by the root's worker; all relaxed but trace (below). */
    PARENG__ALIGNED _Atomic uint64_t started_ns; /* CLOCK_MONOTONIC, system-wide */
    _Atomic uint64_t runs;                       /* roots taken */
    _Atomic uint64_t run_began_ns, run_ended_ns; /* of the last root (ended 0: running) */
    /* the trace buffers in the shared heap, or NULL: release by the coordinator, acquire by
     * the workers, whose events then go into memory that was fully set up */
    struct pareng__trace *_Atomic trace;
    uint32_t measure;         /* non-zero: roots run in the measuring mode (--scale) */
    uint64_t measure_burden_ns;
    pareng_scale scale;       /* the last measured root's figures, by its worker */

    /* pareng__worker lanes[n_workers * lanes_per_worker] follow (worker i's lanes at
     * i * lanes_per_worker), then the deques */
    PARENG__ALIGNED pareng__worker lanes[];
} pareng__arena;

/* Does the address lie in the arena's mapping (header, lanes, task stacks, heap as far as it
 * may grow)? */
static inline bool pareng__arena_holds(const pareng__arena *a, uintptr_t address)
{
    return address >= (uintptr_t)a && address < (uintptr_t)a->heap.base + a->heap.limit;
}

/* Lane k of worker i; lane 0 is the worker's own (its pid, its IO counters). */
static inline pareng__worker *pareng__lane(pareng__arena *a, unsigned worker, unsigned k)
{
    return &a->lanes[(size_t)worker * a->lanes_per_worker + k];
}

/* How many of the worker's lanes, from 0, may hold frames: its split lanes or its fibers' */
static inline unsigned pareng__lanes_used(pareng__arena *a, unsigned worker)
{
    /* Relaxed: a frame in a new lane is published by that lane's tail_split (above) */
    return atomic_load_explicit(&pareng__lane(a, worker, 0)->lanes_used, memory_order_relaxed);
}

/* The deepest fixed cutoff pareng_config_set_cutoff takes: far below PARENG__CUTOFF_OF_ENGINE
 * and PARENG_CUTOFF_NONE, and beyond any recursion a stack holds. */
#define PARENG__CUTOFF_DEPTH_MAX 1000000u

/* ---- config.c ---- */
/* 0, or -EINVAL with the message when pareng_config_default found a malformed variable. */
PARENG__INTERNAL int pareng__config_check(const pareng_config *cfg);

/* ---- places.c ---- */
enum pareng__place_type { PARENG__PLACE_OS_CPU, PARENG__PLACE_PU, PARENG__PLACE_CORE,
                          PARENG__PLACE_PACKAGE, PARENG__PLACE_NUMA };
/* One item of a CPU list: objects first..last of a type, or all of them. */
typedef struct pareng__place {
    enum pareng__place_type type;
    bool all;
    unsigned first, last;
} pareng__place;
typedef int (*pareng__place_fn)(void *ctx, const pareng__place *place);
/* Calls each(ctx, item) for every item of text, in order (each NULL: the form is only
 * checked): 0, the first negative value each returned, or -EINVAL with a message naming what
 * in text is malformed or not accepted. */
PARENG__INTERNAL int pareng__places_parse(const char *text, pareng__place_fn each, void *ctx);
/* "pu", "core", "package", "numa", or "CPU" for OS numbers. */
PARENG__INTERNAL const char *pareng__place_type_name(enum pareng__place_type type);

/* ---- arena.c ---- */
typedef struct pareng__segment {
    char name[64];         /* /proc/PID/fd/N: how a tool of the same user attaches */
    int fd;                /* the memfd, kept open for that */
    pareng__arena *arena;
    size_t size;
} pareng__segment;

/* PARENG__LANES_PER_WORKER(io_depth) lanes per worker (docs/design.md, arena layout). */
PARENG__INTERNAL int pareng__arena_create(pareng__segment *seg, unsigned n_workers,
                                          unsigned deque_capacity, unsigned io_depth,
                                          size_t heap_bytes);
/* What sizes lane k's task stack and how a larger one is had, for the report of its overflow:
 * "a worker's: ..." (k 0) or "a fiber's: ..." (IO engines). */
PARENG__INTERNAL const char *pareng__stack_sizing(unsigned k);

/* ---- globals.c ---- */
/* In the caller, before its first fork: the main program's globals move into shared memory
 * (unless the process already runs threads, or moved them before). 0 or -errno. */
PARENG__INTERNAL int pareng__globals_share(void);
PARENG__INTERNAL bool pareng__globals_shared(void);
/* Around the caller's forks of workers: their children keep the globals shared; the child of
 * any other fork gets a private copy (a pthread_atfork handler). */
PARENG__INTERNAL void pareng__globals_forking_workers(bool on);
/* PARENG_GLOBALS_PRIVATE: the caller's side (its snapshot of the globals, in the caller before
 * the fork; NULL where the program has none) and the workers' (what they read). */
typedef struct pareng__globals_follow pareng__globals_follow;
typedef struct pareng__globals_changes pareng__globals_changes;
PARENG__INTERNAL int pareng__globals_follow_start(pareng__globals_follow **out);
PARENG__INTERNAL void pareng__globals_follow_end(pareng__globals_follow *f);
/* After the engine's workers are forked: later forks do not get it. */
PARENG__INTERNAL void pareng__globals_follow_forked(pareng__globals_follow *f);
/* In a process forked from the caller, which does not have the shared part: end leaves it. */
PARENG__INTERNAL void pareng__globals_follow_not_mapped(pareng__globals_follow *f);
PARENG__INTERNAL pareng__globals_changes *
pareng__globals_follow_changes(const pareng__globals_follow *f);
/* In the caller, before a run or a post: publishes what it wrote since the last. */
PARENG__INTERNAL void pareng__globals_publish(pareng__globals_follow *f);
/* In a worker, before a task: copies what the caller published since `seen` into its own. */
PARENG__INTERNAL void pareng__globals_catch_up(pareng__globals_changes *c, uint64_t *seen);

/* ---- heap.c ---- */
/* A heap of `size` bytes at base (file_offset in fd), which may grow to limit. */
PARENG__INTERNAL void pareng__heap_init(pareng__heap *heap, int fd, void *base,
                                        uint64_t file_offset, size_t size, size_t limit);
/* size bytes, growing the heap when no free block holds them; NULL with a message (its
 * limit, the file-size limit, or the system's refusal) when it cannot. */
PARENG__INTERNAL void *pareng__heap_alloc(pareng__heap *heap, size_t size);
/* 0, or -EINVAL (with a message) for a block freed already or not a block at all; 0 and
 * nothing done once the engine failed (its lock may be held for good). */
PARENG__INTERNAL int pareng__heap_free(pareng__heap *heap, void *ptr);
/* The heap's engine failed: waiters for its lock give up, and it is taken no more. */
PARENG__INTERNAL void pareng__heap_fail(pareng__heap *heap);
/* This thread holds a heap's lock: what it allocates meanwhile (a long message, strerror's
 * translation) must come from the C library (malloc.c), or it would wait for itself. */
PARENG__INTERNAL extern __thread __attribute__((tls_model("initial-exec"))) bool
    pareng__heap_locked_here;
PARENG__INTERNAL void pareng__arena_destroy(pareng__segment *seg);

/* ---- caller_memory.c ---- */
enum pareng__caller_memory_kind {
    PARENG__CALLER_HEAP = 1,     /* [heap]: what malloc gave the caller in small blocks */
    PARENG__CALLER_STACK,        /* [stack]: the locals of main and of its callees */
    PARENG__CALLER_BLOCK,        /* a block that malloc mapped for itself (128 KiB or more) */
    PARENG__CALLER_THREAD_HEAP,  /* the first heap of one of the caller's threads' arenas */
    PARENG__CALLER_STACK_AFTER,  /* [stack] below pareng_start's frame: not even readable */
    PARENG__CALLER_HEAP_UNUSED,  /* [heap]: chunks free at the start (its top): not readable */
    PARENG__CALLER_MAPPED_LATER, /* no mapping in the worker: perhaps the caller's since */
};
/* Memory that workers have as it was at the start, when it held nothing of the caller's:
 * not even readable there. */
#define PARENG__CALLER_NOTHING_YET(kind)                                                      \
    ((kind) == PARENG__CALLER_STACK_AFTER || (kind) == PARENG__CALLER_HEAP_UNUSED)
/* In the caller, before it forks workers that will seal: the private mapping each process's
 * list of sealed ranges lives in, the frame of pareng_start, below which the stack is dead,
 * and glibc's count of the blocks it mapped. */
PARENG__INTERNAL void pareng__caller_memory_prepare(uintptr_t start_frame);
/* Around an allocation of the C library's malloc (malloc.c): in a worker that sealed the
 * caller's heap, what it takes of the memory that was free at the start, unreadable there,
 * opens for it, and so does the block it returns (the block, returned). */
PARENG__INTERNAL void pareng__caller_memory_allocating(void);
PARENG__INTERNAL void *pareng__caller_memory_allocated(void *block, size_t size);
/* Ranges of the caller's heap this process sealed unreadable: 0 in the caller, and where that
 * path costs nothing (malloc.c tests it inline). */
PARENG__INTERNAL extern unsigned pareng__heap_unused_sealed;
/* In the caller, as pareng_start begins: glibc's counts of its heap (what pareng_start's own
 * allocations and frees leave, workers can tell from what the caller had). */
PARENG__INTERNAL void pareng__caller_memory_measure(void);
/* In a worker, off the stack it was forked on, before it runs a task: the caller's private
 * memory becomes read-only in this process. */
PARENG__INTERNAL void pareng__caller_memory_seal(void);
/* In the SIGSEGV handler of an access fault at `at` (context: its ucontext_t),
 * async-signal-safe: the kind of caller's memory it is when the program's code wrote there, or
 * anyone touched the dead stack; -1 when the fault is to go on (a library wrote its own state
 * there, whose page is writable now; or this is a process a worker forked, unsealed now):
 * return, and the write runs again; 0 when the seal does not explain the fault (not sealed
 * here, a read or an instruction fetch, a page that cannot be opened). */
PARENG__INTERNAL int pareng__caller_memory_fault(uintptr_t at, void *context);
/* What the kind is, for a message. */
PARENG__INTERNAL const char *pareng__caller_memory_name(uint32_t kind);

/* ---- malloc.c ---- */
/* From now on, this process's malloc returns blocks of heap (a worker's, after its fork). */
PARENG__INTERNAL void pareng__malloc_in_worker(pareng__heap *heap);
/* The caller's free and realloc recognise the workers' blocks in heap while it is tracked:
 * from the arena's mapping to its unmapping. 0, or -EMFILE with a message. */
PARENG__INTERNAL int pareng__malloc_track(const pareng__heap *heap);
/* Before the arena's unmapping: the first of the `mapped` bytes of the arena from heap->base,
 * those the heap grew to, are replaced by a reservation where a free of the heap's blocks
 * does nothing; returns how many (the unmapping must leave them), 0 if the heap is forgotten. */
PARENG__INTERNAL size_t pareng__malloc_untrack(const pareng__heap *heap, size_t mapped);

/* ---- spill.c ---- */
/* The lane's task ended: its spare chunk of spill stack, if any, goes back to the heap. */
PARENG__INTERNAL void pareng__spill_trim(pareng__worker *w);

/* ---- topology.c ---- */
struct pareng_plan {
    unsigned n_workers, n_cores, n_pus;
    bool this_system;              /* binding is possible */
    bool oversubscribed;           /* more workers than cores */
    pareng_placement *placement;   /* [n_workers] */
    unsigned *victims;             /* [n_workers][n_workers - 1] */
    unsigned *victim_levels;       /* same shape: what each victim shares (PARENG__LEVELS) */
    unsigned *victim_groups;       /* same shape: 0 for the nearest victims, then 1, ... */
    bool *near;                    /* [n_workers][n_workers]: share at least an L3 */
    void *topology;                /* hwloc_topology_t */
    void *allowed;                 /* hwloc_bitmap_t: the PUs this process may use */
};
#define PARENG__LEVELS 6
/* Pins the calling process to the PU of `worker`; 0, or -errno with a message. */
PARENG__INTERNAL int pareng__plan_bind(const pareng_plan *plan, unsigned worker);

/* ---- topology_cache.c ---- */
enum { PARENG__NO_TOPOLOGY_CACHE, PARENG__TOPOLOGY_CACHE_MISS, PARENG__TOPOLOGY_CACHE_HIT };
/* This machine's cache as read: hwloc's XML (its final NUL counted in xml_len) as topology.c
 * discovered it, and the plans made on it, each under the key of what else it depends on. */
typedef struct pareng__topology_cache {
    char *text; /* malloc'd: the file */
    const char *xml;
    size_t xml_len;
    const char *plans;
    size_t plans_len;
} pareng__topology_cache;
/* HIT when the cache holds this machine as it is now, discovered with settings `discovery`
 * (fills *c); MISS when there is none but one can be written; NO_TOPOLOGY_CACHE where none can
 * be. */
PARENG__INTERNAL int pareng__topology_cache_read(const char *discovery, pareng__topology_cache *c);
/* The plan kept under key in c, and its length; NULL if none is. */
PARENG__INTERNAL const void *pareng__topology_cache_plan(const pareng__topology_cache *c,
                                                         const char *key, size_t *len);
/* Keeps xml for the next starts with the plan under plan_key (if not NULL), and c's plans of
 * other keys, if this process has a cache; failures cost nothing else. */
PARENG__INTERNAL void pareng__topology_cache_write(const char *discovery, const char *xml,
                                                   size_t len, const pareng__topology_cache *c,
                                                   const char *plan_key, const void *plan,
                                                   size_t plan_len);
PARENG__INTERNAL void pareng__topology_cache_free(pareng__topology_cache *c);
/* The checksum the file carries of its key line and body (tests plant files that pass it). */
PARENG__INTERNAL uint64_t pareng__topology_cache_sum(const char *key, size_t key_len,
                                                     const char *body, size_t body_len);

/* ---- deque.c ---- */
/* Makes the deque of w empty, all frames private, with `capacity` frames at base. */
PARENG__INTERNAL void pareng__deque_init(pareng__worker *w, pareng_frame *base,
                                         unsigned capacity);
/* The owner, idle again: every frame is gone, so the next spawn publishes afresh. */
PARENG__INTERNAL void pareng__deque_reset(pareng__worker *w);
/* Thief: takes the oldest shared frame of victim; NULL if there is none or a race was lost.
 * On success the frame's thief mark is set to thief_lane + 1 (the lane_id it will run on). */
PARENG__INTERNAL pareng_frame *pareng__deque_steal(pareng__worker *victim, unsigned thief_lane);
/* Thief: as pareng__deque_steal, but asks nothing of an owner with no shared frame. */
PARENG__INTERNAL pareng_frame *pareng__deque_steal_shared(pareng__worker *victim,
                                                          unsigned thief_lane);
/* Owner, syncing the top frame t = h - 1 that is below the private floor: serves a pending
 * share request, then either makes t private again (returns true) or finds it stolen (false;
 * everything below h is then stolen). */
PARENG__INTERNAL bool pareng__deque_reclaim(pareng__worker *w, pareng_frame *h);
/* Owner: about to write the frame at h on the spawn's slow path: when h lies past the pages
 * it populated, maps the next ones. */
PARENG__INTERNAL void pareng__deque_populate(pareng__worker *w, pareng_frame *h);
/* Owner: the frame just written at h is at or above the spawn limit. When everything below
 * it was stolen, publishes it; else, when a thief asked for work, the older half of the
 * private frames (h included) is shared; else h was past the pages mapped before (populated
 * just now) and the limit moves to the new end. */
PARENG__INTERNAL void pareng__deque_push_slow(pareng__worker *w, pareng_frame *h);
/* Owner: a thief asked for work; share the older half of the private frames below h (the
 * top one stays private). Returns how many frames were shared. */
PARENG__INTERNAL uint32_t pareng__deque_share(pareng__worker *w, pareng_frame *h);
/* Thief: ask the owner of w to share (idempotent, cheap when already asked). */
PARENG__INTERNAL void pareng__deque_request(pareng__worker *w);
/* Owner: forgets a thief's request (a split served it, or cannot: the thief asks again). */
PARENG__INTERNAL void pareng__deque_drop_request(pareng__worker *w);
/* Owner: make every sync take the slow path (while spawns overflow), and undo it. */
PARENG__INTERNAL void pareng__deque_block_fast_sync(pareng__worker *w);
PARENG__INTERNAL void pareng__deque_unblock_fast_sync(pareng__worker *w);
/* Owner, spawning past the end of its full deque: serves a thief's pending request. */
PARENG__INTERNAL void pareng__deque_serve_while_full(pareng__worker *w);
/* Owner, about to leave its lane for IO: share every private frame below h, so that other
 * workers and this worker's other fibers can run them meanwhile. */
PARENG__INTERNAL void pareng__deque_share_all(pareng__worker *w, pareng_frame *h);
/* Is there a shared frame to steal right now? */
PARENG__INTERNAL bool pareng__deque_has_shared(pareng__worker *w);

/* ---- cutoff.c ---- */
/* The caller, before it makes a root READY: the run's cutoff (as pareng_config.cutoff_depth). */
PARENG__INTERNAL void pareng__cutoff_begin_run(pareng__arena *a, uint32_t cutoff);
/* A lane about to run a root or a stolen task takes the run's cutoff. */
PARENG__INTERNAL void pareng__cutoff_take(pareng__worker *w);
/* A new lane: never serial until a run says otherwise. */
PARENG__INTERNAL void pareng__cutoff_init(pareng__worker *w);
/* A sample of the counted clone under way on the lane ends here: the lane shares frames (a
 * thief takes part of the sample's work) or a spawn takes the slow path (which may map pages:
 * not what a call costs). */
PARENG__INTERNAL void pareng__cutoff_sample_cut(pareng__worker *w);

/* ---- wake.c ---- */
/* Wakes sleeping workers after work was published: one, or all. */
PARENG__INTERNAL void pareng__wake(pareng__arena *arena, bool all);
/* A worker about to sleep counts itself in and gets the epoch to wait on; it then re-checks
 * for work, futex-waits on epoch (unless work appeared) and retracts. */
PARENG__INTERNAL uint32_t pareng__sleep_announce(pareng__arena *arena);
PARENG__INTERNAL void pareng__sleep_retract(pareng__arena *arena);

/* ---- observe.c ---- */
/* The counters of worker, summed over its lanes (pareng_engine_stats, pareng_snapshot). */
PARENG__INTERNAL void pareng__stats_of(pareng__arena *a, unsigned worker, pareng_stats *out);
/* The coordinator, before the fork: placements and the start time. */
PARENG__INTERNAL void pareng__observe_start(pareng__arena *a, const pareng_plan *plan);
/* A worker's state changed (lane: any lane of it); records a trace event when tracing. */
PARENG__INTERNAL void pareng__observe_state_changed(pareng__worker *lane0, unsigned state);
static inline void pareng__observe_state(pareng__worker *lane, unsigned state)
{
    pareng__worker *lane0 = pareng__lane(lane->arena, lane->index, 0);
    /* relaxed: only this worker writes its state (see pareng__worker.state) */
    if (atomic_load_explicit(&lane0->state, memory_order_relaxed) != state)
        pareng__observe_state_changed(lane0, state);
}
/* thief stole a frame of victim (a trace event when tracing) */
PARENG__INTERNAL void pareng__observe_steal(pareng__worker *thief, unsigned victim);
/* The root's worker, around the root task: run counts and times, and the measuring mode. */
PARENG__INTERNAL void pareng__observe_root_begin(pareng__worker *w);
PARENG__INTERNAL void pareng__observe_root_end(pareng__worker *w);
/* The measuring mode's spawn and sync (every one takes the slow path then). */
PARENG__INTERNAL pareng_frame *pareng__measure_spawn(pareng__worker *w, pareng_frame *h,
                                                     pareng_task_fn run, const void *args,
                                                     size_t size);
PARENG__INTERNAL pareng_frame *pareng__measure_sync(pareng__worker *w, pareng_frame *t);

/* ---- engine.c ---- */
PARENG__INTERNAL pareng__arena *pareng__engine_arena(const pareng_engine *e);
/* Whether one of the loaded segments of the object dl_iterate_phdr describes holds `at`. */
struct dl_phdr_info;
PARENG__INTERNAL bool pareng__object_holds(const struct dl_phdr_info *info, uintptr_t at);
/* -EINVAL, said, when the function at `code` (call's role: "pareng_for", "body") lies in an
 * object loaded after the engine started, which its workers do not have; else 0. */
PARENG__INTERNAL int pareng__refuse_code_loaded_later(const pareng_engine *e, uintptr_t code,
                                                      const char *call, const char *role);
/* p (a ctx the caller hands to tasks) on the stack of the thread that started e, in a frame
 * made after pareng_start, which the workers never had: -EINVAL naming function, else 0. */
PARENG__INTERNAL int pareng__caller_local(pareng_engine *e, const void *p,
                                          const char *function);

/* ---- signal.c ---- */
typedef struct pareng__cancel_slot pareng__cancel_slot;
/* A slot through which pareng_cancel_on_signal's handler cancels the runs of the engine whose
 * eventfd is done_fd; NULL (-EMFILE, with a message) when the process has too many engines. */
PARENG__INTERNAL pareng__cancel_slot *pareng__cancel_slot_take(int done_fd);
/* Before the engine closes done_fd: no handler uses the slot any more. NULL is ignored. */
PARENG__INTERNAL void pareng__cancel_slot_release(pareng__cancel_slot *slot);
/* A run begins: true when a signal is already pending (the run must cancel itself). */
PARENG__INTERNAL bool pareng__cancel_slot_enter(pareng__cancel_slot *slot);
PARENG__INTERNAL void pareng__cancel_slot_leave(pareng__cancel_slot *slot);
/* Did the handler cancel the run in progress? */
PARENG__INTERNAL bool pareng__cancel_slot_cancelled(const pareng__cancel_slot *slot);

/* ---- worker.c ---- */
/* In a worker just forked, every signal blocked: the caller's handlers reset to the default
 * (what it ignores stays ignored), SIGINT and SIGPIPE ignored. */
PARENG__INTERNAL void pareng__worker_take_signals(void);
/* In a worker just forked, after pareng__worker_take_signals: a SIGSEGV in a guard page of
 * one of its task stacks is recorded as an overflow (stack_overflowed) before the worker dies
 * of it as before. */
PARENG__INTERNAL void pareng__worker_catch_stack_overflow(void);
/* The SIGSEGV handler is still that one (an after_fork of the caller's may have put its own):
 * what lets the caller's memory be sealed (caller_memory.c). */
PARENG__INTERNAL bool pareng__worker_catches_segv(void);
/* In a worker's handler of sig, which it does not explain: the default action, delivered when
 * the handler returns (async-signal-safe). */
PARENG__INTERNAL void pareng__worker_signal_by_default(int sig);
/* Lane 0 of the worker this process is (or was forked from), or NULL: async-signal-safe
 * (engine.c). */
PARENG__INTERNAL pareng__worker *pareng__worker_lane0(void);
/* Body of a worker process after the fork; never returns. life_fd: the read end of the pipe
 * whose write end only the coordinator holds (engine.c). */
PARENG__INTERNAL _Noreturn void pareng__worker_main(pareng__arena *arena, unsigned index,
                                                   const pareng_plan *plan, int life_fd);
/* Is this process a worker (of any engine), or one forked from a worker? (engine.c; and
 * libpareng-mpi's pareng_mpi_start) */
PARENG_API bool pareng__in_worker(void);
/* A worker that cannot go on: records err for the coordinator's report and exits with
 * status (PARENG__EXIT_*). */
PARENG__INTERNAL _Noreturn void pareng__worker_exit(pareng__worker *lane0, int status, int err);
/* Is a task runnable: a root handed over, an inbox task, or a shared frame in a lane of this
 * worker or of its victims (other than `except`, which may be NULL)? */
PARENG__INTERNAL bool pareng__work_visible(pareng__worker *w, const pareng__worker *except);
/* The idle loop of one lane: root task, steal, run, sleep. Every fiber runs one. */
PARENG__INTERNAL _Noreturn void pareng__idle_loop(pareng__worker *lane);

/* ---- fiber.c (IO engines; in the worker process, whose only thread runs every fiber) ---- */
typedef struct pareng__fiber pareng__fiber;
/* Runs the idle loop of lane0 on the worker's stack in the arena (arena.c), where thieves can
 * read what a task's locals hold; never returns. */
PARENG__INTERNAL _Noreturn void pareng__enter_arena_stack(pareng__worker *lane0);
/* Makes the calling stack fiber 0 on lane 0 of worker; 0 or -errno. */
PARENG__INTERNAL int pareng__fibers_init(pareng__arena *a, unsigned worker);
PARENG__INTERNAL bool pareng__fibers_enabled(void);
PARENG__INTERNAL pareng__fiber *pareng__fiber_current(void);
/* The running fiber, idle (its lane empty), hands the worker to a ready fiber if there is one
 * and waits to be reused: true when it did (and has been reused since). */
PARENG__INTERNAL bool pareng__fiber_park_if_others_ready(void);
/* The running fiber waits for pareng__fiber_wake: the worker goes on with a ready fiber, a
 * parked one, or a new one, on one of the first io_depth lanes or, when `stuck`
 * (pareng__io_wait_for_fiber), on any. false (not suspended) when every fiber it may use is
 * in use. */
PARENG__INTERNAL bool pareng__fiber_suspend(bool stuck);
/* The running fiber waits until *thief_mark is PARENG__DONE (a stolen child it joins); the
 * worker goes on with other fibers meanwhile, as pareng__fiber_suspend chooses them. false
 * (did not wait) when every fiber it may use is in use. */
PARENG__INTERNAL bool pareng__fiber_join_wait(_Atomic uint32_t *thief_mark, bool stuck);
/* Is a lane past io_depth still without a fiber? */
PARENG__INTERNAL bool pareng__fiber_spare_left(void);
/* Makes the fibers whose join is done ready; true if any fiber is ready. */
PARENG__INTERNAL bool pareng__fiber_wake_joiners(void);
/* Makes a suspended fiber ready; it runs at the worker's next scheduling point. */
PARENG__INTERNAL void pareng__fiber_wake(pareng__fiber *f);
PARENG__INTERNAL bool pareng__fiber_any_ready(void);

/* ---- io.c ---- */
/* In the caller of pareng_start: can this process use io_uring at all? 0 or -errno. */
PARENG__INTERNAL int pareng__io_probe(void);
/* In a worker after the fork: its ring of `depth` entries; 0 or -errno. */
PARENG__INTERNAL int pareng__io_init(pareng__worker *lane0, unsigned depth);
/* Submits what is queued and hands out completions and ended joins (making their fibers
 * ready); never blocks. */
PARENG__INTERNAL void pareng__io_poll(void);
/* A worker whose fibers are all taken waits this long for a completion before it looks again
 * (a join may also end by another worker's hand, which rings no bell in this ring). */
#define ALL_FIBERS_BUSY_WAIT_NS 1000000L
/* Waits in the ring for a completion, at most timeout_ns (< 0: no limit), and hands out what
 * arrived. */
PARENG__INTERNAL void pareng__io_wait(long timeout_ns);
/* The running fiber of `lane` waits (on its IO, or on a join) and every fiber it may use is
 * taken: waits in the ring for a completion, at most ALL_FIBERS_BUSY_WAIT_NS. Returns true
 * when the worker is stuck: no fiber became ready and a task is runnable, which the waits may
 * be waiting for (a pipe's reader whose writer is that task), so the caller's next try may
 * make a fiber past io_depth. Stuck with none left past io_depth for STUCK_WARN_NS, it says so
 * on stderr, once. */
PARENG__INTERNAL bool pareng__io_wait_for_fiber(pareng__worker *lane);
/* Sleeps in the ring until a completion arrives or epoch moves away from seen (the futex
 * wake of pareng__wake); on kernels without IORING_OP_FUTEX_WAIT (before 6.7) it looks again
 * every millisecond. */
PARENG__INTERNAL void pareng__io_sleep(_Atomic uint32_t *epoch, uint32_t seen);

/* ---- sys.c ---- */
/* fd moved above 0, 1 and 2 (close-on-exec), or -1 with errno, fd closed. A program that
 * closed stderr gets its next descriptor there: what it, or this library's own warnings, then
 * wrote to "stderr" went over the engine's memory. Every descriptor the engine keeps goes
 * through here but an IO worker's io_uring ring, which liburing holds (a write to it fails). */
PARENG__INTERNAL int pareng__fd_above_stdio(int fd);
PARENG__INTERNAL int pareng__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                                        long timeout_ns);
PARENG__INTERNAL void pareng__futex_wake(_Atomic uint32_t *addr, int count);
PARENG__INTERNAL uint64_t pareng__now_ns(void);
PARENG__INTERNAL uint64_t pareng__process_start_time(pid_t pid);
/* The state letter of /proc/<pid>/stat ('R', 'S', 'T' stopped, 't' traced, ...), or 0. */
PARENG__INTERNAL char pareng__process_state(pid_t pid);
/* utime + stime of /proc/<pid>/stat, in clock ticks; -1 if the process is gone. */
PARENG__INTERNAL int64_t pareng__process_cpu_ticks(pid_t pid);
PARENG__INTERNAL uint64_t pareng__random(uint64_t *state);
PARENG__INTERNAL void pareng__cpu_relax(void);
/* Records the message for pareng_last_error() and returns -err (for `return pareng__fail(...)`);
 * exported for libpareng-mpi. */
PARENG_API int pareng__fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- glb.c: which rank asks which for work (no engine, no transport: remote.c and the
 * simulator give it both) ---- */
enum pareng__msg_type { PARENG__MSG_STEAL = 1, PARENG__MSG_NO_WORK, PARENG__MSG_WORK,
                        PARENG__MSG_RESULT, PARENG__MSG_STOP };
#define PARENG__GLB_LIFELINE 1u /* flags: a lifeline request, or work pushed on one */
/* Every message between ranks: one fixed size, sent as bytes (docs/distributed.md). */
typedef struct pareng__glb_msg {
    uint32_t type;      /* enum pareng__msg_type */
    uint32_t from;      /* the sender's rank */
    uint32_t run;       /* the run it belongs to: a message of an earlier run is dropped */
    uint32_t flags;     /* PARENG__GLB_LIFELINE */
    uint64_t away;      /* WORK, RESULT: the giver's handle of the frame */
    uint64_t module;    /* WORK: the module of the task's code (a hash of its path) */
    uint64_t offset;    /* WORK: the task's address in that module */
    uint64_t name_hash; /* WORK: the task's name, which the receiver checks; STOP: the root's */
    unsigned char data[PARENG_FRAME_DATA_SIZE]; /* WORK: arguments; RESULT, STOP: result */
} pareng__glb_msg;
_Static_assert(sizeof(pareng__glb_msg) == 96, "the message format of docs/distributed.md");

typedef struct pareng__glb_ops {
    /* m is filled but for `run`, which the caller sets; 0 or -errno */
    int (*send)(void *ctx, unsigned to, pareng__glb_msg *m);
    /* frames the rank could give now (shared in its workers' deques) */
    unsigned (*shared)(void *ctx);
    /* a task for rank `thief` into m (module .. data, away), or false: none to give now */
    bool (*take)(void *ctx, unsigned thief, pareng__glb_msg *m);
    /* a WORK message arrived; 0 or -errno */
    int (*accept)(void *ctx, const pareng__glb_msg *m);
} pareng__glb_ops;

#define PARENG__GLB_MAX_BUDDIES 32
enum pareng__glb_state { PARENG__GLB_WORKING, PARENG__GLB_STEALING, PARENG__GLB_QUIET };
typedef struct pareng__glb {
    unsigned rank, ranks;
    const pareng__glb_ops *ops;
    void *ctx;
    uint64_t rng;
    enum pareng__glb_state state;
    unsigned attempts;         /* random victims asked in this hungry spell */
    unsigned buddies[PARENG__GLB_MAX_BUDDIES], n_buddies; /* the lifeline graph's edges */
    uint32_t armed;            /* bit k: our lifeline request waits at buddies[k] */
    uint32_t thieves;          /* bit k: buddies[k]'s lifeline request waits here */
    struct {
        uint64_t steal_requests, steals_refused, lifeline_pushes;
    } stats;
} pareng__glb;

PARENG_API void pareng__glb_init(pareng__glb *g, unsigned rank, unsigned ranks,
                                 const pareng__glb_ops *ops, void *ctx);
/* A new run: working, no request out, no lifeline armed or kept. */
PARENG_API void pareng__glb_reset(pareng__glb *g);
/* The rank's workers are hungry: start asking, unless it is asking or quiet already. */
PARENG_API int pareng__glb_hungry(pareng__glb *g);
/* The rank's workers are all busy again (a quiet rank: work it made itself). */
PARENG_API void pareng__glb_busy(pareng__glb *g);
/* A STEAL, NO_WORK or WORK message (others are the caller's). */
PARENG_API int pareng__glb_receive(pareng__glb *g, const pareng__glb_msg *m);
/* Serve the kept lifeline requests with whatever work there is to give. */
PARENG_API int pareng__glb_push(pareng__glb *g);

/* ---- remote.c: frames that cross ranks, the inbox, a distributed run ---- */
/* A transport between ranks (mpi.c's MPI, a test's pipes): reliable, and ordered between two
 * ranks. */
typedef struct pareng__transport {
    int (*send)(void *ctx, unsigned to, const pareng__glb_msg *m); /* 0 or -errno; never blocks */
    int (*poll)(void *ctx, pareng__glb_msg *m); /* 1: a message in m, 0: none now, -errno */
    /* a run failed here: end the job, naming this rank */
    void (*abort)(void *ctx, const char *message);
    void *ctx;
} pareng__transport;
typedef struct pareng__dist pareng__dist;
/* Makes runs of e collective over `ranks` ranks; 0 or -errno. */
PARENG_API int pareng__dist_attach(pareng_engine *e, const pareng__transport *t, unsigned rank,
                                   unsigned ranks);
/* This rank's row of pareng_mpi_stats. */
PARENG_API void pareng__dist_stats(pareng_engine *e, pareng_rank_stats *row);
PARENG__INTERNAL int pareng__dist_run(pareng__dist *d, pareng_task_fn run, void *data,
                                      size_t size, unsigned cutoff);
PARENG__INTERNAL void pareng__dist_free(pareng__dist *d);
/* The program's tasks as this process names them (a sum over them): equal on every rank of
 * one executable. */
PARENG_API uint64_t pareng__tasks_hash(void);
/* Where remote.c finds a task by its run function; NULL if it was not registered. */
PARENG__INTERNAL const pareng__task_info *pareng__task_find(pareng_task_fn run);
/* The task registered last (the registry is a stack: older ones follow it). */
PARENG__INTERNAL const pareng__task_info *pareng__task_newest(void);
/* run's task when it registered after `since` (pareng__task_newest() at some moment), as a
 * library's tasks do when it is opened later; else NULL. */
PARENG__INTERNAL const pareng__task_info *pareng__task_registered_since(
    pareng_task_fn run, const pareng__task_info *since);
/* Does the part of frame f that task t's spawn wrote hold an address inside arena a
 * (pareng_alloc's memory, a worker's stack)? Then the task was marked to cross ranks by
 * mistake: such an address means nothing on another rank. A word of random bytes falls in
 * that range with odds of 2^-24 at most (an arena is at most about a TiB, its heap's reserve
 * included). Padding between arguments is not written either: a small value beside four
 * bytes of an old address can fall inside an arena of more than 4 GiB, and then the task
 * stays on its rank, with the message, though it did not have to. */
PARENG__INTERNAL bool pareng__frame_holds_arena_address(const pareng__arena *a,
                                                        const pareng_frame *f,
                                                        const pareng__task_info *t);

/* ---- engine.c, for remote.c ---- */
/* The coordinator's way into the inbox (pareng_post, remote.c): an EMPTY slot's index, or -1
 * when every slot is taken; then the caller notes whose task it is (a tag, another rank's
 * handle) and puts it there: the frame filled with `size` bytes of data, READY, a sleeper
 * woken. Only the coordinator makes slots EMPTY or READY, from one thread at a time
 * (pareng_post's and pareng_collect's lock; a distributed run's one coordinator thread). */
PARENG__INTERNAL int pareng__inbox_free(const pareng__arena *a);
PARENG__INTERNAL void pareng__inbox_put(pareng__arena *a, unsigned k, pareng_task_fn run,
                                        const void *data, size_t size);
/* Called whenever the coordinator wakes (a worker rang, or *timeout_ns passed; it may change
 * it): > 0 go on, 0 the run is over, < 0 it failed (message set). */
typedef int (*pareng__serve_fn)(void *ctx, long *timeout_ns);
/* A run whose end `serve` decides: run NULL hands over no root (a rank that only serves). */
PARENG__INTERNAL int pareng__engine_run(pareng_engine *e, pareng_task_fn run, void *data,
                                        size_t size, unsigned cutoff, pareng__serve_fn serve,
                                        void *ctx);
PARENG__INTERNAL pareng__dist *pareng__engine_dist(const pareng_engine *e);
PARENG__INTERNAL void pareng__engine_set_dist(pareng_engine *e, pareng__dist *d);

#endif /* PARENG_INTERNAL_H */
