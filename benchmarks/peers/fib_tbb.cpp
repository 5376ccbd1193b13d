/*
 * fib_tbb.cpp - the fib peer on oneTBB: pareng's fib with a task_group, run() for the spawn and
 * wait() for the sync, in an arena of WORKERS threads. See peer.h for the contract.
 */
#include <atomic>
#include <cstdint>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#include <tbb/task_scheduler_observer.h>

#include "peer.h"

static std::uint64_t fib(unsigned n, unsigned grain)
{
    if (n < grain)
        return peer_fib_serial(n);
    if (n <= 2)
        return n != 0;
    std::uint64_t a = 0;
    tbb::task_group g;
    g.run([&] { a = fib(n - 1, grain); });
    std::uint64_t b = fib(n - 2, grain);
    g.wait();
    return a + b;
}

/* Pins each thread that joins the arena where pareng pins the worker of its slot. */
class pinning_observer : public tbb::task_scheduler_observer {
public:
    explicit pinning_observer(tbb::task_arena &arena) : tbb::task_scheduler_observer(arena)
    {
        observe(true);
    }
    void on_scheduler_entry(bool) override
    {
        peer_pin_thread(static_cast<unsigned>(tbb::this_task_arena::current_thread_index()));
    }
};

/* Every one of the arena's threads runs one of these at once: when they all return, the pool
 * exists and every thread was pinned. A thread that never comes (fewer were granted) must not
 * hang the peer, so the wait gives up after a second. */
static void gather_threads(tbb::task_arena &arena, unsigned workers)
{
    std::atomic<unsigned> arrived{0};
    arena.execute([&] {
        tbb::task_group g;
        for (unsigned i = 0; i < workers; i++)
            g.run([&] {
                arrived++;
                double deadline = peer_seconds() + 1;
                while (arrived.load() < workers && peer_seconds() < deadline) {
                }
            });
        g.wait();
    });
}

int main(int argc, char **argv)
{
    peer_args args;
    int rc = peer_parse_args(argc, argv, "tbb", &args);
    if (rc)
        return rc;
    if (peer_placement(args.workers) < 0)
        return 1;
    tbb::global_control threads(tbb::global_control::max_allowed_parallelism, args.workers);
    tbb::task_arena arena(static_cast<int>(args.workers));
    arena.initialize();
    pinning_observer pinning(arena);
    gather_threads(arena, args.workers);

    std::uint64_t result = 0;
    double t0 = peer_seconds();
    arena.execute([&] { result = fib(args.n, args.grain); });
    double seconds = peer_seconds() - t0;
    return peer_report(result, seconds);
}
