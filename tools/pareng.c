/*
 * pareng - the command line: `pareng COMMAND ...` dispatched to the command's file, which
 * parses, calls the public API of libpareng (and the workloads) and prints.
 *
 *   pareng run fib N | run http URL      (tools/run.c)
 *   pareng map fib N...                  (tools/run.c)
 *   pareng topo                          (tools/topo.c)
 *   pareng bench fib N | bench spawn     (tools/bench.c)
 *   pareng top [PID]                     (tools/top.c)
 *   pareng clean                         (here)
 *   pareng help [COMMAND] | --help | --version
 *
 * Exit status: 0 success, 1 the run failed (a worker died, no memory), 2 bad input (nothing
 * was started), 128+signal when interrupted by SIGINT or SIGTERM. docs/cli.md has it all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "pareng.h"

static const char overview[] =
    "usage: pareng COMMAND [OPTIONS] [ARGUMENTS]\n"
    "       pareng help COMMAND\n"
    "       pareng --help | --version\n"
    "\n"
    "pareng runs workloads on a work-stealing engine whose workers are processes,\n"
    "measures it, and shows where its workers go.\n"
    "\n"
    "commands:\n"
    "  run fib N      fib(N) on the engine; with --io-latency, its IO-bound variant\n"
    "  run http URL   an HTTP/1.1 GET load: requests/s and latency percentiles\n"
    "  map fib N...   fib of each N as an independent task, as a Python list\n"
    "  topo           the machine as hwloc shows it, where the workers go and whom\n"
    "                 each one steals from\n"
    "  bench fib N    timed runs against serial C (and OpenMP, oneTBB): speedups\n"
    "  bench spawn    the cost of a spawn+sync and the latency of a steal\n"
    "  top [PID]      the running engines of this user, refreshed like top\n"
    "  clean          remove what killed engines of pareng 0.1 left in /dev/shm\n"
    "  help COMMAND   the options of COMMAND, as pareng COMMAND --help\n"
    "\n"
    "Every command takes -h (--help) and -j (--json: one JSON document on stdout\n"
    "instead of the text). Long options may be abbreviated while unambiguous, given\n"
    "as --name VALUE or --name=VALUE, before or after the arguments; -- ends them.\n"
    "\n"
    "environment (options override it): PARENG_NUM_WORKERS, PARENG_PLACES,\n"
    "PARENG_CUTOFF, PARENG_DISPLAY_AFFINITY, PARENG_TOPOLOGY_CACHE\n"
    "exit status: 0 success, 1 the run failed, 2 bad input, 130 or 143 interrupted\n"
    "by SIGINT or SIGTERM. More: docs/cli.md (man pareng).\n";

static const char clean_help[] =
    "usage: pareng clean [-j]\n"
    "\n"
    "Removes the shared-memory segments (/dev/shm/pareng-PID-N) that engines of\n"
    "pareng 0.1 left when their owner was killed, and says how many: only regular\n"
    "files of this user whose owner process is gone. Engines of this version leave\n"
    "nothing behind (their memory has no name) and need no cleaning.\n"
    "\n"
    "options:\n"
    "  -j, --json\n"
    "          one JSON object on stdout instead of the text: {\"removed\":N}\n"
    "  -h, --help\n"
    "          this help\n";

static int command_clean(int argc, char **argv)
{
    static const struct option longs[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_parser p;
    cli_parse_begin(&p, "clean", "jh", longs, argc, argv);
    bool json = false;
    const char *value;
    int option;
    while ((option = cli_next_option(&p, &value)) != -1) {
        if (option == -2)
            return EXIT_BAD_INPUT;
        if (option == 'h')
            return cli_help(clean_help);
        json = true; /* 'j' */
    }
    int count;
    char **args = cli_positional(&p, &count);
    if (count > 0)
        return bad_input("clean takes no arguments, not '%s'", args[0]);
    int removed = pareng_clean();
    if (removed < 0) {
        cli_error("clean: %s", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    if (json)
        printf("{\"removed\":%d}\n", removed);
    else
        printf("removed %d stale segment%s\n", removed, removed == 1 ? "" : "s");
    return finish_output();
}

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
} commands[] = {
    {"run", command_run},     {"map", command_map},     {"topo", command_topo},
    {"bench", command_bench}, {"top", command_top},     {"clean", command_clean},
};

