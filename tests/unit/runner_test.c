//  runner: the lynx-runner actor against a fake broker. The test plays the broker with the
//  two sockets the real one binds on 127.0.0.1 ephemeral ports: a ROUTER for registration and
//  job dispatch, and a SUB that runners publish heartbeats and telemetry to. Scenarios are
//  /bin/sh scripts run by the generic command engine, or Python scripts it execs that stream
//  telemetry with the real client (clients/python). Every wait is a zpoller with a deadline.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lynx_json.h"
#include "lynx_msg.h"
#include "runner.h"

#define S_RUNNER_ID "test-runner"
#define S_WAIT_MS 10000 //  generous: the suite runs under ASan
#define S_HEARTBEAT_SECS "0.1"

typedef struct {
    char root[PATH_MAX]; //  the test's directory: working directory and output root
    zsock_t *router;     //  the broker's runner socket
    zsock_t *sub;        //  the broker's events socket
    int router_port, events_port;
    char endpoint[64]; //  tcp://127.0.0.1:<router_port>
    zframe_t *peer;    //  routing id of the runner, from its last message
    runner_config_t *config;
    zactor_t *runner;
} s_fixture_t;

// --------------------------------------------------------------------------------------------
//  The fake broker

static zsock_t *s_bind(int type, const char *endpoint, int *port_p)
{
    zsock_t *socket = zsock_new(type);
    assert_non_null(socket);
    zsock_set_linger(socket, 0);
    int port = zsock_bind(socket, "%s", endpoint);
    if (port < 0) {
        zsock_destroy(&socket);
        return NULL;
    }
    if (port_p)
        *port_p = port;
    if (type == ZMQ_SUB)
        zsock_set_subscribe(socket, "");
    return socket;
}

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    char template[] = "/tmp/runner_test.XXXXXX";
    assert_non_null(mkdtemp(template));
    assert_non_null(realpath(template, fx->root));
    fx->router = s_bind(ZMQ_ROUTER, "tcp://127.0.0.1:*", &fx->router_port);
    fx->sub = s_bind(ZMQ_SUB, "tcp://127.0.0.1:*", &fx->events_port);
    assert_non_null(fx->router);
    assert_non_null(fx->sub);
    snprintf(fx->endpoint, sizeof fx->endpoint, "tcp://127.0.0.1:%d", fx->router_port);
    *state = fx;
    return 0;
}

static int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info, (void)flag, (void)ftw;
    return remove(path);
}

static int s_teardown(void **state)
{
    s_fixture_t *fx = *state;
    zactor_destroy(&fx->runner); //  kills what still runs
    runner_config_destroy(&fx->config);
    zframe_destroy(&fx->peer);
    zsock_destroy(&fx->router);
    zsock_destroy(&fx->sub);
    nftw(fx->root, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static int64_t s_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - zclock_mono();
    return left > 0 ? left : 0;
}

//  The next message on socket within timeout_ms, or NULL. On the ROUTER, remembers the
//  sender's routing id for s_reply.
static lynx_msg_t *s_recv(s_fixture_t *fx, zsock_t *socket, int64_t timeout_ms)
{
    zpoller_t *poller = zpoller_new(socket, NULL);
    void *ready = zpoller_wait(poller, (int)timeout_ms);
    zpoller_destroy(&poller);
    if (!ready)
        return NULL;
    zframe_t *routing_id = NULL;
    lynx_err_t err;
    lynx_msg_t *msg =
        lynx_msg_recv(zsock_resolve(socket), socket == fx->router ? &routing_id : NULL, &err);
    if (!msg)
        fail_msg("runner sent a malformed message: %s: %s", err.field, err.message);
    if (routing_id) {
        zframe_destroy(&fx->peer);
        fx->peer = routing_id;
    }
    return msg;
}

//  Wait for a message of this id on socket, skipping others (repeated FINISHED, say).
static lynx_msg_t *s_expect(s_fixture_t *fx, zsock_t *socket, lynx_msg_id_t id)
{
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    while (true) {
        lynx_msg_t *msg = s_recv(fx, socket, s_left_ms(deadline));
        if (!msg)
            fail_msg("no %s from the runner within %d ms", lynx_msg_id_name(id), S_WAIT_MS);
        if (lynx_msg_id(msg) == id)
            return msg;
        lynx_msg_destroy(&msg);
    }
}

static void s_reply(s_fixture_t *fx, lynx_msg_t **msg_p)
{
    assert_non_null(fx->peer);
    lynx_err_t err;
    if (lynx_msg_send(msg_p, zsock_resolve(fx->router), fx->peer, &err))
        fail_msg("send to the runner: %s", err.message);
}

//  Answer a REGISTER; events_port 0 plays an older broker without an events socket.
static void s_registered(s_fixture_t *fx, int events_port)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(msg), "runner_id", S_RUNNER_ID);
    lynx_value_set_int(lynx_msg_body(msg), "heartbeat_interval_ms", 100);
    if (events_port)
        lynx_value_set_int(lynx_msg_body(msg), "events_port", events_port);
    s_reply(fx, &msg);
}

