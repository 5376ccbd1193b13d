/*
 * test_hardening.c - what a hostile or careless local user does to an engine, and what the
 * engine must do instead of blocking, breaking or leaking: names planted in /dev/shm (FIFOs,
 * squatters, a hundred thousand of them), signals the caller ignores, a coordinator killed or
 * replaced by exec, a stopped worker, address-space limits, absurd sizes, bad frees, topology
 * input that is not a file or far too large, an io_uring that seccomp denies, and a careless
 * program's own mistakes: two threads' runs on one engine, a task that closes every
 * descriptor, an engine used by a process forked from its coordinator, a fork from a task.
 *
 * Checks that could hang run in a child process under an alarm, so that a regression fails
 * the test instead of stalling the suite. What the test plants in /dev/shm goes, where the
 * test may make one, into a private tmpfs mounted there in a mount namespace of its own, so
 * that nothing is left on the machine however the test ends (a failed assertion, a timeout's
 * SIGKILL): two such ends left 40,000 squatters in the machine's /dev/shm once.
 */
#include "internal.h"
#include "testing.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pareng_engine *start(unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    return testing_start(&cfg);
}

/* An engine in a child process (no CUnit assertion there), or NULL. */
static pareng_engine *child_start(unsigned workers, unsigned io_depth)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.io_depth = io_depth;
    pareng_engine *e = NULL;
    return pareng_start(&e, &cfg) == 0 ? e : NULL;
}

/* A child of the test that dies with it: a test killed by a timeout must not leave a
 * coordinator running fib(80) with its workers until its alarm (up to 30 s of two CPUs). */
static pid_t fork_child_of_the_test(void)
{
    pid_t pid = fork();
    if (pid == 0)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    return pid;
}

/* Runs check() in a child under an alarm of `seconds`: its exit status (0 = passed), or 100 +
 * the signal that ended it (SIGALRM: it hung). */
static int in_child(int (*check)(void), unsigned seconds)
{
    pid_t child = fork_child_of_the_test();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        alarm(seconds);
        _exit(check());
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static bool fib_ok(pareng_engine *e, unsigned n)
{
    uint64_t got = 0;
    return workload_fib(e, n, 0, &got) == 0 && got == workload_fib_serial(n);
}

/* ---- names in /dev/shm ------------------------------------------------------------------ */

static char planted[8][96];
static unsigned n_planted;

static const char *plant_path(const char *name)
{
    snprintf(planted[n_planted], sizeof planted[0], "/dev/shm/%s", name);
    return planted[n_planted++];
}

static void remove_planted(void)
{
    while (n_planted)
        unlink(planted[--n_planted]);
}

/* A regular segment as pareng 0.1 left it: its header names the owner's pid and start time. */
static void plant_segment(const char *path, int owner_pid, uid_t uid)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    pareng__arena head;
    memset(&head, 0, sizeof head);
    atomic_init(&head.magic, PARENG__ARENA_MAGIC);
    head.owner_pid = owner_pid;
    head.owner_start_time = pareng__process_start_time(owner_pid);
    CU_ASSERT(write(fd, &head, sizeof head) == (ssize_t)sizeof head);
    CU_ASSERT(fchown(fd, uid, (gid_t)-1) == 0 || uid == getuid());
    close(fd);
}

/* A pid that is certainly not running: a child that has been reaped. */
static int dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static int clean_and_start_with_a_fifo(void)
{
    int removed = pareng_clean();
    pareng_engine *e = child_start(2, 0);
    bool ok = removed >= 0 && e && fib_ok(e, 20);
    pareng_stop(e);
    return ok ? 0 : 1;
}

/* mkfifo -m666 /dev/shm/pareng-1-0 made every start and pareng clean block forever. */
static void test_fifo_in_dev_shm_blocks_nothing(void)
{
    CU_ASSERT_FATAL(mkfifo(plant_path("pareng-1-0"), 0666) == 0);
    char name[64];
    snprintf(name, sizeof name, "pareng-%d-0", dead_pid());
    CU_ASSERT_FATAL(mkfifo(plant_path(name), 0600) == 0);
    CU_ASSERT_EQUAL(in_child(clean_and_start_with_a_fifo, 10), 0);
    CU_ASSERT_EQUAL(access(planted[0], F_OK), 0); /* not ours to remove */
    remove_planted();
}

