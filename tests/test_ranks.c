/*
 * test_ranks.c - one task tree on several ranks without MPI: the test forks the ranks itself,
 * joins every pair with a socket, and gives engine/remote.c that transport, so that the
 * distributed run (remote.c, glb.c, the inbox and the remote thief in worker.c) is checked in
 * every build, the sanitizers' included, where mpirun may not run. Results are exact on 2 to
 * 4 ranks of 1 or 2 workers; frames do cross ranks, and every one that left came back; a
 * root that may not cross runs on every rank, and a frame holding an address of its rank's
 * memory stays there (only the bytes its spawn wrote count); a rank that dies or sends
 * nonsense ends the others, and nothing is left behind.
 */
#include "internal.h"
#include "testing.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAX_RANKS 4

PARENG_TASK_1(uint64_t, rfib, unsigned, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(rfib, n - 1);
    uint64_t b = PARENG_CALL(rfib, n - 2);
    return PARENG_SYNC(rfib) + b;
}
PARENG_TASK_CROSSES_RANKS(rfib)

static uint64_t serial_fib(unsigned n)
{
    return n < 2 ? n : serial_fib(n - 1) + serial_fib(n - 2);
}

/* Unmarked, with a pointer: stays on its rank; a run of it is every rank's own. */
PARENG_TASK_2(uint64_t, add_rank, const unsigned *, rank, unsigned, n)
{
    PARENG_SPAWN(rfib, n);
    return *rank * 1000000u + PARENG_SYNC(rfib);
}

/* Marked by mistake: the struct holds an address of pareng_alloc's memory. Such frames must
 * stay on their rank (remote.c says so once), and the sum must still be right. */
typedef struct view {
    const uint64_t *values;
    uint32_t begin, end;
} view;
PARENG_TASK_1(uint64_t, sum_view, view, v)
{
    if (v.end - v.begin <= 64) {
        uint64_t sum = 0;
        for (uint32_t i = v.begin; i < v.end; i++)
            sum += v.values[i];
        return sum;
    }
    uint32_t middle = v.begin + (v.end - v.begin) / 2;
    PARENG_SPAWN(sum_view, (view){v.values, v.begin, middle});
    uint64_t right = PARENG_CALL(sum_view, (view){v.values, middle, v.end});
    return PARENG_SYNC(sum_view) + right;
}
PARENG_TASK_CROSSES_RANKS(sum_view)

/* Plain values with padding between them: a long double's six bytes, an unsigned's four */
PARENG_TASK_2(long double, scaled_by, long double, x, unsigned, times)
{
    return x * (long double)times;
}
PARENG_TASK_CROSSES_RANKS(scaled_by)

/* ---- a transport of sockets between forked ranks ---------------------------------------- */

typedef struct mesh {
    int fd[MAX_RANKS]; /* fd[r]: to and from rank r; -1 for this rank */
    unsigned rank, ranks, next;
} mesh;

