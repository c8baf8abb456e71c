//  broker_telemetry: store and republish runners' telemetry (see the header and
//  docs/telemetry.md).
//
//  A series file is a sequence of records, each a 4-byte big-endian length and that many bytes
//  of msgpack (lynx_msgpack_pack of {seq, timestamp_ns, values}). The length prefix is ours,
//  not msgpack: it lets the codec decode one record at a time (it refuses trailing bytes) and
//  lets a reader skip records without parsing them. A flush appends whole records: plain files
//  through zlib's transparent mode, gzip files as one more gzip member (a multi-member stream
//  reads back as one). A failed append is cut back to the previous size, so a disk error never
//  leaves half a record in the middle of a file. Reading a series back is in
//  broker_telemetry_read.c.
#include "broker_telemetry_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lynx_msg.h"
#include "lynx_time.h"

#define S_FLUSH_INTERVAL_MS_DEFAULT 30000
#define S_FLUSH_INTERVAL_SECS_MAX 86400
#define S_IDLE_FORGET_MS (10 * 60 * 1000) //  a job without frames this long is forgotten
#define S_LOG_EVERY_MS 10000              //  refused frames are logged at most this often
#define S_PUB_HWM 100000                  //  messages queued per subscriber, then dropped
#define S_GZIP_WRITE_MODE "ab1" //  level 1: the loop thread compresses (bench: docs/telemetry.md)
#define S_TOPIC_MAX (16 + 2 * BROKER_TELEMETRY_ID_MAX)

//  ---------------------------------------------------------------------------------------
//  Validation of what arrives from the network and from configs.

//  A string id from a map: its text when valid, else NULL with err naming the field.
static const char *s_get_id(const lynx_value_t *map, const char *key, const char *field,
                            lynx_err_t *err)
{
    const lynx_value_t *value = lynx_value_get(map, key);
    char quoted[TELEMETRY_QUOTE_MAX];
    if (lynx_value_type(value) != LYNX_VALUE_STRING) {
        lynx_err_set(err, LYNX_EINVALID, field, value ? "expected string, got %s" : "%s",
                     value ? lynx_value_type_name(lynx_value_type(value))
                           : "required field missing");
        return NULL;
    }
    const char *id = lynx_value_as_string(value);
    size_t len = lynx_value_string_len(value);
    if (!telemetry_id_valid(id, len)) {
        lynx_err_set(err, LYNX_EINVALID, field, "invalid id %s: 1-%d of A-Z a-z 0-9 _ -",
                     telemetry_quote(id, len, quoted), BROKER_TELEMETRY_ID_MAX);
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

void telemetry_job_path(const broker_telemetry_t *self, const telemetry_job_t *job, bool dir_only,
                        char *path)
{
    const telemetry_batch_t *batch = job->batch;
    snprintf(path, PATH_MAX, "%s%s%s/%s%s%s%s%s", self->root, batch->prefix[0] ? "/" : "",
             batch->prefix, batch->id, dir_only ? "" : "/", dir_only ? "" : job->id,
             dir_only ? "" : ".msgpack", dir_only || !batch->gzip ? "" : ".gz");
}

//  Append size bytes to path, compressed or not. On failure the file is cut back to its
//  previous size and why says what failed.
static int s_append(const char *path, bool gzip, const unsigned char *data, size_t size, char *why,
                    size_t why_size)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, why_size, "open %s: %s", path, strerror(errno));
        return -1;
    }
    off_t start = lseek(fd, 0, SEEK_END);
    gzFile file = gzdopen(fd, gzip ? S_GZIP_WRITE_MODE : "abT");
    if (!file) {
        snprintf(why, why_size, "open %s: out of memory", path);
        close(fd);
        return -1;
    }
    gzbuffer(file, TELEMETRY_FILE_BUFFER);
    int written = gzwrite(file, data, (unsigned)size);
    int errnum = Z_OK;
    if (written != (int)size) {
        const char *message = gzerror(file, &errnum);
        snprintf(why, why_size, "write %s: %s", path,
                 errnum == Z_ERRNO ? strerror(errno) : message);
    }
    int closed = gzclose(file);
    if (written == (int)size && closed != Z_OK)
        snprintf(why, why_size, "write %s: %s", path,
                 closed == Z_ERRNO ? strerror(errno) : zError(closed));
    if (written == (int)size && closed == Z_OK)
        return 0;
    if (start >= 0 && truncate(path, start) != 0)
        zsys_warning("broker: cannot cut back telemetry file path=%s: %s", path, strerror(errno));
    return -1;
}

