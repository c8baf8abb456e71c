//  lynx_json: JSON text <-> lynx_value.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lynx_json.h"

//  The run configuration a scenario reads from TETRYX_RUN_CONFIG (tutorial-basic-orbit).
static const char s_run_config[] = "{\n"
                                   "  \"run_id\": 2,\n"
                                   "  \"parameters\": {\n"
                                   "    \"semi_major_axis_m\": 6983421.7,\n"
                                   "    \"eccentricity\": 0.00094,\n"
                                   "    \"inclination_deg\": 34.1\n"
                                   "  },\n"
                                   "  \"metadata\": {\n"
                                   "    \"simulation_name\": \"Basic Orbit Tutorial\",\n"
                                   "    \"duration_minutes\": 90,\n"
                                   "    \"sampling_method\": \"latin_hypercube\"\n"
                                   "  }\n"
                                   "}";

static lynx_value_t *s_parse(const char *text, lynx_err_t *err)
{
    return lynx_json_parse(text, strlen(text), err);
}

//  Integers stay integers, reals become doubles, objects keep their order.
static void test_parse_run_config(void **state)
{
    (void)state;
    lynx_err_t err;
    lynx_value_t *config = s_parse(s_run_config, &err);
    assert_non_null(config);
    assert_int_equal(lynx_value_type(lynx_value_get(config, "run_id")), LYNX_VALUE_INT);
    assert_int_equal(lynx_value_get_int(config, "run_id", 0), 2);
    lynx_value_t *parameters = lynx_value_get(config, "parameters");
    assert_int_equal(lynx_value_type(lynx_value_get(parameters, "eccentricity")),
                     LYNX_VALUE_DOUBLE);
    assert_true(lynx_value_get_double(parameters, "semi_major_axis_m", 0) == 6983421.7);
    assert_string_equal(lynx_value_key_at(parameters, 0), "semi_major_axis_m");
    assert_string_equal(lynx_value_key_at(parameters, 2), "inclination_deg");
    assert_string_equal(
        lynx_value_as_string(lynx_value_get_path(config, "metadata.sampling_method")),
        "latin_hypercube");
    lynx_value_destroy(&config);
}

