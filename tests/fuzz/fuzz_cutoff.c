/*
 * fuzz_cutoff.c - the cutoff text of --cutoff, PARENG_CUTOFF and cutoff=
 * (pareng_config_set_cutoff), and the same text through the environment
 * (pareng_config_default): both must agree, a refused text must leave the field as it was and
 * say why, and a depth must print back to itself.
 */
#include "fuzz.h"
#include "internal.h"

#include <errno.h>
#include <stdbool.h>

#define UNTOUCHED 0xdeadbeefu

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        unsetenv("PARENG_NUM_WORKERS");
        unsetenv("PARENG_PLACES");
        unsetenv("PARENG_DISPLAY_AFFINITY");
        ready = true;
    }
    if (size > 1024)
        return 0;
    char *text = fuzz_string(data, size);

    pareng_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.cutoff_depth = UNTOUCHED;
    int rc = pareng_config_set_cutoff(&cfg, text);
    unsigned d = cfg.cutoff_depth;
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL, "'%s': %d", text, rc);
        FUZZ_CHECK(d == UNTOUCHED, "'%s' refused but the depth became %u", text, d);
        FUZZ_CHECK(*pareng_last_error(), "'%s' refused without a message", text);
    } else {
        FUZZ_CHECK(rc == 0, "'%s': %d", text, rc);
        FUZZ_CHECK(d == PARENG_CUTOFF_AUTO || d == PARENG_CUTOFF_NONE ||
                       (d >= 1 && d <= PARENG__CUTOFF_DEPTH_MAX),
                   "'%s': depth %u", text, d);
        FUZZ_CHECK((d == PARENG_CUTOFF_AUTO) ==
                       (strcmp(text, "auto") == 0 || strcmp(text, "0") == 0),
                   "'%s': depth %u", text, d);
        FUZZ_CHECK((d == PARENG_CUTOFF_NONE) == (strcmp(text, "none") == 0), "'%s': depth %u",
                   text, d);
        if (d != PARENG_CUTOFF_AUTO && d != PARENG_CUTOFF_NONE) { /* prints back to itself */
            char again[16];
            snprintf(again, sizeof again, "%u", d);
            pareng_config c2;
            memset(&c2, 0, sizeof c2);
            FUZZ_CHECK(pareng_config_set_cutoff(&c2, again) == 0 && c2.cutoff_depth == d,
                       "'%s' is %u but '%s' is not", text, d, again);
        }
    }

    /* PARENG_CUTOFF: the same grammar; a malformed value marks the configuration. (putenv
     * of one buffer: setenv would keep a copy of every value ever set, millions of them.) */
    static char variable[sizeof "PARENG_CUTOFF=" + 1024];
    snprintf(variable, sizeof variable, "PARENG_CUTOFF=%s", text);
    if (putenv(variable) == 0) {
        pareng_config env;
        int erc = pareng_config_default(&env);
        FUZZ_CHECK((erc == 0) == (rc == 0), "'%s': set_cutoff %d, PARENG_CUTOFF %d", text, rc,
                   erc);
        FUZZ_CHECK(erc < 0 || env.cutoff_depth == d, "'%s': %u from the environment, %u", text,
                   env.cutoff_depth, d);
        FUZZ_CHECK((erc < 0) == (env.pareng__bad_environment != 0), "'%s'", text);
        FUZZ_CHECK(erc == 0 || strstr(pareng_last_error(), "PARENG_CUTOFF"),
                   "'%s': the message does not name the variable: %s", text,
                   pareng_last_error());
        unsetenv("PARENG_CUTOFF");
    }
    free(text);
    return 0;
}
