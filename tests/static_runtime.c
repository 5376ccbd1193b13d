/*
 * static_runtime.c - a program that carries a runtime of its own, linked in (here gcc's
 * AddressSanitizer with -static-libasan; clang's sanitizers and an allocator linked
 * statically alike): the runtime's state is among the program's globals, each process's own,
 * which the workers cannot follow (docs/memory.md, "Globals"). The default configuration is
 * refused, saying why and naming PARENG_GLOBALS_FORKED, with which the program runs.
 */
#include <pareng.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

PARENG_TASK_1(int, twice, int, x)
{
    return 2 * x;
}

int main(void)
{
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, NULL);
    const char *why = pareng_last_error();
    if (rc != -ENOTSUP || e || !strstr(why, "a runtime is linked into the program") ||
        !strstr(why, "PARENG_GLOBALS_FORKED")) {
        fprintf(stderr, "the default: %d, %s\n", rc, rc < 0 ? why : "started");
        return 1;
    }
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    cfg.globals = PARENG_GLOBALS_FORKED;
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "PARENG_GLOBALS_FORKED: %s\n", pareng_last_error());
        return 1;
    }
    int got = 0;
    rc = PARENG_RUN(e, twice, &got, 21);
    pareng_stop(e);
    return rc != 0 || got != 42;
}
