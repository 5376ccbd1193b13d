/*
 * test_cutoff.c - automatic granularity (engine/cutoff.c, pareng_config.cutoff_depth): tasks
 * written with no cutoff at all give exact results with the automatic cutoff, a fixed one and
 * none, on 1 to 8 workers; a fixed cutoff runs exactly the subtrees it names serially; the
 * automatic one moves both ways on its own; the serial clone keeps results of more unsynced
 * spawns than it has local slots, up to past the deque's end, each in its place (irregular
 * trees whose value changes when a result lands in another spawn's slot); a tree whose runs
 * stay long at any depth makes every spawn a task for the rest of its run, and so do calls
 * that are long, unless their task asks PARENG_SERIAL(), and short ones that cost no more as
 * tasks (a loop's spawns), while fib's keep their serial runs; PARENG_SERIAL() says where the
 * cutoff fell; bad values are refused.
 */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <time.h>

/* fib as a user writes it: no cutoff. */
PARENG_TASK_1(uint64_t, user_fib, unsigned, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(user_fib, n - 1);
    uint64_t b = PARENG_CALL(user_fib, n - 2);
    uint64_t a = PARENG_SYNC(user_fib);
    return a + b;
}

/* A complete binary tree of the given height: 2^height leaves, each worth 1. Its leaves ask
 * PARENG_SERIAL(), so that the automatic cutoff keeps its serial runs whatever its calls cost
 * beside every spawn a task (a sanitizer's build may make the serial clone's calls the dearer:
 * test_loop_spawns_every_spawn) and cuts it by depth, which the tests of the depth watch. */
PARENG_TASK_1(uint64_t, leaves, unsigned, height)
{
    if (height == 0) {
        (void)PARENG_SERIAL();
        return 1;
    }
    PARENG_SPAWN(leaves, height - 1);
    uint64_t right = PARENG_CALL(leaves, height - 1);
    return PARENG_SYNC(leaves) + right;
}

/* The root calls it, so that sum_of_squares is one level down: under cutoff 1, serial. */
PARENG_TASK_1(uint64_t, one_level_down, unsigned, count)
{
    return PARENG_CALL(sum_of_squares, count);
}

static pareng_engine *start_with_cutoff(unsigned workers, unsigned cutoff, unsigned capacity)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = cutoff;
    cfg.deque_capacity = capacity;
    return testing_start(&cfg);
}

static pareng_stats total_stats(pareng_engine *e)
{
    pareng_stats sum = {0};
    for (unsigned i = 0; i < pareng_engine_workers(e); i++) {
        pareng_stats s;
        CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &s), 0);
        sum.tasks += s.tasks;
        sum.overflows += s.overflows;
        sum.serial_runs += s.serial_runs;
        sum.splits += s.splits;
    }
    return sum;
}

static void assert_nothing_left(void)
{
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

static void check_user_fib(unsigned workers, unsigned cutoff)
{
    pareng_engine *e = start_with_cutoff(workers, cutoff, 0);
    for (unsigned n = 0; n <= 32; n++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, user_fib, &got, n), 0);
        if (got != workload_fib_serial(n))
            fprintf(stderr, "\nuser fib(%u) on %u workers, cutoff %u: %llu\n", n, workers,
                    cutoff, (unsigned long long)got);
        CU_ASSERT_EQUAL(got, workload_fib_serial(n));
    }
    pareng_stats s = total_stats(e);
    /* fib(32) goes 16 levels deep on every path: as deep as any cutoff here starts */
    CU_ASSERT(cutoff == PARENG_CUTOFF_NONE ? s.serial_runs == 0 : s.serial_runs > 0);
    pareng_stop(e);
    assert_nothing_left();
}

#define CUTOFF_auto PARENG_CUTOFF_AUTO
#define CUTOFF_3 3
#define CUTOFF_none PARENG_CUTOFF_NONE
#define USER_FIB_TEST(W, C)                                                                   \
    static void test_user_fib_##W##_workers_cutoff_##C(void) { check_user_fib(W, CUTOFF_##C); }
#define USER_FIB_TESTS(X)                                                                     \
    X(1, auto) X(2, auto) X(3, auto) X(4, auto) X(8, auto) X(1, 3) X(2, 3) X(8, 3)           \
    X(1, none) X(2, none) X(8, none)
USER_FIB_TESTS(USER_FIB_TEST)

/* On one worker nothing is stolen, so the depth of a task is its depth in the tree: a fixed
 * cutoff N runs exactly the 2^N subtrees at depth N serially, run after run. */
static void test_fixed_cutoff_cuts_exactly_there(void)
{
    for (unsigned cutoff = 1; cutoff <= 6; cutoff++) {
        pareng_engine *e = start_with_cutoff(1, cutoff, 0);
        for (int run = 1; run <= 2; run++) {
            uint64_t got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, leaves, &got, 12), 0);
            CU_ASSERT_EQUAL(got, 4096u);
            CU_ASSERT_EQUAL(total_stats(e).serial_runs, (uint64_t)run << cutoff);
        }
        pareng_stop(e);
    }
    assert_nothing_left();
}

