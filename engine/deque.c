/*
 * deque.c - the work-stealing deque: one per worker, in the arena, holding task frames by value.
 *
 * The protocol is Lace's split deque (T. van Dijk, J. van de Pol, "Lace: non-fix-sized work
 * stealing with the split deque", PDP 2014), which takes the expensive parts of Chase-Lev
 * (D. Chase, Y. Lev, SPAA 2005; memory orders in N.M. Le, A. Pop, A. Cohen, F. Zappa Nardelli,
 * "Correct and efficient work-stealing for weak memory models", PPoPP 2013) off the owner's
 * fast path:
 *
 *     base        tail            split                 head        end
 *      | stolen... | shared frames | private frames ...  | free ...   |
 *
 *   - Thieves take the oldest shared frame, at tail, with one CAS on the 64-bit word
 *     tail_split. They never look above split.
 *   - The owner pushes and pops private frames with plain stores (header pareng.h, inline):
 *     no fence, no read-modify-write. That is where a Chase-Lev pop pays its seq_cst fence
 *     (Le et al., Fig. 1, take()); here it is needed only when the owner pops a shared frame.
 *   - A thief that finds no shared frame asks the owner to share (a store to the owner's
 *     private floor and spawn limit). The owner sees it on its next spawn or sync and moves
 *     split up (share); when it pops down into the shared part it moves split down again
 *     (reclaim). Both moves are a CAS on tail_split, so a thief's steal and the owner's move
 *     are ordered by the word's modification order: a frame is either stolen or reclaimed,
 *     never both. (Lace writes split with a plain 32-bit store and an mfence; a whole-word
 *     CAS costs the same on x86 and stays inside the C11 model, which has no mixed-size
 *     atomics.)
 *   - Frames are reused only after their sync, so there is no resize and no ABA on a frame's
 *     content; Le et al.'s erratum (push must reload the buffer after a resize) cannot arise.
 */
#include "internal.h"

#include <sys/mman.h>

static inline uint32_t frame_index(const pareng__worker *w, const pareng_frame *f)
{
    return (uint32_t)(f - w->base);
}

static inline uintptr_t frame_address(const pareng__worker *w, uint32_t index)
{
    return (uintptr_t)(w->base + index);
}

/* Owner: where private frames start, or past the end when none may be popped on the fast path
 * (everything below was stolen), or blocked while spawns overflow: every sync then takes the
 * slow path, which knows the frames past the end. Whoever sets the floor again (a share, a
 * served request) keeps it blocked so: a serial run that began below the end and whose
 * spawns then overflowed served a request with the floor it would have had, and the next
 * sync popped a "frame" past the end, garbage, refused as another task's spawn. */
static uintptr_t intended_floor(const pareng__worker *w)
{
    if (w->overflowing)
        return PARENG__FLOOR_BLOCKED;
    return w->all_stolen ? (uintptr_t)w->pub.pareng__end : frame_address(w, w->split);
}

/* Owner: set the private floor but keep a thief's pending request, so that the next sync still
 * takes the slow path and serves it. Relaxed: the floor orders nothing between processes; it
 * only steers the owner's own fast path, and a request needs only be seen eventually. */
