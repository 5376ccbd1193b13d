/*
 * cutoff.c - automatic granularity: which tasks run as their serial clone.
 *
 * Every task written with PARENG_TASK_n has a parallel clone, whose spawns push frames, and a
 * serial one, whose spawns are plain calls (pareng.h; and a third for runs that make every
 * spawn a task). A task entered at pareng__cutoff or more call levels below the root or below
 * a stolen task runs its serial clone, and so does everything it calls: those subtrees cost
 * what plain C costs. Above the
 * cutoff every spawn is a frame that a thief may take, so the parallelism stays exposed where
 * it is worth taking (near a steal, the big subtrees); a steal starts the count again, so a
 * thief cuts what it took just as finely.
 *
 * The depth comes from no user. With PARENG_CUTOFF_AUTO each worker times its serial runs and
 * moves its own cutoff: deeper when a thief asked for work during a run or a run took longer
 * than SERIAL_RUN_LONG_NS (a hungry thief waits that long, since nothing inside a serial run
 * can be stolen), shallower, one level at a time, when runs take less than
 * SERIAL_RUN_SHORT_NS (the spawns above them cost a visible share). It is the adaptive cut-off
 * of Duran, Corbalan and Ayguade ("An adaptive cut-off for task parallelism", SC 2008), with a
 * time measure instead of their profile of task counts, and with the steal as the reset of
 * TBB's auto_partitioner. Two clock reads per serial run (40 ns), each run about 10 us.
 *
 * A depth cuts a tree well only when deeper subtrees are smaller, as in divide and conquer,
 * where EVERY_SPAWN_DEPTH levels below a steal leave a 2^-48 part of it. In some trees they
 * are not: in UTS's binomial trees every node's subtree has the same law at any depth (most
 * are leaves, a few hold a large part of the tree), and a chain of spawns keeps all of its
 * work at its deepest levels. There any depth lets serial runs hold work that no thief can
 * take, and going deeper does not shorten them; so when the runs still call for a cutoff that
 * deep, every worker makes every spawn a task for the rest of the run (the tasks' own cost is
 * then large beside a spawn's, or the tree would not have gone that deep with long runs): the
 * first to see it tells the others through the arena, so that none goes on holding work in
 * serial runs while it learns the same on its own. A
 * run of a divide-and-conquer tree never gets there (fib(n) halves its work every 1.44 levels):
 * its figures do not change.
 *
 * Neither rule frees a serial run that has begun: in UTS's binomial trees the one that enters
 * the spine begins a millisecond into the run and holds the tree. So serial runs may run in a
 * clone that looks, at each call, for thieves' requests, and this file splits them
 * (pareng__split_begin, below; docs/design.md, "Splitting a serial run"). The look costs a
 * load and a branch a call: fib's serial runs take 1.4 times as long with it, UTS's, whose
 * calls hash a node, 1.1 times. So the automatic cutoff learns, per task and worker, what
 * a call costs, from SAMPLED_RUNS windows of the task's first serial runs, which look and
 * count their calls down (WINDOW_CALLS, then the clock: pareng__split_begin); the task's later
 * runs look no more. That is
 * heartbeat scheduling's amortisation (Acar et al., PLDI 2018: a poll costs little beside the
 * work between polls) with the work between polls measured instead of assumed. A task marked
 * PARENG_TASK_SPLITTABLE looks whatever its calls and the cutoff.
 *
 * Calls that long are also where a serial run gains nothing: a spawn and its sync cost such a
 * call 8% at most, while the look costs UTS's serial runs 10% and a serial run may hold work
 * that a thief waits for. So once a task's calls are learned long, the worker makes every
 * spawn a task where that task would start a serial run, and, when it is the run's root task,
 * for the rest of the run (the cutoff 0 sends the parallel clone's next calls here too),
 * unless the task's sampled runs asked PARENG_SERIAL(): it may switch to other code there,
 * which only a serial clone runs (the serial one: that code does not look). The run that
 * learned it, begun before the worker knew the task and perhaps holding the tree (UTS's
 * spine), goes on call by call as task trees: each of its next calls is split (window_end,
 * below).
 *
 * Short calls are where a serial run gains, but not always: the serial clone of a task that
 * spawns in a loop keeps the loop's results in memory (the count of spawns is no constant that
 * would make them registers), and every spawn a task, which pushes each child's arguments and
 * runs it at the sync, may cost less; a serial run of a binomial tree's cheap nodes then both
 * runs slower and holds the spine. So a task whose calls are learned short is sampled with
 * every spawn a task: its next serial runs run in the counted clone (every spawn a task, each
 * call counted down), timed (run_sample), and of SAMPLED_RUNS samples the cheapest a call is
 * weighed against the cheapest of its serial windows. Every spawn a task where it costs no
 * more than that (which, for the serial runs, is the splittable clone with its look: only that
 * clone frees a run for thieves), the serial clone below the depth cutoff where it costs more
 * (fib's every spawn a task: 1.4 times the splittable clone's calls). A sample over, the
 * counted clone hands its calls on to where a call below the cutoff goes (a new sample, a serial
 * run, every spawn a task: as the task is learned then); a learning run still under way goes
 * on call by call as task trees meanwhile, whose serial runs are the samples.
 */
