//  lynx_options: our daemons' flags, from one table. Each option has a flag, an environment
//  variable and a default, and the value comes from the flag, else the environment, else the
//  default. The environment is a plain array here, so no test touches the real one.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lynx_options.h"

#define S_ARGC(argv) ((int)(sizeof(argv) / sizeof(argv)[0]) - 1)

enum { DATA_DIR, PORT, NAME, S_OPTION_COUNT };

//  A broker-like option table; each test starts from a fresh copy.
static void s_options(lynx_option_t *options)
{
    options[DATA_DIR] = (lynx_option_t){
        "--data-dir", "LYNX_BROKER_DATA_DIR", "/var/lib/lynx", "where the database lives", NULL,
        false};
    options[PORT] =
        (lynx_option_t){"--port", "LYNX_BROKER_PORT", "5555", "port to listen on", NULL, false};
    options[NAME] = (lynx_option_t){"--name", NULL, NULL, "a name without a variable", NULL, false};
}

static int s_parse(lynx_option_t *options, int argc, char **argv, char **envp, lynx_err_t *err)
{
    s_options(options);
    return lynx_options_parse(options, S_OPTION_COUNT, argc, argv, envp, "lynx-broker",
                              "The Lynx broker.", err);
}

static void test_defaults(void **state)
{
    (void)state;
    lynx_option_t options[S_OPTION_COUNT];
    char *argv[] = {"lynx-broker", NULL};
    lynx_err_t err;
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, &err), 0);
    assert_string_equal(options[DATA_DIR].value, "/var/lib/lynx");
    assert_string_equal(options[PORT].value, "5555");
    assert_null(options[NAME].value);
}

//  flag > environment > default, option by option, whatever the order on the command line.
static void test_precedence(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        char *argv[6];
        char *envp[4];
        const char *data_dir;
        const char *port;
        const char *name;
    } cases[] = {
        {"environment beats default",
         {"b", NULL},
         {"LYNX_BROKER_DATA_DIR=/srv/lynx", NULL},
         "/srv/lynx",
         "5555",
         NULL},
        {"flag beats environment",
         {"b", "--data-dir", "/data", NULL},
         {"LYNX_BROKER_DATA_DIR=/srv/lynx", "LYNX_BROKER_PORT=6000", NULL},
         "/data",
         "6000",
         NULL},
        {"--flag=value form",
         {"b", "--port=7000", "--data-dir=/d", NULL},
         {"LYNX_BROKER_PORT=6000", NULL},
         "/d",
         "7000",
         NULL},
        {"a value may contain '='",
         {"b", "--name=a=b", "--data-dir", "x=y", NULL},
         {NULL},
         "x=y",
         "5555",
         "a=b"},
        {"--flag= gives an empty value",
         {"b", "--port=", NULL},
         {"LYNX_BROKER_PORT=6000", NULL},
         "/var/lib/lynx",
         "",
         NULL},
        {"an empty variable counts as unset",
         {"b", NULL},
         {"LYNX_BROKER_PORT=", NULL},
         "/var/lib/lynx",
         "5555",
         NULL},
        {"variables match by whole name",
         {"b", NULL},
         {"LYNX_BROKER_PORTX=1", "LYNX_BROKER_POR=2", "XLYNX_BROKER_PORT=3", NULL},
         "/var/lib/lynx",
         "5555",
         NULL},
        {"the last flag wins",
         {"b", "--port", "1", "--port=2", NULL},
         {NULL},
         "/var/lib/lynx",
         "2",
         NULL},
        {"a value may look like a flag",
         {"b", "--name", "--port", NULL},
         {NULL},
         "/var/lib/lynx",
         "5555",
         "--port"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_option_t options[S_OPTION_COUNT];
        char **argv = (char **)cases[i].argv;
        int argc = 0;
        while (argv[argc])
            argc++;
        lynx_err_t err;
        int rc = s_parse(options, argc, argv, (char **)cases[i].envp, &err);
        if (rc != 0)
            fail_msg("%s: rc %d: %s", cases[i].what, rc, err.message);
        assert_string_equal(options[DATA_DIR].value, cases[i].data_dir);
        assert_string_equal(options[PORT].value, cases[i].port);
        if (cases[i].name)
            assert_string_equal(options[NAME].value, cases[i].name);
        else
            assert_null(options[NAME].value);
    }
}

//  Values are borrowed, not copied: they point into argv, envp or the table.
static void test_values_are_borrowed(void **state)
{
    (void)state;
    lynx_option_t options[S_OPTION_COUNT];
    char *argv[] = {"b", "--data-dir", "/data", NULL};
    char *envp[] = {"LYNX_BROKER_PORT=6000", NULL};
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, envp, NULL), 0);
    assert_ptr_equal(options[DATA_DIR].value, argv[2]);
    assert_ptr_equal(options[PORT].value, envp[0] + strlen("LYNX_BROKER_PORT="));
}

//  An unknown flag or a stray word fails with the flag named in the field and the message.
static void test_unknown_flag(void **state)
{
    (void)state;
    static const char *words[] = {"--bogus", "--data", "--data-dirx", "-p", "stray", "--"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        lynx_option_t options[S_OPTION_COUNT];
        char *argv[] = {"b", "--port", "1", (char *)words[i], "x", NULL};
        lynx_err_t err;
        assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, words[i]);
        assert_non_null(strstr(err.message, words[i]));
        assert_non_null(strstr(err.message, "unknown option"));
    }
    //  In the --flag=value form the message names the flag too.
    lynx_option_t options[S_OPTION_COUNT];
    char *argv[] = {"b", "--bogus=1", NULL};
    lynx_err_t err;
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, &err), -1);
    assert_non_null(strstr(err.message, "--bogus"));
    assert_string_equal(err.field, "--bogus"); //  the flag, not the value given with it
    //  A caller that does not want the reason passes NULL.
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, NULL), -1);
}

