/*
 * uts.c - the UTS workload: the Unbalanced Tree Search benchmark (Olivier, Huan, Liu, Prins,
 * Dinan, Sadayappan, Tseng, "UTS: An Unbalanced Tree Search Benchmark", LCPC 2006), written
 * from its paper and its sample trees with the public task macros, as BOTS writes it with
 * OpenMP tasks: every node a task, the counts summed on the way up.
 *
 * A node is the 20-byte state of UTS's splittable random number generator, SHA-1 (nettle's):
 * the root's state is SHA-1 of 16 zero bytes and the seed (big-endian), child i's is SHA-1 of
 * its parent's state and i (big-endian), and a node's random number is the last four bytes of
 * its state, big-endian, less the sign bit. The tree is the same on every runtime and every
 * number of workers: its node count checks the traversal exactly.
 */
#include "error.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <nettle/sha1.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

/* Only a binomial root may have more children (UTS's MAXNUMCHILDREN). */
#define MAX_CHILDREN 100

/* UTS's sample trees (its README), with the sizes it publishes. */
static const workload_uts_tree trees[] = {
    {"T1", WORKLOAD_UTS_GEOMETRIC, WORKLOAD_UTS_FIXED, 4, 10, 0, 0, 19, 4130071, 3305118, 10},
    {"T1L", WORKLOAD_UTS_GEOMETRIC, WORKLOAD_UTS_FIXED, 4, 13, 0, 0, 29, 102181082, 81746377,
     13},
    {"T2", WORKLOAD_UTS_GEOMETRIC, WORKLOAD_UTS_CYCLIC, 6, 16, 0, 0, 502, 4117769, 2342762, 81},
    {"T3", WORKLOAD_UTS_BINOMIAL, 0, 2000, 0, 0.124875, 8, 42, 4112897, 3599034, 1572},
    {"T3L", WORKLOAD_UTS_BINOMIAL, 0, 2000, 0, 0.200014, 5, 7, 111345631, 89076904, 17844},
    {"T5", WORKLOAD_UTS_GEOMETRIC, WORKLOAD_UTS_LINEAR, 4, 20, 0, 0, 34, 4147582, 2181318, 20},
};
#define N_TREES (sizeof trees / sizeof trees[0])

const workload_uts_tree *workload_uts_find(const char *name)
{
    for (size_t k = 0; k < N_TREES; k++)
        if (strcasecmp(name, trees[k].name) == 0)
            return &trees[k];
    return NULL;
}

const workload_uts_tree *workload_uts_trees(size_t *count)
{
    *count = N_TREES;
    return trees;
}

typedef workload_uts_node uts_node;
_Static_assert(sizeof ((uts_node *)0)->state == SHA1_DIGEST_SIZE, "a node's state is a digest");

/* What the tasks need of a tree, by value in their frames (a caller's tree may be anywhere in
 * its memory, which the workers do not see): 16 bytes (a shape of 24 went through memory at
 * every call: UTS T3 on one worker took 1.09 times serial C, 1.06 with these 16; with the
 * node, 40 bytes of arguments, which the task's clones now read from its frame through a
 * pointer: 1.025, docs/design.md). No padding: a copy's padding bytes are whatever
 * the stack held, and with the fields beside them they once made a word that looked like an
 * address in the arena, which the check of tasks that cross ranks took for a pointer (a false
 * warning, and the rank kept its tree). */
typedef struct uts_shape {
    double b0;
    uint32_t below;     /* binomial: a node has m children when its number is below this */
    uint16_t max_depth; /* geometric */
    uint8_t shape;      /* geometric: enum workload_uts_shape */
    uint8_t m;          /* binomial: m >= 1; 0 for a geometric tree */
} uts_shape;
_Static_assert(sizeof(uts_shape) == 16, "a shape has no padding, and fits two registers");

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uts_node root_node(const workload_uts_tree *t)
{
    uint8_t seed[20] = {0};
    put_be32(seed + 16, (uint32_t)t->seed);
    uts_node root = {.height = 0};
    struct sha1_ctx ctx;
    sha1_init(&ctx);
    sha1_update(&ctx, sizeof seed, seed);
    sha1_digest(&ctx, sizeof root.state, root.state);
    return root;
}

