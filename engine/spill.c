/*
 * spill.c - a lane's spill stack past its own region of the arena (16 MiB, 64 KiB a fiber's):
 * the slow paths of pareng.h's pareng__spill_push and pareng__spill_pop, for a pile of
 * spilled spawns too deep for that region.
 *
 * The stack goes on in chunks of the shared heap, each a region of its own that the push
 * bumps through as through the lane's, and whose header remembers the region below: the first
 * of SPILL_CHUNK_LEAST bytes, each next one twice as large as the one below, up to
 * SPILL_CHUNK_MOST (and one block larger than that in a chunk of its size). So a deep pile
 * takes the heap's lock a few times, where it took it for every spawn: a first fit each, over
 * a free list that the program's allocations can make long (minutes for 300,000 spawns,
 * docs/performance.md).
 *
 * Blocks go back in the order of the deque, last pushed first popped: a sync pops its child's
 * block (pareng.h's unspill, which copies the data out first); the task of a stolen frame only
 * reads its block and writes its result there, before its DONE, after which the owner's sync
 * pops it; a leapfrogged or an overflowed task pushes and pops above the block of the child
 * that its worker waits on; a fiber has its own lane. So the pop of a chunk's first block
 * leaves the chunk empty, nobody reading it: the lane keeps it as its spare, for the next push
 * past the region below (a loop that spawns and syncs across a chunk's boundary takes no
 * lock), and frees the spare it had. The spare goes back to the heap when the lane's task
 * ends (pareng__spill_trim). Only the lane's worker touches any of this; a worker killed with
 * chunks loses them with its engine, which is failed for good (engine.c).
 */
#include "internal.h"

#include <errno.h>

/* The first chunk is small, so that a pile which just outgrows its lane's region takes little
 * of the heap (which pareng_config.shared_bytes may bound); the next ones double, so that a
 * deep pile takes few (each one's first fit and free walk the heap's free list). Doubling
 * leaves at most half of the last chunk unused, and its pages are taken only as blocks reach
 * them. */
#define SPILL_CHUNK_LEAST ((size_t)1 << 20)
#define SPILL_CHUNK_MOST ((size_t)64 << 20)

/* At the start of a chunk; the blocks follow, cache-line aligned as in the arena. */
typedef struct pareng__spill_chunk {
    size_t bytes; /* the chunk, this header included */
    /* the region below, as the push that left it found it */
    unsigned char *below_top, *below_end, *below_first;
    char pad[PARENG__CACHE_LINE - sizeof(size_t) - 3 * sizeof(unsigned char *)];
} pareng__spill_chunk;
_Static_assert(sizeof(pareng__spill_chunk) == PARENG__CACHE_LINE, "blocks stay aligned");

void *pareng__spill_push_slow(pareng_worker *pub, size_t bytes)
{
    pareng__worker *w = pareng__self(pub);
    pareng__spill_chunk *c = w->spill_spare;
    size_t need = sizeof *c + bytes;
    if (c && c->bytes >= need) {
        w->spill_spare = NULL;
    } else {
        size_t size = SPILL_CHUNK_LEAST;
        if (pub->pareng__spill_first) { /* in a chunk: twice its size */
            size_t below = ((pareng__spill_chunk *)pub->pareng__spill_first - 1)->bytes;
            size = below < SPILL_CHUNK_MOST / 2 ? 2 * below : SPILL_CHUNK_MOST;
        }
        size = need > size ? need : size;
        c = pareng__heap_alloc(&w->arena->heap, size);
        if (!c)
            pareng__worker_exit(pareng__lane(w->arena, w->index, 0),
                                PARENG__EXIT_OUT_OF_MEMORY, ENOMEM);
        c->bytes = size;
    }
    c->below_top = pub->pareng__spill_top;
    c->below_end = pub->pareng__spill_end;
    c->below_first = pub->pareng__spill_first;
    unsigned char *first = (unsigned char *)(c + 1);
    pub->pareng__spill_first = first;
    pub->pareng__spill_top = first + bytes;
    pub->pareng__spill_end = (unsigned char *)c + c->bytes;
    return first;
}

void pareng__spill_pop_slow(pareng_worker *pub, void *first)
{
    pareng__worker *w = pareng__self(pub);
    pareng__spill_chunk *c = (pareng__spill_chunk *)first - 1;
    pub->pareng__spill_top = c->below_top;
    pub->pareng__spill_end = c->below_end;
    pub->pareng__spill_first = c->below_first;
    pareng__spill_trim(w);
    w->spill_spare = c;
}

void pareng__spill_trim(pareng__worker *w)
{
    if (w->spill_spare)
        pareng__heap_free(&w->arena->heap, w->spill_spare);
    w->spill_spare = NULL;
}
