//  broker_history: what the broker remembers of a batch and its jobs for the people who read it
//  later: who submitted a batch, and what each attempt of a job did (runner, times, outcome,
//  exit status, whether it counted against the job's retries). The broker runs over real sockets
//  with simulated runners (broker_fixture.h).
#include "broker_fixture.h"

//  ---------------------------------------------------------------------------------------
//  submitted_by: validated at submit, stored, shown in the batch views, kept across restarts.

//  batch.submit with submitted_by set to value (a string, or another type); returns the reply
//  or ERROR body (owned) and whether it was a REPLY.
static lynx_value_t *s_submit_by(s_fixture_t *fx, lynx_value_t *submitted_by, bool *accepted)
{
    lynx_value_t *args = s_args("name", "who");
    lynx_value_t *config = s_config((s_spec_t){.runs = 1});
    assert_int_equal(lynx_value_set(args, "config", &config), 0);
    assert_int_equal(lynx_value_set(args, "submitted_by", &submitted_by), 0);
    lynx_msg_t *answer = s_call(fx, "batch.submit", args);
    *accepted = lynx_msg_id(answer) == LYNX_MSG_REPLY;
    lynx_value_t *body = lynx_value_dup(*accepted ? lynx_value_get(lynx_msg_body(answer), "body")
                                                  : lynx_msg_body(answer));
    lynx_msg_destroy(&answer);
    return body;
}

static void s_assert_refused(s_fixture_t *fx, lynx_value_t *submitted_by, const char *says)
{
    bool accepted = true;
    lynx_value_t *error = s_submit_by(fx, submitted_by, &accepted);
    assert_false(accepted);
    assert_string_equal(lynx_value_get_string(error, "code", ""), "invalid_argument");
    assert_string_equal(lynx_value_get_string(error, "field", ""), "submitted_by");
    const char *message = lynx_value_get_string(error, "message", "");
    if (!strstr(message, "submitted_by: ") || !strstr(message, says))
        fail_msg("error '%s' does not name submitted_by and say '%s'", message, says);
    lynx_value_destroy(&error);
}

//  value is the string expected, or null when expected is NULL (present either way).
static void s_assert_string_or_null(const lynx_value_t *value, const char *expected)
{
    if (!value)
        fail_msg("field missing, expected %s", expected ? expected : "null");
    if (expected)
        assert_string_equal(lynx_value_as_string(value) ? lynx_value_as_string(value) : "(null)",
                            expected);
    else
        assert_int_equal(lynx_value_type(value), LYNX_VALUE_NULL);
}

//  The batch.get view's batch.submitted_by, and the same batch's row in batch.list.
static void s_assert_submitted_by(s_fixture_t *fx, const char *batch_id, const char *expected)
{
    lynx_value_t *reply = s_batch_get(fx, batch_id);
    const lynx_value_t *value = lynx_value_get(lynx_value_get(reply, "batch"), "submitted_by");
    s_assert_string_or_null(value, expected);
    lynx_value_destroy(&reply);
    lynx_value_t *list = s_call_ok(fx, "batch.list", NULL);
    const lynx_value_t *batches = lynx_value_get(list, "batches");
    bool listed = false;
    for (size_t i = 0; i < lynx_value_size(batches); i++) {
        const lynx_value_t *row = lynx_value_at(batches, i);
        if (strcmp(lynx_value_get_string(row, "id", ""), batch_id) != 0)
            continue;
        listed = true;
        value = lynx_value_get(row, "submitted_by");
        s_assert_string_or_null(value, expected);
    }
    assert_true(listed);
    lynx_value_destroy(&list);
}

static void test_submitted_by_is_validated_stored_and_shown(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    char named[S_ID_SIZE], anonymous[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1, .submitted_by = "ana@ws-07"}, named);
    s_submit(fx, (s_spec_t){.runs = 1}, anonymous);
    s_assert_submitted_by(fx, named, "ana@ws-07");
    s_assert_submitted_by(fx, anonymous, NULL);

    //  128 characters is the limit, counted in characters, not bytes (each 'é' is two).
    char wide[2 * 128 + 1] = "";
    for (size_t i = 0; i < 128; i++)
        strcat(wide, "\xc3\xa9");
    bool accepted = false;
    lynx_value_t *reply = s_submit_by(fx, lynx_value_string(wide), &accepted);
    assert_true(accepted);
    char wide_batch[S_ID_SIZE];
    snprintf(wide_batch, sizeof wide_batch, "%s", lynx_value_get_string(reply, "batch_id", ""));
    lynx_value_destroy(&reply);
    s_assert_submitted_by(fx, wide_batch, wide);

    //  Anything else is refused, naming the field, and stores nothing.
    char long_name[130];
    memset(long_name, 'x', 129);
    long_name[129] = '\0';
    s_assert_refused(fx, lynx_value_string(long_name), "1 to 128 characters");
    s_assert_refused(fx, lynx_value_string(""), "1 to 128 characters");
    s_assert_refused(fx, lynx_value_int(42), "must be a string");
    s_assert_refused(fx, lynx_value_string("ana\n@ws-07"), "control character 0x0a at character 4");
    s_assert_refused(fx, lynx_value_string("ana\x7f"), "control character 0x7f");
    lynx_value_t *health = s_call_ok(fx, "health", NULL);
    assert_int_equal(lynx_value_get_int(health, "batches", -1), 3);
    lynx_value_destroy(&health);

    //  It is stored with the batch.
    s_broker_stop(fx);
    s_broker_start(fx);
    s_assert_submitted_by(fx, named, "ana@ws-07");
    s_assert_submitted_by(fx, anonymous, NULL);
    s_assert_submitted_by(fx, wide_batch, wide);
}

