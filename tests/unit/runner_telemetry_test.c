//  runner_telemetry: one job's telemetry intake and watchdog. A PUSH socket plays the scenario's
//  client, connected to the intake's real PULL over TCP; forwarded frames go to an XPUB whose
//  SUB the test reads, as the broker's events socket would (the XPUB tells us when the SUB's
//  subscription is in, so nothing is lost to a slow joiner). The test owns the clock: every
//  drain and check gets its "now", so which frame an evaluation sees is exact. Waits are polls
//  with a deadline.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_json.h"
#include "lynx_msg.h"
#include "runner_telemetry.h"

#define S_WAIT_MS 10000
#define S_START_MS 1000000 //  the run's start on the test's clock

typedef struct {
    runner_telemetry_t *telemetry;
    zsock_t *push;  //  the scenario's client
    zsock_t *xpub;  //  what frames are forwarded to
    zsock_t *sub;   //  the broker's side of it
    int64_t now_ms; //  the test's clock
    int64_t taken;  //  messages drained so far
} s_fixture_t;

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad test JSON %s: %s", text, err.message);
    return value;
}

static int64_t s_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - zclock_mono();
    return left > 0 ? left : 0;
}

//  An intake for job-1 with the rules and telemetry settings given as JSON (NULL: absent),
//  a client connected to it and a subscribed forwarding socket.
static void s_start(s_fixture_t *fx, const char *early_termination, const char *telemetry)
{
    lynx_value_t *rules = early_termination ? s_json(early_termination) : NULL;
    lynx_value_t *settings = telemetry ? s_json(telemetry) : NULL;
    lynx_err_t err;
    fx->now_ms = S_START_MS;
    fx->telemetry = runner_telemetry_new("job-1", "batch-1", rules, settings, fx->now_ms, &err);
    lynx_value_destroy(&rules);
    lynx_value_destroy(&settings);
    if (!fx->telemetry)
        fail_msg("runner_telemetry_new: %s", err.message);
    const char *endpoint = runner_telemetry_endpoint(fx->telemetry);
    assert_true(strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0);
    assert_true(atoi(endpoint + 16) > 0);

    fx->push = zsock_new(ZMQ_PUSH);
    assert_non_null(fx->push);
    zsock_set_linger(fx->push, 0);
    assert_int_equal(zsock_connect(fx->push, "%s", endpoint), 0);

    fx->sub = zsock_new(ZMQ_SUB);
    fx->xpub = zsock_new(ZMQ_XPUB);
    assert_non_null(fx->sub);
    assert_non_null(fx->xpub);
    zsock_set_linger(fx->xpub, 0);
    zsock_set_subscribe(fx->sub, "");
    int port = zsock_bind(fx->xpub, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    assert_int_equal(zsock_connect(fx->sub, "tcp://127.0.0.1:%d", port), 0);
    //  The subscription has arrived once the XPUB hands it to us: forwarding can start.
    zsock_set_rcvtimeo(fx->xpub, S_WAIT_MS);
    zframe_t *subscription = zframe_recv(fx->xpub);
    assert_non_null(subscription);
    zframe_destroy(&subscription);
}

static int s_teardown(void **state)
{
    s_fixture_t *fx = *state;
    runner_telemetry_destroy(&fx->telemetry);
    assert_null(fx->telemetry);
    zsock_destroy(&fx->push);
    zsock_destroy(&fx->xpub);
    zsock_destroy(&fx->sub);
    free(fx);
    return 0;
}

static int s_setup(void **state)
{
    *state = calloc(1, sizeof(s_fixture_t));
    return *state ? 0 : -1;
}

static void s_push_bytes(s_fixture_t *fx, const void *data, size_t size)
{
    zframe_t *frame = zframe_new(data, size);
    assert_int_equal(zframe_send(&frame, fx->push, 0), 0);
}

//  Send a TELEMETRY frame as a scenario's client would; values is a JSON object.
static void s_send(s_fixture_t *fx, int64_t seq, int64_t timestamp_ns, const char *values)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_TELEMETRY);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_int(body, "seq", seq);
    lynx_value_set_int(body, "timestamp_ns", timestamp_ns);
    lynx_value_t *parsed = s_json(values);
    assert_int_equal(lynx_value_set(body, "values", &parsed), 0);
    lynx_err_t err;
    zframe_t *frame = lynx_msg_encode(msg, &err);
    lynx_msg_destroy(&msg);
    assert_non_null(frame);
    assert_int_equal(zframe_send(&frame, fx->push, 0), 0);
}

