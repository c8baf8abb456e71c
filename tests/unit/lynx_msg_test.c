//  lynx_msg: the wire codec. Every message is one frame holding the msgpack array
//  ["LYNX", 1, command, body]; see proto/PROTOCOL.md.
//
//  Besides the cases below, every file in tests/data/frames/ is a bad frame with the error it
//  must produce, run here as a test case of its own.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_cases.h"
#include "lynx_json.h"
#include "lynx_msg.h"

#ifndef LYNX_TEST_DATA_DIR
#define LYNX_TEST_DATA_DIR "tests/data"
#endif

//  A valid body for every command: the required fields, then the optional ones.
static const struct {
    lynx_msg_id_t id;
    const char *required;
    const char *optional;
} s_fixtures[] = {
    {LYNX_MSG_REGISTER,
     "{\"runner_id\": \"basilisk-runner-01\", \"name\": \"Basilisk Runner 01\","
     " \"capabilities\": {\"max_concurrent_jobs\": 1, \"cpu_cores\": 4, \"memory_gb\": 8.0,"
     " \"gpu_available\": false, \"supported_simulation_types\": [\"basilisk\", \"orbit\"]},"
     " \"engines\": [\"basilisk\"]}",
     "{\"active_jobs\": [{\"job_id\": \"j-1\", \"attempt\": 2}], \"finished_jobs\": [],"
     " \"hostname\": \"ws-07\", \"pid\": 4242}"},
    {LYNX_MSG_REGISTERED,
     "{\"runner_id\": \"basilisk-runner-01\", \"heartbeat_interval_ms\": 2000}", "{}"},
    {LYNX_MSG_HEARTBEAT, "{\"runner_id\": \"basilisk-runner-01\"}", "{\"active_jobs\": 1}"},
    {LYNX_MSG_ASSIGN,
     "{\"job_id\": \"a1b2\", \"batch_id\": \"3fa8\", \"attempt\": 1, \"engine\": \"basilisk\","
     " \"timeout_secs\": 1800, \"run_config\": {\"run_id\": 2,"
     " \"parameters\": {\"eccentricity\": 0.00094, \"inclination_deg\": 34.1},"
     " \"metadata\": {\"sampling_method\": \"latin_hypercube\"}}}",
     "{}"},
    {LYNX_MSG_STARTED, "{\"job_id\": \"a1b2\", \"attempt\": 1}", "{\"pid\": 31337}"},
    {LYNX_MSG_FINISHED,
     "{\"job_id\": \"a1b2\", \"attempt\": 1, \"status\": \"Completed\","
     " \"result\": {\"job_id\": \"a1b2\", \"success\": true, \"execution_time_secs\": 34,"
     " \"output_files\": [\"/tmp/tetryx-runs/a1b2/summary.json\"], \"telemetry_data\": null,"
     " \"metadata\": {\"engine\": \"basilisk\"}, \"error_message\": null}}",
     "{}"},
    {LYNX_MSG_ACK, "{\"job_id\": \"a1b2\", \"attempt\": 1}", "{}"},
    {LYNX_MSG_KILL, "{\"job_id\": \"a1b2\", \"attempt\": 1}", "{\"reason\": \"cancelled\"}"},
    {LYNX_MSG_REQUEST, "{\"corr\": 7, \"op\": \"health\"}", "{\"args\": {}}"},
    {LYNX_MSG_REPLY, "{\"corr\": 7, \"body\": {\"batch_id\": \"3fa8\", \"total_jobs\": 5}}", "{}"},
    {LYNX_MSG_ERROR, "{\"code\": \"not_found\", \"message\": \"no batch 3fa8\"}",
     "{\"corr\": 7, \"field\": \"batch_id\", \"errors\": [{\"field\": \"x\", \"message\": "
     "\"y\"}]}"},
};

#define S_FIXTURES (sizeof s_fixtures / sizeof s_fixtures[0])

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad fixture %s: %s", text, err.message);
    return value;
}

