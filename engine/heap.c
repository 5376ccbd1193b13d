/*
 * heap.c - the arena's shared heap: pareng_alloc and pareng_free, callable from the caller and
 * from any worker, returning memory every process sees at the same address.
 *
 * A first-fit allocator over one region of the arena, with an address-ordered free list so that
 * neighbours coalesce on free. Every block starts with a 64-byte header (so payloads stay
 * cache-line aligned); one lock word in the arena guards it, taken by CAS and waited for with
 * sched_yield: allocations are rare next to tasks, and a process-shared pthread mutex would
 * leave the heap locked forever if its holder were killed, where a spinning waiter here at
 * least sees the engine fail (the coordinator kills everyone).
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

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

static void heap_lock(pareng__heap *heap)
{
    uint32_t unlocked = 0;
    /* Acquire: what the previous holder wrote to the free list is visible once we hold it. */
    while (!atomic_compare_exchange_weak_explicit(&heap->lock, &unlocked, 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
        unlocked = 0;
        sched_yield();
    }
}

static void heap_unlock(pareng__heap *heap)
{
    atomic_store_explicit(&heap->lock, 0, memory_order_release);
}

void pareng__heap_init(pareng__heap *heap, void *base, size_t size)
{
    block *all = base;
    all->size = size / sizeof(block) * sizeof(block);
    all->free = 1;
    all->next = NULL;
    all->seal = sealed(all);
    heap->first_free = all;
    heap->base = base;
    heap->size = all->size;
    atomic_init(&heap->lock, 0);
}

void *pareng__heap_alloc(pareng__heap *heap, size_t size)
{
    if (size > heap->size)
        return NULL;
    uint64_t need = (size + 2 * sizeof(block) - 1) / sizeof(block) * sizeof(block);
    heap_lock(heap);
    block **link = &heap->first_free;
    while (*link && (*link)->size < need)
        link = &(*link)->next;
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

int pareng__heap_free(pareng__heap *heap, void *ptr)
{
    block *b = (block *)ptr - 1;
    heap_lock(heap);
    /* Under the lock: another process may be freeing the same block. */
    if (b->seal != sealed(b) || b->free) {
        bool twice = b->seal == sealed(b);
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

bool pareng__heap_owns(const pareng__heap *heap, const void *ptr)
{
    const char *p = ptr, *base = heap->base;
    return p >= base + sizeof(block) && p < base + heap->size &&
           (size_t)(p - base) % sizeof(block) == 0;
}
