//  broker_fixture: a broker actor over real sockets, for the broker's unit tests.
//
//  Each test starts a broker on 127.0.0.1 with ephemeral ports and a fresh data dir, then plays
//  an API client (REQUEST -> REPLY or ERROR, as the gateway does) and one or more runners
//  (REGISTER, HEARTBEAT, STARTED, FINISHED, as lynx-runner does). Every wait is a poll with a
//  deadline. While a test waits, its registered runners keep heartbeating like real ones, so a
//  runner only goes silent when a test says so. Include it once, from a test program; each
//  program uses the helpers it needs (S_FIXTURE marks them possibly unused).
#ifndef BROKER_FIXTURE_H_INCLUDED
#define BROKER_FIXTURE_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define S_FIXTURE static __attribute__((unused))

#define S_HEARTBEAT_MS 200
#define S_HEARTBEAT_MISSES 3
#define S_BEAT_EVERY_MS 100   //  simulated runners beat twice per interval
#define S_SLICE_MS 20         //  receive in slices so runners can beat meanwhile
#define S_REPLY_MS 3000       //  deadline for anything the broker should send promptly
#define S_QUIET_MS 300        //  how long "nothing arrives" is watched
#define S_RUNNER_LOST_MS 3000 //  deadline for offline detection (3 x 200 ms, 250 ms ticks)
#define S_RUNNERS_MAX 4
#define S_ID_SIZE 64

//  ---------------------------------------------------------------------------------------
//  Fixture: a broker, an API client and the simulated runners.

typedef struct {
    zsock_t *socket;
    char id[S_ID_SIZE];
    bool beating; //  registered and alive: heartbeats while the test waits
    int64_t last_beat_ms;
} s_runner_t;

typedef struct {
    char data_dir[64];
    zactor_t *broker;
    char runner_endpoint[256];
    char api_endpoint[256];
    zsock_t *client;
    int64_t corr;
    s_runner_t runners[S_RUNNERS_MAX];
    size_t runner_count;
    int quarantine_after;         //  broker option (0: its default, 5; -1: never)
    char telemetry_endpoint[256]; //  the broker's PUB for job, batch and runner events
} s_fixture_t;

S_FIXTURE zsock_t *s_dealer(const char *endpoint)
{
    zsock_t *socket = zsock_new(ZMQ_DEALER);
    assert_non_null(socket);
    zsock_set_linger(socket, 0);
    assert_int_equal(zsock_connect(socket, "%s", endpoint), 0);
    return socket;
}

//  Start a broker on the fixture's data dir and connect a fresh API client to it.
S_FIXTURE void s_broker_start(s_fixture_t *fx)
{
    broker_options_t options = {
        .data_dir = fx->data_dir,
        .runner_endpoint = "tcp://127.0.0.1:*",
        .api_endpoint = "tcp://127.0.0.1:*",
        .heartbeat_interval_ms = S_HEARTBEAT_MS,
        .heartbeat_misses = S_HEARTBEAT_MISSES,
        .quarantine_after = fx->quarantine_after,
        .telemetry_endpoint_out = fx->telemetry_endpoint,
    };
    lynx_err_t err;
    lynx_err_clear(&err);
    fx->broker = broker_start(&options, fx->runner_endpoint, fx->api_endpoint, &err);
    if (!fx->broker)
        fail_msg("broker_start: %s", err.message);
    assert_non_null(strstr(fx->runner_endpoint, "tcp://127.0.0.1:"));
    assert_string_not_equal(fx->runner_endpoint, "tcp://127.0.0.1:*");
    fx->client = s_dealer(fx->api_endpoint);
}

S_FIXTURE void s_broker_stop(s_fixture_t *fx)
{
    zsock_destroy(&fx->client);
    zactor_destroy(&fx->broker);
}

S_FIXTURE int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info, (void)flag, (void)ftw;
    return remove(path);
}

S_FIXTURE int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->data_dir, sizeof fx->data_dir, "/tmp/lynx-broker-test-XXXXXX");
    assert_non_null(mkdtemp(fx->data_dir));
    s_broker_start(fx);
    *state = fx;
    return 0;
}

