//  lynx_err: the one error vocabulary of the grid. A lynx_err_t lives on the caller's stack,
//  a handler fills it with lynx_err_set and returns its -1, and the code travels on the wire
//  by name and reaches HTTP clients as a status.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lynx_err.h"

//  Every code with its wire name and HTTP status, as the header documents them.
static const struct {
    lynx_code_t code;
    const char *name;
    int http_status;
} s_codes[] = {
    {LYNX_OK, "ok", 200},
    {LYNX_EINVALID, "invalid_argument", 400},
    {LYNX_ENOTFOUND, "not_found", 404},
    {LYNX_EMETHOD, "method_not_allowed", 405},
    {LYNX_ECONFLICT, "conflict", 409},
    {LYNX_ETOOLARGE, "payload_too_large", 413},
    {LYNX_EMEDIA, "unsupported_media_type", 415},
    {LYNX_EPROTOCOL, "protocol_error", 400},
    {LYNX_EINTERNAL, "internal", 500},
    {LYNX_EUNAVAILABLE, "unavailable", 503},
    {LYNX_ESTORAGE, "storage_full", 507},
    {LYNX_EUNAUTHORIZED, "unauthorized", 401},
    {LYNX_EFORBIDDEN, "forbidden", 403},
};
#define S_CODE_COUNT (sizeof s_codes / sizeof s_codes[0])

static void test_table_covers_every_code(void **state)
{
    (void)state;
    assert_int_equal(S_CODE_COUNT, LYNX_CODE_COUNT);
    for (size_t i = 0; i < S_CODE_COUNT; i++)
        assert_int_equal(s_codes[i].code, (lynx_code_t)i);
}

static void test_names_and_statuses(void **state)
{
    (void)state;
    for (size_t i = 0; i < S_CODE_COUNT; i++) {
        assert_string_equal(lynx_code_name(s_codes[i].code), s_codes[i].name);
        assert_int_equal(lynx_code_http_status(s_codes[i].code), s_codes[i].http_status);
    }
}

//  Names are unique, so a name sent by the broker comes back as the same code.
static void test_names_are_unique_and_round_trip(void **state)
{
    (void)state;
    for (int code = 0; code < LYNX_CODE_COUNT; code++) {
        const char *name = lynx_code_name((lynx_code_t)code);
        assert_non_null(name);
        assert_true(strlen(name) > 0);
        assert_int_equal(lynx_code_from_name(name), code);
        for (int other = code + 1; other < LYNX_CODE_COUNT; other++)
            assert_string_not_equal(name, lynx_code_name((lynx_code_t)other));
    }
}

//  A name we do not know (a newer peer, a typo, nothing at all) reads as internal, and a code
//  outside the enum is named and answered as internal / 500.
static void test_unknown_names_and_codes(void **state)
{
    (void)state;
    const char *unknown[] = {"", "OK", "Not_Found", "not_found ", "bogus", "invalid"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(lynx_code_from_name(unknown[i]), LYNX_EINTERNAL);
    assert_int_equal(lynx_code_from_name(NULL), LYNX_EINTERNAL);

    lynx_code_t outside[] = {LYNX_CODE_COUNT, (lynx_code_t)(LYNX_CODE_COUNT + 7), (lynx_code_t)-1};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        assert_string_equal(lynx_code_name(outside[i]), "internal");
        assert_int_equal(lynx_code_http_status(outside[i]), 500);
    }
}

//  The usual handler shape: `return lynx_err_set (...)`.
static int s_check_runs(long runs, lynx_err_t *err)
{
    if (runs < 1 || runs > 10000000)
        return lynx_err_set(err, LYNX_EINVALID, "config.monte_carlo.runs",
                            "must be between 1 and 10000000, got %ld", runs);
    return 0;
}

static void test_set_and_clear(void **state)
{
    (void)state;
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(err.code, LYNX_OK);
    assert_string_equal(err.field, "");
    assert_string_equal(err.message, "");

    assert_int_equal(s_check_runs(100, &err), 0);
    assert_int_equal(err.code, LYNX_OK);

    assert_int_equal(s_check_runs(0, &err), -1);
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.field, "config.monte_carlo.runs");
    assert_string_equal(err.message, "must be between 1 and 10000000, got 0");

    //  A NULL field means "no field"; a later error replaces the earlier one whole.
    assert_int_equal(lynx_err_set(&err, LYNX_EUNAVAILABLE, NULL, "broker %s did not answer",
                                  "tcp://127.0.0.1:5555"),
                     -1);
    assert_int_equal(err.code, LYNX_EUNAVAILABLE);
    assert_string_equal(err.field, "");
    assert_string_equal(err.message, "broker tcp://127.0.0.1:5555 did not answer");

    lynx_err_clear(&err);
    assert_int_equal(err.code, LYNX_OK);
    assert_string_equal(err.field, "");
    assert_string_equal(err.message, "");
}

//  Over-long fields and messages are cut to fit, always NUL-terminated, never overflowing.
static void test_long_text_is_truncated(void **state)
{
    (void)state;
    char long_text[4 * LYNX_ERR_MESSAGE_MAX];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';

    lynx_err_t err;
    assert_int_equal(lynx_err_set(&err, LYNX_ETOOLARGE, long_text, "%s", long_text), -1);
    assert_int_equal(err.code, LYNX_ETOOLARGE);
    assert_int_equal(strlen(err.field), LYNX_ERR_FIELD_MAX - 1);
    assert_int_equal(strlen(err.message), LYNX_ERR_MESSAGE_MAX - 1);
    assert_memory_equal(err.message, long_text, LYNX_ERR_MESSAGE_MAX - 1);

    //  Exactly at the limit nothing is lost.
    long_text[LYNX_ERR_MESSAGE_MAX - 1] = '\0';
    lynx_err_set(&err, LYNX_ETOOLARGE, NULL, "%s", long_text);
    assert_string_equal(err.message, long_text);
}

//  Callers that do not care about the reason pass NULL.
static void test_null_err_is_safe(void **state)
{
    (void)state;
    assert_int_equal(lynx_err_set(NULL, LYNX_EINTERNAL, "field", "ignored %d", 1), -1);
    assert_int_equal(s_check_runs(0, NULL), -1);
    lynx_err_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_covers_every_code),
        cmocka_unit_test(test_names_and_statuses),
        cmocka_unit_test(test_names_are_unique_and_round_trip),
        cmocka_unit_test(test_unknown_names_and_codes),
        cmocka_unit_test(test_set_and_clear),
        cmocka_unit_test(test_long_text_is_truncated),
        cmocka_unit_test(test_null_err_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
