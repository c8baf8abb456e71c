//  broker_artifact_ops: the REQUEST operations that list and read the files of jobs
//  (GET /jobs/{id}/artifacts, GET /jobs/{id}/artifacts/{name}, GET /jobs/{id}/logs/{stream}).
//  Files are read a bounded range at a time, so the gateway streams any size through a small
//  buffer; only what the store lists is ever opened, by its stored path, following no link.
#include "broker_core.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

//  Most bytes one job.artifact reply carries.
#define S_READ_MAX (1024 * 1024)
//  Most lines a tail may ask for, and how far back from the end it looks for them.
#define S_TAIL_LINES_MAX 100000
#define S_TAIL_SCAN_MAX (64 * 1024 * 1024)
//  Jobs per batch.artifact_index page.
#define S_INDEX_PAGE 1000

//  The job's artifact rows (only the one named name, when not NULL), or NULL with err
//  (unknown job: not_found).
static lynx_value_t *s_rows(broker_core_t *core, const lynx_value_t *args, const char *name,
                            lynx_err_t *err)
{
    const char *job_id = lynx_value_get_string(args, "job_id", "");
    broker_job_rec_t rec;
    int rc = broker_store_get_job(core->store, job_id, &rec);
    lynx_value_t *rows = rc != 0 ? NULL
                         : name  ? broker_store_job_artifact(core->store, job_id, name)
                                 : broker_store_job_artifacts(core->store, job_id);
    if (rc > 0)
        lynx_err_set(err, LYNX_ENOTFOUND, "job_id", "no job with id '%.64s'", job_id);
    else if (!rows)
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
    return rows;
}

lynx_value_t *broker_artifact_op_list(broker_core_t *core, const broker_request_t *request,
                                      const lynx_value_t *args, lynx_err_t *err,
                                      lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    lynx_value_t *rows = s_rows(core, args, NULL, err);
    if (!rows)
        return NULL;
    const char *job_id = lynx_value_get_string(args, "job_id", "");
    lynx_value_t *result = broker_store_get_result(core->store, job_id);
    lynx_value_t *artifacts = lynx_value_array();
    for (size_t i = 0; i < lynx_value_size(rows); i++) {
        const lynx_value_t *row = lynx_value_at(rows, i);
        const char *name = lynx_value_get_string(row, "name", "");
        lynx_value_t *entry = lynx_value_map();
        lynx_value_set_string(entry, "name", name);
        lynx_value_set_int(entry, "size", lynx_value_get_int(row, "size", 0));
        lynx_value_set_string(entry, "sha256", lynx_value_get_string(row, "sha256", ""));
        lynx_value_set_string(entry, "content_type",
                              lynx_value_get_string(row, "content_type", ""));
        char url[4096];
        broker_artifacts_url(url, sizeof url, job_id, name);
        lynx_value_set_string(entry, "url", url);
        lynx_value_set_int(entry, "attempt", lynx_value_get_int(row, "attempt", 0));
        lynx_value_append_owned(artifacts, entry);
    }
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "job_id", job_id);
    lynx_value_set_int(reply, "count", (int64_t)lynx_value_size(artifacts));
    lynx_value_set_owned(reply, "artifacts", artifacts);
    lynx_value_set_owned(reply, "skipped",
                         lynx_value_dup(lynx_value_get(result, "artifacts_skipped")));
    if (!lynx_value_get(reply, "skipped") ||
        lynx_value_type(lynx_value_get(reply, "skipped")) != LYNX_VALUE_ARRAY)
        lynx_value_set_owned(reply, "skipped", lynx_value_array());
    lynx_value_destroy(&result);
    lynx_value_destroy(&rows);
    return reply;
}

//  Where the last lines lines of the open file (size bytes) start.
static int64_t s_tail_offset(int fd, int64_t size, int64_t lines)
{
    char block[65536];
    int64_t end = size, seen = 0, scanned = 0;
    //  A final newline ends the last line; it does not start another.
    bool skip_final = true;
    while (end > 0 && scanned < S_TAIL_SCAN_MAX) {
        int64_t start = end > (int64_t)sizeof block ? end - (int64_t)sizeof block : 0;
        ssize_t got = pread(fd, block, (size_t)(end - start), start);
        if (got != end - start)
            return 0;
        for (int64_t i = got - 1; i >= 0; i--) {
            if (block[i] != '\n')
                continue;
            if (skip_final && start + i == size - 1) {
                skip_final = false;
                continue;
            }
            if (++seen == lines)
                return start + i + 1;
        }
        skip_final = false;
        scanned += got;
        end = start;
    }
    return end;
}

