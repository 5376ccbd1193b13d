/*
 * test_cplusplus.cpp - include/pareng.h in a C++17 translation unit, as HPC codes in C++
 * include it: tasks, spawns from a helper, one run's cutoff, loops, IO from a task, tasks that
 * return nothing (and split their serial runs), mutually recursive tasks, a child writing its
 * parent's locals, arguments and results larger than a frame, std::complex and structs with
 * default member initializers, all compiled as C++ and run with exact results. (`'_Atomic'
 * does not name a type` before.)
 */
#include <pareng.h>

#include <sys/mman.h>

#include <atomic>
#include <complex>
#include <cstdio>
#include <vector>

static int passed, failed;

/* A tree of std::vectors that tasks make with new, read and deleted by the caller. */
struct branch {
    std::vector<unsigned> labels;
    branch *left = nullptr, *right = nullptr;
};

PARENG_TASK_2(branch *, grow, unsigned, depth, unsigned, label)
{
    branch *b = new branch;
    b->labels.assign(label % 7 + 1, label);
    if (depth > 0) {
        PARENG_SPAWN(grow, depth - 1, 2 * label);
        b->right = PARENG_CALL(grow, depth - 1, 2 * label + 1);
        b->left = PARENG_SYNC(grow);
    }
    return b;
}

static uint64_t weigh_and_delete(branch *b)
{
    if (!b)
        return 0;
    uint64_t sum = 0;
    for (unsigned l : b->labels)
        sum += l;
    sum += weigh_and_delete(b->left) + weigh_and_delete(b->right);
    delete b;
    return sum;
}

static void check(bool ok, const char *what)
{
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    (ok ? passed : failed)++;
}

PARENG_TASK_1(uint64_t, fib, unsigned, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(fib, n - 1);
    uint64_t b = PARENG_CALL(fib, n - 2);
    uint64_t a = PARENG_SYNC(fib);
    return a + b;
}

/* a helper that spawns on behalf of its task */
static inline uint64_t both_halves(PARENG_CONTEXT_PARAMS, unsigned n)
{
    PARENG_SPAWN(fib, n - 1);
    uint64_t b = PARENG_CALL(fib, n - 2);
    return PARENG_SYNC(fib) + b;
}

PARENG_TASK_1(uint64_t, fib_helped, unsigned, n)
{
    return n < 2 ? n : both_halves(PARENG_CONTEXT, n);
}

PARENG_TASK_1(int, nap, unsigned, us)
{
    long ns = long(us) * 1000; /* any integer type, as in C: no narrowing error */
    return PARENG_IO_SLEEP(ns);
}

/* a call with an argument of another integer type, converted as in C */
PARENG_TASK_1(uint64_t, fib_of_long, long, n)
{
    return PARENG_CALL(fib, n);
}

/* returns nothing: counts into its parent's counter, on the parent's stack */
PARENG_TASK_2(void, count, unsigned, depth, std::atomic<unsigned> *, leaves)
{
    if (depth == 0) {
        leaves->fetch_add(1);
        return;
    }
    PARENG_SPAWN(count, depth - 1, leaves);
    PARENG_CALL(count, depth - 1, leaves);
    PARENG_SYNC(count);
}
PARENG_TASK_SPLITTABLE(count) /* its serial runs' splittable clone, compiled as C++ */

PARENG_TASK_1(unsigned, leaves_of, unsigned, depth)
{
    std::atomic<unsigned> leaves{0};
    PARENG_CALL(count, depth, &leaves);
    return leaves.load();
}

/* mutual recursion: declared before its definition */
PARENG_DECLARE_TASK_1(unsigned, down_b, unsigned, n);
PARENG_TASK_1(unsigned, down_a, unsigned, n)
{
    if (n == 0)
        return 0;
    PARENG_SPAWN(down_b, n - 1);
    return 1 + PARENG_SYNC(down_b);
}
PARENG_TASK_1(unsigned, down_b, unsigned, n)
{
    return n == 0 ? 0 : 1 + PARENG_CALL(down_a, n - 1);
}

