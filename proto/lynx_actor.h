//  lynx_actor: what every component's actor (broker, gateway, runner) does with its zactor
//  pipe. The owner talks to an actor only to stop it ($TERM, sent by zactor_destroy); any other
//  command is ignored so that a newer owner cannot wedge an older actor.
#ifndef LYNX_ACTOR_H_INCLUDED
#define LYNX_ACTOR_H_INCLUDED

#include <czmq.h>

//  A zloop reader for the actor's pipe: reads one command and returns -1, ending the loop, on
//  $TERM or when the pipe is gone; 0 otherwise. arg is unused.
int lynx_actor_on_pipe(zloop_t *loop, zsock_t *pipe, void *arg);

#endif
