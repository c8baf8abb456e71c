//  lynx_time: wall-clock milliseconds and RFC 3339 UTC timestamps.
#ifndef LYNX_TIME_H_INCLUDED
#define LYNX_TIME_H_INCLUDED

#include <stdint.h>

#define LYNX_TIME_RFC3339_SIZE 32

//  Milliseconds since the Unix epoch (CLOCK_REALTIME).
int64_t lynx_time_now_ms(void);
//  Monotonic milliseconds, for deadlines and durations.
int64_t lynx_time_mono_ms(void);
//  Format ms since the epoch as "2026-11-23T12:00:00.123Z" into buffer (at least
//  LYNX_TIME_RFC3339_SIZE bytes). Returns buffer.
char *lynx_time_rfc3339(int64_t epoch_ms, char *buffer);

#endif