//  A message with a job_id and an attempt (ACK, KILL).
static void s_send_about(s_fixture_t *fx, lynx_msg_id_t id, const char *job_id, int64_t attempt)
{
    lynx_msg_t *msg = lynx_msg_new(id);
    lynx_value_set_string(lynx_msg_body(msg), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(msg), "attempt", attempt);
    if (id == LYNX_MSG_KILL)
        lynx_value_set_string(lynx_msg_body(msg), "reason", "cancelled by the test");
    s_reply(fx, &msg);
}

static void s_send_not_found(s_fixture_t *fx)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_set_string(lynx_msg_body(msg), "code", "not_found");
    lynx_value_set_string(lynx_msg_body(msg), "message", "runner was declared offline");
    s_reply(fx, &msg);
}

static lynx_value_t *s_run_config(void)
{
    lynx_err_t err;
    const char *json = "{\"run_id\": 7, \"parameters\": {\"eccentricity\": 0.001}, "
                       "\"metadata\": {\"simulation_name\": \"Unit Orbit\"}}";
    lynx_value_t *run_config = lynx_json_parse(json, strlen(json), &err);
    assert_non_null(run_config);
    return run_config;
}

//  ASSIGN with extra body fields given as a JSON object (NULL: none), as a broker adds
//  early_termination and telemetry.
static void s_assign_with(s_fixture_t *fx, const char *job_id, int64_t attempt,
                          int64_t timeout_secs, const char *extra_json)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_ASSIGN);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "job_id", job_id);
    lynx_value_set_string(body, "batch_id", "batch-1");
    lynx_value_set_int(body, "attempt", attempt);
    lynx_value_set_string(body, "engine", "command");
    lynx_value_set_int(body, "timeout_secs", timeout_secs);
    lynx_value_t *run_config = s_run_config();
    assert_int_equal(lynx_value_set(body, "run_config", &run_config), 0);
    lynx_err_t err;
    lynx_value_t *extra = extra_json ? lynx_json_parse(extra_json, strlen(extra_json), &err) : NULL;
    if (extra_json && !extra)
        fail_msg("bad test JSON: %s", err.message);
    for (size_t i = 0; i < lynx_value_size(extra); i++) {
        lynx_value_t *field = lynx_value_dup(lynx_value_at(extra, i));
        assert_int_equal(lynx_value_set(body, lynx_value_key_at(extra, i), &field), 0);
    }
    lynx_value_destroy(&extra);
    s_reply(fx, &msg);
}

static void s_assign(s_fixture_t *fx, const char *job_id, int64_t attempt, int64_t timeout_secs)
{
    s_assign_with(fx, job_id, attempt, timeout_secs, NULL);
}

// --------------------------------------------------------------------------------------------
//  The runner

//  Start a runner whose command engine runs `/bin/sh -c script` (no commas: the flag's list is
//  comma-separated), with extra flags appended; wait for its REGISTER and return it.
static lynx_msg_t *s_start_runner(s_fixture_t *fx, const char *script, const char *extra_flag)
{
    char args[1024], output_root[PATH_MAX + 8];
    assert_null(strchr(script, ','));
    snprintf(args, sizeof args, "-c,%s", script);
    snprintf(output_root, sizeof output_root, "%s/runs", fx->root);
    char *argv[] = {"lynx-runner",
                    "--runner-id",
                    S_RUNNER_ID,
                    "--name",
                    "Test Runner",
                    "--broker",
                    fx->endpoint,
                    "--engines",
                    "command",
                    "--capabilities",
                    "orbit,aerospace",
                    "--command-executable",
                    "/bin/sh",
                    "--command-args",
                    args,
                    "--working-directory",
                    fx->root,
                    "--output-root",
                    output_root,
                    "--max-concurrent-jobs",
                    "2",
                    "--cpu-cores",
                    "4",
                    "--memory-gb",
                    "8",
                    "--heartbeat-interval-secs",
                    S_HEARTBEAT_SECS,
                    (char *)extra_flag,
                    NULL};
    int argc = (int)(sizeof argv / sizeof argv[0]) - (extra_flag ? 1 : 2);
    char *envp[] = {NULL};
    lynx_err_t err;
    fx->config = runner_config_load(argc, argv, envp, &err);
    if (!fx->config)
        fail_msg("runner_config_load: %s", err.message);
    fx->runner = runner_start(fx->config);
    assert_non_null(fx->runner);
    return s_expect(fx, fx->router, LYNX_MSG_REGISTER);
}

//  What the actor tells its owner: "READY" once registered.
static void s_expect_ready(s_fixture_t *fx)
{
    zpoller_t *poller = zpoller_new(fx->runner, NULL);
    void *ready = zpoller_wait(poller, S_WAIT_MS);
    zpoller_destroy(&poller);
    assert_non_null(ready);
    char *event = zstr_recv(fx->runner);
    assert_non_null(event);
    assert_string_equal(event, "READY");
    zstr_free(&event);
}

//  Start a runner with script and register it with an events port; READY follows.
static void s_start_registered(s_fixture_t *fx, const char *script)
{
    lynx_msg_t *msg = s_start_runner(fx, script, NULL);
    lynx_msg_destroy(&msg);
    s_registered(fx, fx->events_port);
    s_expect_ready(fx);
}