#include "internal.h"

#include <limits.h>

/* Between these, a serial run is left alone (docs/design.md, "Automatic granularity"). */
#define SERIAL_RUN_SHORT_NS 5000u
#define SERIAL_RUN_LONG_NS 50000u
/* Where a worker starts. Deeper costs a fresh engine's first small runs the spawns of levels
 * it need not have (fib(35) on 2 workers: 2.58 ms from 20, 2.42 from 10, 2.51 from 6); a
 * first run too coarse corrects itself after one serial run, by as many levels as it was
 * too long (below). */
#define INITIAL_CUTOFF 10u
/* A tree's last levels give short runs whatever the cutoff, and so does a small stolen task:
 * only a run of short ones in a row means the cutoff is too deep, and only where no run was
 * long for a while (a tree whose long runs come among many short ones, UTS's, is not cut too
 * deep: below). One long run is enough to go deeper, as a thief may be waiting. */
#define SHORT_RUNS_TO_COARSEN 16u
#define RUNS_SINCE_LONG_TO_COARSEN 256u
/* Runs that are long this deep below a steal: depth does not cut this tree (above). */
#define EVERY_SPAWN_DEPTH 48u
/* What a task's calls cost is learned from this many windows of its serial runs, each of
 * SERIAL_RUN_SHORT_NS or more, their time split left out (in a shorter one the run's own entry
 * and the clock's reads, 50 to 100 ns here, would count as the calls'; the split tasks' calls
 * are another lane's, which thieves share). */
#define SAMPLED_RUNS 8u
/* Calls at least this long keep looking for thieves while learning, and then make every spawn
 * a task: the look (a load, a branch and the count, under 1 ns) is at most 4% of them, a spawn
 * and its sync (1 to 2 ns) 8%, and much less where the call has its own overhead (UTS's on one
 * worker: none). Below, a tree whose serial runs hold work (UTS's) loses far more: T3L on 2
 * workers, its 47 ns calls learned short at 50 ns, ran at 0.76 of serial C, at 0.50 when
 * learned long (docs/performance.md). fib's take 2 ns, UTS's 47 to 80 ns (by the machine),
 * BOTS nqueens' 120 ns. */
#define SPLIT_MIN_CALL_NS 25u

/* Calls of a learning serial run between two looks at the clock. A window shorter than
 * SERIAL_RUN_SHORT_NS goes on for as many calls again (fib's 128 calls take 0.3 us). */
#define WINDOW_CALLS 128u
/* ... up to this many: a window whose time went to its splits (another lane's) is not timed
 * for ever (its calls then count as short). */
#define WINDOW_CALLS_MOST (1u << 24)
/* A sample of the counted clone is timed until it is SERIAL_RUN_SHORT_NS long, or until the
 * lane shares a frame (a thief then takes part of its work, whose calls it does not count) or
 * a spawn takes the slow path (which may map pages); one shorter than this is left out, as its
 * entry and the clock's reads (50 to 100 ns) would count as its calls'. When this many are
 * left out (a tree whose serial runs are mostly leaves, a binomial one, leaves out 200 to 700
 * before its 8th sample), learning stops: the serial clone, as before it. */
