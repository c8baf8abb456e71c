//  broker_telemetry: validate, buffer, store and republish runners' telemetry (see the header
//  and docs/telemetry.md). The file format is broker_series's; the PUB socket is
//  broker_republish's; this module decides what is accepted, when buffers flush and where a
//  job's series lives.
#include "broker_telemetry.h"

#include <czmq.h>
#include <errno.h>
#include <limits.h>

#include "broker_republish.h"
#include "broker_series.h"
#include "lynx_time.h"

//  A batch and its storage settings.
typedef struct {
    char id[BROKER_TELEMETRY_ID_MAX + 1];
    broker_telemetry_config_t config;
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
    broker_republish_t *republish;
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

#define S_IDLE_FORGET_MS (10 * 60 * 1000) //  a job without frames this long is forgotten
#define S_LOG_EVERY_MS 10000              //  refused frames are logged at most this often

//  ---------------------------------------------------------------------------------------
//  Validation of what arrives from the network and from configs.

//  A string id from a map: its text when valid, else NULL with err naming the field.
static const char *s_get_id(const lynx_value_t *map, const char *key, const char *field,
                            lynx_err_t *err)
{
    const lynx_value_t *value = lynx_value_get(map, key);
    char quoted[BROKER_TELEMETRY_QUOTE_MAX];
    if (lynx_value_type(value) != LYNX_VALUE_STRING) {
        lynx_err_set(err, LYNX_EINVALID, field, value ? "expected string, got %s" : "%s",
                     value ? lynx_value_type_name(lynx_value_type(value))
                           : "required field missing");
        return NULL;
    }
    const char *id = lynx_value_as_string(value);
    size_t len = lynx_value_string_len(value);
    if (!broker_telemetry_config_id_valid(id, len)) {
        lynx_err_set(err, LYNX_EINVALID, field, "invalid id %s: 1-%d of A-Z a-z 0-9 _ -",
                     broker_telemetry_config_quote(id, len, quoted), BROKER_TELEMETRY_ID_MAX);
        return NULL;
    }
    return id;
}

//  ---------------------------------------------------------------------------------------
//  Jobs, buffers and flushes.

static void s_batch_destroy(void **item_p)
{
    free(*item_p);
    *item_p = NULL;
}

static void s_job_destroy(void **item_p)
{
    telemetry_job_t *job = (telemetry_job_t *)*item_p;
    if (job)
        free(job->buffer);
    free(job);
    *item_p = NULL;
}

//  The path of job_id's series file of batch into path (PATH_MAX bytes); job_id NULL: the
//  batch's directory.
static void s_path(const broker_telemetry_t *self, const telemetry_batch_t *batch,
                   const char *job_id, char *path)
{
    const broker_telemetry_config_t *config = &batch->config;
    snprintf(path, PATH_MAX, "%s%s%s/%s%s%s%s%s", self->root, config->prefix[0] ? "/" : "",
             config->prefix, batch->id, job_id ? "/" : "", job_id ? job_id : "",
             job_id ? ".msgpack" : "", job_id && config->gzip ? ".gz" : "");
}

//  Write the job's buffer to its file and empty it, whatever happens: a buffer that cannot be
//  written is counted lost rather than kept (memory stays bounded while the disk is full).
//  Returns 0, or -1 when the write failed (logged here, once per job).
static int s_flush(broker_telemetry_t *self, telemetry_job_t *job)
{
    if (job->size == 0)
        return 0;
    char path[PATH_MAX], why[PATH_MAX + 128];
    int rc = 0;
    if (!job->dir_ready) {
        s_path(self, job->batch, NULL, path);
        if (zsys_dir_create("%s", path)) {
            snprintf(why, sizeof why, "create %s: %s", path, strerror(errno));
            rc = -1;
        } else
            job->dir_ready = true;
    }
    if (rc == 0) {
        s_path(self, job->batch, job->id, path);
        rc = broker_series_append(path, job->batch->config.gzip, job->buffer, job->size, why,
                                  sizeof why);
    }
    if (rc == 0) {
        self->stats.frames_stored += job->frames;
        job->write_failed = false;
    } else {
        self->stats.frames_unwritten += job->frames;
        if (!job->write_failed)
            zsys_error("broker: telemetry frames lost job=%s frames=%zu: %s", job->id, job->frames,
                       why);
        job->write_failed = true;
        job->dir_ready = false; //  try again next time: the directory may have been removed
    }
    self->stats.flushes++;
    self->stats.buffered_bytes -= job->size;
    free(job->buffer);
    job->buffer = NULL;
    job->size = job->capacity = job->frames = 0;
    return rc;
}

static int s_compare_oldest(const void *a, const void *b)
{
    const telemetry_job_t *x = *(telemetry_job_t *const *)a, *y = *(telemetry_job_t *const *)b;
    return (x->first_buffered_ms > y->first_buffered_ms) -
           (x->first_buffered_ms < y->first_buffered_ms);
}

//  All jobs together hold too much: flush the oldest buffers down to three quarters of the cap.
static void s_flush_oldest(broker_telemetry_t *self)
{
    size_t count = 0, size = zhashx_size(self->jobs);
    telemetry_job_t **jobs = (telemetry_job_t **)malloc(size * sizeof *jobs);
    if (!jobs)
        return;
    for (telemetry_job_t *job = (telemetry_job_t *)zhashx_first(self->jobs); job;
         job = (telemetry_job_t *)zhashx_next(self->jobs))
        if (job->size > 0)
            jobs[count++] = job;
    qsort(jobs, count, sizeof *jobs, s_compare_oldest);
    size_t target = self->total_buffer_bytes / 4 * 3;
    for (size_t i = 0; i < count && self->stats.buffered_bytes > target; i++)
        s_flush(self, jobs[i]);
    free(jobs);
}

//  Append one record to the job's buffer, in file form.
static int s_buffer_record(broker_telemetry_t *self, telemetry_job_t *job,
                           const lynx_value_t *record)
{
    size_t before = job->size;
    if (broker_series_encode(record, &job->buffer, &job->size, &job->capacity))
        return -1;
    if (before == 0)
        job->first_buffered_ms = job->last_frame_ms;
    job->frames++;
    self->stats.buffered_bytes += job->size - before;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Ingest.

//  Count a refused frame and log it, at most every S_LOG_EVERY_MS (a flood must not flood
//  the log). Returns -1.
static int s_reject(broker_telemetry_t *self, const lynx_err_t *err)
{
    self->stats.frames_rejected++;
    self->rejected_unlogged++;
    snprintf(self->rejected_reason, sizeof self->rejected_reason, "%s%s%s", err->field,
             err->field[0] ? ": " : "", err->message);
    int64_t now_ms = lynx_time_mono_ms();
    if (self->rejected_logged_ms == 0 || now_ms - self->rejected_logged_ms >= S_LOG_EVERY_MS) {
        zsys_warning("broker: telemetry frames refused count=%" PRIu64 " last=%s",
                     self->rejected_unlogged, self->rejected_reason);
        self->rejected_unlogged = 0;
        self->rejected_logged_ms = now_ms;
    }
    return -1;
}

//  Check a body; on success *job_p is its job (created when new). -1 with err otherwise.
static int s_check_frame(broker_telemetry_t *self, const lynx_value_t *body,
                         telemetry_job_t **job_p, lynx_err_t *err)
{
    char quoted[BROKER_TELEMETRY_QUOTE_MAX];
    if (lynx_value_type(body) != LYNX_VALUE_MAP)
        return lynx_err_set(err, LYNX_EINVALID, "body", "expected object, got %s",
                            lynx_value_type_name(lynx_value_type(body)));
    const char *job_id = s_get_id(body, "job_id", "body.job_id", err);
    const char *batch_id = job_id ? s_get_id(body, "batch_id", "body.batch_id", err) : NULL;
    if (!batch_id)
        return -1;
    const lynx_value_t *seq = lynx_value_get(body, "seq");
    if (lynx_value_type(seq) != LYNX_VALUE_INT || lynx_value_as_int(seq) < 0)
        return lynx_err_set(err, LYNX_EINVALID, "body.seq", "expected a non-negative integer");
    if (lynx_value_type(lynx_value_get(body, "timestamp_ns")) != LYNX_VALUE_INT)
        return lynx_err_set(err, LYNX_EINVALID, "body.timestamp_ns", "expected integer");
    const lynx_value_t *dropped = lynx_value_get(body, "dropped");
    if (dropped && lynx_value_type(dropped) != LYNX_VALUE_INT)
        return lynx_err_set(err, LYNX_EINVALID, "body.dropped", "expected integer");
    const lynx_value_t *values = lynx_value_get(body, "values");
    if (lynx_value_type(values) != LYNX_VALUE_MAP)
        return lynx_err_set(err, LYNX_EINVALID, "body.values", "expected object");
    size_t count = lynx_value_size(values);
    if (count > BROKER_TELEMETRY_VALUES_MAX)
        return lynx_err_set(err, LYNX_EINVALID, "body.values", "more than %d values",
                            BROKER_TELEMETRY_VALUES_MAX);
    for (size_t i = 0; i < count; i++) {
        const char *name = lynx_value_key_at(values, i);
        size_t len = strlen(name);
        if (!broker_telemetry_config_name_valid(name, len))
            return lynx_err_set(err, LYNX_EINVALID, "body.values", "invalid variable name %s",
                                broker_telemetry_config_quote(name, len, quoted));
        lynx_value_type_t type = lynx_value_type(lynx_value_at(values, i));
        if (type != LYNX_VALUE_INT && type != LYNX_VALUE_DOUBLE && type != LYNX_VALUE_BOOL)
            return lynx_err_set(
                err, LYNX_EINVALID, "body.values", "%s: expected number or boolean, got %s",
                broker_telemetry_config_quote(name, len, quoted), lynx_value_type_name(type));
    }
    telemetry_batch_t *batch = (telemetry_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch)
        return lynx_err_set(err, LYNX_EINVALID, "body.batch_id", "unknown batch %s",
                            broker_telemetry_config_quote(batch_id, strlen(batch_id), quoted));
    telemetry_job_t *job = (telemetry_job_t *)zhashx_lookup(self->jobs, job_id);
    if (job && job->batch != batch)
        return lynx_err_set(err, LYNX_EINVALID, "body.batch_id", "job %s belongs to batch %s",
                            job_id, job->batch->id);
    if (!job) {
        job = (telemetry_job_t *)calloc(1, sizeof *job);
        if (!job)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        snprintf(job->id, sizeof job->id, "%s", job_id);
        job->batch = batch;
        job->last_seq = -1;
        zhashx_insert(self->jobs, job_id, job);
    }
    *job_p = job;
    return 0;
}

//  Frames lost before this one: the gap since the previous seq. A seq that goes back starts a
//  new count (a new attempt restarts at 0).
static void s_count_lost(broker_telemetry_t *self, telemetry_job_t *job, int64_t seq)
{
    if (job->last_seq < 0)
        self->stats.frames_lost += (uint64_t)seq;
    else if (seq > job->last_seq)
        self->stats.frames_lost += (uint64_t)(seq - job->last_seq - 1);
    job->last_seq = seq;
}

int broker_telemetry_ingest(broker_telemetry_t *self, const lynx_value_t *telemetry_body,
                            lynx_err_t *err)
{
    assert(self);
    lynx_err_t local;
    if (!err)
        err = &local;
    lynx_err_clear(err);
    self->stats.frames_received++;
    telemetry_job_t *job = NULL;
    if (s_check_frame(self, telemetry_body, &job, err))
        return s_reject(self, err);
    int64_t seq = lynx_value_get_int(telemetry_body, "seq", 0);
    job->last_frame_ms = lynx_time_mono_ms();
    s_count_lost(self, job, seq);

    //  One map serves both: packed as the stored record, then completed into the published body.
    lynx_value_t *record = lynx_value_map();
    lynx_value_t *values = lynx_value_dup(lynx_value_get(telemetry_body, "values"));
    int rc = record && values ? 0 : -1;
    if (rc == 0)
        rc = lynx_value_set_int(record, "seq", seq);
    if (rc == 0)
        rc = lynx_value_set_int(record, "timestamp_ns",
                                lynx_value_get_int(telemetry_body, "timestamp_ns", 0));
    if (rc == 0)
        rc = lynx_value_set(record, "values", &values);
    if (rc == 0)
        rc = s_buffer_record(self, job, record);
    lynx_value_destroy(&values);
    if (rc != 0) {
        lynx_value_destroy(&record);
        self->stats.frames_unwritten++;
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory storing a frame of job %s",
                            job->id);
    }
    if (broker_republish_active(self->republish))
        broker_republish_frame(self->republish, job->batch->id, job->id, &record,
                               lynx_value_get(telemetry_body, "dropped"));
    lynx_value_destroy(&record);

    if (job->size >= self->job_buffer_bytes)
        s_flush(self, job);
    if (self->stats.buffered_bytes > self->total_buffer_bytes)
        s_flush_oldest(self);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  The class.

broker_telemetry_t *broker_telemetry_new(const char *data_dir, const char *pub_endpoint,
                                         broker_keys_t *keys, lynx_err_t *err)
{
    if (!data_dir || !*data_dir) {
        lynx_err_set(err, LYNX_EINVALID, "data_dir", "required");
        return NULL;
    }
    //  Room for <root>/<prefix>/<batch>/<job>.msgpack.gz
    if (strlen(data_dir) + BROKER_TELEMETRY_PREFIX_MAX + 2 * BROKER_TELEMETRY_ID_MAX + 40 >=
        PATH_MAX) {
        lynx_err_set(err, LYNX_EINVALID, "data_dir", "path too long");
        return NULL;
    }
    broker_telemetry_t *self = (broker_telemetry_t *)calloc(1, sizeof *self);
    if (!self || !(self->root = zsys_sprintf("%s/telemetry", data_dir)) ||
        !(self->batches = zhashx_new()) || !(self->jobs = zhashx_new())) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        broker_telemetry_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->batches, s_batch_destroy);
    zhashx_set_destructor(self->jobs, s_job_destroy);
    self->job_buffer_bytes = BROKER_TELEMETRY_JOB_BUFFER_BYTES;
    self->total_buffer_bytes = BROKER_TELEMETRY_TOTAL_BUFFER_BYTES;
    self->read_max_cells = BROKER_TELEMETRY_READ_MAX_CELLS;
    if (zsys_dir_create("%s", self->root)) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "create %s: %s", self->root, strerror(errno));
        broker_telemetry_destroy(&self);
        return NULL;
    }
    if (!(self->republish = broker_republish_new(pub_endpoint, keys, err))) {
        broker_telemetry_destroy(&self);
        return NULL;
    }
    return self;
}

