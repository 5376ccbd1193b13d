/*
 * fuzz_http_response.c - the HTTP/1.1 response parser of `pareng run http`
 * (http_response_init / http_response_feed / http_response_closed, workloads/http.h), which
 * reads a response as it arrives, in reads of any size. The first input byte chooses how the
 * rest is cut into pieces (sizes from 0 up, varying); the rest is the bytes from the server.
 * Checked: feed never uses more than it was given; "needs more" uses everything; a complete
 * response stops (feeding it more uses nothing); a malformed one says why; and — the
 * differential check — the bytes fed in one piece and fed in pieces give the same outcome:
 * complete at the same byte, malformed for the same reason, or incomplete, with the same
 * status, keep-alive, chunked and length, and the same answer to a close.
 */
#include "fuzz.h"
#include "http.h"

#include <errno.h>
#include <stdbool.h>

typedef struct outcome {
    int rc;          /* 1 complete, 0 needs more, -EBADMSG */
    size_t consumed; /* bytes of the input this response took */
    http_response r;
} outcome;

static void check_feed(const http_response *r, int rc, size_t len, size_t used)
{
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -EBADMSG, "feed returned %d", rc);
    if (rc < 0) {
        FUZZ_CHECK(r->error && *r->error, "malformed without a reason");
        return;
    }
    FUZZ_CHECK(used <= len, "used %zu of %zu bytes", used, len);
    FUZZ_CHECK(rc == 1 || used == len, "needs more but used %zu of %zu", used, len);
    FUZZ_CHECK((rc == 1) == (r->state == HTTP_COMPLETE), "rc %d in state %d", rc,
               (int)r->state);
    FUZZ_CHECK(!r->error, "not malformed but an error: %s", r->error);
    FUZZ_CHECK(r->state == HTTP_STATUS_LINE || (r->status >= 100 && r->status <= 999),
               "status %d in state %d", r->status, (int)r->state);
}

/* A complete response takes nothing more. */
static void check_stopped(http_response *r, const char *rest, size_t len)
{
    size_t used = 12345;
    int rc = http_response_feed(r, rest, len, &used);
    FUZZ_CHECK(rc == 1 && used == 0, "a complete response took %zu more bytes (rc %d)", used,
               rc);
}

static outcome in_one_piece(const char *data, size_t len)
{
    outcome o = {0};
    http_response_init(&o.r);
    size_t used = 0;
    o.rc = http_response_feed(&o.r, data, len, &used);
    check_feed(&o.r, o.rc, len, used);
    o.consumed = o.rc < 0 ? 0 : used;
    if (o.rc == 1)
        check_stopped(&o.r, data + used, len - used);
    return o;
}

static outcome in_pieces(const char *data, size_t len, uint8_t how)
{
    outcome o = {0};
    http_response_init(&o.r);
    uint32_t x = how * 2654435761u + 1; /* piece sizes: a small LCG seeded by the first byte */
    unsigned most = 1u + (how & 15u) * ((how >> 4) + 1u); /* 1 to 256 bytes a piece */
    size_t at = 0;
    o.rc = 0;
    while (at <= len) {
        x = x * 1103515245u + 12345u;
        size_t piece = (x >> 16) % (most + 1); /* 0 included: an empty read */
        piece = piece > len - at ? len - at : piece;
        size_t used = 12345;
        int rc = http_response_feed(&o.r, data + at, piece, &used);
        check_feed(&o.r, rc, piece, used);
        if (rc < 0) {
            o.rc = rc;
            break;
        }
        at += used;
        if (rc == 1) {
            o.rc = 1;
            check_stopped(&o.r, data + at, len - at);
            break;
        }
        if (at == len && piece == 0)
            break; /* everything fed, and one empty read at the end */
    }
    o.consumed = o.rc < 0 ? 0 : at;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *bytes = (const char *)data + 1;
    size_t len = size - 1;
    outcome one = in_one_piece(bytes, len), many = in_pieces(bytes, len, data[0]);
    FUZZ_CHECK(one.rc == many.rc, "one piece: %d, in pieces: %d (%s / %s)", one.rc, many.rc,
               one.r.error ? one.r.error : "-", many.r.error ? many.r.error : "-");
    FUZZ_CHECK(one.consumed == many.consumed, "consumed %zu in one piece, %zu in pieces",
               one.consumed, many.consumed);
    FUZZ_CHECK(one.r.error == many.r.error, "errors '%s' and '%s'",
               one.r.error ? one.r.error : "-", many.r.error ? many.r.error : "-");
    if (one.rc >= 0) { /* (after an error, bytes counts what the pieces before it held) */
        FUZZ_CHECK(one.r.bytes == many.r.bytes, "%llu bytes in one piece, %llu in pieces",
                   (unsigned long long)one.r.bytes, (unsigned long long)many.r.bytes);
        FUZZ_CHECK(one.r.state == many.r.state && one.r.status == many.r.status &&
                       one.r.keep_alive == many.r.keep_alive &&
                       one.r.chunked == many.r.chunked && one.r.has_length == many.r.has_length &&
                       one.r.length == many.r.length && one.r.remaining == many.r.remaining,
                   "state %d/%d status %d/%d keep-alive %d/%d chunked %d/%d length %llu/%llu",
                   (int)one.r.state, (int)many.r.state, one.r.status, many.r.status,
                   one.r.keep_alive, many.r.keep_alive, one.r.chunked, many.r.chunked,
                   (unsigned long long)one.r.length, (unsigned long long)many.r.length);
        FUZZ_CHECK(one.r.bytes == one.consumed, "%llu bytes counted, %zu consumed",
                   (unsigned long long)one.r.bytes, one.consumed);
    }
    if (one.rc == 0) { /* the server closes the connection now */
        bool a = http_response_closed(&one.r), b = http_response_closed(&many.r);
        FUZZ_CHECK(a == b, "a close completes it in one piece: %d, in pieces: %d", a, b);
        FUZZ_CHECK(!a || one.r.state == HTTP_COMPLETE, "closed but not complete");
    }
    return 0;
}
