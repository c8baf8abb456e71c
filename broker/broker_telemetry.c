//  broker_telemetry: store and republish runners' telemetry (see the header and
//  docs/telemetry.md).
//
//  A series file is a sequence of records, each a 4-byte big-endian length and that many bytes
//  of msgpack (lynx_msgpack_pack of {seq, timestamp_ns, values}). The length prefix is ours,
//  not msgpack: it lets the codec decode one record at a time (it refuses trailing bytes) and
//  lets a reader skip records without parsing them. A flush appends whole records: plain files
//  through zlib's transparent mode, gzip files as one more gzip member (a multi-member stream
//  reads back as one). A failed append is cut back to the previous size, so a disk error never
//  leaves half a record in the middle of a file.
#include "broker_telemetry.h"

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
#define S_PREFIX_MAX 200
#define S_IDLE_FORGET_MS (10 * 60 * 1000) //  a job without frames this long is forgotten
#define S_LOG_EVERY_MS 10000              //  refused frames are logged at most this often
#define S_PUB_HWM 100000                  //  messages queued per subscriber, then dropped
#define S_RECORD_HEADER 4
#define S_GZIP_WRITE_MODE "ab1" //  level 1: the loop thread compresses (bench: docs/telemetry.md)
#define S_FILE_BUFFER (128 * 1024)
#define S_TOPIC_MAX (16 + 2 * BROKER_TELEMETRY_ID_MAX)
#define S_QUOTE_MAX (BROKER_TELEMETRY_NAME_MAX + 8)

//  A batch's storage settings.
typedef struct {
    char id[BROKER_TELEMETRY_ID_MAX + 1];
    char prefix[S_PREFIX_MAX + 1]; //  "" or "a/b": no leading, trailing or double '/'
    bool gzip;
    int64_t flush_interval_ms;
} s_batch_t;

//  A job seen recently: its records waiting for a flush, and its seq for loss counting.
typedef struct {
    char id[BROKER_TELEMETRY_ID_MAX + 1];
    s_batch_t *batch; //  borrowed: batches live as long as self
    unsigned char *buffer;
    size_t size;
    size_t capacity;
    size_t frames;             //  records in buffer
    int64_t first_buffered_ms; //  monotonic time of the oldest record in buffer
    int64_t last_frame_ms;
    int64_t last_seq; //  -1 before the first frame
    bool dir_ready;
    bool write_failed; //  logged once per job
} s_job_t;

struct _broker_telemetry_t {
    char *root; //  <data_dir>/telemetry
    zsock_t *pub;
    char endpoint[256];
    zhashx_t *batches; //  id -> s_batch_t
    zhashx_t *jobs;    //  id -> s_job_t
    size_t job_buffer_bytes;
    size_t total_buffer_bytes;
    size_t read_max_cells;
    broker_telemetry_stats_t stats;
    uint64_t rejected_unlogged;
    int64_t rejected_logged_ms;
    char rejected_reason[LYNX_ERR_FIELD_MAX + LYNX_ERR_MESSAGE_MAX + 2];
};

//  ---------------------------------------------------------------------------------------
//  Validation of what arrives from the network and from configs.

static bool s_id_valid(const char *id, size_t len)
{
    if (!id || len == 0 || len > BROKER_TELEMETRY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  Variable names are what scenarios chose (any string without NUL, for the clients); only
//  control characters are refused, which no CSV header or terminal should carry.
static bool s_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > BROKER_TELEMETRY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < ' ' || c == 0x7f)
            return false;
    }
    return true;
}

//  Quote untrusted text for a message: at most S_QUOTE_MAX - 4 bytes, non-printables as '?'.
static const char *s_quote(const char *text, size_t len, char *out)
{
    size_t limit = S_QUOTE_MAX - 4, n = 0;
    out[n++] = '\'';
    for (size_t i = 0; text && i < len && i < limit; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = c >= ' ' && c <= '~' ? (char)c : '?';
    }
    if (text && len > limit)
        out[n - 1] = '~';
    out[n++] = '\'';
    out[n] = '\0';
    return out;
}