static uts_node child_node(const uts_node *parent, unsigned i)
{
    uint8_t index[4];
    put_be32(index, i);
    uts_node child = {.height = parent->height + 1};
    struct sha1_ctx ctx;
    sha1_init(&ctx);
    sha1_update(&ctx, sizeof parent->state, parent->state);
    sha1_update(&ctx, sizeof index, index);
    sha1_digest(&ctx, sizeof child.state, child.state);
    return child;
}

/* The node's random number, 31 bits: UTS's probability is it over 2^31. */
static uint32_t node_number(const uts_node *n)
{
    const uint8_t *s = n->state + 16;
    return ((uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3]) &
           0x7fffffffu;
}

static double node_probability(const uts_node *n)
{
    return (double)node_number(n) / 2147483648.0;
}

/* The expected branching factor of a geometric tree at a depth (UTS's shape functions). */
static double geometric_b(const uts_shape *t, uint32_t depth)
{
    if (depth == 0)
        return t->b0;
    switch (t->shape) {
    case WORKLOAD_UTS_EXPDEC:
        return t->b0 * pow((double)depth, -log(t->b0) / log((double)t->max_depth));
    case WORKLOAD_UTS_CYCLIC:
        if (depth > 5u * (uint32_t)t->max_depth)
            return 0;
        return pow(t->b0, sin(2.0 * 3.141592653589793 * (double)depth / (double)t->max_depth));
    case WORKLOAD_UTS_FIXED:
        return depth < (uint32_t)t->max_depth ? t->b0 : 0;
    default:
        return t->b0 * (1.0 - (double)depth / (double)t->max_depth);
    }
}

static unsigned children(const uts_shape *t, const uts_node *n)
{
    if (t->m) { /* binomial */
        if (n->height == 0)
            return (unsigned)floor(t->b0);
        return node_number(n) < t->below ? t->m : 0;
    }
    /* Geometric: the count whose distribution has mean b (the inverse of its CDF). */
    double p = 1.0 / (1.0 + geometric_b(t, n->height));
    double k = floor(log(1.0 - node_probability(n)) / log(1.0 - p));
    return k > MAX_CHILDREN ? MAX_CHILDREN : (unsigned)k;
}

static workload_uts_count leaf_count(const uts_node *n)
{
    return (workload_uts_count){.nodes = 1, .leaves = 1, .depth = n->height};
}

static void add_count(workload_uts_count *sum, workload_uts_count child)
{
    sum->nodes += child.nodes;
    sum->leaves += child.leaves;
    if (child.depth > sum->depth)
        sum->depth = child.depth;
}

static workload_uts_count visit_serial(const uts_shape *t, uts_node n)
{
    unsigned k = children(t, &n);
    if (k == 0)
        return leaf_count(&n);
    workload_uts_count sum = {.nodes = 1, .depth = n.height};
    for (unsigned i = 0; i < k; i++)
        add_count(&sum, visit_serial(t, child_node(&n, i)));
    return sum;
}

/* Every node a task; the engine's cutoff decides which run as serial C. */
PARENG_TASK_2(workload_uts_count, uts_task, uts_shape, tree, uts_node, node)
{
    unsigned k = children(&tree, &node);
    if (k == 0)
        return leaf_count(&node);
    for (unsigned i = 0; i < k; i++)
        PARENG_SPAWN(uts_task, tree, child_node(&node, i));
    workload_uts_count sum = {.nodes = 1, .depth = node.height};
    for (unsigned i = 0; i < k; i++)
        add_count(&sum, PARENG_SYNC(uts_task));
    return sum;
}
/* A shape and a node are numbers and digest bytes, and the count is all the task does: a
 * node's subtree may run on another rank. */
PARENG_TASK_CROSSES_RANKS(uts_task)
/* A binomial tree keeps most of its nodes under one spine, and a serial run that enters it
 * below any cutoff would hold them (docs/performance.md): its serial runs split for thieves.
 * The automatic cutoff does so unmarked too while it learns what a call costs (a call hashes a
 * node: about 80 ns), and then makes every spawn a task; the mark makes a fixed cutoff
 * (--cutoff D) split its serial runs as well. */