void broker_telemetry_destroy(broker_telemetry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_telemetry_t *self = *self_p;
    if (self->jobs) {
        for (telemetry_job_t *job = (telemetry_job_t *)zhashx_first(self->jobs); job;
             job = (telemetry_job_t *)zhashx_next(self->jobs))
            s_flush(self, job);
        zhashx_destroy(&self->jobs);
    }
    if (self->rejected_unlogged > 0)
        zsys_warning("broker: telemetry frames refused count=%" PRIu64 " last=%s",
                     self->rejected_unlogged, self->rejected_reason);
    zhashx_destroy(&self->batches);
    broker_republish_destroy(&self->republish);
    free(self->root);
    free(self);
    *self_p = NULL;
}

const char *broker_telemetry_endpoint(const broker_telemetry_t *self)
{
    assert(self);
    return broker_republish_endpoint(self->republish);
}

broker_republish_t *broker_telemetry_republish(broker_telemetry_t *self)
{
    assert(self);
    return self->republish;
}

void broker_telemetry_set_limits(broker_telemetry_t *self, size_t job_buffer_bytes,
                                 size_t total_buffer_bytes, size_t read_max_cells)
{
    assert(self);
    if (job_buffer_bytes)
        self->job_buffer_bytes = job_buffer_bytes;
    if (total_buffer_bytes)
        self->total_buffer_bytes = total_buffer_bytes;
    if (read_max_cells)
        self->read_max_cells = read_max_cells;
}