#define SAMPLE_MIN_NS 1000u
#define EVERY_SAMPLES_MOST 4096u

void pareng__cutoff_init(pareng__worker *w)
{
    w->pub.pareng__cutoff = PARENG_CUTOFF_NONE;
    w->cut = (pareng__granularity){.learned_cutoff = INITIAL_CUTOFF,
                                   .runs_since_long = RUNS_SINCE_LONG_TO_COARSEN,
                                   .cutoff_before_deeper = INITIAL_CUTOFF,
                                   .run_first_cutoff = INITIAL_CUTOFF};
}

void pareng__cutoff_begin_run(pareng__arena *a, uint32_t cutoff)
{
    a->run_cutoff = cutoff;
    a->run_seq++;
}

/* Has another worker found that depth does not cut this run's tree? Relaxed: a hint, read at
 * the ends of serial runs and at steals; run_seq is this worker's own copy of the run's. */
static bool told_every_spawn(const pareng__worker *w)
{
    return atomic_load_explicit(&w->arena->every_spawn_run, memory_order_relaxed) ==
           w->cut.run_seen;
}

void pareng__cutoff_take(pareng__worker *w)
{
    /* Written by the caller before its release store of the root's READY, which this worker
     * (or the worker it stole from, transitively) acquired: a plain read is ordered. */
    pareng__arena *a = w->arena;
    uint32_t cutoff = a->run_cutoff;
    if (w->cut.run_seen != a->run_seq) { /* a new run: its tree may be cut by depth again */
        /* The last run this lane took part in, with the cutoff adapting, made no serial run
         * here: the cutoff lay below every task the lane ran, where nothing moves it again
         * (only the ends of serial runs do), and the next smaller tree would make every spawn
         * a task. The last step down went too far: a run long because its worker was
         * preempted, not because of its subtree, looks the same to the clock (one of 2 ms
         * that took 13 ms on a loaded machine: 8 levels at once). Undo that step. */
        if (w->cut.cutoff_adapts && !w->cut.every_spawn && !w->cut.ran_serial)
            w->cut.learned_cutoff = w->cut.cutoff_before_deeper;
        w->cut.ran_serial = false;
        w->cut.run_seen = a->run_seq;
        w->cut.every_spawn = false;
        w->cut.run_first_cutoff = w->cut.learned_cutoff;
    }
    w->cut.every_spawn |= told_every_spawn(w);
    w->cut.cutoff_adapts = cutoff == PARENG_CUTOFF_AUTO;
    w->pub.pareng__cutoff = !w->cut.cutoff_adapts ? cutoff
                            : w->cut.every_spawn  ? PARENG_CUTOFF_NONE
                                                  : w->cut.learned_cutoff;
}

/* Keeps `took` for `calls` in *best_ns for *best_calls when it is less a call (or the first). */
static void keep_cheapest(uint64_t *best_ns, uint64_t *best_calls, uint64_t took, unsigned calls)
{
    if (!*best_calls || took * *best_calls < *best_ns * calls) {
        *best_ns = took;
        *best_calls = calls;
    }
}

/* A sampled run of `info`'s task, of `calls` calls. Of SAMPLED_RUNS of them the cheapest a call
 * counts (a preempted run, or one that fills a fresh page of the deque, only looks longer):
 * calls long from there, or short in a task that asked PARENG_SERIAL() (which may switch to
 * other code there) or looks whatever they cost (PARENG_TASK_SPLITTABLE); short calls of any
 * other task are sampled with every spawn a task (learn_every). */
