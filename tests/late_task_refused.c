/*
 * late_task_refused.c - a task of a library opened (dlopen) after pareng_start is refused by
 * name, where its workers, forked before, died of SIGSEGV at its first call; the same library
 * opened before the start runs. Usage: late_task_refused MODULE. Exit status 0 when both hold.
 */
#include <pareng.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef int (*late_triangle_fn)(pareng_engine *e, uint64_t n, uint64_t *out);

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    pareng_engine *e;
    if (pareng_start(&e, NULL) < 0)
        return 3;
    void *module = dlopen(argv[1], RTLD_NOW);
    late_triangle_fn late = module ? (late_triangle_fn)dlsym(module, "late_triangle") : NULL;
    if (!late) {
        fprintf(stderr, "%s\n", dlerror());
        return 4;
    }
    uint64_t got = 0;
    int rc = late(e, 100, &got);
    int bad = rc != -EINVAL || !strstr(pareng_last_error(), "task triangle was loaded after");
    if (bad)
        fprintf(stderr, "after: %d %s\n", rc, pareng_last_error());
    pareng_stop(e);
    /* the library is loaded now: an engine started from here on has its code */
    if (pareng_start(&e, NULL) < 0)
        return 5;
    rc = late(e, 100, &got);
    if (rc != 0 || got != 5050) {
        fprintf(stderr, "before: %d %llu %s\n", rc, (unsigned long long)got, pareng_last_error());
        bad = 1;
    }
    pareng_stop(e);
    return bad;
}
