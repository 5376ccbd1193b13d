/*
 * caller_memory.c - the caller's private memory, read-only for the program's code in every
 * worker.
 *
 * A worker is a fork: the caller's heap, the blocks it allocated and its stack are copies
 * there, as they were at pareng_start. A task that writes into one writes its worker's copy,
 * which the caller never sees: a port of thread code that fills an array the caller allocated
 * (BOTS's sparselu and health, a matrix product into a malloc'd result, counters in main's
 * locals) returns the old contents, with no error. So each worker, once it has left the stack
 * it was forked on, makes those copies read-only, and a write there faults. Whose write it
 * is decides what follows (pareng__caller_memory_fault, in worker.c's SIGSEGV handler):
 *   - the program's code (the main program and every library but those that keep state of
 *     their own), or a leaf function of the C library that it called (memcpy, memset): the
 *     worker dies, and the coordinator reports the write and the memory (engine.c's reap);
 *   - a library that keeps state of its own (the C library's locale, NSS and regex state,
 *     the exit list, libstdc++'s locale, libgomp, the dynamic linker), writing that state,
 *     which the caller made before the start and is the worker's as after any fork (its
 *     thread-local blocks too, whoever writes them): the page opens for that one instruction
 *     and closes behind it (the trap flag, on x86-64), up to REOPENS_MOST times;
 *   - a process the worker forked: everything opens, as fork gives.
 * The handlers must run for that: libpareng's pthread_sigmask and sigprocmask keep SIGSEGV
 * and SIGTRAP unblocked in a worker that sealed.
 * Reading stays as it was: data ready before the start need not move. Below the frame of
 * pareng_start the stack held only the start's own frames, dead since: not even readable
 * (docs/memory.md, "The caller's memory").
 *
 * What is sealed is found in /proc/self/maps: the heap ([heap]), the stack ([stack]), and
 * anonymous private mappings that the C library's malloc made (a large block, whose header it
 * writes at the mapping's start; the heap of another thread's arena). Shared mappings (the
 * arena, the task heap, shared globals) are never private; objects' segments (a .bss is
 * anonymous past its file) are left out; the pages of the caller's streams stay writable (the
 * kernel fills their buffers). It is done only where tasks' malloc is libpareng's (malloc.c),
 * since a worker's glibc malloc would write that heap, and where the caller did not ask for
 * the copies to stay writable (PARENG_CALLER_MEMORY_WRITABLE).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 35)
#include <sys/rseq.h>
#endif
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define SEALED_MOST 16384
#define SEALED_FOR_BLOCKS (SEALED_MOST - 16) /* the rest kept for the heaps and the stack */
#define CODE_MOST 1024
#define EXEMPT_MOST 1024
#define ANONYMOUS_MOST 8192
#define TLS_MOST 256
/* pages one thread has open at once: those its writing instruction touches (two, for a store
 * across pages), with room */
#define REOPENED_MOST 4
/* A page that libraries write this many times stays open: each write costs a fault and a trap
 * (some 5 us), and a qsort of the caller's array in a task took seconds. */
#define REOPENS_MOST 1024
#define OPENED_SLOTS 4096 /* pages counted, a power of two */
/* glibc's arenas of other threads are heaps of at most 64 MiB, aligned to it (arena.c) */
#define THREAD_HEAP_ALIGN ((uintptr_t)64 << 20)
#define MMAPPED_BIT 2 /* glibc's IS_MMAPPED, in a chunk's size */

typedef struct range {
    uintptr_t begin, end;
    uint32_t kind;      /* enum pareng__caller_memory_kind */
    uint32_t execution; /* PROT_EXEC when the mapping had it (the stack of -z execstack) */
} range;

/* Mapped privately by the caller before its first fork, so that the pointer is the same in
 * every process and the page is each one's (the program's globals may be shared). */
static struct sealed_list {
    unsigned n;
    range sealed[SEALED_MOST];
    unsigned n_code, n_libc;
    range program_code[CODE_MOST]; /* the program's executable segments (kind unused) */
    range libc_code[4];            /* the C library's, whose string functions are leaves */
    unsigned n_tls;
    range tls[TLS_MOST]; /* this thread's blocks of libraries' thread-locals, from its heap */
    unsigned n_excluded;
    range excluded[CODE_MOST]; /* this list, and the objects' segments (their .bss too) */
    unsigned n_exempt;
    range exempt[EXEMPT_MOST]; /* pages of the caller's streams: not sealed */
    unsigned n_anonymous;
    range anonymous[ANONYMOUS_MOST]; /* the caller's anonymous private mappings */
    uintptr_t page;       /* for the handler (sysconf is not async-signal-safe) */
    uintptr_t start_frame; /* pareng_start's frame, in the caller: what is below it is dead */
    pid_t sealed_by;       /* the worker: a process it forks has no seal of its own */
    size_t blocks;         /* glibc's count of the blocks it mapped, at the start */
    uintptr_t heap_top;    /* where the heap's top chunk began as the start began */
    bool heap_measured;    /* ... if it was measured */
    range thread_stack;    /* the starting thread's, where it is not the main thread */
    range thread_data;     /* ... and its own data at the top of its stack: never sealed */
    /* under a debugger, which keeps the trap's SIGTRAP to itself, or a SIGTRAP handler of the
     * program's: no trap flag, pages that libraries open stay open */
    bool traced;
    /* how often libraries opened each page (any thread: atomics), the key 0 for a free slot */
    struct {
        _Atomic uintptr_t page;
        _Atomic uint32_t reopens;
    } opened[OPENED_SLOTS];
} *seals;
static pthread_once_t seals_made = PTHREAD_ONCE_INIT;

