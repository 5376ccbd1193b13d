/*
 * heap.c - the arena's shared heap: pareng_alloc and pareng_free, callable from the caller and
 * from any worker, returning memory every process sees at the same address, and its growth.
 *
 * A first-fit allocator over one region of the arena, with an address-ordered free list so that
 * neighbours coalesce on free. The region is the end of the arena: every process mapped all
 * the heap may grow to before the fork, so a process that finds no block large enough extends
 * the memfd, and the new pages are valid at once in every process (a MAP_SHARED mapping of a
 * file reaches as far as the file does). No byte past the file's end is ever handed out: that
 * would be SIGBUS. Every block starts with a 64-byte header (so payloads stay
 * cache-line aligned); one lock word in the arena guards it, taken by CAS and waited for with
 * sched_yield: allocations are rare next to tasks, and a process-shared pthread mutex would
 * leave the heap locked forever if its holder were killed, where a spinning waiter here at
 * least sees the engine fail (the coordinator kills everyone).
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct block {
    uint64_t size;      /* whole block, header included, a multiple of 64 */
    uint64_t free;      /* 1 while on the free list */
    struct block *next; /* next free block, by address */
    uint64_t seal;      /* sealed(b) while b is a block: pareng_free refuses what is not one */
    char pad[PARENG__CACHE_LINE - 4 * sizeof(uint64_t)];
} block;
_Static_assert(sizeof(block) == PARENG__CACHE_LINE, "a header is one cache line");

#define MIN_SPLIT (2 * sizeof(block)) /* smaller remainders stay with the block */

/* A word that a pointer into the middle of a payload, or a stale header, is unlikely to hold:
 * the header's own address, mixed. */
static uint64_t sealed(const block *b)
{
    return (uint64_t)(uintptr_t)b * 0x9e3779b97f4a7c15ull ^ 0x706172656e676865ull;
}

__thread bool pareng__heap_locked_here;

/* false, without the lock, once the engine failed: a worker killed while it held the lock
 * would leave every later taker waiting for ever (a thread of the caller's that frees a task's
 * block, say). */
static bool heap_lock(pareng__heap *heap)
{
    uint32_t unlocked = 0;
    /* Acquire: what the previous holder wrote to the free list is visible once we hold it. */
    while (!atomic_compare_exchange_weak_explicit(&heap->lock, &unlocked, 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
        unlocked = 0;
        if (atomic_load_explicit(&heap->failed, memory_order_relaxed))
            return false;
        sched_yield();
    }
    if (atomic_load_explicit(&heap->failed, memory_order_relaxed)) {
        atomic_store_explicit(&heap->lock, 0, memory_order_relaxed);
        return false;
    }
    pareng__heap_locked_here = true;
    return true;
}

void pareng__heap_fail(pareng__heap *heap)
{
    atomic_store_explicit(&heap->failed, 1, memory_order_relaxed);
}

static void heap_unlock(pareng__heap *heap)
{
    pareng__heap_locked_here = false;
    atomic_store_explicit(&heap->lock, 0, memory_order_release);
}

void pareng__heap_init(pareng__heap *heap, int fd, void *base, uint64_t file_offset,
                       size_t size, size_t limit)
{
    block *all = base;
    all->size = size / sizeof(block) * sizeof(block);
    all->free = 1;
    all->next = NULL;
    all->seal = sealed(all);
    heap->first_free = all;
    heap->fd = fd;
    heap->base = base;
    heap->file_offset = file_offset;
    heap->size = all->size;
    heap->limit = limit / sizeof(block) * sizeof(block);
    atomic_init(&heap->lock, 0);
    atomic_init(&heap->failed, 0);
    /* A core dump walks every page of a mapping, present or not: the reserve past the file's
     * end (up to the machine's memory) took 3 s to dump per engine, while the workers of a
     * dying coordinator lived on until the dump was done. It holds nothing until the heap
     * grows into it (heap_grow). Before the fork: the workers inherit it. */
    if (limit > size)
        madvise((char *)base + size, limit - size, MADV_DONTDUMP);
}

/* Grows the heap in steps of GROWTH_QUANTUM at least, doubling it: few truncations for a
 * program that allocates piece by piece. Pages are taken only when touched, by whichever
 * worker touches them first (so that first-touch placement works as with malloc). */
#define GROWTH_QUANTUM ((uint64_t)2 << 20)

/* Under the lock: makes room for a block of `need` bytes at the heap's end, the new space a
 * free block (merged with the last free one when that reaches the end). false with a
 * message. */
static bool heap_grow(pareng__heap *heap, uint64_t need)
{
    block **link = &heap->first_free;
    while (*link && (*link)->next)
        link = &(*link)->next;
    block *last = *link;
    bool last_at_end = last && (char *)last + last->size == (char *)heap->base + heap->size;
    uint64_t wanted = heap->size + need - (last_at_end ? last->size : 0);
    if (wanted > heap->limit) {
        pareng__fail(ENOMEM, "no %llu bytes left in the engine's shared memory: it holds %llu "
                     "and may grow to %llu (pareng_config.shared_bytes; 0 grows it up to the "
                     "machine's memory and swap)", (unsigned long long)need,
                     (unsigned long long)heap->size, (unsigned long long)heap->limit);
        return false;
    }
    uint64_t grown = heap->size * 2 > wanted ? heap->size * 2 : wanted;
    grown = (grown + GROWTH_QUANTUM - 1) / GROWTH_QUANTUM * GROWTH_QUANTUM;
    if (grown > heap->limit)
        grown = heap->limit;
    /* Extending the file past RLIMIT_FSIZE raises SIGXFSZ, which ends the process without a
     * word: stay below it, or say so. */
    struct rlimit fsize;
    if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY &&
        heap->file_offset + grown > fsize.rlim_cur) {
        uint64_t room = fsize.rlim_cur > heap->file_offset ? fsize.rlim_cur - heap->file_offset : 0;
        grown = room / sizeof(block) * sizeof(block);
        if (grown < wanted) {
            pareng__fail(EFBIG, "cannot grow the engine's shared memory to %llu bytes for a "
                         "block of %llu: the file-size limit (ulimit -f, RLIMIT_FSIZE) is %llu "
                         "bytes", (unsigned long long)(heap->file_offset + wanted),
                         (unsigned long long)need, (unsigned long long)fsize.rlim_cur);
            return false;
        }
    }
    if (ftruncate(heap->fd, (off_t)(heap->file_offset + grown)) < 0) {
        int err = errno;
        pareng__fail(err == EFBIG ? EFBIG : ENOMEM, "cannot grow the engine's shared memory "
                     "from %llu to %llu bytes: %s", (unsigned long long)heap->size,
                     (unsigned long long)grown, strerror(err));
        return false;
    }
    /* In this process's mapping only: a block grown by another process is missing from a
     * core of this one (docs/design.md, "Failure handling"). From the page the growth starts
     * in (below a file-size limit, the heap's end may fall inside one). */
    uintptr_t from = (uintptr_t)heap->base + heap->size, page = from & ~(uintptr_t)4095;
    madvise((void *)page, grown - heap->size + (from - page), MADV_DODUMP);
    block *added = (block *)(void *)((char *)heap->base + heap->size);
    added->size = grown - heap->size;
    added->free = 1;
    added->next = NULL;
    added->seal = sealed(added);
    heap->size = grown;
    if (last_at_end)
        last->size += added->size;
    else if (last)
        last->next = added;
    else
        heap->first_free = added;
    return true;
}