static void learn_split(pareng__task_info *info, unsigned calls, uint64_t took, bool serial_asked)
{
    info->serial_asked |= serial_asked;
    keep_cheapest(&info->serial_ns, &info->serial_calls, took, calls);
    bool calls_short = info->serial_ns < (uint64_t)SPLIT_MIN_CALL_NS * info->serial_calls;
    if (calls_short && (info->serial_asked || info->marked))
        info->split = PARENG__SPLIT_NO;
    else if (++info->sampled_runs == SAMPLED_RUNS)
        info->split = calls_short ? PARENG__SPLIT_SAMPLING : PARENG__SPLIT_YES;
}

/* A sample of `info`'s task's calls with every spawn a task (run_sample). Of SAMPLED_RUNS of
 * them the cheapest a call is weighed against the serial runs': every spawn a task where it
 * costs no more (SPLIT_YES: a spawn that pushes a frame may cost less than one whose result
 * waits in a serial run, and a frame is never held from a thief), else the serial clone below
 * the depth cutoff (SPLIT_NO). */
static void learn_every(pareng__task_info *info, unsigned calls, uint64_t took)
{
    if (took < SAMPLE_MIN_NS) {
        if (++info->every_left_out == EVERY_SAMPLES_MOST)
            info->split = PARENG__SPLIT_NO;
        return;
    }
    keep_cheapest(&info->every_ns, &info->every_calls, took, calls);
    if (++info->every_samples == SAMPLED_RUNS)
        info->split = info->every_ns * info->serial_calls <= info->serial_ns * info->every_calls
                          ? PARENG__SPLIT_YES
                          : PARENG__SPLIT_NO;
}

/* The lane a serial run of lane w is split into: NULL in an IO engine, whose lanes are its
 * fibers', and above the deepest split. */
static pareng__worker *next_lane(pareng__worker *w)
{
    pareng__arena *a = w->arena;
    unsigned above = w->lane_id % a->lanes_per_worker + 1;
    return a->io_depth || above == a->lanes_per_worker ? NULL : pareng__lane(a, w->index, above);
}

static bool learning(const pareng__worker *w, const pareng__task_info *info)
{
    return w->cut.cutoff_adapts && info->split == PARENG__SPLIT_LEARNING;
}

/* Learned: the task's serial runs make every spawn a task (its calls are long, or cost no more
 * as tasks, and it did not ask PARENG_SERIAL()). */
static bool learned_every_spawn(const pareng__task_info *info)
{
    return info->split == PARENG__SPLIT_YES && !info->serial_asked;
}

static void window_open(pareng__worker *w, uint64_t now)
{
    w->window.earlier_calls += w->window.calls;
    w->window.calls = 0;
    w->window.started_ns = now;
    w->window.split_ns = w->split_ns;
}

/* The splittable clone counts `calls` down, then calls pareng__split_begin. */
static void window_arm(pareng__worker *w, unsigned calls)
{
    w->window.armed = calls;
    w->pub.pareng__splittable_left = calls;
}

/* The calls of the window so far: those before its count down was last armed, and those
 * counted down since. */
static unsigned window_calls(const pareng__worker *w)
{
    return w->window.calls + w->window.armed - w->pub.pareng__splittable_left;
}

/* A window whose count ran down (its calls all in window.calls), `own_ns` long: shorter than
 * SERIAL_RUN_SHORT_NS, it goes on for as many calls again, so that the clock's reads and the
 * run's entry do not count as its calls' (up to WINDOW_CALLS_MOST). */
static bool window_goes_on(pareng__worker *w, uint64_t own_ns)
{
    if (own_ns >= SERIAL_RUN_SHORT_NS || w->window.calls >= WINDOW_CALLS_MOST)
        return false;
    window_arm(w, w->window.calls);
    return true;
}

/* The time of the window's own calls: what the tasks split from it took is another lane's. */
static uint64_t window_own_ns(const pareng__worker *w, uint64_t now)
{
    return now - w->window.started_ns - (w->split_ns - w->window.split_ns);
}

/* Does a learning serial run of `info`'s task, the task now learned, go on call by call as task
 * trees? Where every spawn is to be a task, and where it may be (sampling: their serial runs are
 * the samples; a run that holds a binomial tree's spine, on one worker, would otherwise hold
 * the samples too). Asked again at each call, so that calls learned short after all go on
 * serially. */
