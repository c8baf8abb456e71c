//  runner_config: how lynx-runner settles each setting from its flags, LYNX_RUNNER_*
//  variables, its YAML file and its defaults — flag > environment > file > default.
//
//  Each test gets a temporary directory for its config files. The environment is a plain
//  array handed to runner_config_load, so no test touches the real one.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner_config.h"

#define S_ARGC(argv) ((int)(sizeof(argv) / sizeof(argv)[0]) - 1)

//  The runner config of lynx-docs/tutorial-basic-orbit.txt, verbatim.
static const char s_tutorial_yaml[] =
    "engines:\n"
    "  - basilisk\n"
    "capabilities:\n"
    "  - basilisk\n"
    "  - orbit\n"
    "  - aerospace\n"
    "\n"
    "working_directory: .\n"
    "output_root: /tmp/tetryx-runs\n"
    "python_executable: python3\n"
    "basilisk_entrypoint: scenarios/aerospace/python/scenario_basic_orbit_lynx.py\n"
    "\n"
    "max_concurrent_jobs: 1\n"
    "heartbeat_interval_secs: 2\n";

//  --- helpers --------------------------------------------------------------------------------

typedef struct {
    char dir[PATH_MAX]; //  the test's temporary directory (canonical)
    char cwd[PATH_MAX]; //  the process's directory when the test started
    char path[PATH_MAX + 64];
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fixture = calloc(1, sizeof *fixture);
    assert_non_null(fixture);
    char template[] = "/tmp/runner_config_test.XXXXXX";
    assert_non_null(mkdtemp(template));
    assert_non_null(realpath(template, fixture->dir));
    assert_non_null(getcwd(fixture->cwd, sizeof fixture->cwd));
    *state = fixture;
    return 0;
}

static int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_teardown(void **state)
{
    s_fixture_t *fixture = *state;
    assert_int_equal(chdir(fixture->cwd), 0);
    nftw(fixture->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fixture);
    return 0;
}

