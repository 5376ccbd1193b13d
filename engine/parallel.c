/*
 * parallel.c - data-parallel loops over index ranges: pareng_for and pareng_reduce, as
 * divide-and-conquer tasks (split in halves, spawn the right, run the left, sync).
 *
 * The splitting depends only on the range and the grain, never on which worker runs what;
 * for pareng_reduce that is what makes the result reproducible (docs/design.md).
 */
#include "internal.h"

#include <errno.h>

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

int pareng_for(pareng_engine *engine, size_t begin, size_t end, size_t grain,
               pareng_range_fn body, void *ctx)
{
    if (end < begin || !body)
        return pareng__fail(EINVAL, "pareng_for needs begin <= end and a body");
    if (end == begin)
        return 0;
    if (grain == 0) {
        grain = (end - begin) / (PIECES_PER_WORKER * (size_t)pareng_engine_workers(engine));
        grain = grain ? grain : 1;
    }
    int ignored;
    return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, for_range, &ignored, begin, end, grain,
                             body, ctx);
}

int pareng_reduce(pareng_engine *engine, size_t begin, size_t end, size_t grain,
                  pareng_map_fn map, pareng_combine_fn combine, void *ctx,
                  pareng_value *result)
{
    if (end <= begin || !map || !combine || !result)
        return pareng__fail(EINVAL, "pareng_reduce needs a non-empty range, map, combine and "
                                    "somewhere for the result");
    if (grain == 0) {
        grain = (end - begin) / REDUCE_PIECES;
        grain = grain ? grain : 1;
    }
    return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, reduce_range, result, begin, end, grain,
                             map, combine, ctx);
}
