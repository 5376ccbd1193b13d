/*
 * test_deque.c - the split deque alone (engine/deque.c), without workers or an engine: owner
 * order, empty and full, steal order and share requests, then stress with one owner and
 * several thieves, as processes (the engine's real setting) and as threads (so that
 * ThreadSanitizer can check the memory orders). Every item must be taken exactly once.
 */
#include "internal.h"
#include "testing.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define THIEVES 3

/* One deque in a MAP_SHARED region, so forked thieves see it at the same address. */
typedef struct fixture {
    void *region;
    size_t size;
    pareng__worker *w;
} fixture;

static fixture fixture_make(unsigned capacity)
{
    size_t header = sizeof(pareng__arena) + sizeof(pareng__worker);
    header = (header + 63) / 64 * 64;
    fixture f = {.size = header + (size_t)capacity * sizeof(pareng_frame)};
    f.region = mmap(NULL, f.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(f.region != MAP_FAILED);
    pareng__arena *a = f.region;
    a->n_workers = 1;
    a->lanes_per_worker = 1;
    f.w = &a->lanes[0];
    f.w->arena = a;
    pareng__deque_init(f.w, (pareng_frame *)(void *)((char *)f.region + header), capacity);
    return f;
}

static void fixture_free(fixture *f)
{
    munmap(f->region, f->size);
}

/* The owner's push as the inline spawn and its slow path (pareng__spawn_slow) do it; NULL
 * when full. */
static pareng_frame *owner_push(pareng__worker *w, pareng_frame *h, uint64_t id)
{
    if (h >= w->pub.pareng__end)
        return NULL;
    bool slow = h >= __atomic_load_n(&w->pub.pareng__spawn_limit, __ATOMIC_RELAXED);
    if (slow)
        pareng__deque_populate(w, h);
    memcpy(h->pareng__data, &id, sizeof id);
    if (slow)
        pareng__deque_push_slow(w, h);
    return h + 1;
}

/* The owner's pop of the top frame h - 1 as sync does it: true if the owner has it, false if
 * a thief took it (then wait for the thief to finish with it, as leapfrogging would). */
static bool owner_pop(pareng__worker *w, pareng_frame *h)
{
    pareng_frame *t = h - 1;
    if (pareng__is_private(&w->pub, t) || pareng__deque_reclaim(w, h))
        return true;
    while (atomic_load_explicit(&t->pareng__thief, memory_order_acquire) != PARENG__DONE)
        sched_yield();
    atomic_store_explicit(&t->pareng__thief, 0, memory_order_relaxed);
    return false;
}

static uint64_t frame_id(const pareng_frame *f)
{
    uint64_t id;
    memcpy(&id, f->pareng__data, sizeof id);
    return id;
}

static void test_owner_order_is_lifo(void)
{
    fixture f = fixture_make(16);
    pareng_frame *h = f.w->base;
    for (uint64_t id = 1; id <= 5; id++)
        h = owner_push(f.w, h, id);
    for (uint64_t id = 5; id >= 1; id--) {
        CU_ASSERT_TRUE(owner_pop(f.w, h));
        h--;
        CU_ASSERT_EQUAL(frame_id(h), id);
    }
    CU_ASSERT_PTR_EQUAL(h, f.w->base);
    fixture_free(&f);
}

static void test_empty_deque_gives_nothing_and_asks(void)
{
    fixture f = fixture_make(16);
    CU_ASSERT_PTR_NULL(pareng__deque_steal(f.w, 1));
    CU_ASSERT_EQUAL(atomic_load(&f.w->pub.pareng__private_floor), PARENG__SHARE_REQUEST);
    CU_ASSERT_FALSE(pareng__deque_has_shared(f.w));
    fixture_free(&f);
}

static void test_full_deque_refuses_push(void)
{
    fixture f = fixture_make(4);
    pareng_frame *h = f.w->base;
    for (uint64_t id = 0; id < 4; id++) {
        h = owner_push(f.w, h, id);
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    }
    CU_ASSERT_PTR_NULL(owner_push(f.w, h, 4));
    /* and it still pops everything back */
    for (int i = 0; i < 4; i++, h--)
        CU_ASSERT_TRUE(owner_pop(f.w, h));
    fixture_free(&f);
}

static void test_thief_takes_oldest_and_owner_shares_on_request(void)
{
    fixture f = fixture_make(16);
    pareng_frame *h = f.w->base;
    for (uint64_t id = 1; id <= 6; id++)
        h = owner_push(f.w, h, id);
    /* the first push after an empty deque is published: that is all a thief can see */
    pareng_frame *stolen = pareng__deque_steal(f.w, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(stolen);
    CU_ASSERT_EQUAL(frame_id(stolen), 1);
    CU_ASSERT_EQUAL(atomic_load(&stolen->pareng__thief), 2);
    CU_ASSERT_PTR_NULL(pareng__deque_steal(f.w, 1)); /* nothing shared: asks */
    CU_ASSERT_FALSE(pareng__is_private(&f.w->pub, h - 1));
    /* the owner's next pop serves the request: the older half of frames 2..5 is shared,
     * the top frame (6) stays private and is popped */
    CU_ASSERT_TRUE(owner_pop(f.w, h));
    h--;
    CU_ASSERT_EQUAL(frame_id(h), 6);
    pareng_frame *next = pareng__deque_steal(f.w, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    CU_ASSERT_EQUAL(frame_id(next), 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pareng__deque_steal(f.w, 2));
    CU_ASSERT_PTR_NULL(pareng__deque_steal(f.w, 1));
    fixture_free(&f);
}

/* A loop that spawns and has not synced yet: a request is served at the owner's next push. */
static void test_owner_shares_at_push_on_request(void)
{
    fixture f = fixture_make(16);
    pareng_frame *h = f.w->base;
    for (uint64_t id = 1; id <= 4; id++)
        h = owner_push(f.w, h, id);
    CU_ASSERT_EQUAL(frame_id(pareng__deque_steal(f.w, 1)), 1); /* the published one */
    CU_ASSERT_PTR_NULL(pareng__deque_steal(f.w, 1));            /* asks */
    /* the next push shares the older half of frames 2..5, with no pop in between */
    h = owner_push(f.w, h, 5);
    pareng_frame *next = pareng__deque_steal(f.w, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    CU_ASSERT_EQUAL(frame_id(next), 2);
    CU_ASSERT_EQUAL(frame_id(pareng__deque_steal(f.w, 1)), 3);
    /* served: the next push shares nothing until a thief asks again */
    CU_ASSERT_PTR_NOT_NULL_FATAL(h = owner_push(f.w, h, 6));
    CU_ASSERT_FALSE(pareng__deque_has_shared(f.w));
    /* and the owner pops 6, 5, 4 as its own */
    for (int i = 0; i < 3; i++, h--)
        CU_ASSERT_TRUE(owner_pop(f.w, h));
    fixture_free(&f);
}

static void test_reclaim_takes_shared_frame_back(void)
{
    fixture f = fixture_make(16);
    pareng_frame *h = owner_push(f.w, f.w->base, 7); /* published, so shared */
    CU_ASSERT_TRUE(pareng__deque_has_shared(f.w));
    CU_ASSERT_TRUE(owner_pop(f.w, h)); /* nobody stole it: reclaimed */
    CU_ASSERT_FALSE(pareng__deque_has_shared(f.w));
    CU_ASSERT_PTR_NULL(pareng__deque_steal(f.w, 1));
    fixture_free(&f);
}

static void test_pop_of_stolen_frame_reports_it(void)
{
    fixture f = fixture_make(16);
    pareng_frame *h = owner_push(f.w, f.w->base, 1);
    h = owner_push(f.w, h, 2);
    pareng_frame *stolen = pareng__deque_steal(f.w, 3);
    CU_ASSERT_EQUAL_FATAL(frame_id(stolen), 1);
    atomic_store(&stolen->pareng__thief, PARENG__DONE);
    CU_ASSERT_TRUE(owner_pop(f.w, h)); /* 2 was private */
    CU_ASSERT_FALSE(owner_pop(f.w, h - 1)); /* 1 was stolen */
    CU_ASSERT_EQUAL(atomic_load(&stolen->pareng__thief), 0);
    fixture_free(&f);
}

/* ---- stress: one owner, THIEVES thieves, each item taken exactly once ---------------------- */

typedef struct stress {
    _Atomic unsigned stop;
    _Atomic unsigned thieves_ready;
    _Atomic uint64_t stolen;
    uint64_t items;
    _Atomic unsigned char *taken; /* [items] */
} stress;

static void take(stress *s, uint64_t id)
{
    atomic_fetch_add_explicit(&s->taken[id], 1, memory_order_relaxed);
}

static void thief_loop(stress *s, pareng__worker *w, unsigned index)
{
    atomic_fetch_add_explicit(&s->thieves_ready, 1, memory_order_relaxed);
    while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
        pareng_frame *f = pareng__deque_steal(w, index);
        if (!f) {
            sched_yield();
            continue;
        }
        take(s, frame_id(f));
        atomic_fetch_add_explicit(&s->stolen, 1, memory_order_relaxed);
        atomic_store_explicit(&f->pareng__thief, PARENG__DONE, memory_order_release);
    }
}

/* Pushes the items in bursts and pops in bursts (both of random size), so that the owner
 * crosses into the shared part often and thieves race it there. */
static void owner_loop(stress *s, pareng__worker *w)
{
    uint64_t rng = 12345, next = 0;
    pareng_frame *h = w->base;
    /* On a loaded machine the owner could be done before a thief ever ran: no race tested. */
    while (atomic_load_explicit(&s->thieves_ready, memory_order_relaxed) < THIEVES)
        sched_yield();
    while (next < s->items || h > w->base) {
        unsigned burst = (unsigned)(pareng__random(&rng) % 48) + 1;
        for (unsigned i = 0; i < burst && next < s->items; i++) {
            pareng_frame *pushed = owner_push(w, h, next);
            if (!pushed)
                break;
            h = pushed;
            next++;
        }
        unsigned pops = (unsigned)(pareng__random(&rng) % 48) + 1;
        for (unsigned i = 0; i < pops && h > w->base; i++, h--)
            if (owner_pop(w, h))
                take(s, frame_id(h - 1));
        /* Likewise while no thief got anything: let them onto a core the owner may share. */
        if (!atomic_load_explicit(&s->stolen, memory_order_relaxed))
            sched_yield();
    }
}

static uint64_t stress_items(void)
{
    const char *env = getenv("PARENG_STRESS_ITEMS");
    return env ? strtoull(env, NULL, 10) : 10000000u;
}

static stress *stress_make(void)
{
    stress *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(s != MAP_FAILED);
    s->items = stress_items();
    s->taken = mmap(NULL, s->items, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(s->taken != MAP_FAILED);
    return s;
}

static void stress_check_and_free(stress *s)
{
    uint64_t wrong = 0, first_wrong = UINT64_MAX;
    for (uint64_t id = 0; id < s->items; id++)
        if (s->taken[id] != 1) {
            wrong++;
            if (first_wrong == UINT64_MAX)
                first_wrong = id;
        }
    if (wrong)
        fprintf(stderr, "\n%llu items not taken exactly once (first: %llu, taken %u times)\n",
                (unsigned long long)wrong, (unsigned long long)first_wrong,
                s->taken[first_wrong]);
    CU_ASSERT_EQUAL(wrong, 0);
    /* the stress only means something if thieves really competed */
    CU_ASSERT(atomic_load(&s->stolen) > 0);
    CU_ASSERT(atomic_load(&s->stolen) < s->items);
    printf("(%llu items, %llu stolen) ", (unsigned long long)s->items,
           (unsigned long long)atomic_load(&s->stolen));
    munmap(s->taken, s->items);
    munmap(s, sizeof *s);
}

static void test_stress_across_processes(void)
{
    fixture f = fixture_make(256);
    stress *s = stress_make();
    pid_t thieves[THIEVES];
    for (unsigned i = 0; i < THIEVES; i++) {
        thieves[i] = fork();
        CU_ASSERT_FATAL(thieves[i] >= 0);
        if (thieves[i] == 0) {
            thief_loop(s, f.w, i + 1);
            _exit(0);
        }
    }
    owner_loop(s, f.w);
    atomic_store_explicit(&s->stop, 1, memory_order_release);
    for (unsigned i = 0; i < THIEVES; i++) {
        int status;
        CU_ASSERT_EQUAL(waitpid(thieves[i], &status, 0), thieves[i]);
        CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    stress_check_and_free(s);
    fixture_free(&f);
}

typedef struct thief_args {
    stress *s;
    pareng__worker *w;
    unsigned index;
} thief_args;

static void *thief_thread(void *p)
{
    thief_args *a = p;
    thief_loop(a->s, a->w, a->index);
    return NULL;
}

static void test_stress_across_threads(void)
{
    fixture f = fixture_make(256);
    stress *s = stress_make();
    pthread_t threads[THIEVES];
    thief_args args[THIEVES];
    for (unsigned i = 0; i < THIEVES; i++) {
        args[i] = (thief_args){s, f.w, i + 1};
        CU_ASSERT_FATAL(pthread_create(&threads[i], NULL, thief_thread, &args[i]) == 0);
    }
    owner_loop(s, f.w);
    atomic_store_explicit(&s->stop, 1, memory_order_release);
    for (unsigned i = 0; i < THIEVES; i++)
        pthread_join(threads[i], NULL);
    stress_check_and_free(s);
    fixture_free(&f);
}

int main(void)
{
    CU_TestInfo unit[] = {
        {"owner push/pop is LIFO", test_owner_order_is_lifo},
        {"empty deque: no steal, share request", test_empty_deque_gives_nothing_and_asks},
        {"full deque refuses a push", test_full_deque_refuses_push},
        {"thief takes oldest; owner shares on request",
         test_thief_takes_oldest_and_owner_shares_on_request},
        {"a loop that has not synced shares at its next push", test_owner_shares_at_push_on_request},
        {"owner reclaims an unstolen shared frame", test_reclaim_takes_shared_frame_back},
        {"pop of a stolen frame reports it", test_pop_of_stolen_frame_reports_it},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo stress_tests[] = {
        {"1 owner + 3 thief processes, each item once", test_stress_across_processes},
        {"1 owner + 3 thief threads, each item once", test_stress_across_threads},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("deque", unit),
        TESTING_SUITE("deque stress", stress_tests),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
