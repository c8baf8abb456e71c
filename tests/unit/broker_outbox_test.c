//  broker_outbox: what is posted during a turn waits for the flush, in order; a discarded turn
//  sends nothing; answers that promise nothing stored (send_now) go at once. A real ROUTER and
//  DEALER on 127.0.0.1 carry the messages.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "broker_outbox.h"

#define S_WAIT_MS 5000
#define S_QUIET_MS 200

typedef struct {
    zsock_t *router;
    zsock_t *dealer;
    zframe_t *route; //  the dealer as the router sees it
    broker_republish_t *republish;
    broker_outbox_t *outbox;
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    fx->router = zsock_new_router("tcp://127.0.0.1:*");
    fx->dealer = zsock_new_dealer(zsock_endpoint(fx->router));
    if (!fx->router || !fx->dealer)
        return -1;
    //  The router learns the dealer's route from a first message.
    zstr_send(fx->dealer, "hello");
    zmsg_t *hello = zmsg_recv(fx->router);
    fx->route = zmsg_pop(hello);
    zmsg_destroy(&hello);
    fx->republish = broker_republish_new(NULL, NULL, NULL); //  no PUB: events are no-ops
    fx->outbox = broker_outbox_new(fx->router, fx->republish);
    *state = fx;
    return fx->route && fx->outbox ? 0 : -1;
}

static int s_teardown(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    broker_outbox_destroy(&fx->outbox);
    broker_republish_destroy(&fx->republish);
    zframe_destroy(&fx->route);
    zsock_destroy(&fx->dealer);
    zsock_destroy(&fx->router);
    free(fx);
    return 0;
}

static lynx_msg_t *s_ack(const char *job_id)
{
    lynx_msg_t *ack = lynx_msg_new(LYNX_MSG_ACK);
    lynx_value_set_string(lynx_msg_body(ack), "job_id", job_id);
    lynx_value_set_int(lynx_msg_body(ack), "attempt", 1);
    return ack;
}

//  The job_id of the next message on the dealer within timeout_ms, or NULL (nothing came).
static char *s_next_job(s_fixture_t *fx, int timeout_ms)
{
    zpoller_t *poller = zpoller_new(fx->dealer, NULL);
    char *job_id = NULL;
    if (zpoller_wait(poller, timeout_ms)) {
        lynx_err_t err;
        lynx_msg_t *msg = lynx_msg_recv(zsock_resolve(fx->dealer), NULL, &err);
        assert_non_null(msg);
        job_id = strdup(lynx_value_get_string(lynx_msg_body(msg), "job_id", "?"));
        lynx_msg_destroy(&msg);
    }
    zpoller_destroy(&poller);
    return job_id;
}

static void s_expect_job(s_fixture_t *fx, const char *job_id)
{
    char *got = s_next_job(fx, S_WAIT_MS);
    if (!got)
        fail_msg("no message, expected %s", job_id);
    assert_string_equal(got, job_id);
    free(got);
}

static void s_expect_nothing(s_fixture_t *fx)
{
    char *got = s_next_job(fx, S_QUIET_MS);
    if (got)
        fail_msg("unexpected message for %s", got);
}

static void test_held_until_flushed_in_order(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    broker_outbox_hold(fx->outbox, true);
    assert_true(broker_outbox_holding(fx->outbox));
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "job-%d", i);
        lynx_msg_t *ack = s_ack(id);
        assert_int_equal(broker_outbox_post(fx->outbox, fx->route, &ack), 0);
        assert_null(ack);
    }
    //  Events wait too (published through a republisher without a socket: nothing to see,
    //  nothing to crash).
    broker_job_rec_t rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.id, sizeof rec.id, "job-0");
    broker_outbox_job_event(fx->outbox, &rec, LYNX_JOB_RUNNING, NULL, NULL);
    broker_outbox_runner_event(fx->outbox, "ws-01", "Quarantined", NULL);
    s_expect_nothing(fx);
    //  An answer that promises nothing goes at once, turn or not.
    lynx_msg_t *now = s_ack("now");
    assert_int_equal(broker_outbox_send_now(fx->outbox, fx->route, &now), 0);
    s_expect_job(fx, "now");
    broker_outbox_hold(fx->outbox, false);
    broker_outbox_flush(fx->outbox);
    s_expect_job(fx, "job-0");
    s_expect_job(fx, "job-1");
    s_expect_job(fx, "job-2");
    s_expect_nothing(fx);
}

static void test_discarded_turn_sends_nothing(void **state)
{
    s_fixture_t *fx = (s_fixture_t *)*state;
    broker_outbox_hold(fx->outbox, true);
    lynx_msg_t *ack = s_ack("lost");
    broker_outbox_post(fx->outbox, fx->route, &ack);
    broker_outbox_hold(fx->outbox, false);
    broker_outbox_discard(fx->outbox);
    broker_outbox_flush(fx->outbox);
    s_expect_nothing(fx);
    //  Outside a turn a post goes at once.
    ack = s_ack("direct");
    broker_outbox_post(fx->outbox, fx->route, &ack);
    s_expect_job(fx, "direct");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_held_until_flushed_in_order),
        S_TEST(test_discarded_turn_sends_nothing),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
