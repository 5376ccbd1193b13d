/*
 * test_io.c - IO tasks on io_uring through the public API: files written, synced and read back,
 * timeouts that overlap and complete in deadline order, sockets against a loopback server made
 * of tasks, errors as values, the no-blocking rule (CPU work on the same worker finishes while
 * a task waits), IO that waits for tasks spawned later (a relay on pipes: more waits at once
 * than io_depth end; past the spares the worker says why the run waits), fib with IO latency
 * exact on 1, 2 and 8 workers, a worker killed while IO is in flight, cancellation of a long
 * wait, and engines without IO saying so. After each test no worker process and no segment of
 * this process is left.
 */
#include "pareng.h"
#include "testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull

static pareng_engine *start_io_engine(unsigned workers, unsigned io_depth)
{
    return testing_start_engine(workers, 0, io_depth);
}

static void stop_and_check(pareng_engine *e)
{
    pareng_stop(e);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

static uint64_t total_io_ops(pareng_engine *e)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < pareng_engine_workers(e); i++) {
        pareng_stats s;
        CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &s), 0);
        sum += s.io_ops;
    }
    return sum;
}

/* ---- files ------------------------------------------------------------------------------- */

#define FILE_PARTS 8
#define PART_BYTES 65536

typedef struct file_job {
    char path[64];
    unsigned char written[FILE_PARTS][PART_BYTES];
    unsigned char read_back[FILE_PARTS][PART_BYTES];
} file_job;

/* Part k of the file: its own fd (opened by this task, so valid in this worker), written at its
 * own offset, synced, read back. 0 or the first -errno. */
