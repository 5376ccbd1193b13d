/*
 * test_http.c - the http workload: the URL and response parsers on canned input (every way a
 * response can be cut into reads), then `pareng run http` as a user runs it, against a small
 * HTTP/1.1 server that this program runs in a thread on 127.0.0.1 (an ephemeral port). The
 * server counts what it accepted, received and sent, so that the client's figures are
 * checked against the other side of the wire: keep-alive (one accept per connection),
 * Content-Length and chunked bodies, non-2xx statuses, connections closed mid-response, idle
 * connections closed by the server, responses that never come, a refused port and bad URLs.
 * Nothing may be left behind: no worker, no segment, no server.
 */
#include "pareng.h"
#include "workloads.h"
#include "cli_harness.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/* ---- the URL parser --------------------------------------------------------------------- */

static void assert_url(const char *url, const char *host, const char *authority,
                       const char *port, const char *target)
{
    http_url u;
    const char *why = NULL;
    int rc = http_parse_url(url, &u, &why);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "\n%s: refused: %s\n", url, why);
        return;
    }
    bool same = strcmp(u.host, host) == 0 && strcmp(u.authority, authority) == 0 &&
                strcmp(u.port, port) == 0 && strcmp(u.target, target) == 0;
    CU_ASSERT(same);
    if (!same)
        fprintf(stderr, "\n%s: host '%s' authority '%s' port '%s' target '%s'\n", url, u.host,
                u.authority, u.port, u.target);
}

static void test_url_parts(void)
{
    assert_url("http://example.com", "example.com", "example.com", "80", "/");
    assert_url("HTTP://example.com:8080/a/b?x=1&y=2#top", "example.com", "example.com:8080",
               "8080", "/a/b?x=1&y=2");
    assert_url("http://127.0.0.1:1/", "127.0.0.1", "127.0.0.1:1", "1", "/");
    assert_url("http://[::1]:65535/file", "::1", "[::1]:65535", "65535", "/file");
    assert_url("http://[2001:db8::7]", "2001:db8::7", "[2001:db8::7]", "80", "/");
    assert_url("http://host:/p", "host", "host:", "80", "/p");
    assert_url("http://host?q", "host", "host", "80", "/?q");
    assert_url("http://host#frag", "host", "host", "80", "/");
}

static void test_bad_urls(void)
{
    static const char *const bad[] = {
        "https://example.com/", "ftp://example.com/", "example.com/", "", "http://",
        "http:///path", "http://host:0/", "http://host:65536/", "http://host:80x/",
        "http://host:123456/", "http://user@host/", "http://[::1/", "http://[]/",
        "http://[::1]x/", "http://[not-v6]/", "http://::1/", "http://a b/", "http://host/\x01",
        "http://h\xc3\xa9/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_url u;
        const char *why = NULL;
        int rc = http_parse_url(bad[i], &u, &why);
        CU_ASSERT(rc == -EINVAL && why && *why);
        if (rc != -EINVAL)
            fprintf(stderr, "\naccepted: '%s'\n", bad[i]);
    }
    char long_path[HTTP_TARGET_MAX + 32] = "http://host/";
    memset(long_path + strlen(long_path), 'a', HTTP_TARGET_MAX);
    http_url u;
    const char *why;
    CU_ASSERT_EQUAL(http_parse_url(long_path, &u, &why), -EINVAL);
    /* The longest target that fits parses, whether its '/' was written or is added before a
     * query alone, and so does the URL its parts make again (fuzz_url found a query alone
     * whose parts were refused); one byte more is refused. */
    static const char *const starts[] = {"http://host/", "http://host?"};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        char url[HTTP_TARGET_MAX + 32], again[HTTP_TARGET_MAX + 32];
        size_t head = strlen(starts[i]), fill = HTTP_TARGET_MAX - 1 - (i == 0 ? 1 : 2);
        memcpy(url, starts[i], head);
        memset(url + head, 'a', fill + 1);
        url[head + fill] = '\0';
        CU_ASSERT_EQUAL(http_parse_url(url, &u, &why), 0);
        CU_ASSERT_EQUAL(strlen(u.target), HTTP_TARGET_MAX - 1);
        snprintf(again, sizeof again, "http://%s%s", u.authority, u.target);
        http_url v;
        CU_ASSERT_EQUAL(http_parse_url(again, &v, &why), 0);
        CU_ASSERT_STRING_EQUAL(v.target, u.target);
        url[head + fill] = 'a';
        url[head + fill + 1] = '\0';
        CU_ASSERT_EQUAL(http_parse_url(url, &u, &why), -EINVAL);
    }
}

