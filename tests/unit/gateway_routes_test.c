//  gateway_routes: the REST API as a table. An HTTP request (method, path, content type, body)
//  becomes a broker call (op, args, success status) or an error with its HTTP status, and an
//  error becomes the JSON body the client reads.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gateway_routes.h"
#include "lynx_json.h"

#define JSON "application/json"

//  Match a request whose body is a C string (or NULL).
static int s_match(const char *method, const char *path, const char *content_type, const char *body,
                   gateway_call_t *call, lynx_err_t *err)
{
    memset(call, 0, sizeof *call);
    lynx_err_clear(err);
    return gateway_routes_match(method, path, content_type, body, body ? strlen(body) : 0, call,
                                err);
}

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    if (!value)
        fail_msg("bad JSON in test: %s: %s", text, err.message);
    return value;
}

//  Every route, with the args the broker gets and the query arguments it may take. A trailing
//  slash is forgiven. POST routes without a body need no content type.
static void test_routes(void **state)
{
    (void)state;
    static const char *const list_query[] = {"status", "cursor", "limit", NULL};
    static const struct {
        const char *method;
        const char *path;
        const char *content_type;
        const char *body;
        const char *op;
        int status;
        const char *args;
        const char *const *query;
    } cases[] = {
        {"GET", "/healthz", NULL, NULL, "health", 200, "{}", NULL},
        {"GET", "/healthz/", NULL, NULL, "health", 200, "{}", NULL},
        {"POST", "/jobs", JSON, "{\"config\":{\"runs\":3}}", "batch.submit", 201,
         "{\"config\":{\"runs\":3}}", NULL},
        {"POST", "/jobs/", JSON, "{}", "batch.submit", 201, "{}", NULL},
        {"GET", "/batches", NULL, NULL, "batch.list", 200, "{}", list_query},
        {"GET", "/batches/", NULL, NULL, "batch.list", 200, "{}", list_query},
        {"GET", "/batches/b-1", NULL, NULL, "batch.get", 200, "{\"batch_id\":\"b-1\"}", NULL},
        {"GET", "/batches/b-1/", NULL, NULL, "batch.get", 200, "{\"batch_id\":\"b-1\"}", NULL},
        {"GET", "/batches/b-1/results", NULL, NULL, "batch.results", 200, "{\"batch_id\":\"b-1\"}",
         NULL},
        {"GET", "/batches/b-1/results/", NULL, NULL, "batch.results", 200, "{\"batch_id\":\"b-1\"}",
         NULL},
        {"GET", "/batches/b-1/jobs", NULL, NULL, "batch.jobs", 200, "{\"batch_id\":\"b-1\"}",
         list_query},
        {"POST", "/batches/b-1/cancel", NULL, NULL, "batch.cancel", 200, "{\"batch_id\":\"b-1\"}",
         NULL},
        {"GET", "/jobs/3fa85f64-5717-4562-b3fc-2c963f66afa6", NULL, NULL, "job.get", 200,
         "{\"job_id\":\"3fa85f64-5717-4562-b3fc-2c963f66afa6\"}", NULL},
        {"GET", "/jobs/j-9/", NULL, NULL, "job.get", 200, "{\"job_id\":\"j-9\"}", NULL},
        {"GET", "/jobs/j-9/results", NULL, NULL, "job.results", 200, "{\"job_id\":\"j-9\"}", NULL},
        {"GET", "/jobs/j-9/results/", NULL, NULL, "job.results", 200, "{\"job_id\":\"j-9\"}", NULL},
        {"POST", "/jobs/j-9/cancel", "text/plain", "ignored", "job.cancel", 200,
         "{\"job_id\":\"j-9\"}", NULL},
        {"GET", "/runners", NULL, NULL, "runner.list", 200, "{}", NULL},
        {"GET", "/runners/ws-07", NULL, NULL, "runner.get", 200, "{\"runner_id\":\"ws-07\"}", NULL},
        {"POST", "/runners/ws-07/drain", NULL, NULL, "runner.drain", 200,
         "{\"runner_id\":\"ws-07\"}", NULL},
        {"POST", "/runners/ws-07/resume/", NULL, NULL, "runner.resume", 200,
         "{\"runner_id\":\"ws-07\"}", NULL},
        //  "results" is an id like any other where an id is expected.
        {"GET", "/jobs/results", NULL, NULL, "job.get", 200, "{\"job_id\":\"results\"}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gateway_call_t call;
        lynx_err_t err;
        if (s_match(cases[i].method, cases[i].path, cases[i].content_type, cases[i].body, &call,
                    &err))
            fail_msg("%s %s: %s", cases[i].method, cases[i].path, err.message);
        assert_string_equal(call.op, cases[i].op);
        assert_int_equal(call.success_status, cases[i].status);
        lynx_value_t *expected = s_json(cases[i].args);
        if (!lynx_value_equal(call.args, expected)) {
            char *got = lynx_json_dump(call.args, 0);
            fail_msg("%s %s: args %s, expected %s", cases[i].method, cases[i].path, got,
                     cases[i].args);
        }
        lynx_value_destroy(&expected);
        lynx_value_destroy(&call.args);
        size_t count = 0;
        for (; cases[i].query && cases[i].query[count]; count++)
            assert_string_equal(call.query[count], cases[i].query[count]);
        if (cases[i].query)
            assert_null(call.query[count]);
        else
            assert_null(call.query);
    }
}

//  The body need not be NUL-terminated: only body_len bytes are read.
static void test_body_length_is_respected(void **state)
{
    (void)state;
    const char body[] = "{\"runs\":1}trailing garbage";
    gateway_call_t call = {0};
    lynx_err_t err;
    assert_int_equal(
        gateway_routes_match("POST", "/jobs", JSON, body, strlen("{\"runs\":1}"), &call, &err), 0);
    assert_int_equal(lynx_value_get_int(call.args, "runs", 0), 1);
    lynx_value_destroy(&call.args);
}

static void test_unknown_path_is_404(void **state)
{
    (void)state;
    static const char *paths[] = {
        "",
        "/",
        "/nope",
        "/healthzz",
        "/health",
        "/batches//",
        "/batches/b-1/cancel/x",
        "/runners/ws-07/drained",
        "/runner",
        "/batches/b-1//",
        "/batches/b-1/result",
        "/jobs//",
        "/jobs//results",
        "/jobs/j/results/x",
        "/jobs/j/x",
        "//jobs",
        "/JOBS",
        "healthz",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        gateway_call_t call;
        lynx_err_t err;
        if (s_match("GET", paths[i], NULL, NULL, &call, &err) != -1)
            fail_msg("GET '%s' matched %s", paths[i], call.op);
        assert_int_equal(err.code, LYNX_ENOTFOUND);
        assert_int_equal(lynx_code_http_status(err.code), 404);
        assert_non_null(strstr(err.message, paths[i]));
        assert_null(call.args);

        char allowed[64] = "junk";
        gateway_routes_allowed(paths[i], allowed, sizeof allowed);
        assert_string_equal(allowed, "");
    }
}

//  A known path with the wrong method is a 405, and gateway_routes_allowed fills its Allow
//  header.
static void test_wrong_method_is_405(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        const char *path;
        const char *allowed;
    } cases[] = {
        {"POST", "/healthz", "GET"},
        {"DELETE", "/healthz/", "GET"},
        {"GET", "/jobs", "POST"},
        {"GET", "/jobs/", "POST"},
        {"PUT", "/jobs", "POST"},
        {"POST", "/jobs/j-1", "GET"},
        {"DELETE", "/jobs/j-1/results", "GET"},
        {"POST", "/batches/b-1", "GET"},
        {"PATCH", "/batches/b-1/results", "GET"},
        {"POST", "/batches", "GET"},
        {"GET", "/batches/b-1/cancel", "POST"},
        {"GET", "/jobs/j-1/cancel", "POST"},
        {"DELETE", "/runners/ws-07", "GET"},
        {"GET", "/runners/ws-07/drain", "POST"},
        {"get", "/healthz", "GET"}, //  methods are case-sensitive
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gateway_call_t call;
        lynx_err_t err;
        assert_int_equal(s_match(cases[i].method, cases[i].path, JSON, "{}", &call, &err), -1);
        assert_int_equal(err.code, LYNX_EMETHOD);
        assert_int_equal(lynx_code_http_status(err.code), 405);
        assert_non_null(strstr(err.message, cases[i].method));
        assert_non_null(strstr(err.message, cases[i].path));
        assert_null(call.args);

        char allowed[64];
        gateway_routes_allowed(cases[i].path, allowed, sizeof allowed);
        assert_string_equal(allowed, cases[i].allowed);
    }
}

