//  lynx_token: API tokens as the CLI makes them, the gateway reads them from an Authorization
//  header and the broker checks them by id and SHA-256. Roles, the token's shape, its hash
//  and the Bearer header, each as a table of inputs and what they give.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lynx_token.h"

#define S_LENGTH(array) (sizeof(array) / sizeof(array)[0])

//  A token of the right shape (not one the broker ever issued): id 0123456789ab.
#define S_TOKEN "lynx_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
//  printf %s "$S_TOKEN" | sha256sum
#define S_TOKEN_SHA256 "2cac2f86c18da094de1daf421a86d9cbe2cc2d5f441353d7e561486dfa25502b"

//  --- roles ----------------------------------------------------------------------------------

static void test_role_names_round_trip(void **state)
{
    (void)state;
    static const struct {
        lynx_role_t role;
        const char *name;
    } roles[] = {
        {LYNX_ROLE_READ, "read"},
        {LYNX_ROLE_SUBMIT, "submit"},
        {LYNX_ROLE_ADMIN, "admin"},
    };
    for (size_t i = 0; i < S_LENGTH(roles); i++) {
        assert_string_equal(lynx_role_name(roles[i].role), roles[i].name);
        lynx_role_t parsed = LYNX_ROLE_NONE;
        assert_int_equal(lynx_role_parse(roles[i].name, &parsed), 0);
        assert_int_equal(parsed, roles[i].role);
    }
    //  Roles are ordered: each may do what the ones before it may.
    assert_true(LYNX_ROLE_NONE < LYNX_ROLE_READ);
    assert_true(LYNX_ROLE_READ < LYNX_ROLE_SUBMIT);
    assert_true(LYNX_ROLE_SUBMIT < LYNX_ROLE_ADMIN);

    //  "none" names the role of /healthz; anything outside the enum reads as none too.
    assert_string_equal(lynx_role_name(LYNX_ROLE_NONE), "none");
    assert_string_equal(lynx_role_name((lynx_role_t)(LYNX_ROLE_ADMIN + 1)), "none");
    assert_string_equal(lynx_role_name((lynx_role_t)-1), "none");
}

//  Only the three token roles parse, spelt exactly; the output is left alone on failure.
static void test_role_parse_refuses_other_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"none",  "",       "Read", "ADMIN",    " read",
                                      "read ", "reader", "adm",  "submit\n", "root"};
    for (size_t i = 0; i < S_LENGTH(bad); i++) {
        lynx_role_t parsed = LYNX_ROLE_SUBMIT;
        if (lynx_role_parse(bad[i], &parsed) != -1)
            fail_msg("'%s' parsed as a role", bad[i]);
        assert_int_equal(parsed, LYNX_ROLE_SUBMIT);
    }
    lynx_role_t parsed = LYNX_ROLE_SUBMIT;
    assert_int_equal(lynx_role_parse(NULL, &parsed), -1);
    assert_int_equal(parsed, LYNX_ROLE_SUBMIT);
}

//  --- generate and parse ---------------------------------------------------------------------

static bool s_is_lower_hex(const char *text, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (!strchr("0123456789abcdef", text[i]) || text[i] == '\0')
            return false;
    return true;
}

//  A new token is "lynx_<12 hex>_<64 hex>", its id is the 12 digits, and parse gives it back.
static void test_generate_shape_and_id(void **state)
{
    (void)state;
    char text[LYNX_TOKEN_TEXT_SIZE], id[LYNX_TOKEN_ID_SIZE];
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(lynx_token_generate(text, id, &err), 0);
    assert_int_equal(err.code, LYNX_OK);

    assert_int_equal(strlen(text), LYNX_TOKEN_TEXT_SIZE - 1);
    assert_int_equal(strlen(id), LYNX_TOKEN_ID_SIZE - 1);
    assert_memory_equal(text, "lynx_", 5);
    assert_memory_equal(text + 5, id, 12);
    assert_int_equal(text[17], '_');
    assert_true(s_is_lower_hex(id, 12));
    assert_true(s_is_lower_hex(text + 18, 64));

    char parsed_id[LYNX_TOKEN_ID_SIZE];
    assert_true(lynx_token_parse(text, parsed_id));
    assert_string_equal(parsed_id, id);
}

