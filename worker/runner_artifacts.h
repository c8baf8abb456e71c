//  runner_artifacts: what a finished attempt leaves in its output directory, and the serving
//  of those files to the broker, chunk by chunk, as it asks for them (PROTOCOL.md: FETCH and
//  CHUNK). The broker pulls with a bounded credit of chunks in flight, so neither side holds
//  more than a few chunks whatever the file size; each file's SHA-256 is computed as its
//  chunks are read and sent with the last one.
//
//  Only regular files are offered: symbolic links (wherever they point), devices, sockets and
//  FIFOs are listed as skipped, with the reason, and never opened. Names are relative to the
//  output directory, and the broker can only name a file this module offered.
#ifndef RUNNER_ARTIFACTS_H_INCLUDED
#define RUNNER_ARTIFACTS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  Bytes a CHUNK carries at most, and what a FETCH may ask for.
#define RUNNER_ARTIFACTS_CHUNK_MAX (1024 * 1024)

//  The defaults of config.artifacts (docs/concepts.md): every file, at most 2 GiB each and
//  4 GiB per job.
#define RUNNER_ARTIFACTS_MAX_FILE_BYTES (INT64_C(2) << 30)
#define RUNNER_ARTIFACTS_MAX_JOB_BYTES (INT64_C(4) << 30)

//  Walk output_dir under policy (the batch's config.artifacts as the ASSIGN carries it, or NULL
//  for the defaults: collect all, the default limits) and return
//  {"output_files": [absolute path of every regular file],
//   "files": [{name, size}] offered, "skipped": [{name, reason}]}, names sorted; paths are
//  canonical however output_dir is spelled. A pattern of
//  collect without '/' matches a file's base name at any depth ("*.json"), one with '/' the
//  whole relative name ("plots/*.png"). A missing directory is empty. NULL on out-of-memory.
lynx_value_t *runner_artifacts_scan(const char *output_dir, const lynx_value_t *policy);

typedef struct _runner_artifacts_t runner_artifacts_t;

runner_artifacts_t *runner_artifacts_new(void);
//  Destroy; closes open files. NULL-safe; sets *self_p to NULL.
void runner_artifacts_destroy(runner_artifacts_t **self_p);

//  Offer the files of an attempt (files as runner_artifacts_scan listed them, copied) from
//  output_dir until forgotten. Replaces an earlier offer of the same attempt. -1 on
//  out-of-memory.
int runner_artifacts_offer(runner_artifacts_t *self, const char *job_id, int64_t attempt,
                           const char *output_dir, const lynx_value_t *files);
//  Answer a FETCH body {job_id, attempt, name, offset, length} with a CHUNK body
//  {job_id, attempt, name, offset, data[, eof: true, sha256]}, or one with "error" (and no
//  data) when the attempt, the name or the range is not offered, or the file cannot be read
//  or changed size. Chunks of a file must be fetched in order from offset 0 (a fetch from 0
//  starts the file over). NULL on out-of-memory.
lynx_value_t *runner_artifacts_read(runner_artifacts_t *self, const lynx_value_t *fetch);
//  The broker has the attempt (ACK): stop offering it, and remove its output directory when
//  remove_dir (keep_local_outputs: false).
void runner_artifacts_forget(runner_artifacts_t *self, const char *job_id, int64_t attempt,
                             bool remove_dir);
//  How many attempts are offered.
size_t runner_artifacts_count(const runner_artifacts_t *self);

#endif
