/*
 * cli.c - the helpers the commands of the pareng CLI share (declared in cli.h): messages with
 * control characters escaped, option parsing over getopt_long, the engine's configuration from
 * the environment and the options (all parsing of --cores and --cutoff is the library's), ^C,
 * and the one JSON string writer.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The command being parsed, for the hint of bad_input ("try 'pareng run --help'"). */
static const char *current_command;

/* ---- messages --------------------------------------------------------------------------- */

void cli_escape(FILE *f, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

/* "pareng: " and the message, escaped, then `suffix` (not escaped: ours) and a newline, in
 * one write: stderr is unbuffered, and the ranks of an MPI job share it (a message put
 * together byte by byte was spliced with another rank's). */
static void vmessage(const char *suffix, const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof text, fmt, ap);
    fflush(stdout); /* what was printed before comes before the message, also in one file */
    char line[4 * sizeof text + 128]; /* every byte escaped as \xHH, and the rest */
    FILE *whole = fmemopen(line, sizeof line, "w");
    FILE *out = whole ? whole : stderr;
    fputs("pareng: ", out);
    cli_escape(out, text);
    fputs(suffix, out);
    fputc('\n', out);
    if (whole) {
        long len = ftell(whole);
        fclose(whole);
        fwrite(line, 1, len > 0 ? (size_t)len : 0, stderr);
    }
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

int bad_input(const char *fmt, ...)
{
    char hint[64];
    snprintf(hint, sizeof hint, " (try 'pareng %s%s--help')",
             current_command ? current_command : "", current_command ? " " : "");
    va_list ap;
    va_start(ap, fmt);
    vmessage(hint, fmt, ap);
    va_end(ap);
    return EXIT_BAD_INPUT;
}

int finish_output(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    cli_error("cannot write the output: %s", strerror(errno));
    return EXIT_RUN_FAILED;
}

/* ---- parsing ---------------------------------------------------------------------------- */

bool parse_unsigned(const char *s, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno == ERANGE || v > max)
        return false;
    *out = v;
    return true;
}

