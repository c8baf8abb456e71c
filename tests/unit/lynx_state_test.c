//  lynx_state: job and batch states, their names, and the one table of legal job transitions.
//
//  The transition table below is lynx-docs/job-lifecycle.txt plus our documented extension: an
//  attempt that fails with retries left goes back to Pending straight from Claimed or Running
//  (never via Failed, which is terminal), and a Running job can be cancelled.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lynx_state.h"

#define P LYNX_JOB_PENDING
#define CL LYNX_JOB_CLAIMED
#define R LYNX_JOB_RUNNING
#define CO LYNX_JOB_COMPLETED
#define F LYNX_JOB_FAILED
#define T LYNX_JOB_TIMEOUT
#define CA LYNX_JOB_CANCELLED

//  s_expected[from][to]: 1 legal, 0 rejected. Every cell is spelled out.
// clang-format off
static const int s_expected[LYNX_JOB_STATE_COUNT][LYNX_JOB_STATE_COUNT] = {
    //       P  CL R  CO F  T  CA
    [P]  = {0, 1, 0, 0, 0, 0, 1}, //  claimed by a runner, or cancelled
    [CL] = {1, 0, 1, 0, 0, 0, 1}, //  retried, started, cancelled
    [R]  = {1, 0, 0, 1, 1, 1, 1}, //  retried, completed, failed, timed out, cancelled
    [CO] = {0, 0, 0, 0, 0, 0, 0}, //  terminal
    [F]  = {0, 0, 0, 0, 0, 0, 0}, //  terminal: a retry never passes through Failed
    [T]  = {0, 0, 0, 0, 0, 0, 0}, //  terminal
    [CA] = {0, 0, 0, 0, 0, 0, 0}, //  terminal
};
// clang-format on

static void test_transition_table(void **state)
{
    (void)state;
    for (int from = 0; from < LYNX_JOB_STATE_COUNT; from++)
        for (int to = 0; to < LYNX_JOB_STATE_COUNT; to++) {
            bool allowed =
                lynx_job_transition_allowed((lynx_job_state_t)from, (lynx_job_state_t)to);
            if (allowed != (bool)s_expected[from][to])
                fail_msg("%s -> %s: expected %s", lynx_job_state_name((lynx_job_state_t)from),
                         lynx_job_state_name((lynx_job_state_t)to),
                         s_expected[from][to] ? "allowed" : "rejected");
        }
}

//  States outside the enum never take part in a transition.
static void test_transition_out_of_range(void **state)
{
    (void)state;
    lynx_job_state_t outside[] = {LYNX_JOB_STATE_COUNT, (lynx_job_state_t)-1,
                                  (lynx_job_state_t)100};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
        for (int other = 0; other < LYNX_JOB_STATE_COUNT; other++) {
            assert_false(lynx_job_transition_allowed(outside[i], (lynx_job_state_t)other));
            assert_false(lynx_job_transition_allowed((lynx_job_state_t)other, outside[i]));
        }
}

//  Terminal states are exactly those with no way out.
static void test_terminal_states(void **state)
{
    (void)state;
    static const struct {
        lynx_job_state_t state;
        bool terminal;
    } cases[] = {
        {P, false}, {CL, false}, {R, false}, {CO, true}, {F, true}, {T, true}, {CA, true},
    };
    assert_int_equal(sizeof cases / sizeof cases[0], LYNX_JOB_STATE_COUNT);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(lynx_job_state_terminal(cases[i].state), cases[i].terminal);
        bool has_exit = false;
        for (int to = 0; to < LYNX_JOB_STATE_COUNT; to++)
            has_exit =
                has_exit || lynx_job_transition_allowed(cases[i].state, (lynx_job_state_t)to);
        assert_int_equal(has_exit, !cases[i].terminal);
    }
}

//  Names as the docs spell them; parsing is exact and case-sensitive.
static void test_job_names_round_trip(void **state)
{
    (void)state;
    static const char *names[] = {"Pending", "Claimed", "Running",  "Completed",
                                  "Failed",  "Timeout", "Cancelled"};
    assert_int_equal(sizeof names / sizeof names[0], LYNX_JOB_STATE_COUNT);
    for (int job_state = 0; job_state < LYNX_JOB_STATE_COUNT; job_state++) {
        assert_string_equal(lynx_job_state_name((lynx_job_state_t)job_state), names[job_state]);
        assert_int_equal(lynx_job_state_parse(names[job_state]), job_state);
    }
    static const char *unknown[] = {"",         "pending", "PENDING", "Pending ",
                                    "Canceled", "Unknown", "Queued"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(lynx_job_state_parse(unknown[i]), -1);
    assert_int_equal(lynx_job_state_parse(NULL), -1);
    assert_string_equal(lynx_job_state_name(LYNX_JOB_STATE_COUNT), "Unknown");
    assert_string_equal(lynx_job_state_name((lynx_job_state_t)-1), "Unknown");
}

static void test_batch_names_round_trip(void **state)
{
    (void)state;
    static const char *names[] = {"Pending", "Running", "Completed", "Failed", "Cancelled"};
    assert_int_equal(sizeof names / sizeof names[0], LYNX_BATCH_STATE_COUNT);
    for (int batch_state = 0; batch_state < LYNX_BATCH_STATE_COUNT; batch_state++) {
        assert_string_equal(lynx_batch_state_name((lynx_batch_state_t)batch_state),
                            names[batch_state]);
        assert_int_equal(lynx_batch_state_parse(names[batch_state]), batch_state);
    }
    //  Claimed and Timeout are job states only.
    static const char *unknown[] = {"", "Claimed", "Timeout", "running", "Unknown"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        assert_int_equal(lynx_batch_state_parse(unknown[i]), -1);
    assert_int_equal(lynx_batch_state_parse(NULL), -1);
    assert_string_equal(lynx_batch_state_name(LYNX_BATCH_STATE_COUNT), "Unknown");
    assert_string_equal(lynx_batch_state_name((lynx_batch_state_t)-1), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_transition_out_of_range),
        cmocka_unit_test(test_terminal_states),
        cmocka_unit_test(test_job_names_round_trip),
        cmocka_unit_test(test_batch_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
