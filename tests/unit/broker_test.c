//  broker: the broker actor over real sockets.
//
//  Each test starts a broker on 127.0.0.1 with ephemeral ports and a fresh data dir, then plays
//  an API client (REQUEST -> REPLY or ERROR, as the gateway does) and one or more runners
//  (REGISTER, HEARTBEAT, STARTED, FINISHED, as lynx-runner does). Every wait is a poll with a
//  deadline. While a test waits, its registered runners keep heartbeating like real ones, so a
//  runner only goes silent when a test says so.
#include "broker_fixture.h"

//  ---------------------------------------------------------------------------------------
//  1. The API socket: health, unknown operations, expired requests.

static void test_health_unknown_op_and_expired_request(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_string_equal(lynx_value_get_string(health, "status", ""), "ok");
    assert_int_equal(lynx_value_get_int(health, "batches", -1), 0);
    assert_int_equal(lynx_value_get_int(health, "runners_online", -1), 0);
    assert_int_equal(lynx_value_get_int(health, "jobs_in_flight", -1), 0);
    lynx_value_destroy(&health);

    //  An unknown operation is not_found, and the error names it.
    lynx_value_t *error = s_call_error(fx, "batch.explode", NULL, "not_found");
    assert_string_equal(lynx_value_get_string(error, "field", ""), "op");
    assert_non_null(strstr(lynx_value_get_string(error, "message", ""), "batch.explode"));
    lynx_value_destroy(&error);
    //  So are unknown ids, naming the argument.
    error = s_call_error(fx, "batch.get", s_args("batch_id", "no-such-batch"), "not_found");
    assert_string_equal(lynx_value_get_string(error, "field", ""), "batch_id");
    lynx_value_destroy(&error);
    error = s_call_error(fx, "job.get", s_args("job_id", "no-such-job"), "not_found");
    assert_string_equal(lynx_value_get_string(error, "field", ""), "job_id");
    lynx_value_destroy(&error);

    //  A request whose deadline has passed was already answered 503 by the gateway: the broker
    //  drops it without a word.
    lynx_msg_t *request = lynx_msg_new(LYNX_MSG_REQUEST);
    lynx_value_set_int(lynx_msg_body(request), "corr", 999);
    lynx_value_set_string(lynx_msg_body(request), "op", "health");
    lynx_value_set_int(lynx_msg_body(request), "deadline_ms", lynx_time_now_ms() - 1000);
    s_send(fx->client, request);
    s_expect_quiet(fx, fx->client, S_QUIET_MS);
    //  The next request is answered with its own corr (s_call checks it).
    health = s_call_ok(fx, "health", NULL);
    lynx_value_destroy(&health);
}

//  ---------------------------------------------------------------------------------------
//  2. Malformed frames on either ROUTER are refused with protocol_error and harm nothing.

static zmsg_t *s_frame(const void *data, size_t size)
{
    zmsg_t *msg = zmsg_new();
    assert_int_equal(zmsg_addmem(msg, data, size), 0);
    return msg;
}

static zmsg_t *s_random_bytes(void)
{
    unsigned char bytes[64];
    uint64_t rng = 0x9e3779b97f4a7c15u; //  xorshift64, fixed seed: the same bytes every run
    for (size_t i = 0; i < sizeof bytes; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        bytes[i] = (unsigned char)rng;
    }
    return s_frame(bytes, sizeof bytes);
}

static zmsg_t *s_empty_frame(void)
{
    return s_frame("", 0);
}

//  [magic, version, command, {corr: 1, op: "health"}] packed with the generic msgpack packer.
static zmsg_t *s_envelope(const char *magic, int64_t version, const char *command)
{
    lynx_value_t *array = lynx_value_array();
    lynx_value_t *items[] = {lynx_value_string(magic), lynx_value_int(version),
                             lynx_value_string(command), lynx_value_map()};
    lynx_value_set_int(items[3], "corr", 1);
    lynx_value_set_string(items[3], "op", "health");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(lynx_value_append(array, &items[i]), 0);
    unsigned char *data = NULL;
    size_t size = 0;
    assert_int_equal(lynx_msgpack_pack(array, &data, &size), 0);
    lynx_value_destroy(&array);
    zmsg_t *msg = s_frame(data, size);
    free(data);
    return msg;
}