static bool splits_each_call(pareng__worker *w, const pareng__task_info *info)
{
    bool every_spawn = learned_every_spawn(info) || info->split == PARENG__SPLIT_SAMPLING;
    return w->cut.cutoff_adapts && every_spawn && next_lane(w) != NULL;
}

/* The splittable clone counted a window's calls down: learn what the task's calls cost once
 * the window is long enough to time (else it goes on), and, once they are learned long, split
 * the rest of the run call by call. A serial run begun before the worker knew the task may hold
 * most of its tree (UTS's binomial trees: the run that enters the spine begins a millisecond
 * into the run); learning within it, not at its end, frees what it has not called yet. */
static void window_end(pareng__worker *w)
{
    pareng__window *window = &w->window;
    pareng__task_info *info = window->info;
    window->calls += window->armed;
    if (!learning(w, info)) {
        window->split_every_call = splits_each_call(w, info);
        window_arm(w, window->split_every_call ? 1 : UINT_MAX);
        return;
    }
    uint64_t now = pareng__now_ns(), own_ns = window_own_ns(w, now);
    if (window_goes_on(w, own_ns))
        return;
    learn_split(info, window->calls, own_ns, w->cut.serial_asked);
    window_open(w, now);
    window->split_every_call = splits_each_call(w, info);
    window_arm(w, window->split_every_call ? 1 : learning(w, info) ? WINDOW_CALLS : UINT_MAX);
}

/* The sample's `calls` of the counted clone, timed at `now`. */
static void sample_end(pareng__worker *w, unsigned calls, uint64_t now)
{
    pareng__window *window = &w->window;
    window->every_sample = false;
    window_arm(w, 1); /* the clone's next call is handed on (pareng__sample_counted) */
    learn_every(window->info, calls, now - window->started_ns);
}

int pareng__sample_counted(pareng_worker *pub)
{
    pareng__worker *w = pareng__self(pub);
    pareng__window *window = &w->window;
    if (window->every_sample) {
        uint64_t now = pareng__now_ns();
        window->calls += window->armed;
        if (window_goes_on(w, now - window->started_ns))
            return 1;
        sample_end(w, window->calls, now);
    }
    window_arm(w, 1); /* and so does the clone's next call */
    return 0;
}

void pareng__cutoff_sample_cut(pareng__worker *w)
{
    if (w->window.every_sample)
        sample_end(w, window_calls(w), pareng__now_ns());
}

/* A serial run of a task whose calls were learned short, and are being sampled: every spawn a
 * task in its subtree, in the counted clone. It holds no work from thieves, as the serial run
 * would. */
static void run_sample(pareng__worker *w, pareng_frame *h, pareng__task_info *info,
                       pareng_frame *task)
{
    pareng_worker *pub = &w->pub;
    pareng__window outer_window = w->window;
    unsigned outer_left = pub->pareng__splittable_left;
    w->window = (pareng__window){.info = info, .every_sample = true};
    window_open(w, pareng__now_ns());
    window_arm(w, WINDOW_CALLS);
    info->run_counted(pub, h, task);
    if (w->window.every_sample)
        sample_end(w, window_calls(w), pareng__now_ns());
    w->window = outer_window;
    pub->pareng__splittable_left = outer_left;
}

/* PARENG_SERIAL() in the splittable clone (pareng.h) */
int pareng__serial_asked(pareng_worker *pub)
{
    pareng__self(pub)->cut.serial_asked = true;
    return 1;
}

