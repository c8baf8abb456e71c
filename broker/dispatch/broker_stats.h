//  broker_stats: a batch's throughput and ETA, from the end times of its recent jobs. Only jobs
//  that ran are counted (the caller does not count Pending jobs a cancel ends), so a cancelled
//  batch does not report thousands of jobs a minute.
#ifndef BROKER_STATS_H_INCLUDED
#define BROKER_STATS_H_INCLUDED

#include <stdint.h>

typedef struct _broker_stats_t broker_stats_t;

//  Throughput is measured over the last minute...
#define BROKER_STATS_WINDOW_MS 60000
//  ...from at most this many recent job ends.
#define BROKER_STATS_RECENT_MAX 4096

//  Empty statistics for a batch created at started_ms (epoch ms). NULL on out-of-memory.
broker_stats_t *broker_stats_new(int64_t started_ms);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_stats_destroy(broker_stats_t **self_p);

//  One of the batch's jobs ended at now_ms (epoch ms).
void broker_stats_job_ended(broker_stats_t *self, int64_t now_ms);
//  Jobs ended per minute over the window (a batch younger than the window: over its age,
//  at least 1 s). NULL-safe: 0.
double broker_stats_throughput(const broker_stats_t *self, int64_t now_ms);
//  Minutes until remaining jobs are done at the current throughput: 0 when none remain, -1
//  when unknown (nothing ended in the window).
double broker_stats_eta_minutes(const broker_stats_t *self, int64_t remaining, int64_t now_ms);

#endif