/* A fork of a worker's (from a task, or a thread a task started) is a process of its own, whose
 * malloc is the C library's again (malloc.c): its copies are its own to write, as fork gives. */
static void unseal_in_child(void)
{
    for (unsigned i = 0; i < seals->n; i++)
        mprotect((void *)seals->sealed[i].begin, seals->sealed[i].end - seals->sealed[i].begin,
                 PROT_READ | PROT_WRITE | (int)seals->sealed[i].execution);
    seals->n = 0;
    pareng__heap_unused_sealed = 0;
}

static void seals_make(void)
{
    void *page = mmap(NULL, sizeof *seals, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (page == MAP_FAILED)
        return; /* the workers leave the copies writable, as before */
    seals = page;
    if (pthread_atfork(NULL, NULL, unseal_in_child) != 0) {
        seals = NULL;
        munmap(page, sizeof *seals);
    }
}

/* The whole pages around [begin, end). */
static range pages_around(uintptr_t begin, uintptr_t end, uintptr_t page)
{
    return (range){begin & ~(page - 1), (end + page - 1) & ~(page - 1), 0, 0};
}

/* The lowest of this thread's static thread-local blocks in [low, high), from
 * dl_iterate_phdr's dlpi_tls_data (this thread's block of each object), or high. */
typedef struct tls_bounds {
    uintptr_t low, high;
} tls_bounds;

static int lowest_tls_block(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    tls_bounds *b = data;
    uintptr_t block = (uintptr_t)info->dlpi_tls_data;
    if (block >= b->low && block < b->high)
        b->high = block;
    return 0;
}

/* The stack of the thread that starts the engine, where it is not the main one (whose stack
 * is [stack] in the maps): a thread's stack is an anonymous mapping like any, and a task's
 * write to a local of that thread's was lost in the workers' copies, with exit status 0.
 * Only the part below the thread's own data: glibc keeps its thread control block and its
 * static thread-locals (errno) at the top of the stack's mapping, and the worker, a fork of
 * this thread, writes them as its own, and so does the kernel (the rseq area, which newer
 * glibc may put below the thread-locals: __rseq_offset). That data, up to the stack's top, is
 * kept out of every seal (*own_data, exempt): a stack the program gave the thread
 * (pthread_attr_setstack) may lie in a malloc'd block, in the heap, which is sealed too, and
 * every worker died at its start. Whole pages of the stack only (a malloc'd stack's low end
 * is not a page's). Empty where not known. */
static range starting_thread_stack(range *own_data)
{
    range stack = {0, 0, 0, 0};
    *own_data = stack;
    pthread_attr_t attr;
    void *low;
    size_t size;
    if (getpid() == (pid_t)syscall(SYS_gettid) || pthread_getattr_np(pthread_self(), &attr) != 0)
        return stack;
    if (pthread_attr_getstack(&attr, &low, &size) == 0) {
        uintptr_t thread_pointer = (uintptr_t)__builtin_thread_pointer();
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), top = (uintptr_t)low + size;
        tls_bounds b = {(uintptr_t)low, top};
        if (thread_pointer >= b.low && thread_pointer < b.high)
            b.high = thread_pointer;
        dl_iterate_phdr(lowest_tls_block, &b);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 35)
        uintptr_t rseq_area = thread_pointer + (uintptr_t)__rseq_offset;
        if (__rseq_size && rseq_area >= b.low && rseq_area < b.high)
            b.high = rseq_area;
#endif
        uintptr_t data = b.high & ~(page - 1);
        *own_data = pages_around(data, top, page);
        stack = (range){((uintptr_t)low + page - 1) & ~(page - 1), data, 0, 0};
    }
    pthread_attr_destroy(&attr);
    return stack;
}

void pareng__caller_memory_measure(void)
{
    pthread_once(&seals_made, seals_make);
    if (!seals)
        return;
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
    /* The free chunks of glibc's fast lists merged first: one next to the top would join it
     * during the start, and where the top began would no longer be a chunk's start (the walk
     * then finds nothing, and seals nothing unreadable). glibc's mallopt merges the main
     * arena's before it looks at its parameter, and M_KEEP changes nothing (malloc_trim did
     * it too, but also gave every free page of every arena back to the kernel: a start took 3
     * times as long with 20,000 free chunks of 8 KiB). */
    mallopt(M_KEEP, 0);
    /* the main arena's top chunk (keepcost), which ends at the break; none yet (nothing
     * malloc'd so far): the heap will begin at the break */
    seals->heap_top = (uintptr_t)sbrk(0) - mallinfo2().keepcost;
    seals->heap_measured = true;
#endif
}