int broker_telemetry_configure_batch(broker_telemetry_t *self, const char *batch_id,
                                     const lynx_value_t *telemetry_config, lynx_err_t *err)
{
    assert(self);
    char quoted[BROKER_TELEMETRY_QUOTE_MAX];
    if (!batch_id || !broker_telemetry_config_id_valid(batch_id, strlen(batch_id)))
        return lynx_err_set(
            err, LYNX_EINVALID, "batch_id", "invalid id %s",
            broker_telemetry_config_quote(batch_id, batch_id ? strlen(batch_id) : 0, quoted));
    telemetry_batch_t *batch = (telemetry_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch) {
        batch = (telemetry_batch_t *)calloc(1, sizeof *batch);
        if (!batch)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        snprintf(batch->id, sizeof batch->id, "%s", batch_id);
        zhashx_insert(self->batches, batch_id, batch);
    }
    //  A changed prefix or compression moves the files of buffers not yet written.
    for (telemetry_job_t *job = (telemetry_job_t *)zhashx_first(self->jobs); job;
         job = (telemetry_job_t *)zhashx_next(self->jobs))
        if (job->batch == batch)
            job->dir_ready = false;
    return broker_telemetry_config_parse(telemetry_config, &batch->config, err);
}

int broker_telemetry_flush_due(broker_telemetry_t *self, int64_t now_ms)
{
    assert(self);
    int flushed = 0;
    bool failed = false;
    size_t idle = 0;
    for (telemetry_job_t *job = (telemetry_job_t *)zhashx_first(self->jobs); job;
         job = (telemetry_job_t *)zhashx_next(self->jobs)) {
        if (job->size > 0 &&
            now_ms - job->first_buffered_ms >= job->batch->config.flush_interval_ms) {
            failed |= s_flush(self, job) != 0;
            flushed++;
        }
        if (job->size == 0 && now_ms - job->last_frame_ms >= S_IDLE_FORGET_MS)
            idle++;
    }
    if (idle > 0) {
        zlistx_t *forget = zlistx_new();
        for (telemetry_job_t *job = (telemetry_job_t *)zhashx_first(self->jobs); forget && job;
             job = (telemetry_job_t *)zhashx_next(self->jobs))
            if (job->size == 0 && now_ms - job->last_frame_ms >= S_IDLE_FORGET_MS)
                zlistx_add_end(forget, job->id);
        for (const char *id = forget ? (const char *)zlistx_first(forget) : NULL; id;
             id = (const char *)zlistx_next(forget))
            zhashx_delete(self->jobs, id); //  the list holds borrowed ids: delete them last
        zlistx_destroy(&forget);
    }
    if (self->rejected_unlogged > 0 &&
        lynx_time_mono_ms() - self->rejected_logged_ms >= S_LOG_EVERY_MS) {
        zsys_warning("broker: telemetry frames refused count=%" PRIu64 " last=%s",
                     self->rejected_unlogged, self->rejected_reason);
        self->rejected_unlogged = 0;
        self->rejected_logged_ms = lynx_time_mono_ms();
    }
    return failed ? -1 : flushed;
}

