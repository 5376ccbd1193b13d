/*
 * test_config.c - pareng_config (engine/config.c): the text forms of --cores and --cutoff that
 * the CLI, the environment and Python share, and the PARENG_* environment variables read by
 * pareng_config_default, malformed ones refused at once and again at start.
 */
#include "testing.h"

#include <errno.h>
#include <stdlib.h>

static void test_cores_auto_count_and_list(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "3"), 0);
    CU_ASSERT_EQUAL(cfg.workers, 3);
    CU_ASSERT_PTR_NULL(cfg.cpus);
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "core:0-1,pu:5"), 0);
    CU_ASSERT_EQUAL(cfg.workers, 0); /* the list says how many */
    CU_ASSERT_STRING_EQUAL(cfg.cpus, "core:0-1,pu:5");
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "auto"), 0);
    CU_ASSERT_EQUAL(cfg.workers, 0);
    CU_ASSERT_PTR_NULL(cfg.cpus);
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "512"), 0);
    CU_ASSERT_EQUAL(cfg.workers, PARENG_MAX_WORKERS);
}

static void test_bad_cores_change_nothing(void)
{
    static const char *const bad[] = {"0", "513", "99999999999", "", "auto ", "core:x",
                                      "package:0.core:1", "-1", "2,", "numa"};
    pareng_config cfg;
    pareng_config_default(&cfg);
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "5"), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, bad[i]), -EINVAL);
        CU_ASSERT(pareng_last_error()[0] != '\0');
        CU_ASSERT_EQUAL(cfg.workers, 5);
        CU_ASSERT_PTR_NULL(cfg.cpus);
    }
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, NULL), -EINVAL);
}

static void test_cutoff_texts(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "none"), 0);
    CU_ASSERT_EQUAL(cfg.cutoff_depth, PARENG_CUTOFF_NONE);
    CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "7"), 0);
    CU_ASSERT_EQUAL(cfg.cutoff_depth, 7);
    CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "auto"), 0);
    CU_ASSERT_EQUAL(cfg.cutoff_depth, PARENG_CUTOFF_AUTO);
    CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "7"), 0);
    CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "0"), 0); /* 0 means choose for me */
    CU_ASSERT_EQUAL(cfg.cutoff_depth, PARENG_CUTOFF_AUTO);
    static const char *const bad[] = {"", "-1", "x", "1000001", "4294967295", "none ", "AUTO",
                                      NULL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "3"), 0);
        CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, bad[i]), -EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "cutoff"));
        CU_ASSERT_EQUAL(cfg.cutoff_depth, 3);
    }
}

static const char *const variables[] = {"PARENG_NUM_WORKERS", "PARENG_PLACES", "PARENG_CUTOFF",
                                        "PARENG_DISPLAY_AFFINITY"};

static void clear_environment(void)
{
    for (size_t i = 0; i < sizeof variables / sizeof *variables; i++)
        unsetenv(variables[i]);
}

static void test_environment_fills_the_defaults(void)
{
    clear_environment();
    pareng_config cfg;
    CU_ASSERT_EQUAL(pareng_config_default(&cfg), 0);
    CU_ASSERT_EQUAL(cfg.workers, 0);
    CU_ASSERT_PTR_NULL(cfg.cpus);
    CU_ASSERT_EQUAL(cfg.cutoff_depth, PARENG_CUTOFF_AUTO);
    CU_ASSERT_EQUAL(cfg.display_affinity, 0);

    setenv("PARENG_NUM_WORKERS", "3", 1);
    setenv("PARENG_CUTOFF", "none", 1);
    setenv("PARENG_DISPLAY_AFFINITY", "TRUE", 1);
    CU_ASSERT_EQUAL(pareng_config_default(&cfg), 0);
    CU_ASSERT_EQUAL(cfg.workers, 3);
    CU_ASSERT_EQUAL(cfg.cutoff_depth, PARENG_CUTOFF_NONE);
    CU_ASSERT_EQUAL(cfg.display_affinity, 1);
    clear_environment();
    setenv("PARENG_PLACES", "pu:0-1", 1);
    setenv("PARENG_DISPLAY_AFFINITY", "off", 1);
    CU_ASSERT_EQUAL(pareng_config_default(&cfg), 0);
    CU_ASSERT_STRING_EQUAL(cfg.cpus, "pu:0-1");
    CU_ASSERT_EQUAL(cfg.display_affinity, 0);
    /* what the caller sets afterwards wins, as an OpenMP call beats OMP_* */
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "2"), 0);
    CU_ASSERT_PTR_NULL(cfg.cpus);
    CU_ASSERT_EQUAL(cfg.workers, 2);
    clear_environment();
}