void pareng__caller_memory_prepare(uintptr_t start_frame)
{
    if (!seals)
        return;
    seals->start_frame = start_frame;
    seals->thread_stack = starting_thread_stack(&seals->thread_data);
    /* Once, in the caller, just before the fork (the start maps blocks of its own: 3 with 200
     * workers): mallinfo walks every free chunk. */
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
    seals->blocks = mallinfo2().hblks;
#elif defined(__GLIBC__)
    seals->blocks = (size_t)mallinfo().hblks;
#else
    seals->blocks = SIZE_MAX;
#endif
}

/* [at, end) less the ranges `cut`, one piece at a time in address order: the end of the piece
 * that begins at `at` (at itself when a cut covers it), and in *resume where to look for the
 * next. */
static uintptr_t piece_end(uintptr_t at, uintptr_t end, const range *cut, unsigned n,
                           uintptr_t *resume)
{
    uintptr_t stop = end;
    *resume = end;
    for (unsigned k = 0; k < n; k++)
        if (cut[k].end > at && cut[k].begin < stop) {
            stop = cut[k].begin > at ? cut[k].begin : at;
            *resume = cut[k].end;
        }
    if (*resume < stop)
        *resume = stop;
    return stop;
}

/* What is not the caller's data, in whole pages: an anonymous mapping merged with this list
 * or with a segment's .bss (whose end is not a page's) goes on at the next page, and a piece
 * that began mid-page found no block there (mincore refuses such an address), so a block the
 * caller's thread had malloc'd, mapped next to this list, stayed writable. */
static void exclude(uintptr_t begin, uintptr_t end)
{
    if (seals->n_excluded < CODE_MOST)
        seals->excluded[seals->n_excluded++] = pages_around(begin, end, seals->page);
}

/* Blocks next to each other (the kernel gives mappings downwards, one against the next) make
 * one range: one mprotect. */
static void add_seal(uintptr_t begin, uintptr_t end, uint32_t kind, uint32_t execution)
{
    range *last = seals->n ? &seals->sealed[seals->n - 1] : NULL;
    if (end <= begin)
        return;
    if (last && last->kind == kind && last->execution == execution && last->end == begin)
        last->end = end;
    else if (seals->n < (kind == PARENG__CALLER_BLOCK ? SEALED_FOR_BLOCKS : SEALED_MOST))
        seals->sealed[seals->n++] = (range){begin, end, kind, execution};
}

/* Whether a block that glibc's malloc mapped for itself starts at `at` (resident, read): its
 * chunk's header, with no alignment gap before it (prev_size 0) and a size of whole pages,
 * marked mmapped, within the mapping. */
static size_t mmapped_block_at(uintptr_t at, uintptr_t end, uintptr_t page)
{
    const size_t *chunk = (const size_t *)at;
    size_t size = chunk[1] & ~(size_t)7;
    return chunk[0] == 0 && (chunk[1] & 7) == MMAPPED_BIT && size && size % page == 0 &&
                   size <= end - at
               ? size
               : 0;
}

static bool resident(uintptr_t at, uintptr_t page)
{
    unsigned char in_core;
    return mincore((void *)at, page, &in_core) == 0 && (in_core & 1);
}

/* The blocks, one after the other, from the start of an anonymous mapping (the kernel merges
 * neighbouring ones, blocks with blocks): where the run ends, the mapping is not known. */
static unsigned seal_blocks_from_start(range *mapping, uintptr_t page)
{
    unsigned found = 0;
    size_t size;
    while (mapping->begin < mapping->end && resident(mapping->begin, page) &&
           (size = mmapped_block_at(mapping->begin, mapping->end, page))) {
        add_seal(mapping->begin, mapping->begin + size, PARENG__CALLER_BLOCK, mapping->execution);
        mapping->begin += size;
        found++;
    }
    return found;
}

/* The blocks in the rest of a mapping, where something else of the caller's lies before them
 * (its own mmap, merged): each resident page is read (mincore), none faulted in, until
 * `wanted` are found. */
static size_t seal_blocks_within(const range *mapping, uintptr_t page, size_t wanted)
{
    unsigned char in_core[4096];
    size_t found = 0;
    uintptr_t at = mapping->begin, end = mapping->end;
    while (at < end && found < wanted) {
        size_t pages = (end - at) / page < sizeof in_core ? (end - at) / page : sizeof in_core;
        if (mincore((void *)at, pages * page, in_core) < 0)
            return found;
        size_t i = 0, size;
        while (i < pages && found < wanted) {
            uintptr_t here = at + i * page;
            if ((in_core[i] & 1) && (size = mmapped_block_at(here, end, page))) {
                add_seal(here, here + size, PARENG__CALLER_BLOCK, mapping->execution);
                found++;
                i += size / page;
            } else {
                i++;
            }
        }
        at += i * page;
    }
    return found;
}

/* glibc counts the blocks it mapped (mallinfo's hblks): the runs from the mappings' starts
 * find them all unless the caller's own mappings lie in between, and only then are pages
 * read one by one, and only until the count is reached. */
static void seal_blocks(uintptr_t page)
{
    size_t wanted = seals->blocks, found = 0;
    for (unsigned i = 0; i < seals->n_anonymous && found < wanted; i++)
        found += seal_blocks_from_start(&seals->anonymous[i], page);
    for (unsigned i = 0; i < seals->n_anonymous && found < wanted; i++)
        found += seal_blocks_within(&seals->anonymous[i], page, wanted - found);
}