PARENG_TASK_SPLITTABLE(uts_task)

static uts_shape shape_of(const workload_uts_tree *t)
{
    if (t->type != WORKLOAD_UTS_BINOMIAL)
        return (uts_shape){.b0 = t->b0, .max_depth = (uint16_t)t->max_depth,
                           .shape = (uint8_t)t->shape};
    /* UTS's test, number / 2^31 < q, in integers: number < q * 2^31 (exact, a power of 2),
     * that is number < ceil(q * 2^31), at most 2^31 */
    return (uts_shape){.b0 = t->b0, .below = (uint32_t)ceil(t->q * 2147483648.0),
                       .m = (uint8_t)t->m};
}

static int check_tree(const workload_uts_tree *t, uts_shape *shape)
{
    bool binomial = t->type == WORKLOAD_UTS_BINOMIAL;
    if ((!binomial && t->type != WORKLOAD_UTS_GEOMETRIC) ||
        (!binomial && (t->shape > WORKLOAD_UTS_FIXED || t->max_depth < 1 ||
                       t->max_depth > UINT16_MAX)) ||
        (binomial && (t->m < 1 || t->m > MAX_CHILDREN || !(t->q >= 0 && t->q <= 1))) ||
        !(t->b0 >= 1 && t->b0 <= 1e6))
        return workload__fail(EINVAL,
                              "uts tree %s: b0 from 1 to 1e6; geometric: a shape of "
                              "workload_uts_shape and a depth from 1 to 65535; binomial: q "
                              "from 0 to 1 and m from 1 to %d",
                              t->name ? t->name : "(unnamed)", MAX_CHILDREN);
    *shape = shape_of(t);
    return 0;
}

/* The serial recursion is as deep as the tree (1,572 levels for T3, 17,844 for T3L), deeper
 * than a small `ulimit -s` allows the caller's stack (a bare SIGSEGV under `ulimit -s 128`):
 * it runs on a thread with the engine's least worker stack, and on the caller's stack only
 * when no such thread can be made. */
#define SERIAL_STACK_BYTES ((size_t)64 << 20)

typedef struct serial_visit {
    uts_shape shape;
    uts_node root;
    workload_uts_count count;
} serial_visit;

static void *visit_whole_tree(void *arg)
{
    serial_visit *v = arg;
    v->count = visit_serial(&v->shape, v->root);
    return NULL;
}

int workload_uts_serial(const workload_uts_tree *tree, workload_uts_count *out)
{
    workload__begin();
    serial_visit v = {.root = root_node(tree)};
    int rc = check_tree(tree, &v.shape);
    if (rc)
        return rc;
    pthread_attr_t attr;
    pthread_t thread;
    bool own_stack = pthread_attr_init(&attr) == 0;
    bool on_thread = own_stack && pthread_attr_setstacksize(&attr, SERIAL_STACK_BYTES) == 0 &&
                     pthread_create(&thread, &attr, visit_whole_tree, &v) == 0;
    if (own_stack)
        pthread_attr_destroy(&attr);
    if (on_thread)
        pthread_join(thread, NULL);
    else
        visit_whole_tree(&v);
    *out = v.count;
    return 0;
}

int workload_uts(pareng_engine *engine, const workload_uts_tree *tree, workload_uts_count *out)
{
    workload__begin();
    uts_shape shape = {0};
    int rc = check_tree(tree, &shape);
    return rc ? rc : PARENG_RUN(engine, uts_task, out, shape, root_node(tree));
}

workload_uts_node workload_uts_root(const workload_uts_tree *tree)
{
    return root_node(tree);
}

unsigned workload_uts_children(const workload_uts_tree *tree, const workload_uts_node *node)
{
    uts_shape shape;
    return check_tree(tree, &shape) ? 0 : children(&shape, node); /* shape_of needs a valid one */
}

workload_uts_node workload_uts_child(const workload_uts_node *node, unsigned i)
{
    return child_node(node, i);
}
