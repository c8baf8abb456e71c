//  runner_telemetry: one job attempt's telemetry intake and early-termination watchdog.
//
//  It binds a PULL socket on tcp://127.0.0.1 (an ephemeral port) for the scenario's telemetry
//  client (TETRYX_TELEMETRY_URL) and takes TELEMETRY frames off it (proto/PROTOCOL.md). Frames
//  the codec refuses, other commands, a negative seq and values that are not numbers or
//  booleans are counted and dropped; frames over RUNNER_TELEMETRY_MAX_FRAME_BYTES never reach
//  us (libzmq closes that connection, the client reconnects, the loss shows as a seq gap).
//
//  The latest value of every variable is kept. The batch's early_termination rules are
//  evaluated on them after a frame when 1 / check_frequency_hz has passed since the last
//  evaluation, and on a timer of that period when frames came since (runner_telemetry_check),
//  so a last frame is checked too: at least check_frequency_hz times a second while frames
//  arrive, at most twice that, never when none do.
//  The frames are forwarded to the broker, decimated to telemetry.sampling_rate_hz of scenario
//  time and filtered to telemetry.variables, with job_id, batch_id and dropped set by us; the
//  watchdog still sees every frame and variable.
//
//  On the runner's zloop (runner_telemetry_watch) it polls its sockets and runs its check
//  timer itself, and tells the runner when a rule fires and, once the scenario has exited,
//  when its last frames are in. Underneath, drain and check take the time as an argument
//  (monotonic ms), so tests drive the clock and see exactly which frame is evaluated.
#ifndef RUNNER_TELEMETRY_H_INCLUDED
#define RUNNER_TELEMETRY_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  ZMQ_MAXMSGSIZE of the PULL: telemetry frames are small, and libzmq refuses a bigger one
//  before allocating it.
#define RUNNER_TELEMETRY_MAX_FRAME_BYTES (1024 * 1024)
//  ZMQ_RCVHWM of the PULL, as the clients' send queue: past it the client drops (and counts).
#define RUNNER_TELEMETRY_RCVHWM 10000
//  Most messages one runner_telemetry_drain takes, so a flood cannot starve the caller's loop.
#define RUNNER_TELEMETRY_BATCH 256
//  Most distinct variable names kept for last_values (the rules' variables always are).
#define RUNNER_TELEMETRY_MAX_VARIABLES 1024

typedef struct _runner_telemetry_t runner_telemetry_t;

//  Create the intake of one job attempt and bind its PULL socket. early_termination and
//  telemetry are the ASSIGN's optional fields, NULL when absent. A rules block lynx_rules
//  refuses (the broker checked it already) is logged and means no watchdog; no rules or
//  enabled: false never fire. telemetry: sampling_rate_hz absent or <= 0 forwards every frame;
//  variables absent or empty forwards every variable. job_id and batch_id are copied; now_ms
//  is when the run starts (elapsed_seconds counts from it). NULL with err when the socket
//  cannot be made or bound, or on out-of-memory.
runner_telemetry_t *runner_telemetry_new(const char *job_id, const char *batch_id,
                                         const lynx_value_t *early_termination,
                                         const lynx_value_t *telemetry, int64_t now_ms,
                                         lynx_err_t *err);

//  Destroy, closing the sockets (frames still queued are lost) and leaving the loop it
//  watches on; sets *self_p to NULL. NULL-safe; may be called from settled, not from fired.
void runner_telemetry_destroy(runner_telemetry_t **self_p);

//  "tcp://127.0.0.1:<port>", the value of TETRYX_TELEMETRY_URL. Borrowed.
const char *runner_telemetry_endpoint(const runner_telemetry_t *self);

//  The sockets to poll: the PULL, and a monitor of its connections (NULL when libzmq could
//  not make one). Call runner_telemetry_drain when either is readable. Borrowed.
zsock_t *runner_telemetry_socket(runner_telemetry_t *self);
zsock_t *runner_telemetry_monitor(runner_telemetry_t *self);

//  Period of the check timer, ms (1000 / check_frequency_hz, at least 1); 0 when nothing can
//  fire (no rules, disabled or refused): then there is no timer.
int64_t runner_telemetry_check_interval_ms(const runner_telemetry_t *self);

//  Take up to RUNNER_TELEMETRY_BATCH messages waiting on the PULL without blocking, and the
//  monitor's events. Each valid frame updates the latest values, may be evaluated (see above)
//  and may be forwarded to forward, a PUB (may be NULL: nothing is forwarded), without ever
//  blocking: a refused send is counted in frames_forward_dropped. Returns the number of
//  messages taken. Once a rule has fired, messages are taken and discarded uncounted.
int runner_telemetry_drain(runner_telemetry_t *self, void *forward, int64_t now_ms);

//  Take one message's bytes as drain takes each single-frame message off the PULL: decode,
//  check, record, maybe evaluate and forward (forward as for drain). Ignored once a rule has
//  fired. For tests and the fuzzer, which have frames but no scenario to send them.
void runner_telemetry_take(runner_telemetry_t *self, const void *data, size_t size, void *forward,
                           int64_t now_ms);

//  What the check timer does: evaluate the rules if frames came since the last evaluation.
//  Returns true when a rule has fired, now or before.
bool runner_telemetry_check(runner_telemetry_t *self, int64_t now_ms);

//  The trigger event once a rule fired, else NULL. Borrowed, lives as long as self:
//  {rule_name, description (null when none), elapsed_seconds, telemetry_at_trigger (the
//  values of the last frame evaluated, which made the rule fire), seq and timestamp_ns of that
//  frame, triggered_at (RFC 3339 UTC wall clock)}.
const lynx_value_t *runner_telemetry_trigger(const runner_telemetry_t *self);

//  True while a scenario connection is open on the PULL, as of the last drain: frames may
//  still be on their way. After the scenario exits its connections close within moments.
bool runner_telemetry_connected(const runner_telemetry_t *self);

//  Notifications to the owner of a watched intake; arg as given to runner_telemetry_watch.
typedef void(runner_telemetry_fn)(void *arg);

//  Poll the sockets on loop and run the check timer there. Frames are forwarded to *forward_p
//  as it is at each wake-up (the runner rebuilds its PUB when the broker moves; NULL: nothing
//  forwarded). When a rule fires, polling stops and fired(arg) is called, once; it must not
//  destroy self (the owner kills the scenario). -1 when loop refuses a reader or timer.
int runner_telemetry_watch(runner_telemetry_t *self, zloop_t *loop, zsock_t **forward_p,
                           runner_telemetry_fn *fired, void *arg);

//  The scenario has exited: keep taking frames until its connections close or timeout_ms
//  passes, evaluate them as they come (fired may still be called), then stop polling and call
//  settled(arg), once, which may destroy self. At once when nothing can come any more.
void runner_telemetry_settle(runner_telemetry_t *self, int64_t timeout_ms,
                             runner_telemetry_fn *settled);

//  The result's telemetry_data, owned by the caller: {frames_received (valid frames),
//  frames_invalid, frames_dropped_by_client (gaps in seq), frames_forwarded,
//  frames_forward_dropped, last_values {name: value}, trigger (as above, or null)}. NULL on
//  out-of-memory.
lynx_value_t *runner_telemetry_summary(const runner_telemetry_t *self);

#endif
