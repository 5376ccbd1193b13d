/*
 * test_large_tasks.c - tasks whose arguments or result do not fit a frame's 48 bytes (spilled,
 * pareng.h): a 200-byte argument and a 104-byte result through a tree that thieves take
 * apart, fans of more unsynced spawns than the serial clone's slots, a deque that overflows,
 * a spill stack that goes on in chunks of the heap (piles of 300,000 spawns, blocks of mixed
 * sizes up and down across the chunks, a block larger than a chunk, the chunks' return to the
 * heap, a heap too small for them), void tasks, roots with large data, mutual recursion and
 * an IO engine's fibers, data aligned to more than a frame's (__m256d), and arguments of 17 to
 * 48 bytes, which stay in the frame that the task's first spawn reuses, checked against the
 * same computation in plain C.
 */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

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

/* Arguments of 17 to 48 bytes lie in the task's own frame, which its first spawn reuses for the
 * child; its parallel clones read them through a pointer to there (pareng.h,
 * PARENG__PARALLEL_CLONES), so they must have them before that spawn. The task spawns a task
 * of another type first (a double where its words were), then uses every word. */
typedef struct mid_arg {
    uint64_t v[4];
} mid_arg;
_Static_assert(sizeof(mid_arg) + sizeof(unsigned) > 16 &&
                   sizeof(mid_arg) + sizeof(unsigned) <= PARENG_FRAME_DATA_SIZE,
               "through a pointer, in the frame");

static uint64_t mid_words(const mid_arg *a, unsigned depth)
{
    return ((a->v[0] * 31 + a->v[1]) * 31 + a->v[2]) * 31 + a->v[3] + depth;
}

static mid_arg mid_child(const mid_arg *a, unsigned which)
{
    mid_arg c;
    for (unsigned i = 0; i < 4; i++)
        c.v[i] = a->v[i] * 6364136223846793005ull + which + i;
    return c;
}

static uint64_t mid_serial(mid_arg a, unsigned depth)
{
    uint64_t sum = mid_words(&a, depth) + (uint64_t)(((double)depth + 0.25) * 8);
    if (depth == 0)
        return sum;
    sum += mid_serial(mid_child(&a, 1), depth - 1);
    return sum + mid_serial(mid_child(&a, 0), depth - 1) + a.v[3];
}

PARENG_TASK_1(double, doubled, double, x)
{
    return 2 * x;
}

