/*
 * glb-sim - a discrete-event simulation of a distributed run on R ranks of W workers each,
 * whose ranks balance their work with engine/glb.c itself (linked from the static library,
 * not copied): the model of docs/distributed.md, and how it predicts ranks this machine
 * does not have.
 *
 *   glb-sim fib 40 --ranks 1-4 --workers 1
 *   glb-sim uts T3 --ranks 16,64,256,1024 --json
 *   glb-sim uts binomial:200:8:0.12:7 --ranks 1-16     (b0:m:q:seed, a tree of one's own)
 *
 * What is simulated, and how it follows the engine:
 *   - Work. A piece is a subtree: fib(n), or a node of a UTS tree (the real tree, SHA-1 and
 *     all, from workloads/uts.c), with a cost per node from serial runs here. A worker runs
 *     its pieces depth first and takes back the newest frame of its deque, as fib_task and
 *     uts_task do: fib(n) spawns fib(n-1) and calls fib(n-2); a UTS node spawns all its
 *     children and syncs the last first. A fib piece smaller than the grain (the serial
 *     runs of engine/cutoff.c, whose automatic cutoff keeps them between 5 and 50 us) runs
 *     whole, as its serial clone; every UTS node is a task (--cutoff none, and what
 *     cutoff.c ends up doing on binomial trees).
 *   - Laziness. A running piece is not unfolded until someone needs its frames (a thief, a
 *     share): then the frames it would have pending at that instant are put in the deque
 *     (fib: by arithmetic on the call counts; UTS: by skipping finished children by their
 *     sizes, from one walk of the tree), so a thousand ranks of fib(55) cost a few events
 *     per steal, not one per call.
 *   - Deques (engine/deque.c): the oldest frames are shared, the newest private; a thief
 *     takes only a shared frame, and one that finds none asks the owner to share, which it
 *     does at its next sync (the older half of its private frames); the owner taking back a
 *     shared frame reclaims the upper half of the shared part.
 *   - A rank: an idle worker takes an inbox task, else steals from another worker of its
 *     rank, else asks them all to share, sleeps, and rings its coordinator. The coordinator
 *     runs remote.c's serve(): messages that arrived, finished inbox tasks (RESULT), the
 *     STOP at rank 0, glb.c's hungry (a worker idle at this serve and the last, no inbox
 *     task) or else busy, glb.c's push, and the poll back-off of remote.c: 10 us after a
 *     message, doubling to 100 us while an answer or a kept lifeline waits, to 1 ms else.
 *     A message is seen when its receiver's coordinator next serves, after its latency, and
 *     each one costs its sender's and receiver's coordinator msg-cost of time.
 *   - Not simulated: the engine's own costs inside a rank beyond the steal and wake
 *     latencies, a worker blocked at the sync of a frame away (it is taken as free: the
 *     model's joins are optimistic), and the network's contention.
 *
 * Every number depends only on the arguments: the same seed gives the same output.
 */
#include "internal.h"

#include <workloads.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* remote.c's poll back-off: MIN_POLL_NS after a message, doubling up to WAITING_POLL_NS
 * while an answer is awaited or lifeline requests are kept, else up to MAX_POLL_NS (the
 * defaults of --waiting-poll-ns and --max-poll-ns) */
#define MIN_POLL_NS 10000.0
#define WAITING_POLL_NS 100000.0
#define MAX_POLL_NS 1000000.0
#define NO_RANK UINT32_MAX
#define MAX_RANKS 1024u
#define MAX_WORKERS 256u

typedef struct params {
    double node_ns;    /* a node's cost: a fib call, a UTS node */
    double grain_ns;   /* the largest piece that runs whole (a serial run) */
    double latency_ns; /* a message, from its send to its arrival */
    double msg_ns;     /* a coordinator's time to send or receive one */
    double steal_ns;   /* a steal between two workers of a rank */
    double wake_ns;    /* a sleeping worker woken, or a coordinator rung, until it runs */
    double waiting_poll_ns; /* the back-off's longest wait for an answer or a push */
    double max_poll_ns; /* the back-off's longest wait (remote.c's MAX_POLL_NS) */
    unsigned workers;
    uint64_t seed;
} params;

/* ---- the work ---------------------------------------------------------------------------- */

/* A subtree to run, and the unit (a task received from another rank, or the root) whose
 * result it is part of. */
typedef struct piece {
    workload_uts_node node; /* uts */
    uint32_t fib_n;         /* fib */
    uint32_t unit;
} piece;

/* A piece crosses ranks in a WORK message's 48 bytes, its unit in `away`. */
_Static_assert(sizeof(piece) <= PARENG_FRAME_DATA_SIZE, "a piece fits a frame's data");

typedef struct worker worker;
typedef struct sim sim;

typedef struct work_model {
    /* nodes in the subtree */
    uint64_t (*size)(sim *s, const piece *p);
    /* runs whole, as a serial clone: no frame of it is ever stealable */
    bool (*whole)(const sim *s, const piece *p);
    /* p has run `done` nodes (fewer than its size): pushes the frames pending now onto w's
     * deque and returns the piece running now, of which the first *before nodes were p's */
    piece (*unfold)(sim *s, worker *w, piece p, uint64_t done, uint64_t *before);
} work_model;

/* ---- the simulation's state --------------------------------------------------------------- */

