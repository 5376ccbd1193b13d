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

/* A slot's engine and its state in one word, which the handler reads once: the eventfd + 1
 * in the low 32 bits (0: the slot is free) and IN_RUN while a run is in progress. Two words
 * could be read from two engines that used the slot one after the other. */
#define FD_BITS 0xffffffffull
#define IN_RUN (1ull << 32)

struct pareng__cancel_slot {
    _Atomic uint64_t word;
    _Atomic int cancelled;
};

static struct pareng__cancel_slot slots[PARENG__MAX_ENGINES];
/* The signal the handler last took (0: none). Sequentially consistent, as are the slots'
 * words and the handlers' count: a run that starts while a signal arrives either sees the
 * signal here or is seen IN_RUN by the handler (a Dekker pair), so no run escapes a ^C; and a
 * handler that read a slot's word before its release is counted before the release waits. */
static _Atomic int pending_signal;
static _Atomic int handlers_running;
static struct sigaction previous[NSIG];
/* The previous handler of sig is running: a handler installed after ours that chains to ours
 * must not make the two call each other for ever. */
static _Atomic int chaining[NSIG];

pareng__cancel_slot *pareng__cancel_slot_take(int done_fd)
{
    for (int k = 0; k < PARENG__MAX_ENGINES; k++) {
        uint64_t empty = 0;
        if (atomic_compare_exchange_strong(&slots[k].word, &empty, (uint64_t)done_fd + 1)) {
            atomic_store(&slots[k].cancelled, 0);
            return &slots[k];
        }
    }
    pareng__fail(EMFILE, "more than %d engines at once in one process", PARENG__MAX_ENGINES);
    return NULL;
}

void pareng__cancel_slot_release(pareng__cancel_slot *slot)
{
    if (!slot)
        return;
    atomic_store(&slot->word, 0);
    while (atomic_load(&handlers_running)) /* one may have read the engine's descriptor */
        pareng__cpu_relax();
}

bool pareng__cancel_slot_enter(pareng__cancel_slot *slot)
{
    atomic_store(&slot->cancelled, 0);
    atomic_fetch_or(&slot->word, IN_RUN);
    return atomic_load(&pending_signal) != 0;
}

void pareng__cancel_slot_leave(pareng__cancel_slot *slot)
{
    atomic_fetch_and(&slot->word, ~IN_RUN);
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
    for (int k = 0; k < PARENG__MAX_ENGINES; k++) {
        uint64_t word = atomic_load(&slots[k].word);
        if ((word & IN_RUN) && (word & FD_BITS)) {
            atomic_store(&slots[k].cancelled, 1);
            uint64_t one = 1;
            ssize_t ignored = write((int)(word & FD_BITS) - 1, &one, sizeof one);
            (void)ignored;
        }
    }
    atomic_fetch_sub(&handlers_running, 1);
    errno = saved_errno;
    if (atomic_exchange(&chaining[sig], 1))
        return;
    const struct sigaction *before = &previous[sig];
    if (before->sa_flags & SA_SIGINFO)
        before->sa_sigaction(sig, info, context);
    else if (before->sa_handler != SIG_DFL && before->sa_handler != SIG_IGN)
        before->sa_handler(sig);
    atomic_store(&chaining[sig], 0);
}

int pareng_cancel_on_signal(int sig)
{
    if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
        return pareng__fail(EINVAL, "signal %d cannot be caught", sig);
    struct sigaction current;
    if (sigaction(sig, NULL, &current) < 0)
        return pareng__fail(errno, "signal %d: %s", sig, strerror(errno));
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_signal)
        return 0; /* ours already */
    if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN)
        return 0; /* the caller chose to ignore it (nohup) */
    previous[sig] = current;
    /* No SA_RESTART: a program blocked in waitpid or read wakes up and sees the signal. */
    struct sigaction mine = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO,
                             .sa_mask = current.sa_mask};
    if (sigaction(sig, &mine, NULL) < 0)
        return pareng__fail(errno, "signal %d: %s", sig, strerror(errno));
    return 0;
}

int pareng_cancel_signal(int clear)
{
    return clear ? atomic_exchange(&pending_signal, 0) : atomic_load(&pending_signal);
}