bool parse_duration(const char *s, uint64_t *ns)
{
    static const struct { const char *name; uint64_t ns; } units[] = {
        {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 13) /* 13 digits hold DURATION_MAX_NS in ns */
        return false;
    uint64_t count = strtoull(s, NULL, 10);
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (strcmp(s + digits, units[k].name) == 0) {
            if (count == 0 || count > DURATION_MAX_NS / units[k].ns)
                return false;
            *ns = count * units[k].ns;
            return true;
        }
    return false;
}

void cli_parse_begin(cli_parser *p, const char *command, const char *shorts,
                     const struct option *longs, int argc, char **argv)
{
    *p = (cli_parser){.command = command, .shorts = shorts, .longs = longs, .argc = argc,
                      .argv = argv};
    /* '-': arguments are returned in order (as option 1), so options may come after them
     * whatever POSIXLY_CORRECT says; ':': a missing value is returned as ':', told apart
     * from an unknown option */
    snprintf(p->optstring, sizeof p->optstring, "-:%s", shorts);
    current_command = command;
    opterr = 0;  /* the messages are ours (one line, escaped, with the hint) */
    optind = 0;  /* glibc: start afresh, also for a second command in this process */
}

/* "--name" of the long option whose val is `val`, or "-c" when it has none. */
static void option_name(const cli_parser *p, int val, char *out, size_t size)
{
    for (const struct option *o = p->longs; o->name; o++)
        if (o->val == val) {
            snprintf(out, size, "--%s", o->name);
            return;
        }
    snprintf(out, size, "-%c", val);
}

/* A long option getopt_long refused: ambiguous (several names begin so) or unknown. */
static void refuse_long(const cli_parser *p, const char *arg)
{
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    char matches[256] = "";
    size_t used = 0;
    unsigned n = 0;
    for (const struct option *o = p->longs; o->name; o++)
        if (strncmp(o->name, name, len) == 0 && used < sizeof matches) {
            used += (size_t)snprintf(matches + used, sizeof matches - used, "%s--%s",
                                     n ? ", " : "", o->name);
            n++;
        }
    if (n > 1)
        bad_input("option '--%.*s' is ambiguous: %s", (int)len, name, matches);
    else
        bad_input("unknown option '--%.*s'", (int)len, name);
}

/* Does "--NAME=..." name (or abbreviate) the long option whose val is `val`? */
static bool names_option(const cli_parser *p, const char *arg, int val)
{
    size_t len = strcspn(arg + 2, "=");
    for (const struct option *o = p->longs; o->name; o++)
        if (o->val == val && strncmp(o->name, arg + 2, len) == 0)
            return true;
    return false;
}

int cli_next_option(cli_parser *p, const char **value)
{
    int c, element;
    /* Each argument is moved to argv[1 + its rank]: a slot getopt has gone past (in this
     * order it permutes nothing), so the arguments end up in order at the front of argv. */
    do {
        /* what getopt reads next: a long option, or the group of short ones it is inside
         * (optind passes a group after its last letter only); 0 is glibc's fresh start */
        element = optind ? optind : 1;
        c = getopt_long(p->argc, p->argv, p->optstring, p->longs, NULL);
        if (c == 1)
            p->argv[1 + p->n_positional++] = optarg;
    } while (c == 1);
    *value = optarg;
    if (c == -1) { /* after "--", the rest are arguments */
        while (optind < p->argc)
            p->argv[1 + p->n_positional++] = p->argv[optind++];
        return -1;
    }
    char name[64];
    if (c == ':') {
        option_name(p, optopt, name, sizeof name);
        bad_input("option %s needs a value", name);
        return -2;
    }
    if (c != '?')
        return c;
    /* An unknown ASCII letter is named alone, also inside a group ("-jx"); getopt reads a
     * character of several bytes ("-é") byte by byte, so that one is named by its whole
     * argument, as written. */
    const char *arg = p->argv[element];
    bool long_option = strncmp(arg, "--", 2) == 0 && arg[2];
    if (optopt == 0 && long_option) {
        refuse_long(p, arg);
    } else if (optopt != 0 && long_option && strchr(arg, '=') && names_option(p, arg, optopt)) {
        option_name(p, optopt, name, sizeof name);
        bad_input("option %s takes no value, not '%s'", name, strchr(arg, '=') + 1);
    } else if (arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9') {
        bad_input("'%s': a negative number, where every number is 0 or more (and no option "
                  "starts with a digit)", arg);
    } else if (optopt > 0 && optopt < 0x80) {
        bad_input("unknown option '-%c'", optopt);
    } else {
        bad_input("unknown option '%s'", arg);
    }
    return -2;
}

char **cli_positional(const cli_parser *p, int *count)
{
    *count = p->n_positional;
    return p->argv + 1;
}

int cli_help(const char *text)
{
    fputs(text, stdout);
    return finish_output();
}

/* ---- the engine's configuration ------------------------------------------------------ */

int cli_config_default(pareng_config *cfg)
{
    if (pareng_config_default(cfg) == 0) {
        /* The built-in workloads read nothing the CLI writes after the start, and a static
         * pareng's globals hold its C library's state: each worker keeps its copy. */
        cfg->globals = PARENG_GLOBALS_FORKED;
        return 0;
    }
    cli_error("%s", pareng_last_error()); /* names the variable */
    return EXIT_BAD_INPUT;
}

int cli_set_cores(pareng_config *cfg, const char *cores)
{
    if (pareng_config_set_cores(cfg, cores) == 0)
        return 0;
    return bad_input("--cores: %s", pareng_last_error());
}

int cli_parse_grain(const char *text, unsigned *grain)
{
    unsigned long v = 0;
    if (strcmp(text, "auto") != 0 && !parse_unsigned(text, UINT_MAX, &v))
        return bad_input("--grain needs auto or an integer from 0 to %u, not '%s'", UINT_MAX,
                         text);
    *grain = (unsigned)v;
    return 0;
}

int cli_set_cutoff(pareng_config *cfg, const char *cutoff)
{
    if (pareng_config_set_cutoff(cfg, cutoff) == 0)
        return 0;
    return bad_input("--cutoff: %s", pareng_last_error());
}

const char *cli_cores_source(bool cores_given)
{
    if (cores_given)
        return "--cores";
    if (getenv("PARENG_PLACES"))
        return "PARENG_PLACES";
    if (getenv("PARENG_NUM_WORKERS"))
        return "PARENG_NUM_WORKERS";
    return NULL;
}

void cli_describe_cutoff(unsigned cutoff_depth, char *out, size_t size)
{
    if (cutoff_depth == PARENG_CUTOFF_AUTO)
        snprintf(out, size, "auto");
    else if (cutoff_depth == PARENG_CUTOFF_NONE)
        snprintf(out, size, "none");
    else
        snprintf(out, size, "%u", cutoff_depth);
}

void cli_catch_signals(void)
{
    /* Both only fail for a signal that cannot be caught: these two can. */
    pareng_cancel_on_signal(SIGINT);
    pareng_cancel_on_signal(SIGTERM);
}

int cli_interrupted_status(void)
{
    int sig = pareng_cancel_signal(0);
    return sig ? 128 + sig : 0;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Bytes of the UTF-8 sequence at p (1 to 4), or 0 when it is not well-formed (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_length(const unsigned char *p)
{
    unsigned char lead = p[0];
    size_t len;
    unsigned char low = 0x80, high = 0xbf; /* the range of the second byte */
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        len = 2;
    else if (lead >= 0xe0 && lead <= 0xef)
        len = 3, low = lead == 0xe0 ? 0xa0 : 0x80, high = lead == 0xed ? 0x9f : 0xbf;
    else if (lead >= 0xf0 && lead <= 0xf4)
        len = 4, low = lead == 0xf0 ? 0x90 : 0x80, high = lead == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (p[1] < low || p[1] > high)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    return len;
}

void json_string(FILE *f, const char *text)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        size_t len = utf8_length(p);
        if (len == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p++);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p++);
        } else {
            fwrite(p, 1, len, f);
            p += len;
        }
    }
    fputc('"', f);
}