//  Two tokens share neither id nor secret (the OS's random source, not a counter).
static void test_generate_gives_different_tokens(void **state)
{
    (void)state;
    char first[LYNX_TOKEN_TEXT_SIZE], first_id[LYNX_TOKEN_ID_SIZE];
    char second[LYNX_TOKEN_TEXT_SIZE], second_id[LYNX_TOKEN_ID_SIZE];
    assert_int_equal(lynx_token_generate(first, first_id, NULL), 0);
    assert_int_equal(lynx_token_generate(second, second_id, NULL), 0);
    assert_string_not_equal(first, second);
    assert_string_not_equal(first_id, second_id);
    assert_false(memcmp(first + 18, second + 18, 64) == 0);
}

static void test_parse_accepts_a_well_formed_token(void **state)
{
    (void)state;
    char id[LYNX_TOKEN_ID_SIZE] = "";
    assert_true(lynx_token_parse(S_TOKEN, id));
    assert_string_equal(id, "0123456789ab");
}

//  Anything that is not exactly a token's shape is refused, and the id is not written.
static void test_parse_refuses_other_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *why;
        const char *text;
    } bad[] = {
        {"empty", ""},
        {"no prefix",
         "0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"wrong prefix",
         "lynz_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"prefix in capitals",
         "LYNX_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"one digit short",
         "lynx_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"},
        {"one digit long",
         "lynx_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"},
        {"short id, long secret",
         "lynx_0123456789a_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"},
        {"uppercase hex in the id",
         "lynx_0123456789AB_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"uppercase hex in the secret",
         "lynx_0123456789ab_0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"missing underscore",
         "lynx_0123456789ab00123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"dash for underscore",
         "lynx_0123456789ab-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"not hex",
         "lynx_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"},
        {"a blank inside",
         "lynx_0123456789ab_0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef"},
        {"a bearer header",
         "Bearer lynx_0123456789ab_0123456789abcdef0123456789abcdef0123456789ab"},
    };
    for (size_t i = 0; i < S_LENGTH(bad); i++) {
        char id[LYNX_TOKEN_ID_SIZE] = "untouched";
        if (lynx_token_parse(bad[i].text, id))
            fail_msg("%s: '%s' parsed as a token", bad[i].why, bad[i].text);
        assert_string_equal(id, "untouched");
    }
    char id[LYNX_TOKEN_ID_SIZE] = "untouched";
    assert_false(lynx_token_parse(NULL, id));
    assert_string_equal(id, "untouched");
}

//  --- hash and comparison --------------------------------------------------------------------

//  The stored hash is plain SHA-256 of the whole token, so `sha256sum` agrees with the broker.
static void test_hash_is_sha256_of_the_text(void **state)
{
    (void)state;
    static const struct {
        const char *text, *sha256;
    } known[] = {
        {S_TOKEN, S_TOKEN_SHA256},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    };
    for (size_t i = 0; i < S_LENGTH(known); i++) {
        char hex[LYNX_DIGEST_HEX_SIZE];
        lynx_token_hash(known[i].text, hex);
        assert_string_equal(hex, known[i].sha256);
    }
}

static void test_digest_equal(void **state)
{
    (void)state;
    char hex[LYNX_DIGEST_HEX_SIZE];
    lynx_token_hash(S_TOKEN, hex);
    assert_true(lynx_token_digest_equal(hex, S_TOKEN_SHA256));
    assert_true(lynx_token_digest_equal("", ""));

    //  One digit off (first, last), a prefix, a longer string, case: all differ.
    char first_off[] = S_TOKEN_SHA256, last_off[] = S_TOKEN_SHA256, upper[] = S_TOKEN_SHA256;
    first_off[0] = '3';
    last_off[63] = 'c';
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    assert_false(lynx_token_digest_equal(hex, first_off));
    assert_false(lynx_token_digest_equal(hex, last_off));
    assert_false(lynx_token_digest_equal(hex, upper));
    assert_false(lynx_token_digest_equal(hex, "2cac2f86c18da094"));
    assert_false(lynx_token_digest_equal(hex, S_TOKEN_SHA256 "0"));
    assert_false(lynx_token_digest_equal(hex, ""));
    assert_false(lynx_token_digest_equal("", hex));
}

