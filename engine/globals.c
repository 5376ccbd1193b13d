/*
 * globals.c - the program's global variables, shared with the workers as threads share them.
 *
 * A worker is a fork of the caller: it sees the program's globals as they were at
 * pareng_start, a global the caller sets afterwards is stale in every task, and a task that
 * writes one writes its worker's copy, which nobody reads. A program ported from threads
 * (Cilk, OpenMP, TBB) that does either gets a wrong number. So an engine that asks for it
 * (PARENG_GLOBALS_SHARED) has, before its first fork, the main program's writable data (.data
 * and .bss: its globals and static variables, not those of the shared libraries it uses) moved
 * into shared memory at the same address: the caller and every worker of such engines then
 * read and write the same globals, as threads would, data races included. It is not the
 * default: globals that hold per-process state (a pointer to a worker's malloc, the state of an
 * allocator linked statically, an interpreter's) would then be wrong in every other process,
 * silently (docs/memory.md, "Globals").
 *
 * The move copies the segment into a memfd and maps that over it (MAP_FIXED): a write by
 * another thread between the copy and the map would be lost, so in a process that already runs
 * threads pareng_start fails (the documented rule is pareng_start before any thread): the
 * globals the program asked to share would otherwise stay private, and its tasks read stale
 * values without an error. The read-only part after relocation (RELRO) is left alone: GNU ld
 * puts it at the start of the one writable segment, lld in a writable segment of its own before
 * the data's (so the writable part may span segments, which must then touch). libpareng's own
 * per-process state is thread-local (never in .data or .bss), so a program that links
 * libpareng statically shares only its own globals.
 */
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct segment_range {
    uintptr_t begin, end; /* page-aligned */
    bool scattered;       /* writable parts with a gap between them */
} segment_range;

static bool shared; /* the caller's globals are shared already (written by the caller only) */
static segment_range range; /* where they are */
/* Set around the forks of workers, which keep the shared globals; any other fork's child
 * gets a private copy, as fork promises (Python's os.fork, a program's own workers).
 * Thread-local: per process whatever the linking (see the banner). */
static _Thread_local bool forking_workers;

/* The writable part of the main program's data, past its RELRO part. */
static int main_program(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    segment_range *r = data;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), relro_end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO)
            relro_end = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr +
                         info->dlpi_phdr[i].p_memsz + page - 1) & ~(page - 1);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t begin = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        if (relro_end > begin)
            begin = relro_end < end ? relro_end : end;
        if (begin == end)
            continue; /* RELRO alone (lld's first writable segment) */
        if (r->begin == r->end)
            r->begin = begin;
        else if (begin != r->end)
            r->scattered = true;
        r->end = end;
    }
    return 1; /* the first object is the main program */
}

/* How many threads the process runs; 0 when /proc does not say. */
static int threads_running(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return 0;
    char line[128];
    int threads = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &threads) == 1)
            break;
    fclose(f);
    return threads;
}

/* Until the globals are back, no call may go through the program's PLT: its GOT is among
 * them when libpareng is linked into the program. So no memcpy, which a compiler may also
 * make of a plain loop. And the whole segment is copied, AddressSanitizer's red zones
 * between globals included, which it must not check. */
__attribute__((no_sanitize_address)) static void copy_without_calls(void *to, const void *from,
                                                                    size_t bytes)
{
#if defined(__x86_64__)
    __asm__ volatile("rep movsb" : "+D"(to), "+S"(from), "+c"(bytes) : : "memory");
#else
    volatile unsigned char *d = to;
    const unsigned char *s = from;
    for (size_t i = 0; i < bytes; i++)
        d[i] = s[i];
#endif
}

/* Maps `contents` over the globals: MAP_SHARED with fd to share them with the processes
 * forked later, MAP_PRIVATE | MAP_ANONYMOUS to take them back. */