//  Drain at the current clock until count more messages were taken (they cross TCP first).
static void s_take(s_fixture_t *fx, int64_t count)
{
    int64_t goal = fx->taken + count;
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    zpoller_t *poller = zpoller_new(runner_telemetry_socket(fx->telemetry), NULL);
    while (fx->taken < goal && s_left_ms(deadline) > 0) {
        zpoller_wait(poller, (int)s_left_ms(deadline));
        fx->taken += runner_telemetry_drain(fx->telemetry, zsock_resolve(fx->xpub), fx->now_ms);
    }
    zpoller_destroy(&poller);
    assert_int_equal(fx->taken, goal);
}

//  Send one frame and take it one check interval (or a second) after the previous one, so
//  it is evaluated on arrival.
static void s_step(s_fixture_t *fx, int64_t seq, const char *values)
{
    int64_t interval = runner_telemetry_check_interval_ms(fx->telemetry);
    fx->now_ms += interval > 0 ? interval : 1000;
    s_send(fx, seq, seq * 1000000000LL, values);
    s_take(fx, 1);
}

static int64_t s_summary_int(s_fixture_t *fx, const char *key)
{
    lynx_value_t *summary = runner_telemetry_summary(fx->telemetry);
    assert_non_null(summary);
    assert_non_null(lynx_value_get(summary, key));
    int64_t value = lynx_value_get_int(summary, key, -1);
    lynx_value_destroy(&summary);
    return value;
}

//  The next forwarded TELEMETRY body (owned), or NULL within timeout_ms.
static lynx_value_t *s_forwarded(s_fixture_t *fx, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(fx->sub, NULL);
    void *ready = zpoller_wait(poller, timeout_ms);
    zpoller_destroy(&poller);
    if (!ready)
        return NULL;
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(fx->sub), NULL, &err);
    if (!msg)
        fail_msg("forwarded frame does not decode: %s", err.message);
    assert_int_equal(lynx_msg_id(msg), LYNX_MSG_TELEMETRY);
    lynx_value_t *body = lynx_value_dup(lynx_msg_body(msg));
    lynx_msg_destroy(&msg);
    return body;
}

static void s_assert_json(const lynx_value_t *value, const char *expected)
{
    lynx_value_t *want = s_json(expected);
    if (!lynx_value_equal(value, want)) {
        char *got = lynx_json_dump(value, 0);
        fail_msg("got %s, expected %s", got, expected);
    }
    lynx_value_destroy(&want);
}

// --------------------------------------------------------------------------------------------
//  Intake

//  Valid frames are counted and the latest value of each variable kept, with its type.
static void test_frames_are_counted_and_values_kept(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, NULL, NULL);
    assert_int_equal(runner_telemetry_check_interval_ms(fx->telemetry), 0); //  no rules
    s_send(fx, 0, 10, "{\"orbit.radius_km\": 6983.4, \"step\": 0, \"eclipse\": false}");
    s_send(fx, 1, 20, "{\"orbit.radius_km\": 6983.1, \"step\": 1}");
    s_send(fx, 2, 30, "{\"eclipse\": true}");
    s_take(fx, 3);
    assert_true(runner_telemetry_connected(fx->telemetry));
    lynx_value_t *summary = runner_telemetry_summary(fx->telemetry);
    s_assert_json(summary, "{\"frames_received\": 3, \"frames_invalid\": 0,"
                           " \"frames_dropped_by_client\": 0, \"frames_forwarded\": 3,"
                           " \"frames_forward_dropped\": 0, \"last_values\":"
                           " {\"orbit.radius_km\": 6983.1, \"step\": 1, \"eclipse\": true},"
                           " \"trigger\": null}");
    //  Types survive: an integer stays an integer, a boolean a boolean.
    const lynx_value_t *last = lynx_value_get(summary, "last_values");
    assert_int_equal(lynx_value_type(lynx_value_get(last, "step")), LYNX_VALUE_INT);
    assert_int_equal(lynx_value_type(lynx_value_get(last, "eclipse")), LYNX_VALUE_BOOL);
    lynx_value_destroy(&summary);
}