/* The first heaps of glibc's thread arenas in [begin, end): each at a multiple of 64 MiB, its
 * heap_info first (the arena, right after it; no previous heap; the size in use; the size
 * made writable; the page size). A resident page only, as above. */
static void seal_thread_heaps(uintptr_t begin, uintptr_t end, uintptr_t page,
                              uint32_t execution)
{
    for (uintptr_t at = (begin + THREAD_HEAP_ALIGN - 1) & ~(THREAD_HEAP_ALIGN - 1); at < end;
         at += THREAD_HEAP_ALIGN) {
        const uintptr_t *info = (const uintptr_t *)at;
        /* heap_info is 32 bytes, 48 since glibc 2.35 (which added the page size) */
        if (resident(at, page) &&
            (info[0] == at + 32 || (info[0] == at + 48 && info[4] == page)) && info[1] == 0 &&
            info[2] >= page && info[3] >= info[2] && info[3] <= end - at && info[3] % page == 0)
            add_seal(at, at + info[3], PARENG__CALLER_THREAD_HEAP, execution);
    }
}

/* An anonymous private mapping, less what is not the caller's data (this list; a program's or
 * library's .bss, anonymous past its file), piece by piece: its thread heaps sealed now, the
 * pieces kept for seal_blocks, once the map is read. */
static void note_anonymous(uintptr_t begin, uintptr_t end, uintptr_t page, uint32_t execution)
{
    for (uintptr_t resume; begin < end; begin = resume) {
        uintptr_t stop = piece_end(begin, end, seals->excluded, seals->n_excluded, &resume);
        if (stop > begin) {
            seal_thread_heaps(begin, stop, page, execution);
            if (seals->n_anonymous < ANONYMOUS_MOST)
                seals->anonymous[seals->n_anonymous++] = (range){begin, stop, 0, execution};
        }
    }
}

/* glibc's chunks lie one after the other in the heap: prev_size, then the size with 3 flag
 * bits, of which PREV_INUSE says whether the chunk before is in use (a free chunk that malloc
 * keeps for reuse in a list of its own, tcache's or a fastbin's, counts as in use). */
#define CHUNK_SIZE(at) (((const size_t *)(at))[1] & ~(size_t)7)
#define PREV_INUSE_BIT 1
#define CHUNK_WALKED_MOST 65536
/* a free chunk's own words (prev_size, size, its lists' four pointers) stay readable */
#define FREE_CHUNK_HEAD 64

/* The caller's heap, sealed: read-only, but unreadable where it held nothing at the start,
 * which the caller's first blocks after the start take: the top chunk, and the chunks that
 * pareng_start's own allocations left free (hwloc's). A task that read one (a buffer the
 * caller filled after the start, passed in ctx) read the workers' copy of free memory: zeros
 * or old bytes, and a wrong answer with exit status 0 (a 9000-byte block right after the
 * start read hwloc's XML). Such a read fails the run now, naming it. The chunks are walked
 * from where the top began as pareng_start began (measured in the caller) to the break,
 * whole pages of the free ones made unreadable, and only if the walk ends at the break; free
 * chunks below stay readable (their pages hold the caller's blocks too). */
static void seal_heap(uintptr_t begin, uintptr_t end, uintptr_t page, uint32_t execution)
{
    uintptr_t at = seals->heap_top, brk_now = (uintptr_t)sbrk(0);
    unsigned chunks = 0;
    bool known = seals->heap_measured && at >= begin && brk_now > at && brk_now <= end;
    for (uintptr_t c = at; known && c < brk_now; c += CHUNK_SIZE(c)) {
        size_t size = CHUNK_SIZE(c);
        known = size >= 32 && size % 16 == 0 && size <= brk_now - c &&
                ++chunks <= CHUNK_WALKED_MOST;
    }
    if (!known) {
        add_seal(begin, end, PARENG__CALLER_HEAP, execution);
        return;
    }
    uintptr_t readable = begin;
    for (uintptr_t c = at; c < brk_now; c += CHUNK_SIZE(c)) {
        uintptr_t next = c + CHUNK_SIZE(c);
        bool top = next == brk_now;
        if (!top && (((const size_t *)next)[1] & PREV_INUSE_BIT))
            continue;
        uintptr_t from = (c + (top ? 2 * sizeof(size_t) : FREE_CHUNK_HEAD) + page - 1) &
                         ~(page - 1),
                  to = top ? end : next & ~(page - 1);
        if (from < to) {
            add_seal(readable, from, PARENG__CALLER_HEAP, execution);
            add_seal(from, to, PARENG__CALLER_HEAP_UNUSED, execution);
            pareng__heap_unused_sealed++;
            readable = to;
        }
    }
    add_seal(readable, end, PARENG__CALLER_HEAP, execution);
}

/* A stack of the caller's: the main thread's, or that of the thread that started the engine.
 * Below pareng_start's frame lie only the frames of the start itself, which returned: a
 * function the caller called afterwards has its locals there, which workers do not have. Not
 * even readable, then. */