//  A string id from a map: its text when valid, else NULL with err naming the field.
static const char *s_get_id(const lynx_value_t *map, const char *key, const char *field,
                            lynx_err_t *err)
{
    const lynx_value_t *value = lynx_value_get(map, key);
    char quoted[S_QUOTE_MAX];
    if (lynx_value_type(value) != LYNX_VALUE_STRING) {
        lynx_err_set(err, LYNX_EINVALID, field, value ? "expected string, got %s" : "%s",
                     value ? lynx_value_type_name(lynx_value_type(value))
                           : "required field missing");
        return NULL;
    }
    const char *id = lynx_value_as_string(value);
    size_t len = lynx_value_string_len(value);
    if (!s_id_valid(id, len)) {
        lynx_err_set(err, LYNX_EINVALID, field, "invalid id %s: 1-%d of A-Z a-z 0-9 _ -",
                     s_quote(id, len, quoted), BROKER_TELEMETRY_ID_MAX);
        return NULL;
    }
    return id;
}

//  Normalize a storage prefix into out ("spacecraft/" -> "spacecraft", "a//b" -> "a/b").
//  -1 for an absolute path, a "." or ".." part, or characters outside [A-Za-z0-9._/-].
static int s_prefix_normalize(const char *prefix, size_t len, char *out)
{
    if (len > S_PREFIX_MAX || (len > 0 && prefix[0] == '/'))
        return -1;
    size_t n = 0;
    for (size_t start = 0; start < len;) {
        size_t end = start;
        while (end < len && prefix[end] != '/')
            end++;
        size_t part = end - start;
        if ((part == 1 && prefix[start] == '.') ||
            (part == 2 && prefix[start] == '.' && prefix[start + 1] == '.'))
            return -1;
        for (size_t i = start; i < end; i++) {
            char c = prefix[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.'))
                return -1;
        }
        if (part > 0) {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, prefix + start, part);
            n += part;
        }
        start = end + 1;
    }
    out[n] = '\0';
    return 0;
}

//  Parse a telemetry section into batch (may be NULL: check only). Bad fields keep their
//  defaults; the first problem goes to err. Returns 0 or -1.
static int s_parse_config(const lynx_value_t *config, s_batch_t *batch, lynx_err_t *err)
{
    s_batch_t scratch;
    if (!batch)
        batch = &scratch;
    batch->prefix[0] = '\0';
    batch->gzip = false;
    batch->flush_interval_ms = S_FLUSH_INTERVAL_MS_DEFAULT;
    if (!config || lynx_value_type(config) == LYNX_VALUE_NULL)
        return 0;
    if (lynx_value_type(config) != LYNX_VALUE_MAP)
        return lynx_err_set(err, LYNX_EINVALID, "config.telemetry", "must be an object");
    lynx_err_t first;
    lynx_err_clear(&first);
#define S_FAIL(field, ...)                                                                         \
    do {                                                                                           \
        if (first.code == LYNX_OK)                                                                 \
            lynx_err_set(&first, LYNX_EINVALID, "config.telemetry." field, __VA_ARGS__);           \
    } while (0)

    const lynx_value_t *rate = lynx_value_get(config, "sampling_rate_hz");
    if (rate && (!lynx_value_is_number(rate) || !(lynx_value_as_double(rate) > 0)))
        S_FAIL("sampling_rate_hz", "must be a number above 0");
    const lynx_value_t *variables = lynx_value_get(config, "variables");
    if (variables && lynx_value_type(variables) != LYNX_VALUE_ARRAY)
        S_FAIL("variables", "must be an array of variable names");
    for (size_t i = 0; i < lynx_value_size(variables); i++) {
        const lynx_value_t *name = lynx_value_at(variables, i);
        if (lynx_value_type(name) != LYNX_VALUE_STRING ||
            !s_name_valid(lynx_value_as_string(name), lynx_value_string_len(name)))
            S_FAIL("variables",
                   "item %zu: must be a name of 1-%d bytes without control "
                   "characters",
                   i, BROKER_TELEMETRY_NAME_MAX);
    }
    const lynx_value_t *interval = lynx_value_get(config, "buffer_flush_interval_seconds");
    if (interval) {
        double secs = lynx_value_as_double(interval);
        if (!lynx_value_is_number(interval) || !(secs > 0) || secs > S_FLUSH_INTERVAL_SECS_MAX)
            S_FAIL("buffer_flush_interval_seconds", "must be a number above 0 and at most %d",
                   S_FLUSH_INTERVAL_SECS_MAX);
        else
            batch->flush_interval_ms = (int64_t)ceil(secs * 1000.0);
    }
    const lynx_value_t *storage = lynx_value_get(config, "storage");
    if (storage && lynx_value_type(storage) != LYNX_VALUE_MAP)
        S_FAIL("storage", "must be an object");
    const lynx_value_t *bucket = lynx_value_get(storage, "s3_bucket");
    if (bucket && lynx_value_type(bucket) != LYNX_VALUE_STRING)
        S_FAIL("storage.s3_bucket", "must be a string");
    const lynx_value_t *compression = lynx_value_get(storage, "compression");
    const char *method = lynx_value_as_string(compression);
    if (compression &&
        (!method || !(streq(method, "gzip") || streq(method, "none") || streq(method, ""))))
        S_FAIL("storage.compression", "must be \"gzip\" or \"none\"");
    else
        batch->gzip = method && streq(method, "gzip");
    const lynx_value_t *prefix = lynx_value_get(storage, "s3_prefix");
    if (prefix && (lynx_value_type(prefix) != LYNX_VALUE_STRING ||
                   s_prefix_normalize(lynx_value_as_string(prefix), lynx_value_string_len(prefix),
                                      batch->prefix))) {
        batch->prefix[0] = '\0';
        S_FAIL("storage.s3_prefix",
               "must be a relative path of at most %d characters of A-Z a-z 0-9 . _ / - "
               "without '.' or '..' parts",
               S_PREFIX_MAX);
    }
#undef S_FAIL
    if (first.code == LYNX_OK)
        return 0;
    if (err)
        *err = first;
    return -1;
}

