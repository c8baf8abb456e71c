//  broker_telemetry: the broker's telemetry store and fan-out.
//
//  Runners forward their jobs' TELEMETRY frames to the broker's events SUB socket. This module
//  validates each frame (it comes from the network), buffers it for its job's series file
//  <data_dir>/telemetry/<s3_prefix>/<batch_id>/<job_id>.msgpack[.gz] (broker_series writes
//  it) and republishes it on the public PUB socket it owns (broker_republish, which also
//  carries job, batch and runner events). It reads a series back as JSON columns or CSV. See
//  docs/telemetry.md for the file format, the topics and the frames.
//
//  Everything runs in the broker's loop thread; no call blocks on the network (publishing
//  never waits: what the PUB socket cannot take is dropped and counted). Disk writes happen in
//  flushes: when a job's buffer is old (the batch's buffer_flush_interval_seconds, checked by
//  broker_telemetry_flush_due), big (limits below), at job end, and at destroy.
#ifndef BROKER_TELEMETRY_H_INCLUDED
#define BROKER_TELEMETRY_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "broker_republish.h"
#include "broker_telemetry_config.h"
#include "lynx_err.h"
#include "lynx_value.h"

typedef struct _broker_telemetry_t broker_telemetry_t;

//  Defaults of broker_telemetry_set_limits.
#define BROKER_TELEMETRY_JOB_BUFFER_BYTES (256u * 1024u)          //  a job's buffer flushes early
#define BROKER_TELEMETRY_TOTAL_BUFFER_BYTES (64u * 1024u * 1024u) //  all jobs together
#define BROKER_TELEMETRY_READ_MAX_CELLS 2000000u //  frames x (variables + 1) in one read

//  Counters since creation, for logs, health and the bench.
typedef struct {
    uint64_t frames_received;  //  bodies given to broker_telemetry_ingest
    uint64_t frames_rejected;  //  malformed, hostile ids, unknown batch: dropped
    uint64_t frames_stored;    //  written to a series file
    uint64_t frames_unwritten; //  lost to a disk error
    uint64_t frames_published; //  taken by the PUB socket
    uint64_t frames_dropped;   //  valid but not published (PUB refused, or out of memory)
    uint64_t frames_lost;      //  lost upstream, from gaps in each job's seq
    uint64_t events_published;
    uint64_t events_dropped;
    uint64_t flushes;
    uint64_t jobs;           //  jobs tracked in memory now
    uint64_t buffered_bytes; //  waiting for a flush now
} broker_telemetry_stats_t;

//  Create the store under <data_dir>/telemetry (created if needed) and, when pub_endpoint is
//  neither NULL nor "", bind a PUB socket there ("tcp://0.0.0.0:*" picks a port; see
//  broker_telemetry_endpoint). NULL with err naming the path or endpoint and the cause.
//  keys (or NULL) secures the PUB socket as broker_republish_new does.
broker_telemetry_t *broker_telemetry_new(const char *data_dir, const char *pub_endpoint,
                                         broker_keys_t *keys, lynx_err_t *err);
//  Flush every buffer, close the PUB socket (unsent messages are discarded) and destroy; sets
//  *self_p to NULL. NULL-safe.
void broker_telemetry_destroy(broker_telemetry_t **self_p);
//  The PUB socket's resolved endpoint ("tcp://127.0.0.1:41234"), or "" without one. Borrowed.
const char *broker_telemetry_endpoint(const broker_telemetry_t *self);
//  The PUB socket, for job, batch and runner events (borrowed; lives as long as self).
broker_republish_t *broker_telemetry_republish(broker_telemetry_t *self);

//  Override the memory and read limits (0 keeps a limit as it is). For tests and tuning.
void broker_telemetry_set_limits(broker_telemetry_t *self, size_t job_buffer_bytes,
                                 size_t total_buffer_bytes, size_t read_max_cells);

//  Tell the store about a batch and its `telemetry` section (NULL: defaults: no prefix, plain
//  files, flush every 30 s). Call it for every batch the broker knows, at submit and when
//  loading stored batches: frames for other batches are refused. Calling again updates it.
//  On an invalid section the batch is still configured, with defaults for the bad fields, and
//  -1 with err says what was wrong; -1 with LYNX_EINVALID also for a bad batch_id (not kept).
int broker_telemetry_configure_batch(broker_telemetry_t *self, const char *batch_id,
                                     const lynx_value_t *telemetry_config, lynx_err_t *err);

//  Take one decoded TELEMETRY body as a runner forwarded it ({job_id, batch_id, seq,
//  timestamp_ns, values[, dropped]}): buffer it for the job's series file and publish it.
//  Returns 0, or -1 with err (may be NULL) when the frame was refused (counted in
//  frames_rejected and logged here at most every 10 s, so the caller need not log it) or, out
//  of memory, not stored (frames_unwritten).
int broker_telemetry_ingest(broker_telemetry_t *self, const lynx_value_t *telemetry_body,
                            lynx_err_t *err);

//  Flush the buffers older than their batch's flush interval and forget jobs idle for 10
//  minutes. now_ms is lynx_time_mono_ms(); call it from the broker's tick. Returns the number
//  of jobs flushed, or -1 when a write failed (logged here; the frames are counted unwritten).
int broker_telemetry_flush_due(broker_telemetry_t *self, int64_t now_ms);

//  An attempt of the job ended (any outcome): flush its buffer and forget its in-memory state.
//  Frames arriving later (a retry, or stragglers) are appended to the same file. Unknown job:
//  0. Returns -1 when the write failed (logged here).
int broker_telemetry_job_ended(broker_telemetry_t *self, const char *job_id);

//  A job's series as columns, after flushing its buffer: {job_id, batch_id, count, seq: [...],
//  timestamp_ns: [...], values: {name: [...]}}, null where a frame lacks a value, frames in
//  arrival order. variables_csv selects and orders the variables ("a, b": split at commas,
//  spaces around names trimmed; NULL or "": all, in order of first appearance). An unknown job or
//  batch, or no data: count 0, not an error. NULL with LYNX_EINVALID for a bad id or variable name,
//  LYNX_ETOOLARGE past the read limit, LYNX_EINTERNAL when the file cannot be read. The result
//  belongs to the caller.
lynx_value_t *broker_telemetry_read(broker_telemetry_t *self, const char *batch_id,
                                    const char *job_id, const char *variables_csv, lynx_err_t *err);
//  The same series as CSV text: a header "timestamp_ns,<var1>,<var2>,..." (a name with ',' or
//  '"' quoted as RFC 4180 says) then one line per frame, empty cells where a value is missing
//  (booleans as true/false, doubles in their shortest exact form, nan/inf/-inf). Errors as
//  broker_telemetry_read. Caller frees with free().
char *broker_telemetry_read_csv(broker_telemetry_t *self, const char *batch_id, const char *job_id,
                                const char *variables_csv, lynx_err_t *err);

//  Copy the counters into *stats.
void broker_telemetry_stats(const broker_telemetry_t *self, broker_telemetry_stats_t *stats);

#endif