static block **first_fit(pareng__heap *heap, uint64_t need)
{
    block **link = &heap->first_free;
    while (*link && (*link)->size < need)
        link = &(*link)->next;
    return link;
}

void *pareng__heap_alloc(pareng__heap *heap, size_t size)
{
    if (size > heap->limit) {
        pareng__fail(ENOMEM, "no %zu bytes left in the engine's shared memory: it may grow to "
                     "%llu (pareng_config.shared_bytes; 0 grows it up to the machine's memory "
                     "and swap)", size, (unsigned long long)heap->limit);
        return NULL;
    }
    uint64_t need = (size + 2 * sizeof(block) - 1) / sizeof(block) * sizeof(block);
    if (!heap_lock(heap)) {
        pareng__fail(EPIPE, "the engine failed: its shared memory gives no more blocks");
        return NULL;
    }
    block **link = first_fit(heap, need);
    if (!*link && heap_grow(heap, need))
        link = first_fit(heap, need);
    block *b = *link;
    if (b) {
        if (b->size - need >= MIN_SPLIT) { /* keep the rest free, in place */
            block *rest = (block *)(void *)((char *)b + need);
            rest->size = b->size - need;
            rest->free = 1;
            rest->next = b->next;
            rest->seal = sealed(rest);
            *link = rest;
            b->size = need;
        } else {
            *link = b->next;
        }
        b->free = 0;
        b->next = NULL;
    }
    heap_unlock(heap);
    return b ? b + 1 : NULL;
}

/* Under the lock (the heap's size changes): could ptr be a payload? Its header must lie in the
 * file, or reading it would be SIGBUS. */
static bool heap_owns(const pareng__heap *heap, const void *ptr)
{
    const char *p = ptr, *base = heap->base;
    return p >= base + sizeof(block) && p < base + heap->size &&
           (size_t)(p - base) % sizeof(block) == 0;
}

int pareng__heap_free(pareng__heap *heap, void *ptr)
{
    block *b = (block *)ptr - 1;
    if (!heap_lock(heap))
        return 0;
    /* Under the lock: another process may be freeing the same block. */
    if (!heap_owns(heap, ptr) || b->seal != sealed(b) || b->free) {
        bool twice = heap_owns(heap, ptr) && b->seal == sealed(b);
        heap_unlock(heap);
        return pareng__fail(EINVAL, twice ? "pareng_free(%p): freed already"
                                          : "pareng_free(%p): not an address pareng_alloc "
                                            "returned", ptr);
    }
    block *prev = NULL, *next = heap->first_free;
    while (next && next < b) {
        prev = next;
        next = next->next;
    }
    b->free = 1;
    b->next = next;
    if (next && (char *)b + b->size == (char *)next) { /* merge with the following block */
        b->size += next->size;
        b->next = next->next;
    }
    if (prev && (char *)prev + prev->size == (char *)b) { /* and with the preceding one */
        prev->size += b->size;
        prev->next = b->next;
    } else if (prev) {
        prev->next = b;
    } else {
        heap->first_free = b;
    }
    heap_unlock(heap);
    return 0;
}
