/*
 * arena.c - the shared memory every process of an engine maps: its size, header, creation and
 * removal; and pareng_clean, the sweep of named segments left by earlier versions.
 *
 * Layout (docs/design.md has the picture): the header (pareng__arena) at offset 0, then one
 * pareng__worker per worker, then one deque of deque_capacity frames per worker, then one
 * stack per worker (and one per fiber of an IO engine), then one spill stack per lane (large
 * tasks' data, pareng.h), then the shared heap of pareng_alloc,
 * which grows (heap.c): the memfd holds its first 8 MiB, and the mapping reaches as far as it
 * may grow. The memory is mapped MAP_SHARED before any fork, so it sits at the same address in every
 * process and pointers into it (frames, workers, task stacks) mean the same thing everywhere.
 *
 * It has no name: it is a memfd, which no other process can open, squat, plant a FIFO in place
 * of, or be left behind by a killed engine (the kernel frees it with the last mapping), and
 * which no start needs to sweep for. Tools attach through the coordinator's descriptor,
 * /proc/PID/fd/N (pareng_engine_segment), which only the same user may open.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/resource.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* What the arena holds beside the header and the heap: lanes, frames and worker stacks. */
typedef struct lanes_layout {
    unsigned n_workers, per_worker, first_capacity, other_capacity;
    size_t stack_bytes; /* each worker's stack, its guard region included */
    bool fibers;        /* lanes 1 and up have stacks of their own (IO engines) */
} lanes_layout;

/* A fiber's stack (IO engines: lanes 1 and up) and its guard page. */
#define FIBER_STACK_SPAN (PARENG__FIBER_STACK_BYTES + PARENG__FIBER_GUARD_BYTES)

/* Each lane's spill stack (pareng.h: the data of spawned tasks too large for a frame). Address
 * space until used; a lane that needs more goes on in chunks of the heap (spill.c). */
#define SPILL_BYTES ((size_t)16 << 20)
#define FIBER_SPILL_BYTES ((size_t)64 << 10)

static size_t deques_offset(const lanes_layout *l)
{
    return round_up(sizeof(pareng__arena) +
                        (size_t)l->n_workers * l->per_worker * sizeof(pareng__worker),
                    4096);
}

static size_t deque_bytes(unsigned capacity)
{
    return round_up((size_t)capacity * sizeof(pareng_frame), 4096);
}

static size_t worker_deques_bytes(const lanes_layout *l)
{
    return deque_bytes(l->first_capacity) + (l->per_worker - 1) * deque_bytes(l->other_capacity);
}

static size_t stacks_offset(const lanes_layout *l)
{
    return deques_offset(l) + l->n_workers * worker_deques_bytes(l);
}

static size_t worker_stacks_bytes(const lanes_layout *l)
{
    return l->stack_bytes + (l->fibers ? (size_t)(l->per_worker - 1) * FIBER_STACK_SPAN : 0);
}

static size_t spills_offset(const lanes_layout *l)
{
    return stacks_offset(l) + l->n_workers * worker_stacks_bytes(l);
}

static size_t worker_spills_bytes(const lanes_layout *l)
{
    return SPILL_BYTES + (size_t)(l->per_worker - 1) * FIBER_SPILL_BYTES;
}

/* Last: the heap grows into the mapping past its end (heap.c). */
static size_t heap_offset(const lanes_layout *l)
{
    return spills_offset(l) + l->n_workers * worker_spills_bytes(l);
}

/* A worker's stack is as large as the caller's main stack may grow (RLIMIT_STACK, at most
 * WORKER_STACK_MOST, which unlimited gives; 8 MiB when it cannot be read), at least
 * WORKER_STACK_LEAST, plus its guard. It lives in the arena so that a child a thief took
 * may use a pointer to its parent's locals, as under Cilk (docs/memory.md); pages are taken
 * only as the stack deepens. Work-first execution makes it as deep as the user's tree: UTS's
 * T3L, 17,844 levels of tasks, outgrew the usual 8 MiB and died of SIGSEGV
 * (tests/test_cutoff.c runs a tree of 60,000 levels). */
#define WORKER_STACK_LEAST (64u << 20)
#define WORKER_STACK_MOST (256u << 20)