/* Automatic cutoff, both ways, on one worker (the depth of a task is then its depth in the
 * tree). Coarser: a tree of 2^14 leaves that cost next to nothing gives serial runs shorter
 * than 5 us except near the root, so the cutoff climbs from the depth a worker starts from
 * (10: 2^10 serial runs per run) by at least 3 levels: 2 serial runs per run in a release
 * build (gcc folds the serial clone of this pure task into a few calls), 32 under the
 * sanitizers. Runs go on until one has 4 or fewer, 40 at most, and the fewest must be at
 * most 128: on a loaded machine a preempted serial run counts as long and holds the cutoff
 * where it is for a while, which delays the climb but cannot stop it; without adaptation no
 * run would ever have fewer than 2^10. Finer: then a tree of 2^18 leaves that spin a little,
 * 3 to 10 ms in all, makes its first serial run (a quarter of the tree or more) far too long,
 * and the cutoff goes down by several levels at once: many serial runs instead of as many as
 * the last free tree made (the same 2^cutoff): runs go on until one has at least 16 and 4
 * times the last (two levels down), 10 at most. Its calls stay short (a leaf's spin, tens of nanoseconds, and
 * an inner node's split): calls of 25 ns or more would make every spawn a task instead
 * (test_long_calls_every_spawn). */
PARENG_TASK_2(uint64_t, spinning_leaves, unsigned, height, unsigned, spin)
{
    if (height == 0) {
        for (volatile unsigned i = 0; i < spin; i++) {
        }
        /* asked, the task keeps its serial runs whatever its calls cost: a sanitizer's build
         * makes them long (25 ns or more), and long calls make every spawn a task */
        (void)PARENG_SERIAL();
        return 1;
    }
    PARENG_SPAWN(spinning_leaves, height - 1, spin);
    uint64_t right = PARENG_CALL(spinning_leaves, height - 1, spin);
    return PARENG_SYNC(spinning_leaves) + right;
}

static void test_automatic_cutoff_adapts(void)
{
    pareng_engine *e = start_with_cutoff(1, PARENG_CUTOFF_AUTO, 0);
    uint64_t got = 0, fewest = UINT64_MAX, last = 0;
    for (int run = 0; run < 40 && fewest > 4; run++) {
        uint64_t before = total_stats(e).serial_runs;
        CU_ASSERT_EQUAL(PARENG_RUN(e, leaves, &got, 14), 0);
        CU_ASSERT_EQUAL(got, 1u << 14);
        last = total_stats(e).serial_runs - before;
        fewest = last < fewest ? last : fewest;
    }
    if (fewest > 128)
        fprintf(stderr, "\nfewest serial runs of a free tree: %llu\n",
                (unsigned long long)fewest);
    CU_ASSERT(fewest >= 1 && fewest <= 128);

    /* without adaptation every run makes as many as the last above */
    uint64_t most = 0, enough = last * 4 > 16 ? last * 4 : 16;
    for (int run = 0; run < 10 && most < enough; run++) {
        uint64_t before = total_stats(e).serial_runs;
        CU_ASSERT_EQUAL(PARENG_RUN(e, spinning_leaves, &got, 18, 10), 0);
        CU_ASSERT_EQUAL(got, 1u << 18);
        uint64_t runs = total_stats(e).serial_runs - before;
        most = runs > most ? runs : most;
    }
    if (most < enough)
        fprintf(stderr, "\nserial runs of a spinning tree: %llu, after %llu\n",
                (unsigned long long)most, (unsigned long long)last);
    CU_ASSERT(most >= enough); /* CI under ASan once had exactly 4 times: 512 after 128 */
    pareng_stop(e);
    assert_nothing_left();
}

/* A tree that depth does not cut: a chain of links, each spawning a leaf that spins 20 us
 * and calling the next link, so that whatever runs below any depth holds the rest of the
 * chain. The root runs 60 chains one after the other, in one run, on one worker. Each chain's
 * serial tail is long, so the automatic cutoff goes deeper chain after chain, until it would
 * pass 48 levels below the root: from then on, for the rest of the run, every spawn is a task
 * and the last chains have no serial link at all. The run after, a tree that depth does cut
 * is cut by depth again (serial runs, as in test_automatic_cutoff_adapts). */
PARENG_TASK_1(unsigned, spin_leaf, unsigned, ignored)
{
    testing_spin_ns(20000);
    return ignored;
}

/* The links of the chain that ran as serial C. */
PARENG_TASK_1(unsigned, chain, unsigned, links)
{
    if (links == 0)
        return 0;
    PARENG_SPAWN(spin_leaf, 0);
    unsigned serial = PARENG_CALL(chain, links - 1) + (PARENG_SERIAL() ? 1 : 0);
    return serial + PARENG_SYNC(spin_leaf);
}

#define CHAINS 60
typedef struct chain_counts {
    unsigned first, last;
} chain_counts;

