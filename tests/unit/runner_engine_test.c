//  runner_engine: how the runner turns a job's engine into a command line. The runner config
//  is built the way lynx-runner builds it, from flags and an environment array of our own.
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

#include "runner_engine.h"

#define S_ARGC(argv) ((int)(sizeof(argv) / sizeof(argv)[0]) - 1)

static runner_config_t *s_load(int argc, char **argv, char **envp)
{
    lynx_err_t err;
    runner_config_t *config = runner_config_load(argc, argv, envp, &err);
    if (!config)
        fail_msg("runner_config_load: %s: %s", err.field, err.message);
    return config;
}

//  NULL-ended argv of a command has exactly the expected words.
static void s_assert_argv(const runner_command_t *command, const char *const *expected)
{
    size_t count = 0;
    for (; expected[count]; count++) {
        assert_non_null(command->argv[count]);
        assert_string_equal(command->argv[count], expected[count]);
    }
    assert_null(command->argv[count]);
}

static void test_known_engines(void **state)
{
    (void)state;
    assert_true(runner_engine_known("basilisk"));
    assert_true(runner_engine_known("command"));
    static const char *unknown[] = {"", "Basilisk", "basilisk ", "px4_sitl", "Command"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_false(runner_engine_known(unknown[i]));
    assert_false(runner_engine_known(NULL));
}

//  basilisk runs <python_executable> <entrypoint>; an absolute entrypoint is used as is.
static void test_basilisk_absolute_entrypoint(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner",
                    "--engines",
                    "basilisk",
                    "--python-executable",
                    "/opt/venv/bin/python3",
                    "--working-directory",
                    "/srv/scenarios",
                    "--basilisk-entrypoint",
                    "/opt/basilisk/orbit.py",
                    NULL};
    char *envp[] = {NULL};
    runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
    runner_command_t command;
    lynx_err_t err;
    assert_int_equal(runner_engine_command("basilisk", config, &command, &err), 0);
    s_assert_argv(&command,
                  (const char *[]){"/opt/venv/bin/python3", "/opt/basilisk/orbit.py", NULL});
    assert_string_equal(command.entrypoint, "/opt/basilisk/orbit.py");
    runner_config_destroy(&config);
}