/* ---- the response parser ---------------------------------------------------------------- */

typedef struct parsed {
    int rc;       /* of the last feed: 1 complete, 0 more wanted, -EBADMSG */
    size_t used;  /* bytes consumed in all */
    http_response r;
} parsed;

/* Feeds text in pieces: the first `split` bytes, then the rest in pieces of at most `piece`
 * bytes (0: all of it), until the response is complete or malformed. */
static parsed parse_pieces(const char *text, size_t len, size_t split, size_t piece)
{
    parsed p = {.rc = 0};
    http_response_init(&p.r);
    while (p.used < len && p.rc == 0) {
        size_t n = len - p.used;
        if (p.used < split)
            n = split - p.used;
        else if (piece && n > piece)
            n = piece;
        size_t used = 0;
        p.rc = http_response_feed(&p.r, text + p.used, n, &used);
        if (p.rc >= 0)
            p.used += used;
    }
    return p;
}

/* text (a whole response, then maybe the start of another) ends after `len` bytes, with this
 * status and keep-alive, however it is cut into reads. */
static void assert_complete(const char *text, size_t len, int status, bool keep_alive)
{
    size_t total = strlen(text);
    bool ok = true;
    /* every cut into two reads, and one byte per read */
    for (size_t split = 0; split <= total + 1; split++) {
        parsed p = split <= total ? parse_pieces(text, total, split, 0)
                                  : parse_pieces(text, total, 0, 1);
        bool right = p.rc == 1 && p.used == len && p.r.bytes == len && p.r.status == status &&
                     p.r.keep_alive == keep_alive;
        if (!right && ok)
            fprintf(stderr, "\ncut at %zu: rc %d, used %zu of %zu, status %d, keep-alive %d "
                    "(%s)\n%s\n", split, p.rc, p.used, len, p.r.status, p.r.keep_alive,
                    p.r.error ? p.r.error : "no error", text);
        ok = ok && right;
    }
    CU_ASSERT(ok);
}

#define COMPLETE(text, status, keep_alive) assert_complete(text, strlen(text), status, keep_alive)

static void test_content_length(void)
{
    COMPLETE("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
             "hello world!", 200, true);
    COMPLETE("HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n", 200, true);
    /* the same value twice is allowed; whitespace around a value too */
    COMPLETE("HTTP/1.1 201 Created\r\nContent-Length: 3\r\nContent-Length:  3 \r\n\r\nabc",
             201, true);
    /* a body bigger than any read */
    static char big[70000];
    int head = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n");
    memset(big + head, 'x', 65536);
    parsed p = parse_pieces(big, (size_t)head + 65536, 0, 16384);
    CU_ASSERT(p.rc == 1 && p.used == (size_t)head + 65536);
}

static void test_chunked(void)
{
    COMPLETE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5;name=value;other\r\nhello\r\n"
             "7\r\n, world\r\n"
             "A \r\n0123456789\r\n"
             "0;last=yes\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n", 200, true);
    /* codings before chunked; chunked wins over Content-Length; sizes in either case */
    COMPLETE("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 99\r\n\r\n"
             "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
             200, true);
    /* an empty body */
    COMPLETE("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, true);
}