PARENG_TASK_1(chain_counts, chains, unsigned, links)
{
    chain_counts counts = {0, 0};
    for (unsigned c = 0; c < CHAINS; c++) {
        unsigned serial = PARENG_CALL(chain, links);
        counts.first = c == 0 ? serial : counts.first;
        counts.last = serial;
    }
    return counts;
}

static void test_depth_that_does_not_cut(void)
{
    pareng_engine *e = start_with_cutoff(1, PARENG_CUTOFF_AUTO, 0);
    chain_counts counts = {0, 0};
    CU_ASSERT_EQUAL(PARENG_RUN(e, chains, &counts, 100), 0);
    if (counts.first == 0 || counts.last != 0)
        fprintf(stderr, "\nserial links of the first and last chains: %u, %u\n", counts.first,
                counts.last);
    CU_ASSERT(counts.first > 0);
    CU_ASSERT_EQUAL(counts.last, 0);
    uint64_t before = total_stats(e).serial_runs, got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, leaves, &got, 16), 0);
    CU_ASSERT_EQUAL(got, 1u << 16);
    CU_ASSERT(total_stats(e).serial_runs > before);
    pareng_stop(e);
    assert_nothing_left();
}

/* A tree deeper than UTS's T3L (17,844 levels): a chain of 60,000 links, each a spawn and a
 * call with 256 bytes of its own on the stack (a UTS node keeps a few hundred), recurses on
 * the worker's stack in every clone: 15 MiB and more, where the default 8 MiB did not hold
 * T3L (engine/arena.c, WORKER_STACK_LEAST). Under AddressSanitizer a frame of the splittable
 * clone, which the automatic cutoff runs first, takes 6,984 bytes (264 without: redzones, and a
 * slot for each scope's locals), and 60,000 links overflowed the worker's 64 MiB: there the
 * chain is 20,000 links, still deeper than T3L. */
#ifdef __SANITIZE_ADDRESS__
#define DEEP_LINKS 20000u
#else
#define DEEP_LINKS 60000u
#endif
PARENG_TASK_1(uint64_t, deep_chain, unsigned, links)
{
    if (links == 0)
        return 0;
    volatile unsigned char own[256];
    own[links % sizeof own] = (unsigned char)links;
    PARENG_SPAWN(deep_chain, 0);
    uint64_t rest = PARENG_CALL(deep_chain, links - 1);
    return rest + PARENG_SYNC(deep_chain) + 1 + (own[links % sizeof own] != (unsigned char)links);
}

static void test_deep_trees(void)
{
    static const unsigned cutoffs[] = {PARENG_CUTOFF_AUTO, 1000, PARENG_CUTOFF_NONE};
    for (size_t c = 0; c < sizeof cutoffs / sizeof cutoffs[0]; c++)
        for (unsigned workers = 1; workers <= 2; workers++) {
            pareng_engine *e = start_with_cutoff(workers, cutoffs[c], 0);
            uint64_t got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, deep_chain, &got, DEEP_LINKS), 0);
            CU_ASSERT_EQUAL(got, DEEP_LINKS);
            pareng_stop(e);
        }
    assert_nothing_left();
}

/* A serial subtree with 1000 unsynced spawns on a deque of 8 frames: 4 results in local
 * slots, 4 in frames, the rest past the deque's end. */
static void test_serial_clone_keeps_many_spawns(void)
{
    for (unsigned workers = 1; workers <= 2; workers++) {
        pareng_engine *e = start_with_cutoff(workers, 1, 8);
        uint64_t got = 0;
        unsigned count = 1000;
        CU_ASSERT_EQUAL(PARENG_RUN(e, one_level_down, &got, count), 0);
        CU_ASSERT_EQUAL(got, (uint64_t)count * (count + 1) * (2 * count + 1) / 6);
        pareng_stats s = total_stats(e);
        CU_ASSERT_EQUAL(s.serial_runs, 1);
        CU_ASSERT(s.overflows > 0);
        /* and the deque is usable afterwards */
        CU_ASSERT_EQUAL(PARENG_RUN(e, user_fib, &got, 25), 0);
        CU_ASSERT_EQUAL(got, 75025u);
        pareng_stop(e);
    }
    assert_nothing_left();
}

/* A result as large as a frame holds (48 bytes), from `fan` spawns per task: more than the
 * serial clone's local slots, and with a deque of 8 frames, past its end. */
typedef struct six {
    uint64_t v[6];
} six;

PARENG_TASK_2(six, six_fan, unsigned, height, unsigned, fan)
{
    if (height == 0)
        return (six){{1, 2, 3, 4, 5, 6}};
    for (unsigned i = 0; i < fan; i++)
        PARENG_SPAWN(six_fan, height - 1, fan);
    six sum = {{0}};
    for (unsigned i = 0; i < fan; i++) {
        six part = PARENG_SYNC(six_fan);
        for (int k = 0; k < 6; k++)
            sum.v[k] += part.v[k];
    }
    return sum;
}