PARENG_TASK_2(int, file_part, file_job *, job, unsigned, k)
{
    int fd = open(job->path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    off_t offset = (off_t)k * PART_BYTES;
    for (unsigned i = 0; i < PART_BYTES; i++)
        job->written[k][i] = (unsigned char)(i * 7 + k * 13);
    int rc = PARENG_IO_WRITE(fd, job->written[k], PART_BYTES, (uint64_t)offset);
    if (rc == PART_BYTES)
        rc = PARENG_IO_FSYNC(fd);
    if (rc == 0)
        rc = PARENG_IO_READ(fd, job->read_back[k], PART_BYTES, (uint64_t)offset);
    int closed = PARENG_IO_CLOSE(fd);
    if (rc == PART_BYTES)
        rc = closed;
    return rc;
}

PARENG_TASK_3(int, file_parts, file_job *, job, unsigned, begin, unsigned, end)
{
    if (end - begin == 1)
        return PARENG_CALL(file_part, job, begin);
    unsigned mid = begin + (end - begin) / 2;
    PARENG_SPAWN(file_parts, job, mid, end);
    int left = PARENG_CALL(file_parts, job, begin, mid);
    int right = PARENG_SYNC(file_parts);
    return left ? left : right;
}

static void test_files_written_synced_read(void)
{
    pareng_engine *e = start_io_engine(2, PARENG_IO_DEPTH_AUTO);
    file_job *job = pareng_alloc(e, sizeof *job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    snprintf(job->path, sizeof job->path, "/tmp/pareng-io-test-%d", (int)getpid());
    int fd = open(job->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    int result = -1;
    CU_ASSERT_EQUAL(PARENG_RUN(e, file_parts, &result, job, 0, FILE_PARTS), 0);
    CU_ASSERT_EQUAL(result, 0);
    CU_ASSERT_EQUAL(memcmp(job->written, job->read_back, sizeof job->written), 0);
    static unsigned char on_disk[FILE_PARTS][PART_BYTES];
    CU_ASSERT_EQUAL(pread(fd, on_disk, sizeof on_disk, 0), (ssize_t)sizeof on_disk);
    CU_ASSERT_EQUAL(memcmp(on_disk, job->written, sizeof on_disk), 0);
    CU_ASSERT(on_disk[3][5] == (unsigned char)(5 * 7 + 3 * 13));
    close(fd);
    unlink(job->path);
    CU_ASSERT_EQUAL(total_io_ops(e), 4 * FILE_PARTS); /* write, fsync, read, close each */
    pareng_free(e, job);
    stop_and_check(e);
}

/* ---- timeouts ------------------------------------------------------------------------------ */

typedef struct sleep_log {
    _Atomic unsigned next;
    unsigned order[3];
} sleep_log;

PARENG_TASK_3(int, sleep_and_log, sleep_log *, log, unsigned, which, uint64_t, ns)
{
    int rc = PARENG_IO_SLEEP(ns);
    log->order[which] = atomic_fetch_add(&log->next, 1);
    return rc;
}

PARENG_TASK_1(int, three_sleeps, sleep_log *, log)
{
    PARENG_SPAWN(sleep_and_log, log, 0, 300 * MS);
    PARENG_SPAWN(sleep_and_log, log, 1, 100 * MS);
    int c = PARENG_CALL(sleep_and_log, log, 2, 200 * MS);
    int b = PARENG_SYNC(sleep_and_log);
    int a = PARENG_SYNC(sleep_and_log);
    return a | b | c;
}

/* One worker: the three waits overlap (600 ms one after another) and end by deadline. */
static void test_timeouts_overlap_in_deadline_order(void)
{
    pareng_engine *e = start_io_engine(1, PARENG_IO_DEPTH_AUTO);
    sleep_log *log = pareng_alloc(e, sizeof *log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    atomic_init(&log->next, 0);
    int rc = -1;
    uint64_t t0 = testing_now_ns();
    CU_ASSERT_EQUAL(PARENG_RUN(e, three_sleeps, &rc, log), 0);
    uint64_t took = testing_now_ns() - t0;
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(log->order[1], 0); /* 100 ms */
    CU_ASSERT_EQUAL(log->order[2], 1); /* 200 ms */
    CU_ASSERT_EQUAL(log->order[0], 2); /* 300 ms */
    CU_ASSERT(took >= 300 * MS);
    CU_ASSERT(took < 550 * MS);
    pareng_free(e, log);
    stop_and_check(e);
}

PARENG_TASK_1(int, sleep_long, uint64_t, ns)
{
    return PARENG_IO_SLEEP(ns);
}

static pareng_engine *to_cancel;
static void cancel_on_alarm(int sig)
{
    (void)sig;
    pareng_cancel(to_cancel);
}

/* For the run that follows: SIGALRM calls `handler`, which cancels e (to_cancel) when it
 * decides, from `when` on (setitimer's); disarm_cancel with what this returns ends it. */
static struct sigaction arm_cancel(pareng_engine *e, void (*handler)(int), struct itimerval when)
{
    to_cancel = e;
    struct sigaction sa = {.sa_handler = handler}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    setitimer(ITIMER_REAL, &when, NULL);
    return old;
}

static void disarm_cancel(const struct sigaction *old)
{
    setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
    sigaction(SIGALRM, old, NULL);
}

/* A run waiting on a 30 s timeout is cancelled at once, workers and ring gone with it. */
static void test_cancel_while_waiting(void)
{
    pareng_engine *e = start_io_engine(2, PARENG_IO_DEPTH_AUTO);
    struct sigaction old =
        arm_cancel(e, cancel_on_alarm, (struct itimerval){.it_value = {.tv_usec = 200000}});
    int rc = 0;
    uint64_t t0 = testing_now_ns();
    CU_ASSERT_EQUAL(PARENG_RUN(e, sleep_long, &rc, 30000 * MS), -ECANCELED);
    CU_ASSERT(testing_now_ns() - t0 < 2000 * MS);
    disarm_cancel(&old);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    stop_and_check(e);
}

/* ---- the no-blocking rule --------------------------------------------------------------- */

typedef struct cpu_while_waiting {
    uint64_t start_ns, cpu_done_ns[2], wait_done_ns;
    uint64_t cpu_result[2];
    int cpu_worker[2], wait_worker;
} cpu_while_waiting;

PARENG_TASK_2(int, cpu_work, cpu_while_waiting *, log, unsigned, k)
{
    log->cpu_result[k] = workload_fib_serial(30);
    log->cpu_done_ns[k] = testing_now_ns();
    log->cpu_worker[k] = (int)PARENG_WORKER_INDEX();
    return 0;
}

/* The first spawn of a fresh deque is shared at once (hungry thieves were just there); the
 * second is private: only the suspension on IO makes it available. */
PARENG_TASK_1(int, spawn_then_wait, cpu_while_waiting *, log)
{
    log->start_ns = testing_now_ns();
    PARENG_SPAWN(cpu_work, log, 0);
    PARENG_SPAWN(cpu_work, log, 1);
    int rc = PARENG_IO_SLEEP(1000 * MS);
    log->wait_done_ns = testing_now_ns();
    log->wait_worker = (int)PARENG_WORKER_INDEX();
    PARENG_SYNC(cpu_work);
    PARENG_SYNC(cpu_work);
    return rc;
}

/* One worker: its only task waits 1 s on IO; the CPU task it spawned must not wait with it. */
static void test_cpu_work_runs_while_a_task_waits(void)
{
    pareng_engine *e = start_io_engine(1, PARENG_IO_DEPTH_AUTO);
    cpu_while_waiting *log = pareng_alloc(e, sizeof *log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    memset(log, 0, sizeof *log);
    int rc = -1;
    CU_ASSERT_EQUAL(PARENG_RUN(e, spawn_then_wait, &rc, log), 0);
    CU_ASSERT_EQUAL(rc, 0);
    for (unsigned k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(log->cpu_result[k], 832040u);
        CU_ASSERT_EQUAL(log->cpu_worker[k], 0);
        CU_ASSERT(log->cpu_done_ns[k] > log->start_ns);
        CU_ASSERT(log->cpu_done_ns[k] - log->start_ns < 500 * MS);
    }
    CU_ASSERT_EQUAL(log->wait_worker, 0);
    CU_ASSERT(log->wait_done_ns - log->start_ns >= 1000 * MS);
    pareng_free(e, log);
    stop_and_check(e);
}

/* ---- sockets ------------------------------------------------------------------------------- */

#define CLIENTS 16

typedef struct echo_job {
    int listen_fd;
    struct sockaddr_in address;
    _Atomic unsigned served;
} echo_job;

/* One connection of the server: accept on the listening socket (made before pareng_start, so
 * every worker has it), echo one message back, close. */
PARENG_TASK_1(int, echo_once, echo_job *, job)
{
    int fd = PARENG_IO_ACCEPT(job->listen_fd, NULL, NULL, 5000 * MS);
    if (fd < 0)
        return fd;
    char buf[128];
    int n = PARENG_IO_RECV(fd, buf, sizeof buf, 5000 * MS);
    int rc = n > 0 ? PARENG_IO_SEND(fd, buf, (size_t)n, 5000 * MS) : n;
    PARENG_IO_CLOSE(fd);
    if (rc > 0)
        atomic_fetch_add(&job->served, 1);
    return rc < 0 ? rc : 0;
}

/* One client: connect, send "hello <i>", read the echo until complete, compare. 1 if right. */
PARENG_TASK_2(int, client_once, echo_job *, job, unsigned, i)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    char message[32], echo[32];
    int len = snprintf(message, sizeof message, "hello %u", i);
    int rc = PARENG_IO_CONNECT(fd, &job->address, sizeof job->address, 5000 * MS);
    if (rc == 0)
        rc = PARENG_IO_SEND(fd, message, (size_t)len, 5000 * MS);
    int got = 0;
    while (rc >= 0 && got < len) {
        rc = PARENG_IO_RECV(fd, echo + got, (size_t)(len - got), 5000 * MS);
        got += rc > 0 ? rc : 0;
        if (rc == 0)
            break;
    }
    PARENG_IO_CLOSE(fd);
    if (rc < 0)
        return rc;
    return got == len && memcmp(echo, message, (size_t)len) == 0;
}

PARENG_TASK_3(int, echo_pairs, echo_job *, job, unsigned, begin, unsigned, end)
{
    if (end - begin == 1) {
        PARENG_SPAWN(echo_once, job);
        int ok = PARENG_CALL(client_once, job, begin);
        int served = PARENG_SYNC(echo_once);
        return served < 0 ? served : ok;
    }
    unsigned mid = begin + (end - begin) / 2;
    PARENG_SPAWN(echo_pairs, job, mid, end);
    int left = PARENG_CALL(echo_pairs, job, begin, mid);
    int right = PARENG_SYNC(echo_pairs);
    return left < 0 ? left : right < 0 ? right : left + right;
}

static void test_sockets_against_a_loopback_server(void)
{
    int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(listen_fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof address;
    CU_ASSERT_FATAL(bind(listen_fd, (struct sockaddr *)&address, sizeof address) == 0);
    CU_ASSERT_FATAL(listen(listen_fd, CLIENTS) == 0);
    CU_ASSERT_FATAL(getsockname(listen_fd, (struct sockaddr *)&address, &len) == 0);

    pareng_engine *e = start_io_engine(2, PARENG_IO_DEPTH_AUTO);
    echo_job *job = pareng_alloc(e, sizeof *job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    job->listen_fd = listen_fd;
    job->address = address;
    atomic_init(&job->served, 0);
    int ok = -1;
    CU_ASSERT_EQUAL(PARENG_RUN(e, echo_pairs, &ok, job, 0, CLIENTS), 0);
    if (ok != CLIENTS)
        fprintf(stderr, "\necho: %d (%s)\n", ok, ok < 0 ? strerror(-ok) : "right answers");
    CU_ASSERT_EQUAL(ok, CLIENTS);
    CU_ASSERT_EQUAL(atomic_load(&job->served), CLIENTS);
    pareng_free(e, job);
    stop_and_check(e);
    close(listen_fd);
}

/* ---- errors as values ------------------------------------------------------------------ */

typedef struct error_codes {
    int refused_port_fd; /* bound, never listening: connecting is refused */
    struct sockaddr_in refused;
    int silent_fd;       /* one end of a socket pair nobody writes to */
    int bad_fd, refused_rc, timeout_rc, sleep_rc, unknown_op;
    int file_fd, negative_offset; /* a file whose own position must not move */
} error_codes;

PARENG_TASK_1(int, collect_errors, error_codes *, out)
{
    char buf[16];
    out->bad_fd = PARENG_IO_RECV(-1, buf, sizeof buf, 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    out->refused_rc = PARENG_IO_CONNECT(fd, &out->refused, sizeof out->refused, 2000 * MS);
    close(fd);
    out->timeout_rc = PARENG_IO_RECV(out->silent_fd, buf, sizeof buf, 50 * MS);
    out->sleep_rc = PARENG_IO_SLEEP(0);
    out->unknown_op = PARENG__IO(.op = (enum pareng_io_opcode)99);
    /* -1 is io_uring's "the file's position": as pwrite, refused */
    out->negative_offset = PARENG_IO_WRITE(out->file_fd, "XY", 2, -1);
    return 0;
}

/* The same at io_depth 8 and 1, whose ring had room for one entry: the operation went to the
 * kernel before its linked timeout, which was lost, and the recv waited for ever. */
static void check_errors_are_values(unsigned io_depth)
{
    int pair[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    int refused_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof address;
    CU_ASSERT_FATAL(bind(refused_fd, (struct sockaddr *)&address, sizeof address) == 0);
    CU_ASSERT_FATAL(getsockname(refused_fd, (struct sockaddr *)&address, &len) == 0);

    FILE *file = tmpfile(); /* before the start: the workers have it */
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    CU_ASSERT_FATAL(write(fileno(file), "abcdef", 6) == 6 && lseek(fileno(file), 2, SEEK_SET) == 2);
    pareng_engine *e = start_io_engine(1, io_depth);
    error_codes *codes = pareng_alloc(e, sizeof *codes);
    CU_ASSERT_PTR_NOT_NULL_FATAL(codes);
    *codes = (error_codes){.refused = address, .silent_fd = pair[0], .file_fd = fileno(file)};
    int rc = -1;
    /* a hung run fails the test: cancelled after 20 s */
    struct sigaction old =
        arm_cancel(e, cancel_on_alarm, (struct itimerval){.it_value = {.tv_sec = 20}});
    CU_ASSERT_EQUAL(PARENG_RUN(e, collect_errors, &rc, codes), 0);
    disarm_cancel(&old);
    CU_ASSERT_EQUAL(codes->bad_fd, -EBADF);
    CU_ASSERT_EQUAL(codes->refused_rc, -ECONNREFUSED);
    CU_ASSERT_EQUAL(codes->timeout_rc, -ETIMEDOUT);
    CU_ASSERT_EQUAL(codes->sleep_rc, 0);
    CU_ASSERT_EQUAL(codes->unknown_op, -EINVAL);
    CU_ASSERT_EQUAL(codes->negative_offset, -EINVAL);
    char content[8] = {0};
    CU_ASSERT_EQUAL(pread(fileno(file), content, 6, 0), 6);
    CU_ASSERT_STRING_EQUAL(content, "abcdef"); /* it wrote "XY" at the position, 2 */
    CU_ASSERT_EQUAL(lseek(fileno(file), 0, SEEK_CUR), 2);
    fclose(file);
    pareng_free(e, codes);
    stop_and_check(e);
    close(pair[0]);
    close(pair[1]);
    close(refused_fd);
}

static void test_errors_are_values(void)
{
    check_errors_are_values(8);
    check_errors_are_values(1);
}

/* ---- fib with IO latency ---------------------------------------------------------------- */

static uint64_t leaves(unsigned n)
{
    return n <= 2 ? 1 : leaves(n - 1) + leaves(n - 2);
}

static void check_fib_io(unsigned workers, unsigned io_depth)
{
    pareng_engine *e = start_io_engine(workers, io_depth);
    uint64_t expected_ops = 0;
    for (unsigned n = 0; n <= 14; n++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(workload_fib_io(e, n, 100000, &got), 0);
        CU_ASSERT_EQUAL(got, workload_fib_serial(n));
        expected_ops += leaves(n);
    }
    CU_ASSERT_EQUAL(total_io_ops(e), expected_ops);
    uint64_t peak = 0;
    for (unsigned i = 0; i < workers; i++) {
        pareng_stats s;
        pareng_engine_stats(e, i, &s);
        peak = s.io_peak > peak ? s.io_peak : peak;
    }
    CU_ASSERT(peak > 1); /* leaves overlapped their waits */
    stop_and_check(e);
}

static void test_fib_io_1_worker(void) { check_fib_io(1, PARENG_IO_DEPTH_AUTO); }
static void test_fib_io_2_workers(void) { check_fib_io(2, PARENG_IO_DEPTH_AUTO); }
static void test_fib_io_8_workers(void) { check_fib_io(8, PARENG_IO_DEPTH_AUTO); }
/* Two fibers per worker: most waits find every fiber busy and wait in the ring. */
static void test_fib_io_shallow_depth(void) { check_fib_io(2, 2); }

/* ---- tasks whose IO waits for other tasks ---------------------------------------------- */

/* A relay on pipes: stage 0 writes a token to pipe 0, stage k reads it from pipe k - 1 and
 * writes it, plus one, to pipe k, and the root reads the last pipe. The root spawns the last
 * stage first, so each reader is spawned before its writer, and the pipes are the root's
 * (one worker: a descriptor is its worker's, docs/io.md). When the root waits, the worker's
 * next fiber takes the oldest stage, whose read waits for a stage not yet run: with io_depth 2
 * both fibers wait on reads that only later stages can end. */
#define RELAY_MAX_STAGES 8

PARENG_TASK_3(int, relay_stage, int, in, int, out, unsigned, k)
{
    uint32_t token = 0;
    if (k > 0 && PARENG_IO_READ(in, &token, sizeof token, 0) != (int)sizeof token)
        return -EIO;
    token++;
    return PARENG_IO_WRITE(out, &token, sizeof token, 0) == (int)sizeof token ? 0 : -EIO;
}

PARENG_TASK_1(int, relay, unsigned, stages)
{
    int fds[RELAY_MAX_STAGES][2];
    for (unsigned k = 0; k < stages; k++)
        if (pipe2(fds[k], O_CLOEXEC) < 0)
            return -errno;
    for (unsigned k = stages; k-- > 0;)
        PARENG_SPAWN(relay_stage, k ? fds[k - 1][0] : -1, fds[k][1], k);
    uint32_t token = 0;
    int got = PARENG_IO_READ(fds[stages - 1][0], &token, sizeof token, 0);
    int failed = 0;
    for (unsigned k = 0; k < stages; k++)
        failed |= PARENG_SYNC(relay_stage);
    for (unsigned k = 0; k < stages; k++) {
        close(fds[k][0]);
        close(fds[k][1]);
    }
    return got == (int)sizeof token && !failed ? (int)token : -EIO;
}

/* A hung run fails the test instead of the suite's timeout: cancelled after 20 s. */
static int run_relay(pareng_engine *e, unsigned stages, int *token)
{
    struct sigaction old =
        arm_cancel(e, cancel_on_alarm, (struct itimerval){.it_value = {.tv_sec = 20}});
    int rc = PARENG_RUN(e, relay, token, stages);
    disarm_cancel(&old);
    return rc;
}

/* Three stages and the root wait at once on one worker of io_depth 2: the worker makes fibers
 * beyond io_depth for the stages that are runnable, and the token comes through. */
static void test_io_waiting_for_later_tasks(void)
{
    pareng_engine *e = start_io_engine(1, 2);
    int token = 0;
    CU_ASSERT_EQUAL(run_relay(e, 3, &token), 0);
    CU_ASSERT_EQUAL(token, 3);
    /* the root's and two stages' reads, and the first stage's write */
    pareng_stats s;
    CU_ASSERT_EQUAL(pareng_engine_stats(e, 0, &s), 0);
    CU_ASSERT_EQUAL(s.io_peak, 4);
    /* and again, on the fibers made the first time */
    token = 0;
    CU_ASSERT_EQUAL(run_relay(e, 3, &token), 0);
    CU_ASSERT_EQUAL(token, 3);
    stop_and_check(e);
}

/* Past the bound (2 x io_depth fibers: four stages and the root need five) the worker says
 * on stderr, after 2 s without a completion, why the run may never end and what to do; the
 * test cancels the run once it has read that, or after 20 s. */
static int stuck_stderr = -1;
static char stuck_said[1024];
static size_t stuck_len;
static unsigned stuck_ticks;
static bool stuck_cancelled;

static void cancel_once_said(int sig)
{
    (void)sig;
    if (stuck_cancelled)
        return;
    ssize_t n = read(stuck_stderr, stuck_said + stuck_len, sizeof stuck_said - 1 - stuck_len);
    stuck_len += n > 0 ? (size_t)n : 0;
    if (strstr(stuck_said, "raise io_depth") || ++stuck_ticks == 400) {
        stuck_cancelled = true;
        pareng_cancel(to_cancel);
    }
}

static void test_io_stuck_past_the_bound_says_so(void)
{
    int out[2], saved = dup(2);
    CU_ASSERT_FATAL(saved >= 0 && pipe2(out, O_CLOEXEC | O_NONBLOCK) == 0);
    dup2(out[1], 2); /* the workers' stderr */
    pareng_engine *e = start_io_engine(1, 2);
    dup2(saved, 2);
    close(saved);
    close(out[1]);
    stuck_stderr = out[0];
    struct itimerval every_50ms = {.it_interval = {.tv_usec = 50000},
                                   .it_value = {.tv_usec = 50000}};
    struct sigaction old = arm_cancel(e, cancel_once_said, every_50ms);
    int token = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, relay, &token, 4), -ECANCELED);
    disarm_cancel(&old);
    CU_ASSERT_PTR_NOT_NULL(strstr(stuck_said, "pareng: worker 0 (pid "));
    CU_ASSERT_PTR_NOT_NULL(strstr(stuck_said, "all 4 fibers have waited on IO for 2 s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(stuck_said, "raise io_depth (now 2"));
    close(out[0]);
    stop_and_check(e);
}

/* ---- failures and engines without IO --------------------------------------------------- */

static void test_worker_killed_while_io_in_flight(void)
{
    pareng_engine *e = start_io_engine(2, PARENG_IO_DEPTH_AUTO);
    int victim = pareng_engine_worker_pid(e, 1);
    pid_t killer = fork();
    if (killer == 0) {
        usleep(200000);
        kill(victim, SIGKILL);
        _exit(0);
    }
    uint64_t got;
    uint64_t t0 = testing_now_ns();
    int rc = workload_fib_io(e, 20, 5000 * MS, &got); /* every leaf waits 5 s */
    uint64_t took = testing_now_ns() - t0;
    waitpid(killer, NULL, 0);
    CU_ASSERT_EQUAL(rc, -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "worker 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "SIGKILL"));
    CU_ASSERT(took < 1500 * MS);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    stop_and_check(e); /* the engine's memory goes with pareng_stop */
}

/* The only worker's root spawns a recursion without end and waits on IO: the spawn can run
 * only on another fiber (the root's waits on the sleep), whose 256 KiB stack it overflows.
 * The run fails at once, the message naming the fiber's stack, where it said only SIGSEGV. */
PARENG_TASK_1(int, overflow_a_fiber, unsigned, unused)
{
    (void)unused;
    PARENG_SPAWN(overflow_the_stack, UINT_MAX);
    int rc = PARENG_IO_SLEEP(600000 * MS);
    return rc + (int)PARENG_SYNC(overflow_the_stack);
}

static void test_fiber_stack_overflow_is_named(void)
{
    pareng_engine *e = start_io_engine(1, PARENG_IO_DEPTH_AUTO);
    int rc = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, overflow_a_fiber, &rc, 0), -ECHILD);
    const char *why = pareng_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "killed by signal 11 (SIGSEGV): task stack overflow"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "256 KiB"));
    stop_and_check(e);
}

/* A frame larger than a fiber's stack and its guard page, written at its low end only: the
 * write stepped over the guard into the next fiber's stack, where it overwrote another task's
 * locals (a wrong answer, exit 0). Compiled with -fstack-clash-protection (meson.build, and
 * pkg-config's flags for programs), the frame's pages are probed from the top, and the first
 * in the guard names the overflow. */
static __attribute__((noinline)) int write_far_below(size_t bytes)
{
    char buf[bytes];
    buf[0] = 1;
    __asm__ volatile("" : : "r"(buf) : "memory");
    return buf[0];
}

PARENG_TASK_1(int, large_frame, unsigned, kib)
{
    return write_far_below((size_t)kib << 10);
}

PARENG_TASK_1(int, large_frame_on_a_fiber, unsigned, kib)
{
    PARENG_SPAWN(large_frame, kib);
    int rc = PARENG_IO_SLEEP(2000 * MS);
    return rc + PARENG_SYNC(large_frame);
}

static void test_fiber_large_frame_is_named(void)
{
    pareng_engine *e = start_io_engine(1, PARENG_IO_DEPTH_AUTO);
    int rc = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, large_frame_on_a_fiber, &rc, 300), -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "task stack overflow"));
    stop_and_check(e);
}

/* Idle after IO work (fibers made, a futex wait armed in each ring): no CPU used. */
static void test_idle_io_engine_sleeps(void)
{
    pareng_engine *e = start_io_engine(2, PARENG_IO_DEPTH_AUTO);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib_io(e, 14, 100000, &got), 0);
    usleep(200000);
    int pids[2] = {pareng_engine_worker_pid(e, 0), pareng_engine_worker_pid(e, 1)};
    CU_ASSERT(testing_busiest_share_of_a_second(pids, 2) <= 0.02);
    /* and it wakes for new work */
    CU_ASSERT_EQUAL(workload_fib_io(e, 10, 100000, &got), 0);
    CU_ASSERT_EQUAL(got, 55u);
    stop_and_check(e);
}

/* CPUs a worker may run on (its affinity), once it has run a task: a worker pins itself after
 * the fork, before its first task. */
static int worker_cpus(pareng_engine *e, unsigned worker, cpu_set_t *set)
{
    uint64_t ignored;
    CU_ASSERT_EQUAL(workload_fib(e, 1, 0, &ignored), 0);
    CPU_ZERO(set);
    if (sched_getaffinity(pareng_engine_worker_pid(e, worker), sizeof *set, set) < 0)
        return -1;
    return CPU_COUNT(set);
}

/* Placed automatically, IO workers float over the allowed CPUs; on an explicit list they are
 * pinned there, as CPU workers always are. */
static void test_io_workers_pinned_only_on_a_list(void)
{
    cpu_set_t allowed, set;
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    pareng_engine *e = start_io_engine(2, 8);
    for (unsigned i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(worker_cpus(e, i, &set), CPU_COUNT(&allowed));
        CU_ASSERT(CPU_EQUAL(&set, &allowed));
    }
    stop_and_check(e);

    int first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && first < 0; cpu++)
        if (CPU_ISSET(cpu, &allowed))
            first = cpu;
    char list[16];
    snprintf(list, sizeof list, "%d", first);
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.cpus = list;
    cfg.io_depth = 8;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, &cfg), 0);
    CU_ASSERT_EQUAL(worker_cpus(e, 0, &set), 1);
    CU_ASSERT(CPU_ISSET(first, &set));
    stop_and_check(e);

    e = testing_start_engine(1, 0, 0); /* a CPU engine pins even when placed automatically */
    CU_ASSERT_EQUAL(worker_cpus(e, 0, &set), 1);
    stop_and_check(e);
}