static void test_statuses_and_connections(void)
{
    COMPLETE("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", 404, true);
    COMPLETE("HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n", 500, true); /* no reason phrase */
    COMPLETE("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, false);
    COMPLETE("HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", 200,
             false);
    COMPLETE("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, false);
    COMPLETE("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200,
             true);
    /* no body, whatever the headers say */
    COMPLETE("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 204, true);
    COMPLETE("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 304, true);
    /* an interim response first */
    COMPLETE("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!", 200,
             true);
    /* bare LF line ends; a folded line; a long header nobody reads */
    COMPLETE("HTTP/1.1 200 OK\nX-Folded: a\n  b\nContent-Length: 1\n\n!", 200, true);
    static char long_header[2048];
    snprintf(long_header, sizeof long_header,
             "HTTP/1.1 200 OK\r\nX-Long: %01000d\r\nContent-Length: 2\r\n\r\nok", 7);
    COMPLETE(long_header, 200, true);
}

static void test_what_follows(void)
{
    /* the next response's bytes are not this one's */
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    assert_complete(two, strlen(two) - strlen("HTTP/1.1 200 OK\r\n"), 200, true);
    /* a body delimited by the close: complete only when the server closes */
    const char *until_close = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc";
    parsed p = parse_pieces(until_close, strlen(until_close), 0, 0);
    CU_ASSERT_EQUAL(p.rc, 0);
    CU_ASSERT_FALSE(p.r.keep_alive);
    CU_ASSERT_TRUE(http_response_closed(&p.r));
    /* an encoding other than chunked also runs to the close */
    const char *gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nab";
    p = parse_pieces(gzip, strlen(gzip), 0, 0);
    CU_ASSERT(p.rc == 0 && http_response_closed(&p.r));
    /* a close before the end of a Content-Length or chunked body is not the end */
    const char *short_body = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    p = parse_pieces(short_body, strlen(short_body), 0, 0);
    CU_ASSERT(p.rc == 0 && !http_response_closed(&p.r));
    const char *short_chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc";
    p = parse_pieces(short_chunks, strlen(short_chunks), 0, 0);
    CU_ASSERT(p.rc == 0 && !http_response_closed(&p.r));
    p = parse_pieces("HTTP/1.1 200 OK\r\n", 17, 0, 0);
    CU_ASSERT(p.rc == 0 && p.r.bytes == 17 && !http_response_closed(&p.r));
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
        "\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: no name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t piece = 0; piece <= 1; piece++) {
            parsed p = parse_pieces(bad[i], strlen(bad[i]), 0, piece);
            bool refused = p.rc == -EBADMSG && p.r.error && *p.r.error;
            CU_ASSERT(refused);
            if (!refused)
                fprintf(stderr, "\nnot refused (rc %d): %s\n", p.rc, bad[i]);
        }
    }
    /* a header the parser needs must not be cut */
    static char long_length[1024];
    snprintf(long_length, sizeof long_length, "HTTP/1.1 200 OK\r\nContent-Length: %0400d\r\n\r\n",
             1);
    CU_ASSERT_EQUAL(parse_pieces(long_length, strlen(long_length), 0, 0).rc, -EBADMSG);
}

/* ---- a small HTTP/1.1 server, in a thread of this program ------------------------------ */

/* What the server did: its thread is the only writer while a command runs; the tests reset
 * the counts while it is idle. */
typedef struct server_counts {
    _Atomic uint64_t requests, accepted, bytes_sent, bad_requests;
} server_counts;

#define MAX_CLIENTS 512
#define REQUEST_MAX 8192

static server_counts served;
static pthread_t server_thread;
static int server_listener, server_stop; /* the listening socket; an eventfd that ends it */
static unsigned server_port;

typedef struct client {
    int fd;
    size_t len;
    char in[REQUEST_MAX];
} client;

/* Counted before the send: the client may read the bytes, exit, and have the test compare
 * counts before this thread runs again (seen on 2 loaded CPUs); what did not go is taken
 * back. */
static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        atomic_fetch_add(&served.bytes_sent, (uint64_t)len);
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        atomic_fetch_sub(&served.bytes_sent, (uint64_t)len - (uint64_t)(n > 0 ? n : 0));
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* A response with a Content-Length body of `length` bytes ('x'); `extra` headers go in as
 * given. */
static bool send_length(int fd, int status, uint64_t length, const char *extra)
{
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d Test\r\nServer: test\r\n%sContent-Length: "
                     "%llu\r\n\r\n", status, extra, (unsigned long long)length);
    if (!send_all(fd, head, (size_t)n))
        return false;
    char body[4096];
    memset(body, 'x', sizeof body);
    for (uint64_t left = length; left > 0;) {
        size_t piece = left < sizeof body ? (size_t)left : sizeof body;
        if (!send_all(fd, body, piece))
            return false;
        left -= piece;
    }
    return true;
}

/* A chunked body of `length` bytes in chunks of 1000, with a chunk extension and a trailer. */
static bool send_chunked(int fd, uint64_t length)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (!send_all(fd, head, sizeof head - 1))
        return false;
    char chunk[1100];
    for (uint64_t left = length, k = 0; left > 0; k++) {
        size_t size = left < 1000 ? (size_t)left : 1000;
        int n = snprintf(chunk, sizeof chunk, "%zx%s\r\n", size, k == 0 ? ";first=yes" : "");
        memset(chunk + n, 'c', size);
        memcpy(chunk + n + size, "\r\n", 2);
        if (!send_all(fd, chunk, (size_t)n + size + 2))
            return false;
        left -= size;
    }
    static const char end[] = "0\r\nX-Trailer: done\r\n\r\n";
    return send_all(fd, end, sizeof end - 1);
}