//  POST bodies must be declared as JSON; parameters such as charset are fine and the media
//  type is case-insensitive.
static void test_content_type(void **state)
{
    (void)state;
    static const struct {
        const char *content_type;
        bool accepted;
    } cases[] = {
        {"application/json", true},
        {"application/json; charset=utf-8", true},
        {"application/json;charset=UTF-8", true},
        {"application/json ; charset=utf-8", true},
        {"APPLICATION/JSON", true},
        {"Application/Json; Charset=utf-8", true},
        {NULL, false},
        {"", false},
        {"text/plain", false},
        {"text/json", false},
        {"application/jsonx", false},
        {"application/json-patch+json", false},
        {"application/x-www-form-urlencoded", false},
        {"application", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gateway_call_t call;
        lynx_err_t err;
        int rc = s_match("POST", "/jobs", cases[i].content_type, "{\"runs\":2}", &call, &err);
        const char *shown = cases[i].content_type ? cases[i].content_type : "(none)";
        if (cases[i].accepted) {
            if (rc != 0)
                fail_msg("'%s' refused: %s", shown, err.message);
            assert_string_equal(call.op, "batch.submit");
            assert_int_equal(lynx_value_get_int(call.args, "runs", 0), 2);
            lynx_value_destroy(&call.args);
        } else {
            if (rc != -1)
                fail_msg("'%s' accepted", shown);
            assert_int_equal(err.code, LYNX_EMEDIA);
            assert_int_equal(lynx_code_http_status(err.code), 415);
            assert_non_null(strstr(err.message, "application/json"));
            if (cases[i].content_type)
                assert_non_null(strstr(err.message, cases[i].content_type));
            assert_null(call.args);
        }
    }
    //  GET routes ignore the content type.
    gateway_call_t call;
    lynx_err_t err;
    assert_int_equal(s_match("GET", "/healthz", "text/plain", NULL, &call, &err), 0);
    lynx_value_destroy(&call.args);
}

//  A JSON body must parse and be an object; either failure is a 400 that says why.
static void test_bad_body_is_400(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *reason;
    } cases[] = {
        {"", "invalid JSON body: "},
        {NULL, "invalid JSON body: "},
        {"{", "invalid JSON body: "},
        {"{\"runs\": }", "invalid JSON body: "},
        {"{\"a\":1,\"a\":2}", "invalid JSON body: "}, //  duplicate keys
        {"{} {}", "invalid JSON body: "},
        {"[1, 2]", "request body must be a JSON object"},
        {"\"text\"", "request body must be a JSON object"},
        {"42", "request body must be a JSON object"},
        {"null", "request body must be a JSON object"},
        {"true", "request body must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gateway_call_t call;
        lynx_err_t err;
        if (s_match("POST", "/jobs", JSON, cases[i].body, &call, &err) != -1)
            fail_msg("body '%s' accepted", cases[i].body ? cases[i].body : "(null)");
        assert_int_equal(err.code, LYNX_EINVALID);
        assert_int_equal(lynx_code_http_status(err.code), 400);
        if (strncmp(err.message, cases[i].reason, strlen(cases[i].reason)) != 0)
            fail_msg("body '%s': message '%s'", cases[i].body ? cases[i].body : "(null)",
                     err.message);
        assert_null(call.args);
    }
    //  The parser's position survives in the message.
    gateway_call_t call;
    lynx_err_t err;
    s_match("POST", "/jobs", JSON, "{\n  \"runs\": ,\n}", &call, &err);
    assert_non_null(strstr(err.message, "line 2"));
}

//  Read back an error body and check {"error": {code, message, field}} and "errors".
static lynx_value_t *s_parse_error_json(const lynx_err_t *err, const lynx_value_t *errors)
{
    char *text = gateway_routes_error_json(err, errors);
    assert_non_null(text);
    lynx_err_t parse_err;
    lynx_value_t *root = lynx_json_parse(text, strlen(text), &parse_err);
    if (!root)
        fail_msg("error body is not JSON: %s: %s", text, parse_err.message);
    free(text);
    assert_int_equal(lynx_value_type(root), LYNX_VALUE_MAP);
    assert_string_equal(lynx_value_key_at(root, 0), "error");
    lynx_value_t *detail = lynx_value_get(root, "error");
    assert_int_equal(lynx_value_type(detail), LYNX_VALUE_MAP);
    assert_int_equal(lynx_value_size(detail), 3);
    assert_string_equal(lynx_value_get_string(detail, "code", "?"), lynx_code_name(err->code));
    assert_string_equal(lynx_value_get_string(detail, "message", "?"), err->message);
    lynx_value_t *field = lynx_value_get(detail, "field");
    assert_non_null(field); //  present even when there is no field...
    if (err->field[0])
        assert_string_equal(lynx_value_as_string(field), err->field);
    else
        assert_int_equal(lynx_value_type(field), LYNX_VALUE_NULL); //  ...as null
    return root;
}

static void test_error_json(void **state)
{
    (void)state;
    //  A routing error: no field, no errors array.
    gateway_call_t call;
    lynx_err_t err;
    s_match("GET", "/nope", NULL, NULL, &call, &err);
    lynx_value_t *root = s_parse_error_json(&err, NULL);
    assert_int_equal(lynx_value_size(root), 1);
    assert_string_equal(lynx_value_get_string(lynx_value_get(root, "error"), "code", "?"),
                        "not_found");
    lynx_value_destroy(&root);

    //  A validation error with a field path, and text that needs escaping.
    lynx_err_set(&err, LYNX_EINVALID, "config.monte_carlo.runs",
                 "must be between 1 and 10000000, got \"0\"\n\t\\ \xc3\xa9");
    root = s_parse_error_json(&err, NULL);
    assert_null(lynx_value_get(root, "errors"));
    lynx_value_destroy(&root);

    //  With every validation error listed: "errors" is a copy of what was given.
    lynx_value_t *errors =
        s_json("[{\"field\":\"config.monte_carlo.runs\",\"message\":\"must be at least 1\"},"
               "{\"field\":\"config.timeout_secs\",\"message\":\"must be an integer\"}]");
    lynx_err_set(&err, LYNX_EINVALID, "config.monte_carlo.runs", "must be at least 1");
    root = s_parse_error_json(&err, errors);
    assert_int_equal(lynx_value_size(root), 2);
    assert_string_equal(lynx_value_key_at(root, 1), "errors");
    assert_true(lynx_value_equal(lynx_value_get(root, "errors"), errors));
    lynx_value_destroy(&root);
    //  The caller keeps its array.
    assert_int_equal(lynx_value_size(errors), 2);
    lynx_value_destroy(&errors);

    //  An empty errors array is still written.
    errors = lynx_value_array();
    root = s_parse_error_json(&err, errors);
    assert_int_equal(lynx_value_type(lynx_value_get(root, "errors")), LYNX_VALUE_ARRAY);
    assert_int_equal(lynx_value_size(lynx_value_get(root, "errors")), 0);
    lynx_value_destroy(&root);
    lynx_value_destroy(&errors);

    //  Every code is named as lynx_err names it.
    for (int code = 0; code < LYNX_CODE_COUNT; code++) {
        lynx_err_set(&err, (lynx_code_t)code, NULL, "code %d", code);
        root = s_parse_error_json(&err, NULL);
        lynx_value_destroy(&root);
    }
}

//  A request's query string and headers as gateway_routes_complete reads them: NULL-ended
//  name, value pairs.
typedef struct {
    const char *const *query;
    const char *const *headers;
} s_lookups_t;

static const char *s_find(const char *const *pairs, const char *name)
{
    for (size_t i = 0; pairs && pairs[i]; i += 2)
        if (strcmp(pairs[i], name) == 0)
            return pairs[i + 1];
    return NULL;
}

static const char *s_query(void *request, const char *name)
{
    return s_find(((s_lookups_t *)request)->query, name);
}

static const char *s_header(void *request, const char *name)
{
    return s_find(((s_lookups_t *)request)->headers, name);
}

//  Match method path with body, then complete it from query and headers.
static int s_complete(const char *method, const char *path, const char *body,
                      const char *const *query, const char *const *headers, gateway_call_t *call,
                      const char **key, lynx_err_t *err)
{
    assert_int_equal(s_match(method, path, body ? JSON : NULL, body, call, err), 0);
    s_lookups_t lookups = {query, headers};
    return gateway_routes_complete(call, method, s_query, s_header, &lookups, key, err);
}

//  The route's query arguments reach the broker as strings; others are not passed on. Only
//  the query string asks for a dry run (200, not 201); an Idempotency-Key is a POST's, 1 to 128
//  visible ASCII characters.
static void test_complete(void **state)
{
    (void)state;
    gateway_call_t call;
    lynx_err_t err;
    const char *key = "unset";
    const char *const list[] = {"status", "Running", "limit", "5", "other", "x", NULL};
    assert_int_equal(s_complete("GET", "/batches", NULL, list, NULL, &call, &key, &err), 0);
    lynx_value_t *expected = s_json("{\"status\": \"Running\", \"limit\": \"5\"}");
    assert_true(lynx_value_equal(call.args, expected));
    assert_null(key);
    lynx_value_destroy(&expected);
    lynx_value_destroy(&call.args);

    const char *const dry[] = {"dry_run", "true", NULL};
    const char *const keyed[] = {"Idempotency-Key", "retry-7", NULL};
    assert_int_equal(
        s_complete("POST", "/jobs", "{\"dry_run\": false}", dry, keyed, &call, &key, &err), 0);
    assert_true(lynx_value_get_bool(call.args, "dry_run", false));
    assert_int_equal(call.success_status, 200);
    assert_string_equal(key, "retry-7");
    lynx_value_destroy(&call.args);

    assert_int_equal(
        s_complete("POST", "/jobs", "{\"dry_run\": true}", NULL, NULL, &call, &key, &err), 0);
    assert_null(lynx_value_get(call.args, "dry_run"));
    assert_int_equal(call.success_status, 201);
    lynx_value_destroy(&call.args);

    const char *const maybe[] = {"dry_run", "yes", NULL};
    assert_int_equal(s_complete("POST", "/jobs", "{}", maybe, NULL, &call, &key, &err), -1);
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.message, "dry_run: must be true or false, got 'yes'");
    assert_null(call.args);

    const char *const spaced[] = {"Idempotency-Key", "a b", NULL};
    assert_int_equal(s_complete("POST", "/runners/r1/drain", NULL, NULL, spaced, &call, &key, &err),
                     -1);
    assert_string_equal(err.field, "Idempotency-Key");
    assert_null(call.args);
    assert_null(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_body_length_is_respected),
        cmocka_unit_test(test_unknown_path_is_404),
        cmocka_unit_test(test_wrong_method_is_405),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_bad_body_is_400),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