void cli_print_machine_counts(FILE *f, unsigned packages, unsigned cores, unsigned pus)
{
    const struct {
        const char *kind;
        unsigned n;
    } counts[] = {{"package", packages}, {"core", cores}, {"PU", pus}};
    const char *separator = "";
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        if (counts[k].n == 0) /* never the PUs: a topology has one at least */
            continue;
        fprintf(f, "%s%u %s%s", separator, counts[k].n, counts[k].kind,
                counts[k].n == 1 ? "" : "s");
        separator = ", ";
    }
}

void json_stats_fields(FILE *f, const pareng_stats *s, bool io)
{
    const char *sep = "";
#define JSON_FIELD(name)                                                                      \
    fprintf(f, "%s\"" #name "\":%llu", sep, (unsigned long long)s->name);                    \
    sep = ",";
    STAT_FIELDS(JSON_FIELD)
    if (io) {
        IO_STAT_FIELDS(JSON_FIELD)
    }
#undef JSON_FIELD
    fprintf(f, ",\"busy_seconds\":%.6f,\"idle_seconds\":%.6f", (double)s->busy_ns * 1e-9,
            (double)s->idle_ns * 1e-9);
}

/* ---- output files ------------------------------------------------------------------------ */

bool is_stdout(const char *path)
{
    return path && strcmp(path, "-") == 0;
}

/* The output files opened and not yet written whole: a run that fails, a refusal after they
 * were opened, an interruption or an exit from anywhere leaves no new empty file, and a file
 * the output was to replace as it was (docs/cli.md), since what is pending is removed at exit.
 * A regular file that exists (a link's target) is replaced: its replacement is written beside
 * it, unnamed where the file system allows (O_TMPFILE: nothing is left if the command dies),
 * else as `temp`, and renamed over it once written whole. One that did not exist was
 * `created`, and is written in place. */
typedef struct pending_output {
    char *path, *temp;
    bool unnamed, created;
} pending_output;
static pending_output pending[8];

static void drop_pending(output_file *file, bool remove)
{
    if (!file->pending)
        return;
    pending_output *p = &pending[file->pending - 1];
    if (remove && p->temp)
        unlink(p->temp);
    else if (remove && p->created)
        unlink(p->path);
    free(p->path);
    free(p->temp);
    *p = (pending_output){0};
    file->pending = 0;
}

static void remove_pending_at_exit(void)
{
    for (size_t k = 0; k < sizeof pending / sizeof pending[0]; k++) {
        if (pending[k].path)
            drop_pending(&(output_file){.pending = (int)k + 1}, true);
    }
}

/* Takes path and temp (malloc'd) when it returns true. */
static bool add_pending(output_file *file, pending_output entry)
{
    static bool registered;
    if (!registered && atexit(remove_pending_at_exit) != 0)
        return false;
    registered = true;
    for (size_t k = 0; k < sizeof pending / sizeof pending[0]; k++)
        if (!pending[k].path) {
            pending[k] = entry;
            file->pending = (int)k + 1;
            return true;
        }
    return false;
}

/* A name beside path for its replacement: path.XXXXXX, to be filled in (mkstemp) */
static char *name_beside(const char *path)
{
    size_t len = strlen(path);
    char *name = malloc(len + sizeof ".XXXXXX");
    if (name) {
        memcpy(name, path, len);
        memcpy(name + len, ".XXXXXX", sizeof ".XXXXXX");
    }
    return name;
}

/* The replacement of the regular file `path` (st), in its directory (the same file system, for
 * the rename), with its mode and, where allowed, its owner; -1 when the directory cannot be
 * written (the file is then written in place, as a FIFO or a device is). */
static int open_beside(const char *path, const struct stat *st, pending_output *entry)
{
    char *dir = strdup(path);
    int fd = -1;
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            strcpy(dir, ".");
        else
            slash[slash == dir] = '\0'; /* "/f": the root */
        fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, st->st_mode & 07777);
        free(dir);
    }
    entry->unnamed = fd >= 0;
    if (fd < 0 && (entry->temp = name_beside(path)) &&
        (fd = mkostemp(entry->temp, O_CLOEXEC)) < 0) {
        free(entry->temp);
        entry->temp = NULL;
    }
    if (fd < 0)
        return -1;
    if (fchmod(fd, st->st_mode & 07777) < 0 && errno != EPERM) {
        close(fd);
        if (entry->temp)
            unlink(entry->temp);
        free(entry->temp);
        entry->temp = NULL;
        return -1;
    }
    (void)!fchown(fd, st->st_uid, st->st_gid); /* as root: the owner stays; else ours */
    return fd;
}

