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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submitted_by_is_validated_stored_and_shown, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests_name("broker_history", tests, NULL, NULL);
}