static const struct command *find_command(const char *name)
{
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k].name, name) == 0)
            return &commands[k];
    return NULL;
}

/* pareng help [COMMAND] (and pareng --help [COMMAND]): the overview, or what
 * `pareng COMMAND --help` prints. */
static int command_help(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0)
        return argc > 2 ? bad_input("help takes one command, not '%s'", argv[2])
                        : cli_help(overview);
    if (argc > 2)
        return bad_input("help takes one command, not '%s'", argv[2]);
    const struct command *c = find_command(argv[1]);
    if (!c)
        return bad_input("unknown command '%s' (known: run, map, topo, bench, top, clean)", argv[1]);
    char *help_argv[] = {argv[1], "--help", NULL};
    return c->run(2, help_argv);
}

/* A closed standard descriptor would be the next file opened (an --export-json file got the
 * table meant for stdout, exit 0): each closed one is held by /dev/null opened the other way
 * round, so that writing to a closed stdout still fails (EBADF: "cannot write the output")
 * and reading a closed stdin too. */
static void hold_closed_standard_descriptors(void)
{
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int held = open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY);
        if (held >= 0 && held != fd) /* the lowest free one is fd itself, unless raced */
            close(held);
    }
}

/* What a command's deepest call (hwloc's topology load, the plan's messages) takes of the
 * main thread's stack, with room to spare: under a smaller limit a command died of SIGSEGV
 * at random, as the arguments and environment above main took more or less of it. */
#define STACK_NEEDED_BYTES (64 * 1024)

static int refuse_a_tiny_stack(void)
{
    struct rlimit stack;
    if (getrlimit(RLIMIT_STACK, &stack) < 0 || stack.rlim_cur == RLIM_INFINITY ||
        stack.rlim_cur >= STACK_NEEDED_BYTES)
        return 0;
    /* Not cli_error, whose buffers alone take 10 KiB of this stack */
    char message[128];
    int n = snprintf(message, sizeof message, "pareng: the stack size limit (ulimit -s) is %llu "
                     "KiB, less than the %d KiB pareng needs\n",
                     (unsigned long long)stack.rlim_cur / 1024, STACK_NEEDED_BYTES / 1024);
    ssize_t ignored = write(STDERR_FILENO, message, (size_t)n);
    (void)ignored; /* nowhere else to say it */
    return EXIT_RUN_FAILED;
}

int main(int argc, char **argv)
{
    hold_closed_standard_descriptors();
    int rc = refuse_a_tiny_stack();
    if (rc)
        return rc;
    /* Only run and map start engines across ranks (tools/ranks.c); the other commands work
     * under a launcher as they do without one. */
    rc = argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "map"))
             ? ranks_hand_over_to_mpi(argv)
             : 0;
    if (rc)
        return rc;
    /* hwloc loads its plugins at every topology load; pareng needs none of these (PCI
     * devices, OpenCL, OpenGL, libxml2's XML reader: the built-in one reads --topology
     * files), and skipping them saves about 3 ms of each start. The library may not set a
     * variable in its caller's environment; the CLI, as its own program, may, for its own
     * process. A value already there (even empty) is the user's choice and is kept. */
    setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml", 0);
    /* Output past a file-size limit is then a write error, said by finish_output, rather than
     * a SIGXFSZ that ends the program without a word. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2)
        return bad_input("a command is needed");
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return command_help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0) {
        if (argc > 2)
            return bad_input("unexpected argument '%s' after --version", argv[2]);
        printf("pareng %s\n", pareng_version());
        return finish_output();
    }
    const struct command *c = find_command(name);
    if (!c)
        return bad_input("unknown command '%s' (known: run, map, topo, bench, top, clean, help)",
                         name);
    return c->run(argc - 1, argv + 1);
}
