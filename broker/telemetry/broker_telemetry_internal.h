//  broker_telemetry_internal: what the two halves of broker_telemetry share. broker_telemetry.c
//  validates, buffers, flushes and publishes; broker_telemetry_read.c reads a series file back.
//  Only those two files include this header; everyone else uses broker_telemetry.h.
#ifndef BROKER_TELEMETRY_INTERNAL_H_INCLUDED
#define BROKER_TELEMETRY_INTERNAL_H_INCLUDED

#include <czmq.h>

#include "broker_telemetry.h"

#define TELEMETRY_PREFIX_MAX 200
#define TELEMETRY_RECORD_HEADER 4          //  a record's big-endian length prefix
#define TELEMETRY_FILE_BUFFER (128 * 1024) //  zlib's buffer, reading and writing
#define TELEMETRY_QUOTE_MAX (BROKER_TELEMETRY_NAME_MAX + 8)

//  A batch's storage settings.
typedef struct {
    char id[BROKER_TELEMETRY_ID_MAX + 1];
    char prefix[TELEMETRY_PREFIX_MAX + 1]; //  "" or "a/b": no leading, trailing or double '/'
    bool gzip;
    int64_t flush_interval_ms;
} telemetry_batch_t;

//  A job seen recently: its records waiting for a flush, and its seq for loss counting.
typedef struct {
    char id[BROKER_TELEMETRY_ID_MAX + 1];
    telemetry_batch_t *batch; //  borrowed: batches live as long as self
    unsigned char *buffer;
    size_t size;
    size_t capacity;
    size_t frames;             //  records in buffer
    int64_t first_buffered_ms; //  monotonic time of the oldest record in buffer
    int64_t last_frame_ms;
    int64_t last_seq; //  -1 before the first frame
    bool dir_ready;
    bool write_failed; //  logged once per job
} telemetry_job_t;

struct _broker_telemetry_t {
    char *root; //  <data_dir>/telemetry
    zsock_t *pub;
    char endpoint[256];
    zhashx_t *batches; //  id -> telemetry_batch_t
    zhashx_t *jobs;    //  id -> telemetry_job_t
    size_t job_buffer_bytes;
    size_t total_buffer_bytes;
    size_t read_max_cells;
    broker_telemetry_stats_t stats;
    uint64_t rejected_unlogged;
    int64_t rejected_logged_ms;
    char rejected_reason[LYNX_ERR_FIELD_MAX + LYNX_ERR_MESSAGE_MAX + 2];
};

//  True when id is 1-BROKER_TELEMETRY_ID_MAX characters of [A-Za-z0-9_-].
bool telemetry_id_valid(const char *id, size_t len);
//  Variable names are what scenarios chose (any string without NUL, for the clients); only
//  control characters are refused, which no CSV header or terminal should carry.
bool telemetry_name_valid(const char *name, size_t len);
//  Quote untrusted text for a message into out (TELEMETRY_QUOTE_MAX bytes): at most
//  TELEMETRY_QUOTE_MAX - 4 bytes, non-printables as '?'. Returns out.
const char *telemetry_quote(const char *text, size_t len, char *out);
//  The job's file path into path (PATH_MAX bytes); with dir_only, its directory.
void telemetry_job_path(const broker_telemetry_t *self, const telemetry_job_t *job, bool dir_only,
                        char *path);
//  Write the job's buffer to its file and empty it, whatever happens: a buffer that cannot be
//  written is counted lost rather than kept (memory stays bounded while the disk is full).
//  Returns 0, or -1 when the write failed (logged there, once per job).
int telemetry_flush(broker_telemetry_t *self, telemetry_job_t *job);

#endif
