/*
 * signal.c - ^C for programs that run engines (pareng_cancel_on_signal): the handler, the
 * signal it remembers, and one cancel slot per live engine, through which the handler wakes
 * the coordinator of every run in progress. engine.c takes a slot per engine; this file knows
 * nothing of engines.
 *
 * The slots are static storage and never freed, so a handler that runs on one thread while
 * another stops an engine never touches freed memory; pareng__cancel_slot_release waits for
 * handlers in flight before the engine closes the descriptor the slot names.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_ENGINES 1024

struct pareng__cancel_slot {
    _Atomic int done_fd_plus_1; /* the engine's eventfd + 1; 0 (static storage) while free */
    _Atomic int in_run;  /* a run of the engine is in progress */
    _Atomic int cancelled;
};

static struct pareng__cancel_slot slots[MAX_ENGINES];
/* The signal the handler last took (0: none). Sequentially consistent, as are in_run and the
 * handlers' count: a run that starts while a signal arrives either sees the signal here or is
 * seen in_run by the handler (a Dekker pair), so no run escapes a ^C. */
static _Atomic int pending_signal;
static _Atomic int handlers_running;
static struct sigaction previous[NSIG];
static _Atomic int installed[NSIG];

pareng__cancel_slot *pareng__cancel_slot_take(int done_fd)
{
    for (int k = 0; k < MAX_ENGINES; k++) {
        int empty = 0;
        if (atomic_compare_exchange_strong(&slots[k].done_fd_plus_1, &empty, done_fd + 1)) {
            atomic_store(&slots[k].in_run, 0);
            atomic_store(&slots[k].cancelled, 0);
            return &slots[k];
        }
    }
    pareng__fail(EMFILE, "more than %d engines at once in one process", MAX_ENGINES);
    return NULL;
}

void pareng__cancel_slot_release(pareng__cancel_slot *slot)
{
    if (!slot)
        return;
    atomic_store(&slot->in_run, 0);
    while (atomic_load(&handlers_running)) /* a handler on another thread may hold done_fd */
        pareng__cpu_relax();
    atomic_store(&slot->done_fd_plus_1, 0);
}

bool pareng__cancel_slot_enter(pareng__cancel_slot *slot)
{
    atomic_store(&slot->cancelled, 0);
    atomic_store(&slot->in_run, 1);
    return atomic_load(&pending_signal) != 0;
}

void pareng__cancel_slot_leave(pareng__cancel_slot *slot)
{
    atomic_store(&slot->in_run, 0);
}

bool pareng__cancel_slot_cancelled(const pareng__cancel_slot *slot)
{
    return atomic_load_explicit(&slot->cancelled, memory_order_relaxed);
}

static void on_signal(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    atomic_fetch_add(&handlers_running, 1);
    atomic_store(&pending_signal, sig);
    for (int k = 0; k < MAX_ENGINES; k++) {
        int fd = atomic_load(&slots[k].done_fd_plus_1) - 1;
        if (fd >= 0 && atomic_load(&slots[k].in_run)) {
            atomic_store(&slots[k].cancelled, 1);
            uint64_t one = 1;
            ssize_t ignored = write(fd, &one, sizeof one);
            (void)ignored;
        }
    }
    atomic_fetch_sub(&handlers_running, 1);
    errno = saved_errno;
    const struct sigaction *before = &previous[sig];
    if (before->sa_flags & SA_SIGINFO)
        before->sa_sigaction(sig, info, context);
    else if (before->sa_handler != SIG_DFL && before->sa_handler != SIG_IGN)
        before->sa_handler(sig);
}

int pareng_cancel_on_signal(int sig)
{
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
        return pareng__fail(EINVAL, "signal %d cannot be caught", sig);
    struct sigaction current;
    if (sigaction(sig, NULL, &current) < 0)
        return pareng__fail(errno, "signal %d: %s", sig, strerror(errno));
    if (atomic_load(&installed[sig]) && (current.sa_flags & SA_SIGINFO) &&
        current.sa_sigaction == on_signal)
        return 0;
    if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN)
        return 0; /* the caller chose to ignore it (nohup) */
    previous[sig] = current;
    /* No SA_RESTART: a program blocked in waitpid or read wakes up and sees the signal. */
    struct sigaction mine = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO,
                             .sa_mask = current.sa_mask};
    if (sigaction(sig, &mine, NULL) < 0)
        return pareng__fail(errno, "signal %d: %s", sig, strerror(errno));
    atomic_store(&installed[sig], 1);
    return 0;
}

int pareng_cancel_signal(int clear)
{
    return clear ? atomic_exchange(&pending_signal, 0) : atomic_load(&pending_signal);
}