//  ---------------------------------------------------------------------------------------
//  Attempt history: GET /jobs/{id} lists every attempt, the retried ones kept in the store.

static const lynx_value_t *s_attempt(const lynx_value_t *job, size_t index)
{
    const lynx_value_t *attempts = lynx_value_get(job, "attempts");
    assert_int_equal(lynx_value_type(attempts), LYNX_VALUE_ARRAY);
    const lynx_value_t *entry = lynx_value_at(attempts, index);
    assert_non_null(entry);
    return entry;
}

static void s_assert_attempt(const lynx_value_t *entry, int64_t attempt, const char *runner_id,
                             const char *status, int64_t exit_code, int64_t exit_signal)
{
    assert_int_equal(lynx_value_get_int(entry, "attempt", -1), attempt);
    assert_string_equal(lynx_value_get_string(entry, "runner_id", "(null)"), runner_id);
    assert_string_equal(lynx_value_get_string(entry, "status", ""), status);
    const char *keys[] = {"exit_code", "exit_signal"};
    const int64_t expected[] = {exit_code, exit_signal};
    for (size_t i = 0; i < 2; i++) {
        const lynx_value_t *value = lynx_value_get(entry, keys[i]);
        assert_non_null(value);
        if (expected[i] < 0)
            assert_int_equal(lynx_value_type(value), LYNX_VALUE_NULL);
        else
            assert_int_equal(lynx_value_as_int(value), expected[i]);
    }
    assert_true(lynx_value_get_bool(entry, "charged", false));
    assert_non_null(lynx_value_get_string(entry, "claimed_at", NULL));
    if (strcmp(status, "Claimed") != 0)
        assert_non_null(lynx_value_get_string(entry, "started_at", NULL));
}

static void s_expect_ack(s_fixture_t *fx, s_runner_t *runner)
{
    lynx_msg_t *ack = s_expect(fx, runner->socket, LYNX_MSG_ACK, S_REPLY_MS);
    lynx_msg_destroy(&ack);
}

//  An API call that must succeed, whose reply is not needed.
static void s_call_done(s_fixture_t *fx, const char *op, lynx_value_t *args)
{
    lynx_value_t *reply = s_call_ok(fx, op, args);
    lynx_value_destroy(&reply);
}

static lynx_value_t *s_exit(const char *key, int64_t value)
{
    lynx_value_t *extra = lynx_value_map();
    lynx_value_set_int(extra, key, value);
    return extra;
}

