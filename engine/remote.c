/*
 * remote.c - what crosses ranks: the registry of tasks and their names between processes
 * whose executables are mapped at different addresses, frames taken from this rank's deques
 * for another rank and their results coming back, tasks of other ranks in the inbox, and the
 * coordinator's loop during a distributed run (pareng__dist_run). The transport is the
 * caller's (mpi.c gives MPI's); which rank asks which for work is glb.c's.
 *
 * A frame leaves its rank as a thief takes it inside one: the coordinator steals the oldest
 * shared frame of a worker's deque (deque.c's CAS, marking it PARENG__THIEF_REMOTE), sends
 * its task's name and its 48 bytes of arguments, and keeps the frame's address under a
 * handle. The owner's sync finds the frame stolen and, having no thief to leapfrog on, runs
 * whatever this rank has meanwhile (worker.c). The receiver's coordinator puts the task in
 * its inbox, one of its workers runs it, and the result comes back under the handle; the
 * coordinator copies it into the frame and marks it done, as a local thief would.
 */
#include "internal.h"

#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The coordinator looks for messages MIN_POLL_NS after one came, and backs off to
 * WAITING_POLL_NS while it waits for one, MAX_POLL_NS while nothing is going on (a message
 * then waits that long at most: MPI gives no file descriptor to sleep on). */
#define MIN_POLL_NS 10000L
#define WAITING_POLL_NS 100000L
#define MAX_POLL_NS 1000000L
/* Messages of runs this rank has not begun that it keeps (a run sends a few per frame that
 * crosses; a rank runs ahead by runs too short to need the others). */
#define MAX_LATER (1u << 20)

/* ---- the registry of tasks ------------------------------------------------------------- */

static pareng__task_info *_Atomic registry;

void pareng__task_register(pareng__task_info *info)
{
    /* Constructors may run in threads that dlopen a module: a lock-free push. Release: the
     * info is complete before another thread finds it. */
    pareng__task_info *head = atomic_load_explicit(&registry, memory_order_relaxed);
    do
        info->next = head;
    while (!atomic_compare_exchange_weak_explicit(&registry, &head, info, memory_order_release,
                                                  memory_order_relaxed));
}

const pareng__task_info *pareng__task_newest(void)
{
    /* Acquire pairs with the register's release */
    return atomic_load_explicit(&registry, memory_order_acquire);
}

const pareng__task_info *pareng__task_registered_since(pareng_task_fn run,
                                                       const pareng__task_info *since)
{
    for (const pareng__task_info *t = pareng__task_newest(); t && t != since; t = t->next)
        if (t->run == run)
            return t;
    return NULL;
}

const pareng__task_info *pareng__task_find(pareng_task_fn run)
{
    /* Acquire pairs with the register's release */
    for (const pareng__task_info *t = atomic_load_explicit(&registry, memory_order_acquire); t;
         t = t->next)
        if (t->run == run)
            return t;
    return NULL;
}

/* pareng__task_info.crosses_ranks: 1 as PARENG_TASK_CROSSES_RANKS sets it; SENT_BY_NONE once
 * this rank found an address of its arena in one of the task's frames. Then this rank sends
 * none of them, but still takes them from the others and decides its roots as they do: the
 * ranks must agree on both, and only this one saw the address (a rank that refused the
 * others' frames ended the job: "sent a task this program does not have"). */
#define SENT_BY_NONE 2u

/* Marked by its author (its result is all it does), and no pointer in its frame. */
static bool crosses_ranks(const pareng__task_info *t)
{
    return t && t->crosses_ranks && !(t->kinds & PARENG__KIND_POINTER);
}