static void test_large_results_in_every_clone(void)
{
    static const unsigned cutoffs[] = {1, 2, PARENG_CUTOFF_AUTO, PARENG_CUTOFF_NONE};
    for (unsigned workers = 1; workers <= 2; workers++)
        for (size_t c = 0; c < sizeof cutoffs / sizeof cutoffs[0]; c++) {
            pareng_engine *e = start_with_cutoff(workers, cutoffs[c], 8);
            six got = {{0}};
            CU_ASSERT_EQUAL(PARENG_RUN(e, six_fan, &got, 4, 6), 0);
            for (int k = 0; k < 6; k++)
                CU_ASSERT_EQUAL(got.v[k], 1296u * (uint64_t)(k + 1)); /* 6^4 leaves */
            pareng_stop(e);
        }
    assert_nothing_left();
}

/* Nodes of a complete binary tree that ran as serial C. */
PARENG_TASK_1(uint64_t, serial_nodes, unsigned, height)
{
    uint64_t here = PARENG_SERIAL() ? 1 : 0;
    if (height == 0)
        return here;
    PARENG_SPAWN(serial_nodes, height - 1);
    uint64_t right = PARENG_CALL(serial_nodes, height - 1);
    return PARENG_SYNC(serial_nodes) + right + here;
}

/* On one worker, with a fixed cutoff N, the nodes at depth N and below see PARENG_SERIAL():
 * 2^N + ... + 2^height of them; with every spawn a task, none. */
static void test_serial_is_visible_to_the_task(void)
{
    for (unsigned cutoff = 1; cutoff <= 5; cutoff++) {
        pareng_engine *e = start_with_cutoff(1, cutoff, 0);
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, serial_nodes, &got, 8), 0);
        CU_ASSERT_EQUAL(got, (1u << 9) - (1u << cutoff));
        pareng_stop(e);
    }
    pareng_engine *e = start_with_cutoff(2, PARENG_CUTOFF_NONE, 0);
    uint64_t got = 1;
    CU_ASSERT_EQUAL(PARENG_RUN(e, serial_nodes, &got, 8), 0);
    CU_ASSERT_EQUAL(got, 0);
    pareng_stop(e);
    assert_nothing_left();
}

/* Trees of irregular shape: each node has 0 to 6 children (from a hash of its seed), and its
 * value weighs each child's by its position, so a result that lands in another spawn's slot
 * changes the answer. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    return x ^ (x >> 27);
}

static uint64_t irregular_serial(uint64_t seed, unsigned depth)
{
    unsigned fan = depth ? (unsigned)(mix(seed) % 7) : 0;
    uint64_t value = mix(seed + 1);
    for (unsigned i = 0; i < fan; i++)
        value += (i + 1) * irregular_serial(seed * 7 + i + 1, depth - 1);
    return value;
}

PARENG_TASK_2(uint64_t, irregular, uint64_t, seed, unsigned, depth)
{
    unsigned fan = depth ? (unsigned)(mix(seed) % 7) : 0;
    for (unsigned i = 0; i < fan; i++)
        PARENG_SPAWN(irregular, seed * 7 + i + 1, depth - 1);
    uint64_t value = mix(seed + 1);
    for (unsigned i = fan; i > 0; i--)
        value += i * PARENG_SYNC(irregular);
    return value;
}

static int run_irregular(pareng_engine *e, uint64_t seed, uint64_t *got)
{
    return PARENG_RUN(e, irregular, got, seed, 11);
}

/* Trees of every seed exact against the serial ones, at every cutoff, on these worker counts,
 * with small and default deques. */
static void check_irregular_trees(int (*run)(pareng_engine *, uint64_t, uint64_t *),
                                  const unsigned *workers, size_t n_workers)
{
    static const unsigned cutoffs[] = {PARENG_CUTOFF_AUTO, 1, 3, PARENG_CUTOFF_NONE};
    for (size_t c = 0; c < sizeof cutoffs / sizeof cutoffs[0]; c++)
        for (size_t k = 0; k < n_workers; k++)
            for (unsigned capacity = 8; capacity <= 16384; capacity *= 2048) {
                pareng_engine *e = start_with_cutoff(workers[k], cutoffs[c], capacity);
                for (uint64_t seed = 1; seed <= 8; seed++) {
                    uint64_t got = 0;
                    CU_ASSERT_EQUAL(run(e, seed, &got), 0);
                    CU_ASSERT_EQUAL(got, irregular_serial(seed, 11));
                }
                pareng_stop(e);
            }
    assert_nothing_left();
}

static void test_irregular_trees_exact(void)
{
    static const unsigned workers[] = {1, 3, 8};
    check_irregular_trees(run_irregular, workers, sizeof workers / sizeof workers[0]);
}

/* The same trees, with half of each node's children spawned, called and synced by helper
 * functions that take the task's context (PARENG_CONTEXT_PARAMS): a helper's spawns sit on
 * top of its caller's unsynced ones, in every clone, and are synced before it returns. */
