/*
 * fuzz_url.c - the URL parser of `pareng run http` (http_parse_url, workloads/http.h). A URL
 * taken has a non-empty host, a port of 1 to 65535 in digits, a target that starts with '/'
 * and holds no fragment, every part NUL-terminated inside its buffer and free of spaces and
 * control characters; and "http://" + authority + target parses again into the same parts.
 * A URL refused says why.
 */
#include "fuzz.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>

static bool clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static void check_parts(const char *url, const http_url *u)
{
    FUZZ_CHECK(memchr(u->host, '\0', sizeof u->host) && memchr(u->port, '\0', sizeof u->port) &&
                   memchr(u->authority, '\0', sizeof u->authority) &&
                   memchr(u->target, '\0', sizeof u->target),
               "'%s': a part not terminated", url);
    FUZZ_CHECK(u->host[0], "'%s': empty host", url);
    FUZZ_CHECK(u->authority[0], "'%s': empty authority", url);
    size_t plen = strlen(u->port);
    unsigned long port = strtoul(u->port, NULL, 10);
    FUZZ_CHECK(plen >= 1 && plen <= 5 && strspn(u->port, "0123456789") == plen && port >= 1 &&
                   port <= 65535,
               "'%s': port '%s'", url, u->port);
    FUZZ_CHECK(u->target[0] == '/', "'%s': target '%s'", url, u->target);
    FUZZ_CHECK(!strchr(u->target, '#'), "'%s': a fragment in the target '%s'", url, u->target);
    FUZZ_CHECK(clean(u->host) && clean(u->authority) && clean(u->target), "'%s'", url);
    FUZZ_CHECK(strcspn(u->host, "/?#@") == strlen(u->host), "'%s': host '%s'", url, u->host);
    if (strchr(u->host, ':')) { /* only an IPv6 address, written in brackets */
        struct in6_addr a;
        FUZZ_CHECK(inet_pton(AF_INET6, u->host, &a) == 1 && u->authority[0] == '[',
                   "'%s': host '%s'", url, u->host);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *url = fuzz_string(data, size);
    http_url *u = malloc(sizeof *u);
    if (!u)
        abort();
    memset(u, 0xa5, sizeof *u); /* so that an unterminated part shows */
    const char *why = "not set";
    int rc = http_parse_url(url, u, &why);
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL, "'%s': %d", url, rc);
        FUZZ_CHECK(why && *why, "'%s' refused without a reason", url);
    } else {
        FUZZ_CHECK(rc == 0 && !why, "'%s': %d, why '%s'", url, rc, why ? why : "");
        check_parts(url, u);
        /* the parts make the URL again */
        size_t len = strlen(u->authority) + strlen(u->target) + 8;
        char *again = malloc(len);
        if (!again)
            abort();
        snprintf(again, len, "http://%s%s", u->authority, u->target);
        http_url *v = malloc(sizeof *v);
        if (!v)
            abort();
        rc = http_parse_url(again, v, &why);
        FUZZ_CHECK(rc == 0, "'%s' parsed, '%s' (its parts) refused: %s", url, again, why);
        FUZZ_CHECK(strcmp(u->host, v->host) == 0 && strcmp(u->port, v->port) == 0 &&
                       strcmp(u->authority, v->authority) == 0 &&
                       strcmp(u->target, v->target) == 0,
                   "'%s' and '%s' differ: host '%s'/'%s' port '%s'/'%s' target '%s'/'%s'", url,
                   again, u->host, v->host, u->port, v->port, u->target, v->target);
        free(v);
        free(again);
    }
    free(u);
    free(url);
    return 0;
}
