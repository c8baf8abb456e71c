//  lynx_actor: the actors' shared pipe handler (see the header).
#include "lynx_actor.h"

int lynx_actor_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void)loop, (void)arg;
    char *command = zstr_recv(pipe);
    bool terminate = !command || streq(command, "$TERM");
    zstr_free(&command);
    return terminate ? -1 : 0;
}
