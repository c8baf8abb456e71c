//  broker_republish: the broker's public PUB socket, where scripts, `lynx watch` and the
//  dashboard subscribe: telemetry frames ("telemetry.<batch>.<job>") and job, batch and runner
//  events ("event.<batch>.<job>", "event.<batch>", "runner.<runner>"). See docs/telemetry.md.
//  Publishing never waits: what the socket cannot take is dropped and counted.
#ifndef BROKER_REPUBLISH_H_INCLUDED
#define BROKER_REPUBLISH_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "broker_keys.h"
#include "lynx_err.h"
#include "lynx_value.h"

typedef struct _broker_republish_t broker_republish_t;

//  Runner ids are an operator's choice (often a host name, dots included): 1 to this many
//  printable characters without spaces.
#define BROKER_REPUBLISH_RUNNER_ID_MAX 127

//  What was published and dropped since creation.
typedef struct {
    uint64_t frames_published;
    uint64_t frames_dropped; //  valid but not published (PUB refused, or out of memory)
    uint64_t events_published;
    uint64_t events_dropped;
} broker_republish_stats_t;

//  Bind a PUB socket on endpoint ("tcp://0.0.0.0:*" picks a port); NULL or "": no socket, and
//  every publish is a no-op that succeeds. With keys the socket is a CURVE server in the
//  telemetry domain (only known subscribers receive anything). NULL with err naming the
//  endpoint and the cause.
broker_republish_t *broker_republish_new(const char *endpoint, broker_keys_t *keys,
                                         lynx_err_t *err);
//  Close the socket (unsent messages are discarded); sets *self_p to NULL. NULL-safe.
void broker_republish_destroy(broker_republish_t **self_p);
//  The resolved endpoint ("tcp://127.0.0.1:41234"), or "" without a socket. Borrowed.
const char *broker_republish_endpoint(const broker_republish_t *self);
//  True when there is a socket (a frame worth building).
bool broker_republish_active(const broker_republish_t *self);

//  Publish a stored frame {seq, timestamp_ns, values} as a TELEMETRY message with the job's
//  ids (and dropped, when an integer) on "telemetry.<batch_id>.<job_id>". Takes *record_p
//  whatever happens. Ids must be valid (broker_telemetry_config_id_valid).
void broker_republish_frame(broker_republish_t *self, const char *batch_id, const char *job_id,
                            lynx_value_t **record_p, const lynx_value_t *dropped);

//  Publish a job's state change on "event.<batch_id>.<job_id>" as the msgpack map {type:
//  "job", batch_id, job_id, status, time_ms, ...extra} (extra: a map or NULL, borrowed; its
//  keys never replace those). Returns -1 when an id is invalid or the socket refused it
//  (counted in events_dropped), 0 otherwise (also without a socket).
int broker_republish_job_event(broker_republish_t *self, const char *batch_id, const char *job_id,
                               const char *status, const lynx_value_t *extra);
//  A batch's status change on "event.<batch_id>": {type: "batch", batch_id, status, time_ms,
//  ...extra}. As broker_republish_job_event.
int broker_republish_batch_event(broker_republish_t *self, const char *batch_id, const char *status,
                                 const lynx_value_t *extra);
//  A runner's status change (Quarantined, or what a resume gives it) on "runner.<runner_id>":
//  {type: "runner", runner_id, status, time_ms, ...extra}. As broker_republish_job_event.
int broker_republish_runner_event(broker_republish_t *self, const char *runner_id,
                                  const char *status, const lynx_value_t *extra);

//  Copy the counters into *stats.
void broker_republish_stats(const broker_republish_t *self, broker_republish_stats_t *stats);

#endif