//  Parse "a, b,c" into a new array of unique names; NULL array for "all". -1 with err.
static int s_parse_variables(const char *csv, lynx_value_t **names_p, lynx_err_t *err)
{
    *names_p = NULL;
    if (!csv || strspn(csv, " \t") == strlen(csv))
        return 0;
    lynx_value_t *names = lynx_value_array();
    if (!names)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    size_t position = 0;
    for (const char *start = csv;; position++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        const char *name = start;
        while (len > 0 && (*name == ' ' || *name == '\t'))
            name++, len--;
        while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
            len--;
        char quoted[S_QUOTE_MAX];
        if (!s_name_valid(name, len) || position >= BROKER_TELEMETRY_VALUES_MAX) {
            lynx_value_destroy(&names);
            if (position >= BROKER_TELEMETRY_VALUES_MAX)
                return lynx_err_set(err, LYNX_EINVALID, "variables", "more than %d names",
                                    BROKER_TELEMETRY_VALUES_MAX);
            return lynx_err_set(err, LYNX_EINVALID, "variables",
                                "item %zu: invalid variable name %s", position + 1,
                                s_quote(name, len, quoted));
        }
        bool seen = false;
        for (size_t i = 0; i < lynx_value_size(names) && !seen; i++) {
            const lynx_value_t *other = lynx_value_at(names, i);
            seen = lynx_value_string_len(other) == len &&
                   memcmp(lynx_value_as_string(other), name, len) == 0;
        }
        lynx_value_t *item = seen ? NULL : lynx_value_stringn(name, len);
        if (!seen && (!item || lynx_value_append(names, &item))) {
            lynx_value_destroy(&item);
            lynx_value_destroy(&names);
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        }
        if (!end)
            break;
        start = end + 1;
    }
    *names_p = names;
    return 0;
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
    s_job_t *job = (s_job_t *)*item_p;
    if (job)
        free(job->buffer);
    free(job);
    *item_p = NULL;
}

//  The job's file path into path (PATH_MAX bytes); with dir_only, its directory.
static void s_job_path(const broker_telemetry_t *self, const s_job_t *job, bool dir_only,
                       char *path)
{
    const s_batch_t *batch = job->batch;
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
    gzbuffer(file, S_FILE_BUFFER);
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

//  Write the job's buffer to its file and empty it, whatever happens: a buffer that cannot be
//  written is counted lost rather than kept (memory stays bounded while the disk is full).
static int s_flush(broker_telemetry_t *self, s_job_t *job)
{
    if (job->size == 0)
        return 0;
    char path[PATH_MAX], why[PATH_MAX + 128];
    int rc = 0;
    if (!job->dir_ready) {
        s_job_path(self, job, true, path);
        if (zsys_dir_create("%s", path)) {
            snprintf(why, sizeof why, "create %s: %s", path, strerror(errno));
            rc = -1;
        } else
            job->dir_ready = true;
    }
    if (rc == 0) {
        s_job_path(self, job, false, path);
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
    const s_job_t *x = *(s_job_t *const *)a, *y = *(s_job_t *const *)b;
    return (x->first_buffered_ms > y->first_buffered_ms) -
           (x->first_buffered_ms < y->first_buffered_ms);
}

//  All jobs together hold too much: flush the oldest buffers down to three quarters of the cap.
static void s_flush_oldest(broker_telemetry_t *self)
{
    size_t count = 0, size = zhashx_size(self->jobs);
    s_job_t **jobs = (s_job_t **)malloc(size * sizeof *jobs);
    if (!jobs)
        return;
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs))
        if (job->size > 0)
            jobs[count++] = job;
    qsort(jobs, count, sizeof *jobs, s_compare_oldest);
    size_t target = self->total_buffer_bytes / 4 * 3;
    for (size_t i = 0; i < count && self->stats.buffered_bytes > target; i++)
        s_flush(self, jobs[i]);
    free(jobs);
}