//  Write text to name (which may include subdirectories that exist) under the test directory;
//  returns the full path, valid until the next call.
static const char *s_write_config(s_fixture_t *fixture, const char *name, const char *text)
{
    snprintf(fixture->path, sizeof fixture->path, "%s/%s", fixture->dir, name);
    FILE *file = fopen(fixture->path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    return fixture->path;
}

static void s_assert_list(char **items, size_t count, const char *const *expected)
{
    size_t expected_count = 0;
    while (expected[expected_count])
        expected_count++;
    assert_int_equal(count, expected_count);
    for (size_t index = 0; index < count; index++)
        assert_string_equal(items[index], expected[index]);
}

//  --- defaults -------------------------------------------------------------------------------

static void test_defaults(void **state)
{
    s_fixture_t *fixture = *state;
    //  The default engine is basilisk, which needs an entrypoint; everything else defaults.
    char *argv[] = {"lynx-runner", NULL};
    char *envp[] = {"LYNX_RUNNER_BASILISK_ENTRYPOINT=scenario.py", "HOME=/root", NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_int_equal(err.code, LYNX_OK);

    char host[256] = "";
    gethostname(host, sizeof host - 1);
    assert_string_equal(config->runner_id, host);
    assert_string_equal(config->name, host);
    assert_string_equal(config->broker_endpoint, "tcp://127.0.0.1:5555");
    s_assert_list(config->engines, config->engine_count, (const char *[]){"basilisk", NULL});
    s_assert_list(config->capabilities, config->capability_count, (const char *[]){NULL});
    assert_string_equal(config->working_directory, fixture->cwd);
    assert_string_equal(config->output_root, "/tmp/tetryx-runs");
    assert_string_equal(config->python_executable, "/usr/bin/python3");
    assert_string_equal(config->basilisk_entrypoint, "scenario.py");
    assert_int_equal(config->max_concurrent_jobs, 1);
    assert_true(config->heartbeat_interval_secs == 2);
    assert_int_equal(config->cpu_cores, sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(config->memory_gb > 0);
    assert_true(fabs(config->memory_gb * 10 - round(config->memory_gb * 10)) < 1e-6);
    assert_false(config->gpu_available);
    assert_null(config->events_endpoint); //  derived from the broker's REGISTERED
    assert_null(config->command_executable);
    assert_int_equal(config->command_arg_count, 0);
    assert_non_null(config->command_args);
    runner_config_destroy(&config);
    assert_null(config);
    runner_config_destroy(&config);
}

static void test_basilisk_needs_an_entrypoint(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    assert_null(runner_config_load(S_ARGC(argv), argv, envp, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "basilisk_entrypoint");
    assert_string_equal(err.message, "basilisk_entrypoint: required when engines include basilisk");

    //  Other engines do not.
    char *px4_argv[] = {"lynx-runner", "--engines", "px4_sitl", NULL};
    runner_config_t *config = runner_config_load(S_ARGC(px4_argv), px4_argv, envp, &err);
    assert_non_null(config);
    assert_null(config->basilisk_entrypoint);
    runner_config_destroy(&config);
}

//  The command engine runs any program; it needs to be told which.
static void test_command_needs_an_executable(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner", "--engines", "command", "--command-args", "-c,true", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    assert_null(runner_config_load(S_ARGC(argv), argv, envp, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "command_executable");
    assert_string_equal(err.message, "command_executable: required when engines include command");

    char *ok_argv[] = {"lynx-runner", "--engines", "command", "--command-executable", "sim", NULL};
    runner_config_t *config = runner_config_load(S_ARGC(ok_argv), ok_argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->command_executable, "sim"); //  kept as given: PATH is searched
    assert_int_equal(config->command_arg_count, 0);
    runner_config_destroy(&config);
}

//  --- the config file ------------------------------------------------------------------------

//  `lynx-runner --config configs/lynx-runner-basilisk.yaml --runner-id basilisk-runner-01
//  --name "Basilisk Runner 01"`, run from the repository root as in the tutorial (the test
//  directory stands in for the root).
static void test_tutorial_file(void **state)
{
    s_fixture_t *fixture = *state;
    char configs[PATH_MAX + 16];
    snprintf(configs, sizeof configs, "%s/configs", fixture->dir);
    assert_int_equal(mkdir(configs, 0755), 0);
    assert_int_equal(chdir(fixture->dir), 0);
    s_write_config(fixture, "configs/lynx-runner-basilisk.yaml", s_tutorial_yaml);
    char *argv[] = {"lynx-runner",
                    "--config",
                    "configs/lynx-runner-basilisk.yaml",
                    "--runner-id",
                    "basilisk-runner-01",
                    "--name",
                    "Basilisk Runner 01",
                    NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);

    assert_string_equal(config->runner_id, "basilisk-runner-01");
    assert_string_equal(config->name, "Basilisk Runner 01");
    s_assert_list(config->engines, config->engine_count, (const char *[]){"basilisk", NULL});
    s_assert_list(config->capabilities, config->capability_count,
                  (const char *[]){"basilisk", "orbit", "aerospace", NULL});
    //  "." means the directory lynx-runner was started in, not the file's.
    assert_string_equal(config->working_directory, fixture->dir);
    assert_string_equal(config->output_root, "/tmp/tetryx-runs");
    assert_string_equal(config->python_executable, "python3");
    //  Kept as written: the runner resolves it against working_directory per job.
    assert_string_equal(config->basilisk_entrypoint,
                        "scenarios/aerospace/python/scenario_basic_orbit_lynx.py");
    assert_int_equal(config->max_concurrent_jobs, 1);
    assert_true(config->heartbeat_interval_secs == 2);

    //  What GET /runners/basilisk-runner-01 shows as supported_simulation_types.
    const char *const *types;
    assert_int_equal(runner_config_simulation_types(config, &types), 3);
    assert_string_equal(types[0], "basilisk");
    assert_string_equal(types[1], "orbit");
    assert_string_equal(types[2], "aerospace");
    runner_config_destroy(&config);
}

static void test_file_scalars_lists_and_nulls(void **state)
{
    s_fixture_t *fixture = *state;
    const char *path = s_write_config(fixture, "runner.yaml",
                                      "runner_id: ws-07\n"
                                      "broker_endpoint: tcp://broker:5555\n"
                                      "engines: basilisk, px4_sitl\n" //  a comma string
                                      "capabilities: []\n"
                                      "basilisk_entrypoint: run.py\n"
                                      "cpu_cores: 12\n"
                                      "memory_gb: 31\n" //  an integer is a fine number
                                      "gpu_available: true\n"
                                      "heartbeat_interval_secs: 0.5\n"
                                      "python_executable:\n"); //  null keeps the default
    char *argv[] = {"lynx-runner", "--config", (char *)path, NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->runner_id, "ws-07");
    assert_string_equal(config->name, "ws-07");
    assert_string_equal(config->broker_endpoint, "tcp://broker:5555");
    s_assert_list(config->engines, config->engine_count,
                  (const char *[]){"basilisk", "px4_sitl", NULL});
    assert_int_equal(config->capability_count, 0);
    assert_int_equal(config->cpu_cores, 12);
    assert_true(config->memory_gb == 31);
    assert_true(config->gpu_available);
    assert_true(config->heartbeat_interval_secs == 0.5);
    assert_string_equal(config->python_executable, "/usr/bin/python3");
    runner_config_destroy(&config);

    //  An empty file sets nothing.
    path = s_write_config(fixture, "empty.yaml", "");
    char *empty_argv[] = {"lynx-runner", "--config", (char *)path, "--engines=px4_sitl", NULL};
    config = runner_config_load(S_ARGC(empty_argv), empty_argv, envp, &err);
    assert_non_null(config);
    runner_config_destroy(&config);
}

//  In the file, command_args is best a YAML list: any string goes, commas, spaces and empty
//  strings included, exactly as written.
static void test_file_command_engine(void **state)
{
    s_fixture_t *fixture = *state;
    const char *path = s_write_config(fixture, "runner.yaml",
                                      "engines: [command]\n"
                                      "events_endpoint: tcp://broker:41003\n"
                                      "command_executable: ./bin/simulate\n"
                                      "command_args:\n"
                                      "  - --seeds\n"
                                      "  - \"1,2,3\"\n"
                                      "  - \"\"\n"
                                      "  - \" spaced \"\n");
    char *argv[] = {"lynx-runner", "--config", (char *)path, NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->events_endpoint, "tcp://broker:41003");
    assert_string_equal(config->command_executable, "./bin/simulate");
    s_assert_list(config->command_args, config->command_arg_count,
                  (const char *[]){"--seeds", "1,2,3", "", " spaced ", NULL});
    runner_config_destroy(&config);

    //  A string in the file splits like the environment does; [] clears the list.
    path = s_write_config(fixture, "runner.yaml",
                          "engines: [command]\n"
                          "command_executable: sh\n"
                          "command_args: \"-c,echo hi\"\n");
    config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    s_assert_list(config->command_args, config->command_arg_count,
                  (const char *[]){"-c", "echo hi", NULL});
    runner_config_destroy(&config);
    char *cleared_argv[] = {"lynx-runner", "--config", (char *)path, "--command-args=", NULL};
    config = runner_config_load(S_ARGC(cleared_argv), cleared_argv, envp, &err);
    assert_non_null(config);
    assert_int_equal(config->command_arg_count, 0);
    runner_config_destroy(&config);
}

//  A relative working_directory is relative to the current directory whichever source sets
//  it, exactly like output_root; the config file's own location plays no part.
static void test_relative_paths_follow_the_current_directory(void **state)
{
    s_fixture_t *fixture = *state;
    char configs[PATH_MAX + 16];
    snprintf(configs, sizeof configs, "%s/configs", fixture->dir);
    assert_int_equal(mkdir(configs, 0755), 0);
    assert_int_equal(chdir(fixture->dir), 0);
    s_write_config(fixture, "configs/runner.yaml",
                   "engines: [px4_sitl]\n"
                   "working_directory: scenarios/./aerospace/../orbit\n"
                   "output_root: runs\n");
    char expected[PATH_MAX + 64];

    //  From the file.
    char *argv[] = {"lynx-runner", "--config", "configs/runner.yaml", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    snprintf(expected, sizeof expected, "%s/scenarios/orbit", fixture->dir);
    assert_string_equal(config->working_directory, expected);
    snprintf(expected, sizeof expected, "%s/runs", fixture->dir);
    assert_string_equal(config->output_root, expected);
    runner_config_destroy(&config);

    //  From the environment.
    char *env_envp[] = {"LYNX_RUNNER_WORKING_DIRECTORY=jobs/", NULL};
    config = runner_config_load(S_ARGC(argv), argv, env_envp, &err);
    assert_non_null(config);
    snprintf(expected, sizeof expected, "%s/jobs", fixture->dir);
    assert_string_equal(config->working_directory, expected);
    runner_config_destroy(&config);

    //  From a flag.
    char *flag_argv[] = {"lynx-runner",         "--config",   "configs/runner.yaml",
                         "--working-directory", "configs/..", NULL};
    config = runner_config_load(S_ARGC(flag_argv), flag_argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->working_directory, fixture->dir);
    runner_config_destroy(&config);

    //  The same file read from elsewhere: the same text, another directory.
    assert_int_equal(chdir("/"), 0);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/configs/runner.yaml", fixture->dir);
    char *root_argv[] = {"lynx-runner", "--config", path, NULL};
    config = runner_config_load(S_ARGC(root_argv), root_argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->working_directory, "/scenarios/orbit");
    runner_config_destroy(&config);
}

//  --- precedence -----------------------------------------------------------------------------

static void test_env_overrides_file(void **state)
{
    s_fixture_t *fixture = *state;
    const char *path = s_write_config(fixture, "runner.yaml", s_tutorial_yaml);
    char config_var[PATH_MAX + 100];
    snprintf(config_var, sizeof config_var, "LYNX_RUNNER_CONFIG=%s", path);
    char *argv[] = {"lynx-runner", NULL};
    char *envp[] = {config_var, "LYNX_RUNNER_MAX_CONCURRENT_JOBS=4",
                    "LYNX_RUNNER_PYTHON_EXECUTABLE=/opt/venv/bin/python", NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_int_equal(config->max_concurrent_jobs, 4);
    assert_string_equal(config->python_executable, "/opt/venv/bin/python");
    assert_string_equal(config->output_root, "/tmp/tetryx-runs"); //  from the file
    runner_config_destroy(&config);
}

static void test_flag_overrides_env(void **state)
{
    s_fixture_t *fixture = *state;
    const char *path = s_write_config(fixture, "runner.yaml", s_tutorial_yaml);
    char *envp[] = {"LYNX_RUNNER_MAX_CONCURRENT_JOBS=4", "LYNX_RUNNER_GPU_AVAILABLE=true",
                    "LYNX_RUNNER_BROKER_ENDPOINT=tcp://env:1", NULL};
    //  Both spellings: --flag=value and --flag value.
    char *argv[] = {"lynx-runner",
                    "--config",
                    (char *)path,
                    "--max-concurrent-jobs=8",
                    "--gpu-available",
                    "false",
                    "--broker=tcp://flag:2",
                    NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_int_equal(config->max_concurrent_jobs, 8);
    assert_false(config->gpu_available);
    assert_string_equal(config->broker_endpoint, "tcp://flag:2");
    runner_config_destroy(&config);
}

static void test_flag_config_beats_env_config(void **state)
{
    s_fixture_t *fixture = *state;
    char env_path[PATH_MAX + 100];
    snprintf(env_path, sizeof env_path, "LYNX_RUNNER_CONFIG=%s",
             s_write_config(fixture, "env.yaml",
                            "runner_id: from-env-file\n"
                            "engines: [px4_sitl]\n"));
    char *envp[] = {env_path, NULL};
    const char *path = s_write_config(fixture, "flag.yaml",
                                      "runner_id: from-flag-file\n"
                                      "engines: [px4_sitl]\n");
    char flag[PATH_MAX + 100];
    snprintf(flag, sizeof flag, "--config=%s", path);
    char *argv[] = {"lynx-runner", flag, NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->runner_id, "from-flag-file");
    runner_config_destroy(&config);
}

static void test_comma_lists(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner",           "--engines", "px4_sitl,basilisk",
                    "--basilisk-entrypoint", "run.py",    NULL};
    char *envp[] = {"LYNX_RUNNER_CAPABILITIES= orbit, aerospace,,gpu ", NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    s_assert_list(config->engines, config->engine_count,
                  (const char *[]){"px4_sitl", "basilisk", NULL});
    s_assert_list(config->capabilities, config->capability_count,
                  (const char *[]){"orbit", "aerospace", "gpu", NULL});
    runner_config_destroy(&config);
}

//  Argument lists split at every comma and nowhere else: an argument's spaces and empty
//  arguments reach the program as written (unlike engines and capabilities, which are trimmed).
static void test_command_args_are_verbatim(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expected[6];
    } cases[] = {
        {"-c,echo hi > \"$TETRYX_OUTPUT_DIR/out.txt\"",
         {"-c", "echo hi > \"$TETRYX_OUTPUT_DIR/out.txt\"", NULL}},
        {" a,,b ", {" a", "", "b ", NULL}},
        {"single", {"single", NULL}},
        {",", {"", "", NULL}},
        {"", {NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char variable[256];
        snprintf(variable, sizeof variable, "LYNX_RUNNER_COMMAND_ARGS=%s", cases[i].text);
        char *argv[] = {"lynx-runner", "--engines=command", "--command-executable=/bin/sh", NULL};
        char *envp[] = {variable, NULL};
        lynx_err_t err;
        runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
        assert_non_null(config);
        s_assert_list(config->command_args, config->command_arg_count, cases[i].expected);
        runner_config_destroy(&config);
    }

    //  The flag beats the variable, for the executable and the arguments alike.
    char *argv[] = {"lynx-runner",
                    "--engines=command",
                    "--command-executable",
                    "/usr/bin/env",
                    "--command-args",
                    "python3,-u,run.py",
                    NULL};
    char *envp[] = {"LYNX_RUNNER_COMMAND_EXECUTABLE=/bin/sh", "LYNX_RUNNER_COMMAND_ARGS=-c,true",
                    "LYNX_RUNNER_EVENTS_ENDPOINT=tcp://env:1", NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_string_equal(config->command_executable, "/usr/bin/env");
    s_assert_list(config->command_args, config->command_arg_count,
                  (const char *[]){"python3", "-u", "run.py", NULL});
    assert_string_equal(config->events_endpoint, "tcp://env:1");
    runner_config_destroy(&config);
}

//  At most RUNNER_CONFIG_MAX_COMMAND_ARGS arguments, so the engine's argv always has room.
static void test_command_args_limit(void **state)
{
    (void)state;
    char text[4 * (RUNNER_CONFIG_MAX_COMMAND_ARGS + 1) + 1] = "";
    for (int i = 0; i < RUNNER_CONFIG_MAX_COMMAND_ARGS; i++)
        strcat(text, i ? ",a" : "a");
    char flag[sizeof text + 32];
    snprintf(flag, sizeof flag, "--command-args=%s", text);
    char *argv[] = {"lynx-runner", "--engines=command", "--command-executable=x", flag, NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    assert_int_equal(config->command_arg_count, RUNNER_CONFIG_MAX_COMMAND_ARGS);
    runner_config_destroy(&config);

    strcat(flag, ",one-too-many");
    assert_null(runner_config_load(S_ARGC(argv), argv, envp, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "command_args");
    assert_string_equal(err.message, "command_args: 64 arguments, at most 63 are allowed");
}

static void test_simulation_types_merge_without_duplicates(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner",
                    "--engines",
                    "basilisk,px4_sitl",
                    "--capabilities",
                    "orbit,basilisk,px4_sitl,aerospace,orbit",
                    "--basilisk-entrypoint",
                    "run.py",
                    NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    runner_config_t *config = runner_config_load(S_ARGC(argv), argv, envp, &err);
    assert_non_null(config);
    const char *const *types;
    size_t count = runner_config_simulation_types(config, &types);
    const char *expected[] = {"basilisk", "px4_sitl", "orbit", "aerospace"};
    assert_int_equal(count, 4);
    for (size_t index = 0; index < count; index++)
        assert_string_equal(types[index], expected[index]);
    runner_config_destroy(&config);
}

//  --- bad values, one row per case -----------------------------------------------------------

typedef struct {
    const char *yaml;    //  written to runner.yaml and passed with --config, or NULL
    const char *env;     //  one KEY=VALUE, or NULL
    const char *flag;    //  one --flag=value, or NULL
    const char *field;   //  expected err.field
    const char *message; //  expected err.message; "%s" stands for the config file's path
} s_bad_case_t;

static const s_bad_case_t s_bad_cases[] = {
    //  In the file: field is the YAML key, the message names the file.
    {"max_concurrent_jobs: abc\n", NULL, NULL, "max_concurrent_jobs",
     "%s: max_concurrent_jobs: must be an integer between 1 and 1024"},
    {"max_concurrent_jobs: \"4\"\n", NULL, NULL, "max_concurrent_jobs",
     "%s: max_concurrent_jobs: must be an integer between 1 and 1024"},
    {"max_concurrent_jobs: 2.5\n", NULL, NULL, "max_concurrent_jobs",
     "%s: max_concurrent_jobs: must be an integer between 1 and 1024"},
    {"max_concurrent_jobs: 0\n", NULL, NULL, "max_concurrent_jobs",
     "%s: max_concurrent_jobs: must be an integer between 1 and 1024"},
    {"engines: 5\n", NULL, NULL, "engines",
     "%s: engines: must be a list of strings or a comma-separated string"},
    {"capabilities: [orbit, 3]\n", NULL, NULL, "capabilities",
     "%s: capabilities: must be a list of strings or a comma-separated string"},
    {"capabilities: {orbit: true}\n", NULL, NULL, "capabilities",
     "%s: capabilities: must be a list of strings or a comma-separated string"},
    {"heartbeat_interval_secs: -1\n", NULL, NULL, "heartbeat_interval_secs",
     "%s: heartbeat_interval_secs: must be a number greater than 0"},
    {"gpu_available: \"true\"\n", NULL, NULL, "gpu_available",
     "%s: gpu_available: must be true or false"},
    {"runner_id: 42\n", NULL, NULL, "runner_id", "%s: runner_id: must be a non-empty string"},
    {"working_directory: \"\"\n", NULL, NULL, "working_directory",
     "%s: working_directory: must be a non-empty string"},
    {"max_concurent_jobs: 2\n", NULL, NULL, "max_concurent_jobs",
     "%s: max_concurent_jobs: unknown field"},
    {"- engines\n", NULL, NULL, "--config", "%s: must be a mapping of runner fields, not array"},
    {"command_args: 5\n", NULL, NULL, "command_args",
     "%s: command_args: must be a list of strings or a comma-separated string"},
    {"command_args: [-c, 3]\n", NULL, NULL, "command_args",
     "%s: command_args: must be a list of strings or a comma-separated string"},
    {"command_args: [[-c]]\n", NULL, NULL, "command_args",
     "%s: command_args: must be a list of strings or a comma-separated string"},
    {"command_executable: \"\"\n", NULL, NULL, "command_executable",
     "%s: command_executable: must be a non-empty string"},
    {"events_endpoint: 41003\n", NULL, NULL, "events_endpoint",
     "%s: events_endpoint: must be a non-empty string"},
    //  In the environment: field and message name the variable.
    {NULL, "LYNX_RUNNER_MAX_CONCURRENT_JOBS=abc", NULL, "LYNX_RUNNER_MAX_CONCURRENT_JOBS",
     "LYNX_RUNNER_MAX_CONCURRENT_JOBS: must be an integer between 1 and 1024"},
    {NULL, "LYNX_RUNNER_MAX_CONCURRENT_JOBS=2000", NULL, "LYNX_RUNNER_MAX_CONCURRENT_JOBS",
     "LYNX_RUNNER_MAX_CONCURRENT_JOBS: must be an integer between 1 and 1024"},
    {NULL, "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS=0", NULL, "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS",
     "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS: must be a number greater than 0"},
    {NULL, "LYNX_RUNNER_GPU_AVAILABLE=yes", NULL, "LYNX_RUNNER_GPU_AVAILABLE",
     "LYNX_RUNNER_GPU_AVAILABLE: must be true or false"},
    {NULL, "LYNX_RUNNER_RUNNER_ID=", NULL, "LYNX_RUNNER_RUNNER_ID",
     "LYNX_RUNNER_RUNNER_ID: must be a non-empty string"},
    {NULL, "LYNX_RUNNER_CONFIG=", NULL, "LYNX_RUNNER_CONFIG",
     "LYNX_RUNNER_CONFIG: must name a file"},
    {NULL, "LYNX_RUNNER_COMMAND_EXECUTABLE=", NULL, "LYNX_RUNNER_COMMAND_EXECUTABLE",
     "LYNX_RUNNER_COMMAND_EXECUTABLE: must be a non-empty string"},
    {NULL, "LYNX_RUNNER_EVENTS_ENDPOINT=", NULL, "LYNX_RUNNER_EVENTS_ENDPOINT",
     "LYNX_RUNNER_EVENTS_ENDPOINT: must be a non-empty string"},
    //  On the command line: field and message name the flag.
    {NULL, NULL, "--max-concurrent-jobs=1.5", "--max-concurrent-jobs",
     "--max-concurrent-jobs: must be an integer between 1 and 1024"},
    {NULL, NULL, "--cpu-cores=0", "--cpu-cores",
     "--cpu-cores: must be an integer between 1 and 65536"},
    {NULL, NULL, "--memory-gb=nan", "--memory-gb", "--memory-gb: must be a number greater than 0"},
    {NULL, NULL, "--gpu-available=maybe", "--gpu-available",
     "--gpu-available: must be true or false"},
    {NULL, NULL, "--bogus", "--bogus", "--bogus: unknown flag (see --help)"},
    {NULL, NULL, "--bogus=3", "--bogus", "--bogus: unknown flag (see --help)"},
    {NULL, NULL, "--runner", "--runner", "--runner: unknown flag (see --help)"}, //  no prefixes
    {NULL, NULL, "extra", "extra", "extra: unexpected argument (see --help)"},
    {NULL, NULL, "--name", "--name", "--name: requires a value"},
    {NULL, NULL, "--command-executable=", "--command-executable",
     "--command-executable: must be a non-empty string"},
    {NULL, NULL, "--command-args", "--command-args", "--command-args: requires a value"},
};

static void test_bad_values_name_field_and_source(void **state)
{
    s_fixture_t *fixture = *state;
    for (size_t index = 0; index < sizeof s_bad_cases / sizeof s_bad_cases[0]; index++) {
        const s_bad_case_t *bad = &s_bad_cases[index];
        //  Each row starts from a config that is otherwise valid.
        char *argv[8] = {"lynx-runner", "--basilisk-entrypoint=run.py"};
        int argc = 2;
        const char *path = "";
        if (bad->yaml) {
            path = s_write_config(fixture, "runner.yaml", bad->yaml);
            argv[argc++] = "--config";
            argv[argc++] = (char *)path;
        }
        if (bad->flag)
            argv[argc++] = (char *)bad->flag;
        char *envp[] = {(char *)bad->env, NULL};

        lynx_err_t err;
        runner_config_t *config = runner_config_load(argc, argv, envp, &err);
        char expected[PATH_MAX + 256];
        snprintf(expected, sizeof expected, bad->message, path);
        assert_null(config);
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, bad->field);
        assert_string_equal(err.message, expected);
    }
}

//  The example from the docs: a relative --config path is named as the user wrote it.
static void test_unknown_file_field_names_the_file(void **state)
{
    s_fixture_t *fixture = *state;
    assert_int_equal(chdir(fixture->dir), 0);
    s_write_config(fixture, "runner.yaml", "max_concurent_jobs: 2\n");
    char *argv[] = {"lynx-runner", "--config", "runner.yaml", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    assert_null(runner_config_load(S_ARGC(argv), argv, envp, &err));
    assert_string_equal(err.message, "runner.yaml: max_concurent_jobs: unknown field");
}

static void test_missing_or_broken_file(void **state)
{
    s_fixture_t *fixture = *state;
    char *argv[] = {"lynx-runner", "--config", "/no/such/runner.yaml", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    assert_null(runner_config_load(S_ARGC(argv), argv, envp, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "--config");
    assert_string_equal(err.message, "/no/such/runner.yaml: No such file or directory");

    const char *path = s_write_config(fixture, "broken.yaml", "engines: [basilisk\n");
    char *broken_argv[] = {"lynx-runner", "--config", (char *)path, NULL};
    assert_null(runner_config_load(S_ARGC(broken_argv), broken_argv, envp, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_true(strncmp(err.message, path, strlen(path)) == 0);
    assert_non_null(strstr(err.message, "line "));
}

//  --- help -----------------------------------------------------------------------------------

static void test_help(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner", "--max-concurrent-jobs=abc", "--help", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    assert_null(runner_config_load(S_ARGC(argv), argv, envp, &err));
    assert_int_equal(err.code, LYNX_OK); //  not an error: print usage and exit 0

    char *short_argv[] = {"lynx-runner", "-h", NULL};
    assert_null(runner_config_load(S_ARGC(short_argv), short_argv, envp, &err));
    assert_int_equal(err.code, LYNX_OK);

    //  The usage text covers every flag, variable and file field, and the precedence.
    const char *usage = runner_config_usage();
    const char *mentions[] = {
        "--config", "LYNX_RUNNER_CONFIG", "flag > environment variable > config file > default",
        "relative paths are relative to the current directory of lynx-runner", "--help"};
    for (size_t index = 0; index < sizeof mentions / sizeof mentions[0]; index++)
        assert_non_null(strstr(usage, mentions[index]));
    const char *fields[][3] = {
        {"--runner-id", "LYNX_RUNNER_RUNNER_ID", "[runner_id]"},
        {"--name", "LYNX_RUNNER_NAME", "[name]"},
        {"--broker", "LYNX_RUNNER_BROKER_ENDPOINT", "[broker_endpoint]"},
        {"--engines", "LYNX_RUNNER_ENGINES", "[engines]"},
        {"--capabilities", "LYNX_RUNNER_CAPABILITIES", "[capabilities]"},
        {"--working-directory", "LYNX_RUNNER_WORKING_DIRECTORY", "[working_directory]"},
        {"--output-root", "LYNX_RUNNER_OUTPUT_ROOT", "[output_root]"},
        {"--python-executable", "LYNX_RUNNER_PYTHON_EXECUTABLE", "[python_executable]"},
        {"--basilisk-entrypoint", "LYNX_RUNNER_BASILISK_ENTRYPOINT", "[basilisk_entrypoint]"},
        {"--events-endpoint", "LYNX_RUNNER_EVENTS_ENDPOINT", "[events_endpoint]"},
        {"--command-executable", "LYNX_RUNNER_COMMAND_EXECUTABLE", "[command_executable]"},
        {"--command-args", "LYNX_RUNNER_COMMAND_ARGS", "[command_args]"},
        {"--max-concurrent-jobs", "LYNX_RUNNER_MAX_CONCURRENT_JOBS", "[max_concurrent_jobs]"},
        {"--heartbeat-interval-secs", "LYNX_RUNNER_HEARTBEAT_INTERVAL_SECS",
         "[heartbeat_interval_secs]"},
        {"--cpu-cores", "LYNX_RUNNER_CPU_CORES", "[cpu_cores]"},
        {"--memory-gb", "LYNX_RUNNER_MEMORY_GB", "[memory_gb]"},
        {"--gpu-available", "LYNX_RUNNER_GPU_AVAILABLE", "[gpu_available]"},
    };
    for (size_t index = 0; index < sizeof fields / sizeof fields[0]; index++)
        for (size_t part = 0; part < 3; part++)
            assert_non_null(strstr(usage, fields[index][part]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_defaults),
        S_TEST(test_basilisk_needs_an_entrypoint),
        S_TEST(test_command_needs_an_executable),
        S_TEST(test_tutorial_file),
        S_TEST(test_file_scalars_lists_and_nulls),
        S_TEST(test_file_command_engine),
        S_TEST(test_relative_paths_follow_the_current_directory),
        S_TEST(test_env_overrides_file),
        S_TEST(test_flag_overrides_env),
        S_TEST(test_flag_config_beats_env_config),
        S_TEST(test_comma_lists),
        S_TEST(test_command_args_are_verbatim),
        S_TEST(test_command_args_limit),
        S_TEST(test_simulation_types_merge_without_duplicates),
        S_TEST(test_bad_values_name_field_and_source),
        S_TEST(test_unknown_file_field_names_the_file),
        S_TEST(test_missing_or_broken_file),
        S_TEST(test_help),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