S_FIXTURE int s_teardown(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    for (size_t i = 0; i < fx->runner_count; i++)
        zsock_destroy(&fx->runners[i].socket);
    s_broker_stop(fx);
    nftw(fx->data_dir, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Sending and receiving

S_FIXTURE void s_send(zsock_t *socket, lynx_msg_t *msg)
{
    const char *command = lynx_msg_command(msg);
    lynx_err_t err;
    if (lynx_msg_send(&msg, zsock_resolve(socket), NULL, &err))
        fail_msg("send %s: %s", command, err.message);
}

//  Every registered, live runner that is due sends a HEARTBEAT.
S_FIXTURE void s_beat(s_fixture_t *fx)
{
    int64_t now_ms = lynx_time_mono_ms();
    for (size_t i = 0; i < fx->runner_count; i++) {
        s_runner_t *runner = &fx->runners[i];
        if (!runner->beating || now_ms - runner->last_beat_ms < S_BEAT_EVERY_MS)
            continue;
        lynx_msg_t *beat = lynx_msg_new(LYNX_MSG_HEARTBEAT);
        lynx_value_set_string(lynx_msg_body(beat), "runner_id", runner->id);
        s_send(runner->socket, beat);
        runner->last_beat_ms = now_ms;
    }
}

//  The next message on socket within timeout_ms, or NULL. A malformed one fails the test.
S_FIXTURE lynx_msg_t *s_recv(s_fixture_t *fx, zsock_t *socket, int timeout_ms)
{
    int64_t deadline_ms = lynx_time_mono_ms() + timeout_ms;
    while (true) {
        s_beat(fx);
        int64_t left_ms = deadline_ms - lynx_time_mono_ms();
        if (left_ms <= 0)
            return NULL;
        zsock_set_rcvtimeo(socket, (int)(left_ms < S_SLICE_MS ? left_ms : S_SLICE_MS));
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(socket), NULL, &err);
        if (msg)
            return msg;
        if (err.code != LYNX_EUNAVAILABLE)
            fail_msg("broker sent a malformed message: %s", err.message);
    }
}

//  The next message must be a `id` and arrive within timeout_ms. Returns it (owned).
S_FIXTURE lynx_msg_t *s_expect(s_fixture_t *fx, zsock_t *socket, lynx_msg_id_t id, int timeout_ms)
{
    lynx_msg_t *msg = s_recv(fx, socket, timeout_ms);
    if (!msg)
        fail_msg("expected %s within %d ms, got nothing", lynx_msg_id_name(id), timeout_ms);
    if (lynx_msg_id(msg) != id)
        fail_msg("expected %s, got %s (code %s: %s)", lynx_msg_id_name(id), lynx_msg_command(msg),
                 lynx_value_get_string(lynx_msg_body(msg), "code", "-"),
                 lynx_value_get_string(lynx_msg_body(msg), "message", "-"));
    return msg;
}

//  Nothing may arrive on socket for quiet_ms.
S_FIXTURE void s_expect_quiet(s_fixture_t *fx, zsock_t *socket, int quiet_ms)
{
    lynx_msg_t *msg = s_recv(fx, socket, quiet_ms);
    if (msg)
        fail_msg("expected nothing for %d ms, got %s job_id=%s", quiet_ms, lynx_msg_command(msg),
                 lynx_value_get_string(lynx_msg_body(msg), "job_id", "-"));
}

//  An ERROR with this code; the message must contain says (unless NULL). Returns its body.
S_FIXTURE lynx_value_t *s_expect_error(s_fixture_t *fx, zsock_t *socket, const char *code,
                                       const char *says)
{
    lynx_msg_t *msg = s_expect(fx, socket, LYNX_MSG_ERROR, S_REPLY_MS);
    lynx_value_t *body = lynx_value_dup(lynx_msg_body(msg));
    lynx_msg_destroy(&msg);
    assert_string_equal(lynx_value_get_string(body, "code", ""), code);
    if (says && !strstr(lynx_value_get_string(body, "message", ""), says))
        fail_msg("ERROR message '%s' does not mention '%s'",
                 lynx_value_get_string(body, "message", ""), says);
    return body;
}

//  ---------------------------------------------------------------------------------------
//  The API client

//  {key: value}, for the many operations that take one id.
S_FIXTURE lynx_value_t *s_args(const char *key, const char *value)
{
    lynx_value_t *args = lynx_value_map();
    lynx_value_set_string(args, key, value);
    return args;
}

//  Send a REQUEST (taking args, which may be NULL) and return its REPLY or ERROR, checking
//  that it answers this request's correlation id.
S_FIXTURE lynx_msg_t *s_call(s_fixture_t *fx, const char *op, lynx_value_t *args)
{
    int64_t corr = ++fx->corr;
    lynx_msg_t *request = lynx_msg_new(LYNX_MSG_REQUEST);
    lynx_value_set_int(lynx_msg_body(request), "corr", corr);
    lynx_value_set_string(lynx_msg_body(request), "op", op);
    if (args)
        assert_int_equal(lynx_value_set(lynx_msg_body(request), "args", &args), 0);
    s_send(fx->client, request);
    lynx_msg_t *answer = s_recv(fx, fx->client, S_REPLY_MS);
    if (!answer)
        fail_msg("no answer to %s within %d ms", op, S_REPLY_MS);
    assert_int_equal(lynx_value_get_int(lynx_msg_body(answer), "corr", -1), corr);
    return answer;
}

//  The REPLY body of a request that must succeed (owned).
S_FIXTURE lynx_value_t *s_call_ok(s_fixture_t *fx, const char *op, lynx_value_t *args)
{
    lynx_msg_t *answer = s_call(fx, op, args);
    lynx_value_t *body = lynx_msg_body(answer);
    if (lynx_msg_id(answer) != LYNX_MSG_REPLY)
        fail_msg("%s: %s %s: %s", op, lynx_msg_command(answer),
                 lynx_value_get_string(body, "code", "?"),
                 lynx_value_get_string(body, "message", "?"));
    lynx_value_t *reply = lynx_value_dup(lynx_value_get(body, "body"));
    lynx_msg_destroy(&answer);
    return reply;
}

//  The ERROR body of a request that must fail with code (owned).
S_FIXTURE lynx_value_t *s_call_error(s_fixture_t *fx, const char *op, lynx_value_t *args,
                                     const char *code)
{
    lynx_msg_t *answer = s_call(fx, op, args);
    if (lynx_msg_id(answer) != LYNX_MSG_ERROR)
        fail_msg("%s: expected ERROR %s, got %s", op, code, lynx_msg_command(answer));
    lynx_value_t *body = lynx_value_dup(lynx_msg_body(answer));
    lynx_msg_destroy(&answer);
    assert_string_equal(lynx_value_get_string(body, "code", ""), code);
    return body;
}

S_FIXTURE lynx_value_t *s_job_get(s_fixture_t *fx, const char *job_id)
{
    return s_call_ok(fx, "job.get", s_args("job_id", job_id));
}

S_FIXTURE lynx_value_t *s_batch_get(s_fixture_t *fx, const char *batch_id)
{
    return s_call_ok(fx, "batch.get", s_args("batch_id", batch_id));
}

S_FIXTURE void s_assert_job_status(s_fixture_t *fx, const char *job_id, const char *status)
{
    lynx_value_t *job = s_job_get(fx, job_id);
    assert_string_equal(lynx_value_get_string(job, "status", ""), status);
    lynx_value_destroy(&job);
}

//  Poll job.get until the job reaches status: for runner messages that get no reply (STARTED),
//  which the broker may handle after a later API request on its other socket.
S_FIXTURE void s_wait_job_status(s_fixture_t *fx, const char *job_id, const char *status)
{
    int64_t deadline_ms = lynx_time_mono_ms() + S_REPLY_MS;
    while (true) {
        lynx_value_t *job = s_job_get(fx, job_id);
        bool reached = strcmp(lynx_value_get_string(job, "status", ""), status) == 0;
        lynx_value_destroy(&job);
        if (reached)
            return;
        if (lynx_time_mono_ms() > deadline_ms)
            fail_msg("job %s did not reach %s within %d ms", job_id, status, S_REPLY_MS);
    }
}

//  batch.get's counters: total, completed, failed and jobs_by_status.<state>.
S_FIXTURE void s_assert_batch(s_fixture_t *fx, const char *batch_id, const char *status,
                              int64_t completed, int64_t failed)
{
    lynx_value_t *reply = s_batch_get(fx, batch_id);
    lynx_value_t *batch = lynx_value_get(reply, "batch");
    assert_string_equal(lynx_value_get_string(batch, "status", ""), status);
    assert_int_equal(lynx_value_get_int(batch, "completed_jobs", -1), completed);
    assert_int_equal(lynx_value_get_int(batch, "failed_jobs", -1), failed);
    lynx_value_destroy(&reply);
}

//  jobs_by_status.<state> of a batch.get reply.
S_FIXTURE int64_t s_count(const lynx_value_t *reply, const char *state)
{
    return lynx_value_get_int(lynx_value_get(reply, "jobs_by_status"), state, -1);
}

//  ---------------------------------------------------------------------------------------
//  Batches

typedef struct {
    int64_t runs;
    int64_t max_retries;
    int64_t max_parallel_jobs; //  0: not set (no limit)
    const char *engine;        //  NULL: not set (the default, basilisk)
    const char *capability;    //  NULL: none required, else compute.required_capabilities [it]
    const char *submitted_by;  //  NULL: not sent
} s_spec_t;

S_FIXTURE lynx_value_t *s_object(lynx_value_t *parent, const char *key)
{
    lynx_value_t *child = lynx_value_map();
    assert_int_equal(lynx_value_set(parent, key, &child), 0);
    return lynx_value_get(parent, key);
}

//  A small valid config: spec.runs monte_carlo runs with seed 1 over one uniform dispersion.
S_FIXTURE lynx_value_t *s_config(s_spec_t spec)
{
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *simulation = s_object(config, "simulation");
    lynx_value_set_string(simulation, "name", "orbit-test");
    lynx_value_set_string(simulation, "version", "1.2.0");
    lynx_value_set_int(simulation, "duration_minutes", 5);
    lynx_value_t *monte_carlo = s_object(config, "monte_carlo");
    lynx_value_set_int(monte_carlo, "runs", spec.runs);
    lynx_value_set_int(monte_carlo, "seed", 1);
    lynx_value_set_string(monte_carlo, "sampling_method", "monte_carlo");
    lynx_value_t *mass = s_object(s_object(config, "dispersions"), "mass_kg");
    lynx_value_set_string(mass, "units", "kg");
    lynx_value_t *distribution = s_object(mass, "distribution");
    lynx_value_set_string(distribution, "type", "uniform");
    lynx_value_set_double(distribution, "min", 100.0);
    lynx_value_set_double(distribution, "max", 200.0);
    lynx_value_t *compute = s_object(config, "compute");
    lynx_value_set_int(compute, "max_retries", spec.max_retries);
    lynx_value_set_int(compute, "job_timeout_seconds", 60);
    if (spec.max_parallel_jobs > 0)
        lynx_value_set_int(compute, "max_parallel_jobs", spec.max_parallel_jobs);
    if (spec.engine)
        lynx_value_set_string(compute, "engine", spec.engine);
    if (spec.capability) {
        lynx_value_t *required = lynx_value_array();
        assert_int_equal(lynx_value_append_owned(required, lynx_value_string(spec.capability)), 0);
        assert_int_equal(lynx_value_set(compute, "required_capabilities", &required), 0);
    }
    return config;
}

//  batch.submit a config built from spec; copies the new batch's id into batch_id.
S_FIXTURE void s_submit(s_fixture_t *fx, s_spec_t spec, char *batch_id)
{
    lynx_value_t *args = s_args("name", "broker-test");
    lynx_value_t *config = s_config(spec);
    assert_int_equal(lynx_value_set(args, "config", &config), 0);
    if (spec.submitted_by)
        lynx_value_set_string(args, "submitted_by", spec.submitted_by);
    lynx_value_t *reply = s_call_ok(fx, "batch.submit", args);
    assert_int_equal(lynx_value_get_int(reply, "total_jobs", -1), spec.runs);
    assert_int_equal(lynx_value_get_int(reply, "seed", -1), 1);
    snprintf(batch_id, S_ID_SIZE, "%s", lynx_value_get_string(reply, "batch_id", ""));
    assert_true(batch_id[0]);
    lynx_value_destroy(&reply);
}

//  ---------------------------------------------------------------------------------------
//  Simulated runners

//  A runner socket connected to the broker; it says nothing until s_register.
S_FIXTURE s_runner_t *s_runner_new(s_fixture_t *fx, const char *id)
{
    assert_true(fx->runner_count < S_RUNNERS_MAX);
    s_runner_t *runner = &fx->runners[fx->runner_count++];
    runner->socket = s_dealer(fx->runner_endpoint);
    snprintf(runner->id, sizeof runner->id, "%s", id);
    return runner;
}

//  The runner process restarted, or the broker did: a new connection, not yet registered.
S_FIXTURE void s_runner_reconnect(s_fixture_t *fx, s_runner_t *runner)
{
    zsock_destroy(&runner->socket);
    runner->socket = s_dealer(fx->runner_endpoint);
    runner->beating = false;
}

//  REGISTER with slots and one engine, plus the attempts it still runs (active_jobs, an array
//  of {job_id, attempt} that this takes; may be NULL). Expects REGISTERED; then it heartbeats.
S_FIXTURE void s_register(s_fixture_t *fx, s_runner_t *runner, int64_t slots, const char *engine,
                          lynx_value_t *active_jobs)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_REGISTER);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "runner_id", runner->id);
    lynx_value_set_string(body, "name", runner->id);
    lynx_value_t *capabilities = s_object(body, "capabilities");
    lynx_value_set_int(capabilities, "max_concurrent_jobs", slots);
    lynx_value_set_int(capabilities, "cpu_cores", 4);
    lynx_value_set_double(capabilities, "memory_gb", 8.0);
    lynx_value_set_bool(capabilities, "gpu_available", false);
    lynx_value_t *engines = lynx_value_array();
    lynx_value_t *name = lynx_value_string(engine);
    assert_int_equal(lynx_value_append(engines, &name), 0);
    assert_int_equal(lynx_value_set(body, "engines", &engines), 0);
    if (active_jobs)
        assert_int_equal(lynx_value_set(body, "active_jobs", &active_jobs), 0);
    s_send(runner->socket, msg);

    lynx_msg_t *registered = s_expect(fx, runner->socket, LYNX_MSG_REGISTERED, S_REPLY_MS);
    body = lynx_msg_body(registered);
    assert_string_equal(lynx_value_get_string(body, "runner_id", ""), runner->id);
    assert_int_equal(lynx_value_get_int(body, "heartbeat_interval_ms", -1), S_HEARTBEAT_MS);
    lynx_msg_destroy(&registered);
    runner->beating = true;
    runner->last_beat_ms = lynx_time_mono_ms();
}