/* Answers the request for `path`, the k-th request the server received (from 1); false when
 * the connection must be closed afterwards. Paths:
 *   /length/N /chunked/N /status/S   that body, that status
 *   /mix         k % 4: 0 a 404, 1 chunked 3000 bytes, 2 length 100, 3 length 20000
 *   /cut/K       every K-th: Content-Length 1000, 10 bytes of it, then the close
 *   /close/K     every K-th: Connection: close, and the close
 *   /idle-close  length 100, then the close without a word (as an idle timeout does)
 *   /silent      no answer at all
 *   /garbage     not HTTP */
static bool respond(int fd, const char *path, uint64_t k)
{
    unsigned long n = 0;
    if (sscanf(path, "/length/%lu", &n) == 1)
        return send_length(fd, 200, n, "");
    if (sscanf(path, "/chunked/%lu", &n) == 1)
        return send_chunked(fd, n);
    if (sscanf(path, "/status/%lu", &n) == 1)
        return send_length(fd, (int)n, 9, "");
    if (strcmp(path, "/mix") == 0) {
        switch (k % 4) {
        case 0: return send_length(fd, 404, 9, "");
        case 1: return send_chunked(fd, 3000);
        case 2: return send_length(fd, 200, 100, "");
        default: return send_length(fd, 200, 20000, "");
        }
    }
    if (sscanf(path, "/cut/%lu", &n) == 1 && n) {
        if (k % n)
            return send_length(fd, 200, 100, "");
        static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
        send_all(fd, cut, sizeof cut - 1);
        return false;
    }
    if (sscanf(path, "/close/%lu", &n) == 1 && n)
        return send_length(fd, 200, 100, k % n ? "" : "Connection: close\r\n") && k % n;
    if (strcmp(path, "/idle-close") == 0) {
        send_length(fd, 200, 100, "");
        return false;
    }
    if (strcmp(path, "/silent") == 0)
        return true;
    if (strcmp(path, "/garbage") == 0) {
        send_all(fd, "HELLO\r\n\r\n", 9);
        return false;
    }
    return send_length(fd, 400, 9, "");
}

/* The requests complete in c's buffer, answered in order; false when c must be closed. */
static bool serve_requests(client *c)
{
    char *end;
    while ((end = memmem(c->in, c->len, "\r\n\r\n", 4))) {
        size_t len = (size_t)(end - c->in) + 4;
        *end = '\0';
        uint64_t k = atomic_fetch_add(&served.requests, 1) + 1;
        char path[1024];
        /* what pareng must send: a GET for HTTP/1.1 with a Host header */
        bool well_formed = sscanf(c->in, "GET %1023s HTTP/1.1\r\n", path) == 1 &&
                           strstr(c->in, "\r\nHost: ") != NULL;
        if (!well_formed) {
            atomic_fetch_add(&served.bad_requests, 1);
            send_length(c->fd, 400, 9, "");
            return false;
        }
        if (!respond(c->fd, path, k))
            return false;
        memmove(c->in, c->in + len, c->len - len);
        c->len -= len;
    }
    return c->len < sizeof c->in;
}

/* The server's thread: one poll loop over the listening socket and the clients, until
 * server_stop is written. */
