/*
 * http.c - the http workload: HTTP/1.1 GET load over keep-alive connections, one task per
 * connection, on the engine's IO (PARENG_IO_*). It owns the URL parser, the response parser
 * (pure functions, workloads/http.h), the connection tasks and the latency figures.
 *
 * The caller parses the URL and resolves the host before anything runs; the load (addresses,
 * the request's bytes, one slot per connection and one latency sample per request) lives in
 * the engine's shared memory, because workers are processes and see nothing the caller
 * writes after pareng_start (docs/memory.md). Each connection task writes only its own slot
 * and its own range of samples, so nothing is shared between writers; the caller adds the
 * slots up and computes the percentiles after the run.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_NS 5000000000ull
/* Addresses of the host that a connection tries in turn (a name may resolve to ::1 and
 * 127.0.0.1 while the server listens on one of them only). */
#define MAX_ADDRESSES 4
/* On the connection task's stack: several typical responses per recv. */
#define RECV_BUFFER_BYTES 16384

/* ---- URLs ------------------------------------------------------------------------------ */

/* Copies [begin, end) into out (size bytes, NUL-terminated); false if it does not fit. */
static bool copy_part(char *out, size_t size, const char *begin, const char *end)
{
    size_t len = (size_t)(end - begin);
    if (len >= size)
        return false;
    memcpy(out, begin, len);
    out[len] = '\0';
    return true;
}

/* A port: 1 to 65535 in decimal, nothing else. */
static bool valid_port(const char *port)
{
    size_t len = strlen(port);
    if (len == 0 || len > 5 || strspn(port, "0123456789") != len)
        return false;
    unsigned long value = strtoul(port, NULL, 10);
    return value >= 1 && value <= 65535;
}

int http_parse_url(const char *url, http_url *out, const char **why)
{
    static const char scheme[] = "http://";
    *why = NULL;
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0)
        *why = strstr(url, "://") ? "only http:// URLs are supported"
                                  : "a URL starts with http://";
    for (const char *p = url; !*why && *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            *why = "spaces, control characters and non-ASCII bytes must be percent-encoded";
    if (*why)
        return -EINVAL;

    const char *authority = url + sizeof scheme - 1;
    const char *authority_end = authority + strcspn(authority, "/?#");
    const char *path = authority_end, *path_end = path + strcspn(path, "#");
    const char *host = authority, *host_end = authority_end, *port = NULL;
    if (memchr(authority, '@', (size_t)(authority_end - authority))) {
        *why = "user names in URLs (user@host) are not supported";
    } else if (*authority == '[') { /* an IPv6 address */
        host = authority + 1;
        host_end = memchr(host, ']', (size_t)(authority_end - host));
        char address[INET6_ADDRSTRLEN];
        struct in6_addr ignored;
        if (!host_end || host_end == host)
            *why = "an IPv6 address needs its closing ] ([::1])";
        else if (!copy_part(address, sizeof address, host, host_end) ||
                 inet_pton(AF_INET6, address, &ignored) != 1)
            *why = "not an IPv6 address inside the brackets";
        else if (host_end + 1 < authority_end && host_end[1] != ':')
            *why = "only :PORT may follow an IPv6 address's ]";
        else if (host_end + 1 < authority_end)
            port = host_end + 2;
    } else if ((port = memchr(host, ':', (size_t)(authority_end - host)))) {
        host_end = port++;
        if (memchr(port, ':', (size_t)(authority_end - port)))
            *why = "an IPv6 address must be in brackets: http://[::1]:8080/";
    }
    if (*why)
        return -EINVAL;
    if (host_end == host)
        *why = "no host name or address";
    else if (!copy_part(out->host, sizeof out->host, host, host_end) ||
             !copy_part(out->authority, sizeof out->authority, authority, authority_end))
        *why = "the host name is too long";
    else if (port && port < authority_end &&
             (!copy_part(out->port, sizeof out->port, port, authority_end) ||
              !valid_port(out->port)))
        *why = "the port must be a number from 1 to 65535";
    else if (path_end - path + (*path == '/' ? 1 : 2) > (ptrdiff_t)sizeof out->target)
        *why = "the path is too long"; /* with the '/' added before a query alone, and the NUL */
    if (*why)
        return -EINVAL;
    if (!port || port == authority_end) /* "http://host:/" is port 80 too (RFC 3986) */
        strcpy(out->port, "80");
    /* an empty path is "/", also before a query */
    snprintf(out->target, sizeof out->target, "%s%.*s", *path == '/' ? "" : "/",
             (int)(path_end - path), path);
    return 0;
}