static int mesh_send(void *ctx, unsigned to, const pareng__glb_msg *m)
{
    mesh *s = ctx;
    return send(s->fd[to], m, sizeof *m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof *m
               ? 0
               : pareng__fail(errno, "send to rank %u: %s", to, strerror(errno));
}

static int mesh_poll(void *ctx, pareng__glb_msg *m)
{
    mesh *s = ctx;
    for (unsigned k = 0; k < s->ranks; k++) {
        unsigned r = (s->next + k) % s->ranks;
        if (s->fd[r] < 0)
            continue;
        ssize_t n = recv(s->fd[r], m, sizeof *m, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return pareng__fail(EPIPE, "rank %u is gone", r);
        if (n == (ssize_t)sizeof *m) {
            s->next = r + 1;
            return 1;
        }
        if (n > 0 || errno != EAGAIN)
            return pareng__fail(EPROTO, "a broken message from rank %u", r);
    }
    return 0;
}

static _Noreturn void mesh_abort(void *ctx, const char *message)
{
    mesh *s = ctx;
    fprintf(stderr, "rank %u of %u: %s\n", s->rank, s->ranks, message);
    _exit(3);
}

/* What each rank leaves for the parent to check (shared, mapped before the forks). */
typedef struct rank_report {
    pareng_rank_stats stats;
    uint64_t own_run; /* the result of its run of add_rank */
    _Atomic int done;
} rank_report;

/* MPI_Finalize's barrier: a rank that leaves early would close its sockets under a rank that
 * is still reading the end of the last run, which must take that for a death. */
static int wait_for_all(rank_report *reports, unsigned ranks)
{
    for (int tries = 0; tries < 10000; tries++) {
        unsigned done = 0;
        for (unsigned r = 0; r < ranks; r++)
            done += atomic_load(&reports[r].done);
        if (done == ranks)
            return 0;
        usleep(1000);
    }
    return 7;
}

typedef enum { RANKS_COMPUTE, RANKS_ONE_DIES, RANKS_ONE_LIES } ranks_plot;

static const workload_uts_tree small_binomial = {
    "small-T3", WORKLOAD_UTS_BINOMIAL, 0, 200, 0, 0.124875, 8, 20, 0, 0, 0}; /* 83,529 nodes */
static const workload_uts_tree small_geometric = {
    "small-T1", WORKLOAD_UTS_GEOMETRIC, WORKLOAD_UTS_FIXED, 4, 7, 0, 0, 19, 0, 0, 0}; /* 63,914 */

static int rank_main(mesh *s, unsigned workers, ranks_plot plot, rank_report *reports)
{
    rank_report *report = &reports[s->rank];
    static const pareng__transport transport = {mesh_send, mesh_poll, mesh_abort, NULL};
    pareng__transport t = transport;
    t.ctx = s;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0 || pareng__dist_attach(e, &t, s->rank, s->ranks) < 0)
        return 2;
    if (plot == RANKS_ONE_LIES && s->rank == 0) {
        /* a task of no program, in the first run (rank 1 cannot end that run before rank
         * 0's STOP, which comes after it): the receiver must refuse it loudly */
        pareng__glb_msg lie = {.type = PARENG__MSG_WORK, .from = 0, .run = 1,
                               .module = 1, .offset = 2, .name_hash = 3};
        mesh_send(s, 1, &lie);
    }
    uint64_t result = 0;
    /* fib(34), some 30 ms on one worker, is long enough for idle ranks to take part
     * whatever the machine's load */
    static const unsigned fib_ns[] = {20, 34};
    for (size_t k = 0; k < 2; k++) {
        unsigned n = fib_ns[k];
        if (PARENG_RUN(e, rfib, &result, n) < 0 || result != serial_fib(n))
            return 4;
        if (plot == RANKS_ONE_DIES && s->rank == 1)
            raise(SIGKILL); /* between runs: the others are in the next one, or enter it */
    }
    workload_uts_count count, expected;
    const workload_uts_tree *trees[] = {&small_binomial, &small_geometric};
    for (size_t k = 0; k < 2; k++)
        if (workload_uts(e, trees[k], &count) < 0 || workload_uts_serial(trees[k], &expected) ||
            memcmp(&count, &expected, sizeof count) != 0)
            return 5;
    enum { VALUES = 1 << 18 };
    uint64_t *values = pareng_alloc(e, VALUES * sizeof *values), sum = 0;
    if (!values)
        return 8;
    for (uint32_t i = 0; i < VALUES; i++)
        values[i] = i;
    if (PARENG_RUN(e, sum_view, &sum, (view){values, 0, VALUES}) < 0 ||
        sum != (uint64_t)VALUES * (VALUES - 1) / 2)
        return 9;
    uint64_t own = 0;
    if (PARENG_RUN(e, add_rank, &own, &s->rank, 20) < 0)
        return 6;
    report->own_run = own;
    pareng__dist_stats(e, &report->stats);
    pareng_stop(e);
    atomic_store(&report->done, 1);
    return wait_for_all(reports, s->ranks);
}

/* Forks `ranks` ranks of `workers` workers; their exit statuses in status[]. */
static void run_ranks(unsigned ranks, unsigned workers, ranks_plot plot, int *status,
                      rank_report *reports)
{
    int pair[MAX_RANKS][MAX_RANKS][2];
    for (unsigned a = 0; a < ranks; a++)
        for (unsigned b = a + 1; b < ranks; b++)
            CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair[a][b]) ==
                            0);
    pid_t pids[MAX_RANKS];
    for (unsigned r = 0; r < ranks; r++) {
        pids[r] = fork();
        CU_ASSERT_FATAL(pids[r] >= 0);
        if (pids[r] == 0) {
            mesh s = {.rank = r, .ranks = ranks};
            for (unsigned k = 0; k < ranks; k++)
                s.fd[k] = k == r ? -1 : k < r ? pair[k][r][1] : pair[r][k][0];
            for (unsigned a = 0; a < ranks; a++) /* only its own ends stay open */
                for (unsigned b = a + 1; b < ranks; b++) {
                    if (a != r && b != r) {
                        close(pair[a][b][0]);
                        close(pair[a][b][1]);
                    } else {
                        close(pair[a][b][a == r ? 1 : 0]);
                    }
                }
            _exit(rank_main(&s, workers, plot, reports));
        }
    }
    for (unsigned a = 0; a < ranks; a++)
        for (unsigned b = a + 1; b < ranks; b++) {
            close(pair[a][b][0]);
            close(pair[a][b][1]);
        }
    for (unsigned r = 0; r < ranks; r++)
        CU_ASSERT(waitpid(pids[r], &status[r], 0) == pids[r]);
}