static size_t worker_stack_bytes(void)
{
    struct rlimit stack;
    size_t bytes = 8u << 20;
    /* `ulimit -s unlimited` (RLIM_INFINITY, the largest value) asks for the most, as the
     * overflow report's advice to raise it expects */
    if (getrlimit(RLIMIT_STACK, &stack) == 0)
        bytes = stack.rlim_cur < WORKER_STACK_MOST ? (size_t)stack.rlim_cur : WORKER_STACK_MOST;
    return round_up(bytes < WORKER_STACK_LEAST ? WORKER_STACK_LEAST : bytes, 4096) +
           PARENG__WORKER_GUARD_BYTES;
}

_Static_assert(WORKER_STACK_LEAST == 64u << 20 && WORKER_STACK_MOST == 256u << 20 &&
                   PARENG__FIBER_STACK_BYTES == 256u << 10,
               "pareng__stack_sizing says these sizes");

const char *pareng__stack_sizing(unsigned k)
{
    return k == 0 ? "a worker's: the larger of 64 MiB and ulimit -s at pareng_start, at most "
                    "256 MiB (unlimited: 256); raise ulimit -s for a deeper one, or keep large "
                    "arrays off the stack"
                  : "a fiber's, in an IO engine: a fixed size; keep deep recursion and large "
                    "arrays out of an IO engine's tasks, or run them in an engine without IO, "
                    "whose stacks are 64 MiB or more";
}

/* Named segments (pareng 0.1 made one per engine in /dev/shm): one is stale when the process
 * that made it is gone, its pid not running or running with another start time than the
 * header records. Nothing here may block or follow a name someone else made: the file is
 * opened without blocking (a FIFO) or following (a link), and only a regular file of this
 * user is read at all. */
static bool segment_is_stale(int dir, const char *file)
{
    int pid;
    if (sscanf(file, PARENG__SEGMENT_PREFIX "%d-", &pid) != 1 || pid <= 0)
        return false; /* not ours */
    int fd = openat(dir, file, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return false;
    struct stat st;
    pareng__arena head;
    bool readable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                    pread(fd, &head, offsetof(pareng__arena, epoch), 0) ==
                        (ssize_t)offsetof(pareng__arena, epoch);
    close(fd);
    if (!readable || head.magic != PARENG__ARENA_MAGIC || head.owner_pid != pid)
        return false;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    /* A reused pid is told apart by the start time, which only layout 3 keeps where this
     * header has it (layouts 1 and 2 of 0.1 had it elsewhere: theirs count as alive) */
    uint64_t started = pareng__process_start_time(pid);
    return head.layout == PARENG__NAMED_SEGMENT_LAYOUT && started != 0 &&
           head.owner_start_time != started;
}

int pareng_clean(void)
{
    int dir = open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dir < 0 ? NULL : fdopendir(dir);
    if (!d) {
        int err = errno;
        if (dir >= 0)
            close(dir);
        return err == ENOENT ? 0 : pareng__fail(err, "cannot read %s: %s", SHM_DIR, strerror(err));
    }
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if ((e->d_type != DT_REG && e->d_type != DT_UNKNOWN) ||
            strncmp(e->d_name, PARENG__SEGMENT_PREFIX, strlen(PARENG__SEGMENT_PREFIX)) != 0 ||
            !segment_is_stale(dir, e->d_name))
            continue;
        removed += unlinkat(dir, e->d_name, 0) == 0;
    }
    closedir(d);
    return removed;
}

/* The heap's first bytes in the file; it grows from there (heap.c). */
#define HEAP_INITIAL_BYTES ((size_t)8 << 20)

/* How far a heap of shared_bytes 0 may grow: the machine's memory and swap, which no engine can
 * outgrow anyway, at most PARENG__SHARED_BYTES_MAX. Address space only until it is used. */
static size_t automatic_heap_limit(void)
{
    struct sysinfo si;
    uint64_t bytes = sysinfo(&si) == 0
                         ? ((uint64_t)si.totalram + si.totalswap) * (si.mem_unit ? si.mem_unit : 1)
                         : (uint64_t)HEAP_INITIAL_BYTES;
    bytes = bytes < PARENG__SHARED_BYTES_MAX ? bytes : PARENG__SHARED_BYTES_MAX;
    return round_up(bytes > HEAP_INITIAL_BYTES ? bytes : HEAP_INITIAL_BYTES, 4096);
}

/* Maps `bytes` of fd shared, or fails with the cause named. A limit of shared_bytes 0 that does
 * not fit the address space is halved until it does (down to what the file holds now). */