static zmsg_t *s_wrong_magic(void)
{
    return s_envelope("LYNY", LYNX_PROTOCOL_VERSION, "REQUEST");
}

static zmsg_t *s_wrong_version(void)
{
    return s_envelope(LYNX_PROTOCOL_MAGIC, LYNX_PROTOCOL_VERSION + 1, "REQUEST");
}

static zmsg_t *s_unknown_command(void)
{
    return s_envelope(LYNX_PROTOCOL_MAGIC, LYNX_PROTOCOL_VERSION, "EXPLODE");
}

static zmsg_t *s_three_frames(void)
{
    zmsg_t *msg = s_wrong_magic();
    zmsg_addstr(msg, "second");
    zmsg_addstr(msg, "third");
    return msg;
}

static const struct {
    const char *what;
    zmsg_t *(*build)(void);
    const char *says; //  the ERROR message mentions this (NULL: anything)
} s_garbage[] = {
    {"random bytes", s_random_bytes, NULL},
    {"empty frame", s_empty_frame, NULL},
    {"wrong magic", s_wrong_magic, "magic"},
    {"wrong version", s_wrong_version, "version"},
    {"unknown command", s_unknown_command, "EXPLODE"},
    {"three frames", s_three_frames, "got 3"},
};

static void s_send_garbage(s_fixture_t *fx, zsock_t *socket)
{
    for (size_t i = 0; i < sizeof s_garbage / sizeof s_garbage[0]; i++) {
        print_message("      %s\n", s_garbage[i].what);
        zmsg_t *msg = s_garbage[i].build();
        assert_int_equal(zmsg_send(&msg, socket), 0);
        lynx_value_t *error = s_expect_error(fx, socket, "protocol_error", s_garbage[i].says);
        assert_int_equal(lynx_value_get_int(error, "corr", -1), 0);
        lynx_value_destroy(&error);
    }
}

static void test_malformed_frames_are_refused(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_send_garbage(fx, fx->client);
    //  A well-formed message that is not a REQUEST is refused too.
    lynx_msg_t *beat = lynx_msg_new(LYNX_MSG_HEARTBEAT);
    lynx_value_set_string(lynx_msg_body(beat), "runner_id", "lost");
    s_send(fx->client, beat);
    lynx_value_t *error = s_expect_error(fx, fx->client, "protocol_error", "HEARTBEAT");
    lynx_value_destroy(&error);

    s_runner_t *runner = s_runner_new(fx, "garbage-runner");
    s_send_garbage(fx, runner->socket);
    //  The same connections still work.
    s_register(fx, runner, 1, "basilisk", NULL);
    //  A registered runner sending a client's command is told so.
    lynx_msg_t *request = lynx_msg_new(LYNX_MSG_REQUEST);
    lynx_value_set_int(lynx_msg_body(request), "corr", 5);
    lynx_value_set_string(lynx_msg_body(request), "op", "health");
    s_send(runner->socket, request);
    error = s_expect_error(fx, runner->socket, "protocol_error", "REQUEST");
    lynx_value_destroy(&error);

    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_string_equal(lynx_value_get_string(health, "status", ""), "ok");
    assert_int_equal(lynx_value_get_int(health, "runners_online", -1), 1);
    lynx_value_destroy(&health);
}

//  ---------------------------------------------------------------------------------------
//  3. An invalid config is refused with every problem listed, and nothing is stored.

static bool s_lists_field(const lynx_value_t *errors, const char *field)
{
    for (size_t i = 0; i < lynx_value_size(errors); i++)
        if (strcmp(lynx_value_get_string(lynx_value_at(errors, i), "field", ""), field) == 0)
            return true;
    return false;
}

