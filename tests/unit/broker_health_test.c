//  broker_health: a runner that fails every job while other runners complete jobs of the same
//  batches is quarantined, its failures' retries are given back, and an operator resumes it.
//  The broker runs over real sockets with simulated runners (broker_fixture.h).
#include "broker_fixture.h"

#define S_FAILURES 5 //  the broker's default --quarantine-after

static void s_expect_ack(s_fixture_t *fx, s_runner_t *runner)
{
    lynx_msg_t *ack = s_expect(fx, runner->socket, LYNX_MSG_ACK, S_REPLY_MS);
    lynx_msg_destroy(&ack);
}

//  The runner takes its next ASSIGN, starts it and fails it (retryable unless told otherwise).
static s_assign_t s_fail_next(s_fixture_t *fx, s_runner_t *runner, bool retryable)
{
    s_assign_t job = s_expect_assign(fx, runner, S_REPLY_MS);
    s_started(runner, job.job_id, job.attempt);
    lynx_value_t *extra = lynx_value_map();
    if (!retryable)
        lynx_value_set_bool(extra, "retryable", false);
    lynx_value_set_int(extra, "exit_code", 1);
    s_send_finished_with(runner, job.job_id, job.attempt, "Failed",
                         "scenario failed: exit status 1; stderr: ModuleNotFoundError: numpy",
                         extra);
    s_expect_ack(fx, runner);
    return job;
}

static lynx_value_t *s_runner_get(s_fixture_t *fx, const char *runner_id)
{
    return s_call_ok(fx, "runner.get", s_args("runner_id", runner_id));
}

static void s_assert_runner_status(s_fixture_t *fx, const char *runner_id, const char *status)
{
    lynx_value_t *view = s_runner_get(fx, runner_id);
    assert_string_equal(lynx_value_get_string(view, "status", ""), status);
    lynx_value_destroy(&view);
}

static void s_resume(s_fixture_t *fx, const char *runner_id)
{
    lynx_value_t *reply = s_call_ok(fx, "runner.resume", s_args("runner_id", runner_id));
    lynx_value_destroy(&reply);
}

//  A SUB on the broker's PUB for runner events. A SUB joins asynchronously: batch events of
//  probe batches (submitted and cancelled until one arrives) show the subscription is in.
static zsock_t *s_runner_events(s_fixture_t *fx)
{
    zsock_t *sub = zsock_new_sub(fx->telemetry_endpoint, "runner.");
    assert_non_null(sub);
    zsock_set_subscribe(sub, "event.");
    zpoller_t *poller = zpoller_new(sub, NULL);
    int64_t deadline_ms = lynx_time_mono_ms() + S_REPLY_MS;
    bool joined = false;
    while (!joined && lynx_time_mono_ms() < deadline_ms) {
        char probe[S_ID_SIZE];
        s_submit(fx, (s_spec_t){.runs = 1}, probe);
        lynx_value_t *reply = s_call_ok(fx, "batch.cancel", s_args("batch_id", probe));
        lynx_value_destroy(&reply);
        joined = zpoller_wait(poller, 100) != NULL;
    }
    zpoller_destroy(&poller);
    assert_true(joined);
    return sub;
}