//  ASSIGN job-1 attempt 1 (with extra fields, see s_assign_with) and check its STARTED;
//  returns the scenario's pid.
static pid_t s_start_job_with(s_fixture_t *fx, int64_t timeout_secs, const char *extra_json)
{
    s_assign_with(fx, "job-1", 1, timeout_secs, extra_json);
    lynx_msg_t *started = s_expect(fx, fx->router, LYNX_MSG_STARTED);
    lynx_value_t *body = lynx_msg_body(started);
    assert_string_equal(lynx_value_get_string(body, "job_id", ""), "job-1");
    assert_int_equal(lynx_value_get_int(body, "attempt", 0), 1);
    pid_t pid = (pid_t)lynx_value_get_int(body, "pid", 0);
    assert_true(pid > 0);
    lynx_msg_destroy(&started);
    return pid;
}

static pid_t s_start_job(s_fixture_t *fx, int64_t timeout_secs)
{
    return s_start_job_with(fx, timeout_secs, NULL);
}

//  The next FINISHED, checked to be job-1 attempt 1 with this status.
static lynx_msg_t *s_expect_finished(s_fixture_t *fx, const char *status)
{
    lynx_msg_t *finished = s_expect(fx, fx->router, LYNX_MSG_FINISHED);
    lynx_value_t *body = lynx_msg_body(finished);
    assert_string_equal(lynx_value_get_string(body, "job_id", ""), "job-1");
    assert_int_equal(lynx_value_get_int(body, "attempt", 0), 1);
    assert_string_equal(lynx_value_get_string(body, "status", ""), status);
    const lynx_value_t *result = lynx_value_get(body, "result");
    assert_string_equal(lynx_value_get_string(result, "job_id", ""), "job-1");
    assert_int_equal(lynx_value_get_bool(result, "success", false),
                     strcmp(status, "Completed") == 0);
    return finished;
}

//  Processes of process group pgid that are still running (zombies left to an init that does
//  not reap them are not running).
static int s_running_in_group(pid_t pgid)
{
    DIR *proc = opendir("/proc");
    assert_non_null(proc);
    int count = 0;
    for (struct dirent *entry = readdir(proc); entry; entry = readdir(proc)) {
        if (!isdigit((unsigned char)entry->d_name[0]))
            continue;
        char path[300], line[1024] = "";
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *file = fopen(path, "r");
        if (!file)
            continue; //  gone meanwhile
        size_t len = fread(line, 1, sizeof line - 1, file);
        fclose(file);
        line[len] = '\0';
        char state = 0;
        int ppid = 0, group = 0;
        const char *after_name = strrchr(line, ')'); //  the name may hold spaces and parens
        if (after_name && sscanf(after_name + 1, " %c %d %d", &state, &ppid, &group) == 3 &&
            group == pgid && state != 'Z' && state != 'X')
            count++;
    }
    closedir(proc);
    return count;
}

static void s_assert_group_gone(pid_t pgid)
{
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    while (s_running_in_group(pgid) > 0 && s_left_ms(deadline) > 0)
        zclock_sleep(10); //  polling with a deadline
    assert_int_equal(s_running_in_group(pgid), 0);
}

static char *s_read_file(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        fail_msg("open %s failed", path);
    char *text = calloc(1, 8192);
    assert_non_null(text);
    size_t len = fread(text, 1, 8191, file);
    fclose(file);
    text[len] = '\0';
    return text;
}

// --------------------------------------------------------------------------------------------
//  Registration and heartbeats