//  [{job_id, attempt}], as a runner lists the attempts it still holds.
S_FIXTURE lynx_value_t *s_attempts(const char *job_id, int64_t attempt)
{
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "job_id", job_id);
    lynx_value_set_int(entry, "attempt", attempt);
    lynx_value_t *list = lynx_value_array();
    assert_int_equal(lynx_value_append(list, &entry), 0);
    return list;
}

typedef struct {
    char job_id[S_ID_SIZE];
    char batch_id[S_ID_SIZE];
    int64_t attempt;
    int64_t run_id;
} s_assign_t;

//  The runner's next message must be an ASSIGN.
S_FIXTURE s_assign_t s_expect_assign(s_fixture_t *fx, s_runner_t *runner, int timeout_ms)
{
    lynx_msg_t *msg = s_expect(fx, runner->socket, LYNX_MSG_ASSIGN, timeout_ms);
    lynx_value_t *body = lynx_msg_body(msg);
    s_assign_t assign;
    snprintf(assign.job_id, sizeof assign.job_id, "%s", lynx_value_get_string(body, "job_id", ""));
    snprintf(assign.batch_id, sizeof assign.batch_id, "%s",
             lynx_value_get_string(body, "batch_id", ""));
    assign.attempt = lynx_value_get_int(body, "attempt", -1);
    assign.run_id = lynx_value_as_int(lynx_value_get_path(body, "run_config.run_id"));
    lynx_msg_destroy(&msg);
    return assign;
}

