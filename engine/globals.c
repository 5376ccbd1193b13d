/*
 * globals.c - the program's global variables, as threads see them: the caller's writes
 * copied into the workers' copies at each run, or shared outright.
 *
 * A worker is a fork of the caller: it sees the program's globals as they were at
 * pareng_start, a global the caller sets afterwards is stale in every task, and a task that
 * writes one writes its worker's copy, which nobody reads. A program ported from threads
 * (Cilk, OpenMP, TBB) that does either gets a wrong number. By default (PARENG_GLOBALS_PRIVATE)
 * each worker keeps a copy of its own, into which the bytes the caller wrote since are copied
 * before the tasks of each run (the second half of this file). An engine that asks for it
 * (PARENG_GLOBALS_SHARED) has, before its first fork, the main program's writable data (.data
 * and .bss: its globals and static variables, not those of the shared libraries it uses) moved
 * into shared memory at the same address: the caller and every worker of such engines then
 * read and write the same globals, as threads would, data races included. It is not the
 * default: globals that hold per-process state (a pointer to a worker's malloc, the state of an
 * allocator linked statically, an interpreter's) would then be wrong in every other process,
 * silently (docs/memory.md, "Globals"). PARENG_GLOBALS_FORKED leaves them as the fork made
 * them.
 *
 * The move copies the segment into a memfd and maps that over it (MAP_FIXED): a write by
 * another thread between the copy and the map would be lost, so in a process that already runs
 * threads pareng_start fails (the documented rule is pareng_start before any thread): the
 * globals the program asked to share would otherwise stay private, and its tasks read stale
 * values without an error. The read-only part after relocation (RELRO) is left alone: GNU ld
 * puts it at the start of the one writable segment, lld in a writable segment of its own before
 * the data's (so the writable part may span segments, which must then touch). A program that
 * links libpareng statically has libpareng's statics among its globals, shared or followed
 * with the rest: what is each process's own is thread-local or in a page of its own (engine.c's
 * identity, malloc.c's process state), and the rest (this file's, signal.c's cancel slots) is
 * the caller's, which the workers do not use.
 */
#include "internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct segment_range {
    uintptr_t begin, end; /* page-aligned */
    bool scattered;       /* writable parts with a gap between them */
    bool dynamic;         /* linked dynamically (PT_INTERP): the C library is not in them */
    uintptr_t load;       /* where the program is loaded (its dlpi_addr) */
    uintptr_t file_end;   /* where the writable data read from the file end (.bss follows) */
    const ElfW(Dyn) *dynamic_section;
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
    r->load = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO)
            relro_end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        else if (ph->p_type == PT_INTERP)
            r->dynamic = true;
        else if (ph->p_type == PT_DYNAMIC)
            r->dynamic_section = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
    }
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
        uintptr_t file_end = info->dlpi_addr + ph->p_vaddr + ph->p_filesz;
        if (file_end > r->file_end)
            r->file_end = file_end;
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

/* The globals are read and written whole, as memory: AddressSanitizer's red zones between
 * them included, and what other threads of the caller write to them meanwhile (comparing them
 * is reading those, which ThreadSanitizer would report as races). */
#define AS_MEMORY __attribute__((no_sanitize_address, no_sanitize_thread))

/* Until the globals are back, no call may go through the program's PLT: its GOT is among
 * them when libpareng is linked into the program. So no memcpy, which a compiler may also
 * make of a plain loop. And the whole segment is copied, AddressSanitizer's red zones
 * between globals included, which it must not check. */
AS_MEMORY static void copy_without_calls(void *to, const void *from, size_t bytes)
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
    segment_range r = {0};
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