static inline uint64_t spawn_and_sync_rest(PARENG_CONTEXT_PARAMS, uint64_t seed, unsigned depth,
                                           unsigned from, unsigned fan);

PARENG_TASK_2(uint64_t, irregular_helped, uint64_t, seed, unsigned, depth)
{
    unsigned fan = depth ? (unsigned)(mix(seed) % 7) : 0, half = fan / 2;
    for (unsigned i = 0; i < half; i++)
        PARENG_SPAWN(irregular_helped, seed * 7 + i + 1, depth - 1);
    uint64_t value = mix(seed + 1) + spawn_and_sync_rest(PARENG_CONTEXT, seed, depth, half, fan);
    for (unsigned i = half; i > 0; i--)
        value += i * PARENG_SYNC(irregular_helped);
    return value;
}

static inline uint64_t spawn_and_sync_rest(PARENG_CONTEXT_PARAMS, uint64_t seed, unsigned depth,
                                           unsigned from, unsigned fan)
{
    if (from == fan)
        return 0;
    for (unsigned i = from + 1; i < fan; i++)
        PARENG_SPAWN(irregular_helped, seed * 7 + i + 1, depth - 1);
    uint64_t value = (from + 1) * PARENG_CALL(irregular_helped, seed * 7 + from + 1, depth - 1);
    for (unsigned i = fan; i > from + 1; i--)
        value += i * PARENG_SYNC(irregular_helped);
    return value;
}

static int run_irregular_helped(pareng_engine *e, uint64_t seed, uint64_t *got)
{
    return PARENG_RUN(e, irregular_helped, got, seed, 11);
}

static void test_helpers_spawn_with_the_task_context(void)
{
    static const unsigned workers[] = {1, 4};
    check_irregular_trees(run_irregular_helped, workers, sizeof workers / sizeof workers[0]);
}

/* PARENG_RUN_CUTOFF: this run's granularity, whatever the engine's; the next PARENG_RUN has
 * the engine's again. */
static void test_run_with_its_own_cutoff(void)
{
    pareng_engine *e = start_with_cutoff(1, 2, 0);
    uint64_t got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN_CUTOFF(e, 5, leaves, &got, 12), 0);
    CU_ASSERT_EQUAL(got, 4096u);
    CU_ASSERT_EQUAL(total_stats(e).serial_runs, 32u);
    CU_ASSERT_EQUAL(PARENG_RUN_CUTOFF(e, PARENG_CUTOFF_NONE, leaves, &got, 12), 0);
    CU_ASSERT_EQUAL(got, 4096u);
    CU_ASSERT_EQUAL(total_stats(e).serial_runs, 32u);
    CU_ASSERT_EQUAL(PARENG_RUN(e, leaves, &got, 12), 0);
    CU_ASSERT_EQUAL(total_stats(e).serial_runs, 36u);
    pareng_stop(e);
    assert_nothing_left();
}

static void test_bad_cutoff_starts_nothing(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    pareng_engine *e = NULL;
    cfg.cutoff_depth = UINT32_MAX - 1;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "cutoff_depth"));
    cfg.cutoff_depth = 5;
    cfg.io_depth = 16;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "IO"));
    assert_nothing_left();
}

/* test_depth_that_does_not_cut's chain, marked: each link spawns a leaf of 20 us and calls
 * the rest of the chain, so that below a cutoff of 1 the whole chain is one serial run, as a
 * binomial tree keeps most of its nodes under one spine. Returns the sum of the links. */
PARENG_TASK_1(uint64_t, spine, unsigned, links)
{
    if (links == 0)
        return 0;
    PARENG_SPAWN(spin_leaf, links);
    uint64_t rest = PARENG_CALL(spine, links - 1);
    return rest + PARENG_SYNC(spin_leaf);
}
PARENG_TASK_SPLITTABLE(spine)

PARENG_TASK_1(uint64_t, spine_root, unsigned, links)
{
    return PARENG_CALL(spine, links);
}

/* The unmarked chain below the same cutoff: the links that ran serially */
PARENG_TASK_1(unsigned, chain_root, unsigned, links)
{
    return PARENG_CALL(chain, links);
}

/* PARENG_TASK_SPLITTABLE: a serial run that holds the whole tree is split for a hungry thief,
 * and the other workers take the leaves; results exact. Unmarked, the run is never split. */
static void test_splittable_serial_runs(void)
{
    const unsigned links = 5000; /* 100 ms of leaves */
    const uint64_t sum = (uint64_t)links * (links + 1) / 2;
    for (unsigned workers = 1; workers <= 4; workers++) {
        pareng_engine *e = start_with_cutoff(workers, 1, 0);
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, spine_root, &got, links), 0);
        CU_ASSERT_EQUAL(got, sum);
        pareng_stats s = total_stats(e);
        CU_ASSERT(workers == 1 ? s.splits == 0 : s.splits > 0);
        /* the leaves that a thief took ran as tasks of their own */
        CU_ASSERT(workers == 1 || s.tasks > 1);
        unsigned serial_links = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, chain_root, &serial_links, links), 0);
        CU_ASSERT_EQUAL(serial_links, links);
        pareng_stats after = total_stats(e);
        CU_ASSERT_EQUAL(after.splits, s.splits);
        CU_ASSERT_EQUAL(after.serial_runs, s.serial_runs + 1);
        pareng_stop(e);
    }
    assert_nothing_left();
}

