/*
 * test_large_tasks.c - tasks whose arguments or result do not fit a frame's 48 bytes (spilled,
 * pareng.h): a 200-byte argument and a 104-byte result through a tree that thieves take
 * apart, fans of more unsynced spawns than the serial clone's slots, a deque that overflows,
 * a spill stack that overflows into the heap, void tasks, roots with large data, mutual
 * recursion and an IO engine's fibers, checked against the same computation in plain C.
 */
#include "pareng.h"
#include "testing.h"

#include <stdint.h>
#include <string.h>

typedef struct big_arg {
    uint64_t v[25]; /* 200 bytes */
} big_arg;

typedef struct big_result {
    uint64_t w[13]; /* 104 bytes */
} big_result;

_Static_assert(sizeof(big_arg) > PARENG_FRAME_DATA_SIZE, "spilled");
_Static_assert(sizeof(big_result) > PARENG_FRAME_DATA_SIZE, "spilled");

/* ---- the computation, in plain C ------------------------------------------------------ */

static big_arg child_arg(const big_arg *a, unsigned which, unsigned depth)
{
    big_arg c;
    for (unsigned i = 0; i < 25; i++)
        c.v[i] = a->v[i] * 6364136223846793005ull + which * 1442695040888963407ull + depth + i;
    return c;
}

static big_result leaf(const big_arg *a)
{
    big_result r;
    for (unsigned i = 0; i < 13; i++) {
        r.w[i] = i;
        for (unsigned j = 0; j < 25; j++)
            r.w[i] = r.w[i] * 31 + (a->v[j] ^ (a->v[(i + j) % 25] >> 7));
    }
    return r;
}

static big_result joined(const big_result *left, const big_result *right)
{
    big_result r;
    for (unsigned i = 0; i < 13; i++)
        r.w[i] = left->w[i] * 1000003 ^ right->w[(i + 1) % 13];
    return r;
}

static big_result tree_serial(big_arg a, unsigned depth)
{
    if (depth == 0)
        return leaf(&a);
    big_result l = tree_serial(child_arg(&a, 0, depth), depth - 1);
    big_result r = tree_serial(child_arg(&a, 1, depth), depth - 1);
    return joined(&l, &r);
}

#define FAN 6 /* more unsynced spawns than the serial clone's local slots */

static big_result fan_serial(big_arg a, unsigned depth)
{
    big_result acc = leaf(&a);
    for (unsigned k = 0; k < FAN; k++) {
        big_result r = tree_serial(child_arg(&a, k, depth), depth);
        acc = joined(&acc, &r);
    }
    return acc;
}

static big_arg first_arg(uint64_t seed)
{
    big_arg a;
    for (unsigned i = 0; i < 25; i++)
        a.v[i] = seed * (i + 1) + 0x9e3779b97f4a7c15ull;
    return a;
}

/* ---- the same as tasks ------------------------------------------------------------------ */

PARENG_TASK_2(big_result, tree, big_arg, a, unsigned, depth)
{
    if (depth == 0)
        return leaf(&a);
    PARENG_SPAWN(tree, child_arg(&a, 0, depth), depth - 1);
    big_result r = PARENG_CALL(tree, child_arg(&a, 1, depth), depth - 1);
    big_result l = PARENG_SYNC(tree);
    return joined(&l, &r);
}

PARENG_TASK_2(big_result, fan, big_arg, a, unsigned, depth)
{
    big_result acc = leaf(&a), results[FAN];
    for (unsigned k = 0; k < FAN; k++)
        PARENG_SPAWN(tree, child_arg(&a, k, depth), depth);
    for (unsigned k = FAN; k-- > 0;)
        results[k] = PARENG_SYNC(tree);
    for (unsigned k = 0; k < FAN; k++)
        acc = joined(&acc, &results[k]);
    return acc;
}

/* Mutually recursive large tasks: each declared before its body uses the other. */
PARENG_DECLARE_TASK_2(big_result, even_tree, big_arg, a, unsigned, depth);

PARENG_TASK_2(big_result, odd_tree, big_arg, a, unsigned, depth)
{
    if (depth == 0)
        return leaf(&a);
    PARENG_SPAWN(even_tree, child_arg(&a, 0, depth), depth - 1);
    big_result r = PARENG_CALL(even_tree, child_arg(&a, 1, depth), depth - 1);
    big_result l = PARENG_SYNC(even_tree);
    return joined(&l, &r);
}

PARENG_TASK_2(big_result, even_tree, big_arg, a, unsigned, depth)
{
    if (depth == 0)
        return leaf(&a);
    PARENG_SPAWN(odd_tree, child_arg(&a, 0, depth), depth - 1);
    big_result r = PARENG_CALL(odd_tree, child_arg(&a, 1, depth), depth - 1);
    big_result l = PARENG_SYNC(odd_tree);
    return joined(&l, &r);
}

