//  gateway_conns selftest: the request deadline of each connection, driven with made-up clock
//  readings the way gateway_http drives it (accept, request read, request completed, closed).
#include "gateway_conns.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#define DEADLINE_MS 30000
#define LINGER_MS 1000

static int s_setup(void **state)
{
    gateway_conns_t *conns = gateway_conns_new(DEADLINE_MS, LINGER_MS);
    assert_non_null(conns);
    *state = conns;
    return 0;
}

static int s_teardown(void **state)
{
    gateway_conns_t *conns = *state;
    gateway_conns_destroy(&conns);
    assert_null(conns);
    return 0;
}

static void test_deadline_runs_from_accept_whatever_arrives(void **state)
{
    gateway_conns_t *conns = *state;
    assert_int_equal(gateway_conns_timeout_ms(conns, 0), -1);
    gateway_conn_t *conn = gateway_conns_add(conns, 7, "192.0.2.1", 1000);
    assert_non_null(conn);
    assert_int_equal(gateway_conn_fd(conn), 7);
    assert_string_equal(gateway_conn_client(conn), "192.0.2.1");
    assert_int_equal(gateway_conns_timeout_ms(conns, 1000), DEADLINE_MS);
    //  Bytes trickling in change nothing: there is no call for them
    assert_int_equal(gateway_conns_timeout_ms(conns, 21000), DEADLINE_MS - 20000);
    assert_null(gateway_conns_overdue(conns, 1000 + DEADLINE_MS - 1));
    assert_ptr_equal(gateway_conns_overdue(conns, 1000 + DEADLINE_MS), conn);
    assert_false(gateway_conn_lingered(conn));
    //  Handed out once; still tracked until MHD reports it closed
    assert_null(gateway_conns_overdue(conns, 1000 + 2 * DEADLINE_MS));
    assert_int_equal(gateway_conns_timeout_ms(conns, 1000 + DEADLINE_MS), -1);
    assert_int_equal(gateway_conns_size(conns), 1);
    //  Closing completes its request, which would start the next deadline: not for this one
    gateway_conns_start(conns, conn, 1000 + DEADLINE_MS);
    assert_int_equal(gateway_conns_reading(conns), 0);
    gateway_conns_remove(conns, &conn);
    assert_null(conn);
    assert_int_equal(gateway_conns_size(conns), 0);
}

static void test_read_request_stops_the_deadline_until_the_next(void **state)
{
    gateway_conns_t *conns = *state;
    gateway_conn_t *conn = gateway_conns_add(conns, 3, "198.51.100.7", 0);
    gateway_conns_stop(conns, conn); //  headers and body in: the handler has it
    assert_int_equal(gateway_conns_reading(conns), 0);
    assert_int_equal(gateway_conns_timeout_ms(conns, 5 * DEADLINE_MS), -1);
    assert_null(gateway_conns_overdue(conns, 5 * DEADLINE_MS));
    //  Answered at 5 deadlines: the keep-alive connection's next request starts then
    gateway_conns_start(conns, conn, 5 * DEADLINE_MS);
    assert_int_equal(gateway_conns_timeout_ms(conns, 5 * DEADLINE_MS), DEADLINE_MS);
    assert_ptr_equal(gateway_conns_overdue(conns, 6 * DEADLINE_MS), conn);
}

static void test_earliest_deadline_comes_first(void **state)
{
    gateway_conns_t *conns = *state;
    gateway_conn_t *a = gateway_conns_add(conns, 1, "a", 0);
    gateway_conn_t *b = gateway_conns_add(conns, 2, "b", 100);
    gateway_conn_t *c = gateway_conns_add(conns, 3, "c", 200);
    //  a finishes its request and starts another: now the youngest
    gateway_conns_stop(conns, a);
    gateway_conns_start(conns, a, 300);
    assert_int_equal(gateway_conns_timeout_ms(conns, 0), 100 + DEADLINE_MS);
    int64_t late = 1000 + DEADLINE_MS;
    assert_ptr_equal(gateway_conns_overdue(conns, late), b);
    assert_ptr_equal(gateway_conns_overdue(conns, late), c);
    assert_ptr_equal(gateway_conns_overdue(conns, late), a);
    assert_null(gateway_conns_overdue(conns, late));
    assert_int_equal(gateway_conns_size(conns), 3);
    //  Removing in any order leaves the lists whole; destroy frees what is left
    gateway_conns_remove(conns, &c);
    gateway_conns_remove(conns, &a);
    assert_int_equal(gateway_conns_size(conns), 1);
}