//  The next runner event on sub within the deadline (batch events are skipped).
static void s_expect_runner_event(zsock_t *sub, const char *runner_id, const char *status)
{
    zpoller_t *poller = zpoller_new(sub, NULL);
    int64_t deadline_ms = lynx_time_mono_ms() + S_REPLY_MS;
    zmsg_t *msg = NULL;
    while (!msg && lynx_time_mono_ms() < deadline_ms) {
        if (!zpoller_wait(poller, S_SLICE_MS))
            continue;
        msg = zmsg_recv(sub);
        if (msg && strncmp((const char *)zframe_data(zmsg_first(msg)), "runner.", 7) != 0)
            zmsg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    if (!msg)
        fail_msg("no runner event for %s within %d ms", runner_id, S_REPLY_MS);
    char *topic = zmsg_popstr(msg);
    char expected[128];
    snprintf(expected, sizeof expected, "runner.%s", runner_id);
    assert_string_equal(topic, expected);
    zframe_t *payload = zmsg_pop(msg);
    lynx_err_t err;
    lynx_value_t *event = lynx_msgpack_unpack(zframe_data(payload), zframe_size(payload), &err);
    assert_non_null(event);
    assert_string_equal(lynx_value_get_string(event, "type", ""), "runner");
    assert_string_equal(lynx_value_get_string(event, "runner_id", ""), runner_id);
    assert_string_equal(lynx_value_get_string(event, "status", ""), status);
    if (strcmp(status, "Quarantined") == 0)
        assert_non_null(strstr(lynx_value_get_string(event, "last_error", ""), "numpy"));
    lynx_value_destroy(&event);
    zframe_destroy(&payload);
    zstr_free(&topic);
    zmsg_destroy(&msg);
}

//  The black hole: `broken` fails five fresh jobs while `good` holds one; the good runner's
//  completion is the evidence that quarantines it.
static void test_black_hole_runner_is_quarantined(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    zsock_t *events = s_runner_events(fx);
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 10, .max_retries = 1}, batch_id);
    s_runner_t *good = s_runner_new(fx, "runner-good");
    s_register(fx, good, 1, "basilisk", NULL);
    s_assign_t held = s_expect_assign(fx, good, S_REPLY_MS);
    s_started(good, held.job_id, held.attempt);

    s_runner_t *broken = s_runner_new(fx, "runner-broken");
    s_register(fx, broken, 1, "basilisk", NULL);
    s_assign_t failed[S_FAILURES];
    for (int i = 0; i < S_FAILURES; i++) {
        failed[i] = s_fail_next(fx, broken, true);
        for (int j = 0; j < i; j++) //  a fresh job each time, never someone's retry
            assert_string_not_equal(failed[i].job_id, failed[j].job_id);
    }
    //  Five failures, but nobody has completed anything yet: a suspect, which a healthy runner
    //  able to serve the batch exists for, gets no more work.
    s_expect_quiet(fx, broken->socket, S_QUIET_MS);
    s_assert_runner_status(fx, "runner-broken", "Idle");

    s_finished(fx, good, held.job_id, held.attempt, "Completed", NULL);
    s_expect_runner_event(events, "runner-broken", "Quarantined");
    lynx_value_t *view = s_runner_get(fx, "runner-broken");
    assert_string_equal(lynx_value_get_string(view, "status", ""), "Quarantined");
    const lynx_value_t *quarantine = lynx_value_get(view, "quarantine");
    assert_int_equal(lynx_value_get_int(quarantine, "failed_attempts", -1), S_FAILURES);
    assert_non_null(strstr(lynx_value_get_string(quarantine, "reason", ""), "last 5 attempts"));
    assert_non_null(strstr(lynx_value_get_string(quarantine, "last_error", ""), "numpy"));
    assert_non_null(lynx_value_get_string(quarantine, "since", NULL));
    lynx_value_destroy(&view);
    view = s_runner_get(fx, "runner-good");
    assert_int_equal(lynx_value_type(lynx_value_get(view, "quarantine")), LYNX_VALUE_NULL);
    lynx_value_destroy(&view);

    //  Their retries are given back: each failed job may still be tried max_retries times.
    for (int i = 0; i < S_FAILURES; i++) {
        lynx_value_t *job = s_job_get(fx, failed[i].job_id);
        assert_int_equal(lynx_value_get_int(job, "retries", -1), 0);
        const lynx_value_t *first = lynx_value_at(lynx_value_get(job, "attempts"), 0);
        assert_string_equal(lynx_value_get_string(first, "runner_id", ""), "runner-broken");
        assert_false(lynx_value_get_bool(first, "charged", true));
        lynx_value_destroy(&job);
    }
    s_expect_quiet(fx, broken->socket, S_QUIET_MS);

    //  The quarantine survives a broker restart; the batch says why it waits when only the
    //  quarantined runner could take it.
    zsock_destroy(&events);
    s_broker_stop(fx);
    s_broker_start(fx);
    s_runner_reconnect(fx, broken);
    s_register(fx, broken, 1, "basilisk", NULL);
    s_expect_quiet(fx, broken->socket, S_QUIET_MS);
    s_assert_runner_status(fx, "runner-broken", "Quarantined");
    lynx_value_t *batch = s_batch_get(fx, batch_id);
    const char *reason = lynx_value_get_string(batch, "waiting_reason", "");
    if (!strstr(reason, "quarantined: runner-broken"))
        fail_msg("waiting_reason does not name the quarantined runner: %s", reason);
    lynx_value_destroy(&batch);

    //  An operator resumes it: back to work, and subscribers hear of it.
    events = s_runner_events(fx);
    s_resume(fx, "runner-broken");
    s_expect_runner_event(events, "runner-broken", "Idle");
    s_assign_t next = s_expect_assign(fx, broken, S_REPLY_MS);
    assert_true(next.job_id[0]);
    view = s_runner_get(fx, "runner-broken");
    assert_int_equal(lynx_value_type(lynx_value_get(view, "quarantine")), LYNX_VALUE_NULL);
    lynx_value_destroy(&view);
    zsock_destroy(&events);
}

//  Without another runner there is no evidence: the only runner keeps working.
static void test_lone_failing_runner_is_not_quarantined(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 8, .max_retries = 0}, batch_id);
    s_runner_t *alone = s_runner_new(fx, "runner-alone");
    s_register(fx, alone, 1, "basilisk", NULL);
    for (int i = 0; i < S_FAILURES + 2; i++)
        s_fail_next(fx, alone, true);
    s_assert_runner_status(fx, "runner-alone", "Busy");
}

//  Early terminations and cancellations are not the runner's fault; with --quarantine-after 0
//  nothing is ever quarantined.
static void s_fail_many_beside_good(s_fixture_t *fx, bool retryable)
{
    char batch_id[S_ID_SIZE];
    s_submit(fx, (s_spec_t){.runs = 12, .max_retries = 1}, batch_id);
    s_runner_t *good = s_runner_new(fx, "runner-good");
    s_register(fx, good, 1, "basilisk", NULL);
    s_assign_t done = s_expect_assign(fx, good, S_REPLY_MS);
    s_started(good, done.job_id, done.attempt);
    s_finished(fx, good, done.job_id, done.attempt, "Completed", NULL);
    s_assign_t held = s_expect_assign(fx, good, S_REPLY_MS);
    s_started(good, held.job_id, held.attempt);
    s_runner_t *failing = s_runner_new(fx, "runner-failing");
    s_register(fx, failing, 1, "basilisk", NULL);
    for (int i = 0; i < S_FAILURES + 2; i++)
        s_fail_next(fx, failing, retryable);
    s_assert_runner_status(fx, "runner-failing", "Busy");
}

static void test_early_terminations_do_not_count(void **state)
{
    s_fail_many_beside_good((s_fixture_t *)*state, false);
}

static void test_quarantine_can_be_turned_off(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    s_broker_stop(fx);
    fx->quarantine_after = -1;
    s_broker_start(fx);
    s_fail_many_beside_good(fx, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_black_hole_runner_is_quarantined, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lone_failing_runner_is_not_quarantined, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_early_terminations_do_not_count, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_can_be_turned_off, s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("broker_health", tests, NULL, NULL);
}