/* file->path for writing (see pending_output), without blocking on a FIFO nobody reads
 * (ENXIO), then blocking again: a FIFO with a reader is a fine place for the figures. NULL
 * with errno set. */
static FILE *open_output(output_file *file)
{
    struct stat st;
    pending_output entry = {0};
    int fd = -1;
    /* a link is followed: its target is replaced, the link kept; a link to nothing creates
     * its target, in place */
    bool link = lstat(file->path, &st) == 0 && S_ISLNK(st.st_mode);
    char *path = link ? realpath(file->path, NULL) : strdup(file->path);
    if (!path && (!link || errno != ENOENT))
        return NULL;
    if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(path, W_OK) != 0) {
            free(path);
            return NULL;
        }
        fd = open_beside(path, &st, &entry);
    }
    if (fd < 0 && path) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC, 0666);
        entry.created = fd >= 0;
    }
    if (fd < 0 && (!path || errno == EEXIST))
        fd = open(file->path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0666);
    int flags = fd < 0 ? -1 : fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? NULL : fdopen(fd, "w");
    entry.path = path;
    if (f && (!path || add_pending(file, entry)))
        return f; /* a link to nothing: its target written in place, as it could be */
    int err = f || fd >= 0 ? ENOMEM : errno;
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    if (entry.temp)
        unlink(entry.temp);
    else if (entry.created)
        unlink(path);
    free(entry.temp);
    free(path);
    errno = err;
    return NULL;
}

/* The replacement written whole takes the file's place: named first if it had no name. */
static int replace_with(pending_output *p, int fd)
{
    if (p->unnamed) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        size_t size = strlen(p->path) + sizeof ".4294967295-100";
        if (!(p->temp = malloc(size)))
            return -1;
        /* linkat makes no name of its own: names of this process's, in turn (one left by a
         * process that had its pid is taken) */
        for (unsigned n = 0;; n++) {
            snprintf(p->temp, size, "%s.%d-%u", p->path, (int)getpid(), n);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, p->temp, AT_SYMLINK_FOLLOW) == 0)
                break;
            if (errno != EEXIST || n == 100) {
                free(p->temp); /* not ours to remove */
                p->temp = NULL;
                return -1;
            }
        }
    }
    return rename(p->temp, p->path);
}

