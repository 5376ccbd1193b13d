/*
 * parallel.c - data-parallel loops over index ranges: pareng_for, pareng_for_tasks,
 * pareng_reduce and pareng_reduce_into, and their forms inside a task (PARENG_FOR,
 * PARENG_REDUCE), as divide-and-conquer tasks (split in halves, spawn the right, run the
 * left, sync).
 *
 * The splitting depends only on the range and the grain, never on which worker runs what;
 * for pareng_reduce that is what makes the result reproducible (docs/design.md).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define PIECES_PER_WORKER 8  /* pareng_for's automatic grain: enough pieces to balance */
#define REDUCE_PIECES 1024   /* pareng_reduce's automatic grain: not tied to the workers */

PARENG_TASK_5(int, for_range, size_t, begin, size_t, end, size_t, grain, pareng_range_fn, body,
              void *, ctx)
{
    if (end - begin <= grain) {
        body(ctx, begin, end);
        return 0;
    }
    size_t mid = begin + (end - begin) / 2;
    PARENG_SPAWN(for_range, mid, end, grain, body, ctx);
    PARENG_CALL(for_range, begin, mid, grain, body, ctx);
    return PARENG_SYNC(for_range);
}

PARENG_TASK_6(pareng_value, reduce_range, size_t, begin, size_t, end, size_t, grain,
              pareng_map_fn, map, pareng_combine_fn, combine, void *, ctx)
{
    if (end - begin <= grain)
        return map(ctx, begin, end);
    size_t mid = begin + (end - begin) / 2;
    PARENG_SPAWN(reduce_range, mid, end, grain, map, combine, ctx);
    pareng_value left = PARENG_CALL(reduce_range, begin, mid, grain, map, combine, ctx);
    pareng_value right = PARENG_SYNC(reduce_range);
    /* always left with right, whoever computed which */
    return combine(left, right);
}

/* A body that may spawn: for_range's shape, with the task's context passed on. Named for
 * the user, whose body's unsynced spawns fail the run with this task's name. */
PARENG_TASK_5(int, pareng_for_tasks_body, size_t, begin, size_t, end, size_t, grain,
              pareng_range_task_fn, body, void *, ctx)
{
    if (end - begin <= grain) {
        body(PARENG_CONTEXT, ctx, begin, end);
        return 0;
    }
    size_t mid = begin + (end - begin) / 2;
    PARENG_SPAWN(pareng_for_tasks_body, mid, end, grain, body, ctx);
    PARENG_CALL(pareng_for_tasks_body, begin, mid, grain, body, ctx);
    return PARENG_SYNC(pareng_for_tasks_body);
}

/* pareng_reduce_into: results of any size. Each task gets where its result goes; the right
 * half's goes to a buffer on the parent's stack, which a thief may write (worker stacks are in
 * the arena, docs/memory.md). Both are aligned as a frame is, to 64 bytes: a result of
 * vector types (__m256d, alignment 32) in a buffer aligned to 16 crashed the worker. */
typedef struct reduce_into_job {
    size_t grain, size;
    pareng_map_into_fn map;
    pareng_combine_into_fn combine;
    void *ctx;
    PARENG__ALIGNAS(64) unsigned char result[];
} reduce_into_job;

PARENG_TASK_4(int, reduce_into_range, size_t, begin, size_t, end, const reduce_into_job *, job,
              void *, out)
{
    if (end - begin <= job->grain) {
        job->map(job->ctx, begin, end, out);
        return 0;
    }
    size_t mid = begin + (end - begin) / 2;
    _Alignas(64) unsigned char right[job->size];
    PARENG_SPAWN(reduce_into_range, mid, end, job, right);
    PARENG_CALL(reduce_into_range, begin, mid, job, out);
    PARENG_SYNC(reduce_into_range);
    job->combine(out, right); /* always left with right, whoever computed which */
    return 0;
}

/* The caller's functions for a run: code the workers have (a library opened after the start
 * is not in them: they died of SIGSEGV at its first call). */
static int refuse_code_loaded_later(pareng_engine *e, const char *call, uintptr_t first,
                                    uintptr_t second)
{
    int rc = pareng__refuse_code_loaded_later(e, first, call, second ? "map" : "body");
    return rc == 0 && second ? pareng__refuse_code_loaded_later(e, second, call, "combine") : rc;
}

static size_t for_grain(size_t begin, size_t end, size_t grain, unsigned workers)
{
    if (grain == 0) { /* no engine has 0 workers: its run is refused after this */
        /* rounded up: the halves of a range are at most that, never one over it */
        size_t pieces = PIECES_PER_WORKER * (size_t)(workers ? workers : 1), n = end - begin;
        grain = n / pieces + (n % pieces != 0);
    }
    return grain ? grain : 1;
}

static size_t reduce_grain(size_t begin, size_t end, size_t grain)
{
    if (grain == 0)
        grain = (end - begin) / REDUCE_PIECES;
    return grain ? grain : 1;
}

