//  runner protocol: the runner's side of the protocol table is the one proto/PROTOCOL.md prints.
//  Behaviour is tested through the runner actor (runner_test.c); this holds the document to
//  the code, cell by cell, so neither can change alone.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runner.h"
#include "protocol_table.h"

static void test_protocol_md_shows_the_code_table(void **state)
{
    (void)state;
    protocol_table_t doc;
    assert_int_equal(protocol_table_load(LYNX_SOURCE_DIR "/proto/PROTOCOL.md", "runner", &doc), 0);
    assert_int_equal(doc.states, RUNNER_LINK_STATE_COUNT);
    assert_int_equal(doc.events, RUNNER_LINK_EVENT_COUNT);
    for (int s = 0; s < RUNNER_LINK_STATE_COUNT; s++)
        assert_string_equal(doc.state[s], runner_protocol_state_name((runner_link_state_t)s));
    for (int e = 0; e < RUNNER_LINK_EVENT_COUNT; e++) {
        assert_string_equal(doc.event[e], runner_protocol_event_name((runner_link_event_t)e));
        for (int s = 0; s < RUNNER_LINK_STATE_COUNT; s++) {
            const char *code =
                runner_protocol_action_name((runner_link_state_t)s, (runner_link_event_t)e);
            if (strcmp(doc.cell[e][s], code) != 0)
                fail_msg("PROTOCOL.md says %s x %s -> %s, the code does %s", doc.state[s],
                         doc.event[e], doc.cell[e][s], code);
        }
    }
}

static void test_out_of_range_is_named_not_crashed(void **state)
{
    (void)state;
    assert_string_equal(runner_protocol_state_name(RUNNER_LINK_STATE_COUNT), "?");
    assert_string_equal(runner_protocol_event_name(RUNNER_LINK_EVENT_COUNT), "?");
    assert_string_equal(
        runner_protocol_action_name(RUNNER_LINK_REGISTERED, RUNNER_LINK_EVENT_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_md_shows_the_code_table),
        cmocka_unit_test(test_out_of_range_is_named_not_crashed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
