//  broker: the lynx-broker actor. One zloop thread owns the runner ROUTER, the API ROUTER and
//  the store; main only parses flags, starts the actor and waits for a signal.
#ifndef BROKER_H_INCLUDED
#define BROKER_H_INCLUDED

#include <czmq.h>

#include "lynx_err.h"

typedef struct {
    const char *data_dir;           //  SQLite database and later telemetry live here
    const char *runner_endpoint;    //  ROUTER bound for runners, e.g. tcp://0.0.0.0:5555
    const char *api_endpoint;       //  ROUTER bound for API clients (the gateway)
    const char *telemetry_endpoint; //  PUB for scripts: telemetry frames and job/batch events;
                                    //  NULL or "": the runner endpoint's host, any free port
    char *telemetry_endpoint_out;   //  optional: receives the resolved PUB endpoint (256 bytes)
    const char *events_endpoint;    //  SUB bound for runners' heartbeats; NULL or "": the runner
                                    //  endpoint's interface, any free port
    int heartbeat_interval_ms;      //  told to runners at registration
    int heartbeat_misses;           //  runner is Offline after this many silent intervals
    int timeout_grace_secs;         //  a job with no result this long after its timeout ends
                                    //  Timeout on the broker's own authority (0: 30 s)
    int quarantine_after;           //  a runner whose last this-many attempts failed while
                                    //  other runners completed jobs of the same batches is
                                    //  quarantined (0: 5; -1: never)
    int min_free_mb;                //  below this free space in data_dir, refuse writes (0: never)
    //  CURVE on the runner, events and telemetry sockets with data_dir/keys (false: plain
    //  sockets, anyone who reaches them is trusted: lynx-broker --insecure, and unit tests).
    bool curve;
    char *public_key_out; //  if set (64 bytes): the broker's public key, Z85 ("" if insecure)
    int artifact_retention_days; //  remove an ended batch's files this many days after its
                                 //  last one was stored (0: keep them)
} broker_options_t;

//  Start the broker actor: opens the store, binds both endpoints, loads surviving batches.
//  Returns NULL with err naming what could not be opened or bound. The actual endpoints
//  (ephemeral ports resolved) are copied into runner_endpoint_out/api_endpoint_out (each at
//  least 256 bytes).
zactor_t *broker_start(const broker_options_t *options, char *runner_endpoint_out,
                       char *api_endpoint_out, lynx_err_t *err);

#endif