static void seal_stack(uintptr_t begin, uintptr_t end, uintptr_t page, uint32_t execution)
{
    uintptr_t dead = seals->start_frame & ~(page - 1);
    if (dead > begin && dead < end) {
        add_seal(begin, dead, PARENG__CALLER_STACK_AFTER, execution);
        begin = dead;
    }
    add_seal(begin, end, PARENG__CALLER_STACK, execution);
}

/* One line of /proc/self/maps: "begin-end perms offset dev inode   path". */
static void take_mapping(const char *line, uintptr_t page)
{
    unsigned long begin, end, inode;
    char perms[5];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu %n", &begin, &end, perms, &inode,
               &path_at) < 4 || (strcmp(perms, "rw-p") != 0 && strcmp(perms, "rwxp") != 0))
        return;
    /* an executable stack (-z execstack, a nested function's trampoline) stays executable */
    uint32_t execution = perms[2] == 'x' ? PROT_EXEC : 0;
    const char *path = line + path_at;
    if (strcmp(path, "[heap]") == 0) {
        seal_heap(begin, end, page, execution);
    } else if (strcmp(path, "[stack]") == 0) {
        seal_stack(begin, end, page, execution);
    } else if (inode == 0 && !*path) {
        note_anonymous(begin, end, page, execution);
    }
}

/* Reads the whole map before any mprotect, which would split the mappings it reads. */
static void find_caller_memory(uintptr_t page)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* no /proc: the copies stay writable, as before */
    char buffer[8192];
    size_t held = 0;
    for (;;) {
        ssize_t got = read(fd, buffer + held, sizeof buffer - 1 - held);
        if (got <= 0)
            break;
        held += (size_t)got;
        buffer[held] = 0;
        char *line = buffer, *newline;
        while ((newline = strchr(line, '\n'))) {
            *newline = 0;
            take_mapping(line, page);
            line = newline + 1;
        }
        held = (size_t)(buffer + held - line);
        memmove(buffer, line, held);
        if (held == sizeof buffer - 1)
            held = 0; /* a line longer than the buffer: a path, of no mapping sealed */
    }
    close(fd);
}

/* A library that keeps state of its own, which the caller's process may have made before the
 * start and a task's call then writes, as after any fork: the C library's (and the dynamic
 * linker's), the compilers' runtimes, and those the engine itself links, wherever they are
 * installed (a module tree, a conda prefix). Every other library is the program's: BLAS
 * writing a result into the caller's array is the program writing it. */