static void test_invalid_config_lists_every_problem(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    lynx_value_t *config = s_config((s_spec_t){.runs = 3});
    lynx_value_remove(lynx_value_get(config, "simulation"), "name");
    lynx_value_set_int(lynx_value_get(config, "monte_carlo"), "runs", 0);
    lynx_value_set_string(lynx_value_get(config, "monte_carlo"), "sampling_method", "sobol");
    lynx_value_set_double(lynx_value_get_path(config, "dispersions.mass_kg.distribution"), "min",
                          300.0);
    lynx_value_t *args = s_args("name", "broken");
    assert_int_equal(lynx_value_set(args, "config", &config), 0);

    lynx_value_t *error = s_call_error(fx, "batch.submit", args, "invalid_argument");
    //  The headline names the first problem's field and counts the others.
    const lynx_value_t *errors = lynx_value_get(error, "errors");
    assert_int_equal(lynx_value_type(errors), LYNX_VALUE_ARRAY);
    assert_int_equal(lynx_value_size(errors), 4);
    const char *first = lynx_value_get_string(lynx_value_at(errors, 0), "field", "");
    assert_string_equal(lynx_value_get_string(error, "field", ""), first);
    const char *message = lynx_value_get_string(error, "message", "");
    assert_non_null(strstr(message, first));
    assert_non_null(strstr(message, "and 3 more errors"));
    assert_true(s_lists_field(errors, "config.simulation.name"));
    assert_true(s_lists_field(errors, "config.monte_carlo.runs"));
    assert_true(s_lists_field(errors, "config.monte_carlo.sampling_method"));
    assert_true(s_lists_field(errors, "config.dispersions.mass_kg.distribution.min"));
    for (size_t i = 0; i < lynx_value_size(errors); i++)
        assert_true(lynx_value_string_len(lynx_value_get(lynx_value_at(errors, i), "message")));
    lynx_value_destroy(&error);

    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_int_equal(lynx_value_get_int(health, "batches", -1), 0);
    lynx_value_destroy(&health);
}

//  ---------------------------------------------------------------------------------------
//  4. A batch from submission to results.

//  The ASSIGN carries the run config file the scenario reads.
static void s_check_assign(const lynx_msg_t *msg, const char *batch_id, const char *created_at)
{
    lynx_value_t *body = lynx_msg_body((lynx_msg_t *)msg);
    assert_string_equal(lynx_value_get_string(body, "batch_id", ""), batch_id);
    assert_int_equal(lynx_value_get_int(body, "attempt", -1), 1);
    assert_string_equal(lynx_value_get_string(body, "engine", ""), "basilisk");
    assert_int_equal(lynx_value_get_int(body, "timeout_secs", -1), 60);
    const lynx_value_t *run_config = lynx_value_get(body, "run_config");
    int64_t run_id = lynx_value_get_int(run_config, "run_id", -1);
    assert_in_range(run_id, 0, 2);
    double mass = lynx_value_get_double(lynx_value_get(run_config, "parameters"), "mass_kg", -1);
    assert_true(mass >= 100.0 && mass <= 200.0);
    const lynx_value_t *metadata = lynx_value_get(run_config, "metadata");
    assert_string_equal(lynx_value_get_string(metadata, "simulation_name", ""), "orbit-test");
    assert_string_equal(lynx_value_get_string(metadata, "simulation_version", ""), "1.2.0");
    assert_true(lynx_value_get_double(metadata, "duration_minutes", 0) == 5.0);
    assert_string_equal(lynx_value_get_string(metadata, "sampling_method", ""), "monte_carlo");
    assert_string_equal(lynx_value_get_string(metadata, "generated_at", ""), created_at);
}