static rank_report *shared_reports(void)
{
    rank_report *r = mmap(NULL, MAX_RANKS * sizeof *r, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(r != MAP_FAILED);
    memset(r, 0, MAX_RANKS * sizeof *r);
    return r;
}

/* The test is its ranks' subreaper: a worker its rank left behind would be its child now.
 * Workers die with their rank's coordinator, within moments. */
static int processes_left(void)
{
    for (int tries = 0; tries < 200; tries++) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (testing_children_of(getpid(), NULL, 0) == 0)
            return 0;
        usleep(10000);
    }
    return testing_children_of(getpid(), NULL, 0);
}

static void test_exact_on_every_rank(void)
{
    uint64_t crossed = 0;
    for (unsigned ranks = 2; ranks <= MAX_RANKS; ranks++)
        for (unsigned workers = 1; workers <= 2; workers++) {
            rank_report *reports = shared_reports();
            int status[MAX_RANKS];
            run_ranks(ranks, workers, RANKS_COMPUTE, status, reports);
            uint64_t sent = 0, received = 0;
            for (unsigned r = 0; r < ranks; r++) {
                CU_ASSERT(WIFEXITED(status[r]) && WEXITSTATUS(status[r]) == 0);
                CU_ASSERT(reports[r].done);
                CU_ASSERT_EQUAL(reports[r].own_run, r * 1000000u + serial_fib(20));
                sent += reports[r].stats.tasks_sent;
                received += reports[r].stats.tasks_received;
            }
            /* every frame that left a rank arrived at one */
            CU_ASSERT_EQUAL(sent, received);
            crossed += sent;
            munmap(reports, MAX_RANKS * sizeof *reports);
        }
    /* and frames did cross (a short run may well keep all its work on rank 0, where its
     * own idle workers win the race for it; all of them together do not) */
    CU_ASSERT(crossed > 0);
    CU_ASSERT_EQUAL(processes_left(), 0);
}

/* A rank that dies ends the others: each says which rank is gone and exits non-zero. */
static void test_a_dead_rank_ends_the_others(void)
{
    rank_report *reports = shared_reports();
    int status[MAX_RANKS];
    run_ranks(3, 1, RANKS_ONE_DIES, status, reports);
    CU_ASSERT(WIFSIGNALED(status[1]) && WTERMSIG(status[1]) == SIGKILL);
    CU_ASSERT(WIFEXITED(status[0]) && WEXITSTATUS(status[0]) == 3);
    CU_ASSERT(WIFEXITED(status[2]) && WEXITSTATUS(status[2]) == 3);
    CU_ASSERT(!reports[0].done && !reports[2].done);
    munmap(reports, MAX_RANKS * sizeof *reports);
    CU_ASSERT_EQUAL(processes_left(), 0);
}

