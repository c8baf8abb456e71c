//  lynx_telemetry: the C scenario client (clients/c). A PULL socket on 127.0.0.1 stands in
//  for the runner; every frame the client sends is decoded with the codec (lynx_msg_decode)
//  and compared byte for byte with the codec's own encoding of the same message.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lynx_msg.h"
#include "lynx_telemetry.h"

#define S_RECV_TIMEOUT_MS 10000
#define S_FLOOD_FRAMES 100000

//  --------------------------------------------------------------------------
//  The runner's end: a PULL socket with an unbounded queue, read after the client is done.

typedef struct {
    zsock_t *pull;
    char url[64];
} s_runner_t;

static int s_runner_setup(void **state)
{
    s_runner_t *runner = calloc(1, sizeof *runner);
    assert_non_null(runner);
    runner->pull = zsock_new(ZMQ_PULL);
    assert_non_null(runner->pull);
    zsock_set_linger(runner->pull, 0);
    zsock_set_rcvhwm(runner->pull, 0);
    zsock_set_rcvtimeo(runner->pull, S_RECV_TIMEOUT_MS);
    int port = zsock_bind(runner->pull, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    snprintf(runner->url, sizeof runner->url, "tcp://127.0.0.1:%d", port);
    *state = runner;
    return 0;
}

static int s_runner_teardown(void **state)
{
    s_runner_t *runner = *state;
    zsock_destroy(&runner->pull);
    free(runner);
    return 0;
}

//  The next message: exactly one frame, owned by the caller. Fails after S_RECV_TIMEOUT_MS.
static zframe_t *s_recv_frame(s_runner_t *runner)
{
    zmsg_t *msg = zmsg_recv(runner->pull);
    if (!msg)
        fail_msg("no telemetry frame within %d ms", S_RECV_TIMEOUT_MS);
    assert_int_equal(zmsg_size(msg), 1);
    zframe_t *frame = zmsg_pop(msg);
    zmsg_destroy(&msg);
    return frame;
}

//  The next message decoded by the codec: a TELEMETRY with exactly seq, timestamp_ns and
//  values (never job_id), in that order.
static lynx_msg_t *s_recv_telemetry(s_runner_t *runner)
{
    zframe_t *frame = s_recv_frame(runner);
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_decode(zframe_data(frame), zframe_size(frame), &err);
    zframe_destroy(&frame);
    if (!msg)
        fail_msg("codec refused the frame: %s: %s", err.field, err.message);
    assert_int_equal(lynx_msg_id(msg), LYNX_MSG_TELEMETRY);
    lynx_value_t *body = lynx_msg_body(msg);
    assert_int_equal(lynx_value_size(body), 3);
    assert_string_equal(lynx_value_key_at(body, 0), "seq");
    assert_string_equal(lynx_value_key_at(body, 1), "timestamp_ns");
    assert_string_equal(lynx_value_key_at(body, 2), "values");
    return msg;
}

static int64_t s_seq(lynx_msg_t *msg)
{
    return lynx_value_as_int(lynx_value_get(lynx_msg_body(msg), "seq"));
}

static int64_t s_timestamp(lynx_msg_t *msg)
{
    return lynx_value_as_int(lynx_value_get(lynx_msg_body(msg), "timestamp_ns"));
}

static lynx_value_t *s_values(lynx_msg_t *msg)
{
    return lynx_value_get(lynx_msg_body(msg), "values");
}

static void s_assert_empty(s_runner_t *runner)
{
    zsock_set_rcvtimeo(runner->pull, 0);
    zmsg_t *extra = zmsg_recv(runner->pull);
    zsock_set_rcvtimeo(runner->pull, S_RECV_TIMEOUT_MS);
    if (extra) {
        zmsg_destroy(&extra);
        fail_msg("unexpected extra frame");
    }
}

static int64_t s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

//  A tcp URL nobody listens on: the port stays bound (so nobody else takes it) but never
//  listens, so every connection attempt is refused. Close *holder_p when done.
static void s_dead_url(char *url, size_t size, int *holder_p)
{
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(holder >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    assert_int_equal(bind(holder, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(getsockname(holder, (struct sockaddr *)&address, &length), 0);
    snprintf(url, size, "tcp://127.0.0.1:%d", ntohs(address.sin_port));
    *holder_p = holder;
}

//  --------------------------------------------------------------------------
//  Off when the runner did not ask for telemetry

static void test_unset_variable_gives_a_silent_no_op(void **state)
{
    (void)state;
    assert_int_equal(unsetenv(LYNX_TELEMETRY_ENV_URL), 0);
    lynx_telemetry_t *telemetry = lynx_telemetry_from_env();
    assert_non_null(telemetry);
    assert_false(lynx_telemetry_active(telemetry));
    assert_null(lynx_telemetry_error(telemetry));
    lynx_telemetry_value_t value = lynx_telemetry_double("a", 1.0);
    assert_int_equal(lynx_telemetry_send(telemetry, 0, 1, &value), 0);
    //  Nothing is checked on a no-op client: even a NULL sample "succeeds".
    assert_int_equal(lynx_telemetry_send(telemetry, 0, 5, NULL), 0);
    assert_int_equal(lynx_telemetry_send_doubles(telemetry, 0, NULL, NULL, 3), 0);
    assert_int_equal(lynx_telemetry_dropped(telemetry), 0);
    assert_int_equal(lynx_telemetry_seq(telemetry), 0);
    lynx_telemetry_close(&telemetry);
    assert_null(telemetry);
    lynx_telemetry_close(&telemetry);
    lynx_telemetry_close(NULL);
}

static void test_empty_variable_is_unset(void **state)
{
    (void)state;
    assert_int_equal(setenv(LYNX_TELEMETRY_ENV_URL, "", 1), 0);
    lynx_telemetry_t *telemetry = lynx_telemetry_from_env();
    assert_false(lynx_telemetry_active(telemetry));
    assert_null(lynx_telemetry_error(telemetry));
    lynx_telemetry_close(&telemetry);
    unsetenv(LYNX_TELEMETRY_ENV_URL);
}

static void test_null_client_is_a_no_op(void **state)
{
    (void)state;
    lynx_telemetry_value_t value = lynx_telemetry_int("a", 1);
    assert_int_equal(lynx_telemetry_send(NULL, 0, 1, &value), 0);
    assert_false(lynx_telemetry_active(NULL));
    assert_int_equal(lynx_telemetry_dropped(NULL), 0);
    assert_int_equal(lynx_telemetry_seq(NULL), 0);
    assert_null(lynx_telemetry_error(NULL));
}

static void test_malformed_url_gives_a_no_op_that_says_why(void **state)
{
    (void)state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new("not-a-url");
    assert_non_null(telemetry);
    assert_false(lynx_telemetry_active(telemetry));
    const char *error = lynx_telemetry_error(telemetry);
    assert_non_null(error);
    assert_true(strncmp(error, "connect not-a-url: ", 19) == 0);
    lynx_telemetry_value_t value = lynx_telemetry_double("a", 1.0);
    assert_int_equal(lynx_telemetry_send(telemetry, 0, 1, &value), 0);
    lynx_telemetry_close(&telemetry);
}

//  --------------------------------------------------------------------------
//  Frames

static void test_from_env_connects_to_the_variable(void **state)
{
    s_runner_t *runner = *state;
    assert_int_equal(setenv(LYNX_TELEMETRY_ENV_URL, runner->url, 1), 0);
    lynx_telemetry_t *telemetry = lynx_telemetry_from_env();
    unsetenv(LYNX_TELEMETRY_ENV_URL);
    assert_true(lynx_telemetry_active(telemetry));
    assert_null(lynx_telemetry_error(telemetry));
    lynx_telemetry_value_t value = lynx_telemetry_double("a", 1.0);
    assert_int_equal(lynx_telemetry_send(telemetry, 3, 1, &value), 0);
    lynx_telemetry_close(&telemetry);
    lynx_msg_t *msg = s_recv_telemetry(runner);
    assert_int_equal(s_seq(msg), 0);
    assert_int_equal(s_timestamp(msg), 3);
    lynx_msg_destroy(&msg);
}

static void test_frame_is_the_codec_telemetry_message(void **state)
{
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    lynx_telemetry_value_t values[] = {
        lynx_telemetry_double("orbit.radius_km", 6983.4),
        lynx_telemetry_int("step", 7),
        lynx_telemetry_bool("eclipse", true),
        lynx_telemetry_double("whole", 8.0),
    };
    assert_int_equal(lynx_telemetry_send(telemetry, 1750000000123456789, 4, values), 0);
    lynx_telemetry_close(&telemetry);

    lynx_msg_t *msg = s_recv_telemetry(runner);
    assert_int_equal(s_seq(msg), 0);
    assert_int_equal(s_timestamp(msg), 1750000000123456789);
    lynx_value_t *sample = s_values(msg);
    assert_int_equal(lynx_value_size(sample), 4);
    const char *keys[] = {"orbit.radius_km", "step", "eclipse", "whole"}; //  the caller's order
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(lynx_value_key_at(sample, i), keys[i]);
    lynx_value_t *radius = lynx_value_get(sample, "orbit.radius_km");
    assert_int_equal(lynx_value_type(radius), LYNX_VALUE_DOUBLE);
    assert_true(lynx_value_as_double(radius) == 6983.4);
    lynx_value_t *step = lynx_value_get(sample, "step");
    assert_int_equal(lynx_value_type(step), LYNX_VALUE_INT);
    assert_int_equal(lynx_value_as_int(step), 7);
    lynx_value_t *eclipse = lynx_value_get(sample, "eclipse");
    assert_int_equal(lynx_value_type(eclipse), LYNX_VALUE_BOOL);
    assert_true(lynx_value_as_bool(eclipse));
    //  A double stays a double even when it is whole.
    assert_int_equal(lynx_value_type(lynx_value_get(sample, "whole")), LYNX_VALUE_DOUBLE);
    lynx_msg_destroy(&msg);
    s_assert_empty(runner);
}

//  The codec's encoding of TELEMETRY {seq, timestamp_ns, values}.
static zframe_t *s_codec_frame(int64_t seq, int64_t timestamp_ns, size_t count,
                               const lynx_telemetry_value_t *values)
{
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_TELEMETRY);
    lynx_value_t *body = lynx_msg_body(msg);
    assert_int_equal(lynx_value_set_int(body, "seq", seq), 0);
    assert_int_equal(lynx_value_set_int(body, "timestamp_ns", timestamp_ns), 0);
    lynx_value_t *sample = lynx_value_map();
    for (size_t i = 0; i < count; i++) {
        const lynx_telemetry_value_t *value = &values[i];
        if (value->type == LYNX_TELEMETRY_DOUBLE)
            assert_int_equal(lynx_value_set_double(sample, value->name, value->as_double), 0);
        else if (value->type == LYNX_TELEMETRY_INT)
            assert_int_equal(lynx_value_set_int(sample, value->name, value->as_int), 0);
        else
            assert_int_equal(lynx_value_set_bool(sample, value->name, value->as_bool), 0);
    }
    assert_int_equal(lynx_value_set(body, "values", &sample), 0);
    lynx_err_t err;
    zframe_t *frame = lynx_msg_encode(msg, &err);
    if (!frame)
        fail_msg("codec refused: %s: %s", err.field, err.message);
    lynx_msg_destroy(&msg);
    return frame;
}

static void test_frame_bytes_match_the_codec(void **state)
{
    s_runner_t *runner = *state;
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    //  Every msgpack width: fixint, uint 8..64, negative fixint, int 8..64, str 8/16, float 64.
    lynx_telemetry_value_t values[] = {
        lynx_telemetry_int("zero", 0),
        lynx_telemetry_int("fix", 127),
        lynx_telemetry_int("u8", 128),
        lynx_telemetry_int("u16", 65535),
        lynx_telemetry_int("u32", 4294967295),
        lynx_telemetry_int("max", INT64_MAX),
        lynx_telemetry_int("neg", -32),
        lynx_telemetry_int("i8", -33),
        lynx_telemetry_int("i16", -32769),
        lynx_telemetry_int("min", INT64_MIN),
        lynx_telemetry_double("pi", 3.141592653589793),
        lynx_telemetry_double("-0", -0.0),
        lynx_telemetry_bool("yes", true),
        lynx_telemetry_bool("no", false),
        lynx_telemetry_double("", 1.0),
        lynx_telemetry_double("a name longer than thirty-one bytes", 2.0),
        lynx_telemetry_double(long_name, 3.0),
    };
    size_t count = sizeof values / sizeof values[0];
    int64_t timestamps[] = {0, 1, 0x100000000, -1, INT64_MAX, INT64_MIN + 1};
    size_t frames = sizeof timestamps / sizeof timestamps[0];
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    for (size_t i = 0; i < frames; i++)
        assert_int_equal(lynx_telemetry_send(telemetry, timestamps[i], count, values), 0);
    lynx_telemetry_close(&telemetry);
    for (size_t i = 0; i < frames; i++) {
        zframe_t *sent = s_recv_frame(runner);
        zframe_t *expected = s_codec_frame((int64_t)i, timestamps[i], count, values);
        assert_int_equal(zframe_size(sent), zframe_size(expected));
        assert_memory_equal(zframe_data(sent), zframe_data(expected), zframe_size(sent));
        zframe_destroy(&sent);
        zframe_destroy(&expected);
    }
}

static void test_seq_counts_every_frame_from_zero(void **state)
{
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    for (int64_t i = 0; i < 5; i++) {
        lynx_telemetry_value_t value = lynx_telemetry_int("i", i);
        assert_int_equal(lynx_telemetry_send(telemetry, i + 1, 1, &value), 0);
    }
    assert_int_equal(lynx_telemetry_seq(telemetry), 5);
    assert_int_equal(lynx_telemetry_dropped(telemetry), 0);
    lynx_telemetry_close(&telemetry);
    for (int64_t i = 0; i < 5; i++) {
        lynx_msg_t *msg = s_recv_telemetry(runner);
        assert_int_equal(s_seq(msg), i);
        assert_int_equal(lynx_value_get_int(s_values(msg), "i", -1), i);
        lynx_msg_destroy(&msg);
    }
}

static void test_timestamp_now_is_the_wall_clock(void **state)
{
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    lynx_telemetry_value_t value = lynx_telemetry_double("a", 1.0);
    int64_t before = s_now_ns();
    assert_int_equal(lynx_telemetry_send(telemetry, LYNX_TELEMETRY_NOW, 1, &value), 0);
    int64_t after = s_now_ns();
    //  Simulation time starts at 0: 0 is a timestamp like any other.
    assert_int_equal(lynx_telemetry_send(telemetry, 0, 1, &value), 0);
    lynx_telemetry_close(&telemetry);
    lynx_msg_t *msg = s_recv_telemetry(runner);
    assert_true(before <= s_timestamp(msg) && s_timestamp(msg) <= after);
    lynx_msg_destroy(&msg);
    msg = s_recv_telemetry(runner);
    assert_int_equal(s_timestamp(msg), 0);
    lynx_msg_destroy(&msg);
}

static void test_send_doubles(void **state)
{
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    const char *names[] = {"orbit.radius_km", "orbit.speed_m_s"};
    double doubles[] = {6983.4, 7554.25};
    assert_int_equal(lynx_telemetry_send_doubles(telemetry, 9, names, doubles, 2), 0);
    assert_int_equal(lynx_telemetry_send_doubles(telemetry, 10, NULL, NULL, 0), 0);
    lynx_telemetry_close(&telemetry);

    zframe_t *sent = s_recv_frame(runner);
    lynx_telemetry_value_t values[] = {lynx_telemetry_double(names[0], doubles[0]),
                                       lynx_telemetry_double(names[1], doubles[1])};
    zframe_t *expected = s_codec_frame(0, 9, 2, values);
    assert_true(zframe_eq(sent, expected));
    zframe_destroy(&sent);
    zframe_destroy(&expected);
    lynx_msg_t *msg = s_recv_telemetry(runner);
    assert_int_equal(s_seq(msg), 1);
    assert_int_equal(lynx_value_size(s_values(msg)), 0);
    lynx_msg_destroy(&msg);
}

static void test_nan_and_infinities_are_sent_as_they_are(void **state)
{
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    lynx_telemetry_value_t values[] = {
        lynx_telemetry_double("nan", NAN),
        lynx_telemetry_double("inf", INFINITY),
        lynx_telemetry_double("-inf", -INFINITY),
    };
    assert_int_equal(lynx_telemetry_send(telemetry, 1, 3, values), 0);
    lynx_telemetry_close(&telemetry);
    lynx_msg_t *msg = s_recv_telemetry(runner);
    lynx_value_t *sample = s_values(msg);
    assert_true(isnan(lynx_value_get_double(sample, "nan", 0)));
    assert_true(lynx_value_get_double(sample, "inf", 0) == INFINITY);
    assert_true(lynx_value_get_double(sample, "-inf", 0) == -INFINITY);
    lynx_msg_destroy(&msg);
}

static void test_a_large_sample(void **state)
{
    s_runner_t *runner = *state;
    enum { COUNT = 1000 };
    static char names[COUNT][16];
    lynx_telemetry_value_t values[COUNT];
    for (int i = 0; i < COUNT; i++) {
        snprintf(names[i], sizeof names[i], "channel.%04d", COUNT - i);
        values[i] = lynx_telemetry_double(names[i], i);
    }
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    assert_int_equal(lynx_telemetry_send(telemetry, 1, COUNT, values), 0);
    //  The same names twice, far apart: still caught in a big sample.
    values[COUNT - 1].name = values[3].name;
    errno = 0;
    assert_int_equal(lynx_telemetry_send(telemetry, 1, COUNT, values), -1);
    assert_int_equal(errno, EINVAL);
    lynx_telemetry_close(&telemetry);
    lynx_msg_t *msg = s_recv_telemetry(runner);
    assert_int_equal(lynx_value_size(s_values(msg)), COUNT);
    assert_true(lynx_value_get_double(s_values(msg), "channel.0001", -1) == COUNT - 1);
    lynx_msg_destroy(&msg);
    s_assert_empty(runner);
}

//  --------------------------------------------------------------------------
//  Programming errors fail at once and use no sequence number

static void s_assert_refused(lynx_telemetry_t *telemetry, int rc, int error)
{
    assert_int_equal(rc, -1);
    assert_int_equal(errno, error);
    assert_int_equal(lynx_telemetry_seq(telemetry), 0);
    assert_int_equal(lynx_telemetry_dropped(telemetry), 0);
}

static void test_bad_samples_are_refused(void **state)
{
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    lynx_telemetry_value_t good = lynx_telemetry_double("a", 1.0);
    lynx_telemetry_value_t unnamed = lynx_telemetry_double(NULL, 1.0);
    lynx_telemetry_value_t twice[] = {lynx_telemetry_int("a", 1), lynx_telemetry_bool("a", 1)};
    lynx_telemetry_value_t untyped = good;
    untyped.type = (lynx_telemetry_type_t)0;
    lynx_telemetry_value_t mistyped = good;
    mistyped.type = (lynx_telemetry_type_t)99;
    const char *names[] = {"a", NULL};
    double doubles[] = {1.0, 2.0};

    s_assert_refused(telemetry, lynx_telemetry_send(telemetry, 1, 1, NULL), EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send(telemetry, 1, 1, &unnamed), EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send(telemetry, 1, 2, twice), EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send(telemetry, 1, 1, &untyped), EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send(telemetry, 1, 1, &mistyped), EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send_doubles(telemetry, 1, names, NULL, 1), EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send_doubles(telemetry, 1, NULL, doubles, 1),
                     EINVAL);
    s_assert_refused(telemetry, lynx_telemetry_send_doubles(telemetry, 1, names, doubles, 2),
                     EINVAL);

    assert_int_equal(lynx_telemetry_send(telemetry, 1, 1, &good), 0);
    lynx_telemetry_close(&telemetry);
    lynx_msg_t *msg = s_recv_telemetry(runner);
    assert_int_equal(s_seq(msg), 0); //  the refused sends used no sequence number
    lynx_msg_destroy(&msg);
    s_assert_empty(runner);
}

static void test_a_frame_over_the_protocol_limit_is_refused(void **state)
{
    s_runner_t *runner = *state;
    size_t length = LYNX_MSG_MAX_BYTES;
    char *huge = malloc(length + 1);
    assert_non_null(huge);
    memset(huge, 'x', length);
    huge[length] = '\0';
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    lynx_telemetry_value_t value = lynx_telemetry_bool(huge, true);
    s_assert_refused(telemetry, lynx_telemetry_send(telemetry, 1, 1, &value), EMSGSIZE);
    free(huge);
    lynx_telemetry_close(&telemetry);
    s_assert_empty(runner);
}

//  --------------------------------------------------------------------------
//  Lifetime

static void test_close_delivers_the_frames_still_queued(void **state)
{
    //  A scenario sends its last samples and exits: close waits (bounded) for them.
    s_runner_t *runner = *state;
    lynx_telemetry_t *telemetry = lynx_telemetry_new(runner->url);
    for (int64_t i = 0; i < 2000; i++) {
        lynx_telemetry_value_t value = lynx_telemetry_int("i", i);
        assert_int_equal(lynx_telemetry_send(telemetry, i + 1, 1, &value), 0);
    }
    lynx_telemetry_close(&telemetry);
    for (int64_t i = 0; i < 2000; i++) {
        lynx_msg_t *msg = s_recv_telemetry(runner);
        assert_int_equal(s_seq(msg), i);
        lynx_msg_destroy(&msg);
    }
}

//  --------------------------------------------------------------------------
//  Never blocks: a full queue drops frames and counts them

static void s_flood(lynx_telemetry_t *telemetry, size_t count, const lynx_telemetry_value_t *values,
                    uint64_t *queued_p)
{
    uint64_t queued = 0;
    for (int i = 0; i < S_FLOOD_FRAMES; i++) {
        errno = 0;
        int rc = lynx_telemetry_send(telemetry, i + 1, count, values);
        if (rc == 0)
            queued++;
        else
            assert_int_equal(errno, EAGAIN);
    }
    *queued_p = queued;
}

static void test_flood_without_a_runner_drops_and_counts(void **state)
{
    (void)state;
    char url[64];
    int holder;
    s_dead_url(url, sizeof url, &holder);
    lynx_telemetry_t *telemetry = lynx_telemetry_new(url);
    assert_true(lynx_telemetry_active(telemetry));
    lynx_telemetry_value_t values[] = {lynx_telemetry_int("i", 1), lynx_telemetry_double("x", 0.5)};
    uint64_t queued = 0;
    s_flood(telemetry, 2, values, &queued);
    uint64_t dropped = lynx_telemetry_dropped(telemetry);
    assert_true(dropped > 0);
    assert_int_equal(queued + dropped, S_FLOOD_FRAMES);
    assert_true(queued <= LYNX_TELEMETRY_SNDHWM); //  the queue is bounded
    assert_int_equal(lynx_telemetry_seq(telemetry), S_FLOOD_FRAMES);
    lynx_telemetry_close(&telemetry);
    close(holder);
}

static void test_flood_into_a_runner_that_never_reads_drops_and_counts(void **state)
{
    (void)state;
    zsock_t *stalled = zsock_new(ZMQ_PULL);
    assert_non_null(stalled);
    zsock_set_linger(stalled, 0);
    zsock_set_rcvhwm(stalled, 10);
    zsock_set_rcvbuf(stalled, 4096);
    int port = zsock_bind(stalled, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    //  ~400 bytes a frame, 40 MB in all: kernel buffers cannot swallow the flood.
    enum { COUNT = 20 };
    char names[COUNT][16];
    lynx_telemetry_value_t values[COUNT];
    for (int i = 0; i < COUNT; i++) {
        snprintf(names[i], sizeof names[i], "channel.%02d", i);
        values[i] = lynx_telemetry_double(names[i], i);
    }
    lynx_telemetry_t *telemetry = lynx_telemetry_new(url);
    uint64_t queued = 0;
    s_flood(telemetry, COUNT, values, &queued);
    assert_true(lynx_telemetry_dropped(telemetry) > 0);
    assert_int_equal(queued + lynx_telemetry_dropped(telemetry), S_FLOOD_FRAMES);
    assert_int_equal(lynx_telemetry_seq(telemetry), S_FLOOD_FRAMES);
    lynx_telemetry_close(&telemetry);
    zsock_destroy(&stalled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_variable_gives_a_silent_no_op),
        cmocka_unit_test(test_empty_variable_is_unset),
        cmocka_unit_test(test_null_client_is_a_no_op),
        cmocka_unit_test(test_malformed_url_gives_a_no_op_that_says_why),
        cmocka_unit_test_setup_teardown(test_from_env_connects_to_the_variable, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_frame_is_the_codec_telemetry_message, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_frame_bytes_match_the_codec, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_seq_counts_every_frame_from_zero, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_now_is_the_wall_clock, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_send_doubles, s_runner_setup, s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_nan_and_infinities_are_sent_as_they_are,
                                        s_runner_setup, s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_a_large_sample, s_runner_setup, s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_bad_samples_are_refused, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_a_frame_over_the_protocol_limit_is_refused,
                                        s_runner_setup, s_runner_teardown),
        cmocka_unit_test_setup_teardown(test_close_delivers_the_frames_still_queued, s_runner_setup,
                                        s_runner_teardown),
        cmocka_unit_test(test_flood_without_a_runner_drops_and_counts),
        cmocka_unit_test(test_flood_into_a_runner_that_never_reads_drops_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
