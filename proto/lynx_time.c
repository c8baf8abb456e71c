#include "lynx_time.h"

#include <stdio.h>
#include <time.h>

static int64_t s_clock_ms(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t lynx_time_now_ms(void)
{
    return s_clock_ms(CLOCK_REALTIME);
}

int64_t lynx_time_mono_ms(void)
{
    return s_clock_ms(CLOCK_MONOTONIC);
}

char *lynx_time_rfc3339(int64_t epoch_ms, char *buffer)
{
    //  Floor division, so instants before 1970 format right too.
    int64_t millis = ((epoch_ms % 1000) + 1000) % 1000;
    time_t seconds = (time_t)((epoch_ms - millis) / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    snprintf(buffer, LYNX_TIME_RFC3339_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             (utc.tm_year + 1900) % 10000, (utc.tm_mon + 1) % 100, utc.tm_mday % 100,
             utc.tm_hour % 100, utc.tm_min % 100, utc.tm_sec % 100, (int)millis);
    return buffer;
}