static bool keeps_its_own_state(const char *name)
{
    static const char *const names[] = {
        "libc.so", "ld-linux", "ld64.so", "libm.so", "libmvec.so", "libpthread.so", "libdl.so",
        "librt.so", "libresolv.so", "libnss_", "libanl.so", "libutil.so", "libcrypt.so",
        "libstdc++.so", "libgcc_s.so", "libgomp.so", "libgfortran.so", "libquadmath.so",
        "libatomic.so", "libc++.so", "libc++abi.so", "libunwind.so", "libomp.so", "libiomp5.so",
        "libtbb.so", "libtbbmalloc.so", "libpareng.so", "libhwloc.so", "liburing.so",
        "linux-vdso.so", "linux-gate.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(name, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* Each object's executable segments: the program's, and the C library's; all its segments
 * are excluded from what is scanned for blocks (a .bss is anonymous past its file). */
static int note_code(struct dl_phdr_info *object, size_t size, void *unused)
{
    (void)size;
    (void)unused;
    const char *path = object->dlpi_name ? object->dlpi_name : "";
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    /* the main program has no name; glibc's charset modules live in a gconv directory */
    bool program = !*path || !(keeps_its_own_state(name) || strstr(path, "/gconv/")),
         libc = strncmp(name, "libc.so", 7) == 0;
    for (unsigned i = 0; i < object->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &object->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD)
            continue;
        uintptr_t begin = object->dlpi_addr + segment->p_vaddr;
        range loaded = {begin, begin + segment->p_memsz, 0, 0};
        exclude(loaded.begin, loaded.end);
        if (!(segment->p_flags & PF_X))
            continue;
        if (program && seals->n_code < CODE_MOST)
            seals->program_code[seals->n_code++] = loaded;
        if (libc && seals->n_libc < sizeof seals->libc_code / sizeof seals->libc_code[0])
            seals->libc_code[seals->n_libc++] = loaded;
    }
    return 0;
}

/* The blocks that glibc's __tls_get_addr allocated for the thread-locals of libraries loaded
 * with dlopen, which the caller's thread (this worker's) made before the start, in its heap:
 * what any code writes there is the worker's own. Found in the thread's dynamic thread vector
 * (glibc's dtv_t entries of 16 bytes, {value, block to free}; entry -1 counts the modules),
 * which the thread control block points to. */
static void note_thread_locals(void)
{
    const uintptr_t *dtv = NULL;
#if defined(__x86_64__)
    __asm__("mov %%fs:8, %0" : "=r"(dtv)); /* tcbhead_t: tcb, dtv */
#elif defined(__aarch64__)
    const uintptr_t *const *thread_pointer = __builtin_thread_pointer();
    dtv = thread_pointer[0]; /* tcbhead_t: dtv, private */
#endif
    if (!dtv)
        return;
    size_t modules = dtv[-2];
    for (size_t i = 1; i <= modules && seals->n_tls < TLS_MOST; i++) {
        uintptr_t block = dtv[2 * i + 1];
        if (block)
            seals->tls[seals->n_tls++] =
                (range){block, block + malloc_usable_size((void *)block), 0, 0};
    }
}

/* The pages of the streams the caller opened, and of their buffers: left writable, since the
 * kernel fills a stream's buffer (a task's fgets on the caller's FILE: read(2) into sealed
 * memory would fail with EFAULT, not fault), and the program's code writes them too
 * (putc_unlocked, inline). */
static void exempt_streams(uintptr_t page)
{
#ifdef __GLIBC__
    for (FILE *f = _IO_list_all; f && seals->n_exempt + 2 <= EXEMPT_MOST; f = f->_chain) {
        /* the FILE with glibc's lock and wide data after it (locked_FILE) */
        seals->exempt[seals->n_exempt++] = pages_around((uintptr_t)f, (uintptr_t)f + 1024, page);
        if (f->_IO_buf_base)
            seals->exempt[seals->n_exempt++] =
                pages_around((uintptr_t)f->_IO_buf_base, (uintptr_t)f->_IO_buf_end, page);
    }
#else
    (void)page;
#endif
}

/* the range less the exempt pages in it */
static void seal_range(const range *r, int protection)
{
    for (uintptr_t at = r->begin, resume; at < r->end; at = resume) {
        uintptr_t stop = piece_end(at, r->end, seals->exempt, seals->n_exempt, &resume);
        if (stop > at)
            mprotect((void *)at, stop - at, protection);
    }
}

#if defined(__x86_64__)
static void on_trap(int sig, siginfo_t *info, void *context);
#endif

/* Under a debugger (/proc/self/status's TracerPid), which takes the trap's SIGTRAP itself. */
static bool traced(void)
{
    char status[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, status, sizeof status - 1);
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return false;
    status[got] = 0;
    const char *tracer = strstr(status, "TracerPid:");
    return tracer && atoi(tracer + strlen("TracerPid:")) != 0;
}

void pareng__caller_memory_seal(void)
{
    if (!seals)
        return;
    uintptr_t page = seals->page = (uintptr_t)sysconf(_SC_PAGESIZE);
    seals->n = seals->n_code = seals->n_libc = seals->n_tls = seals->n_exempt = 0;
    seals->n_anonymous = 0;
    pareng__heap_unused_sealed = 0;
    seals->n_excluded = 0;
    exclude((uintptr_t)seals, (uintptr_t)seals + sizeof *seals);
    seals->sealed_by = getpid();
    /* A SIGTRAP handler of the program's (after_fork's) stays: pages then stay open. */
    struct sigaction had;
    seals->traced = traced() || (sigaction(SIGTRAP, NULL, &had) == 0 &&
                                 ((had.sa_flags & SA_SIGINFO) || had.sa_handler != SIG_DFL));
    dl_iterate_phdr(note_code, NULL);
    note_thread_locals();
    exempt_streams(page);
    if (seals->thread_data.end > seals->thread_data.begin && seals->n_exempt < EXEMPT_MOST)
        seals->exempt[seals->n_exempt++] = seals->thread_data;
    const range *stack = &seals->thread_stack;
    if (stack->end > stack->begin) {
        exclude(stack->begin, stack->end); /* not an anonymous mapping's blocks */
        seal_stack(stack->begin, stack->end, page, 0);
    }
    find_caller_memory(page);
    seal_blocks(page);
#if defined(__x86_64__)
    struct sigaction trap = {.sa_sigaction = on_trap, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigfillset(&trap.sa_mask);
    if (!seals->traced)
        sigaction(SIGTRAP, &trap, NULL);
#endif
    for (unsigned i = 0; i < seals->n; i++) {
        const range *r = &seals->sealed[i];
        if (PARENG__CALLER_NOTHING_YET(r->kind))
            mprotect((void *)r->begin, r->end - r->begin, PROT_NONE);
        else
            seal_range(r, PROT_READ | (int)r->execution);
    }
}

static bool in(const range *ranges, unsigned n, uintptr_t at)
{
    for (unsigned i = 0; i < n; i++)
        if (at >= ranges[i].begin && at < ranges[i].end)
            return true;
    return false;
}

static bool program_code(uintptr_t at)
{
    return in(seals->program_code, seals->n_code, at);
}

static uintptr_t instruction_at(const ucontext_t *context)
{
#if defined(__x86_64__)
    return (uintptr_t)context->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)context->uc_mcontext.pc;
#else
    (void)context;
    return 0;
#endif
}

/* The program's access (a write; a read of what it may not read), or one of a leaf function
 * of the C library that it called (memcpy, memset, strcpy), whose return address is where the
 * call left it: at the stack pointer on x86-64 (they push nothing), in the link register on
 * AArch64. */
static bool the_programs_access(const ucontext_t *context)
{
    uintptr_t at = instruction_at(context);
#if defined(__x86_64__)
    uintptr_t returns_to = *(const uintptr_t *)context->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    uintptr_t returns_to = (uintptr_t)context->uc_mcontext.regs[30];
#else
    return true;
#endif
    return program_code(at) ||
           (in(seals->libc_code, seals->n_libc, at) && program_code(returns_to));
}

/* A write, not a read or an instruction fetch (the x86 page fault's error code; elsewhere
 * the fault is taken for one). */
static bool a_write(const ucontext_t *context)
{
#if defined(__x86_64__)
    return (context->uc_mcontext.gregs[REG_ERR] & 0x12) == 0x2; /* W set, instruction fetch not */
#else
    (void)context;
    return true;
#endif
}

/* The slot counting how often libraries opened `page` (taken if new), or NULL when none is
 * left near its hash. Any thread of the worker, in its handler: atomics. */
static _Atomic uint32_t *reopens_of(uintptr_t page, bool take)
{
    unsigned first = (unsigned)(page / seals->page) & (OPENED_SLOTS - 1);
    for (unsigned probe = 0; probe < 16; probe++) {
        unsigned i = (first + probe) & (OPENED_SLOTS - 1);
        uintptr_t key = atomic_load_explicit(&seals->opened[i].page, memory_order_relaxed);
        if (key == page)
            return &seals->opened[i].reopens;
        if (key == 0 && take &&
            (atomic_compare_exchange_strong_explicit(&seals->opened[i].page, &key, page,
                                                     memory_order_relaxed,
                                                     memory_order_relaxed) ||
             key == page))
            return &seals->opened[i].reopens;
    }
    return NULL;
}

#if defined(__x86_64__)
/* A page libraries opened more than REOPENS_MOST times stays open. */
static bool kept_open(uintptr_t page)
{
    _Atomic uint32_t *reopens = reopens_of(page, false);
    return reopens && atomic_load_explicit(reopens, memory_order_relaxed) > REOPENS_MOST;
}

/* The pages a library's write opened, this thread's, sealed again once the writing instruction
 * has run: on x86-64 the trap flag stops the thread after it (SIGTRAP), so that the program's
 * own next write on the page faults as the first did. Elsewhere, under a debugger (which takes
 * the SIGTRAP) and past REOPENS_MOST, they stay open, and a later write of the program's there
 * goes unseen. Thread-local: each thread of a worker writes and traps on its own; one that
 * seals a page another thread opened makes that one fault again, and open it again. */
static __thread __attribute__((tls_model("initial-exec"))) struct {
    unsigned n;
    uintptr_t page[REOPENED_MOST];
    uint32_t execution[REOPENED_MOST];
} reopened;

static bool in_reopened(uintptr_t page)
{
    for (unsigned i = 0; i < reopened.n; i++)
        if (reopened.page[i] == page)
            return true;
    return false;
}

#define TRAP_FLAG 0x100 /* EFLAGS.TF */
static void on_trap(int sig, siginfo_t *info, void *context)
{
    ucontext_t *stopped = context;
    if (info->si_code != TRAP_TRACE || !reopened.n) { /* not ours: what a SIGTRAP did before */
        pareng__worker_signal_by_default(sig);
        return;
    }
    for (unsigned i = 0; i < reopened.n; i++)
        if (!kept_open(reopened.page[i]))
            mprotect((void *)reopened.page[i], seals->page,
                     PROT_READ | (int)reopened.execution[i]);
    reopened.n = 0;
    stopped->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)TRAP_FLAG;
}
#endif