//  A relative entrypoint is resolved against working_directory, so the scenario runs the same
//  whatever the runner's own directory; the result metadata names it as configured.
static void test_basilisk_relative_entrypoint(void **state)
{
    (void)state;
    static const struct {
        const char *working_directory;
        const char *entrypoint;
        const char *resolved;
    } cases[] = {
        {"/srv/lynx", "scenarios/orbit.py", "/srv/lynx/scenarios/orbit.py"},
        {"/srv/lynx/", "orbit.py", "/srv/lynx/orbit.py"},
        {"/srv/lynx/work/..", "./orbit.py", "/srv/lynx/./orbit.py"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {"lynx-runner",
                        "--engines",
                        "basilisk",
                        "--working-directory",
                        (char *)cases[i].working_directory,
                        "--basilisk-entrypoint",
                        (char *)cases[i].entrypoint,
                        NULL};
        char *envp[] = {NULL};
        runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
        runner_command_t command;
        lynx_err_t err;
        assert_int_equal(runner_engine_command("basilisk", config, &command, &err), 0);
        s_assert_argv(&command, (const char *[]){"/usr/bin/python3", cases[i].resolved, NULL});
        assert_string_equal(command.entrypoint, cases[i].entrypoint);
        runner_config_destroy(&config);
    }
}

//  The settings may come from the environment too; the default working directory is the
//  runner's directory at start-up.
static void test_basilisk_from_environment(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *argv[] = {"lynx-runner", NULL};
    char *envp[] = {"LYNX_RUNNER_BASILISK_ENTRYPOINT=scenario.py",
                    "LYNX_RUNNER_PYTHON_EXECUTABLE=python3", NULL};
    runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
    runner_command_t command;
    lynx_err_t err;
    assert_int_equal(runner_engine_command("basilisk", config, &command, &err), 0);
    char expected[PATH_MAX + 32];
    snprintf(expected, sizeof expected, "%s/scenario.py", cwd);
    s_assert_argv(&command, (const char *[]){"python3", expected, NULL});
    assert_string_equal(command.entrypoint, "scenario.py");
    runner_config_destroy(&config);
}

//  runner_config already refuses basilisk without an entrypoint; the engine checks again for a
//  config whose entrypoint is missing or empty (one built or changed by other means).
static void test_basilisk_missing_entrypoint(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner", "--engines", "basilisk", "--basilisk-entrypoint", "x.py", NULL};
    char *envp[] = {NULL};
    runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
    static const char *const missing[] = {NULL, ""};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        free(config->basilisk_entrypoint);
        config->basilisk_entrypoint = missing[i] ? strdup(missing[i]) : NULL;
        runner_command_t command;
        lynx_err_t err;
        assert_int_equal(runner_engine_command("basilisk", config, &command, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "basilisk_entrypoint");
        assert_non_null(strstr(err.message, "basilisk_entrypoint"));
        assert_null(command.argv[0]);
        assert_int_equal(runner_engine_command("basilisk", config, &command, NULL), -1);
    }
    runner_config_destroy(&config);
}

//  command runs <command_executable> <command_args...>: the program as configured (a bare name
//  is searched in PATH, a relative path is relative to the job's working directory, which the
//  child is already in), the arguments verbatim, the program named in the result's metadata.
static void test_command_engine(void **state)
{
    (void)state;
    static const struct {
        const char *executable;
        const char *args; //  --command-args, or NULL for none
        const char *const expected[6];
    } cases[] = {
        {"/bin/sh",
         "-c,echo hi > \"$TETRYX_OUTPUT_DIR/out.txt\"",
         {"/bin/sh", "-c", "echo hi > \"$TETRYX_OUTPUT_DIR/out.txt\"", NULL}},
        {"simulate", NULL, {"simulate", NULL}},
        {"./bin/simulate", "--runs, 3,", {"./bin/simulate", "--runs", " 3", "", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {"lynx-runner",
                        "--engines",
                        "basilisk,command",
                        "--basilisk-entrypoint",
                        "orbit.py",
                        "--working-directory",
                        "/srv/lynx",
                        "--command-executable",
                        (char *)cases[i].executable,
                        cases[i].args ? "--command-args" : NULL,
                        (char *)cases[i].args,
                        NULL};
        int argc = cases[i].args ? S_ARGC(argv) : S_ARGC(argv) - 2;
        char *envp[] = {NULL};
        runner_config_t *config = s_load(argc, argv, envp);
        runner_command_t command;
        lynx_err_t err;
        assert_int_equal(runner_engine_command("command", config, &command, &err), 0);
        s_assert_argv(&command, cases[i].expected);
        assert_string_equal(command.entrypoint, cases[i].executable);
        //  The other engine of the same runner is unaffected.
        assert_int_equal(runner_engine_command("basilisk", config, &command, &err), 0);
        s_assert_argv(&command, (const char *[]){"/usr/bin/python3", "/srv/lynx/orbit.py", NULL});
        runner_config_destroy(&config);
    }
}

//  The same settings from the environment, with a YAML-sized argument list: the longest one
//  the config accepts fills the argv exactly.
static void test_command_engine_from_environment(void **state)
{
    (void)state;
    char variable[64 + 2 * RUNNER_CONFIG_MAX_COMMAND_ARGS] = "LYNX_RUNNER_COMMAND_ARGS=";
    for (int i = 0; i < RUNNER_CONFIG_MAX_COMMAND_ARGS; i++)
        strcat(variable, i ? ",x" : "x");
    char *argv[] = {"lynx-runner", NULL};
    char *envp[] = {"LYNX_RUNNER_ENGINES=command", "LYNX_RUNNER_COMMAND_EXECUTABLE=/bin/echo",
                    variable, NULL};
    runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
    runner_command_t command;
    lynx_err_t err;
    assert_int_equal(runner_engine_command("command", config, &command, &err), 0);
    assert_string_equal(command.argv[0], "/bin/echo");
    for (int i = 1; i <= RUNNER_CONFIG_MAX_COMMAND_ARGS; i++)
        assert_string_equal(command.argv[i], "x");
    assert_null(command.argv[RUNNER_ENGINE_MAX_ARGS]);
    runner_config_destroy(&config);
}

//  runner_config refuses command without an executable and overlong argument lists; the engine
//  checks again for a config built or changed by other means.
static void test_command_engine_refuses_bad_config(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner", "--engines", "command", "--command-executable", "/bin/sh", NULL};
    char *envp[] = {NULL};
    runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
    static const char *const missing[] = {NULL, ""};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        free(config->command_executable);
        config->command_executable = missing[i] ? strdup(missing[i]) : NULL;
        runner_command_t command;
        lynx_err_t err;
        assert_int_equal(runner_engine_command("command", config, &command, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "command_executable");
        assert_string_equal(err.message,
                            "engine command needs command_executable in the runner config");
        assert_null(command.argv[0]);
    }
    free(config->command_executable);
    config->command_executable = strdup("/bin/sh");

    //  One argument more than the argv holds.
    size_t count = RUNNER_CONFIG_MAX_COMMAND_ARGS + 1;
    char **args = realloc(config->command_args, (count + 1) * sizeof *args);
    assert_non_null(args);
    config->command_args = args;
    for (size_t i = config->command_arg_count; i < count; i++)
        args[i] = strdup("x");
    args[count] = NULL;
    config->command_arg_count = count;
    runner_command_t command;
    lynx_err_t err;
    assert_int_equal(runner_engine_command("command", config, &command, &err), -1);
    assert_string_equal(err.field, "command_args");
    assert_string_equal(err.message,
                        "engine command takes at most 63 arguments, command_args has 64");
    assert_null(command.argv[0]);
    runner_config_destroy(&config);
}

//  A known engine this runner does not run, and an engine nobody knows, are refused with the
//  engine named; the command is left empty.
static void test_engine_refused(void **state)
{
    (void)state;
    static const struct {
        const char *engines;
        const char *engine;
        const char *message;
    } cases[] = {
        {"px4_sitl", "basilisk", "engine 'basilisk' is not enabled on this runner"},
        {"basilisk", "px4_sitl", "engine 'px4_sitl' is not known on this runner"},
        {"basilisk,px4_sitl", "px4_sitl", "engine 'px4_sitl' is not known on this runner"},
        {"basilisk", "Basilisk", "engine 'Basilisk' is not known on this runner"},
        {"basilisk", "", "engine '' is not known on this runner"},
        {"basilisk", "command", "engine 'command' is not enabled on this runner"},
        {"command", "basilisk", "engine 'basilisk' is not enabled on this runner"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {"lynx-runner",
                        "--engines",
                        (char *)cases[i].engines,
                        "--basilisk-entrypoint",
                        "/opt/orbit.py",
                        "--command-executable",
                        "/bin/true",
                        NULL};
        char *envp[] = {NULL};
        runner_config_t *config = s_load(S_ARGC(argv), argv, envp);
        runner_command_t command;
        memset(&command, 0x5a, sizeof command);
        lynx_err_t err;
        assert_int_equal(runner_engine_command(cases[i].engine, config, &command, &err), -1);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, "engine");
        assert_string_equal(err.message, cases[i].message);
        assert_null(command.argv[0]);
        assert_string_equal(command.entrypoint, "");
        runner_config_destroy(&config);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_engines),
        cmocka_unit_test(test_basilisk_absolute_entrypoint),
        cmocka_unit_test(test_basilisk_relative_entrypoint),
        cmocka_unit_test(test_basilisk_from_environment),
        cmocka_unit_test(test_basilisk_missing_entrypoint),
        cmocka_unit_test(test_command_engine),
        cmocka_unit_test(test_command_engine_from_environment),
        cmocka_unit_test(test_command_engine_refuses_bad_config),
        cmocka_unit_test(test_engine_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
