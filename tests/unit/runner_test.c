//  runner: the lynx-runner actor's link to its broker, against a fake broker in the test
//  thread: registration (and refusal), heartbeats on the events socket or the DEALER, results
//  kept until acknowledged, registering again after a broker restart (fixture:
//  runner_fixture.h).
#include "runner_fixture.h"

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
//  The telemetry client

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
        S_TEST(test_finished_is_kept_until_acked),
        S_TEST(test_registers_again_after_a_broker_restart),
        S_TEST(test_clients_dir_must_hold_the_client),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