/* A plain function as parallel_for's body, as tbb::parallel_for takes one: it writes memory
 * mapped shared before the start, which a global points to. */
static int *marks;
static const size_t n_marks = 5000;
static void mark(size_t i)
{
    marks[i] = int(i) * 2;
}

static void add_ones(void *ctx, size_t begin, size_t end)
{
    auto *v = static_cast<int *>(ctx);
    for (size_t i = begin; i < end; i++)
        v[i] += 1;
}

/* Larger than a frame's 48 bytes: spilled (pareng.h); const-qualified, as C++ code often
 * declares parameters and results. */
struct vec16 {
    uint64_t x[16];
};

PARENG_TASK_2(const vec16, powers, const vec16, base, const unsigned, depth)
{
    if (depth == 0)
        return base;
    vec16 half = base;
    for (uint64_t &x : half.x)
        x += 1;
    PARENG_SPAWN(powers, half, depth - 1);
    vec16 right = PARENG_CALL(powers, base, depth - 1);
    vec16 left = PARENG_SYNC(powers);
    for (int i = 0; i < 16; i++)
        right.x[i] += left.x[i];
    return right;
}

/* Types without a trivial default constructor, as C++ code passes them: std::complex (an FFT's
 * values), a struct with default member initializers. */
PARENG_TASK_2(std::complex<double>, power, std::complex<double>, z, unsigned, n)
{
    if (n == 0)
        return 1.0;
    PARENG_SPAWN(power, z, n / 2);
    std::complex<double> h = PARENG_SYNC(power);
    return n % 2 ? h * h * z : h * h;
}

struct defaults {
    int count = 3;
    double scale = 0.5;
};

PARENG_TASK_2(defaults, doubled, defaults, d, unsigned, depth)
{
    if (depth == 0)
        return defaults{d.count * 2, d.scale * 2};
    PARENG_SPAWN(doubled, d, depth - 1);
    defaults right = PARENG_CALL(doubled, d, depth - 1);
    defaults left = PARENG_SYNC(doubled);
    return defaults{left.count + right.count, left.scale + right.scale};
}

/* 24 bytes of arguments and more: the parallel clones read them through a pointer into the
 * frame (pareng.h); a type whose copy constructor takes a non-const reference, as old C++
 * code declares it, still copies from there. */
struct tally {
    uint64_t nodes, leaves, depth;
    tally() = default;
    tally(tally &) = default;
    tally &operator=(const tally &) = default;
};

PARENG_TASK_2(uint64_t, tallied, tally, t, unsigned, depth)
{
    if (depth == 0)
        return t.nodes + t.leaves + t.depth;
    tally child = t;
    child.depth += 1;
    PARENG_SPAWN(tallied, child, depth - 1);
    uint64_t right = PARENG_CALL(tallied, child, depth - 1);
    return right + PARENG_SYNC(tallied) + t.nodes;
}

