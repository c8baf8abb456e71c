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

//  Both documents print the table: the protocol's and the design's.
static const char *const s_documents[] = {LYNX_SOURCE_DIR "/proto/PROTOCOL.md",
                                          LYNX_SOURCE_DIR "/docs/design.md"};

static void s_assert_document_shows_the_code_table(const char *path)
{
    protocol_table_t doc;
    assert_int_equal(protocol_table_load(path, "runner", &doc), 0);
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
                fail_msg("%s says %s x %s -> %s, the code does %s", path, doc.state[s],
                         doc.event[e], doc.cell[e][s], code);
        }
    }
}

static void test_protocol_md_shows_the_code_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_documents / sizeof s_documents[0]; i++)
        s_assert_document_shows_the_code_table(s_documents[i]);
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