/* Names at this process's next sequence numbers denied its next engines; 100,000 names made
 * every start pay for them. Engines now make no name at all: the squatters stay untouched.
 * The starts run in a child, and the crowd is removed whatever the child did. */
enum { CROWD = 20000 };

static int three_starts_among_the_crowd(void)
{
    for (int round = 0; round < 3; round++) {
        pareng_engine *e = child_start(2, 0);
        bool ok = e && fib_ok(e, 22);
        pareng_stop(e);
        if (!ok)
            return 1;
    }
    return 0;
}

static void test_squatters_and_crowds_deny_nothing(void)
{
    char path[96];
    unsigned made = 0;
    for (; made < CROWD; made++) {
        snprintf(path, sizeof path, "/dev/shm/pareng-%d-%u", (int)getpid(), made);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        if (fd < 0)
            break;
        close(fd);
    }
    CU_ASSERT_EQUAL(made, CROWD);
    CU_ASSERT_EQUAL(in_child(three_starts_among_the_crowd, 60), 0);
    unsigned left = 0;
    for (unsigned k = 0; k < made; k++) {
        snprintf(path, sizeof path, "/dev/shm/pareng-%d-%u", (int)getpid(), k);
        left += unlink(path) == 0;
    }
    CU_ASSERT_EQUAL(left, made); /* a start reads nothing of /dev/shm, so removes nothing */
}

/* pareng clean removes what 0.1 left: regular files of this user whose owner is gone; never
 * another user's file, a link, a live owner's segment. */
static void test_clean_removes_only_stale_segments_of_this_user(void)
{
    int gone = dead_pid();
    char stale[64], foreign[64], live[64], link_name[64];
    snprintf(stale, sizeof stale, "pareng-%d-0", gone);
    snprintf(foreign, sizeof foreign, "pareng-%d-1", gone);
    snprintf(live, sizeof live, "pareng-%d-0", (int)getppid());
    snprintf(link_name, sizeof link_name, "pareng-%d-2", gone);
    const char *stale_path = plant_path(stale), *foreign_path = plant_path(foreign);
    const char *live_path = plant_path(live), *link_path = plant_path(link_name);
    plant_segment(stale_path, gone, getuid());
    plant_segment(foreign_path, gone, 65534);
    plant_segment(live_path, (int)getppid(), getuid());
    CU_ASSERT_FATAL(symlink(stale_path, link_path) == 0);
    CU_ASSERT(pareng_clean() >= 0); /* another process's clean may have been first */
    CU_ASSERT(access(stale_path, F_OK) != 0);
    if (getuid() == 0) /* only root can give a file to another user */
        CU_ASSERT_EQUAL(access(foreign_path, F_OK), 0);
    CU_ASSERT_EQUAL(access(live_path, F_OK), 0);
    struct stat st;
    CU_ASSERT_EQUAL(lstat(link_path, &st), 0);
    remove_planted();
}

/* `pareng clean` in another PID namespace, where the engine's owner is not visible, removed
 * the segment of a live engine. Its memory now has no name to remove: the engine runs on and
 * a tool still attaches. */
static void test_clean_in_another_pid_namespace_spares_live_engines(void)
{
    pareng_engine *e = start(2);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        if (unshare(CLONE_NEWPID) < 0)
            _exit(77); /* not allowed here (no CAP_SYS_ADMIN): nothing to show */
        pid_t inside = fork(); /* the first process of the new namespace */
        if (inside == 0)
            _exit(pareng_clean() < 0);
        int status;
        waitpid(inside, &status, 0);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
    }
    int status;
    waitpid(child, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        fprintf(stderr, "(no PID namespace allowed here) ");
    else
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int fd = open(pareng_engine_segment(e), O_RDONLY | O_CLOEXEC);
    CU_ASSERT(fd >= 0);
    if (fd >= 0)
        close(fd);
    CU_ASSERT(fib_ok(e, 22));
    pareng_stop(e);
}

/* ---- signals and the coordinator's end --------------------------------------------------- */

/* Under nohup (SIGHUP ignored) a hang-up killed the workers and failed the run. */
static int ignored_sighup_stays_ignored(void)
{
    signal(SIGHUP, SIG_IGN);
    pareng_engine *e = child_start(2, 0);
    if (!e)
        return 2;
    for (unsigned i = 0; i < 2; i++)
        kill(pareng_engine_worker_pid(e, i), SIGHUP);
    usleep(50000);
    bool ok = fib_ok(e, 25);
    pareng_stop(e);
    return ok ? 0 : 1;
}