static void test_batch_lifecycle(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *runner = s_runner_new(fx, "runner-01");
    s_register(fx, runner, 2, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 3}, batch_id);
    lynx_value_t *reply = s_batch_get(fx, batch_id);
    char created_at[64];
    snprintf(created_at, sizeof created_at, "%s",
             lynx_value_get_string(lynx_value_get(reply, "batch"), "created_at", ""));
    assert_int_equal(strlen(created_at), 24);
    lynx_value_destroy(&reply);

    //  Two slots: exactly two ASSIGNs.
    char job_ids[3][S_ID_SIZE];
    for (size_t i = 0; i < 2; i++) {
        lynx_msg_t *assign = s_expect(fx, runner->socket, LYNX_MSG_ASSIGN, S_REPLY_MS);
        s_check_assign(assign, batch_id, created_at);
        snprintf(job_ids[i], S_ID_SIZE, "%s",
                 lynx_value_get_string(lynx_msg_body(assign), "job_id", ""));
        lynx_msg_destroy(&assign);
    }
    assert_string_not_equal(job_ids[0], job_ids[1]);
    s_expect_quiet(fx, runner->socket, S_QUIET_MS);

    lynx_value_t *job = s_job_get(fx, job_ids[0]);
    assert_string_equal(lynx_value_get_string(job, "status", ""), "Claimed");
    assert_string_equal(lynx_value_get_string(job, "assigned_runner", ""), "runner-01");
    assert_int_equal(lynx_value_get_int(job, "attempt", -1), 1);
    assert_non_null(lynx_value_get_string(job, "claimed_at", NULL));
    assert_int_equal(lynx_value_type(lynx_value_get(job, "started_at")), LYNX_VALUE_NULL);
    lynx_value_destroy(&job);

    //  The first job runs and completes; its slot goes to the third job.
    s_started(runner, job_ids[0], 1);
    s_wait_job_status(fx, job_ids[0], "Running");
    s_finished(fx, runner, job_ids[0], 1, "Completed", NULL);
    s_assign_t third = s_expect_assign(fx, runner, S_REPLY_MS);
    snprintf(job_ids[2], S_ID_SIZE, "%s", third.job_id);
    assert_int_equal(third.attempt, 1);
    assert_string_not_equal(job_ids[2], job_ids[0]);
    assert_string_not_equal(job_ids[2], job_ids[1]);

    job = s_job_get(fx, job_ids[0]);
    assert_string_equal(lynx_value_get_string(job, "status", ""), "Completed");
    assert_string_equal(lynx_value_get_string(job, "batch_id", ""), batch_id);
    assert_non_null(lynx_value_get_string(job, "claimed_at", NULL));
    assert_non_null(lynx_value_get_string(job, "started_at", NULL));
    assert_non_null(lynx_value_get_string(job, "completed_at", NULL));
    assert_int_equal(lynx_value_type(lynx_value_get(job, "error_message")), LYNX_VALUE_NULL);
    lynx_value_destroy(&job);

    reply = s_batch_get(fx, batch_id);
    assert_string_equal(lynx_value_get_string(lynx_value_get(reply, "batch"), "status", ""),
                        "Running");
    assert_int_equal(lynx_value_get_int(lynx_value_get(reply, "batch"), "total_jobs", -1), 3);
    assert_int_equal(s_count(reply, "Pending"), 0);
    assert_int_equal(s_count(reply, "Claimed"), 2);
    assert_int_equal(s_count(reply, "Running"), 0);
    assert_int_equal(s_count(reply, "Completed"), 1);
    lynx_value_destroy(&reply);

    //  The others finish; the third without a STARTED (lost or overtaken: it still counts).
    s_started(runner, job_ids[1], 1);
    s_finished(fx, runner, job_ids[1], 1, "Completed", NULL);
    s_finished(fx, runner, job_ids[2], 1, "Completed", NULL);
    s_expect_quiet(fx, runner->socket, S_QUIET_MS);

    reply = s_batch_get(fx, batch_id);
    assert_string_equal(lynx_value_get_string(lynx_value_get(reply, "batch"), "status", ""),
                        "Completed");
    assert_int_equal(lynx_value_get_int(lynx_value_get(reply, "batch"), "completed_jobs", -1), 3);
    assert_int_equal(lynx_value_get_int(lynx_value_get(reply, "batch"), "failed_jobs", -1), 0);
    assert_int_equal(s_count(reply, "Completed"), 3);
    assert_int_equal(s_count(reply, "Claimed") + s_count(reply, "Running"), 0);
    lynx_value_destroy(&reply);

    lynx_value_t *result = s_call_ok(fx, "job.results", s_args("job_id", job_ids[0]));
    assert_string_equal(lynx_value_get_string(result, "job_id", ""), job_ids[0]);
    assert_true(lynx_value_get_bool(result, "success", false));
    assert_true(lynx_value_get_double(result, "execution_time_secs", 0) == 1.5);
    char expected_path[512];
    snprintf(expected_path, sizeof expected_path, "/tmp/tetryx-runs/%s/out.csv", job_ids[0]);
    assert_int_equal(lynx_value_size(lynx_value_get(result, "output_files")), 1);
    assert_string_equal(
        lynx_value_as_string(lynx_value_at(lynx_value_get(result, "output_files"), 0)),
        expected_path);
    assert_string_equal(lynx_value_get_string(lynx_value_get(result, "metadata"), "engine", ""),
                        "basilisk");
    assert_int_equal(lynx_value_type(lynx_value_get(result, "error_message")), LYNX_VALUE_NULL);
    lynx_value_destroy(&result);

    result = s_call_ok(fx, "batch.results", s_args("batch_id", batch_id));
    assert_int_equal(lynx_value_get_int(result, "count", -1), 3);
    assert_int_equal(lynx_value_size(lynx_value_get(result, "results")), 3);
    assert_string_equal(lynx_value_get_string(result, "status", ""), "Completed");
    lynx_value_destroy(&result);

    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_int_equal(lynx_value_get_int(health, "jobs_in_flight", -1), 0);
    lynx_value_destroy(&health);
}

