/*
 * malloc.c - a task's malloc: in a worker, malloc and its family return memory of the engine's
 * shared heap, valid at the same address in the caller and in every worker until pareng_stop,
 * so that what a task allocates and hands on (a tree built by tasks, an array given to a
 * nested pareng_for, a result that points to a block) is what every other task and the caller
 * read, as between threads (docs/memory.md, "A task's malloc"). In the caller, malloc is the C
 * library's; free and realloc recognise the workers' blocks and give them back.
 *
 * libpareng defines malloc, free, calloc, realloc and the aligned ones, which replaces the C
 * library's by ELF symbol interposition, as the glibc manual describes ("Replacing malloc") and
 * as mimalloc and jemalloc do; a program's own allocator, or a sanitizer's (AddressSanitizer,
 * ThreadSanitizer, valgrind), comes first and keeps a task's malloc per worker: such builds
 * compile this out (pareng_task_malloc_shared says which a program has).
 *
 * Each thread of a worker has a cache in the shared heap: a free list per size class, the chunk
 * it carves new blocks from (taken from the heap under its lock, 64 KiB and then doubling to
 * 4 MiB), and, per class, a stack where other processes push the blocks of this cache they
 * free (a Treiber stack: pushes by anyone, taken whole by the owner, so no ABA). A block of
 * more than 32 KiB is a block of the heap itself. Every block follows an 8-byte header: where
 * its cache is (or the block an aligned one lies in), its class and a seal, so that free
 * refuses what malloc did not return, and a second free, instead of corrupting a list.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                       \
    __has_feature(memory_sanitizer)
#define PARENG__FOREIGN_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__GLIBC__)
#define PARENG__FOREIGN_MALLOC 1
#endif

#ifndef PARENG__FOREIGN_MALLOC

#include <dlfcn.h>

/* The C library's, for the caller, for what was allocated before a worker began (its copy of
 * the caller's heap), and for a call while this thread holds the heap's lock. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

/* Weak: a program linked statically with the C library has its malloc from libc.a, whose
 * every entry point is defined with the others (a link of both would fail); dynamically, a
 * weak definition replaces the C library's as any other. */
#define PARENG_REPLACES PARENG_API __attribute__((weak))

#define CLASSES 40
#define SMALL_MOST ((size_t)32 << 10) /* the largest small block, its header included */
#define CHUNK_LEAST ((size_t)64 << 10)
#define CHUNK_MOST ((size_t)4 << 20)
#define ALIGN 16 /* alignof(max_align_t) */

enum { CLASS_LARGE = CLASSES, CLASS_ALIGNED };

/* One word before the payload, as the C library's, so that a 24-byte node takes 32 bytes:
 *   - where: a small block's cache, as its offset from the heap's base in 64-byte units (a
 *     block of the heap); an aligned block's distance to the block it lies in, in 16-byte
 *     units; 0 for a large block, a block of the heap LARGE_PAD bytes below its payload;
 *   - class: < CLASSES, CLASS_LARGE or CLASS_ALIGNED;
 *   - seal: seal_of(the header's address, where, class), and its complement once freed. */
typedef struct header {
    uint64_t where : 34, class : 6, seal : 24;
} header;
_Static_assert(sizeof(header) == 8, "a header is a word");
#define SEAL_MASK 0xffffffu

typedef struct free_block {
    struct free_block *next;
} free_block;

/* A thread's, in the shared heap: other processes push onto `remote`. */
typedef struct cache {
    _Atomic(free_block *) remote[CLASSES];
    free_block *local[CLASSES];
    char *bump, *bump_end; /* the chunk's part not carved yet */
    size_t next_chunk;
    uint64_t where; /* its offset from the heap's base, as its blocks' headers hold it */
    struct cache *next_abandoned;
} cache;

/* A large block: the heap's payload starts LARGE_PAD before ours; its size lies below our
 * header. */
#define LARGE_PAD 64

/* What is this process's alone, in a page mapped privately before any fork of a worker, so
 * that each process has its own however the program's globals are (a program that links
 * libpareng statically may share them, globals.c): the pointer is the same in every process,
 * the page is not. */
