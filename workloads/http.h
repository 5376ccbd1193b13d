/*
 * http.h - the pure parts of the http workload (workloads/http.c), apart so that the tests reach
 * them without a network: the URL parser and the HTTP/1.1 response parser.
 */
#ifndef PARENG_HTTP_H
#define PARENG_HTTP_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- URLs ------------------------------------------------------------------------------ */

#define HTTP_HOST_MAX 256
#define HTTP_TARGET_MAX 2048

/* http://host[:port][/path][?query][#fragment], split. */
typedef struct http_url {
    char host[HTTP_HOST_MAX];      /* for getaddrinfo: a name, IPv4, or IPv6 without [] */
    char authority[HTTP_HOST_MAX + 8]; /* the Host header: host[:port] as written */
    char port[8];                          /* "80" when the URL has none */
    char target[HTTP_TARGET_MAX];  /* path and query ("/" when empty); no fragment */
} http_url;

/* 0, or -EINVAL with *why (a static string) naming the problem: not http:// (https:// and
 * other schemes are refused), no host, a bad port, user info, spaces or control characters,
 * too long. */
WORKLOAD__INTERNAL int http_parse_url(const char *url, http_url *out,
                                            const char **why);

/* ---- responses ------------------------------------------------------------------------- */

/* Bytes of each status, header, chunk-size or trailer line that are kept: enough for every
 * value the parser reads; a longer line is skipped past, and only a header the parser needs
 * (Content-Length, Transfer-Encoding, Connection) makes it an error. */
#define HTTP_LINE_KEEP 256

enum http_state {
    HTTP_STATUS_LINE, HTTP_HEADER_LINE, HTTP_BODY_LENGTH,
    HTTP_BODY_UNTIL_CLOSE, HTTP_CHUNK_SIZE_LINE, HTTP_CHUNK_DATA,
    HTTP_CHUNK_DATA_END, HTTP_TRAILER_LINE, HTTP_COMPLETE,
};

/* One response to a GET, parsed as it arrives in pieces of any size. */
typedef struct http_response {
    enum http_state state;
    int status;              /* 100..999 once the status line is in */
    bool keep_alive;         /* the connection may carry the next request */
    bool chunked;            /* the last Transfer-Encoding coding is chunked */
    bool has_encoding;       /* a Transfer-Encoding header came (it overrides Content-Length) */
    bool has_length;
    uint64_t length;         /* Content-Length */
    uint64_t remaining;      /* body or chunk bytes still to come */
    uint64_t bytes;          /* bytes of this response consumed so far */
    const char *error;       /* why it is malformed (a static string), or NULL */
    size_t line_len;         /* bytes of the current line seen, kept or not */
    char line[HTTP_LINE_KEEP];
} http_response;

WORKLOAD__INTERNAL void http_response_init(http_response *r);
/* Consumes up to len bytes of data: returns 1 when the response is complete (*used = its last
 * byte's offset + 1; bytes after it are not this response's), 0 when it needs more (*used =
 * len), -EBADMSG when it is malformed (r->error says why). */
WORKLOAD__INTERNAL int http_response_feed(http_response *r, const char *data,
                                                size_t len, size_t *used);
/* The server closed the connection: does that complete the response (a body delimited by the
 * close, neither chunked nor with a Content-Length)? */
WORKLOAD__INTERNAL bool http_response_closed(http_response *r);

#endif
