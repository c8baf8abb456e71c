//  broker_republish: the public PUB socket, driven through the telemetry store that owns it.
//  Subscribers get one batch's frames and events by topic; without a socket publishing is a
//  no-op, and a bad endpoint fails clearly. Subscribers synchronise with a probe and a
//  sentinel, never a sleep: a SUB socket joins asynchronously, and ZeroMQ keeps order on each
//  connection.
#include "broker_telemetry_fixture.h"

static zsock_t *s_subscriber(s_fixture_t *fx, const char *topic)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    assert_non_null(sub);
    zsock_set_linger(sub, 0);
    zsock_set_rcvhwm(sub, 0);
    zsock_set_subscribe(sub, topic);
    assert_int_equal(zsock_connect(sub, "%s", broker_telemetry_endpoint(fx->telemetry)), 0);
    return sub;
}

//  Receive [topic][payload]; fails after S_RECV_MS.
static void s_recv(zsock_t *sub, char **topic_p, zframe_t **payload_p)
{
    zsock_set_rcvtimeo(sub, S_RECV_MS);
    zmsg_t *msg = zmsg_recv(sub);
    if (!msg)
        fail_msg("nothing published within %d ms", S_RECV_MS);
    assert_int_equal(zmsg_size(msg), 2);
    *topic_p = zmsg_popstr(msg);
    *payload_p = zmsg_pop(msg);
    zmsg_destroy(&msg);
}

//  Wait until sub receives what publish() sends (its subscription has reached the PUB), then
//  discard everything up to a sentinel with topic end_topic, sent by publish_end().
static void s_sync(zsock_t *sub, void (*publish)(s_fixture_t *), void (*publish_end)(s_fixture_t *),
                   const char *end_topic, s_fixture_t *fx)
{
    int64_t deadline_ms = lynx_time_mono_ms() + S_SYNC_MS;
    zsock_set_rcvtimeo(sub, S_PROBE_MS);
    zmsg_t *msg = NULL;
    while (!msg && lynx_time_mono_ms() < deadline_ms) {
        publish(fx);
        msg = zmsg_recv(sub);
    }
    if (!msg)
        fail_msg("subscription not effective within %d ms", S_SYNC_MS);
    zmsg_destroy(&msg);
    publish_end(fx);
    for (;;) {
        char *topic = NULL;
        zframe_t *payload = NULL;
        s_recv(sub, &topic, &payload);
        bool end = strcmp(topic, end_topic) == 0;
        zstr_free(&topic);
        zframe_destroy(&payload);
        if (end)
            break;
    }
}

static void s_publish_probe(s_fixture_t *fx)
{
    s_ingest(fx, S_B1, "probe", fx->probe_seq++, 0.0);
}
static void s_publish_probe_end(s_fixture_t *fx)
{
    s_ingest(fx, S_B1, "probe-end", 0, 0.0);
}
static void s_publish_event_probe(s_fixture_t *fx)
{
    assert_int_equal(
        broker_republish_batch_event(broker_telemetry_republish(fx->telemetry), "probe", "x", NULL),
        0);
}
static void s_publish_event_probe_end(s_fixture_t *fx)
{
    assert_int_equal(broker_republish_batch_event(broker_telemetry_republish(fx->telemetry),
                                                  "probe-end", "x", NULL),
                     0);
}

//  A subscriber to "telemetry.<batch>" gets exactly that batch's frames, as codec TELEMETRY
//  messages with the job's ids, in order.
static void test_subscriber_gets_one_batch(void **state)
{
    s_fixture_t *fx = *state;
    assert_non_null(strstr(broker_telemetry_endpoint(fx->telemetry), "tcp://127.0.0.1:"));
    s_configure(fx, S_B1, NULL, NULL, -1);
    s_configure(fx, S_B2, NULL, "gzip", -1);
    zsock_t *sub = s_subscriber(fx, "telemetry." S_B1);
    s_sync(sub, s_publish_probe, s_publish_probe_end, "telemetry." S_B1 ".probe-end", fx);

    for (int seq = 0; seq < 200; seq++) {
        s_ingest(fx, S_B2, S_J2, seq, 1000.0);
        s_ingest(fx, S_B1, S_J1, seq, 0.0);
        s_ingest(fx, S_B2, S_J3, seq, 2000.0);
    }
    s_ingest(fx, S_B1, "end", 0, 0.0);
    int received = 0;
    for (;;) {
        char *topic = NULL;
        zframe_t *payload = NULL;
        s_recv(sub, &topic, &payload);
        if (strcmp(topic, "telemetry." S_B1 ".end") == 0) {
            zstr_free(&topic);
            zframe_destroy(&payload);
            break;
        }
        assert_string_equal(topic, "telemetry." S_B1 "." S_J1);
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_decode(zframe_data(payload), zframe_size(payload), &err);
        if (!msg)
            fail_msg("published frame does not decode: %s: %s", err.field, err.message);
        assert_int_equal(lynx_msg_id(msg), LYNX_MSG_TELEMETRY);
        lynx_value_t *body = lynx_msg_body(msg);
        assert_string_equal(lynx_value_get_string(body, "job_id", ""), S_J1);
        assert_string_equal(lynx_value_get_string(body, "batch_id", ""), S_B1);
        assert_int_equal(lynx_value_get_int(body, "seq", -1), received);
        assert_int_equal(lynx_value_get_int(body, "timestamp_ns", 0), S_T0 + received * 1000000);
        assert_true(lynx_value_get_double(lynx_value_get(body, "values"), "x", 0) ==
                    s_x(0.0, received));
        lynx_msg_destroy(&msg);
        zstr_free(&topic);
        zframe_destroy(&payload);
        received++;
    }
    assert_int_equal(received, 200);
    broker_telemetry_stats_t stats = s_stats(fx);
    assert_int_equal(stats.frames_published, stats.frames_received);
    assert_int_equal(stats.frames_dropped, 0);
    zsock_destroy(&sub);
}

