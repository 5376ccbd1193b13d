/*
 * glb.c - global load balancing between ranks, with lifelines: who asks whom for work, and
 * when a rank goes quiet. The rules alone: the messages go out through the caller's send,
 * and the work through its take and accept, so that the same code balances the ranks of an
 * MPI job (remote.c) and the simulated ranks of benchmarks/glb-sim.c.
 *
 * The scheme is Saraswat, Kambadur, Kodali, Grove and Krishnamoorthy, "Lifeline-based global
 * load balancing" (PPoPP 2011), as the X10 GLB library runs it (Zhang, Tardieu, Grove et al.,
 * 2014):
 *   - a rank whose workers are hungry sends a steal request to a random rank, up to
 *     RANDOM_STEALS of them one after another, each answered with work or a refusal;
 *   - then it sends a lifeline request to each of its lifeline buddies and goes quiet: it
 *     sends nothing more until work arrives;
 *   - a rank keeps the lifeline requests it could not serve, and pushes work to those
 *     thieves as soon as it has some to give (each push answers one request).
 * The lifeline graph is the hypercube on ranks 0 .. n-1: rank r's buddies are r xor 2^k (those
 * below n). Every rank reaches 0 by clearing its bits one at a time, each step to a smaller
 * rank, so the graph is connected for any n, with degree and diameter at most log2 n: work
 * anywhere reaches a quiet rank through at most that many pushes.
 *
 * Termination needs no protocol here: a run ends when its root task returns at rank 0, and
 * every frame that crossed a rank has returned its result before that (remote.c).
 */
#include "internal.h"

#include <string.h>

/* Random victims tried before the lifelines (X10 GLB's w). */
#define RANDOM_STEALS 2u
/* The most frames one steal takes (half the inbox of the thief: room for two at once). */
#define MAX_BATCH 8u

static unsigned random_victim(pareng__glb *g)
{
    unsigned other = (unsigned)(pareng__random(&g->rng) % (g->ranks - 1));
    return other >= g->rank ? other + 1 : other;
}

void pareng__glb_init(pareng__glb *g, unsigned rank, unsigned ranks,
                      const pareng__glb_ops *ops, void *ctx)
{
    memset(g, 0, sizeof *g);
    g->rank = rank;
    g->ranks = ranks;
    g->ops = ops;
    g->ctx = ctx;
    g->rng = 0x9e3779b97f4a7c15ull * (rank + 1);
    for (unsigned bit = 1; bit < ranks && g->n_buddies < PARENG__GLB_MAX_BUDDIES; bit <<= 1)
        if ((rank ^ bit) < ranks)
            g->buddies[g->n_buddies++] = rank ^ bit;
    pareng__glb_reset(g);
}

void pareng__glb_reset(pareng__glb *g)
{
    g->state = PARENG__GLB_WORKING;
    g->attempts = 0;
    g->armed = 0;
    g->thieves = 0;
}

static int send(pareng__glb *g, unsigned to, uint32_t type, uint32_t flags, pareng__glb_msg *m)
{
    m->type = type;
    m->from = g->rank;
    m->flags = flags;
    return g->ops->send(g->ctx, to, m);
}

static int ask(pareng__glb *g, unsigned victim, uint32_t flags)
{
    pareng__glb_msg m = {0};
    if (!(flags & PARENG__GLB_LIFELINE))
        g->stats.steal_requests++;
    return send(g, victim, PARENG__MSG_STEAL, flags, &m);
}

int pareng__glb_hungry(pareng__glb *g)
{
    if (g->ranks < 2 || g->state != PARENG__GLB_WORKING)
        return 0; /* alone, or already asking, or quiet: nothing to add */
    g->state = PARENG__GLB_STEALING;
    g->attempts = 1;
    return ask(g, random_victim(g), 0);
}

void pareng__glb_busy(pareng__glb *g)
{
    /* Work came from within (a result let a waiting task go on): a later hunger asks afresh.
     * The armed lifelines stay armed. */
    if (g->state == PARENG__GLB_QUIET)
        g->state = PARENG__GLB_WORKING;
}

/* The last random victim refused: the next one, or the lifelines and quiet. */
static int refused(pareng__glb *g)
{
    g->stats.steals_refused++;
    if (g->state != PARENG__GLB_STEALING)
        return 0; /* work came meanwhile (a lifeline push) */
    if (g->attempts < RANDOM_STEALS && g->attempts < g->ranks - 1) {
        g->attempts++;
        return ask(g, random_victim(g), 0);
    }
    g->state = PARENG__GLB_QUIET;
    for (unsigned k = 0; k < g->n_buddies; k++)
        if (!(g->armed & (1u << k))) {
            int rc = ask(g, g->buddies[k], PARENG__GLB_LIFELINE);
            if (rc < 0)
                return rc;
            g->armed |= 1u << k;
        }
    return 0;
}

static int buddy_index(const pareng__glb *g, unsigned rank)
{
    for (unsigned k = 0; k < g->n_buddies; k++)
        if (g->buddies[k] == rank)
            return (int)k;
    return -1;
}

/* Work for `thief`, if the engine has some to give: half of its shared frames, as X10 GLB's
 * UTS hands a thief half of its pending nodes. One frame would do for divide and conquer,
 * whose oldest frame holds the biggest subtree, but not where frames are alike: in UTS's
 * binomial trees seven nodes in eight are leaves. 1 sent, 0 none, or -errno. */
static int give(pareng__glb *g, unsigned thief, uint32_t flags)
{
    unsigned half = (g->ops->shared(g->ctx) + 1) / 2, given = 0;
    if (half > MAX_BATCH)
        half = MAX_BATCH;
    for (; given < (half ? half : 1); given++) {
        pareng__glb_msg m = {0};
        if (!g->ops->take(g->ctx, thief, &m))
            break;
        int rc = send(g, thief, PARENG__MSG_WORK, flags, &m);
        if (rc < 0)
            return rc;
    }
    return given > 0;
}

int pareng__glb_receive(pareng__glb *g, const pareng__glb_msg *m)
{
    int k = buddy_index(g, m->from);
    switch (m->type) {
    case PARENG__MSG_STEAL: {
        int rc = give(g, m->from, m->flags & PARENG__GLB_LIFELINE);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        if (!(m->flags & PARENG__GLB_LIFELINE)) {
            pareng__glb_msg none = {0};
            return send(g, m->from, PARENG__MSG_NO_WORK, 0, &none);
        }
        if (k >= 0) /* kept until there is work to push (a lifeline request has no answer) */
            g->thieves |= 1u << k;
        return 0;
    }
    case PARENG__MSG_NO_WORK:
        return refused(g);
    case PARENG__MSG_WORK:
        if ((m->flags & PARENG__GLB_LIFELINE) && k >= 0) {
            g->armed &= ~(1u << k);
            g->stats.lifeline_pushes++;
        }
        g->state = PARENG__GLB_WORKING;
        return g->ops->accept(g->ctx, m);
    default:
        return 0;
    }
}

int pareng__glb_push(pareng__glb *g)
{
    for (unsigned k = 0; k < g->n_buddies && g->thieves; k++) {
        if (!(g->thieves & (1u << k)))
            continue;
        int rc = give(g, g->buddies[k], PARENG__GLB_LIFELINE);
        if (rc <= 0)
            return rc; /* nothing to give now: keep them all */
        g->thieves &= ~(1u << k);
    }
    return 0;
}