int main()
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 3;
    pareng_engine *e = nullptr;
    void *marked = mmap(nullptr, n_marks * sizeof(int), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    marks = marked == MAP_FAILED ? nullptr : static_cast<int *>(marked);
    check(pareng_start(&e, &cfg) == 0, "start");
    if (!e)
        return 1;
    uint64_t r = 0;
    check(PARENG_RUN(e, fib, &r, 27) == 0 && r == 196418, "PARENG_RUN: fib(27)");
    r = 0;
    check(PARENG_RUN_CUTOFF(e, PARENG_CUTOFF_NONE, fib_helped, &r, 24) == 0 && r == 46368,
          "PARENG_RUN_CUTOFF, a helper with PARENG_CONTEXT");
    r = 0;
    check(PARENG_RUN(e, fib_of_long, &r, 20L) == 0 && r == 6765,
          "PARENG_CALL converts its arguments (long to unsigned)");
    unsigned u = 0;
    check(PARENG_RUN(e, leaves_of, &u, 10) == 0 && u == 1024, "a void task, its result by pointer");
    u = 0;
    check(PARENG_RUN(e, down_a, &u, 500) == 0 && u == 500, "mutually recursive tasks");
    vec16 base{}, sum{};
    for (int i = 0; i < 16; i++)
        base.x[i] = uint64_t(i);
    /* 2^10 leaves; the leaf k steps of `half` below the root adds k to each element: the sum
     * is 2^10 x[i] + sum over leaves of their halves taken, 10 * 2^9 */
    bool big = PARENG_RUN(e, powers, &sum, base, 10) == 0;
    for (int i = 0; big && i < 16; i++)
        big = sum.x[i] == 1024u * uint64_t(i) + 10u * 512u;
    check(big, "const arguments and results of 128 bytes (spilled)");
    std::complex<double> z;
    check(PARENG_RUN(e, power, &z, std::complex<double>(0, 1), 13) == 0 &&
              z == std::complex<double>(0, 1),
          "std::complex arguments and results: i^13 = i");
    defaults d;
    check(PARENG_RUN(e, doubled, &d, defaults{}, 6) == 0 && d.count == 6 * 64 && d.scale == 64.0,
          "a struct with default member initializers");
    tally t;
    t.nodes = 1, t.leaves = 2, t.depth = 0;
    uint64_t tallies = 0;
    /* 2^8 leaves of 1 + 2 + 8, and 255 inner nodes of 1 */
    check(PARENG_RUN(e, tallied, &tallies, t, 8) == 0 && tallies == 256 * 11 + 255,
          "24-byte arguments whose copy constructor takes a non-const reference");
    const size_t n = 100000;
    int *v = static_cast<int *>(pareng_alloc(e, n * sizeof(int)));
    for (size_t i = 0; v && i < n; i++)
        v[i] = int(i);
    bool loop = v && pareng_for(e, 0, n, 0, add_ones, v) == 0;
    for (size_t i = 0; loop && i < n; i++)
        loop = v[i] == int(i) + 1;
    check(loop, "pareng_for on pareng_alloc memory");
    /* A lambda made after the start, capturing by value a value written after it: the
     * workers see it as the caller has it (its address as pareng_for's ctx, inlined into
     * main, was read as at the start: 0 where 3 was written) */
    volatile int written_late = 3;
    const int step = written_late;
    loop = v && pareng::parallel_for(e, 0, n, [=](size_t i) { v[i] += step; }) == 0;
    for (size_t i = 0; loop && i < n; i++)
        loop = v[i] == int(i) + 1 + step;
    check(loop, "pareng::parallel_for: a lambda's captures, written after the start");
    loop = marks && pareng::parallel_for(e, 0, n_marks, mark, 64) == 0;
    for (size_t i = 0; loop && i < n_marks; i++)
        loop = marks[i] == int(i) * 2;
    check(loop, "pareng::parallel_for: a plain function");
    check(pareng_free(e, v) == 0, "pareng_free");
    branch *tree = nullptr;
    uint64_t expected = 0;
    for (unsigned label = 1; label < 1u << 11; label++)
        expected += uint64_t(label) * (label % 7 + 1);
    bool shared = pareng_task_malloc_shared();
    check(!shared || (PARENG_RUN(e, grow, &tree, 10, 1) == 0 && weigh_and_delete(tree) == expected),
          shared ? "a tree of std::vectors made with new in tasks, read and deleted by the caller"
                 : "(a sanitizer's malloc: tasks' new is per worker)");
    pareng_stop(e);

    cfg.io_depth = PARENG_IO_DEPTH_AUTO;
    e = nullptr;
    int slept = -1;
    check(pareng_start(&e, &cfg) == 0 && PARENG_RUN(e, nap, &slept, 100) == 0 && slept == 0,
          "PARENG_IO_SLEEP from a task");
    pareng_stop(e);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