/* A task that this program does not have is refused, and the job ends. */
static void test_an_unknown_task_is_refused(void)
{
    rank_report *reports = shared_reports();
    int status[MAX_RANKS];
    run_ranks(2, 1, RANKS_ONE_LIES, status, reports);
    CU_ASSERT(WIFEXITED(status[0]) && WEXITSTATUS(status[0]) == 3);
    CU_ASSERT(WIFEXITED(status[1]) && WEXITSTATUS(status[1]) == 3);
    munmap(reports, MAX_RANKS * sizeof *reports);
    CU_ASSERT_EQUAL(processes_left(), 0);
}

/* Too large for a frame: its spawn writes the address of a spill block there. */
typedef struct eight {
    uint64_t v[8];
} eight;
PARENG_TASK_1(uint64_t, sum_eight, eight, e)
{
    return e.v[0] + e.v[7];
}

/* A frame holds what its spawn wrote and, past that, whatever an earlier frame left in the
 * slot: only the written words of a task that may hold an address (an aggregate) make it look
 * like one that hides one. */
static void test_leftover_bytes_are_no_address(void)
{
    /* an arena and its heap after it, as in the segment: only the arena's address and the
     * heap's range are read (bytes, not a struct holding the arena: it ends in a flexible
     * array, which clang refuses before another member) */
    enum { HEAP_BYTES = 4096 };
    static _Alignas(pareng__arena) unsigned char engine[sizeof(pareng__arena) + HEAP_BYTES];
    pareng__arena *a = (pareng__arena *)(void *)engine;
    unsigned char *heap = engine + sizeof(pareng__arena);
    a->heap.base = heap;
    a->heap.limit = HEAP_BYTES;
    uintptr_t inside = (uintptr_t)heap + 64, outside = (uintptr_t)heap + HEAP_BYTES;
    pareng_frame f;
    memset(&f, 0, sizeof f);
    memcpy(f.pareng__data, &inside, sizeof inside);
    memcpy(f.pareng__data + 8, &inside, sizeof inside);
    /* sum_view's 16 bytes of arguments begin with a pointer: they hold the address */
    CU_ASSERT(pareng__frame_holds_arena_address(a, &f, &sum_view__info));
    /* rfib writes 4 bytes: the same slot's leftover address is not its own */
    CU_ASSERT_EQUAL(rfib__info.args_bytes, sizeof(unsigned));
    CU_ASSERT_EQUAL(sum_eight__info.args_bytes, sizeof(void *));
    CU_ASSERT(!pareng__frame_holds_arena_address(a, &f, &rfib__info));
    /* a written word past the first counts; a word past the written ones does not */
    uint64_t plain = 12345;
    memcpy(f.pareng__data, &plain, sizeof plain);
    CU_ASSERT(pareng__frame_holds_arena_address(a, &f, &sum_view__info));
    memcpy(f.pareng__data + 8, &plain, sizeof plain);
    memcpy(f.pareng__data + 16, &inside, sizeof inside);
    CU_ASSERT(!pareng__frame_holds_arena_address(a, &f, &sum_view__info));
    /* the arena's header counts, the first byte past its heap does not */
    uintptr_t first = (uintptr_t)a;
    memcpy(f.pareng__data, &first, sizeof first);
    memcpy(f.pareng__data + 8, &outside, sizeof outside);
    CU_ASSERT(pareng__frame_holds_arena_address(a, &f, &sum_view__info));
    memcpy(f.pareng__data, &outside, sizeof outside);
    CU_ASSERT(!pareng__frame_holds_arena_address(a, &f, &sum_view__info));
    /* plain values hold no address, whatever their padding holds (a spawn's stack left an
     * arena stack's address there: a task of values was kept on its rank, with a warning) */
    CU_ASSERT(scaled_by__info.args_bytes >= 32);
    memcpy(f.pareng__data + 24, &inside, sizeof inside);
    CU_ASSERT(!pareng__frame_holds_arena_address(a, &f, &scaled_by__info));
}

int main(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    CU_TestInfo ranks[] = {
        {"fib and UTS exact on 2-4 ranks of 1-2 workers", test_exact_on_every_rank},
        {"a rank killed ends the others", test_a_dead_rank_ends_the_others},
        {"a task of no program is refused", test_an_unknown_task_is_refused},
        {"a frame's leftover bytes are no address", test_leftover_bytes_are_no_address},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("ranks", ranks),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