static void test_ignored_signals_stay_ignored_in_workers(void)
{
    CU_ASSERT_EQUAL(in_child(ignored_sighup_stays_ignored, 20), 0);
}

/* The pids of a child's workers, read from a pipe the child writes them to. */
static int report_fd;

static int report_workers_then(void (*end)(void))
{
    pareng_engine *e = child_start(2, 0);
    if (!e)
        return 2;
    int pids[2] = {pareng_engine_worker_pid(e, 0), pareng_engine_worker_pid(e, 1)};
    if (write(report_fd, pids, sizeof pids) != (ssize_t)sizeof pids)
        return 3;
    end();
    return 4;
}

static void exec_sleep(void)
{
    execl("/bin/sleep", "sleep", "3", (char *)NULL);
}

static void run_forever(void)
{
    pareng_engine *e = child_start(2, 0);
    uint64_t got;
    workload_fib(e, 80, 0, &got);
}

static int workers_then_exec(void) { return report_workers_then(exec_sleep); }
static int workers_then_run(void) { return report_workers_then(run_forever); }

/* Alive and not a zombie. */
static bool running(int pid)
{
    char state = testing_process_state(pid);
    return state && state != 'Z' && state != 'X';
}

static void print_proc_file(int pid, const char *name)
{
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    FILE *f = fopen(path, "re");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    fprintf(stderr, "  %s: %s\n", name, f ? text : "(unreadable)");
}

static void describe_process(const char *what, int pid)
{
    char buf[1024];
    const char *stat = testing_proc_stat(pid, buf, sizeof buf);
    fprintf(stderr, "\n%s %d still there: %s\n", what, pid, stat ? stat : "(gone)");
    print_proc_file(pid, "wchan");
    print_proc_file(pid, "stack");
}

/* Starts `child` (which reports its workers' pids), does `then` to it, and checks that the
 * workers are gone within 3 seconds. */
static void check_workers_end_with(int (*child)(void), int then_signal)
{
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    report_fd = fds[1];
    pid_t pid = fork_child_of_the_test();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        alarm(20);
        /* A coordinator that handles none of them: the suite may have inherited SIGHUP and
         * SIGQUIT ignored (nohup; a shell's background job without job control), and a
         * coordinator that ignores a signal rightly lives on, its workers with it. */
        if (then_signal)
            signal(then_signal, SIG_DFL);
        _exit(child());
    }
    close(fds[1]);
    int workers[2] = {0, 0};
    CU_ASSERT_EQUAL_FATAL(read(fds[0], workers, sizeof workers), (ssize_t)sizeof workers);
    close(fds[0]);
    usleep(100000);
    if (then_signal)
        kill(pid, then_signal);
    bool gone = false;
    /* 3 s: on 2 CPUs under the whole suite in parallel, a killed 2-worker engine's teardown
     * once took over the 1 s this allowed (CI, 2026-12-03); it passes alone in 0.1 s. With
     * core dumps on (ulimit -c), SIGQUIT's dump of the arena took 3 s an engine before the
     * arena's reserve was left out of dumps (engine/heap.c). */
    for (int tries = 0; tries < 300 && !gone; tries++) {
        usleep(10000);
        gone = !running(workers[0]) && !running(workers[1]);
    }
    if (!gone) { /* what kept them: the states of the workers and their coordinator, and where
                  * each waits in the kernel */
        describe_process("coordinator", pid);
        for (int i = 0; i < 2; i++)
            if (running(workers[i]))
                describe_process("worker", workers[i]);
    }
    CU_ASSERT(gone);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* os.execv with an engine open left its workers alive for ever. */
static void test_workers_end_when_the_coordinator_execs(void)
{
    check_workers_end_with(workers_then_exec, 0);
}

/* SIGQUIT, SIGHUP or SIGTERM to a coordinator that handles none of them: it dies, and so do its
 * workers (there is no segment to leave). */
static void test_workers_end_with_a_killed_coordinator(void)
{
    check_workers_end_with(workers_then_run, SIGQUIT);
    check_workers_end_with(workers_then_run, SIGHUP);
    check_workers_end_with(workers_then_run, SIGTERM);
}

/* A stopped worker makes the run wait; the coordinator says so on stderr. */
PARENG_TASK_1(int, spin_ms, unsigned, ms)
{
    testing_spin_ns((uint64_t)ms * 1000000u);
    return 1;
}