static void test_refused_request_lingers_then_closes(void **state)
{
    gateway_conns_t *conns = *state;
    gateway_conn_t *slow = gateway_conns_add(conns, 1, "slow", 0);
    gateway_conn_t *refused = gateway_conns_add(conns, 2, "refused", 0);
    gateway_conns_linger(conns, refused, 500);
    assert_int_equal(gateway_conns_reading(conns), 1);
    assert_int_equal(gateway_conns_timeout_ms(conns, 500), LINGER_MS);
    //  Neither a completed request nor a stop takes it off its linger
    gateway_conns_start(conns, refused, 600);
    gateway_conns_stop(conns, refused);
    assert_ptr_equal(gateway_conns_overdue(conns, 500 + LINGER_MS), refused);
    assert_true(gateway_conn_lingered(refused));
    assert_null(gateway_conns_overdue(conns, 500 + LINGER_MS));
    assert_ptr_equal(gateway_conns_overdue(conns, DEADLINE_MS), slow);
}

static void test_user_pointer_and_long_client_names(void **state)
{
    gateway_conns_t *conns = *state;
    const char *v6 = "2001:0db8:85a3:0000:0000:8a2e:0370:7334 and then some more text to cut";
    gateway_conn_t *conn = gateway_conns_add(conns, 4, v6, 0);
    assert_int_equal(strlen(gateway_conn_client(conn)), 63);
    assert_null(gateway_conn_user(conn));
    int request;
    gateway_conn_set_user(conn, &request);
    assert_ptr_equal(gateway_conn_user(conn), &request);
}

static void test_no_deadline_when_zero(void **state)
{
    (void)state;
    gateway_conns_t *conns = gateway_conns_new(0, LINGER_MS);
    gateway_conn_t *conn = gateway_conns_add(conns, 1, "x", 0);
    gateway_conns_start(conns, conn, 10);
    assert_int_equal(gateway_conns_timeout_ms(conns, 0), -1);
    assert_null(gateway_conns_overdue(conns, INT64_MAX / 2));
    gateway_conns_destroy(&conns);
}

static void test_log_limit_holds_back_repeats(void **state)
{
    (void)state;
    gateway_log_limit_t limit = {0};
    unsigned long held = 99;
    //  Three lines per 10 s: the first three of a burst go out
    for (int i = 0; i < 3; i++) {
        assert_true(gateway_log_limit_pass(&limit, 5000 + i, 10000, 3, &held));
        assert_int_equal(held, 0);
    }
    for (int i = 0; i < 1000; i++)
        assert_false(gateway_log_limit_pass(&limit, 5003 + i, 10000, 3, &held));
    //  The next interval's first line says how many were held back
    assert_true(gateway_log_limit_pass(&limit, 15000, 10000, 3, &held));
    assert_int_equal(held, 1000);
    assert_true(gateway_log_limit_pass(&limit, 15001, 10000, 3, &held));
    assert_int_equal(held, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        TEST(test_deadline_runs_from_accept_whatever_arrives),
        TEST(test_read_request_stops_the_deadline_until_the_next),
        TEST(test_earliest_deadline_comes_first),
        TEST(test_refused_request_lingers_then_closes),
        TEST(test_user_pointer_and_long_client_names),
        TEST(test_no_deadline_when_zero),
        TEST(test_log_limit_holds_back_repeats),
#undef TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
