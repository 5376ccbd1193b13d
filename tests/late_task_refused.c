/*
 * late_task_refused.c - a task of a library opened (dlopen) after pareng_start is refused by
 * name, and so is a pareng_for body of that library, where its workers, forked before, died of
 * SIGSEGV at its first call; the same library opened before the start runs. Usage:
 * late_task_refused MODULE. Exit status 0 when all of that holds.
 */
#include <pareng.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef int (*late_triangle_fn)(pareng_engine *e, uint64_t n, uint64_t *out);

#define COUNT 1000

/* pareng_for over x with the library's body: rc, and x checked when it ran */
static int loop_with(pareng_engine *e, pareng_range_fn body, uint64_t *x, int *wrong)
{
    int rc = pareng_for(e, 0, COUNT, 0, body, x);
    for (size_t i = 0; rc == 0 && i < COUNT; i++)
        *wrong |= x[i] != i;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    pareng_engine *e;
    if (pareng_start(&e, NULL) < 0)
        return 3;
    void *module = dlopen(argv[1], RTLD_NOW);
    late_triangle_fn late = module ? (late_triangle_fn)dlsym(module, "late_triangle") : NULL;
    pareng_range_fn body = module ? (pareng_range_fn)dlsym(module, "late_body") : NULL;
    if (!late || !body) {
        fprintf(stderr, "%s\n", dlerror());
        return 4;
    }
    uint64_t got = 0;
    int rc = late(e, 100, &got);
    int bad = rc != -EINVAL || !strstr(pareng_last_error(), "task triangle was loaded after");
    if (bad)
        fprintf(stderr, "after: %d %s\n", rc, pareng_last_error());
    uint64_t *x = pareng_alloc(e, COUNT * sizeof *x);
    int wrong = 0;
    if (!x)
        return 6;
    rc = loop_with(e, body, x, &wrong);
    if (rc != -EINVAL || !strstr(pareng_last_error(), "pareng_for's body (0x") ||
        !strstr(pareng_last_error(), "late_task.so, loaded after pareng_start")) {
        fprintf(stderr, "body after: %d %s\n", rc, pareng_last_error());
        bad = 1;
    }
    pareng_stop(e);
    /* the library is loaded now: an engine started from here on has its code */
    if (pareng_start(&e, NULL) < 0)
        return 5;
    rc = late(e, 100, &got);
    if (rc != 0 || got != 5050) {
        fprintf(stderr, "before: %d %llu %s\n", rc, (unsigned long long)got, pareng_last_error());
        bad = 1;
    }
    if (!(x = pareng_alloc(e, COUNT * sizeof *x)))
        return 7;
    rc = loop_with(e, body, x, &wrong);
    if (rc != 0 || wrong) {
        fprintf(stderr, "body before: %d %s\n", rc, rc ? pareng_last_error() : "wrong values");
        bad = 1;
    }
    pareng_stop(e);
    return bad;
}
