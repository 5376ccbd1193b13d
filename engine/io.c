/*
 * io.c - a worker's io_uring: pareng_io (submit one operation, suspend the task's fiber until
 * it completes), handing out completions, and sleeping in the ring.
 *
 * Each worker process makes its own ring after the fork (rings are not shared across
 * processes). The rule it keeps: a worker never sleeps in the kernel waiting for IO while a task
 * is runnable anywhere. A task's operation goes into the submission queue and the task's fiber
 * is suspended (fiber.c); the worker goes on with a ready fiber, its own frames or stolen ones.
 * Submissions are batched: they go to the kernel at the worker's next scheduling point, or when
 * SUBMIT_BATCH are queued. Completions are read from the shared completion ring without a
 * system call (io_uring_cq_ready); one enters the kernel only when the ring's TASKRUN flag
 * says completions wait for it (COOP_TASKRUN). Only a worker with nothing to run sleeps, in
 * io_uring_enter, with a futex wait on the arena's epoch in the same ring
 * (IORING_OP_FUTEX_WAIT, Linux 6.7): pareng__wake's futex wake ends that sleep just as it ends a
 * plain futex sleep, so new stealable work wakes it.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* liburing 2.3 (Debian 12) predates the futex operations; the kernel ABI is fixed. */
#define IORING_OP_FUTEX_WAIT_ 51
#define FUTEX2_SIZE_U32_ 0x02 /* futex2 flags: a 32-bit word, shared (no FUTEX2_PRIVATE) */

/* Completions that belong to no task. */
#define TAG_FUTEX 1u
#define TAG_LINKED_TIMEOUT 2u

#define SUBMIT_BATCH 32
/* Without IORING_OP_FUTEX_WAIT a sleeping worker looks for new work this often. */
#define FALLBACK_POLL_NS 1000000L
/* A worker stuck this long with no spare fiber left says so (pareng__io_wait_for_fiber). */
#define STUCK_WARN_NS 2000000000ull
/* Looks further apart than this belong to different stuck spells (each look follows a wait of
 * ALL_FIBERS_BUSY_WAIT_NS). */
#define STUCK_GAP_NS (20ull * ALL_FIBERS_BUSY_WAIT_NS)

/* One operation of one task, on the task's stack; the completion's user_data points here. */
typedef struct io_waiter {
    pareng__fiber *fiber;
    int result;
    bool done;
    bool timed; /* a sleep, or linked to a timeout: it ends by itself */
} io_waiter;

/* Per process, thread-local: see fiber.c's sched */
static _Thread_local struct {
    struct io_uring ring;
    bool ready;
    pareng__worker *lane0; /* the worker's IO counters */
    unsigned in_flight, timed_in_flight;
    bool futex_armed, futex_unsupported;
    uint64_t completions;            /* of tasks' operations, ever */
    uint64_t stuck_since_ns;         /* 0: not stuck without spares */
    uint64_t stuck_seen_ns;          /* the last look that found it stuck */
    uint64_t completions_when_stuck; /* completions then */
    bool said_stuck;
} io;

int pareng__io_probe(void)
{
    struct io_uring ring;
    int rc = io_uring_queue_init(2, &ring, 0);
    if (rc < 0)
        return rc;
    io_uring_queue_exit(&ring);
    return 0;
}