/* ---- responses ------------------------------------------------------------------------- */

void http_response_init(http_response *r)
{
    memset(r, 0, sizeof *r);
    r->state = HTTP_STATUS_LINE;
}

/* s with the optional whitespace (spaces, tabs) around a header value removed, in place. */
static char *trim(char *s)
{
    s += strspn(s, " \t");
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

/* Does the comma-separated list hold `token` (case-insensitive, whitespace around items
 * ignored)? With `last`, only its final item counts. */
static bool list_has(const char *list, const char *token, bool last)
{
    size_t token_len = strlen(token);
    bool found = false;
    for (const char *item = list;; item++) {
        item += strspn(item, " \t");
        size_t len = strcspn(item, ",");
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        found = (len == token_len && strncasecmp(item, token, len) == 0) || (found && !last);
        item = strchr(item, ',');
        if (!item)
            return found;
    }
}

/* A decimal or hexadecimal count of at most 15 digits (so below 2^60), the whole of text;
 * false otherwise. */
static bool parse_count(const char *text, int base, uint64_t *out)
{
    const char *digits = base == 16 ? "0123456789abcdefABCDEF" : "0123456789";
    size_t len = strspn(text, digits);
    if (len == 0 || len > 15 || text[len] != '\0')
        return false;
    *out = strtoull(text, NULL, base);
    return true;
}

static int malformed(http_response *r, const char *why)
{
    r->error = why;
    return -EBADMSG;
}

/* "HTTP/1.x SSS[ reason]" */
static int status_line(http_response *r, const char *line)
{
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || strspn(line + 9, "0123456789") != 3 ||
        (line[12] != ' ' && line[12] != '\0'))
        return malformed(r, "not an HTTP/1.x status line");
    r->status = atoi(line + 9);
    if (r->status < 100)
        return malformed(r, "a status below 100");
    r->keep_alive = line[7] == '1'; /* HTTP/1.0 closes unless it says keep-alive */
    r->state = HTTP_HEADER_LINE;
    return 0;
}

/* One header field; only the three that delimit the body and the connection matter. */
static int header_line(http_response *r, char *line, bool truncated)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return malformed(r, "a header line without a name and a colon");
    *colon = '\0';
    char *value = colon + 1;
    bool length = strcasecmp(line, "Content-Length") == 0;
    bool encoding = strcasecmp(line, "Transfer-Encoding") == 0;
    bool connection = strcasecmp(line, "Connection") == 0;
    if ((length || encoding || connection) && truncated)
        return malformed(r, "a Content-Length, Transfer-Encoding or Connection header too long");
    if (length) {
        uint64_t n;
        if (!parse_count(trim(value), 10, &n))
            return malformed(r, "a Content-Length that is not a number");
        if (r->has_length && n != r->length)
            return malformed(r, "two different Content-Length values");
        r->has_length = true;
        r->length = n;
    } else if (encoding) {
        r->has_encoding = true;
        r->chunked = list_has(value, "chunked", true);
    } else if (connection) {
        if (list_has(value, "close", false))
            r->keep_alive = false;
        else if (list_has(value, "keep-alive", false))
            r->keep_alive = true;
    }
    return 0;
}

/* The empty line after the headers: how the body is delimited (RFC 9112, section 6.3). */
static void end_of_headers(http_response *r)
{
    if (r->status < 200) { /* 1xx: an interim response, the real one follows */
        r->state = HTTP_STATUS_LINE;
        r->has_length = r->has_encoding = r->chunked = false;
    } else if (r->status == 204 || r->status == 304) {
        r->state = HTTP_COMPLETE;
    } else if (r->has_encoding && r->chunked) {
        r->state = HTTP_CHUNK_SIZE_LINE;
    } else if (r->has_encoding || !r->has_length) {
        r->state = HTTP_BODY_UNTIL_CLOSE;
        r->keep_alive = false;
    } else {
        r->remaining = r->length;
        r->state = r->length ? HTTP_BODY_LENGTH : HTTP_COMPLETE;
    }
}

