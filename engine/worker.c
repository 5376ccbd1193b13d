/*
 * worker.c - one worker process: what it does after the fork. The idle loop (root task, steal
 * nearest first, back off, sleep on the arena futex), running stolen frames, the slow paths of
 * spawn and sync (publish, overflow, leapfrog), and waking sleepers when work appears.
 *
 * Thieves steal from lanes (internal.h): a CPU engine's worker has lane 0 and the lanes its
 * split serial runs go on in (cutoff.c); an IO engine's worker has one per fiber, and its idle
 * loop also hands the worker to fibers whose IO completed.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Failed steal rounds (each ends in sched_yield) before a worker goes to sleep. A sleeper
 * sleeps until it is woken (wake.c), with no timeout: an idle engine costs nothing. */
#define SPIN_ROUNDS 64

pareng_engine *pareng__worker_engine(const pareng_worker *w)
{
    return ((const pareng__worker *)(const void *)w)->arena->engine;
}

void pareng__share_now(pareng_worker *pub, pareng_frame *h)
{
    pareng__worker *w = pareng__self(pub);
    /* a serial run keeps results, not tasks, in its frames (pareng.h) */
    if (w->serial_runs_open == 0)
        pareng__deque_share_all(w, h);
}

unsigned pareng__worker_index(const pareng_worker *w)
{
    return ((const pareng__worker *)(const void *)w)->index;
}

unsigned pareng__worker_count(const pareng_worker *w)
{
    return ((const pareng__worker *)(const void *)w)->arena->n_workers;
}

/* Is there a shared frame in a lane of `worker` (other than `except`)? */
static bool worker_has_shared(pareng__arena *a, unsigned worker, const pareng__worker *except)
{
    for (unsigned k = 0, n = pareng__lanes_used(a, worker); k < n; k++) {
        pareng__worker *lane = pareng__lane(a, worker, k);
        if (lane != except && pareng__deque_has_shared(lane))
            return true;
    }
    return false;
}

bool pareng__work_visible(pareng__worker *w, const pareng__worker *except)
{
    pareng__arena *a = w->arena;
    /* Relaxed: the sleeper's re-check; what orders it after a publisher's stores is the RMW on
     * sleepers in pareng__sleep_announce (wake.c), not these loads. A stuck IO worker's look
     * (io.c) is a hint: a frame it misses now it sees a millisecond later. */
    if (atomic_load_explicit(&a->stop, memory_order_relaxed) ||
        atomic_load_explicit(&a->root_state, memory_order_relaxed) == PARENG__ROOT_READY ||
        atomic_load_explicit(&a->inbox_ready, memory_order_relaxed) != 0)
        return true;
    if (worker_has_shared(a, w->index, except))
        return true;
    for (unsigned i = 0; i < w->n_victims; i++)
        if (worker_has_shared(a, w->victims[i], NULL))
            return true;
    return false;
}

/* The coordinator's eventfd: a root done, the last worker ready, an inbox task done, or (on
 * a rank of a distributed run) a worker about to sleep. */