/* ---- PARENG_GLOBALS_PRIVATE: each worker's copy follows the caller's writes ----
 *
 * Each worker keeps a copy of its own (a table a task makes on first use is its worker's),
 * but what the caller writes after the start reaches the tasks of its next run, as it would
 * reach threads: before each run (a root, a serve, a post) the caller compares its globals
 * with what the workers were told last and publishes the bytes it changed, and a worker
 * copies those into its own before the next task it takes. Only bytes the caller changed
 * move: a worker's own writes elsewhere, in the same line too, stay its own. The variables
 * that the linker copied into the program from shared libraries (COPY relocations: environ,
 * stdout, optind, std::cout, a library's own exported variables) and the program's PLT slots
 * are those libraries' state, each process's own: they never move. A program linked
 * statically, or carrying a runtime linked in (clang's sanitizers, an allocator), has that
 * runtime's state among its globals: it must choose PARENG_GLOBALS_FORKED (each worker's copy
 * as at its fork).
 *
 * The comparison reads every page that may have changed. For globals of more than 64 pages,
 * /proc/self/pagemap says which those are: a page that is there (present or swapped) and
 * mapped by the caller alone. A fork shares every page of the caller's with its child, and a
 * write then copies the page, which is the caller's alone from then until the next fork: so a
 * page still shared was not written since the last fork, and, where no fork came since the
 * last publication, was not written since (pthread_atfork counts the forks, before and after
 * each; a raw clone system call or glibc's _Fork is not seen). A page not there was never
 * written, or was dropped: it is read where told held something. The first publication after
 * any fork (the workers' own, at the start) reads every page that is there. KSM, which shares
 * pages of equal contents, is another way to share a page: where it runs, every page is read.
 */

#define LINE 64                 /* the bytes a stamp and a mask (a bit a byte) cover */
#define PAGES_A_GROUP 512       /* pages a group stamp covers: 2 MiB, for the workers' scan */
#define PAGEMAP_FROM_PAGES 64   /* smaller globals are compared whole: fewer reads than the
                                 * pagemap's */
#define PAGEMAP_PRESENT ((uint64_t)1 << 63)
#define PAGEMAP_SWAPPED ((uint64_t)1 << 62)
#define PAGEMAP_EXCLUSIVE ((uint64_t)1 << 56)
#define PAGEMAP_CHUNK 512       /* entries read at once */

#if defined(__x86_64__)
#define COPY_RELOCATION R_X86_64_COPY
#elif defined(__aarch64__)
#define COPY_RELOCATION R_AARCH64_COPY
#endif

/* In a shared mapping made before the fork: at the same address in the caller and its
 * workers. Only the caller writes it. */
struct pareng__globals_changes {
    /* A sequence lock (Lameter's seqlock, Linux's seqcount): the caller makes it odd before
     * it changes anything the workers read below and even after, and the even value stamps
     * what it changed. A worker copies, reads it again, and copies again if it moved: the
     * masks only grow and the stamps only rise, so a copy torn by a concurrent post is made
     * whole by the next. The caller writes it, and workers add 0 to it (catch_up). */
    _Atomic uint64_t seq;
    uintptr_t begin; /* the globals' first page in every process */
    size_t pages, page;
    uint64_t *group_stamp; /* [groups]: the seq that last changed a line of the group */
    uint64_t *page_stamp;  /* [pages]: ... of the page */
    uint64_t *line_stamp;  /* [lines]: ... of the line */
    uint64_t *line_before; /* [lines]: the line's change before that, or 0 */
    uint64_t *line_latest; /* [lines]: the bytes (a bit each) of the line's latest change */
    uint64_t *line_bytes;  /* [lines]: ... of all its changes since the start */
    /* The globals as the workers were told last: the fork's copy, then the caller's values
     * at their latest change. Pages of zeros are holes. */
    unsigned char *told;
};

typedef struct byte_range {
    uintptr_t begin, end;
} byte_range;

/* The caller's side. */
struct pareng__globals_follow {
    pareng__globals_changes *changes;
    size_t mapped;        /* the shared mapping's bytes */
    bool *told_written;   /* [pages]: the page of told holds something (not a hole) */
    bool use_pagemap;     /* more than PAGEMAP_FROM_PAGES pages */
    bool ksm_running;     /* KSM may share any page (see the banner) */
    unsigned long forks_at_publication; /* forks_counted then */
    pthread_mutex_t lock; /* posts may come from several threads */
    size_t n_kept;
    byte_range *kept; /* the libraries' variables and the PLT slots: never published */
};

typedef uint64_t __attribute__((may_alias)) word;

/* b NULL: zeros */
AS_MEMORY static bool same(const void *a, const void *b, size_t bytes)
{
    const word *x = a, *y = b;
    uint64_t differ = 0;
    if (y)
        for (size_t i = 0; i < bytes / sizeof(word); i++)
            differ |= x[i] ^ y[i];
    else
        for (size_t i = 0; i < bytes / sizeof(word); i++)
            differ |= x[i];
    return differ == 0;
}