struct worker {
    unsigned rank, index;
    piece *deque;                /* [tail, top): oldest first; [tail, split) shared */
    uint32_t tail, split, top;
    size_t capacity;
    bool share_asked;            /* a thief found nothing shared: share at the next sync */
    bool share_due;              /* an EV_SHARE is scheduled */
    bool running, asleep;
    bool idle_seen;              /* idle at its coordinator's last look (remote.c's hungry) */
    piece current;
    double started;              /* when current began (it runs size * node_ns) */
    uint64_t size;
    uint64_t version;            /* bumped when current changes: older events are stale */
};

typedef struct mail {
    double at; /* arrival */
    pareng__glb_msg m;
} mail;

typedef struct unit {
    uint64_t pending;  /* its pieces still to run, here or away at other ranks */
    uint32_t from;     /* the rank its RESULT goes to (NO_RANK: the root) */
    uint32_t parent;   /* the unit there that waits for it */
    uint32_t hops;     /* transfers between ranks from the root to it */
} unit;

typedef struct rank_state {
    pareng__glb glb;
    mail *mail;
    size_t n_mail, mail_capacity;
    piece *inbox;
    size_t inbox_head, n_inbox, inbox_capacity;
    uint32_t *results; /* units done here: RESULTs to send */
    size_t n_results, results_capacity;
    unsigned asleep;   /* workers sleeping (a share or an inbox task wakes one) */
    double poll_ns, next_serve, clock;
    uint64_t serve_version;
    bool active;
    double first_work;
    uint32_t first_hops;
    uint64_t messages, serves, tasks_sent;
} rank_state;

enum event_kind { EV_FINISH, EV_SHARE, EV_LOOK, EV_SERVE };
typedef struct event {
    double at;
    uint64_t seq; /* ties in time go in the order of scheduling: deterministic */
    uint64_t version;
    uint32_t who;
    uint8_t kind;
} event;

struct sim {
    params p;
    const work_model *model;
    const workload_uts_tree *tree;
    unsigned ranks;
    worker *workers;
    rank_state *rank;
    unit *units;
    size_t n_units, units_capacity;
    event *heap;
    size_t n_events, events_capacity;
    uint64_t seq, rng;
    uint64_t executed; /* nodes run, all workers */
    bool root_done, over;
    double makespan;
    struct glb_ctx *contexts; /* per rank */
    const struct memo *memo;  /* UTS: the sizes of big subtrees */
    workload_uts_node *stack; /* UTS: subtrees being counted */
    size_t stack_capacity;
};

static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "glb-sim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* Grows an array of `size`-byte items to hold `need`. */
static void reserve(void **items, size_t need, size_t *capacity, size_t size)
{
    if (need <= *capacity)
        return;
    size_t c = *capacity ? *capacity : 16;
    while (c < need)
        c *= 2;
    void *p = realloc(*items, c * size);
    if (!p)
        die("out of memory");
    *items = p;
    *capacity = c;
}

/* ---- fib ---------------------------------------------------------------------------------- */

/* fib_task's calls in fib(n): itself, and those of n-1 and n-2 above 2 (workloads/fib.c). */
static uint64_t fib_calls(uint32_t n)
{
    uint64_t a = 1, b = 1; /* calls(0), calls(1) */
    for (uint32_t k = 2; k <= n; k++) {
        uint64_t c = k <= 2 ? 1 : 1 + a + b;
        a = b;
        b = c;
    }
    return n == 0 ? a : b;
}

static uint64_t fib_size(sim *s, const piece *p)
{
    (void)s;
    return fib_calls(p->fib_n);
}

static bool fib_whole(const sim *s, const piece *p)
{
    return p->fib_n <= 2 || (double)fib_calls(p->fib_n) * s->p.node_ns <= s->p.grain_ns;
}

static void push_frame(sim *s, worker *w, piece p);

/* fib(n) runs its own call, then fib(n-2) with fib(n-1) spawned, then fib(n-1). */
static piece fib_unfold(sim *s, worker *w, piece p, uint64_t done, uint64_t *before)
{
    *before = 0;
    while (!fib_whole(s, &p) && done >= 1) {
        done -= 1;
        *before += 1;
        uint64_t second = fib_calls(p.fib_n - 2);
        if (done < second) {
            push_frame(s, w, (piece){.fib_n = p.fib_n - 1, .unit = p.unit});
            p.fib_n -= 2;
        } else {
            done -= second;
            *before += second;
            p.fib_n -= 1;
        }
    }
    return p;
}

static const work_model fib_model = {fib_size, fib_whole, fib_unfold};

/* ---- UTS ---------------------------------------------------------------------------------- */

/* The size of every subtree of at least MEMO_MIN nodes, from one walk of the whole tree, so
 * that the size of any subtree costs at most a walk of MEMO_MIN nodes. Keyed by the first 8
 * bytes of a node's SHA-1 state. */
#define MEMO_MIN 64u
typedef struct memo {
    uint64_t *keys, *sizes; /* key 0: an empty slot */
    size_t mask, used;
} memo;

static uint64_t node_key(const workload_uts_node *n)
{
    uint64_t k;
    memcpy(&k, n->state, sizeof k);
    return k ? k : 1;
}

static void memo_put(memo *m, uint64_t key, uint64_t size);

