//  broker_tokens: API tokens as `lynx-broker token` creates and revokes them and the gateway's
//  token.verify checks them, over a real store in a fresh directory (broker_store_fixture.h).
//  The caller presents a token's id and the SHA-256 of its text, never the text itself.
#include "broker_store_fixture.h"

#include "broker_tokens.h"
#include "lynx_time.h"

#define S_REFUSED "invalid or revoked token"

//  A token made by create, with what a client derives from it.
typedef struct {
    char text[LYNX_TOKEN_TEXT_SIZE];
    char id[LYNX_TOKEN_ID_SIZE];
    char hash[LYNX_DIGEST_HEX_SIZE];
} s_token_t;

static s_token_t s_create(broker_store_t *store, const char *name, const char *role)
{
    s_token_t token;
    lynx_err_t err;
    lynx_err_clear(&err);
    if (broker_tokens_create(store, name, role, token.text, &err))
        fail_msg("create %s: %s", name, err.message);
    assert_true(lynx_token_parse(token.text, token.id));
    lynx_token_hash(token.text, token.hash);
    return token;
}

//  The stored row, as the store has it.
static broker_token_rec_t s_row(broker_store_t *store, const char *id)
{
    broker_token_rec_t row;
    assert_int_equal(broker_store_get_token(store, id, &row), 0);
    return row;
}

static void s_assert_refused(broker_store_t *store, const char *id, const char *hash)
{
    broker_token_rec_t token;
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(broker_tokens_verify(store, id, hash, &token, &err), -1);
    assert_int_equal(err.code, LYNX_EUNAUTHORIZED);
    //  One message whatever the reason: the answer does not tell which ids exist.
    assert_string_equal(err.message, S_REFUSED);
}

//  --- create and verify ----------------------------------------------------------------------

static void test_create_then_verify(void **state)
{
    s_fixture_t *fx = *state;
    int64_t before_ms = lynx_time_now_ms();
    s_token_t made = s_create(fx->store, "ci-bot", "submit");

    broker_token_rec_t token;
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    assert_string_equal(token.id, made.id);
    assert_string_equal(token.name, "ci-bot");
    assert_string_equal(token.role, "submit");
    assert_string_equal(token.hash, made.hash);
    assert_true(token.created_at_ms >= before_ms);
    assert_true(token.created_at_ms <= lynx_time_now_ms());
    assert_int_equal(token.revoked_at_ms, 0);

    //  Every role is stored by its name; a name may use letters, digits, '.', '_' and '-'.
    static const char *const roles[] = {"read", "submit", "admin"};
    static const char *const names[] = {"Grafana.read_1", "ci-bot.2", "ADMIN_3"};
    for (size_t i = 0; i < S_LENGTH(roles); i++) {
        s_token_t other = s_create(fx->store, names[i], roles[i]);
        assert_int_equal(broker_tokens_verify(fx->store, other.id, other.hash, &token, &err), 0);
        assert_string_equal(token.name, names[i]);
        assert_string_equal(token.role, roles[i]);
    }
    //  64 characters is the longest name.
    char longest[65];
    memset(longest, 'n', 64);
    longest[64] = '\0';
    s_token_t other = s_create(fx->store, longest, "read");
    assert_string_equal(s_row(fx->store, other.id).name, longest);
}

//  Bad input names the flag at fault, in the field and at the start of the message.
static void test_create_validates_name_and_role(void **state)
{
    s_fixture_t *fx = *state;
    char too_long[66];
    memset(too_long, 'n', 65);
    too_long[65] = '\0';
    static const struct {
        const char *name, *role, *field;
    } cases[] = {
        {NULL, "read", "--name"},         {"", "read", "--name"},
        {"has space", "read", "--name"},  {"a/b", "read", "--name"},
        {"semi;colon", "read", "--name"}, {"caf\xc3\xa9", "read", "--name"},
        {"ok", NULL, "--role"},           {"ok", "", "--role"},
        {"ok", "owner", "--role"},        {"ok", "Admin", "--role"},
        {"ok", "none", "--role"},         {"", "owner", "--name"}, //  the name is checked first
    };
    for (size_t i = 0; i < S_LENGTH(cases); i++) {
        char text[LYNX_TOKEN_TEXT_SIZE];
        lynx_err_t err;
        lynx_err_clear(&err);
        if (broker_tokens_create(fx->store, cases[i].name, cases[i].role, text, &err) != -1)
            fail_msg("created name='%s' role='%s'", cases[i].name ? cases[i].name : "(null)",
                     cases[i].role ? cases[i].role : "(null)");
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_string_equal(err.field, cases[i].field);
        assert_memory_equal(err.message, cases[i].field, strlen(cases[i].field));
    }
    char text[LYNX_TOKEN_TEXT_SIZE];
    lynx_err_t err;
    assert_int_equal(broker_tokens_create(fx->store, too_long, "read", text, &err), -1);
    assert_string_equal(err.field, "--name");
    assert_int_equal(broker_tokens_create(fx->store, "ok", "owner", text, &err), -1);
    assert_non_null(strstr(err.message, "owner")); //  says what it got

    //  None of the refused tokens reached the store.
    assert_int_equal(broker_store_count_live_tokens(fx->store, "ok"), 0);
}