PARENG_TASK_2(uint64_t, mid_tree, mid_arg, a, unsigned, depth)
{
    PARENG_SPAWN(doubled, (double)depth + 0.25);
    uint64_t sum = mid_words(&a, depth) + (uint64_t)(PARENG_SYNC(doubled) * 4);
    if (depth == 0)
        return sum;
    PARENG_SPAWN(mid_tree, mid_child(&a, 0), depth - 1);
    PARENG_SPAWN(mid_tree, mid_child(&a, 1), depth - 1);
    sum += PARENG_SYNC(mid_tree);
    return sum + PARENG_SYNC(mid_tree) + a.v[3];
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

/* `count` spawns before the first sync: past a small deque's end, or past a lane's region of
 * the spill stack (16 MiB: 100,000 blocks of 256 bytes take 25 MiB). */
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

/* While this task sleeps on IO, its fiber's lane keeps the pile's frame, and the worker's
 * next fiber, on a lane of its own, steals and runs it: the pile goes on that lane's spill
 * stack (64 KiB in the arena, then chunks). */
PARENG_TASK_1(uint64_t, flat_on_another_fiber, uint64_t, count)
{
    PARENG_SPAWN(flat, count, 0);
    int slept = PARENG_IO_SLEEP(50 * 1000 * 1000);
    uint64_t total = PARENG_SYNC(flat);
    return slept == 0 ? total : 0;
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

/* Spawns past the lane's region of the spill stack, then syncs: the number of results that
 * differ from leaf's. */
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

/* ---- a pile that goes up and down across the chunks of a spill stack -------------------
 * Past its region of the arena (16 MiB), a lane's spill stack goes on in chunks of the heap
 * (1 MiB, then 2, 4...; engine/spill.c), and a block larger than the next chunk in a chunk of
 * its own. The walk below pushes and pops blocks of four sizes, the pile going up to about
 * 21 MiB and down to about 15 MiB again and again, and staggering on the way (one step in
 * four goes back): every boundary between the region and the chunks, and between chunks, is
 * crossed both ways many times. Each climb starts with a block of 2 MiB, larger than the
 * chunk that comes next there; one child in four allocates from the heap meanwhile. */

typedef struct small_arg {
    uint64_t v[7]; /* 56 bytes: a block of 64 */
} small_arg;

typedef struct wide_arg {
    uint64_t v[255]; /* 2,040 bytes: a block of 2,048 */
} wide_arg;

typedef struct huge_arg {
    uint64_t v[(2 * MIB) / sizeof(uint64_t)];
} huge_arg;

static uint64_t words_hash(const uint64_t *v, size_t n)
{
    uint64_t h = n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ v[i]) * 0x100000001b3ull;
    return h;
}

static void words_fill(uint64_t *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        v[i] = seed * (i + 1) ^ 0x9e3779b97f4a7c15ull;
}

static small_arg small_of(uint64_t seed)
{
    small_arg a;
    words_fill(a.v, 7, seed);
    return a;
}

static wide_arg wide_of(uint64_t seed)
{
    wide_arg a;
    words_fill(a.v, 255, seed);
    return a;
}

static huge_arg huge_of(uint64_t seed)
{
    huge_arg a;
    words_fill(a.v, sizeof a.v / sizeof *a.v, seed);
    return a;
}

PARENG_TASK_1(uint64_t, small_hash, small_arg, a) { return words_hash(a.v, 7); }

/* The hash in a record of the heap, which the parent frees after reading it. */
PARENG_TASK_1(uint64_t *, wide_record, wide_arg, a)
{
    uint64_t *record = pareng_alloc(PARENG_ENGINE(), 3 * sizeof *record);
    if (record)
        record[1] = words_hash(a.v, 255);
    return record;
}

PARENG_TASK_1(uint64_t, huge_hash, huge_arg, a)
{
    return words_hash(a.v, sizeof a.v / sizeof *a.v);
}

enum { SMALL, BIG, WIDE, HUGE };

static const size_t block_bytes[] = {
    [SMALL] = 64, [BIG] = 256, [WIDE] = 2048, [HUGE] = sizeof(huge_arg)};

static uint64_t walk_next(uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return *rng;
}

/* The number of results that differ from the plain C computation (every spawn's is checked),
 * or UINT64_MAX when the walk could not keep its book. */
PARENG_TASK_2(uint64_t, walk, uint64_t, seed, unsigned, sweeps)
{
    const size_t most = (size_t)1 << 20; /* blocks in the pile at once: far fewer */
    unsigned char *kinds = malloc(most);
    uint64_t *seeds = malloc(most * sizeof *seeds);
    if (!kinds || !seeds) {
        free(kinds);
        free(seeds);
        return UINT64_MAX;
    }
    uint64_t rng = seed | 1, wrong = 0;
    size_t n = 0, bytes = 0, peak = 0;
    for (unsigned sweep = 0; sweep <= sweeps; sweep++) {
        /* up to 20-21 MiB, down to 15-16 MiB; the last sweep goes down to nothing */
        bool up = sweep % 2 == 0 && sweep < sweeps;
        size_t goal = sweep == sweeps ? 0 : (up ? 20 : 15) * MIB + walk_next(&rng) % MIB;
        bool huge_first = up;
        while (up ? bytes < goal : bytes > goal) {
            bool push = up ? walk_next(&rng) % 4 != 0 : walk_next(&rng) % 4 == 0;
            if (push || n == 0) {
                uint64_t r = walk_next(&rng);
                unsigned kind = huge_first || r % 4096 == 0 ? HUGE
                                : r % 2                    ? SMALL
                                : r % 4 == 0               ? BIG
                                                           : WIDE;
                huge_first = false;
                uint64_t s = walk_next(&rng);
                switch (kind) {
                case SMALL: PARENG_SPAWN(small_hash, small_of(s)); break;
                case BIG: PARENG_SPAWN(tree, first_arg(s), 0); break;
                case WIDE: PARENG_SPAWN(wide_record, wide_of(s)); break;
                default: PARENG_SPAWN(huge_hash, huge_of(s)); break;
                }
                kinds[n] = (unsigned char)kind;
                seeds[n++] = s;
                bytes += block_bytes[kind];
                peak = bytes > peak ? bytes : peak;
                continue;
            }
            uint64_t s = seeds[--n];
            bytes -= block_bytes[kinds[n]];
            switch (kinds[n]) {
            case SMALL: {
                small_arg a = small_of(s);
                wrong += PARENG_SYNC(small_hash) != words_hash(a.v, 7);
                break;
            }
            case BIG: {
                big_result got = PARENG_SYNC(tree), want;
                big_arg a = first_arg(s);
                want = leaf(&a);
                wrong += memcmp(&got, &want, sizeof got) != 0;
                break;
            }
            case WIDE: {
                uint64_t *record = PARENG_SYNC(wide_record);
                wide_arg a = wide_of(s);
                wrong += !record || record[1] != words_hash(a.v, 255);
                if (record)
                    pareng_free(PARENG_ENGINE(), record);
                break;
            }
            default: {
                huge_arg *a = malloc(sizeof *a);
                uint64_t got = PARENG_SYNC(huge_hash);
                if (a) {
                    words_fill(a->v, sizeof a->v / sizeof *a->v, s);
                    wrong += got != words_hash(a->v, sizeof a->v / sizeof *a->v);
                }
                wrong += !a;
                free(a);
                break;
            }
            }
        }
    }
    free(kinds);
    free(seeds);
    return wrong + (n != 0) + (peak < 20 * MIB);
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

/* 0 for deque_capacity or shared_bytes: the default */
static pareng_engine *engine_of(unsigned workers, unsigned cutoff, unsigned deque_capacity,
                                size_t shared_bytes)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = cutoff;
    cfg.deque_capacity = deque_capacity;
    cfg.shared_bytes = shared_bytes;
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
        pareng_engine *e = engine_of(4, cutoffs[c], 0, 0);
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
    pareng_engine *e = engine_of(4, PARENG_CUTOFF_AUTO, 0, 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, even_tree, &got, first_arg(5), 10), 0);
    CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
    pareng_stop(e);
}