AS_MEMORY static uint64_t changed_bytes(const unsigned char *now, const unsigned char *told)
{
    uint64_t mask = 0;
    for (unsigned b = 0; b < LINE; b++)
        mask |= (uint64_t)(now[b] != told[b]) << b;
    return mask;
}

static uint64_t published_bytes(const pareng__globals_follow *f, uintptr_t line)
{
    uint64_t mask = ~(uint64_t)0;
    for (size_t i = 0; i < f->n_kept; i++) {
        uintptr_t begin = f->kept[i].begin > line ? f->kept[i].begin : line;
        uintptr_t end = f->kept[i].end < line + LINE ? f->kept[i].end : line + LINE;
        for (uintptr_t b = begin; b < end; b++)
            mask &= ~((uint64_t)1 << (b - line));
    }
    return mask;
}

/* An address in the main program's dynamic section: glibc relocates those entries in place
 * on most architectures, not on all (DL_RO_DYN_SECTION). */
static uintptr_t dynamic_address(const segment_range *r, ElfW(Addr) value)
{
    return value < r->load ? r->load + value : value;
}

/* The libraries' variables among the program's globals, and its PLT slots (lazy binding
 * writes them): what each process keeps as its own. */
static int find_kept(pareng__globals_follow *f, const segment_range *r)
{
    const ElfW(Rela) *relocations = NULL;
    const ElfW(Sym) *symbols = NULL;
    size_t relocation_bytes = 0, plt_relocation_bytes = 0;
    uintptr_t plt_slots = 0;
    for (const ElfW(Dyn) *d = r->dynamic_section; d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_RELA)
            relocations = (const ElfW(Rela) *)dynamic_address(r, d->d_un.d_ptr);
        else if (d->d_tag == DT_RELASZ)
            relocation_bytes = d->d_un.d_val;
        else if (d->d_tag == DT_SYMTAB)
            symbols = (const ElfW(Sym) *)dynamic_address(r, d->d_un.d_ptr);
        else if (d->d_tag == DT_PLTGOT)
            plt_slots = dynamic_address(r, d->d_un.d_ptr);
        else if (d->d_tag == DT_PLTRELSZ)
            plt_relocation_bytes = d->d_un.d_val;
    size_t n = relocations && symbols ? relocation_bytes / sizeof *relocations : 0;
    f->kept = calloc(n + 1, sizeof *f->kept);
    if (!f->kept)
        return -ENOMEM;
#ifdef COPY_RELOCATION
    for (size_t i = 0; i < n; i++)
        if (ELF64_R_TYPE(relocations[i].r_info) == COPY_RELOCATION) {
            uintptr_t at = r->load + relocations[i].r_offset;
            size_t bytes = symbols[ELF64_R_SYM(relocations[i].r_info)].st_size;
            f->kept[f->n_kept++] = (byte_range){at, at + bytes};
        }
#endif
    if (plt_slots) /* three reserved, then one a PLT relocation */
        f->kept[f->n_kept++] = (byte_range){
            plt_slots, plt_slots + (3 + plt_relocation_bytes / sizeof(ElfW(Rela))) *
                                       sizeof(ElfW(Addr))};
    return 0;
}

void pareng__globals_follow_not_mapped(pareng__globals_follow *f)
{
    if (f)
        f->changes = NULL; /* MADV_DONTFORK: this process's own memory may lie there now */
}

void pareng__globals_follow_end(pareng__globals_follow *f)
{
    if (!f)
        return;
    if (f->changes)
        munmap(f->changes, f->mapped);
    pthread_mutex_destroy(&f->lock);
    free(f->told_written);
    free(f->kept);
    free(f);
}

static int refuse_to_follow(const char *why)
{
    return pareng__fail(ENOTSUP, "the workers cannot follow the program's globals (pareng_config"
                        ".globals PARENG_GLOBALS_PRIVATE): %s; choose PARENG_GLOBALS_FORKED "
                        "(each worker keeps them as they were at its fork: what the caller "
                        "writes after pareng_start, tasks do not see; docs/memory.md, "
                        "\"Globals\")", why);
}

/* The process's forks (pthread_atfork), which share its pages with their children. */
static _Atomic unsigned long forks_counted;
static bool forks_uncounted; /* pthread_atfork failed: sharing is never trusted */
static pthread_once_t forks_counting = PTHREAD_ONCE_INIT;