//  A live name is unique; once revoked, the name can be given to a new token, and only the
//  new token is accepted.
static void test_names_are_unique_among_live_tokens(void **state)
{
    s_fixture_t *fx = *state;
    s_token_t first = s_create(fx->store, "ci", "submit");

    char text[LYNX_TOKEN_TEXT_SIZE];
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(broker_tokens_create(fx->store, "ci", "admin", text, &err), -1);
    assert_int_equal(err.code, LYNX_ECONFLICT);
    assert_string_equal(err.field, "--name");
    assert_non_null(strstr(err.message, "'ci'"));
    assert_int_equal(broker_store_count_live_tokens(fx->store, "ci"), 1);

    lynx_err_clear(&err);
    assert_int_equal(broker_tokens_revoke(fx->store, "ci", &err), 1);
    s_token_t second = s_create(fx->store, "ci", "admin");
    assert_string_not_equal(second.id, first.id);

    broker_token_rec_t token;
    s_assert_refused(fx->store, first.id, first.hash);
    assert_int_equal(broker_tokens_verify(fx->store, second.id, second.hash, &token, &err), 0);
    assert_string_equal(token.role, "admin");
}

//  Wrong hash, unknown id, revoked token, nothing at all: refused alike.
static void test_verify_refuses(void **state)
{
    s_fixture_t *fx = *state;
    s_token_t good = s_create(fx->store, "good", "read");
    s_token_t other = s_create(fx->store, "other", "admin");
    s_token_t gone = s_create(fx->store, "gone", "admin");
    lynx_err_t err;
    assert_int_equal(broker_tokens_revoke(fx->store, "gone", &err), 1);

    //  The hash of another token, of the token's id alone, a digit changed, in capitals.
    char id_hash[LYNX_DIGEST_HEX_SIZE], changed[LYNX_DIGEST_HEX_SIZE], upper[LYNX_DIGEST_HEX_SIZE];
    lynx_token_hash(good.id, id_hash);
    snprintf(changed, sizeof changed, "%s", good.hash);
    changed[10] = changed[10] == '0' ? '1' : '0';
    snprintf(upper, sizeof upper, "%s", good.hash);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    bool has_letter = strcmp(upper, good.hash) != 0;

    s_assert_refused(fx->store, good.id, other.hash);
    s_assert_refused(fx->store, good.id, id_hash);
    s_assert_refused(fx->store, good.id, changed);
    if (has_letter)
        s_assert_refused(fx->store, good.id, upper);
    s_assert_refused(fx->store, good.id, "");
    s_assert_refused(fx->store, good.id, NULL);
    s_assert_refused(fx->store, "000000000000", good.hash);
    s_assert_refused(fx->store, "", good.hash);
    s_assert_refused(fx->store, NULL, good.hash);
    s_assert_refused(fx->store, other.id, good.hash);
    s_assert_refused(fx->store, gone.id, gone.hash);

    //  The refusals did not disturb the good one.
    broker_token_rec_t token;
    assert_int_equal(broker_tokens_verify(fx->store, good.id, good.hash, &token, &err), 0);
    assert_string_equal(token.name, "good");
}

//  --- revoke ---------------------------------------------------------------------------------

static void test_revoke_counts(void **state)
{
    s_fixture_t *fx = *state;
    s_token_t keep = s_create(fx->store, "keep", "read");
    s_token_t drop = s_create(fx->store, "drop", "read");
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(broker_tokens_revoke(fx->store, "nobody", &err), 0);
    assert_int_equal(broker_tokens_revoke(fx->store, NULL, &err), 0);
    assert_int_equal(broker_tokens_revoke(fx->store, "", &err), 0);

    int64_t before_ms = lynx_time_now_ms();
    assert_int_equal(broker_tokens_revoke(fx->store, "drop", &err), 1);
    assert_int_equal(broker_tokens_revoke(fx->store, "drop", &err), 0); //  already revoked
    assert_int_equal(err.code, LYNX_OK);

    broker_token_rec_t row = s_row(fx->store, drop.id);
    assert_true(row.revoked_at_ms >= before_ms);
    assert_true(row.revoked_at_ms <= lynx_time_now_ms());
    assert_int_equal(s_row(fx->store, keep.id).revoked_at_ms, 0);

    broker_token_rec_t token;
    assert_int_equal(broker_tokens_verify(fx->store, keep.id, keep.hash, &token, &err), 0);
    s_assert_refused(fx->store, drop.id, drop.hash);

    //  A name reused after a revocation: revoking it again revokes the new token only.
    s_create(fx->store, "drop", "admin");
    assert_int_equal(broker_tokens_revoke(fx->store, "drop", &err), 1);
    assert_int_equal(broker_store_count_live_tokens(fx->store, "drop"), 0);
}