//  REGISTER names the runner and carries the capabilities of GET /runners/{id}; once the
//  broker answers with an events port, heartbeats arrive on its SUB and not on the ROUTER.
static void test_registers_then_heartbeats_on_the_events_socket(void **state)
{
    s_fixture_t *fx = *state;
    lynx_msg_t *reg = s_start_runner(fx, "true", NULL);
    lynx_value_t *body = lynx_msg_body(reg);
    assert_string_equal(lynx_value_get_string(body, "runner_id", ""), S_RUNNER_ID);
    assert_string_equal(lynx_value_get_string(body, "name", ""), "Test Runner");
    assert_int_equal(lynx_value_get_int(body, "pid", 0), getpid());
    const lynx_value_t *capabilities = lynx_value_get(body, "capabilities");
    static const char *const keys[] = {"max_concurrent_jobs", "supported_simulation_types",
                                       "gpu_available", "memory_gb", "cpu_cores"};
    assert_int_equal(lynx_value_size(capabilities), 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(lynx_value_key_at(capabilities, i), keys[i]);
    assert_int_equal(lynx_value_get_int(capabilities, "max_concurrent_jobs", 0), 2);
    const lynx_value_t *types = lynx_value_get(capabilities, "supported_simulation_types");
    assert_int_equal(lynx_value_size(types), 3);
    assert_string_equal(lynx_value_as_string(lynx_value_at(types, 0)), "command");
    assert_string_equal(lynx_value_as_string(lynx_value_at(types, 1)), "orbit");
    assert_string_equal(lynx_value_as_string(lynx_value_at(types, 2)), "aerospace");
    assert_int_equal(lynx_value_type(lynx_value_get(capabilities, "gpu_available")),
                     LYNX_VALUE_BOOL);
    assert_false(lynx_value_get_bool(capabilities, "gpu_available", true));
    assert_int_equal(lynx_value_type(lynx_value_get(capabilities, "memory_gb")), LYNX_VALUE_DOUBLE);
    assert_true(lynx_value_get_double(capabilities, "memory_gb", 0) == 8.0);
    assert_int_equal(lynx_value_get_int(capabilities, "cpu_cores", 0), 4);
    const lynx_value_t *engines = lynx_value_get(body, "engines");
    assert_int_equal(lynx_value_size(engines), 1);
    assert_string_equal(lynx_value_as_string(lynx_value_at(engines, 0)), "command");
    assert_int_equal(lynx_value_size(lynx_value_get(body, "active_jobs")), 0);
    assert_int_equal(lynx_value_size(lynx_value_get(body, "finished_jobs")), 0);
    lynx_msg_destroy(&reg);

    s_registered(fx, fx->events_port);
    s_expect_ready(fx);
    for (int beat = 0; beat < 3; beat++) {
        lynx_msg_t *heartbeat = s_expect(fx, fx->sub, LYNX_MSG_HEARTBEAT);
        assert_string_equal(lynx_value_get_string(lynx_msg_body(heartbeat), "runner_id", ""),
                            S_RUNNER_ID);
        assert_int_equal(lynx_value_get_int(lynx_msg_body(heartbeat), "active_jobs", -1), 0);
        lynx_msg_destroy(&heartbeat);
    }
    //  Three intervals went by and nothing came on the ROUTER.
    lynx_msg_t *other = s_recv(fx, fx->router, 0);
    assert_null(other);
}

//  A refusal that asking again cannot change (here a duplicate runner id) is reported to the
//  actor's owner as FATAL with the broker's reason; lynx-runner exits on it.
static void test_registration_refused(void **state)
{
    s_fixture_t *fx = *state;
    lynx_msg_t *reg = s_start_runner(fx, "true", NULL);
    lynx_msg_destroy(&reg);
    lynx_msg_t *refusal = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_set_string(lynx_msg_body(refusal), "code", "conflict");
    lynx_value_set_string(lynx_msg_body(refusal), "message", "runner id 'test-runner' in use");
    lynx_value_set_string(lynx_msg_body(refusal), "field", "runner_id");
    s_reply(fx, &refusal);

    zpoller_t *poller = zpoller_new(fx->runner, NULL);
    void *ready = zpoller_wait(poller, S_WAIT_MS);
    zpoller_destroy(&poller);
    assert_non_null(ready);
    char *event = NULL, *reason = NULL;
    assert_int_equal(zstr_recvx(fx->runner, &event, &reason, NULL), 2);
    assert_string_equal(event, "FATAL");
    assert_string_equal(reason, "runner id 'test-runner' in use");
    zstr_free(&event);
    zstr_free(&reason);
}

//  An older broker names no events port: heartbeats stay on the DEALER.
static void test_heartbeats_on_the_dealer_without_events_port(void **state)
{
    s_fixture_t *fx = *state;
    lynx_msg_t *reg = s_start_runner(fx, "true", NULL);
    lynx_msg_destroy(&reg);
    s_registered(fx, 0);
    s_expect_ready(fx);
    for (int beat = 0; beat < 2; beat++) {
        lynx_msg_t *heartbeat = s_expect(fx, fx->router, LYNX_MSG_HEARTBEAT);
        assert_string_equal(lynx_value_get_string(lynx_msg_body(heartbeat), "runner_id", ""),
                            S_RUNNER_ID);
        lynx_msg_destroy(&heartbeat);
    }
    lynx_msg_t *published = s_recv(fx, fx->sub, 0);
    assert_null(published);
}

//  events_endpoint in the runner config wins over the endpoint derived from the broker's.
static void test_configured_events_endpoint(void **state)
{
    s_fixture_t *fx = *state;
    int port = 0;
    zsock_t *other_sub = s_bind(ZMQ_SUB, "tcp://127.0.0.1:*", &port);
    assert_non_null(other_sub);
    char flag[64];
    snprintf(flag, sizeof flag, "--events-endpoint=tcp://127.0.0.1:%d", port);
    lynx_msg_t *reg = s_start_runner(fx, "true", flag);
    lynx_msg_destroy(&reg);
    s_registered(fx, fx->events_port);
    s_expect_ready(fx);
    lynx_msg_t *heartbeat = s_expect(fx, other_sub, LYNX_MSG_HEARTBEAT);
    lynx_msg_destroy(&heartbeat);
    lynx_msg_t *published = s_recv(fx, fx->sub, 0);
    assert_null(published);
    zsock_destroy(&other_sub);
}

// --------------------------------------------------------------------------------------------
//  Job attempts

//  The scenario contract: TETRYX_RUN_CONFIG, TETRYX_OUTPUT_DIR, LYNX_JOB_ID and
//  LYNX_RUNNER_ID in the environment, the working directory as cwd; what it writes to the
//  output directory is the result's output_files, and the run config is not among them.
static void test_job_completes(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "echo hi > \"$TETRYX_OUTPUT_DIR/out.txt\"; "
                           "printf '%s\\n' \"$LYNX_JOB_ID\" \"$LYNX_RUNNER_ID\" "
                           "\"$TETRYX_RUN_CONFIG\" \"$(pwd)\" > \"$TETRYX_OUTPUT_DIR/env.txt\"");
    s_start_job(fx, 60);
    lynx_msg_t *finished = s_expect_finished(fx, "Completed");
    const lynx_value_t *result = lynx_value_get(lynx_msg_body(finished), "result");
    assert_true(lynx_value_get_double(result, "execution_time_secs", -1) >= 0);
    assert_int_equal(lynx_value_type(lynx_value_get(result, "error_message")), LYNX_VALUE_NULL);
    const lynx_value_t *metadata = lynx_value_get(result, "metadata");
    assert_string_equal(lynx_value_get_string(metadata, "engine", ""), "command");
    assert_string_equal(lynx_value_get_string(metadata, "entrypoint", ""), "/bin/sh");
    assert_string_equal(lynx_value_get_string(metadata, "runner_id", ""), S_RUNNER_ID);
    assert_string_equal(lynx_value_get_string(metadata, "simulation_name", ""), "Unit Orbit");

    char output_dir[PATH_MAX + 32], out_txt[PATH_MAX + 64], env_txt[PATH_MAX + 64];
    snprintf(output_dir, sizeof output_dir, "%s/runs/job-1/", fx->root);
    snprintf(out_txt, sizeof out_txt, "%sout.txt", output_dir);
    snprintf(env_txt, sizeof env_txt, "%senv.txt", output_dir);
    const lynx_value_t *files = lynx_value_get(result, "output_files");
    bool listed = false;
    for (size_t i = 0; i < lynx_value_size(files); i++) {
        const char *file = lynx_value_as_string(lynx_value_at(files, i));
        assert_true(strncmp(file, output_dir, strlen(output_dir)) == 0);
        listed |= strcmp(file, out_txt) == 0;
    }
    assert_true(listed);
    char *out = s_read_file(out_txt);
    assert_string_equal(out, "hi\n");
    free(out);

    char *env = s_read_file(env_txt);
    char job_id[64], runner_id[64], config_path[PATH_MAX], cwd[PATH_MAX];
    assert_int_equal(sscanf(env, "%63s %63s %4095s %4095s", job_id, runner_id, config_path, cwd),
                     4);
    free(env);
    assert_string_equal(job_id, "job-1");
    assert_string_equal(runner_id, S_RUNNER_ID);
    assert_string_equal(cwd, fx->root);
    assert_true(strncmp(config_path, output_dir, strlen(output_dir)) != 0);
    for (size_t i = 0; i < lynx_value_size(files); i++)
        assert_string_not_equal(lynx_value_as_string(lynx_value_at(files, i)), config_path);
    char *json = s_read_file(config_path);
    lynx_err_t err;
    lynx_value_t *written = lynx_json_parse(json, strlen(json), &err);
    free(json);
    lynx_value_t *expected = s_run_config();
    assert_true(lynx_value_equal(written, expected));
    lynx_value_destroy(&written);
    lynx_value_destroy(&expected);
    lynx_msg_destroy(&finished);
    s_send_about(fx, LYNX_MSG_ACK, "job-1", 1);
}