static void count_a_fork(void)
{
    atomic_fetch_add_explicit(&forks_counted, 1, memory_order_relaxed);
}

/* Before and after: a publication between the prepare handler and the fork (which glibc's
 * own locks may delay) sees the count move again. */
static void count_forks(void)
{
    if (pthread_atfork(count_a_fork, count_a_fork, NULL) != 0)
        forks_uncounted = true;
}

/* Which of pages [first, first + n) may differ from told (see the banner); all where the
 * pagemap cannot be read. */
static void pages_to_compare(const pareng__globals_follow *f, int pagemap, size_t first,
                             size_t n, bool trust_sharing, bool *compare)
{
    const pareng__globals_changes *c = f->changes;
    uint64_t entries[PAGEMAP_CHUNK];
    off_t at = (off_t)((c->begin / c->page + first) * sizeof *entries);
    bool read_whole = pagemap >= 0 && pread(pagemap, entries, n * sizeof *entries, at) ==
                                          (ssize_t)(n * sizeof *entries);
    for (size_t i = 0; i < n; i++) {
        uint64_t e = entries[i];
        compare[i] = !read_whole || (e & PAGEMAP_SWAPPED) ||
                     ((e & PAGEMAP_PRESENT) && (!trust_sharing || (e & PAGEMAP_EXCLUSIVE))) ||
                     (!(e & PAGEMAP_PRESENT) && f->told_written[first + i]);
    }
}

/* Whether KSM runs on this machine: it may merge any page the program marked mergeable, or
 * every page of a process that asked (PR_SET_MEMORY_MERGE), so that a page the caller wrote
 * is shared again. Read at the start: where it is started later, a page may be missed. */
static bool ksm_running(void)
{
    char state = '0';
    int fd = open("/sys/kernel/mm/ksm/run", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &state, 1) != 1)
            state = '0';
        close(fd);
    }
    return state != '0';
}

/* A runtime linked into the program, whose state is then among its globals, each process's
 * own: clang's sanitizers (their runtime is linked in by default), an allocator linked
 * statically (a malloc of the program's, but libpareng's own where libpareng is linked in).
 * NULL where none is found. */
static const char *runtime_in_program(const segment_range *r)
{
    static const char *const defines[] = {"__asan_init", "__tsan_init", "__msan_init",
                                          "__hwasan_init", "malloc"};
    Dl_info program, found;
    if (!r->dynamic_section || !dladdr(r->dynamic_section, &program))
        return NULL;
    bool libpareng_linked_in = dladdr((void *)runtime_in_program, &found) &&
                               found.dli_fbase == program.dli_fbase;
    for (size_t i = 0; i < sizeof defines / sizeof *defines; i++) {
        void *at = dlsym(RTLD_DEFAULT, defines[i]);
        if (at && dladdr(at, &found) && found.dli_fbase == program.dli_fbase &&
            (strcmp(defines[i], "malloc") != 0 || !libpareng_linked_in))
            return defines[i];
    }
    return NULL;
}