//  Append one record (length prefix + msgpack) to the job's buffer. Takes the packed bytes.
static int s_buffer_record(broker_telemetry_t *self, s_job_t *job, unsigned char *packed,
                           size_t packed_size)
{
    size_t need = job->size + S_RECORD_HEADER + packed_size;
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
    memcpy(at + S_RECORD_HEADER, packed, packed_size);
    free(packed);
    if (job->size == 0)
        job->first_buffered_ms = job->last_frame_ms;
    job->size = need;
    job->frames++;
    self->stats.buffered_bytes += S_RECORD_HEADER + packed_size;
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
static void s_publish_frame(broker_telemetry_t *self, const s_job_t *job, lynx_value_t **record_p,
                            const lynx_value_t *dropped)
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
static int s_check_frame(broker_telemetry_t *self, const lynx_value_t *body, s_job_t **job_p,
                         lynx_err_t *err)
{
    char quoted[S_QUOTE_MAX];
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
        if (!s_name_valid(name, len))
            return lynx_err_set(err, LYNX_EINVALID, "body.values", "invalid variable name %s",
                                s_quote(name, len, quoted));
        lynx_value_type_t type = lynx_value_type(lynx_value_at(values, i));
        if (type != LYNX_VALUE_INT && type != LYNX_VALUE_DOUBLE && type != LYNX_VALUE_BOOL)
            return lynx_err_set(err, LYNX_EINVALID, "body.values",
                                "%s: expected number or boolean, got %s",
                                s_quote(name, len, quoted), lynx_value_type_name(type));
    }
    s_batch_t *batch = (s_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch)
        return lynx_err_set(err, LYNX_EINVALID, "body.batch_id", "unknown batch %s",
                            s_quote(batch_id, strlen(batch_id), quoted));
    s_job_t *job = (s_job_t *)zhashx_lookup(self->jobs, job_id);
    if (job && job->batch != batch)
        return lynx_err_set(err, LYNX_EINVALID, "body.batch_id", "job %s belongs to batch %s",
                            job_id, job->batch->id);
    if (!job) {
        job = (s_job_t *)calloc(1, sizeof *job);
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
static void s_count_lost(broker_telemetry_t *self, s_job_t *job, int64_t seq)
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
    s_job_t *job = NULL;
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
        s_flush(self, job);
    if (self->stats.buffered_bytes > self->total_buffer_bytes)
        s_flush_oldest(self);
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Reading a series back: records into columns of compact cells.

typedef struct {
    lynx_value_type_t type; //  NULL, BOOL, INT or DOUBLE
    union {
        int64_t integer;
        double number;
    } u;
} s_cell_t;

typedef struct {
    char *name;
    s_cell_t *cells;
    size_t count;
    size_t capacity;
} s_column_t;

typedef struct {
    s_column_t *columns;
    size_t column_count;
    size_t column_capacity;
    zhashx_t *index; //  name -> column index + 1
    bool fixed;      //  a variables filter: no new columns
    int64_t *seq;
    int64_t *timestamps;
    size_t rows;
    size_t row_capacity;
    size_t max_cells;
} s_series_t;

static void s_series_destroy(s_series_t *series)
{
    for (size_t i = 0; i < series->column_count; i++) {
        free(series->columns[i].name);
        free(series->columns[i].cells);
    }
    free(series->columns);
    zhashx_destroy(&series->index);
    free(series->seq);
    free(series->timestamps);
}

static int s_column_push(s_column_t *column, s_cell_t cell)
{
    if (column->count == column->capacity) {
        size_t capacity = column->capacity ? column->capacity * 2 : 256;
        s_cell_t *cells = (s_cell_t *)realloc(column->cells, capacity * sizeof *cells);
        if (!cells)
            return -1;
        column->cells = cells;
        column->capacity = capacity;
    }
    column->cells[column->count++] = cell;
    return 0;
}

//  A new column, with nulls for the rows before (backfill). Index or -1.
static ssize_t s_series_add_column(s_series_t *series, const char *name, size_t backfill)
{
    if (series->column_count == series->column_capacity) {
        size_t capacity = series->column_capacity ? series->column_capacity * 2 : 16;
        s_column_t *columns = (s_column_t *)realloc(series->columns, capacity * sizeof *columns);
        if (!columns)
            return -1;
        series->columns = columns;
        series->column_capacity = capacity;
    }
    s_column_t *column = &series->columns[series->column_count];
    *column = (s_column_t){.name = strdup(name)};
    if (!column->name)
        return -1;
    series->column_count++;
    for (size_t i = 0; i < backfill; i++)
        if (s_column_push(column, (s_cell_t){.type = LYNX_VALUE_NULL}))
            return -1;
    zhashx_insert(series->index, name, (void *)(uintptr_t)series->column_count);
    return (ssize_t)series->column_count - 1;
}

static int s_series_init(s_series_t *series, const char *variables_csv, size_t max_cells,
                         lynx_err_t *err)
{
    *series = (s_series_t){.max_cells = max_cells, .index = zhashx_new()};
    lynx_value_t *names = NULL;
    if (!series->index)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    if (s_parse_variables(variables_csv, &names, err))
        return -1;
    series->fixed = names != NULL;
    for (size_t i = 0; i < lynx_value_size(names); i++)
        if (s_series_add_column(series, lynx_value_as_string(lynx_value_at(names, i)), 0) < 0) {
            lynx_value_destroy(&names);
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        }
    lynx_value_destroy(&names);
    return 0;
}

//  Add one decoded record as a row. 1 to skip a record of the wrong shape, -1 with err.
static int s_series_add(s_series_t *series, const lynx_value_t *record, lynx_err_t *err)
{
    const lynx_value_t *values = lynx_value_get(record, "values");
    if (lynx_value_type(lynx_value_get(record, "seq")) != LYNX_VALUE_INT ||
        lynx_value_type(lynx_value_get(record, "timestamp_ns")) != LYNX_VALUE_INT ||
        lynx_value_type(values) != LYNX_VALUE_MAP)
        return 1;
    size_t row = series->rows;
    if ((row + 1) * (series->column_count + 1) > series->max_cells)
        return lynx_err_set(err, LYNX_ETOOLARGE, "variables",
                            "more than %zu values (frames x variables): select fewer variables",
                            series->max_cells);
    if (row == series->row_capacity) {
        size_t capacity = row ? row * 2 : 256;
        int64_t *seq = (int64_t *)realloc(series->seq, capacity * sizeof *seq);
        if (seq)
            series->seq = seq;
        int64_t *timestamps =
            seq ? (int64_t *)realloc(series->timestamps, capacity * sizeof *timestamps) : NULL;
        if (!timestamps)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        series->timestamps = timestamps;
        series->row_capacity = capacity;
    }
    series->seq[row] = lynx_value_get_int(record, "seq", 0);
    series->timestamps[row] = lynx_value_get_int(record, "timestamp_ns", 0);
    series->rows++;
    for (size_t i = 0; i < lynx_value_size(values); i++) {
        const char *name = lynx_value_key_at(values, i);
        uintptr_t found = (uintptr_t)zhashx_lookup(series->index, name);
        if (!found && series->fixed)
            continue;
        if (!found) {
            if (series->rows * (series->column_count + 2) > series->max_cells)
                return lynx_err_set(err, LYNX_ETOOLARGE, "variables",
                                    "more than %zu values (frames x variables): select fewer "
                                    "variables",
                                    series->max_cells);
            ssize_t index = s_series_add_column(series, name, row);
            if (index < 0)
                return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
            found = (uintptr_t)index + 1;
        }
        s_column_t *column = &series->columns[found - 1];
        if (column->count > row)
            continue; //  a stored record never repeats a name; keep the first if one did
        const lynx_value_t *value = lynx_value_at(values, i);
        s_cell_t cell = {.type = lynx_value_type(value)};
        if (cell.type == LYNX_VALUE_DOUBLE)
            cell.u.number = lynx_value_as_double(value);
        else if (cell.type == LYNX_VALUE_INT)
            cell.u.integer = lynx_value_as_int(value);
        else if (cell.type == LYNX_VALUE_BOOL)
            cell.u.integer = lynx_value_as_bool(value);
        else
            cell.type = LYNX_VALUE_NULL;
        if (s_column_push(column, cell))
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    }
    for (size_t i = 0; i < series->column_count; i++)
        if (series->columns[i].count <= row &&
            s_column_push(&series->columns[i], (s_cell_t){.type = LYNX_VALUE_NULL}))
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    return 0;
}

//  Read exactly size bytes: 1, 0 at a clean end of file, -1 for a short read or an error.
static int s_read_exactly(gzFile file, void *data, size_t size)
{
    int got = gzread(file, data, (unsigned)size);
    if (got == (int)size)
        return 1;
    return got == 0 && gzeof(file) ? 0 : -1;
}

//  Read the file's records into series. A damaged tail (a crash during a flush) ends the
//  series with what came before it, with a warning.
static int s_read_file(const char *path, s_series_t *series, lynx_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    gzFile file = fd < 0 ? NULL : gzdopen(fd, "rb");
    if (!file) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "open %s: %s", path,
                     fd < 0 ? strerror(errno) : "out of memory");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    gzbuffer(file, S_FILE_BUFFER);
    unsigned char header[S_RECORD_HEADER];
    unsigned char *data = NULL;
    size_t capacity = 0;
    int rc = 0;
    const char *damage = NULL;
    while (rc == 0 && !damage) {
        int got = s_read_exactly(file, header, sizeof header);
        if (got <= 0) {
            damage = got < 0 ? "truncated record header" : NULL;
            break;
        }
        size_t size =
            (size_t)header[0] << 24 | (size_t)header[1] << 16 | (size_t)header[2] << 8 | header[3];
        if (size == 0 || size > LYNX_MSG_MAX_BYTES) {
            damage = "bad record length";
            break;
        }
        if (size > capacity) {
            unsigned char *grown = (unsigned char *)realloc(data, size);
            if (!grown) {
                rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
                break;
            }
            data = grown;
            capacity = size;
        }
        if (s_read_exactly(file, data, size) != 1) {
            damage = "truncated record";
            break;
        }
        lynx_value_t *record = lynx_msgpack_unpack(data, size, NULL);
        if (!record)
            damage = "undecodable record";
        else if (s_series_add(series, record, err) < 0)
            rc = -1;
        lynx_value_destroy(&record);
    }
    if (damage)
        zsys_warning("broker: telemetry file damaged path=%s frames_read=%zu: %s", path,
                     series->rows, damage);
    free(data);
    gzclose(file);
    return rc;
}

//  Load a job's series (flushing it first). -1 with err.
static int s_load(broker_telemetry_t *self, const char *batch_id, const char *job_id,
                  const char *variables_csv, s_series_t *series, lynx_err_t *err)
{
    *series = (s_series_t){0};
    char quoted[S_QUOTE_MAX];
    if (!batch_id || !s_id_valid(batch_id, strlen(batch_id)))
        return lynx_err_set(err, LYNX_EINVALID, "batch_id", "invalid id %s",
                            s_quote(batch_id, batch_id ? strlen(batch_id) : 0, quoted));
    if (!job_id || !s_id_valid(job_id, strlen(job_id)))
        return lynx_err_set(err, LYNX_EINVALID, "job_id", "invalid id %s",
                            s_quote(job_id, job_id ? strlen(job_id) : 0, quoted));
    if (s_series_init(series, variables_csv, self->read_max_cells, err))
        return -1;
    s_job_t *job = (s_job_t *)zhashx_lookup(self->jobs, job_id);
    if (job)
        s_flush(self, job); //  a failure is logged there; read what the disk has
    s_batch_t *batch = (s_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch)
        return 0;
    s_job_t where = {.batch = batch};
    snprintf(where.id, sizeof where.id, "%s", job_id);
    char path[PATH_MAX];
    s_job_path(self, &where, false, path);
    return s_read_file(path, series, err);
}

static void s_format_double(double value, char *out, size_t size)
{
    if (isnan(value))
        snprintf(out, size, "nan");
    else if (isinf(value))
        snprintf(out, size, value > 0 ? "inf" : "-inf");
    else
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(out, size, "%.*g", precision, value);
            if (strtod(out, NULL) == value)
                break;
        }
}