PARENG_TASK_1(int, two_spins, unsigned, ms)
{
    PARENG_SPAWN(spin_ms, ms);
    int a = PARENG_CALL(spin_ms, ms);
    return a + PARENG_SYNC(spin_ms);
}

static void test_a_stopped_worker_is_reported(void)
{
    FILE *err = tmpfile();
    CU_ASSERT_FATAL(err != NULL);
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid_t pid = fork_child_of_the_test();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(fileno(err), STDERR_FILENO);
        close(fds[0]);
        alarm(30);
        pareng_engine *e = child_start(2, 0);
        if (!e)
            _exit(2);
        int pids[2] = {pareng_engine_worker_pid(e, 0), pareng_engine_worker_pid(e, 1)};
        if (write(fds[1], pids, sizeof pids) != (ssize_t)sizeof pids)
            _exit(3);
        int got = 0;
        int rc = PARENG_RUN_CUTOFF(e, PARENG_CUTOFF_NONE, two_spins, &got, 300);
        pareng_stop(e);
        _exit(rc == 0 && got == 2 ? 0 : 1);
    }
    close(fds[1]);
    int workers[2];
    CU_ASSERT_EQUAL_FATAL(read(fds[0], workers, sizeof workers), (ssize_t)sizeof workers);
    close(fds[0]);
    usleep(100000);
    kill(workers[0], SIGSTOP);
    kill(workers[1], SIGSTOP);
    sleep(5);
    kill(workers[0], SIGCONT);
    kill(workers[1], SIGCONT);
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char text[2048] = "";
    rewind(err);
    size_t n = fread(text, 1, sizeof text - 1, err);
    text[n] = '\0';
    fclose(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "is stopped"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "SIGCONT"));
}

/* ---- limits and absurd sizes -------------------------------------------------------------- */

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static int start_under_an_address_space_limit(void)
{
    struct rlimit as = {256u << 20, 256u << 20};
    if (setrlimit(RLIMIT_AS, &as) < 0)
        return 2;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    cfg.shared_bytes = (size_t)1 << 30;
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, &cfg);
    return rc == -ENOMEM && !e && strstr(pareng_last_error(), "address-space limit") ? 0 : 1;
}
#endif

static int start_under_a_file_size_limit(void)
{
    struct rlimit fsize = {1 << 20, 1 << 20};
    if (setrlimit(RLIMIT_FSIZE, &fsize) < 0)
        return 2;
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, NULL);
    return rc == -EFBIG && !e && strstr(pareng_last_error(), "file-size limit") ? 0 : 1;
}

/* The arena counts against RLIMIT_FSIZE, and growing past it raised SIGXFSZ, which ended the
 * caller without a word (the child would end with 100 + SIGXFSZ). */
static void test_file_size_limit_is_named(void)
{
    CU_ASSERT_EQUAL(in_child(start_under_a_file_size_limit, 20), 0);
}

static int start_under_a_descriptor_limit(void)
{
    struct rlimit files = {16, 16};
    if (setrlimit(RLIMIT_NOFILE, &files) < 0)
        return 2;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 24;
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, &cfg);
    return rc == -EMFILE && !e && strstr(pareng_last_error(), "(ulimit -n)") ? 0 : 1;
}

/* An engine holds a descriptor per worker: past `ulimit -n` the start said "pidfd_open (Linux
 * 5.3 or later) failed: Too many open files", as if the kernel were too old. */
static void test_descriptor_limit_is_named(void)
{
    CU_ASSERT_EQUAL(in_child(start_under_a_descriptor_limit, 20), 0);
}

/* RLIMIT_AS read "cannot reserve ... in /dev/shm", the wrong cause. */
static void test_address_space_limit_is_named(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* the sanitizers reserve terabytes of shadow memory: no address-space limit fits them;
     * the release build runs this test */
    fprintf(stderr, "(not under a sanitizer) ");
#else
    CU_ASSERT_EQUAL(in_child(start_under_an_address_space_limit, 20), 0);
#endif
}

static void test_absurd_shared_bytes_are_refused(void)
{
    static const size_t absurd[] = {0xfffffffffffff000ull, SIZE_MAX, ((size_t)1 << 40) + 1};
    for (size_t k = 0; k < sizeof absurd / sizeof *absurd; k++) {
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = 1;
        cfg.shared_bytes = absurd[k];
        pareng_engine *e = NULL;
        CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
        CU_ASSERT_PTR_NULL(e);
        CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "shared_bytes"));
    }
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