static void test_engine_without_io_says_so(void)
{
    pareng_engine *e = NULL;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, &cfg), 0);
    CU_ASSERT_EQUAL(pareng_engine_io_depth(e), 0);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib_io(e, 5, 1000, &got), -ENOTSUP);
    CU_ASSERT_PTR_NOT_NULL(strstr(workload_error(), "io_depth"));
    int rc = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, sleep_long, &rc, 1000), 0);
    CU_ASSERT_EQUAL(rc, -ENOTSUP);
    stop_and_check(e);

    cfg.io_depth = 4097;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "io_depth"));
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

/* What a sandbox without io_uring does: io_uring_setup fails with ENOSYS (a seccomp filter,
 * installed in a child process so that the test program keeps its io_uring). */
static int without_io_uring(void)
{
    if (testing_deny_syscall(__NR_io_uring_setup, ENOSYS) < 0)
        return 10;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    cfg.io_depth = PARENG_IO_DEPTH_AUTO;
    pareng_engine *e = NULL;
    if (pareng_start(&e, &cfg) != -ENOSYS || e)
        return 11;
    if (!strstr(pareng_last_error(), "io_uring is not available"))
        return 12;
    if (testing_segments_of(getpid()) || testing_children_of(getpid(), NULL, 0))
        return 13;
    cfg.io_depth = 0; /* CPU work goes on */
    uint64_t got = 0;
    if (pareng_start(&e, &cfg) != 0 || workload_fib(e, 25, 0, &got) != 0 || got != 75025)
        return 14;
    pareng_stop(e);
    return 0;
}