//  --- Authorization: Bearer ------------------------------------------------------------------

static void test_from_bearer_accepts(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "Bearer " S_TOKEN,           "bearer " S_TOKEN,        "BEARER " S_TOKEN,
        "BeArEr " S_TOKEN,           "  Bearer " S_TOKEN "  ", "Bearer\t" S_TOKEN,
        "\tBearer \t " S_TOKEN "\t", "Bearer    " S_TOKEN,
    };
    for (size_t i = 0; i < S_LENGTH(headers); i++) {
        char token[LYNX_TOKEN_TEXT_SIZE] = "";
        if (lynx_token_from_bearer(headers[i], token, sizeof token) != 0)
            fail_msg("refused '%s'", headers[i]);
        assert_string_equal(token, S_TOKEN);
    }
    //  The header does not judge the token's shape: that is lynx_token_parse's job.
    char token[LYNX_TOKEN_TEXT_SIZE] = "";
    assert_int_equal(lynx_token_from_bearer("Bearer abc", token, sizeof token), 0);
    assert_string_equal(token, "abc");
}

static void test_from_bearer_refuses(void **state)
{
    (void)state;
    static const struct {
        const char *why;
        const char *header;
    } bad[] = {
        {"empty", ""},
        {"blanks only", " \t "},
        {"scheme only", "Bearer"},
        {"scheme and blanks only", "Bearer  \t "},
        {"another scheme", "Basic dXNlcjpwYXNz"},
        {"a token without a scheme", S_TOKEN},
        {"scheme glued to the token", "Bearer" S_TOKEN},
        {"a longer scheme name", "Bearerx " S_TOKEN},
        {"trailing garbage", "Bearer " S_TOKEN " extra"},
        {"two tokens", "Bearer " S_TOKEN "\t" S_TOKEN},
    };
    for (size_t i = 0; i < S_LENGTH(bad); i++) {
        char token[LYNX_TOKEN_TEXT_SIZE] = "untouched";
        if (lynx_token_from_bearer(bad[i].header, token, sizeof token) != -1)
            fail_msg("%s: '%s' accepted as '%s'", bad[i].why, bad[i].header, token);
        assert_string_equal(token, "untouched");
    }
    char token[LYNX_TOKEN_TEXT_SIZE] = "untouched";
    assert_int_equal(lynx_token_from_bearer(NULL, token, sizeof token), -1);
    assert_string_equal(token, "untouched");
}

//  A token must fit with its NUL: size - 1 characters do, size do not (nothing is cut).
static void test_from_bearer_respects_the_buffer(void **state)
{
    (void)state;
    char small[4] = "xyz";
    assert_int_equal(lynx_token_from_bearer("Bearer abc", small, sizeof small), 0);
    assert_string_equal(small, "abc");
    assert_int_equal(lynx_token_from_bearer("Bearer abcd", small, sizeof small), -1);
    assert_string_equal(small, "abc");

    char exact[LYNX_TOKEN_TEXT_SIZE] = "";
    assert_int_equal(lynx_token_from_bearer("Bearer " S_TOKEN, exact, sizeof exact), 0);
    assert_string_equal(exact, S_TOKEN);
    char one_short[LYNX_TOKEN_TEXT_SIZE - 1] = "";
    assert_int_equal(lynx_token_from_bearer("Bearer " S_TOKEN, one_short, sizeof one_short), -1);
    assert_string_equal(one_short, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_names_round_trip),
        cmocka_unit_test(test_role_parse_refuses_other_names),
        cmocka_unit_test(test_generate_shape_and_id),
        cmocka_unit_test(test_generate_gives_different_tokens),
        cmocka_unit_test(test_parse_accepts_a_well_formed_token),
        cmocka_unit_test(test_parse_refuses_other_shapes),
        cmocka_unit_test(test_hash_is_sha256_of_the_text),
        cmocka_unit_test(test_digest_equal),
        cmocka_unit_test(test_from_bearer_accepts),
        cmocka_unit_test(test_from_bearer_refuses),
        cmocka_unit_test(test_from_bearer_respects_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