static int map_arena(int fd, size_t fixed, size_t file_bytes, size_t *heap_limit,
                     bool automatic, void **map)
{
    for (;;) {
        /* Past the file's end the mapping is valid once the file grows: the heap's reserve. */
        *map = mmap(NULL, fixed + *heap_limit, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                    fd, 0);
        if (*map != MAP_FAILED)
            return 0;
        int err = errno;
        if (err == ENOMEM && automatic && fixed + *heap_limit / 2 >= file_bytes) {
            *heap_limit = round_up(*heap_limit / 2, 4096);
            continue;
        }
        struct rlimit as;
        if (err == ENOMEM && getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
            return pareng__fail(ENOMEM, "cannot map the engine's %zu bytes of shared memory: "
                                "the address-space limit (ulimit -v, RLIMIT_AS) is %llu bytes",
                                fixed + *heap_limit, (unsigned long long)as.rlim_cur);
        return pareng__fail(err, "cannot map the engine's %zu bytes of shared memory: %s",
                            fixed + *heap_limit, strerror(err));
    }
}

/* The deque of a worker's lanes past the first: a fiber's (IO engines), or a split serial
 * run's, which holds one task tree and never more than lane 0 may. */
static unsigned other_lane_capacity(unsigned io_depth, unsigned deque_capacity)
{
    if (io_depth)
        return PARENG__LANE_CAPACITY;
    return deque_capacity < PARENG__SPLIT_LANE_CAPACITY ? deque_capacity
                                                        : PARENG__SPLIT_LANE_CAPACITY;
}

int pareng__arena_create(pareng__segment *seg, unsigned n_workers, unsigned deque_capacity,
                         unsigned io_depth, size_t shared_bytes)
{
    lanes_layout layout = {.n_workers = n_workers,
                           .per_worker = PARENG__LANES_PER_WORKER(io_depth),
                           .first_capacity = deque_capacity,
                           .other_capacity = other_lane_capacity(io_depth, deque_capacity),
                           .stack_bytes = worker_stack_bytes(),
                           .fibers = io_depth != 0};
    if (shared_bytes > PARENG__SHARED_BYTES_MAX)
        return pareng__fail(EINVAL, "shared_bytes %zu is more than the most an engine takes "
                            "(%llu)", shared_bytes, (unsigned long long)PARENG__SHARED_BYTES_MAX);
    size_t heap_limit = shared_bytes ? round_up(shared_bytes, 4096) : automatic_heap_limit();
    size_t heap_bytes = heap_limit < HEAP_INITIAL_BYTES ? heap_limit : HEAP_INITIAL_BYTES;
    size_t fixed = heap_offset(&layout), size = fixed + heap_bytes;
    /* A memfd's size counts against the file-size limit, and growing past it raises SIGXFSZ,
     * whose default ends the process without a word: say it instead. */
    struct rlimit fsize;
    if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY &&
        size > fsize.rlim_cur)
        return pareng__fail(EFBIG, "the engine needs %zu bytes of shared memory, more than the "
                            "file-size limit (ulimit -f, RLIMIT_FSIZE) of %llu bytes", size,
                            (unsigned long long)fsize.rlim_cur);
    int fd = pareng__fd_above_stdio(
        memfd_create(PARENG__SEGMENT_PREFIX "arena", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (fd < 0)
        return pareng__fail(errno, "cannot create the engine's shared memory (memfd_create): %s",
                            strerror(errno));
    /* Pages are taken as tasks touch them: reserving them (fallocate) would zero every page
     * of the heap and the deques at each start and free them at each stop, which cost more
     * than the rest of the start-up. */
    void *map = MAP_FAILED;
    int err = ftruncate(fd, (off_t)size) < 0 ? errno : 0;
    if (err) {
        close(fd);
        return pareng__fail(err, "cannot size the engine's %zu bytes of shared memory: %s", size,
                            strerror(err));
    }
    /* It only grows (heap.c). Sealed against shrinking, and against any other seal: another
     * process of the user's may open it (/proc/PID/fd), and a shrink would end every process
     * that maps it, the engine's and the tools' that watch it, with SIGBUS (an observer trusts
     * only a sealed memory: observe.c); a seal against growing would stop the heap. */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        err = errno;
        close(fd);
        return pareng__fail(err, "cannot seal the engine's shared memory against shrinking "
                            "(F_ADD_SEALS): %s", strerror(err));
    }
    int rc = map_arena(fd, fixed, size, &heap_limit, shared_bytes == 0, &map);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    seg->fd = fd;
    snprintf(seg->name, sizeof seg->name, "/proc/%d/fd/%d", (int)getpid(), fd);

    pareng__arena *a = map;
    a->layout = PARENG__ARENA_LAYOUT;
    a->n_workers = n_workers;
    a->size = size;
    a->owner_pid = getpid();
    a->deque_capacity = deque_capacity;
    a->lanes_per_worker = layout.per_worker;
    a->lane_capacity = layout.other_capacity;
    a->io_depth = io_depth;
    /* Last, and release: a tool that attaches (pareng_engine_segment) and sees the magic sees
     * a complete header. */
    atomic_store_explicit(&a->magic, PARENG__ARENA_MAGIC, memory_order_release);
    a->root_done_fd = -1;
    char *deque = (char *)map + deques_offset(&layout);
    for (unsigned i = 0; i < n_workers; i++) {
        atomic_init(&pareng__lane(a, i, 0)->lanes_used, 1);
        for (unsigned k = 0; k < layout.per_worker; k++) {
            pareng__worker *w = pareng__lane(a, i, k);
            unsigned capacity = k ? layout.other_capacity : layout.first_capacity;
            w->index = i;
            w->lane_id = i * layout.per_worker + k;
            w->arena = a;
            pareng__deque_init(w, (pareng_frame *)(void *)deque, capacity);
            pareng__cutoff_init(w);
            deque += deque_bytes(capacity);
        }
    }
    char *stack = (char *)map + stacks_offset(&layout);
    for (unsigned i = 0; i < n_workers; i++) {
        /* The guard (internal.h): a task that overflows its stack dies with SIGSEGV, reported
         * as a stack overflow (worker.c), instead of writing into the next worker's stack.
         * Inherited by the fork. Fibers protect theirs as they are made, in their worker alone
         * (fiber.c): one mapping each, in the processes that use them. */
        if (mprotect(stack, PARENG__WORKER_GUARD_BYTES, PROT_NONE) < 0) {
            err = errno;
            munmap(map, fixed + heap_limit);
            close(fd);
            return pareng__fail(err, "cannot protect a worker's stack: %s", strerror(err));
        }
        pareng__lane(a, i, 0)->stack = stack + PARENG__WORKER_GUARD_BYTES;
        pareng__lane(a, i, 0)->stack_bytes = layout.stack_bytes - PARENG__WORKER_GUARD_BYTES;
        stack += layout.stack_bytes;
        for (unsigned k = 1; layout.fibers && k < layout.per_worker;
             k++, stack += FIBER_STACK_SPAN) {
            pareng__lane(a, i, k)->stack = stack + PARENG__FIBER_GUARD_BYTES;
            pareng__lane(a, i, k)->stack_bytes = PARENG__FIBER_STACK_BYTES;
        }
    }
    unsigned char *spill = (unsigned char *)map + spills_offset(&layout);
    for (unsigned i = 0; i < n_workers; i++)
        for (unsigned k = 0; k < layout.per_worker; k++) {
            size_t bytes = k ? FIBER_SPILL_BYTES : SPILL_BYTES;
            pareng__lane(a, i, k)->pub.pareng__spill_top = spill;
            pareng__lane(a, i, k)->pub.pareng__spill_end = spill + bytes;
            spill += bytes;
        }
    pareng__heap_init(&a->heap, fd, (char *)map + fixed, fixed, heap_bytes, heap_limit);
    if ((err = pareng__malloc_track(&a->heap)) < 0) {
        munmap(map, fixed + heap_limit);
        close(fd);
        return err;
    }
    seg->arena = a;
    seg->size = fixed + heap_limit;
    return 0;
}

void pareng__arena_destroy(pareng__segment *seg)
{
    if (!seg->arena)
        return;
    /* The start of the heap, the arena's last part, may stay reserved (pareng__malloc_untrack). */
    char *begin = (char *)seg->arena, *heap = seg->arena->heap.base, *end = begin + seg->size;
    size_t kept = pareng__malloc_untrack(&seg->arena->heap, (size_t)(end - heap));
    munmap(begin, (size_t)(heap - begin));
    if (heap + kept < end)
        munmap(heap + kept, (size_t)(end - (heap + kept)));
    close(seg->fd);
    seg->arena = NULL;
}