//  Frames the client dropped show as gaps in seq: n - previous - 1, and n before the first.
static void test_seq_gaps_count_client_drops(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, NULL, NULL);
    const int64_t seqs[] = {2, 3, 7, 8, 20};
    for (size_t i = 0; i < 5; i++)
        s_send(fx, seqs[i], seqs[i], "{\"x\": 1.0}");
    s_take(fx, 5);
    assert_int_equal(s_summary_int(fx, "frames_received"), 5);
    assert_int_equal(s_summary_int(fx, "frames_dropped_by_client"), 2 + 3 + 11);
    //  A new process restarts seq at 0: not a gap.
    s_send(fx, 0, 100, "{\"x\": 2.0}");
    s_take(fx, 1);
    assert_int_equal(s_summary_int(fx, "frames_dropped_by_client"), 16);
}

//  Every kind of bad frame is counted and dropped, and the next good frame still counts.
static void test_garbage_is_counted_and_dropped(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx,
            "{\"conditions\": [{\"name\": \"low\", \"variable\": \"x\", \"operator\": \"lt\","
            " \"threshold\": 0, \"units\": \"m\"}]}",
            NULL);
    s_push_bytes(fx, "not msgpack at all", 18);
    s_push_bytes(fx, "", 0);
    //  A valid message of another command.
    lynx_msg_t *heartbeat = lynx_msg_new(LYNX_MSG_HEARTBEAT);
    lynx_value_set_string(lynx_msg_body(heartbeat), "runner_id", "r");
    lynx_err_t err;
    zframe_t *frame = lynx_msg_encode(heartbeat, &err);
    lynx_msg_destroy(&heartbeat);
    assert_int_equal(zframe_send(&frame, fx->push, 0), 0);
    //  Values that are not numbers or booleans, a negative seq.
    s_send(fx, 0, 0, "{\"x\": -1.0, \"name\": \"orbit\"}");
    s_send(fx, 1, 0, "{\"x\": -1.0, \"list\": [1, 2]}");
    s_send(fx, 2, 0, "{\"x\": -1.0, \"nested\": {\"a\": 1}}");
    s_send(fx, 3, 0, "{\"x\": -1.0, \"nothing\": null}");
    s_send(fx, -4, 0, "{\"x\": -1.0}");
    //  A thousand-deep map.
    unsigned char deep[32 + 3 * 1000];
    size_t size = 0;
    const unsigned char head[] = {0x94, 0xa4, 'L', 'Y', 'N', 'X', 0x01, 0xa9, 'T',
                                  'E',  'L',  'E', 'M', 'E', 'T', 'R',  'Y',  0x81,
                                  0xa6, 'v',  'a', 'l', 'u', 'e', 's'};
    memcpy(deep, head, sizeof head);
    size = sizeof head;
    for (int level = 0; level < 1000; level++) {
        deep[size++] = 0x81;
        deep[size++] = 0xa1;
        deep[size++] = 'a';
    }
    deep[size++] = 0xc0;
    s_push_bytes(fx, deep, size);
    //  Two frames in one message.
    zmsg_t *multipart = zmsg_new();
    zmsg_addstr(multipart, "one");
    zmsg_addstr(multipart, "two");
    assert_int_equal(zmsg_send(&multipart, fx->push), 0);
    s_send(fx, 5, 0, "{\"x\": 1.0}");
    fx->now_ms += 1000;
    s_take(fx, 11);
    assert_int_equal(s_summary_int(fx, "frames_invalid"), 10);
    assert_int_equal(s_summary_int(fx, "frames_received"), 1);
    //  The refused frames' x = -1 never reached the watchdog.
    assert_false(runner_telemetry_check(fx->telemetry, fx->now_ms));
}