static lynx_value_t *s_body(size_t fixture, bool with_optional)
{
    lynx_value_t *body = s_json(s_fixtures[fixture].required);
    lynx_value_t *optional = s_json(with_optional ? s_fixtures[fixture].optional : "{}");
    for (size_t i = 0; i < lynx_value_size(optional); i++) {
        lynx_value_t *item = lynx_value_dup(lynx_value_at(optional, i));
        assert_int_equal(lynx_value_set(body, lynx_value_key_at(optional, i), &item), 0);
    }
    lynx_value_destroy(&optional);
    return body;
}

//  Same text as JSON: same types (8 is not 8.0 here) and same map order.
static void s_assert_identical(const lynx_value_t *a, const lynx_value_t *b)
{
    char *text_a = lynx_json_dump(a, 0);
    char *text_b = lynx_json_dump(b, 0);
    assert_string_equal(text_a, text_b);
    free(text_a);
    free(text_b);
}

static void s_assert_err(const lynx_err_t *err, const char *field, const char *message)
{
    if (err->code != LYNX_EPROTOCOL || strcmp(err->field, field) != 0 ||
        strcmp(err->message, message) != 0)
        fail_msg("got %s '%s' '%s', expected protocol_error '%s' '%s'", lynx_code_name(err->code),
                 err->field, err->message, field, message);
}

//  Put anything on the wire: pack an envelope we built ourselves and decode it.
static lynx_msg_t *s_decode_value(const lynx_value_t *envelope, lynx_err_t *err)
{
    unsigned char *data;
    size_t size;
    assert_int_equal(lynx_msgpack_pack(envelope, &data, &size), 0);
    lynx_msg_t *msg = lynx_msg_decode(data, size, err);
    free(data);
    return msg;
}

static lynx_msg_t *s_decode_body(const char *command, const lynx_value_t *body, lynx_err_t *err)
{
    lynx_value_t *envelope = s_json("[\"LYNX\", 1]");
    lynx_value_t *name = lynx_value_string(command);
    lynx_value_t *copy = lynx_value_dup(body);
    lynx_value_append(envelope, &name);
    lynx_value_append(envelope, &copy);
    lynx_msg_t *msg = s_decode_value(envelope, err);
    lynx_value_destroy(&envelope);
    return msg;
}

static zframe_t *s_encode_fixture(size_t fixture, bool with_optional)
{
    lynx_msg_t *msg = lynx_msg_new(s_fixtures[fixture].id);
    lynx_value_t *body = s_body(fixture, with_optional);
    assert_int_equal(lynx_msg_set_body(msg, &body), 0);
    lynx_err_t err;
    zframe_t *frame = lynx_msg_encode(msg, &err);
    if (!frame)
        fail_msg("%s: %s: %s", lynx_msg_command(msg), err.field, err.message);
    lynx_msg_destroy(&msg);
    return frame;
}

//  --------------------------------------------------------------------------
//  Well-formed messages

//  Every command survives encode and decode, with and without its optional fields; unknown
//  fields travel along untouched.
static void test_round_trip_every_command(void **state)
{
    (void)state;
    for (size_t i = 0; i < S_FIXTURES; i++) {
        for (int with_optional = 0; with_optional <= 1; with_optional++) {
            lynx_msg_t *msg = lynx_msg_new(s_fixtures[i].id);
            assert_non_null(msg);
            lynx_value_t *body = s_body(i, with_optional);
            lynx_value_set_string(body, "x_future_field", "kept");
            lynx_value_t *expected = lynx_value_dup(body);
            assert_int_equal(lynx_msg_set_body(msg, &body), 0);
            assert_null(body);

            lynx_err_t err;
            zframe_t *frame = lynx_msg_encode(msg, &err);
            assert_non_null(frame);
            lynx_msg_t *copy = lynx_msg_decode(zframe_data(frame), zframe_size(frame), &err);
            if (!copy)
                fail_msg("%s: %s: %s", lynx_msg_command(msg), err.field, err.message);
            assert_int_equal(lynx_msg_id(copy), s_fixtures[i].id);
            assert_string_equal(lynx_msg_command(copy), lynx_msg_id_name(s_fixtures[i].id));
            s_assert_identical(lynx_msg_body(copy), expected);

            zframe_destroy(&frame);
            lynx_msg_destroy(&msg);
            lynx_msg_destroy(&copy);
            lynx_value_destroy(&expected);
        }
    }
}