static void close_opened(output_file *files, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (files[k].f && files[k].f != stdout)
            fclose(files[k].f);
        files[k].f = NULL;
        drop_pending(&files[k], true);
    }
}

/* The earlier of files[0..i) whose stat in known[] is the regular file known[i] (one written
 * over the other would be neither), or NULL; a zeroed stat is no file. */
static const output_file *same_file_before(const output_file *files, const struct stat *known,
                                           size_t i)
{
    if (!S_ISREG(known[i].st_mode))
        return NULL;
    for (size_t k = 0; k < i; k++)
        if (known[k].st_nlink > 0 && known[k].st_dev == known[i].st_dev &&
            known[k].st_ino == known[i].st_ino)
            return &files[k];
    return NULL;
}

/* stdout, when it is a regular file or a pipe, counts among the files: the text or the
 * document that goes there would be written over by, or mixed with, an output naming it
 * (/dev/stdout: "--export-json -" puts the document there instead of the text). */
static const output_file standard_output = {.option = "stdout", .path = "(the output)"};

/* The output that the file of known[i] already is: one of files[0..i), or stdout (whose stat
 * is `out`, NULL when it is no regular file or pipe); or NULL. */
static const output_file *taken_by(const output_file *files, const struct stat *known, size_t i,
                                   const struct stat *out)
{
    if (out && files[i].f != stdout && out->st_dev == known[i].st_dev &&
        out->st_ino == known[i].st_ino)
        return &standard_output;
    return same_file_before(files, known, i);
}

static int refuse_same_file(output_file *files, size_t opened, size_t i,
                            const output_file *same)
{
    cli_error("%s %s: the same file as %s %s: each output needs a file of its own",
              files[i].option, files[i].path, same->option, same->path);
    close_opened(files, opened);
    return EXIT_BAD_INPUT;
}

/* Opened before anything runs: a path that cannot be written fails at once, not after a
 * benchmark of many minutes. "-" is stdout, never a file of that name. Two outputs in one
 * file are refused before any is emptied (and, named alike, once created: known[] then holds
 * the stats of the files opened). */
int open_outputs(output_file *files, size_t n)
{
    struct stat known[n ? n : 1], stdout_stat;
    memset(known, 0, sizeof known);
    const struct stat *out = NULL;
    if (fstat(STDOUT_FILENO, &stdout_stat) == 0 &&
        (S_ISREG(stdout_stat.st_mode) || S_ISFIFO(stdout_stat.st_mode)))
        out = &stdout_stat;
    for (size_t i = 0; i < n; i++) {
        if (files[i].path && !*files[i].path)
            return bad_input("%s: an empty FILE name", files[i].option);
        const output_file *same = NULL;
        if (files[i].path && !is_stdout(files[i].path) && stat(files[i].path, &known[i]) == 0 &&
            (same = taken_by(files, known, i, out)))
            return refuse_same_file(files, 0, i, same);
    }
    for (size_t i = 0; i < n; i++) {
        if (!files[i].path)
            continue;
        files[i].f = is_stdout(files[i].path) ? stdout : open_output(&files[i]);
        if (!files[i].f) {
            cli_error("%s %s: cannot write: %s", files[i].option, files[i].path,
                      errno == ENXIO ? "a FIFO that nobody reads" : strerror(errno));
            close_opened(files, i);
            return EXIT_RUN_FAILED;
        }
        /* the file named, not the one written beside it (open_output) */
        const output_file *same = NULL;
        if ((files[i].f == stdout ? fstat(STDOUT_FILENO, &known[i])
                                  : stat(files[i].path, &known[i])) == 0 &&
            (same = taken_by(files, known, i, out)))
            return refuse_same_file(files, i + 1, i, same);
    }
    return 0;
}