/* "HEX[;extensions]": the size of the next chunk; 0 ends the body, trailers follow. */
static int chunk_size_line(http_response *r, char *line)
{
    line[strcspn(line, "; \t")] = '\0';
    if (!parse_count(line, 16, &r->remaining))
        return malformed(r, "a chunk size that is not a hexadecimal number");
    r->state = r->remaining ? HTTP_CHUNK_DATA : HTTP_TRAILER_LINE;
    return 0;
}

/* A whole line (its end of line removed); truncated: only its start was kept. */
static int complete_line(http_response *r, char *line, bool truncated)
{
    switch (r->state) {
    case HTTP_STATUS_LINE:
        return status_line(r, line);
    case HTTP_HEADER_LINE:
        if (*line == '\0')
            end_of_headers(r);
        else if (*line != ' ' && *line != '\t') /* obsolete folding: a value goes on */
            return header_line(r, line, truncated);
        return 0;
    case HTTP_CHUNK_SIZE_LINE:
        return chunk_size_line(r, line);
    case HTTP_CHUNK_DATA_END:
        if (*line != '\0')
            return malformed(r, "a chunk longer than its size");
        r->state = HTTP_CHUNK_SIZE_LINE;
        return 0;
    default: /* HTTP_TRAILER_LINE: trailer fields are read and ignored */
        if (*line == '\0')
            r->state = HTTP_COMPLETE;
        return 0;
    }
}

/* Consumes the bytes of a line up to and including its '\n' (*n says how many), and handles
 * the line when it is complete: 0, or -EBADMSG. */
static int feed_line(http_response *r, const char *data, size_t len, size_t *n)
{
    const char *newline = memchr(data, '\n', len);
    size_t upto = newline ? (size_t)(newline - data) : len;
    size_t kept = r->line_len < sizeof r->line - 1 ? r->line_len : sizeof r->line - 1;
    size_t room = sizeof r->line - 1 - kept;
    memcpy(r->line + kept, data, upto < room ? upto : room);
    r->line_len += upto;
    *n = newline ? upto + 1 : len;
    if (!newline)
        return 0;
    bool truncated = r->line_len > sizeof r->line - 1;
    size_t end = truncated ? sizeof r->line - 1 : r->line_len;
    if (!truncated && end > 0 && r->line[end - 1] == '\r') /* CRLF, or a bare LF */
        end--;
    r->line[end] = '\0';
    r->line_len = 0;
    return complete_line(r, r->line, truncated);
}

int http_response_feed(http_response *r, const char *data, size_t len,
                               size_t *used)
{
    size_t at = 0;
    while (at < len && r->state != HTTP_COMPLETE) {
        size_t n;
        if (r->state == HTTP_BODY_UNTIL_CLOSE) {
            n = len - at;
        } else if (r->state == HTTP_BODY_LENGTH || r->state == HTTP_CHUNK_DATA) {
            n = len - at < r->remaining ? len - at : (size_t)r->remaining;
            r->remaining -= n;
            if (r->remaining == 0)
                r->state = r->state == HTTP_BODY_LENGTH ? HTTP_COMPLETE
                                                                : HTTP_CHUNK_DATA_END;
        } else {
            int rc = feed_line(r, data + at, len - at, &n);
            if (rc < 0)
                return rc;
        }
        at += n;
        r->bytes += n;
    }
    *used = at;
    return r->state == HTTP_COMPLETE;
}

bool http_response_closed(http_response *r)
{
    if (r->state != HTTP_BODY_UNTIL_CLOSE)
        return false;
    r->state = HTTP_COMPLETE;
    return true;
}

/* ---- the load, in shared memory -------------------------------------------------------- */

/* One connection's part: assigned by the caller, then written by that connection's task
 * alone. A cache line of its own start, so that neighbours on other workers do not share. */
typedef struct http_connection {
    uint64_t first_sample, requests; /* its range of the load's samples */
    uint64_t completed, errors, non_2xx, bytes;
    uint64_t first_error_at; /* CLOCK_MONOTONIC ns, 0 while there was none */
    int first_errno;
    char first_error[sizeof ((workload_http_result *)0)->first_error];
} __attribute__((aligned(64))) http_connection;
_Static_assert(sizeof(http_connection) == 256, "workloads.h says 256 bytes per connection");