//  A frame over RUNNER_TELEMETRY_MAX_FRAME_BYTES never reaches us: libzmq drops the
//  connection, the client reconnects, and frames flow again.
static void test_oversized_frame_is_refused_by_libzmq(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, NULL, NULL);
    size_t size = 4 * RUNNER_TELEMETRY_MAX_FRAME_BYTES;
    char *big = calloc(1, size);
    assert_non_null(big);
    s_push_bytes(fx, big, size);
    free(big);
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    for (int64_t seq = 0; s_summary_int(fx, "frames_received") == 0 && s_left_ms(deadline) > 0;
         seq++) {
        s_send(fx, seq, seq, "{\"x\": 1.0}");
        zclock_sleep(20); //  pacing the retries while the client reconnects
        runner_telemetry_drain(fx->telemetry, NULL, fx->now_ms);
    }
    assert_true(s_summary_int(fx, "frames_received") >= 1);
    assert_int_equal(s_summary_int(fx, "frames_invalid"), 0);
}

//  The connection count follows the client: a closed client is no longer connected.
static void test_connected_follows_the_client(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, NULL, NULL);
    s_send(fx, 0, 0, "{\"x\": 1.0}");
    s_take(fx, 1);
    assert_true(runner_telemetry_connected(fx->telemetry));
    zsock_destroy(&fx->push);
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    zpoller_t *poller = zpoller_new(runner_telemetry_monitor(fx->telemetry), NULL);
    while (runner_telemetry_connected(fx->telemetry) && s_left_ms(deadline) > 0) {
        zpoller_wait(poller, (int)s_left_ms(deadline));
        runner_telemetry_drain(fx->telemetry, NULL, fx->now_ms);
    }
    zpoller_destroy(&poller);
    assert_false(runner_telemetry_connected(fx->telemetry));
}

// --------------------------------------------------------------------------------------------
//  Forwarding

//  Forwarded frames carry our job_id, batch_id and drop count, never the scenario's, and keep
//  one frame per 1 / sampling_rate_hz of scenario time.
static void test_forwarding_is_decimated_and_stamped(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, NULL, "{\"sampling_rate_hz\": 10}");
    const int64_t ms = 1000000; //  ns
    const int64_t stamps[] = {0, 50 * ms, 100 * ms, 150 * ms, 250 * ms, 260 * ms, 340 * ms};
    for (int64_t seq = 0; seq < 7; seq++)
        s_send(fx, seq + (seq >= 4), stamps[seq], "{\"x\": 1.5}"); //  seq 4 is lost
    //  A scenario may not name the job: its job_id is replaced.
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_TELEMETRY);
    lynx_value_set_int(lynx_msg_body(msg), "seq", 8);
    lynx_value_set_int(lynx_msg_body(msg), "timestamp_ns", 500 * ms);
    lynx_value_set_string(lynx_msg_body(msg), "job_id", "someone-else");
    lynx_value_set_string(lynx_msg_body(msg), "extra", "dropped on the way");
    lynx_value_t *values = s_json("{\"x\": 2.5}");
    lynx_value_set(lynx_msg_body(msg), "values", &values);
    lynx_err_t err;
    zframe_t *frame = lynx_msg_encode(msg, &err);
    lynx_msg_destroy(&msg);
    assert_int_equal(zframe_send(&frame, fx->push, 0), 0);
    s_take(fx, 8);
    assert_int_equal(s_summary_int(fx, "frames_forwarded"), 4);

    const int64_t kept[][2] = {{0, 0}, {2, 0}, {5, 1}, {8, 1}}; //  seq, dropped so far
    for (size_t i = 0; i < 4; i++) {
        lynx_value_t *body = s_forwarded(fx, S_WAIT_MS);
        assert_non_null(body);
        assert_int_equal(lynx_value_get_int(body, "seq", -1), kept[i][0]);
        assert_string_equal(lynx_value_get_string(body, "job_id", ""), "job-1");
        assert_string_equal(lynx_value_get_string(body, "batch_id", ""), "batch-1");
        assert_int_equal(lynx_value_get_int(body, "dropped", -1), kept[i][1]);
        assert_null(lynx_value_get(body, "extra"));
        lynx_value_destroy(&body);
    }
    assert_null(s_forwarded(fx, 0));
}