/* A double pareng_free handed the same block out twice; pareng_free(p + 8) corrupted the heap.
 * Both are refused, and the heap goes on as before. */
static void test_bad_frees_are_refused(void)
{
    pareng_engine *e = start(1);
    char *a = pareng_alloc(e, 1000), *b = pareng_alloc(e, 1000);
    CU_ASSERT_FATAL(a && b);
    static char not_shared[128];
    CU_ASSERT_EQUAL(pareng_free(e, a + 8), -EINVAL);
    CU_ASSERT_EQUAL(pareng_free(e, a + 64), -EINVAL);
    CU_ASSERT_EQUAL(pareng_free(e, not_shared), -EINVAL);
    CU_ASSERT_EQUAL(pareng_free(e, a), 0);
    CU_ASSERT_EQUAL(pareng_free(e, a), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "freed already"));
    CU_ASSERT_EQUAL(pareng_free(e, NULL), 0);
    char *c = pareng_alloc(e, 1000), *d = pareng_alloc(e, 1000);
    CU_ASSERT(c == a);     /* a's block, once */
    CU_ASSERT(d != a && d != b);
    CU_ASSERT_EQUAL(pareng_free(e, b), 0);
    CU_ASSERT_EQUAL(pareng_free(e, c), 0);
    CU_ASSERT_EQUAL(pareng_free(e, d), 0);
    /* everything back: the whole heap in one piece again */
    pareng_config cfg;
    pareng_config_default(&cfg);
    void *all = pareng_alloc(e, (8u << 20) - 64);
    CU_ASSERT_PTR_NOT_NULL(all);
    pareng_free(e, all);
    pareng_stop(e);
}

/* ---- topology input ----------------------------------------------------------------------- */

static int plan_rc(const char *xml, const char *synthetic)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.topology_xml = xml;
    if (synthetic)
        setenv("HWLOC_SYNTHETIC", synthetic, 1);
    pareng_plan *plan = NULL;
    int rc = pareng_plan_create(&plan, &cfg);
    unsetenv("HWLOC_SYNTHETIC");
    pareng_plan_destroy(plan);
    return rc;
}

static int topology_inputs_that_are_no_files(void)
{
    char fifo[] = "/tmp/pareng-test-fifo-XXXXXX";
    if (!mkdtemp(fifo))
        return 2;
    char path[64];
    snprintf(path, sizeof path, "%s/f", fifo);
    if (mkfifo(path, 0600) < 0)
        return 3;
    int bad = 0;
    bad |= plan_rc(path, NULL) != -EIO;
    bad |= plan_rc("/dev/zero", NULL) != -EIO;
    bad |= !strstr(pareng_last_error(), "not a regular file");
    bad |= plan_rc("/tmp", NULL) != -EIO;
    setenv("HWLOC_XMLFILE", path, 1); /* hwloc's own variable is checked the same way */
    bad |= plan_rc(NULL, NULL) != -EIO;
    unsetenv("HWLOC_XMLFILE");
    unlink(path);
    rmdir(fifo);
    return bad;
}

/* --topology naming a FIFO blocked; /dev/zero grew to 1.9 GB. */
static void test_topology_input_must_be_a_regular_file(void)
{
    CU_ASSERT_EQUAL(in_child(topology_inputs_that_are_no_files, 10), 0);
}

/* "package:64 core:64 pu:64" ran for over 10 minutes at 11.6 GB: refused at once. */
static void test_huge_topologies_are_refused(void)
{
    uint64_t t0 = testing_now_ns();
    CU_ASSERT_EQUAL(plan_rc(NULL, "package:64 core:64 pu:64"), -EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "more than 4096 PUs"));
    /* the count stops at the limit: "pu:5000" was said to describe 4097 PUs */
    CU_ASSERT_EQUAL(plan_rc(NULL, "pu:5000"), -EIO);
    CU_ASSERT(strstr(pareng_last_error(), "more than 4096 PUs") &&
              !strstr(pareng_last_error(), "4097"));
    CU_ASSERT_EQUAL(plan_rc(NULL, "package:2 [numa] core:4096 pu:2"), -EIO);
    CU_ASSERT(testing_now_ns() - t0 < 6000000000u);
    /* 600 cores (more than the most workers) still plan */
    CU_ASSERT_EQUAL(plan_rc(NULL, "core:600 pu:1"), 0);

    char big[] = "/tmp/pareng-test-big-XXXXXX";
    int fd = mkstemp(big);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ftruncate(fd, (off_t)65 << 20), 0);
    close(fd);
    CU_ASSERT_EQUAL(plan_rc(big, NULL), -EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "bytes"));
    unlink(big);
}