//  ---------------------------------------------------------------------------------------
//  5. Stale FINISHED messages are acknowledged (the runner may forget them) and ignored.

static void test_stale_finished_is_acked_and_ignored(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *runner = s_runner_new(fx, "runner-01");
    s_register(fx, runner, 1, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1}, batch_id);
    s_assign_t job = s_expect_assign(fx, runner, S_REPLY_MS);
    s_started(runner, job.job_id, job.attempt);
    s_wait_job_status(fx, job.job_id, "Running");

    //  An attempt the broker never assigned (or an old one): ACKed, nothing changes.
    s_finished(fx, runner, job.job_id, job.attempt + 1, "Completed", NULL);
    lynx_value_t *rec = s_job_get(fx, job.job_id);
    assert_string_equal(lynx_value_get_string(rec, "status", ""), "Running");
    assert_int_equal(lynx_value_get_int(rec, "attempt", -1), job.attempt);
    lynx_value_destroy(&rec);
    s_assert_batch(fx, batch_id, "Running", 0, 0);

    //  The real outcome ends the job once; the same FINISHED again (a lost ACK) is ACKed and
    //  does not end it a second time, whatever it says.
    s_finished(fx, runner, job.job_id, job.attempt, "Completed", NULL);
    s_assert_batch(fx, batch_id, "Completed", 1, 0);
    s_finished(fx, runner, job.job_id, job.attempt, "Completed", NULL);
    s_finished(fx, runner, job.job_id, job.attempt, "Failed", "late duplicate");
    s_assert_batch(fx, batch_id, "Completed", 1, 0);
    rec = s_job_get(fx, job.job_id);
    assert_string_equal(lynx_value_get_string(rec, "status", ""), "Completed");
    assert_int_equal(lynx_value_type(lynx_value_get(rec, "error_message")), LYNX_VALUE_NULL);
    lynx_value_destroy(&rec);
    lynx_value_t *result = s_call_ok(fx, "job.results", s_args("job_id", job.job_id));
    assert_true(lynx_value_get_bool(result, "success", false));
    lynx_value_destroy(&result);
    s_expect_quiet(fx, runner->socket, S_QUIET_MS);
}

//  ---------------------------------------------------------------------------------------
//  6. A failed attempt with retries left is requeued; the last failure is terminal.

static void test_failed_job_is_retried_then_fails(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *runner = s_runner_new(fx, "runner-01");
    s_register(fx, runner, 1, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1, .max_retries = 1}, batch_id);

    s_assign_t first = s_expect_assign(fx, runner, S_REPLY_MS);
    assert_int_equal(first.attempt, 1);
    s_started(runner, first.job_id, 1);
    s_finished(fx, runner, first.job_id, 1, "Failed", "boom 1");
    //  Back to Pending with one retry used, and straight out again as attempt 2.
    s_assign_t second = s_expect_assign(fx, runner, S_REPLY_MS);
    assert_string_equal(second.job_id, first.job_id);
    assert_int_equal(second.attempt, 2);
    lynx_value_t *job = s_job_get(fx, first.job_id);
    assert_string_equal(lynx_value_get_string(job, "status", ""), "Claimed");
    assert_int_equal(lynx_value_get_int(job, "retries", -1), 1);
    assert_int_equal(lynx_value_get_int(job, "max_retries", -1), 1);
    assert_int_equal(lynx_value_get_int(job, "attempt", -1), 2);
    lynx_value_destroy(&job);
    s_assert_batch(fx, batch_id, "Running", 0, 0);

    s_started(runner, second.job_id, 2);
    s_finished(fx, runner, second.job_id, 2, "Failed", "boom 2");
    s_expect_quiet(fx, runner->socket, S_QUIET_MS);
    job = s_job_get(fx, first.job_id);
    assert_string_equal(lynx_value_get_string(job, "status", ""), "Failed");
    assert_int_equal(lynx_value_get_int(job, "retries", -1), 1);
    assert_string_equal(lynx_value_get_string(job, "error_message", ""), "boom 2");
    assert_non_null(lynx_value_get_string(job, "completed_at", NULL));
    lynx_value_destroy(&job);
    s_assert_batch(fx, batch_id, "Failed", 0, 1);
    lynx_value_t *result = s_call_ok(fx, "job.results", s_args("job_id", first.job_id));
    assert_false(lynx_value_get_bool(result, "success", true));
    assert_string_equal(lynx_value_get_string(result, "error_message", ""), "boom 2");
    lynx_value_destroy(&result);
}