static void memo_grow(memo *m)
{
    memo bigger = {.mask = m->mask ? 2 * m->mask + 1 : 4095};
    bigger.keys = calloc(bigger.mask + 1, sizeof *bigger.keys);
    bigger.sizes = calloc(bigger.mask + 1, sizeof *bigger.sizes);
    if (!bigger.keys || !bigger.sizes)
        die("out of memory");
    for (size_t k = 0; m->keys && k <= m->mask; k++)
        if (m->keys[k])
            memo_put(&bigger, m->keys[k], m->sizes[k]);
    free(m->keys);
    free(m->sizes);
    *m = bigger;
}

static void memo_put(memo *m, uint64_t key, uint64_t size)
{
    if (2 * (m->used + 1) > m->mask)
        memo_grow(m);
    size_t k = (size_t)(key * 0x9e3779b97f4a7c15ull) & m->mask;
    while (m->keys[k] && m->keys[k] != key)
        k = (k + 1) & m->mask;
    m->used += !m->keys[k];
    m->keys[k] = key;
    m->sizes[k] = size;
}

static uint64_t memo_get(const memo *m, uint64_t key)
{
    if (!m->keys)
        return 0;
    size_t k = (size_t)(key * 0x9e3779b97f4a7c15ull) & m->mask;
    for (; m->keys[k]; k = (k + 1) & m->mask)
        if (m->keys[k] == key)
            return m->sizes[k];
    return 0;
}

typedef struct visit {
    workload_uts_node node;
    unsigned next, children;
    uint64_t size;
} visit;

/* One walk of the tree: the sizes of its big subtrees into m; returns the tree's size. */
static uint64_t memo_build(memo *m, const workload_uts_tree *tree)
{
    visit *stack = NULL;
    size_t n = 0, capacity = 0;
    reserve((void **)&stack, 1, &capacity, sizeof *stack);
    workload_uts_node root = workload_uts_root(tree);
    stack[n++] = (visit){.node = root, .children = workload_uts_children(tree, &root), .size = 1};
    uint64_t total = 0;
    while (n > 0) {
        visit *v = &stack[n - 1];
        if (v->next < v->children) {
            workload_uts_node c = workload_uts_child(&v->node, v->next++);
            reserve((void **)&stack, n + 1, &capacity, sizeof *stack);
            stack[n++] = (visit){.node = c, .children = workload_uts_children(tree, &c),
                                 .size = 1};
            continue;
        }
        if (v->size >= MEMO_MIN)
            memo_put(m, node_key(&v->node), v->size);
        total = v->size;
        if (--n > 0)
            stack[n - 1].size += total;
    }
    free(stack);
    return total;
}

static workload_uts_node *stack_room(sim *s, size_t need)
{
    reserve((void **)&s->stack, need, &s->stack_capacity, sizeof *s->stack);
    return s->stack;
}

static uint64_t uts_node_size(sim *s, const workload_uts_node *top)
{
    uint64_t nodes = memo_get(s->memo, node_key(top));
    if (nodes)
        return nodes;
    size_t n = 0;
    stack_room(s, 1)[n++] = *top;
    while (n > 0) {
        workload_uts_node x = s->stack[--n];
        uint64_t known = n > 0 || nodes > 0 ? memo_get(s->memo, node_key(&x)) : 0;
        if (known) {
            nodes += known;
            continue;
        }
        nodes++;
        unsigned k = workload_uts_children(s->tree, &x);
        stack_room(s, n + k);
        for (unsigned i = 0; i < k; i++)
            s->stack[n++] = workload_uts_child(&x, i);
    }
    return nodes;
}

static uint64_t uts_size(sim *s, const piece *p)
{
    return uts_node_size(s, &p->node);
}

static bool uts_whole(const sim *s, const piece *p)
{
    (void)s;
    (void)p;
    return false;
}

/* uts_task runs its node, spawns every child, then syncs them newest first: the children
 * that finished are skipped whole, the one running is entered, the older ones are pending. */
static piece uts_unfold(sim *s, worker *w, piece p, uint64_t done, uint64_t *before)
{
    *before = 0;
    while (done > 0) {
        done--;
        *before += 1;
        unsigned i = workload_uts_children(s->tree, &p.node);
        workload_uts_node c = workload_uts_child(&p.node, --i);
        for (uint64_t size; (size = uts_node_size(s, &c)) <= done;) {
            done -= size;
            *before += size;
            c = workload_uts_child(&p.node, --i); /* done < p's size: one child is running */
        }
        for (unsigned k = 0; k < i; k++)
            push_frame(s, w, (piece){.node = workload_uts_child(&p.node, k), .unit = p.unit});
        p.node = c;
    }
    return p;
}

static const work_model uts_model = {uts_size, uts_whole, uts_unfold};

/* ---- events ------------------------------------------------------------------------------- */

