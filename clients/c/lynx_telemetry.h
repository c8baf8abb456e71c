//  lynx_telemetry: the scenario side of Lynx telemetry, for C and C++ scenarios.
//
//  The runner that starts a scenario binds a ZeroMQ PULL socket on 127.0.0.1 and exports its
//  endpoint as TETRYX_TELEMETRY_URL. A scenario creates one client, sends a sample of named
//  scalars per step, and closes it before exiting:
//
//      lynx_telemetry_t *telemetry = lynx_telemetry_from_env ();
//      for (step = 0; step < steps; step++) {
//          lynx_telemetry_value_t values[] = {
//              lynx_telemetry_double ("orbit.radius_km", radius_km),
//              lynx_telemetry_int ("step", step),
//              lynx_telemetry_bool ("eclipse", in_shadow),
//          };
//          lynx_telemetry_send (telemetry, sim_time_ns, 3, values);  //  or LYNX_TELEMETRY_NOW
//      }
//      lynx_telemetry_close (&telemetry);
//
//  Guarantees: a send never blocks (frames wait in a bounded queue; when it is full the frame
//  is dropped and counted, and its sequence number is used anyway so the receiver sees the
//  gap); without TETRYX_TELEMETRY_URL the client is a no-op; lynx_telemetry_close gives queued
//  frames a bounded time to reach the runner.
//
//  Each frame is the TELEMETRY message of proto/PROTOCOL.md: one ZeroMQ frame holding the
//  msgpack array ["LYNX", 1, "TELEMETRY", {"seq", "timestamp_ns", "values"}]. Link with
//  `pkg-config --cflags --libs lynx-telemetry` (libzmq and msgpack-c underneath).
//
//  A client is not thread-safe: use one per thread, or serialise the calls.
#ifndef LYNX_TELEMETRY_H_INCLUDED
#define LYNX_TELEMETRY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The environment variable the runner sets to its telemetry endpoint.
#define LYNX_TELEMETRY_ENV_URL "TETRYX_TELEMETRY_URL"
//  Frames queued before sends start dropping (the runner's own queue adds to it).
#define LYNX_TELEMETRY_SNDHWM 10000
//  How long lynx_telemetry_close lets queued frames reach the runner.
#define LYNX_TELEMETRY_LINGER_MS 500
//  The timestamp_ns that means "now" (CLOCK_REALTIME). Not 0: simulation time starts at 0.
#define LYNX_TELEMETRY_NOW INT64_MIN

typedef struct _lynx_telemetry_t lynx_telemetry_t;

typedef enum {
    LYNX_TELEMETRY_DOUBLE = 1, //  msgpack float 64; NaN and infinities are sent as they are
    LYNX_TELEMETRY_INT,        //  msgpack integer (int64)
    LYNX_TELEMETRY_BOOL,       //  msgpack true / false
} lynx_telemetry_type_t;

//  One named value of a sample. The name is borrowed for the call: a NUL-terminated string,
//  unique within the sample.
typedef struct {
    const char *name;
    lynx_telemetry_type_t type;
    union {
        double as_double;
        int64_t as_int;
        bool as_bool;
    };
} lynx_telemetry_value_t;

//  Open the client for TETRYX_TELEMETRY_URL (tcp://127.0.0.1:41234). Never NULL: when the
//  variable is unset or empty, or the socket cannot be made, it returns a no-op client whose
//  sends do nothing (lynx_telemetry_active says which; a failure is printed once on stderr
//  and kept in lynx_telemetry_error). The caller owns it; close with lynx_telemetry_close.
lynx_telemetry_t *lynx_telemetry_from_env(void);
//  The same for an explicit endpoint; NULL or "" gives a no-op client.
lynx_telemetry_t *lynx_telemetry_new(const char *url);
//  Close the client, waiting up to LYNX_TELEMETRY_LINGER_MS for queued frames to leave;
//  sets *self_p to NULL. NULL-safe.
void lynx_telemetry_close(lynx_telemetry_t **self_p);

//  Send one sample of count values, without waiting. timestamp_ns is nanoseconds (simulation
//  or wall-clock time, as the scenario chooses), or LYNX_TELEMETRY_NOW for the wall clock.
//  Returns 0 when the frame was queued, and also on a no-op client (nothing is checked
//  there). Returns -1 with errno:
//    EAGAIN  the queue is full (or the socket failed): the frame is dropped and counted in
//            lynx_telemetry_dropped, and its sequence number is used;
//    EINVAL  values is NULL with count > 0, a name is NULL or repeated, or a type is unknown;
//    EMSGSIZE the frame would exceed the protocol's 64 MiB;
//    ENOMEM  out of memory.
//  After EINVAL, EMSGSIZE or ENOMEM nothing was sent and no sequence number was used.
int lynx_telemetry_send(lynx_telemetry_t *self, int64_t timestamp_ns, size_t count,
                        const lynx_telemetry_value_t *values);
//  Send count doubles named names[i]; same behaviour and errors as lynx_telemetry_send.
int lynx_telemetry_send_doubles(lynx_telemetry_t *self, int64_t timestamp_ns,
                                const char *const *names, const double *values, size_t count);

//  True when sends go to a runner, false for a no-op client. NULL-safe.
bool lynx_telemetry_active(const lynx_telemetry_t *self);
//  Frames dropped because the queue was full. NULL-safe.
uint64_t lynx_telemetry_dropped(const lynx_telemetry_t *self);
//  Sequence number the next frame will carry (frames produced so far, dropped or not; the
//  first frame is 0). NULL-safe.
uint64_t lynx_telemetry_seq(const lynx_telemetry_t *self);
//  Why a client for a set URL is a no-op ("connect not-a-url: Invalid argument"), or NULL.
//  Borrowed until the client is closed. NULL-safe.
const char *lynx_telemetry_error(const lynx_telemetry_t *self);

//  Values for a sample, as initialisers: lynx_telemetry_double ("orbit.radius_km", r).
static inline lynx_telemetry_value_t lynx_telemetry_double(const char *name, double value)
{
    lynx_telemetry_value_t item;
    item.name = name;
    item.type = LYNX_TELEMETRY_DOUBLE;
    item.as_double = value;
    return item;
}

static inline lynx_telemetry_value_t lynx_telemetry_int(const char *name, int64_t value)
{
    lynx_telemetry_value_t item;
    item.name = name;
    item.type = LYNX_TELEMETRY_INT;
    item.as_int = value;
    return item;
}

static inline lynx_telemetry_value_t lynx_telemetry_bool(const char *name, bool value)
{
    lynx_telemetry_value_t item;
    item.name = name;
    item.type = LYNX_TELEMETRY_BOOL;
    item.as_bool = value;
    return item;
}

#ifdef __cplusplus
}
#endif

#endif