//  A non-zero exit is Failed, with the exit status and the tail of stderr in the message.
static void test_failing_command(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "echo 'eccentricity out of range' >&2; exit 3");
    s_start_job(fx, 60);
    lynx_msg_t *finished = s_expect_finished(fx, "Failed");
    const char *message = lynx_value_get_string(lynx_value_get(lynx_msg_body(finished), "result"),
                                                "error_message", "");
    assert_string_equal(message,
                        "scenario failed: exit status 3; stderr: eccentricity out of range");
    lynx_msg_destroy(&finished);
}

//  A program that cannot start fails the attempt at once, without a STARTED.
static void test_missing_program(void **state)
{
    s_fixture_t *fx = *state;
    lynx_msg_t *reg = s_start_runner(fx, "true", "--command-executable=/no/such/simulator");
    lynx_msg_destroy(&reg);
    s_registered(fx, fx->events_port);
    s_expect_ready(fx);
    s_assign(fx, "job-1", 1, 60);
    lynx_msg_t *finished = s_expect_finished(fx, "Failed");
    const char *message = lynx_value_get_string(lynx_value_get(lynx_msg_body(finished), "result"),
                                                "error_message", "");
    assert_non_null(strstr(message, "cannot start scenario"));
    assert_non_null(strstr(message, "/no/such/simulator"));
    lynx_msg_destroy(&finished);
}

//  timeout_secs elapses: the whole process group is stopped and the attempt is a Timeout.
static void test_timeout_kills_the_process_group(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "sleep 30");
    pid_t pid = s_start_job(fx, 1);
    lynx_msg_t *finished = s_expect_finished(fx, "Timeout");
    const char *message = lynx_value_get_string(lynx_value_get(lynx_msg_body(finished), "result"),
                                                "error_message", "");
    assert_non_null(strstr(message, "timed out after 1 s"));
    lynx_msg_destroy(&finished);
    s_assert_group_gone(pid);
}

//  KILL for the running attempt cancels it; heartbeats counted it while it ran.
static void test_kill_cancels(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "sleep 30");
    pid_t pid = s_start_job(fx, 60);
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    int64_t active = 0;
    while (active != 1 && s_left_ms(deadline) > 0) {
        lynx_msg_t *heartbeat = s_expect(fx, fx->sub, LYNX_MSG_HEARTBEAT);
        active = lynx_value_get_int(lynx_msg_body(heartbeat), "active_jobs", -1);
        lynx_msg_destroy(&heartbeat);
    }
    assert_int_equal(active, 1);
    s_send_about(fx, LYNX_MSG_KILL, "job-1", 1);
    lynx_msg_t *finished = s_expect_finished(fx, "Cancelled");
    lynx_msg_destroy(&finished);
    s_assert_group_gone(pid);
}