/* ---- careless programs: two threads on one engine, a task closing descriptors, a fork ---- */

typedef struct other_run {
    pareng_engine *e;
    uint64_t got;
    int rc;
} other_run;

static void *run_fib_25(void *arg)
{
    other_run *o = arg;
    o->rc = workload_fib(o->e, 25, 0, &o->got);
    return NULL;
}

static bool right_or_busy(int rc, uint64_t got, unsigned n)
{
    return rc == 0 ? got == workload_fib_serial(n) : rc == -EBUSY;
}

static int threads_run_on_one_engine(void)
{
    pareng_engine *e = child_start(2, 0);
    if (!e)
        return 10;
    bool right = true;
    for (int round = 0; round < 20 && right; round++) {
        other_run o = {.e = e};
        pthread_t thread;
        if (pthread_create(&thread, NULL, run_fib_25, &o) != 0)
            return 11;
        uint64_t got = 0;
        int rc = workload_fib(e, 30, 0, &got);
        pthread_join(thread, NULL);
        right = right_or_busy(rc, got, 30) && right_or_busy(o.rc, o.got, 25);
    }
    pareng_stop(e);
    return right ? 0 : 1;
}

/* Two threads' runs on one engine shared its root frame: results swapped, exit 0, or a hang.
 * Each is now right, or refused as busy. */
static void test_two_threads_runs_are_right_or_refused(void)
{
    CU_ASSERT_EQUAL(in_child(threads_run_on_one_engine, 20), 0);
}

PARENG_TASK_1(int, close_descriptors_from, int, first)
{
    for (int fd = first; fd < 1024; fd++)
        close(fd);
    return 1;
}

static int a_task_closes_every_descriptor(void)
{
    pareng_engine *e = child_start(2, 0);
    int closed = 0;
    bool ok = e && PARENG_RUN(e, close_descriptors_from, &closed, 3) == 0 && closed == 1 &&
              fib_ok(e, 22);
    pareng_stop(e);
    return ok ? 0 : 1;
}

/* A task that closed its worker's descriptors closed the eventfd that rings when the root is
 * done: the run waited for ever. The coordinator also looks at each of its timeouts now. */
static void test_a_task_closing_its_descriptors_ends_its_run(void)
{
    CU_ASSERT_EQUAL(in_child(a_task_closes_every_descriptor, 20), 0);
}

/* Another engine, started before the one whose task uses it: its memory is not in that
 * task's worker either. */
static pareng_engine *other_engine;

PARENG_TASK_1(int, allocate_in_the_other_engine, int, bytes)
{
    return pareng_alloc(other_engine, (size_t)bytes) == NULL &&
           strstr(pareng_last_error(), "forked") != NULL;
}