static void test_attempt_history_lists_every_attempt(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_runner_t *first = s_runner_new(fx, "runner-first");
    s_register(fx, first, 1, "basilisk", NULL);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 1, .max_retries = 2}, batch_id);

    //  Attempt 1 exits 3 on runner-first; the job goes back to Pending.
    s_assign_t job = s_expect_assign(fx, first, S_REPLY_MS);
    lynx_value_t *view = s_job_get(fx, job.job_id);
    s_assert_attempt(s_attempt(view, 0), 1, "runner-first", "Claimed", -1, -1);
    assert_null(lynx_value_get_string(s_attempt(view, 0), "ended_at", NULL));
    lynx_value_destroy(&view);
    s_started(first, job.job_id, job.attempt);
    s_send_finished_with(first, job.job_id, job.attempt, "Failed", "scenario failed: exit 3",
                         s_exit("exit_code", 3));
    s_expect_ack(fx, first);

    //  Attempt 2, on the same runner (the only one), is killed by a signal; attempt 3 completes.
    s_assign_t second = s_expect_assign(fx, first, S_REPLY_MS);
    assert_int_equal(second.attempt, 2);
    s_started(first, second.job_id, second.attempt);
    view = s_job_get(fx, job.job_id);
    assert_int_equal(lynx_value_size(lynx_value_get(view, "attempts")), 2);
    s_assert_attempt(s_attempt(view, 1), 2, "runner-first", "Running", -1, -1);
    lynx_value_destroy(&view);
    s_send_finished_with(first, second.job_id, second.attempt, "Failed",
                         "scenario failed: signal 9", s_exit("exit_signal", 9));
    s_expect_ack(fx, first);
    s_assign_t third = s_expect_assign(fx, first, S_REPLY_MS);
    s_started(first, third.job_id, third.attempt);
    s_send_finished_with(first, third.job_id, third.attempt, "Completed", NULL,
                         s_exit("exit_code", 0));
    s_expect_ack(fx, first);
    s_wait_job_status(fx, job.job_id, "Completed");

    //  Three attempts, with their outcomes, errors and exit statuses; it survives a restart.
    for (int pass = 0; pass < 2; pass++) {
        view = s_job_get(fx, job.job_id);
        assert_int_equal(lynx_value_size(lynx_value_get(view, "attempts")), 3);
        s_assert_attempt(s_attempt(view, 0), 1, "runner-first", "Failed", 3, -1);
        assert_string_equal(lynx_value_get_string(s_attempt(view, 0), "error_message", ""),
                            "scenario failed: exit 3");
        assert_non_null(lynx_value_get_string(s_attempt(view, 0), "ended_at", NULL));
        s_assert_attempt(s_attempt(view, 1), 2, "runner-first", "Failed", -1, 9);
        s_assert_attempt(s_attempt(view, 2), 3, "runner-first", "Completed", 0, -1);
        assert_null(lynx_value_get_string(s_attempt(view, 2), "error_message", NULL));
        assert_non_null(lynx_value_get_string(s_attempt(view, 2), "ended_at", NULL));
        lynx_value_destroy(&view);
        if (pass == 0) {
            s_broker_stop(fx);
            s_broker_start(fx);
        }
    }
}

//  A job cancelled before it ever ran has no attempt; an early termination's trigger shows.
static void test_attempt_history_of_cancelled_and_triggered_jobs(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 2}, batch_id);
    s_runner_t *runner = s_runner_new(fx, "runner-trigger");
    s_register(fx, runner, 1, "basilisk", NULL);
    s_assign_t job = s_expect_assign(fx, runner, S_REPLY_MS);
    s_started(runner, job.job_id, job.attempt);
    //  Drained, the runner finishes this job and takes no other: the second stays Pending.
    s_call_done(fx, "runner.drain", s_args("runner_id", runner->id));
    lynx_value_t *extra = lynx_value_map();
    lynx_value_t *telemetry = s_object(extra, "telemetry_data");
    lynx_value_t *trigger = s_object(telemetry, "trigger");
    lynx_value_set_string(trigger, "rule_name", "orbit.radius_km < 6371");
    lynx_value_set_bool(extra, "retryable", false);
    lynx_value_set_int(extra, "exit_signal", 9);
    s_send_finished_with(runner, job.job_id, job.attempt, "Failed",
                         "early termination: orbit.radius_km < 6371", extra);
    s_expect_ack(fx, runner);
    s_wait_job_status(fx, job.job_id, "Failed");
    lynx_value_t *view = s_job_get(fx, job.job_id);
    const lynx_value_t *entry = s_attempt(view, 0);
    s_assert_attempt(entry, 1, "runner-trigger", "Failed", -1, 9);
    assert_string_equal(lynx_value_get_string(lynx_value_get(entry, "trigger"), "rule_name", ""),
                        "orbit.radius_km < 6371");
    lynx_value_destroy(&view);

    //  The second job never ran: cancel the batch.
    s_call_done(fx, "batch.cancel", s_args("batch_id", batch_id));
    lynx_value_t *jobs = s_call_ok(fx, "batch.jobs", s_args("batch_id", batch_id));
    const lynx_value_t *list = lynx_value_get(jobs, "jobs");
    assert_int_equal(lynx_value_size(list), 2);
    const char *other = lynx_value_get_string(lynx_value_at(list, 1), "id", "");
    view = s_job_get(fx, other);
    assert_string_equal(lynx_value_get_string(view, "status", ""), "Cancelled");
    assert_int_equal(lynx_value_size(lynx_value_get(view, "attempts")), 0);
    lynx_value_destroy(&view);
    lynx_value_destroy(&jobs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submitted_by_is_validated_stored_and_shown, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_attempt_history_lists_every_attempt, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_attempt_history_of_cancelled_and_triggered_jobs,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("broker_history", tests, NULL, NULL);
}