unsigned pareng__heap_unused_sealed;

/* This thread's calls of the C library's malloc for libpareng under way (the fault is
 * delivered to the thread that faulted: another thread's write there stays refused). */
static __thread __attribute__((tls_model("initial-exec"))) unsigned allocating;

void pareng__caller_memory_allocating(void)
{
    allocating++;
}

void *pareng__caller_memory_allocated(void *block, size_t size)
{
    /* the block with the chunk headers around it */
    uintptr_t begin = (uintptr_t)block - 2 * sizeof(size_t),
              end = (uintptr_t)block + size + 2 * sizeof(size_t);
    for (unsigned i = 0; block && size < SIZE_MAX / 2 && i < seals->n; i++) {
        const range *r = &seals->sealed[i];
        uintptr_t from = begin > r->begin ? begin : r->begin, to = end < r->end ? end : r->end;
        if (r->kind == PARENG__CALLER_HEAP_UNUSED && from < to) {
            range pages = pages_around(from, to, seals->page);
            mprotect((void *)pages.begin, pages.end - pages.begin, PROT_READ | PROT_WRITE);
        }
    }
    allocating--;
    return block;
}

int pareng__caller_memory_fault(uintptr_t at, void *context)
{
    unsigned n = seals ? seals->n : 0;
    if (n && getpid() != seals->sealed_by) {
        /* A process a task forked, before its fork handler unsealed (the program's own child
         * handlers run first): its copies are its own to write. */
        unseal_in_child();
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        const range *r = &seals->sealed[i];
        if (at < r->begin || at >= r->end)
            continue;
        if (PARENG__CALLER_NOTHING_YET(r->kind)) {
            /* Free memory, which the C library's own malloc may take in this worker, while
             * libpareng's heap is locked (malloc.c; sys.c: a message's buffer): what it touches
             * then opens for good, the worker's own, and so does the block it gives
             * (pareng__caller_memory_allocated). Any other access is refused, the program's
             * or the C library's for it (printf's "%s", qsort, snprintf into a block the
             * caller malloc'd after the start). */
            if (r->kind == PARENG__CALLER_HEAP_UNUSED &&
                allocating &&
                !the_programs_access(context) &&
                mprotect((void *)(at & ~(seals->page - 1)), seals->page,
                         PROT_READ | PROT_WRITE) == 0)
                return -1;
            return (int)r->kind;
        }
        /* A read of a page the program protected itself, or a jump into the heap: no write
         * of a library's to let go on (opening the page would fault for ever). */
        uintptr_t page = at & ~(seals->page - 1);
        if (!a_write(context) || instruction_at(context) - page < seals->page)
            return 0;
        if (the_programs_access(context) && !in(seals->tls, seals->n_tls, at))
            return (int)r->kind;
        _Atomic uint32_t *reopens = reopens_of(page, true);
        uint32_t times = reopens ? atomic_fetch_add_explicit(reopens, 1, memory_order_relaxed) + 1
                                 : REOPENS_MOST + 1;
        /* open for good already, and still a fault: something else than the seal */
        if (times > REOPENS_MOST + 64 ||
            mprotect((void *)page, seals->page, PROT_READ | PROT_WRITE | (int)r->execution) < 0)
            return 0;
#if defined(__x86_64__)
        /* a task that took SIGTRAP for itself (or ignores it) would get the trap instead */
        struct sigaction trap;
        if (times <= REOPENS_MOST && !seals->traced && sigaction(SIGTRAP, NULL, &trap) == 0 &&
            (trap.sa_flags & SA_SIGINFO) && trap.sa_sigaction == on_trap) {
            bool listed = in_reopened(page);
            if (!listed && reopened.n < REOPENED_MOST) {
                reopened.page[reopened.n] = page;
                reopened.execution[reopened.n++] = r->execution;
                listed = true;
            }
            if (listed)
                ((ucontext_t *)context)->uc_mcontext.gregs[REG_EFL] |= TRAP_FLAG;
        }
#endif
        return -1;
    }
    return 0;
}