//  A header cell: as is, or quoted (RFC 4180) when it holds ',' or '"' or starts or ends with
//  a space.
static void s_csv_name(FILE *out, const char *name)
{
    size_t len = strlen(name);
    if (!strpbrk(name, ",\"") && name[0] != ' ' && name[len - 1] != ' ') {
        fputs(name, out);
        return;
    }
    fputc('"', out);
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            fputc('"', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

static lynx_value_t *s_cell_value(const s_cell_t *cell)
{
    switch (cell->type) {
    case LYNX_VALUE_BOOL:
        return lynx_value_bool(cell->u.integer != 0);
    case LYNX_VALUE_INT:
        return lynx_value_int(cell->u.integer);
    case LYNX_VALUE_DOUBLE:
        return lynx_value_double(cell->u.number);
    default:
        return lynx_value_null();
    }
}

//  Append item to an array or set it under key in a map (key NULL: append). Takes item.
static int s_put(lynx_value_t *parent, const char *key, lynx_value_t *item)
{
    int rc = !item ? -1
             : key ? lynx_value_set(parent, key, &item)
                   : lynx_value_append(parent, &item);
    lynx_value_destroy(&item);
    return rc;
}

static lynx_value_t *s_int_column(const int64_t *items, size_t count)
{
    lynx_value_t *array = lynx_value_array();
    for (size_t i = 0; array && i < count; i++)
        if (s_put(array, NULL, lynx_value_int(items[i])))
            lynx_value_destroy(&array);
    return array;
}

lynx_value_t *broker_telemetry_read(broker_telemetry_t *self, const char *batch_id,
                                    const char *job_id, const char *variables_csv, lynx_err_t *err)
{
    assert(self);
    s_series_t series;
    if (s_load(self, batch_id, job_id, variables_csv, &series, err)) {
        s_series_destroy(&series);
        return NULL;
    }
    lynx_value_t *result = lynx_value_map();
    lynx_value_t *values = lynx_value_map();
    int rc = result && values ? 0 : -1;
    rc = rc ? rc : lynx_value_set_string(result, "job_id", job_id);
    rc = rc ? rc : lynx_value_set_string(result, "batch_id", batch_id);
    rc = rc ? rc : lynx_value_set_int(result, "count", (int64_t)series.rows);
    rc = rc ? rc : s_put(result, "seq", s_int_column(series.seq, series.rows));
    rc = rc ? rc : s_put(result, "timestamp_ns", s_int_column(series.timestamps, series.rows));
    for (size_t i = 0; rc == 0 && i < series.column_count; i++) {
        lynx_value_t *column = lynx_value_array();
        for (size_t row = 0; column && row < series.rows; row++)
            if (s_put(column, NULL, s_cell_value(&series.columns[i].cells[row])))
                lynx_value_destroy(&column);
        rc = s_put(values, series.columns[i].name, column);
    }
    rc = rc ? rc : lynx_value_set(result, "values", &values);
    s_series_destroy(&series);
    lynx_value_destroy(&values);
    if (rc) {
        lynx_value_destroy(&result);
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory reading telemetry of job %s",
                     job_id);
    }
    return result;
}

char *broker_telemetry_read_csv(broker_telemetry_t *self, const char *batch_id, const char *job_id,
                                const char *variables_csv, lynx_err_t *err)
{
    assert(self);
    s_series_t series;
    if (s_load(self, batch_id, job_id, variables_csv, &series, err)) {
        s_series_destroy(&series);
        return NULL;
    }
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out) {
        fputs("timestamp_ns", out);
        for (size_t i = 0; i < series.column_count; i++) {
            fputc(',', out);
            s_csv_name(out, series.columns[i].name);
        }
        fputc('\n', out);
        char number[40];
        for (size_t row = 0; row < series.rows; row++) {
            fprintf(out, "%" PRId64, series.timestamps[row]);
            for (size_t i = 0; i < series.column_count; i++) {
                const s_cell_t *cell = &series.columns[i].cells[row];
                fputc(',', out);
                if (cell->type == LYNX_VALUE_DOUBLE) {
                    s_format_double(cell->u.number, number, sizeof number);
                    fputs(number, out);
                } else if (cell->type == LYNX_VALUE_INT)
                    fprintf(out, "%" PRId64, cell->u.integer);
                else if (cell->type == LYNX_VALUE_BOOL)
                    fputs(cell->u.integer ? "true" : "false", out);
            }
            fputc('\n', out);
        }
    }
    s_series_destroy(&series);
    if (!out || ferror(out)) {
        if (out)
            fclose(out);
        free(text);
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory reading telemetry of job %s",
                     job_id);
        return NULL;
    }
    fclose(out);
    return text;
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
    if (strlen(data_dir) + S_PREFIX_MAX + 2 * BROKER_TELEMETRY_ID_MAX + 40 >= PATH_MAX) {
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
        for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
             job = (s_job_t *)zhashx_next(self->jobs))
            s_flush(self, job);
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
    char quoted[S_QUOTE_MAX];
    if (!batch_id || !s_id_valid(batch_id, strlen(batch_id)))
        return lynx_err_set(err, LYNX_EINVALID, "batch_id", "invalid id %s",
                            s_quote(batch_id, batch_id ? strlen(batch_id) : 0, quoted));
    s_batch_t *batch = (s_batch_t *)zhashx_lookup(self->batches, batch_id);
    if (!batch) {
        batch = (s_batch_t *)calloc(1, sizeof *batch);
        if (!batch)
            return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        snprintf(batch->id, sizeof batch->id, "%s", batch_id);
        zhashx_insert(self->batches, batch_id, batch);
    }
    //  A changed prefix or compression moves the files of buffers not yet written.
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs))
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
    for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); job;
         job = (s_job_t *)zhashx_next(self->jobs)) {
        if (job->size > 0 && now_ms - job->first_buffered_ms >= job->batch->flush_interval_ms) {
            failed |= s_flush(self, job) != 0;
            flushed++;
        }
        if (job->size == 0 && now_ms - job->last_frame_ms >= S_IDLE_FORGET_MS)
            idle++;
    }
    if (idle > 0) {
        zlistx_t *forget = zlistx_new();
        for (s_job_t *job = (s_job_t *)zhashx_first(self->jobs); forget && job;
             job = (s_job_t *)zhashx_next(self->jobs))
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
    s_job_t *job = job_id ? (s_job_t *)zhashx_lookup(self->jobs, job_id) : NULL;
    if (!job)
        return 0;
    int rc = s_flush(self, job);
    zhashx_delete(self->jobs, job_id);
    return rc;
}