/* A malformed variable: named at once, that field left at its default, and the configuration
 * refused by pareng_plan_create and pareng_start with the same message. */
static void check_malformed(const char *variable, const char *value)
{
    clear_environment();
    setenv(variable, value, 1);
    pareng_config cfg;
    CU_ASSERT_EQUAL(pareng_config_default(&cfg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), variable));
    CU_ASSERT_EQUAL(cfg.workers, 0);
    CU_ASSERT_PTR_NULL(cfg.cpus);
    CU_ASSERT_EQUAL(cfg.cutoff_depth, PARENG_CUTOFF_AUTO);
    pareng_plan *plan = NULL;
    CU_ASSERT_EQUAL(pareng_plan_create(&plan, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), variable));
    pareng_engine *e = NULL;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), variable));
    clear_environment();
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

static void test_malformed_environment_is_refused(void)
{
    check_malformed("PARENG_NUM_WORKERS", "three");
    check_malformed("PARENG_NUM_WORKERS", "0");
    check_malformed("PARENG_NUM_WORKERS", "600");
    check_malformed("PARENG_PLACES", "0x3");
    check_malformed("PARENG_PLACES", "");
    check_malformed("PARENG_CUTOFF", "deep");
    check_malformed("PARENG_DISPLAY_AFFINITY", "maybe");
}

/* A malformed variable whose field the caller then sets itself does not stop the start: the
 * caller wins. One whose field it leaves alone still does. */
static void test_the_caller_overrides_a_malformed_variable(void)
{
    clear_environment();
    setenv("PARENG_CUTOFF", "deep", 1);
    setenv("PARENG_PLACES", "0x3", 1);
    pareng_config cfg;
    CU_ASSERT_EQUAL(pareng_config_default(&cfg), -EINVAL);
    CU_ASSERT_EQUAL(pareng_config_set_cores(&cfg, "2"), 0);
    pareng_engine *e = NULL;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL); /* PARENG_CUTOFF still stands */
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "PARENG_CUTOFF"));
    CU_ASSERT_EQUAL(pareng_config_set_cutoff(&cfg, "none"), 0);
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), 0);
    CU_ASSERT_EQUAL(pareng_engine_workers(e), 2);
    pareng_stop(e);
    clear_environment();
}

/* With no configuration at all, pareng_start reads the environment too. */
static void test_start_without_configuration_reads_the_environment(void)
{
    clear_environment();
    setenv("PARENG_NUM_WORKERS", "3", 1);
    pareng_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, NULL), 0);
    CU_ASSERT_EQUAL(pareng_engine_workers(e), 3);
    pareng_stop(e);
    setenv("PARENG_NUM_WORKERS", "x", 1);
    CU_ASSERT_EQUAL(pareng_start(&e, NULL), -EINVAL);
    clear_environment();
}

int main(void)
{
    CU_TestInfo texts[] = {
        {"cores: auto, a count, a list", test_cores_auto_count_and_list},
        {"bad cores change nothing", test_bad_cores_change_nothing},
        {"cutoff: auto, none, N", test_cutoff_texts},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo environment[] = {
        {"PARENG_* fill the defaults; the caller wins", test_environment_fills_the_defaults},
        {"malformed variables refused, named", test_malformed_environment_is_refused},
        {"pareng_start(NULL) reads them", test_start_without_configuration_reads_the_environment},
        {"the caller overrides a malformed variable", test_the_caller_overrides_a_malformed_variable},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"text forms", NULL, NULL, NULL, NULL, texts},
        {"environment", NULL, NULL, NULL, NULL, environment},
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