//  ---------------------------------------------------------------------------------------
//  7. A runner that stops heartbeating is Offline; its job goes to another runner.

static void test_lost_runner_jobs_are_requeued(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *doomed = s_runner_new(fx, "runner-doomed");
    s_register(fx, doomed, 1, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1, .max_retries = 1}, batch_id);
    s_assign_t first = s_expect_assign(fx, doomed, S_REPLY_MS);
    s_started(doomed, first.job_id, first.attempt);
    s_wait_job_status(fx, first.job_id, "Running");
    s_runner_t *spare = s_runner_new(fx, "runner-spare");
    s_register(fx, spare, 1, "basilisk", NULL);

    //  The doomed runner falls silent; after ~3 intervals its job moves to the spare.
    doomed->beating = false;
    s_assign_t second = s_expect_assign(fx, spare, S_RUNNER_LOST_MS);
    assert_string_equal(second.job_id, first.job_id);
    assert_int_equal(second.attempt, 2);
    lynx_value_t *job = s_job_get(fx, first.job_id);
    assert_string_equal(lynx_value_get_string(job, "assigned_runner", ""), "runner-spare");
    assert_int_equal(lynx_value_get_int(job, "retries", -1), 1);
    lynx_value_destroy(&job);
    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_int_equal(lynx_value_get_int(health, "runners_online", -1), 1);
    lynx_value_destroy(&health);

    //  The dead runner's socket is no longer a registered runner.
    lynx_msg_t *beat = lynx_msg_new(LYNX_MSG_HEARTBEAT);
    lynx_value_set_string(lynx_msg_body(beat), "runner_id", doomed->id);
    s_send(doomed->socket, beat);
    lynx_value_t *error = s_expect_error(fx, doomed->socket, "not_found", "register");
    lynx_value_destroy(&error);
    //  Its late FINISHED for attempt 1 changes nothing.
    s_send_finished(doomed, first.job_id, first.attempt, "Completed", NULL);
    error = s_expect_error(fx, doomed->socket, "not_found", "register");
    lynx_value_destroy(&error);
    s_assert_job_status(fx, first.job_id, "Claimed");
    //  When it comes back still running attempt 1, it is told to stop.
    s_register(fx, doomed, 1, "basilisk", s_attempts(first.job_id, first.attempt));
    lynx_msg_t *kill = s_expect(fx, doomed->socket, LYNX_MSG_KILL, S_REPLY_MS);
    assert_string_equal(lynx_value_get_string(lynx_msg_body(kill), "job_id", ""), first.job_id);
    assert_int_equal(lynx_value_get_int(lynx_msg_body(kill), "attempt", -1), first.attempt);
    lynx_msg_destroy(&kill);

    s_finished(fx, spare, second.job_id, second.attempt, "Completed", NULL);
    s_assert_batch(fx, batch_id, "Completed", 1, 0);
}