int telemetry_flush(broker_telemetry_t *self, telemetry_job_t *job)
{
    if (job->size == 0)
        return 0;
    char path[PATH_MAX], why[PATH_MAX + 128];
    int rc = 0;
    if (!job->dir_ready) {
        telemetry_job_path(self, job, true, path);
        if (zsys_dir_create("%s", path)) {
            snprintf(why, sizeof why, "create %s: %s", path, strerror(errno));
            rc = -1;
        } else
            job->dir_ready = true;
    }
    if (rc == 0) {
        telemetry_job_path(self, job, false, path);
        rc = s_append(path, job->batch->gzip, job->buffer, job->size, why, sizeof why);
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
        telemetry_flush(self, jobs[i]);
    free(jobs);
}

//  Append one record (length prefix + msgpack) to the job's buffer. Takes the packed bytes.
static int s_buffer_record(broker_telemetry_t *self, telemetry_job_t *job, unsigned char *packed,
                           size_t packed_size)
{
    size_t need = job->size + TELEMETRY_RECORD_HEADER + packed_size;
    if (need > job->capacity) {
        size_t capacity = job->capacity ? job->capacity : 4096;
        while (capacity < need)
            capacity *= 2;
        unsigned char *buffer = (unsigned char *)realloc(job->buffer, capacity);
        if (!buffer) {
            free(packed);
            return -1;
        }
        job->buffer = buffer;
        job->capacity = capacity;
    }
    unsigned char *at = job->buffer + job->size;
    at[0] = (unsigned char)(packed_size >> 24);
    at[1] = (unsigned char)(packed_size >> 16);
    at[2] = (unsigned char)(packed_size >> 8);
    at[3] = (unsigned char)packed_size;
    memcpy(at + TELEMETRY_RECORD_HEADER, packed, packed_size);
    free(packed);
    if (job->size == 0)
        job->first_buffered_ms = job->last_frame_ms;
    job->size = need;
    job->frames++;
    self->stats.buffered_bytes += TELEMETRY_RECORD_HEADER + packed_size;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Publishing.

//  Send [topic][payload] without waiting; takes *payload_p whatever happens. A PUB socket
//  drops, per subscriber, what a full queue cannot take, so -1 means libzmq refused it.
static int s_send(broker_telemetry_t *self, const char *topic, zframe_t **payload_p)
{
    void *handle = zsock_resolve(self->pub);
    int rc = -1;
    if (*payload_p && zmq_send(handle, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        rc = zframe_send(payload_p, handle, ZFRAME_DONTWAIT);
    zframe_destroy(payload_p); //  zframe_send keeps the frame when it fails
    return rc;
}

//  Publish a frame: the record becomes a TELEMETRY body with the job's ids. Takes *record_p.
static void s_publish_frame(broker_telemetry_t *self, const telemetry_job_t *job,
                            lynx_value_t **record_p, const lynx_value_t *dropped)
{
    lynx_value_t *record = *record_p;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_TELEMETRY);
    int rc = msg && lynx_value_set_string(record, "job_id", job->id) == 0 &&
                     lynx_value_set_string(record, "batch_id", job->batch->id) == 0
                 ? 0
                 : -1;
    if (rc == 0 && lynx_value_type(dropped) == LYNX_VALUE_INT)
        rc = lynx_value_set_int(record, "dropped", lynx_value_as_int(dropped));
    if (rc == 0)
        rc = lynx_msg_set_body(msg, record_p);
    lynx_value_destroy(record_p);
    zframe_t *frame = NULL;
    if (rc == 0)
        frame = lynx_msg_encode(msg, NULL);
    lynx_msg_destroy(&msg);
    if (!frame) {
        self->stats.frames_dropped++;
        return;
    }
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "telemetry.%s.%s", job->batch->id, job->id);
    if (s_send(self, topic, &frame) == 0)
        self->stats.frames_published++;
    else
        self->stats.frames_dropped++;
}

static int s_publish_event(broker_telemetry_t *self, const char *topic, lynx_value_t **event_p,
                           const lynx_value_t *extra)
{
    lynx_value_t *event = *event_p;
    int rc = event ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < lynx_value_size(extra); i++) {
        const char *key = lynx_value_key_at(extra, i);
        if (!key || lynx_value_get(event, key))
            continue;
        lynx_value_t *copy = lynx_value_dup(lynx_value_at(extra, i));
        if (!copy || lynx_value_set(event, key, &copy))
            rc = -1;
        lynx_value_destroy(&copy);
    }
    unsigned char *packed = NULL;
    size_t size = 0;
    if (rc == 0 && self->pub)
        rc = lynx_msgpack_pack(event, &packed, &size);
    lynx_value_destroy(event_p);
    if (rc == 0 && !self->pub)
        return 0;
    zframe_t *frame = rc == 0 ? zframe_new(packed, size) : NULL;
    free(packed);
    rc = s_send(self, topic, &frame);
    if (rc == 0)
        self->stats.events_published++;
    else
        self->stats.events_dropped++;
    return rc;
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
    char quoted[TELEMETRY_QUOTE_MAX];
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
        if (!telemetry_name_valid(name, len))
            return lynx_err_set(err, LYNX_EINVALID, "body.values", "invalid variable name %s",
                                telemetry_quote(name, len, quoted));
        lynx_value_type_t type = lynx_value_type(lynx_value_at(values, i));
        if (type != LYNX_VALUE_INT && type != LYNX_VALUE_DOUBLE && type != LYNX_VALUE_BOOL)
            return lynx_err_set(err, LYNX_EINVALID, "body.values",
                                "%s: expected number or boolean, got %s",
                                telemetry_quote(name, len, quoted), lynx_value_type_name(type));
    }
    telemetry_batch_t *batch = (telemetry_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch)
        return lynx_err_set(err, LYNX_EINVALID, "body.batch_id", "unknown batch %s",
                            telemetry_quote(batch_id, strlen(batch_id), quoted));
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
    unsigned char *packed = NULL;
    size_t packed_size = 0;
    int rc = record && values ? 0 : -1;
    if (rc == 0)
        rc = lynx_value_set_int(record, "seq", seq);
    if (rc == 0)
        rc = lynx_value_set_int(record, "timestamp_ns",
                                lynx_value_get_int(telemetry_body, "timestamp_ns", 0));
    if (rc == 0)
        rc = lynx_value_set(record, "values", &values);
    if (rc == 0)
        rc = lynx_msgpack_pack(record, &packed, &packed_size);
    if (rc == 0)
        rc = s_buffer_record(self, job, packed, packed_size);
    lynx_value_destroy(&values);
    if (rc != 0) {
        lynx_value_destroy(&record);
        self->stats.frames_unwritten++;
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory storing a frame of job %s",
                            job->id);
    }
    if (self->pub)
        s_publish_frame(self, job, &record, lynx_value_get(telemetry_body, "dropped"));
    lynx_value_destroy(&record);

    if (job->size >= self->job_buffer_bytes)
        telemetry_flush(self, job);
    if (self->stats.buffered_bytes > self->total_buffer_bytes)
        s_flush_oldest(self);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  The class.

