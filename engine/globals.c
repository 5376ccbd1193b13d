/*
 * globals.c - the program's global variables, shared with the workers as threads share them.
 *
 * A worker is a fork of the caller: without this, it sees the program's globals as they were
 * at pareng_start, a global the caller sets afterwards is silently stale in every task, and a
 * task that writes one writes its worker's copy, which nobody reads. A program ported from
 * threads (Cilk, OpenMP, TBB) gets a wrong number and exit 0. So before the first fork, the
 * main program's writable data (.data and .bss: its globals and static variables, not those
 * of the shared libraries it uses) moves into shared memory at the same address: the caller
 * and every worker of every engine then read and write the same globals, as threads would,
 * data races included (docs/memory.md).
 *
 * The move copies the segment into a memfd and maps that over it (MAP_FIXED): a write by
 * another thread between the copy and the map would be lost, so a process that already runs
 * threads keeps its globals private (the documented rule is pareng_start before any thread).
 * The segment's read-only part after relocation (RELRO) is left alone. libpareng's own
 * per-process state is thread-local (never in .data or .bss), so a program that links
 * libpareng statically shares only its own globals.
 */
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static bool shared; /* the caller's globals are shared already (written by the caller only) */

typedef struct segment_range {
    uintptr_t begin, end; /* page-aligned */
} segment_range;

/* The writable part of the main program's data segment, after its RELRO part. */
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
        if (relro_end > begin && relro_end <= end)
            begin = relro_end;
        if (begin < end) {
            r->begin = begin;
            r->end = end;
        }
        break; /* one writable segment: the linkers' layout */
    }
    return 1; /* the first object is the main program */
}

static bool single_threaded(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return false;
    char line[128];
    int threads = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &threads) == 1)
            break;
    fclose(f);
    return threads == 1;
}

int pareng__globals_share(void)
{
    if (shared)
        return 0;
    segment_range r = {0, 0};
    dl_iterate_phdr(main_program, &r);
    if (r.begin == r.end || !single_threaded())
        return 0; /* nothing to share, or not safely: the globals stay private (docs/memory.md) */
    size_t bytes = r.end - r.begin;
    int fd = memfd_create(PARENG__SEGMENT_PREFIX "globals", MFD_CLOEXEC);
    if (fd < 0)
        return pareng__fail(errno, "cannot create shared memory for the program's globals "
                            "(memfd_create): %s", strerror(errno));
    void *copy = MAP_FAILED;
    if (ftruncate(fd, (off_t)bytes) == 0)
        copy = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (copy == MAP_FAILED) {
        int err = errno;
        close(fd);
        return pareng__fail(err, "cannot map %zu bytes of shared memory for the program's "
                            "globals: %s", bytes, strerror(err));
    }
    /* No signal handler may write a global between the copy and the map (it would be lost) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    memcpy(copy, (void *)r.begin, bytes);
    void *in_place = mmap((void *)r.begin, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                          fd, 0);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(copy, bytes);
    close(fd);
    if (in_place == MAP_FAILED) /* only for want of kernel memory */
        return pareng__fail(err, "cannot share the program's globals with the workers: %s",
                            strerror(err));
    shared = true;
    return 0;
}

bool pareng__globals_shared(void)
{
    return shared;
}