/* A splittable task that spawns five children (the fifth's result goes to a frame, past the
 * end of a deque of 4: an overflowed spawn), calls one more and syncs the five, in serial
 * runs below a cutoff of 1, on more workers than cores. A thief's request served at the call
 * set the floor as if nothing overflowed, and a sync then took garbage past the end for a
 * frame: the run was refused, "took a spawn of another task" (5 in 5 on 4 workers). */
enum { FIVE_DEPTH = 5, FIVE_SPAWNS = 5 };

static uint64_t five_leaf(uint64_t x)
{
    for (int i = 0; i < 20; i++)
        x = mix(x + (uint64_t)i);
    return x;
}

PARENG_TASK_2(uint64_t, five_then_call, uint64_t, seed, int, depth)
{
    if (depth == FIVE_DEPTH)
        return five_leaf(seed);
    for (int i = 0; i < FIVE_SPAWNS; i++)
        PARENG_SPAWN(five_then_call, mix(seed + (uint64_t)i), depth + 1);
    uint64_t acc = seed * 37 + PARENG_CALL(five_then_call, mix(seed + 100), depth + 1);
    for (int i = 0; i < FIVE_SPAWNS; i++)
        acc = acc * 31 + PARENG_SYNC(five_then_call);
    return acc;
}
PARENG_TASK_SPLITTABLE(five_then_call)

static uint64_t five_then_call_serial(uint64_t seed, int depth)
{
    if (depth == FIVE_DEPTH)
        return five_leaf(seed);
    uint64_t kept[FIVE_SPAWNS];
    for (int i = 0; i < FIVE_SPAWNS; i++)
        kept[i] = five_then_call_serial(mix(seed + (uint64_t)i), depth + 1);
    uint64_t acc = seed * 37 + five_then_call_serial(mix(seed + 100), depth + 1);
    for (int i = FIVE_SPAWNS - 1; i >= 0; i--)
        acc = acc * 31 + kept[i];
    return acc;
}

static void test_split_while_spawns_overflow(void)
{
    for (unsigned workers = 2; workers <= 4; workers += 2)
        for (unsigned capacity = 3; capacity <= 4; capacity++) {
            pareng_engine *e = start_with_cutoff(workers, 1, capacity);
            CU_ASSERT_PTR_NOT_NULL_FATAL(e);
            for (uint64_t seed = 0; seed < 6; seed++) {
                uint64_t got = 0;
                CU_ASSERT_EQUAL(PARENG_RUN(e, five_then_call, &got, seed, 0), 0);
                CU_ASSERT_EQUAL(got, five_then_call_serial(seed, 0));
            }
            pareng_stop(e);
        }
    assert_nothing_left();
}

/* The automatic cutoff's first serial run of a task it does not know yet may hold the whole
 * tree, as the spine's does (under the automatic cutoff a marked task learns as any other):
 * once that run has learned that the task's calls are long (from its first thousand calls),
 * it goes on as tasks, on one worker too (where no thief asked for a split); exact on any
 * number of workers. A fixed cutoff leaves the run serial (test_splittable_serial_runs). */
static void test_learning_run_goes_on_as_tasks(void)
{
    const unsigned links = 5000;
    const uint64_t sum = (uint64_t)links * (links + 1) / 2;
    for (unsigned workers = 1; workers <= 4; workers++) {
        pareng_engine *e = start_with_cutoff(workers, PARENG_CUTOFF_AUTO, 0);
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, spine_root, &got, links), 0);
        CU_ASSERT_EQUAL(got, sum);
        CU_ASSERT(total_stats(e).splits > 0);
        pareng_stop(e);
    }
    assert_nothing_left();
}

/* A task with long calls (each spins 1 us): a balanced tree of them. Returns the calls. */
PARENG_TASK_1(uint64_t, long_calls, unsigned, depth)
{
    testing_spin_ns(1000);
    if (depth == 0)
        return 1;
    PARENG_SPAWN(long_calls, depth - 1);
    uint64_t b = PARENG_CALL(long_calls, depth - 1);
    return 1 + b + PARENG_SYNC(long_calls);
}

/* A chain of long calls (1 us each) with PARENG_SERIAL(), as a task that switches to other
 * code in its serial runs asks it: the links that the cutoff made serial. Deeper than any
 * automatic cutoff (48 levels at most, engine/cutoff.c), each chain has its serial run. */
PARENG_TASK_1(uint64_t, long_chain_asking, unsigned, links)
{
    testing_spin_ns(1000);
    uint64_t serial = PARENG_SERIAL() ? 1 : 0;
    return links == 0 ? serial : serial + PARENG_CALL(long_chain_asking, links - 1);
}

