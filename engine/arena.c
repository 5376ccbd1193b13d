/*
 * arena.c - the shared-memory segment every process of an engine maps: its name, size, header,
 * creation, removal, and the sweep of segments whose owner died without removing them.
 *
 * Layout (docs/design.md has the picture): the header (pareng__arena) at offset 0, then one
 * pareng__worker per worker, then one deque of deque_capacity frames per worker, then the
 * shared heap of pareng_alloc. The segment is
 * mapped MAP_SHARED before any fork, so it sits at the same address in every process and
 * pointers into it (frames, workers) mean the same thing everywhere.
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
#include <sys/statvfs.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* What the arena holds beside the header and the heap, in lanes and frames. */
typedef struct lanes_layout {
    unsigned n_workers, per_worker, first_capacity, other_capacity;
} lanes_layout;

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

static size_t heap_offset(const lanes_layout *l)
{
    return deques_offset(l) + l->n_workers * worker_deques_bytes(l);
}

/* A segment is stale when the process that made it is gone: its pid is not running, or is
 * running but started at another time than the header records (the pid was reused). A header
 * not yet complete (magic is written last) belongs to a live process still creating it; a pid
 * whose /proc entry cannot be read (another PID namespace, hidepid) is taken as alive. */
static bool segment_is_stale(const char *file)
{
    int pid;
    if (sscanf(file, PARENG__SEGMENT_PREFIX "%d-", &pid) != 1 || pid <= 0)
        return false; /* not ours */
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return true;
    uint64_t started = pareng__process_start_time(pid);
    if (started == 0)
        return false;
    char path[300];
    snprintf(path, sizeof path, "/%s", file);
    int fd = shm_open(path, O_RDONLY, 0);
    if (fd < 0)
        return false;
    pareng__arena head;
    ssize_t n = pread(fd, &head, offsetof(pareng__arena, epoch), 0);
    close(fd);
    return n == (ssize_t)offsetof(pareng__arena, epoch) && head.magic == PARENG__ARENA_MAGIC &&
           head.owner_pid == pid && head.owner_start_time != started;
}

int pareng_clean(void)
{
    DIR *dir = opendir(SHM_DIR);
    if (!dir)
        return pareng__fail(errno, "cannot read %s: %s", SHM_DIR, strerror(errno));
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, PARENG__SEGMENT_PREFIX, strlen(PARENG__SEGMENT_PREFIX)) != 0 ||
            !segment_is_stale(e->d_name))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/%s", e->d_name);
        if (shm_unlink(path) == 0)
            removed++;
    }
    closedir(dir);
    return removed;
}

int pareng__arena_create(pareng__segment *seg, unsigned n_workers, unsigned deque_capacity,
                         unsigned io_depth, size_t heap_bytes)
{
    static _Atomic unsigned sequence;
    lanes_layout layout = {.n_workers = n_workers,
                           .per_worker = io_depth ? io_depth : 1,
                           .first_capacity = deque_capacity,
                           .other_capacity = PARENG__LANE_CAPACITY};
    heap_bytes = round_up(heap_bytes, 4096);
    size_t size = heap_offset(&layout) + heap_bytes;
    int fd = -1;
    /* pid + a per-process sequence number: unique among live processes; O_EXCL turns a
     * leftover of a dead process with the same pid into EEXIST, and the next number is tried. */
    for (int attempt = 0; attempt < 1000 && fd < 0; attempt++) {
        snprintf(seg->name, sizeof seg->name, "/" PARENG__SEGMENT_PREFIX "%d-%u", (int)getpid(),
                 atomic_fetch_add(&sequence, 1));
        fd = shm_open(seg->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            return pareng__fail(errno, "cannot create shared memory %s: %s", seg->name,
                                strerror(errno));
    }
    if (fd < 0)
        return pareng__fail(EEXIST, "no free shared-memory name for this process");

    /* A tmpfs that is too small (a container's 64 MiB /dev/shm) fails here with a message,
     * not with a SIGBUS in a worker deep in a run. Its free space is checked rather than
     * reserved (posix_fallocate): reserving zeroes every page of the heap and of the deques
     * at each start, and frees them at each stop, which cost more than the rest of the
     * start-up; pages are taken as tasks touch them. */
    struct statvfs room;
    int err = ftruncate(fd, (off_t)size) < 0 ? errno : fstatvfs(fd, &room) < 0 ? errno : 0;
    if (!err && (uint64_t)room.f_bavail * room.f_frsize < size)
        err = ENOSPC;
    void *map = MAP_FAILED;
    if (!err) {
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
            err = errno;
    }
    close(fd);
    if (err) {
        shm_unlink(seg->name);
        return pareng__fail(err, "cannot reserve %zu bytes of shared memory in %s: %s", size,
                            SHM_DIR, strerror(err));
    }

    pareng__arena *a = map;
    a->layout = PARENG__ARENA_LAYOUT;
    a->n_workers = n_workers;
    a->size = size;
    a->owner_pid = getpid();
    a->owner_start_time = pareng__process_start_time(getpid());
    a->deque_capacity = deque_capacity;
    a->lanes_per_worker = layout.per_worker;
    a->lane_capacity = layout.other_capacity;
    a->io_depth = io_depth;
    /* Last, and release: a sweeper that sees the magic sees a complete header. */
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
    pareng__heap_init(&a->heap, (char *)map + heap_offset(&layout), heap_bytes);
    seg->arena = a;
    seg->size = size;
    return 0;
}

void pareng__arena_destroy(pareng__segment *seg)
{
    if (!seg->arena)
        return;
    munmap(seg->arena, seg->size);
    shm_unlink(seg->name);
    seg->arena = NULL;
}