void pareng__run_serial(pareng_worker *pub, pareng_frame *h, pareng_task_fn run,
                        pareng__task_info *info, pareng_frame *task)
{
    pareng__worker *w = pareng__self(pub);
    if (w->cut.cutoff_adapts && !w->cut.every_spawn && info->split == PARENG__SPLIT_SAMPLING) {
        run_sample(w, h, info, task);
        return;
    }
    if (w->cut.cutoff_adapts &&
        (w->cut.every_spawn || learned_every_spawn(info))) {
        /* The run's own task: every spawn a task for the rest of the run on this lane, and the
         * parallel clone's tasks still under way here come back with their next calls (the
         * cutoff 0). Another task, which the run calls among others: this subtree alone, so
         * that the others keep their cutoff (and their PARENG_SERIAL()). */
        bool rest_of_run = w->cut.every_spawn || info->run == w->arena->root.pareng__run;
        unsigned cutoff = pub->pareng__cutoff;
        w->cut.every_spawn = rest_of_run;
        pub->pareng__cutoff = PARENG_CUTOFF_NONE;
        info->run(pub, h, task);
        pub->pareng__cutoff = rest_of_run ? 0 : cutoff;
        return;
    }
    /* Learned, a task's runs look no more: short calls would pay for the look, and long ones
     * that asked PARENG_SERIAL() go to the task's own serial code at once, where nothing looks
     * (nqueens 13 on 2 workers: 1.2% faster in the serial clone; a request made before the run
     * is served at the spawns around it). */
    bool splittable = info->marked || learning(w, info);
    /* a run inside an overflowed spawn of another run is that one's too (worker.c) */
    bool outer_asked = w->cut.serial_asked;
    w->cut.serial_asked = false;
    pareng__window outer_window = w->window;
    unsigned outer_left = pub->pareng__splittable_left;
    uint64_t split_before = w->split_ns, started = pareng__now_ns();
    if (splittable) {
        w->window = (pareng__window){.info = info};
        window_open(w, started);
        window_arm(w, learning(w, info) ? WINDOW_CALLS : UINT_MAX);
    }
    pareng_frame *outer_base = w->serial_base;
    w->serial_base = h;
    w->serial_runs_open++; /* its frames hold results, not tasks: none may be shared */
    (splittable ? info->run_splittable : run)(pub, h, task);
    w->serial_runs_open--;
    w->serial_base = outer_base;
    uint64_t ended = pareng__now_ns(), took = ended - started;
    pareng__count(&w->counters, PARENG__SERIAL_RUNS, 1);
    w->cut.ran_serial = true;
    /* the calls of the window the run ended in, and of the whole run */
    unsigned last_window_calls = window_calls(w);
    unsigned run_calls = splittable ? last_window_calls + w->window.earlier_calls : 0;
    if (splittable && learning(w, info) && last_window_calls) {
        uint64_t own_ns = window_own_ns(w, ended);
        if (own_ns >= SERIAL_RUN_SHORT_NS)
            learn_split(info, last_window_calls, own_ns, w->cut.serial_asked);
    }
    w->window = outer_window;
    /* a run inside an overflowed spawn of another run (worker.c): its calls are the outer
     * window's too, as its time is */
    w->window.calls += run_calls;
    pub->pareng__splittable_left = outer_left;
    w->cut.serial_asked |= outer_asked;
    uint64_t split_ns = w->split_ns - split_before;
    /* A split run's time is partly the split task's, run in parallel: it says nothing of
     * what a serial run below this cutoff costs. */
    if (!w->cut.cutoff_adapts || split_ns)
        return;
    if (w->cut.runs_since_long < RUNS_SINCE_LONG_TO_COARSEN)
        w->cut.runs_since_long++;
    if (told_every_spawn(w)) {
        w->cut.every_spawn = true;
        w->pub.pareng__cutoff = PARENG_CUTOFF_NONE;
        return;
    }
    /* A thief asked this lane for work while the run went on: it waited for the run's end.
     * Relaxed, as every read of the floor: the request is a hint (deque.c). */
    bool thief_waited = atomic_load_explicit(&w->pub.pareng__private_floor,
                                             memory_order_relaxed) == PARENG__SHARE_REQUEST;
    if (took > SERIAL_RUN_LONG_NS || thief_waited) {
        /* A level down halves a binary tree's subtrees (fib's by 1.6): go as many levels down
         * as the run was too long by halvings, at least one. */
        unsigned levels = 1;
        for (uint64_t t = took; t > 2 * SERIAL_RUN_LONG_NS; t /= 2)
            levels++;
        w->cut.short_runs = 0;
        if (w->cut.learned_cutoff + levels > EVERY_SPAWN_DEPTH) {
            /* The next run, perhaps of another tree, starts from where this one did. */
            w->cut.every_spawn = true;
            w->cut.learned_cutoff = w->cut.run_first_cutoff;
            w->pub.pareng__cutoff = PARENG_CUTOFF_NONE;
            atomic_store_explicit(&w->arena->every_spawn_run, w->cut.run_seen,
                                  memory_order_relaxed);
            return;
        }
        w->cut.cutoff_before_deeper = w->cut.learned_cutoff;
        w->cut.learned_cutoff += levels;
        w->cut.runs_since_long = took > SERIAL_RUN_LONG_NS ? 0 : w->cut.runs_since_long;
    } else if (took >= SERIAL_RUN_SHORT_NS) {
        w->cut.short_runs = 0;
    } else if (++w->cut.short_runs >= SHORT_RUNS_TO_COARSEN &&
               w->cut.runs_since_long >= RUNS_SINCE_LONG_TO_COARSEN) {
        if (w->cut.learned_cutoff > 1)
            w->cut.learned_cutoff--;
        w->cut.short_runs = 0;
    }
    w->pub.pareng__cutoff = w->cut.learned_cutoff;
}