int pareng__io_init(pareng__worker *lane0, unsigned depth)
{
    /* Room in the completion ring for the operation and linked timeout of every fiber (its
     * spares past io_depth too) and the futex wait at once: the ring never overflows, so
     * nothing depends on the kernel keeping what did not fit (IORING_FEAT_NODROP). The
     * submission queue holds only what is not submitted yet (pareng_io submits when fewer
     * than two entries are left): io_depth entries, however many are in flight, and never
     * fewer than the two an operation and its linked timeout take together (with one, the
     * operation went to the kernel alone, before its link was set, and its timeout was lost:
     * io_depth 1 waited for ever on a peer that never answered). Only this
     * process uses the ring (SINGLE_ISSUER), and completions wait for its next entry into
     * the kernel instead of interrupting it (COOP_TASKRUN), which the TASKRUN flag tells it
     * about: measured, the HTTP load went from 58,000 to about 90,000 requests/s. Kernels
     * before 6.0 refuse these flags; the ring then works without them. */
    unsigned cq_entries = 2 * PARENG__IO_LANES(depth) + 1; /* the kernel rounds it up */
    struct io_uring_params params = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
                                              IORING_SETUP_TASKRUN_FLAG |
                                              IORING_SETUP_SINGLE_ISSUER,
                                     .cq_entries = cq_entries};
    unsigned sq_entries = depth < 2 ? 2 : depth;
    int rc = io_uring_queue_init_params(sq_entries, &io.ring, &params);
    if (rc == -EINVAL) {
        params = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE, .cq_entries = cq_entries};
        rc = io_uring_queue_init_params(sq_entries, &io.ring, &params);
    }
    if (rc < 0)
        return rc;
    io.lane0 = lane0;
    io.ready = true;
    return 0;
}

/* An error of io_uring_enter itself, not of an operation (those come in completions): a
 * timeout, an interruption or a full completion queue pass; anything else (a seccomp policy
 * that denies it) would leave the worker spinning on a ring that never moves, so it ends the
 * worker, and the run fails with the reason. */
static void check_enter(int rc)
{
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        pareng__worker_exit(io.lane0, PARENG__EXIT_IO_FAILED, -rc);
}

static void submit(void)
{
    if (io_uring_sq_ready(&io.ring))
        check_enter(io_uring_submit(&io.ring));
}

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io.ring);
    if (!sqe) { /* the queue is full of unsubmitted entries: hand them over first */
        submit();
        sqe = io_uring_get_sqe(&io.ring);
    }
    return sqe;
}

static void reap(void)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&io.ring, head, cqe) {
        seen++;
        if (cqe->user_data == TAG_FUTEX) {
            io.futex_armed = false;
            io.futex_unsupported |= cqe->res == -EINVAL;
            continue;
        }
        if (cqe->user_data == TAG_LINKED_TIMEOUT)
            continue;
        io_waiter *waiter = io_uring_cqe_get_data(cqe);
        waiter->result = cqe->res;
        waiter->done = true;
        io.in_flight--;
        io.timed_in_flight -= waiter->timed;
        io.completions++;
        /* relaxed: a figure for observers, with this worker its one writer */
        atomic_store_explicit(&io.lane0->io_in_flight, io.in_flight, memory_order_relaxed);
        pareng__count(&io.lane0->counters, PARENG__IO_OPS, 1);
        /* The fiber that is running is not suspended: it is waiting in the ring itself. */
        if (waiter->fiber != pareng__fiber_current())
            pareng__fiber_wake(waiter->fiber);
    }
    io_uring_cq_advance(&io.ring, seen);
}

/* Completions that arrived, and joins that ended (another worker's hand rings nothing here),
 * make their fibers ready. */
static void hand_out(void)
{
    if (io_uring_cq_ready(&io.ring))
        reap();
    pareng__fiber_wake_joiners();
}

void pareng__io_poll(void)
{
    submit();
    if (IO_URING_READ_ONCE(*io.ring.sq.kflags) & IORING_SQ_TASKRUN)
        check_enter(io_uring_get_events(&io.ring));
    hand_out();
}

static struct __kernel_timespec timespec_of(uint64_t ns)
{
    return (struct __kernel_timespec){.tv_sec = (long long)(ns / 1000000000u),
                                      .tv_nsec = (long long)(ns % 1000000000u)};
}

void pareng__io_wait(long timeout_ns)
{
    struct __kernel_timespec limit = timespec_of((uint64_t)timeout_ns);
    struct io_uring_cqe *cqe;
    pareng__observe_state(io.lane0, PARENG_STATE_IO);
    check_enter(io_uring_submit_and_wait_timeout(&io.ring, &cqe, 1,
                                                 timeout_ns < 0 ? NULL : &limit, NULL));
    hand_out();
}

