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
 * Every fiber runs the idle loop (worker.c). Fiber 0 is the worker's stack in the arena
 * (pareng__enter_arena_stack, which every worker enters, IO or not) on lane 0;
 * the others are made on demand, up to one per lane, and never freed: one that finds its lane
 * empty and another fiber ready parks itself, and is the next one reused. The first io_depth
 * lanes take fibers whenever one is wanted; the io_depth lanes past them only when the worker
 * is stuck (io.c, pareng__io_wait_for_fiber): every fiber waits, no completion frees one,
 * and a task is runnable, which the waits may be waiting for.
 *
 * Scheduling is cooperative and happens only at these points: a task suspends on IO
 * (pareng__fiber_suspend), a joiner waits for a stolen child that is not done
 * (pareng__fiber_join_wait), a fiber's idle loop comes round
 * (pareng__fiber_park_if_others_ready). All fibers of a worker run in its one thread, so the
 * queues need no atomics; only a joiner's thief mark is written by another process.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

/* AddressSanitizer must know which stack is in use, or an exception unwinding a task's frames
 * ("ignoring requested __asan_handle_no_return") leaves their poison behind, and later correct
 * code is reported as a stack-buffer-overflow. Its runtime is in the process when libpareng was
 * built with it, and also when only the program was (-fsanitize=address linking this library
 * as installed): weak, so found at run time, and NULL without it. */
extern void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                           size_t size) __attribute__((weak));
extern void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                            size_t *size_old) __attribute__((weak));

/* ---- the switch -------------------------------------------------------------------------
 * On x86-64 a switch saves what the System V ABI makes callee-saved (rbx, rbp, r12-r15, the
 * SSE and x87 control words) on the old stack and takes the new one: a few nanoseconds, where
 * swapcontext also saves the signal mask with a system call on every switch. Elsewhere,
 * ucontext. */
#if defined(__x86_64__)
typedef struct fiber_context {
    void *sp;
} fiber_context;

void pareng__context_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl pareng__context_switch\n"
        ".hidden pareng__context_switch\n"
        ".type pareng__context_switch, @function\n"
        "pareng__context_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size pareng__context_switch, .-pareng__context_switch\n");

static void context_switch(fiber_context *from, fiber_context *to)
{
    pareng__context_switch(&from->sp, to->sp);
}

/* A stack that the first switch to it "returns" into entry, as if entry had been called. */
static void context_make(fiber_context *c, void *stack, size_t bytes, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)stack + bytes) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top - 2; /* entry's return address (none) above its own */
    sp[1] = 0;
    sp[0] = (uint64_t)(uintptr_t)entry; /* popped by ret: then rsp % 16 == 8, as after a call */
    sp -= 7;
    memset(sp, 0, 7 * sizeof *sp); /* r15, r14, r13, r12, rbx, rbp start at 0 */
    sp[0] = 0x1f80 | (uint64_t)0x037f << 32; /* MXCSR and x87 control word at power-on */
    c->sp = sp;
}
#else
typedef ucontext_t fiber_context;

static void context_switch(fiber_context *from, fiber_context *to)
{
    swapcontext(from, to);
}

static void context_make(fiber_context *c, void *stack, size_t bytes, void (*entry)(void))
{
    /* getcontext returns only once here (nothing resumes this context but makecontext's), yet
     * gcc must assume a second return: keep the pointer out of a register it could clobber. */
    fiber_context *volatile context = c;
    getcontext(context);
    context->uc_stack = (stack_t){.ss_sp = stack, .ss_size = bytes};
    context->uc_link = NULL; /* the idle loop never returns */
    makecontext(context, entry, 0);
}
#endif

struct pareng__fiber {
    fiber_context context;
    pareng__worker *lane;
    pareng__fiber *next; /* in the ready queue, the parked list or the joiners */
    _Atomic uint32_t *join_mark; /* joiners: the thief mark of the child it waits for */
    void *stack;         /* lowest usable address (fiber 0: as AddressSanitizer reported it) */
    size_t stack_bytes;
};

/* Thread-local, like every per-process state of libpareng: never in the data segment, which
 * globals.c shares between processes when libpareng is linked into the program. */
static _Thread_local struct {
    pareng__arena *arena;
    unsigned worker;
    pareng__fiber *fibers; /* [lanes_per_worker]: fiber k runs on lane k */
    unsigned created;      /* fibers [0, created) exist */
    unsigned depth;        /* io_depth: fibers past it are made only when stuck */
    pareng__fiber *current;
    pareng__fiber *switched_from; /* the fiber whose switch_to resumed the current one */
    pareng__fiber *ready_head, *ready_tail;
    pareng__fiber *parked;
    pareng__fiber *joiners; /* suspended until a stolen child is done */
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
    sched.depth = a->io_depth;
    sched.fibers[0].lane = pareng__lane(a, worker, 0);
    sched.created = 1;
    sched.current = &sched.fibers[0];
    return 0;
}

/* Fiber 0's bounds are learnt from AddressSanitizer the first time another fiber is entered
 * from fiber 0. */