typedef struct http_load {
    struct sockaddr_storage addresses[MAX_ADDRESSES];
    socklen_t address_lengths[MAX_ADDRESSES];
    unsigned n_addresses;
    uint64_t timeout_ns;
    char authority[HTTP_HOST_MAX + 8]; /* for messages */
    size_t request_len;
    char request[HTTP_TARGET_MAX + HTTP_HOST_MAX + 128];
    uint64_t *samples; /* latency of each completed request, ns */
    http_connection connections[];
} http_load;

/* What the caller works out before anything runs: the URL, the counts, the addresses. */
typedef struct http_target {
    http_url url;
    struct addrinfo *addresses;
} http_target;

/* A URL or host quoted in a message, at most this long: the reason after it must fit the
 * message (error.c), and a 2 KB URL pushed it out. */
#define QUOTED_MOST 160

/* How much of s a message quotes: all of it, or QUOTED_MOST bytes cut at a character. */
static int quoted_length(const char *s)
{
    size_t n = strlen(s);
    if (n <= QUOTED_MOST)
        return (int)n;
    n = QUOTED_MOST;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) /* a UTF-8 continuation byte */
        n--;
    return (int)n;
}

/* After the quoted part of s: an ellipsis where it was cut, as pareng_last_error() marks it. */
static const char *cut_mark(const char *s)
{
    return s[quoted_length(s)] ? "\xe2\x80\xa6" : "";
}

static int prepare(const workload_http_config *cfg, http_target *t)
{
    t->addresses = NULL;
    const char *why;
    if (!cfg->url)
        return workload__fail(EINVAL, "no URL");
    if (http_parse_url(cfg->url, &t->url, &why) < 0)
        return workload__fail(EINVAL, "bad URL '%.*s%s': %s", quoted_length(cfg->url), cfg->url,
                              cut_mark(cfg->url), why);
    if (cfg->requests == 0 || cfg->connections == 0)
        return workload__fail(EINVAL, "at least one request and one connection are needed");
    if (cfg->connections > cfg->requests)
        return workload__fail(EINVAL, "%u connections for %llu requests: at most one connection "
                            "per request", cfg->connections, (unsigned long long)cfg->requests);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    int rc = getaddrinfo(t->url.host, t->url.port, &hints, &t->addresses);
    if (rc != 0)
        return workload__fail(EHOSTUNREACH, "cannot resolve '%.*s%s': %s",
                              quoted_length(t->url.host), t->url.host, cut_mark(t->url.host),
                              rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return 0;
}

int workload_http_check(const workload_http_config *cfg)
{
    workload__begin();
    http_target t;
    int rc = prepare(cfg, &t);
    if (t.addresses)
        freeaddrinfo(t.addresses);
    return rc;
}

/* The load of cfg in shared memory, or NULL (workload_error() says why). */
static http_load *create_load(pareng_engine *engine, const workload_http_config *cfg,
                              const http_target *t)
{
    size_t head = sizeof(http_load) + cfg->connections * sizeof(http_connection);
    if (cfg->requests > (SIZE_MAX - head) / sizeof(uint64_t)) {
        workload__fail(ENOMEM, "%llu requests are too many to keep their latencies",
                     (unsigned long long)cfg->requests);
        return NULL;
    }
    size_t bytes = head + cfg->requests * sizeof(uint64_t);
    http_load *load = pareng_alloc(engine, bytes);
    if (!load) {
        workload__fail(ENOMEM, "the http load needs %zu bytes of the engine's shared memory "
                     "(pareng_config.shared_bytes)", bytes);
        return NULL;
    }
    memset(load, 0, head);
    load->samples = (uint64_t *)(void *)((char *)load + head);
    load->timeout_ns = cfg->timeout_ns ? cfg->timeout_ns : DEFAULT_TIMEOUT_NS;
    snprintf(load->authority, sizeof load->authority, "%s", t->url.authority);
    for (const struct addrinfo *a = t->addresses; a && load->n_addresses < MAX_ADDRESSES;
         a = a->ai_next) {
        memcpy(&load->addresses[load->n_addresses], a->ai_addr, a->ai_addrlen);
        load->address_lengths[load->n_addresses++] = a->ai_addrlen;
    }
    int len = snprintf(load->request, sizeof load->request,
                       "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pareng/%s\r\n"
                       "Accept: */*\r\n\r\n",
                       t->url.target, t->url.authority, PARENG_VERSION_STRING);
    load->request_len = (size_t)len; /* the URL's parts are bounded to fit */
    /* requests spread evenly: the first requests % connections get one more */
    uint64_t share = cfg->requests / cfg->connections, extra = cfg->requests % cfg->connections;
    for (unsigned i = 0; i < cfg->connections; i++) {
        http_connection *c = &load->connections[i];
        c->requests = share + (i < extra);
        c->first_sample = i * share + (i < extra ? i : extra);
    }
    return load;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- a connection, inside its task ------------------------------------------------------ */

static __attribute__((format(printf, 4, 5))) void record_error(http_connection *c,
                                                                uint64_t requests, int err,
                                                                const char *fmt, ...)
{
    c->errors += requests;
    if (c->first_error_at)
        return;
    c->first_error_at = now_ns();
    c->first_errno = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->first_error, sizeof c->first_error, fmt, ap);
    va_end(ap);
}

/* Nanoseconds left before deadline; 0 once it passed. */
static uint64_t time_left(uint64_t deadline)
{
    uint64_t now = now_ns();
    return now < deadline ? deadline - now : 0;
}

/* A connected socket (tried on each address in turn), or -errno of the last attempt. */
static int open_connection(PARENG_CONTEXT_PARAMS, const http_load *load)
{
    int rc = -EADDRNOTAVAIL;
    for (unsigned k = 0; k < load->n_addresses; k++) {
        const struct sockaddr *addr = (const struct sockaddr *)&load->addresses[k];
        int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        rc = PARENG_IO_CONNECT(fd, addr, load->address_lengths[k], load->timeout_ns);
        if (rc == 0)
            return fd;
        close(fd);
    }
    return rc;
}

/* Sends the request on fd and reads its response into r, until the deadline: 0 when it is
 * complete, else -errno (-ECONNRESET also when the server closed the connection first,
 * -EBADMSG when the response is malformed). */
static int exchange(PARENG_CONTEXT_PARAMS, const http_load *load,
                    int fd, uint64_t deadline, http_response *r, http_connection *c)
{
    for (size_t sent = 0; sent < load->request_len;) {
        uint64_t left = time_left(deadline);
        int n = left ? PARENG_IO_SEND(fd, load->request + sent, load->request_len - sent, left)
                     : -ETIMEDOUT;
        if (n <= 0)
            return n < 0 ? n : -ECONNRESET;
        sent += (size_t)n;
    }
    char buffer[RECV_BUFFER_BYTES];
    for (;;) {
        uint64_t left = time_left(deadline);
        int n = left ? PARENG_IO_RECV(fd, buffer, sizeof buffer, left) : -ETIMEDOUT;
        if (n < 0)
            return n;
        if (n == 0)
            return http_response_closed(r) ? 0 : -ECONNRESET;
        c->bytes += (uint64_t)n;
        size_t used;
        int rc = http_response_feed(r, buffer, (size_t)n, &used);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            /* bytes nobody asked for: the stream is out of step, start afresh */
            if (used < (size_t)n)
                r->keep_alive = false;
            return 0;
        }
    }
}