static void floor_set_keeping_request(pareng__worker *w, uintptr_t floor)
{
    uintptr_t seen = atomic_load_explicit(&w->pub.pareng__private_floor, memory_order_relaxed);
    while (seen != PARENG__SHARE_REQUEST &&
           !atomic_compare_exchange_weak_explicit(&w->pub.pareng__private_floor, &seen, floor,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Owner: set the floor after a request was served (a request that arrives in between is lost
 * only until the thief's next attempt, which asks again). */
static void floor_set_serving_request(pareng__worker *w, uintptr_t floor)
{
    atomic_store_explicit(&w->pub.pareng__private_floor, floor, memory_order_relaxed);
}

/* Owner: where the spawn fast path ends. Relaxed, as the floor: a thief lowers it to ask
 * (pareng__deque_request), and a request lost to this store is still pending in the floor. */
static void spawn_limit_set(pareng__worker *w, pareng_frame *limit)
{
    __atomic_store_n(&w->pub.pareng__spawn_limit, limit, __ATOMIC_RELAXED);
}

/* Owner: where the spawn fast path ends while no thief asks: at the end of the pages
 * populated so far, so that the spawn that reaches it populates the next ones. */
static pareng_frame *unrequested_spawn_limit(const pareng__worker *w)
{
    return w->base + w->populated;
}

/* The most frames one populate maps ahead: 2 MiB of frames. */
#define POPULATE_MOST_FRAMES (32768u)

void pareng__deque_populate(pareng__worker *w, pareng_frame *h)
{
    if (h < unrequested_spawn_limit(w))
        return; /* mapped already */
    /* A loop of spawns writes one fresh page every 64 frames, and a page fault each costs
     * more than the 64 spawns (2.8 us a page on this guest, 45 ms for a loop of 10^6 spawns).
     * One madvise maps many pages at once for about two thirds of that; the span doubles
     * with the deque's depth, so a shallow tree maps no page it does not use and a loop maps
     * at most 2 MiB ahead, which is charged to shared memory only as the deque reaches it.
     * Where the kernel has no MADV_POPULATE_WRITE (before 5.14), or the memory is short,
     * pages are left to fault as they are written, which reports the same shortage; the lane
     * then stops populating for good (a hint lost costs only the faults). */
    uint32_t capacity = (uint32_t)(w->pub.pareng__end - w->base);
    uint32_t at = frame_index(w, h);
    uint32_t span = w->populated < 64 ? 64 : w->populated;
    if (span > POPULATE_MOST_FRAMES)
        span = POPULATE_MOST_FRAMES;
    uint32_t until = at + 1 > w->populated + span ? at + 1 : w->populated + span;
    if (until > capacity)
        until = capacity;
    uintptr_t page = 4096, from = (uintptr_t)(w->base + w->populated) & ~(page - 1);
    if (madvise((void *)from, (uintptr_t)(w->base + until) - from, MADV_POPULATE_WRITE) < 0)
        until = capacity;
    w->populated = until;
}

static void enter_all_stolen(pareng__worker *w)
{
    w->all_stolen = true;
    spawn_limit_set(w, w->base); /* the next spawn must publish */
    floor_set_keeping_request(w, intended_floor(w));
}

void pareng__deque_init(pareng__worker *w, pareng_frame *base, unsigned capacity)
{
    w->base = base;
    w->pub.pareng__end = base + capacity;
    w->split = 0;
    w->populated = 0;
    w->overflowing = false;
    atomic_init(&w->tail_split, pareng__ts_pack(0, 0));
    atomic_init(&w->pub.pareng__private_floor, (uintptr_t)w->pub.pareng__end);
    enter_all_stolen(w);
}

void pareng__deque_reset(pareng__worker *w)
{
    enter_all_stolen(w);
}

void pareng__deque_block_fast_sync(pareng__worker *w)
{
    w->overflowing = true;
    floor_set_keeping_request(w, intended_floor(w));
}

void pareng__deque_unblock_fast_sync(pareng__worker *w)
{
    w->overflowing = false;
    floor_set_keeping_request(w, intended_floor(w));
}

void pareng__deque_request(pareng__worker *w)
{
    /* Read first: a victim's floor line is read on its every spawn and sync, so do not dirty
     * it again. The floor sends the owner's next sync to the slow path; the spawn limit its
     * next spawn, for a loop that spawns many children before it syncs any (the thief would
     * otherwise wait for the whole loop). base is below every frame, and written before the
     * fork. */
    if (atomic_load_explicit(&w->pub.pareng__private_floor, memory_order_relaxed) !=
        PARENG__SHARE_REQUEST)
        atomic_store_explicit(&w->pub.pareng__private_floor, PARENG__SHARE_REQUEST,
                              memory_order_relaxed);
    if (__atomic_load_n(&w->pub.pareng__spawn_limit, __ATOMIC_RELAXED) != w->base)
        __atomic_store_n(&w->pub.pareng__spawn_limit, w->base, __ATOMIC_RELAXED);
}

void pareng__deque_drop_request(pareng__worker *w)
{
    floor_set_serving_request(w, intended_floor(w));
}

bool pareng__deque_has_shared(pareng__worker *w)
{
    uint64_t ts = atomic_load_explicit(&w->tail_split, memory_order_relaxed);
    return pareng__ts_tail(ts) < pareng__ts_split(ts);
}

/* Thief: the oldest shared frame of victim, or NULL; when there is none, asks the owner to
 * share if `ask`. */
static pareng_frame *steal(pareng__worker *victim, unsigned thief_lane, bool ask)
{
    /* Acquire pairs with the owner's release in share/publish: a thief that sees a frame
     * inside [tail, split) also sees the stores that filled it (Le et al.'s steal() reads top
     * with acquire for the same reason). */
    uint64_t ts = atomic_load_explicit(&victim->tail_split, memory_order_acquire);
    uint32_t tail = pareng__ts_tail(ts), split = pareng__ts_split(ts);
    if (tail >= split) {
        if (ask)
            pareng__deque_request(victim);
        return NULL;
    }
    /* The CAS decides ownership of frame `tail` against other thieves and against the
     * owner's reclaim. Acquire on success, as above: the frame's contents were published by
     * the release that made this tail_split value. */
    if (!atomic_compare_exchange_strong_explicit(&victim->tail_split, &ts,
                                                 pareng__ts_pack(tail + 1, split),
                                                 memory_order_acquire, memory_order_relaxed))
        return NULL;
    pareng_frame *f = victim->base + tail;
    /* Read before the mark is written: where this thief has not mapped the owner's page yet,
     * a read fault maps it with its neighbours that the owner already filled (the kernel's
     * fault-around), a write fault maps it alone. A loop's steals walk the owner's pages one
     * after another: 16 pages a fault instead of one. */
    (void)*(volatile pareng_task_fn *)&f->pareng__run;
    /* Relaxed: the owner reads the mark only to know whom to leapfrog on; the result is
     * ordered by the release store of PARENG__DONE. */
    atomic_store_explicit(&f->pareng__thief, thief_lane + 1, memory_order_relaxed);
    return f;
}

pareng_frame *pareng__deque_steal(pareng__worker *victim, unsigned thief_lane)
{
    return steal(victim, thief_lane, true);
}

pareng_frame *pareng__deque_steal_shared(pareng__worker *victim, unsigned thief_lane)
{
    return steal(victim, thief_lane, false);
}

/* Owner: one attempt to replace tail_split `*seen` by (its tail, new_split); on failure *seen is
 * refreshed. */
static bool try_move_split(pareng__worker *w, uint64_t *seen, uint32_t new_split,
                           memory_order success_order)
{
    if (!atomic_compare_exchange_weak_explicit(&w->tail_split, seen,
                                               pareng__ts_pack(pareng__ts_tail(*seen), new_split),
                                               success_order, memory_order_relaxed))
        return false;
    w->split = new_split;
    return true;
}

/* Owner: moves split up over the next `give` private frames and wakes a sleeper for them. */
static uint32_t share_frames(pareng__worker *w, uint32_t give)
{
    /* Release: the frames being shared were filled with plain stores; a thief's acquire of
     * this tail_split value must see them (Le et al.'s push() publishes with a release store
     * of bottom for the same reason). Thieves only move tail, which stays <= split, so the
     * loop ends as soon as no thief raced us. */
    uint64_t seen = atomic_load_explicit(&w->tail_split, memory_order_relaxed);
    while (!try_move_split(w, &seen, w->split + give, memory_order_release)) {
    }
    pareng__count(&w->counters, PARENG__SHARES, 1);
    pareng__count(&w->counters, PARENG__SPAWNS, give);
    pareng__cutoff_sample_cut(w);
    pareng__wake(w->arena, false);
    return give;
}

uint32_t pareng__deque_share(pareng__worker *w, pareng_frame *h)
{
    if (w->all_stolen)
        return 0;
    /* Keep the top frame (the one about to be synced) private; give away the older half,
     * which in divide-and-conquer code holds the bigger subproblems. */
    uint32_t private_frames = frame_index(w, h) - w->split;
    uint32_t give = private_frames / 2;
    return give ? share_frames(w, give) : 0;
}

void pareng__deque_serve_while_full(pareng__worker *w)
{
    /* A loop that fills the deque makes no sync until it ends, and only syncs serve requests:
     * without this, its frames would stay private while the owner runs every spawn past the
     * end alone. The floor stays blocked: overflowed spawns are still to be synced. Not
     * while a serial run is open: the serial clone keeps its results in frames that are no
     * tasks (pareng.h), and an overflowed spawn may run inside one. */
    if (w->serial_runs_open == 0 &&
        atomic_load_explicit(&w->pub.pareng__private_floor, memory_order_relaxed) ==
            PARENG__SHARE_REQUEST &&
        pareng__deque_share(w, w->pub.pareng__end) > 0)
        floor_set_serving_request(w, intended_floor(w));
}

void pareng__deque_share_all(pareng__worker *w, pareng_frame *h)
{
    /* Overflowed spawns wait for their syncs beyond the end (h there, or above a serial
     * run that began below it): such a lane keeps its frames until it resumes. */
    if (w->all_stolen || w->overflowing)
        return;
    uint32_t top = frame_index(w, h);
    if (top == w->split)
        return;
    share_frames(w, top - w->split);
    /* The fast path must not pop what is shared now: on resume, syncs go to reclaim. */
    floor_set_keeping_request(w, intended_floor(w));
}

static void publish(pareng__worker *w, pareng_frame *h)
{
    uint32_t index = frame_index(w, h);
    /* Everything below h was stolen and tail == split, so no thief can succeed a CAS on the
     * current value: a plain store is enough to change the word. Release: the frame at h was
     * just filled with plain stores. pareng__wake() then reads the sleeper count with a
     * read-modify-write (the publisher's half of the sleepers' handshake, see worker.c). */
    atomic_store_explicit(&w->tail_split, pareng__ts_pack(index, index + 1), memory_order_release);
    w->split = index + 1;
    w->all_stolen = false;
    spawn_limit_set(w, unrequested_spawn_limit(w));
    floor_set_keeping_request(w, intended_floor(w));
    pareng__count(&w->counters, PARENG__SPAWNS, 1);
    pareng__wake(w->arena, false);
}

void pareng__deque_push_slow(pareng__worker *w, pareng_frame *h)
{
    if (w->all_stolen) {
        publish(w, h);
        return;
    }
    /* A thief lowered the limit, or h reached the end of the mapped pages. Back up first: a
     * request that comes after this store lowers it again. The frame just written counts
     * among the private ones, and the older half goes, as a sync shares it. Not inside a
     * serial run, whose frames hold results (pareng.h). A request that gets nothing stays
     * pending for the next spawn too: its thief may be asleep by now, and will not ask
     * again. */
    spawn_limit_set(w, unrequested_spawn_limit(w));
    if (atomic_load_explicit(&w->pub.pareng__private_floor, memory_order_relaxed) !=
        PARENG__SHARE_REQUEST)
        return;
    if (w->serial_runs_open == 0 && pareng__deque_share(w, h + 1) > 0)
        floor_set_serving_request(w, intended_floor(w));
    else
        spawn_limit_set(w, h + 1);
}

bool pareng__deque_reclaim(pareng__worker *w, pareng_frame *h)
{
    /* A request is served only by a share that gives something: one that found a single
     * private frame keeps it pending, or a thief that asked once before sleeping would sleep
     * on while this owner goes on to push many. */
    if (atomic_load_explicit(&w->pub.pareng__private_floor, memory_order_relaxed) ==
            PARENG__SHARE_REQUEST &&
        pareng__deque_share(w, h) > 0)
        floor_set_serving_request(w, intended_floor(w));
    if (w->all_stolen)
        return false;
    uint32_t top = frame_index(w, h) - 1;
    if (top >= w->split)
        return true; /* private after all: the request sent us here */

    /* top == split - 1: the newest shared frame. Take the upper half of the shared part back
     * unless a thief got past top first. Relaxed on success: the reclaimed frames were never
     * handed over, so there is nothing to acquire; the CAS alone makes steal and reclaim
     * mutually exclusive. */
    uint64_t seen = atomic_load_explicit(&w->tail_split, memory_order_relaxed);
    for (;;) {
        uint32_t tail = pareng__ts_tail(seen);
        if (tail > top) {
            enter_all_stolen(w); /* tail == split: top and all below it were stolen */
            return false;
        }
        /* tail <= top = split - 1, so the new split lies in [tail, top]: top becomes private
         * and the older half of the shared frames stays shared. */
        if (try_move_split(w, &seen, tail + (w->split - tail) / 2, memory_order_relaxed))
            break;
    }
    floor_set_keeping_request(w, intended_floor(w));
    return true;
}