void pareng__io_sleep(_Atomic uint32_t *epoch, uint32_t seen)
{
    if (!io.futex_armed && !io.futex_unsupported) {
        struct io_uring_sqe *sqe = get_sqe();
        if (sqe) {
            /* A wait armed earlier with an older epoch is still right: the epoch moves only
             * with a futex wake, which completes it. */
            io_uring_prep_rw(IORING_OP_FUTEX_WAIT_, sqe, FUTEX2_SIZE_U32_, (void *)epoch, 0, seen);
            sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
            io_uring_sqe_set_data64(sqe, TAG_FUTEX);
            io.futex_armed = true;
        }
    }
    /* nothing armed (no futex wait in this kernel, or no room in the queue): look again soon */
    pareng__io_wait(io.futex_armed ? -1 : FALLBACK_POLL_NS);
}

/* Fills sqe for req, whose opcode is known. */
static void prepare(struct io_uring_sqe *sqe, const pareng_io_request *req,
                    struct __kernel_timespec *duration)
{
    /* io_uring counts bytes in 32 bits; a longer transfer is cut short, as read(2) may be */
    unsigned len = req->len > UINT_MAX ? UINT_MAX : (unsigned)req->len;
    switch (req->op) {
    case PARENG_IO_OP_SLEEP:
        io_uring_prep_timeout(sqe, duration, 0, 0);
        return;
    case PARENG_IO_OP_READ:
        io_uring_prep_read(sqe, req->fd, req->buf, len, req->offset);
        return;
    case PARENG_IO_OP_WRITE:
        io_uring_prep_write(sqe, req->fd, req->buf, len, req->offset);
        return;
    case PARENG_IO_OP_FSYNC:
        io_uring_prep_fsync(sqe, req->fd, 0);
        return;
    case PARENG_IO_OP_CONNECT:
        io_uring_prep_connect(sqe, req->fd, req->buf, (socklen_t)req->len);
        return;
    case PARENG_IO_OP_ACCEPT:
        io_uring_prep_accept(sqe, req->fd, req->buf, req->addrlen, SOCK_CLOEXEC);
        return;
    case PARENG_IO_OP_SEND: /* a peer that went away is -EPIPE, not a SIGPIPE */
        io_uring_prep_send(sqe, req->fd, req->buf, len, MSG_NOSIGNAL);
        return;
    case PARENG_IO_OP_RECV:
        io_uring_prep_recv(sqe, req->fd, req->buf, len, 0);
        return;
    case PARENG_IO_OP_CLOSE:
        io_uring_prep_close(sqe, req->fd);
        return;
    }
}

/* Stuck with no spare fiber left: after STUCK_WARN_NS with no completion, and none of the
 * waits sure to end (a sleep, a timeout), the run may never end, and nothing else would tell
 * why. Said once per worker; the run goes on, since the waits may yet end (a slow server). */
static void say_if_stuck_long(void)
{
    uint64_t now = pareng__now_ns(), seen = io.stuck_seen_ns;
    io.stuck_seen_ns = now;
    /* The looks of one stuck spell come a wait apart: a gap means the last one ended without a
     * completion of a task's IO (a join that ended, the waiting fiber's own operation reaped
     * elsewhere), and this one starts now. */
    if (!io.stuck_since_ns || now - seen > STUCK_GAP_NS ||
        io.completions != io.completions_when_stuck || io.timed_in_flight) {
        io.stuck_since_ns = now;
        io.completions_when_stuck = io.completions;
        return;
    }
    if (io.said_stuck || now - io.stuck_since_ns < STUCK_WARN_NS)
        return;
    io.said_stuck = true;
    pareng__arena *a = io.lane0->arena;
    fprintf(stderr, "pareng: worker %u (pid %d): all %u fibers have waited on IO for %llu s "
            "while tasks are runnable, and no IO completed: if those IOs wait for those tasks "
            "(the other end of a pipe or a socket), the run can never end; raise io_depth (now "
            "%u: io_depth fibers, and as many more when stuck)\n", io.lane0->index,
            (int)getpid(), a->lanes_per_worker, (unsigned long long)(STUCK_WARN_NS / 1000000000u),
            a->io_depth);
}