broker_telemetry_t *broker_telemetry_new(const char *data_dir, const char *pub_endpoint,
                                         lynx_err_t *err)
{
    if (!data_dir || !*data_dir) {
        lynx_err_set(err, LYNX_EINVALID, "data_dir", "required");
        return NULL;
    }
    //  Room for <root>/<prefix>/<batch>/<job>.msgpack.gz
    if (strlen(data_dir) + TELEMETRY_PREFIX_MAX + 2 * BROKER_TELEMETRY_ID_MAX + 40 >= PATH_MAX) {
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
    if (pub_endpoint && *pub_endpoint) {
        self->pub = zsock_new(ZMQ_PUB);
        if (!self->pub) {
            lynx_err_set(err, LYNX_EINTERNAL, NULL, "create socket for %s: %s", pub_endpoint,
                         zmq_strerror(errno));
            broker_telemetry_destroy(&self);
            return NULL;
        }
        zsock_set_sndhwm(self->pub, S_PUB_HWM);
        zsock_set_linger(self->pub, 0);
        zsock_set_maxmsgsize(self->pub, 4096); //  subscribers only send subscriptions
        if (zsock_bind(self->pub, "%s", pub_endpoint) < 0) {
            lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s: %s", pub_endpoint,
                         zmq_strerror(errno));
            broker_telemetry_destroy(&self);
            return NULL;
        }
        snprintf(self->endpoint, sizeof self->endpoint, "%s",
                 zsock_endpoint(self->pub) ? zsock_endpoint(self->pub) : pub_endpoint);
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
            telemetry_flush(self, job);
        zhashx_destroy(&self->jobs);
    }
    if (self->rejected_unlogged > 0)
        zsys_warning("broker: telemetry frames refused count=%" PRIu64 " last=%s",
                     self->rejected_unlogged, self->rejected_reason);
    zhashx_destroy(&self->batches);
    zsock_destroy(&self->pub);
    free(self->root);
    free(self);
    *self_p = NULL;
}