/* Why request failed, into the connection's first error. */
static void record_failure(http_connection *c, const http_load *load,
                           const http_response *r, int err)
{
    if (err == -EBADMSG)
        record_error(c, 1, EBADMSG, "malformed response from %s: %s", load->authority,
                     r->error);
    else if (err == -ETIMEDOUT)
        record_error(c, 1, ETIMEDOUT, "no complete response from %s within %llu ms",
                     load->authority, (unsigned long long)(load->timeout_ns / 1000000));
    else if (err == -ECONNRESET)
        record_error(c, 1, ECONNRESET, "%s closed the connection %s", load->authority,
                     r->bytes ? "mid-response" : "before responding");
    else
        record_error(c, 1, -err, "%s: %s", load->authority, strerror(-err));
}

/* Connection `index`: its requests one after the other on a keep-alive connection, opened
 * again whenever the server closes it. */
static void run_connection(PARENG_CONTEXT_PARAMS, http_load *load, unsigned index)
{
    http_connection *c = &load->connections[index];
    uint64_t *samples = load->samples + c->first_sample;
    int fd = -1;
    uint64_t answered_here = 0; /* responses on the current connection */
    for (uint64_t k = 0; k < c->requests;) {
        if (fd < 0) {
            fd = open_connection(PARENG_CONTEXT, load);
            if (fd < 0) { /* the server is gone or unreachable: give up the rest */
                record_error(c, c->requests - k, -fd, "cannot connect to %s: %s",
                             load->authority, strerror(-fd));
                return;
            }
            answered_here = 0;
        }
        http_response r;
        http_response_init(&r);
        uint64_t start = now_ns();
        int rc = exchange(PARENG_CONTEXT, load, fd, start + load->timeout_ns, &r, c);
        if (rc == 0) {
            samples[c->completed++] = now_ns() - start;
            c->non_2xx += r.status < 200 || r.status > 299;
            answered_here++;
            k++;
            if (r.keep_alive)
                continue;
        }
        close(fd);
        fd = -1;
        if (rc == 0)
            continue;
        /* A kept-alive connection the server closed before this request reached it (an idle
         * timeout): send it again on a new one (RFC 9112, 9.3.1), once. */
        bool closed_unanswered = (rc == -ECONNRESET || rc == -EPIPE) && r.bytes == 0;
        if (closed_unanswered && answered_here > 0)
            continue;
        record_failure(c, load, &r, rc);
        k++;
    }
    if (fd >= 0)
        close(fd);
}