int close_output(output_file *file)
{
    if (!file->f || file->f == stdout)
        return 0; /* stdout: finish_output says whether it was written */
    bool failed = fflush(file->f) != 0 || ferror(file->f);
    off_t written = ftello(file->f);
    int err = errno;
    pending_output *p = file->pending ? &pending[file->pending - 1] : NULL;
    bool replaced = p && (p->unnamed || p->temp);
    /* Written in place over what a FIFO or a device held, or a file whose directory cannot
     * be written: cut there. */
    struct stat st;
    if (!failed && written > 0 && !replaced && fstat(fileno(file->f), &st) == 0 &&
        S_ISREG(st.st_mode) && ftruncate(fileno(file->f), written) != 0) {
        failed = true;
        err = errno;
    }
    /* Nothing written (no output is empty): the run failed first, and the file is as it was */
    if (!failed && written > 0 && replaced && replace_with(p, fileno(file->f)) != 0) {
        failed = true;
        err = errno;
    }
    if (fclose(file->f) != 0 && !failed) {
        failed = true;
        err = errno;
    }
    file->f = NULL;
    drop_pending(file, failed || written <= 0);
    if (!failed)
        return 0;
    cli_error("%s %s: cannot write: %s", file->option, file->path, strerror(err));
    return EXIT_RUN_FAILED;
}

/* Text inside SVG elements: the host and CPU model may hold &, < or >, and control characters,
 * which XML does not allow at all (left out). */
void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            continue;
        if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else
            fputc(*s, f);
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving at most max_ticks ticks over range
 * (at least `least`: workers are whole). Always a positive finite number, so that a loop over
 * the ticks ends: an empty range (a plot of no rows) gets a step of 1. */
double tick_step(double range, unsigned max_ticks, double least)
{
    double raw = range / (max_ticks ? max_ticks : 1), fallback = fmax(least, 1);
    if (!(raw > 0) || !isfinite(raw))
        return fallback;
    double magnitude = pow(10, floor(log10(raw)));
    double step = 10 * magnitude;
    for (double m = 5; m >= 1; m = m == 5 ? 2 : m == 2 ? 1 : 0)
        if (m * magnitude >= raw)
            step = m * magnitude;
    /* the magnitude of a subnormal range underflows to 0, 2 or 10 times that of the largest
     * overflows: raw itself is a step that fits */
    return fmax(step > 0 && isfinite(step) ? step : raw, least);
}

double plot_x(const plot_area *p, double x)
{
    return p->left + (x - p->x_min) / (p->x_max - p->x_min) * p->width;
}

double plot_y(const plot_area *p, double speedup)
{
    return p->top + p->height - speedup / p->y_max * p->height;
}

bool plottable(const plot_area *p, double x, double y)
{
    return isfinite(plot_x(p, x)) && isfinite(plot_y(p, y));
}

void plot_axes(FILE *f, const plot_area *p)
{
    double bottom = p->top + p->height, right = p->left + p->width;
    fprintf(f, "<g stroke=\"#000\" stroke-width=\"1\">\n"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
               "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n</g>\n",
            p->left, bottom, right, bottom, p->left, p->top, p->left, bottom);
    double x_step = p->log_x ? 1 : tick_step(p->x_max - p->x_min, 10, 1);
    double y_step = tick_step(p->y_max, 8, 0);
    fputs("<g font-size=\"12\" fill=\"#000\">\n", f);
    /* The ticks counted, not summed, and the slack a fraction of a step: an axis of a tiny
     * range still gets its few ticks. */
    double x_first = p->log_x ? ceil(p->x_min) : p->x_min;
    for (double k = 0, x = x_first; x <= p->x_max + x_step * 1e-9; x = x_first + ++k * x_step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                plot_x(p, x), bottom, plot_x(p, x), bottom + 5, plot_x(p, x), bottom + 19,
                p->log_x ? pow(10, x) : x);
    for (double k = 0, y = 0; y <= p->y_max + y_step * 1e-9; y = ++k * y_step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                p->left, plot_y(p, y), right, plot_y(p, y), p->left - 5, plot_y(p, y),
                p->left, plot_y(p, y), p->left - 8, plot_y(p, y) + 4, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\">%s"
               "</text>\n",
            p->left + p->width / 2, bottom + 40, p->x_label);
    fprintf(f, "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\" "
               "font-size=\"14\">%s</text>\n</g>\n",
            p->left - 45, p->top + p->height / 2, p->y_label);
}

/* One entry of the legend, right of the plot: a line sample and its name. */
void legend_entry(FILE *f, const plot_area *p, unsigned k, const char *colour,
                         const char *dash, const char *label)
{
    double x = p->left + p->width + 20, y = p->top + 10 + 22 * k;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"2\" stroke-dasharray=\"%s\"/>"
               "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">%s</text>\n",
            x, y, x + 28, y, colour, dash, x + 34, y + 4, label);
}