int broker_telemetry_job_ended(broker_telemetry_t *self, const char *job_id)
{
    assert(self);
    telemetry_job_t *job = job_id ? (telemetry_job_t *)zhashx_lookup(self->jobs, job_id) : NULL;
    if (!job)
        return 0;
    int rc = s_flush(self, job);
    zhashx_delete(self->jobs, job_id);
    return rc;
}

//  Validate the ids, flush the job's buffer, and name its file: -1 with err for a bad id; 1
//  (no file, an empty series) for a batch this store does not know.
static int s_series_path(broker_telemetry_t *self, const char *batch_id, const char *job_id,
                         char *path, lynx_err_t *err)
{
    char quoted[BROKER_TELEMETRY_QUOTE_MAX];
    if (!batch_id || !broker_telemetry_config_id_valid(batch_id, strlen(batch_id)))
        return lynx_err_set(
            err, LYNX_EINVALID, "batch_id", "invalid id %s",
            broker_telemetry_config_quote(batch_id, batch_id ? strlen(batch_id) : 0, quoted));
    if (!job_id || !broker_telemetry_config_id_valid(job_id, strlen(job_id)))
        return lynx_err_set(
            err, LYNX_EINVALID, "job_id", "invalid id %s",
            broker_telemetry_config_quote(job_id, job_id ? strlen(job_id) : 0, quoted));
    telemetry_job_t *job = (telemetry_job_t *)zhashx_lookup(self->jobs, job_id);
    if (job)
        s_flush(self, job); //  a failure is logged there; read what the disk has
    telemetry_batch_t *batch = (telemetry_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch)
        return 1;
    s_path(self, batch, job_id, path);
    return 0;
}