static bool sent_from_here(const pareng__task_info *t)
{
    return crosses_ranks(t) && t->crosses_ranks != SENT_BY_NONE;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* A task's code, named so that another process of the same program finds it: the module
 * (the main program is "") and the offset from where that process mapped it (ASLR). */
typedef struct code_name {
    uintptr_t address;   /* in: the code; out of find_module: its module's base */
    uint64_t module;     /* hash of the module's path */
    bool found;
} code_name;

static int module_of_address(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    code_name *c = arg;
    if (!pareng__object_holds(info, c->address))
        return 0;
    c->module = fnv1a(info->dlpi_name);
    c->address = info->dlpi_addr;
    c->found = true;
    return 1;
}

static int module_by_name(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    code_name *c = arg;
    if (fnv1a(info->dlpi_name) != c->module)
        return 0;
    c->address = info->dlpi_addr;
    c->found = true;
    return 1;
}

static bool name_task(const pareng__task_info *t, pareng__glb_msg *m)
{
    code_name c = {.address = (uintptr_t)t->run};
    dl_iterate_phdr(module_of_address, &c);
    if (!c.found)
        return false;
    m->module = c.module;
    m->offset = (uintptr_t)t->run - c.address;
    m->name_hash = fnv1a(t->name);
    return true;
}

/* The task a WORK message names, if this program has it and it may cross ranks. */
static const pareng__task_info *task_named(const pareng__glb_msg *m)
{
    code_name c = {.module = m->module};
    dl_iterate_phdr(module_by_name, &c);
    if (!c.found)
        return NULL;
    const pareng__task_info *t = pareng__task_find((pareng_task_fn)(c.address + m->offset));
    return crosses_ranks(t) && fnv1a(t->name) == m->name_hash ? t : NULL;
}

uint64_t pareng__tasks_hash(void)
{
    uint64_t h = 0;
    /* Acquire pairs with the register's release */
    for (const pareng__task_info *t = atomic_load_explicit(&registry, memory_order_acquire); t;
         t = t->next) {
        pareng__glb_msg m = {0};
        if (name_task(t, &m)) /* a sum: the registry's order differs from process to process */
            h += ((m.module * 31 + m.offset) * 0x9e3779b97f4a7c15ull) ^ m.name_hash;
    }
    return h;
}

/* ---- a distributed run -------------------------------------------------------------------- */

/* A task of another rank, to run here: its result goes back there, under its handle. */
typedef struct incoming {
    pareng_task_fn run;
    unsigned char data[PARENG_FRAME_DATA_SIZE];
    unsigned from;
    uint64_t away;
} incoming;

/* A frame of this rank running on another: the handle is its index. */
typedef struct away_frame {
    pareng_frame *frame; /* NULL: a free entry */
    unsigned rank;
} away_frame;

struct pareng__dist {
    pareng_engine *engine;
    pareng__arena *arena;
    pareng__transport transport;
    unsigned rank, ranks;
    pareng__glb glb;
    uint32_t run;          /* the current run's number, the same on every rank */
    /* The name of the run's root task as this rank called it, hashed: each rank checks it
     * against rank 0's STOP (a rank that ran another task, uts where rank 0 ran fib, took
     * rank 0's result for its own; the arguments are rank 0's by design) */
    uint64_t root_name_hash;
    bool stopped;
    unsigned char result[PARENG_FRAME_DATA_SIZE]; /* rank 0's root result, from its STOP */

    away_frame *away;
    size_t n_away, away_capacity;
    incoming inbox_origin[PARENG__INBOX_SLOTS];
    incoming *waiting;     /* received while every inbox slot was taken */
    size_t n_waiting, waiting_capacity;
    pareng__glb_msg *later; /* messages of a run this rank has not begun */
    size_t n_later, later_capacity;
    long poll_ns;
    bool active;           /* something happened in this wake-up */
    uint64_t rng;
    bool *idle_before;     /* [n_workers]: found idle at the last look (hungry) */
    pareng_rank_stats stats;
};

/* Grows an array of `size`-byte items to hold one more; false when out of memory. */
static bool room_for_one(void **items, size_t n, size_t *capacity, size_t size)
{
    if (n < *capacity)
        return true;
    size_t c = *capacity ? 2 * *capacity : 16;
    void *p = realloc(*items, c * size);
    if (!p)
        return false;
    *items = p;
    *capacity = c;
    return true;
}

static int send_msg(void *ctx, unsigned to, pareng__glb_msg *m)
{
    pareng__dist *d = ctx;
    m->run = d->run;
    d->stats.messages++;
    d->stats.bytes += sizeof *m;
    d->active = true;
    return d->transport.send(d->transport.ctx, to, m);
}

/* Fills a free inbox slot with `in`; false when every slot is taken. */
static bool inbox_put(pareng__dist *d, const incoming *in)
{
    int k = pareng__inbox_free(d->arena);
    if (k < 0)
        return false;
    d->inbox_origin[k] = *in;
    pareng__inbox_put(d->arena, (unsigned)k, in->run, in->data, sizeof in->data);
    return true;
}

static int run_here(pareng__dist *d, const incoming *in)
{
    if (inbox_put(d, in))
        return 0;
    if (!room_for_one((void **)&d->waiting, d->n_waiting, &d->waiting_capacity, sizeof *in))
        return pareng__fail(ENOMEM, "out of memory");
    d->waiting[d->n_waiting++] = *in;
    return 0;
}

/* The result of a frame of this rank is in: copy it in and let the owner's sync go on. */
static void frame_done(pareng__dist *d, pareng_frame *f, const unsigned char *result)
{
    memcpy(f->pareng__data, result, sizeof f->pareng__data);
    /* Release: the result before the owner's acquire of DONE (worker.c, leapfrog); the wake
     * after it, as a publisher's (wake.c), for an owner that sleeps on it. */
    atomic_store_explicit(&f->pareng__thief, PARENG__DONE, memory_order_release);
    pareng__wake(d->arena, true);
}

bool pareng__frame_holds_arena_address(const pareng__arena *a, const pareng_frame *f,
                                       const pareng__task_info *t)
{
    /* Plain values (numbers, enums) hold no address, whatever their bytes: the padding
     * between them is what the spawn's stack held there (a long double's six bytes, an
     * arena stack's address: a task of values taken for a mistake and kept on its rank) */
    if (!(t->kinds & PARENG__KIND_AGGREGATE))
        return false;
    /* The bytes past the arguments hold whatever an earlier frame in this slot left there: a
     * task of plain values after one that held a pointer looked like a mistake (UTS after a
     * sum over pareng_alloc's memory, once in about 20 runs of the suite). args_bytes is at
     * most a frame's 48 (a spilled task's spawn writes a pointer). */
    for (size_t k = 0; k + sizeof(uintptr_t) <= t->args_bytes; k += sizeof(uintptr_t)) {
        uintptr_t word;
        memcpy(&word, f->pareng__data + k, sizeof word);
        if (pareng__arena_holds(a, word))
            return true;
    }
    return false;
}

/* glb.c's shared: frames between tail and split, in every lane of every worker (take). */
static unsigned shared(void *ctx)
{
    pareng__dist *d = ctx;
    unsigned frames = 0;
    for (unsigned i = 0; i < d->arena->n_workers; i++)
        for (unsigned k = 0, n = pareng__lanes_used(d->arena, i); k < n; k++) {
            /* Relaxed: a count, for how many to take; the steals decide */
            uint64_t ts = atomic_load_explicit(&pareng__lane(d->arena, i, k)->tail_split,
                                               memory_order_relaxed);
            if (pareng__ts_tail(ts) < pareng__ts_split(ts))
                frames += pareng__ts_split(ts) - pareng__ts_tail(ts);
        }
    return frames;
}

/* The oldest shared frame of `lane`, if its task may cross ranks, in m for `thief`: true; else
 * false, the frame left (or given back) to this rank. */
static bool take_from_lane(pareng__dist *d, pareng__worker *lane, unsigned thief,
                           pareng__glb_msg *m)
{
    pareng__arena *a = d->arena;
    /* Acquire: as a thief's (deque.c), the frames below split are filled */
    uint64_t ts = atomic_load_explicit(&lane->tail_split, memory_order_acquire);
    if (pareng__ts_tail(ts) >= pareng__ts_split(ts)) {
        pareng__deque_request(lane); /* its owner shares at its next sync */
        return false;
    }
    /* A look before the steal: a frame whose task may not cross stays for this rank's
     * thieves. Atomic, as the owner may reclaim and rewrite it meanwhile (checked again
     * below). */
    pareng_task_fn run =
        __atomic_load_n(&lane->base[pareng__ts_tail(ts)].pareng__run, __ATOMIC_RELAXED);
    if (!sent_from_here(pareng__task_find(run)))
        return false;
    pareng_frame *f = pareng__deque_steal(lane, PARENG__THIEF_REMOTE - 1);
    if (!f)
        return false;
    const pareng__task_info *t = pareng__task_find(f->pareng__run);
    bool sendable = sent_from_here(t) && !pareng__frame_holds_arena_address(a, f, t);
    if (sent_from_here(t) && !sendable) {
        fprintf(stderr, "pareng: rank %u: task %s holds an address of this rank's shared "
                "memory (pareng_alloc, a task's stack), which means nothing on another "
                "rank: it stays on this rank. PARENG_TASK_CROSSES_RANKS is for tasks of "
                "values.\n", d->rank, t->name);
        /* This rank sends no more of them (the workers' copies never look) */
        ((pareng__task_info *)t)->crosses_ranks = SENT_BY_NONE;
    }
    if (!sendable || !name_task(t, m) ||
        !room_for_one((void **)&d->away, d->n_away, &d->away_capacity, sizeof *d->away)) {
        /* Not sent (another frame took its place since the look, it holds an address,
         * or no memory): its owner runs it at its sync. Release: the owner reads the
         * frame it wrote; the wake for an owner asleep on it (worker.c). */
        atomic_store_explicit(&f->pareng__thief, PARENG__THIEF_RETURNED,
                              memory_order_release);
        pareng__wake(a, true);
        return false;
    }
    size_t handle = 0;
    while (handle < d->n_away && d->away[handle].frame)
        handle++;
    if (handle == d->n_away)
        d->n_away++;
    d->away[handle] = (away_frame){.frame = f, .rank = thief};
    m->away = handle;
    memcpy(m->data, f->pareng__data, sizeof m->data);
    d->stats.tasks_sent++;
    return true;
}

/* glb.c's take: the oldest shared frame of a task that may cross ranks, from any lane of any
 * worker (a serial run split for a hungry thief, this rank's or another's, goes on in a split
 * lane: cutoff.c). */
static bool take(void *ctx, unsigned thief, pareng__glb_msg *m)
{
    pareng__dist *d = ctx;
    unsigned n = d->arena->n_workers, first = (unsigned)(pareng__random(&d->rng) % n);
    for (unsigned i = 0; i < n; i++) {
        unsigned worker = (first + i) % n;
        for (unsigned k = 0, lanes = pareng__lanes_used(d->arena, worker); k < lanes; k++)
            if (take_from_lane(d, pareng__lane(d->arena, worker, k), thief, m))
                return true;
    }
    return false;
}

/* glb.c's accept: a task of another rank, to run here. */
static int accept(void *ctx, const pareng__glb_msg *m)
{
    pareng__dist *d = ctx;
    const pareng__task_info *t = task_named(m);
    if (!t) /* the transport's abort names this rank */
        return pareng__fail(EPROTO, "rank %u sent a task this program does not have (or may "
                            "not take from another rank): do all ranks run the same "
                            "executable?", m->from);
    d->stats.tasks_received++;
    incoming in = {.run = t->run, .from = m->from, .away = m->away};
    memcpy(in.data, m->data, sizeof in.data);
    return run_here(d, &in);
}

/* A RESULT: the frame it names ran on the rank it was sent to. */
static int result_in(pareng__dist *d, const pareng__glb_msg *m)
{
    if (m->away >= d->n_away || !d->away[m->away].frame || d->away[m->away].rank != m->from)
        return pareng__fail(EPROTO, "rank %u returned a result for no task it was given",
                            m->from);
    frame_done(d, d->away[m->away].frame, m->data);
    d->away[m->away].frame = NULL;
    return 0;
}

static int receive(pareng__dist *d, const pareng__glb_msg *m)
{
    d->stats.bytes += sizeof *m;
    d->active = true;
    if (m->from >= d->ranks || m->from == d->rank)
        return pareng__fail(EPROTO, "a message from no other rank");
    if (m->run != d->run) { /* an earlier run's is stale; a later one's waits for it */
        if (m->run - d->run < UINT32_MAX / 2) {
            if (d->n_later == MAX_LATER)
                return pareng__fail(EPROTO, "more messages of later runs than any run sends");
            if (!room_for_one((void **)&d->later, d->n_later, &d->later_capacity, sizeof *m))
                return pareng__fail(ENOMEM, "out of memory");
            d->later[d->n_later++] = *m;
        }
        return 0;
    }
    switch (m->type) {
    case PARENG__MSG_RESULT:
        return result_in(d, m);
    case PARENG__MSG_STOP:
        if (m->name_hash != d->root_name_hash)
            return pareng__fail(EPROTO, "rank %u's run %u is not rank 0's: rank 0 ran another "
                                "task. Every rank makes the same runs of tasks that cross "
                                "ranks, in the same order (docs/distributed.md)", d->rank,
                                (unsigned)d->run);
        memcpy(d->result, m->data, sizeof d->result);
        d->stopped = true;
        return 0;
    case PARENG__MSG_STEAL:
    case PARENG__MSG_NO_WORK:
    case PARENG__MSG_WORK:
        return pareng__glb_receive(&d->glb, m);
    default:
        return pareng__fail(EPROTO, "a message of no known type");
    }
}

/* Inbox tasks that finished: results home. Then waiting tasks into the freed slots. */
static int collect(pareng__dist *d)
{
    pareng__arena *a = d->arena;
    for (unsigned k = 0; k < PARENG__INBOX_SLOTS; k++) {
        pareng__inbox_slot *slot = &a->inbox[k];
        /* Acquire pairs with the worker's release of DONE: the result is in the frame. */
        if (atomic_load_explicit(&slot->state, memory_order_acquire) != PARENG__INBOX_DONE)
            continue;
        const incoming *in = &d->inbox_origin[k];
        pareng__glb_msg m = {.type = PARENG__MSG_RESULT, .from = d->rank, .away = in->away};
        memcpy(m.data, slot->frame.pareng__data, sizeof m.data);
        int rc = send_msg(d, in->from, &m);
        /* Relaxed: no worker acts on EMPTY; the next READY publishes the next task */
        atomic_store_explicit(&slot->state, PARENG__INBOX_EMPTY, memory_order_relaxed);
        if (rc < 0)
            return rc;
    }
    size_t placed = 0;
    while (placed < d->n_waiting && inbox_put(d, &d->waiting[placed]))
        placed++;
    if (placed) {
        memmove(d->waiting, d->waiting + placed, (d->n_waiting - placed) * sizeof *d->waiting);
        d->n_waiting -= placed;
    }
    return 0;
}

static bool root_done(const pareng__arena *a)
{
    /* Acquire pairs with the root worker's release of DONE (worker.c): the result is in */
    return atomic_load_explicit(&a->root_state, memory_order_acquire) == PARENG__ROOT_DONE;
}

/* Some worker found nothing to do, here and now and at the last look too, and no task from
 * another rank waits for one. Not only sleepers: a worker spins a while before it sleeps,
 * and on a core it shares, each of those yields may last a time slice. */
static bool hungry(pareng__dist *d)
{
    pareng__arena *a = d->arena;
    bool idle_twice = false;
    for (unsigned i = 0; i < a->n_workers; i++) {
        /* Relaxed: a hint (observe.c's state); a wrong guess costs one request or one
         * wake-up's delay */
        uint32_t state = atomic_load_explicit(&pareng__lane(a, i, 0)->state,
                                              memory_order_relaxed);
        bool idle = state == PARENG_STATE_STEALING || state == PARENG_STATE_SLEEPING;
        idle_twice = idle_twice || (idle && d->idle_before[i]);
        d->idle_before[i] = idle;
    }
    return idle_twice && atomic_load_explicit(&a->inbox_ready, memory_order_relaxed) == 0 &&
           d->n_waiting == 0;
}

/* The coordinator's loop, at each wake-up of engine.c's watch (pareng__serve_fn). */
static int serve(void *ctx, long *timeout_ns)
{
    pareng__dist *d = ctx;
    d->active = false;
    int rc = 0;
    pareng__glb_msg m;
    while (!d->stopped && rc == 0 && (rc = d->transport.poll(d->transport.ctx, &m)) > 0)
        rc = receive(d, &m);
    if (rc == 0)
        rc = collect(d);
    if (rc < 0)
        return rc;
    if (d->stopped)
        return 0;
    if (d->rank == 0 && root_done(d->arena)) {
        pareng__glb_msg stop = {.type = PARENG__MSG_STOP, .from = 0,
                                .name_hash = d->root_name_hash};
        memcpy(stop.data, d->arena->root.pareng__data, sizeof stop.data);
        for (unsigned r = 1; r < d->ranks && rc == 0; r++)
            rc = send_msg(d, r, &stop);
        return rc < 0 ? rc : 0;
    }
    if (!hungry(d))
        pareng__glb_busy(&d->glb);
    else if ((rc = pareng__glb_hungry(&d->glb)) < 0)
        return rc;
    if ((rc = pareng__glb_push(&d->glb)) < 0)
        return rc;
    /* Quick after a message, slower and slower while none comes; not too slow while an
     * answer is awaited or quiet ranks wait for this one's work (a worker's share rings
     * nobody). */
    long slowest = d->glb.state == PARENG__GLB_STEALING || d->glb.thieves ? WAITING_POLL_NS
                                                                          : MAX_POLL_NS;
    d->poll_ns = d->active ? MIN_POLL_NS : d->poll_ns * 2 > slowest ? slowest : d->poll_ns * 2;
    *timeout_ns = d->poll_ns;
    return 1;
}

static uint64_t workers_busy_ns(pareng__arena *a)
{
    uint64_t busy = 0;
    for (unsigned i = 0; i < a->n_workers; i++) {
        pareng_stats s;
        pareng__stats_of(a, i, &s);
        busy += s.busy_ns;
    }
    return busy;
}

/* What the coordinator costs during runs (its workers are other processes). */
static uint64_t coordinator_cpu_ns(void)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    return (uint64_t)cpu.tv_sec * 1000000000ull + (uint64_t)cpu.tv_nsec;
}