//  --- what the store keeps -------------------------------------------------------------------

typedef struct {
    const char *text;   //  the token text, which must appear nowhere
    const char *secret; //  its secret part alone
    size_t rows;
} s_scan_t;

static void s_assert_absent(const char *field, const s_scan_t *scan)
{
    assert_string_not_equal(field, scan->text);
    assert_null(strstr(field, scan->text));
    assert_null(strstr(field, scan->secret));
}

static int s_scan_row(const broker_token_rec_t *token, void *arg)
{
    s_scan_t *scan = arg;
    s_assert_absent(token->id, scan);
    s_assert_absent(token->name, scan);
    s_assert_absent(token->role, scan);
    s_assert_absent(token->hash, scan);
    scan->rows++;
    return 0;
}

//  Only the SHA-256 is stored: reading every row back finds neither the token nor its secret.
static void test_store_keeps_only_the_hash(void **state)
{
    s_fixture_t *fx = *state;
    s_token_t made = s_create(fx->store, "ci", "admin");
    broker_token_rec_t row = s_row(fx->store, made.id);
    assert_string_equal(row.hash, made.hash);
    assert_string_equal(row.name, "ci");
    assert_string_equal(row.role, "admin");

    s_scan_t scan = {.text = made.text, .secret = made.text + 18};
    assert_int_equal(broker_store_foreach_token(fx->store, s_scan_row, &scan), 0);
    assert_int_equal(scan.rows, 1);

    //  Also after a use and a revocation rewrote the row.
    broker_token_rec_t token;
    lynx_err_t err;
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    assert_int_equal(broker_tokens_revoke(fx->store, "ci", &err), 1);
    scan.rows = 0;
    assert_int_equal(broker_store_foreach_token(fx->store, s_scan_row, &scan), 0);
    assert_int_equal(scan.rows, 1);
}

//  --- last use -------------------------------------------------------------------------------

//  A verify records the time of use, at most once a minute (a busy client does not write to the
//  store on every request).
static void test_last_use_is_recorded(void **state)
{
    s_fixture_t *fx = *state;
    s_token_t made = s_create(fx->store, "ci", "read");
    assert_int_equal(s_row(fx->store, made.id).last_used_at_ms, 0); //  never used

    int64_t before_ms = lynx_time_now_ms();
    broker_token_rec_t token;
    lynx_err_t err;
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    int64_t used_ms = s_row(fx->store, made.id).last_used_at_ms;
    assert_true(used_ms >= before_ms);
    assert_true(used_ms <= lynx_time_now_ms());
    assert_int_equal(token.last_used_at_ms, used_ms);

    //  Used again at once: not written again.
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    assert_int_equal(s_row(fx->store, made.id).last_used_at_ms, used_ms);

    //  Last used half a minute ago: still not written.
    int64_t half_minute_ago = lynx_time_now_ms() - 30000;
    assert_int_equal(broker_store_touch_token(fx->store, made.id, half_minute_ago), 0);
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    assert_int_equal(s_row(fx->store, made.id).last_used_at_ms, half_minute_ago);

    //  Last used two minutes ago: this use is recorded.
    assert_int_equal(broker_store_touch_token(fx->store, made.id, lynx_time_now_ms() - 120000), 0);
    before_ms = lynx_time_now_ms();
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    assert_true(s_row(fx->store, made.id).last_used_at_ms >= before_ms);

    //  A refused attempt is not a use.
    s_token_t idle = s_create(fx->store, "idle", "read");
    s_assert_refused(fx->store, idle.id, made.hash);
    assert_int_equal(s_row(fx->store, idle.id).last_used_at_ms, 0);
}

//  Tokens outlive the broker: a reopened store still verifies them.
static void test_tokens_survive_a_reopen(void **state)
{
    s_fixture_t *fx = *state;
    s_token_t made = s_create(fx->store, "ci", "submit");
    broker_store_destroy(&fx->store);
    lynx_err_t err;
    fx->store = broker_store_new(fx->data_dir, &err);
    assert_non_null(fx->store);
    broker_token_rec_t token;
    assert_int_equal(broker_tokens_verify(fx->store, made.id, made.hash, &token, &err), 0);
    assert_string_equal(token.role, "submit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_verify, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_create_validates_name_and_role, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_names_are_unique_among_live_tokens, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_verify_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_revoke_counts, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_store_keeps_only_the_hash, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_last_use_is_recorded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tokens_survive_a_reopen, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
