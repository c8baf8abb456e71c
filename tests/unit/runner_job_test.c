//  runner_job: job attempts through the runner actor, against a fake broker: a job completes,
//  fails, cannot start, times out, is killed, is stopped by an early-termination rule (or not,
//  when rules are disabled), and its last telemetry frames before exit are counted.
#include "runner_fixture.h"

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
        S_TEST(test_job_completes),
        S_TEST(test_failing_command),
        S_TEST(test_missing_program),
        S_TEST(test_timeout_kills_the_process_group),
        S_TEST(test_kill_cancels),
        S_TEST(test_early_termination_kills_and_fails_for_good),
        S_TEST(test_disabled_rules_never_fire),
        S_TEST(test_last_frames_before_exit_are_counted),
        S_TEST(test_rule_met_by_the_last_frame_fires),
        S_TEST(test_scenario_without_telemetry),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
