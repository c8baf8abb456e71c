//  lynx_actor: an actor's loop ends on $TERM from its pipe and ignores any other command.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lynx_actor.h"

//  A timer tells the owner the loop still runs; the pipe reader is the helper under test.
static int s_on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop, (void)timer_id;
    zstr_send((zsock_t *)arg, "ALIVE");
    return 0;
}

static void s_actor(zsock_t *pipe, void *args)
{
    (void)args;
    zloop_t *loop = zloop_new();
    zloop_reader(loop, pipe, lynx_actor_on_pipe, NULL);
    zsock_signal(pipe, 0);
    zloop_timer(loop, 20, 0, s_on_timer, pipe);
    zloop_start(loop);
    zloop_destroy(&loop);
}

static void test_other_commands_are_ignored_and_term_stops(void **state)
{
    (void)state;
    zactor_t *actor = zactor_new(s_actor, NULL);
    assert_non_null(actor);
    zstr_send(actor, "SOMETHING-ELSE");
    //  Still running after the unknown command: the timer keeps reporting.
    zsock_set_rcvtimeo(actor, 5000);
    for (int i = 0; i < 3; i++) {
        char *alive = zstr_recv(actor);
        assert_non_null(alive);
        assert_string_equal(alive, "ALIVE");
        zstr_free(&alive);
    }
    zactor_destroy(&actor); //  sends $TERM and waits: returns only if the loop ended
    assert_null(actor);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_commands_are_ignored_and_term_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