static void test_missing_value(void **state)
{
    (void)state;
    lynx_option_t options[S_OPTION_COUNT];
    char *argv[] = {"b", "--data-dir", "/d", "--port", NULL};
    lynx_err_t err;
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, &err), -1);
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "--port");
    assert_string_equal(err.message, "--port: missing value");
}

//  Run parse with stdout sent to a temporary file; returns rc and what was printed.
static int s_parse_capturing(lynx_option_t *options, int argc, char **argv, char *output,
                             size_t size)
{
    fflush(stdout);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), STDOUT_FILENO) >= 0);
    char *envp[] = {NULL};
    int rc = s_parse(options, argc, argv, envp, NULL);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    rewind(capture);
    size_t length = fread(output, 1, size - 1, capture);
    output[length] = '\0';
    fclose(capture);
    return rc;
}

//  --help (or -h) prints the usage to stdout and returns 1, wherever it appears.
static void test_help(void **state)
{
    (void)state;
    static const char *const helps[] = {"--help", "-h"};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        lynx_option_t options[S_OPTION_COUNT];
        char *argv[] = {"b", "--port", "1", (char *)helps[i], "--bogus", NULL};
        char output[4096];
        assert_int_equal(s_parse_capturing(options, S_ARGC(argv), argv, output, sizeof output), 1);
        const char *expected[] = {"Usage: lynx-broker",
                                  "The Lynx broker.",
                                  "--data-dir",
                                  "LYNX_BROKER_DATA_DIR",
                                  "/var/lib/lynx",
                                  "where the database lives",
                                  "--port",
                                  "--name",
                                  "--help"};
        for (size_t j = 0; j < sizeof expected / sizeof expected[0]; j++)
            if (!strstr(output, expected[j]))
                fail_msg("usage lacks '%s':\n%s", expected[j], output);
    }
    //  An error before --help wins: the arguments are read in order.
    lynx_option_t options[S_OPTION_COUNT];
    char *argv[] = {"b", "--bogus", "--help", NULL};
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, NULL), -1);
}

static void test_int_values(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        long min, max;
        int rc;
        long expected;
    } cases[] = {
        {"5555", 1, 65535, 0, 5555},
        {"1", 1, 65535, 0, 1},         //  bounds are inclusive
        {"65535", 1, 65535, 0, 65535}, //
        {"-3", -10, 10, 0, -3},
        {"+7", 0, 10, 0, 7},
        {"0", 1, 65535, -1, 0},     //  below min
        {"65536", 1, 65535, -1, 0}, //  above max
        {"", 1, 65535, -1, 0},
        {"abc", 1, 65535, -1, 0},
        {"12abc", 1, 65535, -1, 0},
        {"12 ", 1, 65535, -1, 0},
        {"1.5", 0, 10, -1, 0},
        {"0x10", 0, 100, -1, 0},
        {"99999999999999999999", LONG_MIN, LONG_MAX, -1, 0}, //  overflows long
        {NULL, 0, 10, -1, 0},                                //  no value, no default
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_option_t option = {"--port", "LYNX_BROKER_PORT", NULL, "port", cases[i].value, false};
        long value = -12345;
        lynx_err_t err;
        lynx_err_clear(&err);
        int rc = lynx_options_int(&option, cases[i].min, cases[i].max, &value, &err);
        if (rc != cases[i].rc)
            fail_msg("'%s' in [%ld, %ld]: rc %d", cases[i].value ? cases[i].value : "(null)",
                     cases[i].min, cases[i].max, rc);
        if (rc == 0) {
            assert_int_equal(value, cases[i].expected);
            assert_int_equal(err.code, LYNX_OK);
        } else {
            assert_int_equal(value, -12345); //  untouched on failure
            assert_int_equal(err.code, LYNX_EINVALID);
            assert_string_equal(err.field, "--port");
            char expected[256];
            snprintf(expected, sizeof expected,
                     "--port: must be an integer between %ld and %ld, got '%s'", cases[i].min,
                     cases[i].max, cases[i].value ? cases[i].value : "");
            assert_string_equal(err.message, expected);
        }
    }
    //  NULL err is fine here too.
    lynx_option_t option = {"--port", NULL, NULL, "port", "x", false};
    long value;
    assert_int_equal(lynx_options_int(&option, 0, 1, &value, NULL), -1);
}

//  The usual daemon flow: parse, then convert the numeric options.
static void test_parse_then_int(void **state)
{
    (void)state;
    lynx_option_t options[S_OPTION_COUNT];
    char *argv[] = {"b", "--port=6001", NULL};
    lynx_err_t err;
    assert_int_equal(s_parse(options, S_ARGC(argv), argv, NULL, &err), 0);
    long port = 0;
    assert_int_equal(lynx_options_int(&options[PORT], 1, 65535, &port, &err), 0);
    assert_int_equal(port, 6001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_values_are_borrowed),
        cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_int_values),
        cmocka_unit_test(test_parse_then_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