static bool earlier(const event *a, const event *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void schedule(sim *s, double at, enum event_kind kind, uint32_t who, uint64_t version)
{
    reserve((void **)&s->heap, s->n_events + 1, &s->events_capacity, sizeof *s->heap);
    event e = {.at = at, .seq = s->seq++, .version = version, .who = who, .kind = (uint8_t)kind};
    size_t i = s->n_events++;
    while (i > 0 && earlier(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static event next_event(sim *s)
{
    event top = s->heap[0], last = s->heap[--s->n_events];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_events)
            break;
        if (c + 1 < s->n_events && earlier(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!earlier(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_events > 0)
        s->heap[i] = last;
    return top;
}

/* ---- units: what waits for whose result --------------------------------------------------- */

/* A unit of one piece, given by rank `from` (its unit `parent`), or the root's. */
static uint32_t new_unit(sim *s, uint32_t from, uint32_t parent)
{
    reserve((void **)&s->units, s->n_units + 1, &s->units_capacity, sizeof *s->units);
    uint32_t hops = from == NO_RANK ? 0 : s->units[parent].hops + 1;
    s->units[s->n_units] = (unit){.pending = 1, .from = from, .parent = parent, .hops = hops};
    return (uint32_t)s->n_units++;
}

/* A coordinator is rung (a worker's eventfd): it serves soon, whatever its back-off. */
static void ring(sim *s, unsigned r, double now)
{
    rank_state *rs = &s->rank[r];
    double at = now + s->p.wake_ns;
    if (at < rs->next_serve) {
        rs->next_serve = at;
        schedule(s, at, EV_SERVE, r, ++rs->serve_version);
    }
}

/* One piece of unit u is over on rank r. */
static void unit_less(sim *s, uint32_t u, unsigned r, double now)
{
    if (--s->units[u].pending > 0)
        return;
    if (s->units[u].from == NO_RANK) {
        s->root_done = true;
    } else {
        rank_state *rs = &s->rank[r];
        reserve((void **)&rs->results, rs->n_results + 1, &rs->results_capacity,
                sizeof *rs->results);
        rs->results[rs->n_results++] = u;
    }
    ring(s, r, now); /* run_inbox and the root's worker ring the coordinator */
}

/* ---- workers ------------------------------------------------------------------------------ */

static worker *worker_of(sim *s, unsigned r, unsigned i)
{
    return &s->workers[(size_t)r * s->p.workers + i];
}

static void push_frame(sim *s, worker *w, piece p)
{
    reserve((void **)&w->deque, (size_t)w->top + 1, &w->capacity, sizeof *w->deque);
    w->deque[w->top++] = p;
    s->units[p.unit].pending++;
}

static void share_soon(sim *s, worker *w, double now);

static void start(sim *s, worker *w, piece p, double at)
{
    w->running = true;
    w->current = p;
    w->started = at;
    w->size = s->model->size(s, &p);
    schedule(s, at + (double)w->size * s->p.node_ns, EV_FINISH, (uint32_t)(w - s->workers),
             ++w->version);
    rank_state *rs = &s->rank[w->rank];
    if (rs->first_work < 0) {
        rs->first_work = at;
        rs->first_hops = s->units[p.unit].hops;
    }
    share_soon(s, w, at); /* a request waits for the owner's next sync, in whatever piece */
}

/* The frames w's running piece has pending at `now` go into its deque (private). */
static void unfold(sim *s, worker *w, double now)
{
    if (!w->running || s->model->whole(s, &w->current) || now <= w->started)
        return;
    uint64_t done = (uint64_t)((now - w->started) / s->p.node_ns);
    if (done >= w->size)
        done = w->size - 1; /* its finish is due at this instant: nothing is left pending */
    uint64_t before = 0;
    piece running = s->model->unfold(s, w, w->current, done, &before);
    if (before == 0)
        return; /* still in its first node: nothing pushed yet */
    s->executed += before;
    start(s, w, running, w->started + (double)before * s->p.node_ns);
}

/* The oldest shared frame of w, for a thief. */
static bool steal_frame(worker *w, piece *out)
{
    if (w->split <= w->tail)
        return false;
    *out = w->deque[w->tail++];
    if (w->tail == w->top)
        w->tail = w->split = w->top = 0;
    return true;
}

static void wake_one(sim *s, unsigned r, double now)
{
    for (unsigned i = 0; i < s->p.workers; i++) {
        worker *w = worker_of(s, r, i);
        if (w->asleep) {
            w->asleep = false;
            s->rank[r].asleep--;
            schedule(s, now + s->p.wake_ns, EV_LOOK, (uint32_t)(w - s->workers), 0);
            return;
        }
    }
}

/* A share asked of w happens at its next sync: the end of its serial run (finish), or its
 * next node when its piece is a task's. */
static void share_soon(sim *s, worker *w, double now)
{
    if (w->share_asked && !w->share_due && w->running && !s->model->whole(s, &w->current)) {
        w->share_due = true;
        schedule(s, fmax(now, w->started) + s->p.node_ns, EV_SHARE,
                 (uint32_t)(w - s->workers), 0);
    }
}

/* deque.c's share, at the owner's sync: the older half of its private frames below the one
 * being synced. */
static void share(sim *s, worker *w, double now)
{
    if (!w->share_asked)
        return;
    unfold(s, w, now);
    uint32_t give = w->top > w->split ? (w->top - w->split - 1) / 2 : 0;
    if (give == 0) { /* a request is served only by a share that gives something */
        share_soon(s, w, now);
        return;
    }
    w->split += give;
    w->share_asked = false;
    wake_one(s, w->rank, now);
}

/* A thief found nothing shared at w. */
static void ask_share(sim *s, worker *w, double now)
{
    if (!w->running || w->share_asked)
        return;
    w->share_asked = true;
    unfold(s, w, now);
    share_soon(s, w, now);
}

/* An idle worker: an inbox task, a frame of another worker, or sleep. */
static void look(sim *s, worker *w, double now)
{
    rank_state *rs = &s->rank[w->rank];
    if (rs->n_inbox > 0) {
        piece given = rs->inbox[rs->inbox_head++];
        if (--rs->n_inbox == 0)
            rs->inbox_head = 0;
        start(s, w, given, now);
        return;
    }
    unsigned n = s->p.workers;
    for (unsigned k = 1; k < n; k++) {
        worker *v = worker_of(s, w->rank, (w->index + k) % n);
        piece p;
        if (steal_frame(v, &p)) {
            start(s, w, p, now + s->p.steal_ns);
            return;
        }
    }
    for (unsigned k = 1; k < n; k++)
        ask_share(s, worker_of(s, w->rank, (w->index + k) % n), now);
    w->asleep = true;
    rs->asleep++;
    ring(s, w->rank, now);
}

static void finish(sim *s, worker *w, double now)
{
    s->executed += w->size;
    w->running = false;
    uint32_t u = w->current.unit;
    share(s, w, now);
    if (w->top > w->tail) {
        if (w->split == w->top) /* deque.c's reclaim: the upper half of the shared part */
            w->split = w->tail + (w->split - w->tail) / 2;
        piece next = w->deque[--w->top];
        if (w->top == w->tail)
            w->tail = w->split = w->top = 0;
        start(s, w, next, now); /* counted as a frame, now as running: the same count */
    }
    unit_less(s, u, w->rank, now);
    if (!w->running)
        look(s, w, now);
}

/* ---- the coordinators, with glb.c --------------------------------------------------------- */

/* glb.c's ctx: a rank of the simulation */
typedef struct glb_ctx {
    sim *s;
    unsigned rank;
} glb_ctx;

static int sim_send(void *ctx, unsigned to, pareng__glb_msg *m)
{
    glb_ctx *c = ctx;
    sim *s = c->s;
    rank_state *from = &s->rank[c->rank], *dest = &s->rank[to];
    from->clock += s->p.msg_ns;
    from->messages++;
    from->active = true;
    reserve((void **)&dest->mail, dest->n_mail + 1, &dest->mail_capacity, sizeof *dest->mail);
    dest->mail[dest->n_mail++] = (mail){.at = from->clock + s->p.latency_ns, .m = *m};
    return 0;
}

/* remote.c's shared: the frames between tail and split, every worker's. */
static unsigned sim_shared(void *ctx)
{
    glb_ctx *c = ctx;
    unsigned frames = 0;
    for (unsigned i = 0; i < c->s->p.workers; i++) {
        const worker *w = worker_of(c->s, c->rank, i);
        frames += w->split > w->tail ? w->split - w->tail : 0;
    }
    return frames;
}

/* remote.c's take: the oldest shared frame of some worker, from a random first one; a worker
 * with none is asked to share. */
static bool sim_take(void *ctx, unsigned thief, pareng__glb_msg *m)
{
    (void)thief;
    glb_ctx *c = ctx;
    sim *s = c->s;
    rank_state *rs = &s->rank[c->rank];
    unsigned n = s->p.workers, first = (unsigned)(pareng__random(&s->rng) % n);
    for (unsigned k = 0; k < n; k++) {
        worker *w = worker_of(s, c->rank, (first + k) % n);
        piece given;
        if (!steal_frame(w, &given)) {
            ask_share(s, w, rs->clock);
            continue;
        }
        m->away = given.unit; /* it stays counted there until its RESULT */
        memcpy(m->data, &given, sizeof given);
        rs->tasks_sent++;
        return true;
    }
    return false;
}

static int sim_accept(void *ctx, const pareng__glb_msg *m)
{
    glb_ctx *c = ctx;
    sim *s = c->s;
    rank_state *rs = &s->rank[c->rank];
    piece given;
    memcpy(&given, m->data, sizeof given);
    given.unit = new_unit(s, m->from, (uint32_t)m->away);
    reserve((void **)&rs->inbox, rs->inbox_head + rs->n_inbox + 1, &rs->inbox_capacity,
            sizeof *rs->inbox);
    rs->inbox[rs->inbox_head + rs->n_inbox++] = given;
    wake_one(s, c->rank, rs->clock);
    return 0;
}

static const pareng__glb_ops sim_ops = {sim_send, sim_shared, sim_take, sim_accept};

static void receive(sim *s, unsigned r, const pareng__glb_msg *m)
{
    rank_state *rs = &s->rank[r];
    rs->clock += s->p.msg_ns;
    rs->active = true;
    if (m->type == PARENG__MSG_RESULT) {
        unit *u = &s->units[m->away];
        if (u->pending == 0)
            die("a RESULT for unit %llu, which waits for none", (unsigned long long)m->away);
        unit_less(s, (uint32_t)m->away, r, rs->clock);
    } else if (pareng__glb_receive(&rs->glb, m) < 0) {
        die("glb.c failed at rank %u", r);
    }
}

/* remote.c's hungry: a worker idle at this look and the last, and no inbox task waiting. */
static bool hungry(sim *s, unsigned r)
{
    bool idle_twice = false;
    for (unsigned i = 0; i < s->p.workers; i++) {
        worker *w = worker_of(s, r, i);
        idle_twice = idle_twice || (!w->running && w->idle_seen);
        w->idle_seen = !w->running;
    }
    return idle_twice && s->rank[r].n_inbox == 0;
}

/* remote.c's serve(), at `now`. */
static void serve(sim *s, unsigned r, double now)
{
    rank_state *rs = &s->rank[r];
    rs->serves++;
    rs->clock = now;
    rs->active = false;
    /* What arrived; receiving sends only to other ranks, so this list does not move. */
    size_t kept = 0;
    for (size_t k = 0; k < rs->n_mail; k++) {
        if (rs->mail[k].at <= now) {
            pareng__glb_msg m = rs->mail[k].m;
            receive(s, r, &m);
        } else {
            rs->mail[kept++] = rs->mail[k];
        }
    }
    rs->n_mail = kept;
    for (size_t k = 0; k < rs->n_results; k++) {
        const unit *u = &s->units[rs->results[k]];
        pareng__glb_msg m = {.type = PARENG__MSG_RESULT, .from = r, .away = u->parent};
        sim_send(&s->contexts[r], u->from, &m);
    }
    rs->n_results = 0;
    if (r == 0 && s->root_done) {
        rs->messages += s->ranks - 1; /* the STOPs */
        s->makespan = rs->clock + (double)(s->ranks - 1) * s->p.msg_ns;
        s->over = true;
        return;
    }
    if (!hungry(s, r))
        pareng__glb_busy(&rs->glb);
    else if (pareng__glb_hungry(&rs->glb) < 0)
        die("glb.c failed at rank %u", r);
    if (pareng__glb_push(&rs->glb) < 0)
        die("glb.c failed at rank %u", r);
    double slowest = rs->glb.state == PARENG__GLB_STEALING || rs->glb.thieves
                         ? fmin(s->p.waiting_poll_ns, s->p.max_poll_ns)
                         : s->p.max_poll_ns;
    rs->poll_ns = rs->active ? MIN_POLL_NS : fmin(2 * rs->poll_ns, slowest);
    rs->next_serve = rs->clock + rs->poll_ns;
    schedule(s, rs->next_serve, EV_SERVE, r, ++rs->serve_version);
}

/* ---- one run ------------------------------------------------------------------------------ */

typedef struct outcome {
    unsigned ranks, workers;
    uint64_t tree_nodes, executed;
    double makespan_s, efficiency;
    double messages_per_rank, serves_per_rank_per_ms;
    uint64_t messages_max, steal_requests, steals_refused, lifeline_pushes, tasks_moved;
    double last_first_work_s;
    uint32_t max_hops;
    uint64_t events;
} outcome;

static outcome simulate(const params *p, const work_model *model,
                        const workload_uts_tree *tree, const memo *sizes, const piece *root,
                        uint64_t tree_nodes, unsigned ranks)
{
    sim s = {.p = *p, .model = model, .tree = tree, .memo = sizes, .ranks = ranks,
             .rng = p->seed * 0x9e3779b97f4a7c15ull + 1};
    s.workers = calloc((size_t)ranks * p->workers, sizeof *s.workers);
    s.rank = calloc(ranks, sizeof *s.rank);
    s.contexts = calloc(ranks, sizeof *s.contexts);
    if (!s.workers || !s.rank || !s.contexts)
        die("out of memory");
    for (unsigned r = 0; r < ranks; r++) {
        s.contexts[r] = (glb_ctx){.s = &s, .rank = r};
        rank_state *rs = &s.rank[r];
        pareng__glb_init(&rs->glb, r, ranks, &sim_ops, &s.contexts[r]);
        rs->poll_ns = MIN_POLL_NS;
        rs->first_work = -1;
        rs->next_serve = 0;
        schedule(&s, 0, EV_SERVE, r, rs->serve_version); /* watch() serves from the start */
        for (unsigned i = 0; i < p->workers; i++)
            *worker_of(&s, r, i) = (worker){.rank = r, .index = i};
    }
    piece first = *root;
    first.unit = new_unit(&s, NO_RANK, 0);
    start(&s, worker_of(&s, 0, 0), first, 0);
    for (size_t k = 1; k < (size_t)ranks * p->workers; k++)
        look(&s, &s.workers[k], 0);
    uint64_t events = 0;
    while (!s.over) {
        if (s.n_events == 0)
            die("no event left and the root is not done: the model lost work");
        event e = next_event(&s);
        events++;
        switch (e.kind) {
        case EV_FINISH:
            if (e.version == s.workers[e.who].version)
                finish(&s, &s.workers[e.who], e.at);
            break;
        case EV_SHARE:
            s.workers[e.who].share_due = false;
            share(&s, &s.workers[e.who], e.at);
            break;
        case EV_LOOK:
            if (!s.workers[e.who].running && !s.workers[e.who].asleep)
                look(&s, &s.workers[e.who], e.at);
            break;
        case EV_SERVE:
            if (e.version == s.rank[e.who].serve_version)
                serve(&s, e.who, e.at);
            break;
        }
    }
    outcome o = {.ranks = ranks, .workers = p->workers, .tree_nodes = tree_nodes,
                 .executed = s.executed, .makespan_s = s.makespan * 1e-9, .events = events};
    o.efficiency = (double)tree_nodes * p->node_ns / ((double)ranks * p->workers * s.makespan);
    uint64_t messages = 0;
    double serves = 0;
    for (unsigned r = 0; r < ranks; r++) {
        const rank_state *rs = &s.rank[r];
        messages += rs->messages;
        serves += (double)rs->serves;
        o.messages_max = rs->messages > o.messages_max ? rs->messages : o.messages_max;
        o.steal_requests += rs->glb.stats.steal_requests;
        o.steals_refused += rs->glb.stats.steals_refused;
        o.lifeline_pushes += rs->glb.stats.lifeline_pushes;
        o.tasks_moved += rs->tasks_sent;
        double first = rs->first_work < 0 ? s.makespan : rs->first_work;
        o.last_first_work_s = fmax(o.last_first_work_s, first * 1e-9);
        o.max_hops = rs->first_hops > o.max_hops ? rs->first_hops : o.max_hops;
    }
    o.messages_per_rank = (double)messages / ranks;
    o.serves_per_rank_per_ms = serves / ranks / (s.makespan * 1e-6);
    for (size_t k = 0; k < (size_t)ranks * p->workers; k++)
        free(s.workers[k].deque);
    for (unsigned r = 0; r < ranks; r++) {
        free(s.rank[r].mail);
        free(s.rank[r].inbox);
        free(s.rank[r].results);
    }
    free(s.workers);
    free(s.rank);
    free(s.units);
    free(s.heap);
    free(s.stack);
    free(s.contexts);
    return o;
}

/* ---- the command line --------------------------------------------------------------------- */

static const char usage[] =
    "usage: glb-sim fib N | uts TREE | uts binomial:B0:M:Q:SEED [options]\n"
    "  --ranks LIST      ranks to simulate: 1-4, 16,64,256,1024 (default 1-4)\n"
    "  --workers W       workers per rank (default 1)\n"
    "  --node-ns T       a node's cost (default: fib 0.36, uts 80: serial fib(40), T3 here)\n"
    "  --grain-ns T      the largest piece run whole (serial runs; default 20000)\n"
    "  --latency-ns T    a message's latency (default 2000)\n"
    "  --msg-ns T        a coordinator's cost to send or receive a message (default 1000)\n"
    "  --steal-ns T      a steal inside a rank (default 1000)\n"
    "  --wake-ns T       a sleeping worker or a rung coordinator until it runs (default 5000)\n"
    "  --waiting-poll-ns T  its longest while stealing or holding lifelines (100000)\n"
    "  --max-poll-ns T   the poll back-off's longest wait (default remote.c's, 1000000)\n"
    "  --seed S          the victims' random numbers (default 1)\n"
    "  --json            one JSON object per line instead of the table\n";

static double number(const char *option, const char *text, double low, double high)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= low && v <= high))
        die("%s %s: a number from %g to %g", option, text, low, high);
    return v;
}

/* "1-4" or "16,64,256": the ranks, in order, into list; returns their count. */
static size_t rank_list(const char *text, unsigned *list, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        unsigned long low = strtoul(p, &end, 10), high = low;
        if (end == p)
            break;
        if (*end == '-') {
            p = end + 1;
            high = strtoul(p, &end, 10);
            if (end == p)
                break;
        }
        if (low < 1 || high < low || high > MAX_RANKS || n + (high - low + 1) > max)
            die("--ranks %s: ranks from 1 to %u", text, MAX_RANKS);
        for (unsigned long r = low; r <= high; r++)
            list[n++] = (unsigned)r;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            break;
    }
    if (*p || n == 0)
        die("--ranks %s: a list such as 1-4 or 16,64,256", text);
    return n;
}

static workload_uts_tree own_tree;

static const workload_uts_tree *tree_named(const char *name)
{
    const workload_uts_tree *t = workload_uts_find(name);
    if (t)
        return t;
    double b0, q;
    int m, seed, used = 0;
    if (sscanf(name, "binomial:%lf:%d:%lf:%d%n", &b0, &m, &q, &seed, &used) != 4 ||
        name[used])
        die("uts %s: a tree of UTS (T1, T1L, T2, T3, T3L, T5) or binomial:B0:M:Q:SEED", name);
    own_tree = (workload_uts_tree){.name = name, .type = WORKLOAD_UTS_BINOMIAL, .b0 = b0,
                                   .q = q, .m = m, .seed = seed};
    return &own_tree;
}

static void print_outcome(const outcome *o, const char *workload, bool json)
{
    if (json) {
        printf("{\"workload\":\"%s\",\"ranks\":%u,\"workers\":%u,\"tree_nodes\":%llu,"
               "\"nodes_run\":%llu,\"makespan_s\":%.6f,\"efficiency\":%.4f,"
               "\"messages_per_rank\":%.1f,\"messages_max\":%llu,\"steal_requests\":%llu,"
               "\"steals_refused\":%llu,\"lifeline_pushes\":%llu,\"tasks_moved\":%llu,"
               "\"last_first_work_s\":%.6f,\"max_hops\":%u,\"serves_per_rank_per_ms\":%.1f,"
               "\"events\":%llu}\n",
               workload, o->ranks, o->workers, (unsigned long long)o->tree_nodes,
               (unsigned long long)o->executed, o->makespan_s, o->efficiency,
               o->messages_per_rank, (unsigned long long)o->messages_max,
               (unsigned long long)o->steal_requests, (unsigned long long)o->steals_refused,
               (unsigned long long)o->lifeline_pushes, (unsigned long long)o->tasks_moved,
               o->last_first_work_s, o->max_hops, o->serves_per_rank_per_ms,
               (unsigned long long)o->events);
        return;
    }
    printf("%6u %3u %11.4f %6.3f %9.1f %8llu %9llu %8llu %9llu %7llu %10.3f %4u %7.1f\n",
           o->ranks, o->workers, o->makespan_s, o->efficiency, o->messages_per_rank,
           (unsigned long long)o->messages_max, (unsigned long long)o->steal_requests,
           (unsigned long long)o->steals_refused, (unsigned long long)o->lifeline_pushes,
           (unsigned long long)o->tasks_moved, o->last_first_work_s * 1e3, o->max_hops,
           o->serves_per_rank_per_ms);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        die("%s", usage);
    params p = {.node_ns = 0, .grain_ns = 20000, .latency_ns = 2000, .msg_ns = 1000,
                .steal_ns = 1000, .wake_ns = 5000, .waiting_poll_ns = WAITING_POLL_NS,
                .max_poll_ns = MAX_POLL_NS, .workers = 1,
                .seed = 1};
    unsigned ranks[MAX_RANKS];
    size_t n_ranks = rank_list("1-4", ranks, MAX_RANKS);
    bool json = false;
    for (int k = 3; k < argc; k++) {
        const char *o = argv[k], *v = k + 1 < argc ? argv[k + 1] : NULL;
        if (strcmp(o, "--json") == 0) {
            json = true;
            continue;
        }
        if (!v)
            die("%s needs a value\n%s", o, usage);
        k++;
        if (strcmp(o, "--ranks") == 0)
            n_ranks = rank_list(v, ranks, MAX_RANKS);
        else if (strcmp(o, "--workers") == 0)
            p.workers = (unsigned)number(o, v, 1, MAX_WORKERS);
        else if (strcmp(o, "--node-ns") == 0)
            p.node_ns = number(o, v, 0.01, 1e9);
        else if (strcmp(o, "--grain-ns") == 0)
            p.grain_ns = number(o, v, 0, 1e12);
        else if (strcmp(o, "--latency-ns") == 0)
            p.latency_ns = number(o, v, 0, 1e12);
        else if (strcmp(o, "--msg-ns") == 0)
            p.msg_ns = number(o, v, 0, 1e12);
        else if (strcmp(o, "--steal-ns") == 0)
            p.steal_ns = number(o, v, 0, 1e12);
        else if (strcmp(o, "--wake-ns") == 0)
            p.wake_ns = number(o, v, 0, 1e12);
        else if (strcmp(o, "--waiting-poll-ns") == 0)
            p.waiting_poll_ns = number(o, v, MIN_POLL_NS, 1e12);
        else if (strcmp(o, "--max-poll-ns") == 0)
            p.max_poll_ns = number(o, v, MIN_POLL_NS, 1e12);
        else if (strcmp(o, "--seed") == 0)
            p.seed = (uint64_t)number(o, v, 0, 1e18);
        else
            die("unknown option %s\n%s", o, usage);
    }
    const work_model *model;
    const workload_uts_tree *tree = NULL;
    piece root = {.fib_n = 0};
    uint64_t tree_nodes;
    memo sizes = {.mask = 0};
    char workload[80];
    if (strcmp(argv[1], "fib") == 0) {
        model = &fib_model;
        root.fib_n = (uint32_t)number("fib", argv[2], 0, 90); /* its calls fit 64 bits */
        tree_nodes = fib_calls(root.fib_n); /* fib_task's calls, counted as the task counts */
        p.node_ns = p.node_ns ? p.node_ns : 0.36;
    } else if (strcmp(argv[1], "uts") == 0) {
        model = &uts_model;
        tree = tree_named(argv[2]);
        root.node = workload_uts_root(tree);
        workload_uts_count count = {.nodes = tree->nodes};
        /* The tree's size from the workload's own walk, unless UTS publishes it */
        if (!count.nodes && workload_uts_serial(tree, &count) < 0)
            die("uts %s: %s", argv[2], pareng_last_error());
        tree_nodes = count.nodes;
        if (memo_build(&sizes, tree) != tree_nodes)
            die("uts %s: the simulator's walk of the tree does not find its size", argv[2]);
        p.node_ns = p.node_ns ? p.node_ns : 80;
    } else {
        die("%s", usage);
    }
    snprintf(workload, sizeof workload, "%s %s", argv[1], argv[2]);
    if (!json)
        printf("# %s: %llu nodes of %.3g ns, grain %.0f ns, latency %.0f ns, message %.0f ns,"
               " steal %.0f ns, wake %.0f ns, poll %.0f / %.0f ns, seed %llu\n"
               "# ranks   W  makespan_s    eff  msgs/rank max_msgs steal_req  refused "
               "lifelines   moved first_ms hops serves/ms\n",
               workload, (unsigned long long)tree_nodes, p.node_ns, p.grain_ns, p.latency_ns,
               p.msg_ns, p.steal_ns, p.wake_ns, p.waiting_poll_ns, p.max_poll_ns, (unsigned long long)p.seed);
    for (size_t k = 0; k < n_ranks; k++) {
        outcome o = simulate(&p, model, tree, &sizes, &root, tree_nodes, ranks[k]);
        print_outcome(&o, workload, json);
        fflush(stdout);
        if (o.executed != tree_nodes)
            die("%llu nodes run of %llu: the model lost or repeated work",
                (unsigned long long)o.executed, (unsigned long long)tree_nodes);
    }
    free(sizes.keys);
    free(sizes.sizes);
    return 0;
}
