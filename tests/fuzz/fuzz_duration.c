/*
 * fuzz_duration.c - the CLI's durations (--io-latency, --timeout: "500us", "1ms", "2s"):
 * parse_duration of tools/cli.c (declared in tools/cli.h). A duration taken is 1 ns to 1 h,
 * it is the number times its unit, and it prints back to itself in nanoseconds.
 */
#include "fuzz.h"
#include "cli.h"

#include <inttypes.h>
#include <stdbool.h>

#define HOUR_NS 3600000000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *text = fuzz_string(data, size);
    uint64_t ns = UINT64_MAX;
    if (parse_duration(text, &ns)) {
        FUZZ_CHECK(ns >= 1 && ns <= HOUR_NS, "'%s': %" PRIu64 " ns", text, ns);
        size_t digits = strspn(text, "0123456789");
        const char *unit = text + digits;
        uint64_t scale = strcmp(unit, "ns") == 0   ? 1
                         : strcmp(unit, "us") == 0 ? 1000
                         : strcmp(unit, "ms") == 0 ? 1000000
                         : strcmp(unit, "s") == 0  ? 1000000000
                                                   : 0;
        FUZZ_CHECK(digits > 0 && scale, "'%s' taken: not a number and a unit", text);
        FUZZ_CHECK(strtoull(text, NULL, 10) * scale == ns, "'%s': %" PRIu64 " ns", text, ns);
        char again[32];
        snprintf(again, sizeof again, "%" PRIu64 "ns", ns);
        uint64_t ns2 = 0;
        FUZZ_CHECK(parse_duration(again, &ns2) && ns2 == ns, "'%s' is %" PRIu64 " ns, '%s' not",
                   text, ns, again);
    }
    free(text);
    return 0;
}
