//  broker_telemetry_config: a batch's telemetry section (storage prefix, compression, flush
//  interval) and its errors, each with the field path, through the telemetry store that applies
//  them.
#include "broker_telemetry_fixture.h"

static void test_prefix_rules(void **state)
{
    s_fixture_t *fx = *state;
    static const struct {
        const char *prefix;
        const char *directory; //  under telemetry/, NULL: refused (files go to the top)
    } cases[] = {
        {"spacecraft/", "spacecraft"},
        {"a/b/c", "a/b/c"},
        {"a//b/", "a/b"},
        {"", ""},
        {"v1.2/run_3-x", "v1.2/run_3-x"},
        {"a/.../b", "a/.../b"},
        {"../x", NULL},
        {"/etc", NULL},
        {"a/../b", NULL},
        {"./a", NULL},
        {"..", NULL},
        {"a/..", NULL},
        {"a b", NULL},
        {"a\\b", NULL},
        {"~/x", NULL},
        {"a:b", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char job[16];
        snprintf(job, sizeof job, "job-%zu", i);
        lynx_value_t *config = s_config(cases[i].prefix, NULL, -1);
        lynx_err_t err;
        lynx_err_clear(&err);
        int rc = broker_telemetry_configure_batch(fx->telemetry, S_B1, config, &err);
        assert_int_equal(broker_telemetry_config_parse(config, NULL, NULL), rc);
        lynx_value_destroy(&config);
        if (cases[i].directory)
            assert_int_equal(rc, 0);
        else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, LYNX_EINVALID);
            assert_string_equal(err.field, "config.telemetry.storage.s3_prefix");
        }
        s_ingest(fx, S_B1, job, 0, 0.0);
        assert_int_equal(broker_telemetry_job_ended(fx->telemetry, job), 0);
        const char *directory = cases[i].directory ? cases[i].directory : "";
        char path[256];
        snprintf(path, sizeof path, "%s/%s%s%s/%s.msgpack", fx->root, directory,
                 *directory ? "/" : "", S_B1, job);
        if (!s_exists(path))
            fail_msg("prefix '%s': no %s", cases[i].prefix, path);
    }
    //  Nothing escaped the data dir.
    char outside[256];
    snprintf(outside, sizeof outside, "%s/x", fx->dir);
    assert_false(s_exists(outside));
}

static void test_config_errors(void **state)
{
    (void)state;
    assert_int_equal(broker_telemetry_config_parse(NULL, NULL, NULL), 0);
    lynx_err_t err;

    //  The documentation's example is valid.
    lynx_value_t *config = s_config("spacecraft/", "gzip", 30);
    lynx_value_set_double(config, "sampling_rate_hz", 10.0);
    lynx_value_t *variables = lynx_value_array();
    const char *names[] = {"altitude", "velocity", "battery_state_of_charge"};
    for (size_t i = 0; i < 3; i++) {
        lynx_value_t *name = lynx_value_string(names[i]);
        lynx_value_append(variables, &name);
    }
    lynx_value_set(config, "variables", &variables);
    assert_int_equal(broker_telemetry_config_parse(config, NULL, &err), 0);
    lynx_value_destroy(&config);

    static const struct {
        const char *key; //  a dotted path set to the value below
        int kind;        //  0: string, 1: number, 2: array with one bad name, 3: boolean
        const char *text;
        double number;
        const char *field;
    } cases[] = {
        {"storage.compression", 0, "zstd", 0, "config.telemetry.storage.compression"},
        {"storage.compression", 3, NULL, 0, "config.telemetry.storage.compression"},
        {"storage.s3_prefix", 1, NULL, 3, "config.telemetry.storage.s3_prefix"},
        {"storage.s3_bucket", 1, NULL, 3, "config.telemetry.storage.s3_bucket"},
        {"buffer_flush_interval_seconds", 1, NULL, 0,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"buffer_flush_interval_seconds", 1, NULL, -5,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"buffer_flush_interval_seconds", 1, NULL, 1e9,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"buffer_flush_interval_seconds", 0, "30", 0,
         "config.telemetry.buffer_flush_interval_seconds"},
        {"sampling_rate_hz", 1, NULL, 0, "config.telemetry.sampling_rate_hz"},
        {"variables", 2, "has\ttab", 0, "config.telemetry.variables"},
        {"variables", 0, "altitude", 0, "config.telemetry.variables"},
        {"storage", 0, "s3://bucket", 0, "config.telemetry.storage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config = s_config(NULL, NULL, -1);
        lynx_value_t *parent = config;
        const char *key = cases[i].key;
        if (strncmp(key, "storage.", 8) == 0) {
            parent = lynx_value_get(config, "storage");
            key += 8;
        }
        lynx_value_t *value = cases[i].kind == 0   ? lynx_value_string(cases[i].text)
                              : cases[i].kind == 1 ? lynx_value_double(cases[i].number)
                              : cases[i].kind == 3 ? lynx_value_bool(true)
                                                   : lynx_value_array();
        if (cases[i].kind == 2) {
            lynx_value_t *name = lynx_value_string(cases[i].text);
            lynx_value_append(value, &name);
        }
        assert_int_equal(lynx_value_set(parent, key, &value), 0);
        lynx_err_clear(&err);
        assert_int_equal(broker_telemetry_config_parse(config, NULL, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        if (strcmp(err.field, cases[i].field) != 0)
            fail_msg("case %zu: field '%s', expected '%s'", i, err.field, cases[i].field);
        lynx_value_destroy(&config);
    }
    config = lynx_value_string("gzip");
    assert_int_equal(broker_telemetry_config_parse(config, NULL, &err), -1);
    assert_string_equal(err.field, "config.telemetry");
    lynx_value_destroy(&config);
}

//  nftw takes no argument: the count lives here.

int main(void)
{
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_prefix_rules),
        S_TEST(test_config_errors),
    };
    zsys_init();
    zsys_set_logstream(stderr); //  refused frames and write errors are logged: expected here
    return cmocka_run_group_tests(tests, NULL, NULL);
}
