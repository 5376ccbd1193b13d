/*
 * error.h - what the workloads' files share: their error messages (error.c).
 */
#ifndef PARENG_WORKLOADS_ERROR_H
#define PARENG_WORKLOADS_ERROR_H

#include "workloads.h"

#define WORKLOAD__INTERNAL __attribute__((visibility("hidden")))

/* Every public workload function begins here: a failure of the engine under it is then the
 * engine's message, not one left over from an earlier call. */
WORKLOAD__INTERNAL void workload__begin(void);
/* Records the message for workload_error() and returns -err. */
WORKLOAD__INTERNAL int workload__fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