/* Every granularity, 1 and 3 workers (more than cores: thieves take frames). */
static void test_mid_arguments_outlive_the_first_spawn(void)
{
    const mid_arg root = {{1, 2, 3, 4}};
    uint64_t want = mid_serial(root, 12);
    for (unsigned workers = 1; workers <= 3; workers += 2)
        for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
            pareng_engine *e = engine_of(workers, cutoffs[c], 0, 0);
            uint64_t got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, mid_tree, &got, root, 12), 0);
            CU_ASSERT_EQUAL(got, want);
            pareng_stop(e);
        }
}

/* An IO engine: every fiber's lane has a spill stack of its own; on a fiber's lane past lane 0
 * 10,000 blocks of 256 bytes outgrow its region of the arena (64 KiB) and go on in chunks. */
static void test_io_engine(void)
{
    big_result want = tree_serial(first_arg(9), 11), got;
    pareng_engine *e = testing_start_engine(2, 0, PARENG_IO_DEPTH_AUTO);
    CU_ASSERT_EQUAL(PARENG_RUN(e, tree, &got, first_arg(9), 11), 0);
    CU_ASSERT_EQUAL(memcmp(&got, &want, sizeof got), 0);
    uint64_t sum = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &sum, 10000, 1), 0);
    CU_ASSERT_EQUAL(sum, flat_serial(10000));
    pareng_stop(e);
    e = testing_start_engine(1, 0, PARENG_IO_DEPTH_AUTO);
    for (unsigned round = 0; round < 2; round++) {
        CU_ASSERT_EQUAL(PARENG_RUN(e, flat_on_another_fiber, &sum, 10000), 0);
        CU_ASSERT_EQUAL(sum, flat_serial(10000));
    }
    CU_ASSERT(steals_of(e) > 0); /* the pile ran on another fiber's lane */
    pareng_stop(e);
}

