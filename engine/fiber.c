/*
 * fiber.c - the fibers of a worker of an IO engine: their stacks, the switch between them, the
 * ready queue and the parked list.
 *
 * A task that waits on IO must not hold its worker, and its caller's frames sit on the same C
 * stack, so the whole stack is set aside: the task's fiber is suspended and the worker goes on
 * on another fiber (latency-hiding work stealing, Muller & Acar, SPAA 2016; the fiber per
 * suspended task of Cilk-L, Singer et al., PPoPP 2019). Fiber k runs on lane k of the worker
 * (internal.h): a suspended fiber's frames stay in its own deque, where anyone may steal them.
 *
 * Every fiber runs the idle loop (worker.c). Fiber 0 is the worker's original stack on lane 0;
 * the others are made on demand, up to one per lane, and never freed: one that finds its lane
 * empty and another fiber ready parks itself, and is the next one reused.
 *
 * Scheduling is cooperative and happens only at these points: a task suspends on IO
 * (pareng__fiber_suspend), a joiner waits for a stolen child (pareng__fiber_yield), a fiber's
 * idle loop comes round (pareng__fiber_park_if_others_ready). All fibers of a worker run in its
 * one thread, so this file needs no atomics.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_ASAN 1
#endif

/* Room for a task's own frames and whatever it calls; the pages are touched only as used. */
#define FIBER_STACK_BYTES (256u << 10)

struct pareng__fiber {
    ucontext_t context;
    pareng__worker *lane;
    pareng__fiber *next; /* in the ready queue or the parked list */
    void *stack;         /* lowest usable address (fiber 0: as AddressSanitizer reported it) */
    size_t stack_bytes;
};

static struct {
    pareng__arena *arena;
    unsigned worker;
    pareng__fiber *fibers; /* [lanes_per_worker]: fiber k runs on lane k */
    unsigned created;      /* fibers [0, created) exist */
    pareng__fiber *current;
    pareng__fiber *switched_from; /* the fiber whose switch_to resumed the current one */
    pareng__fiber *ready_head, *ready_tail;
    pareng__fiber *parked;
} sched;

bool pareng__fibers_enabled(void) { return sched.fibers != NULL; }
pareng__fiber *pareng__fiber_current(void) { return sched.current; }
bool pareng__fiber_any_ready(void) { return sched.ready_head != NULL; }

int pareng__fibers_init(pareng__arena *a, unsigned worker)
{
    /* Process-private: mmap rather than malloc, so that no allocator state is touched. */
    size_t bytes = a->lanes_per_worker * sizeof(pareng__fiber);
    void *fibers = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fibers == MAP_FAILED)
        return -errno;
    sched.arena = a;
    sched.worker = worker;
    sched.fibers = fibers;
    sched.fibers[0].lane = pareng__lane(a, worker, 0);
    sched.created = 1;
    sched.current = &sched.fibers[0];
    return 0;
}

/* AddressSanitizer must know which stack is in use; fiber 0's bounds are learnt from it the
 * first time another fiber is entered from fiber 0. */
static void finish_switch(void *fake_stack)
{
#ifdef FIBER_ASAN
    const void *from_stack;
    size_t from_bytes;
    __sanitizer_finish_switch_fiber(fake_stack, &from_stack, &from_bytes);
    if (!sched.switched_from->stack) {
        sched.switched_from->stack = (void *)(uintptr_t)from_stack;
        sched.switched_from->stack_bytes = from_bytes;
    }
#else
    (void)fake_stack;
#endif
}

static void switch_to(pareng__fiber *next)
{
    pareng__fiber *prev = sched.current;
    sched.current = next;
    sched.switched_from = prev;
    void *fake_stack = NULL;
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(&fake_stack, next->stack, next->stack_bytes);
#endif
    swapcontext(&prev->context, &next->context);
    finish_switch(fake_stack);
}

static void fiber_start(void)
{
    finish_switch(NULL);
    pareng__idle_loop(sched.current->lane);
}

static void make_context(pareng__fiber *f)
{
    /* getcontext returns only once here (nothing resumes this context but makecontext's), yet
     * gcc must assume a second return: keep the pointer out of a register it could clobber. */
    pareng__fiber *volatile fiber = f;
    getcontext(&fiber->context);
    fiber->context.uc_stack = (stack_t){.ss_sp = fiber->stack, .ss_size = fiber->stack_bytes};
    fiber->context.uc_link = NULL; /* the idle loop never returns */
    makecontext(&fiber->context, fiber_start, 0);
}

/* A fiber on the next unused lane, or NULL when every lane has one (or no stack is left). */
static pareng__fiber *fiber_create(void)
{
    if (sched.created == sched.arena->lanes_per_worker)
        return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    /* One guard page below the stack: an overflow is a SIGSEGV, reported as a crash. */
    char *region = mmap(NULL, FIBER_STACK_BYTES + page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (region == MAP_FAILED)
        return NULL;
    if (mprotect(region, page, PROT_NONE) < 0) {
        munmap(region, FIBER_STACK_BYTES + page);
        return NULL;
    }
    unsigned k = sched.created;
    pareng__fiber *f = &sched.fibers[k];
    f->lane = pareng__lane(sched.arena, sched.worker, k);
    f->stack = region + page;
    f->stack_bytes = FIBER_STACK_BYTES;
    make_context(f);
    sched.created = k + 1;
    /* Thieves look at lanes [0, lanes_used): from now on this one too. */
    atomic_store_explicit(&pareng__lane(sched.arena, sched.worker, 0)->lanes_used, k + 1,
                          memory_order_relaxed);
    return f;
}

static void ready_push(pareng__fiber *f)
{
    f->next = NULL;
    if (sched.ready_tail)
        sched.ready_tail->next = f;
    else
        sched.ready_head = f;
    sched.ready_tail = f;
}

static pareng__fiber *ready_pop(void)
{
    pareng__fiber *f = sched.ready_head;
    if (f) {
        sched.ready_head = f->next;
        if (!sched.ready_head)
            sched.ready_tail = NULL;
    }
    return f;
}

void pareng__fiber_wake(pareng__fiber *f)
{
    ready_push(f);
}

void pareng__fiber_yield(void)
{
    if (!sched.ready_head)
        return;
    ready_push(sched.current);
    switch_to(ready_pop());
}

void pareng__fiber_park_if_others_ready(void)
{
    if (!sched.ready_head)
        return;
    pareng__fiber *self = sched.current;
    self->next = sched.parked;
    sched.parked = self;
    switch_to(ready_pop());
}

bool pareng__fiber_suspend(void)
{
    /* A ready fiber first: its IO is done, and finishing tasks frees lanes. */
    pareng__fiber *next = ready_pop();
    if (!next && sched.parked) {
        next = sched.parked;
        sched.parked = next->next;
    }
    if (!next)
        next = fiber_create();
    if (!next)
        return false;
    switch_to(next);
    return true;
}
