//  broker_artifacts: the files of ended attempts, pulled from their runners chunk by chunk
//  (PROTOCOL.md: FETCH, CHUNK) and kept under data_dir/artifacts/<batch_id>/<job_id>/a<attempt>/.
//
//  No sockets and no store: it says which FETCHes to send and what each CHUNK means, and the
//  dispatcher sends them, ends the job once its files are in, and records them. At most
//  BROKER_ARTIFACTS_CREDIT chunks of one attempt are in flight, so memory stays bounded
//  whatever the file size; each file is written to a partial file, checked against its size and
//  the runner's SHA-256, synced, and only then renamed into the attempt's directory, itself
//  renamed into place when every file is in. Nothing partial is ever at a final path, and
//  partial files left by a crash are removed at start-up.
#ifndef BROKER_ARTIFACTS_H_INCLUDED
#define BROKER_ARTIFACTS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_value.h"

#define BROKER_ARTIFACTS_CHUNK (1024 * 1024)
#define BROKER_ARTIFACTS_CREDIT 4
//  An upload with no chunk for this long is abandoned (the runner is asked again later).
#define BROKER_ARTIFACTS_STALL_MS 30000
//  After this many failed uploads of one attempt (bad data, not a full disk), the attempt ends
//  without its files, each listed as skipped with the last reason.
#define BROKER_ARTIFACTS_MAX_FAILURES 3

typedef struct broker_artifacts_t broker_artifacts_t;

//  Keep artifacts under data_dir/artifacts (created), removing what a crash left half-written.
//  NULL with err when the directory cannot be made.
broker_artifacts_t *broker_artifacts_new(const char *data_dir, lynx_err_t *err);
void broker_artifacts_destroy(broker_artifacts_t **self_p);

//  What an upload that has every file hands over: the FINISHED body it was started for, the
//  files ([{name, size, sha256, content_type, path}], path relative to data_dir) and the
//  skipped entries ([{name, reason}]: the runner's, plus names the broker refused). Borrowed
//  until broker_artifacts_done.
typedef struct {
    const char *job_id;
    int64_t attempt;
    const lynx_value_t *finished;
    const lynx_value_t *files;
    const lynx_value_t *skipped;
} broker_upload_view_t;

typedef enum {
    BROKER_UPLOAD_NONE,       //  nothing to fetch: end the job now (*view_p describes it)
    BROKER_UPLOAD_STARTED,    //  FETCHes were appended; the job ends when the last chunk is in
    BROKER_UPLOAD_BUSY,       //  this attempt is being fetched already (a repeated FINISHED)
    BROKER_UPLOAD_ERROR = -1, //  the disk refused (err): do not acknowledge; asked again later
} broker_upload_rc_t;

//  A FINISHED arrived from runner_id for an attempt of batch_id: start fetching the files its
//  "artifacts" lists under policy (the batch's config.artifacts, or NULL for the defaults; the
//  broker enforces the limits too). Names that are not relative paths inside the output
//  directory ("../../etc/passwd", "/etc/shadow"), repeated, or too long are dropped, logged
//  and listed as skipped. FETCH bodies to send are appended to fetches. With
//  BROKER_UPLOAD_NONE, *view_p describes the (empty) upload until broker_artifacts_done.
broker_upload_rc_t broker_artifacts_begin(broker_artifacts_t *self, const char *runner_id,
                                          const char *batch_id, const lynx_value_t *finished,
                                          const lynx_value_t *policy, lynx_value_t *fetches,
                                          broker_upload_view_t *view_p, lynx_err_t *err);

typedef enum {
    BROKER_CHUNK_MORE,        //  written; more FETCHes may have been appended
    BROKER_CHUNK_DONE,        //  every file is in: *view_p describes the upload
    BROKER_CHUNK_FAILED = -1, //  the upload is discarded (err says why: tell the runner)
    BROKER_CHUNK_STRAY = -2,  //  no upload of runner_id expects this chunk (err)
} broker_chunk_rc_t;

//  A CHUNK from runner_id.
broker_chunk_rc_t broker_artifacts_chunk(broker_artifacts_t *self, const char *runner_id,
                                         const lynx_value_t *chunk, lynx_value_t *fetches,
                                         broker_upload_view_t *view_p, lynx_err_t *err);

//  The job's end is recorded: forget the upload, and remove the job's directories of other
//  attempts.
void broker_artifacts_done(broker_artifacts_t *self, const char *job_id, int64_t attempt);

//  Uploads silent for BROKER_ARTIFACTS_STALL_MS are discarded; each is appended to stalled as
//  {runner_id, job_id, attempt, reason}.
void broker_artifacts_expire(broker_artifacts_t *self, int64_t now_mono_ms, lynx_value_t *stalled);
//  The disk is full: discard every upload (the runners send FINISHED again later).
void broker_artifacts_drop_all(broker_artifacts_t *self);
//  The runner is gone: discard its uploads.
void broker_artifacts_drop_runner(broker_artifacts_t *self, const char *runner_id);
//  True while an attempt of job_id is being fetched (its timeout backstop waits).
bool broker_artifacts_busy(const broker_artifacts_t *self, const char *job_id);

//  Retention: remove the files of every batch whose newest file is older than cutoff_epoch_s
//  and for which keep(batch_id, arg) is false (the caller keeps a batch that still runs).
//  Each removed batch id is appended to removed. Returns how many were removed.
typedef bool(broker_artifacts_keep_fn)(const char *batch_id, void *arg);
size_t broker_artifacts_expire_batches(broker_artifacts_t *self, int64_t cutoff_epoch_s,
                                       broker_artifacts_keep_fn *keep, void *arg,
                                       lynx_value_t *removed);

//  The gateway path of a job's artifact: "/jobs/<job_id>/artifacts/<name>", the name's bytes
//  outside [A-Za-z0-9._~/-] percent-escaped, into url.
void broker_artifacts_url(char *url, size_t size, const char *job_id, const char *name);
//  The Content-Type of a file name, by its extension.
const char *broker_artifacts_content_type(const char *name);
//  True for a name an artifact may have (lynx_path_name_ok).
bool broker_artifacts_name_ok(const char *name, size_t length);
//  Open a stored artifact (path as the store records it, relative to data_dir) for reading,
//  following no symbolic link. -1 with errno.
int broker_artifacts_open(const broker_artifacts_t *self, const char *stored_path);

#endif