S_FIXTURE void s_started(s_runner_t *runner, const char *job_id, int64_t attempt)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_STARTED);
    lynx_value_set_string(lynx_msg_body(msg), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(msg), "attempt", attempt);
    lynx_value_set_int(lynx_msg_body(msg), "pid", 4242);
    s_send(runner->socket, msg);
}

//  FINISHED with extra fields (a map this takes, or NULL): each goes into the body, except
//  telemetry_data, which replaces the result's.
S_FIXTURE void s_send_finished_with(s_runner_t *runner, const char *job_id, int64_t attempt,
                                    const char *status, const char *error_message,
                                    lynx_value_t *extra)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_FINISHED);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "job_id", job_id);
    lynx_value_set_int(body, "attempt", attempt);
    lynx_value_set_string(body, "status", status);
    lynx_value_t *result = s_object(body, "result");
    lynx_value_set_string(result, "job_id", job_id);
    lynx_value_set_bool(result, "success", strcmp(status, "Completed") == 0);
    lynx_value_set_double(result, "execution_time_secs", 1.5);
    lynx_value_t *files = lynx_value_array();
    //  As a runner lists it: under <output_root>/<job_id>/ (anything else is dropped).
    char path[512];
    snprintf(path, sizeof path, "/tmp/tetryx-runs/%s/out.csv", job_id);
    lynx_value_t *file = lynx_value_string(path);
    assert_int_equal(lynx_value_append(files, &file), 0);
    assert_int_equal(lynx_value_set(result, "output_files", &files), 0);
    lynx_value_set_null(result, "telemetry_data");
    lynx_value_set_string(s_object(result, "metadata"), "engine", "basilisk");
    lynx_value_set_string(result, "error_message", error_message);
    for (size_t i = 0; i < lynx_value_size(extra); i++) {
        const char *key = lynx_value_key_at(extra, i);
        lynx_value_t *copy = lynx_value_dup(lynx_value_at(extra, i));
        lynx_value_t *into = strcmp(key, "telemetry_data") == 0 ? result : body;
        assert_int_equal(lynx_value_set(into, key, &copy), 0);
    }
    lynx_value_destroy(&extra);
    s_send(runner->socket, msg);
}

S_FIXTURE void s_send_finished(s_runner_t *runner, const char *job_id, int64_t attempt,
                               const char *status, const char *error_message)
{
    s_send_finished_with(runner, job_id, attempt, status, error_message, NULL);
}

//  FINISHED, and the ACK that must answer it, current attempt or stale.
S_FIXTURE void s_finished(s_fixture_t *fx, s_runner_t *runner, const char *job_id, int64_t attempt,
                          const char *status, const char *error_message)
{
    s_send_finished(runner, job_id, attempt, status, error_message);
    lynx_msg_t *ack = s_expect(fx, runner->socket, LYNX_MSG_ACK, S_REPLY_MS);
    assert_string_equal(lynx_value_get_string(lynx_msg_body(ack), "job_id", ""), job_id);
    assert_int_equal(lynx_value_get_int(lynx_msg_body(ack), "attempt", -1), attempt);
    lynx_msg_destroy(&ack);
}

#endif