#define LIVE_MOST PARENG__MAX_ENGINES
enum heap_state { HEAP_LIVE = 1, HEAP_GONE };
typedef struct process_state {
    /* the heap of this process's engine, in a worker; NULL in the caller */
    pareng__heap *task_heap;
    /* The heaps of running engines: a pointer in one may be a worker's block. A fork's child
     * has none of their memory (engine.c maps it MADV_DONTFORK once the workers are forked):
     * it keeps them as gone, their range reserved (PROT_NONE), so that its free of a block it
     * inherited a pointer to does nothing, where the C library's would read unmapped memory,
     * and no mapping of its own lands there. */
    struct {
        _Atomic(pareng__heap *) heap;
        _Atomic uintptr_t begin, end;
        _Atomic uint32_t state; /* enum heap_state, 0 for a free slot */
        /* the caller's: when its engine stopped (stops counts them), since when [begin, end)
         * is the reservation of what its heap grew to; 0 for any other slot */
        uint64_t stopped;
    } live[LIVE_MOST];
    _Atomic unsigned live_count; /* slots ever used */
    uint64_t stops;
    /* caches of a worker's threads that ended, for its next threads (no lock-free list: the
     * thread that starts takes the lock anyway, to make a cache) */
    pthread_mutex_t abandoned_lock;
    struct cache *abandoned;
    pthread_key_t cache_key; /* its destructor abandons an ending thread's cache */
    bool cache_key_made;     /* under abandoned_lock */
} process_state;
static process_state *process;

static pareng__heap *task_heap_here(void)
{
    return process ? process->task_heap : NULL;
}

static __thread __attribute__((tls_model("initial-exec"))) cache *thread_cache;

static uint32_t seal_of(const header *h, uint64_t where, unsigned class)
{
    uint64_t x = ((uint64_t)(uintptr_t)h ^ where << 6 ^ class) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 40) | 1; /* never 0: a header of zeros is no block's */
}

static void *seal(header *h, uint64_t where, unsigned class)
{
    *h = (header){.where = where, .class = class, .seal = seal_of(h, where, class)};
    return h + 1;
}

/* A block's size, its header included: 16 to 128 by 16, then four sizes a doubling. */
static size_t class_size(unsigned class)
{
    if (class < 8)
        return (class + 1) * 16;
    unsigned step = class - 8, b = 7 + step / 4;
    return (size_t)(5 + step % 4) << (b - 2);
}

/* The smallest class whose blocks hold `bytes`, the header included (<= SMALL_MOST). */
static unsigned class_of(size_t bytes)
{
    if (bytes <= 128)
        return (unsigned)((bytes - 1) / 16);
    size_t n = bytes - 1;
    unsigned b = 63 - (unsigned)__builtin_clzll(n);
    return 8 + (b - 7) * 4 + (unsigned)((n >> (b - 2)) & 3);
}

/* A thread's cache goes to the abandoned ones when it ends: a worker whose tasks start short
 * threads would otherwise leave a cache and its chunk behind each, taking the heap. */
static void abandon_cache(void *ended)
{
    cache *c = ended;
    /* The thread's later destructors may still allocate and free: not in a cache that the
     * next thread may own by then (they make or take another, given back in turn). */
    thread_cache = NULL;
    pthread_mutex_lock(&process->abandoned_lock);
    c->next_abandoned = process->abandoned;
    process->abandoned = c;
    pthread_mutex_unlock(&process->abandoned_lock);
}

static cache *make_cache(void)
{
    pthread_mutex_lock(&process->abandoned_lock);
    cache *c = process->abandoned;
    if (c)
        process->abandoned = c->next_abandoned;
    if (!process->cache_key_made)
        process->cache_key_made = pthread_key_create(&process->cache_key, abandon_cache) == 0;
    pthread_mutex_unlock(&process->abandoned_lock);
    if (!c) {
        pareng__heap *heap = task_heap_here();
        if (!(c = pareng__heap_alloc(heap, sizeof *c)))
            return NULL;
        memset(c, 0, sizeof *c);
        c->next_chunk = CHUNK_LEAST;
        c->where = (uint64_t)((char *)c - (char *)heap->base) / 64;
    }
    thread_cache = c;
    if (process->cache_key_made) /* else caches stay with their threads */
        pthread_setspecific(process->cache_key, c);
    return c;
}