//  telemetry.variables filters what is forwarded, not what the watchdog sees; a frame with
//  nothing listed is not forwarded at all.
static void test_forwarding_is_filtered(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx,
            "{\"conditions\": [{\"name\": \"hot\", \"variable\": \"temp\", \"operator\": \"gt\","
            " \"threshold\": 100, \"units\": \"C\"}]}",
            "{\"variables\": [\"a\", \"c\"]}");
    s_step(fx, 0, "{\"a\": 1.0, \"b\": 2.0, \"c\": 3, \"temp\": 20.0}");
    s_step(fx, 1, "{\"b\": 2.0, \"temp\": 20.0}");
    s_step(fx, 2, "{\"c\": 4, \"a\": 0.5}");
    lynx_value_t *body = s_forwarded(fx, S_WAIT_MS);
    s_assert_json(lynx_value_get(body, "values"), "{\"a\": 1.0, \"c\": 3}");
    lynx_value_destroy(&body);
    body = s_forwarded(fx, S_WAIT_MS);
    assert_int_equal(lynx_value_get_int(body, "seq", -1), 2);
    s_assert_json(lynx_value_get(body, "values"), "{\"c\": 4, \"a\": 0.5}");
    lynx_value_destroy(&body);
    assert_int_equal(s_summary_int(fx, "frames_forwarded"), 2);

    //  The watchdog reads an unlisted variable.
    s_step(fx, 3, "{\"temp\": 120.0}");
    const lynx_value_t *trigger = runner_telemetry_trigger(fx->telemetry);
    assert_non_null(trigger);
    assert_string_equal(lynx_value_get_string(trigger, "rule_name", ""), "hot");
    lynx_value_t *summary = runner_telemetry_summary(fx->telemetry);
    s_assert_json(lynx_value_get(summary, "last_values"),
                  "{\"temp\": 120.0, \"a\": 0.5, \"b\": 2.0, \"c\": 4}");
    lynx_value_destroy(&summary);
}

//  A forwarding socket that refuses (full, or here without any peer) never blocks us: the
//  frames are counted as forward drops.
static void test_refused_forwards_are_counted(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, NULL, NULL);
    zsock_t *nowhere = zsock_new(ZMQ_DEALER); //  no peer: every send would wait
    assert_non_null(nowhere);
    for (int64_t seq = 0; seq < 3; seq++)
        s_send(fx, seq, seq, "{\"x\": 1.0}");
    int64_t deadline = zclock_mono() + S_WAIT_MS;
    int64_t taken = 0;
    while (taken < 3 && s_left_ms(deadline) > 0) {
        zclock_sleep(5); //  pacing a poll with a deadline
        taken += runner_telemetry_drain(fx->telemetry, zsock_resolve(nowhere), fx->now_ms);
    }
    assert_int_equal(taken, 3);
    assert_int_equal(s_summary_int(fx, "frames_forwarded"), 0);
    assert_int_equal(s_summary_int(fx, "frames_forward_dropped"), 3);
    zsock_destroy(&nowhere);
}

// --------------------------------------------------------------------------------------------
//  The watchdog

static const char *const s_altitude_rule =
    "{\"check_frequency_hz\": 10, \"conditions\": [{\"name\": \"too_low\", \"description\":"
    " \"Altitude below the floor\", \"variable\": \"altitude_km\", \"operator\": \"lt\","
    " \"threshold\": 150.0, \"units\": \"km\"}]}";