//  Building a message field by field, as the broker and runner do.
static void test_build_with_setters(void **state)
{
    (void)state;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_KILL);
    lynx_value_t *body = lynx_msg_body(msg);
    lynx_value_set_string(body, "job_id", ""); //  empty strings are strings
    lynx_value_set_int(body, "attempt", INT64_MAX);
    lynx_value_set_string(body, "reason", "early termination: orbit.radius_km < 6371");
    lynx_err_t err;
    zframe_t *frame = lynx_msg_encode(msg, &err);
    lynx_msg_t *copy = lynx_msg_decode(zframe_data(frame), zframe_size(frame), &err);
    assert_non_null(copy);
    assert_string_equal(lynx_value_get_string(lynx_msg_body(copy), "job_id", NULL), "");
    assert_int_equal(lynx_value_get_int(lynx_msg_body(copy), "attempt", 0), INT64_MAX);
    assert_string_equal(lynx_msg_command(copy), "KILL");
    zframe_destroy(&frame);
    lynx_msg_destroy(&msg);
    lynx_msg_destroy(&copy);
}

static void test_api_edges(void **state)
{
    (void)state;
    assert_null(lynx_msg_new((lynx_msg_id_t)0));
    assert_null(lynx_msg_new(LYNX_MSG_COUNT));
    assert_string_equal(lynx_msg_id_name(LYNX_MSG_COUNT), "UNKNOWN");
    assert_string_equal(lynx_msg_id_name(LYNX_MSG_HEARTBEAT), "HEARTBEAT");
    lynx_msg_destroy(NULL);

    //  The body must be a map; a refused body stays with the caller.
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_HEARTBEAT);
    lynx_value_t *array = lynx_value_array();
    assert_int_equal(lynx_msg_set_body(msg, &array), -1);
    assert_non_null(array);
    lynx_value_destroy(&array);

    //  Encoding checks the schema: we never put an invalid message on the wire.
    lynx_err_t err;
    assert_null(lynx_msg_encode(msg, &err));
    s_assert_err(&err, "body.runner_id", "required field missing");
    lynx_value_set_int(lynx_msg_body(msg), "runner_id", 7);
    assert_null(lynx_msg_encode(msg, &err));
    s_assert_err(&err, "body.runner_id", "expected string, got integer");
    lynx_msg_destroy(&msg);
    assert_null(msg);
}

//  --------------------------------------------------------------------------
//  Malformed messages

