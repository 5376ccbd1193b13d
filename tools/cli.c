/*
 * cli.c - the helpers the commands of the pareng CLI share (declared in cli.h): messages with
 * control characters escaped, option parsing over getopt_long, the engine's configuration from
 * the environment and the options (all parsing of --cores and --cutoff is the library's), ^C,
 * and the one JSON string writer.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* "pareng: " and the message, escaped, then `suffix` (not escaped: ours) and a newline. */
static void vmessage(const char *suffix, const char *fmt, va_list ap)
{
    char text[2048];
    vsnprintf(text, sizeof text, fmt, ap);
    fflush(stdout); /* what was printed before comes before the message, also in one file */
    fputs("pareng: ", stderr);
    cli_escape(stderr, text);
    fputs(suffix, stderr);
    fputc('\n', stderr);
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
    int c;
    /* Each argument is moved to argv[1 + its rank]: a slot getopt has gone past (in this
     * order it permutes nothing), so the arguments end up in order at the front of argv. */
    while ((c = getopt_long(p->argc, p->argv, p->optstring, p->longs, NULL)) == 1)
        p->argv[1 + p->n_positional++] = optarg;
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
    /* getopt leaves the element it refused at optind - 1 for a long option; a short one
     * (unknown letter) may be inside a group ("-jx"), named by optopt alone */
    const char *arg = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
    bool long_option = strncmp(arg, "--", 2) == 0 && arg[2];
    if (optopt == 0 && long_option) {
        refuse_long(p, arg);
    } else if (optopt != 0 && long_option && strchr(arg, '=') && names_option(p, arg, optopt)) {
        option_name(p, optopt, name, sizeof name);
        bad_input("option %s takes no value, not '%s'", name, strchr(arg, '=') + 1);
    } else if (optopt > 0 && optopt < 256) {
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
    if (pareng_config_default(cfg) == 0)
        return 0;
    cli_error("%s", pareng_last_error()); /* names the variable */
    return EXIT_BAD_INPUT;
}

int cli_set_cores(pareng_config *cfg, const char *cores)
{
    if (pareng_config_set_cores(cfg, cores) == 0)
        return 0;
    return bad_input("--cores: %s", pareng_last_error());
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