//  A value falling frame by frame fires the rule at the first frame below the threshold; the
//  trigger event holds that frame, and nothing after it is looked at.
static void test_rule_fires_at_the_right_frame(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, s_altitude_rule, NULL);
    assert_int_equal(runner_telemetry_check_interval_ms(fx->telemetry), 100);
    char values[128];
    int64_t seq = 0;
    for (double altitude = 200.0; !runner_telemetry_trigger(fx->telemetry); altitude -= 10.0) {
        assert_true(altitude > 100.0);
        snprintf(values, sizeof values, "{\"altitude_km\": %.1f, \"step\": %" PRId64 "}", altitude,
                 seq);
        s_step(fx, seq++, values);
    }
    assert_int_equal(seq, 7); //  200 ... 150 do not fire, 140 does
    const lynx_value_t *trigger = runner_telemetry_trigger(fx->telemetry);
    assert_string_equal(lynx_value_get_string(trigger, "rule_name", ""), "too_low");
    assert_string_equal(lynx_value_get_string(trigger, "description", ""),
                        "Altitude below the floor");
    assert_true(lynx_value_get_double(trigger, "elapsed_seconds", 0) == 0.7);
    s_assert_json(lynx_value_get(trigger, "telemetry_at_trigger"),
                  "{\"altitude_km\": 140.0, \"step\": 6}");
    assert_int_equal(lynx_value_get_int(trigger, "seq", -1), 6);
    assert_int_equal(lynx_value_get_int(trigger, "timestamp_ns", -1), 6000000000LL);
    assert_non_null(lynx_value_get_string(trigger, "triggered_at", NULL));

    //  Later frames are taken off the socket but not counted or evaluated.
    s_send(fx, seq, 0, "{\"altitude_km\": 10.0}");
    fx->now_ms += 1000;
    s_take(fx, 1);
    lynx_value_t *summary = runner_telemetry_summary(fx->telemetry);
    assert_int_equal(lynx_value_get_int(summary, "frames_received", -1), 7);
    s_assert_json(lynx_value_get(lynx_value_get(summary, "trigger"), "telemetry_at_trigger"),
                  "{\"altitude_km\": 140.0, \"step\": 6}");
    lynx_value_destroy(&summary);
}

//  Frames arriving faster than check_frequency_hz are evaluated at most once per interval on
//  arrival; the timer's check evaluates the latest frame, so the last one is not missed.
static void test_checks_follow_the_frequency(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, s_altitude_rule, NULL);
    fx->now_ms += 100;
    s_send(fx, 0, 0, "{\"altitude_km\": 200.0}");
    s_send(fx, 1, 1, "{\"altitude_km\": 120.0}");
    s_send(fx, 2, 2, "{\"altitude_km\": 110.0}");
    s_take(fx, 3); //  all at the same instant: only the first frame is evaluated
    assert_null(runner_telemetry_trigger(fx->telemetry));
    fx->now_ms += 50;
    assert_true(runner_telemetry_check(fx->telemetry, fx->now_ms));
    const lynx_value_t *trigger = runner_telemetry_trigger(fx->telemetry);
    assert_int_equal(lynx_value_get_int(trigger, "seq", -1), 2);
    s_assert_json(lynx_value_get(trigger, "telemetry_at_trigger"), "{\"altitude_km\": 110.0}");
}

//  A check with no frame since the last evaluation changes nothing.
static void test_check_without_frames_does_nothing(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx, s_altitude_rule, NULL);
    assert_false(runner_telemetry_check(fx->telemetry, fx->now_ms + 1000));
    s_step(fx, 0, "{\"altitude_km\": 200.0}");
    assert_false(runner_telemetry_check(fx->telemetry, fx->now_ms + 1000));
    assert_null(runner_telemetry_trigger(fx->telemetry));
}

//  enabled: false keeps the rules but nothing ever fires, and no timer is asked for.
static void test_disabled_rules_never_fire(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx,
            "{\"enabled\": false, \"conditions\": [{\"name\": \"too_low\", \"variable\":"
            " \"altitude_km\", \"operator\": \"lt\", \"threshold\": 150.0, \"units\": \"km\"}]}",
            NULL);
    assert_int_equal(runner_telemetry_check_interval_ms(fx->telemetry), 0);
    for (int64_t seq = 0; seq < 3; seq++)
        s_step(fx, seq, "{\"altitude_km\": 10.0}");
    assert_false(runner_telemetry_check(fx->telemetry, fx->now_ms + 1000));
    lynx_value_t *summary = runner_telemetry_summary(fx->telemetry);
    assert_int_equal(lynx_value_type(lynx_value_get(summary, "trigger")), LYNX_VALUE_NULL);
    assert_int_equal(lynx_value_get_int(summary, "frames_received", -1), 3);
    lynx_value_destroy(&summary);
}