//  A FINISHED is sent again until its ACK, and a new registration lists it in finished_jobs
//  (ERROR not_found is what a broker that declared us Offline answers a heartbeat with).
static void test_finished_is_kept_until_acked(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "true");
    s_start_job(fx, 60);
    lynx_msg_t *finished = s_expect_finished(fx, "Completed");
    lynx_msg_destroy(&finished);
    finished = s_expect_finished(fx, "Completed"); //  no ACK: sent again
    lynx_msg_destroy(&finished);

    s_send_not_found(fx);
    lynx_msg_t *reg = s_expect(fx, fx->router, LYNX_MSG_REGISTER);
    const lynx_value_t *held = lynx_value_get(lynx_msg_body(reg), "finished_jobs");
    assert_int_equal(lynx_value_size(held), 1);
    assert_string_equal(lynx_value_get_string(lynx_value_at(held, 0), "job_id", ""), "job-1");
    assert_int_equal(lynx_value_get_int(lynx_value_at(held, 0), "attempt", 0), 1);
    assert_int_equal(lynx_value_size(lynx_value_get(lynx_msg_body(reg), "active_jobs")), 0);
    lynx_msg_destroy(&reg);
    s_registered(fx, fx->events_port);
    finished = s_expect_finished(fx, "Completed"); //  at once after registering
    lynx_msg_destroy(&finished);

    //  Acknowledged: the next registration holds nothing.
    s_send_about(fx, LYNX_MSG_ACK, "job-1", 1);
    s_send_not_found(fx);
    reg = s_expect(fx, fx->router, LYNX_MSG_REGISTER);
    assert_int_equal(lynx_value_size(lynx_value_get(lynx_msg_body(reg), "finished_jobs")), 0);
    lynx_msg_destroy(&reg);
}

//  The broker restarts (on the same port, with a new events port): the runner notices the new
//  connection and registers again by itself, listing the attempt it still runs, then publishes
//  heartbeats to the new events socket.
static void test_registers_again_after_a_broker_restart(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "sleep 30");
    s_start_job(fx, 60);
    lynx_msg_t *heartbeat = s_expect(fx, fx->sub, LYNX_MSG_HEARTBEAT);
    lynx_msg_destroy(&heartbeat);

    int old_events_port = fx->events_port;
    zsock_t *old_sub = fx->sub;
    fx->sub = s_bind(ZMQ_SUB, "tcp://127.0.0.1:*", &fx->events_port);
    assert_non_null(fx->sub);
    assert_int_not_equal(fx->events_port, old_events_port);
    zsock_destroy(&old_sub);
    zsock_destroy(&fx->router);
    zframe_destroy(&fx->peer);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", fx->router_port);
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    while (!(fx->router = s_bind(ZMQ_ROUTER, endpoint, NULL)) && s_left_ms(deadline) > 0)
        zclock_sleep(10); //  the old listener closes asynchronously
    assert_non_null(fx->router);

    lynx_msg_t *reg = s_expect(fx, fx->router, LYNX_MSG_REGISTER);
    const lynx_value_t *active = lynx_value_get(lynx_msg_body(reg), "active_jobs");
    assert_int_equal(lynx_value_size(active), 1);
    assert_string_equal(lynx_value_get_string(lynx_value_at(active, 0), "job_id", ""), "job-1");
    assert_int_equal(lynx_value_get_int(lynx_value_at(active, 0), "attempt", 0), 1);
    lynx_msg_destroy(&reg);
    s_registered(fx, fx->events_port);
    heartbeat = s_expect(fx, fx->sub, LYNX_MSG_HEARTBEAT);
    assert_int_equal(lynx_value_get_int(lynx_msg_body(heartbeat), "active_jobs", -1), 1);
    lynx_msg_destroy(&heartbeat);
}

// --------------------------------------------------------------------------------------------
//  Telemetry and early termination

