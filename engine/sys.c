/*
 * sys.c - the OS layer: every futex, clock and /proc read of the engine goes through here, and
 * so does the thread-local message behind pareng_last_error().
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Shared (not FUTEX_PRIVATE_FLAG) futexes: the word is in a MAP_SHARED segment and the waiters
 * are in other processes; the kernel keys shared futexes by the page, not the address space. */
int pareng__futex_wait(_Atomic uint32_t *addr, uint32_t expected, long timeout_ns)
{
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    long rc = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected,
                      timeout_ns > 0 ? &ts : NULL, NULL, 0);
    return rc < 0 ? -errno : 0;
}

void pareng__futex_wake(_Atomic uint32_t *addr, int count)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, count, NULL, NULL, 0);
}

uint64_t pareng__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. A pid
 * plus its start time names one process for the life of the machine. Returns 0 if gone. */
/* /proc/<pid>/stat past the command name (field 2, which may hold spaces and parentheses):
 * from field 3 on, in buf; NULL if the process is gone. */
static const char *stat_fields(pid_t pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] ? p + 2 : NULL;
}

char pareng__process_state(pid_t pid)
{
    char buf[1024];
    const char *p = stat_fields(pid, buf, sizeof buf);
    return p ? *p : 0;
}

int64_t pareng__process_cpu_ticks(pid_t pid)
{
    char buf[1024];
    const char *p = stat_fields(pid, buf, sizeof buf);
    unsigned long long user, sys;
    /* fields 3..13 skipped, 14 and 15 read */
    if (!p || sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user,
                     &sys) != 2)
        return -1;
    return (int64_t)(user + sys);
}

uint64_t pareng__process_start_time(pid_t pid)
{
    char buf[1024];
    const char *p = stat_fields(pid, buf, sizeof buf);
    if (!p)
        return 0;
    unsigned long long start = 0;
    /* fields 3..21 skipped, 22 read */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                      "%*d %llu",
               &start) != 1)
        return 0;
    return start;
}

/* xorshift64*: a victim order needs spread, not quality. */
uint64_t pareng__random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

void pareng__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static _Thread_local char last_error[PARENG_ERROR_MAX];

int pareng__fd_above_stdio(int fd)
{
    if (fd < 0 || fd > STDERR_FILENO)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1), err = errno;
    close(fd);
    errno = err;
    return moved;
}

static bool continues_a_character(const char *p)
{
    return ((unsigned char)*p & 0xc0) == 0x80; /* a UTF-8 continuation byte */
}

/* whole (len bytes) into out, its middle left out when it does not fit: a message quotes the
 * user's value first and says what is wrong with it last (--cores with 260 digits lost the
 * reason). Cut at characters, marked with an ellipsis. */
static void keep_both_ends(char *out, size_t size, const char *whole, size_t len)
{
    static const char ellipsis[] = "\xe2\x80\xa6";
    size_t head = (size - sizeof ellipsis) / 2, rest = size - sizeof ellipsis - head;
    while (head > 0 && continues_a_character(whole + head))
        head--;
    const char *tail = whole + len - rest;
    while (*tail && continues_a_character(tail))
        tail++;
    rest = len - (size_t)(tail - whole);
    memcpy(out, whole, head);
    memcpy(out + head, ellipsis, sizeof ellipsis - 1);
    memcpy(out + head + sizeof ellipsis - 1, tail, rest + 1);
}

int pareng__fail(int err, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int len = vsnprintf(last_error, sizeof last_error, fmt, ap);
    /* On the stack when it fits: a worker may fail while it holds the heap's lock, when its
     * malloc is the C library's, whose heap is the caller's copy, sealed (caller_memory.c):
     * every write there would cost a fault, and the block would never be freed (malloc.c). */
    char on_stack[4096];
    char *whole = len < (int)sizeof last_error ? NULL
                  : len < (int)sizeof on_stack  ? on_stack
                                                : malloc((size_t)len + 1);
    if (whole && vsnprintf(whole, (size_t)len + 1, fmt, again) == len)
        keep_both_ends(last_error, sizeof last_error, whole, (size_t)len);
    if (whole != on_stack)
        free(whole);
    va_end(again);
    va_end(ap);
    return -err;
}

const char *pareng_last_error(void)
{
    return last_error;
}

const char *pareng_version(void)
{
    return PARENG_VERSION_STRING;
}