//  A subscriber to "event." gets job events on event.<batch>.<job> and batch events on
//  event.<batch>, as msgpack maps; extra fields never replace the standard ones.
static void test_events(void **state)
{
    s_fixture_t *fx = *state;
    zsock_t *sub = s_subscriber(fx, "event.");
    s_sync(sub, s_publish_event_probe, s_publish_event_probe_end, "event.probe-end", fx);
    //  Telemetry is not an event.
    s_configure(fx, S_B1, NULL, NULL, -1);
    s_ingest(fx, S_B1, S_J1, 0, 0.0);

    uint64_t published = s_stats(fx).events_published;
    lynx_value_t *extra = lynx_value_map();
    lynx_value_set_string(extra, "runner_id", "ws-07");
    lynx_value_set_int(extra, "attempt", 2);
    lynx_value_set_string(extra, "status", "Hijacked");
    lynx_value_set_string(extra, "type", "other");
    assert_int_equal(broker_republish_job_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                S_J1, "Running", extra),
                     0);
    lynx_value_destroy(&extra);
    assert_int_equal(broker_republish_job_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                S_J1, "Completed", NULL),
                     0);
    assert_int_equal(broker_republish_batch_event(broker_telemetry_republish(fx->telemetry), S_B1,
                                                  "Completed", NULL),
                     0);

    static const struct {
        const char *topic, *type, *status;
    } expected[] = {
        {"event." S_B1 "." S_J1, "job", "Running"},
        {"event." S_B1 "." S_J1, "job", "Completed"},
        {"event." S_B1, "batch", "Completed"},
    };
    for (size_t i = 0; i < 3; i++) {
        char *topic = NULL;
        zframe_t *payload = NULL;
        s_recv(sub, &topic, &payload);
        assert_string_equal(topic, expected[i].topic);
        lynx_err_t err;
        lynx_value_t *event = lynx_msgpack_unpack(zframe_data(payload), zframe_size(payload), &err);
        assert_non_null(event);
        assert_string_equal(lynx_value_get_string(event, "type", ""), expected[i].type);
        assert_string_equal(lynx_value_get_string(event, "status", ""), expected[i].status);
        assert_string_equal(lynx_value_get_string(event, "batch_id", ""), S_B1);
        assert_true(lynx_value_get_int(event, "time_ms", 0) > 0);
        if (i < 2)
            assert_string_equal(lynx_value_get_string(event, "job_id", ""), S_J1);
        else
            assert_null(lynx_value_get(event, "job_id"));
        if (i == 0) {
            assert_string_equal(lynx_value_get_string(event, "runner_id", ""), "ws-07");
            assert_int_equal(lynx_value_get_int(event, "attempt", 0), 2);
        }
        lynx_value_destroy(&event);
        zstr_free(&topic);
        zframe_destroy(&payload);
    }
    assert_int_equal(s_stats(fx).events_published, published + 3);
    assert_int_equal(s_stats(fx).events_dropped, 0);
    zsock_destroy(&sub);
}

static void test_no_pub_socket_and_bind_errors(void **state)
{
    s_fixture_t *fx = *state;
    lynx_err_t err;
    //  The same endpoint twice.
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", broker_telemetry_endpoint(fx->telemetry));
    broker_telemetry_t *other = broker_telemetry_new(fx->dir, endpoint, NULL, &err);
    assert_null(other);
    assert_int_equal(err.code, LYNX_EINTERNAL);
    assert_non_null(strstr(err.message, "bind tcp://127.0.0.1:"));
    assert_non_null(strstr(err.message, "Address already in use"));
    //  A data dir that cannot be created.
    char blocked[128];
    snprintf(blocked, sizeof blocked, "%s/file", fx->dir);
    FILE *file = fopen(blocked, "w");
    assert_non_null(file);
    fclose(file);
    assert_null(broker_telemetry_new(blocked, NULL, NULL, &err));
    assert_non_null(strstr(err.message, "/file/telemetry"));
    assert_null(broker_telemetry_new("", NULL, NULL, &err));
    assert_int_equal(err.code, LYNX_EINVALID);

    //  Without a PUB socket everything works; nothing is published.
    other = broker_telemetry_new(fx->dir, NULL, NULL, &err);
    assert_non_null(other);
    assert_string_equal(broker_telemetry_endpoint(other), "");
    assert_int_equal(broker_telemetry_configure_batch(other, S_B1, NULL, &err), 0);
    lynx_value_t *body = s_frame(S_B1, S_J1, 0, 0.0);
    assert_int_equal(broker_telemetry_ingest(other, body, &err), 0);
    lynx_value_destroy(&body);
    assert_int_equal(
        broker_republish_job_event(broker_telemetry_republish(other), S_B1, S_J1, "Running", NULL),
        0);
    broker_telemetry_stats_t stats;
    broker_telemetry_stats(other, &stats);
    assert_int_equal(stats.frames_published, 0);
    assert_int_equal(stats.frames_dropped, 0);
    assert_int_equal(stats.events_published, 0);
    broker_telemetry_destroy(&other);
}

int main(void)
{
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_subscriber_gets_one_batch),
        S_TEST(test_events),
        S_TEST(test_no_pub_socket_and_bind_errors),
    };
    zsys_init();
    zsys_set_logstream(stderr); //  refused frames and write errors are logged: expected here
    return cmocka_run_group_tests(tests, NULL, NULL);
}
