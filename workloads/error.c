/*
 * error.c - the message behind workload_error(): a workload's own (it refused its input) or,
 * when the engine failed under it, the engine's (pareng_last_error()).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

/* Empty while the last failure was the engine's. */
static _Thread_local char own_error[256];

void workload__begin(void)
{
    own_error[0] = '\0';
}

int workload__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(own_error, sizeof own_error, fmt, ap);
    va_end(ap);
    return -err;
}

const char *workload_error(void)
{
    return own_error[0] ? own_error : pareng_last_error();
}
