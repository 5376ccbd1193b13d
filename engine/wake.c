/*
 * wake.c - the engine's one sleep/wake protocol: an event count in the arena header (epoch,
 * sleepers) that workers sleep on when they find no work, and that whoever publishes work
 * (a spawn that shares, the coordinator handing over a root, a finished join) rings.
 *
 * A sleeper reads epoch, counts itself in sleepers, re-checks for work, then futex-waits on
 * epoch. A publisher makes work visible, then reads sleepers; if non-zero, it bumps epoch and
 * wakes. Both touch sleepers with an acq_rel read-modify-write, so the two RMWs are ordered in
 * sleepers' modification order: if the publisher's comes later it reads the sleeper's count
 * and wakes it; if it comes first, the sleeper's RMW reads from it, so the publisher's earlier
 * stores (the work) happen-before the sleeper's re-check, which sees them. (Dekker's pattern
 * without standalone fences, which ThreadSanitizer cannot model.) FUTEX_WAIT compares epoch in
 * the kernel, so a bump between the sleeper's read and its wait makes the wait return at once.
 */
#include "internal.h"

#include <limits.h>

void pareng__wake(pareng__arena *arena, bool all)
{
    /* acq_rel RMW, not a load: it must take its place in sleepers' modification order (above) */
    if (atomic_fetch_add_explicit(&arena->sleepers, 0, memory_order_acq_rel) == 0)
        return;
    /* An IO worker's futex wait is an io_uring operation that may stay armed after its sleep
     * ended for another reason (a completion); a wake of one would go to that stale wait and
     * leave a real sleeper asleep. Waking all completes every armed wait, so one that is still
     * armed always waits on the current epoch. */
    all = all || arena->io_depth;
    /* relaxed: the futex word carries no data; FUTEX_WAIT re-reads it in the kernel */
    atomic_fetch_add_explicit(&arena->epoch, 1, memory_order_relaxed);
    pareng__futex_wake(&arena->epoch, all ? INT_MAX : 1);
}

uint32_t pareng__sleep_announce(pareng__arena *arena)
{
    /* relaxed: only compared by FUTEX_WAIT, which fails at once if a wake bumped it since */
    uint32_t seen = atomic_load_explicit(&arena->epoch, memory_order_relaxed);
    /* acq_rel: the sleeper's half of the pair with pareng__wake's RMW */
    atomic_fetch_add_explicit(&arena->sleepers, 1, memory_order_acq_rel);
    return seen;
}

void pareng__sleep_retract(pareng__arena *arena)
{
    /* relaxed: a publisher that still counts this worker only makes a needless wake */
    atomic_fetch_sub_explicit(&arena->sleepers, 1, memory_order_relaxed);
}