pareng_worker *pareng__split_begin(pareng_worker *pub, pareng_frame **lane_h,
                                   const pareng__task_info *task)
{
    pareng__worker *w = pareng__self(pub);
    pareng__arena *a = w->arena;
    if (!pub->pareng__splittable_left)
        window_end(w);
    /* Relaxed, as every read of the floor: the request is a hint (deque.c) */
    if (atomic_load_explicit(&pub->pareng__private_floor, memory_order_relaxed) ==
        PARENG__SHARE_REQUEST) {
        /* Served here, or refused: a thief that is still hungry asks again. */
        pareng_frame *base = w->serial_base;
        pareng__deque_drop_request(w);
        /* Tasks that the lane spawned before the run, still private, are older and bigger
         * than any inside it (the split deque shares the oldest first for the same reason).
         * Not while spawns overflow: a run inside an overflowed spawn (pareng__spawn_slow)
         * lies past the deque's end, and their results wait there (deque.c). */
        if (!w->overflowing && !w->all_stolen && (uint32_t)(base - w->base) > w->split) {
            pareng__deque_share_all(w, base);
            return NULL;
        }
    } else if (!w->window.split_every_call || task != w->window.info) {
        return NULL; /* only the calls of the task learned long: others may be short */
    }
    pareng__worker *lane = next_lane(w);
    if (!lane)
        return NULL;
    unsigned above = lane->lane_id % a->lanes_per_worker;
    pareng__worker *lane0 = pareng__lane(a, w->index, 0);
    /* Relaxed: thieves look at lanes [0, lanes_used); a frame of the new one is published by
     * its tail_split (internal.h) */
    if (atomic_load_explicit(&lane0->lanes_used, memory_order_relaxed) <= above)
        atomic_store_explicit(&lane0->lanes_used, above + 1, memory_order_relaxed);
    pareng__deque_drop_request(lane); /* an old one, made while it was unused */
    lane->cut = w->cut;
    lane->pub.pareng__cutoff = w->pub.pareng__cutoff;
    pareng__count(&w->counters, PARENG__SPLITS, 1);
    lane->split_began_ns = pareng__now_ns();
    *lane_h = lane->base; /* empty, all below stolen: its first spawn is published at once */
    return &lane->pub;
}

void pareng__split_end(pareng_worker *lane_pub)
{
    pareng__worker *lane = pareng__self(lane_pub), *w = lane - 1; /* a worker's lanes in a row */
    pareng__deque_reset(lane);
    /* what the split task's serial runs learned is the lane's below again; the run it was split
     * from asked PARENG_SERIAL() if it did before the split, or the split task did */
    bool serial_asked = w->cut.serial_asked;
    w->cut = lane->cut;
    w->cut.serial_asked |= serial_asked;
    w->split_ns += pareng__now_ns() - lane->split_began_ns;
    w->pub.pareng__cutoff = lane->pub.pareng__cutoff;
}