static void *serve(void *unused)
{
    (void)unused;
    static client clients[MAX_CLIENTS];
    for (int i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    for (;;) {
        struct pollfd fds[2 + MAX_CLIENTS];
        int which[2 + MAX_CLIENTS], n = 2;
        fds[0] = (struct pollfd){.fd = server_stop, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = server_listener, .events = POLLIN};
        for (int i = 0; i < MAX_CLIENTS; i++)
            if (clients[i].fd >= 0) {
                which[n] = i;
                fds[n++] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
            }
        if (poll(fds, (nfds_t)n, -1) < 0)
            continue;
        if (fds[0].revents)
            break;
        if (fds[1].revents & POLLIN) {
            int fd = accept4(server_listener, NULL, NULL, SOCK_CLOEXEC);
            int free_slot = 0;
            while (free_slot < MAX_CLIENTS && clients[free_slot].fd >= 0)
                free_slot++;
            if (fd >= 0 && free_slot < MAX_CLIENTS) {
                /* a response goes out in several sends: without this, Nagle holds each
                 * later one until the client's delayed ACK (40 ms) */
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
                atomic_fetch_add(&served.accepted, 1);
                clients[free_slot] = (client){.fd = fd};
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (int j = 2; j < n; j++) {
            client *c = &clients[which[j]];
            if (!fds[j].revents)
                continue;
            ssize_t got = recv(c->fd, c->in + c->len, sizeof c->in - c->len, 0);
            if (got > 0)
                c->len += (size_t)got;
            if (got <= 0 || !serve_requests(c)) {
                close(c->fd);
                c->fd = -1;
            }
        }
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].fd >= 0)
            close(clients[i].fd);
    return NULL;
}

static int start_server(void)
{
    server_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    server_stop = eventfd(0, EFD_CLOEXEC);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (server_listener < 0 || server_stop < 0 ||
        bind(server_listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(server_listener, SOMAXCONN) < 0 ||
        getsockname(server_listener, (struct sockaddr *)&addr, &len) < 0) {
        perror("test server");
        return -1;
    }
    server_port = ntohs(addr.sin_port);
    return pthread_create(&server_thread, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int stop_server(void)
{
    uint64_t one = 1;
    if (write(server_stop, &one, sizeof one) != sizeof one)
        return -1;
    pthread_join(server_thread, NULL);
    close(server_listener);
    close(server_stop);
    return 0;
}

static void reset_counts(void)
{
    atomic_store(&served.requests, 0);
    atomic_store(&served.accepted, 0);
    atomic_store(&served.bytes_sent, 0);
    atomic_store(&served.bad_requests, 0);
}

/* ---- pareng run http against it -------------------------------------------------------- */

static const char *url_of(const char *path)
{
    static char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", server_port, path);
    return url;
}

/* `pareng run http URL --requests N --connections C --json [more]`, exit 0, one JSON object;
 * the client's count of requests and of errors add up to N, its bytes are the server's. */
static command *run_json(const char *path, const char *requests, const char *connections,
                         const char *more, const char *value)
{
    reset_counts();
    command *c = RUN("run", "http", url_of(path), "--requests", requests, "--connections",
                     connections, "--json", more, value);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT_EQUAL(json_number_of(c->out, "requests") + json_number_of(c->out, "errors"),
                    atof(requests));
    CU_ASSERT_EQUAL(json_number_of(c->out, "bytes"), (double)atomic_load(&served.bytes_sent));
    CU_ASSERT_EQUAL(atomic_load(&served.bad_requests), 0);
    assert_no_leftover(c);
    return c;
}

/* p50 <= p90 <= p99 <= max, all above zero */
static void assert_latencies_ordered(const char *json)
{
    double p50 = json_number_of(json, "p50"), p90 = json_number_of(json, "p90"),
           p99 = json_number_of(json, "p99"), max = json_number_of(json, "max");
    CU_ASSERT(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= max);
}

static void test_keep_alive_lengths(void)
{
    command *c = run_json("/length/1000", "400", "8", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":400"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    CU_ASSERT(json_has(c->out, "\"non_2xx\":0"));
    CU_ASSERT(json_has(c->out, "\"connections\":8"));
    CU_ASSERT(json_has(c->out, "\"first_error\":null"));
    assert_latencies_ordered(c->out);
    /* every request reached the server, over one connection each: keep-alive */
    CU_ASSERT_EQUAL(atomic_load(&served.requests), 400);
    CU_ASSERT_EQUAL(atomic_load(&served.accepted), 8);
    command_free(c);
}

static void test_chunked_and_big_bodies(void)
{
    command *c = run_json("/chunked/50000", "60", "3", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":60"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    CU_ASSERT_EQUAL(atomic_load(&served.accepted), 3);
    command_free(c);
    c = run_json("/length/200000", "20", "2", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":20"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    command_free(c);
}

static void test_mixed_and_non_2xx(void)
{
    /* requests 4, 8, ... 1000 get a 404: 250 of them, whichever connection sends them */
    command *c = run_json("/mix", "1000", "16", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":1000"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    CU_ASSERT(json_has(c->out, "\"non_2xx\":250"));
    CU_ASSERT_EQUAL(atomic_load(&served.accepted), 16);
    command_free(c);
    c = run_json("/status/503", "30", "3", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":30"));
    CU_ASSERT(json_has(c->out, "\"non_2xx\":30"));
    command_free(c);
}

static void test_text_output(void)
{
    reset_counts();
    command *c = RUN("run", "http", url_of("/length/10"), "--requests", "50", "--connections",
                     "5", "--cores", "2");
    CU_ASSERT(exited_with(c, 0));
    char line[256];
    CU_ASSERT(line_of(c->out, 0, line, sizeof line) &&
              strncmp(line, "requests: 50, errors: 0, non-2xx: 0, bytes: ", 44) == 0);
    CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strncmp(line, "time: ", 6) == 0 &&
              strstr(line, "requests/s: ") && strstr(line, "workers: 2, connections: 5"));
    CU_ASSERT(line_of(c->out, 2, line, sizeof line) && strncmp(line, "latency: p50 ", 13) == 0 &&
              strstr(line, ", p90 ") && strstr(line, ", p99 ") && strstr(line, ", max "));
    CU_ASSERT_EQUAL(count_lines(c->out), 3);
    CU_ASSERT_EQUAL(c->err_len, 0);
    assert_no_leftover(c);
    command_free(c);
}

static void test_closed_mid_response(void)
{
    /* every 10th response is cut: an error each, and the connection opened again */
    command *c = run_json("/cut/10", "200", "4", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":180"));
    CU_ASSERT(json_has(c->out, "\"errors\":20"));
    CU_ASSERT(contains(c->out, "closed the connection mid-response"));
    /* nothing was sent twice; each cut but the last ones of a connection meant a new one */
    CU_ASSERT_EQUAL(atomic_load(&served.requests), 200);
    CU_ASSERT(atomic_load(&served.accepted) > 4 && atomic_load(&served.accepted) <= 24);
    command_free(c);
}

static void test_server_closes(void)
{
    /* Connection: close on every 5th response: no error, a new connection after it */
    command *c = run_json("/close/5", "100", "2", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":100"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    CU_ASSERT_EQUAL(atomic_load(&served.requests), 100);
    CU_ASSERT(atomic_load(&served.accepted) >= 2 + 18 && atomic_load(&served.accepted) <= 22);
    command_free(c);
    /* a close without a word after each response: the next request, which the server never
     * answered, goes again on a new connection; not an error */
    c = run_json("/idle-close", "30", "1", NULL, NULL);
    CU_ASSERT(json_has(c->out, "\"requests\":30"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    CU_ASSERT_EQUAL(atomic_load(&served.accepted), 30);
    command_free(c);
}

static void test_localhost(void)
{
    /* a name, resolved before the run; where "localhost" resolves to ::1 first (nobody
     * listens there), the connections go on to 127.0.0.1 */
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%u/length/5", server_port);
    reset_counts();
    /* the short options and abbreviations of getopt_long, options before the URL */
    command *c = RUN("run", "http", "-n", "20", "--conn=2", "-j", url);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"connections\":2"));
    CU_ASSERT(json_has(c->out, "\"requests\":20"));
    CU_ASSERT(json_has(c->out, "\"errors\":0"));
    assert_no_leftover(c);
    command_free(c);
}

/* The run fails (status 1) with one line naming why; nothing is printed on stdout. */
static void assert_run_failed(command *c, const char *why)
{
    CU_ASSERT(exited_with(c, 1));
    CU_ASSERT_EQUAL(c->out_len, 0);
    CU_ASSERT_EQUAL(count_lines(c->err), 1);
    CU_ASSERT(contains(c->err, "pareng: run failed: "));
    CU_ASSERT(contains(c->err, why));
    assert_no_leftover(c);
}

static void test_no_answer(void)
{
    reset_counts();
    double t0 = now_ms();
    command *c = RUN("run", "http", url_of("/silent"), "--requests", "2", "--connections", "1",
                     "--timeout", "200ms");
    double ms = now_ms() - t0;
    assert_run_failed(c, "within 200 ms");
    /* two requests, each given up after its 200 ms */
    CU_ASSERT(ms >= 400 && ms < 5000);
    CU_ASSERT_EQUAL(atomic_load(&served.requests), 2);
    command_free(c);
    c = RUN("run", "http", url_of("/garbage"), "--requests", "3", "--connections", "1");
    assert_run_failed(c, "malformed response");
    command_free(c);
}

/* A port that nobody listens on: bound, then closed. */
static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CU_ASSERT_FATAL(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
                    getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static void test_refused(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
    double t0 = now_ms();
    command *c = RUN("run", "http", url, "--requests", "100", "--connections", "4");
    assert_run_failed(c, "Connection refused");
    CU_ASSERT(contains(c->err, "no request got a response"));
    CU_ASSERT(now_ms() - t0 < 5000);
    command_free(c);
}

static void test_connect_timeout(void)
{
    /* A listener that never accepts, its queue full: the kernel drops further SYNs, so a
     * connect gets no answer at all, as from a host that is down. */
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    CU_ASSERT_FATAL(listener >= 0 && bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0 &&
                    listen(listener, 0) == 0 &&
                    getsockname(listener, (struct sockaddr *)&addr, &len) == 0);
    int fillers[3];
    for (int i = 0; i < 3; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&addr, sizeof addr);
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", ntohs(addr.sin_port));
    double t0 = now_ms();
    command *c = RUN("run", "http", url, "--requests", "4", "--connections", "2", "--timeout",
                     "300ms");
    double ms = now_ms() - t0;
    assert_run_failed(c, "Connection timed out");
    /* each connection gave up after one connect timeout */
    CU_ASSERT(ms >= 300 && ms < 5000);
    command_free(c);
    for (int i = 0; i < 3; i++)
        close(fillers[i]);
    close(listener);
}

/* ---- the library's own refusals ----------------------------------------------------------- */

static pareng_engine *engine_with(unsigned io_depth, size_t shared_bytes)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    cfg.io_depth = io_depth;
    cfg.shared_bytes = shared_bytes;
    pareng_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, &cfg), 0);
    return e;
}

static void test_library_refusals(void)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
    workload_http_config http = {.url = url, .requests = 10, .connections = 2};
    workload_http_result r;
    /* an engine without IO: said so, not ten refused connections */
    pareng_engine *e = engine_with(0, 0);
    CU_ASSERT_EQUAL(workload_http_get(e, &http, &r), -ENOTSUP);
    CU_ASSERT_PTR_NOT_NULL(strstr(workload_error(), "io_depth"));
    pareng_stop(e);
    /* 100000 latencies do not fit in 64 KiB: the message says what is needed */
    e = engine_with(PARENG_IO_DEPTH_AUTO, 64 << 10);
    http.requests = 100000;
    CU_ASSERT_EQUAL(workload_http_get(e, &http, &r), -ENOMEM);
    CU_ASSERT_PTR_NOT_NULL(strstr(workload_error(), "shared_bytes"));
    pareng_stop(e);
    /* checked before anything runs, with or without an engine */
    http.url = "https://127.0.0.1/";
    CU_ASSERT_EQUAL(workload_http_check(&http), -EINVAL);
    http = (workload_http_config){.url = url, .requests = 1, .connections = 2};
    CU_ASSERT_EQUAL(workload_http_check(&http), -EINVAL);
    http.connections = 1;
    CU_ASSERT_EQUAL(workload_http_check(&http), 0);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

/* Bad input is refused before anything connects: no server is needed behind it. */
#define ANY_URL "http://127.0.0.1:9/"

static void test_bad_input(void)
{
    CHECK_BAD_INPUT({{"run", "http", "https://127.0.0.1/"}, {"https://127.0.0.1/", "only http://"}},
                    {{"run", "http", "ftp://127.0.0.1/"}, {"only http://"}},
                    {{"run", "http", "127.0.0.1:80/"}, {"starts with http://"}},
                    {{"run", "http", "http://"}, {"no host"}},
                    {{"run", "http", "http://127.0.0.1:99999/"}, {"port"}},
                    {{"run", "http", "http://[::1/"}, {"IPv6"}},
                    {{"run", "http", "http://user@host/"}, {"user"}},
                    {{"run", "http"}, {"needs a URL"}},
                    {{"run", "http", ANY_URL, "--requests", "2", "--connections", "3"},
                     {"3 connections for 2 requests"}},
                    {{"run", "http", ANY_URL, "--requests", "0"}, {"--requests", "'0'"}},
                    {{"run", "http", ANY_URL, "--connections", "0"}, {"--connections", "'0'"}},
                    {{"run", "http", ANY_URL, "--timeout", "0s"}, {"--timeout", "'0s'"}},
                    {{"run", "http", ANY_URL, "--timeout", "5"}, {"--timeout", "'5'"}},
                    {{"run", "http", ANY_URL, "--io-depth", "0"}, {"--io-depth", "'0'"}},
                    {{"run", "http", ANY_URL, "--grain", "3"}, {"run http", "--grain"}},
                    {{"run", "http", ANY_URL, "--cutoff", "none"}, {"run http", "--cutoff"}},
                    {{"run", "http", ANY_URL, "-n"}, {"--requests needs a value"}},
                    {{"run", "http", ANY_URL, ANY_URL}, {"unexpected argument"}},
                    {{"run", "http", "http://127.0.0.1/\x1b[2J"}, {"\\x1b[2J"}},
                    {{"run", "http", ANY_URL, "--serial"}, {"run http", "--serial"}},
                    {{"run", "http", ANY_URL, "--io-latency", "1ms"}, {"run http", "--io-latency"}},
                    {{"run", "fib", "10", "--requests", "5"}, {"run fib", "--requests"}},
                    {{"map", "http", ANY_URL}, {"'http'"}});
}

int main(void)
{
    if (!harness_find_pareng())
        return 99;
    CU_TestInfo parsers[] = {
        {"URL parts", test_url_parts},
        {"bad URLs", test_bad_urls},
        {"Content-Length, every cut into reads", test_content_length},
        {"chunked: extensions, trailers", test_chunked},
        {"statuses, keep-alive and close", test_statuses_and_connections},
        {"what follows a response; close-delimited", test_what_follows},
        {"malformed responses", test_malformed},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo against_server[] = {
        {"keep-alive, Content-Length", test_keep_alive_lengths},
        {"chunked, bodies bigger than a read", test_chunked_and_big_bodies},
        {"mixed responses, non-2xx counted", test_mixed_and_non_2xx},
        {"text output", test_text_output},
        {"closed mid-response: errors, reconnect", test_closed_mid_response},
        {"server closes: no errors, reconnect", test_server_closes},
        {"a host name (localhost)", test_localhost},
        {"no answer, garbage: status 1, no hang", test_no_answer},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo failures[] = {
        {"refused port: status 1", test_refused},
        {"connect timeout: status 1, no hang", test_connect_timeout},
        {"library: no IO, too little shared memory, checks", test_library_refusals},
        {"bad URLs and counts: status 2", test_bad_input},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo last[] = {
        {"nothing left", test_nothing_left},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("parsers", parsers),
        {.pName = "against a local server", .pInitFunc = start_server,
         .pCleanupFunc = stop_server, .pSetUpFunc = NULL, .pTearDownFunc = NULL,
         .pTests = against_server},
        TESTING_SUITE("failures", failures),
        TESTING_SUITE("leftovers", last),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