lynx_value_t *broker_telemetry_read(broker_telemetry_t *self, const char *batch_id,
                                    const char *job_id, const char *variables_csv, lynx_err_t *err)
{
    assert(self);
    char path[PATH_MAX] = "";
    int rc = s_series_path(self, batch_id, job_id, path, err);
    if (rc < 0)
        return NULL;
    //  An unknown batch reads as a missing file: an empty series with the variables checked.
    return broker_series_read(rc ? "" : path, batch_id, job_id, variables_csv, self->read_max_cells,
                              err);
}

char *broker_telemetry_read_csv(broker_telemetry_t *self, const char *batch_id, const char *job_id,
                                const char *variables_csv, lynx_err_t *err)
{
    assert(self);
    char path[PATH_MAX] = "";
    int rc = s_series_path(self, batch_id, job_id, path, err);
    if (rc < 0)
        return NULL;
    return broker_series_read_csv(rc ? "" : path, job_id, variables_csv, self->read_max_cells, err);
}

void broker_telemetry_stats(const broker_telemetry_t *self, broker_telemetry_stats_t *stats)
{
    assert(self && stats);
    *stats = self->stats;
    stats->jobs = zhashx_size(self->jobs);
    broker_republish_stats_t published;
    broker_republish_stats(self->republish, &published);
    stats->frames_published = published.frames_published;
    stats->frames_dropped = published.frames_dropped;
    stats->events_published = published.events_published;
    stats->events_dropped = published.events_dropped;
}