//  A registered runner whose scenario is a Python program (source), run from the test's
//  directory with the client found in the source tree. Returns once a heartbeat arrived on the
//  events socket: its subscription is in place, so forwarded telemetry is not lost to a slow
//  joiner.
static void s_start_python(s_fixture_t *fx, const char *source)
{
    char path[PATH_MAX + 16], script[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/scenario.py", fx->root);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(source, file);
    fclose(file);
    snprintf(script, sizeof script, "exec /usr/bin/python3 %s", path);
    lynx_msg_t *msg =
        s_start_runner(fx, script, "--clients-dir=" LYNX_SOURCE_DIR "/clients/python");
    lynx_msg_destroy(&msg);
    s_registered(fx, fx->events_port);
    s_expect_ready(fx);
    lynx_msg_t *heartbeat = s_expect(fx, fx->sub, LYNX_MSG_HEARTBEAT);
    lynx_msg_destroy(&heartbeat);
}

//  Sends altitude_km 200, 190, ... every 20 ms; after the first frame below 150 (the crossing
//  frame) it stops sending and waits to be killed.
static const char s_falling_scenario[] =
    "import os, time\n"
    "from lynx_telemetry_client import telemetry_client_from_env\n"
    "client = telemetry_client_from_env()\n"
    "assert client.active, client\n"
    "for step in range(100):\n"
    "    altitude = 200.0 - 10.0 * step\n"
    "    client.send({'altitude_km': altitude, 'step': step}, timestamp_ns=step * 10**9)\n"
    "    if altitude < 150.0:\n"
    "        time.sleep(60)\n"
    "    time.sleep(0.02)\n";

static const char s_too_low_rule[] =
    "{\"early_termination\": {\"enabled\": true, \"check_frequency_hz\": 10, \"conditions\":"
    " [{\"name\": \"too_low\", \"description\": \"Orbit decayed\", \"variable\": \"altitude_km\","
    " \"operator\": \"lt\", \"threshold\": 150.0, \"units\": \"km\"}]},"
    " \"telemetry\": {\"variables\": [\"altitude_km\"]}}";

//  The rule fires on the crossing frame: the scenario's process group is killed at once, the
//  attempt is Failed and not to be retried, and the result holds the trigger event with that
//  frame. Frames went to the broker meanwhile, stamped with the job, filtered as configured.
static void test_early_termination_kills_and_fails_for_good(void **state)
{
    s_fixture_t *fx = *state;
    s_start_python(fx, s_falling_scenario);
    pid_t pid = s_start_job_with(fx, 60, s_too_low_rule);
    lynx_msg_t *finished = s_expect_finished(fx, "Failed");
    lynx_value_t *body = lynx_msg_body(finished);
    assert_int_equal(lynx_value_type(lynx_value_get(body, "retryable")), LYNX_VALUE_BOOL);
    assert_false(lynx_value_get_bool(body, "retryable", true));
    const lynx_value_t *result = lynx_value_get(body, "result");
    assert_string_equal(lynx_value_get_string(result, "error_message", ""),
                        "early termination: too_low");
    const lynx_value_t *telemetry = lynx_value_get(result, "telemetry_data");
    const lynx_value_t *trigger = lynx_value_get(telemetry, "trigger");
    assert_string_equal(lynx_value_get_string(trigger, "rule_name", ""), "too_low");
    assert_string_equal(lynx_value_get_string(trigger, "description", ""), "Orbit decayed");
    assert_true(lynx_value_get_double(trigger, "elapsed_seconds", -1) > 0);
    assert_int_equal(lynx_value_get_int(trigger, "seq", -1), 6);
    const lynx_value_t *frame = lynx_value_get(trigger, "telemetry_at_trigger");
    assert_true(lynx_value_get_double(frame, "altitude_km", 0) == 140.0);
    assert_int_equal(lynx_value_get_int(frame, "step", -1), 6);
    assert_int_equal(lynx_value_get_int(telemetry, "frames_received", -1), 7);
    assert_int_equal(lynx_value_get_int(telemetry, "frames_invalid", -1), 0);
    assert_int_equal(lynx_value_get_int(telemetry, "frames_dropped_by_client", -1), 0);
    assert_true(lynx_value_get_double(lynx_value_get(telemetry, "last_values"), "altitude_km", 0) ==
                140.0);
    lynx_msg_destroy(&finished);
    s_assert_group_gone(pid);

    //  Forwarded on the events socket: job and batch set by the runner, only altitude_km.
    lynx_msg_t *forwarded = s_expect(fx, fx->sub, LYNX_MSG_TELEMETRY);
    lynx_value_t *sample = lynx_msg_body(forwarded);
    assert_string_equal(lynx_value_get_string(sample, "job_id", ""), "job-1");
    assert_string_equal(lynx_value_get_string(sample, "batch_id", ""), "batch-1");
    assert_int_equal(lynx_value_size(lynx_value_get(sample, "values")), 1);
    assert_non_null(lynx_value_get(lynx_value_get(sample, "values"), "altitude_km"));
    lynx_msg_destroy(&forwarded);
}

//  enabled: false: the same falling values never fire; the scenario runs until it is killed
//  for another reason (here its timeout).
static void test_disabled_rules_never_fire(void **state)
{
    s_fixture_t *fx = *state;
    s_start_python(fx, s_falling_scenario);
    s_start_job_with(fx, 1,
                     "{\"early_termination\": {\"enabled\": false, \"conditions\": [{\"name\":"
                     " \"too_low\", \"variable\": \"altitude_km\", \"operator\": \"lt\","
                     " \"threshold\": 150.0, \"units\": \"km\"}]}}");
    lynx_msg_t *finished = s_expect_finished(fx, "Timeout");
    const lynx_value_t *telemetry =
        lynx_value_get(lynx_value_get(lynx_msg_body(finished), "result"), "telemetry_data");
    assert_int_equal(lynx_value_type(lynx_value_get(telemetry, "trigger")), LYNX_VALUE_NULL);
    assert_int_equal(lynx_value_get_int(telemetry, "frames_received", -1), 7);
    assert_null(lynx_value_get(lynx_msg_body(finished), "retryable"));
    lynx_msg_destroy(&finished);
}

//  A scenario that sends its last frames and exits at once: they are all counted, since the
//  result waits for the scenario's connections to close. The client is importable (it is
//  first on PYTHONPATH, with what the runner inherited after it) and the URL is the runner's.
static void test_last_frames_before_exit_are_counted(void **state)
{
    s_fixture_t *fx = *state;
    setenv("PYTHONPATH", "/opt/inherited", 1);
    s_start_python(fx, "import os\n"
                       "from lynx_telemetry_client import telemetry_client_from_env\n"
                       "client = telemetry_client_from_env()\n"
                       "for step in range(500):\n"
                       "    client.send({'step': step, 'ok': True})\n"
                       "with open(os.environ['TETRYX_OUTPUT_DIR'] + '/env.txt', 'w') as out:\n"
                       "    out.write(os.environ['PYTHONPATH'] + '\\n')\n"
                       "    out.write(os.environ['TETRYX_TELEMETRY_URL'] + '\\n')\n");
    unsetenv("PYTHONPATH"); //  the runner read it at start
    s_start_job(fx, 60);
    lynx_msg_t *finished = s_expect_finished(fx, "Completed");
    const lynx_value_t *telemetry =
        lynx_value_get(lynx_value_get(lynx_msg_body(finished), "result"), "telemetry_data");
    assert_int_equal(lynx_value_get_int(telemetry, "frames_received", -1) +
                         lynx_value_get_int(telemetry, "frames_dropped_by_client", -1),
                     500);
    assert_int_equal(lynx_value_get_int(telemetry, "frames_received", -1), 500);
    const lynx_value_t *last = lynx_value_get(telemetry, "last_values");
    assert_int_equal(lynx_value_get_int(last, "step", -1), 499);
    assert_true(lynx_value_get_bool(last, "ok", false));
    lynx_msg_destroy(&finished);

    char env_txt[PATH_MAX + 32];
    snprintf(env_txt, sizeof env_txt, "%s/runs/job-1/env.txt", fx->root);
    char *env = s_read_file(env_txt);
    assert_string_equal(strtok(env, "\n"), LYNX_SOURCE_DIR "/clients/python:/opt/inherited");
    assert_true(strncmp(strtok(NULL, "\n"), "tcp://127.0.0.1:", 16) == 0);
    free(env);
}

//  A rule met by the last frame of a scenario that then exits by itself still fires: the
//  outcome does not depend on whether a check came before the exit.
static void test_rule_met_by_the_last_frame_fires(void **state)
{
    s_fixture_t *fx = *state;
    s_start_python(fx, "from lynx_telemetry_client import telemetry_client_from_env\n"
                       "client = telemetry_client_from_env()\n"
                       "client.send({'altitude_km': 300.0})\n"
                       "client.send({'altitude_km': 100.0})\n");
    s_start_job_with(fx, 60, s_too_low_rule);
    lynx_msg_t *finished = s_expect_finished(fx, "Failed");
    assert_false(lynx_value_get_bool(lynx_msg_body(finished), "retryable", true));
    const lynx_value_t *trigger = lynx_value_get(
        lynx_value_get(lynx_value_get(lynx_msg_body(finished), "result"), "telemetry_data"),
        "trigger");
    assert_int_equal(lynx_value_get_int(trigger, "seq", -1), 1);
    lynx_msg_destroy(&finished);
}

//  clients_dir must hold the client: a runner configured with a wrong one refuses to start
//  rather than run scenarios that cannot import it.
static void test_clients_dir_must_hold_the_client(void **state)
{
    (void)state;
    char *argv[] = {"lynx-runner", "--engines",     "command",      "--command-executable",
                    "/bin/true",   "--clients-dir", "/no/such/dir", NULL};
    char *envp[] = {NULL};
    lynx_err_t err;
    assert_null(runner_config_load(7, argv, envp, &err));
    assert_string_equal(err.field, "clients_dir");
    assert_string_equal(err.message, "clients_dir: no lynx_telemetry_client.py in /no/such/dir");
}

//  Without the client, nothing changes: the job completes with an empty summary.
static void test_scenario_without_telemetry(void **state)
{
    s_fixture_t *fx = *state;
    s_start_registered(fx, "test -n \"$TETRYX_TELEMETRY_URL\"");
    s_start_job_with(fx, 60, s_too_low_rule);
    lynx_msg_t *finished = s_expect_finished(fx, "Completed");
    const lynx_value_t *telemetry =
        lynx_value_get(lynx_value_get(lynx_msg_body(finished), "result"), "telemetry_data");
    assert_int_equal(lynx_value_get_int(telemetry, "frames_received", -1), 0);
    assert_int_equal(lynx_value_size(lynx_value_get(telemetry, "last_values")), 0);
    assert_int_equal(lynx_value_type(lynx_value_get(telemetry, "trigger")), LYNX_VALUE_NULL);
    lynx_msg_destroy(&finished);
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(stderr);
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_registers_then_heartbeats_on_the_events_socket),
        S_TEST(test_registration_refused),
        S_TEST(test_heartbeats_on_the_dealer_without_events_port),
        S_TEST(test_configured_events_endpoint),
        S_TEST(test_job_completes),
        S_TEST(test_failing_command),
        S_TEST(test_missing_program),
        S_TEST(test_timeout_kills_the_process_group),
        S_TEST(test_kill_cancels),
        S_TEST(test_finished_is_kept_until_acked),
        S_TEST(test_registers_again_after_a_broker_restart),
        S_TEST(test_early_termination_kills_and_fails_for_good),
        S_TEST(test_disabled_rules_never_fire),
        S_TEST(test_last_frames_before_exit_are_counted),
        S_TEST(test_rule_met_by_the_last_frame_fires),
        S_TEST(test_scenario_without_telemetry),
        S_TEST(test_clients_dir_must_hold_the_client),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