/* A run failed on this rank: the job cannot give its answer (docs/distributed.md,
 * "Failures"). Returns rc. */
static int end_the_job(pareng__dist *d, int rc)
{
    char message[PARENG_ERROR_MAX];
    snprintf(message, sizeof message, "%s", pareng_last_error());
    d->transport.abort(d->transport.ctx, message);
    return rc;
}

int pareng__dist_run(pareng__dist *d, pareng_task_fn run, void *data, size_t size,
                     unsigned cutoff)
{
    /* One rank, or a root that may not leave its rank (nor may anything below it that
     * takes its pointers): every rank runs its own, as without MPI. Its failure ends the job
     * as well (a map's rank whose worker died waited in the stop's barrier for the others to
     * finish the whole map). */
    const pareng__task_info *root = pareng__task_find(run);
    if (d->ranks == 1 || !crosses_ranks(root)) {
        int rc = pareng__engine_run(d->engine, run, data, size, cutoff, NULL, NULL);
        return rc < 0 && d->ranks > 1 ? end_the_job(d, rc) : rc;
    }
    d->run++;
    d->root_name_hash = fnv1a(root->name);
    d->stopped = false;
    d->poll_ns = MIN_POLL_NS;
    pareng__glb_reset(&d->glb);
    /* Messages that came early, in the last run: now theirs. */
    size_t n_later = d->n_later;
    d->n_later = 0;
    int rc = 0;
    for (size_t k = 0; k < n_later && rc == 0; k++)
        rc = receive(d, &d->later[k]);
    uint64_t cpu_before = coordinator_cpu_ns(), busy_before = workers_busy_ns(d->arena),
             began = pareng__now_ns();
    if (rc == 0)
        rc = pareng__engine_run(d->engine, d->rank == 0 ? run : NULL, data, size, cutoff, serve,
                                d);
    /* The run's own: a worker's idle time is counted only when its idleness ends, which
     * for the last spell of a run is in the next; its busy time, as each task ends. */
    uint64_t busy = workers_busy_ns(d->arena) - busy_before,
             capacity = (pareng__now_ns() - began) * d->arena->n_workers;
    d->stats.busy_ns += busy;
    d->stats.idle_ns += capacity > busy ? capacity - busy : 0;
    d->stats.coordinator_cpu_ns += coordinator_cpu_ns() - cpu_before;
    if (rc < 0)
        return end_the_job(d, rc);
    if (d->rank != 0)
        memcpy(data, d->result, size);
    return 0;
}

