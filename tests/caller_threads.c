/*
 * caller_threads.c - the caller's memory, in a process of its own (what was mapped and
 * malloc'd before the first pareng_start decides), refused to tasks, named. Usage:
 * caller_threads block|stack|heap.
 *   - block: a block that one of the caller's threads malloc'd before the first start (large:
 *     glibc maps it for itself). The list of what a worker seals is mapped at that first
 *     start, next to the block, and the kernel merged the two mappings: the rest of the
 *     mapping began mid-page, where no block could be found, and the tasks' writes went to
 *     the workers' copies with exit status 0.
 *   - stack: an array on the stack of a thread that started the engine: only the main thread's
 *     stack was sealed, and the writes were lost as well. The thread's own data at the top of
 *     that stack (glibc's thread block, its static thread-locals) stay the worker's to write:
 *     a task that sets errno and a thread-local runs.
 *   - heap: a block the caller malloc'd right after the start, filled and read by tasks. It
 *     took a chunk that the start's own allocations had left free (hwloc's XML), which the
 *     workers had as it was: the tasks read the XML, with exit status 0.
 * Exit status 0 when that holds, 77 (skipped) where tasks' malloc is not libpareng's (under a
 * sanitizer: nothing is sealed), 2 for a bad usage.
 */
#include <pareng.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT 100000
#define ON_THE_STACK 1000

static void *malloc_a_block(void *unused)
{
    (void)unused;
    long *block = malloc(COUNT * sizeof *block);
    if (block)
        memset(block, 0, COUNT * sizeof *block);
    return block;
}

static void triple(void *ctx, size_t begin, size_t end)
{
    long *x = ctx;
    for (size_t i = begin; i < end; i++)
        x[i] = 3 * (long)i;
}

static __thread long calls;

/* errno and a thread-local written, as any task may */
static void triple_after_a_failed_open(void *ctx, size_t begin, size_t end)
{
    long *x = ctx;
    for (size_t i = begin; i < end; i++) {
        calls++;
        x[i] = open("/nonexistent/pareng", O_RDONLY) < 0 && errno == ENOENT ? 3 * (long)i : -1;
    }
}

/* rc -ECHILD, the message naming `memory`; says what it got otherwise */
static int refused(const char *what, int rc, const char *memory)
{
    if (rc == -ECHILD && strstr(pareng_last_error(), memory))
        return 1;
    fprintf(stderr, "%s: %d %s\n", what, rc, rc ? pareng_last_error() : "(no error)");
    return 0;
}

static void *start_in_a_thread(void *unused)
{
    (void)unused;
    long on_the_stack[ON_THE_STACK] = {0};
    pareng_engine *e;
    if (pareng_start(&e, NULL) < 0) {
        fprintf(stderr, "%s\n", pareng_last_error());
        return NULL;
    }
    long *shared = pareng_alloc(e, ON_THE_STACK * sizeof *shared);
    int ran = shared &&
              pareng_for(e, 0, ON_THE_STACK, 0, triple_after_a_failed_open, shared) == 0;
    for (size_t i = 0; ran && i < ON_THE_STACK; i++)
        ran = shared[i] == 3 * (long)i;
    if (!ran)
        fprintf(stderr, "a run from the thread: %s\n", pareng_last_error());
    int ok = ran && refused("the thread's stack",
                            pareng_for(e, 0, ON_THE_STACK, 0, triple, on_the_stack),
                            "in the caller's stack");
    pareng_stop(e);
    return ok ? e : NULL; /* not NULL: all held */
}

/* the sum of n ones, which tasks read from x */
static pareng_value count_ones(void *ctx, size_t begin, size_t end)
{
    const long *x = ctx;
    pareng_value sum = {.i = 0};
    for (size_t i = begin; i < end; i++)
        sum.i += x[i];
    return sum;
}

static pareng_value add(pareng_value left, pareng_value right)
{
    return (pareng_value){.i = left.i + right.i};
}

static int heap_after_the_start(void)
{
    pareng_engine *e;
    if (pareng_start(&e, NULL) < 0) {
        fprintf(stderr, "%s\n", pareng_last_error());
        return 0;
    }
    size_t n = 9000 / sizeof(long);
    long *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = 1;
    pareng_value sum;
    int ok = x && refused("a block malloc'd after the start",
                          pareng_reduce(e, 0, n, 0, count_ones, add, x, &sum),
                          "in the caller's heap where it had nothing at pareng_start");
    pareng_stop(e);
    free(x);
    return ok;
}

static int block_before_the_start(void)
{
    pthread_t thread;
    void *block = NULL;
    if (pthread_create(&thread, NULL, malloc_a_block, NULL) != 0 ||
        pthread_join(thread, &block) != 0 || !block)
        return 0;
    pareng_engine *e;
    if (pareng_start(&e, NULL) < 0) {
        fprintf(stderr, "%s\n", pareng_last_error());
        return 0;
    }
    int ok = refused("a thread's block", pareng_for(e, 0, COUNT, 0, triple, block),
                     "in a block the caller malloc'd");
    pareng_stop(e);
    free(block);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    if (!pareng_task_malloc_shared())
        return 77;
    if (strcmp(argv[1], "heap") == 0)
        return heap_after_the_start() ? 0 : 1;
    if (strcmp(argv[1], "block") == 0)
        return block_before_the_start() ? 0 : 1;
    pthread_t thread;
    void *all_held = NULL;
    if (strcmp(argv[1], "stack") != 0 ||
        pthread_create(&thread, NULL, start_in_a_thread, NULL) != 0 ||
        pthread_join(thread, &all_held) != 0)
        return 2;
    return all_held ? 0 : 1;
}