/* 16 such chains of 64 links, one after the other */
PARENG_TASK_1(uint64_t, long_chains_asking, unsigned, links)
{
    uint64_t serial = 0;
    for (unsigned chain = 0; chain < 16; chain++)
        serial += PARENG_CALL(long_chain_asking, links);
    return serial;
}

/* A run of another task that calls a tree of long calls, then a tree of short ones: the serial
 * nodes of the second (serial_nodes, above) */
PARENG_TASK_1(uint64_t, long_then_short, unsigned, height)
{
    PARENG_CALL(long_calls, 11);
    return PARENG_CALL(serial_nodes, height);
}

/* The automatic cutoff learns from a task's first serial runs what its calls cost. Long calls
 * (1 us), where a spawn costs a task 1% or less and a serial run may hold work that thieves
 * want: on one worker (where learning is certain), once learned, the tree's runs make every
 * spawn a task, no serial run; with PARENG_SERIAL() in the task, its serial runs stay; a run
 * that calls the tree among other work keeps the cutoff for that work (it was lost for the
 * rest of the run); under a fixed cutoff, as the cutoff says. */
static void test_long_calls_every_spawn(void)
{
    pareng_engine *e = start_with_cutoff(1, PARENG_CUTOFF_AUTO, 0);
    uint64_t got = 0, before = 0;
    for (unsigned run = 0; run < 3; run++) { /* 4,095 calls: hundreds of sampled runs */
        before = total_stats(e).serial_runs;
        CU_ASSERT_EQUAL(PARENG_RUN(e, long_calls, &got, 11), 0);
        CU_ASSERT_EQUAL(got, (1u << 12) - 1);
    }
    CU_ASSERT_EQUAL(total_stats(e).serial_runs, before);
    for (unsigned run = 0; run < 3; run++) { /* 48 serial runs, 8 of them enough to learn */
        before = total_stats(e).serial_runs;
        CU_ASSERT_EQUAL(PARENG_RUN(e, long_chains_asking, &got, 64), 0);
        CU_ASSERT(got > 0);
    }
    CU_ASSERT(total_stats(e).serial_runs > before);
    pareng_stop(e);

    /* a fresh engine (the chains took the cutoff deep): learned, then the mixed run */
    e = start_with_cutoff(1, PARENG_CUTOFF_AUTO, 0);
    for (unsigned run = 0; run < 3; run++)
        CU_ASSERT_EQUAL(PARENG_RUN(e, long_calls, &got, 11), 0);
    for (unsigned run = 0; run < 3; run++) {
        CU_ASSERT_EQUAL(PARENG_RUN(e, long_then_short, &got, 16), 0);
        CU_ASSERT(got > 0);
    }
    pareng_stop(e);

    e = start_with_cutoff(1, 4, 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, long_calls, &got, 11), 0);
    CU_ASSERT_EQUAL(got, (1u << 12) - 1);
    CU_ASSERT_EQUAL(total_stats(e).serial_runs, 16u);
    pareng_stop(e);
    assert_nothing_left();
}

/* On 2 and 4 workers: every worker learns that long calls make every spawn a task (a run of
 * them with no serial run), and that fib's are short: it drops the splittable clone, and
 * nothing of fib's is split after. */
static void test_learned_on_every_worker(void)
{
    for (unsigned workers = 2; workers <= 4; workers += 2) {
        pareng_engine *e = start_with_cutoff(workers, PARENG_CUTOFF_AUTO, 0);
        uint64_t got = 0, serial_runs = UINT64_MAX;
        /* 32,767 calls of 1 us: hundreds of serial runs, on every worker, until a run makes
         * none (every worker has learned; one that the suite's other tests kept off the cores
         * learns in a later run) */
        for (unsigned run = 0; run < 10 && serial_runs; run++) {
            uint64_t before = total_stats(e).serial_runs;
            CU_ASSERT_EQUAL(PARENG_RUN(e, long_calls, &got, 14), 0);
            CU_ASSERT_EQUAL(got, (1u << 15) - 1);
            serial_runs = total_stats(e).serial_runs - before;
        }
        CU_ASSERT_EQUAL(serial_runs, 0);

        /* every worker learns that fib's calls are short, from 8 windows of its serial runs of
         * 5 us or more, and that they cost more with every spawn a task, from 8 samples (a
         * worker that has not learned yet still runs the splittable clone): rounds of runs
         * long enough for each to make many, then 10 runs that must split nothing. A worker
         * that the suite's other tests kept off the cores through a whole round (fib(32) takes
         * 2 ms on a fast machine) learns in a later one; without the learning every round
         * splits. */
        uint64_t splits_after_learning = UINT64_MAX;
        for (unsigned round = 0; round < 5 && splits_after_learning; round++) {
            for (unsigned run = 0; run < 3; run++) {
                CU_ASSERT_EQUAL(PARENG_RUN(e, user_fib, &got, 32), 0);
                CU_ASSERT_EQUAL(got, 2178309);
            }
            uint64_t before = total_stats(e).splits;
            for (unsigned run = 0; run < 10; run++) {
                CU_ASSERT_EQUAL(PARENG_RUN(e, user_fib, &got, 30), 0);
                CU_ASSERT_EQUAL(got, 832040);
            }
            splits_after_learning = total_stats(e).splits - before;
        }
        CU_ASSERT_EQUAL(splits_after_learning, 0);
        pareng_stop(e);
    }
    assert_nothing_left();
}