//  Any JSON value may stand at the top, not only objects and arrays.
static void test_parse_scalars(void **state)
{
    (void)state;
    const struct {
        const char *text;
        lynx_value_type_t type;
    } cases[] = {
        {"null", LYNX_VALUE_NULL},
        {"true", LYNX_VALUE_BOOL},
        {"-7", LYNX_VALUE_INT},
        {"1.0", LYNX_VALUE_DOUBLE},
        {"1e3", LYNX_VALUE_DOUBLE},
        {"\"x\"", LYNX_VALUE_STRING},
        {"[]", LYNX_VALUE_ARRAY},
        {" {} ", LYNX_VALUE_MAP},
        {"9223372036854775807", LYNX_VALUE_INT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_value_t *value = s_parse(cases[i].text, NULL);
        assert_non_null(value);
        assert_int_equal(lynx_value_type(value), cases[i].type);
        lynx_value_destroy(&value);
    }
    //  The text need not be NUL-terminated.
    lynx_value_t *value = lynx_json_parse("[1,2]garbage", 5, NULL);
    assert_int_equal(lynx_value_size(value), 2);
    lynx_value_destroy(&value);
}

//  Errors name the line and column, then jansson's reason.
static void test_parse_errors(void **state)
{
    (void)state;
    const struct {
        const char *text;
        const char *message; //  prefix of the expected message
        const char *reason;  //  part of it
    } cases[] = {
        {"{\"runs\": }", "line 1 column 10: ", "unexpected token"},
        {"{\n  \"a\": 1,\n  \"a\": 2\n}", "line 3 column ", "duplicate object key"},
        {"\"a\\u0000b\"", "line 1 column ", "\\u0000 is not allowed"},
        {"[1, 2", "line 1 column ", "']' expected"},
        {"", "line 1 column 0: ", "end of file"},
        {"99999999999999999999", "line 1 column ", "too big"},
        {"{} {}", "line 1 column ", "end of file expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_err_t err;
        lynx_value_t *value = s_parse(cases[i].text, &err);
        assert_null(value);
        assert_int_equal(err.code, LYNX_EINVALID);
        if (strncmp(err.message, cases[i].message, strlen(cases[i].message)) != 0 ||
            !strstr(err.message, cases[i].reason))
            fail_msg("%s: unexpected message '%s'", cases[i].text, err.message);
    }
}

//  Nesting is limited to 64 levels, with the position of the bracket that goes too deep.
static void test_nesting_limit(void **state)
{
    (void)state;
    char text[2 * 65 + 1];
    for (int depth = 64; depth <= 65; depth++) {
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        text[2 * depth] = '\0';
        lynx_err_t err;
        lynx_value_t *value = s_parse(text, &err);
        if (depth == 64)
            assert_non_null(value);
        else {
            assert_null(value);
            assert_string_equal(err.message, "line 1 column 65: nesting deeper than 64");
        }
        lynx_value_destroy(&value);
    }
    //  Brackets inside strings do not count.
    char quoted[100 + 3];
    memset(quoted, '[', sizeof quoted);
    quoted[0] = '"';
    quoted[sizeof quoted - 2] = '"';
    quoted[sizeof quoted - 1] = '\0';
    lynx_value_t *value = s_parse(quoted, NULL);
    assert_int_equal(lynx_value_type(value), LYNX_VALUE_STRING);
    lynx_value_destroy(&value);
}

//  Compact by default, in map order; indent > 0 pretty-prints.
static void test_dump(void **state)
{
    (void)state;
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "batch_id", "3fa8");
    lynx_value_set_int(reply, "total_jobs", 5);
    lynx_value_set_null(reply, "estimated_completion_time_mins");
    lynx_value_t *files = lynx_value_array();
    lynx_value_t *file = lynx_value_string("a \"quoted\" name\n");
    lynx_value_append(files, &file);
    lynx_value_set(reply, "files", &files);

    char *text = lynx_json_dump(reply, 0);
    assert_string_equal(text, "{\"batch_id\":\"3fa8\",\"total_jobs\":5,"
                              "\"estimated_completion_time_mins\":null,"
                              "\"files\":[\"a \\\"quoted\\\" name\\n\"]}");
    free(text);
    lynx_value_remove(reply, "files");
    text = lynx_json_dump(reply, 2);
    assert_string_equal(text, "{\n"
                              "  \"batch_id\": \"3fa8\",\n"
                              "  \"total_jobs\": 5,\n"
                              "  \"estimated_completion_time_mins\": null\n"
                              "}");
    free(text);
    lynx_value_destroy(&reply);

    lynx_value_t *scalar = lynx_value_bool(false);
    text = lynx_json_dump(scalar, 0);
    assert_string_equal(text, "false");
    free(text);
    lynx_value_destroy(&scalar);
}

//  Doubles survive dump and parse bit for bit; JSON has no NaN or infinity, so they become null.
static void test_doubles(void **state)
{
    (void)state;
    const double numbers[] = {0.1,     6983421.7, 0.00094, -1e-300,  DBL_MAX,
                              DBL_MIN, 1.0,       -0.0,    1.0 / 3.0};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        lynx_value_t *value = lynx_value_double(numbers[i]);
        char *text = lynx_json_dump(value, 0);
        lynx_value_t *back = s_parse(text, NULL);
        assert_int_equal(lynx_value_type(back), LYNX_VALUE_DOUBLE);
        assert_memory_equal(&numbers[i], &(double){lynx_value_as_double(back)}, sizeof(double));
        free(text);
        lynx_value_destroy(&value);
        lynx_value_destroy(&back);
    }
    const double specials[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        lynx_value_t *value = lynx_value_double(specials[i]);
        char *text = lynx_json_dump(value, 0);
        assert_string_equal(text, "null");
        free(text);
        lynx_value_destroy(&value);
    }
}