static void *large_alloc(pareng__heap *heap, size_t size)
{
    if (size > SIZE_MAX - LARGE_PAD)
        return NULL;
    char *block = pareng__heap_alloc(heap, size + LARGE_PAD);
    if (!block)
        return NULL;
    char *payload = block + LARGE_PAD;
    memcpy(payload - sizeof(header) - sizeof size, &size, sizeof size);
    return seal((header *)(void *)payload - 1, 0, CLASS_LARGE);
}

/* A block of class `class` from the chunk, taking a new chunk when it is used up. Blocks
 * start 8 bytes past a 16-byte boundary, so that their payloads are aligned. */
static void *carve(cache *c, unsigned class)
{
    size_t bytes = class_size(class);
    if ((size_t)(c->bump_end - c->bump) < bytes) {
        /* Near a shared_bytes budget, a smaller chunk may still fit. */
        size_t chunk = c->next_chunk;
        char *fresh;
        while (!(fresh = pareng__heap_alloc(task_heap_here(), chunk)) && chunk > CHUNK_LEAST)
            chunk /= 2;
        if (!fresh)
            return NULL;
        if (chunk < CHUNK_MOST)
            c->next_chunk = chunk * 2;
        c->bump = fresh + ALIGN - sizeof(header); /* what the old chunk had left stays unused */
        c->bump_end = fresh + chunk;
    }
    header *h = (header *)(void *)c->bump;
    c->bump += bytes;
    return seal(h, c->where, class);
}

static void *task_malloc(size_t size)
{
    cache *c = thread_cache;
    if (!c && !(c = make_cache()))
        return NULL;
    if (size > SMALL_MOST - sizeof(header))
        return large_alloc(task_heap_here(), size);
    unsigned class = class_of(size + sizeof(header));
    free_block *b = c->local[class];
    if (!b) /* Acquire: the pushers' writes to the blocks they freed come with them. */
        b = atomic_exchange_explicit(&c->remote[class], NULL, memory_order_acquire);
    if (!b)
        return carve(c, class);
    c->local[class] = b->next;
    header *h = (header *)(void *)b - 1;
    h->seal = seal_of(h, h->where, class); /* no longer the mark of a freed block */
    return b;
}

/* The slot of the tracked heap that holds p (the latest, where a gone one lay), or -1; its
 * state in *state (0 for none). */
static int slot_of(const void *p, uint32_t *state)
{
    *state = 0;
    if (!process)
        return -1;
    uintptr_t a = (uintptr_t)p;
    int found = -1;
    unsigned n = atomic_load_explicit(&process->live_count, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        /* Acquire: the slot's heap and end, stored before its state. */
        uint32_t seen = atomic_load_explicit(&process->live[i].state, memory_order_acquire);
        if (seen && a >= atomic_load_explicit(&process->live[i].begin, memory_order_relaxed) &&
            a < atomic_load_explicit(&process->live[i].end, memory_order_relaxed) &&
            (found < 0 || seen != HEAP_GONE)) {
            found = (int)i;
            *state = seen;
        }
    }
    return found;
}

static _Noreturn void refuse(const char *function, const void *p, bool twice)
{
    char line[160];
    int len = snprintf(line, sizeof line, twice ? "pareng: %s(%p): a task's block freed already\n"
                       : "pareng: %s(%p): not a block that malloc returned in a task "
                       "(pareng_alloc's go to pareng_free)\n", function, p);
    ssize_t written = write(STDERR_FILENO, line, len > 0 && (size_t)len < sizeof line
                                                     ? (size_t)len : sizeof line - 1);
    (void)written; /* abort says the rest */
    abort();
}

/* The header of a block that malloc returned in a worker, its heap in *heap and the heap's
 * state in *state; NULL for the C library's. Ends the process, as the C library does, for a
 * pointer into a heap that is no such block (a pareng_alloc block given to free, the middle of
 * one, a block freed twice). In a heap this process no longer has (a fork's), NULL with
 * *state HEAP_GONE. */