/* ---- SIGSEGV and SIGTRAP stay deliverable in a worker that sealed ----
 * A thread that blocks every signal (a thread pool's first line, started by a task) would be
 * killed by the kernel at a library's write to what is sealed, where the handlers let it go
 * on: libpareng's pthread_sigmask and sigprocmask, which replace the C library's as its malloc
 * does (malloc.c), block neither there. Elsewhere (the caller, a process of the program's own,
 * a program linked statically, where libc.a's are not even looked up) they do what glibc 2.36
 * does: the system call, less the two signals glibc keeps for itself (its SIGCANCEL and
 * SIGSETXID, 32 and 33), which must stay deliverable. */
#define GLIBC_INTERNAL_SIGNALS ((1ull << (32 - 1)) | (1ull << (33 - 1)))

static int set_mask(int how, const sigset_t *set, sigset_t *old)
{
    sigset_t copy;
    if (set && how != SIG_UNBLOCK) {
        copy = *set;
        /* sigdelset refuses glibc's own signals: the first word of the set, as the kernel
         * reads it */
        unsigned long long first;
        memcpy(&first, &copy, sizeof first);
        first &= ~GLIBC_INTERNAL_SIGNALS;
        memcpy(&copy, &first, sizeof first);
        if (seals && seals->n && getpid() == seals->sealed_by) {
            sigdelset(&copy, SIGSEGV);
            sigdelset(&copy, SIGTRAP);
        }
        set = &copy;
    }
    return (int)syscall(SYS_rt_sigprocmask, how, set, old, (size_t)_NSIG / 8);
}

PARENG_API __attribute__((weak)) int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    int saved = errno;
    if (set_mask(how, set, old) == 0)
        return 0;
    int err = errno;
    errno = saved;
    return err;
}

PARENG_API __attribute__((weak)) int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    return set_mask(how, set, old);
}

const char *pareng__caller_memory_name(uint32_t kind)
{
    switch (kind) {
    case PARENG__CALLER_HEAP:
        return "the caller's heap (what it malloc'd, before pareng_start or since)";
    case PARENG__CALLER_STACK:
        return "the caller's stack (a local variable of main, of the thread that started the "
               "engine, or of a function they called)";
    case PARENG__CALLER_STACK_AFTER:
        return "the caller's stack below the function that called pareng_start (a local "
               "variable of a function called after the start)";
    case PARENG__CALLER_BLOCK:
        return "a block the caller malloc'd before pareng_start";
    case PARENG__CALLER_THREAD_HEAP:
        return "the heap of one of the caller's threads (what it malloc'd before pareng_start)";
    case PARENG__CALLER_HEAP_UNUSED:
        return "the caller's heap where it had nothing at pareng_start (a block it malloc'd "
               "after the start)";
    case PARENG__CALLER_MAPPED_LATER:
        return "memory the caller has and the workers do not (mapped after pareng_start: a "
               "block of 128 KiB or more that it malloc'd since, its heap grown since, an mmap, "
               "a library it opened)";
    default:
        return "the caller's memory";
    }
}