static void finish_switch(void *fake_stack)
{
    if (!__sanitizer_finish_switch_fiber)
        return;
    const void *from_stack;
    size_t from_bytes;
    __sanitizer_finish_switch_fiber(fake_stack, &from_stack, &from_bytes);
    if (!sched.switched_from->stack) {
        sched.switched_from->stack = (void *)(uintptr_t)from_stack;
        sched.switched_from->stack_bytes = from_bytes;
    }
}

static void switch_to(pareng__fiber *next)
{
    pareng__fiber *prev = sched.current;
    sched.current = next;
    sched.switched_from = prev;
    void *fake_stack = NULL;
    if (__sanitizer_start_switch_fiber)
        __sanitizer_start_switch_fiber(&fake_stack, next->stack, next->stack_bytes);
    context_switch(&prev->context, &next->context);
    finish_switch(fake_stack);
}

static _Thread_local pareng__worker *arena_stack_lane; /* per process: see sched */

static void arena_stack_start(void)
{
    if (__sanitizer_finish_switch_fiber)
        __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
    /* The stack the worker was forked on is left for good: it can be sealed with the rest.
     * Not under a SIGSEGV handler of the caller's, which would not let libraries write. */
    if (arena_stack_lane->arena->seal_caller_memory && pareng__worker_catches_segv())
        pareng__caller_memory_seal();
    pareng__idle_loop(arena_stack_lane);
}

_Noreturn void pareng__enter_arena_stack(pareng__worker *lane0)
{
    fiber_context origin, arena;
    arena_stack_lane = lane0;
    context_make(&arena, lane0->stack, lane0->stack_bytes, arena_stack_start);
    /* NULL: the original stack is left for good, its fake frames with it */
    if (__sanitizer_start_switch_fiber)
        __sanitizer_start_switch_fiber(NULL, lane0->stack, lane0->stack_bytes);
    context_switch(&origin, &arena);
    __builtin_unreachable();
}

static void fiber_start(void)
{
    finish_switch(NULL);
    pareng__idle_loop(sched.current->lane);
}

/* A fiber on the next unused lane, or NULL when every lane it may take has one (the first
 * io_depth, or all of them when `stuck`), or no stack is left. */
static pareng__fiber *fiber_create(bool stuck)
{
    if (sched.created >= (stuck ? sched.arena->lanes_per_worker : sched.depth))
        return NULL;
    unsigned k = sched.created;
    pareng__worker *lane = pareng__lane(sched.arena, sched.worker, k);
    /* The lane's stack in the arena (a child a thief runs may use its parent's locals), with
     * one guard page below it: an overflow is a SIGSEGV, reported as a stack overflow
     * (worker.c). */
    if (mprotect((char *)lane->stack - PARENG__FIBER_GUARD_BYTES, PARENG__FIBER_GUARD_BYTES,
                 PROT_NONE) < 0)
        return NULL;
    pareng__fiber *f = &sched.fibers[k];
    f->lane = lane;
    f->stack = lane->stack;
    f->stack_bytes = lane->stack_bytes;
    context_make(&f->context, f->stack, f->stack_bytes, fiber_start);
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

bool pareng__fiber_park_if_others_ready(void)
{
    if (!sched.ready_head)
        return false;
    pareng__fiber *self = sched.current;
    self->next = sched.parked;
    sched.parked = self;
    switch_to(ready_pop());
    return true;
}

/* Who runs when the current fiber waits: a ready fiber first (its IO is done, and finishing
 * tasks frees lanes), else a parked one, else a new one; NULL when every lane it may take
 * has a fiber. */
static pareng__fiber *next_to_run(bool stuck)
{
    pareng__fiber *next = ready_pop();
    if (!next && sched.parked) {
        next = sched.parked;
        sched.parked = next->next;
    }
    return next ? next : fiber_create(stuck);
}

bool pareng__fiber_spare_left(void)
{
    return sched.created < sched.arena->lanes_per_worker;
}

bool pareng__fiber_suspend(bool stuck)
{
    pareng__fiber *next = next_to_run(stuck);
    if (!next)
        return false;
    switch_to(next);
    return true;
}

bool pareng__fiber_join_wait(_Atomic uint32_t *thief_mark, bool stuck)
{
    pareng__fiber *next = next_to_run(stuck);
    if (!next)
        return false;
    pareng__fiber *self = sched.current;
    self->join_mark = thief_mark;
    self->next = sched.joiners;
    sched.joiners = self;
    switch_to(next);
    return true;
}

bool pareng__fiber_wake_joiners(void)
{
    pareng__fiber **link = &sched.joiners;
    while (*link) {
        pareng__fiber *f = *link;
        /* Relaxed: the joiner itself reads the mark again with acquire before the result. */
        if (atomic_load_explicit(f->join_mark, memory_order_relaxed) == PARENG__DONE) {
            *link = f->next;
            ready_push(f);
        } else {
            link = &f->next;
        }
    }
    return sched.ready_head != NULL;
}