static const pareng__glb_ops glb_ops = {send_msg, shared, take, accept};

int pareng__dist_attach(pareng_engine *e, const pareng__transport *t, unsigned rank,
                        unsigned ranks)
{
    pareng__arena *a = pareng__engine_arena(e);
    if (a->io_depth)
        return pareng__fail(ENOTSUP, "an engine with IO does not share work across ranks: "
                            "its tasks wait on this machine's files and sockets");
    if (rank >= ranks)
        return pareng__fail(EINVAL, "rank %u of %u", rank, ranks);
    pareng__dist *d = calloc(1, sizeof *d);
    bool *idle_before = calloc(a->n_workers, sizeof *idle_before);
    if (!d || !idle_before) {
        free(d);
        free(idle_before);
        return pareng__fail(ENOMEM, "out of memory");
    }
    d->idle_before = idle_before;
    d->engine = e;
    d->arena = a;
    d->transport = *t;
    d->rank = rank;
    d->ranks = ranks;
    d->rng = 0x2545f4914f6cdd1dull * (rank + 1);
    pareng__glb_init(&d->glb, rank, ranks, &glb_ops, d);
    a->remote = ranks > 1;
    pareng__engine_set_dist(e, d);
    return 0;
}

void pareng__dist_stats(pareng_engine *e, pareng_rank_stats *row)
{
    pareng__dist *d = pareng__engine_dist(e);
    pareng__arena *a = pareng__engine_arena(e);
    memset(row, 0, sizeof *row);
    if (d) {
        *row = d->stats;
        row->steal_requests = d->glb.stats.steal_requests;
        row->steals_refused = d->glb.stats.steals_refused;
        row->lifeline_pushes = d->glb.stats.lifeline_pushes;
    }
    for (unsigned i = 0; i < a->n_workers; i++) {
        pareng_stats s;
        pareng__stats_of(a, i, &s);
        row->tasks += s.tasks;
        if (!d) { /* an engine of one rank: its workers' whole lives */
            row->busy_ns += s.busy_ns;
            row->idle_ns += s.idle_ns;
        }
    }
}

void pareng__dist_free(pareng__dist *d)
{
    if (!d)
        return;
    free(d->away);
    free(d->waiting);
    free(d->later);
    free(d->idle_before);
    free(d);
}

int pareng_mpi_launched(void)
{
    /* Open MPI's mpirun; MPICH's Hydra and srun (PMI); PMIx launchers. Not Slurm's own
     * variables: a batch script sees them without being a rank. */
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const char *v = getenv(sizes[k]);
        if (v && strtol(v, NULL, 10) > 1)
            return 1;
    }
    return 0;
}