lynx_value_t *broker_artifact_op_read(broker_core_t *core, const broker_request_t *request,
                                      const lynx_value_t *args, lynx_err_t *err,
                                      lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    const char *name = lynx_value_get_string(args, "name", "");
    int64_t offset = lynx_value_get_int(args, "offset", 0);
    int64_t length = lynx_value_get_int(args, "length", 0);
    int64_t tail = lynx_value_get_int(args, "tail", 0);
    if (offset < 0 || length < 0 || length > S_READ_MAX)
        return lynx_err_set(err, LYNX_EINVALID, "length",
                            "offset must be >= 0 and length between 0 and %d", S_READ_MAX),
               NULL;
    if (tail < 0 || tail > S_TAIL_LINES_MAX)
        return lynx_err_set(err, LYNX_EINVALID, "tail", "must be between 1 and %d",
                            S_TAIL_LINES_MAX),
               NULL;
    lynx_value_t *rows = s_rows(core, args, name, err);
    if (!rows)
        return NULL;
    const lynx_value_t *row = lynx_value_at(rows, 0);
    lynx_value_t *reply = NULL;
    int fd =
        row ? broker_artifacts_open(core->artifacts, lynx_value_get_string(row, "path", "")) : -1;
    struct stat info;
    int64_t size = lynx_value_get_int(row, "size", 0);
    if (!row)
        lynx_err_set(err, LYNX_ENOTFOUND, "name", "job %.64s has no artifact '%.200s'",
                     lynx_value_get_string(args, "job_id", ""), name);
    else if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || info.st_size != size)
        lynx_err_set(err, LYNX_EINTERNAL, "name",
                     "artifact '%.200s' is missing or changed on "
                     "the broker's disk",
                     name);
    else if (offset > size)
        lynx_err_set(err, LYNX_EINVALID, "offset",
                     "offset %" PRId64 " is past the end (%" PRId64 " bytes)", offset, size);
    else {
        if (tail > 0)
            offset = s_tail_offset(fd, size, tail);
        if (length > size - offset)
            length = size - offset;
        char *data = length ? malloc((size_t)length) : NULL;
        ssize_t got = length ? (data ? pread(fd, data, (size_t)length, offset) : -1) : 0;
        if (got != length)
            lynx_err_set(err, LYNX_EINTERNAL, "name", "cannot read artifact '%.200s': %s", name,
                         got < 0 ? strerror(errno) : "short read");
        else {
            reply = lynx_value_map();
            lynx_value_set_string(reply, "name", name);
            lynx_value_set_int(reply, "size", size);
            lynx_value_set_string(reply, "sha256", lynx_value_get_string(row, "sha256", ""));
            lynx_value_set_string(reply, "content_type",
                                  lynx_value_get_string(row, "content_type", ""));
            lynx_value_set_int(reply, "offset", offset);
            lynx_value_set_owned(reply, "data",
                                 lynx_value_stringn(data ? data : "", (size_t)length));
        }
        free(data);
    }
    if (fd >= 0)
        close(fd);
    lynx_value_destroy(&rows);
    return reply;
}

//  batch.artifact_index {batch_id, name[, after_run_id]}: a page (at most S_INDEX_PAGE) of the
//  batch's jobs that hold the artifact, in run_id order, for the batch archive; next_after is
//  the run_id to continue after, or null at the end.
lynx_value_t *broker_artifact_op_batch_index(broker_core_t *core, const broker_request_t *request,
                                             const lynx_value_t *args, lynx_err_t *err,
                                             lynx_value_t **errors_p)
{
    (void)request, (void)errors_p;
    const char *batch_id = lynx_value_get_string(args, "batch_id", "");
    const char *name = lynx_value_get_string(args, "name", "");
    int64_t after = lynx_value_get_int(args, "after_run_id", -1);
    if (!broker_batches_lookup(core->batches, batch_id)) {
        lynx_err_set(err, LYNX_ENOTFOUND, "batch_id", "no batch with id '%.64s'", batch_id);
        return NULL;
    }
    lynx_value_t *files =
        broker_store_batch_artifact(core->store, batch_id, name, after, S_INDEX_PAGE);
    if (!files) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s", broker_store_error(core->store));
        return NULL;
    }
    lynx_value_t *reply = lynx_value_map();
    lynx_value_set_string(reply, "batch_id", batch_id);
    lynx_value_set_string(reply, "name", name);
    size_t count = lynx_value_size(files);
    if (count == S_INDEX_PAGE)
        lynx_value_set_int(reply, "next_after",
                           lynx_value_get_int(lynx_value_at(files, count - 1), "run_id", 0));
    else
        lynx_value_set_null(reply, "next_after");
    lynx_value_set_owned(reply, "files", files);
    return reply;
}