//  Each envelope, written as JSON, and the error it must produce.
static void test_envelope_errors(void **state)
{
    (void)state;
    const struct {
        const char *envelope;
        const char *field;
        const char *message;
    } cases[] = {
        {"[\"LYNQ\", 1, \"HEARTBEAT\", {\"runner_id\": \"r\"}]", "magic",
         "wrong magic 'LYNQ' (expected 'LYNX')"},
        {"[\"LYNX\\u0001\", 2, \"FOO\", 3]", "magic", "wrong magic 'LYNX?' (expected 'LYNX')"},
        {"[1, 1, \"HEARTBEAT\", {\"runner_id\": \"r\"}]", "magic", "expected string, got integer"},
        {"[\"LYNX\", 2, \"HEARTBEAT\", {\"runner_id\": \"r\"}]", "version",
         "protocol version 2 not supported (expected 1)"},
        {"[\"LYNX\", -1, \"HEARTBEAT\", {\"runner_id\": \"r\"}]", "version",
         "protocol version -1 not supported (expected 1)"},
        {"[\"LYNX\", \"1\", \"HEARTBEAT\", {\"runner_id\": \"r\"}]", "version",
         "expected integer, got string"},
        {"[\"LYNX\", 1.0, \"HEARTBEAT\", {\"runner_id\": \"r\"}]", "version",
         "expected integer, got number"},
        {"[\"LYNX\", 1, \"FOO\", {}]", "command", "unknown command 'FOO'"},
        {"[\"LYNX\", 1, \"heartbeat\", {}]", "command", "unknown command 'heartbeat'"},
        {"[\"LYNX\", 1, \"\", {}]", "command", "unknown command ''"},
        {"[\"LYNX\", 1, null, {}]", "command", "expected string, got null"},
        {"[\"LYNX\", 1, \"HEARTBEAT\", [\"runner_id\", \"r\"]]", "body",
         "expected object, got array"},
        {"[\"LYNX\", 1, \"HEARTBEAT\", null]", "body", "expected object, got null"},
        {"[\"LYNX\", 1, \"HEARTBEAT\"]", "", "message must be an array of 4 elements, got 3"},
        {"[\"LYNX\", 1, \"HEARTBEAT\", {}, {}]", "",
         "message must be an array of 4 elements, got 5"},
        {"{\"magic\": \"LYNX\"}", "", "message must be an array of 4 elements"},
        {"\"LYNX\"", "", "message must be an array of 4 elements"},
        {"[\"LYNX\", 1, \"HEARTBEAT\", {}]", "body.runner_id", "required field missing"},
        {"[\"LYNX\", 1, \"ASSIGN\", {\"job_id\": 42}]", "body.job_id",
         "expected string, got integer"},
        {"[\"LYNX\", 1, \"STARTED\", {\"job_id\": \"j\", \"attempt\": 1.5}]", "body.attempt",
         "expected integer, got number"},
        {"[\"LYNX\", 1, \"KILL\", {\"job_id\": \"j\", \"attempt\": 1, \"reason\": null}]",
         "body.reason", "expected string, got null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_value_t *envelope = s_json(cases[i].envelope);
        lynx_err_t err;
        lynx_msg_t *msg = s_decode_value(envelope, &err);
        if (msg)
            fail_msg("accepted %s", cases[i].envelope);
        s_assert_err(&err, cases[i].field, cases[i].message);
        lynx_value_destroy(&envelope);
    }
}

//  Removing any required field, or giving any field a wrong type, is refused with its path.
static void test_every_field_is_checked(void **state)
{
    (void)state;
    for (size_t i = 0; i < S_FIXTURES; i++) {
        const char *command = lynx_msg_id_name(s_fixtures[i].id);
        lynx_value_t *required = s_json(s_fixtures[i].required);
        lynx_value_t *full = s_body(i, true);
        char field[128];
        lynx_err_t err;
        for (size_t k = 0; k < lynx_value_size(required); k++) {
            const char *key = lynx_value_key_at(required, k);
            lynx_value_t *body = s_body(i, true);
            lynx_value_remove(body, key);
            assert_null(s_decode_body(command, body, &err));
            snprintf(field, sizeof field, "body.%s", key);
            s_assert_err(&err, field, "required field missing");
            lynx_value_destroy(&body);
        }
        //  No field of our schema is a boolean, so true is always the wrong type, except for
        //  REPLY.body which may be anything.
        for (size_t k = 0; k < lynx_value_size(full); k++) {
            const char *key = lynx_value_key_at(full, k);
            lynx_value_t *body = s_body(i, true);
            lynx_value_set_bool(body, key, true);
            lynx_msg_t *msg = s_decode_body(command, body, &err);
            if (s_fixtures[i].id == LYNX_MSG_REPLY && strcmp(key, "body") == 0)
                assert_non_null(msg);
            else {
                assert_null(msg);
                snprintf(field, sizeof field, "body.%s", key);
                assert_string_equal(err.field, field);
                assert_true(strncmp(err.message, "expected ", 9) == 0);
                assert_non_null(strstr(err.message, ", got boolean"));
            }
            lynx_msg_destroy(&msg);
            lynx_value_destroy(&body);
        }
        lynx_value_destroy(&required);
        lynx_value_destroy(&full);
    }
}

//  Every prefix of a valid frame is refused as truncated; an extra byte as trailing.
static void test_truncated_and_trailing(void **state)
{
    (void)state;
    zframe_t *frame = s_encode_fixture(0, true);
    const byte *data = zframe_data(frame);
    size_t size = zframe_size(frame);
    lynx_err_t err;
    assert_null(lynx_msg_decode(data, 0, &err));
    s_assert_err(&err, "", "empty frame");
    assert_null(lynx_msg_decode(NULL, 0, &err));
    for (size_t len = 1; len < size; len++) {
        assert_null(lynx_msg_decode(data, len, &err));
        assert_int_equal(err.code, LYNX_EPROTOCOL);
        if (strncmp(err.message, "truncated msgpack", 17) != 0)
            fail_msg("prefix of %zu bytes: %s", len, err.message);
    }
    byte *longer = malloc(size + 1);
    memcpy(longer, data, size);
    longer[size] = 0xc0;
    assert_null(lynx_msg_decode(longer, size + 1, &err));
    s_assert_err(&err, "", "trailing bytes after message");
    free(longer);
    zframe_destroy(&frame);
}

//  A body may nest 32 levels of maps and arrays (the body itself is level 1), not 33.
static void test_nesting_limit(void **state)
{
    (void)state;
    //  HEARTBEAT {"runner_id": "r", "deep": [[...]]} by hand: no encoder would write level 33.
    const char head[] = "\x94\xa4LYNX\x01\xa9HEARTBEAT\x82\xa9runner_id\xa1r\xa4"
                        "deep";
    for (int levels = LYNX_MSG_MAX_DEPTH; levels <= 1000; levels += levels < 40 ? 1 : 960) {
        byte frame[sizeof head + 1000];
        size_t size = sizeof head - 1;
        memcpy(frame, head, size);
        for (int level = 2; level < levels; level++)
            frame[size++] = 0x91; //  array of one element
        frame[size++] = 0x90;     //  empty array
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_decode(frame, size, &err);
        if (levels == LYNX_MSG_MAX_DEPTH) {
            assert_non_null(msg);
            //  ... and what decodes re-encodes.
            zframe_t *encoded = lynx_msg_encode(msg, &err);
            assert_non_null(encoded);
            zframe_destroy(&encoded);

            //  One level more and the encoder refuses what the decoder would.
            lynx_value_t *deep = lynx_value_array();
            lynx_value_t *inner = lynx_value_dup(lynx_value_get(lynx_msg_body(msg), "deep"));
            lynx_value_append(deep, &inner);
            lynx_value_set(lynx_msg_body(msg), "deep", &deep);
            assert_null(lynx_msg_encode(msg, &err));
            s_assert_err(&err, "body", "nesting deeper than 32");
        } else {
            assert_null(msg);
            s_assert_err(&err, "body", "nesting deeper than 32");
        }
        lynx_msg_destroy(&msg);
    }
}

//  Frames over 64 MiB are refused before any parsing.
static void test_frame_size_limit(void **state)
{
    (void)state;
    byte *data = calloc(1, LYNX_MSG_MAX_BYTES + 1);
    assert_non_null(data);
    lynx_err_t err;
    assert_null(lynx_msg_decode(data, LYNX_MSG_MAX_BYTES + 1, &err));
    s_assert_err(&err, "", "frame of 67108865 bytes exceeds limit of 67108864");
    assert_null(lynx_msgpack_unpack(data, LYNX_MSG_MAX_BYTES + 1, &err));
    s_assert_err(&err, "", "frame of 67108865 bytes exceeds limit of 67108864");
    assert_null(lynx_msg_decode(data, LYNX_MSG_MAX_BYTES, &err));
    s_assert_err(&err, "", "message must be an array of 4 elements");

    //  The encoder refuses to build such a frame.
    memset(data, 'x', LYNX_MSG_MAX_BYTES);
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_set_string(lynx_msg_body(msg), "code", "internal");
    lynx_value_t *message = lynx_value_stringn((const char *)data, LYNX_MSG_MAX_BYTES);
    lynx_value_set(lynx_msg_body(msg), "message", &message);
    free(data);
    assert_null(lynx_msg_encode(msg, &err));
    assert_int_equal(err.code, LYNX_ETOOLARGE);
    assert_non_null(strstr(err.message, "exceeds limit of 67108864"));
    lynx_msg_destroy(&msg);
}

//  --------------------------------------------------------------------------
//  Garbage: nothing crashes or leaks, and whatever decodes also re-encodes identically.

static uint64_t s_random(uint64_t *state)
{
    //  xorshift64*: fixed seed, same cases on every machine.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

static byte s_random_byte(uint64_t *rng)
{
    static const byte interesting[] = {0x00, 0x01, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x94,
                                       0x9f, 0xa0, 0xa4, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3,
                                       0xc4, 0xc7, 0xca, 0xcb, 0xcf, 0xd3, 0xd4, 0xd8,
                                       0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    uint64_t r = s_random(rng);
    return r & 1 ? interesting[(r >> 8) % sizeof interesting] : (byte)(r >> 16);
}

static void s_try_decode(const byte *data, size_t size, int *accepted)
{
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_decode(data, size, &err);
    if (msg) {
        (*accepted)++;
        zframe_t *frame = lynx_msg_encode(msg, &err);
        assert_non_null(frame);
        lynx_msg_t *copy = lynx_msg_decode(zframe_data(frame), zframe_size(frame), &err);
        assert_non_null(copy);
        s_assert_identical(lynx_msg_body(msg), lynx_msg_body(copy));
        zframe_destroy(&frame);
        lynx_msg_destroy(&copy);
        lynx_msg_destroy(&msg);
    } else
        assert_int_not_equal(err.code, LYNX_OK);
    lynx_value_t *value = lynx_msgpack_unpack(data, size, NULL);
    lynx_value_destroy(&value);
}

static void test_fuzz(void **state)
{
    (void)state;
    uint64_t rng = 0x1ea5e5eedULL;
    byte buffer[512];
    int accepted = 0;
    //  Random bytes.
    for (int round = 0; round < 2000; round++) {
        size_t size = s_random(&rng) % 48;
        for (size_t i = 0; i < size; i++)
            buffer[i] = s_random_byte(&rng);
        s_try_decode(buffer, size, &accepted);
    }
    //  A valid envelope head followed by random bytes.
    for (int round = 0; round < 2000; round++) {
        const char *command = lynx_msg_id_name(s_random(&rng) % LYNX_MSG_COUNT);
        size_t size = (size_t)snprintf((char *)buffer, sizeof buffer, "\x94\xa4LYNX\x01%c%s",
                                       (char)(0xa0 | strlen(command)), command);
        size_t tail = s_random(&rng) % 64;
        for (size_t i = 0; i < tail; i++)
            buffer[size++] = s_random_byte(&rng);
        s_try_decode(buffer, size, &accepted);
    }
    //  Valid frames with a few bytes overwritten, inserted, deleted or cut off.
    for (int round = 0; round < 3000; round++) {
        zframe_t *frame = s_encode_fixture(s_random(&rng) % S_FIXTURES, s_random(&rng) & 1);
        size_t size = zframe_size(frame);
        assert_true(size < sizeof buffer - 8);
        memcpy(buffer, zframe_data(frame), size);
        zframe_destroy(&frame);
        int mutations = 1 + (int)(s_random(&rng) % 4);
        for (int m = 0; m < mutations && size > 0; m++) {
            size_t at = s_random(&rng) % size;
            switch (s_random(&rng) % 4) {
            case 0:
                buffer[at] = s_random_byte(&rng);
                break;
            case 1:
                memmove(buffer + at + 1, buffer + at, size - at);
                buffer[at] = s_random_byte(&rng);
                size++;
                break;
            case 2:
                memmove(buffer + at, buffer + at + 1, size - at - 1);
                size--;
                break;
            default:
                size = at;
            }
        }
        s_try_decode(buffer, size, &accepted);
    }
    //  Some mutations keep a valid message (a changed string byte, say).
    print_message("fuzz: %d of 7000 inputs decoded\n", accepted);
    assert_true(accepted > 0);
}

//  --------------------------------------------------------------------------
//  Sockets: a runner's DEALER talks to the broker's ROUTER.

static void test_send_recv(void **state)
{
    (void)state;
    zsock_t *router = zsock_new_router("inproc://lynx_msg_test");
    zsock_t *dealer = zsock_new_dealer("inproc://lynx_msg_test");
    assert_non_null(router);
    assert_non_null(dealer);
    //  A deadline against a hang, not a wait: every message below is already on its way.
    zsock_set_rcvtimeo(router, 5000);
    zsock_set_rcvtimeo(dealer, 5000);
    lynx_err_t err;

    //  The runner registers; the broker learns its routing id and answers on it.
    lynx_msg_t *hello = lynx_msg_new(LYNX_MSG_REGISTER);
    lynx_value_t *body = s_body(0, false);
    lynx_msg_set_body(hello, &body);
    assert_int_equal(lynx_msg_send(&hello, dealer, NULL, &err), 0);
    assert_null(hello);
    zframe_t *runner = NULL;
    lynx_msg_t *received = lynx_msg_recv(router, &runner, &err);
    assert_non_null(received);
    assert_non_null(runner);
    assert_int_equal(lynx_msg_id(received), LYNX_MSG_REGISTER);
    assert_string_equal(lynx_value_get_string(lynx_msg_body(received), "runner_id", NULL),
                        "basilisk-runner-01");
    lynx_msg_destroy(&received);

    lynx_msg_t *welcome = lynx_msg_new(LYNX_MSG_REGISTERED);
    lynx_value_set_string(lynx_msg_body(welcome), "runner_id", "basilisk-runner-01");
    lynx_value_set_int(lynx_msg_body(welcome), "heartbeat_interval_ms", 2000);
    assert_int_equal(lynx_msg_send(&welcome, router, runner, &err), 0);
    received = lynx_msg_recv(dealer, NULL, &err);
    assert_non_null(received);
    assert_int_equal(lynx_msg_id(received), LYNX_MSG_REGISTERED);
    lynx_msg_destroy(&received);

    //  A multipart message with 3 payload frames is consumed whole and refused; the routing
    //  id is still reported so the broker can answer.
    zmsg_t *bad = zmsg_new();
    zmsg_addstr(bad, "one");
    zmsg_addstr(bad, "two");
    zmsg_addstr(bad, "three");
    assert_int_equal(zmsg_send(&bad, dealer), 0);
    zframe_t *sender = NULL;
    assert_null(lynx_msg_recv(router, &sender, &err));
    s_assert_err(&err, "", "expected 1 payload frame, got 3");
    assert_true(zframe_eq(sender, runner));
    zframe_destroy(&sender);

    //  A single frame of garbage: refused, answered with an ERROR.
    assert_int_equal(zstr_send(dealer, "hello"), 0);
    assert_null(lynx_msg_recv(router, &sender, &err));
    s_assert_err(&err, "", "message must be an array of 4 elements");
    assert_true(zframe_eq(sender, runner));
    lynx_msg_t *error = lynx_msg_new(LYNX_MSG_ERROR);
    lynx_value_set_string(lynx_msg_body(error), "code", lynx_code_name(err.code));
    lynx_value_set_string(lynx_msg_body(error), "message", err.message);
    assert_int_equal(lynx_msg_send(&error, router, sender, &err), 0);
    zframe_destroy(&sender);
    received = lynx_msg_recv(dealer, NULL, &err);
    assert_non_null(received);
    assert_string_equal(lynx_value_get_string(lynx_msg_body(received), "code", NULL),
                        "protocol_error");
    lynx_msg_destroy(&received);

    //  Nothing of the bad messages is left: the next message arrives intact.
    lynx_msg_t *beat = lynx_msg_new(LYNX_MSG_HEARTBEAT);
    lynx_value_set_string(lynx_msg_body(beat), "runner_id", "basilisk-runner-01");
    assert_int_equal(lynx_msg_send(&beat, dealer, NULL, &err), 0);
    received = lynx_msg_recv(router, &sender, &err);
    assert_non_null(received);
    assert_int_equal(lynx_msg_id(received), LYNX_MSG_HEARTBEAT);
    lynx_msg_destroy(&received);
    zframe_destroy(&sender);

    //  On the DEALER side, two payload frames are refused the same way.
    bad = zmsg_new();
    zframe_t *envelope = zframe_dup(runner);
    zmsg_append(bad, &envelope);
    zmsg_addstr(bad, "a");
    zmsg_addstr(bad, "b");
    assert_int_equal(zmsg_send(&bad, router), 0);
    assert_null(lynx_msg_recv(dealer, NULL, &err));
    s_assert_err(&err, "", "expected 1 payload frame, got 2");

    //  A message that does not encode is not sent, and is destroyed all the same.
    lynx_msg_t *invalid = lynx_msg_new(LYNX_MSG_ACK);
    assert_int_equal(lynx_msg_send(&invalid, dealer, NULL, &err), -1);
    assert_null(invalid);
    s_assert_err(&err, "body.job_id", "required field missing");

    //  Nothing to receive: the timeout is reported, not mistaken for a bad message.
    zsock_set_rcvtimeo(dealer, 0);
    assert_null(lynx_msg_recv(dealer, NULL, &err));
    assert_int_equal(err.code, LYNX_EUNAVAILABLE);

    zframe_destroy(&runner);
    zsock_destroy(&dealer);
    zsock_destroy(&router);
}

//  --------------------------------------------------------------------------
//  Golden bad frames from tests/data/frames (format in its README.md)

typedef struct {
    byte data[4096];
    size_t size;
    char field[LYNX_ERR_FIELD_MAX];
    char message[LYNX_ERR_MESSAGE_MAX];
} s_golden_t;

static void s_load_golden(const char *path, s_golden_t *golden)
{
    FILE *file = fopen(path, "r");
    if (!file)
        fail_msg("cannot open %s", path);
    memset(golden, 0, sizeof *golden);
    char line[1024];
    while (fgets(line, sizeof line, file)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "hex:", 4) == 0) {
            char *cursor = line + 4;
            unsigned int byte_value;
            int used;
            while (sscanf(cursor, " %2x%n", &byte_value, &used) == 1) {
                assert_true(golden->size < sizeof golden->data);
                golden->data[golden->size++] = (byte)byte_value;
                cursor += used;
            }
        } else if (strncmp(line, "field:", 6) == 0)
            snprintf(golden->field, sizeof golden->field, "%s", line + 6 + strspn(line + 6, " "));
        else if (strncmp(line, "message:", 8) == 0)
            snprintf(golden->message, sizeof golden->message, "%s",
                     line + 8 + strspn(line + 8, " "));
    }
    fclose(file);
    if (!golden->message[0])
        fail_msg("%s: no message: line", path);
}

static void test_golden_frame(void **state)
{
    static s_golden_t golden;
    s_load_golden(*state, &golden);
    lynx_err_t err;
    lynx_msg_t *msg = lynx_msg_decode(golden.data, golden.size, &err);
    if (msg)
        fail_msg("%s was accepted", (const char *)*state);
    s_assert_err(&err, golden.field, golden.message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_command),
        cmocka_unit_test(test_build_with_setters),
        cmocka_unit_test(test_api_edges),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_every_field_is_checked),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_frame_size_limit),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_send_recv),
    };
    int failures = cmocka_run_group_tests(tests, NULL, NULL);
    return failures + data_cases_run("golden_frames", LYNX_TEST_DATA_DIR "/frames", ".frame",
                                     test_golden_frame);
}
