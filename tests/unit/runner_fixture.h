//  runner_fixture: what the runner actor's test programs share (runner_test, runner_job_test):
//  a fake broker (ROUTER + SUB on 127.0.0.1) in the test thread, the real runner actor, and
//  scenarios written into a temporary directory.
#ifndef RUNNER_FIXTURE_H_INCLUDED
#define RUNNER_FIXTURE_H_INCLUDED

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

#define S_FIXTURE static __attribute__((unused))

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

S_FIXTURE zsock_t *s_bind(int type, const char *endpoint, int *port_p)
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

S_FIXTURE int s_setup(void **state)
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

S_FIXTURE int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info, (void)flag, (void)ftw;
    return remove(path);
}

S_FIXTURE int s_teardown(void **state)
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

S_FIXTURE int64_t s_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - zclock_mono();
    return left > 0 ? left : 0;
}

//  The next message on socket within timeout_ms, or NULL. On the ROUTER, remembers the
//  sender's routing id for s_reply.
S_FIXTURE lynx_msg_t *s_recv(s_fixture_t *fx, zsock_t *socket, int64_t timeout_ms)
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
S_FIXTURE lynx_msg_t *s_expect(s_fixture_t *fx, zsock_t *socket, lynx_msg_id_t id)
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

S_FIXTURE void s_reply(s_fixture_t *fx, lynx_msg_t **msg_p)
{
    assert_non_null(fx->peer);
    lynx_err_t err;
    if (lynx_msg_send(msg_p, zsock_resolve(fx->router), fx->peer, &err))
        fail_msg("send to the runner: %s", err.message);
}

//  Answer a REGISTER; events_port 0 plays an older broker without an events socket.
S_FIXTURE void s_registered(s_fixture_t *fx, int events_port)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(msg), "runner_id", S_RUNNER_ID);
    lynx_value_set_int(lynx_msg_body(msg), "heartbeat_interval_ms", 100);
    if (events_port)
        lynx_value_set_int(lynx_msg_body(msg), "events_port", events_port);
    s_reply(fx, &msg);
}

//  A message with a job_id and an attempt (ACK, KILL).
S_FIXTURE void s_send_about(s_fixture_t *fx, lynx_msg_id_t id, const char *job_id, int64_t attempt)
{
    lynx_msg_t *msg = lynx_msg_new(id);
    lynx_value_set_string(lynx_msg_body(msg), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(msg), "attempt", attempt);
    if (id == LYNX_MSG_KILL)
        lynx_value_set_string(lynx_msg_body(msg), "reason", "cancelled by the test");
    s_reply(fx, &msg);
}

S_FIXTURE void s_send_not_found(s_fixture_t *fx)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_set_string(lynx_msg_body(msg), "code", "not_found");
    lynx_value_set_string(lynx_msg_body(msg), "message", "runner was declared offline");
    s_reply(fx, &msg);
}

S_FIXTURE lynx_value_t *s_run_config(void)
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
S_FIXTURE void s_assign_with(s_fixture_t *fx, const char *job_id, int64_t attempt,
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

S_FIXTURE void s_assign(s_fixture_t *fx, const char *job_id, int64_t attempt, int64_t timeout_secs)
{
    s_assign_with(fx, job_id, attempt, timeout_secs, NULL);
}

// --------------------------------------------------------------------------------------------
//  The runner

//  Start a runner whose command engine runs `/bin/sh -c script` (no commas: the flag's list is
//  comma-separated), with extra flags appended; wait for its REGISTER and return it.
S_FIXTURE lynx_msg_t *s_start_runner(s_fixture_t *fx, const char *script, const char *extra_flag)
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
    //  The fake broker here is a plain ROUTER: the CURVE path is tested end to end.
    char *envp[] = {"LYNX_RUNNER_INSECURE=true", NULL};
    lynx_err_t err;
    fx->config = runner_config_load(argc, argv, envp, &err);
    if (!fx->config)
        fail_msg("runner_config_load: %s", err.message);
    fx->runner = runner_start(fx->config);
    assert_non_null(fx->runner);
    return s_expect(fx, fx->router, LYNX_MSG_REGISTER);
}

//  What the actor tells its owner: "READY" once registered.
S_FIXTURE void s_expect_ready(s_fixture_t *fx)
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
S_FIXTURE void s_start_registered(s_fixture_t *fx, const char *script)
{
    lynx_msg_t *msg = s_start_runner(fx, script, NULL);
    lynx_msg_destroy(&msg);
    s_registered(fx, fx->events_port);
    s_expect_ready(fx);
}

//  ASSIGN job-1 attempt 1 (with extra fields, see s_assign_with) and check its STARTED;
//  returns the scenario's pid.
S_FIXTURE pid_t s_start_job_with(s_fixture_t *fx, int64_t timeout_secs, const char *extra_json)
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

S_FIXTURE pid_t s_start_job(s_fixture_t *fx, int64_t timeout_secs)
{
    return s_start_job_with(fx, timeout_secs, NULL);
}

//  The next FINISHED, checked to be job-1 attempt 1 with this status.
S_FIXTURE lynx_msg_t *s_expect_finished(s_fixture_t *fx, const char *status)
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
S_FIXTURE int s_running_in_group(pid_t pgid)
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

S_FIXTURE void s_assert_group_gone(pid_t pgid)
{
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    while (s_running_in_group(pgid) > 0 && s_left_ms(deadline) > 0)
        zclock_sleep(10); //  polling with a deadline
    assert_int_equal(s_running_in_group(pgid), 0);
}

S_FIXTURE char *s_read_file(const char *path)
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
#endif