static void ring_coordinator(pareng__arena *a)
{
    uint64_t one = 1;
    while (write(a->root_done_fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/* Is `away` (a frame run by another rank that the caller waits for; NULL: none) back? The
 * coordinator's store of DONE comes before its wake (remote.c), as a publisher's work comes
 * before its wake (wake.c): read after the announce, it cannot be missed. Acquire: as
 * leapfrog's, the result is visible once DONE is (or, RETURNED, the frame is the owner's
 * again). */
static bool back_from_away(pareng_frame *away)
{
    return away && atomic_load_explicit(&away->pareng__thief, memory_order_acquire) !=
                       PARENG__THIEF_REMOTE;
}

/* Sleeps until work appears here, or `away` comes back (see back_from_away). */
static void sleep_until_work(pareng__worker *w, pareng_frame *away)
{
    pareng__arena *a = w->arena;
    uint32_t seen = pareng__sleep_announce(a);
    /* Ask every owner to share: the one with private frames shares at its next sync and,
     * seeing us counted, wakes us. */
    for (unsigned i = 0; i < w->n_victims; i++)
        for (unsigned k = 0, n = pareng__lanes_used(a, w->victims[i]); k < n; k++)
            pareng__deque_request(pareng__lane(a, w->victims[i], k));
    if (!pareng__work_visible(w, w) && !back_from_away(away) &&
        !pareng__fiber_wake_joiners()) { /* true when any fiber is ready */
        pareng__count(&w->counters, PARENG__SLEEPS, 1);
        if (a->remote) /* this rank is hungry: its coordinator asks other ranks (remote.c) */
            ring_coordinator(a);
        /* relaxed: this worker's own figure (internal.h) */
        bool io_waits = atomic_load_explicit(&pareng__lane(a, w->index, 0)->io_in_flight,
                                             memory_order_relaxed) != 0;
        pareng__observe_state(w, io_waits ? PARENG_STATE_IO : PARENG_STATE_SLEEPING);
        if (pareng__fibers_enabled())
            pareng__io_sleep(&a->epoch, seen);
        else
            pareng__futex_wait(&a->epoch, seen, 0);
    }
    pareng__sleep_retract(a);
    pareng__observe_state(w, PARENG_STATE_STEALING);
}

/* ---- stealing ---------------------------------------------------------------------------- */

/* A frame from lanes [first, end) of `worker` other than `except`, or NULL; *from: that
 * lane. */
static pareng_frame *steal_from_lanes(pareng__worker *w, unsigned worker, unsigned first,
                                      unsigned end, const pareng__worker *except,
                                      pareng__worker **from)
{
    pareng__arena *a = w->arena;
    for (unsigned k = first; k < end; k++) {
        pareng__worker *lane = pareng__lane(a, worker, k);
        if (lane == except)
            continue;
        pareng_frame *f = pareng__deque_steal(lane, w->lane_id);
        if (f) {
            *from = lane;
            return f;
        }
    }
    return NULL;
}

/* A frame from any lane of `worker` in use other than `except`, or NULL; *from: its lane. */
static pareng_frame *steal_from_worker(pareng__worker *w, unsigned worker,
                                       const pareng__worker *except, pareng__worker **from)
{
    return steal_from_lanes(w, worker, 0, pareng__lanes_used(w->arena, worker), except, from);
}

/* A steal from `worker` (this one's own other lanes are the nearest of all). */
static void took_from(pareng__worker *w, unsigned worker)
{
    pareng__count(&w->counters, PARENG__NEAR_STEALS, worker == w->index || w->near[worker]);
    pareng__observe_steal(w, worker);
}

/* The next shared frame of the lane the last one came from, or NULL. A loop of spawns
 * leaves its frames side by side there, shared as the thief asks: it takes them one after
 * another without a round over the victims, the clock reads and the changes of state
 * between, which cost a thief of microsecond tasks as much as the tasks. When there is none
 * it does not ask: the owner is probably about to publish its next frame (the child just
 * run was synced), and a request would dirty the line the owner's spawn reads; the round
 * that follows asks. */
static pareng_frame *steal_again(pareng__worker *w, pareng__worker *from)
{
    pareng_frame *f = pareng__deque_steal_shared(from, w->lane_id);
    if (f) {
        took_from(w, from->index);
        pareng__cutoff_take(w); /* perhaps of another run */
    }
    return f;
}

/* One pass over the victims, nearest level first (this worker's own suspended lanes are the
 * nearest of all); inside a level, from a random member on, so that thieves of one cache
 * domain do not all queue on the same victim. *from: the lane of the frame returned. */
static pareng_frame *steal_round(pareng__worker *w, pareng__worker **from)
{
    pareng_frame *own = steal_from_worker(w, w->index, w, from);
    if (own) {
        took_from(w, w->index);
        return own;
    }
    unsigned start = 0;
    while (start < w->n_victims) {
        unsigned end = start;
        while (end < w->n_victims && w->victim_groups[end] == w->victim_groups[start])
            end++;
        unsigned len = end - start, first = (unsigned)(pareng__random(&w->rng) % len);
        for (unsigned k = 0; k < len; k++) {
            unsigned victim = w->victims[start + (first + k) % len];
            pareng_frame *f = steal_from_worker(w, victim, NULL, from);
            if (f) {
                took_from(w, victim);
                return f;
            }
            pareng__count(&w->counters, PARENG__STEAL_FAILS, 1);
        }
        start = end;
    }
    return NULL;
}

/* What a task handed back printed with stdio is written before whoever waits for it goes on,
 * as it would be by a thread sharing the caller's stdout: a worker's stdio is its own (stdout
 * line-buffered, so what waits is a line not ended yet, or a buffered stderr), and a worker
 * ends with _exit. Only when something waits: most tasks print nothing, and __fpending reads
 * two pointers. */
static void flush_task_output(void)
{
    if (__fpending(stdout) > 0)
        fflush(stdout);
    if (__fpending(stderr) > 0)
        fflush(stderr);
}

/* A task about to run from h, taken from the root, the inbox or another deque. It reads the
 * globals as the caller wrote them before its run or post (globals.c). At the lane's base, it
 * is the one a sync below the base belongs to (synced_below_base, below). */
static void prepare_task(pareng__worker *w, pareng_frame *h, pareng_task_fn run)
{
    /* lane 0's: the copy is the process's, whichever lane takes the task */
    pareng__globals_catch_up(w->arena->globals_changes,
                             &pareng__lane(w->arena, w->index, 0)->globals_seen);
    if (h == w->base)
        w->base_task = run;
}

/* Runs a stolen frame on top of h, publishes its result, and leaves the deque as it found it:
 * empty above h, everything below stolen. */
static void run_stolen(pareng__worker *w, pareng_frame *h, pareng_frame *f)
{
    pareng__observe_state(w, PARENG_STATE_RUNNING);
    prepare_task(w, h, f->pareng__run);
    f->pareng__run(&w->pub, h, f);
    pareng__count(&w->counters, PARENG__TASKS, 1); /* counted before the owner can go on */
    flush_task_output();
    /* Release: the result stored in the frame happens-before the owner's acquire of DONE. */
    atomic_store_explicit(&f->pareng__thief, PARENG__DONE, memory_order_release);
    pareng__deque_reset(w);
    /* In an IO engine the owner may be a fiber suspended on this join, its worker asleep in
     * its ring: the futex wake ends that sleep (the DONE store is ordered before it as work is
     * before a publisher's wake, see above). */
    if (w->arena->io_depth)
        pareng__wake(w->arena, true);
}

/* A task another rank gave this one (remote.c), or NULL. */
static pareng__inbox_slot *take_inbox(pareng__arena *a)
{
    /* Relaxed: a filter; the CAS below acquires the slot's frame */
    if (atomic_load_explicit(&a->inbox_ready, memory_order_relaxed) == 0)
        return NULL;
    for (unsigned k = 0; k < PARENG__INBOX_SLOTS; k++) {
        pareng__inbox_slot *slot = &a->inbox[k];
        uint32_t ready = PARENG__INBOX_READY;
        /* Acquire pairs with the coordinator's release of READY: the frame is filled. */
        if (atomic_load_explicit(&slot->state, memory_order_relaxed) == ready &&
            atomic_compare_exchange_strong_explicit(&slot->state, &ready, PARENG__INBOX_TAKEN,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            atomic_fetch_sub_explicit(&a->inbox_ready, 1, memory_order_relaxed);
            return slot;
        }
    }
    return NULL;
}

/* Runs an inbox task on top of h, as run_stolen runs a stolen frame, and tells the
 * coordinator, which sends the result back. */
static void run_inbox(pareng__worker *w, pareng_frame *h, pareng__inbox_slot *slot)
{
    pareng__observe_state(w, PARENG_STATE_RUNNING);
    prepare_task(w, h, slot->frame.pareng__run);
    slot->frame.pareng__run(&w->pub, h, &slot->frame);
    pareng__count(&w->counters, PARENG__TASKS, 1);
    flush_task_output();
    /* Release: the result in the slot's frame happens-before the coordinator's acquire. */
    atomic_store_explicit(&slot->state, PARENG__INBOX_DONE, memory_order_release);
    pareng__deque_reset(w);
    ring_coordinator(w->arena);
}

static void backoff(unsigned *spins)
{
    /* pause first (the thief is probably about to finish); then give the core away, which is
     * what makes oversubscribed engines (more workers than cores) progress */
    if ((*spins)++ < 32)
        pareng__cpu_relax();
    else
        sched_yield();
}

/* The owner's child t runs on another rank, where no worker of this one can help it: until
 * it is done, run what this rank has (an inbox task, any stolen frame), else sleep as an
 * idle worker does, which tells the coordinator that this rank is hungry. The stack grows
 * by whatever the worker takes, as in Cilk's stalling join. */
static void help_while_away(pareng__worker *w, pareng_frame *h, pareng_frame *t)
{
    for (unsigned rounds = 0; rounds < SPIN_ROUNDS; rounds++) {
        if (back_from_away(t))
            return;
        pareng__inbox_slot *slot = take_inbox(w->arena);
        if (slot) {
            run_inbox(w, h, slot);
            return;
        }
        pareng__worker *from;
        pareng_frame *f = steal_round(w, &from);
        if (f) {
            run_stolen(w, h, f);
            return;
        }
        sched_yield();
    }
    sleep_until_work(w, t);
}

/* A frame of the thief that runs the caller's stolen child, from the lane it took the child
 * to or, in a CPU engine, a lane above it: its serial runs split into those (cutoff.c), and
 * what they hold is the child's too. NULL if none; *from: the lane. */
static pareng_frame *steal_from_thief(pareng__worker *w, pareng__worker *thief_lane,
                                      pareng__worker **from)
{
    pareng__arena *a = w->arena;
    unsigned first = thief_lane->lane_id % a->lanes_per_worker;
    unsigned end = a->io_depth ? first + 1 : pareng__lanes_used(a, thief_lane->index);
    return steal_from_lanes(w, thief_lane->index, first, end, NULL, from);
}

/* The owner's child t was stolen: until it is done, steal from its thief (Wagner & Calder's
 * leapfrogging: only from the thief, so the stack grows only by tasks the thief spawned below
 * t, and no worker ever waits idle while the work it waits on can be helped). */
static void leapfrog(pareng__worker *w, pareng_frame *h, pareng_frame *t)
{
    pareng__count(&w->counters, PARENG__STOLEN_FROM, 1);
    unsigned spins = 0;
    bool stuck = false; /* pareng__io_wait_for_fiber said so: the next fiber may be a spare */
    uint32_t thief;
    /* Acquire pairs with the thief's release of DONE: then the result is visible. */
    while ((thief = atomic_load_explicit(&t->pareng__thief, memory_order_acquire)) !=
           PARENG__DONE) {
        pareng__observe_state(w, PARENG_STATE_STEALING);
        if (thief == PARENG__THIEF_RETURNED) {
            /* taken for another rank and not sent: the owner's after all, run here on top
             * of the stack (everything below h is stolen), as run_stolen runs a frame */
            pareng__observe_state(w, PARENG_STATE_RUNNING);
            t->pareng__run(&w->pub, h, t);
            pareng__deque_reset(w);
            break;
        }
        if (thief == PARENG__THIEF_REMOTE) {
            help_while_away(w, h, t);
            continue;
        }
        pareng__worker *thief_lane = NULL;
        pareng_frame *f = thief ? steal_from_thief(w, &w->arena->lanes[thief - 1], &thief_lane)
                                : NULL; /* 0: the thief has not marked it yet */
        if (f) {
            pareng__count(&w->counters, PARENG__LEAPFROGS, 1);
            pareng__count(&w->counters, PARENG__NEAR_STEALS,
                          thief_lane->index == w->index || w->near[thief_lane->index]);
            pareng__observe_steal(w, thief_lane->index);
            run_stolen(w, h, f);
            spins = 0;
        } else if (pareng__fibers_enabled()) {
            /* The thief may be one of this worker's fibers, suspended on IO: spinning would
             * not help it, so this fiber waits and the worker goes on with others. */
            pareng__io_poll();
            stuck = !pareng__fiber_join_wait(&t->pareng__thief, stuck) &&
                    pareng__io_wait_for_fiber(w);
        } else {
            backoff(&spins);
        }
    }
    /* Ready for reuse: a free slot always reads 0. Relaxed: published with the next frame. */
    atomic_store_explicit(&t->pareng__thief, 0, memory_order_relaxed);
    pareng__observe_state(w, PARENG_STATE_RUNNING);
}

/* ---- spawn and sync slow paths ---------------------------------------------------------- */

static pareng_frame *overflow_spawn(pareng__worker *w, pareng_frame *h, pareng_task_fn run,
                                    const void *args, size_t size)
{
    pareng__overflow *ov = &w->overflow;
    size_t slot = (size_t)(h - w->pub.pareng__end);
    if (slot == ov->capacity) {
        size_t capacity = ov->capacity ? 2 * ov->capacity : 64;
        pareng_frame *slots = realloc(ov->slots, capacity * sizeof *slots);
        if (!slots)
            pareng__worker_exit(pareng__lane(w->arena, w->index, 0), PARENG__EXIT_OUT_OF_MEMORY,
                                ENOMEM);
        ov->slots = slots;
        ov->capacity = capacity;
    }
    if (slot == 0)
        pareng__deque_block_fast_sync(w);
    pareng__deque_serve_while_full(w);
    pareng__count(&w->counters, PARENG__OVERFLOWS, 1);
    ov->slots[slot].pareng__run = run; /* a sync checks whose result the slot holds */
    pareng_frame local = {.pareng__run = run};
    memcpy(local.pareng__data, args, size);
    /* Spawns inside run above h + 1, so they take the next slots and give them back. */
    run(&w->pub, h + 1, &local);
    memcpy(ov->slots[slot].pareng__data, local.pareng__data, sizeof local.pareng__data);
    return h + 1;
}

pareng_frame *pareng__spawn_slow(pareng_worker *pub, pareng_frame *h, pareng_task_fn run,
                                 const void *args, size_t size)
{
    pareng__worker *w = pareng__self(pub);
    pareng__cutoff_sample_cut(w);
    if (h >= w->pub.pareng__end)
        return overflow_spawn(w, h, run, args, size);
    pareng__deque_populate(w, h);
    if (PARENG__UNLIKELY(w->measuring))
        return pareng__measure_spawn(w, h, run, args, size);
    /* Everything below h was stolen, a thief asked for work, or h was past the mapped pages
     * (pareng__deque_push_slow). */
    h->pareng__run = run;
    memcpy(h->pareng__data, args, size);
    pareng__deque_push_slow(w, h);
    return h + 1;
}

static _Noreturn void synced_below_base(pareng_worker *pub);

pareng_frame *pareng__sync_slow(pareng_worker *pub, pareng_frame *t)
{
    pareng__worker *w = pareng__self(pub);
    if (t >= w->pub.pareng__end) {
        /* An overflowed spawn: it already ran, its result waits in its slot. */
        if (t == w->pub.pareng__end)
            pareng__deque_unblock_fast_sync(w);
        return &w->overflow.slots[t - w->pub.pareng__end];
    }
    if (PARENG__UNLIKELY(t < w->base))
        synced_below_base(pub);
    if (PARENG__UNLIKELY(w->measuring))
        return pareng__measure_sync(w, t);
    if (pareng__deque_reclaim(w, t + 1))
        return NULL; /* the caller runs t inline */
    leapfrog(w, t + 1, t);
    return t;
}

/* A task that returned with spawns it did not sync, or that synced more than it spawned or
 * another task's spawn (pareng.h's PARENG__RETURN_SYNCED and PARENG_SYNC): its frames are left
 * in the deque, or its parent's or another task's would be taken, and nothing after that can
 * be trusted, so the worker ends here and the coordinator names the task (or the helper) in
 * the run's failure (engine.c's reap), from lane 0's unsynced_name: `told` is the count left
 * unsynced, or PARENG__*SYNCED_*. What its stdio holds is written first: a port being
 * debugged prints. */
static _Noreturn void exit_unsynced(pareng__worker *lane0, int32_t told)
{
    /* Relaxed: the exit and the reap order them, as exit_errno */
    atomic_store_explicit(&lane0->unsynced_spawns, told, memory_order_relaxed);
    fflush(NULL);
    pareng__worker_exit(lane0, PARENG__EXIT_UNSYNCED, 0);
}

/* exit_unsynced with `name` (len bytes of it), cut to fit with "..." */
static _Noreturn void refuse_unsynced(pareng_worker *pub, const char *name, size_t len,
                                      int32_t told)
{
    pareng__worker *w = pareng__self(pub);
    pareng__worker *lane0 = pareng__lane(w->arena, w->index, 0);
    int room = (int)sizeof lane0->unsynced_name - 1;
    if (len <= (size_t)room)
        snprintf(lane0->unsynced_name, sizeof lane0->unsynced_name, "%.*s", (int)len, name);
    else
        snprintf(lane0->unsynced_name, sizeof lane0->unsynced_name, "%.*s...", room - 3, name);
    exit_unsynced(lane0, told);
}

/* A parallel clone's sync too many in the task at the bottom of a lane: it would take a frame
 * below the deque (a hang, or garbage run as a task), where one higher up takes its parent's
 * child and its end refuses the run. The task is named when this lane began it at its base
 * (the root, a stolen or a posted task); one split from a serial run is not. */
static _Noreturn void synced_below_base(pareng_worker *pub)
{
    pareng__worker *w = pareng__self(pub);
    const pareng__task_info *info = w->base_task ? pareng__task_find(w->base_task) : NULL;
    const char *name = info ? info->name : "(split from a serial run, or a fiber's)";
    refuse_unsynced(pub, name, strlen(name), PARENG__SYNCED_TOO_MANY);
}

void pareng__synced_other_task(pareng_worker *pub, const char *function, const char *synced,
                               pareng_task_fn spawned)
{
    pareng__worker *w = pareng__self(pub);
    pareng__worker *lane0 = pareng__lane(w->arena, w->index, 0);
    const pareng__task_info *info = pareng__task_find(spawned);
    const char *names[3] = {function, synced, info ? info->name : NULL};
    _Static_assert(sizeof names <= sizeof lane0->unsynced_name, "three pointers fit");
    memcpy(lane0->unsynced_name, names, sizeof names);
    exit_unsynced(lane0, PARENG__SYNCED_OTHER_TASK);
}

void pareng__unsynced(pareng_worker *pub, const char *task, pareng_frame *entry,
                      pareng_frame *exit, long kept)
{
    /* frames left above the head the task began with, and results left in its local slots */
    long count = (long)(exit - entry) + kept;
    refuse_unsynced(pub, task, strlen(task),
                    count < 0 ? PARENG__SYNCED_TOO_MANY : count < INT32_MAX ? (int32_t)count
                                                                            : INT32_MAX);
}

void pareng__synced_too_many(pareng_worker *pub, const char *function)
{
    bool body;
    size_t len = pareng__synced_in(function, &body);
    refuse_unsynced(pub, function, len,
                    body ? PARENG__SYNCED_TOO_MANY : PARENG__HELPER_SYNCED_TOO_MANY);
}

/* ---- the worker process ---------------------------------------------------------------- */

/* Busy and idle time. In a CPU engine a task runs from its steal to its end, so each lane adds
 * up its own spans. With fibers, a task's span also covers the fibers that ran while it was
 * suspended; so the worker adds up only its idle spans (one fiber looks for work at a time,
 * and they never overlap) and busy is the rest of its life, both kept in lane 0. Per process,
 * thread-local: see fiber.c's sched. */
static _Thread_local struct {
    uint64_t started_ns, idle_ns;
} fiber_time;

static void account_idle(pareng__worker *w, uint64_t ns)
{
    if (!pareng__fibers_enabled()) {
        pareng__count(&w->counters, PARENG__IDLE_NS, ns);
        return;
    }
    fiber_time.idle_ns += ns;
    /* Relaxed: a statistic with one writer; readers want a recent value, not an order */
    atomic_store_explicit(&pareng__lane(w->arena, w->index, 0)->counters.v[PARENG__IDLE_NS],
                          fiber_time.idle_ns, memory_order_relaxed);
}

/* A task that began at busy_since ended now; returns now. */
static uint64_t account_busy(pareng__worker *w, uint64_t busy_since)
{
    uint64_t now = pareng__now_ns();
    if (!pareng__fibers_enabled())
        pareng__count(&w->counters, PARENG__BUSY_NS, now - busy_since);
    else /* relaxed: a statistic with one writer, as in account_idle */
        atomic_store_explicit(&pareng__lane(w->arena, w->index, 0)->counters.v[PARENG__BUSY_NS],
                              now - fiber_time.started_ns - fiber_time.idle_ns,
                              memory_order_relaxed);
    return now;
}

/* The root task; its busy time is counted before the caller can read the counters. */
static uint64_t run_root(pareng__worker *w, uint64_t busy_since)
{
    pareng__arena *a = w->arena;
    pareng__observe_root_begin(w);
    prepare_task(w, w->base, a->root.pareng__run);
    a->root.pareng__run(&w->pub, w->base, &a->root);
    pareng__observe_root_end(w);
    pareng__count(&w->counters, PARENG__TASKS, 1);
    uint64_t now = account_busy(w, busy_since);
    pareng__deque_reset(w);
    pareng__spill_trim(w); /* before DONE: the caller's pareng_alloc may want that memory */
    flush_task_output();
    /* Release: the root's result is in a->root before the caller reads DONE. */
    atomic_store_explicit(&a->root_state, PARENG__ROOT_DONE, memory_order_release);
    ring_coordinator(a);
    return now;
}

static bool take_root(pareng__arena *a)
{
    uint32_t ready = PARENG__ROOT_READY;
    /* The relaxed load filters out the common case (no root) without a read-modify-write;
     * the CAS's acquire pairs with the caller's release store of READY: a->root is filled. */
    return atomic_load_explicit(&a->root_state, memory_order_relaxed) == PARENG__ROOT_READY &&
           atomic_compare_exchange_strong_explicit(&a->root_state, &ready, PARENG__ROOT_TAKEN,
                                                   memory_order_acquire, memory_order_relaxed);
}

_Noreturn void pareng__idle_loop(pareng__worker *w)
{
    pareng__arena *a = w->arena;
    bool fibers = pareng__fibers_enabled();
    uint64_t idle_since = pareng__now_ns();
    unsigned failed_rounds = 0;
    for (;;) {
        pareng__observe_state(w, PARENG_STATE_STEALING);
        /* Acquire pairs with pareng_stop's release: nothing the caller wrote before asking is
         * lost (the worker only exits, but a checker cannot tell that). */
        if (atomic_load_explicit(&a->stop, memory_order_acquire)) {
            fflush(NULL); /* the streams tasks opened or were handed, as exit would */
            _exit(0);
        }
        if (fibers) { /* tasks whose IO or join completed go first: they hold lanes and stacks */
            pareng__io_poll();
            if (pareng__fiber_any_ready()) {
                /* The search so far was idle time; the time parked will be other fibers'. */
                account_idle(w, pareng__now_ns() - idle_since);
                pareng__fiber_park_if_others_ready();
                idle_since = pareng__now_ns();
            }
        }
        pareng_frame *stolen = NULL;
        pareng__worker *from = NULL;
        pareng__inbox_slot *given = NULL;
        bool root = take_root(a);
        if (!root && !(given = take_inbox(a)))
            stolen = steal_round(w, &from);
        if (!root && !given && !stolen) {
            /* An IO engine's worker sleeps in its ring at once: a completion or new work ends
             * that sleep, where sched_yield would hand the core to another process. */
            if (!fibers && ++failed_rounds < SPIN_ROUNDS) {
                sched_yield();
            } else {
                sleep_until_work(w, NULL);
                failed_rounds = 0;
            }
            continue;
        }
        uint64_t busy_since = pareng__now_ns();
        account_idle(w, busy_since - idle_since);
        pareng__observe_state(w, PARENG_STATE_RUNNING);
        pareng__cutoff_take(w);
        if (root) {
            idle_since = run_root(w, busy_since);
        } else if (given) {
            run_inbox(w, w->base, given);
            idle_since = account_busy(w, busy_since);
        } else {
            /* Not for fibers: a fiber whose IO completed must not wait behind a loop. */
            do {
                pareng__count(&w->counters, PARENG__STEALS, 1);
                run_stolen(w, w->base, stolen);
            } while (!fibers && (stolen = steal_again(w, from)));
            idle_since = account_busy(w, busy_since);
        }
        pareng__spill_trim(w);
        failed_rounds = 0;
    }
}

_Noreturn void pareng__worker_exit(pareng__worker *lane0, int status, int err)
{
    atomic_store_explicit(&lane0->exit_errno, err, memory_order_relaxed);
    _exit(status);
}

/* The worker dies when its coordinator's process image is gone: the coordinator alone holds
 * the pipe's write end, close-on-exec, so an exec (or its death) closes it, and the kernel
 * then signals the reader (O_ASYNC, F_SETSIG: SIGKILL). PR_SET_PDEATHSIG covers only death.
 * The signal goes to the one owner of an open file description, and every worker inherited
 * the same one: each reopens the pipe through /proc to own a description of its own. */
static void die_with_the_coordinators_image(pareng__worker *lane0, int life_fd)
{
    char path[48];
    snprintf(path, sizeof path, "/proc/self/fd/%d", life_fd);
    int mine = pareng__fd_above_stdio(open(path, O_RDONLY | O_CLOEXEC));
    if (mine < 0)
        pareng__worker_exit(lane0, PARENG__EXIT_SETUP_FAILED, errno);
    close(life_fd);
    if (fcntl(mine, F_SETOWN, getpid()) < 0 || fcntl(mine, F_SETSIG, SIGKILL) < 0 ||
        fcntl(mine, F_SETFL, O_ASYNC | O_NONBLOCK) < 0)
        pareng__worker_exit(lane0, PARENG__EXIT_SETUP_FAILED, errno);
    /* The write end may have closed before O_ASYNC was set: then nobody will signal. */
    struct pollfd p = {.fd = mine, .events = POLLIN};
    if (poll(&p, 1, 0) > 0 && (p.revents & POLLHUP))
        _exit(0);
}

void pareng__worker_take_signals(void)
{
    /* The caller's handlers are not ours (a SIGTERM sent to a worker must kill it), but what
     * the caller chose to ignore stays ignored (SIGHUP under nohup). ^C goes to the whole
     * process group and the parent decides what it means. Before after_fork, so that a
     * handler the caller's after_fork installs stays. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 &&
            ((sa.sa_flags & SA_SIGINFO) ||
             (sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL)))
            signal(sig, SIG_DFL);
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- a task stack that overflows -------------------------------------------------------
 * A task that recurses too deep, or keeps too large an array on its stack, runs into the guard
 * below its stack (internal.h; arena.c, fiber.c) and dies of SIGSEGV, which alone reads as any
 * bad pointer. So does a task's write into the caller's memory, which the worker sealed
 * (caller_memory.c). The handler below looks: a fault in a guard of this worker's lanes, or
 * the program's write to what it sealed, is recorded in lane 0 for the coordinator's report
 * (engine.c's reap), and then the signal takes its default course, so the worker dies of
 * SIGSEGV as before, with the same exit status and core dump. Only a library's write of its
 * own state to what the worker sealed is let go on (caller_memory.c). It runs on a stack of
 * its own (sigaltstack), since the task's has no room left; the worker's one thread runs
 * every fiber, so one such stack serves them all. */
#define SIGNAL_STACK_BYTES ((size_t)64 << 10)

/* Async-signal-safe: reads of memory, relaxed atomic stores, mprotect, sigaction and raise. */
static void on_segv(int sig, siginfo_t *info, void *context)
{
    pareng__worker *lane0 = pareng__worker_lane0();
    /* si_code > 0: a fault the kernel raised, whose si_addr means something (a kill's holds
     * the sender's pid and uid) */
    if (lane0 && info->si_code > 0) {
        pareng__arena *a = lane0->arena;
        uintptr_t at = (uintptr_t)info->si_addr;
        /* no mapping here: the coordinator looks whether it has one (engine.c's reap) */
        int kind = info->si_code == SEGV_ACCERR   ? pareng__caller_memory_fault(at, context)
                   : info->si_code == SEGV_MAPERR ? PARENG__CALLER_MAPPED_LATER
                                                  : 0;
        if (kind < 0)
            return; /* a library's write into its own state: the page is writable now */
        if (kind) {
            atomic_store_explicit(&lane0->caller_fault_at, at, memory_order_relaxed);
            atomic_store_explicit(&lane0->caller_fault_kind, kind, memory_order_relaxed);
        }
        for (unsigned k = 0; k < a->lanes_per_worker; k++) {
            /* lanes without a stack of their own (a CPU engine's split lanes) hold NULL */
            uintptr_t stack = (uintptr_t)pareng__lane(a, lane0->index, k)->stack;
            uintptr_t guard = k == 0 ? PARENG__WORKER_GUARD_BYTES : PARENG__FIBER_GUARD_BYTES;
            if (stack && at >= stack - guard && at < stack) {
                atomic_store_explicit(&lane0->stack_overflowed, k + 1, memory_order_relaxed);
                break;
            }
        }
    }
    pareng__worker_signal_by_default(sig);
}

void pareng__worker_signal_by_default(int sig)
{
    /* The action the default again (sigaction is async-signal-safe). The signal stays blocked
     * until the handler returns: then it is delivered, in the context of the fault, and ends
     * the worker (a fault would recur anyway; a kill's would not). */
    struct sigaction by_default = {.sa_handler = SIG_DFL};
    sigaction(sig, &by_default, NULL);
    raise(sig);
}

bool pareng__worker_catches_segv(void)
{
    struct sigaction now;
    return sigaction(SIGSEGV, NULL, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
           now.sa_sigaction == on_segv;
}

void pareng__worker_catch_stack_overflow(void)
{
    /* Each worker's own copy after the fork, and no allocator's state touched; its pages are
     * taken only if a signal comes. Where sigaltstack fails, a SIGSEGV reads as any other, as
     * it did before. */
    static _Alignas(16) char signal_stack[SIGNAL_STACK_BYTES];
    stack_t alt = {.ss_sp = signal_stack, .ss_size = sizeof signal_stack};
    if (sigaltstack(&alt, NULL) < 0)
        return;
    struct sigaction sa = {.sa_sigaction = on_segv,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK};
    /* Nothing on top of it: a handler of the program's that ran inside it would fault, with
     * SIGSEGV blocked, where a library's write should have gone on (caller_memory.c). */
    sigfillset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL); /* fails only for a signal that does not exist */
}

/* The longest line a task prints to stdout that reaches it whole: a worker's buffer. */
#define TASK_LINE_MOST (64u << 10)

_Noreturn void pareng__worker_main(pareng__arena *a, unsigned index, const pareng_plan *plan,
                                   int life_fd)
{
    /* Die with the parent; it may have died between fork() and prctl(), so check once. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->owner_pid)
        _exit(0);
    die_with_the_coordinators_image(pareng__lane(a, index, 0), life_fd);
    /* Lines that tasks print go out whole, as through the one stdout that threads share: each
     * worker has a buffer of its own, and a line longer than it is written in pieces, amid
     * the others' (the 4 KiB a file's stdout has; BUFSIZ's 8 KiB cut lines of 10,000 bytes).
     * A buffer given anew: glibc keeps a stream that has written in its old mode otherwise.
     * Without one, or when the caller made stdout unbuffered (glibc's buffer of 1 byte), it
     * stays as it was. From the shared heap (the fork made malloc the task's): the caller's
     * heap is sealed later (caller_memory.c). */
    char *line_buffer = __fbufsize(stdout) == 1 ? NULL : malloc(TASK_LINE_MOST);
    if (line_buffer)
        setvbuf(stdout, line_buffer, _IOLBF, TASK_LINE_MOST);
    /* Only now, the caller's handlers reset (pareng__worker_take_signals): a signal the caller
     * had blocked must not reach the caller's handler here. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* A worker that is not where the plan says would make every figure of the run a lie
     * (and its victim order wrong): the run fails, named by engine.c, rather than go on. */
    int rc = a->pin_workers ? pareng__plan_bind(plan, index) : 0;
    if (rc < 0)
        pareng__worker_exit(pareng__lane(a, index, 0), PARENG__EXIT_NOT_PINNED, -rc);

    unsigned m = plan->n_workers - 1;
    for (unsigned k = 0; k < a->lanes_per_worker; k++) {
        pareng__worker *lane = pareng__lane(a, index, k);
        lane->victims = plan->victims + (size_t)index * (m ? m : 1);
        lane->victim_groups = plan->victim_groups + (size_t)index * (m ? m : 1);
        lane->near = plan->near + (size_t)index * plan->n_workers;
        lane->n_victims = m;
        lane->rng = 0x9e3779b97f4a7c15ull * (lane->lane_id + 1) ^ (uint64_t)getpid();
    }
    pareng__worker *w = pareng__lane(a, index, 0);
    fiber_time.started_ns = pareng__now_ns();
    if (a->io_depth &&
        ((rc = pareng__io_init(w, a->io_depth)) < 0 || (rc = pareng__fibers_init(a, index)) < 0))
        pareng__worker_exit(w, PARENG__EXIT_NO_IO, -rc);
    /* pareng_start returns when every worker is here, so that a root handed over at once
     * finds them all looking for work, none still being forked or pinned. Relaxed: a count,
     * and the eventfd's write and read order it for the coordinator. */
    if (atomic_fetch_add_explicit(&a->workers_ready, 1, memory_order_relaxed) + 1 ==
        a->n_workers)
        ring_coordinator(a);
    pareng__enter_arena_stack(w);
}