/* A binary tree whose nodes spawn their two children in a loop and cost next to nothing. A
 * loop's count of spawns is no constant, so the serial clone keeps their results in memory,
 * where every spawn a task pushes frames and runs them at the syncs: that costs no more, and
 * the automatic cutoff, which samples the task's calls both ways (engine/cutoff.c), makes
 * every spawn a task within a few runs on one worker (at a depth of 10, where a worker
 * starts, the tree's serial runs have 2^10 nodes): a run with no serial run. fib's calls cost
 * less in a serial run than with every spawn a task in a release build (every spawn a task
 * takes 1.5 times serial C on one worker, docs/performance.md), and keep their serial runs. */
PARENG_TASK_1(uint64_t, loop_tree, unsigned, height)
{
    if (height == 0)
        return 1;
    for (unsigned child = 0; child < 2; child++)
        PARENG_SPAWN(loop_tree, height - 1);
    uint64_t nodes = 1;
    for (unsigned child = 0; child < 2; child++)
        nodes += PARENG_SYNC(loop_tree);
    return nodes;
}

static void test_loop_spawns_every_spawn(void)
{
    pareng_engine *e = start_with_cutoff(1, PARENG_CUTOFF_AUTO, 0);
    uint64_t got = 0, serial_runs = UINT64_MAX, first = 0;
    for (unsigned run = 0; run < 20 && serial_runs; run++) {
        uint64_t before = total_stats(e).serial_runs;
        CU_ASSERT_EQUAL(PARENG_RUN(e, loop_tree, &got, 20), 0);
        CU_ASSERT_EQUAL(got, (1u << 21) - 1);
        serial_runs = total_stats(e).serial_runs - before;
        first = run == 0 ? serial_runs : first;
    }
    CU_ASSERT(first > 0); /* it began with serial runs, as every task does */
    CU_ASSERT_EQUAL(serial_runs, 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    for (unsigned run = 0; run < 10; run++) {
        uint64_t before = total_stats(e).serial_runs;
        CU_ASSERT_EQUAL(PARENG_RUN(e, user_fib, &got, 30), 0);
        CU_ASSERT_EQUAL(got, 832040);
        serial_runs = total_stats(e).serial_runs - before;
    }
    CU_ASSERT(serial_runs > 0);
#endif
    pareng_stop(e);
    assert_nothing_left();
}

int main(void)
{
#define USER_FIB_INFO(W, C)                                                                   \
    {"user fib(0..32), " #W " workers, cutoff " #C, test_user_fib_##W##_workers_cutoff_##C},
    CU_TestInfo cutoff[] = {
        USER_FIB_TESTS(USER_FIB_INFO)
        {"fixed cutoff: exactly 2^N serial subtrees", test_fixed_cutoff_cuts_exactly_there},
        {"automatic cutoff adapts", test_automatic_cutoff_adapts},
        {"a tree that depth does not cut: every spawn a task", test_depth_that_does_not_cut},
        {"trees 60,000 levels deep, every clone", test_deep_trees},
        {"serial clone: 1000 unsynced spawns on 8 frames", test_serial_clone_keeps_many_spawns},
        {"48-byte results, 6 spawns a task, every clone", test_large_results_in_every_clone},
        {"PARENG_SERIAL(): exactly the nodes below the cutoff", test_serial_is_visible_to_the_task},
        {"irregular trees: exact, every cutoff, 1-8 workers, small deques",
         test_irregular_trees_exact},
        {"helpers spawn with the task's context, every clone", test_helpers_spawn_with_the_task_context},
        {"PARENG_RUN_CUTOFF: one run's granularity", test_run_with_its_own_cutoff},
        {"bad cutoff starts nothing", test_bad_cutoff_starts_nothing},
        {"PARENG_TASK_SPLITTABLE: a serial run split for thieves", test_splittable_serial_runs},
        {"a learning serial run of long calls goes on as tasks", test_learning_run_goes_on_as_tasks},
        {"a split while a serial run's spawns overflow a deque of 3 or 4",
         test_split_while_spawns_overflow},
        {"automatic cutoff: every spawn a task where calls are long", test_long_calls_every_spawn},
        {"automatic cutoff: long calls and fib's learned on every worker",
         test_learned_on_every_worker},
        {"automatic cutoff: every spawn a task where a loop's spawns cost no more",
         test_loop_spawns_every_spawn},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("cutoff", cutoff),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