int pareng_for(pareng_engine *engine, size_t begin, size_t end, size_t grain,
               pareng_range_fn body, void *ctx)
{
    if (end < begin || !body)
        return pareng__fail(EINVAL, "pareng_for needs begin <= end and a body");
    if (end == begin)
        return 0;
    grain = for_grain(begin, end, grain, pareng_engine_workers(engine));
    if (pareng__in_worker()) {
        /* Called by a task, which has no engine of its own to hand a root to: the pieces run
         * here, in order (PARENG_FOR is the parallel way from a task). */
        for (size_t i = begin; i < end; i += end - i < grain ? end - i : grain)
            body(ctx, i, end - i < grain ? end : i + grain);
        return 0;
    }
    if (pareng__caller_local(engine, ctx, "pareng_for") < 0 ||
        refuse_code_loaded_later(engine, "pareng_for", (uintptr_t)body, 0) < 0)
        return -EINVAL;
    int ignored;
    return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, for_range, &ignored, begin, end, grain,
                             body, ctx);
}

int pareng_for_tasks(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                     pareng_range_task_fn body, void *ctx)
{
    if (end < begin || !body)
        return pareng__fail(EINVAL, "pareng_for_tasks needs begin <= end and a body");
    if (end == begin)
        return 0;
    if (pareng__caller_local(engine, ctx, "pareng_for_tasks") < 0 ||
        refuse_code_loaded_later(engine, "pareng_for_tasks", (uintptr_t)body, 0) < 0)
        return -EINVAL;
    int ignored;
    return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, pareng_for_tasks_body, &ignored, begin,
                             end, for_grain(begin, end, grain, pareng_engine_workers(engine)),
                             body, ctx);
}

/* The serial reduction of a task that calls pareng_reduce: the same pieces, combined in the
 * same order, so the same bits. */
static pareng_value reduce_here(size_t begin, size_t end, size_t grain, pareng_map_fn map,
                                pareng_combine_fn combine, void *ctx)
{
    if (end - begin <= grain)
        return map(ctx, begin, end);
    size_t mid = begin + (end - begin) / 2;
    pareng_value left = reduce_here(begin, mid, grain, map, combine, ctx);
    return combine(left, reduce_here(mid, end, grain, map, combine, ctx));
}

int pareng_reduce(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                  pareng_map_fn map, pareng_combine_fn combine, void *ctx,
                  pareng_value *result)
{
    if (end <= begin || !map || !combine || !result)
        return pareng__fail(EINVAL, "pareng_reduce needs a non-empty range, map, combine and "
                                    "somewhere for the result");
    grain = reduce_grain(begin, end, grain);
    if (pareng__in_worker()) {
        *result = reduce_here(begin, end, grain, map, combine, ctx);
        return 0;
    }
    if (pareng__caller_local(engine, ctx, "pareng_reduce") < 0 ||
        refuse_code_loaded_later(engine, "pareng_reduce", (uintptr_t)map, (uintptr_t)combine) < 0)
        return -EINVAL;
    return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, reduce_range, result, begin, end, grain,
                             map, combine, ctx);
}

int pareng_reduce_into(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                       pareng_map_into_fn map, pareng_combine_into_fn combine, void *ctx,
                       void *result, size_t size)
{
    if (end <= begin || !map || !combine || !result || size == 0 ||
        size > PARENG_REDUCE_INTO_MAX)
        return pareng__fail(EINVAL, "pareng_reduce_into needs a non-empty range, map, combine, "
                            "and somewhere for a result of 1 to %u bytes",
                            PARENG_REDUCE_INTO_MAX);
    if (pareng__in_worker())
        return pareng__fail(EDEADLK, "pareng_reduce_into called by a task: a task reduces "
                            "with its own spawns (or pareng_reduce, which runs in the task)");
    if (pareng__caller_local(engine, ctx, "pareng_reduce_into") < 0 ||
        refuse_code_loaded_later(engine, "pareng_reduce_into", (uintptr_t)map,
                                 (uintptr_t)combine) < 0)
        return -EINVAL;
    /* The job goes where every worker reads it; the root's result is the job's own buffer */
    reduce_into_job *job = pareng_alloc(engine, sizeof *job + size);
    if (!job) /* said by pareng_alloc, errno too: no room, no engine, a failed engine */
        return -errno;
    *job = (reduce_into_job){.grain = reduce_grain(begin, end, grain), .size = size,
                             .map = map, .combine = combine, .ctx = ctx};
    int ignored;
    int rc = PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, reduce_into_range, &ignored, begin,
                               end, job, job->result);
    if (rc == 0)
        memcpy(result, job->result, size);
    pareng_free(engine, job);
    return rc;
}

int pareng__for_nested(pareng_worker *w, pareng_frame *h, int clone, unsigned depth,
                       size_t begin, size_t end, size_t grain, pareng_range_fn body, void *ctx)
{
    if (end < begin || !body)
        return pareng__fail(EINVAL, "PARENG_FOR needs begin <= end and a body");
    if (end == begin)
        return 0;
    return for_range__call(w, h, clone, depth + 1, begin, end,
                           for_grain(begin, end, grain, pareng__worker_count(w)), body, ctx);
}

int pareng__reduce_nested(pareng_worker *w, pareng_frame *h, int clone, unsigned depth,
                          size_t begin, size_t end, size_t grain, pareng_map_fn map,
                          pareng_combine_fn combine, void *ctx, pareng_value *result)
{
    if (end <= begin || !map || !combine || !result)
        return pareng__fail(EINVAL, "PARENG_REDUCE needs a non-empty range, map, combine and "
                                    "somewhere for the result");
    *result = reduce_range__call(w, h, clone, depth + 1, begin, end,
                                 reduce_grain(begin, end, grain), map, combine, ctx);
    return 0;
}