static int remap(int flags, int fd, const void *contents)
{
    /* No signal handler may write a global between the copy and the map (it would be lost) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    void *in_place = mmap((void *)range.begin, range.end - range.begin, PROT_READ | PROT_WRITE,
                          flags | MAP_FIXED, fd, 0);
    int err = in_place == MAP_FAILED ? errno : 0; /* only for want of kernel memory */
    if (!err)
        copy_without_calls(in_place, contents, range.end - range.begin);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -err;
}

static void *snapshot_take(void)
{
    size_t bytes = range.end - range.begin;
    void *copy = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (copy == MAP_FAILED)
        return NULL;
    copy_without_calls(copy, (void *)range.begin, bytes);
    return copy;
}

/* A fork that is not of workers: its child must get the globals as they were at the fork,
 * privately. The shared pages cannot give it that (the parent goes on writing them), so the
 * parent copies them just before and the child maps its copy of that copy over them. */
/* The parent sets it, its child reads it: thread-local, so never in the shared pages. */
static _Thread_local void *fork_snapshot;

static void snapshot_before_fork(void)
{
    if (shared && !forking_workers)
        fork_snapshot = snapshot_take();
}

static void snapshot_drop_in_parent(void)
{
    if (fork_snapshot)
        munmap(fork_snapshot, range.end - range.begin);
    fork_snapshot = NULL;
}

static void unshare_in_child(void)
{
    void *snapshot = fork_snapshot;
    if (!snapshot)
        return; /* a worker, or no globals shared */
    if (remap(MAP_PRIVATE | MAP_ANONYMOUS, -1, snapshot) == 0)
        shared = false;
    munmap(snapshot, range.end - range.begin);
    fork_snapshot = NULL;
}

void pareng__globals_forking_workers(bool on)
{
    forking_workers = on;
}

int pareng__globals_share(void)
{
    if (shared)
        return 0;
    segment_range r = {0, 0, false};
    dl_iterate_phdr(main_program, &r);
    if (r.begin == r.end)
        return 0; /* no globals */
    if (r.scattered)
        return pareng__fail(ENOTSUP, "cannot share the program's globals "
                            "(PARENG_GLOBALS_SHARED): its writable data lie in segments apart "
                            "(a linker's layout that pareng does not know)");
    int threads = threads_running();
    if (threads == 0)
        return pareng__fail(ENOTSUP, "cannot share the program's globals "
                            "(PARENG_GLOBALS_SHARED): /proc/self/status does not say whether "
                            "the process runs other threads");
    if (threads > 1)
        return pareng__fail(EBUSY, "cannot share the program's globals "
                            "(PARENG_GLOBALS_SHARED): the process already runs %d threads, and "
                            "a write of theirs during the move would be lost; call "
                            "pareng_start before starting any thread (docs/memory.md)",
                            threads);
    static bool handlers_installed;
    if (!handlers_installed &&
        pthread_atfork(snapshot_before_fork, snapshot_drop_in_parent, unshare_in_child) != 0)
        return pareng__fail(ENOMEM, "cannot share the program's globals "
                            "(PARENG_GLOBALS_SHARED): pthread_atfork failed, and a fork of the "
                            "program's own would share them with its child");
    handlers_installed = true;
    range = r;
    int fd = pareng__fd_above_stdio(memfd_create(PARENG__SEGMENT_PREFIX "globals", MFD_CLOEXEC));
    if (fd < 0)
        return pareng__fail(errno, "cannot create shared memory for the program's globals "
                            "(memfd_create): %s", strerror(errno));
    void *contents = snapshot_take();
    int rc = !contents                                  ? -ENOMEM
             : ftruncate(fd, (off_t)(r.end - r.begin)) < 0 ? -errno
                                                        : remap(MAP_SHARED, fd, contents);
    if (contents)
        munmap(contents, r.end - r.begin);
    close(fd);
    if (rc < 0)
        return pareng__fail(-rc, "cannot share the program's globals with the workers: %s",
                            strerror(-rc));
    shared = true;
    return 0;
}

bool pareng__globals_shared(void)
{
    return shared;
}