//  A runner that stops says DISCONNECT: Offline at once, its job Pending again with its
//  retries untouched (max_retries 0 still runs it), and the next runner gets attempt 2.
static void test_disconnect_requeues_without_charging(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *leaving = s_runner_new(fx, "runner-leaving");
    s_register(fx, leaving, 1, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1, .max_retries = 0}, batch_id);
    s_assign_t first = s_expect_assign(fx, leaving, S_REPLY_MS);
    s_started(leaving, first.job_id, first.attempt);
    s_wait_job_status(fx, first.job_id, "Running");

    lynx_msg_t *bye = lynx_msg_new(LYNX_MSG_DISCONNECT);
    lynx_value_set_string(lynx_msg_body(bye), "runner_id", leaving->id);
    lynx_value_set_string(lynx_msg_body(bye), "reason", "lynx-runner stopped");
    s_send(leaving->socket, bye);
    leaving->beating = false;
    s_wait_job_status(fx, first.job_id, "Pending");
    lynx_value_t *job = s_job_get(fx, first.job_id);
    assert_int_equal(lynx_value_get_int(job, "retries", -1), 0);
    assert_non_null(strstr(lynx_value_get_string(job, "error_message", ""), "stopped"));
    lynx_value_destroy(&job);
    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_int_equal(lynx_value_get_int(health, "runners_online", -1), 0);
    lynx_value_destroy(&health);

    s_runner_t *next = s_runner_new(fx, "runner-next");
    s_register(fx, next, 1, "basilisk", NULL);
    s_assign_t second = s_expect_assign(fx, next, S_REPLY_MS);
    assert_string_equal(second.job_id, first.job_id);
    assert_int_equal(second.attempt, 2);
    s_finished(fx, next, second.job_id, second.attempt, "Completed", NULL);
    s_assert_batch(fx, batch_id, "Completed", 1, 0);
}

//  ---------------------------------------------------------------------------------------
//  8. Jobs go only to runners that have the batch's engine.

static void test_jobs_go_only_to_runners_with_the_engine(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *gmat = s_runner_new(fx, "runner-gmat");
    s_register(fx, gmat, 2, "gmat", NULL);
    char basilisk_batch[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1}, basilisk_batch);
    s_expect_quiet(fx, gmat->socket, 500);

    s_runner_t *basilisk = s_runner_new(fx, "runner-basilisk");
    s_register(fx, basilisk, 2, "basilisk", NULL);
    s_assign_t job = s_expect_assign(fx, basilisk, S_REPLY_MS);
    assert_string_equal(job.batch_id, basilisk_batch);

    //  A gmat batch goes to the gmat runner, though the basilisk runner has a free slot.
    char gmat_batch[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1, .engine = "gmat"}, gmat_batch);
    s_assign_t other = s_expect_assign(fx, gmat, S_REPLY_MS);
    assert_string_equal(other.batch_id, gmat_batch);
    s_expect_quiet(fx, basilisk->socket, S_QUIET_MS);
}

//  ---------------------------------------------------------------------------------------
//  9. A restarted broker keeps its batches and reconciles with the runners that come back.