/* ---- data aligned to more than a frame's 16 bytes: spilled too ----------------------------- */

#if defined(__x86_64__) && !defined(__clang__)
/* __m256d: the compiler reads and writes it with 32-byte aligned AVX moves, which fault on a
 * frame's data (16-byte aligned): such data go to a spill block, aligned to 64. Only these
 * functions are compiled for AVX; the test runs them where the CPU has it. */
#pragma GCC push_options
#pragma GCC target("avx")
#include <immintrin.h>

/* Halves x until its first element is 1, and sums the halves back: x again, exactly. 32 bytes
 * of data, which the size alone would keep in the frame. */
PARENG_TASK_1(__m256d, halves, __m256d, x)
{
    if (_mm256_cvtsd_f64(x) <= 1)
        return x;
    __m256d half = _mm256_mul_pd(x, _mm256_set1_pd(0.5));
    PARENG_SPAWN(halves, half);
    __m256d right = PARENG_CALL(halves, half);
    return _mm256_add_pd(PARENG_SYNC(halves), right);
}

static void check_halves(pareng_engine *e)
{
    __m256d got = _mm256_setzero_pd();
    CU_ASSERT_EQUAL(PARENG_RUN(e, halves, &got, _mm256_set_pd(4096, 3072, 2048, 1024)), 0);
    double v[4];
    _mm256_storeu_pd(v, got);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_DOUBLE_EQUAL(v[i], 1024.0 * (i + 1), 1e-9);
    /* a posted task's data must fit a frame: refused, not crashed */
    CU_ASSERT_EQUAL(PARENG_POST(e, 1, halves, _mm256_set1_pd(1)), -EINVAL);
}
#pragma GCC pop_options

static void test_over_aligned(void)
{
    if (!__builtin_cpu_supports("avx"))
        return;
    for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
        pareng_engine *e = engine_of(3, cutoffs[c], 0, 0);
        check_halves(e);
        pareng_stop(e);
    }
}
#else
static void test_over_aligned(void) {} /* no AVX to compile the test for */
#endif

static void test_fan_past_the_local_slots(void)
{
    big_result want = fan_serial(first_arg(11), 6);
    for (size_t c = 0; c < sizeof cutoffs / sizeof *cutoffs; c++) {
        pareng_engine *e = engine_of(4, cutoffs[c], 0, 0);
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
        pareng_engine *e = engine_of(2, cutoffs[c], 16, 0);
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

/* 300,000 blocks of 256 bytes: 57 MiB past the lane's region of 16 MiB, in chunks of the
 * heap, on more workers than cores. Each block took a first fit under the heap's lock before
 * there were chunks. */
static void test_spill_stack_overflow(void)
{
    for (size_t c = 0; c < 2; c++) { /* automatic, none */
        pareng_engine *e = engine_of(3, cutoffs[c], 0, 0);
        for (unsigned with_void = 0; with_void < 2; with_void++) {
            uint64_t got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &got, 300000, with_void), 0);
            CU_ASSERT_EQUAL(got, flat_serial(300000));
        }
        pareng_stop(e);
    }
}

/* A heap whose free list starts with 200,000 holes too small for a spill block (192 bytes
 * with their headers; a 256-byte block takes 320), as the kept allocations of earlier runs'
 * children leave it: a pile past the lane's region takes a chunk at a time, each a first fit
 * over the holes, where it took a first fit for every block (minutes for this pile). */
static void test_spill_over_a_fragmented_heap(void)
{
    enum { HOLES = 200000 };
    pareng_engine *e = engine_of(3, PARENG_CUTOFF_AUTO, 0, 0);
    void **holes = malloc(HOLES * sizeof *holes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(holes);
    size_t failed = 0;
    for (size_t i = 0; i < HOLES; i++) {
        holes[i] = pareng_alloc(e, 128);
        failed += !holes[i] || !pareng_alloc(e, 64); /* kept: the holes stay apart */
    }
    /* from the last: each goes to the head of the free list, found at once */
    for (size_t i = HOLES; i-- > 0;)
        failed += holes[i] && pareng_free(e, holes[i]) != 0;
    free(holes);
    CU_ASSERT_EQUAL(failed, 0);
    uint64_t got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &got, 300000, 0), 0);
    CU_ASSERT_EQUAL(got, flat_serial(300000));
    pareng_stop(e);
}