const char *broker_telemetry_endpoint(const broker_telemetry_t *self)
{
    assert(self);
    return self->endpoint;
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

int broker_telemetry_check_config(const lynx_value_t *telemetry_config, lynx_err_t *err)
{
    return s_parse_config(telemetry_config, NULL, err);
}

int broker_telemetry_configure_batch(broker_telemetry_t *self, const char *batch_id,
                                     const lynx_value_t *telemetry_config, lynx_err_t *err)
{
    assert(self);
    char quoted[TELEMETRY_QUOTE_MAX];
    if (!batch_id || !telemetry_id_valid(batch_id, strlen(batch_id)))
        return lynx_err_set(err, LYNX_EINVALID, "batch_id", "invalid id %s",
                            telemetry_quote(batch_id, batch_id ? strlen(batch_id) : 0, quoted));
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
    return s_parse_config(telemetry_config, batch, err);
}

int broker_telemetry_flush_due(broker_telemetry_t *self, int64_t now_ms)
{
    assert(self);
    int flushed = 0;
    bool failed = false;
    size_t idle = 0;
    for (telemetry_job_t *job = (telemetry_job_t *)zhashx_first(self->jobs); job;
         job = (telemetry_job_t *)zhashx_next(self->jobs)) {
        if (job->size > 0 && now_ms - job->first_buffered_ms >= job->batch->flush_interval_ms) {
            failed |= telemetry_flush(self, job) != 0;
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
    int rc = telemetry_flush(self, job);
    zhashx_delete(self->jobs, job_id);
    return rc;
}

//  Publish {type, <id keys>: ids, status, time_ms, ...extra} on topic.
static int s_publish_state(broker_telemetry_t *self, const char *type, const char *topic,
                           const char *const keys[], const char *const ids[], size_t count,
                           const char *status, const lynx_value_t *extra)
{
    lynx_value_t *event = lynx_value_map();
    bool failed = !event || lynx_value_set_string(event, "type", type);
    for (size_t i = 0; i < count && !failed; i++)
        failed = lynx_value_set_string(event, keys[i], ids[i]) != 0;
    if (failed || lynx_value_set_string(event, "status", status) ||
        lynx_value_set_int(event, "time_ms", lynx_time_now_ms()))
        lynx_value_destroy(&event);
    return s_publish_event(self, topic, &event, extra);
}

static int s_refuse_event(broker_telemetry_t *self)
{
    self->stats.events_dropped++;
    return -1;
}

int broker_telemetry_publish_job_event(broker_telemetry_t *self, const char *batch_id,
                                       const char *job_id, const char *status,
                                       const lynx_value_t *extra)
{
    assert(self);
    if (!batch_id || !telemetry_id_valid(batch_id, strlen(batch_id)) || !job_id ||
        !telemetry_id_valid(job_id, strlen(job_id)) || !status)
        return s_refuse_event(self);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "event.%s.%s", batch_id, job_id);
    const char *keys[] = {"batch_id", "job_id"}, *ids[] = {batch_id, job_id};
    return s_publish_state(self, "job", topic, keys, ids, 2, status, extra);
}

int broker_telemetry_publish_batch_event(broker_telemetry_t *self, const char *batch_id,
                                         const char *status, const lynx_value_t *extra)
{
    assert(self);
    if (!batch_id || !telemetry_id_valid(batch_id, strlen(batch_id)) || !status)
        return s_refuse_event(self);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "event.%s", batch_id);
    const char *keys[] = {"batch_id"}, *ids[] = {batch_id};
    return s_publish_state(self, "batch", topic, keys, ids, 1, status, extra);
}

//  Runner ids are an operator's choice (often a host name, dots included): any printable
//  characters but spaces, at most BROKER_TELEMETRY_RUNNER_ID_MAX.
static bool s_runner_id_valid(const char *id)
{
    size_t len = strlen(id);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] == 0x7f)
            return false;
    return len > 0 && len <= BROKER_TELEMETRY_RUNNER_ID_MAX;
}

int broker_telemetry_publish_runner_event(broker_telemetry_t *self, const char *runner_id,
                                          const char *status, const lynx_value_t *extra)
{
    assert(self);
    if (!runner_id || !s_runner_id_valid(runner_id) || !status)
        return s_refuse_event(self);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "runner.%s", runner_id);
    const char *keys[] = {"runner_id"}, *ids[] = {runner_id};
    return s_publish_state(self, "runner", topic, keys, ids, 1, status, extra);
}

void broker_telemetry_stats(const broker_telemetry_t *self, broker_telemetry_stats_t *stats)
{
    assert(self && stats);
    *stats = self->stats;
    stats->jobs = zhashx_size(self->jobs);
}