static void test_no_io_uring_is_told_and_cpu_work_goes_on(void)
{
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(without_io_uring());
    int status = -1;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "\nwithout io_uring: status %d\n", status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    CU_TestInfo io[] = {
        {"files: parallel writes, fsync, reads back", test_files_written_synced_read},
        {"timeouts overlap and end in deadline order", test_timeouts_overlap_in_deadline_order},
        {"a run waiting 30 s is cancelled at once", test_cancel_while_waiting},
        {"CPU work runs while a task of the same worker waits",
         test_cpu_work_runs_while_a_task_waits},
        {"sockets: 16 clients against a loopback echo server",
         test_sockets_against_a_loopback_server},
        {"errors reach the task as values", test_errors_are_values},
        {"IO that waits for tasks spawned later (more than io_depth)",
         test_io_waiting_for_later_tasks},
        {"... past 2 x io_depth: the worker says why the run waits",
         test_io_stuck_past_the_bound_says_so},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo fib[] = {
        {"fib with IO latency exact, 1 worker", test_fib_io_1_worker},
        {"fib with IO latency exact, 2 workers", test_fib_io_2_workers},
        {"fib with IO latency exact, 8 workers", test_fib_io_8_workers},
        {"fib with IO latency exact, io_depth 2", test_fib_io_shallow_depth},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo failures[] = {
        {"a worker killed while IO is in flight", test_worker_killed_while_io_in_flight},
        {"a fiber's stack overflow is named", test_fiber_stack_overflow_is_named},
        {"a fiber's frame beyond its guard is named", test_fiber_large_frame_is_named},
        {"an idle IO engine sleeps in its rings", test_idle_io_engine_sleeps},
        {"IO workers are pinned only on an explicit list", test_io_workers_pinned_only_on_a_list},
        {"an engine without IO says so", test_engine_without_io_says_so},
        {"no io_uring (seccomp): told at start, CPU work goes on",
         test_no_io_uring_is_told_and_cpu_work_goes_on},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("io", io),
        TESTING_SUITE("fib with IO latency", fib),
        TESTING_SUITE("IO engines: failures, idling, none", failures),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