//  A variable never reported makes its comparison false, neq included: an all group waits
//  for every member.
static void test_unseen_variable_is_false(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx,
            "{\"conditions\": [{\"name\": \"odd\", \"variable\": \"mode\", \"operator\":"
            " \"neq\", \"threshold\": 3, \"units\": \"-\"}, {\"name\": \"both_low\", \"all\":"
            " [{\"variable\": \"a\", \"condition\": \"< 5\"}, {\"variable\": \"b\", \"condition\":"
            " \"< 5\"}]}]}",
            NULL);
    s_step(fx, 0, "{\"a\": 1.0}");
    assert_null(runner_telemetry_trigger(fx->telemetry));
    s_step(fx, 1, "{\"b\": 1.0}");
    assert_string_equal(
        lynx_value_get_string(runner_telemetry_trigger(fx->telemetry), "rule_name", ""),
        "both_low");
}

//  Nested groups: altitude_m < 30 AND (spin > 15 OR tracking < 0.3); booleans count as 1 and 0.
static void test_nested_groups(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx,
            "{\"check_frequency_hz\": 1000, \"conditions\": [{\"name\": \"landing_abort\","
            " \"all\": [{\"variable\": \"altitude_m\", \"operator\": \"lt\", \"threshold\": 30,"
            " \"units\": \"m\"}, {\"any\": [{\"variable\": \"spin\", \"operator\": \"gt\","
            " \"threshold\": 15, \"units\": \"deg/s\"}, {\"variable\": \"lost\", \"operator\":"
            " \"eq\", \"threshold\": 1, \"units\": \"boolean\"}]}]}]}",
            NULL);
    assert_int_equal(runner_telemetry_check_interval_ms(fx->telemetry), 1);
    s_step(fx, 0, "{\"altitude_m\": 100.0, \"spin\": 20.0, \"lost\": false}");
    s_step(fx, 1, "{\"altitude_m\": 20.0, \"spin\": 5.0, \"lost\": false}");
    assert_null(runner_telemetry_trigger(fx->telemetry));
    s_step(fx, 2, "{\"altitude_m\": 20.0, \"spin\": 5, \"lost\": true}");
    const lynx_value_t *trigger = runner_telemetry_trigger(fx->telemetry);
    assert_non_null(trigger);
    assert_int_equal(lynx_value_get_int(trigger, "seq", -1), 2);
    assert_int_equal(lynx_value_type(lynx_value_get(trigger, "description")), LYNX_VALUE_NULL);
}

//  A block the rules refuse means no watchdog (the broker checks it at submit).
static void test_refused_rules_mean_no_watchdog(void **state)
{
    s_fixture_t *fx = *state;
    s_start(fx,
            "{\"conditions\": [{\"name\": \"x\", \"variable\": \"v\", \"operator\": \"less\","
            " \"threshold\": 1, \"units\": \"m\"}]}",
            NULL);
    assert_int_equal(runner_telemetry_check_interval_ms(fx->telemetry), 0);
    s_step(fx, 0, "{\"v\": 0.0}");
    assert_false(runner_telemetry_check(fx->telemetry, fx->now_ms + 1000));
}

int main(void)
{
    zsys_init();
    zsys_set_logstream(stderr);
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_frames_are_counted_and_values_kept),
        S_TEST(test_seq_gaps_count_client_drops),
        S_TEST(test_garbage_is_counted_and_dropped),
        S_TEST(test_oversized_frame_is_refused_by_libzmq),
        S_TEST(test_connected_follows_the_client),
        S_TEST(test_forwarding_is_decimated_and_stamped),
        S_TEST(test_forwarding_is_filtered),
        S_TEST(test_refused_forwards_are_counted),
        S_TEST(test_rule_fires_at_the_right_frame),
        S_TEST(test_checks_follow_the_frequency),
        S_TEST(test_check_without_frames_does_nothing),
        S_TEST(test_disabled_rules_never_fire),
        S_TEST(test_unseen_variable_is_false),
        S_TEST(test_nested_groups),
        S_TEST(test_refused_rules_mean_no_watchdog),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