/* Spill blocks go back at their syncs, and a chunk when its first block does; the data must
 * be read before (a chunk's memory may then be another process's allocation). Three
 * workers, children that allocate shared memory meanwhile and keep it, so that the heap is
 * fragmented between the runs' chunks; 300,000 spawns a run. */
static void test_spill_blocks_read_before_freed(void)
{
    pareng_engine *e = engine_of(3, PARENG_CUTOFF_NONE, 0, 0);
    for (unsigned round = 0; round < 3; round++) {
        uint64_t wrong = UINT64_MAX;
        CU_ASSERT_EQUAL(PARENG_RUN(e, flat_allocating, &wrong, 300000), 0);
        CU_ASSERT_EQUAL(wrong, 0);
    }
    pareng_stop(e);
}

/* Up and down across the chunks, blocks of four sizes, some larger than a chunk (the walk). */
static void test_spill_chunk_boundaries(void)
{
    for (size_t c = 0; c < 2; c++) { /* automatic, none */
        pareng_engine *e = engine_of(3, cutoffs[c], 0, 0);
        for (uint64_t seed = 1; seed <= 2; seed++) {
            uint64_t wrong = UINT64_MAX;
            CU_ASSERT_EQUAL(PARENG_RUN(e, walk, &wrong, seed, 8), 0);
            CU_ASSERT_EQUAL(wrong, 0);
        }
        pareng_stop(e);
    }
}

/* A heap of 16 MiB: the chunks of a pile 3.5 MiB past the region fit (1, 2 and 4 MiB), and
 * all of them, the spare included, are back in the heap when the run returns (15 MiB fit in
 * one block). */
static void test_spill_chunks_go_back(void)
{
    pareng_engine *e = engine_of(2, PARENG_CUTOFF_AUTO, 0, 16 * MIB);
    for (unsigned round = 0; round < 2; round++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, flat, &got, 80000, 0), 0);
        CU_ASSERT_EQUAL(got, flat_serial(80000));
        void *all = pareng_alloc(e, 15 * MIB);
        CU_ASSERT_PTR_NOT_NULL(all);
        pareng_free(e, all);
    }
    pareng_stop(e);
}

/* A heap of 4 MiB cannot hold the chunks of a pile 8.4 MiB past the region: the run fails
 * with the cause named, nothing waits forever and no process is left. */
static void test_spill_out_of_memory(void)
{
    pareng_engine *e = engine_of(2, PARENG_CUTOFF_AUTO, 0, 4 * MIB);
    uint64_t got = 0;
    CU_ASSERT(PARENG_RUN(e, flat, &got, 100000, 0) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "spilled spawns"));
    CU_ASSERT(PARENG_RUN(e, flat, &got, 10, 0) < 0); /* the engine is failed for good */
    pareng_stop(e);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
}

/* The root's data lie in the caller's memory, which the workers do not share: copied in and
 * out for the run. */
static void test_root_with_large_data(void)
{
    pareng_engine *e = engine_of(2, PARENG_CUTOFF_AUTO, 0, 0);
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
        {"300,000 large spawns: the spill stack goes on in chunks", test_spill_stack_overflow},
        {"300,000 large spawns over a fragmented heap", test_spill_over_a_fragmented_heap},
        {"spill blocks are read before they go back", test_spill_blocks_read_before_freed},
        {"mixed spill blocks up and down across chunks", test_spill_chunk_boundaries},
        {"spill chunks go back to the heap when the run ends", test_spill_chunks_go_back},
        {"a heap too small for the spill chunks fails the run", test_spill_out_of_memory},
        {"a root with large arguments and results", test_root_with_large_data},
        {"mutually recursive large tasks", test_mutually_recursive},
        {"32-byte arguments outlive the task's first spawn, of another task",
         test_mid_arguments_outlive_the_first_spawn},
        {"large tasks on an IO engine's fibers", test_io_engine},
        {"__m256d arguments and results (aligned to 32): spilled", test_over_aligned},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("tasks larger than a frame", large),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