int pareng__globals_follow_start(pareng__globals_follow **out)
{
    *out = NULL;
    segment_range r = {0};
    dl_iterate_phdr(main_program, &r);
    if (r.begin == r.end)
        return 0; /* no globals */
    if (!r.dynamic)
        return refuse_to_follow("the program is linked statically, and the C library's state, "
                                "each process's own, is among them");
    if (r.scattered)
        return refuse_to_follow("its writable data lie in segments apart (a linker's layout "
                                "that pareng does not know)");
    const char *runtime = runtime_in_program(&r);
    if (runtime) {
        char why[160];
        snprintf(why, sizeof why, "a runtime is linked into the program (it defines %s: a "
                 "sanitizer's, an allocator's), whose state, each process's own, is among them",
                 runtime);
        return refuse_to_follow(why);
    }
#ifndef COPY_RELOCATION
    return refuse_to_follow("this architecture's COPY relocations are not known to pareng");
#endif
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (r.end - r.begin) / page;
    size_t lines = pages * (page / LINE), groups = (pages + PAGES_A_GROUP - 1) / PAGES_A_GROUP;
    size_t stamps = (sizeof(pareng__globals_changes) +
                     (groups + pages + 4 * lines) * sizeof(uint64_t) + page - 1) & ~(page - 1);
    pareng__globals_follow *f = calloc(1, sizeof *f);
    if (!f)
        return pareng__fail(ENOMEM, "out of memory");
    pthread_mutex_init(&f->lock, NULL); /* default attributes: it cannot fail */
    pthread_once(&forks_counting, count_forks);
    f->forks_at_publication = atomic_load(&forks_counted); /* the workers' forks come next */
    f->use_pagemap = pages > PAGEMAP_FROM_PAGES;
    f->ksm_running = ksm_running();
    f->mapped = stamps + pages * page;
    /* Pages are taken only where something is written: holes read as zeros */
    void *shared_part = mmap(NULL, f->mapped, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    f->changes = shared_part == MAP_FAILED ? NULL : shared_part;
    f->told_written = calloc(pages, sizeof *f->told_written);
    int rc = !f->changes || !f->told_written ? -ENOMEM : find_kept(f, &r);
    if (rc < 0) {
        pareng__globals_follow_end(f);
        return pareng__fail(-rc, "cannot follow the program's globals (%zu bytes): %s; "
                            "PARENG_GLOBALS_FORKED does without", pages * page, strerror(-rc));
    }
    pareng__globals_changes *c = f->changes;
    c->begin = r.begin;
    c->pages = pages;
    c->page = page;
    c->group_stamp = (uint64_t *)(c + 1);
    c->page_stamp = c->group_stamp + groups;
    c->line_stamp = c->page_stamp + pages;
    c->line_before = c->line_stamp + lines;
    c->line_latest = c->line_before + lines;
    c->line_bytes = c->line_latest + lines;
    c->told = (unsigned char *)c + stamps;
    /* What the workers will have; a page of zeros stays a hole. The pages read from the file
     * (.data) hold its contents even where never touched (not present); past them, the .bss
     * the caller never touched is zeros. */
    int pagemap = f->use_pagemap ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
    bool compare[PAGEMAP_CHUNK];
    for (size_t first = 0; first < pages; first += PAGEMAP_CHUNK) {
        size_t n = pages - first < PAGEMAP_CHUNK ? pages - first : PAGEMAP_CHUNK;
        pages_to_compare(f, pagemap, first, n, false, compare);
        for (size_t p = first; p < first + n; p++) {
            const unsigned char *now = (const unsigned char *)r.begin + p * page;
            if ((compare[p - first] || (uintptr_t)now < r.file_end) && !same(now, NULL, page)) {
                copy_without_calls(c->told + p * page, now, page);
                f->told_written[p] = true;
            }
        }
    }
    if (pagemap >= 0)
        close(pagemap);
    *out = f;
    return 0;
}

void pareng__globals_follow_forked(pareng__globals_follow *f)
{
    /* This engine's workers have it now; any later fork of this process (another engine's
     * workers, a user's child) has no business with it */
    if (f)
        madvise(f->changes, f->mapped, MADV_DONTFORK);
}

pareng__globals_changes *pareng__globals_follow_changes(const pareng__globals_follow *f)
{
    return f ? f->changes : NULL;
}

/* Publishes the lines of page p that changed since told; writing says whether the seq is
 * odd already. */
static bool publish_page(pareng__globals_follow *f, size_t p, uint64_t seq, bool writing)
{
    pareng__globals_changes *c = f->changes;
    size_t lines_per_page = c->page / LINE;
    unsigned char *now = (unsigned char *)c->begin + p * c->page;
    unsigned char *told = c->told + p * c->page;
    if (same(now, f->told_written[p] ? told : NULL, c->page))
        return writing;
    f->told_written[p] = true;
    for (size_t l = 0; l < lines_per_page; l++) {
        /* One read of the line: a byte another thread writes meanwhile is in both the mask
         * and told, or in neither (and then changed next time) */
        _Alignas(LINE) unsigned char line[LINE];
        copy_without_calls(line, now + l * LINE, LINE);
        uint64_t changed = changed_bytes(line, told + l * LINE);
        if (!changed)
            continue;
        uint64_t published = changed & published_bytes(f, (uintptr_t)(now + l * LINE));
        if (published && !writing) {
            /* Acquire, on a read-modify-write: no write below comes before the odd number,
             * and a worker's release read-modify-write of it (catch_up) that came first
             * synchronises with this one, so that the worker read none of them (Boehm, "Can
             * seqlocks get along with programming language memory models?", MSPC 2012; no
             * fences, which ThreadSanitizer does not take) */
            atomic_fetch_add_explicit(&c->seq, 1, memory_order_acquire);
            writing = true;
        }
        /* Bytes no worker reads (the libraries') are updated too: they are compared next */
        copy_without_calls(told + l * LINE, line, LINE);
        if (!published)
            continue;
        size_t k = p * lines_per_page + l;
        c->line_before[k] = c->line_stamp[k];
        c->line_latest[k] = published;
        c->line_bytes[k] |= published;
        c->line_stamp[k] = c->page_stamp[p] = c->group_stamp[p / PAGES_A_GROUP] = seq + 2;
    }
    return writing;
}

void pareng__globals_publish(pareng__globals_follow *f)
{
    if (!f)
        return;
    pareng__globals_changes *c = f->changes;
    /* open and pread are cancellation points: a posting thread cancelled there would leave
     * the lock held and the number odd, and every worker waiting */
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    pthread_mutex_lock(&f->lock);
    uint64_t seq = atomic_load_explicit(&c->seq, memory_order_relaxed); /* the caller's own */
    unsigned long forks = atomic_load(&forks_counted);
    /* Shared globals (an engine's of PARENG_GLOBALS_SHARED) are shmem, whose pages swapped
     * out look not there, and are never the caller's alone: every page is read */
    int pagemap = f->use_pagemap && !shared ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
                                            : -1;
    bool trust_sharing = pagemap >= 0 && forks == f->forks_at_publication &&
                         !f->ksm_running && !forks_uncounted;
    bool writing = false;
    bool compare[PAGEMAP_CHUNK];
    for (;;) {
        for (size_t first = 0; first < c->pages; first += PAGEMAP_CHUNK) {
            size_t n = c->pages - first < PAGEMAP_CHUNK ? c->pages - first : PAGEMAP_CHUNK;
            pages_to_compare(f, pagemap, first, n, trust_sharing, compare);
            for (size_t p = first; p < first + n; p++)
                if (compare[p - first])
                    writing = publish_page(f, p, seq, writing);
        }
        /* A fork by another thread meanwhile may have shared a page read as not written */
        unsigned long forks_after = atomic_load(&forks_counted);
        if (!trust_sharing || forks_after == forks)
            break;
        forks = forks_after;
        trust_sharing = false;
    }
    f->forks_at_publication = forks;
    if (pagemap >= 0)
        close(pagemap);
    /* Release: the told bytes, masks and stamps before the even seq that says they are
     * whole */
    if (writing)
        atomic_fetch_add_explicit(&c->seq, 1, memory_order_release);
    pthread_mutex_unlock(&f->lock);
    pthread_setcancelstate(cancel_state, NULL);
}

AS_MEMORY void pareng__globals_catch_up(pareng__globals_changes *c, uint64_t *seen)
{
    if (!c)
        return;
    /* Acquire: pairs with the caller's release of an even seq, after which what it published
     * is whole */
    uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if (seq == *seen)
        return;
    size_t lines_per_page = c->page / LINE;
    for (;;) {
        while (seq & 1) {
            pareng__cpu_relax();
            seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        }
        for (size_t p = 0; p < c->pages; p++) {
            if (c->group_stamp[p / PAGES_A_GROUP] <= *seen) {
                p |= PAGES_A_GROUP - 1; /* the group's last */
                continue;
            }
            if (c->page_stamp[p] <= *seen)
                continue;
            for (size_t l = 0; l < lines_per_page; l++) {
                size_t k = p * lines_per_page + l;
                if (c->line_stamp[k] <= *seen)
                    continue;
                /* a worker one change behind copies that change's bytes; one further
                 * behind, every byte the caller changed in the line */
                uint64_t bytes = c->line_before[k] <= *seen ? c->line_latest[k]
                                                            : c->line_bytes[k];
                unsigned char *to = (unsigned char *)c->begin + p * c->page + l * LINE;
                const unsigned char *from = c->told + p * c->page + l * LINE;
                for (unsigned b = 0; b < LINE; b++)
                    if (bytes >> b & 1)
                        to[b] = from[b];
            }
        }
        /* Read again by a release read-modify-write (adding 0): the copies' reads stay
         * before it, and if the caller's odd number came first, it is the one read here
         * (Boehm's second way; the caller's side above) */
        uint64_t again = atomic_fetch_add_explicit(&c->seq, 0,
                                                   memory_order_release);
        if (again == seq)
            break;
        seq = again;
    }
    *seen = seq;
}