//  Strings that are not UTF-8 (msgpack does not check them) still give valid JSON: each bad
//  byte becomes U+FFFD. NUL bytes are escaped (and refused again by the parser).
static void test_dump_invalid_utf8(void **state)
{
    (void)state;
    lynx_value_t *map = lynx_value_map();
    lynx_value_t *bad = lynx_value_stringn("caf\xe9 \xc3\xa9 \xed\xa0\x80", 11);
    lynx_value_set(map, "name\xff", &bad);
    char *text = lynx_json_dump(map, 0);
    assert_string_equal(text, "{\"name\xef\xbf\xbd\":\"caf\xef\xbf\xbd \xc3\xa9 "
                              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
    lynx_value_t *back = s_parse(text, NULL);
    assert_non_null(back);
    free(text);
    lynx_value_destroy(&back);
    lynx_value_destroy(&map);

    lynx_value_t *nul = lynx_value_stringn("a\0b", 3);
    text = lynx_json_dump(nul, 0);
    assert_string_equal(text, "\"a\\u0000b\"");
    free(text);
    lynx_value_destroy(&nul);
}

static char *s_dump_double(double number)
{
    lynx_value_t *value = lynx_value_double(number);
    char *text = lynx_json_dump(value, 0);
    lynx_value_destroy(&value);
    return text;
}

//  Doubles print as the shortest text that reads back to the same bits, and always as a real:
//  an integral double keeps ".0" or an exponent so it does not come back as an integer.
static void test_shortest_doubles(void **state)
{
    (void)state;
    const struct {
        double number;
        const char *text;
    } cases[] = {
        {0.1, "0.1"},
        {34.1, "34.1"},
        {6983421.7, "6983421.7"},
        {0.00094, "0.00094"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e-300, "1e-300"},
        {1e-7, "1e-07"},
        {5e-324, "5e-324"}, //  smallest subnormal: one digit is enough
        {2.5e-310, "2.5e-310"},
        {-0.0, "-0.0"},
        {90.0, "90.0"},
        {9007199254740992.0, "9007199254740992.0"}, //  2^53
        {1e15, "1e+15"},
        {1e300, "1e+300"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {DBL_MIN, "2.2250738585072014e-308"},
        {-1.5, "-1.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = s_dump_double(cases[i].number);
        if (strcmp(text, cases[i].text) != 0)
            fail_msg("%.17g: expected %s, got %s", cases[i].number, cases[i].text, text);
        lynx_value_t *back = s_parse(text, NULL);
        assert_int_equal(lynx_value_type(back), LYNX_VALUE_DOUBLE);
        assert_memory_equal(&cases[i].number, &(double){lynx_value_as_double(back)},
                            sizeof(double));
        lynx_value_destroy(&back);
        free(text);
    }
    //  Integers stay integers.
    const int64_t integers[] = {0, 90, -7, INT64_MAX, INT64_MIN};
    const char *texts[] = {"0", "90", "-7", "9223372036854775807", "-9223372036854775808"};
    for (size_t i = 0; i < sizeof integers / sizeof integers[0]; i++) {
        lynx_value_t *value = lynx_value_int(integers[i]);
        char *text = lynx_json_dump(value, 0);
        assert_string_equal(text, texts[i]);
        lynx_value_t *back = s_parse(text, NULL);
        assert_int_equal(lynx_value_type(back), LYNX_VALUE_INT);
        assert_int_equal(lynx_value_as_int(back), integers[i]);
        lynx_value_destroy(&back);
        lynx_value_destroy(&value);
        free(text);
    }
}

static uint64_t s_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

//  Fewest significant digits %g needs for number to read back exactly.
static int s_min_precision(double number)
{
    char text[40];
    for (int precision = 1;; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, number);
        if (strtod(text, NULL) == number)
            return precision;
    }
}

static size_t s_significant_digits(const char *text)
{
    size_t digits = 0, zeros = 0;
    bool leading = true;
    for (; *text && *text != 'e'; text++) {
        if (*text < '0' || *text > '9')
            continue;
        if (leading && *text == '0')
            continue;
        leading = false;
        digits++;
        zeros = *text == '0' ? zeros + 1 : 0;
    }
    return digits - zeros; //  trailing zeros (as in "90.0") add no precision
}

//  100,000 doubles from all over the range (random bit patterns, and decimals with few digits)
//  survive dump and parse bit for bit, each printed with no more digits than it needs.
static void test_doubles_round_trip(void **state)
{
    (void)state;
    enum { COUNT = 100000 };
    double *numbers = malloc(COUNT * sizeof *numbers);
    assert_non_null(numbers);
    uint64_t seed = 0x9e3779b97f4a7c15u;
    lynx_value_t *array = lynx_value_array();
    for (size_t i = 0; i < COUNT; i++) {
        uint64_t bits = s_xorshift(&seed);
        if (i % 2)
            numbers[i] = (double)(int64_t)(bits % 2000001 - 1000000) / 1000.0;
        else {
            memcpy(&numbers[i], &bits, sizeof bits);
            if (!isfinite(numbers[i]))
                numbers[i] = (double)bits;
        }
        lynx_value_t *item = lynx_value_double(numbers[i]);
        assert_int_equal(lynx_value_append(array, &item), 0);
    }
    char *text = lynx_json_dump(array, 0);
    lynx_value_t *back = s_parse(text, NULL);
    assert_int_equal(lynx_value_size(back), COUNT);
    for (size_t i = 0; i < COUNT; i++) {
        lynx_value_t *item = lynx_value_at(back, i);
        assert_int_equal(lynx_value_type(item), LYNX_VALUE_DOUBLE);
        double number = lynx_value_as_double(item);
        if (memcmp(&number, &numbers[i], sizeof number) != 0)
            fail_msg("element %zu: %.17g came back as %.17g", i, numbers[i], number);
    }
    for (size_t i = 0; i < 5000; i++) {
        char *one = s_dump_double(numbers[i]);
        if (numbers[i] != 0 && s_significant_digits(one) > (size_t)s_min_precision(numbers[i]))
            fail_msg("%s is longer than needed for %.17g", one, numbers[i]);
        free(one);
    }
    free(text);
    free(numbers);
    lynx_value_destroy(&array);
    lynx_value_destroy(&back);
}

//  Pretty-printing nests with the indent; empty containers stay on one line. Escapes are the
//  short forms where JSON has them and \uXXXX for other control characters; '/' and DEL are
//  left alone.
static void test_dump_layout_and_escapes(void **state)
{
    (void)state;
    lynx_err_t err;
    const char compact[] = "{\"a\":[],\"b\":{},\"c\":[1,{\"d\":0.1,\"e\":[true,null]}],"
                           "\"s\":\"\\b\\f\\n\\r\\t\\u0001\\u001F\\\\\\\"/\x7f\"}";
    lynx_value_t *value = s_parse(compact, &err);
    assert_non_null(value);
    char *text = lynx_json_dump(value, 0);
    assert_string_equal(text, compact);
    free(text);
    text = lynx_json_dump(value, 4);
    assert_string_equal(text, "{\n"
                              "    \"a\": [],\n"
                              "    \"b\": {},\n"
                              "    \"c\": [\n"
                              "        1,\n"
                              "        {\n"
                              "            \"d\": 0.1,\n"
                              "            \"e\": [\n"
                              "                true,\n"
                              "                null\n"
                              "            ]\n"
                              "        }\n"
                              "    ],\n"
                              "    \"s\": \"\\b\\f\\n\\r\\t\\u0001\\u001F\\\\\\\"/\x7f\"\n"
                              "}");
    free(text);
    lynx_value_destroy(&value);
}

//  Keys that are not UTF-8 can clean up to the same text; the first one wins so the output
//  still has unique keys and parses back.
static void test_dump_colliding_keys(void **state)
{
    (void)state;
    lynx_value_t *map = lynx_value_map();
    lynx_value_set_int(map, "a\xff", 1);
    lynx_value_set_int(map, "b", 2);
    lynx_value_set_int(map, "a\xfe", 3);
    lynx_value_set_int(map, "a\xef\xbf\xbd", 4);
    char *text = lynx_json_dump(map, 0);
    assert_string_equal(text, "{\"a\xef\xbf\xbd\":1,\"b\":2}");
    lynx_value_t *back = s_parse(text, NULL);
    assert_non_null(back);
    free(text);
    lynx_value_destroy(&back);
    lynx_value_destroy(&map);
}

//  An object with 100,000 keys parses in linear time, in order; a repeated key is refused.
static void test_parse_many_keys(void **state)
{
    (void)state;
    enum { COUNT = 100000 };
    char *text = malloc(COUNT * 32);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < COUNT; i++)
        len += (size_t)sprintf(text + len, "%c\"key-%zu\":%zu", i ? ',' : '{', i, i);
    strcpy(text + len, "}");
    lynx_value_t *value = lynx_json_parse(text, len + 1, NULL);
    assert_int_equal(lynx_value_size(value), COUNT);
    assert_string_equal(lynx_value_key_at(value, COUNT - 1), "key-99999");
    assert_int_equal(lynx_value_get_int(value, "key-77777", -1), 77777);
    lynx_value_destroy(&value);

    strcpy(text + len, ",\"key-5\":0}");
    lynx_err_t err;
    assert_null(lynx_json_parse(text, strlen(text), &err));
    assert_non_null(strstr(err.message, "duplicate object key"));
    free(text);
}

static void test_write_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/lynx_json_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/run_config.json", dir);

    lynx_value_t *config = s_parse(s_run_config, NULL);
    lynx_err_t err;
    assert_int_equal(lynx_json_write_file(config, path, &err), 0);
    //  Writing again replaces the file whole.
    assert_int_equal(lynx_json_write_file(config, path, &err), 0);

    FILE *file = fopen(path, "r");
    assert_non_null(file);
    char text[1024];
    size_t len = fread(text, 1, sizeof text, file);
    fclose(file);
    assert_true(len > 0 && text[len - 1] == '\n');
    //  Pretty, in order, with doubles as they were written (34.1, not 34.100000000000001).
    assert_int_equal(len, sizeof s_run_config);
    assert_memory_equal(text, s_run_config, len - 1);
    lynx_value_t *back = lynx_json_parse(text, len, NULL);
    assert_true(lynx_value_equal(config, back));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0); //  no temporary file left behind

    //  The error names the path.
    assert_int_equal(lynx_json_write_file(config, path, &err), -1);
    assert_int_equal(err.code, LYNX_EINTERNAL);
    char expected[256];
    snprintf(expected, sizeof expected,
             "write %s: create temporary file: No such file or directory", path);
    assert_string_equal(err.message, expected);

    lynx_value_destroy(&config);
    lynx_value_destroy(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_run_config),
        cmocka_unit_test(test_parse_scalars),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_dump_invalid_utf8),
        cmocka_unit_test(test_shortest_doubles),
        cmocka_unit_test(test_doubles_round_trip),
        cmocka_unit_test(test_dump_layout_and_escapes),
        cmocka_unit_test(test_dump_colliding_keys),
        cmocka_unit_test(test_parse_many_keys),
        cmocka_unit_test(test_write_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