static header *task_header(void *p, pareng__heap **heap, uint32_t *state, const char *function)
{
    *state = 0;
    int slot = p ? slot_of(p, state) : -1;
    if (slot < 0 || *state == HEAP_GONE)
        return NULL;
    *heap = atomic_load_explicit(&process->live[slot].heap, memory_order_relaxed);
    header *h = (header *)p - 1;
    uint32_t sealed = seal_of(h, h->where, h->class);
    if (h->class > CLASS_ALIGNED || h->seal != sealed)
        refuse(function, p, h->class < CLASSES && h->seal == (~sealed & SEAL_MASK));
    return h;
}

static char *outer_of(header *h)
{
    return (char *)(h + 1) - h->where * ALIGN;
}

static size_t usable(header *h)
{
    if (h->class < CLASSES)
        return class_size(h->class) - sizeof(header);
    if (h->class == CLASS_LARGE) {
        size_t size;
        memcpy(&size, (char *)h - sizeof size, sizeof size);
        return size;
    }
    char *outer = outer_of(h);
    return usable((header *)(void *)outer - 1) - (size_t)((char *)(h + 1) - outer);
}

static void task_free(pareng__heap *heap, header *h)
{
    if (h->class == CLASS_ALIGNED) {
        header *outer = (header *)(void *)outer_of(h) - 1;
        h->seal = 0; /* a second free of the aligned pointer is refused */
        task_free(heap, outer);
        return;
    }
    if (h->class == CLASS_LARGE) {
        h->seal = 0;
        pareng__heap_free(heap, (char *)(h + 1) - LARGE_PAD); /* nothing once the engine failed */
        return;
    }
    unsigned class = h->class;
    h->seal = ~seal_of(h, h->where, class) & SEAL_MASK; /* a second free is refused */
    free_block *b = (free_block *)(void *)(h + 1);
    cache *c = (cache *)(void *)((char *)heap->base + h->where * 64);
    if (c == thread_cache) {
        b->next = c->local[class];
        c->local[class] = b;
        return;
    }
    /* Release: the block's last contents, and the link, before the block is the owner's. */
    b->next = atomic_load_explicit(&c->remote[class], memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&c->remote[class], &b->next, b,
                                                  memory_order_release, memory_order_relaxed))
        ;
}

static bool shared_here(void)
{
    return task_heap_here() && !pareng__heap_locked_here;
}

/* An allocation CALL of the C library's, of SIZE bytes (the caller's, or a worker's while it
 * holds its heap's lock): in a worker, the caller's heap it takes was sealed (caller_memory.c) */
#define LIBC_ALLOCATION(CALL, SIZE)                                                           \
    (__builtin_expect(pareng__heap_unused_sealed != 0, 0)                                     \
         ? (pareng__caller_memory_allocating(), pareng__caller_memory_allocated((CALL), (SIZE))) \
         : (CALL))

static void *shared_malloc(size_t size)
{
    void *p = task_malloc(size);
    if (!p)
        errno = ENOMEM;
    return p;
}

PARENG_REPLACES void *malloc(size_t size)
{
    return shared_here() ? shared_malloc(size) : LIBC_ALLOCATION(__libc_malloc(size), size);
}

/* This file's malloc, bound here: pareng_task_malloc_shared compares it with the one that
 * calls reach (libpareng's own calls may bind to its own). */
static void *malloc_self(size_t)
    __attribute__((alias("malloc"), malloc, alloc_size(1), nothrow));

PARENG_REPLACES void free(void *p)
{
    pareng__heap *heap;
    uint32_t state;
    header *h = task_header(p, &heap, &state, "free");
    if (h)
        task_free(heap, h);
    /* In a worker, a block of the C library's is the caller's, whose copy the worker may have
     * sealed (caller_memory.c): freeing the copy would give the caller nothing back. */
    else if (state != HEAP_GONE && !task_heap_here())
        __libc_free(p);
}