static int a_forked_copy_is_refused(void)
{
    other_engine = child_start(1, 0);
    pareng_engine *e = child_start(2, 0);
    if (!e || !other_engine)
        return 10;
    int refused_in_a_task = 0;
    if (PARENG_RUN(e, allocate_in_the_other_engine, &refused_in_a_task, 64) != 0 ||
        !refused_in_a_task)
        return 11;
    pid_t pid = fork();
    if (pid == 0) {
        int spun = 0;
        uint64_t tag, result;
        bool refused = PARENG_RUN(e, spin_ms, &spun, 0) == -EPERM &&
                       strstr(pareng_last_error(), "forked") && !pareng_alloc(e, 64) &&
                       PARENG_POST(e, 1, spin_ms, 0) == -EPERM &&
                       pareng_collect(e, &tag, &result, sizeof result) == -EPERM;
        /* memory of this process's own where the arena is in the coordinator (not here) */
        char *own = mmap(pareng__engine_arena(e), 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (own == MAP_FAILED)
            _exit(2);
        own[0] = 1;
        pareng_cancel(e); /* this process has no run of the engine's: nothing, written nowhere */
        bool untouched = own[1] == 0 && memcmp(own + 1, own + 2, 4094) == 0;
        pareng_stop(e); /* releases this copy alone: the coordinator's workers go on */
        _exit(refused && untouched && own[0] == 1 ? 0 : 1);
    }
    int status = -1;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && fib_ok(e, 22);
    pareng_stop(e);
    pareng_stop(other_engine);
    return ok ? 0 : 1;
}

/* A process forked from a coordinator that ran the engine died of SIGSEGV (the engine's
 * memory is not forked), its pareng_cancel is no cancel of the coordinator's runs, and its
 * pareng_stop would have killed the coordinator's workers and
 * unmapped what its own allocations had put where the arena was; the worker of another engine
 * is such a process. */
static void test_a_forked_copy_of_an_engine_is_refused(void)
{
    CU_ASSERT_EQUAL(in_child(a_forked_copy_is_refused, 20), 0);
}

static int stderr_closed(void)
{
    close(STDERR_FILENO);
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 3;
    cfg.display_affinity = 1; /* the engine writes to stderr */
    pareng_engine *e = NULL;
    if (pareng_start(&e, &cfg) < 0)
        return 10;
    bool ok = fib_ok(e, 24) && fib_ok(e, 20);
    pareng_stop(e);
    return ok ? 0 : 1;
}

/* A program that closed stderr got the engine's memory as descriptor 2: the engine's own
 * warnings went over its header, the workers exited and the run failed (a stats read then
 * crashed the CLI). */
static void test_a_closed_stderr_is_not_the_engines(void)
{
    CU_ASSERT_EQUAL(in_child(stderr_closed, 20), 0);
}

static void ignore_range(void *ctx, size_t begin, size_t end)
{
    (void)ctx, (void)begin, (void)end;
}

static void ignore_into(void *ctx, size_t begin, size_t end, void *out)
{
    (void)ctx, (void)begin, (void)end, (void)out;
}

static void ignore_combine(void *left, const void *right)
{
    (void)left, (void)right;
}

static bool said_no_engine(int rc)
{
    return rc == -EINVAL && strstr(pareng_last_error(), "NULL") != NULL;
}

static int calls_on_a_null_engine(void)
{
    pareng_engine *none = NULL;
    int spun = 0, bad = 0;
    uint64_t tag, result;
    pareng_stats stats;
    char out[8];
    bad |= !said_no_engine(PARENG_RUN(none, spin_ms, &spun, 0)) << 0;
    bad |= (pareng_alloc(none, 64) != NULL || !said_no_engine(-EINVAL)) << 1;
    bad |= !said_no_engine(pareng_free(none, out)) << 2;
    bad |= !said_no_engine(pareng_for(none, 0, 100, 0, ignore_range, NULL)) << 3;
    bad |= !said_no_engine(pareng_reduce_into(none, 0, 100, 0, ignore_into, ignore_combine,
                                              NULL, out, sizeof out)) << 4;
    bad |= !said_no_engine(pareng_engine_stats(none, 0, &stats)) << 5;
    bad |= !said_no_engine(PARENG_POST(none, 1, spin_ms, 0)) << 6;
    bad |= !said_no_engine(pareng_collect(none, &tag, &result, sizeof result)) << 7;
    bad |= (pareng_engine_workers(none) != 0 || pareng_engine_segment(none) != NULL) << 8;
    pareng_cancel(none);
    pareng_serve_wake(none);
    pareng_stop(none);
    bad |= !said_no_engine(pareng_start(NULL, NULL)) << 9;
    bad |= !said_no_engine(pareng_config_default(NULL)) << 10;
    bad |= !said_no_engine(pareng_config_set_cores(NULL, "2")) << 11;
    return bad ? 1 : 0;
}

/* A handle left NULL by a failed pareng_start that nobody checked crashed every call; each
 * is refused now, saying so (-EINVAL). */
static void test_a_null_engine_is_refused(void)
{
    CU_ASSERT_EQUAL(in_child(calls_on_a_null_engine, 20), 0);
}

/* ---- a fork from a task ------------------------------------------------------------------- */

/* The exit status of a program the task starts: with fork(), or with posix_spawn, which does
 * not share the caller's stack. */
PARENG_TASK_1(int, start_a_program, int, by_fork)
{
    pid_t pid;
    if (by_fork) {
        pid = fork();
        if (pid == 0)
            _exit(7);
    } else {
        char *argv[] = {"sh", "-c", "exit 7", NULL};
        if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
            return -1;
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int fork_from_a_task(void)
{
    pareng_engine *e = child_start(2, 0);
    if (!e)
        return 10;
    int status = 0, bad = 0;
    bad |= (PARENG_RUN(e, start_a_program, &status, 0) != 0 || status != 7) << 0;
    bad |= (PARENG_RUN(e, start_a_program, &status, 1) != -ECHILD) << 1;
    bad |= !strstr(pareng_last_error(), "could not fork a process from a task") << 2;
    pareng_stop(e);
    return bad;
}

/* A task's stack is the arena's shared memory, so a child forked from a task shared it with
 * the worker: a wrong pid in one of them, a smashed stack, a child left in the worker's idle
 * loop (Python's subprocess with preexec_fn got '' for a program's output, or a crash). Such
 * a fork now ends the worker and the run fails saying why; posix_spawn works as before. */
static void test_a_fork_from_a_task_is_refused(void)
{
    CU_ASSERT_EQUAL(in_child(fork_from_a_task, 20), 0);
}

/* ---- io_uring denied ---------------------------------------------------------------------- */

static int io_with_enter_denied(void)
{
    if (testing_deny_syscall(__NR_io_uring_enter, EPERM) < 0)
        return 10;
    /* A worker that enters its ring while it sets up fails the start, else the first run */
    pareng_engine *e = child_start(2, 16);
    if (!e)
        return strstr(pareng_last_error(), "io_uring") ? 0 : 11;
    uint64_t got;
    int rc = workload_fib_io(e, 12, 1000, &got);
    bool said = strstr(workload_error(), "io_uring") != NULL;
    pareng_stop(e);
    return rc == -ECHILD && said ? 0 : 1;
}

/* With io_uring_enter denied by seccomp, every worker of an IO engine spun at 100% for ever;
 * now the worker exits, and the start or the run fails saying why. */
static void test_io_uring_enter_denied_ends_the_run(void)
{
    CU_ASSERT_EQUAL(in_child(io_with_enter_denied, 20), 0);
}

/* A tmpfs of this process's own on /dev/shm (root, or a user namespace's root): what the
 * tests plant vanishes with the process, however it ends. Elsewhere they plant in the
 * machine's /dev/shm and remove what they planted as they finish. */
static void private_dev_shm(void)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        printf("note: no private /dev/shm here (%s): planting in the machine's\n",
               strerror(errno));
}

int main(void)
{
    private_dev_shm();
    CU_TestInfo shm[] = {
        {"a FIFO in /dev/shm blocks nothing", test_fifo_in_dev_shm_blocks_nothing},
        {"squatters and crowds deny nothing", test_squatters_and_crowds_deny_nothing},
        {"clean: only stale segments of this user",
         test_clean_removes_only_stale_segments_of_this_user},
        {"clean in another PID namespace spares live engines",
         test_clean_in_another_pid_namespace_spares_live_engines},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo signals[] = {
        {"ignored signals stay ignored in workers", test_ignored_signals_stay_ignored_in_workers},
        {"workers end when the coordinator execs", test_workers_end_when_the_coordinator_execs},
        {"workers end with a killed coordinator", test_workers_end_with_a_killed_coordinator},
        {"a stopped worker is reported", test_a_stopped_worker_is_reported},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo input[] = {
        {"address-space limit named", test_address_space_limit_is_named},
        {"file-size limit named, no SIGXFSZ", test_file_size_limit_is_named},
        {"descriptor limit named", test_descriptor_limit_is_named},
        {"absurd shared_bytes refused", test_absurd_shared_bytes_are_refused},
        {"bad frees refused, heap intact", test_bad_frees_are_refused},
        {"topology input must be a regular file", test_topology_input_must_be_a_regular_file},
        {"huge topologies refused at once", test_huge_topologies_are_refused},
        {"io_uring_enter denied ends the run", test_io_uring_enter_denied_ends_the_run},
        {"two threads' runs: right or refused", test_two_threads_runs_are_right_or_refused},
        {"a task closing its descriptors ends its run",
         test_a_task_closing_its_descriptors_ends_its_run},
        {"a forked copy of an engine is refused", test_a_forked_copy_of_an_engine_is_refused},
        {"a closed stderr is not the engine's", test_a_closed_stderr_is_not_the_engines},
        {"a NULL engine is refused", test_a_null_engine_is_refused},
        {"a fork from a task is refused", test_a_fork_from_a_task_is_refused},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("/dev/shm", shm),
        TESTING_SUITE("signals", signals),
        TESTING_SUITE("input", input),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
