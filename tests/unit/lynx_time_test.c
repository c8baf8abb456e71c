//  lynx_time: wall-clock and monotonic milliseconds, and the RFC 3339 UTC timestamps our JSON
//  replies carry (always with milliseconds and a Z).
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "lynx_time.h"

static void test_rfc3339_known_instants(void **state)
{
    (void)state;
    static const struct {
        int64_t epoch_ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},               //  the epoch
        {1, "1970-01-01T00:00:00.001Z"},               //  milliseconds are zero-padded
        {999, "1970-01-01T00:00:00.999Z"},             //
        {1000, "1970-01-01T00:00:01.000Z"},            //
        {1709251199999, "2024-02-29T23:59:59.999Z"},   //  a leap day, last millisecond
        {1709251200000, "2024-03-01T00:00:00.000Z"},   //  ... and the day after
        {951827696007, "2000-02-29T12:34:56.007Z"},    //  a century leap day
        {946684799050, "1999-12-31T23:59:59.050Z"},    //
        {1795435200123, "2026-11-23T12:00:00.123Z"},   //  the header's example
        {2147483648000, "2038-01-19T03:14:08.000Z"},   //  past 32-bit time_t
        {253402300799999, "9999-12-31T23:59:59.999Z"}, //  the last four-digit year
        {-1, "1969-12-31T23:59:59.999Z"},              //  before the epoch: floor, not truncate
        {-1500, "1969-12-31T23:59:58.500Z"},           //
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buffer[LYNX_TIME_RFC3339_SIZE];
        memset(buffer, '#', sizeof buffer);
        assert_ptr_equal(lynx_time_rfc3339(cases[i].epoch_ms, buffer), buffer);
        assert_string_equal(buffer, cases[i].text);
    }
}

//  now is the real clock: close to time(), and well after the software was written.
static void test_now_is_wall_clock(void **state)
{
    (void)state;
    int64_t before_ms = (int64_t)time(NULL) * 1000;
    int64_t now_ms = lynx_time_now_ms();
    int64_t after_ms = ((int64_t)time(NULL) + 1) * 1000;
    assert_true(now_ms >= before_ms);
    assert_true(now_ms <= after_ms);
    assert_true(now_ms > 1577836800000); //  2020-01-01

    char buffer[LYNX_TIME_RFC3339_SIZE];
    lynx_time_rfc3339(now_ms, buffer);
    assert_int_equal(strlen(buffer), strlen("2026-11-23T12:00:00.123Z"));
    assert_int_equal(buffer[strlen(buffer) - 1], 'Z');
}

//  The monotonic clock never goes backwards, whatever the wall clock does.
static void test_mono_never_goes_backwards(void **state)
{
    (void)state;
    int64_t previous_ms = lynx_time_mono_ms();
    assert_true(previous_ms >= 0);
    for (int i = 0; i < 100000; i++) {
        int64_t now_ms = lynx_time_mono_ms();
        assert_true(now_ms >= previous_ms);
        previous_ms = now_ms;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_known_instants),
        cmocka_unit_test(test_now_is_wall_clock),
        cmocka_unit_test(test_mono_never_goes_backwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