PARENG_REPLACES void *calloc(size_t n, size_t size)
{
    if (!shared_here())
        return LIBC_ALLOCATION(__libc_calloc(n, size), n * size);
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = shared_malloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

/* A worker's block of size bytes at a multiple of alignment, a power of two. */
static void *aligned(size_t alignment, size_t size)
{
    if (alignment <= ALIGN)
        return shared_malloc(size);
    /* The header's `where` holds the distance to the outer block in 34 bits of 16 bytes. */
    if (size > SIZE_MAX - alignment || alignment >= (size_t)ALIGN << 34) {
        errno = ENOMEM;
        return NULL;
    }
    char *outer = shared_malloc(size + alignment);
    if (!outer)
        return NULL;
    uintptr_t at = ((uintptr_t)outer + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (at == (uintptr_t)outer)
        return outer;
    /* at - outer is a multiple of 16: the header fits below it, in outer's block. */
    return seal((header *)at - 1, (at - (uintptr_t)outer) / ALIGN, CLASS_ALIGNED);
}

/* memalign and aligned_alloc as glibc 2.36 makes them: an alignment that is no power of two
 * is rounded up to one (0 is malloc's), one past half the address space is refused. */
static void *glibc_aligned(size_t alignment, size_t size)
{
    if (!shared_here())
        return LIBC_ALLOCATION(__libc_memalign(alignment, size), size);
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t power = ALIGN;
    while (power < alignment)
        power *= 2;
    return aligned(power, size);
}

PARENG_REPLACES int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment % sizeof(void *) || (alignment & (alignment - 1)) || !alignment)
        return EINVAL;
    int saved = errno;
    void *p = shared_here() ? aligned(alignment, size)
                            : LIBC_ALLOCATION(__libc_memalign(alignment, size), size);
    if (!p)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

PARENG_REPLACES void *aligned_alloc(size_t alignment, size_t size)
{
    return glibc_aligned(alignment, size);
}

PARENG_REPLACES void *memalign(size_t alignment, size_t size)
{
    return glibc_aligned(alignment, size);
}

PARENG_REPLACES void *valloc(size_t size)
{
    return shared_here() ? aligned((size_t)sysconf(_SC_PAGESIZE), size)
                         : LIBC_ALLOCATION(__libc_valloc(size), size);
}

PARENG_REPLACES void *pvalloc(size_t size)
{
    if (!shared_here())
        return LIBC_ALLOCATION(__libc_pvalloc(size), size);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(page, (size + page - 1) & ~(page - 1));
}

static size_t libc_usable_size(void *p)
{
    static size_t (*libc)(void *);
    if (!libc)
        libc = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    return libc ? libc(p) : 0;
}

PARENG_REPLACES size_t malloc_usable_size(void *p)
{
    pareng__heap *heap;
    uint32_t state;
    header *h = task_header(p, &heap, &state, "malloc_usable_size");
    return h ? usable(h) : p && state != HEAP_GONE ? libc_usable_size(p) : 0;
}

PARENG_REPLACES void *realloc(void *p, size_t size)
{
    pareng__heap *heap;
    uint32_t state;
    header *h = task_header(p, &heap, &state, "realloc");
    if (state == HEAP_GONE) {
        errno = ENOMEM; /* its contents are not in this process */
        return NULL;
    }
    if (!h && !shared_here())
        return LIBC_ALLOCATION(__libc_realloc(p, size), size);
    if (!p)
        return shared_malloc(size);
    if (!size) { /* as the C library: p is freed */
        free(p);
        return NULL;
    }
    size_t had = h ? usable(h) : libc_usable_size(p);
    if (h && h->class != CLASS_ALIGNED && size <= had && size > had / 2)
        return p;
    /* A task's block stays shared, in the caller too (a block of the heap itself: the caller
     * has no cache); what the caller allocated before the start becomes shared in a worker.
     * A large block grows by half at least, so that appends do not copy it every time. */
    size_t want = h && size > had && size - had < had / 2 && had > SMALL_MOST ? had + had / 2 : size;
    void *q = shared_here() ? shared_malloc(want) : large_alloc(heap, want);
    if (!q && want > size)
        q = shared_here() ? shared_malloc(size) : large_alloc(heap, size);
    if (!q) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(q, p, had < size ? had : size);
    free(p);
    return q;
}

/* A fork's child: its malloc is the C library's (a worker's fork tracks its own heap again,
 * pareng__malloc_in_worker), and the heaps are gone (process_state), their ranges reserved;
 * one that cannot be (an address-space limit) is forgotten instead. */
static void forget_heaps_in_child(void)
{
    process->task_heap = NULL;
    thread_cache = NULL;
    process->abandoned = NULL;
    pthread_mutex_init(&process->abandoned_lock, NULL);
    unsigned n = atomic_load_explicit(&process->live_count, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        if (atomic_load_explicit(&process->live[i].state, memory_order_relaxed) != HEAP_LIVE)
            continue;
        uintptr_t begin = atomic_load_explicit(&process->live[i].begin, memory_order_relaxed);
        size_t bytes = atomic_load_explicit(&process->live[i].end, memory_order_relaxed) - begin;
        void *hole = mmap((void *)begin, bytes, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        /* EEXIST: the heap is still mapped here, inherited (a worker's fork, or a fork from a
         * thread a task started): gone all the same, the child's malloc is not its. */
        bool gone = hole == (void *)begin || (hole == MAP_FAILED && errno == EEXIST);
        if (hole != (void *)begin && hole != MAP_FAILED)
            munmap(hole, bytes); /* a kernel before 4.17 took it for a hint */
        atomic_store_explicit(&process->live[i].state, gone ? HEAP_GONE : 0,
                              memory_order_relaxed);
    }
}

static int track(const pareng__heap *heap)
{
    uintptr_t begin = (uintptr_t)heap->base, end = begin + heap->limit;
    for (unsigned i = 0; i < LIVE_MOST; i++) {
        if (atomic_load_explicit(&process->live[i].state, memory_order_relaxed))
            continue;
        /* The rest first, then the state that makes the slot count (release: with them). A
         * slot given back by release_stopped_beyond forgets its stopped engine's. */
        process->live[i].stopped = 0;
        atomic_store_explicit(&process->live[i].heap, (pareng__heap *)heap, memory_order_relaxed);
        atomic_store_explicit(&process->live[i].begin, begin, memory_order_relaxed);
        atomic_store_explicit(&process->live[i].end, end, memory_order_relaxed);
        atomic_store_explicit(&process->live[i].state, HEAP_LIVE, memory_order_release);
        if (atomic_load_explicit(&process->live_count, memory_order_relaxed) < i + 1)
            atomic_store_explicit(&process->live_count, i + 1, memory_order_release);
        return 0;
    }
    return pareng__fail(EMFILE, "more than %d engines running at once in one process", LIVE_MOST);
}

/* The slot where this process tracks heap in `state`, or -1. The heap's address alone could
 * be a stopped engine's too (its arena unmapped but its heap's range kept), not with its
 * range. */
static int slot_holding(const pareng__heap *heap, uint32_t state)
{
    unsigned n = process ? atomic_load_explicit(&process->live_count, memory_order_relaxed) : 0;
    for (unsigned i = 0; i < n; i++)
        if (atomic_load_explicit(&process->live[i].state, memory_order_relaxed) == state &&
            atomic_load_explicit(&process->live[i].heap, memory_order_relaxed) == heap &&
            atomic_load_explicit(&process->live[i].begin, memory_order_relaxed) ==
                (uintptr_t)heap->base)
            return (int)i;
    return -1;
}

void pareng__malloc_in_worker(pareng__heap *heap)
{
    process->task_heap = heap;
    /* The fork left the engine's heap gone (still mapped: MADV_DONTFORK comes after the
     * workers' forks): live again. */
    int i = slot_holding(heap, HEAP_GONE);
    if (i >= 0)
        atomic_store_explicit(&process->live[i].state, HEAP_LIVE, memory_order_release);
    else
        track(heap); /* not reserved as gone (an address-space limit): a slot of its own */
}

/* The caller tracks (and untracks) from the thread that starts and stops its engines. */
int pareng__malloc_track(const pareng__heap *heap)
{
    if (!process) {
        void *page = mmap(NULL, sizeof *process, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED)
            return pareng__fail(errno, "cannot map a page for malloc: %s", strerror(errno));
        process = page; /* before the fork handler, which needs it */
        pthread_mutex_init(&process->abandoned_lock, NULL);
        int err = pthread_atfork(NULL, NULL, forget_heaps_in_child);
        if (err) {
            process = NULL;
            munmap(page, sizeof *process);
            return pareng__fail(err, "cannot watch forks for malloc: %s", strerror(err));
        }
    }
    return track(heap);
}

/* The stopped engines whose heaps the caller keeps reserved as gone: a free of one of their
 * blocks after the stop (a C++ global's destructor at exit, the block a task grew it into)
 * then does nothing, where the C library's free read the unmapped memory and the program
 * died with its buffered output; and no later engine's heap lands there, whose block such a
 * free would take. A few: every free in the caller looks at each slot. */
#define STOPPED_KEPT 8

/* The oldest stopped engine's slot and reservation given back while more than `kept` are. */
static void release_stopped_beyond(unsigned kept)
{
    for (;;) {
        unsigned n = atomic_load_explicit(&process->live_count, memory_order_relaxed);
        unsigned count = 0;
        int oldest = -1;
        for (unsigned i = 0; i < n; i++) {
            if (atomic_load_explicit(&process->live[i].state, memory_order_relaxed) != HEAP_GONE ||
                !process->live[i].stopped)
                continue;
            count++;
            if (oldest < 0 || process->live[i].stopped < process->live[oldest].stopped)
                oldest = (int)i;
        }
        if (count <= kept)
            return;
        atomic_store_explicit(&process->live[oldest].state, 0, memory_order_release);
        uintptr_t begin = atomic_load_explicit(&process->live[oldest].begin, memory_order_relaxed);
        munmap((void *)begin,
               atomic_load_explicit(&process->live[oldest].end, memory_order_relaxed) - begin);
    }
}

size_t pareng__malloc_untrack(const pareng__heap *heap, size_t mapped)
{
    int i = slot_holding(heap, HEAP_LIVE);
    if (i < 0)
        return 0;
    /* What the heap grew to holds every block; the rest of its bound (the address space's
     * share an automatic one takes) goes back with the arena, and out of the slot's range. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE), kept = (heap->size + page - 1) & ~(page - 1);
    kept = kept < mapped ? kept : mapped;
    /* Forgotten, as before, under an address-space limit (ulimit -v), which a reservation is
     * charged to (later engines' starts and heaps found less room), or with no memory for the
     * mapping. One call puts the reservation in the place of the heap's pages: nothing can be
     * mapped there in between. */
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) < 0 || as.rlim_cur != RLIM_INFINITY ||
        mmap(heap->base, kept, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
             -1, 0) == MAP_FAILED) {
        atomic_store_explicit(&process->live[i].state, 0, memory_order_release);
        return 0;
    }
    process->live[i].stopped = ++process->stops;
    atomic_store_explicit(&process->live[i].end, (uintptr_t)heap->base + kept,
                          memory_order_relaxed);
    atomic_store_explicit(&process->live[i].state, HEAP_GONE, memory_order_release);
    release_stopped_beyond(STOPPED_KEPT);
    return kept;
}

PARENG_API int pareng_task_malloc_shared(void)
{
    /* The definition that the program's and the C library's calls reach: the first in the
     * lookup order, which a sanitizer's runtime or a preloaded allocator precedes. */
    return dlsym(RTLD_DEFAULT, "malloc") == (void *)malloc_self;
}
#else /* a sanitizer's or another allocator: a task's malloc stays per worker */

void pareng__malloc_in_worker(pareng__heap *heap)
{
    (void)heap;
}

int pareng__malloc_track(const pareng__heap *heap)
{
    (void)heap;
    return 0;
}

size_t pareng__malloc_untrack(const pareng__heap *heap, size_t mapped)
{
    (void)heap;
    (void)mapped;
    return 0;
}

PARENG_API int pareng_task_malloc_shared(void)
{
    return 0;
}

#endif