static void test_restart_keeps_batches_and_reconciles_runners(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *keeper = s_runner_new(fx, "runner-keeper");
    s_register(fx, keeper, 1, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 3, .max_retries = 1}, batch_id);
    //  Job 1 completes; job 2 runs on the keeper; job 3 is claimed by a runner that vanishes.
    s_assign_t done = s_expect_assign(fx, keeper, S_REPLY_MS);
    s_finished(fx, keeper, done.job_id, done.attempt, "Completed", NULL);
    s_assign_t running = s_expect_assign(fx, keeper, S_REPLY_MS);
    s_started(keeper, running.job_id, running.attempt);
    s_wait_job_status(fx, running.job_id, "Running");
    s_runner_t *vanisher = s_runner_new(fx, "runner-vanisher");
    s_register(fx, vanisher, 1, "basilisk", NULL);
    s_assign_t claimed = s_expect_assign(fx, vanisher, S_REPLY_MS);
    lynx_value_t *before = s_batch_get(fx, batch_id);
    assert_int_equal(s_count(before, "Completed"), 1);
    assert_int_equal(s_count(before, "Running"), 1);
    assert_int_equal(s_count(before, "Claimed"), 1);

    s_broker_stop(fx);
    zsock_destroy(&vanisher->socket);
    vanisher->beating = false;
    s_broker_start(fx);

    lynx_value_t *after = s_batch_get(fx, batch_id);
    assert_true(lynx_value_equal(lynx_value_get(after, "jobs_by_status"),
                                 lynx_value_get(before, "jobs_by_status")));
    assert_true(lynx_value_equal(lynx_value_get(after, "batch"), lynx_value_get(before, "batch")));
    lynx_value_destroy(&before);
    lynx_value_destroy(&after);

    //  The keeper reconnects and reports the attempt it still runs: that job stays with it.
    s_runner_reconnect(fx, keeper);
    s_register(fx, keeper, 1, "basilisk", s_attempts(running.job_id, running.attempt));
    s_finished(fx, keeper, running.job_id, running.attempt, "Completed", NULL);
    lynx_value_t *job = s_job_get(fx, running.job_id);
    assert_string_equal(lynx_value_get_string(job, "status", ""), "Completed");
    assert_int_equal(lynx_value_get_int(job, "attempt", -1), running.attempt);
    assert_int_equal(lynx_value_get_int(job, "retries", -1), 0);
    lynx_value_destroy(&job);

    //  The vanished runner's claim is given up after one heartbeat timeout and retried.
    s_assign_t retried = s_expect_assign(fx, keeper, S_RUNNER_LOST_MS);
    assert_string_equal(retried.job_id, claimed.job_id);
    assert_int_equal(retried.attempt, claimed.attempt + 1);
    s_finished(fx, keeper, retried.job_id, retried.attempt, "Completed", NULL);
    s_assert_batch(fx, batch_id, "Completed", 3, 0);
    lynx_value_t *results = s_call_ok(fx, "batch.results", s_args("batch_id", batch_id));
    assert_int_equal(lynx_value_get_int(results, "count", -1), 3);
    lynx_value_destroy(&results);
}

//  ---------------------------------------------------------------------------------------
//  10. compute.max_parallel_jobs caps a batch's jobs in flight, whatever the free slots.

static void test_max_parallel_jobs_caps_assignments(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *runner = s_runner_new(fx, "runner-wide");
    s_register(fx, runner, 4, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 3, .max_parallel_jobs = 1}, batch_id);
    for (int64_t run = 0; run < 3; run++) {
        s_assign_t job = s_expect_assign(fx, runner, S_REPLY_MS);
        assert_int_equal(job.run_id, run); //  in run order
        s_expect_quiet(fx, runner->socket, S_QUIET_MS);
        lynx_value_t *reply = s_batch_get(fx, batch_id);
        assert_int_equal(s_count(reply, "Claimed") + s_count(reply, "Running"), 1);
        assert_int_equal(s_count(reply, "Pending"), 2 - run);
        lynx_value_destroy(&reply);
        s_finished(fx, runner, job.job_id, job.attempt, "Completed", NULL);
    }
    s_expect_quiet(fx, runner->socket, S_QUIET_MS);
    s_assert_batch(fx, batch_id, "Completed", 3, 0);
}

//  PING is how `lynx-runner --check` proves a broker answers: PONG at once, nothing registered.
static void test_ping_answers_without_registering(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *runner = s_runner_new(fx, "runner-checking");
    lynx_msg_t *ping = lynx_msg_new(LYNX_MSG_PING);
    lynx_value_set_int(lynx_msg_body(ping), "nonce", 424242);
    s_send(runner->socket, ping);
    lynx_msg_t *pong = s_expect(fx, runner->socket, LYNX_MSG_PONG, S_REPLY_MS);
    assert_int_equal(lynx_value_get_int(lynx_msg_body(pong), "nonce", -1), 424242);
    assert_string_equal(lynx_value_get_string(lynx_msg_body(pong), "version", ""), LYNX_VERSION);
    lynx_msg_destroy(&pong);
    lynx_value_t *reply = s_call_ok(fx, "runner.list", NULL);
    assert_int_equal(lynx_value_get_int(reply, "count", -1), 0);
    lynx_value_destroy(&reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_unknown_op_and_expired_request, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_frames_are_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_config_lists_every_problem, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_lifecycle, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_stale_finished_is_acked_and_ignored, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_failed_job_is_retried_then_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lost_runner_jobs_are_requeued, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_requeues_without_charging, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_go_only_to_runners_with_the_engine, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_batches_and_reconciles_runners, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_ping_answers_without_registering, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_max_parallel_jobs_caps_assignments, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests_name("broker", tests, NULL, NULL);
}
