//  broker_series: the format of a job's telemetry series file (a sequence of length-prefixed
//  msgpack records, plain or gzip; see docs/telemetry.md), written record by record and read
//  back as JSON columns or CSV. No sockets and no state: the telemetry store decides what goes
//  where and when.
#ifndef BROKER_SERIES_H_INCLUDED
#define BROKER_SERIES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  A record's big-endian length prefix, in bytes.
#define BROKER_SERIES_RECORD_HEADER 4

//  Append record ({seq, timestamp_ns, values}) in file form to *buffer_p (size *size_p,
//  capacity *capacity_p; grown with realloc, the caller frees). 0, or -1 on out-of-memory
//  (the buffer is unchanged).
int broker_series_encode(const lynx_value_t *record, unsigned char **buffer_p, size_t *size_p,
                         size_t *capacity_p);

//  Append size bytes of whole records to the file at path (created if missing), as a new gzip
//  member when gzip. On failure the file is cut back to its previous size and why (why_size
//  bytes) says what failed: the operation, the path and the cause. Returns 0 or -1.
int broker_series_append(const char *path, bool gzip, const unsigned char *data, size_t size,
                         char *why, size_t why_size);

//  Read the file at path as columns: {job_id, batch_id, count, seq: [...], timestamp_ns: [...],
//  values: {name: [...]}}, null where a frame lacks a value, frames in file order. A missing
//  file is an empty series. variables_csv selects and orders the variables ("a, b"; NULL or
//  "": all, in order of first appearance). NULL with LYNX_EINVALID for a bad variable name,
//  LYNX_ETOOLARGE past max_cells (frames x (variables + 1)), LYNX_EINTERNAL when the file
//  cannot be read. A torn last record (a crash mid-write) ends the series with a warning.
lynx_value_t *broker_series_read(const char *path, const char *batch_id, const char *job_id,
                                 const char *variables_csv, size_t max_cells, lynx_err_t *err);
//  The same as CSV text: "timestamp_ns,<var1>,..." then one line per frame, empty cells where
//  a value is missing (see broker_telemetry_read_csv). Caller frees with free().
char *broker_series_read_csv(const char *path, const char *job_id, const char *variables_csv,
                             size_t max_cells, lynx_err_t *err);

#endif