/* Connections split in halves like a loop, so that a thief takes half of what is left. */
PARENG_TASK_3(int, http_connections_task, unsigned, begin, unsigned, end, http_load *, load)
{
    if (end - begin == 1) {
        run_connection(PARENG_CONTEXT, load, begin);
        return 0;
    }
    unsigned mid = begin + (end - begin) / 2;
    PARENG_SPAWN(http_connections_task, mid, end, load);
    PARENG_CALL(http_connections_task, begin, mid, load);
    return PARENG_SYNC(http_connections_task);
}

/* ---- the caller's side ------------------------------------------------------------------ */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Adds the connections up into out; the samples are gathered and sorted for the
 * percentiles (nearest rank). */
static void summarize(http_load *load, unsigned connections, workload_http_result *out)
{
    uint64_t n = 0, first_error_at = UINT64_MAX;
    for (unsigned i = 0; i < connections; i++) {
        const http_connection *c = &load->connections[i];
        memmove(load->samples + n, load->samples + c->first_sample,
                c->completed * sizeof *load->samples);
        n += c->completed;
        out->requests += c->completed;
        out->errors += c->errors;
        out->non_2xx += c->non_2xx;
        out->bytes += c->bytes;
        if (c->first_error_at && c->first_error_at < first_error_at) {
            first_error_at = c->first_error_at;
            snprintf(out->first_error, sizeof out->first_error, "%s", c->first_error);
        }
    }
    if (n == 0)
        return;
    qsort(load->samples, n, sizeof *load->samples, compare_u64);
    static const unsigned percents[3] = {50, 90, 99};
    for (int k = 0; k < 3; k++)
        out->latency_ns[k] = load->samples[(percents[k] * n + 99) / 100 - 1];
    out->latency_ns[3] = load->samples[n - 1];
}

/* The errno of the lowest-numbered connection that failed (0 if none did): when no request got
 * a response, every connection met the same wall. */
static int first_errno(const http_load *load, unsigned connections)
{
    for (unsigned i = 0; i < connections; i++)
        if (load->connections[i].first_errno)
            return load->connections[i].first_errno;
    return 0;
}

int workload_http_get(pareng_engine *engine, const workload_http_config *cfg,
                    workload_http_result *out)
{
    workload__begin();
    memset(out, 0, sizeof *out);
    http_target t;
    int rc = prepare(cfg, &t);
    http_load *load = rc < 0 ? NULL : create_load(engine, cfg, &t);
    if (t.addresses)
        freeaddrinfo(t.addresses);
    if (rc < 0)
        return rc;
    if (!load)
        return -ENOMEM;
    uint64_t start = now_ns();
    int ignored;
    rc = PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, http_connections_task, &ignored, 0,
                           cfg->connections, load);
    out->seconds = (double)(now_ns() - start) * 1e-9;
    if (rc == 0) {
        summarize(load, cfg->connections, out);
        if (out->requests == 0 && first_errno(load, cfg->connections) == ENOTSUP)
            rc = workload__fail(ENOTSUP, "the engine was started without IO "
                              "(pareng_config.io_depth is 0)");
    }
    pareng_free(engine, load);
    return rc;
}