bool pareng__io_wait_for_fiber(pareng__worker *lane)
{
    pareng__io_wait(ALL_FIBERS_BUSY_WAIT_NS);
    /* The lane's own shared frames count: another fiber may run them. */
    if (pareng__fiber_any_ready() || !pareng__work_visible(lane, NULL)) {
        io.stuck_since_ns = 0;
        return false;
    }
    if (!pareng__fiber_spare_left())
        say_if_stuck_long();
    return true;
}

/* The task waits for its operation: its fiber is suspended while the worker runs other work,
 * or, when every fiber of the worker is in use, the worker waits for any completion. */
static void wait_for(io_waiter *waiter, pareng__worker *lane, pareng_frame *h)
{
    pareng__deque_share_all(lane, h);
    bool stuck = false; /* pareng__io_wait_for_fiber said so: the next fiber may be a spare */
    while (!waiter->done) {
        if (pareng__fiber_suspend(stuck)) {
            pareng__count(&io.lane0->counters, PARENG__IO_SUSPENDS, 1);
            stuck = false;
            continue;
        }
        stuck = pareng__io_wait_for_fiber(lane);
    }
}

int pareng_io(pareng_worker *pub, pareng_frame *h, const pareng_io_request *req)
{
    if (!io.ready)
        return -ENOTSUP;
    if ((unsigned)req->op > PARENG_IO_OP_CLOSE)
        return -EINVAL;
    /* io_uring takes an offset of -1 for the file's own position, which the caller shares:
     * pread and pwrite refuse a negative offset, and so does this */
    if ((req->op == PARENG_IO_OP_READ || req->op == PARENG_IO_OP_WRITE) &&
        req->offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    bool timed = req->timeout_ns && req->op != PARENG_IO_OP_SLEEP;
    struct __kernel_timespec duration = timespec_of(req->timeout_ns);
    if (io_uring_sq_space_left(&io.ring) < 2u) /* the operation and its linked timeout */
        submit();
    /* both entries or neither: an operation without its timeout would wait unbounded */
    if (timed && io_uring_sq_space_left(&io.ring) < 2u)
        return -EBUSY;
    struct io_uring_sqe *sqe = get_sqe();
    if (!sqe)
        return -EBUSY;
    prepare(sqe, req, &duration);
    io_waiter waiter = {.fiber = pareng__fiber_current(),
                        .timed = req->op == PARENG_IO_OP_SLEEP};
    io_uring_sqe_set_data(sqe, &waiter);
    if (timed) { /* its entry is there: checked above */
        struct io_uring_sqe *timeout = io_uring_get_sqe(&io.ring);
        sqe->flags |= IOSQE_IO_LINK;
        io_uring_prep_link_timeout(timeout, &duration, 0);
        io_uring_sqe_set_data64(timeout, TAG_LINKED_TIMEOUT);
        waiter.timed = true;
    }
    io.timed_in_flight += waiter.timed;
    _Atomic uint64_t *peak = &io.lane0->counters.v[PARENG__IO_PEAK];
    if (++io.in_flight > atomic_load_explicit(peak, memory_order_relaxed))
        atomic_store_explicit(peak, io.in_flight, memory_order_relaxed);
    atomic_store_explicit(&io.lane0->io_in_flight, io.in_flight, memory_order_relaxed);
    if (io_uring_sq_ready(&io.ring) >= SUBMIT_BATCH)
        submit();
    wait_for(&waiter, pareng__self(pub), h);
    pareng__observe_state(pareng__self(pub), PARENG_STATE_RUNNING); /* the task goes on */
    if (req->op == PARENG_IO_OP_SLEEP && waiter.result == -ETIME)
        return 0; /* the time passed: what a sleep is for */
    if (timed && waiter.result == -ECANCELED)
        return -ETIMEDOUT; /* cancelled by its linked timeout */
    return waiter.result;
}