/* A large argument, a small result; and a void task that writes its parent's local. */
PARENG_TASK_1(uint64_t, checksum, big_arg, a)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < 25; i++)
        sum = sum * 131 + a.v[i];
    return sum;
}

PARENG_TASK_2(void, store_checksum, big_arg, a, uint64_t *, out)
{
    *out = PARENG_CALL(checksum, a);
}

/* `count` spawns before the first sync: past a small deque's end, or past a lane's spill
 * stack (16 MiB: 100,000 blocks of 256 bytes take 25 MiB). */
PARENG_TASK_2(uint64_t, flat, uint64_t, count, unsigned, with_void)
{
    uint64_t total = 0, *stored = NULL;
    if (with_void) {
        stored = pareng_alloc(PARENG_ENGINE(), count * sizeof *stored);
        if (!stored)
            return 0;
        for (uint64_t i = 0; i < count; i++)
            PARENG_SPAWN(store_checksum, first_arg(i), &stored[i]);
        for (uint64_t i = count; i-- > 0;)
            PARENG_SYNC(store_checksum);
        for (uint64_t i = 0; i < count; i++)
            total += stored[i];
        pareng_free(PARENG_ENGINE(), stored);
        return total;
    }
    for (uint64_t i = 0; i < count; i++)
        PARENG_SPAWN(checksum, first_arg(i));
    for (uint64_t i = 0; i < count; i++)
        total += PARENG_SYNC(checksum);
    return total;
}

/* A child that takes shared memory and writes it (the block it gets may be one its
 * siblings' spilled data have just left); it keeps it, so that every later allocation
 * lands in such blocks too: the engine, which the test stops, ends with them. */
PARENG_TASK_1(big_result, leaf_allocating, big_arg, a)
{
    unsigned char *scratch = pareng_alloc(PARENG_ENGINE(), 64);
    if (scratch)
        memset(scratch, 0xff, 64);
    return leaf(&a);
}

/* Spawns past the spill stack, then syncs: the number of results that differ from leaf's. */
PARENG_TASK_1(uint64_t, flat_allocating, uint64_t, count)
{
    for (uint64_t i = 0; i < count; i++)
        PARENG_SPAWN(leaf_allocating, first_arg(i));
    uint64_t wrong = 0;
    for (uint64_t i = count; i-- > 0;) {
        big_result got = PARENG_SYNC(leaf_allocating);
        big_arg a = first_arg(i);
        big_result want = leaf(&a);
        wrong += memcmp(&got, &want, sizeof got) != 0;
    }
    return wrong;
}

static uint64_t flat_serial(uint64_t count)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        big_arg a = first_arg(i);
        uint64_t sum = 0;
        for (unsigned k = 0; k < 25; k++)
            sum = sum * 131 + a.v[k];
        total += sum;
    }
    return total;
}

static pareng_engine *engine_of(unsigned workers, unsigned cutoff, unsigned deque_capacity)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = cutoff;
    cfg.deque_capacity = deque_capacity;
    return testing_start(&cfg);
}

static uint64_t steals_of(pareng_engine *e)
{
    uint64_t steals = 0;
    for (unsigned i = 0; i < pareng_engine_workers(e); i++) {
        pareng_stats s;
        CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &s), 0);
        steals += s.steals + s.leapfrogs;
    }
    return steals;
}

static const unsigned cutoffs[] = {PARENG_CUTOFF_AUTO, PARENG_CUTOFF_NONE, 3};

/* More workers than cores, every granularity: thieves take large frames, whose data lie in
 * the spawner's spill stack, and write large results back into it. */
static void test_tree_stolen_exact(void)
{
    const unsigned depth = 13;
    big_result want = tree_serial(first_arg(7), depth);
    for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
        pareng_engine *e = engine_of(4, cutoffs[c], 0);
        /* a few rounds, more until something was stolen: on a busy machine the other
         * workers may not get a CPU before a short run ends */
        for (int round = 0; round < 3 || (steals_of(e) == 0 && round < 200); round++) {
            big_result got;
            memset(&got, 0, sizeof got);
            CU_ASSERT_EQUAL(PARENG_RUN(e, tree, &got, first_arg(7), depth), 0);
            CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
        }
        CU_ASSERT(steals_of(e) > 0);
        pareng_stop(e);
    }
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
}

static void test_mutually_recursive(void)
{
    big_result want = tree_serial(first_arg(5), 10), got;
    pareng_engine *e = engine_of(4, PARENG_CUTOFF_AUTO, 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, even_tree, &got, first_arg(5), 10), 0);
    CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
    pareng_stop(e);
}

