/*
 * asan_program.cpp - a program built with -fsanitize=address that links libpareng built
 * without it, as a user debugging their own code does: tasks that throw and catch exceptions
 * deep in their own calls, then use the stack again. AddressSanitizer must be told of the task
 * stacks (fiber.c): an exception's unwinding otherwise left the poison of its frames there,
 * and correct code after it was reported as a stack-buffer-overflow that failed the run.
 * Exit status 0 when the run gives the serial answer and ASan reported nothing.
 */
#include <pareng.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

__attribute__((noinline)) static int throw_deep(int depth)
{
    volatile char frame[256];
    memset((char *)frame, depth, sizeof frame);
    if (depth == 0)
        throw std::runtime_error("the bottom");
    return throw_deep(depth - 1) + frame[3];
}

__attribute__((noinline)) static int use_stack(int depth)
{
    volatile char frame[512];
    for (int i = 0; i < 512; i++)
        frame[i] = (char)(i & 63);
    return depth == 0 ? frame[100] : use_stack(depth - 1) + frame[depth];
}

static long leaf(void)
{
    long caught = 0;
    try {
        throw_deep(10);
    } catch (const std::exception &) {
        caught = 1;
    }
    return caught + use_stack(20);
}

PARENG_TASK_1(long, tree, int, n)
{
    if (n < 6)
        return leaf();
    PARENG_SPAWN(tree, n - 1);
    long right = PARENG_CALL(tree, n - 2);
    return PARENG_SYNC(tree) + right;
}

static long tree_serial(int n)
{
    return n < 6 ? leaf() : tree_serial(n - 1) + tree_serial(n - 2);
}

int main()
{
    pareng_engine *e;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 3;
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "start: %s\n", pareng_last_error());
        return 2;
    }
    long got = 0, want = tree_serial(16);
    int rc = PARENG_RUN(e, tree, &got, 16);
    if (rc != 0 || got != want)
        fprintf(stderr, "rc %d, %ld against %ld %s\n", rc, got, want,
                rc ? pareng_last_error() : "");
    pareng_stop(e);
    return rc != 0 || got != want;
}