int broker_telemetry_publish_job_event(broker_telemetry_t *self, const char *batch_id,
                                       const char *job_id, const char *status,
                                       const lynx_value_t *extra)
{
    assert(self);
    if (!batch_id || !s_id_valid(batch_id, strlen(batch_id)) || !job_id ||
        !s_id_valid(job_id, strlen(job_id)) || !status) {
        self->stats.events_dropped++;
        return -1;
    }
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "event.%s.%s", batch_id, job_id);
    lynx_value_t *event = lynx_value_map();
    if (event && (lynx_value_set_string(event, "type", "job") ||
                  lynx_value_set_string(event, "batch_id", batch_id) ||
                  lynx_value_set_string(event, "job_id", job_id) ||
                  lynx_value_set_string(event, "status", status) ||
                  lynx_value_set_int(event, "time_ms", lynx_time_now_ms())))
        lynx_value_destroy(&event);
    return s_publish_event(self, topic, &event, extra);
}

int broker_telemetry_publish_batch_event(broker_telemetry_t *self, const char *batch_id,
                                         const char *status, const lynx_value_t *extra)
{
    assert(self);
    if (!batch_id || !s_id_valid(batch_id, strlen(batch_id)) || !status) {
        self->stats.events_dropped++;
        return -1;
    }
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "event.%s", batch_id);
    lynx_value_t *event = lynx_value_map();
    if (event && (lynx_value_set_string(event, "type", "batch") ||
                  lynx_value_set_string(event, "batch_id", batch_id) ||
                  lynx_value_set_string(event, "status", status) ||
                  lynx_value_set_int(event, "time_ms", lynx_time_now_ms())))
        lynx_value_destroy(&event);
    return s_publish_event(self, topic, &event, extra);
}

void broker_telemetry_stats(const broker_telemetry_t *self, broker_telemetry_stats_t *stats)
{
    assert(self && stats);
    *stats = self->stats;
    stats->jobs = zhashx_size(self->jobs);
}