/* An IO engine: every fiber's lane has a spill stack of its own. */
static void test_io_engine(void)
{
    big_result want = tree_serial(first_arg(9), 11), got;
    pareng_engine *e = testing_start_engine(2, 0, PARENG_IO_DEPTH_AUTO);
    CU_ASSERT_EQUAL(PARENG_RUN(e, tree, &got, first_arg(9), 11), 0);
    CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
    uint64_t sum = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &sum, 3000, 1), 0);
    CU_ASSERT_EQUAL(sum, flat_serial(3000));
    pareng_stop(e);
}

static void test_fan_past_the_local_slots(void)
{
    big_result want = fan_serial(first_arg(11), 6);
    for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
        pareng_engine *e = engine_of(4, cutoffs[c], 0);
        big_result got;
        CU_ASSERT_EQUAL(PARENG_RUN(e, fan, &got, first_arg(11), 6), 0);
        CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
        /* deep enough that the serial clone runs the fans' children: its slots hold pointers */
        CU_ASSERT_EQUAL(PARENG_RUN(e, tree, &got, first_arg(11), 9), 0);
        big_result deep = tree_serial(first_arg(11), 9);
        CU_ASSERT_EQUAL(memcmp(&got, &deep, sizeof got), 0);
        pareng_stop(e);
    }
}

/* A deque of 16 frames: the spawns past it run at once, their results kept aside, and their
 * data still in the spill stack. */
static void test_deque_overflow(void)
{
    for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
        pareng_engine *e = engine_of(2, cutoffs[c], 16);
        for (unsigned with_void = 0; with_void < 2; with_void++) {
            uint64_t got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &got, 1000, with_void), 0);
            CU_ASSERT_EQUAL(got, flat_serial(1000));
        }
        uint64_t overflows = 0;
        for (unsigned i = 0; i < 2; i++) {
            pareng_stats s;
            CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &s), 0);
            overflows += s.overflows;
        }
        CU_ASSERT(overflows > 0);
        pareng_stop(e);
    }
}

/* 100,000 blocks of 256 bytes outgrow a lane's 16 MiB spill stack: the rest come from the
 * heap, and go back to it at their syncs. */
static void test_spill_stack_overflow(void)
{
    pareng_engine *e = engine_of(2, PARENG_CUTOFF_NONE, 0);
    for (unsigned with_void = 0; with_void < 2; with_void++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &got, 100000, with_void), 0);
        CU_ASSERT_EQUAL(got, flat_serial(100000));
    }
    /* every spill block went back: the heap holds one large block again */
    void *all = pareng_alloc(e, 6u << 20);
    CU_ASSERT_PTR_NOT_NULL(all);
    pareng_free(e, all);
    pareng_stop(e);
}

/* Spill blocks from the heap go back to it at their syncs, where any process may take them
 * at once: their data must be read before. Three workers, children that allocate shared
 * memory meanwhile, 150,000 spawns (28 MiB of blocks, past the 16 MiB spill stack). */
static void test_spill_blocks_read_before_freed(void)
{
    pareng_engine *e = engine_of(3, PARENG_CUTOFF_NONE, 0);
    for (unsigned round = 0; round < 6; round++) {
        uint64_t wrong = UINT64_MAX;
        CU_ASSERT_EQUAL(PARENG_RUN(e, flat_allocating, &wrong, 150000), 0);
        CU_ASSERT_EQUAL(wrong, 0);
    }
    pareng_stop(e);
}

/* The root's data lie in the caller's memory, which the workers do not share: copied in and
 * out for the run. */
static void test_root_with_large_data(void)
{
    pareng_engine *e = engine_of(2, PARENG_CUTOFF_AUTO, 0);
    uint64_t sum = 0;
    big_arg a = first_arg(3);
    CU_ASSERT_EQUAL(PARENG_RUN(e, checksum, &sum, a), 0);
    CU_ASSERT_EQUAL(sum, flat_serial(4) - flat_serial(3));
    big_result r;
    CU_ASSERT_EQUAL(PARENG_RUN(e, tree, &r, a, 0), 0);
    big_result want = leaf(&a);
    CU_ASSERT_EQUAL(memcmp(&r, &want, sizeof r), 0);
    pareng_stop(e);
}

int main(void)
{
    CU_TestInfo large[] = {
        {"200-byte arguments, 104-byte results: a stolen tree, exact", test_tree_stolen_exact},
        {"more unsynced large spawns than the serial clone's slots", test_fan_past_the_local_slots},
        {"large spawns past a full deque", test_deque_overflow},
        {"large spawns past the spill stack: from the heap", test_spill_stack_overflow},
        {"spill blocks from the heap are read before they are freed", test_spill_blocks_read_before_freed},
        {"a root with large arguments and results", test_root_with_large_data},
        {"mutually recursive large tasks", test_mutually_recursive},
        {"large tasks on an IO engine's fibers", test_io_engine},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("tasks larger than a frame", large),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
