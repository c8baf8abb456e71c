//  runner: the lynx-runner actor. Registers with the broker (again after every reconnection),
//  publishes heartbeats to the broker's events socket, runs assigned jobs as scenario
//  subprocesses (one engine table entry per kind of scenario), reports their outcome and keeps
//  each result until the broker acknowledges it. See proto/PROTOCOL.md.
#ifndef RUNNER_H_INCLUDED
#define RUNNER_H_INCLUDED

#include <czmq.h>

#include "runner_config.h"

//  Start the runner actor; it borrows config, which must outlive it. The actor sends "READY"
//  on its pipe once the broker accepted the registration, and "FATAL <reason>" when the broker
//  refused it for good (invalid_argument, conflict) or the broker endpoint cannot be used.
zactor_t *runner_start(runner_config_t *config);

#endif
